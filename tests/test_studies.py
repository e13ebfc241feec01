"""Studies kept with their code (``gradflow.studies``): the machinery on a toy package, then every
study of the book: kept, current for the code as it is, and reproduced by a sample unit."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradflow import studies
from gradflow.studies import every

# --- the machinery, on a toy package of two modules -------------------------------------------

TOY_HELPER = "def square(x):\n    return x * x\n"
TOY_STUDY = textwrap.dedent('''
    from gradflow.studies import Study

    from .helper import square

    CALLS = []

    def unit(seeds, offset):
        CALLS.append(list(seeds))
        return [{"seed": s, "value": square(s) + offset} for s in seeds]

    STUDY = Study("toy_squares", __name__, unit, units=[{"seeds": [0, 1]}, {"seeds": [2]}],
                  params={"offset": 0.5}, about="squares")
''')


@pytest.fixture()
def toy(tmp_path, monkeypatch):
    """A package ``toypkg`` with a study module and the helper it imports, importable."""
    package = tmp_path / "toypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text(TOY_HELPER)
    (package / "other.py").write_text("X = 1\n")
    (package / "study.py").write_text(TOY_STUDY)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("toypkg")]:
        del sys.modules[name]
    module = importlib.import_module("toypkg.study")
    yield package, module
    studies.REGISTRY.pop("toy_squares", None)
    for name in [m for m in sys.modules if m.startswith("toypkg")]:
        del sys.modules[name]


def test_a_study_is_kept_beside_its_module_with_its_provenance(toy):
    package, module = toy
    assert not module.STUDY.is_fresh()
    record = module.STUDY.compute(jobs=1)
    kept = json.loads((package / "results" / "toy_squares.json").read_text())
    assert kept == record
    assert kept["rows"] == [{"seed": 0, "value": 0.5, "unit": 0}, {"seed": 1, "value": 1.5, "unit": 0},
                            {"seed": 2, "value": 4.5, "unit": 1}]
    assert kept["params"] == {"offset": 0.5} and kept["units"] == [{"seeds": [0, 1]}, {"seeds": [2]}]
    assert kept["python"] == ".".join(map(str, sys.version_info[:3]))
    assert kept["torch"].startswith("2.") and kept["seconds"] >= 0
    assert kept["jobs"] == 1
    assert module.STUDY.is_fresh()
    # asked for more processes than there are units, it runs one per unit, and says so
    assert module.STUDY.compute(jobs=8)["jobs"] == 2


def test_a_fresh_study_loads_without_computing(toy):
    _, module = toy
    module.STUDY.compute(jobs=1)
    module.CALLS.clear()
    frame = module.STUDY.load()
    assert module.CALLS == []
    assert list(frame["value"]) == [0.5, 1.5, 4.5]


def test_an_edit_to_code_the_study_runs_makes_it_stale_and_load_computes_it_again(toy, capsys):
    package, module = toy
    module.STUDY.compute(jobs=1)
    (package / "other.py").write_text("X = 2\n")   # not imported by the study: still fresh
    studies._scan.cache_clear()
    assert module.STUDY.is_fresh()
    (package / "helper.py").write_text(TOY_HELPER.replace("x * x", "x * x + 10"))
    studies._scan.cache_clear()
    assert not module.STUDY.is_fresh()
    assert [r["module"] for r in studies.stale_kept(package.parent, "toypkg")] == ["toypkg.study"]
    frame = module.STUDY.load()   # in worker processes, which import the edited helper
    assert list(frame["value"]) == [10.5, 11.5, 14.5]
    assert "is not current for this code" in capsys.readouterr().out
    assert module.STUDY.is_fresh()


def test_units_run_in_parallel_processes_give_the_rows_of_one_process(toy):
    _, module = toy
    assert module.STUDY.compute(jobs=2, keep=False)["rows"] == \
        module.STUDY.compute(jobs=1, keep=False)["rows"]


def test_a_study_refuses_bad_definitions(toy):
    _, module = toy
    with pytest.raises(ValueError, match="at least one unit"):
        studies.Study("empty", "toypkg.study", module.unit, units=[])
    with pytest.raises(ValueError, match="given both in params and in a unit"):
        studies.Study("both", "toypkg.study", module.unit, units=[{"offset": 1}],
                      params={"offset": 2})
    with pytest.raises(ValueError, match="sample 3 is not one of its 1 units"):
        studies.Study("sample", "toypkg.study", module.unit, units=[{"seeds": [0]}], sample=3)
    with pytest.raises(ValueError, match="two studies are named 'toy_squares'"):
        studies.Study("toy_squares", "elsewhere", module.unit, units=[{"seeds": [0]}])


def test_the_interval_is_scipy_s_t_interval():
    from scipy import stats

    values = [0.3, -0.1, 0.25, 0.4, 0.05]
    mean, low, high = studies.interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values),
                                scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert (low, high) == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least two"):
        studies.interval([1.0])


def test_the_detectable_difference_is_detected_with_the_stated_power():
    # Simulate: a true mean difference of detectable(...) with the same spread is detected (the
    # t-interval excludes zero) in about 80 % of draws.
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.0, 24)
    size = studies.detectable(list(base))
    hits = 0
    for _ in range(2000):
        draw = rng.normal(size, base.std(ddof=1), 24)
        _, low, _ = studies.interval(list(draw))
        hits += low > 0
    assert 0.74 < hits / 2000 < 0.86
    with pytest.raises(ValueError, match="at least two"):
        studies.detectable([0.5])


def test_paired_gives_the_t_interval_of_the_differences_and_counts_wins():
    a, b = [1.0, 2.0, 4.0, 3.5], [1.5, 2.0, 3.0, 4.5]
    d = np.subtract(a, b)                        # -0.5, 0, 1, -1
    half = 3.182446305284263 * d.std(ddof=1) / 2  # t_{0.975, 3} (printed tables) * s / sqrt(4)
    result = studies.paired(a, b)
    assert result["mean"] == pytest.approx(-0.125)
    assert (result["low"], result["high"]) == pytest.approx((-0.125 - half, -0.125 + half),
                                                            rel=1e-9)
    assert (result["wins"], result["n"]) == (2, 4)
    assert result["detectable"] == pytest.approx(studies.detectable(list(d)))
    same = studies.paired([1.0, 2.0], [0.5, 1.5])   # no spread: no interval to give
    assert same["mean"] == 0.5 and math.isnan(same["low"]) and math.isnan(same["high"])
    with pytest.raises(ValueError, match="equally long"):
        studies.paired([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least two"):
        studies.paired([1.0], [2.0])


# --- the command ------------------------------------------------------------------------------


def test_the_command_checks_lists_and_refuses_unknown_names():
    run = subprocess.run([sys.executable, "-m", "gradflow.studies", "--list"],
                         capture_output=True, text=True, check=True)
    assert set(every.discover()) <= {line.split()[0] for line in run.stdout.splitlines()}
    bad = subprocess.run([sys.executable, "-m", "gradflow.studies", "no_such_study"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "unknown studies ['no_such_study']" in bad.stderr


def test_check_exits_non_zero_naming_a_stale_study(toy, monkeypatch, capsys):
    _, module = toy
    assert every.main(["--check"]) in (0, 1)   # whatever the book's studies are
    capsys.readouterr()
    monkeypatch.setattr(every, "discover", lambda: {"toy_squares": module.STUDY})
    assert every.main(["--check"]) == 1
    assert "stale: toy_squares" in capsys.readouterr().out
    assert every.main([]) == 0   # computes it
    assert every.main(["--check"]) == 0


# --- the book's studies -----------------------------------------------------------------------

BOOK_STUDIES = every.discover()


def test_the_book_has_its_studies():
    assert {"ffn_comparison", "plain_and_residual", "landscape_slices"} <= set(BOOK_STUDIES)


@pytest.mark.parametrize("name", sorted(BOOK_STUDIES))
def test_every_kept_study_is_current_for_the_code(name):
    study = BOOK_STUDIES[name]
    assert study.kept() is not None, f"{name} was never computed: python -m gradflow.studies {name}"
    assert study.is_fresh(), (f"{name}'s kept result was computed by other code: run "
                              f"python -m gradflow.studies {name}")


@pytest.mark.parametrize("name", sorted(BOOK_STUDIES))
def test_a_sample_unit_recomputes_the_kept_rows(name):
    """One unit of each study computed now gives the rows kept for it, so the kept result is
    this code's."""
    study = BOOK_STUDIES[name]
    kept = pd.DataFrame(study.kept()["rows"])
    kept = kept[kept["unit"] == study.sample].reset_index(drop=True)
    now = pd.DataFrame(study.run_unit(study.sample))
    assert list(now.columns) == list(kept.columns) or set(now.columns) == set(kept.columns)
    assert len(now) == len(kept) > 0
    for column in now.columns:
        a, b = now[column].tolist(), kept[column].tolist()
        if all(isinstance(v, float) for v in a):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=0, equal_nan=True,
                                       err_msg=f"{name}: column {column}")
        else:
            assert _close(a, b), f"{name}: column {column}"


def _close(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9)
    return a == b


def test_kept_results_are_small_and_readable():
    for study in BOOK_STUDIES.values():
        path: Path = study.path
        assert path.suffix == ".json" and path.stat().st_size < 400_000, path
