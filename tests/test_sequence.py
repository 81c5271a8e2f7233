"""ichlib.sequence: a task only the neighbouring slices show, padding and masks, saving, finding, grouping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib import sequence


def neighbour_task(n_series: int, seed: int, d: int = 8):
    """Slice i is positive when slice i-1 or i+1 carries a marker (feature 0 = 3); its own features say nothing."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_series):
        n = int(rng.integers(8, 30))
        features = rng.normal(0, 1, (n, d)).astype(np.float32)
        marker = rng.random(n) < 0.15
        features[marker, 0] = 3.0
        label = np.zeros(n, bool)
        label[1:] |= marker[:-1]
        label[:-1] |= marker[1:]
        out.append((features, np.repeat(label[:, None], 6, axis=1).astype(np.float32)))
    return out


@pytest.mark.slow
def test_the_series_model_learns_what_only_the_neighbours_show():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    train, val, test = neighbour_task(300, 0), neighbour_task(60, 1), neighbour_task(120, 2)
    x = np.concatenate([f for f, _ in train])
    y = np.concatenate([l[:, 0] for _, l in train])
    xt = np.concatenate([f for f, _ in test])
    yt = np.concatenate([l[:, 0] for _, l in test])
    per_slice = roc_auc_score(yt, LogisticRegression().fit(x, y).predict_proba(xt)[:, 1])
    assert per_slice < 0.6  # a slice alone is at chance here
    model = sequence.fit(train, val, seed=0, units=32, epochs=40)
    probs = sequence.predict(model, [f for f, _ in test])
    assert [len(p) for p in probs] == [len(f) for f, _ in test]
    auc = roc_auc_score(yt, np.concatenate([p[:, 0] for p in probs]))
    assert auc >= 0.85, auc
    # seeded: two short fits from one seed predict alike (a short fit: the seed's effect shows from the start)
    first, again = (sequence.fit(train[:60], val, seed=0, units=32, epochs=3) for _ in range(2))
    np.testing.assert_allclose(np.concatenate(sequence.predict(again, [f for f, _ in test[:5]])),
                               np.concatenate(sequence.predict(first, [f for f, _ in test[:5]])), atol=1e-6)


def test_padding_never_changes_a_series_prediction(tmp_path):
    train, val = neighbour_task(20, 3), neighbour_task(5, 4)
    model = sequence.fit(train, val, seed=0, units=8, epochs=2)
    short, long = train[0][0][:5], train[1][0]
    alone = sequence.predict(model, [short])[0]
    beside_a_longer_one = sequence.predict(model, [short, long])[0]
    np.testing.assert_allclose(alone, beside_a_longer_one, atol=1e-5)
    folder = sequence.save(model, tmp_path / "m", members=["/runs/a", "/runs/b"])
    loaded = sequence.load(folder)
    np.testing.assert_allclose(sequence.predict(loaded, [short])[0], alone, atol=1e-6)
    assert sequence.find(tmp_path, ["/runs/a", "/runs/b"]) == folder
    assert sequence.find(tmp_path, ["/runs/b", "/runs/a"]) is None
    with pytest.raises(ValueError, match="unknown setting"):
        sequence.fit(train, val, layers=3)


def test_series_of_groups_by_series_in_z_order():
    index = pd.DataFrame({"series": ["s2", "s1", "s1", "s2", "s1"], "z": [5.0, 10.0, 0.0, 0.0, 5.0]},
                         index=pd.Index(["a", "b", "c", "d", "e"], name="ID"))
    values = np.arange(5)[:, None] * 1.0
    names, (blocks, ids) = sequence.series_of(["a", "b", "c", "d", "e"], index, values)
    assert names == ["s1", "s2"]
    assert [list(i) for i in ids] == [["c", "e", "b"], ["d", "a"]]
    assert blocks[0][:, 0].tolist() == [2.0, 4.0, 1.0]
