"""What every chapter's code does besides its experiments: set up the page, glue numbers into the
prose, print tables as text, and state a time against a budget.

A chapter's first (hidden) cell calls ``start_page()`` and imports these; the chapters then glue
numbers with ``glue_number`` rather than each declaring its own.
"""

from __future__ import annotations

import time

import pandas as pd

from .plotting import use_book_style


def start_page(threads: int | None = None) -> float:
    """Apply the book's figure style and, with ``threads``, limit torch to that many threads (a
    chapter's tensors are small: on a small shared machine a second thread mostly waits for the
    first). Returns the start time (``time.perf_counter()``) for ``budget_note``."""
    start = time.perf_counter()
    use_book_style()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return start


def glue_number(key: str, value: float) -> None:
    """Glue a number as a plain Python float (numpy scalars break format specs), not displayed."""
    from myst_nb import glue

    glue(key, float(value), display=False)


def sig(value: float, digits: int = 3) -> str:
    """A number as text with ``digits`` significant digits, for tables."""
    return f"{value:.{digits}g}"


def as_strings(frame: pd.DataFrame, spec: str = ".3g") -> pd.DataFrame:
    """A DataFrame of numbers as the book prints them: every float formatted with ``spec``."""
    return frame.map(lambda v: format(v, spec) if isinstance(v, float) else v)


def budget_note(seconds: float, budget: float, within: str | None = None) -> str:
    """How long something took, against a budget, for the prose: ``within`` (default "less than
    the <budget> s budget") when ``seconds < budget``, else the seconds. A page that states only
    that it kept its budget is the same byte for byte on every build; the exact seconds are not."""
    if seconds < budget:
        return within if within is not None else f"less than the {budget} s budget"
    if within is not None:
        return f"{seconds:.0f} s"
    return f"{seconds:.0f} s, more than the {budget} s budget"


def study_time(record: dict) -> str:
    """How long a kept study took, for the prose: its wall time in whole minutes and, when the
    record says, the processes it ran in ("9 minutes in 2 parallel processes"). The time is the
    machine's as it was then (other work on it included); ``python -m gradflow.studies --list``
    shows it too."""
    took = minutes(record["seconds"])
    jobs = record.get("jobs")
    if jobs is None:
        return took
    return f"{took} in one process" if jobs == 1 else f"{took} in {jobs} parallel processes"


def minutes(seconds: float) -> str:
    """A duration in whole minutes for the prose: "less than a minute" below 60 s, "a minute" up
    to 90 s, else "N minutes"."""
    if seconds < 0:
        raise ValueError(f"seconds must be non-negative, got {seconds}")
    if seconds < 60:
        return "less than a minute"
    return "a minute" if seconds < 90 else f"{round(seconds / 60)} minutes"
