"""ichlib.preprocess: windows in closed form, the two stacks, their edges, resizing."""

from __future__ import annotations

import numpy as np
import pytest

from ichlib.preprocess import (PAPER_WINDOWS, PRESETS, Window, adjacent_stack, resize, sigmoid_window,
                               three_window, window)


def test_window_closed_form():
    hu = np.array([-1000, 0, 20, 40, 60, 80, 1000], np.float32)
    np.testing.assert_allclose(window(hu, 40, 80), [0, 0, 0.25, 0.5, 0.75, 1, 1])
    assert window(hu, 40, 80).dtype == np.float32


def test_paper_presets_match_its_ranges():
    # the paper's figures: brain 0..80, subdural -120..280, soft tissue 15..45
    assert (PRESETS["brain"].low, PRESETS["brain"].high) == (0, 80)
    assert (PRESETS["subdural"].low, PRESETS["subdural"].high) == (-120, 280)
    assert (PRESETS["soft"].low, PRESETS["soft"].high) == (15, 45)
    assert PAPER_WINDOWS == ("brain", "subdural", "soft")


def test_bad_window_width():
    with pytest.raises(ValueError, match="width"):
        window(np.zeros(3), 40, 0)


def test_sigmoid_window_hits_eps_at_the_edges_and_half_at_centre():
    values = sigmoid_window(np.array([0, 40, 80], np.float32), 40, 80, eps=0.01)
    np.testing.assert_allclose(values, [0.01, 0.5, 0.99], atol=1e-5)


def test_three_window_channels():
    hu = np.array([[30.0, 80.0]], np.float32)
    stack = three_window(hu)
    assert stack.shape == (1, 2, 3)
    np.testing.assert_allclose(stack[0, 0], [30 / 80, 150 / 400, 0.5])
    np.testing.assert_allclose(stack[0, 1], [1.0, 200 / 400, 1.0])
    with pytest.raises(ValueError, match="unknown window preset 'lung'"):
        three_window(hu, ("brain", "lung", "soft"))


def test_adjacent_stack_order_and_edges():
    prev, cur, nxt = (np.full((2, 2), v, np.float32) for v in (0, 40, 80))
    stack = adjacent_stack(prev, cur, nxt)
    np.testing.assert_allclose(stack[0, 0], [0, 0.5, 1])
    first = adjacent_stack(None, cur, nxt)
    np.testing.assert_allclose(first[0, 0], [0.5, 0.5, 1])
    last = adjacent_stack(prev, cur, None, win=Window(40, 80))
    np.testing.assert_allclose(last[0, 0], [0, 0.5, 0.5])
    with pytest.raises(ValueError, match="differ in shape"):
        adjacent_stack(np.zeros((3, 3)), cur, nxt)


def test_resize_area_average_and_constant():
    image = np.zeros((8, 8), np.float32)
    image[:4, :4] = 1.0
    small = resize(image, 2)
    np.testing.assert_allclose(small, [[1, 0], [0, 0]], atol=1e-6)
    rgb = np.full((10, 10, 3), 0.25, np.float32)
    assert resize(rgb, 7).shape == (7, 7, 3)
    np.testing.assert_allclose(resize(rgb, 16), 0.25, atol=1e-6)


def test_uint8_stacks_equal_the_rounded_float_ones():
    hu = np.linspace(-200, 300, 64, dtype=np.float32).reshape(8, 8)
    def rounded(x):
        return np.floor(x * 255 + 0.5).astype(np.uint8)

    np.testing.assert_array_equal(three_window(hu, dtype=np.uint8), rounded(three_window(hu)))
    np.testing.assert_array_equal(adjacent_stack(hu, hu + 5, None, dtype=np.uint8),
                                  rounded(adjacent_stack(hu, hu + 5, None)))


def test_power_of_two_shrink_is_exact_area_average():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(64, 64)).astype(np.float32)
    np.testing.assert_allclose(resize(image, 16), image.reshape(16, 4, 16, 4).mean(axis=(1, 3)), atol=1e-5)
    np.testing.assert_allclose(resize(image, 32), image.reshape(32, 2, 32, 2).mean(axis=(1, 3)), atol=1e-5)
    assert resize(image, 64) is not None and resize(image, 64).shape == (64, 64)
    assert resize(image, 48).shape == (48, 48)  # not a power of two: Pillow's box filter


# ------------------------------------------------------------------------------------------- the head's box
def head_slice(size=256, centre=(128, 128), radii=(70, 60), table_row=None):
    """Air with an elliptical head (skull ring, brain inside) and, optionally, a 2-px table line below it."""
    rows, cols = np.mgrid[:size, :size]
    r = ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2
    hu = np.full((size, size), -1000.0, np.float32)
    hu[r < 1] = 1000.0
    hu[r < 0.85] = 35.0
    if table_row is not None:
        hu[table_row:table_row + 2, 10:size - 10] = 300.0
    return hu


def test_head_box_is_square_and_holds_the_head_off_centre():
    from ichlib.preprocess import head_box

    hu = head_slice(centre=(100, 150), radii=(50, 40))
    top, bottom, left, right = head_box(hu)
    assert bottom - top == right - left
    assert top <= 50 and bottom >= 150 and left <= 110 and right >= 190  # the whole head
    assert bottom - top <= 112  # and little else: 100 px of head and a small margin


def test_a_table_line_touching_the_head_is_left_out():
    from ichlib.preprocess import head_box

    hu = head_slice(centre=(120, 128), radii=(60, 50), table_row=179)  # touches the head's lowest row
    top, bottom, left, right = head_box(hu)
    assert bottom - top <= 135 and left > 10 and right < 246  # not widened to the table's 236 px


def test_a_head_touching_the_edge_gives_a_box_inside_the_image_or_padded_with_air():
    from ichlib.preprocess import AIR_HU, crop_to, head_box

    hu = head_slice(centre=(40, 128), radii=(60, 50))  # cut off by the top edge
    box = head_box(hu)
    assert box[0] == 0 and box[1] - box[0] == box[3] - box[2]
    big = head_slice(size=128, centre=(64, 64), radii=(66, 66))  # fills the image: the square runs past it
    top, bottom, left, right = head_box(big)
    assert top < 0 and bottom > 128 and bottom - top == right - left
    out = crop_to(big, (top, bottom, left, right))
    assert out.shape == (bottom - top, right - left) and out[0, 0] == AIR_HU
    np.testing.assert_array_equal(out[-top:-top + 128, -left:-left + 128], big)


def test_an_air_only_slice_has_no_head():
    from ichlib.preprocess import NoHeadError, head_box

    air = np.full((128, 128), -1000.0, np.float32)
    with pytest.raises(NoHeadError, match="no head"):
        head_box(air)
    air[5, 5] = 40.0  # a stray pixel is not a head
    with pytest.raises(NoHeadError):
        head_box(air)
    with pytest.raises(ValueError, match="2-D"):
        head_box(np.zeros((4, 128, 128)))


def test_head_box_on_a_wide_slice_and_on_empty_or_nan_input():
    from ichlib.preprocess import NoHeadError, head_box

    wide = np.full((128, 256), -1000.0, np.float32)
    wide[30:100, 150:220] = 40.0
    top, bottom, left, right = head_box(wide)
    assert bottom - top == right - left and 0 <= top and bottom <= 128 and left <= 150 and right >= 220
    with pytest.raises(ValueError, match="2-D"):
        head_box(np.zeros((0, 0)))
    with pytest.raises(NoHeadError):
        head_box(np.full((64, 64), np.nan))


def test_a_map_of_the_cut_input_is_placed_back_where_the_head_lies():
    """An off-centre head: the hot corner of the input's map lands on the head's corner in the slice, not on
    air; without a box the map covers the slice; a box past the edge is clipped."""
    from ichlib.preprocess import place

    heat = np.zeros((8, 8), np.float32)
    heat[:2, :2] = 1.0  # hot in the input's top-left corner
    placed = place(heat, (300, 460, 20, 180), (512, 512))  # the head low and to the left
    hot = np.argwhere(placed > 0.5)
    assert hot.min(axis=0).tolist() >= [300, 20] and hot.max(axis=0).tolist() <= [345, 65]
    assert placed[:300].max() == 0 and placed[:, 180:].max() == 0
    assert place(heat, None, (64, 64))[:16, :16].mean() > 0.5
    edge = place(np.ones((8, 8), np.float32), (-10, 50, 480, 540), (512, 512))
    assert edge[:50, 480:].min() > 0.99 and edge.sum() == pytest.approx(50 * 32, rel=0.01)
