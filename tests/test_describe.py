"""ichlib.describe and ichlib.figures on a small phantom: counts, examples, contrast, and figures that draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from ichlib import describe, figures, store
from ichlib.paper import TABLE1_IMAGES
from ichlib.rsna import neighbours, read_hu


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("ICHBOOK_DATA", str(tmp_path_factory.mktemp("data")))
    src = store.source("", studies=6, seed=3, matrix=96, workers=1, progress=False)
    index, failures = store.index(src, workers=1, progress=False)
    yield src, index, failures, src.labels()
    mp.undo()


def test_label_distribution_counts_and_quotes_table1(phantom):
    _, _, _, labels = phantom
    table = describe.label_distribution(labels)
    assert table.at["normal", "images"] + table.at["any", "images"] == len(labels)
    assert table.at["subdural", "images"] == labels["subdural"].sum()
    assert table["paper images"].to_dict() == TABLE1_IMAGES
    assert table.at["normal", "paper share %"] == pytest.approx(100 * 121700 / 200000, abs=0.1)


def test_examples_pick_the_largest_bleed_with_its_mask(phantom):
    src, index, _, labels = phantom
    items = describe.examples(src, index, labels)
    present = [s for s in ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
               if labels[s].sum()]
    assert [i["subtype"] for i in items] == present
    assert all(i["mask"] is not None and i["mask"].any() for i in items)
    chosen = describe.examples(src, index, labels, slice_id=index.index[3])
    assert chosen[0]["id"] == index.index[3]
    with pytest.raises(ValueError, match="ID_nope"):
        describe.examples(src, index, labels, slice_id="ID_nope")


def test_blood_is_brighter_than_brain_in_the_brain_window(phantom):
    src, index, _, labels = phantom
    table = describe.window_contrast(src, index, labels, per_subtype=4)
    assert (table[("contrast", "brain")] > 0.1).all()
    assert (table["slices"] >= 1).all()


def test_failures_table_names_the_file(phantom):
    _, _, failures, _ = phantom
    table = describe.failures_table(failures)
    assert len(table) == 1 and table.file[0].endswith(".dcm") and "/" not in table.file[0]


def test_figures_show_what_they_say(phantom):
    """Each figure holds the data its docstring names: the panels, their titles, the windowed pixels, the bars."""
    from ichlib.preprocess import PRESETS, adjacent_stack, three_window, window

    src, index, _, labels = phantom
    items = describe.examples(src, index, labels)
    near = neighbours(index)
    first = items[0]
    prev, nxt = (read_hu(index.at[near.at[first["id"], side], "path"]) for side in ("prev", "next"))
    shown = lambda ax: np.asarray(ax.images[0].get_array(), float)  # noqa: E731 (the first image an axis shows)

    fig = figures.gallery(items)
    assert [ax.get_title() for ax in fig.axes] == [f"{i['subtype']}\n{i['id']}" for i in items]
    brain = PRESETS["brain"]
    for ax, item in zip(fig.axes, items):
        np.testing.assert_allclose(shown(ax), window(item["hu"], brain.center, brain.width), atol=1e-6)
        assert bool(ax.collections) == bool(item["mask"] is not None and item["mask"].any())  # the mask outlined

    distribution = describe.label_distribution(labels)
    fig = figures.label_bars(distribution)
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    np.testing.assert_allclose(heights, list(distribution["share %"]) + list(distribution["paper share %"]))

    fig = figures.windows_figure(first["hu"], mask=first["mask"])
    assert [ax.get_title() for ax in fig.axes[1:]] == ["brain", "subdural", "soft", "stacked as RGB"]
    np.testing.assert_array_equal(np.asarray(fig.axes[-1].images[0].get_array()), three_window(first["hu"]))
    assert all(bool(ax.collections) == bool(first["mask"].any()) for ax in fig.axes[1:4])  # the mask outlined

    fig = figures.adjacent_figure(prev, first["hu"], nxt, first["mask"])
    assert [ax.get_title() for ax in fig.axes] == ["previous", "current", "next", "stacked as RGB"]
    np.testing.assert_array_equal(np.asarray(fig.axes[3].images[0].get_array()),
                                  adjacent_stack(prev, first["hu"], nxt))

    contrast = describe.window_contrast(src, index, labels, per_subtype=2)
    fig = figures.contrast_figure(contrast)
    assert len(fig.axes[0].patches) == contrast["contrast"].size

    cache = store.cache(src, "three_window", 32, workers=1, progress=False)
    fig = figures.cache_samples({"three-window": cache}, items)
    for ax, item in zip(fig.axes, items):
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), cache.image(item["id"]))
    matplotlib.pyplot.close("all")


def test_gradcam_pair_picks_the_biggest_bleed_and_a_clean_slice(phantom):
    src, index, _, labels = phantom
    candidates = labels.index
    positive, negative = describe.gradcam_pair(src, labels, candidates, "subdural")
    assert labels.at[positive, "any"] == 1 and labels.at[negative, "any"] == 0
    masks = describe.masks_of(src, [positive, negative])
    assert masks[positive] and not masks[negative]
    chosen, _ = describe.gradcam_pair(src, labels, candidates, slice_id=negative)
    assert chosen == negative
    with pytest.raises(ValueError, match="ID_nothere"):
        describe.gradcam_pair(src, labels, candidates, slice_id="ID_nothere")
    # held-out slices without a bleed (a small download): the bleed is taken from the labelled slices at large
    clean = labels.index[labels["any"] == 0]
    fallback, negative = describe.gradcam_pair(src, labels, clean, "epidural")
    assert labels.at[fallback, "any"] == 1 and negative in clean
    with pytest.raises(ValueError, match="no slice with a bleed in this data"):
        describe.gradcam_pair(src, labels.loc[clean], clean, "epidural")


def test_worst_false_positives_are_the_highest_scored_negatives_and_skip_bad_files(phantom, tmp_path):
    _, index, failures, labels = phantom
    ids = [i for i in index.index if i not in {p.split("/")[-1][:-4] for p, _ in failures}][:40]
    y = labels.loc[ids, "any"].to_numpy()
    p = np.linspace(0, 1, len(ids))
    bad = index.copy()
    top_negative = [i for i, yy in zip(ids, y) if yy == 0][-1]
    bad.loc[top_negative, "path"] = str(tmp_path / "missing.dcm")  # the highest negative cannot be read
    items = describe.worst_false_positives(bad, ids, y, p, n=3)
    negatives = [i for i, yy in zip(ids, y) if yy == 0]
    assert [item["id"] for item in items] == negatives[::-1][1:4]  # highest first, the unreadable one passed over
    for item in items:
        assert item["mask"].shape == item["hu"].shape
        assert item["mask"].sum() == ((item["hu"] >= 50) & (item["hu"] < 100)).sum()
        assert item["subtype"].startswith("p(any) ")
