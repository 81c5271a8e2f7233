"""ichlib.train: a tiny run learns, saves what later chapters read, resumes, and repeats from its seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib.split import split_by_patient


def toy_cache(n=96, size=32, seed=0):
    """A trivially separable task: 'any' (and 'subdural') images hold a bright square."""
    from ichlib.cache import Cache

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, size, size, 3)).astype(np.uint8)
    labels = np.zeros((n, 6), np.int8)
    positive = np.arange(n) % 2 == 0
    for i in np.flatnonzero(positive):
        r, c = rng.integers(4, size - 12, 2)
        images[i, r:r + 8, c:c + 8] = 230
    labels[positive, 0] = labels[positive, 5] = 1
    ids = [f"ID_{i:09x}" for i in range(n)]
    index = pd.DataFrame({"patient": [f"ID_p{i // 2}" for i in range(n)]}, index=pd.Index(ids, name="ID"))
    return Cache(images, ids, labels, [], {"mode": "toy", "size": size}), index


@pytest.fixture(scope="module")
def toy():
    cache, index = toy_cache()
    split = split_by_patient(index, seed=0, fractions=(0.6, 0.2, 0.2))
    return cache, split


class Interrupt(Exception):
    pass


class StopAfter:
    """A callback that kills the run at the end of an epoch, as Ctrl-C or a lost machine would."""

    def __new__(cls, epoch):
        import keras

        class _Stop(keras.callbacks.Callback):
            def on_epoch_end(self, e, logs=None):
                if e == epoch:
                    raise Interrupt(f"stopped after epoch {e}")

        return _Stop()


@pytest.mark.slow
def test_tiny_run_learns_a_separable_task_and_saves_artifacts(toy, tmp_path):
    from sklearn.metrics import roc_auc_score

    from ichlib.runs import RunSpec, load_predictions
    from ichlib.train import train_model

    cache, split = toy
    spec = RunSpec("densenet121", image_size=32, epochs=6, batch_size=8, learning_rate=1e-3, patience=6)
    summary = train_model(spec, cache, split, tmp_path / "run")
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    ids, truth, probs = load_predictions(tmp_path / "run", "test")
    assert roc_auc_score(truth[:, 0], probs[:, 0]) > 0.9
    for name in ("best.weights.h5", "config.json", "timings.json", "predictions_val.csv", "done.json"):
        assert (tmp_path / "run" / name).exists()
    from ichlib.monitor import CURVE_POINTS, read_curve

    steps, curve = read_curve(tmp_path / "run")
    per_epoch = int(np.ceil(int((split == "train").sum()) / 8))
    assert steps["step"].tolist() == list(range(1, 6 * per_epoch + 1)) and steps["loss"].notna().all()
    assert len(curve) == 6 * (CURVE_POINTS + 1) and curve["step"].is_monotonic_increasing
    whole = curve[curve["scored on"] == "validation split"]
    assert whole["step"].tolist() == [per_epoch * e for e in range(1, 7)]
    _, val_truth, val_probs = load_predictions(tmp_path / "run", "val")
    best = summary["best_epoch"]
    assert whole["val AUC any"].iloc[best] == pytest.approx(roc_auc_score(val_truth[:, 0], val_probs[:, 0]), abs=1e-4)
    assert history["val_loss"].idxmin() == best
    assert summary["train_seconds"] > 0 and summary["test_seconds_per_image"] > 0
    assert train_model(spec, cache, split, tmp_path / "run") == summary  # finished: not trained again
    from ichlib.runs import load_model

    model = load_model(tmp_path / "run")
    for split_name in ("test", "val"):  # the saved model is the one that predicted, val at its best epoch
        ids, _, probs = load_predictions(tmp_path / "run", split_name)
        rows = [cache.ids.index(i) for i in ids]
        np.testing.assert_allclose(model.predict(cache.images[rows].astype(np.float32), verbose=0), probs, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        load_model(tmp_path)


@pytest.mark.slow
def test_the_short_cpu_schedule_learns_the_toy_task(toy, tmp_path):
    """The cpu profile's recipe: cosine schedule, BN momentum 0.9, positives oversampled."""
    from sklearn.metrics import roc_auc_score

    from ichlib.runs import RunSpec, load_predictions
    from ichlib.train import train_model

    cache, split = toy
    spec = RunSpec("densenet121", image_size=32, epochs=4, batch_size=8, learning_rate=2e-3, patience=4,
                   lr_schedule="cosine", bn_momentum=0.9, positive_fraction=0.5)
    train_model(spec, cache, split, tmp_path / "run")
    _, truth, probs = load_predictions(tmp_path / "run", "test")
    assert roc_auc_score(truth[:, 0], probs[:, 0]) > 0.9


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_last_epoch(toy, tmp_path):
    from ichlib.runs import RunSpec
    from ichlib.train import train_model

    cache, split = toy
    spec = RunSpec("resnet50", image_size=32, epochs=3, batch_size=16, patience=5)
    with pytest.raises(Interrupt):
        train_model(spec, cache, split, tmp_path / "run", callbacks=[StopAfter(0)])
    assert not (tmp_path / "run" / "done.json").exists()
    summary = train_model(spec, cache, split, tmp_path / "run")
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2] and summary["epochs_run"] == 3
    assert summary["best_epoch"] == history["val_loss"].idxmin()  # the best epoch before the break still counts


def test_an_interrupted_mixed_precision_run_leaves_the_policy_as_it_was(toy, tmp_path):
    import keras

    from ichlib.runs import RunSpec
    from ichlib.train import train_model

    class AtOnce(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            raise Interrupt("stopped before the first step")

    cache, split = toy
    spec = RunSpec("resnet50", image_size=32, epochs=1, batch_size=16, mixed_precision=True)
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(Interrupt):
        train_model(spec, cache, split, tmp_path / "run", callbacks=[AtOnce()])
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.slow
def test_same_seed_same_predictions(toy, tmp_path):
    from ichlib.runs import RunSpec, load_predictions
    from ichlib.train import train_model

    cache, split = toy
    spec = RunSpec("resnet50", variant="optimised", image_size=32, epochs=1, batch_size=16)
    train_model(spec, cache, split, tmp_path / "a")
    train_model(spec, cache, split, tmp_path / "b")
    np.testing.assert_array_equal(load_predictions(tmp_path / "a")[2], load_predictions(tmp_path / "b")[2])


def test_run_spec_checks_and_names():
    from ichlib.runs import RunSpec

    spec = RunSpec("resnet50", "adjacent", "optimised")
    assert spec.name == "resnet50-adjacent-optimised" and spec.loss_weights[0] == 5.0
    assert RunSpec("resnet50").loss_weights == (1.0,) * 6
    with pytest.raises(ValueError, match="variant 'best'"):
        RunSpec("resnet50", variant="best").check()
    for bad, match in (({"epoch_images": -1}, "epoch_images"), ({"lr_schedule": "step"}, "lr_schedule 'step'"),
                       ({"bn_momentum": 1.0}, "bn_momentum"), ({"positive_fraction": -0.1}, "positive_fraction"),
                       ({"negatives": "hard"}, "negatives 'hard'"), ({"weights": "ImageNet"}, "weights 'ImageNet'"),
                       ({"weights": "pretrained"}, "pretrain_images > 0"),
                       ({"pretrain_images": 100}, "pretrain_images > 0")):
        with pytest.raises(ValueError, match=match):
            RunSpec("resnet50", **bad).check()
    RunSpec("resnet50", negatives="level_matched", weights="pretrained", pretrain_images=100).check()


def test_level_matched_runs_need_the_levels(toy):
    from ichlib.runs import RunSpec
    from ichlib.train import split_batches

    cache, split = toy
    spec = RunSpec("resnet50", image_size=32, negatives="level_matched", positive_fraction=0.5)
    with pytest.raises(ValueError, match="level stratum"):
        split_batches(spec, cache, split)
    strata = pd.Series(np.arange(len(cache.ids)) % 10, index=cache.ids)
    _, batches = split_batches(spec, cache, split, strata)
    assert batches["train"].strata is not None and batches["val"].strata is None




def toy_masks(cache, folder, cells=4):
    """The toy cache's bright squares as the mask head's grid, kept where ichlib.masktargets keeps it."""
    from ichlib.masktargets import GRID_FILE, mask_to

    folder.mkdir(parents=True, exist_ok=True)
    cache.folder = folder
    grid = np.zeros((len(cache.ids), cells, cells, 1), np.uint8)
    for i in range(len(cache.ids)):
        square = cache.images[i, :, :, 0] >= 200
        if square.any():
            grid[i, :, :, 0] = mask_to(square, cells)
    np.save(folder / GRID_FILE.format(cells=cells), grid)
    return grid


@pytest.mark.slow
def test_a_run_taught_by_the_masks_learns_where_the_square_is_and_says_where_its_seconds_went(tmp_path):
    from types import SimpleNamespace

    from sklearn.metrics import roc_auc_score

    from ichlib.models import mask_model
    from ichlib.runs import RunSpec, load_model, load_predictions
    from ichlib.train import train_model

    cache, index = toy_cache()
    split = split_by_patient(index, seed=0, fractions=(0.6, 0.2, 0.2))
    grid = toy_masks(cache, tmp_path / "cache")
    src = SimpleNamespace(key="toy", phantom=True)
    spec = RunSpec("resnet50", image_size=32, epochs=3, batch_size=16, learning_rate=1e-3, patience=3,
                   mask_weight=1.0, score_from="mask")
    summary = train_model(spec, cache, split, tmp_path / "run", source=src)
    parts = summary["seconds"]
    assert set(parts) == {"learning", "validation passes", "curve checks", "test prediction"}
    assert parts["learning"] > 0 and parts["learning"] + parts["validation passes"] + parts["curve checks"] \
        == pytest.approx(summary["train_seconds"], abs=0.3)
    assert summary["images_learnt"] == 3 * int((split == "train").sum())
    model = load_model(tmp_path / "run")  # the checkpoint is the run's model, mask head and all
    ids, truth, probs = load_predictions(tmp_path / "run", "test")
    rows = [cache.ids.index(i) for i in ids]
    x = cache.images[rows].astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), probs, atol=1e-5)
    logits = mask_model(model).predict(x, verbose=0)
    np.testing.assert_allclose(probs[:, 0], 1 / (1 + np.exp(-logits.reshape(len(x), -1).max(axis=1))), atol=1e-5)
    cells = grid[rows].ravel() > 0
    assert roc_auc_score(cells, logits.ravel()) > 0.65  # its cells say where the square lies (chance: 0.5)
    with pytest.raises(Exception, match="no bleed masks"):
        train_model(spec, cache, split, tmp_path / "real", source=SimpleNamespace(key="rsna", phantom=False))
