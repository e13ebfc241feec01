"""The package reproduces the seed notebook: its published numbers and its own code's results."""

import pytest
import torch

import gradflow
import seed_reference as seed
from gradflow import experiments

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
