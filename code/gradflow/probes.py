"""Gradient probes: per-layer gradient statistics of a model, as data.

Two statistics per layer l of an MLP with outputs h_l = phi(a_l), a_l = W_l h_{l-1} + b_l:

- the seed notebook's ``mean |dL/dW_l|``, the mean absolute entry of the weight gradient
  dL/dW_l = (phi'(a_l) * dL/dh_l) h_{l-1}^T (summed over the batch);
- the back-propagated signal ``||dL/dh_l||``, the gradient with respect to the layer's output,
  which the chain rule turns into dL/dh_{l-1} = W_l^T (phi'(a_l) * dL/dh_l).

Glorot & Bengio (2010) show why the two can disagree: the weight gradient also carries the forward
signal h_{l-1}, so the first can stay level across layers while the second vanishes. All summaries
are taken in float64, so that a tiny gradient is never rounded to zero (in float32 the squares of
entries below about 1e-23 underflow, and the norm with them).

Every probe here takes one of two losses (``seed_loss``): the seed notebook's MSE against a target
(zeros by default), or the linear loss ``(readout * y).sum()`` whose gradient at the output is the
readout itself. One model: ``layer_gradient_means`` (any ``nn.Module``, per named weight, the
seed's ``print_gradients``), and for models made of ``blocks`` (``DeepMLP``) ``block_states``,
``gradient_profile`` and ``stream_gradient_norms``. Many seeds at once: ``batched_profiles``, on
the batched networks of ``gradflow.networks.stacked``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import checks
from .networks.mlp import check_activation, check_init
from .networks.stacked import draw_stacked_weights, stacked_forward

LOSSES = ("readout", "mse")


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


# --- Many seeds at once -------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _draw(
    widths: tuple[int, ...], init: str, bias_init: str | float | None, seeds: tuple[int, ...],
    n_batch: int, draw_inputs: bool, readout_depths: tuple[int, ...], n_layers: int,
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor | None, dict]:
    """Every seed's parameters (float32, gain 1), then its inputs and readouts from the same
    generator. Cached: a sweep over activations and gains reuses the draws (do not modify them)."""
    n_seeds = len(seeds)
    x = torch.empty(n_seeds, n_batch, widths[0]) if draw_inputs else None
    readouts = {d: torch.empty(n_seeds, n_batch, widths[d]) for d in readout_depths}

    def inputs_and_readouts(s: int, generator: torch.Generator) -> None:
        if x is not None:
            x[s] = torch.randn(n_batch, widths[0], generator=generator)
        for d in readout_depths:
            readouts[d][s] = torch.randn(n_batch, widths[d], generator=generator)

    weights, biases = draw_stacked_weights(widths, seeds, init, 1.0, bias_init,
                                           n_layers=n_layers, then=inputs_and_readouts)
    return weights, biases, x, readouts


def batched_profiles(
    widths: Sequence[int],
    activation: str,
    init: str,
    seeds: Sequence[int],
    *,
    gain: float = 1.0,
    bias_init: str | float | None = None,
    batch: int = 8,
    inputs: torch.Tensor | None = None,
    loss: str = "readout",
    probe_depths: Sequence[int] | None = None,
    weight_stats: bool = True,
    shortcut: bool = False,
    shortcut_scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> pd.DataFrame:
    """``gradient_profile`` for many seeds at once, on the batched networks of
    ``gradflow.networks.stacked``.

    For seed s the network is exactly ``DeepMLP(widths, activation=..., init=..., gain=...,
    bias_init=..., shortcut=..., shortcut_scale=..., seed=s)`` with its default float32
    parameters, converted to ``dtype`` (float64) for the computation: a generator seeded with s
    draws each layer's W then b, then (unless ``inputs`` is given, shared by all seeds) the inputs
    ``randn(batch, widths[0])``, then one readout ``randn(batch, widths[D])`` per probe depth D in
    increasing order, all in float32. Identity shortcuts only (where widths agree). So seed 123
    on the seed notebook's widths is the seed notebook's network.

    ``probe_depths`` (default: the full depth) measures several depths in one forward pass: the
    first D layers of the network are a D-layer network, so a backward pass that starts at layer
    D (with its own readout, or the MSE gradient of h_D) gives that network's profile.

    Returns a tidy DataFrame with one row per (seed, depth, layer <= depth) and the columns of
    ``gradient_profile`` (``weight_grad_mean_abs`` is NaN when ``weight_stats`` is False).
    """
    check_activation(activation)
    init = check_init(init)
    widths = checks.widths(checks.positive_ints("widths", widths))
    seeds = checks.seeds(seeds)
    checks.one_of("loss", loss, LOSSES, what="loss")
    depth = len(widths) - 1
    probes = sorted(set(checks.positive_ints("probe_depths", probe_depths or [depth])))
    if probes[-1] > depth:
        raise ValueError(f"probe depths must be <= the depth {depth}, got {probes}")
    if inputs is not None and (inputs.dim() != 2 or inputs.shape[1] != widths[0]):
        raise ValueError(f"inputs must have shape (batch, {widths[0]}), got {tuple(inputs.shape)}")
    n_batch = batch if inputs is None else inputs.shape[0]
    n_layers, n_seeds = probes[-1], len(seeds)
    w32, b32, x32, readouts = _draw(
        tuple(widths), init, bias_init, tuple(seeds), n_batch, inputs is None,
        tuple(probes) if loss == "readout" else (), n_layers,
    )
    # as DeepMLP: the float32 draw times gain, in float32, then converted
    weights = [(w if gain == 1.0 else w * gain).to(dtype) for w in w32]
    weights = [w.requires_grad_(weight_stats) for w in weights]
    biases = [b.to(dtype) for b in b32]
    x = x32.to(dtype) if inputs is None else inputs.to(dtype).expand(n_seeds, *inputs.shape)
    states, preacts = stacked_forward(
        x, weights, biases, float(shortcut), activation=activation,
        shortcut_scale=shortcut_scale, return_preacts=True,
    )
    frames = []
    for d in probes:
        if loss == "readout":
            top = readouts[d].to(dtype)
        else:   # MSE against zeros: d mean(h^2) / dh = 2 h / numel
            top = 2.0 * states[d].detach() / (n_batch * widths[d])
        wanted = states[1:d + 1] + (weights[:d] if weight_stats else [])
        grads = torch.autograd.grad(states[d], wanted, top, retain_graph=True)
        signal = torch.stack([g.double().pow(2).sum(dim=(1, 2)).sqrt() for g in grads[:d]], 1)
        if weight_stats:
            wgrad = torch.stack([g.double().abs().mean(dim=(1, 2)) for g in grads[d:]], 1)
        else:
            wgrad = torch.full_like(signal, float("nan"))
        with torch.no_grad():
            q = torch.stack([a.double().pow(2).mean(dim=(1, 2)) for a in preacts[:d]], 1)
            m = torch.stack([o.double().pow(2).mean(dim=(1, 2)) for o in states[1:d + 1]], 1)
        frames.append(pd.DataFrame({
            "seed": np.repeat(seeds, d),
            "depth": d,
            "layer": np.tile(np.arange(1, d + 1), n_seeds),
            "width": np.tile(np.asarray(widths[1:d + 1]), n_seeds),
            "weight_grad_mean_abs": wgrad.numpy().ravel(),
            "signal_norm": signal.numpy().ravel(),
            "preact_second_moment": q.numpy().ravel(),
            "output_second_moment": m.numpy().ravel(),
        }))
    return pd.concat(frames, ignore_index=True)
