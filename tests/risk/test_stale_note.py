"""A record whose measurements end long before the date asked (a Synthea record read today):
``medtwin risk`` says which scores its stale inputs block and where to look instead."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.ingest import import_paths
from medtwin.risk.from_record import evaluate, stale_note
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

TODAY = dt.date(2026, 12, 7)


@pytest.fixture
def synthea(shared: Path, tmp_path: Path) -> SqlStore:
    folder = shared / "fhir" / "synthea-r4"
    paths = [
        next(folder.glob(name + "_*.json"))
        for name in ("Derek_Becker", "Dedra_Bergnaum", "Christopher_Abshire")
    ]
    store = open_store(str(tmp_path / "s.db"), actor="test")
    import_paths(store, paths)
    return store


def _pid(store: SqlStore, name: str) -> str:
    return next(p.id for p in store.patients() if p.name == name)


def test_the_newest_stale_date_is_offered_when_it_computes_them(synthea: SqlStore) -> None:
    """Derek Becker's last measurements are of 2020-04-22: at that date the 8 blocked scores
    compute, so the note offers it."""
    pid = _pid(synthea, "Derek Becker")
    report = evaluate(synthea, pid, TODAY)
    blocked = [s.name for s in report.scores if s.status == "missing"]
    assert len(blocked) == 8
    note = stale_note(synthea, report)
    assert note == (
        "8 score(s) cannot be computed, 8 of the inputs they read being stale at 2026-12-07 "
        "(the newest from 2020-04-22): --date 2020-04-22 gives the risk as the record stood "
        "then (8 of them computed)"
    )
    then = evaluate(synthea, pid, dt.date(2020, 4, 22), scores=blocked)
    assert all(s.status in ("computed", "range") for s in then.scores)
    assert stale_note(synthea, then) is None


def test_history_is_offered_when_that_date_does_not_help(synthea: SqlStore) -> None:
    """Dedra Bergnaum's lipids at her newest stale date (2020-07-29) are from 2017: no date of
    one measurement computes them, so the note points to --history."""
    report = evaluate(synthea, _pid(synthea, "Dedra Bergnaum"), TODAY)
    note = stale_note(synthea, report)
    assert note is not None and note.endswith(
        "--history shows the risk at each past year of the record"
    )
    assert "(the newest from 2020-07-29)" in note


def test_no_note_without_a_stale_input(synthea: SqlStore) -> None:
    pid = _pid(synthea, "Derek Becker")
    assert stale_note(synthea, evaluate(synthea, pid, dt.date(2020, 4, 22))) is None


def test_the_command_prints_it(synthea: SqlStore) -> None:
    pid = _pid(synthea, "Derek Becker")
    url = synthea.url
    args = ["risk", pid, "--store", url, "--date", TODAY.isoformat(), "--no-save"]
    text = CliRunner().invoke(main, args).output
    assert "\nNote: 8 score(s) cannot be computed" in text and "--date 2020-04-22" in text
    data = orjson.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    assert data["stale_note"].endswith("(8 of them computed)")
