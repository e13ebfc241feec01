"""Shortcut (residual) connections, measured: why they help, where they fail, how they train.

The experiments behind the chapter "Shortcut connections". Each returns plain data (a pandas
DataFrame or a dataclass of them) and never prints; ``gradflow.residual_plots`` draws them.

1. **The seed's table, over many seeds.** ``many_seed_comparison`` repeats the seed notebook's
   experiment for thousands of seeds in one batched pass and reports, per seed, the first- and
   last-layer gradients of both networks, their outputs y and dL/dy, and the ratio of first-layer
   gradients raw and divided by |dL/dy| (every gradient of a one-output network is dL/dy times
   the gradient of y, so the second ratio compares how gradients travel, not how large the loss
   happens to be).
2. **The shape check and projection shortcuts.** ``shortcut_layout`` shows where the seed's check
   ``x.shape == layer_output.shape`` keeps a shortcut; ``with_projections`` adds He et al. (2015,
   "Deep residual learning", Eq. 2) projection shortcuts y = F(x) + W_s x where it drops one.
3. **Why it works.** For identity shortcuts x_{l+1} = x_l + F(x_l), He et al. (2016, "Identity
   mappings", Eq. 5) write dL/dx_l = dL/dx_L (I + d/dx_l sum_{i=l}^{L-1} F(x_i));
   ``identity_decomposition`` measures both terms. With shortcuts scaled by lambda (their
   section 3.1) the identity term becomes lambda^(L-l): ``lambda_scaling``.
4. **Paths.** Unrolled, n residual blocks are 2^n paths, C(n, k) of them through k branches
   (Veit et al. 2016, section 3 and Fig. 6a): ``path_length_distribution``.
   ``path_gradient_magnitudes`` measures the gradient each path length carries (their Fig. 6b-c).
5. **Variance growth and its fixes.** ``residual_stream_growth`` measures the variance of the
   residual stream with and without GPT-2's 1/sqrt(N) scaling of each branch's last layer
   (Radford et al. 2019, section 2.3) and ReZero's alpha = 0 (Bachlechner et al. 2020).
6. **Training.** ``train_depth_comparison`` trains plain and residual MLPs, with and without
   BatchNorm, of several depths on a small regression task (He et al. 2015, Fig. 1 in miniature),
   all seeds and kinds of one depth in one batched model (``StackedMLP``), and returns the loss
   curves.

ReZero (``rezero_``) and projection shortcuts (``with_projections``) use the extension points of
``gradflow.mlp.DeepMLP`` (``Block.branch_scale``, ``Block.shortcut``) without changing that module.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np
import pandas as pd
import torch
from torch import nn

from .experiments import SEED, SEED_INPUT, SEED_LAYER_SIZES
from .mlp import (
    ACTIVATIONS,
    DeepMLP,
    check_activation,
    check_init,
    initialise_linear_,
    make_generator,
)
from .models import ExampleDeepNeuralNetwork, check_layer_sizes

#: The seed notebook's activation and initialisation, by their names in ``gradflow.mlp``.
SEED_ACTIVATION = "gelu_tanh"
SEED_INIT = "default"


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    out = list(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, int) for s in out):
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    if len(set(out)) != len(out):
        raise ValueError("seeds must be distinct")
    return out


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _default_input(x: torch.Tensor | None, width: int) -> torch.Tensor:
    """``x``, or the seed's input ``[[1., 0., -1.]]`` when ``x`` is None and the width is 3."""
    if x is not None:
        return x
    if width != len(SEED_INPUT[0]):
        raise ValueError(
            f"the default input {list(SEED_INPUT)} has width {len(SEED_INPUT[0])}, but "
            f"layer_sizes[0] is {width}: pass an input x of shape (1, {width})"
        )
    return torch.tensor(SEED_INPUT)


def _activation_derivative(name: str, z: torch.Tensor) -> torch.Tensor:
    """phi'(z) elementwise, by autograd through the very function the models use."""
    with torch.enable_grad():
        leaf = z.detach().requires_grad_(True)
        out = ACTIVATIONS[name](leaf)
        (d,) = torch.autograd.grad(out, leaf, torch.ones_like(out))
    return d


# --- Many independent networks at once ------------------------------------------------------


def _fast_activation(name: str):
    """The activation as one fused op where PyTorch has one (same formula, fewer kernel calls:
    ``gelu_tanh`` equals ``nn.functional.gelu(approximate="tanh")`` to float rounding)."""
    if name == "gelu_tanh":
        return lambda a: nn.functional.gelu(a, approximate="tanh")
    if name == "gelu":
        return nn.functional.gelu
    return ACTIVATIONS[name]


def draw_stacked_weights(
    widths: Sequence[int],
    seeds: Sequence[int],
    init: str = SEED_INIT,
    gain: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every seed's weights and biases, stacked along a first "member" dimension.

    Member s holds exactly the weights of ``DeepMLP(widths, init=init, gain=gain,
    seed=seeds[s])``: a generator seeded with the seed draws each layer's W, then b, with
    PyTorch's own init functions. For ``init="default"`` that is also what ``torch.manual_seed(seed)`` followed by
    ``ExampleDeepNeuralNetwork(widths, ...)`` draws (``nn.Linear``'s reset order).

    Returns ``(weights, biases)``: per layer, tensors of shape ``(S, out, in)`` and ``(S, out)``.
    """
    widths = check_layer_sizes(list(widths))
    seeds = _check_seeds(seeds)
    init = check_init(init)
    weights = [torch.empty(len(seeds), n_out, n_in) for n_in, n_out in pairwise(widths)]
    biases = [torch.empty(len(seeds), n_out) for n_out in widths[1:]]
    for s, seed in enumerate(seeds):
        generator = make_generator(seed)
        for w, b in zip(weights, biases):
            initialise_linear_(w[s], b[s], init, gain, generator=generator)
    return [w.to(dtype) for w in weights], [b.to(dtype) for b in biases]


def stacked_forward(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    shortcut: torch.Tensor,
    *,
    activation: str = SEED_ACTIVATION,
    final_activation: bool = True,
    shortcut_scale: float = 1.0,
    batch_norm: bool = False,
    eps: float = 1e-5,
    return_states: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """Forward pass of M independent MLPs: ``x`` of shape ``(M, B, in)`` to ``(M, B, out)``.

    Layer l of member m computes a = W_l[m] h + b_l[m]; with ``batch_norm``, a is then
    batch-normalised over the B rows (training-mode BatchNorm without affine parameters, Ioffe &
    Szegedy 2015) in every layer but the last. Then h' = phi(a) (the last layer skips phi unless
    ``final_activation``), and h' += shortcut_scale * h where the width is unchanged and
    ``shortcut[m]`` is 1: the seed's rule, with ``shortcut`` a float tensor of shape ``(M,)``.
    With ``return_states`` the list [x, h_1, ..., h_L] is returned instead.
    """
    check_activation(activation)
    fn = _fast_activation(activation)
    gate = shortcut.to(x.dtype).reshape(-1, 1, 1)
    # Internally the layout is (M, features, B): a = W h + b is then one baddbmm without
    # transposes, and BatchNorm (each feature normalised over the B rows, per member) is
    # instance_norm on a contiguous tensor, one fused op.
    h = x.transpose(1, 2)
    states = [x]
    n_layers = len(weights)
    for i, (w, b) in enumerate(zip(weights, biases)):
        a = torch.baddbmm(b.unsqueeze(2), w, h)
        last = i == n_layers - 1
        if batch_norm and not last:
            a = nn.functional.instance_norm(a, eps=eps)
        out = fn(a) if (final_activation or not last) else a
        if w.shape[1] == w.shape[2]:
            skip = gate * h if shortcut_scale == 1.0 else (shortcut_scale * gate) * h
            h = skip + out
        else:
            h = out
        # The next layer reads the state through a view, so each state is in the graph and
        # torch.autograd.grad can differentiate with respect to it.
        states.append(h.transpose(1, 2))
        h = states[-1].transpose(1, 2)
    return states if return_states else states[-1]


# --- 1. The seed's table over many seeds --------------------------------------------------------


def many_seed_comparison(
    seeds: Sequence[int] = range(1000),
    layer_sizes: Sequence[int] = SEED_LAYER_SIZES,
    x: torch.Tensor | None = None,
) -> pd.DataFrame:
    """The seed notebook's experiment for every seed in ``seeds``, in one batched pass.

    For each seed: the seed's network without and with shortcuts (same weights, as after
    ``torch.manual_seed(seed)``), input ``x`` (default ``[[1., 0., -1.]]``), MSE loss against a
    zero target, mean |dL/dW| of the first and last layer. Computed in float64 from the float32
    weights, so it agrees with ``compare_shortcuts(seed)`` up to float32 rounding.

    With one output, L = y^2 and dL/dy = 2y, and every gradient is dL/dy times the corresponding
    gradient of y. So ``ratio_raw = first_shortcut / first_plain`` mixes two effects, while
    ``ratio_normalised = (first_shortcut / |dL/dy_shortcut|) / (first_plain / |dL/dy_plain|)``
    compares only how the gradient travels from y to the first layer.

    Returns one row per seed (index ``seed``) with columns ``y_plain, y_shortcut, loss_plain,
    loss_shortcut, dldy_plain, dldy_shortcut, first_plain, last_plain, first_shortcut,
    last_shortcut, ratio_raw, ratio_normalised``. A ratio is NaN where it is 0/0: in deep
    networks the last GELU can saturate so that y = 0 and every gradient is exactly zero.
    """
    sizes = check_layer_sizes(list(layer_sizes))
    if sizes[-1] != 1:
        raise ValueError(f"many_seed_comparison needs one output (layer_sizes[-1] == 1), got {sizes}")
    seeds = _check_seeds(seeds)
    x = _default_input(x, sizes[0])
    if x.shape != (1, sizes[0]):
        raise ValueError(f"x must be one input row of shape (1, {sizes[0]}), got {tuple(x.shape)}")
    n = len(seeds)
    w32, b32 = draw_stacked_weights(sizes, seeds)
    # Members 0..n-1 are the plain networks, n..2n-1 the shortcut networks, with the same weights.
    weights = [torch.cat([w, w]).double().requires_grad_(True) for w in w32]
    biases = [torch.cat([b, b]).double() for b in b32]
    gate = torch.cat([torch.zeros(n), torch.ones(n)])
    xs = x.double().expand(2 * n, *x.shape)
    y = stacked_forward(xs, weights, biases, gate)
    loss = y.pow(2).mean(dim=(1, 2))           # nn.MSELoss against zeros, per member
    grads = torch.autograd.grad(loss.sum(), [weights[0], weights[-1]])
    first, last = (g.abs().mean(dim=(1, 2)) for g in grads)
    y_mean = y.detach().reshape(-1)
    dldy = 2.0 * y_mean
    frame = pd.DataFrame({
        "seed": seeds,
        "y_plain": y_mean[:n].numpy(),
        "y_shortcut": y_mean[n:].numpy(),
        "loss_plain": loss.detach()[:n].numpy(),
        "loss_shortcut": loss.detach()[n:].numpy(),
        "dldy_plain": dldy[:n].numpy(),
        "dldy_shortcut": dldy[n:].numpy(),
        "first_plain": first[:n].numpy(),
        "last_plain": last[:n].numpy(),
        "first_shortcut": first[n:].numpy(),
        "last_shortcut": last[n:].numpy(),
    }).set_index("seed")
    frame["ratio_raw"] = frame["first_shortcut"] / frame["first_plain"]
    frame["ratio_normalised"] = (
        (frame["first_shortcut"] / frame["dldy_shortcut"].abs())
        / (frame["first_plain"] / frame["dldy_plain"].abs())
    )
    return frame


def ratio_summary(frame: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Median, quartiles and share above one of ``ratio_raw`` and ``ratio_normalised``.

    Also where ``seed`` falls: its value and its percentile (the share of seeds with a smaller
    ratio, in percent). Seeds whose ratio is undefined (NaN, see ``many_seed_comparison``) are
    left out and counted in ``n_undefined``. Returns one row per ratio.
    """
    if seed not in frame.index:
        raise ValueError(f"seed {seed} is not among the {len(frame)} seeds of the comparison")
    rows = {}
    for column in ("ratio_raw", "ratio_normalised"):
        values = frame[column].to_numpy(dtype=float)
        defined = values[~np.isnan(values)]
        at_seed = float(frame.loc[seed, column])
        rows[column] = {
            "median": float(np.median(defined)),
            "q1": float(np.quantile(defined, 0.25)),
            "q3": float(np.quantile(defined, 0.75)),
            "share_above_one": float(np.mean(defined > 1.0)),
            "seed_value": at_seed,
            "seed_percentile": float(100.0 * np.mean(defined < at_seed)),
            "n_undefined": int(len(values) - len(defined)),
        }
    return pd.DataFrame(rows).T


# --- 2. The shape check, and projection shortcuts ---------------------------------------------


def shortcut_layout(layer_sizes: Sequence[int]) -> pd.DataFrame:
    """Per layer: the widths, whether the seed's shape check keeps a shortcut, and the shortcut
    a projection network (``with_projections``) has there.

    The seed's column comes from ``ExampleDeepNeuralNetwork(...).shortcut_applied`` itself.
    """
    sizes = check_layer_sizes(list(layer_sizes))
    seed_model = ExampleDeepNeuralNetwork(sizes, use_shortcut=True)
    projected = with_projections(
        DeepMLP(sizes, activation=SEED_ACTIVATION, shortcut=True, seed=0), seed=0
    )
    return pd.DataFrame({
        "layer": range(1, len(sizes)),
        "in": sizes[:-1],
        "out": sizes[1:],
        "seed's check": ["shortcut" if s else "none" for s in seed_model.shortcut_applied],
        "with projections": projected.shortcut_kinds,
    }).set_index("layer")


def with_projections(model: DeepMLP, seed: int, all_layers: bool = False) -> DeepMLP:
    """A copy of ``model`` with a projection shortcut W_s x wherever it has no shortcut.

    He et al. (2015), Eq. 2: y = F(x, {W_i}) + W_s x, with W_s a bias-free linear map from the
    layer's input width to its output width ("option B": projections only where the width
    changes; identity shortcuts elsewhere). With ``all_layers`` every shortcut becomes a
    projection ("option C"). The projections are drawn with ``model``'s initialisation from a
    generator seeded with ``seed``, after the copy, so the main weights stay ``model``'s.
    """
    if not isinstance(model, DeepMLP):
        raise TypeError(f"with_projections needs a gradflow.DeepMLP, got {type(model).__name__}")
    out = copy.deepcopy(model)
    generator = make_generator(seed)
    dtype = model.blocks[0].linear.weight.dtype
    for block in out.blocks:
        if block.shortcut is not None and not all_layers:
            continue
        n_in, n_out = block.linear.in_features, block.linear.out_features
        projection = nn.utils.skip_init(nn.Linear, n_in, n_out, bias=False, dtype=dtype)
        initialise_linear_(projection.weight, None, out.config.init, out.config.gain,
                           generator=generator)
        block.shortcut = projection
        block.note = ""
    out.config = replace(out.config, shortcut=True, projection=True)
    return out


def without_shortcuts(model: DeepMLP) -> DeepMLP:
    """A copy of ``model`` with every shortcut removed: the plain network with the same weights."""
    if not isinstance(model, DeepMLP):
        raise TypeError(f"without_shortcuts needs a gradflow.DeepMLP, got {type(model).__name__}")
    out = copy.deepcopy(model)
    for block in out.blocks:
        block.shortcut, block.note = None, ""
    out.config = replace(out.config, shortcut=False, projection=False)
    return out


def block_weight_gradients(
    model: DeepMLP, x: torch.Tensor, target: torch.Tensor | None = None
) -> tuple[list[float], float]:
    """Mean |dL/dW_l| of each layer's main weight, and dL/dy, for the seed's MSE loss.

    L = mean((model(x) - target)^2) with a zero target by default; means taken in float64.
    dL/dy is returned for a single output (``x`` of one row, one output unit), else NaN.
    """
    y = model(x)
    if target is None:
        target = torch.zeros_like(y)
    loss = nn.functional.mse_loss(y, target)
    weights = [block.linear.weight for block in model.blocks]
    grads = torch.autograd.grad(loss, weights)
    dldy = 2.0 * (y - target).double().item() if y.numel() == 1 else float("nan")
    return [g.double().abs().mean().item() for g in grads], dldy


def projection_comparison(
    layer_sizes: Sequence[int], seed: int = SEED, x: torch.Tensor | None = None
) -> pd.DataFrame:
    """Mean |dL/dW| per layer for the plain network, the seed's shortcut network and the same
    network with projection shortcuts where the width changes, all with the same main weights
    (those of ``torch.manual_seed(seed); ExampleDeepNeuralNetwork(layer_sizes, ...)``).

    Returns one row per (network, layer) with columns ``network, layer, shortcut, grad``,
    ``dldy`` and ``grad_over_dldy`` = grad / |dL/dy| (see ``many_seed_comparison``).
    """
    sizes = check_layer_sizes(list(layer_sizes))
    x = _default_input(x, sizes[0])
    identity = DeepMLP(sizes, activation=SEED_ACTIVATION, init=SEED_INIT, shortcut=True, seed=seed)
    networks = {
        "plain": without_shortcuts(identity),
        "seed's shortcuts": identity,
        "projection shortcuts": with_projections(identity, seed=seed + 1),
    }
    rows = []
    for name, model in networks.items():
        grads, dldy = block_weight_gradients(model, x)
        for layer, (kind, grad) in enumerate(zip(model.shortcut_kinds, grads), start=1):
            rows.append({"network": name, "layer": layer, "shortcut": kind, "grad": grad,
                         "dldy": dldy, "grad_over_dldy": grad / abs(dldy)})
    return pd.DataFrame(rows)


# --- 3. Why it works: the identity term and lambda-scaled shortcuts ----------------------------


def stream_gradient_norms(
    model: DeepMLP, x: torch.Tensor, readout: torch.Tensor
) -> list[float]:
    """||dL/dh_l|| for l = 0 (the input) .. L (the output), for the loss L = sum(readout * y).

    h_l is block l's output; the norm is taken over the whole batch, in float64.
    """
    states = [x.detach().clone().requires_grad_(True)]
    for block in model.blocks:
        states.append(block(states[-1]))
    if readout.shape != states[-1].shape:
        raise ValueError(
            f"readout shape {tuple(readout.shape)} does not match the output shape "
            f"{tuple(states[-1].shape)}"
        )
    loss = (readout * states[-1]).sum()
    grads = torch.autograd.grad(loss, states)
    return [g.double().norm().item() for g in grads]


def identity_decomposition(
    seed: int = SEED, layer_sizes: Sequence[int] = SEED_LAYER_SIZES, x: torch.Tensor | None = None
) -> pd.DataFrame:
    """He et al. (2016) Eq. 5, measured on the seed's shortcut network.

    Take the run of consecutive identity-shortcut blocks that starts at the first one; call its
    output x_L. For the input x_l of each block l in the run, the Jacobian is
    dx_L/dx_l = I + R_l with R_l = d/dx_l sum_{i>=l} F(x_i), so (row-vector gradients)

        dL/dx_l = dL/dx_L + dL/dx_L R_l.

    Returns one row per block l of the run with the norms of the three terms (``identity_term``,
    ``branch_term``, ``total``), the spectral norm of R_l, ``total_over_top`` = ||dL/dx_l|| /
    ||dL/dx_L|| and ``plain_total_over_top``: the same ratio in the plain network with the same
    weights, whose Jacobian has no identity term.
    """
    sizes = check_layer_sizes(list(layer_sizes))
    x = _default_input(x, sizes[0])
    if x.shape[0] != 1:
        raise ValueError(f"identity_decomposition needs a single input row, got {tuple(x.shape)}")
    model = DeepMLP(sizes, activation=SEED_ACTIVATION, init=SEED_INIT, shortcut=True, seed=seed)
    model = model.double()
    kinds = model.shortcut_kinds
    if "identity" not in kinds:
        raise ValueError(f"layer_sizes {sizes} give no layer with an identity shortcut")
    start = kinds.index("identity")
    stop = start
    while stop < len(kinds) and kinds[stop] == "identity":
        stop += 1
    plain = without_shortcuts(model)

    def gradients(net: DeepMLP) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
        """The states x_0 .. x_L of ``net`` and dL/dx for each, for the seed's loss."""
        states = [x.double().requires_grad_(True)]
        for block in net.blocks:
            states.append(block(states[-1]))
        return states, torch.autograd.grad(states[-1].pow(2).mean(), states)

    def run(h: torch.Tensor, first: int) -> torch.Tensor:
        for block in model.blocks[first:stop]:
            h = block(h)
        return h

    states, grads = gradients(model)
    _, plain_grads = gradients(plain)
    top = grads[stop][0]
    top_norm = top.norm().item()
    plain_top_norm = plain_grads[stop][0].norm().item()
    eye = torch.eye(top.shape[0], dtype=top.dtype)
    rows = []
    for layer in range(start, stop):
        jac = torch.autograd.functional.jacobian(
            lambda h, first=layer: run(h, first), states[layer].detach()[0]
        )
        residual_part = jac - eye
        total = grads[layer][0].norm().item()
        rows.append({
            "block": layer + 1,
            "identity_term": top_norm,
            "branch_term": (top @ residual_part).norm().item(),
            "total": total,
            "residual_spectral_norm": torch.linalg.matrix_norm(residual_part, 2).item(),
            "total_over_top": total / top_norm,
            "plain_total_over_top": plain_grads[layer][0].norm().item() / plain_top_norm,
        })
    return pd.DataFrame(rows).set_index("block")


def lambda_scaling(
    lambdas: Sequence[float] = (0.5, 0.9, 1.0),
    depth: int = 50,
    width: int = 32,
    seeds: Sequence[int] = range(5),
    batch: int = 16,
    gains: Sequence[float] = (1.0,),
    activation: str = SEED_ACTIVATION,
) -> pd.DataFrame:
    """||dL/dh_l|| through a deep network h_l = lambda h_{l-1} + phi(W_l h_{l-1} + b_l).

    He et al. (2016), section 3.1: with h(x) = lambda x the identity term of Eq. 5 becomes the
    product of the lambdas, lambda^(L-l), which vanishes (lambda < 1) or explodes (lambda > 1)
    with depth; the branches add their own terms. Member (seed, gain) is ``DeepMLP(depth=depth,
    width=width, activation=activation, gain=gain, shortcut=True, shortcut_scale=lambda,
    seed=seed)``, all seeds of one (lambda, gain) computed in one batched pass; ``gain``
    scales the branch weights (small gains leave the identity term alone). The input and the
    readout r of the loss L = sum(r * y) are standard normal draws from a generator seeded with
    ``seed + 10_000``.

    Returns one row per (gain, lambda, seed, layer l = 0..depth) with ``signal_norm`` =
    ||dL/dh_l||, ``ratio_to_top`` = ||dL/dh_l|| / ||dL/dh_L|| and ``identity_prediction`` =
    lambda^(L-l).
    """
    depth = _check_positive_int("depth", depth)
    width = _check_positive_int("width", width)
    batch = _check_positive_int("batch", batch)
    seeds = _check_seeds(seeds)
    for lam in lambdas:
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam > 0:
            raise ValueError(f"every lambda must be a positive number, got {lam!r}")
    inputs, readouts = [], []
    for seed in seeds:
        generator = make_generator(seed + 10_000)
        inputs.append(torch.randn(batch, width, generator=generator))
        readouts.append(torch.randn(batch, width, generator=generator))
    x, readout = torch.stack(inputs).double(), torch.stack(readouts).double()
    gate = torch.ones(len(seeds))
    rows = []
    for gain in gains:
        weights, biases = draw_stacked_weights([width] * (depth + 1), seeds, SEED_INIT, gain)
        weights = [w.double() for w in weights]
        biases = [b.double() for b in biases]
        for lam in lambdas:
            start = x.clone().requires_grad_(True)
            states = stacked_forward(start, weights, biases, gate, activation=activation,
                                     shortcut_scale=float(lam), return_states=True)
            grads = torch.autograd.grad((readout * states[-1]).sum(), states)
            norms = torch.stack([g.norm(dim=(1, 2)) for g in grads], dim=1)   # (S, L + 1)
            for s, seed in enumerate(seeds):
                for layer in range(depth + 1):
                    rows.append({
                        "gain": float(gain), "lambda": float(lam), "seed": seed, "layer": layer,
                        "signal_norm": norms[s, layer].item(),
                        "ratio_to_top": (norms[s, layer] / norms[s, -1]).item(),
                        "identity_prediction": float(lam) ** (depth - layer),
                    })
    return pd.DataFrame(rows)


def lambda_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (gain, lambda): the first/last ratio ||dL/dh_0|| / ||dL/dh_L|| (geometric mean over seeds),
    lambda^L, and the measured factor per layer, ratio^(1/L)."""
    depth = int(frame["layer"].max())
    first = frame[frame["layer"] == 0]
    rows = []
    for (gain, lam), group in first.groupby(["gain", "lambda"]):
        ratio = float(np.exp(np.log(group["ratio_to_top"]).mean()))
        rows.append({"gain": float(gain), "lambda": float(lam), "depth": depth,
                     "ratio_first_last": ratio, "lambda_power_depth": float(lam) ** depth,
                     "factor_per_layer": ratio ** (1.0 / depth)})
    return pd.DataFrame(rows).set_index(["gain", "lambda"])


# --- 4. Paths -------------------------------------------------------------------------------------


def path_length_distribution(n_blocks: int) -> pd.DataFrame:
    """The lengths of the 2^n paths through n residual blocks (Veit et al. 2016, section 3).

    Unrolling x_{i+1} = x_i + F_i(x_i) gives one path per subset of blocks whose branch it
    takes; C(n, k) paths take k branches. Returns one row per length k = 0..n with the exact
    integer ``n_paths`` = C(n, k) and ``share`` = C(n, k) / 2^n.
    """
    n = _check_positive_int("n_blocks", n_blocks)
    counts = [math.comb(n, k) for k in range(n + 1)]
    total = 2 ** n
    return pd.DataFrame({
        "length": range(n + 1),
        "n_paths": pd.array(counts, dtype=object),
        "share": [c / total for c in counts],
    }).set_index("length")


def path_length_share(n_blocks: int, low: int, high: int) -> float:
    """The share of the 2^n paths whose length k satisfies low <= k <= high (exact, then float)."""
    n = _check_positive_int("n_blocks", n_blocks)
    if not 0 <= low <= high <= n:
        raise ValueError(f"need 0 <= low <= high <= n_blocks = {n}, got low={low}, high={high}")
    return sum(math.comb(n, k) for k in range(low, high + 1)) / 2 ** n


def _check_residual_chain(model: DeepMLP) -> None:
    if not isinstance(model, DeepMLP):
        raise TypeError(f"needs a gradflow.DeepMLP, got {type(model).__name__}")
    for i, block in enumerate(model.blocks, start=1):
        if block.shortcut_kind != "identity" or block.shortcut_scale != 1.0:
            raise ValueError(
                f"every block needs an identity shortcut with scale 1 for the path view; "
                f"block {i} has shortcut={block.shortcut_kind}, scale={block.shortcut_scale:g}"
            )
        if not (isinstance(block.branch_scale, float) and block.branch_scale == 1.0):
            raise ValueError(f"block {i} has a branch scale; the path view needs 1")


def _branch_factors(model: DeepMLP, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per block, (phi'(z), W): the branch Jacobian at each input row is diag(phi'(z)) W."""
    factors = []
    h = x.detach()
    with torch.no_grad():
        for block in model.blocks:
            z = block.linear(h)
            factors.append((_activation_derivative(block.activation.name, z), block.linear.weight))
            h = block(h)
    return factors


def _propagate_paths(
    top: torch.Tensor, factors: list[tuple[torch.Tensor, torch.Tensor]], masks: torch.Tensor
) -> torch.Tensor:
    """Back-propagate ``top`` (B, w) along the paths given by ``masks`` (P, n blocks, bool):
    through block k's branch where the mask is true, through its shortcut where it is false.
    Returns the gradients at the input, shape (P, B, w)."""
    v = top.unsqueeze(0).expand(masks.shape[0], *top.shape).clone()
    for k in range(len(factors) - 1, -1, -1):
        slope, weight = factors[k]
        branch = (v * slope) @ weight
        v = torch.where(masks[:, k].reshape(-1, 1, 1), branch, v)
    return v


def path_gradient(
    model: DeepMLP, x: torch.Tensor, readout: torch.Tensor, blocks: Sequence[int]
) -> torch.Tensor:
    """The part of dL/dx (L = sum(readout * model(x))) carried by one path: the path through
    the branches of ``blocks`` (0-based) and the shortcuts of all other blocks.

    Summed over all 2^n subsets this is the whole gradient dL/dx (the chain rule through
    prod_k (I + J_k) expanded, Veit et al. 2016, Eq. 2 unrolled).
    """
    _check_residual_chain(model)
    n = len(model.blocks)
    chosen = set(blocks)
    if not chosen <= set(range(n)):
        raise ValueError(f"blocks must be indices 0..{n - 1}, got {sorted(chosen)}")
    mask = torch.tensor([[k in chosen for k in range(n)]])
    return _propagate_paths(readout, _branch_factors(model, x), mask)[0]


def path_gradient_magnitudes(
    model: DeepMLP, x: torch.Tensor, readout: torch.Tensor, n_samples: int = 64, seed: int = 0
) -> pd.DataFrame:
    """Veit et al. (2016), section 4.3 and Fig. 6: how much gradient paths of each length carry.

    For each length k = 0..n, ``n_samples`` paths of length k are drawn uniformly (a random
    k-subset of the blocks, from a generator seeded with ``seed``), and for each the gradient
    that reaches the input along that path alone is measured (Frobenius norm over the batch).
    ``magnitude`` is its mean over the samples; ``total`` = C(n, k) * magnitude is the gradient
    magnitude all paths of length k contribute together; ``share_of_total`` normalises it.
    """
    _check_residual_chain(model)
    n_samples = _check_positive_int("n_samples", n_samples)
    n = len(model.blocks)
    generator = make_generator(seed)
    lengths = torch.arange(n + 1).repeat_interleave(n_samples)
    ranks = torch.rand(len(lengths), n, generator=generator).argsort(dim=1).argsort(dim=1)
    masks = ranks < lengths.unsqueeze(1)
    factors = _branch_factors(model, x)
    with torch.no_grad():
        grads = _propagate_paths(readout.detach(), factors, masks)
    norms = grads.double().flatten(1).norm(dim=1).reshape(n + 1, n_samples)
    magnitude = norms.mean(dim=1).numpy()
    counts = np.array([float(math.comb(n, k)) for k in range(n + 1)])
    total = counts * magnitude
    return pd.DataFrame({
        "length": range(n + 1),
        "magnitude": magnitude,
        "n_paths": counts,
        "total": total,
        "share_of_total": total / total.sum(),
    }).set_index("length")


def path_experiment(
    n_blocks: int = 54, width: int = 32, batch: int = 16, n_samples: int = 32, seed: int = 0
) -> pd.DataFrame:
    """``path_gradient_magnitudes`` on ``DeepMLP(depth=n_blocks, width=width, activation=
    "gelu_tanh", shortcut=True, seed=seed)`` at initialisation: every layer is a residual block
    with the seed's GELU and PyTorch's default initialisation. The input and the readout are
    standard normal, drawn from a generator seeded with ``seed + 10_000``."""
    model = DeepMLP(depth=n_blocks, width=width, activation=SEED_ACTIVATION, shortcut=True,
                    seed=seed)
    generator = make_generator(seed + 10_000)
    x = torch.randn(batch, width, generator=generator)
    readout = torch.randn(batch, width, generator=generator)
    return path_gradient_magnitudes(model, x, readout, n_samples=n_samples, seed=seed)


# --- 5. The residual stream's variance, and its fixes -------------------------------------------

NORMS = ("none", "pre_ln")
SCALINGS = ("none", "gpt2", "rezero")


class ResidualStack(nn.Module):
    """n blocks h_l = h_{l-1} + alpha * W2 phi(W1 N(h_{l-1})), a transformer's MLP sub-layer alone.

    ``norm``: N is the identity (``"none"``) or a LayerNorm without affine parameters
    (``"pre_ln"``, as in GPT-2's Pre-LN blocks; Ba et al. 2016). Weights are drawn with zero
    biases, W1 ~ N(0, 2 / width) (He et al. 2015, "Delving deep", Eq. 10) and W2 ~ N(0, 1 /
    hidden), so that a branch's output has about the variance of its input. ``scaling``:

    - ``"none"``: as drawn, alpha = 1;
    - ``"gpt2"``: W2 multiplied by 1/sqrt(N) with N = n_blocks residual branches (Radford et al.
      2019, section 2.3; a GPT-2 block holds two branches, hence 1/sqrt(2 n_layer) there);
    - ``"rezero"``: alpha is a learnable scalar per block initialised at 0 (Bachlechner et al.
      2020), so that every block starts as the identity. SkipInit (De & Smith 2020) is the same
      at initialisation.
    """

    def __init__(
        self, n_blocks: int, width: int, *, hidden: int | None = None, norm: str = "none",
        scaling: str = "none", activation: str = SEED_ACTIVATION, seed: int | torch.Generator,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        n_blocks = _check_positive_int("n_blocks", n_blocks)
        width = _check_positive_int("width", width)
        hidden = width if hidden is None else _check_positive_int("hidden", hidden)
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; valid values are {', '.join(map(repr, NORMS))}")
        if scaling not in SCALINGS:
            raise ValueError(
                f"unknown scaling {scaling!r}; valid values are {', '.join(map(repr, SCALINGS))}"
            )
        self.norm, self.scaling = norm, scaling
        self.activation = check_activation(activation)
        generator = make_generator(seed)
        last_scale = 1.0 / math.sqrt(n_blocks) if scaling == "gpt2" else 1.0
        self.w1 = nn.ParameterList()
        self.w2 = nn.ParameterList()
        for _ in range(n_blocks):
            w1 = torch.randn(hidden, width, generator=generator, dtype=dtype) * math.sqrt(2 / width)
            w2 = torch.randn(width, hidden, generator=generator, dtype=dtype) / math.sqrt(hidden)
            self.w1.append(nn.Parameter(w1))
            self.w2.append(nn.Parameter(w2 * last_scale))
        if scaling == "rezero":
            self.alpha = nn.Parameter(torch.zeros(n_blocks, dtype=dtype))
        else:
            self.register_buffer("alpha", torch.ones(n_blocks, dtype=dtype))

    def branch(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Block i's residual branch W2 phi(W1 N(h)), before alpha."""
        if self.norm == "pre_ln":
            h = nn.functional.layer_norm(h, h.shape[-1:])
        return ACTIVATIONS[self.activation](h @ self.w1[i].T) @ self.w2[i].T

    def hidden_states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream h_0 = x, h_1, ..., h_N."""
        states = [x]
        for i in range(len(self.w1)):
            states.append(states[-1] + self.alpha[i] * self.branch(i, states[-1]))
        return states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden_states(x)[-1]


def residual_stream_growth(
    n_blocks: int = 50,
    width: int = 64,
    batch: int = 128,
    seeds: Sequence[int] = (0, 1, 2),
    norms: Sequence[str] = NORMS,
    scalings: Sequence[str] = SCALINGS,
) -> pd.DataFrame:
    """Variance of the residual stream h_l, and ||dL/dh_l||, for every (norm, scaling) pair.

    The input x and the readout r of the loss L = sum(r * h_N) are standard normal (generator
    seeded with ``seed + 10_000``); ``ResidualStack(..., seed=seed)`` draws the weights.
    Returns one row per (norm, scaling, seed, layer l = 0..N) with ``variance`` (over batch and
    features, float64) and ``grad_norm`` = ||dL/dh_l||.
    """
    seeds = _check_seeds(seeds)
    rows = []
    for norm in norms:
        for scaling in scalings:
            for seed in seeds:
                stack = ResidualStack(n_blocks, width, norm=norm, scaling=scaling, seed=seed)
                generator = make_generator(seed + 10_000)
                x = torch.randn(batch, width, generator=generator, dtype=torch.float64)
                readout = torch.randn(batch, width, generator=generator, dtype=torch.float64)
                x.requires_grad_(True)
                states = stack.hidden_states(x)
                grads = torch.autograd.grad((readout * states[-1]).sum(), states)
                for layer, (h, g) in enumerate(zip(states, grads)):
                    rows.append({"norm": norm, "scaling": scaling, "seed": seed, "layer": layer,
                                 "variance": h.detach().var().item(),
                                 "grad_norm": g.norm().item()})
    return pd.DataFrame(rows)


def stream_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (norm, scaling): the final variance Var(h_N) / Var(h_0) and the gradient ratio
    ||dL/dh_0|| / ||dL/dh_N||, each a geometric mean over seeds."""
    depth = int(frame["layer"].max())
    rows = []
    for (norm, scaling), group in frame.groupby(["norm", "scaling"], sort=False):
        by_seed = group.set_index(["seed", "layer"])
        seeds = group["seed"].unique()
        var_ratio = [by_seed.loc[(s, depth), "variance"] / by_seed.loc[(s, 0), "variance"]
                     for s in seeds]
        grad_ratio = [by_seed.loc[(s, 0), "grad_norm"] / by_seed.loc[(s, depth), "grad_norm"]
                      for s in seeds]
        rows.append({"norm": norm, "scaling": scaling,
                     "variance_growth": float(np.exp(np.mean(np.log(var_ratio)))),
                     "gradient_ratio_first_last": float(np.exp(np.mean(np.log(grad_ratio))))})
    return pd.DataFrame(rows).set_index(["norm", "scaling"])


def rezero_(model: DeepMLP) -> DeepMLP:
    """ReZero (Bachlechner et al. 2020) in place: every block that has a shortcut gets a
    learnable branch scale alpha = 0, so h = S(x) + alpha * F(x) starts as h = S(x).

    Blocks without a shortcut keep their branch (alpha = 0 there would cut the network).
    Uses ``Block.branch_scale``, the extension point ``gradflow.mlp`` provides. Returns ``model``.
    """
    if not isinstance(model, DeepMLP):
        raise TypeError(f"rezero_ needs a gradflow.DeepMLP, got {type(model).__name__}")
    dtype = model.blocks[0].linear.weight.dtype
    for block in model.blocks:
        if block.shortcut is not None:
            block.branch_scale = nn.Parameter(torch.zeros((), dtype=dtype))
    return model


def rezero_gradients(
    layer_sizes: Sequence[int] = SEED_LAYER_SIZES, seed: int = SEED, x: torch.Tensor | None = None
) -> pd.DataFrame:
    """The seed's shortcut network with ReZero (``rezero_``): per layer, the largest |dL/dW| of
    the branch weight and dL/dalpha (NaN where the layer has no alpha), for the seed's loss.

    With alpha = 0 a residual block's branch does not reach the output, so its weights get a
    gradient of exactly zero; dL/dalpha = dL/dh . F(x) is not zero, so alpha moves at the first
    step and the branch weights start learning at the second (Bachlechner et al. 2020).
    """
    sizes = check_layer_sizes(list(layer_sizes))
    x = _default_input(x, sizes[0])
    model = rezero_(DeepMLP(sizes, activation=SEED_ACTIVATION, shortcut=True, seed=seed))
    loss = nn.functional.mse_loss(model(x), torch.zeros(x.shape[0], sizes[-1]))
    alphas = {i: b.branch_scale for i, b in enumerate(model.blocks)
              if isinstance(b.branch_scale, nn.Parameter)}
    weights = [b.linear.weight for b in model.blocks]
    grads = torch.autograd.grad(loss, weights + list(alphas.values()))
    alpha_grads = dict(zip(alphas, grads[len(weights):]))
    rows = []
    for i, (block, g) in enumerate(zip(model.blocks, grads), start=1):
        alpha = alpha_grads.get(i - 1)
        rows.append({"layer": i, "shortcut": block.shortcut_kind,
                     "max_abs_weight_grad": g.double().abs().max().item(),
                     "dL_dalpha": float("nan") if alpha is None else alpha.item()})
    return pd.DataFrame(rows).set_index("layer")


# --- 6. Training plain and residual networks ---------------------------------------------------

#: The networks ``train_depth_comparison`` trains: (shortcut, BatchNorm) per kind.
KINDS = {
    "plain": (False, False),
    "residual": (True, False),
    "plain_bn": (False, True),
    "residual_bn": (True, True),
}


@dataclass(frozen=True)
class RegressionTask:
    """Inputs x ~ N(0, I) and targets y = tanh(x U) v from a random teacher, standardised to mean
    0 and variance 1 (so predicting the mean gives a loss of about 1)."""

    x: torch.Tensor
    y: torch.Tensor
    seed: int


def make_regression_task(
    n_samples: int = 64, dim: int = 8, teacher_width: int = 64, seed: int = 0
) -> RegressionTask:
    """A small synthetic regression task: a random one-hidden-layer tanh teacher.

    U ~ N(0, 4 / dim) (so tanh works in its non-linear range), v ~ N(0, 1), all drawn from a
    generator seeded with ``seed``; y is standardised over the sample.
    """
    for name, value in (("n_samples", n_samples), ("dim", dim), ("teacher_width", teacher_width)):
        _check_positive_int(name, value)
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2 (y is standardised), got {n_samples}")
    generator = make_generator(seed)
    x = torch.randn(n_samples, dim, generator=generator)
    u = torch.randn(dim, teacher_width, generator=generator) * (2.0 / math.sqrt(dim))
    v = torch.randn(teacher_width, 1, generator=generator)
    y = torch.tanh(x @ u) @ v
    y = (y - y.mean()) / y.std()
    return RegressionTask(x, y, seed)


class StackedMLP(nn.Module):
    """M independent MLPs trained as one module. Without ``batch_norm``, member m is
    ``DeepMLP(widths, activation=..., init=..., shortcut=shortcut[m], final_activation=...,
    seed=seeds[m])``; with it, every hidden layer also batch-normalises its pre-activation
    (``stacked_forward``), as the plain and residual networks of He et al. (2015) do.

    Batching the members (``torch.baddbmm``) makes training many small networks affordable on a
    CPU. The members do not interact: the loss is the sum of the members' losses, and Adam's
    update is elementwise, so each member trains exactly as it would alone.
    """

    def __init__(
        self,
        widths: Sequence[int],
        seeds: Sequence[int],
        shortcut: Sequence[bool],
        *,
        batch_norm: bool = False,
        activation: str = SEED_ACTIVATION,
        init: str = SEED_INIT,
        final_activation: bool = False,
    ):
        super().__init__()
        self.widths = check_layer_sizes(list(widths))
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
        self.seeds = seeds
        unique = sorted(set(seeds))
        weights, biases = draw_stacked_weights(self.widths, unique, init)
        index = torch.tensor([unique.index(s) for s in seeds])
        self.weights = nn.ParameterList([nn.Parameter(w[index].clone()) for w in weights])
        self.biases = nn.ParameterList([nn.Parameter(b[index].clone()) for b in biases])
        self.register_buffer("shortcut", torch.tensor([float(bool(s)) for s in shortcut]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``(B, in)`` (shared by all members) or ``(M, B, in)``."""
        if x.dim() == 2:
            x = x.expand(len(self.seeds), *x.shape)
        return stacked_forward(x, list(self.weights), list(self.biases), self.shortcut,
                               activation=self.activation, final_activation=self.final_activation,
                               batch_norm=self.batch_norm)

    def member(self, m: int) -> DeepMLP:
        """Member ``m`` as a stand-alone ``DeepMLP`` with its current weights (no BatchNorm)."""
        if self.batch_norm:
            raise ValueError("this stack uses BatchNorm, which DeepMLP does not have")
        model = DeepMLP(self.widths, activation=self.activation, init=self.init,
                        shortcut=bool(self.shortcut[m]), final_activation=self.final_activation,
                        seed=self.seeds[m])
        with torch.no_grad():
            for block, w, b in zip(model.blocks, self.weights, self.biases):
                block.linear.weight.copy_(w[m])
                block.linear.bias.copy_(b[m])
        return model


class _Threads:
    """Run a block with ``n`` torch threads, then restore the previous setting. Small batched
    ops gain nothing from a second thread, and on a busy machine threads wait for each other."""

    def __init__(self, n: int):
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> None:
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)


@dataclass(frozen=True)
class TrainingComparison:
    """Loss curves of plain and residual MLPs, with and without BatchNorm, of several depths.

    Attributes:
        curves: one row per (depth, kind, seed, step) with the training ``loss`` (MSE) of the
            parameters *before* that step's update; the last step (= ``steps``) is the loss
            after the final update.
        initial_gradients: one row per (depth, kind, seed): mean |dL/dW| of the first and the
            last layer at initialisation and their ratio ``first_over_last``.
        seconds: wall-clock time of the whole comparison.
    """

    curves: pd.DataFrame
    initial_gradients: pd.DataFrame
    seconds: float


def train_depth_comparison(
    depths: Sequence[int] = (8, 20, 50),
    kinds: Sequence[str] = tuple(KINDS),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    width: int = 32,
    steps: int = 300,
    lr: float = 1e-3,
    activation: str = SEED_ACTIVATION,
    task: RegressionTask | None = None,
    threads: int = 1,
) -> TrainingComparison:
    """Train every (kind, seed) network of each depth with full-batch Adam for ``steps`` steps.

    A network of depth D has widths ``[dim] + [width] * (D - 1) + [1]``, the seed's GELU (tanh
    form), PyTorch's default initialisation and a linear output. ``"plain"``: no shortcuts;
    ``"residual"``: identity shortcuts on the D - 2 layers whose width is unchanged (the seed's
    rule); ``"plain_bn"`` and ``"residual_bn"``: the same with BatchNorm before each hidden
    activation, as in He et al. (2015). Networks with the same seed start from the same
    weights. He et al. 2015, Fig. 1 in miniature: the question is the training loss.
    """
    depths = [_check_positive_int("depth", d) for d in depths]
    if min(depths) < 2:
        raise ValueError(f"depths must be at least 2 (one hidden layer), got {depths}")
    kinds = list(kinds)
    if not kinds or any(k not in KINDS for k in kinds):
        raise ValueError(f"kinds must be some of {', '.join(map(repr, KINDS))}, got {kinds!r}")
    seeds = _check_seeds(seeds)
    steps = _check_positive_int("steps", steps)
    width = _check_positive_int("width", width)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    task = make_regression_task() if task is None else task
    start = time.perf_counter()
    curves, initial = [], []
    with _Threads(_check_positive_int("threads", threads)):
        for depth in depths:
            widths = [task.x.shape[1]] + [width] * (depth - 1) + [task.y.shape[1]]
            for norm in (False, True):
                members = [(k, s) for k in kinds if KINDS[k][1] == norm for s in seeds]
                if not members:
                    continue
                model = StackedMLP(widths, [s for _, s in members],
                                   shortcut=[KINDS[k][0] for k, _ in members], batch_norm=norm,
                                   activation=activation)
                history, grads = _train(model, task, steps, lr)
                for m, (kind, seed) in enumerate(members):
                    curves.append(pd.DataFrame({"depth": depth, "kind": kind, "seed": seed,
                                                "step": np.arange(steps + 1),
                                                "loss": history[:, m]}))
                    first, last = grads[0][m], grads[1][m]
                    initial.append({"depth": depth, "kind": kind, "seed": seed, "first": first,
                                    "last": last, "first_over_last": first / last})
    order = {k: i for i, k in enumerate(kinds)}
    curves_frame = pd.concat(curves, ignore_index=True)
    curves_frame = curves_frame.sort_values(
        ["depth", "kind", "seed", "step"], key=lambda c: c.map(order) if c.name == "kind" else c,
        kind="stable",
    ).reset_index(drop=True)
    return TrainingComparison(
        curves=curves_frame,
        initial_gradients=pd.DataFrame(initial),
        seconds=time.perf_counter() - start,
    )


def _train(
    model: StackedMLP, task: RegressionTask, steps: int, lr: float
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Full-batch Adam; returns the per-member loss before each step (and after the last) and
    the first and last layer's mean |dL/dW| at initialisation."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    history = np.empty((steps + 1, len(model.seeds)))
    initial = (np.empty(0), np.empty(0))
    for step in range(steps + 1):
        per_member = (model(task.x) - task.y).pow(2).mean(dim=(1, 2))
        history[step] = per_member.detach().numpy()
        if step == steps:
            break
        optimiser.zero_grad()
        per_member.sum().backward()
        if step == 0:
            initial = tuple(
                w.grad.double().abs().mean(dim=(1, 2)).numpy()
                for w in (model.weights[0], model.weights[-1])
            )
        optimiser.step()
    return history, initial


def final_losses(curves: pd.DataFrame) -> pd.DataFrame:
    """The final training loss per (depth, kind): median, min and max over seeds."""
    last = curves[curves["step"] == curves["step"].max()]
    return last.groupby(["depth", "kind"], sort=False)["loss"].agg(["median", "min", "max"])
