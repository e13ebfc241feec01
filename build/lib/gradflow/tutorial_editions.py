"""The tutorial's gradient table, edition by edition, and a float32 replay that explains the editions.

Raschka's chapter 4 notebook (repository ``rasbt/LLMs-from-scratch``, file
``ch04/01_main-chapter-code/ch04.ipynb``) prints the ten numbers of its shortcut experiment. Its
history holds two printouts of them:

- ``557ddfc`` (2024-02-15, "make a new example for shortcut connections"), which introduced the
  experiment; every later commit up to ``a2cd843`` (2024-03-19) kept these outputs.
- ``3829ccd`` (2024-04-03, "Remove reundant dropout in MLP module (#105)"), which re-ran the whole
  notebook from its first cell (execution counts 1, 2, 3, ...; its version cell prints torch 2.2.1, its metadata names a
  Python 3.11.4 kernel; 557ddfc's names Python 3.10.12 and has no version cell). Seven of the ten
  numbers changed in their last bits. Every later commit up to ``9ab6e89`` (2026-03-07) kept them.

Between the two commits the cells of the experiment (GELU, the network, the input, the seed, the
loss, ``print_gradients``) are the same, except that ``3f186ab`` wrote ``x.shape`` for
``x.size()``, which computes nothing. Outputs of other cells whose code did not change moved in
their last digits in the same commit (the layer-norm example's means, ``2.9802e-08`` became
``-5.9605e-08``). The numbers changed because the notebook ran on another machine, whose float32
arithmetic performs some operations in another order.

``replay`` shows this. It recomputes the experiment, forward and backward, in float32 with numpy
scalars, one rounding per operation, in an order that a ``Float32Arithmetic`` spells out: how
sqrt(2/pi) is rounded, whether the matrix products use fused multiply-adds (one rounding for
``a*b + c``) and how many partial sums they keep, whether tanh's derivative ``g * (1 - t*t)`` is
fused, and how many vector lanes the sum behind ``mean`` uses. ``PYTORCH_2_13_AVX512`` is the order
PyTorch 2.13 uses on the machine that built this book (measured operation by operation);
``NOTEBOOK_3829CCD`` differs from it in two places and reproduces the second edition bit for bit.

The weights come from ``gradflow.ExampleDeepNeuralNetwork`` after ``torch.manual_seed``: the
replay recomputes that network's arithmetic, it does not define another network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
import torch

from .activations import TANH_CUBIC_COEFFICIENT, TWO_OVER_PI
from .checks import one_of, positive_int
from .probes import seed_loss
from .tutorial import (
    PLAIN,
    SEED,
    SEED_INPUT,
    SEED_LAYER_SIZES,
    SEED_PUBLISHED,
    SHORTCUT,
    ExampleDeepNeuralNetwork,
    float32_ulps_apart,
)

F32 = np.float32
TANHS = ("nearest", "pytorch")
NOTEBOOK = "ch04/01_main-chapter-code/ch04.ipynb"


@dataclass(frozen=True)
class Edition:
    """One printout of the tutorial's ten numbers: where it comes from and what it says."""

    key: str
    commit: str
    date: str
    source: str
    gradients: dict[str, dict[str, float]]


def _table(plain: Sequence[float], shortcut: Sequence[float]) -> dict[str, dict[str, float]]:
    names = [f"layers.{i}.0.weight" for i in range(5)]
    return {PLAIN: dict(zip(names, plain)), SHORTCUT: dict(zip(names, shortcut))}


#: The two printouts in the notebook's history, copied from the notebook's outputs at each commit.
EDITIONS = {
    "557ddfc": Edition(
        "557ddfc", "557ddfc6846d5fc31b0b61e2626147f125a7a3b9", "2024-02-15",
        f"{NOTEBOOK} at 557ddfc (unchanged to a2cd843, 2024-03-19)",
        _table(
            [0.00020173587836325169, 0.0001201116101583466, 0.0007152041653171182,
             0.001398873864673078, 0.005049646366387606],
            [0.22169792652130127, 0.20694105327129364, 0.32896995544433594,
             0.2665732502937317, 1.3258541822433472],
        ),
    ),
    "3829ccd": Edition(
        "3829ccd", "3829ccdb349875a3cdf14faf1a9f524d6c3e83dc", "2024-04-03",
        f"{NOTEBOOK} at 3829ccd (unchanged to 9ab6e89, 2026-03-07)",
        _table(
            [0.00020173587836325169, 0.00012011159560643137, 0.0007152039906941354,
             0.0013988736318424344, 0.005049645435065031],
            [0.22169792652130127, 0.20694106817245483, 0.32896995544433594,
             0.2665732204914093, 1.3258540630340576],
        ),
    ),
}
#: The printout this book started from (``gradflow.tutorial.SEED_PUBLISHED``), as a third edition.
SEED_EDITION = Edition("seed", "", "", "the seed notebook (../shared/seed)", SEED_PUBLISHED)


def ulps_between(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> dict:
    """Float32 units in the last place between two gradient tables, ``{column: {weight: n}}``."""
    return {
        column: {name: float32_ulps_apart(a[column][name], b[column][name]) for name in a[column]}
        for column in (PLAIN, SHORTCUT)
    }


# --- float32 arithmetic, one rounding per operation -------------------------------------------


def round_to_float32(q: Fraction) -> np.float32:
    """The float32 nearest to the exact rational ``q`` (ties to even)."""
    f = F32(float(q))  # may be off by one ulp: float(q) rounds once, float32 twice
    candidates = (np.nextafter(f, F32(-np.inf)), f, np.nextafter(f, F32(np.inf)))

    def key(c):
        return abs(Fraction(float(c)) - q), int(np.array([c]).view(np.int32)[0]) & 1

    return min(candidates, key=key)


def fused_multiply_add(a, b, c) -> np.float32:
    """``a * b + c`` with one rounding to float32, as an FMA instruction computes it."""
    return round_to_float32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


@dataclass(frozen=True)
class Float32Arithmetic:
    """The order in which one machine's PyTorch performs the experiment's float32 operations.

    Attributes:
        name: a label.
        sqrt_ulps: sqrt(2/pi), computed as ``torch.sqrt(torch.tensor(2 / pi))``, is the correctly
            rounded square root of float32(2/pi) moved by this many float32 ulps.
        forward_fused, forward_partial_sums: the layer's ``x @ W.T + b``. Each output is a sum
            of products, dealt round-robin to this many partial sums; with ``fused`` every
            product after a partial sum's first is added with one rounding (an FMA), else the
            product is rounded first. Partial sums are added in order, then the bias.
        backward_fused, backward_partial_sums: the same for ``g @ W``, the gradient that flows
            back to a layer's input.
        tanh: ``"nearest"``, float32's correctly rounded tanh, or ``"pytorch"``, this machine's
            ``torch.tanh`` (accurate to about one ulp; it differs from the nearest in rare inputs).
        tanh_backward_fused: tanh's derivative ``g * (1 - t*t)`` with ``1 - t*t`` fused.
        sum_lanes: the sum behind ``mean`` adds whole vectors of this many floats lane by lane
            and the leftover elements one by one, then the leftovers' sum and the lanes in order.
    """

    name: str
    sqrt_ulps: int = 0
    forward_fused: bool = False
    forward_partial_sums: int = 1
    backward_fused: bool = False
    backward_partial_sums: int = 1
    tanh: str = "nearest"
    tanh_backward_fused: bool = True
    sum_lanes: int = 8

    def __post_init__(self):
        for field in ("forward_partial_sums", "backward_partial_sums", "sum_lanes"):
            positive_int(field, getattr(self, field))
        if not isinstance(self.sqrt_ulps, int) or isinstance(self.sqrt_ulps, bool):
            raise TypeError(f"sqrt_ulps must be an integer, got {self.sqrt_ulps!r}")
        one_of("tanh", self.tanh, TANHS)

    @property
    def sqrt_2_over_pi(self) -> np.float32:
        nearest = F32(np.sqrt(F32(TWO_OVER_PI)))  # IEEE square root: correctly rounded
        step = F32(np.inf) if self.sqrt_ulps > 0 else F32(-np.inf)
        for _ in range(abs(self.sqrt_ulps)):
            nearest = np.nextafter(nearest, step)
        return nearest


#: PyTorch 2.13 on this book's build machine (CPU capability AVX512), measured op by op: sqrt of
#: the 0-dim tensor one ulp above the correctly rounded value, products summed in order without
#: FMA, its own tanh, tanh's derivative fused, sums over 8 lanes.
PYTORCH_2_13_AVX512 = Float32Arithmetic("PyTorch 2.13, this machine", sqrt_ulps=1, tanh="pytorch")
#: The order that reproduces the 3829ccd printout: sqrt(2/pi) correctly rounded, and ``g @ W``
#: summed in two partial sums with FMAs. Everything else as on this machine, with float32's
#: correctly rounded tanh (that machine's tanh is unknown; it agrees on the experiment's inputs).
NOTEBOOK_3829CCD = replace(
    PYTORCH_2_13_AVX512, name="3829ccd's machine", sqrt_ulps=0,
    backward_fused=True, backward_partial_sums=2, tanh="nearest",
)


def _dot(a, b, fused: bool, partial_sums: int) -> np.float32:
    sums: list[np.float32 | None] = [None] * partial_sums
    for k, (x, y) in enumerate(zip(a, b)):
        i = k % partial_sums
        if sums[i] is None:
            sums[i] = F32(x * y)
        elif fused:
            sums[i] = fused_multiply_add(x, y, sums[i])
        else:
            sums[i] = F32(sums[i] + F32(x * y))
    total = None
    for s in sums:
        if s is not None:
            total = s if total is None else F32(total + s)
    return total


def _mean(values: list[np.float32], lanes: int) -> np.float32:
    whole = len(values) - len(values) % lanes
    total = F32(0)
    for v in values[whole:]:
        total = F32(total + v)
    acc = [F32(0)] * lanes
    for i, v in enumerate(values[:whole]):
        acc[i % lanes] = F32(acc[i % lanes] + v)
    for a in acc:
        total = F32(total + a)
    return F32(total / F32(len(values)))


def _tanh(x: np.float32, kind: str) -> np.float32:
    if kind == "pytorch":
        return F32(torch.tanh(torch.tensor([x], dtype=torch.float32)).item())
    return F32(math.tanh(float(x)))  # float64 tanh, rounded: float32's correctly rounded tanh


def replay_gradients(
    model: ExampleDeepNeuralNetwork, x: Sequence[float], arithmetic: Float32Arithmetic
) -> dict[str, float]:
    """``layer_gradient_means`` of ``model`` at the single input ``x`` (zero target, MSE), as
    float32 means, recomputed with one rounding per operation in ``arithmetic``'s order.

    The forward pass follows the tutorial's GELU operation by operation,
    ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))`` with ``x**3 = (x*x)*x``; the
    backward pass follows autograd's nodes in the order autograd runs them.
    """
    if not isinstance(model, ExampleDeepNeuralNetwork):
        raise TypeError(f"model must be an ExampleDeepNeuralNetwork, got {type(model).__name__}")
    if not isinstance(arithmetic, Float32Arithmetic):
        raise TypeError("arithmetic must be a Float32Arithmetic")
    h = [F32(v) for v in x]
    if len(h) != model.layer_sizes[0] or model.layer_sizes[-1] != 1:
        raise ValueError(
            f"replay needs one input of width layer_sizes[0] = {model.layer_sizes[0]} and one "
            f"output; got {len(h)} inputs and layer_sizes {model.layer_sizes}"
        )
    c, k = arithmetic.sqrt_2_over_pi, F32(TANH_CUBIC_COEFFICIENT)
    one, half = F32(1), F32(0.5)
    tapes = []
    for layer, shortcut in zip(model.layers, model.shortcut_applied):
        weight = layer[0].weight.detach().numpy().astype(F32)
        bias = layer[0].bias.detach().numpy().astype(F32)
        z = [
            F32(_dot(h, row, arithmetic.forward_fused, arithmetic.forward_partial_sums) + b)
            for row, b in zip(weight, bias)
        ]
        steps, out = [], []
        for zj in z:
            cube = F32(F32(zj * zj) * zj)
            t = _tanh(F32(c * F32(zj + F32(k * cube))), arithmetic.tanh)
            halved, gate = F32(half * zj), F32(one + t)
            steps.append((zj, t, halved, gate))
            out.append(F32(halved * gate))
        tapes.append((h, weight, steps, shortcut))
        h = [F32(a + o) for a, o in zip(h, out)] if shortcut else out
    grad = [F32(F32(2) * h[0])]  # MSE against 0, one output: dL/dy = 2 y
    means = []
    for h_in, weight, steps, shortcut in reversed(tapes):
        grad_z = []
        for (zj, t, halved, gate), g in zip(steps, grad):
            if arithmetic.tanh_backward_fused:
                g_arg = F32(F32(g * halved) * fused_multiply_add(-t, t, one))
            else:
                g_arg = F32(F32(g * halved) * F32(one - F32(t * t)))
            g_inner = F32(g_arg * c)
            g_cube = F32(F32(g_inner * k) * F32(F32(3) * F32(zj * zj)))
            # autograd adds the three paths into z in the order their nodes run
            grad_z.append(F32(F32(g_inner + g_cube) + F32(F32(g * gate) * half)))
        grad_w = [abs(F32(gz * hk)) for gz in grad_z for hk in h_in]
        means.append(float(_mean(grad_w, arithmetic.sum_lanes)))
        columns = weight.T
        back = [
            _dot(grad_z, col, arithmetic.backward_fused, arithmetic.backward_partial_sums)
            for col in columns
        ]
        grad = [F32(g + b) for g, b in zip(grad, back)] if shortcut else back
    names = [f"layers.{i}.0.weight" for i in range(len(tapes))]
    return dict(zip(names, reversed(means)))


def replay_table(arithmetic: Float32Arithmetic, seed: int = SEED) -> dict[str, dict[str, float]]:
    """The tutorial's experiment (seed, widths and input) replayed, ``{column: {weight: mean}}``."""
    table = {}
    for column, use_shortcut in ((PLAIN, False), (SHORTCUT, True)):
        torch.manual_seed(seed)
        model = ExampleDeepNeuralNetwork(SEED_LAYER_SIZES, use_shortcut=use_shortcut)
        table[column] = replay_gradients(model, SEED_INPUT[0], arithmetic)
    return table


def pytorch_table(seed: int = SEED) -> dict[str, dict[str, float]]:
    """The tutorial's experiment run by this machine's PyTorch with the tutorial's statistic,
    ``param.grad.abs().mean().item()`` in float32 (``layer_gradient_means`` averages in float64)."""
    x = torch.tensor(SEED_INPUT)
    table = {}
    for column, use_shortcut in ((PLAIN, False), (SHORTCUT, True)):
        torch.manual_seed(seed)
        model = ExampleDeepNeuralNetwork(SEED_LAYER_SIZES, use_shortcut=use_shortcut)
        named = [(n, p) for n, p in model.named_parameters() if "weight" in n]
        grads = torch.autograd.grad(seed_loss(model(x)), [p for _, p in named])
        table[column] = {n: g.abs().mean().item() for (n, _), g in zip(named, grads)}
    return table


def agreement(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> int:
    """How many of the ten numbers two gradient tables share exactly."""
    return sum(a[col][name] == b[col][name] for col in (PLAIN, SHORTCUT) for name in a[col])
