"""Drugs named the other ways FHIR allows: a ``medicationReference`` to a Medication resource
(in the same file, as US Core and GP Connect send it, or contained), and a MedicationStatement
(the medication list of the International Patient Summary and of GP Connect)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson

from medtwin.export import patient_bundle
from medtwin.ingest import import_paths
from medtwin.record.facts import RXNORM, SNOMED, MedicationRequest
from medtwin.risk.inputs import derive_inputs
from medtwin.store.sql import SqlStore

PATIENT = {
    "resourceType": "Patient",
    "id": "ips-1",
    "gender": "female",
    "birthDate": "1961-04-02",
    "identifier": [{"system": "urn:example:ips", "value": "IPS-1"}],
}
SUBJECT = {"reference": "Patient/ips-1"}
AT = dt.date(2024, 6, 30)


def _import(store: SqlStore, folder: Path, *resources: dict[str, Any]) -> str:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{i:08d}-0000-4000-8000-000000000000", "resource": r}
                  for i, r in enumerate([PATIENT, *resources])],
    }  # fmt: skip
    path = folder / "record.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    report = import_paths(store, [path], workers=0)
    assert report.counts.get("quarantined", 0) == 0, report.counts
    return str(store.resolve_patient("urn:example:ips|IPS-1"))


def _drugs(store: SqlStore, pid: str) -> dict[str, MedicationRequest]:
    return {
        sf.fact.source_id: sf.fact  # type: ignore[misc]
        for sf in store.timeline(pid, kinds=("MedicationRequest",))
    }


def test_a_medication_reference_in_the_shared_us_core_bundle(
    shared: Path, sqlite_store: SqlStore
) -> None:
    """The shared US Core bundle orders furosemide by reference to a Medication entry
    (``urn:uuid:``): the order carries that Medication's RxNorm code, not the reference."""
    path = shared / "fhir" / "uscore" / "uscore_bundle_patient_85.json"
    import_paths(sqlite_store, [path], workers=0)
    bundle = orjson.loads(path.read_bytes())
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    pid = sqlite_store.resolve_patient(patient["id"])
    order = _drugs(sqlite_store, pid)["MedicationRequest/3722c630-7ccd-b25e-316d-78fd30a4ff30"]
    assert order.code is not None
    assert (order.code.system, order.code.code) == (RXNORM, "1719286")
    assert order.code.display == "10 ML Furosemide 10 MG/ML Injection"


def test_a_contained_medication(sqlite_store: SqlStore, tmp_path: Path) -> None:
    """A contained Medication (``#med``) named in dm+d is read by its name: a statin."""
    contained = {
        "resourceType": "MedicationRequest", "id": "rx-1", "status": "active", "intent": "plan",
        "contained": [{"resourceType": "Medication", "id": "med", "code": {"coding": [{
            "system": "https://dmd.nhs.uk", "code": "42205011000001107",
            "display": "Atorvastatin 20mg tablets"}]}}],
        "medicationReference": {"reference": "#med"},
        "subject": SUBJECT, "authoredOn": "2024-02-01",
    }  # fmt: skip
    pid = _import(sqlite_store, tmp_path, contained)
    order = _drugs(sqlite_store, pid)["MedicationRequest/rx-1"]
    assert order.code is not None and order.code.display == "Atorvastatin 20mg tablets"
    assert derive_inputs(sqlite_store, pid, AT)["statin"].value is True


def test_a_medication_of_another_file(sqlite_store: SqlStore, tmp_path: Path) -> None:
    """A Bulk export keeps Medications in their own file: an order whose Medication is not
    stored yet waits in quarantine, and once the Medication file is imported it is read with
    that Medication's code (RxNorm ramipril: treatment)."""
    folder = tmp_path / "bulk"
    folder.mkdir()
    order = {
        "resourceType": "MedicationRequest", "id": "rx-9", "status": "active", "intent": "order",
        "medicationReference": {"reference": "Medication/ramipril-5"},
        "subject": SUBJECT, "authoredOn": "2024-02-01",
    }  # fmt: skip
    (folder / "Patient.ndjson").write_bytes(orjson.dumps(PATIENT))
    (folder / "MedicationRequest.ndjson").write_bytes(orjson.dumps(order))
    import_paths(sqlite_store, [folder], workers=0)
    [waiting] = sqlite_store.quarantine()
    assert waiting.item.waits_for == "Medication/ramipril-5"
    ramipril = {"resourceType": "Medication", "id": "ramipril-5", "code": {"coding": [{
        "system": RXNORM, "code": "35296", "display": "ramipril"}]}}  # fmt: skip
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "Medication.ndjson").write_bytes(orjson.dumps(ramipril))
    import_paths(sqlite_store, [tmp_path / "later"], workers=0)
    assert sqlite_store.quarantine() == []
    pid = sqlite_store.resolve_patient("urn:example:ips|IPS-1")
    stored = _drugs(sqlite_store, pid)["MedicationRequest/rx-9"]
    assert stored.code is not None and (stored.code.system, stored.code.code) == (RXNORM, "35296")
    assert derive_inputs(sqlite_store, pid, AT)["bp_treated"].value is True


def _statement(sid: str, status: str, drug: dict[str, Any], **when: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement", "id": sid, "status": status,
        "subject": SUBJECT, **drug, **when,
    }  # fmt: skip


def test_medication_statements_are_what_the_patient_takes(store: SqlStore, tmp_path: Path) -> None:
    """The IPS form: an active simvastatin statement (its drug a Medication entry of the file,
    coded in SNOMED CT) is a statin; an amlodipine statement "not-taken" is no treatment, nor is
    a bisoprolol one whose period has ended; a ramipril statement "intended" is not taken yet."""
    simvastatin = {"resourceType": "Medication", "id": "m-simva", "code": {"coding": [{
        "system": SNOMED, "code": "319996000", "display": "Simvastatin 40mg oral tablet"}]}}  # fmt: skip
    pid = _import(
        store,
        tmp_path,
        simvastatin,
        _statement("s1", "active", {"medicationReference": {"reference": "Medication/m-simva"}},
                   effectivePeriod={"start": "2023-01-15"}),
        _statement("s2", "not-taken", {"medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"}},
                   effectiveDateTime="2024-03-01"),
        _statement("s3", "completed", {"medicationCodeableConcept": {"text": "Bisoprolol 5mg tablets"}},
                   effectivePeriod={"start": "2021-01-01", "end": "2022-01-01"}),
        _statement("s4", "intended", {"medicationCodeableConcept": {"text": "Ramipril 2.5mg capsules"}},
                   dateAsserted="2024-05-01"),
    )  # fmt: skip
    drugs = _drugs(store, pid)
    assert set(drugs) == {f"MedicationStatement/s{i}" for i in range(1, 5)}
    s1 = drugs["MedicationStatement/s1"]
    assert s1.resource_type == "MedicationStatement" and s1.intent is None
    assert s1.code is not None and s1.code.display == "Simvastatin 40mg oral tablet"
    assert s1.effective_end is None
    assert drugs["MedicationStatement/s4"].effective_start is not None  # from dateAsserted
    d = derive_inputs(store, pid, AT)
    assert d["statin"].value is True and "simvastatin" in d["statin"].detail
    assert d["bp_treated"].value is False
    # in 2021 the bisoprolol was taken
    assert derive_inputs(store, pid, dt.date(2021, 6, 30))["bp_treated"].value is True


def test_statements_round_trip_through_export(sqlite_store: SqlStore, tmp_path: Path) -> None:
    pid = _import(
        sqlite_store,
        tmp_path,
        _statement("s1", "active", {"medicationCodeableConcept": {"text": "Metformin 500mg tablets"}},
                   effectivePeriod={"start": "2020-01-01"}),
    )  # fmt: skip
    bundle = patient_bundle(sqlite_store, pid)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "MedicationStatement" in kinds
    (tmp_path / "again").mkdir()
    out = tmp_path / "again" / "export.json"
    out.write_text(json.dumps(bundle), encoding="utf-8")
    report = import_paths(sqlite_store, [out], workers=0)
    assert report.counts.get("quarantined", 0) == 0
    assert len(_drugs(sqlite_store, pid)) == 1


def test_an_order_not_to_give_a_drug_is_no_order(sqlite_store: SqlStore, tmp_path: Path) -> None:
    """``doNotPerform`` (R4): "do not give atorvastatin" is a prohibition; it is kept whole and
    exported as it came, and it is no statin."""
    prohibition = {
        "resourceType": "MedicationRequest", "id": "rx-no", "status": "active", "intent": "order",
        "doNotPerform": True,
        "medicationCodeableConcept": {"coding": [{
            "system": RXNORM, "code": "83367", "display": "atorvastatin"}]},
        "subject": SUBJECT, "authoredOn": "2024-02-01",
    }  # fmt: skip
    pid = _import(sqlite_store, tmp_path, prohibition)
    assert _drugs(sqlite_store, pid) == {}
    (kept,) = [
        sf.fact for sf in sqlite_store.timeline(pid, include_raw=True)
        if sf.fact.source_id == "MedicationRequest/rx-no"
    ]  # fmt: skip
    assert kept.kind == "RawResource" and kept.raw is not None and kept.raw["doNotPerform"] is True
    assert derive_inputs(sqlite_store, pid, AT)["statin"].value is False
    exported = patient_bundle(sqlite_store, pid)
    assert any(e["resource"].get("doNotPerform") for e in exported["entry"])


def test_a_proposal_is_not_an_order(sqlite_store: SqlStore, tmp_path: Path) -> None:
    """A statin *proposed* (intent ``proposal``: decision support's suggestion) is not taken;
    the same drug as a GP's repeat authorisation (intent ``plan``) is."""
    from medtwin.store.summary import patient_summary

    def request(rid: str, intent: str) -> dict[str, Any]:
        return {
            "resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": intent,
            "medicationCodeableConcept": {"text": "Atorvastatin 20mg tablets"},
            "subject": SUBJECT, "authoredOn": "2024-02-01",
        }  # fmt: skip

    pid = _import(sqlite_store, tmp_path, request("rx-p", "proposal"))
    assert derive_inputs(sqlite_store, pid, AT)["statin"].value is False
    assert patient_summary(sqlite_store, pid)["medications"] == []
    (tmp_path / "plan").mkdir()
    _import(sqlite_store, tmp_path / "plan", request("rx-a", "plan"))
    assert derive_inputs(sqlite_store, pid, AT)["statin"].value is True
    names = [m["name"] for m in patient_summary(sqlite_store, pid)["medications"]]
    assert names == ["Atorvastatin 20mg tablets"]


def test_a_gp_repeat_authorisation_ends_with_its_validity_period(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """GP Connect's authorisation (intent ``plan``) gives its period in
    ``dispenseRequest.validityPeriod``: taken within it, not after its end, whatever status the
    record still shows; one ending before it starts is quarantined, naming the field."""
    plan = {
        "resourceType": "MedicationRequest", "id": "auth-1", "status": "active", "intent": "plan",
        "medicationCodeableConcept": {"text": "Atorvastatin 20mg tablets"},
        "dispenseRequest": {"validityPeriod": {"start": "2020-01-10", "end": "2022-03-31"}},
        "subject": SUBJECT,
    }  # fmt: skip
    pid = _import(sqlite_store, tmp_path, plan)
    stored = _drugs(sqlite_store, pid)["MedicationRequest/auth-1"]
    assert stored.effective_start is not None and stored.effective_end is not None
    assert stored.effective_start.date() == dt.date(2020, 1, 10)
    assert derive_inputs(sqlite_store, pid, dt.date(2021, 6, 30))["statin"].value is True
    assert derive_inputs(sqlite_store, pid, AT)["statin"].value is False
    backwards = {**plan, "id": "auth-2",
                 "dispenseRequest": {"validityPeriod": {"start": "2023-01-10", "end": "2022-03-31"}}}  # fmt: skip
    (tmp_path / "bad").mkdir()
    path = tmp_path / "bad" / "plan.json"
    path.write_text(json.dumps(backwards), encoding="utf-8")
    import_paths(sqlite_store, [path], workers=0)
    [entry] = sqlite_store.quarantine()
    assert entry.item.field == "MedicationRequest.dispenseRequest.validityPeriod"
    assert "ends (2022-03-31) before it starts" in entry.item.reason
