"""ichlib.app.history: add, list, open, delete; a crash mid-write loses nothing older; nothing stored beyond the page."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from ichlib.app.service import Report
from ichlib.app.history import COLUMNS, History


def report(study="ID_study1", patient="ID_patient1"):
    probs = np.array([[0.9, 0.1, 0.2, 0.1, 0.1, 0.8], [0.2, 0.1, 0.1, 0.1, 0.1, 0.1]])
    return Report(["ID_a", "ID_b"], np.array([0.0, 5.0]), probs, np.full(6, 0.5), ["run-1"], 1.5,
                  {"study UID": study, "patient ID": patient, "sex": "F", "age": "070Y"})


def test_add_table_get_delete(tmp_path):
    history = History(tmp_path / "h.sqlite")
    first, second = history.add(report()), history.add(report("ID_study2"))
    table = history.table()
    assert list(table.columns) == list(COLUMNS) and list(table["id"]) == [second, first]
    row = history.get(first)
    assert row["study"] == "ID_study1" and row["p(any)"] == pytest.approx(0.9) and row["flagged subdural"] == 1
    assert history.delete(first) and not history.delete(first)
    with pytest.raises(KeyError, match=str(first)):
        history.get(first)
    assert list(History(tmp_path / "h.sqlite").table()["id"]) == [second]  # durable across openings


def test_only_what_the_page_shows_is_stored(tmp_path):
    History(tmp_path / "h.sqlite").add(report())
    with sqlite3.connect(tmp_path / "h.sqlite") as db:
        stored = {row[1] for row in db.execute("PRAGMA table_info(reports)")}
        text = " ".join(str(v) for row in db.execute("SELECT * FROM reports") for v in row)
    assert stored == {"id", "created", "study", "patient", "slices", "models", "seconds", "study_probs", "flagged"}
    assert "070Y" not in text and "ID_a" not in text  # age, sex and slice IDs are shown live, never kept


CRASH = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("BEGIN")
db.execute("INSERT INTO reports (created, study, patient, slices, models, seconds, study_probs, flagged) "
           "VALUES ('now', 'ID_half', 'p', 1, '[]', 0, '{}', '{}')")
os._exit(1)  # the process dies mid-transaction
"""


def test_a_crash_mid_write_loses_nothing_older(tmp_path):
    path = tmp_path / "h.sqlite"
    history = History(path)
    kept = history.add(report())
    assert subprocess.run([sys.executable, "-c", CRASH, str(path)]).returncode == 1
    table = History(path).table()
    assert list(table["id"]) == [kept] and "ID_half" not in set(table["study"])


def test_one_unreadable_row_does_not_hide_the_others(tmp_path):
    import sqlite3

    from ichlib.app.history import History

    history = History(tmp_path / "history.sqlite")
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        db.execute("INSERT INTO reports (created, study, patient, slices, models, seconds, study_probs, flagged) "
                   "VALUES ('2026-01-01', 'S1', 'P1', 3, '[\"m\"]', 1.0, '{broken', '{}')")
        db.execute("INSERT INTO reports (created, study, patient, slices, models, seconds, study_probs, flagged) "
                   "VALUES ('2026-01-02', 'S2', 'P2', 4, '[\"m\"]', 1.0, '{\"any\": 0.5}', '{\"any\": 1}')")
    table = history.table()
    assert list(table["study"]) == ["S2", "S1"]
    assert table.loc[table["study"] == "S2", "p(any)"].iloc[0] == 0.5
    assert "cannot be read" in table.loc[table["study"] == "S1", "models"].iloc[0]
