"""Bundles imported by worker processes (runs of files, one transaction per run) give the
same store as importing them one by one in this process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medtwin.ingest import _chunks, import_paths
from medtwin.record.batch import Batch
from medtwin.store import open_store
from medtwin.store.sql import SqlStore


def stored(store: SqlStore) -> set[tuple[str, str, str | None]]:
    rows = store.conn.execute(
        "SELECT source_id, content_hash, superseded_at FROM facts ORDER BY source_id"
    ).fetchall()
    return {(r[0], r[1], r[2]) for r in rows}


def test_runs_cover_every_file_in_order_and_end_with_single_files() -> None:
    files = [Path(f"{i:03}.json") for i in range(100)]
    runs = list(_chunks(files, 2))
    assert [f for run in runs for f in run] == files
    assert max(len(run) for run in runs) <= 6
    assert [len(run) for run in runs[-4:]] == [1, 1, 1, 1]
    assert list(_chunks(files[:3], 2)) == [[files[0]], [files[1]], [files[2]]]


def test_workers_store_what_one_process_stores(shared: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    for path in sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[:14]:
        shutil.copy(path, folder / path.name)
    seen: list[str] = []

    def progress(path: Path, batch: Batch) -> None:
        seen.append(path.name)

    one = open_store(str(tmp_path / "one.db"), actor="test")
    many = open_store(str(tmp_path / "many.db"), actor="test")
    try:
        report_one = import_paths(one, [folder], workers=0)
        report_many = import_paths(many, [folder], workers=2, on_batch=progress)
        assert report_many.counts == report_one.counts
        assert report_many.files == report_one.files == 14
        assert sorted(seen) == sorted(p.name for p in folder.iterdir())
        assert report_one.counts["inserted"] > 3000
        facts_one = {(sid, digest) for sid, digest, _ in stored(one)}
        facts_many = {(sid, digest) for sid, digest, _ in stored(many)}
        assert facts_many == facts_one
        again = import_paths(many, [folder], workers=2)
        assert again.counts["inserted"] == again.counts.get("new_versions", 0) == 0
        # shared resources (organisations ...) in several Bundles were already unchanged once
        first = report_one.counts
        assert again.counts["unchanged"] == first["inserted"] + first.get("unchanged", 0)
    finally:
        one.close()
        many.close()


def test_workers_hand_their_validator_shapes_to_the_importing_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shape only the workers validated (an Observation with its keys in an order nothing
    else uses) is compiled in the importing process after the import, so the workers of its
    next import are forked with it; the import is the same with or without it."""
    import orjson

    from medtwin.ingest import fhir_schema
    from medtwin.ingest.fhir_schema import _load, learned_shapes, validate_resource

    # other tests in this process (the seeded mutants) may have used up the compile limits,
    # beyond which shapes are walked, not compiled: lift them for this test (the workers,
    # forked from here, inherit them)
    monkeypatch.setattr(fhir_schema, "_COMPILED_MAX", 1_000_000)
    monkeypatch.setattr(fhir_schema, "_SHAPES_MAX", 1_000_000)

    keys = ("valueQuantity", "subject", "code", "status", "id", "resourceType")
    folder = tmp_path / "bundles"
    folder.mkdir()
    for n in range(4):  # four Bundles: enough for the worker processes
        observation = {
            "valueQuantity": {"value": 70 + n, "unit": "kg", "code": "kg",
                              "system": "http://unitsofmeasure.org"},
            "subject": {"reference": f"urn:uuid:p{n}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "status": "final",
            "id": f"o{n}",
            "resourceType": "Observation",
        }  # fmt: skip
        assert tuple(observation) == keys
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": f"urn:uuid:p{n}", "resource": {"resourceType": "Patient", "id": f"p{n}"}},
                {"fullUrl": f"urn:uuid:o{n}", "resource": observation},
            ],
        }  # fmt: skip
        (folder / f"{n}.json").write_bytes(orjson.dumps(bundle))
    observation_type = _load().resources["Observation"]
    assert keys not in observation_type.shapes
    learned_shapes()  # forget what this process compiled so far
    store = open_store(str(tmp_path / "medtwin.db"), actor="test")
    try:
        report = import_paths(store, [folder], workers=2)
    finally:
        store.close()
    assert report.counts["inserted"] == 8 and report.counts.get("quarantined", 0) == 0
    assert keys in observation_type.shapes  # compiled here, from the workers' list
    # and it is the checker the data needs: valid passes, a wrong value type does not
    assert (
        validate_resource(orjson.loads((folder / "0.json").read_bytes())["entry"][1]["resource"])
        == []
    )
    bad = dict(orjson.loads((folder / "1.json").read_bytes())["entry"][1]["resource"], status=3)
    assert [i.path for i in validate_resource(bad)] == ["Observation.status"]
