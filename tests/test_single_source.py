"""One source of truth: GELU's constants are written once, in ``gradflow/activations.py``, and every
result that uses the tanh form reads them from there. Change the constant at that one definition
and the networks, the mean-field prediction, the GELU chapter's error curve, the batched networks
and the GPT all change with it; undo the change and every result is back, bit for bit."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import numpy as np
import torch

from gradflow import activations as act
from gradflow import signal_propagation, tutorial
from gradflow.chapters import gelu, shortcut_connections
from gradflow.networks.gpt import GPT, GPTConfig
from gradflow.networks.mlp import DeepMLP

PACKAGE = Path(__file__).resolve().parents[1] / "code" / "gradflow"


def tanh_gelu_results() -> dict[str, np.ndarray]:
    """Every kind of result the book computes with the tanh form of GELU, as arrays."""
    x = torch.tensor(tutorial.SEED_INPUT, dtype=torch.float64)
    torch.manual_seed(tutorial.SEED)
    seed_net = tutorial.ExampleDeepNeuralNetwork(tutorial.SEED_LAYER_SIZES, use_shortcut=True)
    mlp = DeepMLP([3, 16, 16, 1], activation="gelu_tanh", seed=0, dtype=torch.float64)
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16), seed=0)
    tokens = torch.arange(8).reshape(1, 8)
    prediction = signal_propagation.predict_layers("gelu_tanh", "default", depth=6, width=64)
    many = shortcut_connections.many_seed_comparison(seeds=range(4))
    return {
        "the tutorial's network": seed_net.double()(x).detach().numpy(),
        "DeepMLP(activation='gelu_tanh')": mlp(x).detach().numpy(),
        "the mean-field prediction for gelu_tanh": prediction["backward_factor"].to_numpy(),
        "the GELU chapter's error curve": gelu.approximation_error("tanh").error,
        "the batched networks (many seeds)": many["first_shortcut"].to_numpy(),
        "the GPT": gpt(tokens).detach().numpy(),
    }


def test_changing_the_tanh_constant_at_its_one_definition_changes_every_tanh_result(monkeypatch):
    before = tanh_gelu_results()
    monkeypatch.setattr(act, "TANH_CUBIC_COEFFICIENT", 0.1)
    changed = tanh_gelu_results()
    for name, values in before.items():
        assert not np.allclose(values, changed[name], rtol=1e-9, atol=0), f"{name} did not change"
    monkeypatch.undo()
    for name, values in tanh_gelu_results().items():
        np.testing.assert_array_equal(values, before[name], err_msg=name)


def test_the_sigmoid_slope_reaches_the_network_the_prediction_and_the_labels(monkeypatch):
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    before = (act.spec("gelu_sigmoid").fn(x), signal_propagation.second_moment("gelu_sigmoid", 1.0))
    monkeypatch.setattr(act, "SIGMOID_SLOPE", 1.5)
    after = (act.spec("gelu_sigmoid").fn(x), signal_propagation.second_moment("gelu_sigmoid", 1.0))
    assert not torch.allclose(before[0], after[0]) and before[1] != after[1]
    assert act.REGISTRY["gelu_sigmoid"].label == "x·σ(1.702x)"   # written from the constant


def literals(path: Path) -> list[str]:
    """The numeric literals of a Python file (docstrings and comments are not code)."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return [t.string for t in tokens if t.type == tokenize.NUMBER]


def test_each_gelu_constant_is_a_literal_in_exactly_one_place():
    found = {"0.044715": [], "1.702": []}
    for path in sorted(PACKAGE.rglob("*.py")):
        for literal in literals(path):
            if literal in found:
                found[literal].append(path.relative_to(PACKAGE).as_posix())
    assert found == {"0.044715": ["activations.py"], "1.702": ["activations.py"]}


def test_sqrt_2_over_pi_is_computed_in_one_place():
    sources = {p.relative_to(PACKAGE).as_posix(): p.read_text(encoding="utf-8")
               for p in sorted(PACKAGE.rglob("*.py"))}
    where = [name for name, text in sources.items() if "2.0 / math.pi" in text or "2 / math.pi" in text]
    assert where == ["activations.py"]
    assert sources["activations.py"].count("2.0 / math.pi") == 1
