"""FHIR Observations from personal health devices (HL7 PHD IG): IEEE 11073 MDC codes -> LOINC.

Every file of ``wearables/hl7-phd`` is imported on both store back-ends. The example
Observations reference a patient, a gateway device, two sensor devices and "coincident time
stamp" Observations that the IG's example folder does not carry; ``_prerequisites`` writes
those as a small transaction Bundle (what a gateway uploads before its measurements), so
that every real example is stored rather than waiting in quarantine.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from medtwin.ingest import ImportReport, import_paths
from medtwin.ingest.fhir import read_bundle
from medtwin.ingest.ieee11073 import MDC, loinc_for_mdc, mdc_table
from medtwin.record.codes import LOINC, loinc_check_digit_ok, lookup
from medtwin.record.facts import Observation
from medtwin.store.sql import SqlStore

PATIENT = "patientExample-1"
_PREREQUISITE_IDS = {
    "Patient": ["patientExample-1"],
    "Device": [
        "phg-ecde3d4e58532d31.000000000000",
        "phd-711000FEFF5F49B0.B0495F001071",
        "phd-00601900010E9234.F45EABA80832",
    ],
    "Observation": ["coin-20181119202022", "coin-20181119174911", "coin-example-1"],
}


def _prerequisites(folder: Path) -> Path:
    entries: list[dict[str, Any]] = []
    for rtype, ids in _PREREQUISITE_IDS.items():
        for rid in ids:
            resource: dict[str, Any] = {"resourceType": rtype, "id": rid}
            if rtype == "Observation":  # a coincident time stamp, as the PHD IG defines it
                resource |= {
                    "status": "final",
                    "code": {"coding": [{"system": MDC, "code": "67975"}]},
                    "subject": {"reference": f"Patient/{PATIENT}"},
                    "effectiveDateTime": "2018-11-19T20:20:22-05:00",
                    "valueDateTime": "2018-11-19T20:20:22-05:00",
                }
            entries.append(
                {"resource": resource, "request": {"method": "PUT", "url": f"{rtype}/{rid}"}}
            )
    path = folder / "0-prerequisites.json"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    path.write_bytes(orjson.dumps(bundle))
    return path


def _upload(store: SqlStore, tmp_path: Path, phd: Path) -> ImportReport:
    """Patient and devices first, then the measurements, as a gateway uploads them.

    (Importing the folder alone also works: the single-resource files wait for their Device
    and are retried; the continuous-oximeter bundle's entries have no ``id`` and a
    ``urn:oid`` fullUrl, whose OID becomes their id.)
    """
    device = phd / "phd-74E8FFFEFF051C00.001C05FFE874.json"
    first = import_paths(store, [_prerequisites(tmp_path), device], workers=0)
    assert first.counts["quarantined"] == 0
    return import_paths(store, [phd], workers=0)


@pytest.fixture
def phd(shared: Path) -> Path:
    return shared / "wearables" / "hl7-phd"


def _current(store: SqlStore, patient: str) -> dict[str, Observation]:
    out: dict[str, Observation] = {}
    for stored in store.timeline(patient, kinds=("Observation",)):
        assert isinstance(stored.fact, Observation)
        out[stored.fact.source_id] = stored.fact
    return out


def test_every_phd_example_is_imported(store: SqlStore, phd: Path, tmp_path: Path) -> None:
    first = _upload(store, tmp_path, phd)
    assert first.counts["quarantined"] == 0, [e.item.describe() for e in store.quarantine()]
    facts = _current(store, PATIENT)

    # numeric-spotnumeric: MDC 149530 pulse rate sent together with LOINC 8867-4
    spot = facts["Observation/numeric-spotnumeric"]
    assert (spot.code.system, spot.code.code) == (LOINC, "8867-4")  # type: ignore[union-attr]
    assert (spot.value_num, spot.unit) == (48.0, "/min")
    assert spot.device == "Device/phd-74E8FFFEFF051C00.001C05FFE874"
    # its supplemental-types component has no LOINC and no mapping: stored with its MDC code
    supplemental = facts["Observation/numeric-spotnumeric#68193"]
    assert supplemental.code == lookup_mdc("68193", "MDC_ATTR_SUPPLEMENTAL_TYPES")
    assert supplemental.value_code == lookup_mdc("150588", "MDC_MODALITY_SPOT")

    # numeric-spo2-alarm: the device's own LOINC 2708-6 wins over the table's 59408-5
    alarm = facts["Observation/numeric-spo2-alarm"]
    assert alarm.code.code == "2708-6" and (alarm.value_num, alarm.unit) == (79.0, "%")  # type: ignore[union-attr]
    assert alarm.interpretation == "in-alarm"

    # compound-numeric-blood-pressure: panel 85354-9 with systolic, diastolic and the mean
    # (MDC 150023, no LOINC coding in the file) mapped to 8478-0
    bp = "Observation/compound-numeric-blood-pressure"
    assert facts[bp].code.code == "85354-9" and facts[bp].value_num is None  # type: ignore[union-attr]
    parts = {f.code.code: f for f in facts.values() if f.part_of == bp}  # type: ignore[union-attr]
    assert {code: (f.value_num, f.unit) for code, f in parts.items()} == {
        "8480-6": (116.0, "mm[Hg]"),
        "8462-4": (71.0, "mm[Hg]"),
        "8478-0": (86.0, "mm[Hg]"),
    }
    # the mapped component keeps the source's own code in its id (stable if the table changes)
    assert parts["8478-0"].source_id == f"{bp}#150023"
    assert parts["8478-0"].code.display == "Mean blood pressure"  # type: ignore[union-attr]
    assert parts["8478-0"].device == "Device/phd-711000FEFF5F49B0.B0495F001071"

    # glucose-observation: MDC 160368 only -> LOINC 2345-7, mg/dL
    glucose = facts["Observation/glucose-observation"]
    assert (glucose.code.system, glucose.code.code) == (LOINC, "2345-7")  # type: ignore[union-attr]
    assert (glucose.value_num, glucose.unit, glucose.original_unit) == (99.0, "mg/dL", "mg/dL")

    # temperature-observation: MDC 150364 with LOINC 8310-5
    temp = facts["Observation/temperature-observation"]
    assert (temp.code.code, temp.value_num, temp.unit) == ("8310-5", 36.5, "Cel")  # type: ignore[union-attr]

    # rtsa-example: a plethysmogram (SampledData) is not a numeric: kept with its MDC code
    pleth = facts["Observation/rtsa-example"]
    assert pleth.code == lookup_mdc("150452", "MDC_PULS_OXIM_PLETH") and pleth.value_num is None

    # bundle-continuousnonin: 47 readings of a continuous pulse oximeter
    nonin = [f for f in facts.values() if f.source_id.startswith("Observation/1.0.0.")]
    main = [f for f in nonin if f.part_of is None]
    assert Counter((f.code.system, f.code.code) for f in main) == {  # type: ignore[union-attr]
        (LOINC, "2708-6"): 12,
        (LOINC, "8867-4"): 12,
        (MDC, "150320"): 12,  # MDC_SAT_O2_QUAL: no LOINC term, stored with its MDC code
        (MDC, "150604"): 10,  # MDC_PULS_OXIM_DEV_STATUS
        (MDC, "67996"): 1,  # MDC_ATTR_VAL_BATT_CHARGE
    }
    battery = next(f for f in main if f.code.code == "67996")  # type: ignore[union-attr]
    assert (battery.value_num, battery.unit) == (100.0, "%")
    pulse = sorted((f for f in main if f.code.code == "8867-4"), key=lambda f: f.effective_start)  # type: ignore[union-attr, arg-type, return-value]
    assert [f.value_num for f in pulse[:3]] == [53.0, 54.0, 54.0]
    assert pulse[0].effective_start is not None
    assert pulse[0].effective_start.isoformat() == "2018-11-12T00:07:37+00:00"

    # bundle-example-1: its own patient and devices (urn:uuid references resolved)
    own = _current(store, "patient-001")
    assert own["Observation/pulse-ox-001"].code.code == "2708-6"  # type: ignore[union-attr]
    assert own["Observation/pulse-ox-001"].value_num == 98.0
    assert own["Observation/pulse-ox-002"].value_num == 47.0
    assert own["Observation/pulse-ox-002"].device == "Device/phd-001"

    # importing everything again changes nothing
    again = _upload(store, tmp_path, phd)
    assert again.counts["inserted"] == 0 and again.counts["new_versions"] == 0


def lookup_mdc(code: str, refid: str) -> Any:
    from medtwin.record.facts import Coding

    return Coding(MDC, code, refid)


def test_original_mdc_coding_and_device_are_kept(
    store: SqlStore, phd: Path, tmp_path: Path
) -> None:
    _upload(store, tmp_path, phd)
    [glucose] = [
        s
        for s in store.timeline(PATIENT, codes=["2345-7"], include_raw=True)
        if s.fact.source_id == "Observation/glucose-observation"
    ]
    raw = glucose.fact.raw
    assert raw is not None
    assert raw["code"]["coding"] == [
        {"system": MDC, "code": "160368", "display": "MDC_CONC_GLU_UNDETERMINED_PLASMA"}
    ]
    # Observation.device -> the stored Device resource, whose raw has the model and serial
    assert isinstance(glucose.fact, Observation)
    assert glucose.fact.device == "Device/phd-74E8FFFEFF051C00.001C05FFE874"
    [device] = store.shared_facts([glucose.fact.device])
    assert device.fact.raw is not None
    assert device.fact.raw["serialNumber"] == "501900083"
    assert device.fact.raw["modelNumber"] == "Model 3230"


def test_mapping_without_loinc_coding_converts_units(tmp_path: Path) -> None:
    """A scale that sends MDC_MASS_BODY_ACTUAL in pounds and no LOINC coding."""
    weight = {
        "resourceType": "Observation",
        "id": "w1",
        "status": "final",
        "code": {"coding": [{"system": MDC, "code": "188736", "display": "MDC_MASS_BODY_ACTUAL"}]},
        "effectiveDateTime": "2024-03-01T07:00:00Z",
        "valueQuantity": {"value": 154.0, "system": "http://unitsofmeasure.org", "code": "[lb_av]"},
    }
    path = tmp_path / "w.json"
    path.write_bytes(orjson.dumps(weight))
    [fact] = read_bundle(path).units[0].facts
    assert isinstance(fact, Observation)
    assert (fact.code.system, fact.code.code) == (LOINC, "29463-7")  # type: ignore[union-attr]
    assert fact.unit == "kg" and fact.value_num == pytest.approx(154 * 0.45359237)
    assert (fact.original_value, fact.original_unit) == (154.0, "[lb_av]")
    # a unit that cannot be a body weight keeps the MDC code instead of a wrong LOINC
    weight["valueQuantity"] = {"value": 80, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    path.write_bytes(orjson.dumps(weight))
    [fact] = read_bundle(path).units[0].facts
    assert fact.code == lookup_mdc("188736", "MDC_MASS_BODY_ACTUAL")


def test_unknown_mdc_code_is_a_valid_fact(sqlite_store: SqlStore, tmp_path: Path) -> None:
    unknown = {
        "resourceType": "Observation",
        "id": "u1",
        "status": "final",
        "code": {"coding": [{"system": MDC, "code": "999999", "display": "MDC_UNKNOWN"}]},
        "effectiveDateTime": "2024-03-01T07:00:00Z",
        "valueQuantity": {"value": 3, "system": "http://unitsofmeasure.org", "code": "1"},
    }
    path = tmp_path / "u.json"
    path.write_bytes(orjson.dumps(unknown))
    batch = read_bundle(path)
    assert not batch.quarantine
    [fact] = batch.units[0].facts
    assert fact.code == lookup_mdc("999999", "MDC_UNKNOWN")


def test_mdc_table_is_sound() -> None:
    table = mdc_table()
    assert len(table) >= 20
    for code, row in table.items():
        # an MDC context-free code is partition * 65536 + term code; these are all SCADA (2)
        # or object (1) partition codes of 10101
        assert int(code) // 65536 in (1, 2), code
        assert row.mdc_refid.startswith("MDC_") and row.source
        assert loinc_check_digit_ok(row.loinc) and lookup(LOINC, row.loinc) is not None
    # the codes the brief names, with their partition/term arithmetic
    assert table["150456"].loinc == "59408-5" and 2 * 65536 + 19384 == 150456
    assert table["149530"].loinc == "8867-4" and 2 * 65536 + 18458 == 149530
    assert [table[c].loinc for c in ("150020", "150021", "150022", "150023")] == [
        "85354-9",
        "8480-6",
        "8462-4",
        "8478-0",
    ]
    assert table["150364"].loinc == "8310-5"
    assert table["188736"].loinc == "29463-7"


def test_loinc_for_mdc_needs_an_mdc_coding() -> None:
    assert loinc_for_mdc(None) is None
    assert (
        loinc_for_mdc({"coding": [{"system": "http://snomed.info/sct", "code": "150456"}]}) is None
    )
    coding = loinc_for_mdc(
        {"coding": [{"system": MDC, "code": "150456"}]}, {"value": 97, "code": "%"}
    )
    assert coding is not None and coding.code == "59408-5"


def test_doc_lists_every_row() -> None:
    from conftest import REPO

    page = (REPO / "docs" / "formats" / "ieee11073.md").read_text()
    for code, row in mdc_table().items():
        assert f"| {code} | `{row.mdc_refid}` | {row.loinc}" in page, code
