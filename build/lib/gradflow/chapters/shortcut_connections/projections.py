"""Where the seed's shape check keeps a shortcut, and projection shortcuts where it drops one
(He et al. 2016, "Deep residual learning", Eq. 2). Part of the chapter "Shortcut connections"
(``book/shortcut_connections.md``)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd
import torch
from torch import nn

from ...networks.mlp import DeepMLP, initialise_linear_, make_generator
from ...probes import block_weight_gradients
from ...tutorial import (
    SEED,
    SEED_ACTIVATION,
    SEED_INIT,
    ExampleDeepNeuralNetwork,
    check_layer_sizes,
    default_input,
)


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

    He et al. (2016, "Deep residual learning"), Eq. 2: y = F(x, {W_i}) + W_s x, with W_s a bias-free linear map from the
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
    x = default_input(x, sizes[0])
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
