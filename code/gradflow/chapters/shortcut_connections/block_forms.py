"""Where the ReLU sits in a residual block: after the addition (the original ResNet, He et al.
2016 "Deep residual learning"), or inside the branch with nothing on the shortcut (full
pre-activation, He et al. 2016 "Identity mappings", Fig. 4(a) against 4(e)). Part of the chapter
"Shortcut connections" (``book/shortcut_connections.md``).

With one weight layer per block, BatchNorm (training mode, no affine parameters) and ReLU:

- ``"post"``: h' = relu(h + BN(W h + b)). The ReLU sits on the shortcut path, so the identity
  term of the block's Jacobian is diag(1[h + BN(W h + b) > 0]), not I.
- ``"pre"``: h' = h + W relu(BN(h)) + b (``gradflow.networks.stacked``'s ``preactivation``
  blocks). The identity term is I.

A network's first layer reads its input (``"post"``: relu(BN(W x + b)); ``"pre"``: W x + b,
a stem) and its last is linear, as in ``StackedMLP``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from ... import checks
from ...networks.probing import weights_and_probe_data
from ...networks.stacked import StackedMLP, stacked_forward
from ...studies import Study
from ...tasks.runs import STUDY_TASK, paired_log10, train_arms

FORMS = ("post", "pre")


def post_activation_forward(x: torch.Tensor, weights: Sequence[torch.Tensor],
                            biases: Sequence[torch.Tensor], *, last_linear: bool = True,
                            eps: float = 1e-5) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The ``"post"`` network on ``x`` of shape (M, B, in) for M stacked members: the states
    [x, h_1, ...] and the sums [s_1, ...] that each ReLU reads (s = h + BN(W h + b) where the
    width is unchanged, BN(W x + b) where it changes). With ``last_linear`` the last layer is
    W h + b alone (a linear head; its entry of the sums is that output)."""
    h = x.transpose(1, 2)   # (M, features, B): BatchNorm over B is instance_norm
    states, sums = [x], []
    for i, (w, b) in enumerate(zip(weights, biases)):
        a = torch.baddbmm(b.unsqueeze(2), w, h)
        if last_linear and i == len(weights) - 1:
            s = out = a
        else:
            s = nn.functional.instance_norm(a, eps=eps)
            if w.shape[1] == w.shape[2]:
                s = h + s
            out = torch.relu(s)
        sums.append(s.transpose(1, 2))
        states.append(out.transpose(1, 2))
        h = states[-1].transpose(1, 2)
    return states, sums


def forms_at_initialisation(depth: int = 50, width: int = 64, batch: int = 64,
                            seeds: Sequence[int] = range(4)) -> pd.DataFrame:
    """Both forms of a ``depth``-block network of square layers at Kaiming's initialisation
    (the same weights, inputs ``randn(batch, width)`` and readout for both), float64.

    The loss is <r, h_depth>. One row per (form, seed, block l = 1..depth): ``grad_norm`` =
    ||dL/dh_{l-1}|| relative to ||dL/dh_{depth-1}|| (the gradient at block l's input, relative to
    the last block's input), ``stream_var`` (the variance of h_l over batch and units) and
    ``identity_kept``, the share of the identity term the block passes on: for ``"post"`` the
    share of units whose sum is positive (the ReLU on the shortcut zeroes the rest), for
    ``"pre"`` exactly 1.
    """
    depth, width, batch = (checks.positive_int(n, v) for n, v in
                           (("depth", depth), ("width", width), ("batch", batch)))
    if depth < 2 or batch < 2:
        raise ValueError(f"depth and batch must be at least 2 (BatchNorm needs a batch), got "
                         f"depth={depth}, batch={batch}")
    seeds = checks.seeds(seeds)
    weights, biases, x, readout = weights_and_probe_data([width] * (depth + 1), seeds, "kaiming",
                                                         batch)
    rows = []
    for form in FORMS:
        inputs = x.clone().requires_grad_(True)
        if form == "post":
            states, sums = post_activation_forward(inputs, weights, biases, last_linear=False)
            kept = [(s > 0).double().mean(dim=(1, 2)) for s in sums]
        else:
            states = stacked_forward(inputs, weights, biases, 1.0, activation="relu",
                                     final_activation=False, batch_norm=True, preactivation=True,
                                     return_states=True)
            kept = [torch.ones(len(seeds), dtype=torch.float64)] * depth
        grads = torch.autograd.grad(states[depth], states[:depth], readout)
        norms = torch.stack([g.pow(2).sum(dim=(1, 2)).sqrt() for g in grads], 1)
        norms = norms / norms[:, -1:]
        for s, seed in enumerate(seeds):
            for layer in range(1, depth + 1):
                rows.append({"form": form, "seed": seed, "layer": layer,
                             "grad_norm": float(norms[s, layer - 1]),
                             "stream_var": float(states[layer][s].detach().var(unbiased=False)),
                             "identity_kept": float(kept[layer - 1][s])})
    return pd.DataFrame(rows)


def preactivation_growth(depth: int = 50, width: int = 64, batch: int = 64,
                         seeds: Sequence[int] = range(4), *, batch_norm: bool = True) -> pd.Series:
    """The ``"pre"`` network of :func:`forms_at_initialisation` (the same draws), with or without
    the BatchNorm in its branches: per seed, ||dL/dh_0|| / ||dL/dh_{depth-1}||, the gradient at
    block 1's input relative to the last block's input (``grad_norm`` at block 1 there)."""
    depth, width, batch = (checks.positive_int(n, v) for n, v in
                           (("depth", depth), ("width", width), ("batch", batch)))
    if depth < 2 or (batch_norm and batch < 2):
        raise ValueError(f"depth must be at least 2 and batch at least 2 with BatchNorm, got "
                         f"depth={depth}, batch={batch}")
    seeds = checks.seeds(seeds)
    weights, biases, x, readout = weights_and_probe_data([width] * (depth + 1), seeds, "kaiming",
                                                         batch)
    inputs = x.clone().requires_grad_(True)
    states = stacked_forward(inputs, weights, biases, 1.0, activation="relu",
                             final_activation=False, batch_norm=bool(batch_norm),
                             preactivation=True, return_states=True)
    first, last = torch.autograd.grad(states[depth], [states[0], states[depth - 1]], readout)
    ratio = first.pow(2).sum(dim=(1, 2)).sqrt() / last.pow(2).sum(dim=(1, 2)).sqrt()
    return pd.Series(ratio.detach().numpy(), index=pd.Index(seeds, name="seed"), name="growth")


class PostActivationMLP(StackedMLP):
    """M independent ``"post"`` networks (ReLU after each addition, BatchNorm in the branch,
    linear head) trained as one module: ``StackedMLP``'s parameters and draws, its forward
    replaced by :func:`post_activation_forward`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(len(self.seeds), *x.shape)
        return post_activation_forward(x, list(self.weights), list(self.biases))[0][-1]


def form_model(form: str, widths: Sequence[int], seeds: Sequence[int]) -> StackedMLP:
    """The trainable network of ``form`` (Kaiming's initialisation, the same draws for both)."""
    checks.one_of("form", form, FORMS, what="block form")
    if form == "pre":
        return StackedMLP(widths, seeds, shortcut=[True] * len(seeds), batch_norm=True,
                          activation="relu", init="kaiming", preactivation=True)
    return PostActivationMLP(widths, seeds, shortcut=[True] * len(seeds), batch_norm=True,
                             activation="relu", init="kaiming")


#: The study: two depths, 24 seeds in chunks of 12, 100 steps, the loss kept after 30 and 100.
FORMS_DEPTHS = (10, 30)
FORMS_SEEDS = tuple(range(24))
FORMS_CHUNK = 12
FORMS_STEPS = 100
FORMS_WINDOWS = (30, 100)


def forms_unit(depth: int, seeds: Sequence[int], **run: object) -> list[dict]:
    """Train both forms at ``depth`` (at least 3: a block between the stem and the head) from
    each seed (``gradflow.tasks.runs.train_arms``: full-batch Adam on the regression task). One
    row per run: ``form, depth, seed``, ``loss_<t>`` (the MSE after t updates) and
    ``first_over_last``."""
    return train_arms("form", FORMS, form_model, depth=depth, seeds=seeds, min_depth=3, **run)


FORMS_STUDY = Study(
    "residual_block_forms", __name__, forms_unit,
    units=[{"depth": depth, "seeds": list(FORMS_SEEDS[i:i + FORMS_CHUNK])}
           for depth in FORMS_DEPTHS for i in range(0, len(FORMS_SEEDS), FORMS_CHUNK)],
    params={"width": 32, "steps": FORMS_STEPS, "windows": list(FORMS_WINDOWS), "lr": 1e-3,
            **STUDY_TASK},
    about="ReLU after the addition against full pre-activation blocks, 2 depths, 24 paired seeds")


def paired_forms(frame: pd.DataFrame, column: str = f"loss_{FORMS_STEPS}") -> pd.DataFrame:
    """Pre-activation against post-activation per depth, paired by seed
    (``gradflow.tasks.runs.paired_log10``): ``wins`` (seeds where pre-activation ends lower) of ``n``, the mean log10(loss pre / loss
    post) with its 95 % interval (``mean, low, high``; negative: pre lower), ``detectable``, and
    the medians ``pre_loss`` and ``post_loss``."""
    return paired_log10(frame, arms="form", arm="pre", against="post", value=column, by="depth")
