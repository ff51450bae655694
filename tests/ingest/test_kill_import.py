"""Kill the import process (SIGKILL) halfway: the store stays consistent and a re-run completes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medtwin.export import write_bulk_ndjson
from medtwin.ingest import import_paths
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

MEDTWIN = Path(sys.executable).with_name("medtwin")


def fact_keys(store: SqlStore) -> set[tuple[str, str]]:
    return {
        (s.fact.source_id, s.content_hash)
        for s in store.iter_facts(include_raw=False, derived=True)
    }


def _facts_now(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM facts").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_halfway_then_rerun(shared: Path, tmp_path: Path) -> None:
    # a Bulk NDJSON folder of all 100 Synthea patients (29,214 resources), written by medtwin's export
    source = open_store(str(tmp_path / "source.db"), actor="test")
    import_paths(source, [shared / "fhir" / "synthea-r4"])
    bulk = tmp_path / "bulk"
    write_bulk_ndjson(source, bulk)
    expected = fact_keys(source)
    source.close()

    db = tmp_path / "killed.db"
    process = subprocess.Popen(
        [str(MEDTWIN), "import", str(bulk), "--store", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _facts_now(db) < 4000 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "import finished before it could be killed: make the data bigger"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = _facts_now(db)
    assert 0 < partial < len(expected)
    # the import's worker processes died with it: nothing more is written
    time.sleep(1.0)
    assert _facts_now(db) == partial

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # no resource is half-written: every blood-pressure panel has both its components
    panels = conn.execute(
        "SELECT source_id FROM facts WHERE code IN ('55284-4', '85354-9') AND part_of IS NULL"
    ).fetchall()
    for (panel,) in panels:
        parts = conn.execute("SELECT COUNT(*) FROM facts WHERE part_of = ?", (panel,)).fetchone()[0]
        assert parts == 2, f"{panel} has {parts} components after the kill"
    conn.close()

    store = open_store(str(db), actor="test")
    report = import_paths(store, [bulk])
    assert report.counts["inserted"] == len(expected) - partial
    assert report.counts["new_versions"] == 0
    assert fact_keys(store) == expected
    # one current version per fact: no duplicates
    rows = store.conn.execute(
        "SELECT source, source_id, COUNT(*) FROM facts WHERE superseded_at IS NULL "
        "GROUP BY source, source_id HAVING COUNT(*) > 1"
    ).fetchall()
    assert rows == []
    assert store.quarantine() == []
    # the job log shows the killed import as interrupted (its process is gone) and the re-run as done
    jobs = store.jobs()
    assert [j["status"] for j in jobs[:2]] == ["done", "interrupted"]  # the killed import
    assert jobs[0]["detail"]["inserted"] == len(expected) - partial
    store.close()
