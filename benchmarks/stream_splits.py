"""Count how often a kernel splits one ``print`` into several messages, and what the page shows.

``print("without:", values)`` writes its two arguments, the space between them and the newline one
after another, and the kernel sends what was written whenever its flush timer fires. On a loaded
machine (a build executes four chapters on two cores) the flush sometimes lands between two of
those writes. myst-nb's own merging of a cell's messages then put the values on a line of their
own, so two clean builds of the same sources could differ (``_ext/reader_notebooks/``,
``merge_streams_exactly``). This script runs the GPT chapter's attention-only cell (two such
prints) in many cells of one kernel while ``--busy`` processes keep the cores busy, and reports
how many cells had a print split in two, and how many pages would differ from the unsplit text
with myst-nb's merging and with the book's:

    .venv/bin/python benchmarks/stream_splits.py               # 300 cells, 3 busy processes
    .venv/bin/python benchmarks/stream_splits.py --busy 0      # an idle machine

Results go to ``benchmarks/results/stream-splits-busy<N>.md``.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import sys
import time
from pathlib import Path

import nbclient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import code_notebook, load_local_extension

SETUP = """\
from dataclasses import replace
import torch
import gradflow
from gradflow.chapters.gpt_block import experiments as gpt_experiments
torch.set_num_threads(1)
class Zero(torch.nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)
"""
# The cell of book/gpt_block.md's attention-only exercise, as the reader sees it.
CELL = """\
attention_only = {}
for shortcuts in (True, False):
    config12 = replace(gpt_experiments.PROBE_CONFIG, n_layer=12, shortcuts=shortcuts)
    model = gradflow.GPT(config12, seed=0)
    for block in model.blocks:
        block.mlp = Zero() if shortcuts else torch.nn.Identity()
    idx, _ = gpt_experiments.probe_batch(config12)
    with torch.no_grad():
        states = model.hidden_states(idx)
    attention_only[shortcuts] = [gpt_experiments.token_diversity(h) for h in states]
    print("with shortcuts:" if shortcuts else "without:", [round(d, 4) for d in attention_only[shortcuts]])
"""


def busy() -> None:
    while True:
        sum(range(10_000))


def run_cells(cells: int) -> list[list]:
    """Every cell's outputs, as the kernel sent them."""
    notebook = code_notebook(SETUP, *[CELL] * cells)
    nbclient.NotebookClient(notebook, timeout=600).execute()
    return [cell.outputs for cell in notebook.cells[1:]]


def page_text(outputs: list) -> str:
    from myst_nb.core import render

    return "".join(o["text"] for o in render.coalesce_streams(copy.deepcopy(outputs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--busy", type=int, default=3, help="processes that keep the cores busy")
    args = parser.parse_args()

    workers = [multiprocessing.Process(target=busy, daemon=True) for _ in range(args.busy)]
    for worker in workers:
        worker.start()
    start = time.perf_counter()
    try:
        sent = run_cells(args.cells)
    finally:
        for worker in workers:
            worker.terminate()
    seconds = time.perf_counter() - start

    # However a cell's text was split, its messages joined are what it printed.
    whole = "".join(o["text"] for o in sent[0])
    assert all("".join(o["text"] for o in outputs) == whole for outputs in sent)
    split = [outputs for outputs in sent if any(not o["text"].endswith("\n") for o in outputs)]
    own = sum(page_text(outputs) != whole for outputs in sent)
    load_local_extension("reader_notebooks").merge_streams_exactly()
    book = sum(page_text(outputs) != whole for outputs in sent)

    lines = [
        "# How often a kernel splits a print (`benchmarks/stream_splits.py`)",
        "",
        (f"{args.cells} cells of the GPT chapter's attention-only cell (two prints each) in one "
         f"kernel, {args.busy} busy processes, {seconds:.0f} s."),
        "",
        "| | cells |",
        "| --- | --- |",
        f"| sent in two or more messages | {sum(len(outputs) > 1 for outputs in sent)} |",
        f"| a print split in two | {len(split)} |",
        f"| page text differs, myst-nb's merging | {own} |",
        f"| page text differs, the book's merging | {book} |",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    print("examples of split cells:", [[o["text"][:24] for o in outputs] for outputs in split[:3]])
    out = ROOT / "benchmarks" / "results" / f"stream-splits-busy{args.busy}.md"
    out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
