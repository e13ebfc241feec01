"""Reader notebooks (``_ext/reader_notebooks/``): the chapters as plain Jupyter notebooks.

The conversion is checked on small MyST snippets against hand-written expectations; the built
notebooks are checked against the chapters' sources and the built pages; and every notebook is
executed with nbclient in a clean folder outside the repository, where the numbers it computes
must be the numbers written into its text, to the digits printed, and the numbers the site shows.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from conftest import REPO, code_notebook, load_local_extension, notebook_chapters

reader = load_local_extension("reader_notebooks")

GLUE_TEXT = re.compile(r"\{glue:text\}`([^`]+)`")
MYST_LEFTOVERS = re.compile(r"\{[a-z][\w:-]*\}`|^\s*(:{3,}|`{3,})\{|^\([\w-]+\)=\s*$", re.MULTILINE)
GLUE_PREFIX = "application/papermill.record/"
SITE = "https://gradflow-book.github.io/gradflow/"


def context(**glue) -> reader.Context:
    return reader.Context(
        docname="book/chapter",
        site=SITE,
        glue={k: v if isinstance(v, dict) else {"text/plain": repr(v)} for k, v in glue.items()},
        labels={"gelu": ("book/gelu", "gelu", "GELU"), "fig-a": ("book/chapter", "fig-a", "")},
        terms={"residual stream": ("book/glossary", "term-residual-stream")},
        figure_numbers={"fig-a": "8"},
        equation_numbers={"eq-chain": "1"},
        citations={"veit2016": {"authors": "Veit et al.", "year": "2016", "full": "A. Veit. R.",
                                "sort": "Veit"}},
    )


# --- the conversion, on snippets ---------------------------------------------------------------

def test_printed_text_is_one_output_however_the_kernel_split_it():
    split = [nbformat.v4.new_output("stream", name="stdout", text="a\n"),
             nbformat.v4.new_output("stream", name="stdout", text="b\n"),
             nbformat.v4.new_output("stream", name="stderr", text="c\n"),
             nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
             nbformat.v4.new_output("stream", name="stdout", text="d\n")]
    whole = [nbformat.v4.new_output("stream", name="stdout", text="a\nb\n")] + split[2:]
    assert reader.merged_streams(split) == reader.merged_streams(whole)
    assert [o.get("text") for o in reader.merged_streams(split)] == ["a\nb\n", "c\n", None, "d\n"]


def test_the_student_edition_leaves_every_solution_out():
    cells = [
        nbformat.v4.new_markdown_cell(
            "Before.\n\n:::{exercise}\n:label: ex-a\nQuestion?\n:::\n\n"
            ":::{solution-start} ex-a\n:class: dropdown\n:::"),
        nbformat.v4.new_code_cell("answer = 42"),
        nbformat.v4.new_markdown_cell("The answer is 42.\n\n:::{solution-end}\n:::\n\nAfter."),
        nbformat.v4.new_code_cell("kept = True"),
    ]
    kept = reader.without_solutions(cells)
    assert [c.cell_type for c in kept] == ["markdown", "markdown", "code"]
    assert "Question?" in kept[0].source and "solution-start" not in kept[0].source
    assert kept[1].source == "After." and kept[2].source == "kept = True"
    assert "answer" not in "".join(c.source for c in kept)
    with pytest.raises(reader.ConversionError, match="without its solution-end"):
        reader.without_solutions(cells[:2])


def test_glued_numbers_are_formatted_with_their_specification():
    ctx = context(ratio=0.000123456, share=0.004512, n=18014398509481984, note="less than 60 s")
    text, _ = reader.convert_markdown(ctx, (
        "Ratio {glue:text}`ratio:.3g`, share {glue:text}`share:.2%`, {glue:text}`n:,` paths, "
        "took {glue:text}`note`."
    ))
    assert text == "Ratio 0.000123, share 0.45%, 18,014,398,509,481,984 paths, took less than 60 s."
    assert [(g.key, g.text) for g in ctx.glued] == [
        ("ratio", "0.000123"), ("share", "0.45%"), ("n", "18,014,398,509,481,984"),
        ("note", "less than 60 s")]


def test_references_become_links_and_numbers():
    ctx = context()
    text, _ = reader.convert_markdown(ctx, (
        "The {term}`stream <residual stream>`, see {ref}`gelu`, {numref}`fig-a` and {eq}`eq-chain`;"
        " {cite:t}`veit2016` agree {cite:p}`veit2016`."
    ))
    assert text == (
        f"The [stream]({SITE}book/glossary.html#term-residual-stream), see "
        f"[GELU]({SITE}book/gelu.html#gelu), Fig. 8 and (1); Veit et al. (2016) agree "
        "(Veit et al., 2016)."
    )
    assert ctx.cited == ["veit2016"]


def test_code_spans_and_code_blocks_are_left_alone():
    source = "Write `` {glue:text}`key` `` like this:\n\n```python\nf\"{name}\"  # {term}`x`\n```"
    text, _ = reader.convert_markdown(context(), source)
    assert text == source


def test_admonitions_become_quotes_and_dropdowns_open_headings():
    source = (
        ":::{admonition} Exercise 1\n:class: note\nCompute {glue:text}`x:.1f`.\n:::\n\n"
        "::::{dropdown} Solution to exercise 1\n```python\nprint(1)\n```\nIt is one.\n::::"
    )
    text, _ = reader.convert_markdown(context(x=2.25), source)
    assert text == (
        "> **Exercise 1**\n>\n> Compute 2.2.\n\n"
        "**Solution to exercise 1**\n\n```python\nprint(1)\n```\nIt is one."
    )


def test_nested_cards_and_glued_tables():
    table = {"text/html": "<div>\n<style scoped>\nth {}\n</style>\n<table><tr><td>1</td></tr></table>\n</div>",
             "text/plain": "   0\n0  1"}
    source = ("::::{grid} 1 1 2 2\n:gutter: 3\n\n:::{grid-item-card} Left\n```{glue:} t\n```\n:::\n"
              "::::\nAfter.")
    text, _ = reader.convert_markdown(context(t=table), source)
    assert text == "**Left**\n\n<div>\n<table><tr><td>1</td></tr></table>\n</div>\n\nAfter."


def test_index_entries_disappear():
    """The site's subject index has no place in a notebook: an index directive leaves nothing."""
    source = "Before.\n\n```{index} GELU; tanh approximation, torch.nn.GELU\n```\n(a-label)=\n## Heading\n\nAfter."
    text, _ = reader.convert_markdown(context(), source)
    assert text == "Before.\n\n## Heading\n\nAfter."


def test_numbered_equations_carry_their_number_and_labels_disappear():
    text, _ = reader.convert_markdown(context(), "(my-label)=\n# Title\n\n$$\na = b\n$$ (eq-chain)")
    assert text == "# Title\n\n$$\na = b\n\\tag{1}\n$$"


def test_glued_figures_become_attached_images_with_their_number_and_caption():
    svg = "<svg xmlns='http://www.w3.org/2000/svg'/>"
    source = ("```{glue:figure} fig\n:name: fig-a\n:alt: A line [chart].\n\n"
              "The caption, {glue:text}`x:.0f` lines.\n```")
    text, attachments = reader.convert_markdown(context(fig={"image/svg+xml": svg, "text/plain": "F"},
                                                        x=3.0), source)
    assert text == (f"![A line (chart).](attachment:fig.svg)\n\n**[Fig. 8]({SITE}book/chapter.html#fig-a).**"
                    " The caption, 3 lines.")
    assert attachments == {"fig.svg": {"image/svg+xml": svg}}


def test_an_explorable_figure_becomes_its_static_image_named_by_its_own_title():
    svg = ("<svg role='img' xmlns='http://www.w3.org/2000/svg'><title>Error &amp; its peak"
           "</title></svg>")
    glued = {"text/html": "<div class='gradflow-explorable'>...</div>", "image/svg+xml": svg,
             "text/plain": "<explorable figure 'x'>"}
    source = "```{glue:figure} live\n:name: fig-a\n\nMove the slider.\n```"
    text, attachments = reader.convert_markdown(context(live=glued), source)
    assert text.startswith("![Error & its peak](attachment:live.svg)\n\n**[Fig. 8]")
    assert attachments == {"live.svg": {"image/svg+xml": svg}}


def stdout(*texts):
    from nbformat import from_dict

    return [from_dict({"output_type": "stream", "name": "stdout", "text": t}) for t in texts]


def test_the_page_merges_printed_text_without_changing_the_stored_notebook():
    from myst_nb.core import render, utils

    stored = stdout("a\n", "b\n")
    utils.coalesce_streams(stored)          # myst-nb's own: the first output now holds both lines
    assert stored[0]["text"] == "a\nb\n" and stored[1]["text"] == "b\n"
    reader.merge_streams_exactly()
    stored = stdout("a\n", "b\n")
    page = render.coalesce_streams(stored)
    assert [o["text"] for o in page] == ["a\nb\n"]
    assert stored == stdout("a\n", "b\n")  # the executed notebook keeps what the kernel sent
    assert [o["text"] for o in reader.merged_streams(stored)] == ["a\nb\n"]


PRINTED = "without: [0.5, 0.25]\nwith: [1.0]\n"
SPLITS = [(i,) for i in range(1, len(PRINTED))] + [(8, 9), (4, 8, 9, 20)]


@pytest.mark.parametrize("cuts", SPLITS, ids=lambda cuts: "-".join(map(str, cuts)))
def test_the_page_shows_printed_text_the_same_however_the_kernel_split_it(cuts):
    from myst_nb.core import render

    reader.merge_streams_exactly()
    bounds = (0, *cuts, len(PRINTED))
    split = stdout(*(PRINTED[a:b] for a, b in itertools.pairwise(bounds)))
    assert [o["text"] for o in render.coalesce_streams(split)] == [PRINTED]


def test_myst_nbs_own_merging_depends_on_the_split():
    """Why the book patches it: split after "without:" (a flush between print's writes), myst-nb
    puts the values on a line of their own, and drops the space it got as a message alone."""
    from myst_nb.core import utils

    assert utils.coalesce_streams(stdout("without:", " ", "[0.5]\n"))[0]["text"] == "without:\n[0.5]\n"
    assert utils.coalesce_streams(stdout("without: [0.5]\n"))[0]["text"] == "without: [0.5]\n"


def test_a_kernel_that_flushes_inside_a_print_gives_the_page_one_line():
    """A real kernel, made to flush in the middle of a print (the argument's ``__str__`` flushes,
    as the flush timer can): it sends the line in pieces, and the page still shows one line."""
    import nbclient
    from myst_nb.core import render

    source = ("import sys\n"
              "class Flushing:\n"
              "    def __str__(self):\n"
              "        sys.stdout.flush()\n"
              "        return '[0.5]'\n"
              "print('without:', Flushing())\n")
    notebook = code_notebook(source)
    nbclient.NotebookClient(notebook, timeout=60).execute()
    sent = notebook.cells[0].outputs
    texts = [o["text"] for o in sent]
    assert texts[0] == "without: " and "".join(texts) == "without: [0.5]\n"  # split in the print
    reader.merge_streams_exactly()
    assert [o["text"] for o in render.coalesce_streams(sent)] == ["without: [0.5]\n"]


@pytest.mark.parametrize("source", [
    ":::{warningbox}\nx\n:::", "{unknownrole}`x`", "{glue:text}`missing:.2f`", "{term}`nothing`",
    ":::{admonition} Open\nnever closed",
])
def test_what_cannot_be_converted_is_an_error_not_left_for_readers(source):
    with pytest.raises(reader.ConversionError):
        reader.convert_markdown(context(), source)


# --- the built notebooks -----------------------------------------------------------------------

def chapter_names(root: Path) -> list[str]:
    return [path.stem for path in notebook_chapters(root)]


def markdown_of(notebook) -> str:
    return "\n\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")


def expected_code_cells(source: Path) -> list[str]:
    """The chapter's code cells, read from its MyST source with jupytext (not with myst-nb)."""
    import jupytext

    return [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]


@pytest.mark.build
def test_every_chapter_has_a_reader_notebook_that_is_the_download(built_book):
    names = chapter_names(built_book.root)
    assert names == ["gelu", "vanishing_gradients", "shortcut_connections", "normalisation",
                     "what_shortcuts_fix", "gpt_block", "attention", "after_gpt2"]
    published = built_book.root / "_build" / "notebooks" / "book"
    assert sorted(p.stem for p in published.glob("*.ipynb")) == sorted(names)
    for name in names:
        download = built_book.html / "_sources" / "book" / f"{name}.ipynb"
        assert download.read_bytes() == (published / f"{name}.ipynb").read_bytes()
        soup = BeautifulSoup(built_book.page(name), "html.parser")
        links = [a["href"] for a in soup.select("a[href]") if a["href"].endswith(".ipynb")]
        assert f"../_sources/book/{name}.ipynb" in links, f"{name}: no download of the notebook"


@pytest.mark.build
def test_reader_notebooks_are_plain_markdown_with_unchanged_code(built_book):
    for name in chapter_names(built_book.root):
        notebook = nbformat.read(built_book.root / "_build/notebooks/book" / f"{name}.ipynb", 4)
        nbformat.validate(notebook)
        markdown = markdown_of(notebook)
        leftovers = MYST_LEFTOVERS.findall(markdown)
        assert not leftovers, f"{name}: MyST syntax left in the notebook: {leftovers[:5]}"
        assert "build computed" in notebook.cells[1].source and "recomputes" in notebook.cells[1].source
        code = [c.source for c in notebook.cells if c.cell_type == "code"]
        assert code[0].startswith("# Colab") and "%pip install" in code[0]
        assert code[1:] == expected_code_cells(built_book.root / "book" / f"{name}.md")
        assert [c.id for c in notebook.cells] == [f"{name}-{i:03d}" for i in range(len(notebook.cells))]
        hidden = [c for c in notebook.cells if "remove-cell" in c.metadata.get("tags", [])]
        assert hidden, f"{name}: the hidden cells keep their tags"
        figures = len(re.findall(r"\{glue:figure\}", (built_book.root / "book" / f"{name}.md").read_text()))
        attached = [n for c in notebook.cells for n in c.get("attachments", {})]
        assert len(attached) == figures, f"{name}: every glued figure is in the notebook"


@pytest.mark.build
def test_launch_buttons_open_the_reader_notebooks_on_the_notebooks_branch(built_book):
    for name in chapter_names(built_book.root):
        soup = BeautifulSoup(built_book.page(name), "html.parser")
        hrefs = {a["href"] for a in soup.select("a[href]")}
        binder = f"https://mybinder.org/v2/gh/gradflow-book/gradflow/notebooks?urlpath=lab/tree/book/{name}.ipynb"
        colab = f"https://colab.research.google.com/github/gradflow-book/gradflow/blob/notebooks/book/{name}.ipynb"
        assert binder in hrefs and colab in hrefs, name
        assert not any("urlpath=" in h and h.endswith(".md") for h in hrefs), name


@pytest.mark.build
def test_published_tree_is_what_binder_builds(built_book, tmp_path):
    """``repo2docker --no-build`` on the tree publish.yml pushes to the notebooks branch."""
    tree = built_book.root / "_build" / "notebooks"
    for needed in ("binder/requirements.txt", "binder/runtime.txt", "binder/postBuild",
                   "pyproject.toml", "README.md", "code/gradflow/__init__.py"):
        assert (tree / needed).is_file(), needed
    assert (tree / "binder/requirements.txt").read_bytes() == (REPO / "binder/requirements.txt").read_bytes()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter-repo2docker")), "--no-build", "--debug", str(tree)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    dockerfile = done.stdout + done.stderr
    assert "Building conda environment for python=3.11" in dockerfile
    assert re.search(r'pip install .*-r "binder/requirements.txt"', dockerfile)
    assert re.search(r"^RUN \./binder/postBuild$", dockerfile, re.MULTILINE)


# --- the notebooks compute what their text says --------------------------------------------------

def format_like_the_book(text_plain: str, spec: str) -> str:
    """A glued value's text/plain, formatted as ``{glue:text}`key:spec``` asks (Python's format)."""
    try:
        value = ast.literal_eval(text_plain)
    except (ValueError, SyntaxError):
        value = text_plain
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind in "eEfFgGn%":
        value = float(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind == "s":
        value = str(value)
    return format(value, spec)


def glued_values(notebook) -> dict[str, str]:
    """``{key: text/plain}`` of every glue() call in an executed notebook."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                values[name] = output["data"][GLUE_PREFIX + "text/plain"]
    return values


def find_in_order(text: str, needles: list[str]) -> list[str]:
    """The needles not found in ``text`` one after another, in order."""
    missing, position = [], 0
    for needle in needles:
        found = text.find(needle, position)
        if found < 0:
            missing.append(needle)
        else:
            position = found + len(needle)
    return missing


@pytest.mark.build
def test_notebooks_run_outside_the_book_and_reproduce_the_numbers_in_their_text(
    built_book, executed_reader_notebooks
):
    for name in chapter_names(built_book.root):
        run = executed_reader_notebooks[name]   # executed in a folder outside the repository
        written, notebook = markdown_of(run.written), run.executed
        assert notebook.cells[0].outputs == [], f"{name}: the install cell did something"
        computed = glued_values(notebook)
        roles = GLUE_TEXT.findall((built_book.root / "book" / f"{name}.md").read_text())
        assert roles, name
        expected = []
        for role in roles:
            key, _, spec = role.rpartition(":") if ":" in role else (role, "", "")
            expected.append(format_like_the_book(computed[key], spec))
        missing = find_in_order(written, expected)
        assert not missing, f"{name}: computed values not in the notebook's text: {missing[:10]}"
        site = [s.get_text() for s in BeautifulSoup(built_book.page(name), "html.parser")
                .select("span.pasted-text")]
        assert site == expected, f"{name}: the notebook computes other numbers than the site shows"


def test_cell_ids_are_stable_and_valid():
    ids = [reader.cell_id("shortcut_connections", i) for i in range(120)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) for i in ids)
    assert ids[3] == "shortcut_connections-003"


def test_install_cell_installs_only_where_the_package_is_missing():
    source = reader.INSTALL.format(repository="https://github.com/o/r", ref="abc123", myst_nb="1.4.0",
                                   lock=reader.lock_url("o", "r", "abc123"))
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(source)  # what IPython runs
    handler = ast.parse(python).body[0]
    assert isinstance(handler, ast.Try) and handler.handlers[0].type.id == "ImportError"
    assert [a.names[0].name for a in handler.body] == ["gradflow", "myst_nb"]
    assert "run_line_magic('pip', 'install" in python
    assert '"gradflow @ git+https://github.com/o/r@abc123"' in source
    # every package it installs is at the version of the lock at the same commit, torch aside
    assert 'urlopen("https://raw.githubusercontent.com/o/r/abc123/requirements.txt")' in source
    assert " -c book-constraints.txt " in source and 'startswith("torch==")' in source
    assert json.dumps(source)  # plain text, storable in a notebook


@pytest.mark.build
def test_publishing_replaces_the_notebooks_branch_with_the_tree(built_book, tmp_path):
    """scripts/publish_notebooks.sh, pushed to a scratch remote: the branch holds the tree, the
    checkout's own branch and index are untouched."""
    def git(*args, cwd):
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                              text=True).stdout.strip()

    repo, remote = tmp_path / "repo", tmp_path / "remote.git"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "publish_notebooks.sh", repo / "scripts")
    shutil.copytree(built_book.root / "_build" / "notebooks", repo / "_build" / "notebooks")
    (repo / ".gitignore").write_text("_build/\n")
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", ".", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "source", cwd=repo)
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    for _ in range(2):  # the second run replaces the branch
        subprocess.run(["bash", "scripts/publish_notebooks.sh", str(remote), "notebooks"],
                       cwd=repo, check=True, capture_output=True)
    files = git("ls-tree", "-r", "--name-only", "notebooks", cwd=remote).splitlines()
    expected = sorted(str(p.relative_to(repo / "_build" / "notebooks"))
                      for p in (repo / "_build" / "notebooks").rglob("*") if p.is_file())
    assert sorted(files) == expected
    assert "100755 blob" in git("ls-tree", "notebooks", "binder/postBuild", cwd=remote)
    assert git("rev-list", "--count", "notebooks", cwd=remote) == "1"
    source = git("rev-parse", "HEAD", cwd=repo)
    assert git("log", "-1", "--format=%s", "notebooks", cwd=remote) == f"Reader notebooks built from {source}"
    assert git("status", "--porcelain", cwd=repo) == "" and git("branch", "--show-current", cwd=repo) == "main"


def test_the_publish_workflow_prints_the_pdfs_and_publishes_the_notebooks():
    import yaml

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "publish.yml").read_text())
    build = workflow["jobs"]["build"]
    assert build["env"]["BOOK_COMMIT"] == "${{ github.sha }}"
    assert build["env"]["BOOK_PDF_LINKS"] == "1"
    assert workflow["permissions"]["contents"] == "write"
    runs = [step.get("run", "") for step in build["steps"]]
    order = [next(i for i, r in enumerate(runs) if needle in r)
             for needle in ("scripts/build.sh", "scripts/pdf.py", "scripts/publish_notebooks.sh")]
    assert order == sorted(order), "build, then print, then publish"
    upload = next(s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "_build/html"


def test_outputs_lose_only_the_memory_addresses_of_default_reprs():
    styled = {"output_type": "execute_result", "execution_count": 3, "metadata": {},
              "data": {"text/html": "<table></table>",
                       "text/plain": "<pandas.io.formats.style.Styler at 0x7f2acd6c7790>"}}
    only_repr = {"output_type": "execute_result", "execution_count": 4, "metadata": {},
                 "data": {"text/plain": "<object object at 0x7f2acd6c7790>"}}
    frame = {"output_type": "execute_result", "execution_count": 5, "metadata": {},
             "data": {"text/html": "<table></table>", "text/plain": "   a\n0  1"}}
    cleaned = reader.without_addresses([styled, only_repr, frame])
    assert [sorted(o["data"]) for o in cleaned] == [["text/html"], ["text/plain"],
                                                   ["text/html", "text/plain"]]


def test_exercises_are_numbered_quotes_and_solutions_open_headings():
    ctx = context(x=0.5)
    ctx.exercise_numbers = {"ex-a": "1.2"}
    exercise, _ = reader.convert_markdown(ctx, ":::{exercise}\n:label: ex-a\n\nFind $x$.\n:::")
    assert exercise == "> **Exercise 1.2**\n>\n> Find $x$."
    start, _ = reader.convert_markdown(ctx, ":::{solution-start} ex-a\n:class: dropdown\n:::")
    assert start == "**Solution to Exercise 1.2**"
    end, _ = reader.convert_markdown(ctx, "It is {glue:text}`x:.1f`.\n\n:::{solution-end}\n:::")
    assert end == "It is 0.5."


def test_a_value_the_page_cannot_format_is_a_warning_not_a_crash():
    with pytest.raises(reader.ConversionError, match="cannot be formatted"):
        reader.convert_markdown(context(word="never"), "It is {glue:text}`word:.2f`.")


def test_outputs_the_page_hides_are_not_kept():
    executed = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("print(time())", metadata={"tags": ["remove-output"]},
                                  outputs=[nbformat.v4.new_output("stream", text="0.0123\n")]),
        nbformat.v4.new_code_cell("1 + 1", outputs=[nbformat.v4.new_output(
            "execute_result", data={"text/plain": "2"}, execution_count=2)], execution_count=2),
    ])
    notebook = reader.reader_notebook(context(), executed, title="T", book="B", install="pass")
    assert [c.outputs for c in notebook.cells if c.cell_type == "code"][1] == []
    assert notebook.cells[-1].outputs[0]["data"] == {"text/plain": "2"}
    assert notebook.cells[1].cell_type == "markdown" and notebook.cells[0].source == "pass"
