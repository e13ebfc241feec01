"""Argument checks shared by the package: each returns the checked value or raises an error that
names the argument and the bad value, at the package's boundary rather than deep inside torch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an int >= 1, else a ValueError "<name> must be a positive integer, ..."."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_ints(name: str, values: Iterable[int]) -> list[int]:
    """A non-empty list of positive ints."""
    out = list(values)
    if not out or any(not _is_int(v) or v < 1 for v in out):
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {out!r}")
    return [int(v) for v in out]


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)


def positive_number(name: str, value: object) -> float:
    """``value`` as a float if it is a real number > 0 (not a bool)."""
    if not _is_real(value) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def non_negative_number(name: str, value: object) -> float:
    """``value`` as a float if it is a real number >= 0 (not a bool)."""
    if not _is_real(value) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def seeds(values: Iterable[int], name: str = "seeds") -> list[int]:
    """A non-empty list of distinct int seeds."""
    out = list(values)
    if not out or any(not _is_int(v) for v in out):
        raise ValueError(f"{name} must be a non-empty list of ints, got {out!r}")
    out = [int(v) for v in out]
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must be distinct, got {out!r}")
    return out


def seed(value: object, name: str = "seed") -> int:
    """One int seed (a TypeError otherwise, as for any argument of the wrong type)."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def widths(values: Sequence[int], name: str = "widths") -> list[int]:
    """Layer widths, input first: at least two positive ints."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of positive integers, got {values!r}")
    sizes = list(values)
    if len(sizes) < 2:
        raise ValueError(
            f"{name} needs at least two entries (input and output width), got {sizes}"
        )
    for i, size in enumerate(sizes):
        if not _is_int(size) or size < 1:
            raise ValueError(f"{name}[{i}] must be a positive integer, got {size!r} in {sizes}")
    return [int(s) for s in sizes]


def one_of(name: str, value: object, options: Sequence[object], *, what: str | None = None):
    """``value`` if it is among ``options``. The message lists the valid options:
    ``"<name> must be one of 'a', 'b', got 'c'"``, or with ``what``:
    ``"unknown <what> 'c'; valid <what>s are 'a', 'b'"``."""
    if not isinstance(value, str | bool | int | float | None) or value not in options:
        allowed = ", ".join(repr(o) for o in options)
        if what is None:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        raise ValueError(f"unknown {what} {value!r}; valid {what}s are {allowed}")
    return value


def some_of(name: str, values: Iterable[object], options: Sequence[object]) -> list:
    """A non-empty list whose every entry is among ``options``."""
    out = list(values)
    if not out or any(v not in options for v in out):
        raise ValueError(
            f"{name} must be a non-empty list drawn from {tuple(options)}, got {out!r}"
        )
    return out


def columns(frame: pd.DataFrame, required: Sequence[str], what: str) -> None:
    """Raise if ``frame`` lacks any of the ``required`` columns, naming them and those it has."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} needs the columns {list(required)}; missing {missing}, "
            f"it has {list(frame.columns)}"
        )
