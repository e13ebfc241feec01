"""GELU in PyTorch: its two built-in forms against the tutorial's, their float32 zeros, and the
tutorial's gradient table with the exact GELU swapped in. Part of the GELU chapter
(``book/gelu.md``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ... import activations as act
from ... import checks
from ...probes import layer_gradient_means
from ...tutorial import (
    PLAIN,
    SEED,
    SEED_INPUT,
    SEED_LAYER_SIZES,
    SHORTCUT,
    ExampleDeepNeuralNetwork,
)
from .approximations import _check_grid


@dataclass(frozen=True)
class TorchGeluComparison:
    """``torch.nn.GELU()`` against ``torch.nn.GELU(approximate="tanh")`` and the seed's class.

    Attributes:
        x: the float32 inputs compared.
        allclose: ``torch.allclose(exact, tanh)`` at its default tolerances (rtol 1e-5, atol 1e-8).
        fraction_not_close: the fraction of inputs where ``torch.isclose`` is False.
        max_abs_difference: the largest |exact - tanh| in float32.
        x_at_max: the input where that difference occurs.
        seed_max_abs_difference: the largest |seed GELU - nn.GELU(approximate="tanh")|.
        seed_identical_fraction: the fraction of inputs where those two are bit for bit equal.
        seed_float32_rounding: the largest |seed GELU in float32 - tanh form in float64|.
    """

    x: np.ndarray
    allclose: bool
    fraction_not_close: float
    max_abs_difference: float
    x_at_max: float
    seed_max_abs_difference: float
    seed_identical_fraction: float
    seed_float32_rounding: float


def compare_torch_gelu(
    lo: float = -6.0, hi: float = 6.0, n_grid: int = 12_001
) -> TorchGeluComparison:
    """Evaluate PyTorch's two GELUs and the seed's on a float32 grid and compare them."""
    _check_grid(lo, hi, n_grid)
    x = torch.linspace(lo, hi, n_grid, dtype=torch.float32)
    with torch.no_grad():
        exact = nn.GELU()(x)
        tanh = nn.GELU(approximate="tanh")(x)
        seed = act.GELU()(x)
    diff = (exact - tanh).abs()
    i = int(torch.argmax(diff))
    return TorchGeluComparison(
        x=x.numpy(),
        allclose=bool(torch.allclose(exact, tanh)),
        fraction_not_close=float((~torch.isclose(exact, tanh)).double().mean()),
        max_abs_difference=float(diff[i]),
        x_at_max=float(x[i]),
        seed_max_abs_difference=float((seed - tanh).abs().max()),
        seed_identical_fraction=float((seed == tanh).double().mean()),
        seed_float32_rounding=float((seed.double() - act.gelu(x.double(), "tanh")).abs().max()),
    )


#: The float32 functions whose zero thresholds ``float32_zero_thresholds`` measures.
FLOAT32_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    'nn.GELU()': nn.GELU(),
    'nn.GELU(approximate="tanh")': nn.GELU(approximate="tanh"),
    "tutorial's GELU (gradflow.GELU)": act.GELU(),
    act.REGISTRY["gelu_sigmoid"].label: act.REGISTRY["gelu_sigmoid"].fn,
    "SiLU (nn.SiLU())": nn.SiLU(),
}


def _value_and_grad(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor):
    """``fn(x)`` and its autograd gradient, as PyTorch's vectorised CPU kernels compute them.

    PyTorch runs the elements of a large tensor through SIMD kernels and the last few through
    scalar ones, and in float32's last bits the two can disagree. Padding ``x`` with 64 zeros
    keeps every element of interest in the vectorised part, as in a network's large tensors.
    """
    padded = torch.cat([x.detach(), torch.zeros(64 + (-len(x)) % 64, dtype=x.dtype)])
    padded.requires_grad_(True)
    y = fn(padded)
    (g,) = torch.autograd.grad(y.sum(), padded)
    return y.detach()[: len(x)], g[: len(x)]


def _zero_below(fn: Callable[[torch.Tensor], torch.Tensor], which: int, lo: float) -> float:
    """The first input b of a float32 scan of [lo, 0] at which the output (which=0) or gradient
    (which=1) of ``fn`` is not exactly 0, all inputs before it giving 0; NaN if ``fn`` is not 0
    at ``lo``. The scan has spacing 1e-2, then 1e-5 between the last zero and the first non-zero
    point, so b is within 1e-5 of the boundary.
    """
    def first_nonzero(grid: torch.Tensor) -> int:
        zero = (_value_and_grad(fn, grid)[which] == 0).numpy()
        return -1 if not zero[0] else int(np.argmax(~zero))

    coarse = torch.linspace(lo, 0.0, round(-lo * 100) + 1, dtype=torch.float64)
    i = first_nonzero(coarse.float())
    if i < 0:
        return math.nan
    fine = torch.linspace(float(coarse[i - 1]), float(coarse[i]), 1001, dtype=torch.float64)
    return float(fine.float()[first_nonzero(fine.float())])


def float32_zero_thresholds(lo: float = -100.0) -> pd.DataFrame:
    """Below which input each float32 function's output, and its autograd gradient, are exactly 0.

    Mathematically GELU and its derivative are non-zero for every x < 0 except the minimum; in
    float32 both round to exactly 0 far enough into the negative tail. Scans [lo, 0] in float32
    and locates each boundary to within 1e-5 (see ``_zero_below``), as PyTorch's vectorised CPU
    kernels compute the functions for large tensors. The boundaries are properties of those
    kernels: a single-element tensor (scalar kernel), another CPU or a GPU can give others.

    Returns:
        One row per entry of ``FLOAT32_FUNCTIONS``; columns ``"output is 0 below x ="`` and
        ``"gradient is 0 below x ="`` (NaN: never exactly 0 on [lo, 0]).
    """
    if not (math.isfinite(lo) and lo < -1):
        raise ValueError(f"lo must be a finite number below -1, got {lo!r}")
    rows = {
        name: {"output is 0 below x =": _zero_below(fn, 0, lo),
               "gradient is 0 below x =": _zero_below(fn, 1, lo)}
        for name, fn in FLOAT32_FUNCTIONS.items()
    }
    table = pd.DataFrame(rows).T
    table.index.name = "float32 function"
    return table


def seed_gradients_exact_vs_tanh(seed: int = SEED) -> pd.DataFrame:
    """The seed's gradient table with its tanh GELU and with the exact GELU swapped in.

    Builds the seed's network (``ExampleDeepNeuralNetwork`` with the seed's widths, after
    ``torch.manual_seed(seed)``) with and without shortcuts, then replaces each ``GELU`` module by
    ``nn.GELU()`` and measures the mean |dL/dW| per layer again on the same weights and input.

    Returns:
        Index: (network, weight name); columns ``"tanh (tutorial)"``, ``"exact"``,
        ``"relative difference"`` = exact / tanh - 1.
    """
    checks.seed(seed)
    x = torch.tensor(SEED_INPUT)
    frames = []
    for label, use_shortcut in ((PLAIN, False), (SHORTCUT, True)):
        torch.manual_seed(seed)
        model = ExampleDeepNeuralNetwork(SEED_LAYER_SIZES, use_shortcut=use_shortcut)
        tanh = layer_gradient_means(model, x)
        for layer in model.layers:
            layer[1] = nn.GELU()
        exact = layer_gradient_means(model, x)
        frame = pd.DataFrame({"tanh (tutorial)": tanh, "exact": exact})
        frame["relative difference"] = frame["exact"] / frame["tanh (tutorial)"] - 1.0
        frame.index = pd.MultiIndex.from_product(
            [[label], frame.index], names=["network", "weight"]
        )
        frames.append(frame)
    return pd.concat(frames)
