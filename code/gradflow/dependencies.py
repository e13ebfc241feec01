"""Which of the package's files a piece of code can run: a static reading of its imports.

Used twice, so that the two agree: the book's build re-executes a chapter after an edit to any file
it depends on (``_ext/chapter_dependencies.py``), and a kept study is stale once a file its code
depends on has changed (:mod:`gradflow.studies`). Nothing is imported: the sources are parsed
(``ast``) for the modules they load, transitively, through the package's lazy export tables
(``_EXPORTS``); whatever the parse cannot resolve (a dynamic import, the package passed around)
means "every file". Only the standard library is used, so a build can call it without importing
torch.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints"}
EVERYTHING = None  # a dependency set that could not be resolved: depend on every file


#: The folder, beside a study's module, that keeps its results (:mod:`gradflow.studies`).
RESULTS = "results"


def _ignored(relative: Path) -> bool:
    return (
        bool(IGNORED_PARTS.intersection(relative.parts))
        or relative.suffix == ".pyc"
        or any(part.endswith(".egg-info") for part in relative.parts)
    )


@dataclass
class Package:
    """The Python modules under a source folder (``code/``) and what each one imports."""

    root: Path
    files: dict[str, Path]  # dotted module name -> file ("gradflow" -> gradflow/__init__.py)
    imports: dict[str, set[str | None]]  # module -> modules it loads (None among them: unknown)
    exports: dict[str, dict[str, str]]  # package -> {public name: submodule}
    defined: dict[str, set[str]]  # module -> names bound at its top level
    other_files: list[Path]  # files that are not Python modules: every chapter depends on them
    kept: dict[Path, list[Path]] = field(default_factory=dict)  # folder -> its results/*.json

    @classmethod
    def scan(cls, root: Path, top: str | None = None) -> Package:
        """Every file under ``root`` (only under ``root/top`` when given: the package's own
        folder, where ``root`` is a ``site-packages`` holding others too)."""
        files, other, kept = {}, [], {}
        base = root / top if top else root
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            relative = path.relative_to(root)
            if _ignored(relative):
                continue
            if path.parent.name == RESULTS and path.suffix == ".json":
                kept.setdefault(path.parent.parent, []).append(path)   # a study's kept result
                continue
            if path.suffix != ".py":
                other.append(path)
                continue
            parts = relative.with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
        package = cls(root, files, {}, {}, {}, other, kept)
        trees = {name: ast.parse(path.read_text(encoding="utf-8"), str(path))
                 for name, path in files.items()}
        for name, tree in trees.items():  # first what each module defines, then its imports
            package.defined[name] = _top_level_names(tree)
            package.exports[name] = _literal_dict(tree, "_EXPORTS") if package.is_package(name) else {}
        for name, tree in trees.items():
            package.imports[name] = package._module_imports(name, tree)
        return package

    def is_package(self, name: str) -> bool:
        return self.files.get(name, Path()).name == "__init__.py"

    def _module_imports(self, name: str, tree: ast.Module) -> set[str | None]:
        base = name if self.is_package(name) else name.rpartition(".")[0]
        # A package's own lazy loader imports through _EXPORTS, which resolve_attribute reads.
        loader = _lazy_loader_nodes(tree) if self.exports.get(name) else set()
        return loaded_modules(tree, self, base, skip=loader)

    def resolve_from(self, module: str, names: Iterable[str] = ()) -> set[str]:
        """The modules ``from module import names`` (or ``import module``) loads, if ours."""
        if not self._ours(module):
            return set()
        if module not in self.files:
            return {EVERYTHING}
        found = set(self._with_parents(module))
        for n in names:
            found |= self.resolve_attribute(module, n)
        return found

    def resolve_attribute(self, module: str, attribute: str) -> set[str]:
        """The modules that ``module.attribute`` needs: a submodule, a lazy export, or a name
        the module defines itself. ``{EVERYTHING}`` when it is none of these."""
        submodule = f"{module}.{attribute}"
        if submodule in self.files:
            return set(self._with_parents(submodule))
        target = self.exports.get(module, {}).get(attribute)
        if target is not None:
            return set(self._with_parents(f"{module}.{target}"))
        if attribute == "*":  # a package's star import loads every lazy export
            return {EVERYTHING} if self.is_package(module) else set(self._with_parents(module))
        if attribute in self.defined.get(module, set()):
            return set(self._with_parents(module))
        return {EVERYTHING}

    def _ours(self, module: str) -> bool:
        top = module.partition(".")[0]
        return top in self.files

    @staticmethod
    def _with_parents(module: str) -> list[str]:
        parts = module.split(".")
        return [".".join(parts[: i + 1]) for i in range(len(parts))]

    def closure(self, modules: set[str | None]) -> list[Path] | None:
        """Every file the modules need, transitively; None when that cannot be resolved."""
        seen: set[str] = set()
        todo = list(modules)
        while todo:
            module = todo.pop()
            if module is EVERYTHING or module not in self.files:
                return EVERYTHING
            if module in seen:
                continue
            seen.add(module)
            todo.extend(self.imports[module])
        return sorted(self.files[m] for m in seen)

    def kept_results(self, files: Iterable[Path]) -> list[Path]:
        """The studies' kept results (``results/*.json``) beside any of ``files``: what code
        that runs those modules shows, besides the modules themselves."""
        folders = {f.parent for f in files}
        return sorted(r for folder in folders for r in self.kept.get(folder, []))

    def all_files(self) -> list[Path]:
        return sorted(self.files.values())


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
    return names


def _literal_dict(tree: ast.Module, name: str) -> dict[str, str]:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return dict(ast.literal_eval(node.value))
    return {}


def _lazy_loader_nodes(tree: ast.Module) -> set[ast.AST]:
    """The nodes of a package's module-level ``__getattr__`` (the lazy export loader)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            return set(ast.walk(node))
    return set()


def _is_dynamic_import(node: ast.AST) -> bool:
    if isinstance(node, ast.Name) and node.id in ("__import__", "import_module"):
        return True
    if isinstance(node, ast.Attribute) and node.attr == "import_module":
        return True
    if isinstance(node, ast.Import):
        return any(a.name == "importlib" for a in node.names)
    return isinstance(node, ast.ImportFrom) and node.module == "importlib"


def _imports(node: ast.AST, base: str) -> list[tuple[str, list[str]]]:
    """``(module, names)`` pairs for an import statement; relative ones resolved against the
    package ``base`` the statement's module belongs to."""
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        parts = base.split(".")
        anchor = ".".join(parts[: len(parts) - node.level + 1])
        module = f"{anchor}.{node.module}" if node.module else anchor
    else:
        module = node.module or ""
    return [(module, [a.name for a in node.names])]


def loaded_modules(
    tree: ast.AST, package: Package, base: str = "", skip: set[ast.AST] = frozenset()
) -> set[str | None]:
    """The package's modules that running ``tree`` can load, ``{None}`` where that is unclear.

    Its import statements (anywhere, functions included; relative ones resolved against the
    package ``base``), and every ``name.attribute`` read on a name bound to one of the package's
    packages, whose lazy exports load a submodule on attribute access. Any other use of such a
    name (``getattr``, passing it around) and any dynamic import make the answer "everything".
    """
    modules: set[str | None] = set()
    packages: dict[str, str] = {}  # local name -> the package of ours it is bound to
    nodes = [node for node in ast.walk(tree) if node not in skip]
    for node in nodes:
        if _is_dynamic_import(node):
            return {EVERYTHING}
        for module, names in _imports(node, base):
            modules |= package.resolve_from(module, names)
            if not package._ours(module):
                continue
            for alias in node.names:
                if isinstance(node, ast.Import):
                    # "import a.b" binds a; "import a.b as c" binds c to a.b
                    bound = alias.name if alias.asname else alias.name.partition(".")[0]
                    local = alias.asname or bound
                else:
                    bound, local = f"{module}.{alias.name}", alias.asname or alias.name
                if package.is_package(bound):
                    packages[local] = bound
    values = {id(node.value) for node in nodes if isinstance(node, ast.Attribute)}
    for node in nodes:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in packages:
                modules |= package.resolve_attribute(packages[node.value.id], node.attr)
        elif isinstance(node, ast.Name) and node.id in packages and id(node) not in values:
            return {EVERYTHING}
    return modules


def digest(files: Iterable[Path], root: Path) -> str:
    """SHA-256 over each file's path (relative to ``root``) and bytes, in sorted order."""
    sha = hashlib.sha256()
    for path in sorted(files):
        sha.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]
