"""Which edits under code/ re-execute which chapter: ``_ext/chapter_dependencies.py``.

The analysis is static, so it is checked two ways: on small packages written here, where the
right answer is known, and on the book itself against what its chapters really import when run.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, load_local_extension, notebook_chapters

deps = load_local_extension("chapter_dependencies")


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


LAZY_INIT = """
    _EXPORTS = {"Model": "models", "train": "training"}
    __version__ = "1.0"

    def __getattr__(name):
        from importlib import import_module

        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
"""


@pytest.fixture()
def package(tmp_path) -> object:
    root = write_package(
        tmp_path / "code",
        {
            "pkg/__init__.py": LAZY_INIT,
            "pkg/core.py": "SCALE = 2\n",
            "pkg/models.py": "from .core import SCALE\n\nclass Model:\n    pass\n",
            "pkg/training.py": "def train():\n    from . import models\n    return models\n",
            "pkg/plots.py": "import math\nfrom pkg.core import SCALE\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/deep.py": "from ..plots import SCALE\n",
            "pkg/dynamic.py": "import importlib\nmod = importlib.import_module('pkg.core')\n",
            "pkg/report.py": "import pkg\n\ndef report():\n    return pkg.train\n",
            "pkg/hands_on.py": "import pkg\n\nprint(vars(pkg))\n",
        },
    )
    return deps.Package.scan(root)


def names(files: list[Path]) -> list[str]:
    return sorted(p.relative_to(files[0].parents[1]).as_posix() for p in files) if files else []


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["import math"], []),
        (["import pkg"], ["pkg/__init__.py"]),
        (["import pkg\nprint(pkg.__version__)"], ["pkg/__init__.py"]),
        (["import pkg\npkg.Model()"], ["pkg/__init__.py", "pkg/core.py", "pkg/models.py"]),
        (["from pkg import Model"], ["pkg/__init__.py", "pkg/core.py", "pkg/models.py"]),
        (["from pkg import plots"], ["pkg/__init__.py", "pkg/core.py", "pkg/plots.py"]),
        (["import pkg.plots as p", "p.SCALE"], ["pkg/__init__.py", "pkg/core.py", "pkg/plots.py"]),
        # imports inside functions count: training imports models when called
        (
            ["from pkg.training import train"],
            ["pkg/__init__.py", "pkg/core.py", "pkg/models.py", "pkg/training.py"],
        ),
        # a module that reads a lazy name of the package loads that name's module when it runs
        (
            ["from pkg.report import report"],
            ["pkg/__init__.py", "pkg/core.py", "pkg/models.py", "pkg/report.py", "pkg/training.py"],
        ),
        # relative imports two levels up, and every package __init__ on the way
        (
            ["from pkg.sub import deep"],
            ["pkg/__init__.py", "pkg/core.py", "pkg/plots.py", "pkg/sub/__init__.py", "pkg/sub/deep.py"],
        ),
    ],
)
def test_a_chapter_depends_on_what_it_imports_and_their_imports(package, cells, expected):
    assert names(deps.chapter_dependencies(cells, package)) == expected


ALL = [
    "pkg/__init__.py", "pkg/core.py", "pkg/dynamic.py", "pkg/hands_on.py", "pkg/models.py",
    "pkg/plots.py",
    "pkg/report.py", "pkg/sub/__init__.py", "pkg/sub/deep.py", "pkg/training.py",
]


@pytest.mark.parametrize(
    ("cells", "why"),
    [
        (["import pkg\ngetattr(pkg, 'Model')"], "the package used other than as pkg.NAME"),
        (["import pkg as p\nf(p)"], "the package passed around under another name"),
        (["import pkg\npkg.Unknown"], "a name the package neither exports nor defines"),
        (["from pkg import *"], "a star import of a package with lazy exports"),
        (["from pkg import dynamic"], "a module with a dynamic import"),
        (["from pkg import hands_on"], "a module that uses the package other than as pkg.NAME"),
        (["import importlib\nimportlib.import_module('pkg.core')"], "a dynamic import in a cell"),
        (["%matplotlib inline\nimport pkg"], "a cell that is not plain Python"),
    ],
)
def test_whatever_cannot_be_resolved_depends_on_everything(package, cells, why):
    assert names(deps.chapter_dependencies(cells, package)) == ALL, why


def test_files_that_are_not_python_are_everyones_dependency(tmp_path):
    root = write_package(tmp_path / "code", {"pkg/__init__.py": "", "pkg/table.csv": "1,2\n"})
    package = deps.Package.scan(root)
    assert [p.name for p in deps.chapter_dependencies(["import math"], package)] == ["table.csv"]


def test_a_study_s_kept_result_belongs_to_the_chapters_that_run_its_module(tmp_path):
    root = write_package(tmp_path / "code", {
        "pkg/__init__.py": "", "pkg/a/__init__.py": "", "pkg/a/study.py": "X = 1\n",
        "pkg/a/results/study.json": "{}\n", "pkg/b/__init__.py": "", "pkg/b/other.py": "Y = 2\n",
    })
    package = deps.Package.scan(root)
    runs_it = [str(p.relative_to(root)) for p in deps.chapter_dependencies(
        ["from pkg.a import study"], package)]
    assert "pkg/a/results/study.json" in runs_it
    assert "pkg/a/results/study.json" not in [str(p.relative_to(root)) for p in deps.chapter_dependencies(
        ["from pkg.b import other"], package)]
    # and a study's own digest (the closure of its module) never includes its kept result
    assert all(p.suffix == ".py" for p in package.closure(package.resolve_from("pkg.a.study")))


def test_bytecode_and_build_metadata_are_not_dependencies(tmp_path):
    root = write_package(tmp_path / "code", {"pkg/__init__.py": "", "pkg/a.py": "x = 1\n"})
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (root / "pkg.egg-info").mkdir()
    (root / "pkg.egg-info" / "PKG-INFO").write_text("x")
    package = deps.Package.scan(root)
    assert package.other_files == []
    assert sorted(package.files) == ["pkg", "pkg.a"]


def test_digest_follows_paths_and_contents(tmp_path):
    root = write_package(tmp_path, {"a.py": "x = 1\n", "b.py": "y = 1\n"})
    files = [root / "a.py", root / "b.py"]
    before = deps.digest(files, root)
    assert deps.digest(reversed(files), root) == before
    (root / "a.py").write_text("x = 2\n")
    assert deps.digest(files, root) != before
    assert deps.digest(files[:1], root) != deps.digest(files, root)


# --- the book -------------------------------------------------------------------------------------


def book_dependencies() -> dict[str, set[str]]:
    package = deps.Package.scan(REPO / "code")
    return {
        chapter.stem: {
            p.relative_to(REPO / "code" / "gradflow").as_posix()
            for p in deps.chapter_dependencies(deps.code_cells(chapter), package)
        }
        for chapter in notebook_chapters(REPO)
    }


def test_the_package_top_level_imports_no_submodule():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, gradflow; print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True,
    )
    loaded = [m for m in eval(done.stdout) if m.startswith("gradflow")]
    assert loaded == ["gradflow"]


def test_each_chapter_depends_on_its_own_modules_and_not_on_the_others():
    found = book_dependencies()
    package = REPO / "code" / "gradflow"
    every_file = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    for chapter, files in found.items():
        own = f"chapters/{chapter}/"
        assert own + "__init__.py" in files and own + "figures.py" in files, chapter
        others = {f for f in files if f.startswith("chapters/") and f != "chapters/__init__.py"
                  and not f.startswith(own)}
        assert not others, f"{chapter} depends on another chapter's modules {sorted(others)}"
        assert {"__init__.py", "activations.py", "plotting.py", "book.py"} <= files, chapter
        kept = {f for f in files if f.endswith(".json") and "/results/" in f}
        assert all(f.startswith(own) for f in kept), f"{chapter} depends on {sorted(kept)}"
        assert files - kept < every_file, chapter
    assert any(f.endswith("results/stability.json") for f in found["after_gpt2"])
    assert "networks/gpt.py" in found["gpt_block"]
    assert "networks/gpt.py" not in found["shortcut_connections"]
    assert "networks/mlp.py" not in found["gelu"] and "networks/stacked.py" not in found["gelu"]
    assert "signal_propagation.py" in found["vanishing_gradients"]
    assert "networks/gpt.py" not in found["vanishing_gradients"]
    assert "signal_propagation.py" not in found["gpt_block"]
    assert {"gated.py", "networks/gpt.py", "transformer_probes.py", "tasks/sequence.py"} <= found[
        "after_gpt2"]


def module_file(module: str) -> str:
    """``gradflow.chapters.gelu`` -> ``chapters/gelu/__init__.py``, relative to code/gradflow."""
    relative = module.removeprefix("gradflow").lstrip(".").replace(".", "/")
    if not relative or (REPO / "code" / "gradflow" / relative).is_dir():
        return f"{relative}/__init__.py".lstrip("/")
    return f"{relative}.py"


@pytest.mark.build
def test_every_module_a_chapter_loads_when_run_is_among_its_dependencies(
    executed_reader_notebooks,
):
    """Every chapter's code, run (as its reader notebook, in a fresh kernel: the fixture that the
    reader-notebook test shares), loads exactly the gradflow modules the static analysis names:
    none is missing, and none is named needlessly."""
    expected = book_dependencies()
    assert set(executed_reader_notebooks) == set(expected)
    for name, run in executed_reader_notebooks.items():
        loaded = {module_file(m) for m in run.loaded}
        modules = {f for f in expected[name] if f.endswith(".py")}   # less kept study results
        assert loaded, name
        assert loaded <= modules, f"{name} loaded {sorted(loaded - modules)}"
        assert modules == loaded, name


def test_every_lazy_export_is_defined_by_the_submodule_the_table_names():
    import gradflow

    for name, module in gradflow._EXPORTS.items():
        submodule = importlib.import_module(f"gradflow.{module}")
        assert getattr(gradflow, name) is getattr(submodule, name), name
    assert set(gradflow.__all__) == set(gradflow._EXPORTS) <= set(dir(gradflow))
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        gradflow.NoSuchName  # noqa: B018


def test_lazy_exports_into_subpackages_resolve_to_their_modules_only():
    package = deps.Package.scan(REPO / "code")

    def files(cell: str) -> set[str]:
        return {p.relative_to(REPO / "code" / "gradflow").as_posix()
                for p in deps.chapter_dependencies([cell], package)}

    gpt = files("import gradflow\ngradflow.GPT")
    assert {"__init__.py", "networks/__init__.py", "networks/gpt.py", "activations.py"} <= gpt
    assert not any(f.startswith("chapters/") for f in gpt)
    sweep = files("from gradflow import gradient_sweep")
    assert "chapters/vanishing_gradients/experiments.py" in sweep
    assert not any(f.startswith(("chapters/gelu/", "chapters/gpt_block/")) for f in sweep)
