"""A configurable deep MLP for measuring how gradients travel through depth.

Every layer (a :class:`Block`) computes

    h_l = shortcut_scale * S_l(h_{l-1}) + branch_scale * phi(W_l h_{l-1} + b_l),

where phi is the activation and S_l is the shortcut: absent in a plain network, the identity where
the width is unchanged, and, with ``projection=True``, a bias-free linear map where the width
changes (He et al. 2016, "Deep residual learning", Eq. 2: y = F(x) + W_s x). With
``shortcut_scale = branch_scale = 1`` and no shortcut this is the seed notebook's ``Linear -> GELU``
layer; with an identity shortcut it is the seed's ``x + layer(x)``.

Where the width changes and there is no projection, a shortcut is impossible and the layer is
plain. That is never silent: :meth:`DeepMLP.describe`, the model's ``repr`` and
``DeepMLP.shortcut_kinds`` say which layers have which shortcut, and why one is missing.

Initialisation (all weights W of shape ``(fan_out, fan_in)``; ``gain`` multiplies the standard
deviation of the published scheme, so ``gain=1`` is the scheme as published):

- ``"default"``: PyTorch's ``nn.Linear``: W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), i.e.
  ``kaiming_uniform_(a=sqrt(5))``, so Var(W) = 1/(3 fan_in); this is Glorot & Bengio's (2010)
  "standard" initialisation, their Eq. 1.
- ``"xavier"`` (alias ``"glorot"``): W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)), so
  Var(W) = 2/(fan_in + fan_out) (Glorot & Bengio 2010, Eq. 16, "normalized initialization").
- ``"kaiming"`` (alias ``"he"``): W ~ N(0, 2/fan_in) (He et al. 2015, "Delving deep into
  rectifiers", Eq. 10).
- ``"orthogonal"``: W a random orthogonal matrix (Haar-distributed, ``nn.init.orthogonal_``;
  Saxe, McClelland & Ganguli 2014), so every singular value of W is 1 and Var(W) = 1/fan_in.
  Square layers only: a non-square layer raises a ValueError that names the alternative.
- ``"semi_orthogonal"``: orthonormal rows (fan_out <= fan_in) or columns (fan_out > fan_in),
  the latter scaled by sqrt(fan_out / fan_in), so that Var(W) = 1/fan_in for every shape and a
  square layer gets exactly the orthogonal draw. Choosing it is how a caller says how a
  non-square layer should be made orthogonal.

In mean-field notation sigma_w^2 = fan_in * Var(W): 1/3 for the default, 1 for Xavier on a square
layer, 2 for Kaiming, 1 for (semi-)orthogonal (times gain^2). Biases: ``"default"`` is PyTorch's
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (variance 1/(3 fan_in)), ``"zeros"``, or a float: the standard
deviation of a normal draw. Unless given, biases follow the weights: PyTorch's default for
``init="default"``, zeros for the others.

Extending (for instance for a chapter on residual connections): ``shortcut_scale`` is the lambda of
He et al. (2016, "Identity mappings", section 3, Eq. 6: h(x_l) = lambda_l x_l; their experiments
in section 3.1, Table 1); ``Block.branch_scale`` is a
plain float 1.0 that may be replaced by an ``nn.Parameter`` (ReZero's alpha, initialised at 0), and
``DeepMLP.blocks[i].linear.weight`` can be rescaled in place (GPT-2's 1/sqrt(N), Radford et al.
section 2.3; 1/sqrt(2 n_layer) in nanoGPT and Hugging Face). Subclasses can
override :meth:`Block.branch` or :meth:`Block.forward`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import pandas as pd
import torch
from torch import nn
from torch.nn.utils import skip_init

from .. import activations as act
from ..activations import check_activation
from ..checks import one_of, positive_int, positive_number
from ..checks import widths as check_widths

#: The activations a ``DeepMLP`` can use: every name of the registry ``gradflow.activations``.
ACTIVATION_NAMES = act.NAMES

#: Initialisation schemes and their aliases.
INIT_NAMES = ("default", "xavier", "kaiming", "orthogonal", "semi_orthogonal")
ORTHOGONAL_INITS = ("orthogonal", "semi_orthogonal")
INIT_ALIASES = {"pytorch": "default", "glorot": "xavier", "he": "kaiming"}
BIAS_NAMES = ("default", "zeros")

#: The initialisation usually recommended for each activation: Glorot & Bengio (2010) designed
#: theirs for tanh-like units (they study sigmoid, tanh and softsign); He et al. (2015) theirs for
#: ReLU, and it is the usual choice for the ReLU-like GELU and SiLU.
DESIGNED_INIT = {
    "sigmoid": "xavier",
    "tanh": "xavier",
    "relu": "kaiming",
    "gelu": "kaiming",
    "gelu_tanh": "kaiming",
    "gelu_sigmoid": "kaiming",
    "silu": "kaiming",
}


def check_init(name: str) -> str:
    """Return the canonical initialisation name (aliases resolved) or raise a ValueError."""
    canonical = INIT_ALIASES.get(name, name) if isinstance(name, str) else name
    if canonical not in INIT_NAMES:
        one_of("init", name, INIT_NAMES + tuple(INIT_ALIASES), what="initialisation")
    return canonical


def check_bias_init(bias_init: str | float | None, init: str) -> str | float:
    """Resolve ``bias_init`` (None: PyTorch's default for ``init="default"``, else zeros)."""
    if bias_init is None:
        return "default" if check_init(init) == "default" else "zeros"
    if isinstance(bias_init, str):
        return one_of("bias_init", bias_init, BIAS_NAMES, what="bias initialisation")
    if isinstance(bias_init, bool) or not isinstance(bias_init, (int, float)) or bias_init < 0:
        raise ValueError(
            f"bias_init must be 'default', 'zeros' or a float standard deviation >= 0, "
            f"got {bias_init!r}"
        )
    return float(bias_init)


def _check_gain(gain: float) -> float:
    return positive_number("gain", gain)


def weight_variance(init: str, fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """Var(W) of one weight entry under ``init`` (see the module docstring for the formulas)."""
    init, gain = check_init(init), _check_gain(gain)
    if init == "default":
        base = 1.0 / (3.0 * fan_in)
    elif init == "xavier":
        base = 2.0 / (fan_in + fan_out)
    elif init in ORTHOGONAL_INITS:
        check_orthogonal_shape(init, fan_in, fan_out)
        base = 1.0 / fan_in
    else:
        base = 2.0 / fan_in
    return gain**2 * base


def check_orthogonal_shape(init: str, fan_in: int, fan_out: int) -> None:
    """Raise a ValueError if ``init="orthogonal"`` is asked for a non-square layer: a non-square
    matrix cannot be orthogonal, and which semi-orthogonal matrix to use is the caller's choice."""
    if init == "orthogonal" and fan_in != fan_out:
        raise ValueError(
            f"init='orthogonal' needs a square layer, got fan_in={fan_in}, fan_out={fan_out}; "
            "pass init='semi_orthogonal' for orthonormal rows or columns (scaled so that "
            "Var(W) = 1/fan_in)"
        )


def bias_variance(bias_init: str | float | None, init: str, fan_in: int) -> float:
    """Var(b) of one bias entry: 1/(3 fan_in) for PyTorch's default, 0 for zeros, std^2 else."""
    resolved = check_bias_init(bias_init, init)
    if resolved == "default":
        return 1.0 / (3.0 * fan_in)
    if resolved == "zeros":
        return 0.0
    return float(resolved) ** 2


def sigma_w2(init: str, fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """The mean-field weight scale sigma_w^2 = fan_in * Var(W) (Poole et al. 2016, section 2)."""
    return fan_in * weight_variance(init, fan_in, fan_out, gain)


def make_generator(seed: int | torch.Generator) -> torch.Generator:
    """A CPU ``torch.Generator``: ``seed`` itself, or a new one seeded with the int ``seed``."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):   # a Generator is taken as it is
        raise TypeError(f"seed must be an int or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def initialise_linear_(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    init: str,
    gain: float = 1.0,
    bias_init: str | float | None = None,
    generator: torch.Generator | None = None,
) -> None:
    """Fill ``weight`` (shape ``(fan_out, fan_in)``) and ``bias`` in place, weight first.

    Uses PyTorch's own ``torch.nn.init`` functions with ``generator``, in ``nn.Linear``'s order, so
    ``init="default"`` with a generator seeded like ``torch.manual_seed(s)`` gives exactly the
    weights ``nn.Linear`` draws after ``torch.manual_seed(s)``.
    """
    init, gain = check_init(init), _check_gain(gain)
    fan_out, fan_in = weight.shape
    if init == "default":
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    elif init == "xavier":
        nn.init.xavier_uniform_(weight, generator=generator)
    elif init in ORTHOGONAL_INITS:
        check_orthogonal_shape(init, fan_in, fan_out)
        nn.init.orthogonal_(weight, generator=generator)
        if fan_out > fan_in:   # orthonormal columns: rescale so that Var(W) = 1/fan_in
            weight.mul_(math.sqrt(fan_out / fan_in))
    else:
        nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=generator)
    if gain != 1.0:
        weight.mul_(gain)
    if bias is None:
        return
    resolved = check_bias_init(bias_init, init)
    if resolved == "default":
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(bias, -bound, bound, generator=generator)
    elif resolved == "zeros":
        nn.init.zeros_(bias)
    else:
        nn.init.normal_(bias, 0.0, resolved, generator=generator)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class Activation(nn.Module):
    """An elementwise activation chosen by name (a name of the registry ``gradflow.activations``,
    or ``"identity"`` for a linear output layer). Shape: any, unchanged."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.fn = _identity if name == "identity" else act.spec(name).fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


class Block(nn.Module):
    """One layer: h = shortcut_scale * S(x) + branch_scale * phi(W x + b).

    ``shortcut`` is ``None`` (plain layer), ``nn.Identity()`` or a bias-free ``nn.Linear``
    (projection, He et al. 2016, "Deep residual learning", Eq. 2). ``note`` says why a shortcut is missing, if it is.
    """

    def __init__(
        self,
        linear: nn.Linear,
        activation: Activation,
        shortcut: nn.Module | None,
        shortcut_scale: float = 1.0,
        note: str = "",
    ):
        super().__init__()
        self.linear = linear
        self.activation = activation
        self.shortcut = shortcut
        self.shortcut_scale = float(shortcut_scale)
        #: Multiplies the branch; a float, or an nn.Parameter for a learnable scale (ReZero).
        self.branch_scale: float | nn.Parameter = 1.0
        self.note = note

    @property
    def shortcut_kind(self) -> str:
        """``"none"``, ``"identity"`` or ``"projection"``."""
        if self.shortcut is None:
            return "none"
        return "projection" if isinstance(self.shortcut, nn.Linear) else "identity"

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch F(x) = phi(W x + b)."""
        return self.activation(self.linear(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if not (isinstance(self.branch_scale, float) and self.branch_scale == 1.0):
            out = self.branch_scale * out
        if self.shortcut is None:
            return out
        skip = self.shortcut(x)
        if self.shortcut_scale != 1.0:
            skip = self.shortcut_scale * skip
        return skip + out

    def extra_repr(self) -> str:
        text = f"shortcut={self.shortcut_kind}"
        if self.shortcut is not None and self.shortcut_scale != 1.0:
            text += f", shortcut_scale={self.shortcut_scale:g}"
        return text + (f"  # {self.note}" if self.note else "")


@dataclass(frozen=True)
class MLPConfig:
    """Everything that defines a :class:`DeepMLP` except its random draws."""

    widths: tuple[int, ...]
    activation: str = "relu"
    init: str = "default"
    gain: float = 1.0
    bias_init: str | float = "default"
    shortcut: bool = False
    projection: bool = False
    shortcut_scale: float = 1.0
    final_activation: bool = True

    @property
    def depth(self) -> int:
        return len(self.widths) - 1


def resolve_widths(
    widths: Sequence[int] | None, depth: int | None, width: int | None
) -> tuple[int, ...]:
    """``widths`` as given (input width first), or ``depth + 1`` copies of ``width``."""
    if widths is not None:
        if depth is not None or width is not None:
            raise ValueError("give either widths, or depth and width, not both")
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise ValueError(f"widths must be a sequence of positive integers, got {widths!r}")
        return tuple(check_widths(widths))
    if depth is None or width is None:
        raise ValueError("give widths, or both depth and width")
    positive_int("depth", depth)
    sizes = [width] * (depth + 1)
    return tuple(check_widths(sizes))


class DeepMLP(nn.Module):
    """A deep MLP of :class:`Block` layers, configured by name; see the module docstring.

    Args:
        widths: layer widths, input first (``[3, 3, 3, 3, 3, 1]`` is the seed's network); or
        depth, width: ``depth`` layers of ``width -> width``.
        activation: one of ``ACTIVATION_NAMES``.
        init: ``"default"`` (PyTorch's), ``"xavier"``/``"glorot"``, ``"kaiming"``/``"he"``,
            ``"orthogonal"`` (square layers only) or ``"semi_orthogonal"``.
        gain: multiplies the weights' standard deviation.
        bias_init: ``"default"``, ``"zeros"`` or a normal standard deviation (None: see above).
        shortcut: add each layer's input to its output (identity shortcut) where widths agree.
        projection: where the width changes, use a bias-free linear shortcut instead of none.
        shortcut_scale: lambda in h = lambda * S(x) + F(x).
        final_activation: apply the activation after the last layer too (the seed does).
        seed: an int or a ``torch.Generator`` for the initialisation (required: no hidden state).
        dtype: the parameters' dtype.

    Shape: input ``(..., widths[0])``, output ``(..., widths[-1])``.
    """

    def __init__(
        self,
        widths: Sequence[int] | None = None,
        *,
        depth: int | None = None,
        width: int | None = None,
        activation: str = "relu",
        init: str = "default",
        gain: float = 1.0,
        bias_init: str | float | None = None,
        shortcut: bool = False,
        projection: bool = False,
        shortcut_scale: float = 1.0,
        final_activation: bool = True,
        seed: int | torch.Generator,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        sizes = resolve_widths(widths, depth, width)
        init = check_init(init)
        self.config = MLPConfig(
            widths=sizes,
            activation=check_activation(activation),
            init=init,
            gain=_check_gain(gain),
            bias_init=check_bias_init(bias_init, init),
            shortcut=bool(shortcut),
            projection=bool(projection),
            shortcut_scale=float(shortcut_scale),
            final_activation=bool(final_activation),
        )
        generator = make_generator(seed)
        blocks = []
        for i, (n_in, n_out) in enumerate(pairwise(sizes)):
            last = i == len(sizes) - 2
            blocks.append(self._make_block(i, n_in, n_out, last, generator, dtype))
        self.blocks = nn.ModuleList(blocks)

    def _make_block(
        self, index: int, n_in: int, n_out: int, last: bool, generator: torch.Generator,
        dtype: torch.dtype,
    ) -> Block:
        """Build layer ``index`` (weights drawn now, from ``generator``: W, b, then projection)."""
        c = self.config
        # skip_init: no draw from the global generator; all randomness comes from ``generator``.
        linear = skip_init(nn.Linear, n_in, n_out, dtype=dtype)
        initialise_linear_(linear.weight, linear.bias, c.init, c.gain, c.bias_init, generator)
        name = c.activation if (c.final_activation or not last) else "identity"
        shortcut, note = None, ""
        if c.shortcut and n_in == n_out:
            shortcut = nn.Identity()
        elif c.shortcut and c.projection:
            shortcut = skip_init(nn.Linear, n_in, n_out, bias=False, dtype=dtype)
            initialise_linear_(shortcut.weight, None, c.init, c.gain, generator=generator)
        elif c.shortcut:
            note = f"width changes {n_in}->{n_out}: NO shortcut (pass projection=True for one)"
        return Block(linear, Activation(name), shortcut, c.shortcut_scale, note)

    @property
    def shortcut_kinds(self) -> list[str]:
        """Per layer: ``"none"``, ``"identity"`` or ``"projection"``."""
        return [block.shortcut_kind for block in self.blocks]

    def describe(self) -> pd.DataFrame:
        """One row per layer: widths, activation, shortcut kind and a note where one is missing."""
        rows = []
        for i, block in enumerate(self.blocks, start=1):
            rows.append({
                "layer": i,
                "in": block.linear.in_features,
                "out": block.linear.out_features,
                "activation": block.activation.name,
                "shortcut": block.shortcut_kind,
                "note": block.note,
            })
        return pd.DataFrame(rows).set_index("layer")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.config.widths[0]:
            raise ValueError(
                f"input's last dimension must be widths[0] = {self.config.widths[0]}, "
                f"got input of shape {tuple(x.shape)}"
            )
        for block in self.blocks:
            x = block(x)
        return x

    def extra_repr(self) -> str:
        c = self.config
        text = (
            f"widths={list(c.widths)}, activation={c.activation!r}, init={c.init!r}, "
            f"gain={c.gain:g}, bias_init={c.bias_init!r}, shortcut={c.shortcut}"
        )
        dropped = [i for i, b in enumerate(self.blocks, start=1) if b.note]
        if dropped:
            text += f"\nWARNING: no shortcut at layer(s) {dropped}: the width changes there"
        return text
