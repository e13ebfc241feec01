"""The explorable figures on the built site, in a real browser (Chromium driven by Playwright).

Each chapter's explorable is drawn from the site's own copy of Vega; the test moves every control
with the keyboard (or clicks a radio button, ticks a checkbox, picks from a drop-down) and checks
that the chart changed and that the value written above it is the value the package's sweep
gives for that setting, computed here again by calling the package. The figures also have to work
for everyone: a static image where JavaScript is off and in print, controls with visible labels,
no serious or critical axe finding, and a chart that fits a phone's screen.
"""

from __future__ import annotations

import math
import re

import pytest
from test_site_browser import browser, site  # noqa: F401 (fixtures)

from gradflow.chapters import gelu, gpt_block, shortcut_connections, vanishing_gradients
from gradflow.chapters.attention import experiments as attention_experiments

pytestmark = [pytest.mark.build, pytest.mark.browser]

CHAPTERS = ("gelu", "vanishing_gradients", "shortcut_connections", "normalisation",
            "what_shortcuts_fix", "gpt_block", "attention", "after_gpt2")
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
LIVE = ("() => { const f = [...document.querySelectorAll('.gradflow-explorable')];"
        " return f.length > 0 && f.every(e => e.gradflowView); }")


@pytest.fixture(scope="module")
def open_page(browser, site):  # noqa: F811
    base, _, _ = site
    contexts = []

    def opener(chapter: str, width: int = 1280, javascript: bool = True):
        context = browser.new_context(viewport={"width": width, "height": 900},
                                      java_script_enabled=javascript)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: errors.append(f"remote request {r.url}")
                if not r.url.startswith((base, "data:")) else None)
        page.goto(f"{base}book/{chapter}.html", wait_until="networkidle")
        if javascript:
            page.wait_for_function(LIVE, timeout=30_000)
        return page, errors

    yield opener
    for context in contexts:
        context.close()


def readouts(page, figure: str) -> list[str]:
    """The texts of the figure's chart, each multi-line text joined with spaces."""
    return page.eval_on_selector_all(
        f"#explorable-{figure} .gradflow-explorable-chart svg text",
        "ts => ts.map(t => [...t.querySelectorAll('tspan')].map(s => s.textContent).join(' ')"
        " || t.textContent)")


def readout(page, figure: str, starts: str) -> str:
    found = [t for t in readouts(page, figure) if t.startswith(starts)]
    assert len(found) == 1, f"no single text starting {starts!r} in {readouts(page, figure)}"
    return found[0]


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(NUMBER, text.replace("±", ""))]


def chart_svg(page, figure: str) -> str:
    return page.inner_html(f"#explorable-{figure} .gradflow-explorable-chart svg")


def control(page, figure: str, label: str):
    """The form element labelled ``label`` among the figure's controls."""
    bind = page.locator(f"#explorable-{figure} .vega-bind").filter(
        has=page.locator(".vega-bind-name", has_text=re.compile(f"^{re.escape(label)}$")))
    assert bind.count() == 1, f"no control labelled {label!r}"
    return bind.locator("input, select").first


def press(page, figure: str, label: str, key: str, times: int = 1) -> None:
    """Move a control with the keyboard, as a reader would: focus it, press ``key``."""
    element = control(page, figure, label)
    element.focus()
    for _ in range(times):
        page.keyboard.press(key)


def heard(page, figure: str) -> list[str]:
    """What the figure's live region last said: one text per line."""
    return page.eval_on_selector_all(f"#explorable-{figure} .gradflow-explorable-status p",
                                     "ps => ps.map(p => p.textContent)")


def moved(page, figure: str, action) -> None:
    """Run ``action`` and check that the chart's drawing changed, and that its live region then
    said texts the chart shows now and did not show before (the readouts that changed)."""
    before, texts_before = chart_svg(page, figure), readouts(page, figure)
    said_before = heard(page, figure)
    action()
    page.wait_for_function(
        "([id, before]) => document.querySelector(`#explorable-${id} .gradflow-explorable-chart"
        " svg`).innerHTML !== before", arg=[figure, before], timeout=10_000)
    page.wait_for_function(
        "([id, before]) => [...document.querySelectorAll(`#explorable-${id}"
        " .gradflow-explorable-status p`)].map(p => p.textContent).join('\\n') !== before",
        arg=[figure, "\n".join(said_before)], timeout=10_000)
    said, texts_now = heard(page, figure), readouts(page, figure)
    assert said and all(text in texts_now and text not in texts_before for text in said), (
        said, texts_before, texts_now)


def shown_and_heard(page, figure: str, starts: str) -> str:
    """The readout starting ``starts`` (see :func:`readout`), which the live region said."""
    text = readout(page, figure, starts)
    assert text in heard(page, figure), (text, heard(page, figure))
    return text


def close(shown: float, expected: float, digits: int = 3) -> bool:
    """``shown``, printed with ``digits`` significant digits, is ``expected``."""
    return math.isclose(shown, float(f"{expected:.{digits}g}"), rel_tol=1e-9) or math.isclose(
        shown, expected, rel_tol=0.51 * 10 ** (1 - digits))


def test_gelu_explorable_follows_both_sliders(open_page):
    page, errors = open_page("gelu")
    sweeps = {form: gelu.constant_sweep(form).largest for form in ("sigmoid", "tanh")}
    for symbol, form, key, times, label in (
        ("k", "sigmoid", "ArrowRight", 7, "slope k of x·σ(kx)"),
        ("c", "tanh", "Home", 1, "cubic coefficient c of the tanh form"),
    ):
        moved(page, "gelu-constants",
              lambda label=label, key=key, times=times: press(page, "gelu-constants", label, key,
                                                              times))
        text = shown_and_heard(page, "gelu-constants", f"{symbol} = ")
        value, largest, at = numbers(text)
        row = sweeps[form].loc[min(sweeps[form].index, key=lambda p: abs(p - value))]
        assert abs(row.name - value) < 1e-9, text
        assert close(largest, row["max_abs_error"]) and abs(at - row["at_abs_x"]) <= 0.005, text
    assert readout(page, "gelu-constants", "k = ").startswith("k = 1.77")
    assert readout(page, "gelu-constants", "c = ").startswith("c = 0.030")
    lowest = [t for t in readouts(page, "gelu-constants") if t.startswith("lowest on the grid")]
    assert len(lowest) == 2, lowest
    for text, form in zip(lowest, ("sigmoid", "tanh")):
        constant, largest = numbers(text)
        best = sweeps[form]["max_abs_error"]
        assert abs(constant - best.idxmin()) < 1e-9 and close(largest, best.min()), text
    assert not errors, errors


def test_vanishing_explorable_follows_all_four_controls(open_page):
    page, errors = open_page("vanishing_gradients")
    measured, predicted = vanishing_gradients.profile_explorer()
    figure = "vanishing-profiles"

    def check(activation, init, gain, depth):
        # (nothing is said before the first move)
        text = (shown_and_heard if heard(page, figure) else readout)(page, figure, "layer 1:")
        first, pred, low, high = numbers(text.replace("layer 1", ""))
        row = measured[(measured.activation == activation) & (measured.init == init)
                       & (measured.gain == gain) & (measured.depth == depth)
                       & (measured.layer == 1)].iloc[0]
        expected = vanishing_gradients.predicted_profile(predicted, activation, init, gain, depth)
        assert close(first, row["ratio"]) and close(pred, expected[0]), text
        assert close(low, row["ratio_min"], 2) and close(high, row["ratio_max"], 2), text

    check("sigmoid", "default", 1.0, 50)
    moved(page, figure, lambda: control(page, figure, "activation").select_option("relu"))
    check("relu", "default", 1.0, 50)
    moved(page, figure, lambda: page.locator(f"#explorable-{figure} label",
                                             has_text="Kaiming/He").click())
    check("relu", "kaiming", 1.0, 50)
    moved(page, figure, lambda: press(page, figure, "gain (× the initialisation's std)",
                                      "ArrowRight"))
    check("relu", "kaiming", 1.25, 50)
    moved(page, figure, lambda: press(page, figure, "depth D", "ArrowLeft", 3))
    check("relu", "kaiming", 1.25, 20)
    assert not errors, errors


def test_shortcut_explorable_follows_lambda_branches_shortcuts_and_blocks(open_page):
    page, errors = open_page("shortcut_connections")
    lambdas = shortcut_connections.lambda_explorer()
    first = lambdas[lambdas.layer == 0].set_index(["gain", "lambda"])
    figure = "shortcut-connections"

    def check(gain, lam, prefix):
        # (nothing is said before the first move)
        text = (shown_and_heard if heard(page, figure) else readout)(page, figure, prefix)
        ratio, identity = numbers(text.split(":", 1)[1].replace("layer 0", ""))
        assert close(ratio, first.loc[(gain, lam), "ratio"]), text
        assert close(identity, first.loc[(gain, lam), "identity_prediction"]), text

    check(1.0, 0.9, "λ = 0.90")
    moved(page, figure, lambda: press(page, figure, "shortcut scale λ", "ArrowLeft", 8))
    check(1.0, 0.5, "λ = 0.50")
    moved(page, figure, lambda: page.locator(f"#explorable-{figure} label",
                                             has_text="0.3 × PyTorch's default").click())
    check(0.3, 0.5, "λ = 0.50")
    moved(page, figure, lambda: press(page, figure, "shortcuts", "Space"))
    check(0.3, 0.0, "no shortcuts (λ = 0)")
    paths = shortcut_connections.path_length_explorer()
    for key, n in (("Home", 1), ("End", max(paths))):
        moved(page, figure, lambda key=key: press(page, figure, "blocks n (paths)", key))
        text = shown_and_heard(page, figure, f"n = {n} blocks")
        _, total, mode, share = numbers(text)
        shares = paths[n]["share"]
        assert total == pytest.approx(float(f"{2.0 ** n:.3g}"), rel=1e-9), text
        assert mode == shares.idxmax() and share == pytest.approx(100 * shares.max(), abs=0.051)
    assert not errors, errors


def test_gpt_explorable_follows_depth_placement_shortcuts_and_initialisation(open_page):
    page, errors = open_page("gpt_block")
    # the three depths the checks below visit, measured now (each depth's model is drawn on its
    # own, so these rows are the rows of the chapter's whole table)
    table = gpt_block.gradient_explorer(depths=(2, 12, 24))
    figure = "gpt-block-gradients"

    def check(n, placement, shortcuts, scaled):
        # (nothing is said before the first move)
        text = (shown_and_heard if heard(page, figure) else readout)(page, figure, f"N = {n}:")
        w2_first, w2_last, qk_first, qk_last = numbers(text.split(":", 1)[1].replace(
            "W2", "").replace("W_Q, W_K", "").replace("block 1", "").replace("block N", ""))
        rows = table[(table.n_layer == n) & (table.placement == placement)
                     & (table.shortcuts == shortcuts) & (table.scaled_init == scaled)]
        rows = rows.sort_values("layer")
        for shown, expected in ((w2_first, rows.ffn_w2.iloc[0]), (w2_last, rows.ffn_w2.iloc[-1]),
                                (qk_first, rows.attn_qk.iloc[0]), (qk_last, rows.attn_qk.iloc[-1])):
            assert close(shown, expected), text

    check(12, "pre", True, True)
    moved(page, figure, lambda: press(page, figure, "blocks N", "End"))
    check(24, "pre", True, True)
    moved(page, figure, lambda: page.locator(f"#explorable-{figure} label",
                                             has_text="Post-LN").click())
    check(24, "post", True, True)
    moved(page, figure, lambda: press(page, figure, "shortcuts", "Space"))
    check(24, "post", False, True)
    moved(page, figure, lambda: press(page, figure, "GPT-2's scaled initialisation", "Space"))
    check(24, "post", False, False)
    moved(page, figure, lambda: press(page, figure, "blocks N", "Home"))
    check(2, "post", False, False)
    assert not errors, errors


def test_attention_explorable_follows_head_size_and_entry_size(open_page):
    page, errors = open_page("attention")
    sweep = attention_experiments.explorer_sweep(t=16).set_index(["head_size", "std", "scaled"])
    figure = "attention-saturation"

    def check(d, std):
        first = (shown_and_heard if heard(page, figure) else readout)(page, figure, "d_k = ")
        shown_d, shown_std, entropy_with, _, entropy_without = numbers(first)
        assert (shown_d, shown_std) == (d, std), first
        grad_with, _, grad_without = numbers(readout(page, figure, "gradient factor"))
        row = sweep.loc[(d, std)]
        for shown, expected in ((entropy_with, row.loc[True, "entropy"]),
                                (entropy_without, row.loc[False, "entropy"]),
                                (grad_with, row.loc[True, "grad"]),
                                (grad_without, row.loc[False, "grad"])):
            assert close(shown, expected), (first, d, std)

    check(64, 1.0)
    moved(page, figure, lambda: press(page, figure, "log2 of the head size d_k", "End"))
    check(512, 1.0)
    moved(page, figure, lambda: press(page, figure, "std of the entries of q and k", "Home"))
    check(512, 0.25)
    moved(page, figure, lambda: press(page, figure, "log2 of the head size d_k", "Home"))
    check(8, 0.25)
    assert not errors, errors


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_explorables_are_labelled_reachable_accessible_and_fit_a_phone(open_page, chapter):
    from axe_playwright_python.sync_playwright import Axe

    for width in (1280, 390):
        page, errors = open_page(chapter, width)
        assert page.locator(".gradflow-explorable-status").count() == 1
        assert page.locator(".gradflow-explorable-status").text_content() == ""  # quiet at load
        controls = page.locator(".gradflow-explorable input, .gradflow-explorable select")
        assert controls.count() >= 2
        for i in range(controls.count()):
            element = controls.nth(i)
            label = element.evaluate(
                "e => (e.closest('label') || document.querySelector(`label[for='${e.id}']`))"
                "?.textContent.trim() || ''")
            assert label, f"{chapter}: a control without a visible label"
            assert element.is_visible() and element.evaluate("e => e.tabIndex >= 0")
            element.focus()
            assert element.evaluate("e => e === document.activeElement")
        assert not errors, errors
        # The whole page, explorables drawn, is checked by axe at both widths in
        # test_site_browser.py; here axe looks at the explorable figures alone. (It fetches the
        # stylesheets itself, and 404s on theme.css's @import: the page's own errors are checked
        # before it runs.)
        violations = Axe().run(page, context=".gradflow-explorable").response["violations"]
        blocking = [v["id"] for v in violations if v["impact"] in {"serious", "critical"}]
        assert not blocking, f"{chapter} at {width} px: {blocking}"
        too_wide = page.eval_on_selector_all(
            ".gradflow-explorable-chart",
            "cs => cs.filter(c => c.querySelector('svg').getBoundingClientRect().width"
            " > c.clientWidth + 1).length")
        assert too_wide == 0, f"{chapter}: a chart wider than its column at {width} px"
        assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_static_image_stands_in_without_javascript_and_in_print(open_page, chapter):
    page, _ = open_page(chapter, javascript=False)
    image = page.locator(".gradflow-explorable-fallback")
    assert image.count() == 1 and image.is_visible()
    assert image.evaluate("i => i.complete && i.naturalWidth > 0")
    assert image.get_attribute("src").startswith("../_images/explorable-")
    assert len(image.get_attribute("alt")) > 80
    assert not page.locator(".gradflow-explorable-chart").is_visible()

    page, _ = open_page(chapter)
    assert not page.locator(".gradflow-explorable-fallback").is_visible()
    page.emulate_media(media="print")
    assert page.locator(".gradflow-explorable-fallback").is_visible()
    assert not page.locator(".gradflow-explorable-chart").is_visible()
