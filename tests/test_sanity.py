"""ichlib.sanity: the cascading model-randomisation check and the right-for-the-right-reason split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib import sanity
from ichlib.runs import RunSpec, model_for


def test_rank_correlation_is_one_for_a_monotone_copy_and_undefined_for_a_blank_map():
    rng = np.random.default_rng(0)
    a = rng.random((8, 8))
    assert sanity.rank_correlation(a, a ** 3) == pytest.approx(1.0)
    assert sanity.rank_correlation(a, -a) == pytest.approx(-1.0)
    assert np.isnan(sanity.rank_correlation(a, np.zeros((8, 8))))


@pytest.fixture(scope="module")
def spec_and_model():
    pytest.importorskip("keras")
    from ichlib.devices import set_determinism

    spec = RunSpec("resnet50", image_size=32, bn_momentum=0.9)
    set_determinism(1)
    return spec, model_for(spec)  # stands in for a trained model: other weights than a fresh seed-0 build


def test_randomised_keeps_the_bottom_and_reinitialises_the_top(spec_and_model):
    from ichlib.devices import set_determinism

    spec, trained = spec_and_model
    layers = sanity.weighted_layers(trained)
    set_determinism(0)
    copy = sanity.randomised(trained, model_for(spec), 0.25)
    top = int(np.ceil(0.25 * len(layers)))

    def same(k):
        return all(np.array_equal(a, b) for a, b in zip(trained.layers[k].get_weights(), copy.layers[k].get_weights()))

    assert all(same(k) for k in layers[:-top])
    # every kernel of the random share is new (batch norm starts at 1 and 0 in both builds: only kernels differ)
    assert all(not same(k) for k in layers[-top:] if hasattr(trained.layers[k], "kernel"))
    assert sanity.deepest_random(trained, 0.25) == trained.layers[layers[-top]].name
    assert sanity.deepest_random(trained, 0.0) == "none"
    with pytest.raises(ValueError, match="differ in their layers"):
        sanity.randomised(trained, model_for(RunSpec("densenet121", image_size=32)), 0.5)


def test_the_cascade_starts_at_one_and_falls_as_the_model_is_destroyed(spec_and_model):
    spec, trained = spec_and_model
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (4, 32, 32, 3)).astype(np.float32)
    table = sanity.cascade(spec, trained, images, "any", shares=(0.0, 0.02, 1.0), seed=0)
    assert list(table.index) == [0.0, 0.02, 1.0]
    assert table.at[0.0, "rank correlation"] == pytest.approx(1.0)
    assert table.at[1.0, "layers re-initialised"] == len(sanity.weighted_layers(trained))
    assert table.at[1.0, "rank correlation"] < 0.9  # every weight new: another map
    again = sanity.cascade(spec, trained, images, "any", shares=(0.0, 0.02, 1.0), seed=0)
    pd.testing.assert_frame_equal(table, again)  # seeded


def test_reasons_split_positive_slices_four_ways_and_the_table_counts_them():
    found = pd.Series([True, True, False, False, True], index=list("abcde"))
    pointing = pd.Series([True, False, True, False], index=list("abcd"))  # e never scored: not pointing
    cases = sanity.reasons(found, pointing)
    assert list(cases) == [*sanity.REASONS, "found, hot elsewhere"]
    rows = pd.DataFrame({"ID": list("abcde"), "energy inside": [0.5, 0.1, 0.4, 0.0, 0.3],
                         "mask share": [0.1] * 5})
    table = sanity.reason_table(cases, rows)
    assert list(table["slices"]) == [1, 2, 1, 1]
    assert table.at["found, hot elsewhere", "energy inside"] == pytest.approx(0.2)
    assert table["share"].sum() == pytest.approx(1.0)


def test_a_cascade_passes_only_if_the_maps_let_go_from_the_top_half_on_whichever_their_sign():
    def table(values):
        return pd.DataFrame({"rank correlation": values}, index=pd.Index(sanity.CASCADE, name="share re-initialised"))

    assert sanity.passes(table([1.0, 0.9, 0.7, 0.5, 0.2, 0.05]))
    assert not sanity.passes(table([1.0, 0.84, 0.82, 0.78, 0.69, -0.60]))  # tied at half, upside down at the end
    assert not sanity.passes(table([1.0, 0.9, 0.7, 0.5, 0.2, -0.55]))  # an inverted map is as tied as a kept one
    assert not sanity.passes(table([1.0, 0.9, 0.7, 0.5, np.nan, np.nan]))  # undefined is not a pass


def test_the_floor_of_unrelated_maps_is_one_for_copies_and_near_zero_for_noise():
    from ichlib.sanity import unrelated_floor

    rng = np.random.default_rng(0)
    same = np.stack([np.arange(64.0).reshape(8, 8)] * 5)
    assert unrelated_floor(same) == pytest.approx(1.0)
    assert unrelated_floor(rng.random((40, 16, 16))) < 0.1
    assert np.isnan(unrelated_floor(same[:1]))
