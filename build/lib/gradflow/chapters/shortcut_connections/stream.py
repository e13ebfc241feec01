"""The residual stream's variance grows with depth; GPT-2's 1/sqrt(N) scaling and ReZero keep it in
check. Part of the chapter "Shortcut connections" (``book/shortcut_connections.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ... import checks
from ...activations import check_activation, spec
from ...networks.mlp import DeepMLP, make_generator
from ...probes import seed_loss
from ...tutorial import SEED, SEED_ACTIVATION, SEED_LAYER_SIZES, check_layer_sizes, default_input

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
      2019, section 2.3; nanoGPT and Hugging Face count two branches per GPT-2 block and use
      1/sqrt(2 n_layer); OpenAI's released code does not scale);
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
        n_blocks = checks.positive_int("n_blocks", n_blocks)
        width = checks.positive_int("width", width)
        hidden = width if hidden is None else checks.positive_int("hidden", hidden)
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
        return spec(self.activation).fn(h @ self.w1[i].T) @ self.w2[i].T

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
    seeds = checks.seeds(seeds)
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
                grads = torch.autograd.grad(seed_loss(states[-1], readout=readout), states)
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
    Uses ``Block.branch_scale``, the extension point ``gradflow.networks.mlp`` provides.
    Returns ``model``.
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
    x = default_input(x, sizes[0])
    model = rezero_(DeepMLP(sizes, activation=SEED_ACTIVATION, shortcut=True, seed=seed))
    loss = seed_loss(model(x))
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
