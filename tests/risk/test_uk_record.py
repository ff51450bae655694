"""A record from UK general practice, end to end: SNOMED CT-coded vital signs and results (as GP
Connect sends them), a smoking status and a family history recorded as findings with a yes (as
the NHS Health Check online sends them), the NHS ethnic category and a patient referenced by NHS
number. Imported on both store back-ends and read by QRISK3 and SCORE2 with nothing guessed but
the Townsend score (which no record holds)."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from tests.risk.records import risk_text

from medtwin.ingest import import_paths
from medtwin.record.facts import LOINC, SNOMED, Observation
from medtwin.risk.from_record import evaluate
from medtwin.risk.qrisk3 import QRISK3
from medtwin.risk.score2 import CHOLESTEROL_MG_PER_MMOL
from medtwin.store.sql import SqlStore

SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
YES = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0532", "code": "Y"}]}
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
AT = dt.date(2025, 6, 30)
SBP = [(2021, 148.0), (2023, 136.0), (2025, 142.0)]  # (year, mmHg): QRISK3's SD over 5 years


def _entry(rid: str, resource: dict[str, Any]) -> dict[str, Any]:
    resource = {"id": rid, **resource}
    return {
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{rid}"},
    }


def _observation(rid: str, code: str, display: str, when: str, **value: Any) -> dict[str, Any]:
    return _entry(rid, {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
        # a logical reference, by NHS number, as the NHS Health Check online sends it
        "subject": {"identifier": {"system": NHS_NUMBER, "value": "9990001235"}},
        "effectiveDateTime": when, **value,
    })  # fmt: skip


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def _bundle() -> dict[str, Any]:
    when = "2025-05-20T10:15:00+01:00"
    patient = _entry("uk-1", {
        "resourceType": "Patient", "gender": "male", "birthDate": "1963-02-11",
        "identifier": [{"system": NHS_NUMBER, "value": "9990001235"}],
        "name": [{"family": "Patel", "given": ["Ravi"]}],
        "address": [{"use": "home", "city": "Leicester", "country": "GB"}],
        "extension": [{
            "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
            "valueCodeableConcept": {"coding": [{
                "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland",
                "code": "H", "display": "Asian or Asian British - Indian"}]},
        }],
    })  # fmt: skip
    entries = [patient]
    for year, sbp in SBP:  # GP Connect's blood pressure structure: panel + SNOMED components
        entries.append(_entry(f"bp-{year}", {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": SCT, "code": "75367002", "display": "Blood pressure"}]},
            "subject": {"reference": "Patient/uk-1"},
            "effectiveDateTime": f"{year}-05-20T10:00:00+01:00",
            "component": [
                {"code": {"coding": [{"system": SCT, "code": "72313002",
                                      "display": "Systolic arterial pressure"}]},
                 **_quantity(sbp, "mm[Hg]")},
                {"code": {"coding": [{"system": SCT, "code": "1091811000000102",
                                      "display": "Diastolic arterial pressure"}]},
                 **_quantity(86, "mm[Hg]")},
            ],
        }))  # fmt: skip
    entries += [
        _observation("chol", "1005671000000105", "Serum cholesterol level", when,
                     **_quantity(5.6, "mmol/L")),
        _observation("hdl", "1005681000000107", "Serum HDL cholesterol level", when,
                     **_quantity(1.2, "mmol/L")),
        _observation("bmi", "60621009", "Body mass index", when, **_quantity(27.5, "kg/m2")),
        _observation("creat", "1000731000000107", "Serum creatinine level", when,
                     **_quantity(88, "umol/L")),
        _observation("a1c", "999791000000106", "HbA1c level - IFCC standardised", when,
                     **_quantity(39, "mmol/mol")),
        _observation("smoke", "160604004", "Moderate cigarette smoker (10-19 cigs/day)", when,
                     valueCodeableConcept=YES),
        _observation("fh", "266895004",
                     "Family history: Ischemic heart disease at less than 60 years", when,
                     valueCodeableConcept=YES),
    ]  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def imported(store: SqlStore, folder: Path, bundle: dict[str, Any]) -> str:
    """``bundle`` written to ``folder`` and imported whole: the medtwin id of its patient."""
    path = folder / "uk.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    report = import_paths(store, [path], workers=0)
    assert report.counts.get("quarantined", 0) == 0, report.counts
    return str(store.resolve_patient(f"{NHS_NUMBER}|9990001235"))


@pytest.fixture
def uk(store: SqlStore, tmp_path: Path) -> str:
    return imported(store, tmp_path, _bundle())


def test_snomed_coded_results_are_stored_under_loinc_with_the_source_coding_kept(
    store: SqlStore, uk: str
) -> None:
    facts = {
        sf.fact.source_id: sf.fact
        for sf in store.timeline(uk, kinds=("Observation",), include_raw=True)
    }
    assert isinstance(chol := facts["Observation/chol"], Observation)
    assert (chol.code.system, chol.code.code) == (LOINC, "14647-2")  # type: ignore[union-attr]
    assert (chol.value_num, chol.unit) == (5.6, "mmol/L")
    assert chol.raw is not None and chol.raw["code"]["coding"][0]["code"] == "1005671000000105"
    systolic = facts["Observation/bp-2025#72313002"]
    assert systolic.code.code == "8480-6" and systolic.value_num == 142.0  # type: ignore[union-attr]
    assert facts["Observation/bp-2025"].code.code == "85354-9"  # type: ignore[union-attr]
    a1c = facts["Observation/a1c"]
    assert (a1c.code.code, a1c.unit) == ("59261-8", "mmol/mol")  # type: ignore[union-attr]
    # the smoking finding as the answer of LOINC 72166-2; the family history stays SNOMED CT
    smoke = facts["Observation/smoke"]
    assert smoke.code.code == "72166-2"  # type: ignore[union-attr]
    assert smoke.value_code is not None and (smoke.value_code.system, smoke.value_code.code) == (  # type: ignore[attr-defined]
        SNOMED, "160604004",
    )  # fmt: skip
    assert facts["Observation/fh"].code.code == "266895004"  # type: ignore[union-attr]


def test_qrisk3_from_a_uk_record_equals_the_same_numbers_given_directly(
    store: SqlStore, uk: str
) -> None:
    out = evaluate(store, uk, AT, scores=["qrisk3_10y", "score2_10y"])
    d = out.inputs
    mmol = CHOLESTEROL_MG_PER_MMOL
    assert d["total_cholesterol_mg_dl"].value == pytest.approx(5.6 * mmol, rel=1e-12)
    assert d["cholesterol_hdl_ratio"].value == pytest.approx(5.6 / 1.2, rel=1e-12)
    assert d["systolic_bp_mm_hg"].value == 142.0
    assert d["systolic_bp_sd_mm_hg"].value == pytest.approx(statistics.stdev(s for _, s in SBP))
    assert (d["smoker"].value, d["smoking_category"].value) == (True, "moderate")
    assert d["family_history_chd"].value is True
    assert d["family_history_chd"].detail.startswith("266895004")
    assert d["ethnicity"].value == "indian"
    assert d["bmi_kg_m2"].value == 27.5
    assert d["creatinine_mg_dl"].status == "ok" and d["hba1c_percent"].status == "ok"
    assert d["egfr_ml_min_1_73m2"].status == "computed"
    qrisk3, score2 = out.scores
    row = {
        "age_years": d["age_years"].value, "sex": "male", "ethnicity": "indian",
        "townsend_score": 0.0, "smoking_category": "moderate", "diabetes_type": "none",
        "bmi_kg_m2": 27.5, "cholesterol_hdl_ratio": 5.6 / 1.2, "systolic_bp_mm_hg": 142.0,
        "systolic_bp_sd_mm_hg": statistics.stdev(s for _, s in SBP), "prior_cvd": False,
        "family_history_chd": True,
    }  # fmt: skip
    from medtwin.risk.qrisk3 import BINARY_INPUTS

    for name, _ in BINARY_INPUTS:
        row.setdefault(name, False)
    expected = QRISK3.compute_one(row)
    assert qrisk3.status == "computed", qrisk3.message
    assert qrisk3.value == pytest.approx(expected.value, rel=1e-12)
    # the only input QRISK3 substitutes is the Townsend score, and it says so
    assert "townsend" in qrisk3.message.lower()
    assert score2.status == "computed", score2.message
    assert d["risk_region"].value == "low"  # the United Kingdom (ESC 2021 low-risk countries)
    assert d["risk_region"].detail.startswith("address country GB (United Kingdom)")


def test_the_risk_report_of_a_uk_record(store: SqlStore, uk: str) -> None:
    text = risk_text(store, uk, AT.isoformat(), "qrisk3_10y")
    assert "qrisk3_10y" in text and "moderate" in text and "266895004" in text


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ({}, True),
        ({"valueCodeableConcept": YES}, True),
        ({"valueBoolean": True}, True),
        ({"valueCodeableConcept": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0532", "code": "N"}]}}, False),
    ],
)  # fmt: skip
def test_a_family_history_finding_answered_yes_or_no(
    sqlite_store: SqlStore, tmp_path: Path, value: dict[str, Any], read: bool
) -> None:
    bundle = _bundle()
    [fh] = [e for e in bundle["entry"] if e["resource"]["id"] == "fh"]
    fh["resource"].pop("valueCodeableConcept")
    fh["resource"].update(value)
    pid = imported(sqlite_store, tmp_path, bundle)
    d = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"]).inputs
    assert d["family_history_chd"].value is read
    assert d["family_history_chd"].status == ("ok" if read else "absent")


def test_the_summary_files_uncategorised_results_by_the_loinc_table(
    store: SqlStore, uk: str
) -> None:
    """GP Connect sends Observations without a category: the summary files them under medtwin's
    category for their LOINC code (vital signs, laboratory) instead of leaving them out."""
    from medtwin.store.summary import patient_summary

    summary = patient_summary(store, uk)
    assert {"label": "NHS number", "value": "999 000 1235", "system": NHS_NUMBER} in (
        summary["identifiers"]
    )
    vitals = {row["code"].removeprefix("LOINC "): row for row in summary["vital_signs"]}
    labs = {row["code"].removeprefix("LOINC "): row for row in summary["labs"]}
    assert vitals["8480-6"]["value_num"] == 142.0 and vitals["8480-6"]["date"] == "2025-05-20"
    assert vitals["39156-5"]["value_num"] == 27.5
    assert (labs["14647-2"]["value_num"], labs["14647-2"]["unit"]) == (5.6, "mmol/L")
    assert labs["59261-8"]["unit"] == "mmol/mol" and "14682-9" in labs
    # the smoking status and the family history are neither; the smoking status has its line
    assert "72166-2" not in vitals and "72166-2" not in labs
    assert summary["smoking"] == {
        "status": "Moderate cigarette smoker (10-19 cigs/day)", "code": "SNOMED 160604004",
        "date": "2025-05-20",
    }  # fmt: skip


def test_glucose_coded_the_uk_way_is_shown_as_sent(sqlite_store: SqlStore, tmp_path: Path) -> None:
    """A GP record's glucose ("Blood glucose level", "Plasma fasting glucose level") in mmol/L is
    stored under LOINC in mg/dL, the unit medtwin computes with; the summary shows it as the
    laboratory reported it, and the timeline gives both."""
    from click.testing import CliRunner

    from medtwin.cli import main
    from medtwin.record.units import convert
    from medtwin.store.summary import patient_summary

    bundle = _bundle()
    bundle["entry"] += [
        _observation("glu", "997671000000106", "Blood glucose level", "2025-05-20T10:15:00+01:00",
                     **_quantity(5.4, "mmol/L")),
        _observation("fpg", "1003141000000105", "Plasma fasting glucose level",
                     "2025-05-21T08:30:00+01:00", **_quantity(6.0, "mmol/L")),
    ]  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    labs = {row["code"]: row for row in patient_summary(sqlite_store, pid)["labs"]}
    blood, fasting = labs["LOINC 2339-0"], labs["LOINC 1558-6"]
    # as the laboratory wrote it: 6.0 with its decimal (a float alone would print 6)
    assert blood["value"] == "5.4 mmol/L" and fasting["value"] == "6.0 mmol/L"
    assert blood["unit"] == "mg/dL" and blood["value_num"] == pytest.approx(
        convert(5.4, "mmol/L", "mg/dL", analyte="glucose"), rel=1e-12
    )
    assert blood["value_num"] == pytest.approx(97.28, abs=0.005)  # 5.4 x 18.0156 (180.156 g/mol)
    assert (blood["original_value"], blood["original_unit"]) == (5.4, "mmol/L")
    # a result sent in the unit it is stored in has nothing more to say
    assert labs["LOINC 14647-2"]["value"] == "5.6 mmol/L"
    text = CliRunner().invoke(
        main, ["timeline", pid, "--code", "2339-0", "--store", str(tmp_path / "medtwin.db")]
    )
    assert text.exit_code == 0, text.output
    assert "97.28 mg/dL (sent as 5.4 mmol/L)" in text.output


def test_a_result_reported_as_a_bound_is_not_taken_as_its_value(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """Laboratories report a high eGFR as ">90": the bound is not the value. Without a
    creatinine to compute it from, PREVENT gives its range over eGFR 90 to 150 (its input
    range), equal to the two ends given exactly; the 30-year equations still refuse the
    62-year-old for his age, not for the eGFR. `show` says ">90"."""
    from medtwin.risk.from_record import parse_given
    from medtwin.store.summary import patient_summary

    bundle = _bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["id"] != "creat"]
    bounded = _quantity(90, "mL/min/{1.73_m2}")
    bounded["valueQuantity"]["comparator"] = ">"
    bundle["entry"].append(
        _observation("egfr", "1011481000000105", "eGFR (CKD-EPI)", "2025-05-20T10:15:00+01:00",
                     **bounded)
    )  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    report = evaluate(sqlite_store, pid, AT, variation=False)
    egfr = report.inputs["egfr_ml_min_1_73m2"]
    assert (egfr.value, egfr.status, egfr.alternatives) == (None, "missing", (90.0, 150.0))
    assert "reported as >90 mL/min/{1.73_m2}: a bound, not a value" in egfr.detail
    scores = {o.name: o for o in report.scores}
    ten = scores["prevent_10y"]
    assert ten.status == "range" and ten.message.endswith("90 to 150")
    ends = [
        evaluate(sqlite_store, pid, AT, scores=["prevent_10y"], variation=False,
                 given=parse_given([f"egfr_ml_min_1_73m2={v}"])).scores[0].value
        for v in (90, 150)
    ]  # fmt: skip
    assert sorted(ends) == [ten.low, ten.high] and ten.low < ten.high  # type: ignore[operator]
    thirty = scores["prevent_30y"]
    assert thirty.status == "refused" and "age_years=62 is outside 30-59" in thirty.message
    labs = {r["code"]: r for r in patient_summary(sqlite_store, pid)["labs"]}
    assert labs["LOINC 62238-1"]["value"] == ">90 mL/min/1.73m²"


def test_dm_d_coded_prescriptions_are_read_by_their_names(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """UK prescriptions are coded in dm+d (the NHS Dictionary of Medicines and Devices) and named
    in British usage: an antihypertensive is treatment, a statin puts QRISK3 out of its
    population (it refuses, saying so, as for an RxNorm-coded statin)."""
    bundle = _bundle()
    for rid, code, name in [
        ("m1", "39732311000001104", "Amlodipine 5mg tablets"),
        ("m2", "1", "Co-amilozide 2.5mg/25mg tablets"),
        ("m3", "2", "Atorvastatin 20mg tablets"),
    ]:
        bundle["entry"].append(_entry(rid, {
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": "https://dmd.nhs.uk", "code": code, "display": name}]},
            "subject": {"reference": "Patient/uk-1"}, "authoredOn": "2024-01-10",
        }))  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    out = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"])
    d = out.inputs
    assert d["bp_treated"].value is True
    assert d["bp_treated"].detail.startswith("active amiloride, hydrochlorothiazide, amlodipine")
    assert d["statin"].value is True
    (qrisk3,) = out.scores
    assert qrisk3.status == "refused" and "on a statin" in qrisk3.message


def _orders(*names: str) -> dict[str, Any]:
    """The example record with an active dm+d-coded order of each product name (AMP codes
    medtwin does not know: read by name)."""
    bundle = _bundle()
    for i, name in enumerate(names):
        bundle["entry"].append(_entry(f"rx{i}", {
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": "https://dmd.nhs.uk", "code": str(9000 + i), "display": name}]},
            "subject": {"reference": "Patient/uk-1"}, "authoredOn": "2024-01-10",
        }))  # fmt: skip
    return bundle


def test_products_prescribed_by_brand_name(sqlite_store: SqlStore, tmp_path: Path) -> None:
    """A dm+d actual medicinal product is named by its brand ("Lipitor 20mg tablets (Upjohn UK
    Ltd)"): the brand's ingredients are read (RxNorm brand names and the UK's, BNF), so the
    amlodipine is treatment, the atorvastatin a statin; QRISK3's items read brands too: the
    olanzapine, and the oral prednisolone (tablets, without "oral" in the name)."""
    bundle = _orders(
        "Lipitor 20mg tablets (Upjohn UK Ltd)",
        "Istin 5mg tablets (Upjohn UK Ltd)",
        "Zyprexa 5mg tablets (Eli Lilly and Company Ltd)",
        "Prednisolone 5mg tablets",
        "Viagra 50mg tablets (Upjohn UK Ltd)",
    )
    pid = imported(sqlite_store, tmp_path, bundle)
    d = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False).inputs
    assert d["statin"].value is True and "atorvastatin" in d["statin"].detail
    assert d["bp_treated"].value is True and "amlodipine" in d["bp_treated"].detail
    assert d["atypical_antipsychotic"].value is True
    assert d["atypical_antipsychotic"].detail == "active zyprexa"
    assert d["corticosteroids"].value is True
    assert d["erectile_dysfunction"].value is True


def test_a_steroid_not_swallowed_is_not_qrisk3s_steroid_tablets(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """Buccal hydrocortisone tablets (for mouth ulcers) and a prednisolone enema are local
    treatments, not QRISK3's regular steroid tablets."""
    bundle = _orders(
        "Hydrocortisone 2.5mg muco-adhesive buccal tablets",
        "Prednisolone 20mg/100ml enema",
    )
    pid = imported(sqlite_store, tmp_path, bundle)
    d = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False).inputs
    assert d["corticosteroids"].value is False


@pytest.mark.parametrize(
    ("code", "display"),
    [
        ("700379002", "Chronic kidney disease stage 3B"),
        ("324251000000105", "Chronic kidney disease stage 3 with proteinuria"),
    ],
)
def test_a_uk_staged_ckd_diagnosis_is_qrisk3s_ckd_3_to_5(
    sqlite_store: SqlStore, tmp_path: Path, code: str, display: str
) -> None:
    bundle = _bundle()
    bundle["entry"].append(_entry("ckd", {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
        "subject": {"reference": "Patient/uk-1"}, "onsetDateTime": "2022-03-01",
    }))  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    d = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"]).inputs
    assert d["ckd_stage_3_5"].value is True and code in d["ckd_stage_3_5"].detail


def test_an_nhs_number_is_checked_and_stored_as_its_ten_digits(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """A mistyped NHS number (its modulus 11 check digit fails) is refused with the field named,
    and what names the patient by it waits with it; written with spaces it is the same number."""
    from medtwin.record.codes import nhs_number

    assert nhs_number("9990001234") is None and nhs_number("999 000 1235") == "9990001235"
    bundle = _bundle()
    patient = bundle["entry"][0]["resource"]
    patient["identifier"][0]["value"] = "9990001234"  # check digit 5, not 4
    for entry in bundle["entry"][1:]:
        subject = entry["resource"]["subject"]
        if "identifier" in subject:
            subject["identifier"]["value"] = "9990001234"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    report = import_paths(sqlite_store, [path], workers=0)
    items = {e.item.resource_id: e.item for e in sqlite_store.quarantine()}
    assert items["uk-1"].field == "Patient.identifier[0].value"
    assert "NHS number '9990001234' is not valid" in items["uk-1"].reason
    # the observations that name the patient by the same number, and those that reference it
    assert items["smoke"].field == "Observation.subject.identifier.value"
    assert "bp-2025" in items and report.counts["quarantined"] == len(items)
    # fixed: 999 000 1235, written with spaces, is stored as its 10 digits
    patient["identifier"][0]["value"] = "999 000 1235"
    for entry in bundle["entry"][1:]:
        subject = entry["resource"]["subject"]
        if "identifier" in subject:
            subject["identifier"]["value"] = "9990001235"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    import_paths(sqlite_store, [path], workers=0)
    pid = str(sqlite_store.resolve_patient(f"{NHS_NUMBER}|9990001235"))
    # found as printed on an NHS card too, with or without the system
    assert sqlite_store.resolve_patient("999 000 1235") == pid
    assert sqlite_store.resolve_patient(f"{NHS_NUMBER}|999-000-1235") == pid
    kinds = {sf.fact.source_id for sf in sqlite_store.timeline(pid, kinds=("Observation",))}
    assert {"Observation/smoke", "Observation/chol"} <= kinds


def test_the_example_uk_record_of_the_demo(sqlite_store: SqlStore) -> None:
    """examples/records/uk-gp-record.json (what `make demo` imports) is the bundle above with a
    hypertension diagnosis and an amlodipine prescription in dm+d: it imports whole, and QRISK3
    and SCORE2 are computed at its last check-up, the treated hypertension read."""
    from conftest import REPO

    path = REPO / "examples" / "records" / "uk-gp-record.json"
    report = import_paths(sqlite_store, [path], workers=0)
    assert report.counts.get("quarantined", 0) == 0 and report.counts["inserted"] > 15
    pid = str(sqlite_store.resolve_patient("9990001235"))
    out = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y", "score2_10y"], variation=False)
    assert [s.status for s in out.scores] == ["computed", "computed"]
    assert out.inputs["bp_treated"].value is True
    assert out.inputs["bp_treated"].detail.startswith("active amlodipine")


@pytest.mark.parametrize(
    ("code", "display", "group"),
    [
        ("92461000000105", "Pakistani or British Pakistani - ethnic category 2001 census",
         "pakistani"),
        ("976911000000101", "Black or African or Caribbean or Black British: Caribbean - "
         "England and Wales ethnic category 2011 census", "black_caribbean"),
        ("92441000000109", "White and Asian - ethnic category 2001 census", "other"),
        ("976631000000101", "White: English or Welsh or Scottish or Northern Irish or British - "
         "England and Wales ethnic category 2011 census", "white_or_not_stated"),
    ],
)  # fmt: skip
def test_an_ethnic_category_recorded_as_a_snomed_observation(
    sqlite_store: SqlStore, tmp_path: Path, code: str, display: str, group: str
) -> None:
    """UK general practice records the ethnic category as an Observation coded in SNOMED CT
    (census categories); read when the Patient carries no ethnic category extension."""
    bundle = _bundle()
    bundle["entry"][0]["resource"].pop("extension")
    bundle["entry"].append(_observation("eth", code, display, "2019-03-04T10:00:00Z"))
    pid = imported(sqlite_store, tmp_path, bundle)
    d = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False).inputs
    assert d["ethnicity"].value == group and d["ethnicity"].detail.startswith(code)
    assert d["ethnicity"].provenance[0].source_id == "Observation/eth"


def test_the_ethnicity_table_is_sound() -> None:
    from medtwin.risk.inputs import table_codes
    from medtwin.risk.qrisk3_inputs import NHS_CATEGORY_OF_GROUP, UK_ETHNIC_QRISK3

    table = table_codes("snomed_ethnicity.csv")
    assert len(table) == 191
    groups = {int(row["group"]) for row in table.values()}
    assert groups == set(range(1, 17))  # every NHS category A to S has its concepts
    assert set(NHS_CATEGORY_OF_GROUP) <= set(UK_ETHNIC_QRISK3)
    for row in table.values():  # the census concepts only
        assert "ethnic category 20" in row["display"], row


def test_cigarette_consumption_gives_qrisk3_the_amount(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """A "Cigarette smoker" finding says current but not how much; the "Cigarette consumption"
    observable recorded with it (25 a day, in GP systems' "cigs/day") makes QRISK3's group heavy."""
    bundle = _bundle()
    [smoke] = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "smoke"]
    smoke["code"]["coding"][0].update(code="65568007", display="Cigarette smoker")
    bundle["entry"].append(_observation(
        "cigs", "230056004", "Cigarette consumption", "2025-05-20T10:15:00+01:00",
        valueQuantity={"value": 25, "unit": "cigs/day"},
    ))  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    d = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False).inputs
    assert d["smoking_category"].value == "heavy"
    assert "25 cigarettes a day (LOINC 64218-1)" in d["smoking_category"].detail


def test_a_uk_record_round_trips_through_fhir_export(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """Import -> export -> import gives the same facts: the export sends the resources as the
    practice sent them (SNOMED CT codes, dm+d, mmol/L) and the second import maps them alike;
    importing the same file again changes nothing."""
    from conftest import REPO
    from medtwin.export import patient_bundle
    from medtwin.store import open_store

    first = REPO / "examples" / "records" / "uk-gp-record.json"
    import_paths(sqlite_store, [first], workers=0)
    pid = str(sqlite_store.resolve_patient("9990001235"))
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(patient_bundle(sqlite_store, pid)), encoding="utf-8")
    again = import_paths(sqlite_store, [first], workers=0)
    assert again.counts["inserted"] == 0 and again.counts["new_versions"] == 0

    def keys(store: SqlStore) -> set[tuple[str, str, str]]:
        return {
            (sf.fact.kind, sf.fact.source_id, sf.content_hash)
            for sf in store.iter_facts(patient_id=str(store.resolve_patient("9990001235")))
        }

    other = open_store(str(tmp_path / "other.db"), actor="test")
    try:
        report = import_paths(other, [exported], workers=0)
        assert report.counts["quarantined"] == 0
        assert keys(other) == keys(sqlite_store)
        chol = [sf for sf in other.timeline(str(other.resolve_patient("9990001235")),
                                            codes=["14647-2"], include_raw=True)]  # fmt: skip
        assert chol[0].fact.raw["code"]["coding"][0]["code"] == "1005671000000105"  # type: ignore[index]
    finally:
        other.close()


def test_a_conditional_reference_by_nhs_number_as_printed(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """``Patient?identifier=<NHS system>|999 000 1235`` resolves to the Patient whose NHS number
    is 9990001235, in the same Bundle and, later, in the store."""
    bundle = _bundle()
    ref = {"reference": f"Patient?identifier={NHS_NUMBER}|999 000 1235"}
    bundle["entry"].append(_entry("wt", {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": SCT, "code": "27113001", "display": "Body weight"}]},
        "subject": ref, "effectiveDateTime": "2025-05-20T10:15:00+01:00",
        **_quantity(81.5, "kg"),
    }))  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    later = tmp_path / "later.json"
    later.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        _entry("wt2", {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": SCT, "code": "27113001"}]},
            "subject": ref, "effectiveDateTime": "2025-06-20T10:15:00+01:00",
            **_quantity(80.9, "kg"),
        }),
    ]}), encoding="utf-8")  # fmt: skip
    assert import_paths(sqlite_store, [later], workers=0).counts.get("quarantined", 0) == 0
    weights = [sf.fact.value_num for sf in sqlite_store.timeline(pid, codes=["29463-7"])]
    assert weights == [81.5, 80.9]


@pytest.mark.parametrize(
    ("onset", "verification", "smoker", "status"),
    [
        ("2025-02-01", "confirmed", False, "ok"),  # an ex-smoker on the problem list
        ("2021-02-01", "confirmed", None, "stale"),  # said 4 years ago: not taken as current
        ("2025-02-01", "refuted", None, "missing"),  # refuted: as if not there
    ],
)
def test_a_smoking_finding_on_the_problem_list(
    sqlite_store: SqlStore, tmp_path: Path, onset: str, verification: str,
    smoker: bool | None, status: str,
) -> None:  # fmt: skip
    """Without any smoking status Observation, a smoking finding recorded as a Condition (a
    problem list's "Ex-smoker") answers it, dated by its onset and with the same one-year
    window."""
    bundle = _bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["id"] != "smoke"]
    bundle["entry"].append(_entry("exsmoker", {
        "resourceType": "Condition",
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": verification}]},
        "code": {"coding": [{"system": SCT, "code": "8517006", "display": "Ex-smoker"}]},
        "subject": {"reference": "Patient/uk-1"}, "onsetDateTime": onset,
    }))  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    d = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False).inputs
    assert (d["smoker"].value, d["smoker"].status) == (smoker, status)
    if status == "ok":
        assert d["smoking_category"].value == "ex_smoker"
        assert d["smoker"].provenance[0].source_id == "Condition/exsmoker"


@pytest.mark.parametrize(
    ("code", "display", "kind"),
    [
        ("313436004", "Type 2 diabetes mellitus without complication", "type2"),
        ("81531005", "Diabetes mellitus type 2 in obese", "type2"),
        ("237599002", "Insulin treated type 2 diabetes mellitus", "type2"),
        ("11530004", "Brittle type I diabetes mellitus", "type1"),
    ],
)
def test_diabetes_coded_with_a_more_specific_concept(
    sqlite_store: SqlStore, tmp_path: Path, code: str, display: str, kind: str
) -> None:
    """EHRs code the type with specific concepts ("Type 2 diabetes mellitus without
    complication"); read as diabetes and its type, so SCORE2 gives way to SCORE2-Diabetes and
    QRISK3 takes the type."""
    bundle = _bundle()
    bundle["entry"].append(_entry("dm", {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
        "subject": {"reference": "Patient/uk-1"}, "onsetDateTime": "2019-04-01",
    }))  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    out = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y", "score2_10y"], variation=False)
    assert out.inputs["diabetes"].value is True
    assert out.inputs["diabetes_type"].value == kind
    assert out.inputs["type_2_diabetes"].value is (kind == "type2")
    score2 = out.scores[1]
    assert score2.status == "refused" and "diabetes" in score2.message


def test_the_diabetes_list_holds_every_typed_concept() -> None:
    from medtwin.risk.af_inputs import condition_sets

    sets = condition_sets()
    typed = set(sets["diabetes_type1"]["snomed"]) | set(sets["diabetes_type2"]["snomed"])
    assert typed <= set(sets["diabetes"]["snomed"])
    assert not set(sets["diabetes_type1"]["snomed"]) & set(sets["diabetes_type2"]["snomed"])


@pytest.mark.parametrize(
    ("code", "display"),
    [
        ("57054005", "Acute myocardial infarction"),
        ("1755008", "Old myocardial infarction"),
        ("4557003", "Preinfarction syndrome"),
        ("194843003", "Double coronary vessel disease"),
        ("432504007", "Cerebral infarction"),
    ],
)
def test_cardiovascular_disease_coded_with_a_specific_concept(
    sqlite_store: SqlStore, tmp_path: Path, code: str, display: str
) -> None:
    """A heart attack coded "Acute myocardial infarction" (not the parent "Myocardial
    infarction") is prior cardiovascular disease all the same: QRISK3, the PCE and SCORE2 give
    way (secondary prevention), instead of computing a first-event risk."""
    bundle = _bundle()
    bundle["entry"].append(_entry("cvd", {
        "resourceType": "Condition",
        "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
        "subject": {"reference": "Patient/uk-1"}, "onsetDateTime": "2020-10-01",
    }))  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    out = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y", "pce_ascvd_10y", "score2_10y"],
                   variation=False)  # fmt: skip
    assert out.inputs["clinical_ascvd"].value is True and out.inputs["prior_cvd"].value is True
    assert [s.status for s in out.scores] == ["refused", "refused", "refused"]
