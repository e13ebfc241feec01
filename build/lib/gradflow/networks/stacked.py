"""Many independent MLPs at once: one weight drawer, one batched forward pass, one module.

Measuring a thousand seeds, or training a dozen networks, one ``DeepMLP`` at a time spends most of
its time in Python. Here the networks ("members") are stacked along a first dimension and every
layer is one batched matrix product (``torch.baddbmm``). Member m is exactly the network
``DeepMLP(widths, ..., seed=seeds[m])`` would build: ``draw_stacked_weights`` draws its weights
with the same generator calls in the same order, and ``stacked_forward`` computes the same layers.
Gradients come from autograd through ``stacked_forward``; ``batched_profiles`` takes the
per-layer gradient statistics of ``gradflow.probes`` for every member at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import pairwise

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import checks
from ..activations import check_activation, fast_fn
from .mlp import DeepMLP, _identity, check_init, initialise_linear_, make_generator

LOSSES = ("readout", "mse")


def draw_stacked_weights(
    widths: Sequence[int],
    seeds: Sequence[int],
    init: str = "default",
    gain: float = 1.0,
    bias_init: str | float | None = None,
    *,
    n_layers: int | None = None,
    then: Callable[[int, torch.Generator], None] | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every seed's weights and biases, stacked along a first "member" dimension.

    Member s holds exactly the weights of ``DeepMLP(widths, init=init, gain=gain,
    bias_init=bias_init, seed=seeds[s])``: a generator seeded with the seed draws each layer's W,
    then b, with PyTorch's own init functions, in float32. For ``init="default"`` that is also what
    ``torch.manual_seed(seed)`` followed by ``ExampleDeepNeuralNetwork(widths, ...)`` draws
    (``nn.Linear``'s reset order).

    ``n_layers`` keeps only the first layers (the others are still drawn, so that the generator
    is left where the whole network leaves it); ``then(s, generator)`` is called after member s's
    weights, to draw more from the same generator (inputs, readouts).

    Returns ``(weights, biases)``: per layer, tensors of shape ``(S, out, in)`` and ``(S, out)``
    in ``dtype``.
    """
    widths = checks.widths(widths)
    seeds = checks.seeds(seeds)
    init = check_init(init)
    depth = len(widths) - 1
    n_layers = depth if n_layers is None else n_layers
    if not 1 <= n_layers <= depth:
        raise ValueError(f"n_layers must be between 1 and the depth {depth}, got {n_layers!r}")
    shapes = list(pairwise(widths))
    weights = [torch.empty(len(seeds), n_out, n_in) for n_in, n_out in shapes[:n_layers]]
    biases = [torch.empty(len(seeds), n_out) for _, n_out in shapes[:n_layers]]
    for s, seed in enumerate(seeds):
        generator = make_generator(seed)
        for layer, (n_in, n_out) in enumerate(shapes):
            if layer < n_layers:
                w, b = weights[layer][s], biases[layer][s]
            else:   # a layer nobody reads: drawn all the same, to keep the generator's order
                w, b = torch.empty(n_out, n_in), torch.empty(n_out)
            initialise_linear_(w, b, init, gain, bias_init, generator)
        if then is not None:
            then(s, generator)
    return [w.to(dtype) for w in weights], [b.to(dtype) for b in biases]


def stacked_forward(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    shortcut: torch.Tensor | float,
    *,
    activation: str = "gelu_tanh",
    final_activation: bool = True,
    shortcut_scale: float = 1.0,
    batch_norm: bool = False,
    eps: float = 1e-5,
    preactivation: bool = False,
    branch_scale: Sequence[torch.Tensor] | None = None,
    return_states: bool = False,
    return_preacts: bool = False,
) -> torch.Tensor | list[torch.Tensor] | tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Forward pass of M independent MLPs: ``x`` of shape ``(M, B, in)`` to ``(M, B, out)``.

    Layer l of member m computes a = W_l[m] h + b_l[m] (``activation="identity"``: phi(a) = a, a
    linear network); with ``batch_norm``, a is then
    batch-normalised over the B rows (training-mode BatchNorm without affine parameters, Ioffe &
    Szegedy 2015) in every layer but the last. Then h' = phi(a) (the last layer skips phi unless
    ``final_activation``), and h' += shortcut_scale * h where the width is unchanged and
    ``shortcut[m]`` is 1: the seed's rule, with ``shortcut`` a float tensor of shape ``(M,)`` (or
    one number for every member).

    With ``preactivation`` the layers are "full pre-activation" blocks (He et al. 2016, "Identity
    mappings", Fig. 4e): layer l > 1 computes a = W_l phi(N(h)) + b_l, with N batch
    normalisation over the B rows if ``batch_norm`` (else the identity), and the first layer reads
    its input as it is (a = W_1 x + b_1, the stem); there is no activation after the sum, so
    ``final_activation`` must be False. ``branch_scale`` (one tensor of shape ``(M,)`` per layer,
    e.g. learnable and started at 0 for SkipInit, De & Smith 2020, or ReZero, Bachlechner et al.
    2020) multiplies the branch of every layer whose width is unchanged: h' = gate h + alpha a.

    With ``return_states`` the list [x, h_1, ..., h_L] is returned instead (each a tensor of shape
    ``(M, B, width)`` in the autograd graph, so ``torch.autograd.grad`` can differentiate with
    respect to it); with ``return_preacts`` too, ``(states, [a_1, ..., a_L])``.
    """
    if activation == "identity":   # a linear network, as ``mlp.Activation("identity")``
        fn = _identity
    else:
        check_activation(activation)
        fn = fast_fn(activation)
    if preactivation and final_activation:
        raise ValueError("preactivation blocks have no activation after the sum: pass "
                         "final_activation=False")
    if branch_scale is not None and len(branch_scale) != len(weights):
        raise ValueError(f"branch_scale needs one tensor per layer ({len(weights)}), got "
                         f"{len(branch_scale)}")
    gate = torch.as_tensor(shortcut, dtype=x.dtype).reshape(-1, 1, 1)
    # Internally the layout is (M, features, B): a = W h + b is then one baddbmm without
    # transposes, and BatchNorm (each feature normalised over the B rows, per member) is
    # instance_norm on a contiguous tensor, one fused op.
    h = x.transpose(1, 2)
    states, preacts = [x], []
    n_layers = len(weights)
    for i, (w, b) in enumerate(zip(weights, biases)):
        if preactivation:
            read = h if i == 0 else fn(nn.functional.instance_norm(h, eps=eps) if batch_norm else h)
            out = a = torch.baddbmm(b.unsqueeze(2), w, read)
        else:
            a = torch.baddbmm(b.unsqueeze(2), w, h)
            last = i == n_layers - 1
            if batch_norm and not last:
                a = nn.functional.instance_norm(a, eps=eps)
        if return_preacts:
            preacts.append(a.transpose(1, 2))
        if not preactivation:
            out = fn(a) if (final_activation or not last) else a
        if branch_scale is not None and w.shape[1] == w.shape[2]:
            out = branch_scale[i].reshape(-1, 1, 1) * out
        if w.shape[1] == w.shape[2]:
            skip = gate * h if shortcut_scale == 1.0 else (shortcut_scale * gate) * h
            h = skip + out
        else:
            h = out
        # The next layer reads the state through a view, so each state is in the graph.
        states.append(h.transpose(1, 2))
        h = states[-1].transpose(1, 2)
    if return_preacts:
        return states, preacts
    return states if return_states else states[-1]


class StackedMLP(nn.Module):
    """M independent MLPs trained as one module. Without ``batch_norm``, member m is
    ``DeepMLP(widths, activation=..., init=..., shortcut=shortcut[m], final_activation=...,
    seed=seeds[m])``; with it, every hidden layer also batch-normalises its pre-activation
    (``stacked_forward``), as the plain and residual networks of He et al. (2016, "Deep residual
    learning") do.

    ``preactivation`` builds full pre-activation blocks instead (``stacked_forward``): with
    ``batch_norm`` too, each block is h + W phi(BN(h)) + b, BatchNorm inside the residual branch
    (De & Smith 2020). ``branch_alpha`` (a float, or None for none) gives every layer whose width
    is unchanged a learnable branch scalar per member, started at that value (0: SkipInit, De &
    Smith 2020; ReZero, Bachlechner et al. 2020); ``alphas`` holds them, one row per layer (the
    rows of layers that change the width are unused).

    The members do not interact: the loss is the sum of the members' losses, and Adam's update
    is elementwise, so each member trains exactly as it would alone.
    """

    def __init__(
        self,
        widths: Sequence[int],
        seeds: Sequence[int],
        shortcut: Sequence[bool],
        *,
        batch_norm: bool = False,
        activation: str = "gelu_tanh",
        init: str = "default",
        final_activation: bool = False,
        preactivation: bool = False,
        branch_alpha: float | None = None,
    ):
        super().__init__()
        self.widths = checks.widths(widths)
        seeds = [int(s) for s in seeds]
        if not seeds or len(seeds) != len(shortcut):
            raise ValueError(
                f"seeds and shortcut need one entry per member, got lengths {len(seeds)} and "
                f"{len(shortcut)}"
            )
        self.activation = check_activation(activation)
        self.init = check_init(init)
        self.final_activation = bool(final_activation)
        self.batch_norm = bool(batch_norm)
        self.preactivation = bool(preactivation)
        if self.preactivation and self.final_activation:
            raise ValueError("preactivation blocks have no activation after the sum: pass "
                             "final_activation=False")
        self.seeds = seeds
        unique = sorted(set(seeds))
        weights, biases = draw_stacked_weights(self.widths, unique, init)
        index = torch.tensor([unique.index(s) for s in seeds])
        self.weights = nn.ParameterList([nn.Parameter(w[index].clone()) for w in weights])
        self.biases = nn.ParameterList([nn.Parameter(b[index].clone()) for b in biases])
        self.register_buffer("shortcut", torch.tensor([float(bool(s)) for s in shortcut]))
        self.alphas = None if branch_alpha is None else nn.Parameter(
            torch.full((len(weights), len(seeds)), float(branch_alpha)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``(B, in)`` (shared by all members) or ``(M, B, in)``."""
        if x.dim() == 2:
            x = x.expand(len(self.seeds), *x.shape)
        return stacked_forward(x, list(self.weights), list(self.biases), self.shortcut,
                               activation=self.activation, final_activation=self.final_activation,
                               batch_norm=self.batch_norm, preactivation=self.preactivation,
                               branch_scale=None if self.alphas is None else list(self.alphas))

    def member(self, m: int) -> DeepMLP:
        """Member ``m`` as a stand-alone ``DeepMLP`` with its current weights (no BatchNorm)."""
        if self.batch_norm:
            raise ValueError("this stack uses BatchNorm, which DeepMLP does not have")
        if self.preactivation or self.alphas is not None:
            raise ValueError("this stack uses pre-activation blocks or branch scalars, which "
                             "DeepMLP does not have")
        model = DeepMLP(self.widths, activation=self.activation, init=self.init,
                        shortcut=bool(self.shortcut[m]), final_activation=self.final_activation,
                        seed=self.seeds[m])
        with torch.no_grad():
            for block, w, b in zip(model.blocks, self.weights, self.biases):
                block.linear.weight.copy_(w[m])
                block.linear.bias.copy_(b[m])
        return model


# --- Per-layer gradient statistics of many seeds at once ------------------------------------------


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
    gains: Sequence[float] | None = None,
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
    """``gradflow.probes.gradient_profile`` for many seeds at once, on the batched networks above.

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

    ``gains`` (instead of ``gain``) measures every gain in the same pass: the networks of all
    (gain, seed) pairs are stacked as members, each seed's draws scaled by each gain, and the
    result has a ``gain`` column.

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
    if gains is not None and gain != 1.0:
        raise ValueError("pass either gain or gains, not both")
    gain_list = [float(gain)] if gains is None else [
        checks.positive_number("every gain", g) for g in gains]
    if not gain_list:
        raise ValueError("gains must not be empty")
    n_gains = len(gain_list)
    n_layers, n_members = probes[-1], len(seeds) * n_gains   # members: gain-major, then seed
    w32, b32, x32, readouts = _draw(
        tuple(widths), init, bias_init, tuple(seeds), n_batch, inputs is None,
        tuple(probes) if loss == "readout" else (), n_layers,
    )
    # as DeepMLP: the float32 draw times gain, in float32, then converted
    weights = [torch.cat([w if g == 1.0 else w * g for g in gain_list]).to(dtype) for w in w32]
    weights = [w.requires_grad_(weight_stats) for w in weights]
    biases = [b.repeat(n_gains, 1).to(dtype) for b in b32]
    if inputs is None:
        x = x32.repeat(n_gains, 1, 1).to(dtype)
    else:
        x = inputs.to(dtype).expand(n_members, *inputs.shape)
    x = x.detach().clone().requires_grad_(True)   # the graph the backward passes start from
    states, preacts = stacked_forward(
        x, weights, biases, float(shortcut), activation=activation,
        shortcut_scale=shortcut_scale, return_preacts=True,
    )
    frames = []
    for d in probes:
        if loss == "readout":
            top = readouts[d].repeat(n_gains, 1, 1).to(dtype)
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
        frame = pd.DataFrame({
            "seed": np.repeat(np.tile(seeds, n_gains), d),
            "depth": d,
            "layer": np.tile(np.arange(1, d + 1), n_members),
            "width": np.tile(np.asarray(widths[1:d + 1]), n_members),
            "weight_grad_mean_abs": wgrad.numpy().ravel(),
            "signal_norm": signal.numpy().ravel(),
            "preact_second_moment": q.numpy().ravel(),
            "output_second_moment": m.numpy().ravel(),
        })
        if gains is not None:
            frame.insert(0, "gain", np.repeat(gain_list, len(seeds) * d))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
