"""QRISK3 from a record (medtwin.risk.qrisk3_inputs), on both store back-ends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from medtwin.record.facts import (
    LOINC,
    RXNORM,
    SNOMED,
    Coding,
    Condition,
    Demographics,
    Fact,
    Identifier,
    MedicationRequest,
    Observation,
    RawResource,
)
from medtwin.risk.from_record import evaluate
from medtwin.risk.inputs import derive_inputs
from medtwin.risk.qrisk3 import QRISK3
from medtwin.store.sql import SqlStore

WHO = Identifier("urn:test", "q1")
AT = dt.datetime(2024, 6, 30, 12, tzinfo=dt.UTC)
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
WHITE = {
    "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
    "extension": [
        {
            "url": "ombCategory",
            "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"},
        }
    ],
}


def _ago(days: float) -> dt.datetime:
    return AT - dt.timedelta(days=days)


def _obs(code: str, value: float, unit: str, days_before: float) -> Observation:
    return Observation(
        source="lab", source_id=f"{code}-{days_before}", subject=WHO, code=Coding(LOINC, code),
        status="final", effective_start=_ago(days_before), value_num=value, unit=unit,
    )  # fmt: skip


def _smoking(code: str, display: str) -> Observation:
    return Observation(
        source="ehr", source_id="smoking", subject=WHO, code=Coding(LOINC, "72166-2"),
        status="final", effective_start=_ago(40), value_code=Coding(SNOMED, code, display),
    )  # fmt: skip


def _cond(sid: str, system: str, code: str) -> Condition:
    return Condition(
        source="ehr", source_id=sid, subject=WHO, code=Coding(system, code),
        clinical_status="active", effective_start=_ago(1000),
    )  # fmt: skip


def _order(sid: str, display: str, route: str | None = None) -> MedicationRequest:
    return MedicationRequest(
        source="ehr", source_id=sid, subject=WHO, code=Coding(RXNORM, f"x-{sid}", display),
        status="active", effective_start=_ago(100), route=route,
    )  # fmt: skip


def _record(
    store: SqlStore, extra: list[Fact], extensions: list[dict[str, Any]] | None = None
) -> str:
    """A 65-year-old white man: cholesterol 200 / HDL 50 (ratio 4), systolic 110, 130, 120
    in the last five years (SD 10; latest 120), BMI 24.2, no diabetes."""
    facts: list[Fact] = [
        Demographics(
            source="reg", source_id="Patient/q1", subject=WHO, identifiers=(WHO,),
            birth_date="1959-01-15", gender="male",
            raw={"resourceType": "Patient", "extension": [WHITE] if extensions is None else extensions},
        ),
        _obs("2093-3", 200.0, "mg/dL", 30),
        _obs("2085-9", 50.0, "mg/dL", 30),
        _obs("8480-6", 110.0, "mm[Hg]", 1500),
        _obs("8480-6", 130.0, "mm[Hg]", 700),
        _obs("8480-6", 120.0, "mm[Hg]", 20),
        _obs("8480-6", 180.0, "mm[Hg]", 2000),  # more than 5 years ago: not in the SD
        _obs("39156-5", 24.22, "kg/m2", 20),
    ]  # fmt: skip
    store.append_facts(facts + extra, source="test")
    return store.resolve_patient(f"{WHO.system}|{WHO.value}")


EXPLICIT = {
    "age_years": 65, "sex": "male", "ethnicity": "white", "townsend_score": 0,
    "smoking_category": "non_smoker", "diabetes_type": "none", "bmi_kg_m2": 24.22,
    "cholesterol_hdl_ratio": 4, "systolic_bp_mm_hg": 120, "systolic_bp_sd_mm_hg": 10,
    "family_history_chd": False, "ckd_stage_3_5": False, "atrial_fibrillation": False,
    "bp_treated": False, "migraine": False, "rheumatoid_arthritis": False, "sle": False,
    "severe_mental_illness": False, "atypical_antipsychotic": False, "corticosteroids": False,
    "erectile_dysfunction": False, "prior_cvd": False,
}  # fmt: skip


def test_qrisk3_from_the_record_equals_the_score_of_the_same_inputs(store: SqlStore) -> None:
    """Every input of QRISK3 read from the record gives the value of the score computed from
    the same inputs given directly (the module's worked example: 12.7 %); what a record cannot
    hold (Townsend score, family history) is QRISK3's own substitute, and the report says so."""
    pid = _record(store, [_smoking("266919005", "Never smoked tobacco")])
    d = derive_inputs(store, pid, AT)
    assert d["cholesterol_hdl_ratio"].value == pytest.approx(4.0)
    assert d["systolic_bp_sd_mm_hg"].value == pytest.approx(10.0)
    assert d["smoking_category"].value == "non_smoker" and d["diabetes_type"].value == "none"
    assert d["ethnicity"].value == "white_or_not_stated"
    (q,) = evaluate(store, pid, AT, scores=["qrisk3_10y"]).scores
    expected = QRISK3.compute_one(EXPLICIT)
    assert q.status == "computed" and q.value is not None
    assert q.value == pytest.approx(expected.value, abs=1e-9)
    assert round(q.value, 1) == 12.7 and q.band == "10_percent_or_more"
    assert q.message.startswith("with qrisk3_10y's substitutes for missing townsend_score")
    assert "family_history_chd" in q.message


@pytest.mark.parametrize(
    ("code", "display", "category"),
    [
        ("8517006", "Ex-smoker", "ex_smoker"),
        ("428061000124105", "Light tobacco smoker", "light"),
        ("428041000124106", "Occasional tobacco smoker", "light"),
        ("56578002", "Moderate smoker", "moderate"),
        ("428071000124103", "Heavy tobacco smoker", "heavy"),
        ("449868002", "Smokes tobacco daily", None),
    ],
)
def test_smoking_status_answers_as_qrisk3_groups(
    store: SqlStore, code: str, display: str, category: str | None
) -> None:
    """A daily smoker whose amount is not recorded cannot be placed in QRISK3's light /
    moderate / heavy groups: QRISK3 says it cannot compute, naming why."""
    pid = _record(store, [_smoking(code, display)])
    smoking = derive_inputs(store, pid, AT)["smoking_category"]
    assert smoking.value == category
    (q,) = evaluate(store, pid, AT, scores=["qrisk3_10y"]).scores
    if category is None:
        # QRISK3 over the groups a current smoker can be in: light (the lowest) to heavy
        assert smoking.alternatives == ("light", "moderate", "heavy")
        assert q.status == "range" and "QRISK3 needs how many a day" in q.message
        assert "): light or moderate or heavy; with qrisk3_10y's substitutes" in q.message
        light, heavy = (
            QRISK3.compute_one({**EXPLICIT, "smoking_category": c}).value
            for c in ("light", "heavy")
        )
        assert (q.low, q.high) == (pytest.approx(light), pytest.approx(heavy))
    else:
        assert q.status == "computed"
        assert q.value == pytest.approx(
            QRISK3.compute_one({**EXPLICIT, "smoking_category": category}).value
        )


@pytest.mark.parametrize(
    ("code", "value", "unit", "category"),
    [
        ("64218-1", 15.0, "/d", "moderate"),  # cigarettes a day now
        ("64218-1", 4.0, "{cigarettes}/d", "light"),
        ("8663-7", 1.5, "{pack}/d", "heavy"),  # packs a day: 30 cigarettes
        ("8663-7", 30.0, "{PackYears}", None),  # pack-years, not an amount a day: not read
    ],
)
def test_a_daily_smokers_amount_names_the_qrisk3_group(
    store: SqlStore, code: str, value: float, unit: str, category: str | None
) -> None:
    """A daily smoker's cigarettes a day settle QRISK3's group (under 10 light, 10-19
    moderate, 20 or more heavy); without a usable amount QRISK3 is a range."""
    pid = _record(
        store, [_smoking("449868002", "Smokes tobacco daily"), _obs(code, value, unit, 40)]
    )
    smoking = derive_inputs(store, pid, AT)["smoking_category"]
    assert smoking.value == category
    (q,) = evaluate(store, pid, AT, scores=["qrisk3_10y"]).scores
    if category is None:
        assert q.status == "range"
    else:
        assert smoking.detail.endswith(f"cigarettes a day (LOINC {code})")
        assert [p.source_id for p in smoking.provenance][-1] == f"{code}-40"
        expected = QRISK3.compute_one({**EXPLICIT, "smoking_category": category})
        assert q.status == "computed" and q.value == pytest.approx(expected.value, abs=1e-9)


def test_conditions_and_treatments_are_read(store: SqlStore) -> None:
    """Type 2 diabetes (E11.9), CKD stage 3 (N18.30), migraine (SNOMED), rheumatoid arthritis
    (M06.9), lupus (SNOMED), bipolar disorder (F31.9), erectile dysfunction treated with
    tadalafil, olanzapine and oral prednisolone; a hydrocortisone cream is not a steroid
    tablet. The value equals the score of those inputs given directly."""
    pid = _record(
        store,
        [
            _smoking("266919005", "Never smoked tobacco"),
            _cond("dm", ICD10CM, "E11.9"),
            _cond("ckd", ICD10CM, "N18.30"),
            _cond("mig", SNOMED, "37796009"),
            _cond("ra", ICD10CM, "M06.9"),
            _cond("sle", SNOMED, "55464009"),
            _cond("bp", ICD10CM, "F31.9"),
            _order("tad", "tadalafil 5 MG Oral Tablet"),
            _order("ola", "olanzapine 10 MG Oral Tablet"),
            _order("cream", "hydrocortisone 10 MG/ML Topical Cream"),
        ],
    )
    d = derive_inputs(store, pid, AT)
    assert d["corticosteroids"].value is False  # only a cream
    store.append_facts([_order("pred", "prednisolone 5 MG Oral Tablet")], source="test")
    d = derive_inputs(store, pid, AT)
    items = (
        "ckd_stage_3_5", "migraine", "rheumatoid_arthritis", "sle", "severe_mental_illness",
        "erectile_dysfunction", "atypical_antipsychotic", "corticosteroids",
    )  # fmt: skip
    assert all(d[name].value is True for name in items), {n: d[n].detail for n in items}
    assert d["diabetes_type"].value == "type2"
    assert d["erectile_dysfunction"].detail == "active tadalafil"
    (q,) = evaluate(store, pid, AT, scores=["qrisk3_10y"]).scores
    expected = QRISK3.compute_one(
        {**EXPLICIT, "diabetes_type": "type2", **dict.fromkeys(items, True)}
    )
    assert q.value is not None and q.value == pytest.approx(expected.value, abs=1e-9)
    assert q.value > 40


def test_known_cardiovascular_disease_or_unknown_diabetes_type(store: SqlStore) -> None:
    """A TIA (G45.9) is QRISK3's prior CVD: not applicable; diabetes of an unrecorded type
    (SNOMED 73211009) leaves diabetes_type not known."""
    pid = _record(
        store,
        [_smoking("266919005", "Never smoked tobacco"), _cond("dm?", SNOMED, "73211009")],
    )
    (q,) = evaluate(store, pid, AT, scores=["qrisk3_10y"]).scores
    assert q.status == "range" and "diabetes of an unrecorded type" in q.message
    ends = sorted(
        QRISK3.compute_one({**EXPLICIT, "diabetes_type": t}).value  # type: ignore[misc]
        for t in ("type1", "type2")
    )
    assert [q.low, q.high] == pytest.approx(ends)
    store.append_facts([_cond("tia", ICD10CM, "G45.9")], source="test")
    (q,) = evaluate(store, pid, AT, scores=["qrisk3_10y"]).scores
    assert q.status == "refused" and q.message.startswith("not applicable")
    assert derive_inputs(store, pid, AT)["prior_cvd"].detail.startswith(
        "coronary heart disease, stroke or TIA: G45.9"
    )


# --- ethnicity and family history ---

UK_ETHNIC = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
ENGLAND = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
CDC = "urn:oid:2.16.840.1.113883.6.238"


def _uk(code: str) -> dict[str, Any]:
    return {
        "url": UK_ETHNIC,
        "valueCodeableConcept": {"coding": [{"system": ENGLAND, "code": code}]},
    }


def _race(omb: tuple[str, ...], detailed: tuple[str, ...] = ()) -> dict[str, Any]:
    subs = [{"url": "ombCategory", "valueCoding": {"system": CDC, "code": c}} for c in omb]
    subs += [{"url": "detailed", "valueCoding": {"system": CDC, "code": c}} for c in detailed]
    return {"url": WHITE["url"], "extension": subs}


ASIAN = ("indian", "pakistani", "bangladeshi", "chinese", "other_asian")
BLACK = ("black_caribbean", "black_african")


@pytest.mark.parametrize(
    ("extensions", "group", "possible"),
    [
        ([_uk("J")], "pakistani", ()),  # NHS ethnic category: Asian or Asian British - Pakistani
        ([_uk("M")], "black_caribbean", ()),
        ([_uk("F")], "other", ()),  # Mixed - White and Asian: QRISK3's other includes mixed
        ([_uk("Z")], "white_or_not_stated", ()),  # not stated
        ([_uk("P")], None, ()),  # any other Black background: none of QRISK3's groups
        ([_race(("2054-5",), ("2072-7",))], "black_caribbean", ()),  # Black, Jamaican
        ([_race(("2054-5",), ("2065-1",))], "black_african", ()),  # Black, Nigerian
        ([_race(("2028-9",), ("2029-7",))], "indian", ()),  # Asian, Asian Indian
        ([_race(("2028-9",), ("2036-2",))], "other_asian", ()),  # Asian, Filipino
        ([_race(("2028-9",))], None, ASIAN),  # Asian: which of QRISK3's Asian groups is not said
        ([_race(("2054-5",), ("2058-6",))], None, BLACK),  # African American
        ([_race(("2106-3", "2054-5"))], "other", ()),  # two categories: mixed
        ([_race(("1002-5",))], "other", ()),  # American Indian or Alaska Native
        ([_race(("2054-5",)), _uk("N")], "black_african", ()),  # the UK category is QRISK3's own
        ([], None, ()),
    ],
)
def test_ethnicity_as_qrisk3_groups(
    store: SqlStore, extensions: list[dict[str, Any]], group: str | None, possible: tuple[str, ...]
) -> None:
    """The group named by the record; where it names none but narrows it (Asian, Black), the
    range over the groups left; where it says nothing usable, QRISK3's own substitute (white
    or not stated), said."""
    pid = _record(store, [_smoking("266919005", "Never smoked tobacco")], extensions)
    ethnicity = derive_inputs(store, pid, AT)["ethnicity"]
    assert ethnicity.value == group, ethnicity.detail
    assert ethnicity.alternatives == possible
    (q,) = evaluate(store, pid, AT, scores=["qrisk3_10y"]).scores
    if possible:
        values = [QRISK3.compute_one({**EXPLICIT, "ethnicity": g}).value for g in possible]
        assert q.status == "range" and "ethnicity not known" in q.message
        assert (q.low, q.high) == (pytest.approx(min(values)), pytest.approx(max(values)))  # type: ignore[type-var]
    elif group is None:
        assert "missing ethnicity" in q.message
        assert q.value == pytest.approx(QRISK3.compute_one(EXPLICIT).value, abs=1e-9)
    else:
        assert "ethnicity" not in q.message
        expected = QRISK3.compute_one({**EXPLICIT, "ethnicity": group})
        assert q.value == pytest.approx(expected.value, abs=1e-9)


def _relative(
    sid: str,
    role: str,
    code: str,
    *,
    age: float | None = None,
    status: str = "completed",
    onset: dict[str, Any] | None = None,
    days_before: float = 200,
) -> RawResource:
    condition: dict[str, Any] = {"code": {"coding": [{"system": SNOMED, "code": code}]}}
    if age is not None:
        condition["onsetAge"] = {
            "value": age,
            "unit": "yr",
            "system": "http://unitsofmeasure.org",
            "code": "a",
        }
    condition.update(onset or {})
    raw = {
        "resourceType": "FamilyMemberHistory",
        "id": sid,
        "status": status,
        "patient": {"reference": "Patient/q1"},
        "relationship": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                    "code": role,
                    "display": role.lower(),
                }
            ]
        },
        "condition": [condition],
    }
    return RawResource(
        source="ehr", source_id=f"FamilyMemberHistory/{sid}", subject=WHO,
        resource_type="FamilyMemberHistory", effective_start=_ago(days_before), raw=raw,
    )  # fmt: skip


def test_family_history_of_early_heart_disease(store: SqlStore) -> None:
    """QRISK3's family history: angina or heart attack in a parent, sibling or child before 60,
    read from FamilyMemberHistory. A step-father's infarct at 50, a mother's angina at 65 and
    an entered-in-error entry do not count; a brother's infarct without an age is not known;
    a father's infarct at 52 counts and raises QRISK3 as the same input given directly."""
    pid = _record(store, [_smoking("266919005", "Never smoked tobacco")])
    assert derive_inputs(store, pid, AT)["family_history_chd"].detail == (
        "no family history (FamilyMemberHistory) in the record"
    )
    store.append_facts(
        [
            _relative("step", "STPFTH", "22298006", age=50),
            _relative("mum", "MTH", "194828000", age=65),
            _relative("err", "FTH", "22298006", age=40, status="entered-in-error"),
        ],
        source="test",
    )
    fh = derive_inputs(store, pid, AT)["family_history_chd"]
    assert fh.value is False and fh.status == "absent"
    assert "(2 FamilyMemberHistory)" in fh.detail
    store.append_facts([_relative("bro", "BRO", "22298006")], source="test")
    fh = derive_inputs(store, pid, AT)["family_history_chd"]
    assert fh.value is None and fh.detail == (
        "bro: 22298006: age at onset not recorded (QRISK3 counts one before 60)"
    )
    (q,) = evaluate(store, pid, AT, scores=["qrisk3_10y"]).scores
    # not QRISK3's substitute (no family history): the range over both
    assert q.status == "range"
    assert "family_history_chd not known (bro: 22298006: age at onset not recorded" in q.message
    assert (q.low, q.high) == (
        pytest.approx(QRISK3.compute_one(EXPLICIT).value),
        pytest.approx(QRISK3.compute_one({**EXPLICIT, "family_history_chd": True}).value),
    )
    store.append_facts([_relative("dad", "FTH", "22298006", age=52)], source="test")
    fh = derive_inputs(store, pid, AT)["family_history_chd"]
    assert fh.value is True and fh.detail == "fth: 22298006 at 52 years"
    assert [p.source_id for p in fh.provenance] == ["FamilyMemberHistory/dad"]
    (q,) = evaluate(store, pid, AT, scores=["qrisk3_10y"]).scores
    expected = QRISK3.compute_one({**EXPLICIT, "family_history_chd": True})
    assert q.value == pytest.approx(expected.value, abs=1e-9)
    assert q.value > QRISK3.compute_one(EXPLICIT).value  # type: ignore[operator]
    # before the history was taken (200 days before AT), it is not known
    earlier = derive_inputs(store, pid, AT - dt.timedelta(days=300))["family_history_chd"]
    assert earlier.value is None and "no family history" in earlier.detail


def test_an_onset_range_counts_when_wholly_before_60(store: SqlStore) -> None:
    span = {"onsetRange": {"low": {"value": 40, "code": "a"}, "high": {"value": 49, "code": "a"}}}
    pid = _record(store, [_relative("sis", "NSIS", "53741008", onset=span)])
    fh = derive_inputs(store, pid, AT)["family_history_chd"]
    assert fh.value is True and fh.detail == "nsis: 53741008 before 60"


def test_the_shared_us_core_patient(shared: Path, store: SqlStore) -> None:
    """The US Core example patient: White, American Indian or Alaska Native and Asian (QRISK3's
    "other", which includes mixed); a father's fatal choroidal haemorrhage at 74 is family
    history without heart disease."""
    from medtwin.ingest import import_paths

    import_paths(
        store, [shared / "fhir" / "uscore" / "us_quality_core_bundle_patient.json"], workers=0
    )
    (summary,) = [p for p in store.patients() if "Chalmers" in p.name]
    d = derive_inputs(store, summary.id, AT)
    assert d["ethnicity"].value == "other"
    assert "more than one group" in d["ethnicity"].detail
    assert d["family_history_chd"].value is False
    assert d["family_history_chd"].detail.endswith("(1 FamilyMemberHistory)")
