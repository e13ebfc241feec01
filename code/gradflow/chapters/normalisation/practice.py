"""Four questions readers ask about normalisation, each measured: BatchNorm before or after the
activation, why transformers use LayerNorm rather than BatchNorm, weight decay on weights that
feed a normaliser, and which axis LayerNorm normalises. Part of the chapter "Normalisation"
(``book/normalisation.md``). Every function returns plain data, in float64 where a difference
is to be shown to be zero."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from ... import checks
from ... import normalisation as norm
from ...networks.probing import weights_and_probe_data
from ...networks.stacked import stacked_forward
from .explosion import growth_rate

#: Where BatchNorm sits in a plain layer: ``"before"`` the activation, h = relu(BN(W h + b)) (Ioffe
#: & Szegedy 2015's placement, and this chapter's), or ``"after"`` it, h = BN(relu(W h + b)).
PLACEMENTS = ("before", "after")


def batch_norm_after_forward(x: torch.Tensor, weights: Sequence[torch.Tensor],
                   biases: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Layers h = BN(relu(W h + b)) for M stacked networks; x of shape (M, B, width). Returns
    the states [x, h_1, ...] and the pre-activations [a_1, ...], each (M, B, width)."""
    h = x.transpose(1, 2)   # (M, features, B): BatchNorm over B is instance_norm, as in stacked
    states, preacts = [x], []
    for w, b in zip(weights, biases):
        a = torch.baddbmm(b.unsqueeze(2), w, h)
        preacts.append(a.transpose(1, 2))
        h = nn.functional.instance_norm(torch.relu(a), eps=1e-5)
        states.append(h.transpose(1, 2))
        h = states[-1].transpose(1, 2)
    return states, preacts


def batch_norm_placement(depth: int = 30, width: int = 64, batch: int = 64,
                         seeds: Sequence[int] = range(4), init: str = "kaiming") -> pd.DataFrame:
    """BatchNorm before against after the ReLU in a plain network at initialisation.

    Both placements use the same weights, inputs ``randn(batch, width)`` and readout (the loss is
    <r, h_depth>), in float64. One row per (placement, seed, layer l = 1..depth): the mean, the
    variance and the share of positive entries of the pre-activation that reaches the ReLU
    (``relu_input_*``: BN(a) before, a after; over the batch and the units), the mean of the
    ReLU's output (``relu_output_mean``), and the squared gradient norm at the layer's input,
    ``grad_sq`` = ||dL/dh_{l-1}||^2 (layer 1: the network's input).
    """
    depth, width, batch = (checks.positive_int(n, v) for n, v in
                           (("depth", depth), ("width", width), ("batch", batch)))
    if batch < 2:
        raise ValueError(f"batch must be at least 2 for BatchNorm's batch statistics, got {batch}")
    seeds = checks.seeds(seeds)
    # depth + 1 layers drawn: stacked_forward leaves its last layer un-normalised, so the
    # measured network is the first ``depth`` layers (as in ``explosion.squared_gradient_norms``).
    weights, biases, x, readout = weights_and_probe_data([width] * (depth + 2), seeds, init, batch)
    rows = []
    for placement in PLACEMENTS:
        inputs = x.clone().requires_grad_(True)
        if placement == "before":
            states, preacts = stacked_forward(inputs, weights, biases, 0.0, activation="relu",
                                              batch_norm=True, return_preacts=True)
        else:
            states, preacts = batch_norm_after_forward(inputs, weights[:depth + 1], biases[:depth + 1])
        grads = torch.autograd.grad(states[depth], states[:depth], readout)
        for layer in range(1, depth + 1):
            a = preacts[layer - 1].detach()
            out = torch.relu(a)
            for s, seed in enumerate(seeds):
                rows.append({
                    "placement": placement, "seed": seed, "layer": layer,
                    "relu_input_mean": float(a[s].mean()),
                    "relu_input_var": float(a[s].var(unbiased=False)),
                    "relu_input_positive": float((a[s] > 0).double().mean()),
                    "relu_output_mean": float(out[s].mean()),
                    "grad_sq": float(grads[layer - 1][s].pow(2).sum()),
                })
    return pd.DataFrame(rows)


def placement_growth(frame: pd.DataFrame, skip_top: int = 5, skip_bottom: int = 1) -> pd.DataFrame:
    """Per placement and seed: the growth of ||dL/dh||^2 per layer towards the input, by the
    chapter's estimator ``explosion.growth_rate`` (a least-squares line through log grad_sq
    against the layer, leaving out the ``skip_top`` layers nearest the readout and the
    ``skip_bottom`` nearest the input, whose factor differs), applied to each seed alone."""
    checks.columns(frame, ["placement", "seed", "layer", "grad_sq"], "placement_growth")
    rows = []
    for (placement, seed), group in frame.groupby(["placement", "seed"], sort=False):
        g = group.sort_values("layer")["grad_sq"].to_numpy()
        rows.append({"placement": placement, "seed": seed,
                     "growth": growth_rate(g[None, :], skip_top=skip_top,
                                           skip_bottom=skip_bottom)})
    return pd.DataFrame(rows)


def padding_and_causality(length: int = 5, padded_length: int = 8, channels: int = 16,
                          seed: int = 0) -> dict[str, float]:
    """The same sequence normalised alone and inside a padded batch, by BatchNorm and LayerNorm.

    A sequence of ``length`` tokens with ``channels`` features, and a second, longer one of
    ``padded_length`` tokens; the first is zero-padded to ``padded_length`` so the two stack
    into a (2, padded_length, channels) batch. BatchNorm (training mode) normalises each channel
    over every token of its batch; LayerNorm each token over its channels (no affine parameters,
    float64). Returns the largest change of the first sequence's outputs (its real tokens) when
    it is normalised in the padded batch rather than alone: ``batchnorm_padded`` (the padding
    counted in the statistics, as a plain ``nn.BatchNorm1d`` over the flattened tokens does),
    ``batchnorm_masked`` (only real tokens counted, but the other sequence's still are) and
    ``layernorm``; and, for the sequence alone, how far its first token's output moves when only
    its last token changes (``batchnorm_future`` and ``layernorm_future``): BatchNorm's statistics
    read every position, so an earlier output depends on later tokens, which a causal model must
    not see. ``output_scale`` is the largest |output| of BatchNorm alone, for scale.
    """
    length, padded_length, channels = (checks.positive_int(n, v) for n, v in (
        ("length", length), ("padded_length", padded_length), ("channels", channels)))
    if not 2 <= length < padded_length:
        raise ValueError(f"length must be at least 2 and below padded_length={padded_length}, "
                         f"got {length}")
    generator = torch.Generator().manual_seed(checks.seed(seed))
    first = torch.randn(length, channels, generator=generator, dtype=torch.float64)
    second = torch.randn(padded_length, channels, generator=generator, dtype=torch.float64)
    padded = torch.cat([first, torch.zeros(padded_length - length, channels, dtype=torch.float64)])
    alone_bn = norm.batch_norm(first)
    alone_ln = norm.layer_norm(first, channels)
    padded_bn = norm.batch_norm(torch.cat([padded, second]))[:length]
    masked_bn = norm.batch_norm(torch.cat([first, second]))[:length]
    batch_ln = norm.layer_norm(torch.stack([padded, second]), channels)[0, :length]
    changed = first.clone()
    changed[-1] = torch.randn(channels, generator=generator, dtype=torch.float64)

    def largest(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).abs().max())

    return {
        "batchnorm_padded": largest(padded_bn, alone_bn),
        "batchnorm_masked": largest(masked_bn, alone_bn),
        "layernorm": largest(batch_ln, alone_ln),
        "batchnorm_future": largest(norm.batch_norm(changed)[0], alone_bn[0]),
        "layernorm_future": largest(norm.layer_norm(changed, channels)[0], alone_ln[0]),
        "output_scale": float(alone_bn.abs().max()),
    }


def _normalised_output(w: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    return norm.layer_norm(x @ w.T, w.shape[0], eps=eps)


def _gradient(w: torch.Tensor, x: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    w = w.detach().requires_grad_(True)
    loss = (_normalised_output(w, x, eps) - target).pow(2).mean()
    return torch.autograd.grad(loss, w)[0]


def decay_is_a_learning_rate(scale: float = 3.0, lr: float = 0.05, decay: float = 0.02,
                             steps: int = 20, features: int = 16, batch: int = 32,
                             seed: int = 0, eps: float = 1e-5) -> dict[str, float]:
    """A weight W feeding a LayerNorm: scaling it changes nothing but its gradient, and weight
    decay on it acts only as a growing learning rate.

    y = LN(x W^T) (no affine parameters), loss = mean (y - target)^2, float64. Returns
    ``output_change`` = max |y(c W) - y(W)| for c = ``scale``; ``gradient_ratio`` =
    ||grad at W|| / ||grad at c W|| (scale invariance predicts c) and ``gradient_direction``
    = max |c grad(c W) - grad(W)|; then two trainings with plain gradient descent for ``steps``
    steps: (a) with decoupled weight decay, W <- (1 - decay) W - lr grad(W), and (b) without
    decay but with the learning rate lr / (1 - decay)^(2t + 1) at step t. Scale invariance makes
    (a)'s weights (1 - decay)^t times (b)'s at every step, so their outputs agree:
    ``decay_output_change`` is the largest |y_a - y_b| over every step, ``lr_growth`` the
    learning rate of (b) at the last step over lr, and ``no_decay_change`` the largest |y_a - y|
    of a run without decay at the constant lr (what the decay did change). LayerNorm's ``eps``
    (PyTorch's 1e-5 by default) is the only term that is not scale-invariant: with a smaller one
    the agreements tighten towards rounding.
    """
    scale = checks.positive_number("scale", scale)
    lr = checks.positive_number("lr", lr)
    if not 0 <= decay < 1:
        raise ValueError(f"decay must lie in [0, 1), got {decay!r}")
    steps = checks.positive_int("steps", steps)
    eps = checks.positive_number("eps", eps)
    generator = torch.Generator().manual_seed(checks.seed(seed))
    features, batch = checks.positive_int("features", features), checks.positive_int("batch", batch)
    w0 = torch.randn(features, features, generator=generator, dtype=torch.float64)
    x = torch.randn(batch, features, generator=generator, dtype=torch.float64)
    target = torch.randn(batch, features, generator=generator, dtype=torch.float64)
    g, g_scaled = _gradient(w0, x, target, eps), _gradient(scale * w0, x, target, eps)
    decayed, rescaled, plain = w0.clone(), w0.clone(), w0.clone()
    largest, plain_gap = 0.0, 0.0
    for t in range(steps):
        decayed = (1 - decay) * decayed - lr * _gradient(decayed, x, target, eps)
        rescaled = rescaled - lr / (1 - decay) ** (2 * t + 1) * _gradient(rescaled, x, target, eps)
        plain = plain - lr * _gradient(plain, x, target, eps)
        y = _normalised_output(decayed, x, eps)
        largest = max(largest, float((y - _normalised_output(rescaled, x, eps)).abs().max()))
        plain_gap = max(plain_gap, float((y - _normalised_output(plain, x, eps)).abs().max()))
    return {
        "output_change": float((_normalised_output(scale * w0, x, eps)
                                - _normalised_output(w0, x, eps)).abs().max()),
        "gradient_ratio": float(g.norm() / g_scaled.norm()),
        "gradient_direction": float((scale * g_scaled - g).abs().max()),
        "decay_output_change": largest,
        "lr_growth": float(1 / (1 - decay) ** (2 * steps - 1)),
        "no_decay_change": plain_gap,
    }


def layer_norm_axes(batch: int = 2, tokens: int = 3, channels: int = 4,
                    seed: int = 0) -> dict[str, object]:
    """LayerNorm on a (B, T, C) tensor, as a transformer applies it: ``nn.LayerNorm(C)``.

    Returns the shapes of gamma (``weight``) and beta (``bias``), the largest difference between
    the package's ``layer_norm`` and ``nn.LayerNorm`` (with gamma and beta drawn away from 1 and 0,
    float64), and, without gamma and beta, the largest |mean| and |variance - 1| over the C
    channels of each token (``token_*``: LayerNorm's axis) and the same over the T tokens of each
    channel (``position_*``) and over the B examples (``example_*``), which it does not normalise.
    """
    batch, tokens, channels = (checks.positive_int(n, v) for n, v in
                               (("batch", batch), ("tokens", tokens), ("channels", channels)))
    generator = torch.Generator().manual_seed(checks.seed(seed))
    x = 1.0 + 2.0 * torch.randn(batch, tokens, channels, generator=generator, dtype=torch.float64)
    module = nn.LayerNorm(channels, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(1 + 0.3 * torch.randn(channels, generator=generator, dtype=torch.float64))
        module.bias.copy_(0.3 * torch.randn(channels, generator=generator, dtype=torch.float64))
    ours = norm.layer_norm(x, channels, module.weight.detach(), module.bias.detach())
    plain = norm.layer_norm(x, channels)

    def moments(dim: int) -> tuple[float, float]:
        mean = plain.mean(dim=dim)
        var = plain.var(dim=dim, unbiased=False)
        return float(mean.abs().max()), float((var - 1).abs().max())

    (tm, tv), (pm, pv), (em, ev) = moments(-1), moments(1), moments(0)
    return {
        "input_shape": tuple(x.shape), "weight_shape": tuple(module.weight.shape),
        "bias_shape": tuple(module.bias.shape),
        "pytorch_difference": float((ours - module(x)).detach().abs().max()),
        "token_mean": tm, "token_var": tv, "position_mean": pm, "position_var": pv,
        "example_mean": em, "example_var": ev,
    }
