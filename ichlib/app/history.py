"""The reader app's history: every analysis, in one SQLite file under the app's data folder.

Each report is written in one transaction (SQLite's journal in WAL mode), so a crash mid-write leaves every
earlier report as it was and no half-written one. A report keeps only what the history page shows: when, the
study and patient IDs, how many slices, which models, the study's six probabilities, the slices flagged per
label and how long it took; no pixel data and no other tag.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..labels import LABELS

COLUMNS = ("id", "created", "study", "patient", "slices", "models", "seconds",
           *(f"p({label})" for label in LABELS), *(f"flagged {label}" for label in LABELS))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    study TEXT NOT NULL,
    patient TEXT NOT NULL,
    slices INTEGER NOT NULL,
    models TEXT NOT NULL,
    seconds REAL NOT NULL,
    study_probs TEXT NOT NULL,
    flagged TEXT NOT NULL
)
"""


class History:
    """``add`` a report, ``table`` of all, ``get`` one, ``delete`` one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
        for private in (self.path, self.path.with_name(self.path.name + "-wal"),
                        self.path.with_name(self.path.name + "-shm")):
            if private.exists():
                os.chmod(private, 0o600)  # patient IDs: this user's only

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def add(self, report) -> int:
        """Store an ``ichlib.app.service.Report``; returns its id."""
        flagged = report.flagged.sum(axis=0).astype(int).to_dict()
        row = (datetime.now(timezone.utc).isoformat(timespec="seconds"), report.details.get("study UID", ""),
               report.details.get("patient ID", ""), len(report.ids), json.dumps(report.models),
               round(float(report.seconds), 2), json.dumps(report.study_probs.round(4).to_dict()), json.dumps(flagged))
        db = self._connect()
        try:
            with db:  # one transaction: all of the row or none of it
                cursor = db.execute("INSERT INTO reports (created, study, patient, slices, models, seconds, "
                                    "study_probs, flagged) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            return int(cursor.lastrowid)
        finally:
            db.close()

    def table(self) -> pd.DataFrame:
        """Every report, newest first, in :data:`COLUMNS`."""
        db = self._connect()
        try:
            raw = pd.read_sql_query("SELECT * FROM reports ORDER BY id DESC", db)
        finally:
            db.close()
        return pd.DataFrame([self._flat(r) for r in raw.to_dict("records")], columns=list(COLUMNS))

    @staticmethod
    def _flat(record: dict) -> dict:
        """One stored row as a table row; a row whose stored values cannot be read shows what can be (its id,
        date, study) with the rest empty, instead of hiding every other report."""
        try:
            probs, flagged = json.loads(record.pop("study_probs")), json.loads(record.pop("flagged"))
            record["models"] = ", ".join(json.loads(record["models"]))
            if not isinstance(probs, dict) or not isinstance(flagged, dict):
                raise ValueError("not a mapping")
        except (TypeError, ValueError):
            record["models"] = "(this report's stored values cannot be read)"
            return {key: record.get(key) for key in ("id", "created", "study", "patient", "slices", "models",
                                                     "seconds")}
        return {**record, **{f"p({k})": v for k, v in probs.items()}, **{f"flagged {k}": v for k, v in flagged.items()}}

    def get(self, report_id: int) -> dict:
        """One report as a dict of :data:`COLUMNS`; KeyError if there is none with that id."""
        table = self.table()
        match = table[table["id"] == int(report_id)]
        if match.empty:
            raise KeyError(f"no report {report_id} in {self.path}")
        return match.iloc[0].to_dict()

    def delete(self, report_id: int) -> bool:
        """Remove one report; False if there was none with that id."""
        db = self._connect()
        try:
            with db:
                cursor = db.execute("DELETE FROM reports WHERE id = ?", (int(report_id),))
            return cursor.rowcount > 0
        finally:
            db.close()
