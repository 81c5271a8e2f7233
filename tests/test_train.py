"""ichlib.train: the patient split (no leak, proportions, stratification, stability)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib.rsna import LABELS, SUBTYPES
from ichlib.train import SPLITS, split_by_patient


def fake_data(n_patients=400, seed=0):
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for p in range(n_patients):
        n = int(rng.integers(20, 40))
        subtype = rng.choice([None, *SUBTYPES], p=[0.6, 0.02, 0.1, 0.08, 0.1, 0.1])
        for k in range(n):
            image = f"ID_{p:04x}{k:05x}"
            rows.append({"ID": image, "patient": f"ID_p{p}"})
            positive = subtype is not None and 5 <= k < 9
            labels.append({"ID": image, **{s: int(positive and s == subtype) for s in SUBTYPES}, "any": int(positive)})
    index = pd.DataFrame(rows).set_index("ID")
    return index, pd.DataFrame(labels).set_index("ID")[list(LABELS)]


def test_no_patient_in_two_splits_and_proportions_hold():
    index, labels = fake_data()
    split = split_by_patient(index, seed=0, labels=labels)
    assert set(split) == set(SPLITS) and split.index.equals(index.index)
    assert (split.groupby(index["patient"]).nunique() == 1).all()
    shares = split.value_counts(normalize=True)
    for name, fraction in zip(SPLITS, (0.81, 0.09, 0.10)):
        assert shares[name] == pytest.approx(fraction, abs=0.02)


def test_every_split_has_every_subtype():
    index, labels = fake_data(n_patients=120, seed=1)
    split = split_by_patient(index, seed=3, labels=labels)
    patients = labels[list(SUBTYPES)].groupby(index["patient"]).max().sum()
    allowed = [s for s in SUBTYPES if patients[s] >= 3]  # "where the cohort allows": three patients or more
    assert len(allowed) == 4 and patients["epidural"] < 3
    for name in SPLITS:
        present = labels[split == name][allowed].sum()
        assert (present > 0).all(), f"{name} lacks {list(present[present == 0].index)}"


def test_same_seed_same_split_other_seed_other_split():
    index, labels = fake_data(n_patients=100)
    a = split_by_patient(index, seed=7, labels=labels)
    assert a.equals(split_by_patient(index, seed=7, labels=labels))
    assert not a.equals(split_by_patient(index, seed=8, labels=labels))
    assert split_by_patient(index, seed=7).groupby(index["patient"]).nunique().max() == 1  # without labels too


def test_a_tiny_cohort_still_fills_every_split():
    index, labels = fake_data(n_patients=4, seed=2)
    split = split_by_patient(index, seed=0, labels=labels)
    assert set(split) == set(SPLITS)


def test_bad_fractions():
    index, _ = fake_data(n_patients=5)
    with pytest.raises(ValueError, match="fractions"):
        split_by_patient(index, seed=0, fractions=(0.5, 0.5, 0.5))


# ------------------------------------------------------------------------------------------------ fitting
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


def test_epoch_order_draws_the_asked_share_of_positives():
    from ichlib.train import epoch_order

    rows = np.arange(100)
    positive = rows < 10
    order = epoch_order(rows, positive, 0.5, np.random.default_rng(0))
    assert len(order) == 100 and positive[order].sum() == 50
    assert set(order[positive[order]]) == set(range(10))  # every positive, each 5 times
    negatives = order[~positive[order]]
    assert len(set(negatives)) == 50  # negatives without repeats
    plain = epoch_order(rows, positive, 0.0, np.random.default_rng(0))
    assert sorted(plain) == list(rows)
    again = epoch_order(rows, positive, 0.5, np.random.default_rng(0))
    np.testing.assert_array_equal(order, again)
    short = epoch_order(rows, positive, 0.5, np.random.default_rng(0), size=30)
    assert len(short) == 30 and positive[short].sum() == 15 and len(set(short[~positive[short]])) == 15
    long = epoch_order(rows, positive, 0.0, np.random.default_rng(0), size=250)
    assert len(long) == 250 and set(long) == set(rows)
    with pytest.raises(ValueError, match="positive_fraction"):
        __import__("ichlib.runs", fromlist=["RunSpec"]).RunSpec("resnet50", positive_fraction=1.0).check()


def test_level_matched_negatives_follow_the_positives_levels():
    """Known answer: positives only in strata 4 and 5 (3 : 1); the negatives drawn come from those strata in
    that ratio, so within an epoch the level tells a positive from a negative no better than chance."""
    from ichlib.train import epoch_order

    rows = np.arange(1000)
    strata = rows // 100
    positive = np.isin(rows, np.r_[400:430, 500:510])  # 30 positives in stratum 4, 10 in stratum 5
    order = epoch_order(rows, positive, 0.5, np.random.default_rng(0), size=400, strata=strata)
    negatives = order[~positive[order]]
    assert len(order) == 400 and positive[order].sum() == 200
    assert np.bincount(strata[negatives], minlength=10).tolist() == [0, 0, 0, 0, 150, 50, 0, 0, 0, 0]
    # stratum 4 holds 70 negatives for 150 draws: each is seen, some twice; stratum 5's 50 draws do not repeat
    assert len(set(negatives[strata[negatives] == 4])) == 70 and len(set(negatives[strata[negatives] == 5])) == 50
    natural = epoch_order(rows, positive, 0.0, np.random.default_rng(0), size=400, strata=strata)
    assert positive[natural].sum() == 16  # no positive_fraction: the positives' natural 4 %
    assert set(strata[natural[~positive[natural]]]) == {4, 5}
    # a stratum whose positives have no negative beside them gives its share to the negatives at large
    lonely = np.isin(rows, np.r_[400:500])  # all of stratum 4 is positive
    order = epoch_order(rows, lonely, 0.5, np.random.default_rng(0), size=100, strata=strata)
    assert (~lonely[order]).sum() == 50
    np.testing.assert_array_equal(order, epoch_order(rows, lonely, 0.5, np.random.default_rng(0), size=100,
                                                     strata=strata))


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


def test_no_positive_or_no_negative_rows_fall_back_to_a_plain_shuffle():
    from ichlib.train import epoch_order

    rows = np.arange(20)
    for positive in (np.zeros(20, bool), np.ones(20, bool)):
        assert sorted(epoch_order(rows, positive, 0.5, np.random.default_rng(1))) == list(rows)


_MIRRORED = """
import tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from ichlib.losses import WeightedBCE
from ichlib.models import build_model
from ichlib.train import distribution_scope
import keras
with distribution_scope(["/cpu:0", "/cpu:1"]) as strategy:
    assert strategy.num_replicas_in_sync == 2, strategy
    model = build_model("resnet50", 32)
    model.compile(keras.optimizers.Adam(1e-3), WeightedBCE())
x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
y = (np.arange(48).reshape(8, 6) % 2).astype("float32")
history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
assert np.isfinite(history.history["loss"]).all()
print("replicas", strategy.num_replicas_in_sync)
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_over_two_devices():
    """The GPU profile's several-device path, run on two logical CPUs (TensorFlow only)."""
    import subprocess
    import sys

    import os

    pytest.importorskip("tensorflow")
    done = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicas 2" in done.stdout


def test_one_device_or_none_changes_nothing():
    from ichlib.train import distribution_scope

    with distribution_scope([]) as strategy:
        assert strategy is None
    with distribution_scope(["/gpu:0"]) as strategy:
        assert strategy is None


def test_a_small_download_still_puts_a_bleed_in_validation_and_test():
    """Twelve patients, four with a bleed, each of another subtype (too rare to deal out alone): every split
    gets a patient with a bleed, so the test split has AUCs to report."""
    rows, labels = [], []
    for p in range(12):
        subtype = SUBTYPES[p] if p < 4 else None
        for k in range(30):
            image = f"ID_{p:04x}{k:05x}"
            rows.append({"ID": image, "patient": f"ID_p{p}"})
            positive = subtype is not None and 10 <= k < 14
            labels.append({"ID": image, **{s: int(positive and s == subtype) for s in SUBTYPES}, "any": int(positive)})
    index, labels = pd.DataFrame(rows).set_index("ID"), pd.DataFrame(labels).set_index("ID")[list(LABELS)]
    for seed in range(5):
        split = split_by_patient(index, seed=seed, labels=labels)
        for name in SPLITS:
            assert labels.loc[split == name, "any"].sum() > 0, f"seed {seed}: no bleed in {name}"
        assert (split.groupby(index["patient"]).nunique() == 1).all()
