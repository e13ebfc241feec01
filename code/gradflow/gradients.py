"""Per-layer gradient statistics: the seed's ``print_gradients``, returned as data."""

from __future__ import annotations

import torch
from torch import nn


def layer_gradient_means(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None
) -> dict[str, float]:
    """Mean absolute gradient of the loss with respect to each weight, in parameter order.

    The loss is the mean squared error between ``model(x)`` and ``target`` (zeros shaped like the
    output by default), as in the seed notebook. Gradients are taken with ``torch.autograd.grad``,
    so nothing accumulates in ``.grad``: calling this twice gives the same result. Means are
    taken in float64, so tiny gradients never round to zero.

    Returns:
        ``{"layers.0.0.weight": mean |dL/dW|, ...}`` for every parameter whose name contains
        ``"weight"``, in ``model.named_parameters()`` order.
    """
    output = model(x)
    if target is None:
        target = torch.zeros_like(output)
    elif not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    elif target.shape != output.shape:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match the model's output shape "
            f"{tuple(output.shape)}"
        )
    loss = nn.functional.mse_loss(output, target)
    named = [(name, p) for name, p in model.named_parameters() if "weight" in name]
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    return {
        name: 0.0 if g is None else g.detach().abs().double().mean().item()
        for (name, _), g in zip(named, grads)
    }
