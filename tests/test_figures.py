"""ichlib.figures: what the figures draw (axes, series, labels, values), from small hand-made inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ichlib import figures  # noqa: E402


def fake_run(folder, steps=40, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    pd.DataFrame({"step": np.arange(1, steps + 1), "epoch": 1,
                  "loss": np.linspace(1, 0.3, steps) + rng.random(steps) * 0.05}).to_csv(folder / "steps.csv",
                                                                                          index=False)
    pd.DataFrame({"step": [8, 16, 24, 32, 40], "epoch": 1, "val AUC any": [0.55, 0.6, 0.66, 0.7, 0.72],
                  "scored on": ["validation sample"] * 4 + ["validation split"]}).to_csv(folder / "curve.csv",
                                                                                        index=False)
    return str(folder)


def test_learning_curves_draw_every_step_and_every_validation_point(tmp_path):
    runs = pd.DataFrame([
        {"arch": "resnet50", "preprocessing": "three_window", "variant": "baseline",
         "folder": fake_run(tmp_path / "a")},
        {"arch": "resnet50", "preprocessing": "three_window", "variant": "optimised",
         "folder": fake_run(tmp_path / "b", seed=1)},
        {"arch": "densenet121", "preprocessing": "adjacent", "variant": "baseline",
         "folder": fake_run(tmp_path / "c", seed=2)}])
    fig = figures.learning_curves(runs, smooth=5)
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[0]] == ["three_window", "adjacent"]
    loss_lines = [line for line in axes[0, 0].get_lines()]
    assert len(loss_lines) == 2 and all(len(line.get_xdata()) == 40 for line in loss_lines)
    assert loss_lines[0].get_linestyle() == "-" and loss_lines[1].get_linestyle() == "--"
    y = loss_lines[0].get_ydata()
    assert y[0] > y[-1]  # smoothed, still falling
    auc_lines = [line for line in axes[1, 1].get_lines() if len(line.get_xdata()) == 5]
    assert len(auc_lines) == 1 and list(auc_lines[0].get_ydata()) == [0.55, 0.6, 0.66, 0.7, 0.72]
    assert "validation AUC" in axes[1, 0].get_ylabel() and axes[1, 0].get_xlabel() == "training step"
    labels = [t.get_text() for t in axes[1, 1].get_legend().get_texts()]
    assert "densenet121 baseline" in labels and "whole validation split" in labels
    plt.close(fig)


def test_series_figure_draws_one_line_per_model_and_shades_the_positive_slices():
    truth = np.array([0, 0, 1, 1, 0])
    fig = figures.series_figure(np.arange(5) * 5.0, truth, {"slice model": np.array([0.1, 0.2, 0.7, 0.4, 0.1]),
                                                         "series model": np.array([0.1, 0.3, 0.9, 0.8, 0.2])})
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 5]
    assert [line.get_label() for line in lines] == ["slice model", "series model"]
    assert list(lines[1].get_ydata()) == [0.1, 0.3, 0.9, 0.8, 0.2]
    assert len(ax.patches) == 2  # the two positive slices
    assert ax.get_ylabel() == "p(any)"
    plt.close(fig)
