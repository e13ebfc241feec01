"""gradflow.tasks.runs: the training studies' shared arguments, checked at the boundary."""

import pytest
import torch

from gradflow.tasks.runs import check_run, mlp_widths, train_arms


def test_check_run_returns_its_arguments_checked():
    assert check_run(4, range(3), 10, (5, 10)) == (4, [0, 1, 2], 10, [5, 10])


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"depth": 1}, "depth"), ({"steps": 0}, "steps"), ({"windows": [11]}, "windows"),
    ({"windows": []}, "windows"), ({"depth": 2, "min_depth": 3}, "depth"),
])
def test_check_run_names_the_bad_argument(kwargs, name):
    args = {"depth": 4, "seeds": [0], "steps": 10, "windows": [10], **kwargs}
    with pytest.raises(ValueError, match=name):
        check_run(args.pop("depth"), args.pop("seeds"), args.pop("steps"), args.pop("windows"),
                  **args)


def test_mlp_widths_has_depth_layers():
    widths = mlp_widths(8, 32, 5)
    assert widths == [8, 32, 32, 32, 32, 1] and len(widths) - 1 == 5


def test_train_arms_gives_one_row_per_arm_and_seed_with_the_training_loss():
    from gradflow.networks.stacked import StackedMLP
    from gradflow.tasks.regression import make_regression_task

    def model_for(arm, widths, seeds):
        return StackedMLP(widths, seeds, shortcut=[False] * len(seeds), activation=arm,
                          init="kaiming")

    rows = train_arms("activation", ["relu", "tanh"], model_for, depth=3, seeds=[4, 5], width=6,
                      steps=1, windows=[1], lr=1e-2, n_samples=5, dim=2, task_seed=0, tag="x")
    assert [(r["activation"], r["seed"], r["depth"], r["tag"]) for r in rows] == [
        ("relu", 4, 3, "x"), ("relu", 5, 3, "x"), ("tanh", 4, 3, "x"), ("tanh", 5, 3, "x")]
    # step 0's loss is the untrained network's MSE on the task, computed here directly
    task = make_regression_task(n_samples=5, dim=2, seed=0)
    rows0 = train_arms("activation", ["relu"], model_for, depth=3, seeds=[4], width=6, steps=1,
                       windows=[1], lr=1e-2, n_samples=5, dim=2, task_seed=0)
    model = model_for("relu", [2, 6, 6, 1], [4]).member(0)
    with torch.no_grad():
        untrained = (model(task.x) - task.y).pow(2).mean().item()
    assert rows0[0]["loss_1"] < untrained   # one Adam step lowered it


def test_paired_log10_counts_wins_and_gives_the_t_interval_of_the_log_ratios():
    import math

    import pandas as pd
    from scipy import stats

    from gradflow.tasks.runs import paired_log10

    pairs = [(1.0, 10.0), (1.0, 100.0), (10.0, 1.0), (2.0, 2.0)]
    frame = pd.DataFrame([{"depth": 3, "seed": s, "arm": name, "loss": v}
                          for s, (a, b) in enumerate(pairs) for name, v in (("a", a), ("b", b))])
    row = paired_log10(frame, arms="arm", arm="a", against="b", value="loss", by="depth").loc[3]
    logs = [math.log10(a / b) for a, b in pairs]
    mean = sum(logs) / 4
    half = stats.t.ppf(0.975, 3) * stats.tstd(logs) / 2
    assert row["wins"] == 2 and row["n"] == 4
    assert row["mean"] == pytest.approx(mean) and row["low"] == pytest.approx(mean - half)
    assert row["a_loss"] == pytest.approx(1.5) and row["b_loss"] == pytest.approx(6.0)


def test_paired_log10_names_a_missing_column():
    import pandas as pd

    from gradflow.tasks.runs import paired_log10

    with pytest.raises(ValueError, match="columns"):
        paired_log10(pd.DataFrame({"seed": [0]}), arms="arm", arm="a", against="b", value="loss",
                     by="depth")
