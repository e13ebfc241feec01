"""gradflow.tutorial: the tutorial's experiment reproduced. Its published numbers and its own code's
results (``seed_reference.py``), and ExampleDeepNeuralNetwork: where shortcuts apply, shapes, and
errors at the boundary."""

import pytest
import torch
from torch import nn

import gradflow
import seed_reference as seed
from gradflow import tutorial as experiments


def reference_forward(model, x):
    """Forward pass written out from the definition: add the input wherever widths agree."""
    for layer in model.layers:
        out = layer(x)
        x = x + out if model.use_shortcut and out.shape[-1] == x.shape[-1] else out
    return x


@pytest.mark.parametrize(
    ("layer_sizes", "expected"),
    [
        ([3, 3, 3, 3, 3, 1], [True, True, True, True, False]),
        ([3, 4, 4, 2], [False, True, False]),
        ([2, 2, 2], [True, True]),
        ([3, 4, 4, 4, 4, 1], [False, True, True, True, False]),
        ([1, 2], [False]),
    ],
)
def test_shortcut_is_applied_exactly_where_widths_agree(layer_sizes, expected):
    model = gradflow.ExampleDeepNeuralNetwork(layer_sizes, use_shortcut=True)
    assert model.shortcut_applied == expected
    torch.manual_seed(0)
    x = torch.randn(5, layer_sizes[0])
    assert torch.equal(model(x), reference_forward(model, x))
    description = repr(model)
    assert "shortcut per layer: " + " ".join("+" if s else "-" for s in expected) in description


def test_shortcut_changes_the_function_only_where_applied():
    torch.manual_seed(1)
    plain = gradflow.ExampleDeepNeuralNetwork([2, 2, 2], use_shortcut=False)
    torch.manual_seed(1)
    residual = gradflow.ExampleDeepNeuralNetwork([2, 2, 2], use_shortcut=True)
    x = torch.randn(3, 2)
    h = x + plain.layers[0](x)
    assert torch.allclose(residual(x), h + plain.layers[1](h))


def test_without_shortcut_no_layer_gets_one():
    model = gradflow.ExampleDeepNeuralNetwork([3, 3, 3], use_shortcut=False)
    assert model.shortcut_applied == [False, False]


def test_accepts_batched_and_unbatched_inputs():
    model = gradflow.ExampleDeepNeuralNetwork([3, 3, 1], use_shortcut=True)
    assert model(torch.zeros(3)).shape == (1,)
    assert model(torch.zeros(2, 7, 3)).shape == (2, 7, 1)


def test_layers_are_linear_then_the_seeds_gelu():
    model = gradflow.ExampleDeepNeuralNetwork([3, 4, 1], use_shortcut=False)
    for layer, (n_in, n_out) in zip(model.layers, [(3, 4), (4, 1)]):
        assert isinstance(layer[0], nn.Linear)
        assert (layer[0].in_features, layer[0].out_features) == (n_in, n_out)
        assert isinstance(layer[1], gradflow.GELU)


@pytest.mark.parametrize(
    ("layer_sizes", "message"),
    [
        ([3], "at least two entries"),
        ([], "at least two entries"),
        ([3, 0, 1], r"layer_sizes\[1\] must be a positive integer"),
        ([3, -2, 1], r"layer_sizes\[1\] must be a positive integer"),
        ([3, 2.5, 1], r"layer_sizes\[1\] must be a positive integer"),
        ([3, True, 1], r"layer_sizes\[1\] must be a positive integer"),
        ([3, "3", 1], r"layer_sizes\[1\] must be a positive integer"),
    ],
)
def test_bad_layer_sizes_are_rejected_with_a_clear_message(layer_sizes, message):
    with pytest.raises(ValueError, match=message):
        gradflow.ExampleDeepNeuralNetwork(layer_sizes, use_shortcut=True)


@pytest.mark.parametrize("layer_sizes", ["333", 3, None])
def test_layer_sizes_must_be_a_sequence(layer_sizes):
    with pytest.raises(TypeError, match="sequence of positive integers"):
        gradflow.ExampleDeepNeuralNetwork(layer_sizes, use_shortcut=True)


@pytest.mark.parametrize("shape", [(1, 4), (2,), (1, 3, 2)])
def test_input_width_must_match_the_first_layer(shape):
    model = gradflow.ExampleDeepNeuralNetwork([3, 3, 1], use_shortcut=True)
    with pytest.raises(ValueError, match=r"last dimension must be layer_sizes\[0\] = 3"):
        model(torch.zeros(shape))


def test_scalar_and_non_tensor_inputs_are_rejected():
    model = gradflow.ExampleDeepNeuralNetwork([3, 3, 1], use_shortcut=True)
    with pytest.raises(ValueError, match="last dimension"):
        model(torch.tensor(1.0))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[1.0, 0.0, -1.0]])


# --- The tutorial's published numbers and its own code ---------------------------------------

PUBLISHED = {False: seed.PUBLISHED_WITHOUT_SHORTCUT, True: seed.PUBLISHED_WITH_SHORTCUT}


@pytest.mark.parametrize("use_shortcut", [False, True])
def test_reproduces_the_seeds_ten_published_numbers(use_shortcut):
    torch.manual_seed(seed.SEED)
    model = gradflow.ExampleDeepNeuralNetwork(seed.LAYER_SIZES, use_shortcut=use_shortcut)
    means = gradflow.layer_gradient_means(model, torch.tensor(seed.SAMPLE_INPUT))
    assert list(means) == [f"layers.{i}.0.weight" for i in range(5)]
    # float32 results differ by 1-2 ulps from CPU to CPU, so exact equality is not reachable.
    assert list(means.values()) == pytest.approx(PUBLISHED[use_shortcut], rel=1e-5)


def test_compare_shortcuts_reproduces_the_published_table():
    table = gradflow.compare_shortcuts(seed=seed.SEED).gradients
    assert list(table[experiments.PLAIN]) == pytest.approx(PUBLISHED[False], rel=1e-5)
    assert list(table[experiments.SHORTCUT]) == pytest.approx(PUBLISHED[True], rel=1e-5)


def test_quoted_published_numbers_match_the_seed():
    """The package's quoted copy of the seed's output agrees with this file's independent copy."""
    for use_shortcut, column in ((False, experiments.PLAIN), (True, experiments.SHORTCUT)):
        assert list(experiments.SEED_PUBLISHED[column].values()) == PUBLISHED[use_shortcut]


@pytest.mark.parametrize(
    "layer_sizes",
    [[3, 3, 3, 3, 3, 1], [3, 4, 4, 4, 4, 1], [5, 2, 7, 7, 3, 2], [8, 8, 8, 8, 8, 8], [1, 1, 1, 1, 1, 1]],
)
@pytest.mark.parametrize("use_shortcut", [False, True])
@pytest.mark.parametrize("torch_seed", [0, 123, 2024])
def test_drop_in_for_the_seeds_class(layer_sizes, use_shortcut, torch_seed):
    """Same seed -> same parameter names, weights, outputs and gradients as the seed's own code."""
    torch.manual_seed(torch_seed)
    theirs = seed.ExampleDeepNeuralNetwork(layer_sizes, use_shortcut)
    torch.manual_seed(torch_seed)
    ours = gradflow.ExampleDeepNeuralNetwork(layer_sizes, use_shortcut)

    their_params, our_params = dict(theirs.named_parameters()), dict(ours.named_parameters())
    assert list(our_params) == list(their_params)
    for name, value in their_params.items():
        assert torch.equal(our_params[name], value), name

    x = torch.randn(4, layer_sizes[0], generator=torch.Generator().manual_seed(torch_seed))
    assert torch.equal(ours(x), theirs(x))
    target = torch.zeros(4, layer_sizes[-1])
    expected = seed.seed_gradients(theirs, x, target)
    assert gradflow.layer_gradient_means(ours, x, target) == pytest.approx(expected, rel=1e-6)


def test_consumes_the_random_number_generator_like_the_seed():
    torch.manual_seed(7)
    seed.ExampleDeepNeuralNetwork([2, 5, 5, 3, 3, 1], True)
    after_theirs = torch.rand(3)
    torch.manual_seed(7)
    gradflow.ExampleDeepNeuralNetwork([2, 5, 5, 3, 3, 1], True)
    assert torch.equal(torch.rand(3), after_theirs)


def test_float32_ulps_apart_counts_float32_numbers_between_two_values():
    import numpy as np

    one_up = float(np.nextafter(np.float32(1.0), np.float32(2.0)))
    assert experiments.float32_ulps_apart(1.0, 1.0) == 0
    assert experiments.float32_ulps_apart(1.0, 1.0 + 1e-9) == 0  # the same float32 number
    assert experiments.float32_ulps_apart(1.0, one_up) == 1
    assert experiments.float32_ulps_apart(-1.0, -one_up) == 1
    with pytest.raises(ValueError, match="same sign"):
        experiments.float32_ulps_apart(1.0, -1.0)


def test_published_agreement_against_the_published_table_itself():
    import numpy as np
    import pandas as pd

    table = pd.DataFrame(experiments.SEED_PUBLISHED)
    assert experiments.published_agreement(table) == {"max_relative_gap": 0.0, "max_ulps": 0}
    nudged = table.copy()
    name = "layers.2.0.weight"
    nudged.loc[name, experiments.SHORTCUT] = float(np.nextafter(
        np.float32(table.loc[name, experiments.SHORTCUT]), np.float32(1.0)))
    agreement = experiments.published_agreement(nudged)
    assert agreement["max_ulps"] == 1 and 0 < agreement["max_relative_gap"] < 2e-7
    with pytest.raises(ValueError, match="compare_shortcuts table"):
        experiments.published_agreement(table.iloc[:3])


def test_the_reproduction_is_within_a_few_float32_ulps_of_the_published_table():
    agreement = experiments.published_agreement(experiments.compare_shortcuts().gradients)
    assert agreement["max_ulps"] <= 8 and agreement["max_relative_gap"] < 1e-5
