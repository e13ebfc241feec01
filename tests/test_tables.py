"""The book's tables: pandas' cells, a header cell with text for every column, a caption, and a
box that scrolls on its own (``gradflow.tables``)."""

from __future__ import annotations

import pandas as pd
import pytest
from bs4 import BeautifulSoup

from gradflow.tables import Table, table_html


def parse(html: str):
    return BeautifulSoup(html, "html.parser")


def body_rows(soup) -> list[list[str]]:
    return [[cell.get_text() for cell in row.find_all(["th", "td"])]
            for row in soup.select("tbody tr")]


@pytest.fixture
def frame() -> pd.DataFrame:
    index = pd.MultiIndex.from_product([["pre", "post"], [6, 12]], names=["LayerNorm", "blocks"])
    return pd.DataFrame({"ratio": [0.1234567, 2.5, 1e-9, 3.0], "kind": list("abcd")}, index=index)


def test_every_header_cell_has_text_and_names_the_index_levels(frame):
    soup = parse(table_html(frame, caption="Ratios"))
    headers = [th.get_text() for th in soup.select("thead th")]
    assert headers == ["LayerNorm", "blocks", "ratio", "kind"]
    assert len(soup.select("thead tr")) == 1
    assert all(th.get_text(strip=True) for th in soup.select("th"))


def test_cells_are_the_ones_pandas_prints(frame):
    # pandas' own rendering is the reference for the body: same rows, same number formatting.
    ours, theirs = parse(table_html(frame)), parse(frame.to_html())
    assert body_rows(ours) == body_rows(theirs)


def test_caption_names_the_scroll_box_for_screen_readers(frame):
    soup = parse(table_html(frame, caption="Gradient ratios by depth"))
    box = soup.select_one("div.book-table")
    assert box["role"] == "region" and box["tabindex"] == "0"
    assert box["aria-label"] == "Gradient ratios by depth"
    assert soup.select_one("table > caption").get_text() == "Gradient ratios by depth"


def test_caption_comes_from_the_frame_attrs(frame):
    frame.attrs["caption"] = "From attrs"
    assert parse(table_html(frame)).select_one("caption").get_text() == "From attrs"


def test_a_table_without_caption_is_still_named(frame):
    soup = parse(table_html(frame))
    assert soup.select_one("caption") is None
    assert soup.select_one("div.book-table")["aria-label"] == "Table: ratio, kind"


def test_row_numbers_are_left_out():
    soup = parse(table_html(pd.DataFrame({"x": [1, 2]})))
    assert [th.get_text() for th in soup.select("thead th")] == ["x"]
    assert body_rows(soup) == [["1"], ["2"]]


def test_an_unnamed_index_gets_a_data_cell_in_the_corner():
    soup = parse(table_html(pd.DataFrame({"x": [1.5]}, index=["tanh form"])))
    corner = soup.select_one("thead tr").find(True)
    assert corner.name == "td" and corner.get_text() == ""
    assert body_rows(soup) == [["tanh form", "1.5"]]


def test_a_pivot_names_its_column_variable_in_the_corner():
    pivot = pd.DataFrame([[0.1, 0.2]], index=pd.Index(["relu"], name="activation"),
                         columns=pd.Index(["default", "kaiming"], name="init"))
    headers = [th.get_text() for th in parse(table_html(pivot)).select("thead th")]
    assert headers == ["activation \\ init", "default", "kaiming"]


def test_formats_apply_to_their_columns_only(frame):
    soup = parse(Table(frame, "Formatted", {"ratio": "{:+.2e}"})._repr_html_())
    assert [row[-2] for row in body_rows(soup)] == ["+1.23e-01", "+2.50e+00", "+1.00e-09", "+3.00e+00"]
    assert [row[-1] for row in body_rows(soup)] == list("abcd")


def test_text_is_escaped():
    soup = parse(table_html(pd.DataFrame({"<b>": ["<i>"]}), caption="a < b"))
    assert soup.select_one("thead th").get_text() == "<b>"
    assert soup.select_one("td").get_text() == "<i>" and not soup.select("b, i")
    assert soup.select_one("caption").get_text() == "a < b"


def test_bad_input_gets_a_clear_error(frame):
    with pytest.raises(TypeError, match="needs a pandas DataFrame, got Series"):
        table_html(frame["ratio"])
    with pytest.raises(ValueError, match=r"formats names columns the table does not have: \['nope'\]"):
        table_html(frame, formats={"nope": "{:.2f}"})
