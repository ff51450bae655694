"""Bundles imported by worker processes (runs of files, one transaction per run) give the
same store as importing them one by one in this process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from medtwin.ingest import _chunks, _ndjson_parts, import_paths
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


# -- Bulk Data NDJSON in parts -------------------------------------------------------------------


def test_ndjson_parts_end_at_line_ends_and_number_the_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    lines = [b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * (i % 37)) for i in range(500)]
    path.write_bytes(b"".join(lines)[:-1])  # no newline after the last line
    parts = list(_ndjson_parts(path, 1000))
    assert len(parts) > 10
    data = path.read_bytes()
    assert parts[0][0] == 0 and parts[-1][1] == len(data)
    line = 1
    for (start, end, first), following in zip(parts, [*parts[1:], None], strict=True):
        assert first == line
        assert following is None or following[0] == end  # consecutive, nothing skipped
        assert following is None or data[end - 1 : end] == b"\n"
        chunk = data[start:end]
        assert chunk.split(b"\n")[0] == lines[first - 1].rstrip(b"\n")
        line += chunk.count(b"\n")
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    assert list(_ndjson_parts(empty)) == [(0, 0, 1)]


def bulk_with_faults(shared: Path, folder: Path) -> Path:
    """The 10-patient Bulk Data folder, its Encounter file with bad lines, a re-send and a
    correction spread through it; returns that file."""
    shutil.copytree(shared / "fhir" / "bulk-10-patients", folder, copy_function=shutil.copyfile)
    path = folder / "Encounter.000.ndjson"
    lines = path.read_bytes().splitlines(keepends=True)
    first = orjson.loads(lines[0])
    assert first["status"] != "cancelled"
    corrected = dict(first, status="cancelled")
    lines.insert(len(lines) // 3, b'{"resourceType": "Encounter", "id": broken\n')
    lines.insert(len(lines) // 2, b'{"resourceType": "Encounter", "id": "bad-\xff"}\n')
    lines.insert(2 * len(lines) // 3, lines[5])  # an identical re-send: unchanged
    lines.append(orjson.dumps(corrected) + b"\n")  # a correction at the end: a new version
    path.write_bytes(b"".join(lines))
    return path


def versions(store: SqlStore) -> set[tuple[str, int, str, bool]]:
    """Every stored version: source id, version number, content hash, whether current."""
    rows = store.conn.execute(
        "SELECT source_id, version, content_hash, superseded_at IS NULL FROM facts"
    ).fetchall()
    return {(r[0], r[1], r[2], bool(r[3])) for r in rows}


def quarantined(store: SqlStore) -> list[tuple[str | None, str | None, str]]:
    return sorted(
        (q.item.file and Path(q.item.file).name, q.item.location, q.item.reason)
        for q in store.quarantine()
    )


def test_ndjson_in_parts_stores_what_one_process_stores(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medtwin.ingest

    path = bulk_with_faults(shared, tmp_path / "bulk")
    monkeypatch.setattr(medtwin.ingest, "_NDJSON_PART_BYTES", 64 * 1024)  # many parts
    parts = list(_ndjson_parts(path))
    assert len(parts) >= 8
    seen: list[tuple[str, int]] = []

    def progress(file: Path, batch: Batch) -> None:
        seen.append((file.name, batch.resources_read))

    one = open_store(str(tmp_path / "one.db"), actor="test")
    many = open_store(str(tmp_path / "many.db"), actor="test")
    try:
        report_one = import_paths(one, [tmp_path / "bulk"], workers=0)
        report_many = import_paths(many, [tmp_path / "bulk"], workers=2, on_batch=progress)
        # the Encounter file went through the workers, one task per part
        assert sum(1 for name, _ in seen if name == path.name) == len(parts)
        assert report_many.counts == report_one.counts
        assert report_many.files == report_one.files
        assert report_one.counts["new_versions"] == 1 and report_one.counts["unchanged"] == 1
        assert versions(many) == versions(one)
        assert quarantined(many) == quarantined(one)
        locations = [loc for name, loc, _ in quarantined(one) if name == path.name]
        assert len(locations) == 2 and all(loc and loc.startswith("line ") for loc in locations)
        assert many.counts() == one.counts()
        # again: the same as again in one process (the file holds two versions of one
        # Encounter without lastUpdated in different parts, so each re-send stores both
        # once more, in order: docs/record.md)
        again_one = import_paths(one, [tmp_path / "bulk"], workers=0)
        again_many = import_paths(many, [tmp_path / "bulk"], workers=2)
        assert again_many.counts == again_one.counts
        assert again_many.counts["inserted"] == 0 and again_many.counts["new_versions"] == 2
        assert versions(many) == versions(one)
    finally:
        one.close()
        many.close()


def test_a_failing_part_stops_the_parts_after_it_and_a_rerun_completes(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medtwin.ingest
    from medtwin.ingest import fhir

    path = bulk_with_faults(shared, tmp_path / "bulk")
    monkeypatch.setattr(medtwin.ingest, "_NDJSON_PART_BYTES", 64 * 1024)
    parts = list(_ndjson_parts(path))
    real = fhir.read_ndjson_part
    failing = parts[3]

    def read(file: Path, part: tuple[int, int, int], **kwargs: Any) -> Iterator[Batch]:
        if file == path and part == failing:
            raise OSError(f"{file}: read error (injected)")
        return real(file, part, **kwargs)

    monkeypatch.setattr(fhir, "read_ndjson_part", read)  # the forked workers inherit it
    store = open_store(str(tmp_path / "faulty.db"), actor="test")
    reference = open_store(str(tmp_path / "reference.db"), actor="test")
    try:
        with pytest.raises(OSError, match="injected"):
            import_paths(store, [tmp_path / "bulk"], workers=2)
        # the files before the Encounter file and its first three parts are written,
        # nothing from the failing part on
        lines_before = parts[3][2] - 1
        encounters = store.conn.execute(
            "SELECT COUNT(DISTINCT source_id) FROM facts WHERE resource_type = 'Encounter'"
        ).fetchone()[0]
        assert 0 < encounters <= lines_before
        monkeypatch.setattr(fhir, "read_ndjson_part", real)
        import_paths(store, [tmp_path / "bulk"], workers=2)
        import_paths(reference, [tmp_path / "bulk"], workers=0)
        assert versions(store) == versions(reference)
        assert quarantined(store) == quarantined(reference)
    finally:
        store.close()
        reference.close()
