"""gradflow.tutorial_editions: the tutorial notebook's two printouts, and the float32 replay that
reproduces one of them and this machine's PyTorch bit for bit."""

import struct
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch

import gradflow
import seed_reference as seed
import tutorial_editions_reference as ref
from gradflow import tutorial as experiments
from gradflow import tutorial_editions as editions

COPIES = {"557ddfc": (ref.COMMIT_557DDFC, ref.PRINTED_557DDFC),
          "3829ccd": (ref.COMMIT_3829CCD, ref.PRINTED_3829CCD)}


def bits(value):
    """The float32 bit pattern of value, by struct (not numpy)."""
    return struct.unpack("<i", struct.pack("<f", value))[0]


@pytest.mark.parametrize("key", ["557ddfc", "3829ccd"])
def test_editions_are_the_notebooks_printouts(key):
    commit, printed = COPIES[key]
    edition = editions.EDITIONS[key]
    assert edition.commit == commit and commit.startswith(key)
    for use_shortcut, column in ((False, experiments.PLAIN), (True, experiments.SHORTCUT)):
        assert list(edition.gradients[column].values()) == printed[use_shortcut]
        assert list(edition.gradients[column]) == [f"layers.{i}.0.weight" for i in range(5)]


def test_the_editions_differ_by_one_to_three_float32_ulps_in_seven_numbers():
    a, b = ref.PRINTED_557DDFC, ref.PRINTED_3829CCD
    expected = [abs(bits(x) - bits(y)) for s in (False, True) for x, y in zip(a[s], b[s])]
    ulps = editions.ulps_between(editions.EDITIONS["557ddfc"].gradients,
                                 editions.EDITIONS["3829ccd"].gradients)
    got = [ulps[c][n] for c in (experiments.PLAIN, experiments.SHORTCUT) for n in ulps[c]]
    assert got == expected
    assert sum(u > 0 for u in got) == 7 and max(got) == 3 and min(u for u in got if u) == 1


def test_the_seed_copy_is_557ddfc_but_for_one_number_that_is_3829ccds():
    seed_numbers = seed.PUBLISHED_WITHOUT_SHORTCUT + seed.PUBLISHED_WITH_SHORTCUT
    first = ref.PRINTED_557DDFC[False] + ref.PRINTED_557DDFC[True]
    second = ref.PRINTED_3829CCD[False] + ref.PRINTED_3829CCD[True]
    differ = [i for i, (s, f) in enumerate(zip(seed_numbers, first)) if s != f]
    assert differ == [6]  # with shortcut, layers.1.0.weight
    assert seed_numbers[6] == second[6]
    assert editions.agreement(editions.SEED_EDITION.gradients,
                              editions.EDITIONS["557ddfc"].gradients) == 9


def test_replay_reproduces_3829ccd_bit_for_bit():
    """Pure float32 arithmetic (numpy scalars and exact rationals): the same on every machine."""
    table = editions.replay_table(editions.NOTEBOOK_3829CCD)
    for use_shortcut, column in ((False, experiments.PLAIN), (True, experiments.SHORTCUT)):
        assert list(table[column].values()) == ref.PRINTED_3829CCD[use_shortcut]


def test_each_of_the_two_changes_alone_does_not_reproduce_3829ccd():
    target = editions.EDITIONS["3829ccd"].gradients
    base = replace(editions.NOTEBOOK_3829CCD, sqrt_ulps=1, backward_fused=False,
                   backward_partial_sums=1)
    for arithmetic in (base, replace(base, sqrt_ulps=0),
                       replace(base, backward_fused=True, backward_partial_sums=2)):
        assert editions.agreement(editions.replay_table(arithmetic), target) < 10


pinned = pytest.mark.skipif(
    not torch.__version__.startswith("2.13")
    or torch.backends.cpu.get_cpu_capability() != "AVX512",
    reason="the PyTorch 2.13 order was measured with PyTorch 2.13 on an AVX512 CPU",
)


@pinned
@pytest.mark.parametrize("torch_seed", [0, 4, 2024])
@pytest.mark.parametrize("use_shortcut", [False, True])
@pytest.mark.parametrize("x", [[1.0, 0.0, -1.0], [0.3, -1.7, 2.2]])
def test_replay_in_pytorchs_order_is_this_machines_pytorch(torch_seed, use_shortcut, x):
    """Against the tutorial's own code, run by PyTorch (tests/seed_reference.py), at seeds and
    inputs the book does not use."""
    torch.manual_seed(torch_seed)
    theirs = seed.ExampleDeepNeuralNetwork(seed.LAYER_SIZES, use_shortcut)
    torch.manual_seed(torch_seed)
    ours = gradflow.ExampleDeepNeuralNetwork(seed.LAYER_SIZES, use_shortcut)
    live = seed.seed_gradients(theirs, torch.tensor([x]))
    assert editions.replay_gradients(ours, x, editions.PYTORCH_2_13_AVX512) == live


@pinned
def test_pytorch_table_is_the_tutorials_float32_statistic():
    table = editions.pytorch_table()
    for use_shortcut, column in ((False, experiments.PLAIN), (True, experiments.SHORTCUT)):
        torch.manual_seed(seed.SEED)
        model = seed.ExampleDeepNeuralNetwork(seed.LAYER_SIZES, use_shortcut)
        expected = seed.seed_gradients(model, torch.tensor(seed.SAMPLE_INPUT))
        assert table[column] == expected


def test_pytorchs_tanh_changes_nothing_in_the_3829ccd_replay():
    table = editions.replay_table(replace(editions.NOTEBOOK_3829CCD, tanh="pytorch"))
    assert editions.agreement(table, editions.EDITIONS["3829ccd"].gradients) == 10


def test_sqrt_2_over_pi_rounding():
    f = np.float32(2 / np.pi)
    nearest = editions.Float32Arithmetic("x").sqrt_2_over_pi
    # the float32 nearest to sqrt(f): f lies between the squares of the two midpoints around it
    below, above = np.nextafter(nearest, np.float32(0)), np.nextafter(nearest, np.float32(1))
    target = Fraction(float(f))
    mid_low = (Fraction(float(below)) + Fraction(float(nearest))) / 2
    mid_high = (Fraction(float(nearest)) + Fraction(float(above))) / 2
    assert mid_low**2 < target < mid_high**2
    assert editions.Float32Arithmetic("x", sqrt_ulps=1).sqrt_2_over_pi == above
    assert editions.Float32Arithmetic("x", sqrt_ulps=-1).sqrt_2_over_pi == below


def test_fused_multiply_add_rounds_once():
    eps = 2.0**-23
    # (1 + eps)(1 - eps) - 1 = -eps^2 exactly; rounding the product first gives 0
    assert editions.fused_multiply_add(1 + eps, 1 - eps, -1.0) == np.float32(-(eps**2))
    assert np.float32(np.float32(1 + eps) * np.float32(1 - eps)) - np.float32(1) == 0
    # a case where rounding to float64 first and then to float32 is wrong (double rounding):
    # a*b + c = 1 + 2^-23 + 2^-24 - 2^-70, just below the midpoint 1 + 2^-23 + 2^-24
    a, b, c = 2.0**-12 * (1 + eps), 2.0**-12 * (1 - eps), 1 + eps
    assert np.float32(a * b + c) == np.float32(1 + 2 * eps)  # double rounding: up, to even
    assert editions.fused_multiply_add(a, b, c) == np.float32(1 + eps)


def test_round_to_float32_ties_to_even():
    eps = Fraction(1, 2**23)
    assert editions.round_to_float32(1 + eps / 2) == np.float32(1.0)
    assert editions.round_to_float32(1 + 3 * eps / 2) == np.float32(1 + 2 * 2.0**-23)
    assert editions.round_to_float32(Fraction(1, 3)) == np.float32(1 / 3)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [("forward_partial_sums", 0, "forward_partial_sums must be a positive integer"),
     ("backward_partial_sums", 1.5, "backward_partial_sums must be a positive integer"),
     ("sum_lanes", -8, "sum_lanes must be a positive integer"),
     ("tanh", "libm", "tanh must be one of")],
)
def test_bad_arithmetic_is_rejected(field, value, error):
    with pytest.raises(ValueError, match=error):
        editions.Float32Arithmetic("bad", **{field: value})


def test_sqrt_ulps_must_be_an_integer():
    with pytest.raises(TypeError, match="sqrt_ulps must be an integer"):
        editions.Float32Arithmetic("bad", sqrt_ulps=0.5)


def test_replay_rejects_what_it_cannot_replay():
    model = gradflow.ExampleDeepNeuralNetwork([3, 3, 1], use_shortcut=True)
    with pytest.raises(ValueError, match="one input of width"):
        editions.replay_gradients(model, [1.0, 2.0], editions.NOTEBOOK_3829CCD)
    wide = gradflow.ExampleDeepNeuralNetwork([3, 3, 2], use_shortcut=True)
    with pytest.raises(ValueError, match="one output"):
        editions.replay_gradients(wide, [1.0, 0.0, -1.0], editions.NOTEBOOK_3829CCD)
    with pytest.raises(TypeError, match="ExampleDeepNeuralNetwork"):
        editions.replay_gradients(torch.nn.Linear(3, 1), [1.0, 0.0, -1.0],
                                  editions.NOTEBOOK_3829CCD)
    with pytest.raises(TypeError, match="Float32Arithmetic"):
        editions.replay_gradients(model, [1.0, 0.0, -1.0], "3829ccd")


def test_this_build_agrees_with_both_printouts_to_the_four_digits_the_tables_show():
    # The chapter says so; its build does not assert it (tests/test_book_build.py edits GELU).
    built = gradflow.compare_shortcuts().gradients
    for key in ("557ddfc", "3829ccd"):
        _, printed = COPIES[key]
        for use_shortcut, column in ((False, experiments.PLAIN), (True, experiments.SHORTCUT)):
            assert [gradflow.format_gradient(v) for v in built[column]] == [
                gradflow.format_gradient(v) for v in printed[use_shortcut]], (key, column)
