"""Search the float32 replay's orders for the tutorial notebook's editions.

For every ``gradflow.tutorial_editions.Float32Arithmetic`` in a grid of its settings, replay the
tutorial's experiment and count how many of each edition's ten printed numbers it gives exactly.
Prints, per edition, the best count and the orders that reach it. Slow (a few minutes): this is
the evidence behind the shortcut chapter's "no order that we tried gives" 557ddfc's numbers, not
part of the build.

    PYTHONPATH=code python scripts/tutorial_edition_search.py
"""

from __future__ import annotations

import itertools

import torch

from gradflow import tutorial_editions as editions

GRID = {
    "sqrt_ulps": (-1, 0, 1),
    "forward_fused": (False, True),
    "forward_partial_sums": (1, 2, 3),
    "backward_fused": (False, True),
    "backward_partial_sums": (1, 2, 3),
    "tanh": editions.TANHS,
    "tanh_backward_fused": (False, True),
    "sum_lanes": (1, 2, 4, 8, 16),
}


def main() -> None:
    torch.set_num_threads(1)
    best = {key: (-1, []) for key in editions.EDITIONS}
    for values in itertools.product(*GRID.values()):
        arithmetic = editions.Float32Arithmetic("search", **dict(zip(GRID, values)))
        table = editions.replay_table(arithmetic)
        for key, edition in editions.EDITIONS.items():
            score = editions.agreement(table, edition.gradients)
            if score > best[key][0]:
                best[key] = (score, [arithmetic])
            elif score == best[key][0]:
                best[key][1].append(arithmetic)
    n = len(list(itertools.product(*GRID.values())))
    for key, (score, orders) in best.items():
        print(f"{key}: best {score} of 10 over {n} orders, reached by {len(orders)}; first: {orders[0]}")


if __name__ == "__main__":
    main()
