"""The explorable figures' package side: ``gradflow.explorables`` and the sweeps each chapter's
explorable shows, checked against independent references (math.erf in float64, closed forms,
the one-gain measurements, PyTorch run one configuration at a time). What the page shows when a
control moves is checked in a browser by ``test_explorables_site.py``."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET

import altair as alt
import numpy as np
import pandas as pd
import pytest
import torch

from gradflow import explorables
from gradflow.chapters import gelu, gpt_block, shortcut_connections, vanishing_gradients
from gradflow.chapters.gelu import figures as gelu_figures
from gradflow.chapters.gpt_block import figures as gpt_figures
from gradflow.chapters.shortcut_connections import figures as shortcut_figures
from gradflow.chapters.vanishing_gradients import figures as vanishing_figures
from gradflow.networks.gpt import GPTConfig
from gradflow.networks.stacked import batched_profiles


def small_chart():
    data = alt.Data(values=[{"x": 1, "y": 2}, {"x": 2, "y": 3}])
    control = explorables.slider("t_x", "x", [1, 2], 1)
    return alt.Chart(data).mark_point().encode(x="x:Q", y="y:Q").add_params(control)


# --- gradflow.explorables ---------------------------------------------------------------------


def test_rounded_keeps_significant_digits_and_refuses_what_json_cannot_hold():
    assert explorables.rounded([123456.0, 0.000123456, -1.23456], 3) == [123000.0, 0.000123, -1.23]
    with pytest.raises(ValueError, match="finite"):
        explorables.rounded([1.0, float("nan")])


def test_deltas_restore_the_rounded_values_with_a_running_sum():
    values = np.log10(np.geomspace(1e-40, 1.0, 50))
    restored = np.cumsum(explorables.deltas(values)) / 100
    np.testing.assert_allclose(restored, np.round(values, 2), atol=1e-12)
    assert max(abs(d) for d in explorables.deltas(values)[1:]) < 100   # short numbers


def test_a_slider_steps_through_an_even_grid_and_starts_on_it():
    assert explorables.grid_step([0.5, 0.75, 1.0]) == (0.5, 1.0, 0.25)
    with pytest.raises(ValueError, match="evenly spaced"):
        explorables.grid_step([1, 2, 4], "depths")
    with pytest.raises(ValueError, match="at least two"):
        explorables.grid_step([1])
    with pytest.raises(ValueError, match="not one of the slider's values"):
        explorables.slider("v", "v", [1, 2, 3], 2.5)
    with pytest.raises(ValueError, match="not one of"):
        explorables.choice("v", "v", {"a": "A"}, "b")


def test_check_spec_refuses_remote_data_unlabelled_controls_and_no_controls():
    spec = small_chart().to_dict()
    spec.pop("$schema")
    assert explorables.check_spec(spec) is spec
    with pytest.raises(ValueError, match="schema"):
        explorables.check_spec({**spec, "$schema": "https://example.org/schema.json"})
    with pytest.raises(ValueError, match="inline"):
        explorables.check_spec({**spec, "data": {"url": "https://example.org/data.json"}})
    unlabelled = json.loads(json.dumps(spec).replace('"name": "x"', '"name": " "'))
    with pytest.raises(ValueError, match="visible label"):
        explorables.check_spec(unlabelled)
    with pytest.raises(ValueError, match="binds no parameter"):
        explorables.check_spec({"mark": "point", "data": {"values": []}})
    with pytest.raises(ValueError):
        explorables.check_spec({**spec, "nan": float("nan")})
    with pytest.raises(TypeError, match="specification"):
        explorables.check_spec("not a spec")


def test_explorable_checks_its_name_and_alt_text():
    with pytest.raises(ValueError, match="element id"):
        explorables.explorable(small_chart(), "Has Spaces", alt="a chart")
    with pytest.raises(ValueError, match="alt"):
        explorables.explorable(small_chart(), "ok-name", alt="  ")


def test_explorable_html_is_deterministic_and_carries_its_spec_image_and_alt():
    first = explorables.explorable(small_chart(), "tiny", alt='x & "y" </script>')
    second = explorables.explorable(small_chart(), "tiny", alt='x & "y" </script>')
    assert first.html() == second.html()
    html = first.html()
    assert html.startswith('<div class="gradflow-explorable" id="explorable-tiny"')
    script = re.search(r'<script type="application/json" class="gradflow-explorable-spec">(.*?)'
                       r"</script>", html, re.DOTALL).group(1)
    assert json.loads(script) == first.spec                 # "</" escaped, and nothing else
    assert "</script>" not in script
    assert first.spec["description"] == 'x & "y" </script>'
    assert 'alt="x &amp; &quot;y&quot; &lt;/script&gt;"' in html
    ET.fromstring(first.svg)                                 # the static image is well-formed SVG
    bundle = first._repr_mimebundle_()
    assert set(bundle) == {"text/html", "image/svg+xml", "text/plain"}
    assert "0x" not in bundle["text/plain"]                  # no memory address: same every run


def test_only_text_marks_are_left_to_screen_readers_and_say_their_text():
    data = alt.Data(values=[{"x": 1, "y": 2, "label": "published 2"}])
    chart = alt.layer(
        alt.Chart(data).mark_line().encode(x="x:Q", y="y:Q"),
        alt.Chart(data).mark_point(aria=True).encode(x="x:Q", y="y:Q"),
        explorables.readout(alt.Chart(data), "'y = ' + datum.y"),
        alt.Chart(data).mark_text().encode(x="x:Q", y="y:Q", text="label:N"),
    ).add_params(explorables.slider("t_x", "x", [1, 2], 1))
    figure = explorables.explorable(chart, "marks", alt="m")
    layers = figure.spec["layer"]
    assert [layer["mark"].get("aria") for layer in layers] == [False, True, True, None]
    assert layers[3]["encoding"]["description"] == {"field": "label", "type": "nominal"}
    assert "description" not in layers[0]["encoding"]
    # In the drawn chart (the static image is Vega's own SVG), the label says its text and
    # nothing else, and the readout says the value; only the point, which asked to be read,
    # names its fields.
    assert 'aria-label="published 2"' in figure.svg and 'aria-label="y = 2"' in figure.svg
    assert "label: " not in figure.svg
    assert figure.svg.count('aria-label="x: 1; y: 2"') == 1
    assert "aria" not in explorables.quiet_marks({"config": {"mark": {"color": "red"}}})["config"]["mark"]


def test_named_datasets_are_shipped_once():
    rows = [{"x": 1, "y": 2}, {"x": 2, "y": 3}]
    data = alt.Data(name="rows")
    control = explorables.slider("t_x", "x", [1, 2], 1)
    chart = alt.layer(alt.Chart(data).mark_point().encode(x="x:Q", y="y:Q"),
                      alt.Chart(data).mark_line().encode(x="x:Q", y="y:Q")).add_params(control)
    figure = explorables.explorable(chart, "twice", alt="two layers", datasets={"rows": rows})
    assert json.dumps(figure.spec).count('"y": 3') == 1


# --- GELU: the constants ----------------------------------------------------------------------


def gelu_error(form: str, p: float, x: float) -> float:
    """x gate(x; p) - x Phi(x) with math.erf and math.tanh, in float64."""
    phi = 0.5 * (1 + math.erf(x / math.sqrt(2)))
    if form == "tanh":
        gate = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + p * x**3)))
    else:
        gate = 1 / (1 + math.exp(-p * x))
    return x * (gate - phi)


@pytest.mark.parametrize("form", ["sigmoid", "tanh"])
def test_constant_sweep_curves_are_the_gelu_error_and_even(form):
    sweep = gelu.constant_sweep(form)
    assert list(sweep.curves.index) == list(gelu.SWEEP_CONSTANTS[form])
    for p in (sweep.curves.index[0], sweep.curves.index[-1]):
        for x in sweep.curves.columns[[5, 79, 120]]:
            assert sweep.curves.loc[p, x] == pytest.approx(gelu_error(form, p, x), abs=1e-15)
    np.testing.assert_allclose(sweep.curves.to_numpy(), sweep.curves.to_numpy()[:, ::-1],
                               atol=1e-15)


@pytest.mark.parametrize("form,published", [("sigmoid", 1.702), ("tanh", 0.044715)])
def test_constant_sweep_largest_error_agrees_with_the_refined_search(form, published):
    largest = gelu.constant_sweep(form, [published]).largest.iloc[0]
    refined = gelu.max_gate_error(form, published, "gelu")
    assert largest["max_abs_error"] == pytest.approx(refined, rel=1e-5)
    assert largest["max_abs_error"] <= refined
    assert abs(largest["error_at_max"]) == largest["max_abs_error"]
    assert gelu_error(form, published, largest["at_abs_x"]) == pytest.approx(
        largest["error_at_max"], abs=1e-14)


def test_constant_sweep_refuses_bad_input():
    with pytest.raises(ValueError, match="form"):
        gelu.constant_sweep("silu")
    with pytest.raises(ValueError, match="positive numbers"):
        gelu.constant_sweep("tanh", [0.04, -0.01])


def test_gelu_explorable_ships_every_constant_and_marks_the_published_ones():
    sweeps = [gelu.constant_sweep(form) for form in ("sigmoid", "tanh")]
    figure = gelu_figures.explorable_constants(sweeps)
    data = figure.spec["datasets"]
    assert [row["p"] for row in data["sigmoid_largest"]] == list(gelu.SWEEP_CONSTANTS["sigmoid"])
    assert len(data["tanh_curves"][0]["e"]) == (sweeps[1].curves.columns >= 0).sum()
    params = {p["name"]: p for p in figure.spec["params"]}
    assert params["gelu_k"]["value"] == 1.70 and params["gelu_c"]["value"] == 0.045
    text = json.dumps(figure.spec)
    assert "published 1.702" in text and "published 0.044715" in text


# --- Vanishing gradients: the profiles --------------------------------------------------------


def test_batched_profiles_measure_many_gains_as_one_gain_at_a_time():
    widths, seeds = [16] * 7, [3, 5]
    together = batched_profiles(widths, "tanh", "xavier", seeds, gains=[0.5, 1.0, 1.5],
                                probe_depths=[3, 6])
    for gain in (0.5, 1.0, 1.5):
        alone = batched_profiles(widths, "tanh", "xavier", seeds, gain=gain, probe_depths=[3, 6])
        part = together[together["gain"] == gain].drop(columns="gain").reset_index(drop=True)
        pd.testing.assert_frame_equal(part, alone, rtol=1e-12)
    with pytest.raises(ValueError, match="either gain or gains"):
        batched_profiles(widths, "tanh", "xavier", seeds, gain=2.0, gains=[1.0])
    with pytest.raises(ValueError, match="gain"):
        batched_profiles(widths, "tanh", "xavier", seeds, gains=[1.0, -1.0])


def test_predicted_profile_is_the_product_of_the_factors_above_each_layer():
    _, predicted = vanishing_gradients.profile_explorer(
        seeds=[0], width=8, batch=2, activations=["relu"], inits=["default", "kaiming"],
        gains=[1.0], depths=[5])
    # ReLU: E[ReLU'(a)^2] = 1/2 at any variance, so each factor is sqrt(sigma_w^2 / 2):
    # sqrt(1/6) at PyTorch's default (sigma_w^2 = 1/3), exactly 1 at Kaiming's (sigma_w^2 = 2).
    default = vanishing_gradients.predicted_profile(predicted, "relu", "default", 1.0, 5)
    np.testing.assert_allclose(default, (1 / 6) ** (np.arange(4, -1, -1) / 2), rtol=1e-9)
    kaiming = vanishing_gradients.predicted_profile(predicted, "relu", "kaiming", 1.0, 5)
    np.testing.assert_allclose(kaiming, np.ones(5), rtol=1e-9)
    with pytest.raises(ValueError, match="no prediction"):
        vanishing_gradients.predicted_profile(predicted, "relu", "xavier", 1.0, 5)


def test_profile_explorer_gives_each_depth_its_own_profile_ending_at_one():
    measured, _ = vanishing_gradients.profile_explorer(
        seeds=[0, 1], width=16, batch=3, activations=["tanh"], inits=["default"],
        gains=[1.0, 1.5], depths=[4, 8])
    assert set(measured.groupby(["gain", "depth"]).size().items()) == {
        ((1.0, 4), 4), ((1.0, 8), 8), ((1.5, 4), 4), ((1.5, 8), 8)}
    top = measured[measured.layer == measured.depth]
    np.testing.assert_allclose(top["ratio"], 1.0)
    assert (measured["ratio_min"] <= measured["ratio"] * (1 + 1e-12)).all()
    assert (measured["ratio"] <= measured["ratio_max"] * (1 + 1e-12)).all()


def test_vanishing_explorable_has_the_four_controls_and_one_profile_per_setting():
    measured, predicted = vanishing_gradients.profile_explorer(
        seeds=[0], width=8, batch=2, activations=["relu", "tanh"], inits=["default", "kaiming"],
        gains=[0.5, 1.0], depths=[5, 10])
    figure = vanishing_figures.explorable_profiles(measured, predicted,
                                                   start=("relu", "default", 1.0, 10))
    bound = {p["name"]: p["bind"]["input"] for p in figure.spec["params"]}
    assert bound == {"v_act": "select", "v_init": "radio", "v_gain": "range", "v_depth": "range"}
    rows = figure.spec["datasets"]["profiles"]
    assert len(rows) == 2 * 2 * 2 * 2
    row = next(r for r in rows if (r["a"], r["i"], r["g"], r["d"]) == ("tanh", "kaiming", 0.5, 10))
    expected = measured[(measured.activation == "tanh") & (measured.init == "kaiming")
                        & (measured.gain == 0.5) & (measured.depth == 10)].sort_values("layer")
    np.testing.assert_allclose(np.cumsum(row["m"]) / 100, np.log10(expected["ratio"]), atol=0.006)


# --- Shortcut connections: lambda and the paths -----------------------------------------------


def test_lambda_zero_is_the_plain_network():
    frame = shortcut_connections.lambda_scaling(lambdas=(0.0,), depth=6, width=8, seeds=[2],
                                                batch=4)
    from gradflow.networks.mlp import DeepMLP, make_generator
    from gradflow.probes import block_states, seed_loss

    net = DeepMLP(depth=6, width=8, activation="gelu_tanh", shortcut=False, seed=2).double()
    generator = make_generator(2 + 10_000)
    x = torch.randn(4, 8, generator=generator).double()
    readout = torch.randn(4, 8, generator=generator).double()
    states = block_states(net, x)
    grads = torch.autograd.grad(seed_loss(states[-1], readout=readout), states)
    expected = [g.norm().item() for g in grads]
    np.testing.assert_allclose(frame["signal_norm"], expected, rtol=1e-10)
    with pytest.raises(ValueError, match=">= 0"):
        shortcut_connections.lambda_scaling(lambdas=(-0.1,), depth=3, width=4, seeds=[0])


def test_lambda_explorer_summarises_the_seeds_of_lambda_scaling():
    frame = shortcut_connections.lambda_scaling(lambdas=(0.5, 1.0), depth=5, width=8,
                                                seeds=range(3), gains=(1.0,))
    summary = shortcut_connections.lambda_explorer(lambdas=(0.5, 1.0), gains=(1.0,), depth=5,
                                                   width=8, seeds=range(3))
    for lam in (0.5, 1.0):
        ratios = frame[(frame["lambda"] == lam) & (frame.layer == 0)]["ratio_to_top"]
        row = summary[(summary["lambda"] == lam) & (summary.layer == 0)].iloc[0]
        assert row["ratio"] == pytest.approx(math.exp(np.log(ratios).mean()), rel=1e-12)
        assert row["ratio_min"] == pytest.approx(ratios.min()) and row["ratio_max"] == pytest.approx(ratios.max())
        assert row["identity_prediction"] == pytest.approx(lam ** 5)


def test_path_length_explorer_is_the_binomial_count_for_every_n():
    paths = shortcut_connections.path_length_explorer([1, 54])
    assert list(paths) == [1, 54]
    assert list(paths[54]["n_paths"]) == [math.comb(54, k) for k in range(55)]
    with pytest.raises(ValueError, match="blocks"):
        shortcut_connections.path_length_explorer([0])


def test_shortcut_explorable_ships_every_lambda_and_path_count():
    lambdas = shortcut_connections.lambda_explorer(lambdas=(0.0, 0.5, 1.0), depth=4, width=8,
                                                   seeds=range(2))
    paths = shortcut_connections.path_length_explorer(range(1, 7))
    figure = shortcut_figures.explorable_shortcuts(lambdas, paths, start_lambda=0.5,
                                                   start_blocks=6)
    bound = {p["name"]: p["bind"]["input"] for p in figure.spec["params"]}
    assert bound == {"s_lambda": "range", "s_gain": "radio", "s_on": "checkbox",
                     "s_blocks": "range"}
    shares = {row["n"]: row for row in figure.spec["datasets"]["paths"]}
    assert shares[6]["total"] == 64 and shares[6]["mode"] == 3
    assert shares[6]["top"] == pytest.approx(20 / 64, rel=5e-3)   # three digits


# --- GPT block: gradients per block -----------------------------------------------------------


def test_gradient_explorer_is_the_chapter_measurement_with_and_without_scaled_init():
    base = GPTConfig(vocab_size=8, block_size=4, n_layer=2, n_head=2, n_embd=8)
    table = gpt_block.gradient_explorer(depths=[2, 4], base=base)
    assert set(table.groupby(["scaled_init", "n_layer"]).size().items()) == {
        ((False, 2), 8), ((False, 4), 16), ((True, 2), 8), ((True, 4), 16)}
    scaled = table[table.scaled_init].drop(columns="scaled_init").reset_index(drop=True)
    pd.testing.assert_frame_equal(scaled, gpt_block.gradient_norms_by_depth([2, 4], base=base))
    unscaled = table[~table.scaled_init]
    assert not np.allclose(unscaled["ffn_w2"].to_numpy(), scaled["ffn_w2"].to_numpy())


def test_gpt_explorable_has_one_row_per_stack():
    base = GPTConfig(vocab_size=8, block_size=4, n_layer=2, n_head=2, n_embd=8)
    table = gpt_block.gradient_explorer(depths=[2, 4], base=base)
    figure = gpt_figures.explorable_gradients(table, start=(4, "pre"))
    rows = figure.spec["datasets"]["gradients"]
    assert len(rows) == 2 * 2 * 2 * 2
    row = next(r for r in rows if (r["n"], r["pl"], r["sc"], r["si"]) == (4, "post", False, True))
    expected = table[(table.n_layer == 4) & (table.placement == "post") & ~table.shortcuts
                     & table.scaled_init].sort_values("layer")
    np.testing.assert_allclose(row["f"], expected["ffn_w2"], rtol=5e-3)   # 3 digits
    np.testing.assert_allclose(row["q"], expected["attn_qk"], rtol=5e-3)
