"""gradflow.networks.probing: a seed's weights, inputs and readout are the draws of one
generator, in order, as PyTorch's own calls make them."""

import pytest
import torch

from gradflow.networks.probing import weights_and_probe_data


def test_weights_then_inputs_then_readout_come_from_one_generator_per_seed():
    widths, batch = [3, 4, 2], 5
    weights, biases, x, readout = weights_and_probe_data(widths, [7, 8], "kaiming", batch)
    for s, seed in enumerate([7, 8]):
        g = torch.Generator().manual_seed(seed)
        for (n_in, n_out), w, b in zip([(3, 4), (4, 2)], weights, biases):
            expected_w = torch.empty(n_out, n_in).normal_(0, (2 / n_in) ** 0.5, generator=g)
            torch.testing.assert_close(w[s], expected_w.double())
            assert (b[s] == 0).all()   # Kaiming's biases are zeros: nothing drawn
        torch.testing.assert_close(x[s], torch.randn(batch, 3, generator=g).double())
        torch.testing.assert_close(readout[s], torch.randn(batch, 2, generator=g).double())
    assert x.dtype == readout.dtype == weights[0].dtype == torch.float64


def test_weights_and_probe_data_names_a_bad_batch():
    with pytest.raises(ValueError, match="batch"):
        weights_and_probe_data([3, 3], [0], "kaiming", 0)
