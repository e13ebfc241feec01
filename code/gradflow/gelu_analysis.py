"""GELU measured: approximation errors, shape facts, the stochastic view and float32 behaviour.

Every location reported here (the largest error of an approximation, GELU's minimum, the extrema
of its derivative) is found the same way: scan a dense float64 grid for sign changes of the
derivative of the function whose extremum we want, then refine each bracket with Brent's method
(``scipy.optimize.brentq``) to machine precision. None of these is read off the grid.

The exact GELU used as the reference here is x * Phi(x) with Phi = 0.5 erfc(-x / sqrt(2)), which
keeps its relative precision in the negative tail (see ``activations.standard_normal_cdf``).
Functions return dataclasses or pandas DataFrames and never print.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.optimize import brentq, minimize_scalar
from scipy.special import ndtr
from torch import nn

from . import activations as act
from .experiments import SEED, SEED_INPUT, SEED_LAYER_SIZES
from .gradients import layer_gradient_means
from .models import ExampleDeepNeuralNetwork

#: The forms this module measures: exact GELU, its two approximations, and SiLU for comparison.
FORMS = ("none", "tanh", "sigmoid", "silu")
#: Display names of the forms.
FORM_LABELS = {
    "none": "GELU, exact x·Φ(x)",
    "tanh": "GELU, tanh approximation",
    "sigmoid": "GELU, x·σ(1.702x)",
    "silu": "SiLU, x·σ(x)",
}
#: Default range and grid of the searches: [-10, 10] with spacing 1e-3.
DEFAULT_RANGE = (-10.0, 10.0)
DEFAULT_GRID_POINTS = 20_001

ArrayFunction = Callable[[np.ndarray], np.ndarray]


def _check_form(form: str, allowed: Sequence[str] = FORMS) -> None:
    if form not in allowed:
        names = ", ".join(repr(f) for f in allowed)
        raise ValueError(f"form must be one of {names}, got {form!r}")


def _check_grid(lo: float, hi: float, n_grid: int) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite lo < hi, got lo={lo!r}, hi={hi!r}")
    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 3:
        raise ValueError(f"n_grid must be an integer >= 3, got {n_grid!r}")


def _numpy(fn: Callable[[torch.Tensor], torch.Tensor]) -> ArrayFunction:
    """Wrap a torch function so that it maps float64 numpy arrays to float64 numpy arrays."""

    def wrapped(x: np.ndarray) -> np.ndarray:
        return fn(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()

    return wrapped


def exact_gelu(x: torch.Tensor) -> torch.Tensor:
    """The reference GELU(x) = x Phi(x), with Phi accurate in the negative tail."""
    return x * act.standard_normal_cdf(x)


def form_functions(form: str) -> tuple[ArrayFunction, ArrayFunction, ArrayFunction]:
    """The value, first and second derivative of one form, as float64 numpy functions.

    ``form`` is one of ``FORMS``: ``"none"`` (exact GELU), ``"tanh"``, ``"sigmoid"`` (GELU's
    approximations, Hendrycks & Gimpel 2016, section 2) or ``"silu"`` (x sigmoid(x)). Derivatives
    are the closed forms of ``gradflow.activations``.
    """
    _check_form(form)
    if form == "none":
        fns = (exact_gelu, act.gelu_derivative, act.gelu_second_derivative)
    elif form == "silu":
        fns = (act.swish, act.swish_derivative, act.swish_second_derivative)
    else:
        fns = (
            lambda x: act.gelu(x, form),
            lambda x: act.gelu_derivative(x, form),
            lambda x: act.gelu_second_derivative(x, form),
        )
    return tuple(_numpy(f) for f in fns)  # type: ignore[return-value]


# --- Refining extrema -------------------------------------------------------------------------


@dataclass(frozen=True)
class Extremum:
    """A local extremum of a function f: f'(x) = 0 there.

    Attributes:
        x: its location.
        value: f(x).
        kind: ``"minimum"`` or ``"maximum"``.
    """

    x: float
    value: float
    kind: str


def refine_extrema(
    f: ArrayFunction,
    df: ArrayFunction,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
    n_grid: int = DEFAULT_GRID_POINTS,
) -> list[Extremum]:
    """All interior local extrema of ``f`` on [lo, hi], located to machine precision.

    The derivative ``df`` is evaluated on ``n_grid`` equally spaced float64 points; every pair of
    neighbours where it changes sign brackets a zero of ``df``, which Brent's method refines
    (absolute tolerance 1e-15). A grid point where ``df`` is exactly zero is taken as it is.
    A sign change from - to + is a minimum, from + to - a maximum. Extrema closer together than
    the grid spacing can be missed; the grid must be fine enough for the function at hand.

    Returns:
        The extrema in increasing order of x.
    """
    _check_grid(lo, hi, n_grid)
    grid = np.linspace(lo, hi, n_grid)
    sign = np.sign(df(grid))

    def scalar_df(t: float) -> float:
        return float(df(np.array([t]))[0])

    extrema = []
    for i in range(n_grid - 1):
        left, right = sign[i], sign[i + 1]
        if left * right < 0:
            root = brentq(scalar_df, grid[i], grid[i + 1], xtol=1e-15, rtol=4 * np.finfo(float).eps)
            kind = "minimum" if left < 0 else "maximum"
        elif left == 0 and 0 < i and sign[i - 1] * right < 0:
            root, kind = grid[i], ("minimum" if sign[i - 1] < 0 else "maximum")
        else:
            continue
        extrema.append(Extremum(float(root), float(f(np.array([root]))[0]), kind))
    return extrema


def _largest(extrema: Sequence[Extremum], key: Callable[[Extremum], float]) -> Extremum:
    if not extrema:
        raise ValueError("no interior extremum found in the search range")
    return max(extrema, key=key)


# --- Approximation errors -----------------------------------------------------------------


@dataclass(frozen=True)
class ApproximationError:
    """How far one form is from the exact GELU.

    Attributes:
        form: ``"tanh"``, ``"sigmoid"`` or ``"silu"``.
        x: the float64 grid.
        error: the signed error form(x) - GELU(x) on the grid.
        relative_error: error / GELU(x) (NaN where GELU(x) = 0, i.e. at x = 0).
        extrema: every local extremum of the error on the range, refined.
        x_max: where |error| is largest (refined, not a grid point). The errors of the forms
            measured here are even functions of x, so the same peak occurs at -x_max; of two
            peaks equal to a relative 1e-9 the one with the larger x is reported.
        max_abs_error: the largest |error|.
        error_at_max: the signed error at ``x_max``.
    """

    form: str
    x: np.ndarray
    error: np.ndarray
    relative_error: np.ndarray
    extrema: list[Extremum]
    x_max: float
    max_abs_error: float
    error_at_max: float


def approximation_error(
    form: str,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
    n_grid: int = DEFAULT_GRID_POINTS,
) -> ApproximationError:
    """The signed error of ``form`` against the exact GELU, and where its magnitude peaks.

    The error e(x) = form(x) - x Phi(x) is evaluated in float64. Its extrema are the zeros of
    e'(x) = form'(x) - GELU'(x), found with ``refine_extrema``; the largest |e| among them is the
    largest error on the range (e tends to 0 at both ends of the default range).
    ``form="silu"`` measures how far SiLU, x sigmoid(x), is from GELU.
    """
    _check_form(form, FORMS[1:])
    f, df, _ = form_functions(form)
    g, dg, _ = form_functions("none")
    _check_grid(lo, hi, n_grid)
    x = np.linspace(lo, hi, n_grid)
    exact = g(x)
    error = f(x) - exact
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(exact != 0, error / np.where(exact != 0, exact, 1.0), np.nan)
    extrema = refine_extrema(lambda t: f(t) - g(t), lambda t: df(t) - dg(t), lo, hi, n_grid)
    # The errors measured here are even in x, so the largest |e| occurs twice; report the x >= 0
    # one (ties within a relative 1e-9 go to the larger x).
    peak = max(abs(e.value) for e in extrema)
    worst = max((e for e in extrema if abs(e.value) >= peak * (1 - 1e-9)), key=lambda e: e.x)
    return ApproximationError(
        form=form, x=x, error=error, relative_error=relative, extrema=extrema,
        x_max=worst.x, max_abs_error=abs(worst.value), error_at_max=worst.value,
    )


def silu_gelu_gap(
    lo: float = DEFAULT_RANGE[0], hi: float = DEFAULT_RANGE[1], n_grid: int = DEFAULT_GRID_POINTS
) -> ApproximationError:
    """SiLU(x) - GELU(x) and where it is largest: ``approximation_error("silu", ...)``."""
    return approximation_error("silu", lo, hi, n_grid)


def relative_error_at(form: str, x: float) -> float:
    """(form(x) - GELU(x)) / GELU(x) at one point, in float64 with the accurate tail of Phi."""
    _check_form(form, FORMS[1:])
    if x == 0:
        raise ValueError("the relative error is undefined at x = 0, where GELU(x) = 0")
    f, _, _ = form_functions(form)
    g, _, _ = form_functions("none")
    point = np.array([float(x)])
    return float((f(point)[0] - g(point)[0]) / g(point)[0])


# --- Shape facts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeFacts:
    """Where one form turns, and how steep it gets.

    Attributes:
        form: one of ``FORMS``.
        minimum: the global minimum of the function (x, value).
        derivative_max: the largest value of the derivative and where it occurs.
        derivative_min: the smallest (most negative) value of the derivative and where.
        derivative_at_zero: the derivative at x = 0.
    """

    form: str
    minimum: Extremum
    derivative_max: Extremum
    derivative_min: Extremum
    derivative_at_zero: float


def shape_facts(
    form: str = "none",
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
    n_grid: int = DEFAULT_GRID_POINTS,
) -> ShapeFacts:
    """The minimum of ``form`` and the extrema of its derivative, refined with Brent's method.

    For the exact GELU the results have closed forms to check against: the derivative
    Phi(x) + x phi(x) has second derivative phi(x) (2 - x^2), so its extrema lie at x = +-sqrt(2);
    the minimum of GELU solves Phi(x) + x phi(x) = 0 and has no closed form.
    """
    _check_form(form)
    f, df, d2f = form_functions(form)
    minima = [e for e in refine_extrema(f, df, lo, hi, n_grid) if e.kind == "minimum"]
    slopes = refine_extrema(df, d2f, lo, hi, n_grid)
    return ShapeFacts(
        form=form,
        minimum=_largest(minima, key=lambda e: -e.value),
        derivative_max=_largest([e for e in slopes if e.kind == "maximum"], key=lambda e: e.value),
        derivative_min=_largest([e for e in slopes if e.kind == "minimum"], key=lambda e: -e.value),
        derivative_at_zero=float(df(np.array([0.0]))[0]),
    )


def shape_table(forms: Sequence[str] = FORMS) -> pd.DataFrame:
    """``shape_facts`` for several forms as one table, a row per form."""
    rows = {}
    for form in forms:
        s = shape_facts(form)
        rows[FORM_LABELS[form]] = {
            "minimum at x": s.minimum.x,
            "minimum value": s.minimum.value,
            "largest slope": s.derivative_max.value,
            "largest slope at x": s.derivative_max.x,
            "smallest slope": s.derivative_min.value,
            "smallest slope at x": s.derivative_min.x,
            "slope at 0": s.derivative_at_zero,
        }
    table = pd.DataFrame(rows).T
    table.index.name = "function"
    return table


# --- Curves for the figures -------------------------------------------------------------------


def _relu_derivative(x: torch.Tensor) -> torch.Tensor:
    return (x > 0).to(x.dtype)


def _tanh_derivative(x: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(x) ** 2


def _sigmoid_derivative(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 - s)


#: The activations of the comparison figures: name -> (value, derivative), both in closed form.
CURVES = {
    "ReLU": (torch.relu, _relu_derivative),
    "GELU (exact)": (exact_gelu, act.gelu_derivative),
    "GELU (tanh approx.)": (act.gelu_tanh, lambda x: act.gelu_derivative(x, "tanh")),
    "SiLU": (act.swish, act.swish_derivative),
    "tanh": (torch.tanh, _tanh_derivative),
    "sigmoid": (torch.sigmoid, _sigmoid_derivative),
}


@dataclass(frozen=True)
class ActivationCurves:
    """Values and derivatives of the activations in ``CURVES`` on a grid.

    Attributes:
        values: index x, one column per activation.
        derivatives: index x, one column per activation (ReLU's derivative at 0 is taken as 0).
    """

    values: pd.DataFrame
    derivatives: pd.DataFrame


def activation_curves(lo: float = -4.0, hi: float = 4.0, n_grid: int = 801) -> ActivationCurves:
    """Evaluate every activation of ``CURVES`` and its closed-form derivative in float64."""
    _check_grid(lo, hi, n_grid)
    x = torch.linspace(lo, hi, n_grid, dtype=torch.float64)
    index = pd.Index(x.numpy(), name="x")
    values = pd.DataFrame({k: f(x).numpy() for k, (f, _) in CURVES.items()}, index=index)
    slopes = pd.DataFrame({k: d(x).numpy() for k, (_, d) in CURVES.items()}, index=index)
    return ActivationCurves(values, slopes)


# --- Where the constants come from ----------------------------------------------------------


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gate(form: str, p: float) -> tuple[ArrayFunction, ArrayFunction]:
    """An approximate gate with free parameter p and its x-derivative (numpy, float64)."""
    if form == "tanh":
        def g(x):
            return 0.5 * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + p * x**3)))

        def dg(x):
            t = np.tanh(_SQRT_2_OVER_PI * (x + p * x**3))
            return 0.5 * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3.0 * p * x * x)
    else:
        def g(x):
            return 1.0 / (1.0 + np.exp(-p * x))

        def dg(x):
            s = 1.0 / (1.0 + np.exp(-p * x))
            return p * s * (1.0 - s)
    return g, dg


def _pdf(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def max_gate_error(form: str, p: float, target: str = "cdf", n_grid: int = 4001) -> float:
    """The largest |error| on [-10, 10] of the gate with parameter p, refined.

    ``form="tanh"``: gate 0.5 (1 + tanh(sqrt(2/pi) (x + p x^3))); ``form="sigmoid"``: sigmoid(p x).
    ``target="cdf"`` measures the gate against Phi; ``target="gelu"`` measures x * gate against
    x Phi(x).
    """
    _check_form(form, ("tanh", "sigmoid"))
    if target not in ("cdf", "gelu"):
        raise ValueError(f"target must be 'cdf' or 'gelu', got {target!r}")
    g, dg = _gate(form, p)
    if target == "cdf":
        def err(x):
            return g(x) - ndtr(x)

        def derr(x):
            return dg(x) - _pdf(x)
    else:
        def err(x):
            return x * (g(x) - ndtr(x))

        def derr(x):
            return (g(x) - ndtr(x)) + x * (dg(x) - _pdf(x))
    extrema = refine_extrema(err, derr, DEFAULT_RANGE[0], DEFAULT_RANGE[1], n_grid)
    return abs(_largest(extrema, key=lambda e: abs(e.value)).value)


@dataclass(frozen=True)
class ConstantFit:
    """Where an approximation's constant comes from, measured.

    Attributes:
        form: ``"tanh"`` (the constant is the cubic coefficient c) or ``"sigmoid"`` (the slope k).
        published: the constant of Hendrycks & Gimpel (2016): 0.044715 or 1.702.
        taylor: the value that matches Phi's Taylor series at 0 one term further than the
            leading slope: 2/(3 pi) - 1/6 for c (third order); for k only the slope can be
            matched, k = sqrt(8/pi).
        cdf_minimax: the value that minimises the largest |gate - Phi|.
        gelu_minimax: the value that minimises the largest |x gate - x Phi|.
        cdf_error: largest |gate - Phi| at each of published, taylor, cdf_minimax, gelu_minimax.
        gelu_error: largest |x gate - x Phi| at the same four values.
    """

    form: str
    published: float
    taylor: float
    cdf_minimax: float
    gelu_minimax: float
    cdf_error: dict[str, float]
    gelu_error: dict[str, float]


def fit_constant(form: str) -> ConstantFit:
    """Compare an approximation's published constant with the values that minimise its error.

    The tanh gate 0.5 (1 + tanh(a (x + c x^3))) matches Phi's slope at 0, 1/sqrt(2 pi), when
    a = sqrt(2/pi); that leaves c. The sigmoid gate sigmoid(k x) has only k. For each, the
    minimax value (smallest largest error) is found with ``scipy.optimize.minimize_scalar``
    (bounded, tolerance 1e-10) over the refined maximum error ``max_gate_error``.
    """
    _check_form(form, ("tanh", "sigmoid"))
    if form == "tanh":
        published, bounds = act.TANH_CUBIC_COEFFICIENT, (0.03, 0.06)
        taylor = 2 / (3 * math.pi) - 1 / 6
    else:
        published, bounds = act.SIGMOID_SLOPE, (1.5, 1.9)
        taylor = math.sqrt(8 / math.pi)

    def minimax(target: str) -> float:
        result = minimize_scalar(
            lambda p: max_gate_error(form, p, target), bounds=bounds, method="bounded",
            options={"xatol": 1e-10},
        )
        return float(result.x)

    cdf_best, gelu_best = minimax("cdf"), minimax("gelu")
    values = {"published": published, "taylor": taylor, "cdf_minimax": cdf_best,
              "gelu_minimax": gelu_best}
    return ConstantFit(
        form=form, published=published, taylor=taylor, cdf_minimax=cdf_best,
        gelu_minimax=gelu_best,
        cdf_error={k: max_gate_error(form, v, "cdf") for k, v in values.items()},
        gelu_error={k: max_gate_error(form, v, "gelu") for k, v in values.items()},
    )


# --- The stochastic view ----------------------------------------------------------------------


@dataclass(frozen=True)
class MonteCarloGELU:
    """Monte Carlo estimates of GELU(x) = E[x m], m ~ Bernoulli(Phi(x)).

    Attributes:
        x: the inputs.
        n_samples: draws of m per input.
        seed: the seed of the generator that drew them.
        estimate: the sample mean of x m per input.
        standard_error: the sample standard deviation of x m over sqrt(n_samples), per input.
        exact: x Phi(x) per input.
    """

    x: np.ndarray
    n_samples: int
    seed: int
    estimate: np.ndarray
    standard_error: np.ndarray
    exact: np.ndarray


def _check_samples(n_samples: int, seed: int) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {seed!r}")


def monte_carlo_gelu(x: Sequence[float], n_samples: int, seed: int) -> MonteCarloGELU:
    """Estimate GELU at each x by averaging x m over ``n_samples`` draws of m ~ Bernoulli(Phi(x)).

    Hendrycks & Gimpel (2016, section 2) motivate GELU as the expectation of this stochastic
    gate: the input is kept (m = 1) with probability Phi(x) and zeroed otherwise, so
    E[x m] = x Phi(x). The draws use a ``torch.Generator`` seeded with ``seed``, in float64.
    """
    _check_samples(n_samples, seed)
    xs = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1)
    if xs.numel() == 0 or not torch.isfinite(xs).all():
        raise ValueError("x must be a non-empty sequence of finite numbers")
    generator = torch.Generator().manual_seed(seed)
    p = act.standard_normal_cdf(xs)
    m = torch.bernoulli(p.expand(n_samples, -1), generator=generator)
    samples = xs * m
    return MonteCarloGELU(
        x=xs.numpy(), n_samples=n_samples, seed=seed,
        estimate=samples.mean(dim=0).numpy(),
        standard_error=(samples.std(dim=0) / math.sqrt(n_samples)).numpy(),
        exact=exact_gelu(xs).numpy(),
    )


@dataclass(frozen=True)
class MonteCarloPath:
    """The running mean of x m, m ~ Bernoulli(Phi(x)), as the number of draws grows.

    Attributes:
        x: the input.
        seed: the generator's seed.
        n: the numbers of draws at which the running mean is recorded.
        running_mean: the mean of the first n draws of x m.
        standard_error: the theoretical standard error |x| sqrt(Phi(x)(1 - Phi(x)) / n).
        exact: x Phi(x).
    """

    x: float
    seed: int
    n: np.ndarray
    running_mean: np.ndarray
    standard_error: np.ndarray
    exact: float


def monte_carlo_path(x: float, n_samples: int, seed: int, n_points: int = 200) -> MonteCarloPath:
    """One sequence of ``n_samples`` draws; its running mean at ~``n_points`` log-spaced n."""
    _check_samples(n_samples, seed)
    if not math.isfinite(x):
        raise ValueError(f"x must be finite, got {x!r}")
    generator = torch.Generator().manual_seed(seed)
    xt = torch.tensor(float(x), dtype=torch.float64)
    p = act.standard_normal_cdf(xt)
    draws = xt * torch.bernoulli(p.expand(n_samples), generator=generator)
    running = torch.cumsum(draws, 0) / torch.arange(1, n_samples + 1, dtype=torch.float64)
    n = np.unique(np.geomspace(1, n_samples, n_points).round().astype(int))
    se = abs(float(x)) * np.sqrt(float(p * (1 - p)) / n)
    return MonteCarloPath(
        x=float(x), seed=seed, n=n, running_mean=running.numpy()[n - 1], standard_error=se,
        exact=float(exact_gelu(xt)),
    )


# --- PyTorch, float32 and the seed ---------------------------------------------------------


@dataclass(frozen=True)
class TorchGeluComparison:
    """``torch.nn.GELU()`` against ``torch.nn.GELU(approximate="tanh")`` and the seed's class.

    Attributes:
        x: the float32 inputs compared.
        allclose: ``torch.allclose(exact, tanh)`` at its default tolerances (rtol 1e-5, atol 1e-8).
        fraction_not_close: the fraction of inputs where ``torch.isclose`` is False.
        max_abs_difference: the largest |exact - tanh| in float32.
        x_at_max: the input where that difference occurs.
        seed_max_abs_difference: the largest |seed GELU - nn.GELU(approximate="tanh")|.
        seed_identical_fraction: the fraction of inputs where those two are bit for bit equal.
        seed_float32_rounding: the largest |seed GELU in float32 - tanh form in float64|.
    """

    x: np.ndarray
    allclose: bool
    fraction_not_close: float
    max_abs_difference: float
    x_at_max: float
    seed_max_abs_difference: float
    seed_identical_fraction: float
    seed_float32_rounding: float


def compare_torch_gelu(
    lo: float = -6.0, hi: float = 6.0, n_grid: int = 12_001
) -> TorchGeluComparison:
    """Evaluate PyTorch's two GELUs and the seed's on a float32 grid and compare them."""
    _check_grid(lo, hi, n_grid)
    x = torch.linspace(lo, hi, n_grid, dtype=torch.float32)
    with torch.no_grad():
        exact = nn.GELU()(x)
        tanh = nn.GELU(approximate="tanh")(x)
        seed = act.GELU()(x)
    diff = (exact - tanh).abs()
    i = int(torch.argmax(diff))
    return TorchGeluComparison(
        x=x.numpy(),
        allclose=bool(torch.allclose(exact, tanh)),
        fraction_not_close=float((~torch.isclose(exact, tanh)).double().mean()),
        max_abs_difference=float(diff[i]),
        x_at_max=float(x[i]),
        seed_max_abs_difference=float((seed - tanh).abs().max()),
        seed_identical_fraction=float((seed == tanh).double().mean()),
        seed_float32_rounding=float((seed.double() - act.gelu(x.double(), "tanh")).abs().max()),
    )


#: The float32 functions whose zero thresholds ``float32_zero_thresholds`` measures.
FLOAT32_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    'nn.GELU()': nn.GELU(),
    'nn.GELU(approximate="tanh")': nn.GELU(approximate="tanh"),
    "tutorial's GELU (gradflow.GELU)": act.GELU(),
    "x·σ(1.702x)": lambda x: act.gelu(x, "sigmoid"),
    "SiLU (nn.SiLU())": nn.SiLU(),
}


def _value_and_grad(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor):
    """``fn(x)`` and its autograd gradient, as PyTorch's vectorised CPU kernels compute them.

    PyTorch runs the elements of a large tensor through SIMD kernels and the last few through
    scalar ones, and in float32's last bits the two can disagree. Padding ``x`` with 64 zeros
    keeps every element of interest in the vectorised part, as in a network's large tensors.
    """
    padded = torch.cat([x.detach(), torch.zeros(64 + (-len(x)) % 64, dtype=x.dtype)])
    padded.requires_grad_(True)
    y = fn(padded)
    (g,) = torch.autograd.grad(y.sum(), padded)
    return y.detach()[: len(x)], g[: len(x)]


def _zero_below(fn: Callable[[torch.Tensor], torch.Tensor], which: int, lo: float) -> float:
    """The first input b of a float32 scan of [lo, 0] at which the output (which=0) or gradient
    (which=1) of ``fn`` is not exactly 0, all inputs before it giving 0; NaN if ``fn`` is not 0
    at ``lo``. The scan has spacing 1e-2, then 1e-5 between the last zero and the first non-zero
    point, so b is within 1e-5 of the boundary.
    """
    def first_nonzero(grid: torch.Tensor) -> int:
        zero = (_value_and_grad(fn, grid)[which] == 0).numpy()
        return -1 if not zero[0] else int(np.argmax(~zero))

    coarse = torch.linspace(lo, 0.0, round(-lo * 100) + 1, dtype=torch.float64)
    i = first_nonzero(coarse.float())
    if i < 0:
        return math.nan
    fine = torch.linspace(float(coarse[i - 1]), float(coarse[i]), 1001, dtype=torch.float64)
    return float(fine.float()[first_nonzero(fine.float())])


def float32_zero_thresholds(lo: float = -100.0) -> pd.DataFrame:
    """Below which input each float32 function's output, and its autograd gradient, are exactly 0.

    Mathematically GELU and its derivative are non-zero for every x < 0 except the minimum; in
    float32 both round to exactly 0 far enough into the negative tail. Scans [lo, 0] in float32
    and locates each boundary to within 1e-5 (see ``_zero_below``), as PyTorch's vectorised CPU
    kernels compute the functions for large tensors. The boundaries are properties of those
    kernels: a single-element tensor (scalar kernel), another CPU or a GPU can give others.

    Returns:
        One row per entry of ``FLOAT32_FUNCTIONS``; columns ``"output is 0 below x ="`` and
        ``"gradient is 0 below x ="`` (NaN: never exactly 0 on [lo, 0]).
    """
    if not (math.isfinite(lo) and lo < -1):
        raise ValueError(f"lo must be a finite number below -1, got {lo!r}")
    rows = {
        name: {"output is 0 below x =": _zero_below(fn, 0, lo),
               "gradient is 0 below x =": _zero_below(fn, 1, lo)}
        for name, fn in FLOAT32_FUNCTIONS.items()
    }
    table = pd.DataFrame(rows).T
    table.index.name = "float32 function"
    return table


def seed_gradients_exact_vs_tanh(seed: int = SEED) -> pd.DataFrame:
    """The seed's gradient table with its tanh GELU and with the exact GELU swapped in.

    Builds the seed's network (``ExampleDeepNeuralNetwork`` with the seed's widths, after
    ``torch.manual_seed(seed)``) with and without shortcuts, then replaces each ``GELU`` module by
    ``nn.GELU()`` and measures the mean |dL/dW| per layer again on the same weights and input.

    Returns:
        Index: (network, weight name); columns ``"tanh (tutorial)"``, ``"exact"``,
        ``"relative difference"`` = exact / tanh - 1.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    x = torch.tensor(SEED_INPUT)
    frames = []
    for label, use_shortcut in (("without shortcut", False), ("with shortcut", True)):
        torch.manual_seed(seed)
        model = ExampleDeepNeuralNetwork(SEED_LAYER_SIZES, use_shortcut=use_shortcut)
        tanh = layer_gradient_means(model, x)
        for layer in model.layers:
            layer[1] = nn.GELU()
        exact = layer_gradient_means(model, x)
        frame = pd.DataFrame({"tanh (tutorial)": tanh, "exact": exact})
        frame["relative difference"] = frame["exact"] / frame["tanh (tutorial)"] - 1.0
        frame.index = pd.MultiIndex.from_product(
            [[label], frame.index], names=["network", "weight"]
        )
        frames.append(frame)
    return pd.concat(frames)
