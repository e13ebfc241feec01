"""Gradient probes: per-layer gradient statistics of a model, as data.

Two statistics per layer l of an MLP with outputs h_l = phi(a_l), a_l = W_l h_{l-1} + b_l:

- the seed notebook's ``mean |dL/dW_l|``, the mean absolute entry of the weight gradient
  dL/dW_l = (phi'(a_l) * dL/dh_l) h_{l-1}^T (summed over the batch);
- the back-propagated signal ``||dL/dh_l||``, the gradient with respect to the layer's output,
  which the chain rule turns into dL/dh_{l-1} = W_l^T (phi'(a_l) * dL/dh_l).

Glorot & Bengio (2010) show why the two can disagree: the weight gradient also carries the forward
signal h_{l-1}, so the first can stay level across layers while the second vanishes. All summaries
are taken in float64, so that a tiny gradient is never rounded to zero (in float32 the squares of
entries below about 2.6e-23, the square root of half float32's smallest subnormal 1.4e-45,
underflow, and the norm with them).

Every probe here takes one of two losses (``seed_loss``): the seed notebook's MSE against a target
(zeros by default), or the linear loss ``(readout * y).sum()`` whose gradient at the output is the
readout itself. One model: ``layer_gradient_means`` (any ``nn.Module``, per named weight, the
seed's ``print_gradients``), and for models made of ``blocks`` (``DeepMLP``) ``block_states``,
``gradient_profile`` and ``stream_gradient_norms``. Many seeds at once: ``batched_profiles``, on
the batched networks of ``gradflow.networks.stacked``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn


def seed_loss(
    output: torch.Tensor, target: torch.Tensor | None = None, readout: torch.Tensor | None = None
) -> torch.Tensor:
    """The MSE between ``output`` and ``target`` (zeros by default, as in the seed notebook), or
    with ``readout`` the linear loss ``(readout * output).sum()``."""
    if target is not None and readout is not None:
        raise ValueError("give a target (MSE loss) or a readout (linear loss), not both")
    for name, given in (("target", target), ("readout", readout)):
        if given is None:
            continue
        if not isinstance(given, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(given).__name__}")
        if given.shape != output.shape:
            raise ValueError(
                f"{name} shape {tuple(given.shape)} does not match the model's output shape "
                f"{tuple(output.shape)}"
            )
    if readout is not None:
        return (readout * output).sum()
    return nn.functional.mse_loss(output, torch.zeros_like(output) if target is None else target)


def layer_gradient_means(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None
) -> dict[str, float]:
    """Mean absolute gradient of the loss with respect to each weight, in parameter order.

    The loss is the mean squared error between ``model(x)`` and ``target`` (zeros shaped like the
    output by default), as in the seed notebook. Gradients are taken with ``torch.autograd.grad``,
    so nothing accumulates in ``.grad``: calling this twice gives the same result. Means are
    taken in float64, so tiny gradients never round to zero.

    Returns:
        ``{"layers.0.0.weight": mean |dL/dW|, ...}`` for every parameter whose name contains
        ``"weight"``, in ``model.named_parameters()`` order.
    """
    loss = seed_loss(model(x), target)
    named = [(name, p) for name, p in model.named_parameters() if "weight" in name]
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    return {
        name: 0.0 if g is None else g.detach().abs().double().mean().item()
        for (name, _), g in zip(named, grads)
    }


def _blocks(model: nn.Module, probe: str) -> Sequence[nn.Module]:
    blocks = getattr(model, "blocks", None)
    if blocks is None or not all(hasattr(b, "linear") for b in blocks):
        raise TypeError(
            f"{probe} needs a model with .blocks whose items have .linear "
            f"(such as gradflow.DeepMLP), got {type(model).__name__}"
        )
    return blocks


def block_states(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The states [x, h_1, ..., h_L] of a model made of ``blocks``: its input (a leaf that
    requires grad) and every block's output, all in the autograd graph."""
    states = [x.detach().clone().requires_grad_(True)]
    for block in _blocks(model, "block_states"):
        states.append(block(states[-1]))
    return states


def gradient_profile(
    model: nn.Module,
    x: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    readout: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Per-layer statistics of one forward and one backward pass of ``model`` on ``x``.

    ``model`` must have ``blocks`` (as ``gradflow.DeepMLP``): layer l's output is ``blocks[l]``'s
    output and its weight is ``blocks[l].linear.weight``. The loss is ``seed_loss``: the MSE
    against ``target`` (zeros by default) or, with ``readout``, the linear loss.

    Returns one row per layer (index ``layer`` = 1..L) with columns ``width``,
    ``weight_grad_mean_abs`` (mean |dL/dW_l|), ``signal_norm`` (||dL/dh_l||, Frobenius over the
    batch), ``preact_second_moment`` (mean a_l^2) and ``output_second_moment`` (mean h_l^2), all
    computed in float64.
    """
    blocks = _blocks(model, "gradient_profile")
    states = block_states(model, x)
    outputs = states[1:]
    weights = [block.linear.weight for block in blocks]
    grads = torch.autograd.grad(seed_loss(outputs[-1], target, readout), outputs + weights)
    n = len(blocks)
    signal, weight_grads = grads[:n], grads[n:]
    rows = []
    with torch.no_grad():
        for i, block in enumerate(blocks):
            rows.append({
                "layer": i + 1,
                "width": int(outputs[i].shape[-1]),
                "weight_grad_mean_abs": weight_grads[i].double().abs().mean().item(),
                "signal_norm": signal[i].double().norm().item(),
                "preact_second_moment": block.linear(states[i]).double().pow(2).mean().item(),
                "output_second_moment": outputs[i].double().pow(2).mean().item(),
            })
    return pd.DataFrame(rows).set_index("layer")


def stream_gradient_norms(
    model: nn.Module, x: torch.Tensor, readout: torch.Tensor
) -> list[float]:
    """||dL/dh_l|| for l = 0 (the input) .. L (the output), for the loss L = sum(readout * y).

    h_l is block l's output; the norm is taken over the whole batch, in float64.
    """
    states = block_states(model, x)
    grads = torch.autograd.grad(seed_loss(states[-1], readout=readout), states)
    return [g.double().norm().item() for g in grads]


def block_weight_gradients(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None
) -> tuple[list[float], float]:
    """Mean |dL/dW_l| of each block's weight, and dL/dy, for the seed's MSE loss.

    dL/dy is returned for a single output (``x`` of one row, one output unit), else NaN.
    """
    y = block_states(model, x)[-1]
    weights = [block.linear.weight for block in _blocks(model, "block_weight_gradients")]
    grads = torch.autograd.grad(seed_loss(y, target), weights)
    target = torch.zeros_like(y) if target is None else target
    dldy = 2.0 * (y - target).double().item() if y.numel() == 1 else float("nan")
    return [g.double().abs().mean().item() for g in grads], dldy


def input_dependence(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
                     eps: float = 1e-8) -> dict[str, float]:
    """How much ``model``'s output depends on its input, and how many of its gradients are tiny.

    In float64 (on a copy of the model): ``ystd``, the output's standard deviation across the
    batch ``x``, and ``dydx``, the mean |dy/dx|. In the model's own float32, for the loss
    mean((model(x) - target)^2): ``ystd32``, the output's standard deviation, ``ulp32``, float32's
    spacing at the output's mean size (a ``ystd32`` of that order is only rounding), and
    ``below_eps``, the share of gradient entries smaller than ``eps`` (Adam's default epsilon).
    """
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"x must be a batch of at least two inputs, got shape {tuple(x.shape)}")
    model32 = copy.deepcopy(model)
    loss = (model32(x) - target).pow(2).mean()
    grads = torch.autograd.grad(loss, [p for p in model32.parameters() if p.requires_grad])
    entries = torch.cat([g.flatten() for g in grads]).abs()
    y32 = model32(x).detach()
    model64 = copy.deepcopy(model).double()
    x64 = x.double().requires_grad_(True)
    y64 = model64(x64)
    (dydx,) = torch.autograd.grad(y64.sum(), x64)
    return {"ystd": y64.std().item(), "dydx": dydx.abs().mean().item(), "ystd32": y32.std().item(),
            "ulp32": float(np.spacing(y32.abs().mean().numpy())),
            "below_eps": (entries < eps).double().mean().item()}


def over_seeds(frame: pd.DataFrame, keys: Sequence[str], log_ratio: str = "log_ratio",
               sort: bool = True) -> pd.DataFrame:
    """A ratio measured on many seeds, summarised per ``keys``: ``ratio``, the geometric mean
    over the rows of each group (exp of the mean of the column ``log_ratio``, natural logs), and
    ``ratio_min`` and ``ratio_max``, the group's smallest and largest. One row per group."""
    summary = frame.groupby(list(keys), sort=sort)[log_ratio].agg(["mean", "min", "max"])
    summary = np.exp(summary).rename(columns={"mean": "ratio", "min": "ratio_min",
                                              "max": "ratio_max"})
    return summary.reset_index()
