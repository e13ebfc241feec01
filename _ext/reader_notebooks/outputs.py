"""Outputs: a code cell's outputs as the page shows them. Printed text is merged exactly,
however the kernel split it into messages, for the reader notebooks and (by patching myst-nb's
merging) for the page; default reprs that name a memory address are dropped."""

from __future__ import annotations

import copy
import re

from .context import _joined

HIDDEN_OUTPUTS = {"remove-output", "remove-cell"}

#: Python's default repr, which names a memory address: different in every run.
DEFAULT_REPR = re.compile(r"^<[\w.]+ (object )?at 0x[0-9a-f]+>$")




def without_addresses(outputs: list) -> list:
    """Outputs without a default-repr ``text/plain`` (``<...Styler at 0x7f...>``) where the output
    has another representation (the site shows that one): the address differs from run to run."""
    for output in outputs:
        data = output.get("data", {})
        plain = data.get("text/plain")
        text = _joined(plain or "")
        if len(data) > 1 and DEFAULT_REPR.match(text.strip()):
            del data["text/plain"]
    return outputs


def merged_streams(outputs: list) -> list:
    """Consecutive ``stream`` outputs of the same name (stdout, stderr) as one, as the page shows
    them (``nb_merge_streams``): how a kernel splits printed text into messages depends on timing,
    so unmerged, two builds of the same cell could store its text in one output or in two."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")):
            previous["text"] = _joined(previous["text"]) + _joined(output["text"])
        else:
            merged.append(copy.deepcopy(output))
    return merged



def merge_streams_exactly() -> None:
    """Make myst-nb's merging of a cell's printed text (``nb_merge_streams``) independent of how
    the kernel split it into messages, and leave the executed notebook as the kernel sent it.

    myst-nb's ``coalesce_streams`` strips each message's trailing whitespace and ends it with a
    newline before joining. The kernel sends what was printed whenever its flush timer fires, and
    ``print("without:", values)`` is four writes (the two arguments, the space, the newline): a
    flush between them (rare, and more likely on a loaded machine) made the page show
    "without:" and the values on two lines, so two clean builds differed. Here consecutive
    messages of one stream are first joined exactly (:func:`merged_streams`), so myst-nb sees
    the text once, however it was split.

    myst-nb also merges *in place*: it appends the later messages' text to the first, and then
    writes the executed notebook to ``jupyter_execute/`` with that first output changed and the
    later ones still there (a line printed twice). :func:`merged_streams` works on copies, so
    the stored notebook keeps what the kernel produced.
    """
    from myst_nb.core import render

    original = getattr(render, "coalesce_streams", None)
    if original is None:
        raise RuntimeError("myst_nb.core.render.coalesce_streams is gone: review "
                           "_ext/reader_notebooks/outputs.py's merge_streams_exactly for this myst-nb")
    if getattr(original, "merges_exactly", False):
        return

    def coalesce_exactly(outputs):
        return original(merged_streams(outputs))

    coalesce_exactly.merges_exactly = True
    render.coalesce_streams = coalesce_exactly
