"""A small GPT-2-style language model, small enough to run on a laptop CPU in seconds.

The structure follows GPT-2 (Radford et al. 2019, section 2.3) as Karpathy's nanoGPT ``model.py``
writes it, with two switches added so that the book can take the model apart:

- ``ln_placement``: ``"pre"`` puts LayerNorm (Ba et al. 2016) at the *start* of each residual
  branch, as GPT-2 does (the "Pre-LN" Transformer of Xiong et al. 2020, Fig. 1b)::

      x = x + attn(ln_1(x))
      x = x + mlp(ln_2(x))            ... and one final LayerNorm after the last block

  ``"post"`` puts it *after* each addition, as the original Transformer does (Vaswani et al.
  2017, section 3.1: "LayerNorm(x + Sublayer(x))"; the "Post-LN" Transformer)::

      x = ln_1(x + attn(x))
      x = ln_2(x + mlp(x))            ... and no final LayerNorm (every block already ends in one)

- ``shortcuts``: with ``False`` the ``x +`` disappears and every block becomes a plain composition
  (``x = attn(ln_1(x))`` or ``x = ln_1(attn(x))``), the "plain" network of He et al. 2016.

The initialisation is nanoGPT's (and Hugging Face's) reading of GPT-2's: every weight
~ N(0, 0.02^2), biases zero, LayerNorm gain one and shift zero. With ``scaled_init`` the two
*residual projections* of each block (the last linear layer of the attention and of the
feed-forward branch, the ones whose output is added to the residual stream) get std
0.02 / sqrt(2 * n_layer) instead. GPT-2's paper (section 2.3) scales the weights of residual layers
"by a factor of 1/√N where N is the number of residual layers"; nanoGPT and Hugging Face count two
per block. (OpenAI's released code, ``src/model.py`` of openai/gpt-2, draws the position
embeddings with std 0.01 and applies no residual scaling.)

Three more switches carry the model past GPT-2 (the chapter "After GPT-2"); their defaults
leave the model above unchanged, parameter for parameter and random draw for random draw:

- ``ffn``: ``"gelu"`` (above), or a gated feed-forward layer, ``"swiglu"`` or ``"geglu"``
  (Shazeer 2020; ``gradflow.gated``), of hidden width 8d/3 so that its weights match the GELU
  layer's 8 d^2.
- ``norm``: ``"layernorm"``, or ``"rmsnorm"`` (Zhang & Sennrich 2019; ``torch.nn.RMSNorm``, as
  LLaMA uses), for every normalisation of the model.
- ``residual``: ``"standard"`` (above); ``"deepnorm"``, Post-LN with the stream up-weighted,
  x = LN(alpha x + f(x)), and the feed-forward weights, the attention's value and output
  projections drawn beta times smaller, with alpha = (2N)^(1/4), beta = (8N)^(-1/4) for a
  decoder-only model of N blocks (Wang et al. 2022, DeepNet; the constants of their code,
  microsoft/torchscale); or ``"rezero"``, each branch multiplied by a learned scalar that starts
  at zero (Bachlechner et al. 2020), so that every block starts as the identity.

Two switches of the attention serve the chapter "Attention's own gradients"; their defaults,
too, leave the model unchanged parameter for parameter and draw for draw:

- ``attn_scale``: ``True`` divides each score q.k by sqrt(d_k) (Vaswani et al. 2017, section
  3.2.1); ``False`` leaves the raw dot product.
- ``qk_norm``: ``None``, or ``"layernorm"`` / ``"rmsnorm"`` applied to every query and key over
  the head dimension, per head and before the product (QK-norm: Dehghani et al. 2023, ViT-22B;
  Wortsman et al. 2023). One norm for the queries and one for the keys per block, each with a
  gain (and for LayerNorm a shift) of d_k entries shared by the heads; they draw nothing at
  initialisation (gain one, shift zero).

Shapes: token ids ``(B, T)`` with ``T <= block_size``; hidden states ``(B, T, n_embd)``; logits
``(B, T, vocab_size)``. No dropout: every forward pass is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F

from ..activations import GELU
from ..checks import one_of, positive_int
from ..gated import GatedFeedForward, matched_hidden_width

LN_PLACEMENTS = ("pre", "post")
#: The feed-forward layers: GPT-2's GELU layer, and two gated layers (``gradflow.gated``).
FFN_KINDS = ("gelu", "swiglu", "geglu")
#: The normalisations: ``torch.nn.LayerNorm`` or ``torch.nn.RMSNorm``.
NORM_KINDS = ("layernorm", "rmsnorm")
#: How each branch joins the residual stream (see the module docstring).
RESIDUAL_KINDS = ("standard", "deepnorm", "rezero")
#: The norms that QK-norm may apply to queries and keys (``None``: no QK-norm).
QK_NORM_KINDS = (None, "layernorm", "rmsnorm")
#: The options that ``GPTConfig.__repr__`` shows only when they differ from their defaults.
QUIET_OPTIONS = ("ffn", "norm", "residual", "attn_scale", "qk_norm")


def deepnorm_constants(n_layer: int | None) -> tuple[float, float]:
    """DeepNorm's (alpha, beta) for a decoder-only model of ``n_layer`` blocks N:
    alpha = (2N)^(1/4) up-weights the stream in x = LN(alpha x + f(x)), beta = (8N)^(-1/4)
    scales the initial feed-forward, value and output-projection weights (Wang et al. 2022,
    DeepNet, arXiv:2203.00555; ``torchscale/architecture/decoder.py`` computes alpha as
    ``math.pow(2.0 * args.decoder_layers, 0.25)`` and divides those weights by
    ``math.pow(8.0 * args.decoder_layers, 0.25)``)."""
    if n_layer is None:
        raise ValueError("DeepNorm needs the number of blocks N: alpha = (2N)^(1/4) and "
                         "beta = (8N)^(-1/4) are computed from it; got n_layer=None")
    n = positive_int("n_layer", n_layer)
    return (2 * n) ** 0.25, (8 * n) ** -0.25


@dataclass(frozen=True)
class GPTConfig:
    """Hyper-parameters of a :class:`GPT`; checked when the config is created.

    Attributes:
        vocab_size: number of distinct tokens.
        block_size: the context length, the longest sequence the model accepts.
        n_layer: number of transformer blocks N (each holds two residual layers).
        n_head: attention heads per block; must divide ``n_embd``.
        n_embd: width d of the residual stream.
        ln_placement: ``"pre"`` (GPT-2, Pre-LN) or ``"post"`` (Vaswani et al. 2017, Post-LN).
        shortcuts: whether each branch is added to its input (``x + f(x)``) or replaces it.
        scaled_init: std 0.02 / sqrt(2 N) for the residual projections (nanoGPT's reading of
            GPT-2's section 2.3).
        init_std: standard deviation of every other weight (0.02 in GPT-2).
        ffn: ``"gelu"`` (GPT-2), ``"swiglu"`` or ``"geglu"`` (hidden width 8d/3).
        norm: ``"layernorm"`` (GPT-2) or ``"rmsnorm"``.
        residual: ``"standard"``, ``"deepnorm"`` (needs ``ln_placement="post"`` and
            ``scaled_init=False``: beta replaces GPT-2's factor) or ``"rezero"``.
        attn_scale: divide q.k by sqrt(d_k) (True, Vaswani et al. 2017) or not (False).
        qk_norm: ``None``, ``"layernorm"`` or ``"rmsnorm"`` on q and k over the head dimension.
    """

    vocab_size: int = 16
    block_size: int = 16
    n_layer: int = 12
    n_head: int = 4
    n_embd: int = 64
    ln_placement: str = "pre"
    shortcuts: bool = True
    scaled_init: bool = True
    init_std: float = 0.02
    ffn: str = "gelu"
    norm: str = "layernorm"
    residual: str = "standard"
    attn_scale: bool = True
    qk_norm: str | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            positive_int(name, getattr(self, name))
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd must be divisible by n_head (each head gets n_embd / n_head "
                f"dimensions), got n_embd={self.n_embd}, n_head={self.n_head}"
            )
        one_of("ln_placement", self.ln_placement, LN_PLACEMENTS)
        for name in ("shortcuts", "scaled_init", "attn_scale"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        std = self.init_std
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0 < std < math.inf:
            raise ValueError(f"init_std must be a positive finite number, got {std!r}")
        one_of("ffn", self.ffn, FFN_KINDS, what="feed-forward kind")
        one_of("norm", self.norm, NORM_KINDS, what="norm kind")
        one_of("residual", self.residual, RESIDUAL_KINDS, what="residual kind")
        one_of("qk_norm", self.qk_norm, QK_NORM_KINDS, what="qk_norm kind")
        if self.residual != "standard" and not self.shortcuts:
            raise ValueError(f"residual={self.residual!r} scales the shortcut or the branch: "
                             f"it needs shortcuts=True")
        if self.residual == "deepnorm":
            deepnorm_constants(self.n_layer)
            if self.ln_placement != "post" or self.scaled_init:
                raise ValueError(
                    "DeepNorm is a Post-LN scheme whose beta replaces GPT-2's scaled "
                    "initialisation: use ln_placement='post' and scaled_init=False, got "
                    f"ln_placement={self.ln_placement!r}, scaled_init={self.scaled_init}")

    def __repr__(self) -> str:
        """The fields as a dataclass shows them, leaving out the options of the chapters "After
        GPT-2" and "Attention's own gradients" while they keep their defaults (so GPT-2's config
        reads as it always has)."""
        shown = [f for f in fields(self)
                 if f.name not in QUIET_OPTIONS or getattr(self, f.name) != f.default]
        return f"GPTConfig({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"

    @property
    def ffn_hidden(self) -> int:
        """Hidden width of the feed-forward layer: 4d for GELU, 8d/3 (rounded) for a gated one."""
        if self.ffn == "gelu":
            return 4 * self.n_embd
        return matched_hidden_width(self.n_embd)

    @property
    def head_size(self) -> int:
        """d_k = n_embd / n_head, the width of each head's queries, keys and values."""
        return self.n_embd // self.n_head

    @property
    def alpha(self) -> float:
        """The factor on the stream in x = LN(alpha x + f(x)): DeepNorm's (2N)^(1/4), else 1."""
        return deepnorm_constants(self.n_layer)[0] if self.residual == "deepnorm" else 1.0

    @property
    def beta(self) -> float:
        """DeepNorm's (8N)^(-1/4) on the initial feed-forward, value and output-projection
        weights; 1 for the other residual kinds."""
        return deepnorm_constants(self.n_layer)[1] if self.residual == "deepnorm" else 1.0

    @property
    def residual_std(self) -> float:
        """Std of the residual projections: 0.02 / sqrt(2 N) with ``scaled_init``, 0.02 beta
        with DeepNorm, else 0.02 (0.02 standing for ``init_std``)."""
        if self.residual == "deepnorm":
            return self.init_std * self.beta
        if self.scaled_init:
            return self.init_std / math.sqrt(2 * self.n_layer)
        return self.init_std


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t only sees positions 0..t.

    Vaswani et al. 2017, Eq. 1 per head: softmax(Q K^T / sqrt(d_head) + M) V, where the mask M is
    0 on and below the diagonal and -inf above it (no looking ahead). The heads' outputs are
    concatenated and mixed by ``c_proj``, the branch's residual projection. With
    ``attn_scale=False`` the division by sqrt(d_head) is left out; with ``qk_norm`` each query and
    key is normalised over its d_head entries before the product.

    :meth:`logits` returns the scores before the mask, the one computation :meth:`forward` uses,
    so that probes read the logits, the probabilities and their entropy without repeating it.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.attn_scale = config.attn_scale
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # Q, K, V for all heads at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)  # residual projection
        if config.qk_norm is None:
            self.q_norm = self.k_norm = None
        else:
            norm = nn.RMSNorm if config.qk_norm == "rmsnorm" else nn.LayerNorm
            self.q_norm, self.k_norm = norm(config.head_size), norm(config.head_size)
        mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("causal_mask", mask, persistent=False)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v of shape (B, n_head, T, head size); q and k after QK-norm if it is on."""
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head) for t in self.c_attn(x).split(C, dim=2))
        if self.q_norm is not None:  # over the head dimension, before the heads are moved forward
            q, k = self.q_norm(q), self.k_norm(k)
        return tuple(t.transpose(1, 2) for t in (q, k, v))

    def _scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        scores = q @ k.transpose(-2, -1)
        return scores / math.sqrt(k.size(-1)) if self.attn_scale else scores

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The attention logits q.k (/ sqrt(d_k) with ``attn_scale``) of input ``x`` (B, T, C),
        shape (B, n_head, T, T), before the causal mask (entries above the diagonal included)."""
        q, k, _ = self._heads(x)
        return self._scores(q, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self._heads(x)
        scores = self._scores(q, k).masked_fill(~self.causal_mask[:T, :T], float("-inf"))
        y = F.softmax(scores, dim=-1) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.c_proj(y)


class FeedForward(nn.Module):
    """Position-wise feed-forward layer: Linear(d, 4d) -> GELU -> Linear(4d, d).

    The 4x expansion is Vaswani et al. 2017 section 3.3 (d_ff = 2048 for d = 512); the GELU is the
    tanh approximation GPT-2 uses (Hendrycks & Gimpel 2016, section 2). ``c_proj`` is the branch's
    residual projection, Xiong et al. 2020's W^{2,l}.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)  # residual projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


def make_norm(config: GPTConfig) -> nn.Module:
    """The config's normalisation over the last dimension: LayerNorm or RMSNorm (default eps)."""
    if config.norm == "rmsnorm":
        return nn.RMSNorm(config.n_embd)
    return nn.LayerNorm(config.n_embd)


def make_ffn(config: GPTConfig) -> nn.Module:
    """The config's feed-forward layer: :class:`FeedForward` (GELU) or a gated one."""
    if config.ffn == "gelu":
        return FeedForward(config)
    return GatedFeedForward(config.n_embd, config.ffn_hidden, config.ffn)


class Block(nn.Module):
    """One transformer block: an attention branch and a feed-forward branch.

    Pre-LN (GPT-2):       x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    Post-LN (Vaswani):    x = ln_1(x + attn(x));  x = ln_2(x + mlp(x))
    Without shortcuts the ``x +`` is dropped and the branch output replaces x.
    DeepNorm (Post-LN):   x = ln_1(alpha x + attn(x)); ...
    ReZero:               x = x + g_1 attn(ln_1(x)); ...   with g_1 = g_2 = 0 at initialisation
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.pre_ln = config.ln_placement == "pre"
        self.shortcuts = config.shortcuts
        self.alpha = config.alpha
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = make_ffn(config)
        if config.residual == "rezero":
            self.rezero_1 = nn.Parameter(torch.zeros(()))
            self.rezero_2 = nn.Parameter(torch.zeros(()))
        else:
            self.rezero_1 = self.rezero_2 = None

    def _sublayer(self, x: torch.Tensor, ln: nn.Module, branch: nn.Module,
                  gain: nn.Parameter | None) -> torch.Tensor:
        out = branch(ln(x)) if self.pre_ln else branch(x)
        if gain is not None:
            out = gain * out
        if self.shortcuts:
            out = x + out if self.alpha == 1.0 else self.alpha * x + out
        return out if self.pre_ln else ln(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._sublayer(x, self.ln_1, self.attn, self.rezero_1)
        return self._sublayer(x, self.ln_2, self.mlp, self.rezero_2)


class GPT(nn.Module):
    """Token and position embeddings, ``n_layer`` blocks, (Pre-LN only) a final LayerNorm, LM head.

    As in GPT-2 the LM head shares its weight with the token embedding ("weight tying"), so it adds
    no parameters. Parameters are initialised from ``seed`` alone: two models built with the same
    config and seed are identical, whatever the global random state.

    ``model(idx)`` returns logits ``(B, T, vocab_size)``; ``model(idx, targets)`` returns
    ``(logits, loss)`` with the mean cross-entropy over positions whose target is not -1.
    """

    def __init__(self, config: GPTConfig, seed: int = 0):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embedding
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        # Pre-LN needs a LayerNorm after the last block (GPT-2 section 2.3); Post-LN already has one.
        self.ln_f = make_norm(config) if config.ln_placement == "pre" else nn.Identity()
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying, as in GPT-2
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """nanoGPT's GPT-2-style initialisation (std 0.02; 0.02 / sqrt(2 n_layer) for the residual
        projections with ``scaled_init``), drawn from a generator seeded with ``seed``."""
        generator = torch.Generator().manual_seed(int(seed))
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)) and module is not self.lm_head:
                nn.init.normal_(module.weight, mean=0.0, std=std, generator=generator)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.RMSNorm):
                nn.init.ones_(module.weight)
        for block in self.blocks:
            if block.rezero_1 is not None:  # ReZero: every branch starts switched off
                nn.init.zeros_(block.rezero_1)
                nn.init.zeros_(block.rezero_2)
            if self.config.residual == "deepnorm":
                # DeepNet (Wang et al. 2022): the feed-forward weights and the attention's value
                # and output projections are drawn beta times smaller (Q and K are not).
                d = self.config.n_embd
                block.attn.c_attn.weight[2 * d:].mul_(self.config.beta)  # rows: Q, K, then V
                for layer in block.mlp.modules():
                    if isinstance(layer, nn.Linear):
                        layer.weight.mul_(self.config.beta)
                block.attn.c_proj.weight.mul_(self.config.beta)
                continue
            # GPT-2's paper, section 2.3: scale residual layers by 1/sqrt(N); N = 2 * n_layer is
            # nanoGPT's and Hugging Face's count (OpenAI's released code does not scale).
            for projection in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.normal_(projection.weight, 0.0, self.config.residual_std, generator=generator)

    def _check_tokens(self, idx: torch.Tensor, name: str = "idx") -> None:
        if not isinstance(idx, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(idx).__name__}")
        if idx.dtype != torch.long or idx.dim() != 2:
            raise ValueError(f"{name} must be a (batch, time) tensor of torch.long, got a "
                             f"{idx.dtype} tensor of shape {tuple(idx.shape)}")
        T = idx.size(1)
        if not 1 <= T <= self.config.block_size:
            raise ValueError(
                f"sequence length {T} is outside 1..block_size={self.config.block_size} "
                f"(the model's context length)"
            )

    def hidden_states(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream: the embeddings, then the output of each block (n_layer + 1 tensors).

        For Pre-LN these are the stream *before* the final LayerNorm.
        """
        self._check_tokens(idx)
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.config.vocab_size):
            raise ValueError(
                f"token ids must lie in 0..{self.config.vocab_size - 1}, got values from "
                f"{int(idx.min())} to {int(idx.max())}"
            )
        positions = torch.arange(idx.size(1), device=idx.device)
        x = self.wte(idx) + self.wpe(positions)
        states = [x]
        for block in self.blocks:
            x = block(x)
            states.append(x)
        return states

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        logits = self.lm_head(self.ln_f(self.hidden_states(idx)[-1]))
        if targets is None:
            return logits
        self._check_tokens(targets, "targets")
        if targets.shape != idx.shape:
            raise ValueError(
                f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}"
            )
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss

    def residual_projections(self) -> list[nn.Linear]:
        """The 2 * n_layer linear layers whose output is added to the residual stream."""
        return [p for block in self.blocks for p in (block.attn.c_proj, block.mlp.c_proj)]


def parameter_count(config: GPTConfig) -> int:
    """Closed-form number of parameters of ``GPT(config)`` (tied LM head counted once).

    With d = n_embd, V = vocab_size, T = block_size and N = n_layer:
    embeddings V d + T d; per block 12 d^2 + 13 d (LayerNorms 4d, attention 3d^2 + 3d + d^2 + d,
    feed-forward 4d^2 + 4d + 4d^2 + d); a final LayerNorm 2d for Pre-LN only. A gated
    feed-forward layer of hidden width h has 3 d h + 2 h + d instead of 8 d^2 + 5 d; an RMSNorm
    has d parameters (a gain, no shift) instead of 2d; ReZero adds 2 scalars per block; QK-norm
    adds two norms of the head size d_k per block (4 d_k for LayerNorm, 2 d_k for RMSNorm).
    """
    d, h = config.n_embd, config.ffn_hidden
    norm = d if config.norm == "rmsnorm" else 2 * d
    ffn = 8 * d * d + 5 * d if config.ffn == "gelu" else 3 * d * h + 2 * h + d
    block = 2 * norm + (4 * d * d + 4 * d) + ffn + (2 if config.residual == "rezero" else 0)
    if config.qk_norm is not None:
        block += (2 if config.qk_norm == "rmsnorm" else 4) * config.head_size
    final_norm = norm if config.ln_placement == "pre" else 0
    return config.vocab_size * d + config.block_size * d + config.n_layer * block + final_norm
