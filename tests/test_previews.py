"""What ``_ext/previews.py`` collects from a built page for the reference previews."""

from __future__ import annotations

import json

from bs4 import BeautifulSoup

from conftest import load_local_extension

previews = load_local_extension("previews")

PAGE = """<html><body><nav><section id="not-in-article"><h2>Nav</h2><p>no</p></section></nav>
<article class="bd-article">
<section id="chapter-slug"><span id="chapter-label"></span>
<h1>The chapter<a class="headerlink" href="#chapter-slug">#</a></h1>
<div class="tip admonition"><p class="admonition-title">In this chapter</p>
<p>What the chapter does, with a <a class="reference internal" href="glossary.html#term-x">term</a>.</p></div>
<dl class="glossary"><dt id="term-GELU">GELU<a class="headerlink" href="#term-GELU">#</a></dt>
<dd><p>The Gaussian error linear unit.</p></dd></dl>
<div class="citation" id="id7" role="listitem"><span class="label">[HG16]</span>
<p>Dan Hendrycks and Kevin Gimpel. Gaussian error linear units. 2016.</p></div>
<figure class="align-default" id="fig-one"><img alt="A curve" src="../_images/one.svg" />
<figcaption><p><span class="caption-number">Fig. 1 </span><span class="caption-text">A caption.</span>
<a class="headerlink" href="#fig-one">#</a></p></figcaption></figure>
<div class="math notranslate nohighlight" id="equation-eq-one"><span class="eqno">(1)</span>\\[a = b\\]</div>
<section id="long"><h2>Long</h2><p>""" + "word " * 200 + """</p></section>
</section></article></body></html>"""


def test_every_kind_of_target_is_collected_with_its_labels():
    found = previews.page_previews(PAGE, "book/chapter.html")
    assert sorted(found) == [
        "book/chapter.html#chapter-label", "book/chapter.html#chapter-slug",
        "book/chapter.html#equation-eq-one", "book/chapter.html#fig-one",
        "book/chapter.html#id7", "book/chapter.html#long", "book/chapter.html#term-GELU",
    ]


def text(fragment: str) -> str:
    """The fragment's words, blocks separated by a space (as a reader sees them)."""
    soup = BeautifulSoup(fragment, "html.parser")
    for block in soup.find_all(["p", "dd", "dt", "div", "figcaption"]):
        block.insert_after(" ")
    return " ".join(soup.get_text().split())


def test_previews_hold_the_target_content_and_nothing_to_click():
    found = previews.page_previews(PAGE, "book/chapter.html")
    assert text(found["book/chapter.html#term-GELU"]) == "GELU The Gaussian error linear unit."
    assert text(found["book/chapter.html#id7"]).startswith("Dan Hendrycks and Kevin Gimpel.")
    assert text(found["book/chapter.html#chapter-slug"]) == (
        "The chapter What the chapter does, with a term.")
    for fragment in found.values():
        soup = BeautifulSoup(fragment, "html.parser")
        assert not soup.select("a, [id]"), fragment  # no links, no duplicate ids
        assert not soup.select("dt, dd"), fragment  # list items only inside their list


def test_figure_previews_address_images_from_the_site_root():
    figure = BeautifulSoup(previews.page_previews(PAGE, "book/chapter.html")["book/chapter.html#fig-one"],
                           "html.parser")
    assert figure.img["src"] == "_images/one.svg" and figure.img["alt"] == "A curve"
    assert text(str(figure)) == "Fig. 1 A caption."


def test_long_sections_are_cut_at_a_word():
    preview = text(previews.page_previews(PAGE, "book/chapter.html")["book/chapter.html#long"])
    assert preview.startswith("Long word word") and preview.endswith("word …")
    assert len(preview) <= previews.SECTION_TEXT_LIMIT + len("Long  …")


def test_an_explorable_figure_previews_as_its_static_image_without_its_chart():
    page = """<html><body><article class="bd-article"><figure id="fig-live">
<div class="gradflow-explorable" id="explorable-x" data-vega-lite="6.4">
<img class="gradflow-explorable-fallback" alt="A chart" src="../_images/explorable-x.svg">
<div class="gradflow-explorable-chart" role="group" aria-label="A chart"><svg></svg></div>
<script type="application/json" class="gradflow-explorable-spec">{"big": "spec"}</script></div>
<figcaption><p>Explore it.</p></figcaption></figure></article></body></html>"""
    preview = previews.page_previews(page, "book/chapter.html")["book/chapter.html#fig-live"]
    assert 'src="_images/explorable-x.svg"' in preview and "Explore it." in preview
    assert "script" not in preview and "spec" not in preview and "<svg" not in preview


def test_a_page_is_parsed_again_only_when_its_html_changes(tmp_path, monkeypatch):
    (tmp_path / "book").mkdir()
    page = tmp_path / "book" / "chapter.html"
    page.write_text(PAGE, encoding="utf-8")
    parsed = []
    original = previews.page_previews
    monkeypatch.setattr(previews, "page_previews",
                        lambda html, name: parsed.append(name) or original(html, name))
    cache = {}
    first = previews.site_previews(tmp_path, ["book/chapter.html"], cache)
    assert first == dict(sorted(original(PAGE, "book/chapter.html").items()))
    assert previews.site_previews(tmp_path, ["book/chapter.html"], cache) == first
    assert parsed == ["book/chapter.html"]           # the second call read the cache
    page.write_text(PAGE.replace("A caption.", "Another caption."), encoding="utf-8")
    changed = previews.site_previews(tmp_path, ["book/chapter.html"], cache)
    assert parsed == ["book/chapter.html"] * 2
    assert "Another caption." in changed["book/chapter.html#fig-one"]


def test_a_cache_from_another_version_of_the_extension_is_not_used(tmp_path):
    path = tmp_path / previews.CACHE_FILE
    pages = {"book/chapter.html": {"digest": "0", "previews": {}}}
    path.write_text(json.dumps({"code": previews.CODE_DIGEST, "pages": pages}))
    assert previews.load_cache(path) == pages
    path.write_text(json.dumps({"code": "an older previews.py", "pages": pages}))
    assert previews.load_cache(path) == {}
    path.write_text("not json")
    assert previews.load_cache(path) == {}
    assert previews.load_cache(tmp_path / "missing.json") == {}
