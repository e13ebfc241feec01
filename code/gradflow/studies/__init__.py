"""Studies: seeded experiments too costly for every build, computed once and kept with their code.

A study is a function of one *unit* (one configuration and a few seeds, trained together) that
returns rows of plain values; the study is the rows of all its units. Its result is kept in the
repository as JSON beside the module that defines it (``results/<name>.json``), with what it was
computed from:

- ``digest``: the digest of every package file the study's module can run, read statically by
  :mod:`gradflow.dependencies` (the same reading that decides which chapters an edit
  re-executes), so any edit to that code makes the kept result stale;
- ``params`` and ``units``: its arguments;
- ``python`` and ``torch``: the versions it ran with, ``seconds``: its wall time, and
  ``jobs``: the processes it ran in.

A chapter calls :meth:`Study.load`. When the kept digest matches the code, nothing is computed.
When it does not, the study is computed again and kept again; the book's build does that before
any chapter runs (``_ext/studies.py``), so a page never shows a result computed by other code.
Every unit runs on one thread, so a unit computed alone (the suite recomputes one of each study)
gives the rows it gave inside the whole study.

``python -m gradflow.studies`` (:mod:`gradflow.studies.every`) computes the stale studies, or those named, over the machine's
cores with a progress bar; ``--check`` lists the stale ones and exits 1; ``--list`` lists all.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import dependencies

if TYPE_CHECKING:
    import pandas as pd

#: Every study defined so far, by name (a study registers itself when its module is imported).
REGISTRY: dict[str, Study] = {}
RESULTS = dependencies.RESULTS  # the folder, beside a study's module, that keeps its result
#: The modules that find, run and keep studies: no study's digest includes them.
MACHINERY = ("gradflow.studies", "gradflow.studies.every", "gradflow.studies.__main__",
             "gradflow.dependencies")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Study:
    """A study: ``unit(**params, **units[i])`` returns the rows of unit ``i``.

    Args:
        name: the study's name, unique in the package; its result is ``results/<name>.json``
            beside ``module``.
        module: the module that defines the study (pass ``__name__``); its digest covers every
            package file this module can run.
        unit: a module-level function returning a list of rows (dicts of str, int, float, bool
            or None; NaN allowed).
        units: each unit's keyword arguments.
        params: the keyword arguments every unit shares.
        sample: the unit the test suite computes again and compares with the kept rows.
        about: one line saying what the study measures.
    """

    name: str
    module: str
    unit: Callable[..., list[dict[str, Any]]] = field(repr=False)
    units: Sequence[Mapping[str, Any]]
    params: Mapping[str, Any] = field(default_factory=dict)
    sample: int = 0
    about: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"a study's name must be an identifier, got {self.name!r}")
        if not self.units:
            raise ValueError(f"study {self.name!r} needs at least one unit")
        if not 0 <= self.sample < len(self.units):
            raise ValueError(f"study {self.name!r}: sample {self.sample} is not one of its "
                             f"{len(self.units)} units")
        clash = set(self.params).intersection(*map(set, self.units))
        if clash:
            raise ValueError(f"study {self.name!r}: {sorted(clash)} given both in params and in "
                             "a unit")
        other = REGISTRY.get(self.name)
        if other is not None and other.module != self.module:
            raise ValueError(f"two studies are named {self.name!r}: in {other.module} and "
                             f"{self.module}")
        REGISTRY[self.name] = self

    # --- where it is kept, and whether that is current --------------------------------------

    @property
    def path(self) -> Path:
        """The file that keeps the study's result."""
        return Path(sys.modules[self.module].__file__).parent / RESULTS / f"{self.name}.json"

    def digest(self) -> str:
        """The digest of the package files the study's module can run."""
        return code_digest(self.module)

    def kept(self) -> dict[str, Any] | None:
        """The kept record (see the module's docstring), or None when there is none."""
        return json.loads(self.path.read_text()) if self.path.is_file() else None

    def is_fresh(self) -> bool:
        """Whether a result is kept and was computed by the code as it is now."""
        kept = self.kept()
        return kept is not None and kept.get("digest") == self.digest()

    # --- computing ---------------------------------------------------------------------------

    def run_unit(self, index: int) -> list[dict[str, Any]]:
        """The rows of unit ``index``, computed now on one thread."""
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            rows = self.unit(**self.params, **self.units[index])
        finally:
            torch.set_num_threads(before)
        return [{**row, "unit": index} for row in rows]

    def compute(self, jobs: int | None = None, progress: Progress | None = None,
                keep: bool = True) -> dict[str, Any]:
        """Compute every unit (``jobs`` processes, default: the machine's cores), and keep the
        record unless ``keep`` is false or the folder cannot be written. Returns the record."""
        import torch

        start = time.perf_counter()
        jobs = processes(jobs, len(self.units))
        rows = run_units(self, range(len(self.units)), jobs, progress)
        record = {
            "study": self.name, "module": self.module, "about": self.about,
            "digest": self.digest(), "params": _plain(self.params),
            "units": [_plain(u) for u in self.units],
            "python": platform.python_version(), "torch": torch.__version__.split("+")[0],
            "seconds": round(time.perf_counter() - start, 1), "jobs": jobs, "rows": rows,
        }
        if keep:
            try:
                self.path.parent.mkdir(exist_ok=True)
                self.path.write_text(_dumps(record))
            except OSError:  # an installed package may be read-only: the result is still used
                pass
        return record

    def load(self, jobs: int | None = None) -> pd.DataFrame:
        """The study's rows as a DataFrame: the kept ones when they are fresh, otherwise
        computed now (saying so, with the time the kept result took) and kept."""
        import pandas as pd

        kept = self.kept()
        if kept is None or kept.get("digest") != self.digest():
            took = f", which took {kept['seconds']:.0f} s last time" if kept else ""
            print(f"Study {self.name!r} is not current for this code: computing its "
                  f"{len(self.units)} units{took}.", flush=True)
            kept = self.compute(jobs, progress=_print_progress)
        return pd.DataFrame(kept["rows"])


def code_digest(module: str) -> str:
    """The digest of the files of ``module``'s package that ``module`` can run (every file of
    the package where that cannot be read statically), less this machinery (which keeps rows
    but computes none)."""
    top = module.partition(".")[0]
    root = Path(sys.modules[top].__file__).resolve().parent.parent
    return _study_digest(_scan(root, top), root, module)


def _study_digest(package: dependencies.Package, root: Path, module: str) -> str:
    files = package.closure(package.resolve_from(module))
    if files is dependencies.EVERYTHING:
        files = package.all_files()
    machinery = {package.files.get(name) for name in MACHINERY}
    return dependencies.digest([f for f in files if f not in machinery], root)


@functools.lru_cache(maxsize=4)
def _scan(root: Path, top: str) -> dependencies.Package:
    return dependencies.Package.scan(root, top)


def processes(jobs: int | None, units: int) -> int:
    """How many processes compute ``units`` units when ``jobs`` are asked for (None: one per
    core of the machine): never more than there are units."""
    return max(1, min(jobs or os.cpu_count() or 1, units))


def _unit_in_worker(study: Study, index: int) -> tuple[int, list[dict[str, Any]]]:
    # The study reaches the worker by pickling: its unit function by reference, so unpickling
    # imports the study's module there (no dynamic import here: the build's static reading of
    # this module's imports stays exact).
    return index, study.run_unit(index)


def run_units(study: Study, indices: Sequence[int], jobs: int | None = None,
              progress: Progress | None = None) -> list[dict[str, Any]]:
    """The rows of the units ``indices``, in that order, computed in ``jobs`` processes."""
    indices = list(indices)
    jobs = processes(jobs, len(indices))
    done: dict[int, list[dict[str, Any]]] = {}
    if jobs == 1:
        for count, index in enumerate(indices, 1):
            done[index] = study.run_unit(index)
            if progress:
                progress(count, len(indices), study.name)
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_unit_in_worker, study, i) for i in indices]
            for count, future in enumerate(as_completed(futures), 1):
                index, rows = future.result()
                done[index] = rows
                if progress:
                    progress(count, len(indices), study.name)
    return [row for index in indices for row in done[index]]


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists, as JSON keeps it."""
    return json.loads(json.dumps(value))


def _dumps(record: dict[str, Any]) -> str:
    """The record as JSON, one unit and one row a line (readable, and diffs show the rows)."""
    lines = [f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}"
             for k, v in sorted(record.items()) if k not in ("units", "rows")]
    for key in ("units", "rows"):
        items = ",\n".join("  " + json.dumps(item, sort_keys=True) for item in record[key])
        lines.append(f' "{key}": [\n{items}\n ]')
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _print_progress(done: int, total: int, name: str) -> None:
    width = 30
    filled = round(width * done / total)
    end = "\n" if done == total else ""
    print(f"\r{name}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} units", end=end,
          flush=True)


def stale_kept(root: Path, top: str = "gradflow") -> list[dict[str, Any]]:
    """The kept records under ``root/top`` whose digest no longer matches their module's code,
    read without importing the package (the build checks these before any chapter runs, without
    paying for torch)."""
    package = dependencies.Package.scan(root, top)   # which also finds every kept record
    records = [json.loads(path.read_text()) for paths in package.kept.values() for path in paths]
    return [record for record in records
            if _study_digest(package, root, record["module"]) != record["digest"]]


def interval(differences: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """The mean of paired ``differences`` and its ``level`` t-interval ``(mean, low, high)``."""
    from scipy import stats

    n = len(differences)
    if n < 2:
        raise ValueError(f"an interval needs at least two paired differences, got {n}")
    mean = math.fsum(differences) / n
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in differences) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def detectable(differences: Sequence[float], level: float = 0.95, power: float = 0.8) -> float:
    """The smallest true mean difference that paired ``differences`` of this spread would
    detect (a ``level`` t-interval excluding zero) with probability ``power``: the usual
    approximation (t_{1-alpha/2} + t_{power}) times the standard error, with n - 1 degrees of
    freedom."""
    from scipy import stats

    n = len(differences)
    if n < 2:
        raise ValueError(f"a detectable difference needs at least two paired differences, got {n}")
    mean = math.fsum(differences) / n
    se = math.sqrt(math.fsum((d - mean) ** 2 for d in differences) / (n - 1) / n)
    return (stats.t.ppf(0.5 + level / 2, n - 1) + stats.t.ppf(power, n - 1)) * se



def paired_summary(differences: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Paired ``differences`` (one per seed, a - b) summarised for the prose: their mean with
    its ``level`` t-interval (``mean, low, high``, :func:`interval`; NaN bounds when the
    differences have no spread), the number of seeds where a is the smaller (``wins``, a
    difference below zero) out of ``n``, and the smallest true mean difference they would
    detect four times in five (``detectable``, :func:`detectable`). Every comparison the book
    reports goes through this function."""
    differences = [float(d) for d in differences]
    if any(math.isnan(d) for d in differences):
        raise ValueError("differences must not hold NaN")
    if len(differences) < 2:
        raise ValueError(f"a paired comparison needs at least two differences, got "
                         f"{len(differences)}")
    mean = math.fsum(differences) / len(differences)
    if any(d != differences[0] for d in differences):
        _, low, high = interval(differences, level)
        smallest = detectable(differences, level)
    else:
        low = high = smallest = math.nan
    return {"mean": mean, "low": low, "high": high, "wins": sum(d < 0 for d in differences),
            "n": len(differences), "detectable": smallest}


def paired(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """:func:`paired_summary` of ``a - b``, for ``a`` and ``b`` given one value per seed in the
    same order."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"a paired comparison needs two equally long lists, got {len(a)} and "
                         f"{len(b)}")
    return paired_summary([float(x) - float(y) for x, y in zip(a, b)], level)
