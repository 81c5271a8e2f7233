"""ichlib.batches: the share of positives an epoch shows, negatives matched to the positives' levels."""

from __future__ import annotations

import numpy as np
import pytest


def test_epoch_order_draws_the_asked_share_of_positives():
    from ichlib.batches import epoch_order

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
    from ichlib.batches import epoch_order

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


def test_no_positive_or_no_negative_rows_fall_back_to_a_plain_shuffle():
    from ichlib.batches import epoch_order

    rows = np.arange(20)
    for positive in (np.zeros(20, bool), np.ones(20, bool)):
        assert sorted(epoch_order(rows, positive, 0.5, np.random.default_rng(1))) == list(rows)


def test_flips_on_the_batch_move_a_mask_with_its_image():
    from ichlib.batches import flip_pairs

    images = np.zeros((64, 8, 8, 3), np.float32)
    images[:, 0, 1] = 1.0  # a mark near the top-left corner
    masks = np.zeros((64, 4, 4, 1), np.float32)
    masks[:, 0, 0] = 1.0  # the cell that holds it
    flipped, moved = flip_pairs(images, masks, np.random.default_rng(0))
    for image, mask in zip(flipped, moved):
        r, c = np.argwhere(image[..., 0])[0]
        assert mask[r // 2, c // 2, 0] == 1 and mask.sum() == 1
    corners = {tuple(np.argwhere(m[..., 0])[0]) for m in moved}
    assert corners == {(0, 0), (0, 3), (3, 0), (3, 3)}  # both flips, each way, over 64 draws
    assert images[:, 0, 1].all() and masks[:, 0, 0].all()  # the batch it came from is left as it was


def test_a_run_on_masks_flips_its_batches_not_inside_the_network():
    from ichlib.runs import RunSpec, model_for

    spec = RunSpec("resnet50", variant="optimised", image_size=32, mask_weight=1.0)
    assert spec.flips_in_data and not RunSpec("resnet50", variant="optimised").flips_in_data
    names = [layer.name for layer in model_for(spec).layers]
    assert "flips" not in names and "flips" in [layer.name for layer in model_for(RunSpec("resnet50", "three_window",
                                                                                           "optimised", 32)).layers]
