"""GELU's three forms and their closed-form derivatives, checked against independent
references: math.erf/erfc/tanh/exp in float64, autograd, and PyTorch's own GELU."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradflow import activations as act
from seed_reference import GELU as SeedGELU

FORMS = ("none", "tanh", "sigmoid")
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

# Many points on [-10, 10], plus zero, tiny inputs and the ends.
POINTS = sorted(
    {round(-10.0 + 0.01 * i, 10) for i in range(2001)} | {0.0, 1e-8, -1e-8, 1e-3, -1e-3}
)


def reference_gate(x: float, form: str) -> float:
    if form == "tanh":
        return 0.5 * (1.0 + math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))
    if form == "sigmoid":
        return 1.0 / (1.0 + math.exp(-1.702 * x))
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def reference_gelu(x: float, form: str) -> float:
    return x * reference_gate(x, form)


def as_tensor(values, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


@pytest.mark.parametrize("form", FORMS)
def test_each_form_matches_float64_reference_up_to_abs_x_10(form):
    x = as_tensor(POINTS)
    expected = as_tensor([reference_gelu(v, form) for v in POINTS])
    torch.testing.assert_close(act.gelu(x, form), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("form", FORMS)
def test_each_form_in_float32_matches_float64_reference(form):
    x32 = as_tensor(POINTS, torch.float32)
    expected = as_tensor([reference_gelu(v, form) for v in x32.double().tolist()])
    # float32 carries ~7 digits: at |x| = 10 one unit in the last place is ~1e-6.
    torch.testing.assert_close(act.gelu(x32, form).double(), expected, rtol=0, atol=4e-6)


def test_exact_form_matches_math_erf_in_float64():
    for v in POINTS:
        got = act.gelu(torch.tensor([v], dtype=torch.float64)).item()
        assert got == pytest.approx(0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))), abs=1e-15)


@pytest.mark.parametrize("form", FORMS)
def test_gate_matches_reference_and_gelu_is_x_times_gate(form):
    x = as_tensor(POINTS)
    gate = act.gelu_gate(x, form)
    torch.testing.assert_close(gate, as_tensor([reference_gate(v, form) for v in POINTS]),
                               rtol=0, atol=1e-15)
    torch.testing.assert_close(x * gate, act.gelu(x, form), rtol=0, atol=1e-14)


def test_standard_normal_cdf_keeps_relative_precision_in_the_negative_tail():
    for v in (-5.0, -10.0, -20.0, -30.0):
        expected = 0.5 * math.erfc(-v / math.sqrt(2.0))
        got = act.standard_normal_cdf(torch.tensor([v], dtype=torch.float64)).item()
        assert got == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("form", ("tanh", "sigmoid"))
def test_approximate_gate_error_is_odd_in_x(form):
    """g(-x) = 1 - g(x) holds for Phi and both approximate gates, so g - Phi is odd."""
    positive = [v for v in POINTS if v > 0]
    x = as_tensor(positive)
    phi = as_tensor([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in positive])
    phi_neg = as_tensor([0.5 * math.erfc(v / math.sqrt(2.0)) for v in positive])
    error_pos = act.gelu_gate(x, form) - phi
    error_neg = act.gelu_gate(-x, form) - phi_neg
    torch.testing.assert_close(error_neg, -error_pos, rtol=0, atol=1e-15)
    assert error_pos.abs().max() > 1e-5  # the error itself is not zero: the test has teeth


@pytest.mark.parametrize("form,bound_at_8", [("none", 1e-13), ("tanh", 1e-13), ("sigmoid", 1e-4)])
def test_gelu_minus_relu_goes_to_zero_as_abs_x_grows(form, bound_at_8):
    x = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    gap = (act.gelu(x, form) - torch.relu(x)).abs()
    tails = [gap[x.abs() >= t].max().item() for t in (1.0, 2.0, 4.0, 6.0, 8.0)]
    assert all(a > b or b == 0 for a, b in itertools.pairwise(tails)), tails
    assert tails[0] > 0.01  # near zero GELU is far from ReLU
    assert tails[-1] < bound_at_8


# --- derivatives --------------------------------------------------------------------------------


class ClosedForm(torch.autograd.Function):
    """f with the package's closed-form derivative as its backward, for gradcheck."""

    @staticmethod
    def forward(ctx, x, form, order):
        ctx.save_for_backward(x)
        ctx.form, ctx.order = form, order
        if order == 0:
            return act.gelu(x, form)
        return act.gelu_derivative(x, form)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        d = act.gelu_derivative if ctx.order == 0 else act.gelu_second_derivative
        return grad * d(x, ctx.form), None, None


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("order", (0, 1))
def test_closed_form_derivatives_pass_gradcheck(form, order):
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(64, generator=generator, dtype=torch.float64) * 12 - 6).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ClosedForm.apply(t, form, order), (x,))


@pytest.mark.parametrize("form", FORMS)
def test_closed_form_derivatives_match_autograd_in_float64(form):
    x = as_tensor(POINTS).requires_grad_(True)
    (first,) = torch.autograd.grad(act.gelu(x, form).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), x)
    torch.testing.assert_close(act.gelu_derivative(x.detach(), form), first.detach(),
                               rtol=0, atol=1e-13)
    torch.testing.assert_close(act.gelu_second_derivative(x.detach(), form), second,
                               rtol=0, atol=1e-13)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("derivative", (act.gelu_derivative, act.gelu_second_derivative))
def test_closed_form_derivatives_work_in_float32(form, derivative):
    x32 = as_tensor(POINTS, torch.float32)
    got = derivative(x32, form)
    assert got.dtype == torch.float32
    # Around x = -5.2 float32 tanh saturates to -1, so sech^2 rounds to 0 while the float64
    # value is still a few 1e-6 (the same saturation zeroes the float32 forward there).
    torch.testing.assert_close(got.double(), derivative(x32.double(), form), rtol=0, atol=5e-6)


def test_exact_derivative_identities():
    """GELU'(x) = Phi(x) + x phi(x): GELU'(0) = 1/2 and GELU'(-x) = 1 - GELU'(x)."""
    x = as_tensor([v for v in POINTS if v >= 0])
    d = act.gelu_derivative(x)
    expected = as_tensor([0.5 * (1 + math.erf(v / math.sqrt(2))) + v * math.exp(-v * v / 2)
                          / math.sqrt(2 * math.pi) for v in x.tolist()])
    torch.testing.assert_close(d, expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(act.gelu_derivative(-x), 1 - d, rtol=0, atol=1e-15)
    for form in FORMS:
        assert act.gelu_derivative(torch.zeros(1, dtype=torch.float64), form).item() == 0.5


def test_derivatives_stay_finite_for_huge_inputs():
    x = torch.tensor([-1e30, -1e20, 1e20, 1e30], dtype=torch.float32)
    for form in FORMS:
        assert torch.isfinite(act.gelu_derivative(x, form)).all(), form
        assert torch.isfinite(act.gelu_second_derivative(x, form)).all(), form


# --- the Swish family -------------------------------------------------------------------------


def test_swish_family_contains_silu_and_the_sigmoid_approximation():
    x = as_tensor(POINTS)
    torch.testing.assert_close(act.swish(x), F.silu(x), rtol=0, atol=1e-14)
    assert torch.equal(act.swish(x, act.SIGMOID_SLOPE), act.gelu(x, "sigmoid"))


@pytest.mark.parametrize("beta", (0.5, 1.0, 1.702, 3.0))
def test_swish_derivatives_match_autograd(beta):
    x = as_tensor(POINTS).requires_grad_(True)
    (first,) = torch.autograd.grad(act.swish(x, beta).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), x)
    torch.testing.assert_close(act.swish_derivative(x.detach(), beta), first.detach(),
                               rtol=0, atol=1e-13)
    torch.testing.assert_close(act.swish_second_derivative(x.detach(), beta), second,
                               rtol=0, atol=1e-13)


@pytest.mark.parametrize("beta", (0, -1.0, "1", True, float("nan")))
def test_swish_rejects_a_beta_that_is_not_a_positive_number(beta):
    with pytest.raises(ValueError, match="beta must be a positive number"):
        act.swish(torch.zeros(2), beta)


# --- errors at the boundary -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", (act.gelu, act.gelu_gate, act.gelu_derivative, act.gelu_second_derivative)
)
@pytest.mark.parametrize("bad", ("erf", "Tanh", "", None))
def test_unknown_approximate_raises_value_error_naming_the_allowed_values(fn, bad):
    with pytest.raises(ValueError) as info:
        fn(torch.zeros(3), bad)
    message = str(info.value)
    assert all(repr(name) in message for name in FORMS)
    assert repr(bad) in message


@pytest.mark.parametrize("fn", (act.gelu, act.gelu_gate, act.gelu_derivative, act.swish))
def test_non_float_tensor_input_raises_type_error(fn):
    with pytest.raises(TypeError, match="floating-point torch.Tensor"):
        fn([0.0, 1.0])
    with pytest.raises(TypeError, match="floating-point torch.Tensor"):
        fn(torch.tensor([0, 1]))


# --- PyTorch and the seed ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-6), (torch.float64, 1e-14)])
def test_seed_gelu_and_tanh_form_match_torch_tanh_gelu(dtype, atol):
    x = as_tensor(POINTS, dtype)
    expected = F.gelu(x, approximate="tanh")
    torch.testing.assert_close(act.GELU()(x), expected, rtol=0, atol=atol)
    torch.testing.assert_close(act.gelu(x, "tanh"), expected, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-6), (torch.float64, 1e-14)])
def test_exact_form_matches_torch_default_gelu(dtype, atol):
    x = as_tensor(POINTS, dtype)
    torch.testing.assert_close(act.gelu(x), F.gelu(x), rtol=0, atol=atol)
    torch.testing.assert_close(act.gelu(x), torch.nn.GELU()(x), rtol=0, atol=atol)


def test_gelu_module_is_the_seed_formula_bit_for_bit():
    x = as_tensor(POINTS, torch.float32)
    assert torch.equal(act.GELU()(x), SeedGELU()(x))
    assert torch.equal(act.gelu(x, "tanh"), SeedGELU()(x))


def test_gelu_preserves_shape_and_dtype():
    x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
    for form in FORMS:
        for fn in (act.gelu, act.gelu_derivative, act.gelu_second_derivative, act.gelu_gate):
            y = fn(x, form)
            assert y.shape == x.shape and y.dtype == x.dtype


# --- The registry ------------------------------------------------------------------------------


def test_the_registry_holds_every_activation_of_the_book_once():
    assert act.NAMES == ("sigmoid", "tanh", "relu", "gelu", "gelu_tanh", "gelu_sigmoid", "silu")
    assert [s.name for s in act.REGISTRY.values()] == list(act.NAMES)
    titles = [s.title for s in act.REGISTRY.values()]
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", act.NAMES)
def test_each_closed_form_derivative_is_autograd_of_the_function(name):
    spec = act.REGISTRY[name]
    x = torch.linspace(-8, 8, 3201, dtype=torch.float64)
    expected = act.autograd_derivative(name, x)
    torch.testing.assert_close(spec.derivative(x), expected, rtol=1e-12, atol=1e-13)
    # and the autograd helper is torch's own backward pass through the function
    leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(spec.fn(leaf).sum(), leaf)
    assert torch.equal(expected, grad)


@pytest.mark.parametrize("name", act.NAMES)
def test_each_numpy_form_is_its_torch_twin(name):
    spec = act.REGISTRY[name]
    x = torch.linspace(-12, 12, 4801, dtype=torch.float64)
    grid = x.numpy()
    np.testing.assert_allclose(spec.np_fn(grid), spec.fn(x).numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(spec.np_derivative(grid), spec.derivative(x).numpy(),
                               rtol=1e-10, atol=1e-14)


def test_the_gelu_forms_of_the_registry_are_gelus_approximate_argument():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    for approximate, name in act.GELU_FORMS.items():
        assert torch.equal(act.REGISTRY[name].fn(x), act.gelu(x, approximate))


def test_the_fused_tanh_kernel_is_used_only_while_it_computes_our_formula(monkeypatch):
    x = torch.linspace(-4, 4, 9, dtype=torch.float64)
    fused = act.fast_fn("gelu_tanh")
    torch.testing.assert_close(fused(x), act.gelu_tanh(x), rtol=0, atol=1e-15)
    monkeypatch.setattr(act, "TANH_CUBIC_COEFFICIENT", 0.1)
    assert torch.equal(act.fast_fn("gelu_tanh")(x), act.gelu_tanh(x))


def test_unknown_activation_names_the_bad_value_and_the_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'swish'; valid activations are 'sigmoid'"):
        act.spec("swish")
