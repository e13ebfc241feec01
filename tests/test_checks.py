"""gradflow.checks: every check returns the value it accepts and names the bad value it rejects."""

import numpy as np
import pandas as pd
import pytest

from gradflow import checks


def test_accepted_values_come_back_as_plain_python():
    assert checks.positive_int("depth", np.int64(3)) == 3 and type(checks.positive_int("d", 3)) is int
    assert checks.positive_ints("depths", (1, 2)) == [1, 2]
    assert checks.positive_number("gain", 2) == 2.0
    assert checks.non_negative_number("lambda", 0) == 0.0
    assert checks.seeds(range(3)) == [0, 1, 2]
    assert checks.widths((3, 4, 1)) == [3, 4, 1]
    assert checks.one_of("form", "tanh", ("none", "tanh")) == "tanh"
    assert checks.some_of("placements", ["pre"], ("pre", "post")) == ["pre"]


@pytest.mark.parametrize("call, error, message", [
    (lambda: checks.positive_int("depth", 0), ValueError, "depth must be a positive integer, got 0"),
    (lambda: checks.positive_int("depth", True), ValueError, "got True"),
    (lambda: checks.positive_ints("depths", []), ValueError, r"depths must be a non-empty list"),
    (lambda: checks.positive_ints("depths", [2, -1]), ValueError, r"got \[2, -1\]"),
    (lambda: checks.positive_number("lr", 0.0), ValueError, "lr must be a positive number, got 0.0"),
    (lambda: checks.non_negative_number("lambda", -0.5), ValueError, "lambda must be a number >= 0, got -0.5"),
    (lambda: checks.non_negative_number("lambda", False), ValueError, "got False"),
    (lambda: checks.seeds([1, 1]), ValueError, r"seeds must be distinct, got \[1, 1\]"),
    (lambda: checks.seeds([1.5]), ValueError, r"non-empty list of ints, got \[1.5\]"),
    (lambda: checks.seed("7"), TypeError, "seed must be an integer, got '7'"),
    (lambda: checks.widths([3]), ValueError, r"needs at least two entries .* got \[3\]"),
    (lambda: checks.widths([3, 0], "layer_sizes"), ValueError, r"layer_sizes\[1\] must be a positive"),
    (lambda: checks.widths("33"), TypeError, "sequence of positive integers, got '33'"),
    (lambda: checks.one_of("form", "x", ("a", "b")), ValueError, "form must be one of 'a', 'b', got 'x'"),
    (lambda: checks.one_of("n", "x", ("a",), what="norm"), ValueError,
     "unknown norm 'x'; valid norms are 'a'"),
    (lambda: checks.some_of("kinds", ["z"], ("a",)), ValueError, r"drawn from \('a',\), got \['z'\]"),
])
def test_rejected_values_are_named_in_the_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_missing_columns_are_named_with_those_present():
    frame = pd.DataFrame({"layer": [1], "ratio": [0.5]})
    checks.columns(frame, ["layer"], "profiles")
    with pytest.raises(ValueError, match=r"profiles needs the columns \['layer', 'seed'\]; "
                                         r"missing \['seed'\], it has \['layer', 'ratio'\]"):
        checks.columns(frame, ["layer", "seed"], "profiles")
