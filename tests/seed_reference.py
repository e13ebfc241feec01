"""The seed notebook's own code and published output, copied verbatim as an independent reference.

Source: ../shared/seed/000_4db8d1466c9186d9.txt (Raschka 2024, ch. 4, "shortcut connections").
The class is the seed's, with its five hard-coded layers; print_gradients is the seed's, returning
the values instead of printing them. Do not "improve" this file: its point is to be the original.
"""

import torch
from torch import nn


class GELU(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))


class ExampleDeepNeuralNetwork(nn.Module):
    def __init__(self, layer_sizes, use_shortcut):
        super().__init__()
        self.use_shortcut = use_shortcut
        self.layers = nn.ModuleList([
            nn.Sequential(nn.Linear(layer_sizes[0], layer_sizes[1]), GELU()),
            nn.Sequential(nn.Linear(layer_sizes[1], layer_sizes[2]), GELU()),
            nn.Sequential(nn.Linear(layer_sizes[2], layer_sizes[3]), GELU()),
            nn.Sequential(nn.Linear(layer_sizes[3], layer_sizes[4]), GELU()),
            nn.Sequential(nn.Linear(layer_sizes[4], layer_sizes[5]), GELU())
        ])

    def forward(self, x):
        for layer in self.layers:
            # Compute the output of the current layer
            layer_output = layer(x)
            # Check if shortcut can be applied
            if self.use_shortcut and x.shape == layer_output.shape:
                x = x + layer_output
            else:
                x = layer_output
        return x


def seed_gradients(model, x, target=None):
    """The seed's print_gradients, returning {name: mean |grad|} (float32, as the seed computed)."""
    output = model(x)
    if target is None:
        target = torch.tensor([[0.]])
    loss = nn.MSELoss()
    loss = loss(output, target)
    loss.backward()
    return {
        name: param.grad.abs().mean().item()
        for name, param in model.named_parameters()
        if 'weight' in name
    }


LAYER_SIZES = [3, 3, 3, 3, 3, 1]
SAMPLE_INPUT = [[1., 0., -1.]]
SEED = 123

# The seed notebook's printed output, cells 9 and 12.
PUBLISHED_WITHOUT_SHORTCUT = [
    0.00020173587836325169,
    0.0001201116101583466,
    0.0007152041653171182,
    0.001398873864673078,
    0.005049646366387606,
]
PUBLISHED_WITH_SHORTCUT = [
    0.22169792652130127,
    0.20694106817245483,
    0.32896995544433594,
    0.2665732502937317,
    1.3258541822433472,
]
