"""How a failing cell is named (``_ext/cell_errors.py``): the line of the chapter that raised,
from IPython's traceback and the cell's place in the source; the build itself is tested in
``tests/test_book_build.py``."""

from types import SimpleNamespace

from conftest import load_local_extension

cell_errors = load_local_extension("cell_errors")

CHAPTER = """# A chapter

```{code-cell} ipython3
:tags: [remove-cell]

x = 1
assert x == 2
```

```{code-cell} ipython3
---
tags: [hide-input]
---
y = 1
```

```{code-cell} ipython3
z = 3
```
"""


def test_the_line_that_raised_is_found_past_the_fence_and_the_options(tmp_path):
    source = tmp_path / "chapter.md"
    source.write_text(CHAPTER)
    lines = CHAPTER.splitlines()
    # fences on lines 3, 10 and 17 (1-based); the cells' code starts after their options
    assert lines[cell_errors.source_line(source, 3, 2) - 1] == "assert x == 2"
    assert lines[cell_errors.source_line(source, 10, 1) - 1] == "y = 1"
    assert lines[cell_errors.source_line(source, 17, 1) - 1] == "z = 3"


def test_the_cell_line_comes_from_ipython_s_traceback_and_the_message_from_nbclient():
    traceback = ("\x1b[0;31mAssertionError\x1b[0m Traceback\nCell \x1b[0;32mIn[7], line 12\x1b[0m\n"
                 "  10 x = 1\n---> 12 assert x == 2\n")
    cause = SimpleNamespace(traceback=traceback, ename="AssertionError", evalue="")
    assert cell_errors.line_in_cell(cause) == 12
    assert cell_errors.describe(cause) == "AssertionError"
    assert cell_errors.describe(SimpleNamespace(ename="ValueError", evalue="bad")) == "ValueError: bad"
    assert cell_errors.line_in_cell(SimpleNamespace(traceback="no frame")) is None


def test_a_notebook_s_failing_cell_is_the_first_with_an_error_output():
    notebook = SimpleNamespace(cells=[{"outputs": [{"output_type": "stream"}]}, {"outputs": []},
                                      {"outputs": [{"output_type": "error"}]}])
    assert cell_errors.failing_cell(notebook) == 2
    assert cell_errors.failing_cell(SimpleNamespace(cells=[{}])) is None
