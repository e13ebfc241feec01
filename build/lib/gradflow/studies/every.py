"""Every study of the package, and the command that keeps them current:
``python -m gradflow.studies [NAMES] [--check | --list] [--jobs N]``.

Kept apart from :mod:`gradflow.studies` because finding the studies imports modules by name,
which the build's static reading of imports cannot follow: a chapter that loads a study must
not depend on every file of the package.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import REGISTRY, Study, _print_progress


def discover(package: str = "gradflow") -> dict[str, Study]:
    """Import every module of ``package`` that defines a study (one that constructs ``Study``),
    and return the registry."""
    root = Path(importlib.import_module(package).__file__).parent
    for info in pkgutil.walk_packages([str(root)], prefix=f"{package}."):
        if info.ispkg:
            continue
        relative = info.name.split(".")[1:]
        source = root.joinpath(*relative).with_suffix(".py")
        if source.is_file() and "Study(" in source.read_text(encoding="utf-8") and \
                not info.name.startswith(__package__):
            importlib.import_module(info.name)
    return dict(sorted(REGISTRY.items()))


def stale(studies: Mapping[str, Study] | None = None) -> list[str]:
    """The names of the studies whose kept result is missing or computed by other code."""
    studies = discover() if studies is None else studies
    return [name for name, study in studies.items() if not study.is_fresh()]


def _describe(study: Study) -> str:
    kept = study.kept()
    state = "fresh" if study.is_fresh() else ("stale" if kept else "never computed")
    took = f", {kept['seconds']:.0f} s" if kept else ""
    return f"{study.name:24s} {len(study.units):3d} units{took:>8s}  {state:14s} {study.about}"


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gradflow.studies", description=(
        "Compute the book's studies whose kept result is stale (or those named), and keep them."))
    parser.add_argument("names", nargs="*", help="studies to compute even if fresh")
    parser.add_argument("--check", action="store_true",
                        help="list the stale studies and exit 1 if there is any")
    parser.add_argument("--list", action="store_true", help="list every study and its state")
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes (default: the machine's cores)")
    args = parser.parse_args(argv)
    studies = discover()
    unknown = [n for n in args.names if n not in studies]
    if unknown:
        parser.error(f"unknown studies {unknown}; the studies are {sorted(studies)}")
    if args.list:
        print("\n".join(_describe(s) for s in studies.values()))
        return 0
    if args.check:
        names = stale(studies)
        for name in names:
            print(f"stale: {_describe(studies[name])}")
        if not names:
            print(f"all {len(studies)} studies are fresh")
        return 1 if names else 0
    names = args.names or stale(studies)
    for name in names:
        record = studies[name].compute(args.jobs, progress=_print_progress)
        print(f"{name}: {len(record['rows'])} rows in {record['seconds']:.0f} s, kept in "
              f"{studies[name].path}")
    if not names:
        print(f"all {len(studies)} studies are fresh")
    return 0


