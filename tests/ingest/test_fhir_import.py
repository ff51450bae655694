"""FHIR R4 import of the shared data: Bundles, Bulk NDJSON, quarantine, idempotence, round trips."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from medtwin.export import ExportError, patient_bundle, write_bulk_ndjson
from medtwin.ingest import import_paths, retry_quarantine
from medtwin.record.facts import Demographics, Observation
from medtwin.store import open_store
from medtwin.store.base import StoredFact
from medtwin.store.sql import SqlStore


def fact_keys(store: SqlStore) -> set[tuple[str, str, str]]:
    return {
        (s.fact.kind, s.fact.source_id, s.content_hash)
        for s in store.iter_facts(include_raw=False, derived=True)
    }


@pytest.fixture(scope="module")
def synthea(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    """All 100 Synthea bundles imported once into SQLite."""
    path = tmp_path_factory.mktemp("synthea") / "medtwin.db"
    store = open_store(str(path), actor="test")
    report = import_paths(store, [shared / "fhir" / "synthea-r4"])
    store.first_report = report  # type: ignore[attr-defined]
    yield store
    store.close()


def test_synthea_imports_completely(synthea: SqlStore, shared: Path) -> None:
    report = synthea.first_report  # type: ignore[attr-defined]
    total = sum(
        len(orjson.loads(f.read_bytes())["entry"])
        for f in (shared / "fhir" / "synthea-r4").glob("*.json")
    )
    assert report.counts["resources_read"] == total == 29214
    assert report.counts["quarantined"] == 0
    counts = synthea.counts()
    assert counts["patients"] == 100
    assert counts["quarantine_open"] == 0
    kinds = Counter(s.fact.resource_type for s in synthea.iter_facts(include_raw=False))
    # every resource is kept, modelled or not (Claim, ExplanationOfBenefit ...)
    assert kinds["Observation"] == 12899
    assert kinds["Claim"] == 3523 and kinds["ExplanationOfBenefit"] == 2829
    assert kinds["Patient"] == 100
    # Practitioners and Organizations repeat across bundles: stored once each
    assert kinds["Practitioner"] + report.counts["unchanged"] >= 164


def test_reimport_is_a_noop(synthea: SqlStore, shared: Path) -> None:
    before = fact_keys(synthea)
    report = import_paths(synthea, [shared / "fhir" / "synthea-r4"])
    assert report.counts["inserted"] == 0 and report.counts["new_versions"] == 0
    assert report.counts["unchanged"] > 29000
    assert fact_keys(synthea) == before


def test_blood_pressure_components_are_facts(synthea: SqlStore) -> None:
    patient = synthea.patients(limit=1)[0]
    systolic = synthea.timeline(patient.id, codes=["8480-6"])
    assert systolic, "BP panel components must be queryable by their own LOINC code"
    fact = systolic[0].fact
    assert isinstance(fact, Observation)
    assert fact.unit == "mm[Hg]" and fact.part_of is not None and 50 < (fact.value_num or 0) < 250


def test_references_are_rewritten_to_literal(synthea: SqlStore) -> None:
    patient = synthea.patients(limit=1)[0]
    [stored] = synthea.timeline(patient.id, kinds=["Observation"], include_raw=True)[:1]
    raw = stored.fact.raw
    assert raw is not None
    assert raw["subject"]["reference"].startswith("Patient/")
    assert raw["encounter"]["reference"].startswith("Encounter/")


def test_patient_identity_and_demographics(synthea: SqlStore, shared: Path) -> None:
    file = sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[0]
    bundle = orjson.loads(file.read_bytes())
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    mt_id = synthea.resolve_patient(patient["id"])
    for ident in patient["identifier"]:
        assert synthea.resolve_patient(f"{ident['system']}|{ident['value']}") == mt_id
    summary = synthea.patient(mt_id)
    assert summary.birth_date == patient["birthDate"]
    assert summary.family == patient["name"][0]["family"]
    demo = synthea.timeline(mt_id, kinds=["Demographics"])[0].fact
    assert isinstance(demo, Demographics) and demo.gender == patient["gender"]


def test_uscore_invalid_elements_are_quarantined(shared: Path, sqlite_store: SqlStore) -> None:
    report = import_paths(sqlite_store, [shared / "fhir" / "uscore"])
    entries = sqlite_store.quarantine()
    by_type = {(e.item.resource_type, e.item.field) for e in entries}
    assert ("Observation", "Observation.effectivePeriod.stop") in {
        (t, f.split("[")[0] if f else f) for t, f in by_type
    } or any("effectivePeriod.stop" in (e.item.field or "") for e in entries)
    assert any(
        "content.link" in (e.item.field or "") for e in entries if e.item.resource_type == "Media"
    )
    for entry in entries:
        assert entry.item.file and entry.item.location and entry.item.reason
    # everything else of those bundles is stored
    assert report.counts["inserted"] > 840
    assert sqlite_store.counts()["patients"] == 3
    # importing again changes nothing, quarantine included
    again = import_paths(sqlite_store, [shared / "fhir" / "uscore"])
    assert again.counts["inserted"] == 0 and again.counts["quarantined"] == 0
    assert len(sqlite_store.quarantine()) == len(entries)


def test_bulk_ndjson_folder(shared: Path, sqlite_store: SqlStore) -> None:
    report = import_paths(sqlite_store, [shared / "fhir" / "bulk-10-patients"])
    counts = sqlite_store.counts()
    assert counts["patients"] == 13
    lines = sum(
        1
        for f in (shared / "fhir" / "bulk-10-patients").glob("*.ndjson")
        if f.name != "log.ndjson"
        for line in f.read_bytes().splitlines()
        if line.strip()
    )
    kinds = Counter(s.fact.resource_type for s in sqlite_store.iter_facts(include_raw=False))
    assert sum(kinds.values()) == lines
    # the export log is not FHIR: its lines are quarantined with the reason, not lost
    log_entries = [
        e for e in sqlite_store.quarantine() if e.item.file and e.item.file.endswith("log.ndjson")
    ]
    assert len(log_entries) == 4
    assert all(e.item.location and e.item.location.startswith("line ") for e in log_entries)
    # forward references (e.g. Encounter.partOf a later line) wait, then resolve in the same run
    c = report.counts
    assert c["quarantined"] - c["resolved_quarantine"] == len(sqlite_store.quarantine())


def test_round_trip_patient_bundle(synthea: SqlStore, tmp_path: Path) -> None:
    patient = synthea.patients(limit=3)[2]
    bundle = patient_bundle(synthea, patient.id)
    file = tmp_path / "p.json"
    file.write_bytes(orjson.dumps(bundle))
    other = open_store(str(tmp_path / "other.db"), actor="test")
    report = import_paths(other, [file])
    assert report.counts["quarantined"] == 0
    original = {
        k
        for k in fact_keys(synthea)
        if k[1] in {s.fact.source_id for s in other.iter_facts(include_raw=False, derived=True)}
    }
    assert fact_keys(other) == original
    mine = {
        (s.fact.kind, s.fact.source_id, s.content_hash)
        for s in synthea.iter_facts(patient_id=patient.id, include_raw=False, derived=True)
    }
    assert mine <= fact_keys(other)
    # and export -> import into the same store is a no-op
    again = import_paths(synthea, [file])
    assert again.counts["inserted"] == 0 and again.counts["new_versions"] == 0
    other.close()


def test_round_trip_bulk_ndjson(shared: Path, tmp_path: Path) -> None:
    first = open_store(str(tmp_path / "a.db"), actor="test")
    files = sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[:5]
    import_paths(first, files)
    counts = write_bulk_ndjson(first, tmp_path / "bulk")
    assert counts["Patient"] == 5 and counts["Claim"] > 0
    second = open_store(str(tmp_path / "b.db"), actor="test")
    import_paths(second, [tmp_path / "bulk"])
    assert second.quarantine() == []
    assert fact_keys(second) == fact_keys(first)
    first.close()
    second.close()


def test_a_bulk_export_does_not_mix_with_an_earlier_one(shared: Path, tmp_path: Path) -> None:
    """A folder holding an earlier export is refused (its Claim.ndjson would be read back with
    a store that has no claims); with replace, only this export's files are left, and a failed
    export leaves the folder as it was."""
    files = sorted((shared / "fhir" / "synthea-r4").glob("*.json"))
    claims = open_store(str(tmp_path / "claims.db"), actor="test")
    import_paths(claims, files[:2])
    folder = tmp_path / "bulk"
    assert write_bulk_ndjson(claims, folder)["Claim"] > 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    uscore = open_store(str(tmp_path / "uscore.db"), actor="test")
    import_paths(uscore, [shared / "fhir" / "uscore" / "uscore_bundle_patient_85.json"])
    with pytest.raises(
        ExportError, match=r"already holds \d+ NDJSON file\(s\) \(CarePlan.ndjson, Claim.ndjson"
    ):
        write_bulk_ndjson(uscore, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before

    class Broken(Exception):
        pass

    first_three = list(uscore.iter_facts(include_raw=True))[:3]

    def failing() -> Iterator[StoredFact]:
        yield from first_three
        raise Broken

    original = uscore.iter_facts
    uscore.iter_facts = lambda **_: failing()  # type: ignore[method-assign]
    with pytest.raises(Broken):
        write_bulk_ndjson(uscore, folder, replace=True)
    uscore.iter_facts = original  # type: ignore[method-assign]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing half-written

    counts = write_bulk_ndjson(uscore, folder, replace=True)
    assert "Claim" not in counts and sorted(p.name for p in folder.iterdir()) == sorted(
        f"{t}.ndjson" for t in counts
    )
    again = open_store(str(tmp_path / "again.db"), actor="test")
    import_paths(again, [folder])
    assert fact_keys(again) == fact_keys(uscore)
    with pytest.raises(ExportError, match="is a file"):
        write_bulk_ndjson(uscore, folder / "Patient.ndjson")


def test_bulk_orders_read_their_medication_in_a_parallel_import(
    shared: Path, tmp_path: Path
) -> None:
    """US Core names drugs by medicationReference. Exported as Bulk NDJSON and imported by
    parallel workers, an order was parsed while another worker wrote Medication.ndjson: the
    Medication was not found at parse time but was stored by the order's append, so the order
    was kept with "Medication/<id>" for its drug. It now waits and is read again."""
    source = open_store(str(tmp_path / "src.db"), actor="test")
    import_paths(source, [shared / "fhir" / "uscore" / "uscore_bundle_patient_85.json"])
    write_bulk_ndjson(source, tmp_path / "bulk")
    drugs = {}
    for workers in (1, 2):
        store = open_store(str(tmp_path / f"w{workers}.db"), actor="test")
        import_paths(store, [tmp_path / "bulk"], workers=workers)
        assert store.quarantine(status="open") == []
        drugs[workers] = {
            s.fact.source_id: s.fact.code
            for s in store.iter_facts(include_raw=False)
            if s.fact.kind == "MedicationRequest"
        }
        assert fact_keys(store) == fact_keys(source)
    assert drugs[2] == drugs[1] and len(drugs[1]) >= 1
    assert all(code is not None and code.system.endswith("rxnorm") for code in drugs[2].values())


# --- bad input ---------------------------------------------------------------------------------


def _bundle(*resources: dict[str, object]) -> dict[str, object]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


PATIENT = {
    "resourceType": "Patient",
    "id": "11111111-1111-1111-1111-111111111111",
    "gender": "male",
    "birthDate": "1960-02-29",
    "name": [{"family": "Testman", "given": ["Bad"]}],
}


def _obs(oid: str, **extra: object) -> dict[str, object]:
    resource: dict[str, object] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"urn:uuid:{PATIENT['id']}"},
        "effectiveDateTime": "2024-01-01T10:00:00+01:00",
        "valueQuantity": {
            "value": 70,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
    resource.update(extra)
    return resource


@pytest.fixture
def bad_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.json").write_bytes(b"")
    (folder / "truncated.json").write_bytes(orjson.dumps(_bundle(PATIENT, _obs("ok-1")))[:-40])
    (folder / "latin1.json").write_bytes(
        b'{"resourceType": "Patient", "id": "x", "name": [{"family": "M\xfcller"}]}'
    )
    (folder / "not-fhir.json").write_bytes(b'["a", "list"]')
    good_and_bad = _bundle(
        PATIENT,
        _obs("ok-2"),
        _obs("no-status", status=None),
        {**_obs("wrong-type"), "resourceType": "Observaton"},
        _obs("bad-date", effectiveDateTime="2024-02-30T10:00:00+00:00"),
        _obs("no-zone", effectiveDateTime="2024-01-01T10:00:00"),
        _obs(
            "bad-unit",
            valueQuantity={
                "value": 5,
                "unit": "furlongs",
                "system": "http://unitsofmeasure.org",
                "code": "furlongs/fortnight",
            },
        ),
        _obs(
            "wrong-dimension",  # a heart rate in kilograms: a real unit that cannot fit the code
            valueQuantity={
                "value": 70,
                "unit": "kg",
                "system": "http://unitsofmeasure.org",
                "code": "kg",
            },
        ),
        _obs("dangling", encounter={"reference": "urn:uuid:99999999-9999-9999-9999-999999999999"}),
        _obs("waits", hasMember=[{"reference": "urn:uuid:no-status"}]),
        _obs("ok-2"),
    )
    for entry in good_and_bad["entry"]:  # type: ignore[union-attr]
        entry["resource"] = {k: v for k, v in entry["resource"].items() if v is not None}  # type: ignore[index]
    (folder / "mixed.json").write_bytes(orjson.dumps(good_and_bad))
    return folder


def test_bad_input_is_quarantined_and_nothing_else_lost(
    bad_folder: Path, sqlite_store: SqlStore
) -> None:
    report = import_paths(sqlite_store, [bad_folder])
    entries = sqlite_store.quarantine()
    by_file: dict[str, list[str]] = {}
    for e in entries:
        by_file.setdefault(Path(e.item.file or "").name, []).append(
            f"{e.item.resource_id}|{e.item.field}|{e.item.reason}"
        )
    assert "empty" in by_file["empty.json"][0]
    assert "invalid JSON" in by_file["truncated.json"][0]
    assert "not UTF-8" in by_file["latin1.json"][0] and "offset" in by_file["latin1.json"][0]
    assert "expected a JSON object" in by_file["not-fhir.json"][0]
    mixed = {line.split("|")[0]: line for line in by_file["mixed.json"]}
    assert "Observation.status" in mixed["no-status"]
    assert "Observaton" in mixed["wrong-type"]
    assert "2024-02-30" in mixed["bad-date"]
    assert "no-zone" in mixed and "zone" in mixed["no-zone"].lower()
    assert "furlongs" in mixed["bad-unit"] and "valueQuantity" in mixed["bad-unit"]
    assert "'kg' does not fit code 8867-4" in mixed["wrong-dimension"]
    assert (
        "99999999" in mixed["dangling"] and "Observation.encounter.reference" in mixed["dangling"]
    )
    assert "quarantine" in mixed["waits"]
    # the good resources are stored; the duplicate is one fact
    stored = {s.fact.source_id for s in sqlite_store.iter_facts(include_raw=False)}
    assert {"Observation/ok-2", f"Patient/{PATIENT['id']}"} <= stored
    assert "Observation/no-status" not in stored
    assert report.counts["inserted"] == 2
    # re-importing is a no-op
    again = import_paths(sqlite_store, [bad_folder])
    assert again.counts["inserted"] == 0 and again.counts["quarantined"] == 0
    assert len(sqlite_store.quarantine()) == len(entries)


def test_quarantine_retry_after_fix(bad_folder: Path, sqlite_store: SqlStore) -> None:
    import_paths(sqlite_store, [bad_folder])
    open_before = len(sqlite_store.quarantine())
    # fix the mixed bundle: give the observation its status back
    mixed = orjson.loads((bad_folder / "mixed.json").read_bytes())
    for entry in mixed["entry"]:
        if entry["resource"]["id"] == "no-status":
            entry["resource"]["status"] = "final"
    (bad_folder / "mixed.json").write_bytes(orjson.dumps(mixed))
    report = retry_quarantine(sqlite_store)
    stored = {s.fact.source_id for s in sqlite_store.iter_facts(include_raw=False)}
    assert "Observation/no-status" in stored and "Observation/waits" in stored
    assert report.counts["inserted"] == 2
    left = sqlite_store.quarantine()
    assert len(left) == open_before - 2
    assert not any(e.item.resource_id in ("no-status", "waits") for e in left)
    resolved = [e for e in sqlite_store.quarantine(status="resolved")]
    assert len(resolved) >= 2


def test_ndjson_bad_lines(tmp_path: Path, sqlite_store: SqlStore) -> None:
    patient = {**PATIENT, "id": "p-ndjson"}
    good = {**_obs("nd-1"), "subject": {"reference": "Patient/p-ndjson"}}
    lines = [orjson.dumps(patient), b"{not json", b"\xff\xfe garbage", orjson.dumps(good), b""]
    (tmp_path / "Observation.ndjson").write_bytes(b"\n".join(lines))
    report = import_paths(sqlite_store, [tmp_path / "Observation.ndjson"])
    assert report.counts["inserted"] == 2
    locations = sorted(e.item.location or "" for e in sqlite_store.quarantine())
    assert locations == ["line 2", "line 3"]


def test_forward_references_in_bulk_files_resolve(tmp_path: Path, sqlite_store: SqlStore) -> None:
    """An Observation file imported before its Patient file waits, then completes."""
    folder = tmp_path / "bulk"
    folder.mkdir()
    patient = {**PATIENT, "id": "p-late"}
    (folder / "Aaa.ndjson").write_bytes(
        orjson.dumps({**_obs("early"), "subject": {"reference": "Patient/p-late"}})
    )
    (folder / "Patient.ndjson").write_bytes(orjson.dumps(patient))
    shutil.copy(folder / "Aaa.ndjson", folder / "Zzz.ndjson")
    import_paths(sqlite_store, [folder])
    assert sqlite_store.quarantine() == []
    assert len(sqlite_store.timeline("p-late", codes=["8867-4"])) == 1


def test_conflicting_duplicates_in_one_bundle(tmp_path: Path, sqlite_store: SqlStore) -> None:
    """The same resource id twice with different content: the later entry is current, both kept."""
    patient = {**PATIENT, "id": "22222222-2222-2222-2222-222222222222"}
    first = {**_obs("dup"), "subject": {"reference": f"urn:uuid:{patient['id']}"}}
    second = {**first, "valueQuantity": {**first["valueQuantity"], "value": 99}}  # type: ignore[dict-item]
    bundle = _bundle(patient, first, second)
    (tmp_path / "dup.json").write_bytes(orjson.dumps(bundle))
    report = import_paths(sqlite_store, [tmp_path / "dup.json"])
    assert report.counts["inserted"] == 2 and report.counts["new_versions"] == 1
    [current] = sqlite_store.timeline(patient["id"], codes=["8867-4"])
    assert current.fact.value_num == 99  # type: ignore[attr-defined]
    versions = sqlite_store.versions("fhir", "Observation/dup")
    assert [v.version for v in versions] == [1, 2] and versions[0].superseded_at is not None
    # re-sending the same file changes nothing (it stored both copies again before)
    before = sqlite_store.counts()
    again = import_paths(sqlite_store, [tmp_path / "dup.json"])
    assert again.counts["unchanged"] == 3 and again.counts["new_versions"] == 0
    assert sqlite_store.counts() == before
    # the same two copies as Bulk NDJSON lines (the same resources once references are resolved)
    lines = [
        orjson.dumps({**r, "subject": {"reference": f"Patient/{patient['id']}"}})
        for r in (first, second)
    ]
    (tmp_path / "Observation.ndjson").write_bytes(b"\n".join(lines))
    for _ in range(2):
        ndjson = import_paths(sqlite_store, [tmp_path / "Observation.ndjson"])
        assert ndjson.counts["unchanged"] == 2 and sqlite_store.counts() == before
    # a third copy with another value at the end of the file: one new version, then nothing
    third = orjson.loads(lines[1])
    third["valueQuantity"]["value"] = 101
    (tmp_path / "Observation.ndjson").write_bytes(b"\n".join([*lines, orjson.dumps(third)]))
    counts = [
        import_paths(sqlite_store, [tmp_path / "Observation.ndjson"]).counts["new_versions"]
        for _ in range(2)
    ]
    assert counts == [1, 0]
    assert [v.fact.value_num for v in sqlite_store.versions("fhir", "Observation/dup")] == [  # type: ignore[attr-defined]
        70,
        99,
        101,
    ]


def test_entries_named_only_by_an_oid_full_url(tmp_path: Path, sqlite_store: SqlStore) -> None:
    """An entry without ``id`` whose fullUrl is ``urn:oid:...`` gets the OID as its id."""
    patient = {k: v for k, v in PATIENT.items() if k != "id"}
    obs = _obs("by-oid", subject={"reference": "urn:oid:1.2.840.99.1"})
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:oid:1.2.840.99.1", "resource": patient},
            {"fullUrl": "urn:uuid:by-oid", "resource": obs},
        ],
    }
    path = tmp_path / "oid.json"
    path.write_bytes(orjson.dumps(bundle))
    report = import_paths(sqlite_store, [path])
    assert report.counts["quarantined"] == 0, sqlite_store.quarantine()
    stored = {s.fact.source_id for s in sqlite_store.iter_facts(include_raw=False)}
    assert {"Patient/1.2.840.99.1", "Observation/by-oid"} <= stored


# --- score results as RiskAssessment ------------------------------------------------------------

AUSTIN = "Austin_Spencer_29195483-ce99-4a73-9cee-2d6728078472.json"


def _r4b_error(resource: dict[str, Any]) -> Exception | None:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as error:  # pydantic's ValidationError
        return error
    return None


@pytest.fixture
def risk_store(shared: Path, tmp_path: Path) -> Iterator[tuple[SqlStore, str, int]]:
    """Austin Spencer (Synthea) with his risk history every 2 years from 2010 stored."""
    import datetime as dt

    from medtwin.risk.from_record import RISK_SOURCE
    from medtwin.risk.history import history_facts, risk_history

    store = open_store(str(tmp_path / "risk.db"), actor="test")
    import_paths(store, [shared / "fhir" / "synthea-r4" / AUSTIN], workers=0)
    pid = store.resolve_patient("29195483-ce99-4a73-9cee-2d6728078472")
    table = risk_history(store, pid, every="2y", start=dt.date(2010, 1, 1))
    stored = store.append_facts(history_facts(store, table), source=RISK_SOURCE)
    yield store, pid, len(stored.changed)
    store.close()


def test_risk_assessments_validate_and_round_trip(
    risk_store: tuple[SqlStore, str, int], tmp_path: Path
) -> None:
    store, pid, results = risk_store
    assert results >= 20
    bundle = patient_bundle(store, pid)
    urls = {e["fullUrl"] for e in bundle["entry"]}
    patient = next(e["resource"] for e in bundle["entry"] if e["fullUrl"].startswith("Patient/"))
    ras = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "RiskAssessment"
    ]
    assert len(ras) == results
    for ra in ras:
        assert _r4b_error(ra) is None, ra["id"]
        assert ra["status"] == "final" and ra["subject"] == {
            "reference": f"Patient/{patient['id']}"
        }
        assert ra["meta"]["source"] == "medtwin:risk"
        assert all(b["reference"] in urls for b in ra.get("basis", ())), "basis must resolve"
    scores = {
        s.fact.source_id: s.fact
        for s in store.iter_facts(patient_id=pid)
        if s.fact.source == "medtwin:risk"
    }
    # PREVENT's 10-year ASCVD risk, which carries the 2026 guideline's category (total CVD has
    # none: no qualitativeRisk)
    cvd = next(r for r in ras if r["identifier"][0]["value"].endswith("prevent_10y/2020-07-07"))
    assert "qualitativeRisk" not in cvd["prediction"][0]
    last = next(
        r for r in ras if r["identifier"][0]["value"].endswith("prevent_10y_ascvd/2020-07-07")
    )
    fact = scores[last["identifier"][0]["value"]]
    assert isinstance(fact, Observation) and fact.unit == "%" and fact.value_num is not None
    assert last["occurrenceDateTime"] == "2020-07-07T23:59:59+00:00"
    assert last["method"]["coding"][0] == {
        "system": "urn:medtwin:score", "code": "prevent_10y_ascvd", "display": fact.code.display,  # type: ignore[union-attr]
    }  # fmt: skip
    (prediction,) = last["prediction"]
    assert prediction["probabilityDecimal"] == pytest.approx(fact.value_num / 100, rel=1e-15)
    assert prediction["qualitativeRisk"] == {"text": fact.value_text}
    assert "Circulation 2024" in last["note"][0]["text"]  # Khan et al., the PREVENT source
    # total cholesterol, HDL, systolic BP, BMI, creatinine, smoking, the two drugs
    kinds = Counter(b["reference"].split("/")[0] for b in last["basis"])
    assert kinds == {"Observation": 6, "MedicationRequest": 2}
    egfr = next(r for r in ras if "/ckd_epi_2021/" in r["identifier"][0]["value"])
    assert "probabilityDecimal" not in egfr["prediction"][0]  # eGFR is not a probability
    assert egfr["prediction"][0]["extension"][0]["valueQuantity"]["value"] > 0
    # fhir.resources really checks: no status (1..1), or a text probability, is refused
    assert _r4b_error({k: v for k, v in last.items() if k != "status"}) is not None
    assert _r4b_error({**last, "prediction": [{"probabilityDecimal": "high"}]}) is not None

    file = tmp_path / "austin.json"
    file.write_bytes(orjson.dumps(bundle))
    other = open_store(str(tmp_path / "other.db"), actor="test")
    report = import_paths(other, [file], workers=0)
    assert report.counts["quarantined"] == 0
    assert fact_keys(other) == fact_keys(store)
    sid = last["identifier"][0]["value"]
    [again] = other.versions("medtwin:risk", sid)  # stored under its own source
    assert again.fact == fact
    raw = {
        s.fact.source_id: s.fact.raw
        for s in other.timeline(again.patient_id or "", kinds=["Observation"], include_raw=True)
    }
    assert raw[sid] == last
    # a range over what the record leaves open (HAS-BLED's unknown items) round-trips as one
    ranged = [f for f in scores.values() if isinstance(f, Observation) and f.value_num is None]
    assert ranged and all(" to " in (f.value_text or "") for f in ranged)
    for f in ranged:
        [back] = other.versions("medtwin:risk", f.source_id)
        assert back.fact == f
    # and export -> import into the same store is a no-op
    same = import_paths(store, [file], workers=0)
    assert same.counts["inserted"] == 0 and same.counts["new_versions"] == 0
    # Bulk NDJSON too: RiskAssessment.ndjson is read after Patient.ndjson
    counts = write_bulk_ndjson(store, tmp_path / "bulk")
    assert counts["RiskAssessment"] == results
    third = open_store(str(tmp_path / "third.db"), actor="test")
    import_paths(third, [tmp_path / "bulk"])
    assert third.quarantine() == [] and fact_keys(third) == fact_keys(store)
    other.close()
    third.close()


def test_other_risk_assessments_stay_raw(sqlite_store: SqlStore, tmp_path: Path) -> None:
    foreign = {
        "resourceType": "RiskAssessment",
        "id": "ra-1",
        "status": "final",
        "subject": {"reference": f"urn:uuid:{PATIENT['id']}"},
        "occurrenceDateTime": "2024-01-01",
        "prediction": [{"probabilityDecimal": 0.02, "outcome": {"text": "stroke"}}],
    }
    file = tmp_path / "foreign.json"
    file.write_bytes(orjson.dumps(_bundle(PATIENT, foreign)))
    report = import_paths(sqlite_store, [file], workers=0)
    assert report.counts["quarantined"] == 0
    [stored] = sqlite_store.versions("fhir", "RiskAssessment/ra-1")
    assert stored.fact.kind == "RawResource" and stored.fact.source == "fhir"
    # one that says it is medtwin's but has no score code is kept raw too
    fake = {**foreign, "id": "ra-2", "meta": {"source": "medtwin:risk"}}
    file.write_bytes(orjson.dumps(_bundle(PATIENT, fake)))
    import_paths(sqlite_store, [file], workers=0)
    assert sqlite_store.versions("fhir", "RiskAssessment/ra-2")[0].fact.kind == "RawResource"


def test_score_result_without_raw_exports_as_risk_assessment() -> None:
    import datetime as dt

    from medtwin.export import fact_to_resource
    from medtwin.record.facts import Coding, Identifier

    fact = Observation(
        source="medtwin:risk",
        source_id="risk/mt-1/pce_ascvd_10y/2024-01-01",
        subject=Identifier("urn:medtwin:hl7v2:lab:MR", "12345"),
        code=Coding("urn:medtwin:score", "pce_ascvd_10y", "PCE 10-year ASCVD risk (%)"),
        status="final",
        effective_start=dt.datetime(2024, 1, 1, 23, 59, 59, tzinfo=dt.UTC),
        value_num=12.5,
        unit="%",
        value_text="intermediate",
    )
    ra = fact_to_resource(fact)
    assert _r4b_error(ra) is None
    assert ra["resourceType"] == "RiskAssessment"
    # no FHIR id for this patient: a logical reference by identifier
    assert ra["subject"] == {"identifier": {"system": "urn:medtwin:hl7v2:lab:MR", "value": "12345"}}
    assert ra["prediction"][0]["probabilityDecimal"] == 0.125
    assert ra["prediction"][0]["qualitativeRisk"] == {"text": "intermediate"}
    assert "basis" not in ra and "note" not in ra


def test_risk_assessments_through_import_workers(shared: Path, tmp_path: Path) -> None:
    """Bundles with score results, imported by worker processes: same facts, nothing waits."""
    from medtwin.risk.from_record import RISK_SOURCE
    from medtwin.risk.history import history_facts, risk_history

    files = sorted((shared / "fhir" / "synthea-r4").glob("*.json"))[:4]
    first = open_store(str(tmp_path / "first.db"), actor="test")
    import_paths(first, files, workers=0)
    out = tmp_path / "bundles"
    out.mkdir()
    results = 0
    for patient in first.patients():
        table = risk_history(first, patient.id, every="10y")
        results += len(first.append_facts(history_facts(first, table), source=RISK_SOURCE).changed)
        (out / f"{patient.id}.json").write_bytes(orjson.dumps(patient_bundle(first, patient.id)))
    assert results > 0
    second = open_store(str(tmp_path / "second.db"), actor="test")
    report = import_paths(second, [out], workers=2)
    assert report.counts["quarantined"] == 0 and second.quarantine() == []
    assert fact_keys(second) == fact_keys(first)
    assert (
        sum(1 for s in second.iter_facts(include_raw=False) if s.fact.source == RISK_SOURCE)
        == results
    )
    first.close()
    second.close()


def test_reference_rewrites_do_not_chain() -> None:
    """One reference rewritten to the old text of another is not rewritten again.

    The Observation points at patient A by ``urn:uuid:a`` (A's id is ``p1``) and at the
    entry whose fullUrl is ``Patient/p1`` (patient B, id ``p2``): each keeps its own target.
    Escaped characters inside a reference are read as JSON.
    """
    from medtwin.ingest.fhir import bundle_batch

    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "Patient", "id": "p1"}},
            {"fullUrl": "Patient/p1", "resource": {"resourceType": "Patient", "id": "p2"}},
            {
                "fullUrl": "urn:uuid:o",
                "resource": {
                    "resourceType": "Observation",
                    "id": "o1",
                    "status": "final",
                    "code": {"text": "weight"},
                    "subject": {"reference": "urn:uuid:a"},
                    "focus": [{"reference": "Patient/p1"}, {"reference": "urn:uuid:a"}],
                    "performer": [{"reference": 'Practitioner/x"y', "display": "quote"}],
                },
            },
        ],
    }
    batch = bundle_batch(bundle, source="test")
    assert not batch.quarantine, batch.quarantine
    unit = next(u for u in batch.units if u.key == "Observation/o1")
    assert unit.raw_json is not None
    raw = orjson.loads(unit.raw_json)
    assert raw["subject"]["reference"] == "Patient/p1"
    assert [f["reference"] for f in raw["focus"]] == ["Patient/p2", "Patient/p1"]
    assert raw["performer"][0]["reference"] == 'Practitioner/x"y'
    assert set(unit.requires) == {"Patient/p1", "Patient/p2", 'Practitioner/x"y'}
    assert unit.facts[0].subject is not None and unit.facts[0].subject.value == "p1"


def test_byte_order_marks(shared: Path, tmp_path: Path) -> None:
    """A UTF-8 BOM (RFC 8259 section 8.1 lets a parser ignore it) and UTF-16 text with its BOM
    (Windows PowerShell 5's ``>`` writes it) read as the plain UTF-8 file does; UTF-16 NDJSON
    is quarantined whole, saying why."""
    bundle = shared / "fhir" / "uscore" / "uscore_bundle_patient_85.json"
    ndjson = shared / "fhir" / "bulk-10-patients" / "Patient.000.ndjson"
    text = bundle.read_bytes().decode()
    lines = ndjson.read_bytes()

    def facts_of(name: str, files: dict[str, bytes]) -> tuple[set[tuple[str, str, str]], Any]:
        folder = tmp_path / name
        folder.mkdir()
        for file, data in files.items():
            (folder / file).write_bytes(data)
        store = open_store(f"sqlite:///{tmp_path / name}.db")
        report = import_paths(store, [folder])
        return fact_keys(store), (report, store.quarantine())

    plain_bundle, _ = facts_of("plain-bundle", {"b.json": text.encode()})
    plain_lines, _ = facts_of("plain-lines", {"Patient.ndjson": lines})
    assert plain_bundle and plain_lines
    bom, (report, quarantine) = facts_of(
        "bom",
        {"b.json": b"\xef\xbb\xbf" + text.encode(), "Patient.ndjson": b"\xef\xbb\xbf" + lines},
    )
    assert quarantine == [] and report.counts["quarantined"] == 0
    assert bom == plain_bundle | plain_lines
    utf16, (_, quarantine) = facts_of("utf16", {"b.json": text.encode("utf-16")})
    assert utf16 == plain_bundle and quarantine == []

    utf16_lines, (report, quarantine) = facts_of(
        "utf16-lines", {"Patient.ndjson": lines.decode().encode("utf-16")}
    )
    assert utf16_lines == set() and report.counts["quarantined"] == 1
    assert "UTF-16 text" in quarantine[0].item.reason and quarantine[0].item.location == "file"
    assert quarantine[0].item.content.splitlines()[0] == lines.decode().splitlines()[0]


def test_a_waiting_resource_is_read_once(
    shared: Path, sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """A resource that waits for its patient is retried at the end of the import; the retry
    is not counted as a second resource read."""
    bundle = orjson.loads(
        (shared / "fhir" / "uscore" / "uscore_bundle_patient_85.json").read_bytes()
    )
    observation = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    observation["subject"] = {"reference": "Patient/not-here"}
    for other in ("performer", "encounter", "hasMember", "derivedFrom", "basedOn", "specimen"):
        observation.pop(other, None)
    path = tmp_path / "one.json"
    path.write_bytes(orjson.dumps(observation))
    report = import_paths(sqlite_store, [path])
    assert report.counts["resources_read"] == 1 and report.counts["quarantined"] == 1
    assert sqlite_store.quarantine()[0].item.waits_for
