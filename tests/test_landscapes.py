"""gradflow.landscapes: filter normalisation, the batched slice against one network at a time
(``DeepMLP``), and the local-minimum count on surfaces with known answers."""

import numpy as np
import pytest
import torch

from gradflow import landscapes
from gradflow.networks.mlp import DeepMLP
from gradflow.networks.stacked import stacked_forward

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_each_row_of_a_direction_has_its_weight_rows_norm():
    weights = [torch.randn(4, 3, generator=torch.Generator().manual_seed(1)), torch.zeros(2, 4)]
    d = landscapes.filter_normalised_direction(weights, torch.Generator().manual_seed(2))
    assert torch.allclose(d[0].norm(dim=1), weights[0].double().norm(dim=1))
    assert torch.all(d[1] == 0)
    with pytest.raises(ValueError, match="must be a matrix"):
        landscapes.filter_normalised_direction([torch.ones(3)], torch.Generator())


def test_slice_matches_evaluating_each_point_on_its_own():
    net = DeepMLP([3, 5, 5, 1], activation="silu", init="xavier", bias_init=0.2,
                  final_activation=False, seed=4).double()
    x = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.randn(7, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    weights = [b.linear.weight.detach().clone() for b in net.blocks]
    biases = [b.linear.bias.detach() for b in net.blocks]
    gen = torch.Generator().manual_seed(3)
    d1 = landscapes.filter_normalised_direction(weights, gen)
    d2 = landscapes.filter_normalised_direction(weights, gen)

    def loss(moved):
        g = moved[0].shape[0]
        out = stacked_forward(x.expand(g, -1, -1), moved, [b.expand(g, -1) for b in biases], 0.0,
                              activation="silu", final_activation=False)
        return (out - y).pow(2).mean(dim=(1, 2))

    coords = [-0.5, 0.0, 0.75]
    surface = landscapes.loss_slice(loss, weights, (d1, d2), coords)
    for i, b in enumerate(coords):
        for j, a in enumerate(coords):
            with torch.no_grad():
                for block, w, u, v in zip(net.blocks, weights, d1, d2):
                    block.linear.weight.copy_(w + a * u + b * v)
                expected = (net(x) - y).pow(2).mean().item()
                for block, w in zip(net.blocks, weights):
                    block.linear.weight.copy_(w)
            assert surface[i, j] == pytest.approx(expected, rel=1e-12)


def test_local_minima_of_one_and_two_bowls():
    a, b = np.meshgrid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21))
    assert landscapes.local_minima((a - 0.1) ** 2 + (b + 0.2) ** 2) == 1
    two = np.minimum((a - 0.5) ** 2 + b**2, (a + 0.5) ** 2 + b**2 + 0.01)
    assert landscapes.local_minima(two) == 2
