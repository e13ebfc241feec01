"""GELU measured: approximation errors, shape facts and where the constants come from.

Every location reported here (the largest error of an approximation, GELU's minimum, the extrema
of its derivative) is found the same way: scan a dense float64 grid for sign changes of the
derivative of the function whose extremum we want, then refine each bracket with Brent's method
(``scipy.optimize.brentq``) to machine precision. None of these is read off the grid.

The exact GELU used as the reference here is x * Phi(x) with Phi = 0.5 erfc(-x / sqrt(2)), which
keeps its relative precision in the negative tail (see ``activations.standard_normal_cdf``).
Functions return dataclasses or pandas DataFrames and never print. Part of the GELU chapter
(``book/gelu.md``); ``stochastic.py`` and ``pytorch.py`` beside it hold its other experiments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.optimize import brentq, minimize_scalar

from ... import activations as act
from ... import checks

#: The forms this module measures: exact GELU, its two approximations, and SiLU for comparison.
FORMS = ("none", "tanh", "sigmoid", "silu")
#: Each form's name in the activation registry, and its display name from there.
FORM_ACTIVATIONS = {**act.GELU_FORMS, "silu": "silu"}
FORM_LABELS = {form: act.REGISTRY[name].formula for form, name in FORM_ACTIVATIONS.items()}
#: Default range and grid of the searches: [-10, 10] with spacing 1e-3.
DEFAULT_RANGE = (-10.0, 10.0)
DEFAULT_GRID_POINTS = 20_001

ArrayFunction = Callable[[np.ndarray], np.ndarray]


def _check_form(form: str, allowed: Sequence[str] = FORMS) -> None:
    checks.one_of("form", form, allowed)


def _check_grid(lo: float, hi: float, n_grid: int) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite lo < hi, got lo={lo!r}, hi={hi!r}")
    if checks.positive_int("n_grid", n_grid) < 3:
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


#: The activations of the comparison figures: label -> (value, closed-form derivative), from the
#: activation registry.
CURVES = {
    act.REGISTRY[name].label: (act.REGISTRY[name].fn, act.REGISTRY[name].derivative)
    for name in ("relu", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid")
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


# --- Where the constants could come from (a reconstruction; the paper cites Choudhury 2014) ---


def _gate(form: str, p: float) -> tuple[ArrayFunction, ArrayFunction]:
    """An approximate gate with free parameter p and its x-derivative (numpy, float64)."""
    gate = act.np_tanh_gate if form == "tanh" else act.np_sigmoid_gate

    def g(x):
        return gate(x, p)[0]

    def dg(x):
        return gate(x, p)[1]

    return g, dg


def max_gate_error(form: str, p: float, target: str = "cdf", n_grid: int = 4001) -> float:
    """The largest |error| on [-10, 10] of the gate with parameter p, refined.

    ``form="tanh"``: gate 0.5 (1 + tanh(sqrt(2/pi) (x + p x^3))); ``form="sigmoid"``: sigmoid(p x).
    ``target="cdf"`` measures the gate against Phi; ``target="gelu"`` measures x * gate against
    x Phi(x).
    """
    _check_form(form, ("tanh", "sigmoid"))
    checks.one_of("target", target, ("cdf", "gelu"))
    g, dg = _gate(form, p)
    if target == "cdf":
        def err(x):
            return g(x) - act.np_normal_cdf(x)

        def derr(x):
            return dg(x) - act.np_normal_pdf(x)
    else:
        def err(x):
            return x * (g(x) - act.np_normal_cdf(x))

        def derr(x):
            return (g(x) - act.np_normal_cdf(x)) + x * (dg(x) - act.np_normal_pdf(x))
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


# --- The explorable figure: the error of x * gate(x; p) as the constant p moves ----------------

#: Points of [0, 10] on which ``constant_sweep`` reads the largest error (spacing 1e-3).
SWEEP_DENSE_POINTS = 10_001
#: The constants the explorable's sliders step through, within ``fit_constant``'s bounds: the
#: sigmoid form's slope k and the tanh form's cubic coefficient c.
SWEEP_CONSTANTS = {
    "sigmoid": tuple(round(1.50 + 0.01 * i, 2) for i in range(41)),    # 1.50, 1.51, ..., 1.90
    "tanh": tuple(round(0.030 + 0.001 * i, 3) for i in range(31)),     # 0.030, 0.031, ..., 0.060
}


@dataclass(frozen=True)
class ConstantSweep:
    """The error e(x) = x gate(x; p) - x Phi(x) of one approximation for each constant p.

    Attributes:
        form: ``"tanh"`` (p is the cubic coefficient c) or ``"sigmoid"`` (p is the slope k).
        curves: e(x) on the plotting grid, one row per constant (index ``constant``), one column
            per x.
        largest: one row per constant: ``max_abs_error``, the largest |e| on a dense grid of
            [0, 10] (e is even, so |x| is enough), ``at_abs_x``, where it occurs, and
            ``error_at_max``, the signed error there.
    """

    form: str
    curves: pd.DataFrame
    largest: pd.DataFrame


def constant_sweep(
    form: str,
    constants: Sequence[float] | None = None,
    lo: float = -4.0,
    hi: float = 4.0,
    n_grid: int = 161,
    n_dense: int = SWEEP_DENSE_POINTS,
) -> ConstantSweep:
    """The GELU error of the ``form`` approximation for every constant, vectorised in float64.

    ``constants`` defaults to ``SWEEP_CONSTANTS[form]``. The curves are on ``n_grid`` points of
    [lo, hi]; the largest error is read off ``n_dense`` points of [0, 10] (spacing 1e-3 by
    default), so it is within about 1e-7 of the refined maximum of ``max_gate_error`` (its
    location within half the spacing).
    """
    _check_form(form, ("tanh", "sigmoid"))
    _check_grid(lo, hi, n_grid)
    _check_grid(0.0, DEFAULT_RANGE[1], n_dense)
    p = np.asarray(SWEEP_CONSTANTS[form] if constants is None else constants, dtype=float)
    if p.ndim != 1 or p.size == 0 or not np.all(p > 0):
        raise ValueError(f"constants must be a non-empty list of positive numbers, got {constants!r}")
    gate = act.np_tanh_gate if form == "tanh" else act.np_sigmoid_gate

    def error(x: np.ndarray) -> np.ndarray:   # shape (constants, x)
        return x * (gate(x[None, :], p[:, None])[0] - act.np_normal_cdf(x)[None, :])

    x = np.linspace(lo, hi, n_grid)
    index = pd.Index(p, name="constant")
    curves = pd.DataFrame(error(x), index=index, columns=pd.Index(x, name="x"))
    dense = np.linspace(0.0, DEFAULT_RANGE[1], n_dense)
    magnitude = np.abs(error(dense))
    at = magnitude.argmax(axis=1)
    rows = np.arange(p.size)
    largest = pd.DataFrame({"max_abs_error": magnitude[rows, at], "at_abs_x": dense[at],
                            "error_at_max": error(dense)[rows, at]}, index=index)
    return ConstantSweep(form=form, curves=curves, largest=largest)
