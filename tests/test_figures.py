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


def test_roc_figure_draws_each_curve_with_its_auc_and_names_an_undefined_one():
    curves = {"model A": (np.array([0, 0.2, 1]), np.array([0, 0.8, 1]), 0.8), "model B": None}
    fig = figures.roc_figure({"test slices": curves, "test studies": {"model A": curves["model A"]}}, "ROC")
    left, right = fig.axes[:2]
    assert left.get_title() == "test slices" and right.get_title() == "test studies"
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert labels == ["model A, AUC=0.800", "model B: undefined (one class)"]
    drawn = [line for line in left.get_lines() if line.get_label() == "model A, AUC=0.800"][0]
    assert list(drawn.get_ydata()) == [0, 0.8, 1] and left.get_xlabel() == "false positive rate"
    assert fig._suptitle.get_text() == "ROC"
    plt.close(fig)


def test_gradcam_grid_lays_out_rows_of_overlays_with_titles_and_one_colour_bar_per_row():
    image = np.zeros((16, 16))
    heat = np.zeros((16, 16))
    heat[4, 5] = 1.0
    mask = np.zeros((16, 16), bool)
    mask[3:6, 4:7] = True
    panels = [[{"image": image, "heatmap": heat, "mask": mask, "title": "bleed"},
               {"image": image, "heatmap": heat, "title": "clean"}],
              [{"image": image, "heatmap": heat, "title": "only one"}]]
    fig = figures.gradcam_grid(panels, ["resnet50", "densenet121"], ["default layer", "last block"])
    images = [ax for ax in fig.axes if ax.get_images()]
    assert len(images) == 3  # the empty fourth panel is switched off
    assert images[0].get_title() == "default layer\nbleed" and images[1].get_title() == "last block\nclean"
    np.testing.assert_array_equal(images[0].get_images()[1].get_array(), heat)  # the heatmap over the slice
    assert len(images[0].collections) >= 1  # the true mask outlined
    assert len(fig.axes) - len([ax for ax in fig.axes if ax.get_images() or not ax.axison]) == 2  # colour bars
    texts = [t.get_text() for ax in images for t in ax.texts]
    assert "resnet50" in texts and "densenet121" in texts
    plt.close(fig)


def test_level_rates_draws_one_line_per_label_across_the_series():
    from ichlib.labels import LABELS

    rates = pd.DataFrame({label: np.linspace(0, 0.3, 10) for label in LABELS}, index=pd.RangeIndex(10, name="stratum"))
    rates["slices"] = 100
    fig = figures.level_rates(rates)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == len(LABELS) and [t.get_text() for t in ax.get_legend().get_texts()] == list(LABELS)
    np.testing.assert_allclose(lines[0].get_xdata(), (np.arange(10) + 0.5) / 10)
    np.testing.assert_allclose(lines[0].get_ydata(), np.linspace(0, 30, 10))
    assert lines[0].get_linewidth() > lines[1].get_linewidth()  # `any` drawn heavier
    plt.close(fig)


def test_against_baseline_puts_a_bar_per_label_and_a_dot_per_model_and_label():
    from ichlib.labels import LABELS

    aucs = pd.DataFrame([[0.7] * 6, [0.9] * 6], columns=list(LABELS),
                        index=["resnet50-three_window-baseline", "densenet121-adjacent-optimised"])
    baseline = pd.Series(0.8, index=list(LABELS))
    fig = figures.against_baseline(aucs, baseline)
    ax = fig.axes[0]
    bars = ax.collections
    assert len(bars) == len(LABELS) and all(np.allclose(np.asarray(b.get_segments())[0][:, 1], 0.8) for b in bars)
    dots = [line for line in ax.get_lines() if len(line.get_xdata()) == 1]
    assert sorted({float(line.get_ydata()[0]) for line in dots}) == [0.7, 0.9] and len(dots) == 2 * len(LABELS)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "level only" and {"resnet50", "densenet121"} <= set(legend)
    plt.close(fig)
