"""ichlib.present: short labels, rounding by interval, numbered tables that fit, figures, glued text."""

import numpy as np
import pandas as pd
import pytest

from ichlib import present


def test_short_labels_for_runs_lists_and_parentheses():
    assert present.short_label("densenet121-three_window-optimised") == "D121·3w·opt"
    assert present.short_label("efficientnetb2-baseline") == "EB2·base"  # the paper's rows
    assert present.short_label("resnet50-adjacent-baseline + densenet121-adjacent-optimised") == "R50·adj·base + D121·adj·opt"
    assert present.short_label("best single model (resnet50-adjacent-baseline)") == "best single model (R50·adj·base)"
    assert present.short_label("average of baseline") == "average of baseline"
    assert present.short_label("my-own-run") == "my-own-run"  # unknown parts: unchanged


@pytest.mark.parametrize("width, digits", [(0.06, 2), (0.053, 2), (0.16, 2), (0.02, 3), (0.006, 3), (0.4, 1),
                                           (3.0, 1), (0.0, 3), (float("nan"), 3)])
def test_digits_follow_the_interval(width, digits):
    assert present.digits_for(width) == digits


def test_value_with_interval():
    assert present.with_interval(0.8654, 0.837, 0.898) == "0.87 (95 % CI 0.84–0.90)"
    assert present.with_interval(0.8654, 0.8641, 0.8672) == "0.865 (95 % CI 0.864–0.867)"
    assert present.with_interval(float("nan"), 0, 1) == "undefined"


def test_table_is_a_numbered_myst_table_with_short_labels_and_legends():
    frame = pd.DataFrame({"AUC subdural": [0.8612, np.nan], "n": [3, 12000], "note": ["a|b", "x"]},
                         index=["densenet121-three_window-optimised", "average of baseline"])
    shown = present.table(frame, "tbl-demo", "A caption.", digits=2)
    md = shown._repr_markdown_()
    assert md.startswith("::::{table} A caption. Run labels: EB2 EfficientNetB2")
    assert "Labels: EDH epidural" in md.splitlines()[0]
    assert ":name: tbl-demo" in md
    assert "|   | AUC SDH | n | note |" in md
    assert "| --- | ---: | ---: | --- |" in md
    assert "| D121·3w·opt | 0.86 | 3 | a\\|b |" in md  # a pipe in a cell cannot end it
    assert "| average of baseline | – | 12,000 | x |" in md
    html = shown._repr_html_()
    assert "<caption>A caption." in html and "a|b" in html


def test_table_adds_no_legend_it_does_not_need_and_checks_its_name():
    md = present.table(pd.DataFrame({"x": [1.0]}, index=["train"]), "tbl-plain", "Plain.")._repr_markdown_()
    assert md.splitlines()[0] == "::::{table} Plain."
    with pytest.raises(ValueError, match="tbl-"):
        present.table(pd.DataFrame({"x": [1.0]}), "Table 1", "Bad name.")


def test_html_form_escapes_markup():
    html = present.table(pd.DataFrame({"x": ["<script>"]}), "tbl-x", "c")._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_beside_paper_puts_the_papers_row_under_ours():
    table = pd.DataFrame({"accuracy": [0.8, 0.9], "F1": [0.2, 0.3], "recall": [0.4, 0.5], "precision": [0.1, 0.2],
                          "AUC": [0.85, 0.86], "AUC any": [0.84, 0.88], "RSNA log loss": [0.3, 0.25],
                          "paper accuracy": [0.92, np.nan], "paper F1": [0.65, np.nan], "paper recall": [0.5, np.nan],
                          "paper precision": [0.88, np.nan], "paper AUC": [0.75, np.nan]},
                         index=["efficientnetb2-baseline", "best combination"])
    long = present.beside_paper(table)
    assert list(long["row"]) == ["efficientnetb2-baseline", "", "best combination"]
    assert list(long["from"]) == ["ours", "paper", "ours"]
    assert long.iloc[1]["accuracy"] == 0.92 and np.isnan(long.iloc[1]["AUC any"])
    assert list(long.columns) == ["row", "from", "accuracy", "F1", "recall", "precision", "AUC", "AUC any",
                                  "RSNA log loss"]
    md = present.table(long, "tbl-t6", "Table 6.", digits=2, index=False)._repr_markdown_()
    assert "| EB2·base | ours | 0.80 |" in md and "Run labels: EB2 EfficientNetB2" in md.splitlines()[0]


def test_headline_puts_the_interval_beside_the_auc():
    labels = pd.DataFrame({"accuracy": [0.9], "AUC": [0.8654], "AUC 95% low": [0.837], "AUC 95% high": [0.898],
                           "positives": [369.0]}, index=["any"])
    out = present.headline_table(labels)
    assert list(out.columns) == ["AUC (95 % CI)", "accuracy", "positives"]
    assert out.at["any", "AUC (95 % CI)"] == "0.87 (0.84–0.90)" and out.at["any", "positives"] == 369


def test_figure_points_at_its_image_from_the_page(tmp_path):
    image = tmp_path / "generated" / "app" / "shot.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    shown = present.Figure(image, "fig-app-start", "The Start page.", tmp_path / "chapters")
    md = shown._repr_markdown_()
    assert md.startswith("::::{figure} ../generated/app/shot.png\n:name: fig-app-start")
    assert "The Start page." in md and "<figcaption>The Start page.</figcaption>" in shown._repr_html_()
    with pytest.raises(ValueError, match="fig-"):
        present.Figure(image, "Figure 1", "x", tmp_path)


def test_glued_text_has_no_quotes():
    assert repr(present.Text("0.87 (95 % CI 0.84–0.90)")) == "0.87 (95 % CI 0.84–0.90)"


def test_multi_level_headers_and_index_become_plain_columns():
    frame = pd.DataFrame([[0.5, 1.25]], columns=pd.MultiIndex.from_tuples([("brain", "contrast"), ("brain", "cnr")]),
                         index=pd.MultiIndex.from_tuples([("693.dcm", "resnet50-adjacent-baseline")],
                                                         names=["file", "model"]))
    md = present.table(frame, "tbl-multi", "Multi.", digits=2)._repr_markdown_()
    assert "| file | model | brain contrast | brain cnr |" in md
    assert "| 693.dcm | R50·adj·base | 0.50 | 1.25 |" in md


def test_window_headers_can_stay():
    frame = pd.DataFrame({"subdural cnr": [1.0]}, index=["epidural"])
    md = present.table(frame, "tbl-w", "Windows.", short_columns=False)._repr_markdown_()
    assert "subdural cnr" in md and "Labels:" not in md


def test_columns_can_be_rounded_apart():
    frame = pd.DataFrame({"train s": [58.1], "AUC subdural": [0.8734]}, index=["densenet121-adjacent-baseline"])
    md = present.table(frame, "tbl-r", "Runs.", digits=3, column_digits={"train s": 1, "AUC subdural": 2})._repr_markdown_()
    assert "| D121·adj·base | 58.1 | 0.87 |" in md


def test_a_method_is_shown_from_its_own_code():
    from ichlib import gradcam

    shown = present.source(gradcam._score, gradcam._cam).data
    assert shown.startswith("```python\ndef _score(") and shown.rstrip().endswith("```")
    assert "ops.mean(g, axis=(1, 2)" in shown and "ops.relu(" in shown  # the weights and the positive part


def test_an_interval_is_one_column_where_its_value_stood():
    frame = pd.DataFrame({"n": [200], "pointing game": [0.25], "pointing game low": [0.19], "pointing game high": [0.31],
                          "energy": [0.1]}, index=["D121"])
    out = present.interval_column(frame, "pointing game", "pointing game low", "pointing game high")
    assert list(out.columns) == ["n", "pointing game (95 % CI)", "energy"]
    assert out.at["D121", "pointing game (95 % CI)"] == present.with_interval(0.25, 0.19, 0.31, prefix="")
