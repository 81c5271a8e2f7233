"""The book's figures, drawn from data: each function takes arrays or tables and returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .preprocess import PRESETS, adjacent_stack, three_window, window
from .runs import RunSpec

BLOOD = "#e8432e"


def show_ct(ax, hu: np.ndarray, win: str = "brain", mask: np.ndarray | None = None, title: str = "") -> None:
    """A slice in a window, with the true mask outlined when there is one."""
    w = PRESETS[win]
    ax.imshow(window(hu, w.center, w.width), cmap="gray", vmin=0, vmax=1)
    if mask is not None and mask.any():
        ax.contour(mask, levels=[0.5], colors=BLOOD, linewidths=0.8)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def gallery(items: list[dict], win: str = "brain") -> plt.Figure:
    """One panel per example (``subtype``, ``id``, ``hu``, ``mask``), brain window, true mask in red."""
    fig, axes = plt.subplots(1, len(items), figsize=(2.8 * len(items), 3.1), squeeze=False)
    for ax, item in zip(axes[0], items):
        show_ct(ax, item["hu"], win, item.get("mask"), f"{item['subtype']}\n{item['id']}")
    fig.tight_layout()
    return fig


def label_bars(distribution: pd.DataFrame) -> plt.Figure:
    """Share of images per class: ours beside the paper's Table 1."""
    fig, ax = plt.subplots(figsize=(7, 3))
    distribution[["share %", "paper share %"]].rename(
        columns={"share %": "this data", "paper share %": "paper (real RSNA subset)"}).plot.bar(ax=ax)
    ax.set_ylabel("% of images")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def windows_figure(hu: np.ndarray, windows=("brain", "subdural", "soft"), mask: np.ndarray | None = None) -> plt.Figure:
    """HU histogram with each window's range, the slice through each window, and the three as one RGB image."""
    fig = plt.figure(figsize=(12, 3.3))
    grid = fig.add_gridspec(1, len(windows) + 2, width_ratios=[1.6] + [1] * (len(windows) + 1))
    ax = fig.add_subplot(grid[0])
    values = hu[(hu > -200) & (hu < 300)]
    ax.hist(values.ravel(), bins=250, color="0.4", log=True)
    colours = ["tab:red", "tab:green", "tab:blue"]
    for name, colour in zip(windows, colours):
        w = PRESETS[name]
        ax.axvspan(w.low, w.high, color=colour, alpha=0.15, label=f"{name} {w.center:g}/{w.width:g}")
    ax.set_xlabel("HU")
    ax.set_ylabel("pixels (log)")
    ax.legend(fontsize=7, loc="upper left")
    for i, name in enumerate(windows):
        show_ct(fig.add_subplot(grid[i + 1]), hu, name, mask, name)
    rgb = fig.add_subplot(grid[-1])
    rgb.imshow(three_window(hu, windows))
    rgb.set_title("stacked as RGB", fontsize=9)
    rgb.axis("off")
    fig.tight_layout()
    return fig


def adjacent_figure(previous: np.ndarray, current: np.ndarray, following: np.ndarray,
                    mask: np.ndarray | None = None) -> plt.Figure:
    """Previous, current and next slice in the brain window, and the three as one RGB image."""
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.1))
    for ax, hu, title in zip(axes, (previous, current, following), ("previous", "current", "next")):
        show_ct(ax, hu, "brain", mask if title == "current" else None, title)
    axes[3].imshow(adjacent_stack(previous, current, following))
    axes[3].set_title("stacked as RGB", fontsize=9)
    axes[3].axis("off")
    fig.tight_layout()
    return fig


def head_crop_figure(hu: np.ndarray, box: tuple[int, int, int, int], size: int,
                     mask: np.ndarray | None = None) -> plt.Figure:
    """A slice with its head's box drawn, and what the network sees at ``size`` px without and with the cut."""
    from matplotlib.patches import Rectangle

    from .preprocess import crop_to, resize

    top, bottom, left, right = box
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.3))
    show_ct(axes[0], hu, "brain", mask, f"stored slice, {hu.shape[0]} px, and the head's box")
    axes[0].add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, color="gold", lw=1.2))
    crop_mask = None if mask is None else crop_to(mask, box, fill=False)
    for ax, image, part, title in ((axes[1], hu, mask, f"whole slice at {size} px"),
                                   (axes[2], crop_to(hu, box), crop_mask, f"cut to the head, at {size} px")):
        small = resize(image, size)
        small_mask = None if part is None else resize(part.astype(np.float32), size) > 0.25
        show_ct(ax, small, "brain", small_mask, title)
    fig.tight_layout()
    return fig


def contrast_figure(contrast: pd.DataFrame) -> plt.Figure:
    """Blood-minus-brain contrast per subtype under each window (a table from describe.window_contrast)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    contrast["contrast"].plot.bar(ax=ax)
    ax.legend(title="window", fontsize=8)
    ax.set_ylabel("blood - brain (window units)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    ax.axhline(0, color="k", linewidth=0.5)
    fig.tight_layout()
    return fig


def cache_samples(caches: dict, items: list[dict]) -> plt.Figure:
    """What the network will see: each cache's stored image of each example (rows: caches; columns: examples)."""
    fig, axes = plt.subplots(len(caches), len(items), figsize=(2.4 * len(items), 2.5 * len(caches)), squeeze=False)
    for row, (name, cache) in zip(axes, caches.items()):
        for ax, item in zip(row, items):
            ax.imshow(cache.image(item["id"]))
            ax.set_title(f"{name}\n{item['subtype']}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def stage_bars(stages: dict[str, dict[str, int]]) -> plt.Figure:
    """Parameters per stage of each backbone (millions), one panel per architecture."""
    fig, axes = plt.subplots(1, len(stages), figsize=(4.2 * len(stages), 3.2), squeeze=False)
    for ax, (arch, counts) in zip(axes[0], stages.items()):
        kept = {k: v / 1e6 for k, v in counts.items() if v > 0}
        ax.bar(list(kept), list(kept.values()), color="0.45")
        ax.set_title(arch, fontsize=10)
        ax.set_ylabel("parameters (millions)")
        ax.tick_params(axis="x", rotation=60, labelsize=8)
    fig.tight_layout()
    return fig


def learning_curves(runs: pd.DataFrame, smooth: int = 9) -> plt.Figure:
    """Every run's training loss per step (a centred rolling mean over ``smooth`` steps) and its validation
    ``any`` AUC at the points the run scored it (``ichlib.monitor``: a fixed validation sample within each epoch,
    the whole split at its end), one column per preprocessing."""
    from .monitor import read_curve

    columns = list(dict.fromkeys(runs["preprocessing"]))
    fig, axes = plt.subplots(2, len(columns), figsize=(5.6 * len(columns), 6.4), sharex="col", squeeze=False)
    colours = dict(zip(dict.fromkeys(runs["arch"]), plt.get_cmap("tab10").colors))
    for _, row in runs.iterrows():
        steps, curve = read_curve(row["folder"])
        col = columns.index(row["preprocessing"])
        style = dict(color=colours[row["arch"]], ls="-" if row["variant"] == "baseline" else "--",
                     label=f"{row['arch']} {row['variant']}")
        loss = steps["loss"].rolling(smooth, center=True, min_periods=1).mean()
        axes[0, col].plot(steps["step"], loss, lw=1.2, **style)
        axes[1, col].plot(curve["step"], curve["val AUC any"], marker="o", ms=3, lw=1.2, **style)
        whole = curve[curve["scored on"] == "validation split"]
        axes[1, col].plot(whole["step"], whole["val AUC any"], "s", ms=7, mfc="none", color=style["color"])
    for col, name in enumerate(columns):
        axes[0, col].set(title=name, ylabel=f"training loss ({smooth}-step mean)", yscale="log")
        axes[1, col].set(xlabel="training step", ylabel="validation AUC (any)")
        axes[1, col].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[1, -1].plot([], [], "s", ms=7, mfc="none", color="0.3", label="whole validation split")
    axes[1, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def roc_figure(panels: dict[str, dict[str, tuple]], suptitle: str = "") -> plt.Figure:
    """ROC curves, one panel per key: ``{panel title: {curve name: (fpr, tpr, auc)}}``, in the manner of the
    paper's Figures 17-21 (false positive rate across, true positive rate up, AUC in the legend). A curve that
    is None (undefined: one class only) is listed as such."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for name, curve in curves.items():
            if curve is None:
                ax.plot([], [], " ", label=f"{name}: undefined (one class)")
                continue
            fpr, tpr, auc = curve
            ax.plot(fpr, tpr, lw=1.4, label=f"{name}, AUC={auc:.3f}")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(fontsize=7, loc="lower right")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


OVERLAY_ALPHA = 0.45  # a heatmap's opacity over a slice: the book's figures, the app's default, its DICOM capture


def overlay(ax, image: np.ndarray, heatmap: np.ndarray, mask: np.ndarray | None = None, title: str = "",
            colorbar: bool = True, alpha: float = OVERLAY_ALPHA) -> None:
    """A Grad-CAM heatmap (0-1) over a windowed slice (uint8 or 0-1), the true mask outlined, a colour bar."""
    ax.imshow(image, cmap="gray")
    shown = ax.imshow(heatmap, cmap="jet", alpha=alpha, vmin=0, vmax=1,
                      extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
    if mask is not None and mask.any():
        ax.contour(mask, levels=[0.5], colors="white", linewidths=0.9)
    if colorbar:
        ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label="Grad-CAM")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def gradcam_grid(panels: list[list[dict]], row_titles: list[str], col_titles: list[str]) -> plt.Figure:
    """Rows of overlays (each panel a dict of ``image``, ``heatmap``, ``mask``, ``title``), one colour bar per row."""
    n_rows, n_cols = len(panels), max(len(row) for row in panels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols + 0.6, 2.6 * n_rows), squeeze=False)
    for r, row in enumerate(panels):
        for c, ax in enumerate(axes[r]):
            if c >= len(row):
                ax.axis("off")
                continue
            overlay(ax, row[c]["image"], row[c]["heatmap"], row[c].get("mask"), row[c].get("title", ""),
                    colorbar=c == len(row) - 1)
        axes[r][0].text(-0.08, 0.5, row_titles[r], transform=axes[r][0].transAxes, rotation=90, ha="right",
                        va="center", fontsize=8)
    for c, title in enumerate(col_titles[:n_cols]):
        axes[0][c].set_title(f"{title}\n{axes[0][c].get_title()}", fontsize=8)
    fig.tight_layout()
    return fig


def gradcam_pairs(heat: dict, archs, variants, preprocessing: str, mask: np.ndarray | None = None) -> plt.Figure:
    """The paper's Figures 22/23 for one preprocessing: a row per architecture; per variant, the bleed slice
    (with the true ``mask`` outlined, when known) and the slice without one.

    ``heat`` maps a run name (``RunSpec.name``) to (images, heatmaps) of the two slices, bleed
    first, as ``ichlib.gradcam.heatmaps`` returns them.
    """
    rows = []
    for arch in archs:
        row = []
        for variant in variants:
            images, maps = heat[RunSpec(arch, preprocessing, variant).name]
            row.append({"image": images[0], "heatmap": maps[0], "title": f"{variant}, bleed", "mask": mask})
            row.append({"image": images[1], "heatmap": maps[1], "title": f"{variant}, no bleed"})
        rows.append(row)
    return gradcam_grid(rows, list(archs), [])


def series_figure(z: np.ndarray, truth: np.ndarray, curves: dict[str, np.ndarray], title: str = "",
                  label: str = "any") -> plt.Figure:
    """One study's per-slice probability of ``label`` along z, one line per model (e.g. the slice model and the
    series model), the slices whose label is positive shaded."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    z = np.asarray(z)
    for k in np.flatnonzero(np.asarray(truth) > 0):
        ax.axvspan(k - 0.5, k + 0.5, color="tab:red", alpha=0.15, lw=0)
    for name, values in curves.items():
        ax.plot(np.arange(len(z)), values, marker="o", ms=3, lw=1.3, label=name)
    ax.set(xlabel="slice (z order)", ylabel=f"p({label})", ylim=(-0.02, 1.02), title=title)
    ax.plot([], [], "s", color="tab:red", alpha=0.3, label=f"{label} positive (truth)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def level_rates(rates: pd.DataFrame) -> plt.Figure:
    """Share of slices with each label by the slice's tenth of its series (``ichlib.baselines.level_rates``):
    the signal a model can take from the level alone."""
    from .labels import LABELS

    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    centres = (rates.index.to_numpy() + 0.5) / len(rates)
    for label in LABELS:
        ax.plot(centres, rates[label] * 100, marker="o", ms=3, lw=2.2 if label == "any" else 1.1, label=label)
    ax.set(xlabel="level: the slice's place in its series (0 lowest, 1 highest)", ylabel="% of slices positive",
           xlim=(0, 1))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def against_baseline(aucs: pd.DataFrame, baseline: pd.Series, name: str = "level only") -> plt.Figure:
    """Each model's test AUC per label (dots, one colour per backbone) beside a baseline's (a bar): a dot at or
    under the bar is a model that has learned no more than the baseline knows."""
    from .labels import LABELS

    fig, ax = plt.subplots(figsize=(8, 3.6))
    archs = sorted({n.split("-")[0] for n in aucs.index})
    colours = dict(zip(archs, plt.get_cmap("tab10").colors))
    offsets = np.linspace(-0.25, 0.25, max(len(aucs), 1))
    for k, label in enumerate(LABELS):
        ax.hlines(baseline[label], k - 0.38, k + 0.38, color="black", lw=2.5, label=name if k == 0 else None)
        for offset, (model, row) in zip(offsets, aucs.iterrows()):
            arch = model.split("-")[0]
            ax.plot(k + offset, row[label], "o", ms=5, color=colours[arch], mfc="none" if "baseline" in model else None)
    for arch, colour in colours.items():
        ax.plot([], [], "o", color=colour, label=arch)
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=20)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(ylabel="test AUC")
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    return fig
