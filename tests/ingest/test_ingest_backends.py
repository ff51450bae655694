"""The same shared data imported into SQLite and PostgreSQL gives the same record."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from medtwin.export import patient_bundle
from medtwin.ingest import import_paths
from medtwin.store.sql import SqlStore
from medtwin.store.summary import patient_summary


def _content(store: SqlStore) -> Counter[tuple[str, str, str]]:
    return Counter(
        (s.fact.kind, s.fact.source_id, s.content_hash)
        for s in store.iter_facts(include_raw=False, derived=True)
    )


def test_shared_data_on_both_backends(store: SqlStore, shared: Path) -> None:
    paths = [
        *sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[:8],
        shared / "fhir" / "uscore",
        shared / "fhir" / "bulk-10-patients",
        shared / "hl7v2",
    ]
    report = import_paths(store, paths)
    counts = store.counts()
    assert counts["patients"] == report.counts["patients_created"]
    assert counts["patients"] >= 8 + 3 + 13
    # the invalid uscore elements and the bulk export log are in quarantine, with reasons
    open_entries = store.quarantine()
    assert any("effectivePeriod.stop" in (e.item.field or "") for e in open_entries)
    assert any((e.item.file or "").endswith("log.ndjson") for e in open_entries)
    # re-import: nothing new
    before = _content(store)
    again = import_paths(store, paths[:-1])
    assert again.counts["inserted"] == 0 and again.counts["new_versions"] == 0
    assert _content(store) == before
    # reads work the same way
    first = orjson.loads(paths[0].read_bytes())["entry"][0]["resource"]
    assert first["resourceType"] == "Patient"
    pid = store.resolve_patient(first["id"])
    summary = patient_summary(store, pid)
    assert summary["vital_signs"] and summary["name"]
    bundle = patient_bundle(store, pid)
    assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"


def test_backends_agree(shared: Path, tmp_path: Path, pg_url: str) -> None:
    from medtwin.store import open_store

    files = sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[:5]
    sqlite = open_store(str(tmp_path / "a.db"), actor="test")
    postgres = open_store(pg_url, actor="test")
    import_paths(sqlite, files)
    import_paths(postgres, files)
    assert _content(sqlite) == _content(postgres)
    family = sqlite.patients(limit=1)[0].family
    a = sqlite.patients(search=family)[0]
    b = postgres.patients(search=family)[0]
    assert (a.family, a.given, a.birth_date) == (b.family, b.given, b.birth_date)
    ta = [
        (s.fact.source_id, s.fact.effective_start) for s in sqlite.timeline(a.id, codes=["8480-6"])
    ]
    tb = [
        (s.fact.source_id, s.fact.effective_start)
        for s in postgres.timeline(b.id, codes=["8480-6"])
    ]
    assert ta == tb and ta
    sqlite.close()
    postgres.close()
