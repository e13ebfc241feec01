"""``_ext/explorables.py``: the Vega bundle it serves and the static images it moves into files."""

from __future__ import annotations

import base64

from conftest import load_local_extension

extension = load_local_extension("explorables")


def test_the_bundle_is_written_once_per_version_and_keeps_its_names_to_itself(tmp_path):
    path = extension.write_bundle(tmp_path)
    text = path.read_text(encoding="utf-8")
    header = extension.bundle_header()
    assert text.startswith(header) and "BSD-3-Clause" in header
    body = text[len(header):]
    assert body.startswith("(function () {\n") and body.rstrip().endswith("})();")
    assert "window.vegaEmbed=" in body
    written = path.stat().st_mtime_ns
    assert extension.write_bundle(tmp_path).stat().st_mtime_ns == written   # not written again
    path.write_text("/*! an older bundle */\n", encoding="utf-8")
    assert extension.write_bundle(tmp_path).read_text(encoding="utf-8") == text


def test_inlined_images_move_into_files_the_page_points_at(tmp_path):
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"></svg>'
    data = base64.b64encode(svg.encode()).decode()
    page = tmp_path / "book" / "chapter.html"
    page.parent.mkdir()
    html = ('<p>before</p><div class="gradflow-explorable" id="explorable-demo-1" '
            'data-vega-lite="6.4">\n<img class="gradflow-explorable-fallback" alt="A &amp; B" '
            f'src="data:image/svg+xml;base64,{data}">\n<div class="gradflow-explorable-chart">'
            "</div></div><p>after</p>")
    page.write_text(html, encoding="utf-8")
    assert extension.externalise_images(page, tmp_path / "_images", "../") == 1
    assert (tmp_path / "_images" / "explorable-demo-1.svg").read_text() == svg
    rewritten = page.read_text(encoding="utf-8")
    assert 'alt="A &amp; B" src="../_images/explorable-demo-1.svg"' in rewritten
    assert rewritten.replace('src="../_images/explorable-demo-1.svg"', "") == html.replace(
        f'src="data:image/svg+xml;base64,{data}"', "")
    assert extension.externalise_images(page, tmp_path / "_images", "../") == 0   # done once
