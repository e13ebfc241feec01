"""gradflow.book: the helpers every chapter's first cell imports."""

import numpy as np
import pandas as pd
import pytest

from gradflow import book


def test_numbers_and_tables_are_printed_as_the_chapters_print_them():
    assert book.sig(0.000123456) == "0.000123" and book.sig(12345.6, 2) == "1.2e+04"
    frame = pd.DataFrame({"a": [0.123456, 2.0], "b": ["x", "y"]})
    assert book.as_strings(frame).to_dict("list") == {"a": ["0.123", "2"], "b": ["x", "y"]}
    assert book.as_strings(frame, ".2e")["a"].tolist() == ["1.23e-01", "2.00e+00"]


def test_a_time_is_stated_against_its_budget_so_that_pages_stay_identical():
    assert book.budget_note(12.3, 90) == "less than the 90 s budget"
    assert book.budget_note(91.2, 90) == "91 s, more than the 90 s budget"
    assert book.budget_note(50.0, 120, within="less than two minutes") == "less than two minutes"
    assert book.budget_note(130.4, 120, within="less than two minutes") == "130 s"


def test_glue_number_glues_a_plain_float(monkeypatch):
    glued = {}
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda key, value, display: glued.update({key: value}))
    book.glue_number("x", np.float32(0.5))
    assert glued == {"x": 0.5} and type(glued["x"]) is float


def test_minutes_reads_as_prose():
    from gradflow.book import minutes

    assert minutes(64.2) == "a minute"
    assert minutes(14.0) == "less than a minute" and minutes(0) == "less than a minute"
    assert minutes(109) == "2 minutes" and minutes(531.8) == "9 minutes"
    with pytest.raises(ValueError, match="non-negative"):
        minutes(-1)


def test_study_time_says_the_processes_when_the_record_keeps_them():
    from gradflow.book import study_time

    assert study_time({"seconds": 531.8, "jobs": 2}) == "9 minutes in 2 parallel processes"
    assert study_time({"seconds": 64.0, "jobs": 1}) == "a minute in one process"
    assert study_time({"seconds": 200.0}) == "3 minutes"
