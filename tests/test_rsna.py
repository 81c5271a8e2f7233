"""ichlib.rsna: labels, HU in closed form, every bad input, real CT, the index and neighbours."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from ichlib.labels import LABELS
from ichlib.rsna import DicomError, LabelError, index_dicoms, neighbours, read_hu, read_labels

from .conftest import pydicom_data_file, write_dicom

KAGGLE_ORDER = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")


def labels_csv(tmp_path, blocks: dict[str, dict[str, int]], extra: list[str] = ()) -> str:
    lines = ["ID,Label"]
    for image, values in blocks.items():
        lines += [f"{image}_{name},{values.get(name, 0)}" for name in KAGGLE_ORDER]
    lines += list(extra)
    path = tmp_path / "stage_2_train.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# ------------------------------------------------------------------------------------------------ labels
def test_read_labels_one_row_per_image_in_label_order(tmp_path):
    path = labels_csv(tmp_path, {"ID_00aa": {"any": 1, "subdural": 1}, "ID_00bb": {}})
    table = read_labels(path)
    assert list(table.columns) == list(LABELS)
    assert table.index.name == "ID"
    assert table.loc["ID_00aa"].tolist() == [1, 0, 0, 0, 0, 1]
    assert table.loc["ID_00bb"].sum() == 0
    assert all(np.issubdtype(t, np.integer) for t in table.dtypes)


def test_read_labels_drops_exact_duplicates(tmp_path):
    path = labels_csv(tmp_path, {"ID_00aa": {"any": 1, "epidural": 1}}, extra=["ID_00aa_epidural,1", "ID_00aa_any,1"])
    table = read_labels(path)
    assert len(table) == 1 and table.loc["ID_00aa", "epidural"] == 1


@pytest.mark.parametrize("extra, needle", [
    (["ID_00aa_epidural,1"], "lines [2, 8]"),          # conflicts with line 2 (epidural 0)
    (["ID_00zz_any,0"], "line 8"),                      # malformed: z is not hex
    (["ID_00aa_chronic,0"], "line 8"),                  # unknown subtype
    (["ID_00cc_any,2"], "line 8"),                      # label not 0/1
    (["ID_00cc_any,"], "line 8"),                       # empty label
    (["ID_00dd_any,0"], "line 8"),                      # an image with one row of six
])
def test_read_labels_errors_name_id_and_line(tmp_path, extra, needle):
    path = labels_csv(tmp_path, {"ID_00aa": {}}, extra=extra)
    image = extra[0].split(",")[0].rsplit("_", 1)[0]
    with pytest.raises(LabelError) as err:
        read_labels(path)
    assert isinstance(err.value, ValueError)
    assert needle in str(err.value) and image in str(err.value)


def test_read_labels_wrong_header(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("image,target\nID_00aa_any,0\n")
    with pytest.raises(LabelError, match="labels.csv"):
        read_labels(path)


@pytest.mark.parametrize("content, needle", [(b"", "empty file"), (bytes(range(256)) * 4, "not a CSV text file")])
def test_read_labels_empty_or_binary_file_names_the_file(tmp_path, content, needle):
    path = tmp_path / "stage_2_train.csv"
    path.write_bytes(content)
    with pytest.raises(LabelError, match=needle) as err:
        read_labels(path)
    assert str(path) in str(err.value)


def test_read_labels_counts_blank_lines_in_its_line_numbers(tmp_path):
    path = tmp_path / "stage_2_train.csv"
    rows = [f"ID_00aa_{name},0" for name in KAGGLE_ORDER]
    path.write_text("ID,Label\n" + "\n".join(rows[:3]) + "\n\n\n" + "\n".join(rows[3:]) + "\nID_00zz_any,0\n")
    with pytest.raises(LabelError, match="line 10: malformed ID 'ID_00zz_any'"):
        read_labels(path)
    path.write_text("ID,Label\n\n" + "\n".join(rows) + "\n\n")
    assert read_labels(path).loc["ID_00aa"].sum() == 0  # blank lines alone are no error


def test_read_labels_refuses_a_subtype_without_any(tmp_path):
    path = labels_csv(tmp_path, {"ID_00aa": {"any": 1, "subdural": 1}, "ID_00bb": {"subarachnoid": 1}})
    with pytest.raises(LabelError, match=r"line 13: ID_00bb has subarachnoid = 1 but any = 0"):
        read_labels(path)


def test_a_multi_frame_ct_is_refused_by_name_not_by_a_missing_attribute(tmp_path):
    from ichlib.rsna import read_header

    path = write_dicom(tmp_path / "enhanced.dcm", np.zeros((4, 4), np.int16), NumberOfFrames=3,
                       ImagePositionPatient=None)
    with pytest.raises(DicomError, match="multi-frame .*3 frames") as err:
        read_header(path)
    assert "AttributeError" not in str(err.value)
    path = write_dicom(tmp_path / "noplace.dcm", np.zeros((4, 4), np.int16), ImagePositionPatient=None)
    with pytest.raises(DicomError, match="lacks ImagePositionPatient"):
        read_header(path)
    text = tmp_path / "notes.dcm"
    text.write_text("hello")
    with pytest.raises(DicomError, match="not a DICOM file") as err:
        read_header(text)
    assert "force=True" not in str(err.value)


# ------------------------------------------------------------------------------------------------ HU
def test_read_hu_unsigned_with_intercept(ct_file):
    stored = np.array([[1024, 0], [1064, 2524]], np.uint16)
    hu = read_hu(ct_file(stored, BitsStored=12))
    assert hu.dtype == np.float32
    np.testing.assert_array_equal(hu, [[0, -1024], [40, 1500]])


def test_read_hu_signed(ct_file):
    stored = np.array([[-1000, 0], [30, 1200]], np.int16)
    hu = read_hu(ct_file(stored, RescaleIntercept=0))
    np.testing.assert_array_equal(hu, stored)


def test_read_hu_slope_and_intercept(ct_file):
    stored = np.array([[0, 10], [100, 1000]], np.uint16)
    hu = read_hu(ct_file(stored, RescaleSlope=2, RescaleIntercept=-1000))
    np.testing.assert_array_equal(hu, stored * 2.0 - 1000)


def test_read_hu_multivalued_tags_take_first_value(ct_file):
    stored = np.array([[100, 200]], np.uint16)
    hu = read_hu(ct_file(stored, RescaleSlope=[0.5, 1], RescaleIntercept=[-100, 0], WindowCenter=[40, 400]))
    np.testing.assert_array_equal(hu, [[-50, 0]])


def test_read_hu_without_rescale_tags_is_raw(ct_file):
    stored = np.array([[5, -7]], np.int16)
    hu = read_hu(ct_file(stored, RescaleSlope=None, RescaleIntercept=None))
    np.testing.assert_array_equal(hu, [[5, -7]])


def test_read_hu_fixes_12bit_unsigned_fault(ct_file):
    # Signed 12-bit values stored as unsigned: air (-1000) reads 3096, brain 30 reads 30, bone 1500 reads 1500.
    stored = np.array([[3096, 30], [1500, 4095]], np.uint16)
    hu = read_hu(ct_file(stored, BitsStored=12, PixelRepresentation=0, RescaleIntercept=0))
    np.testing.assert_array_equal(hu, [[-1000, 30], [1500, -1]])


def test_read_hu_padding_becomes_air(ct_file):
    stored = np.array([[-2000, 1054], [-2000, 1024]], np.int16)
    hu = read_hu(ct_file(stored, PixelPaddingValue=-2000))
    np.testing.assert_array_equal(hu, [[-1000, 30], [-1000, 0]])


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless])
def test_read_hu_decodes_compressed(ct_file, tmp_path, syntax):
    import pydicom

    rng = np.random.default_rng(0)
    stored = rng.integers(0, 2500, (32, 32)).astype(np.uint16)
    path = ct_file(stored, BitsStored=16)
    ds = pydicom.dcmread(path)
    ds.compress(syntax, encoding_plugin="pylibjpeg" if syntax == JPEG2000Lossless else "pydicom")
    compressed = tmp_path / "compressed.dcm"
    ds.save_as(compressed)
    assert pydicom.dcmread(compressed).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(read_hu(compressed), stored.astype(np.float32) - 1024)


@pytest.mark.parametrize("tags", [
    dict(),                                                                     # unsigned, intercept -1024
    dict(RescaleSlope=2, RescaleIntercept=-1000),
    dict(BitsStored=12, PixelRepresentation=0, RescaleIntercept=0),             # the 12-bit fault
])
def test_shrink_to_is_the_area_average_of_the_full_slice(ct_file, tags):
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 4000, (32, 32)).astype(np.uint16)
    path = ct_file(stored, **tags)
    full = read_hu(path)
    np.testing.assert_allclose(read_hu(path, shrink_to=8), full.reshape(8, 4, 8, 4).mean(axis=(1, 3)), atol=1e-3)
    assert read_hu(path, shrink_to=12).shape == (32, 32)  # not a power-of-two factor: the whole slice


def test_shrink_to_turns_padding_into_air_first(ct_file):
    stored = np.full((4, 4), 1054, np.int16)  # 30 HU
    stored[:2, :2] = -2000
    hu = read_hu(ct_file(stored, PixelPaddingValue=-2000), shrink_to=2)
    np.testing.assert_allclose(hu, [[-1000, 30], [30, 30]])


# ------------------------------------------------------------------------------------------------ bad files
def test_not_dicom(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("this is a radiology report, not an image\n" * 20)
    with pytest.raises(DicomError, match="notes.dcm.*not a DICOM"):
        read_hu(path)


def test_truncated_header(ct_file):
    path = ct_file(np.zeros((8, 8), np.uint16), name="ID_cut.dcm")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DicomError, match="ID_cut.dcm"):
        read_hu(path)


def test_truncated_pixel_data(ct_file):
    path = ct_file(np.zeros((64, 64), np.uint16), name="ID_half.dcm")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4000])
    with pytest.raises(DicomError, match="ID_half.dcm"):
        read_hu(path)


def test_truncated_to_the_first_tags(ct_file):
    # the corrupt RSNA file: a preamble and a few tags, then nothing
    path = ct_file(np.zeros((8, 8), np.uint16), name="ID_6431af929.dcm")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DicomError, match="ID_6431af929.dcm.*truncated"):
        read_hu(path)


def test_no_pixel_data(ct_file):
    path = ct_file(np.zeros((4, 4), np.uint16), name="ID_header_only.dcm", pixel_data=False)
    with pytest.raises(DicomError, match="ID_header_only.dcm: no pixel data"):
        read_hu(path)


def test_not_ct(ct_file):
    path = ct_file(np.zeros((4, 4), np.uint16), name="ID_mr.dcm", modality="MR")
    with pytest.raises(DicomError, match="ID_mr.dcm: not CT"):
        read_hu(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_hu(tmp_path / "absent.dcm")


# ------------------------------------------------------------------------------------------------ real CT
def test_real_head_ct_brain_in_range():
    hu = read_hu(pydicom_data_file("693_UNCR.dcm"))
    assert hu.shape == (512, 512)
    soft = hu[(hu > 0) & (hu < 80)]
    assert 20 <= np.median(soft) <= 45
    assert hu.min() >= -1024  # the -2000 padding became air


def test_real_jpeg2000_ct_decodes_to_the_uncompressed_twin():
    compressed = read_hu(pydicom_data_file("693_J2KR.dcm"))
    np.testing.assert_array_equal(compressed, read_hu(pydicom_data_file("693_UNCR.dcm")))


def test_real_head_ct_with_multivalued_window():
    hu = read_hu(pydicom_data_file("J2K_pixelrep_mismatch.dcm"))
    soft = hu[(hu > 0) & (hu < 80)]
    assert 20 <= np.median(soft) <= 45


# ------------------------------------------------------------------------------------------------ index
def _series(tmp_path, n_series=2, per_series=3, bad=True):
    rng = np.random.default_rng(1)
    written = []
    for s in range(n_series):
        zs = rng.permutation(np.arange(per_series) * 5.0 + 100 * s)
        for k, z in enumerate(zs):
            image_id = f"ID_{s:02x}{k:07x}"
            write_dicom(tmp_path / f"{image_id}.dcm", np.full((8, 8), 1024, np.uint16), image_id=image_id,
                        series=f"ID_series{s}", z=float(z), InstanceNumber=k + 1)
            written.append((image_id, f"ID_series{s}", z))
    if bad:
        (tmp_path / "ID_6431af929.dcm").write_bytes(b"\0" * 50)
    (tmp_path / "README.txt").write_text("not a slice")
    return written


def test_index_reads_headers_orders_by_z_and_lists_failures(tmp_path):
    written = _series(tmp_path)
    index, failures = index_dicoms(tmp_path, workers=1, progress=False)
    assert len(index) == len(written)
    assert [p for p, _ in failures] == [str(tmp_path / "ID_6431af929.dcm")]
    assert "ID_6431af929.dcm" in failures[0][1]
    assert {"patient", "study", "series", "z", "rows", "columns", "path", "rank"} <= set(index.columns)
    for _, group in index.groupby("series"):
        assert group.sort_values("z")["rank"].tolist() == list(range(len(group)))
    assert index.loc[written[0][0], "z"] == written[0][2]


def test_index_in_parallel_equals_serial(tmp_path):
    _series(tmp_path, n_series=4, per_series=18)
    serial, f1 = index_dicoms(tmp_path, workers=1, progress=False)
    parallel, f2 = index_dicoms(tmp_path, workers=2, progress=False)
    pd.testing.assert_frame_equal(serial, parallel)
    assert f1 == f2


def test_index_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        index_dicoms(tmp_path / "nowhere")


def test_neighbours_repeat_the_slice_at_series_ends(tmp_path):
    _series(tmp_path, n_series=2, per_series=3, bad=False)
    index, _ = index_dicoms(tmp_path, workers=1, progress=False)
    near = neighbours(index)
    for _, group in index.groupby("series"):
        ids = group.sort_values("z").index.tolist()
        assert near.loc[ids[0], "prev"] == ids[0] and near.loc[ids[-1], "next"] == ids[-1]
        assert near.loc[ids[1], "prev"] == ids[0] and near.loc[ids[1], "next"] == ids[2]


def test_index_skips_what_is_not_a_file_without_hanging(tmp_path):
    """A FIFO named like a slice (a read of it would wait forever) and a folder named *.dcm are listed as
    failures; the slices beside them are indexed."""
    written = _series(tmp_path, n_series=1, per_series=2, bad=False)
    os.mkfifo(tmp_path / "ID_fifo00001.dcm")
    (tmp_path / "ID_folder0001.dcm").mkdir()
    index, failures = index_dicoms(tmp_path, workers=1, progress=False)
    assert len(index) == len(written)
    assert sorted(p for p, _ in failures) == sorted(str(tmp_path / n) for n in ("ID_fifo00001.dcm", "ID_folder0001.dcm"))
    assert all("not a regular file" in reason for _, reason in failures)


def test_a_slice_declaring_a_huge_image_is_refused_before_decoding(tmp_path):
    """A small RLE file may declare 8192 x 8192 pixels (1.3 GB once decoded): refused from its header."""
    import pydicom

    path = write_dicom(tmp_path / "ID_huge00001.dcm", np.zeros((8, 8), np.int16), image_id="ID_huge00001")
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = 8192  # the header's claim; the 128 bytes of pixel data are never decoded
    ds.save_as(path)
    with pytest.raises(DicomError, match="declares 8192 x 8192 pixels.*not decoded"):
        read_hu(path)


@pytest.mark.parametrize("tags, message", [({"RescaleSlope": 0, "PixelPaddingValue": 0}, "cannot map the pixels"),
                                           ({"RescaleSlope": 0}, "cannot map the pixels"),
                                           ({"RescaleSlope": 1.5}, "not numbers")])
def test_a_slope_that_cannot_map_pixels_to_hu_is_refused_by_name(tmp_path, tags, message):
    """A slope of 0 would read every slice as one value (a blank image, "no bleed"); with padding it divided
    by zero. Both, and a slope that is text, are refused naming the file."""
    path = write_dicom(tmp_path / "ID_slope0001.dcm", np.full((8, 8), 1000, np.int16), image_id="ID_slope0001",
                       **tags)
    if message == "not numbers":  # pydicom will not write text as a number: put it into the file's bytes
        content = path.read_bytes()
        assert content.count(b"1.5 ") == 1
        path.write_bytes(content.replace(b"1.5 ", b"abcd"))
    with pytest.raises(DicomError, match=f"ID_slope0001.dcm.*{message}"):
        read_hu(path)
