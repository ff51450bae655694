"""SNOMED CT-coded Observations (UK general practice, GP Connect, the NHS Health Check online):
observables -> LOINC by the value's unit, smoking findings -> LOINC 72166-2's answer; the tables'
soundness and the doc that lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from medtwin.ingest.fhir import read_bundle
from medtwin.ingest.snomed import affirmed, loinc_for_snomed, smoking_answer, snomed_table
from medtwin.record.codes import LOINC, canonical_unit, lookup, snomed_check_digit_ok
from medtwin.record.facts import SNOMED, Observation
from medtwin.record.smoking import QRISK3_GROUPS, smoking_table

V2_0532 = "http://terminology.hl7.org/CodeSystem/v2-0532"


def _concept(code: str) -> dict[str, Any]:
    return {"coding": [{"system": SNOMED, "code": code}]}


def _read(tmp_path: Path, resource: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    resource = {"resourceType": "Observation", "id": "o1", "status": "final",
                "effectiveDateTime": "2025-03-01T09:00:00Z", **resource}  # fmt: skip
    path = tmp_path / "o.json"
    path.write_bytes(orjson.dumps(resource))
    batch = read_bundle(path)
    facts = [fact for unit in batch.units for fact in unit.facts]
    return facts, list(batch.quarantine)


@pytest.mark.parametrize(
    ("snomed", "value", "unit", "loinc", "stored", "stored_unit"),
    [
        ("1005671000000105", 5.2, "mmol/L", "14647-2", 5.2, "mmol/L"),  # UK laboratories
        ("1005671000000105", 201, "mg/dL", "2093-3", 201, "mg/dL"),
        ("1005681000000107", 1.3, "mmol/L", "14646-4", 1.3, "mmol/L"),
        ("999791000000106", 48, "mmol/mol", "59261-8", 48, "mmol/mol"),  # IFCC HbA1c
        ("1003671000000109", 6.5, "%", "4548-4", 6.5, "%"),
        ("1000731000000107", 88, "umol/L", "14682-9", 88, "umol/L"),
        ("1000731000000107", 1.0, "mg/dL", "2160-0", 1.0, "mg/dL"),
        ("1022431000000105", 135, "g/L", "718-7", 13.5, "g/dL"),  # haemoglobin in g/L
        ("1023491000000104", 3.0, "mg/mmol", "9318-7", 3.0 * 8.8402, "mg/g"),  # UK ACR
        ("27113001", 80, "kg", "29463-7", 80, "kg"),
        ("162763007", 80, "kg", "29463-7", 80, "kg"),  # "On examination - weight"
        ("162755006", 1.75, "m", "8302-2", 175, "cm"),  # "On examination - height"
        ("72313002", 141, "mm[Hg]", "8480-6", 141, "mm[Hg]"),
    ],
)
def test_an_observable_is_stored_under_the_loinc_code_its_unit_names(
    tmp_path: Path, snomed: str, value: float, unit: str, loinc: str, stored: float,
    stored_unit: str,
) -> None:  # fmt: skip
    facts, quarantine = _read(tmp_path, {
        "code": _concept(snomed),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                          "code": unit},
    })  # fmt: skip
    assert not quarantine
    [fact] = facts
    assert isinstance(fact, Observation)
    assert (fact.code.system, fact.code.code) == (LOINC, loinc)  # type: ignore[union-attr]
    assert fact.value_num == pytest.approx(stored, rel=1e-3) and fact.unit == stored_unit
    assert (fact.original_value, fact.original_unit) == (value, unit)


def test_a_unit_no_loinc_candidate_can_express_keeps_the_snomed_code(tmp_path: Path) -> None:
    facts, quarantine = _read(tmp_path, {
        "code": _concept("1005671000000105"),
        "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "kg"},
    })  # fmt: skip
    assert not quarantine
    [fact] = facts
    assert (fact.code.system, fact.code.code) == (SNOMED, "1005671000000105")
    assert fact.value_num == 80 and fact.unit == "kg"


def test_a_loinc_coding_sent_with_it_wins(tmp_path: Path) -> None:
    concept = {"coding": [{"system": SNOMED, "code": "1005671000000105"},
                          {"system": LOINC, "code": "2093-3"}]}  # fmt: skip
    facts, _ = _read(tmp_path, {
        "code": concept,
        "valueQuantity": {"value": 5.2, "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    })  # fmt: skip
    [fact] = facts
    assert fact.code.code == "2093-3"  # the sender's LOINC, the value converted to mg/dL
    assert fact.unit == "mg/dL" and fact.value_num == pytest.approx(5.2 * 38.67, rel=1e-3)


def test_gp_connect_blood_pressure_panel(tmp_path: Path) -> None:
    component = [
        {"code": _concept("72313002"),
         "valueQuantity": {"value": 138, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
        {"code": _concept("1091811000000102"),
         "valueQuantity": {"value": 84, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
    ]  # fmt: skip
    facts, quarantine = _read(tmp_path, {"code": _concept("75367002"), "component": component})
    assert not quarantine
    codes = {f.source_id: (f.code.code, f.value_num) for f in facts}
    assert codes == {
        "Observation/o1": ("85354-9", None),
        # the source's own code names each component: stable if the mapping changes
        "Observation/o1#72313002": ("8480-6", 138),
        "Observation/o1#1091811000000102": ("8462-4", 84),
    }


@pytest.mark.parametrize(
    ("value", "mapped"),
    [
        ({}, True),  # the finding alone (GP Connect)
        ({"valueCodeableConcept": {"coding": [{"system": V2_0532, "code": "Y"}]}}, True),
        ({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "373066001"}]}}, True),
        ({"valueBoolean": True}, True),
        ({"valueCodeableConcept": {"coding": [{"system": V2_0532, "code": "N"}]}}, False),
        ({"valueBoolean": False}, False),
        ({"valueString": "smokes at weekends"}, False),
    ],
)
def test_a_smoking_finding_as_the_code_is_the_answer_of_72166_2(
    tmp_path: Path, value: dict[str, Any], mapped: bool
) -> None:
    facts, quarantine = _read(tmp_path, {"code": _concept("160603005"), **value})
    assert not quarantine
    [fact] = facts
    if mapped:
        assert (fact.code.system, fact.code.code) == (LOINC, "72166-2")
        assert fact.value_code.code == "160603005"  # type: ignore[attr-defined]
        assert fact.value_code.display == "Light cigarette smoker (1-9 cigs/day)"  # type: ignore[attr-defined]
    else:  # a "no" or another value: stored as sent, not read as a smoking status
        assert (fact.code.system, fact.code.code) == (SNOMED, "160603005")


def test_affirmed() -> None:
    assert affirmed({"code": {}}) is True
    assert affirmed({"valueQuantity": {"value": 1}}) is False
    assert affirmed({"valueCodeableConcept": {"coding": [{"system": V2_0532, "code": "Y"}]}})
    assert not affirmed({"valueCodeableConcept": {"text": "yes"}})  # uncoded: not read


def test_snomed_table_is_sound() -> None:
    table = snomed_table()
    assert len(table) >= 30
    for code, row in table.items():
        assert snomed_check_digit_ok(code), code
        assert row.source and row.snomed_display
        for loinc in row.loinc:
            assert lookup(LOINC, loinc) is not None, (code, loinc)
        # candidates of one observable differ in unit (mass or substance, % or mmol/mol)
        units = [canonical_unit(loinc) for loinc in row.loinc]
        assert len(set(units)) == len(units), (code, units)
    # the most used observation codes of English primary care (NHS England, 2023-24)
    for code in ("72313002", "1091811000000102", "1000731000000107", "60621009"):
        assert code in table


def test_loinc_for_snomed_needs_a_snomed_coding() -> None:
    assert loinc_for_snomed(None) is None
    assert loinc_for_snomed({"coding": [{"system": LOINC, "code": "72313002"}]}) is None
    assert loinc_for_snomed(_concept("72313002")).code == "8480-6"  # type: ignore[union-attr]
    assert smoking_answer(_concept("8517006")).display == "Ex-smoker"  # type: ignore[union-attr]
    assert smoking_answer(_concept("72313002")) is None


def test_smoking_table_is_sound() -> None:
    table = smoking_table()
    for code, row in table.items():
        assert snomed_check_digit_ok(code), code
        assert row.qrisk3 is None or row.qrisk3 in QRISK3_GROUPS
    # QRISK3's groups by the UK findings' own words
    assert table["160603005"].qrisk3 == "light"  # 1-9 cigs/day
    assert table["160604004"].qrisk3 == "moderate"  # 10-19
    assert table["160605003"].qrisk3 == table["160606002"].qrisk3 == "heavy"  # 20-39, 40+
    assert table["266922007"].qrisk3 == "ex_smoker" and table["266922007"].current is False
    assert table["65568007"].current is True and table["65568007"].qrisk3 is None


def test_doc_lists_every_row() -> None:
    from conftest import REPO

    page = (REPO / "docs" / "formats" / "snomed.md").read_text(encoding="utf-8")
    for code, row in snomed_table().items():
        assert f"| {code} | {row.snomed_display} | {' '.join(row.loinc)} |" in page, code
    for code, finding in smoking_table().items():
        assert f"| {code} | {finding.display} |" in page, code
