"""ExampleDeepNeuralNetwork: where shortcuts apply, shapes, and errors at the boundary."""

import pytest
import torch
from torch import nn

import gradflow


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
