"""Score inputs derived from a record (medtwin.risk.inputs) and scores computed from them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
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
)
from medtwin.risk.from_record import (
    MEASUREMENT_INTERVAL_URL,
    SCORE_SYSTEM,
    evaluate,
    row_from,
    store_results,
)
from medtwin.risk.inputs import DerivedInput, derive_inputs, validity
from medtwin.risk.registry import get
from medtwin.store.sql import SqlStore
from medtwin.twin.prevention import PreventionError, format_plan, parse_changes, rank_changes

WHO = Identifier("urn:test", "p1")
AT = dt.datetime(2024, 6, 30, 12, tzinfo=dt.UTC)
RACE = {
    "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
    "extension": [
        {
            "url": "ombCategory",
            "valueCoding": {
                "system": "urn:oid:2.16.840.1.113883.6.238",
                "code": "2054-5",
                "display": "Black or African American",
            },
        }
    ],
}


def _obs(code: str, value: float, unit: str, days_before: int, **kw: Any) -> Observation:
    return Observation(
        source="lab",
        source_id=f"{code}-{days_before}",
        subject=WHO,
        code=Coding(LOINC, code),
        status="final",
        effective_start=AT - dt.timedelta(days=days_before),
        value_num=value,
        unit=unit,
        **kw,
    )


def _med(
    rxcui: str,
    status: str = "active",
    *,
    days_before: int = 400,
    end_days_before: int | None = None,
    display: str | None = None,
) -> MedicationRequest:
    return MedicationRequest(
        source="ehr",
        source_id=f"med-{rxcui}-{status}-{days_before}",
        subject=WHO,
        code=Coding(RXNORM, rxcui, display),
        status=status,
        effective_start=AT - dt.timedelta(days=days_before),
        effective_end=(
            AT - dt.timedelta(days=end_days_before) if end_days_before is not None else None
        ),
    )


def _smoking(code: str, display: str, days_before: int) -> Observation:
    return Observation(
        source="ehr",
        source_id=f"smoke-{days_before}",
        subject=WHO,
        code=Coding(LOINC, "72166-2"),
        status="final",
        effective_start=AT - dt.timedelta(days=days_before),
        value_code=Coding(SNOMED, code, display),
    )


def _patient(gender: str = "male") -> Demographics:
    return Demographics(
        source="reg",
        source_id="Patient/1",
        subject=WHO,
        identifiers=(WHO,),
        birth_date="1964-07-01",
        gender=gender,
        raw={"resourceType": "Patient", "extension": [RACE]},
    )


def _record(store: SqlStore, extra: list[Fact] | None = None) -> str:
    facts: list[Fact] = [
        _patient(),
        _obs("2093-3", 213.0, "mg/dL", 30),
        _obs("2085-9", 50.0, "mg/dL", 30),
        _obs("18262-6", 130.0, "mg/dL", 30),
        _obs("8480-6", 150.0, "mm[Hg]", 10),
        _obs("8480-6", 120.0, "mm[Hg]", 500),  # older, must not win
        _obs("29463-7", 82.0, "kg", 60),
        _obs("8302-2", 178.0, "cm", 60),
        _obs("2160-0", 97.24, "umol/L", 90),  # 1.1 mg/dL
        _obs("4548-4", 5.9, "%", 200),
        _smoking("449868002", "Smokes tobacco daily", 100),
        Condition(
            source="ehr",
            source_id="dm",
            subject=WHO,
            code=Coding("http://hl7.org/fhir/sid/icd-10-cm", "E11.9"),
            clinical_status="active",
            effective_start=AT - dt.timedelta(days=3000),
        ),
        _med("314076"),  # lisinopril 10 MG Oral Tablet
        _med("312961", "stopped", end_days_before=100),  # simvastatin, stopped: not a statin at AT
    ]
    store.append_facts(facts + (extra or []), source="test")
    return store.resolve_patient("urn:test|p1")


def test_inputs_from_the_record(store: SqlStore) -> None:
    pid = _record(store)
    d = derive_inputs(store, pid, AT)
    assert d["age_years"].value == 59.0  # born 1964-07-01, the day before the 60th birthday
    assert d["sex"].value == "male"
    assert d["race"].value == "black"
    assert d["total_cholesterol_mg_dl"].value == pytest.approx(213.0)
    assert d["total_cholesterol_mg_dl"].provenance[0].age_days == 30
    assert d["total_cholesterol_mg_dl"].provenance[0].source_id == "2093-3-30"
    assert d["systolic_bp_mm_hg"].value == pytest.approx(150.0)  # the newest, not the older 120
    # BMI from weight and height: 82 / 1.78^2
    assert d["bmi_kg_m2"].status == "computed"
    assert d["bmi_kg_m2"].value == pytest.approx(82 / 1.78**2, rel=1e-9)
    # 97.24 umol/L / 88.4 (umol/L per mg/dL, creatinine molar mass 113.12 g/mol) = 1.1 mg/dL
    assert d["creatinine_mg_dl"].value == pytest.approx(1.1, rel=1e-3)
    # CKD-EPI 2021 (Inker et al., NEJM 2021), male: 142 (Scr/0.9)^-1.200 0.9938^age when Scr > 0.9
    creat = float(d["creatinine_mg_dl"].value)  # type: ignore[arg-type]
    expected = 142 * (creat / 0.9) ** -1.200 * 0.9938**59
    assert d["egfr_ml_min_1_73m2"].value == pytest.approx(expected, rel=1e-6)
    assert d["hba1c_percent"].value == pytest.approx(5.9)
    assert d["smoker"].value is True
    assert d["diabetes"].value is True
    assert d["bp_treated"].value is True and "lisinopril" in d["bp_treated"].detail
    assert d["statin"].value is False and d["statin"].status == "absent"
    assert d["uacr_mg_g"].status == "missing"


def test_stale_input_is_missing_not_defaulted(store: SqlStore) -> None:
    window = validity()["hdl_mg_dl"]["valid_days"]
    assert window == 365
    pid = _record(store)
    inside = derive_inputs(store, pid, AT - dt.timedelta(days=0))
    assert inside["hdl_mg_dl"].usable
    # the HDL of AT-30 d is 365 days old at AT+335 d (usable) and 366 days old a day later
    edge = derive_inputs(store, pid, AT + dt.timedelta(days=335))
    assert edge["hdl_mg_dl"].usable and edge["hdl_mg_dl"].age_days == 365
    late = derive_inputs(store, pid, AT + dt.timedelta(days=336))
    hdl = late["hdl_mg_dl"]
    assert hdl.status == "stale" and hdl.value is None and hdl.stale_value == pytest.approx(50.0)
    assert hdl.reason() == "latest 2024-05-31 is older than 365 days"
    report = evaluate(store, pid, AT + dt.timedelta(days=336), scores=["prevent_10y"])
    (out,) = report.scores
    assert out.status == "missing" and out.value is None
    assert "hdl_mg_dl (latest 2024-05-31 is older than 365 days)" in out.message
    assert out.message.startswith("cannot compute: missing ")


def test_facts_after_the_date_are_not_used(store: SqlStore) -> None:
    pid = _record(store)
    d = derive_inputs(store, pid, AT - dt.timedelta(days=20))  # before the 10-day-old BP
    bp = d["systolic_bp_mm_hg"]  # the 500-day-old one, 480 days old then: stale
    assert bp.status == "stale" and bp.stale_value == pytest.approx(120.0)
    assert d["hba1c_percent"].value == pytest.approx(5.9)


def test_non_smoker_and_resolved_diabetes(store: SqlStore) -> None:
    pid = _record(
        store,
        [
            _smoking("8517006", "Ex-smoker", 5),
            Condition(
                source="ehr",
                source_id="dm",  # a new version of the same condition: resolved
                subject=WHO,
                code=Coding("http://hl7.org/fhir/sid/icd-10-cm", "E11.9"),
                clinical_status="resolved",
                effective_start=AT - dt.timedelta(days=3000),
            ),
        ],
    )
    d = derive_inputs(store, pid, AT)
    assert d["smoker"].value is False
    assert d["diabetes"].value is False and d["diabetes"].status == "absent"
    assert d["diabetes"].detail == "no diabetes mellitus active at the date in the record"


@pytest.mark.parametrize(
    ("code", "display", "value"),
    [
        ("77176002", "Smoker", True),  # SNOMED CT's term; UK primary care's current smoker
        ("77176002", "Smoker, current status unknown", None),  # US ONC / US Core: not known
        ("266927001", "Unknown if ever smoked", None),
        ("449868002", "Current every day smoker", True),
    ],
)
def test_a_smoking_status_that_does_not_say_current_is_not_known(
    store: SqlStore, code: str, display: str, value: bool | None
) -> None:
    """ "Smoker, current status unknown" is not a current smoker (its text says "current"): the
    input is not known, with yes and no left as alternatives (a score gives its range)."""
    pid = _record(store, [_smoking(code, display, 5)])
    smoker = derive_inputs(store, pid, AT)["smoker"]
    assert smoker.value is value
    if value is None:
        assert smoker.status == "missing" and set(smoker.alternatives) == {True, False}


def _diagnosis(code: str, verification: str | None = None) -> Condition:
    return Condition(
        source="ehr", source_id="dm", subject=WHO, code=Coding("http://hl7.org/fhir/sid/icd-10", code),
        clinical_status="active", verification_status=verification,
        effective_start=AT - dt.timedelta(days=3000),
    )  # fmt: skip


def test_a_refuted_diabetes_diagnosis_is_not_diabetes(store: SqlStore) -> None:
    """A diagnosis whose verification status is refuted (a new version of the record's
    E11.9) is not diabetes; the same code unrefuted is."""
    pid = _record(store, [_diagnosis("E11.9", "refuted")])
    assert derive_inputs(store, pid, AT)["diabetes"].value is False


def test_diabetes_of_unspecified_type_is_diabetes_without_a_qrisk3_type(store: SqlStore) -> None:
    """WHO ICD-10 E14 (unspecified diabetes mellitus) is diabetes for the PCE; QRISK3, which
    needs type 1 or type 2, cannot compute and says why."""
    pid = _record(store, [_diagnosis("E14.9")])
    d = derive_inputs(store, pid, AT)
    assert d["diabetes"].value is True and d["diabetes"].detail.startswith(
        "diabetes mellitus: E14.9"
    )
    assert d["diabetes_type"].value is None
    assert d["diabetes_type"].detail.startswith("diabetes of an unrecorded type")


def test_scores_computed_and_stored(store: SqlStore) -> None:
    from medtwin.risk.registry import get

    pid = _record(store)
    report = evaluate(store, pid, AT)
    names = {s.name: s for s in report.scores}
    assert "news2" in report.not_derivable  # needs vital signs medtwin does not derive
    prevent = names["prevent_10y"]
    assert prevent.status == "computed"
    # UACR is optional in PREVENT: the base/HbA1c model is used, and the output says so
    assert prevent.message == "without optional uacr_mg_g (no 9318-7 / 14959-1 in the record)"
    row = {k: v.value for k, v in report.inputs.items() if v.usable}
    direct = get("prevent_10y").compute_one(row)
    assert prevent.value == pytest.approx(direct.value)
    stored = store_results(store, report)
    assert len(stored.changed) == sum(s.status in ("computed", "range") for s in report.scores)
    again = store_results(store, report)
    assert again.unchanged == len(stored.changed) and not again.changed
    facts = [
        f for f in store.timeline(pid, kinds=("Observation",))
        if f.fact.code is not None and f.fact.code.system == SCORE_SYSTEM
    ]  # fmt: skip
    assert {f.fact.code.code for f in facts if f.fact.code} >= {"prevent_10y", "ckd_epi_2021"}
    # the RiskAssessment keeps the risk's interval over measurement variation
    (stored_prevent,) = [
        f for f in store.timeline(pid, kinds=("Observation",), include_raw=True)
        if f.fact.code is not None and f.fact.code.code == "prevent_10y"
    ]  # fmt: skip
    prediction = (stored_prevent.fact.raw or {})["prediction"][0]
    (interval,) = [e for e in prediction["extension"] if e["url"] == MEASUREMENT_INTERVAL_URL]
    parts = {e["url"]: e for e in interval["extension"]}
    assert prevent.variation is not None and parts["level"]["valueDecimal"] == 0.9
    assert parts["range"]["valueRange"]["low"] == {
        "value": prevent.variation.low, "unit": "%", "system": "http://unitsofmeasure.org",
        "code": "%",
    }  # fmt: skip
    assert parts["range"]["valueRange"]["high"]["value"] == prevent.variation.high
    varied = [e["valueString"] for e in interval["extension"] if e["url"] == "varied"]
    assert varied == list(prevent.variation.varied)
    assert any(v.startswith("systolic SD") for v in varied) and "HbA1c CV 1.7 %" in varied
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class("RiskAssessment").model_validate(stored_prevent.fact.raw)  # valid R4


def test_outside_population_says_why(store: SqlStore) -> None:
    pid = _record(store)
    report = evaluate(store, pid, AT, scores=["prevent_30y"])  # 30-year equations: 30-59
    (out,) = report.scores
    assert out.status == "computed"
    later = evaluate(store, pid, AT + dt.timedelta(days=2), scores=["prevent_30y"])  # now 60
    assert later.scores[0].status == "refused" and "30-59" in later.scores[0].message


def test_whatif_ranking(store: SqlStore) -> None:
    pid = _record(store)
    report = evaluate(store, pid, AT, scores=["prevent_10y"])
    rows = rank_changes(report, parse_changes("quit_smoking,sbp=-10,statin,bmi=-2,weight=-5kg"))
    ranked = [r for r in rows if r.rank is not None]
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
    arrs = [r.arr for r in ranked]
    assert arrs == sorted(arrs, reverse=True)  # type: ignore[type-var]
    by = {r.change: r for r in rows}
    base = report.scores[0].value
    assert base is not None
    assert by["quit_smoking"].arr is not None and by["quit_smoking"].arr > 0
    assert by["sbp=-10"].value is not None and by["sbp=-10"].value < base
    assert "total cholesterol -39 mg/dL" in by["statin"].note  # 30 % of LDL 130
    assert "bmi_kg_m2 25.9 -> 24.3" in by["weight=-5kg"].note  # (82 - 5) / 1.78^2 = 24.30
    assert math.isclose(base - by["sbp=-10"].value, by["sbp=-10"].arr or 0.0)
    with pytest.raises(PreventionError, match="sbp=abc"):
        parse_changes("sbp=abc")


def test_whatif_does_not_lower_what_is_already_at_target() -> None:
    from medtwin.twin.prevention import BMI_NORMAL_MAX, SBP_TARGET_MM_HG, apply_change

    derived = {
        "systolic_bp_mm_hg": DerivedInput("systolic_bp_mm_hg", 106.0, "ok"),
        "bmi_kg_m2": DerivedInput("bmi_kg_m2", 23.0, "ok"),
        "height_cm": DerivedInput("height_cm", 175.0, "ok"),
    }
    new, note = apply_change(parse_changes("sbp=-10")[0], derived)
    assert new is None and f"already below {SBP_TARGET_MM_HG:.0f}" in note
    new, note = apply_change(parse_changes("weight=-5kg")[0], derived)
    assert new is None and f"already below {BMI_NORMAL_MAX:.0f} kg/m2" in note
    new, note = apply_change(parse_changes("sbp=+5")[0], derived)  # raising is still computed
    assert new is not None and new["systolic_bp_mm_hg"].value == 111.0


def test_stopped_orders_are_later_news_at_an_earlier_date(store: SqlStore) -> None:
    """An order's status now is later news for an earlier date. Atorvastatin ordered 1000
    days before AT and renewed 600 days before (both orders now stopped, no stop date): the
    first was taken until its renewal, the renewal until a date the record does not give.
    Before the stop was on record (the store recorded it now, after AT) the statin input is
    not known and says why; at a date after it was recorded, the stop is known."""
    pid = _record(
        store,
        [_med("259255", "stopped", days_before=1000), _med("259255", "stopped", days_before=600)],
    )
    # between the two orders: the first one was still taken (renewed later)
    between = derive_inputs(store, pid, AT - dt.timedelta(days=800))
    assert between["statin"].value is True and between["statin"].status == "ok"
    assert [p.date for p in between["statin"].provenance] == [
        (AT - dt.timedelta(days=1000)).date().isoformat()
    ]
    # after the renewal, whose stop date the record does not give: not known
    at = derive_inputs(store, pid, AT)
    statin = at["statin"]
    assert statin.value is None and statin.status == "missing" and not statin.usable
    assert statin.reason() == (
        "statin (ATC C10AA) order stopped on a date the record does not give (atorvastatin "
        f"ordered {(AT - dt.timedelta(days=600)).date().isoformat()}): whether it was taken on "
        f"{AT.date().isoformat()} is not known"
    )
    # a score that needs it does not read "no statin": it gives its range over both
    (prevent,) = evaluate(store, pid, AT, scores=["prevent_10y"]).scores
    assert prevent.value is None and prevent.status == "range"
    assert "statin not known (statin (ATC C10AA) order stopped on a date" in prevent.message
    assert prevent.message.endswith("is not known): no or yes")
    score = get("prevent_10y")
    ends = sorted(
        score.compute_one({**row_from(score, at), "statin": taking}).value  # type: ignore[misc]
        for taking in (False, True)
    )
    assert [prevent.low, prevent.high] == pytest.approx(ends) and ends[0] < ends[1]
    # once the stop is on record (the facts were recorded now), it is known: no statin
    later = derive_inputs(store, pid, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert later["statin"].value is False and later["statin"].status == "absent"
    # lisinopril (active, ordered 400 days before AT): not yet at AT-800, taken at AT
    assert between["bp_treated"].value is False and at["bp_treated"].value is True


def test_an_order_that_ran_past_the_date_counts_whatever_its_status(store: SqlStore) -> None:
    """A stopped order whose end date is after the evaluation date was being taken then; a
    cancelled one never was."""
    pid = _record(
        store,
        [
            _med("259255", "stopped", days_before=300, end_days_before=10),
            _med("197361", "cancelled", days_before=300),  # amlodipine, never given
        ],
    )
    d = derive_inputs(store, pid, AT - dt.timedelta(days=100))
    assert d["statin"].value is True
    assert d["bp_treated"].value is True and "amlodipine" not in d["bp_treated"].detail
    assert derive_inputs(store, pid, AT)["statin"].value is False


def test_a_strength_not_in_the_table_is_read_by_the_ingredient_it_names(store: SqlStore) -> None:
    """Lisinopril 20 MG (RxCUI 314077) is not in medtwin's RxNorm table; its RxNorm name
    names lisinopril, so it is an antihypertensive; a contraceptive names no ingredient of
    the table and stays unclassified."""
    facts: list[Fact] = [
        _patient(),
        _med("314077", days_before=100, display="lisinopril 20 MG Oral Tablet"),
        _med("748962", days_before=100, display="Camila 28 Day Pack"),
    ]
    store.append_facts(facts, source="ehr")
    pid = store.resolve_patient(f"{WHO.system}|{WHO.value}")
    d = derive_inputs(store, pid, AT)
    assert d["bp_treated"].value is True and d["bp_treated"].detail.startswith("active lisinopril")
    assert "1 active medication(s) with no ATC class" in d["bp_treated"].detail


@pytest.mark.parametrize(
    ("rxcui", "display"),
    [
        ("321064", "olmesartan"),
        ("19484", "bisoprolol"),
        ("2599", "clonidine"),
        ("298869", "eplerenone"),
        ("5470", "hydralazine"),
        ("325646", "aliskiren"),
    ],
)
def test_antihypertensives_beyond_the_first_line_count_as_treatment(
    store: SqlStore, rxcui: str, display: str
) -> None:
    """An ARB and a beta blocker added to the table from the VSAC value sets, a central agent
    (clonidine, ATC C02AC01), a mineralocorticoid antagonist (C03DA04), a vasodilator (C02DB02)
    and a renin inhibitor (C09XA02) make the blood pressure treated."""
    store.append_facts([_patient(), _med(rxcui, days_before=100, display=display)], source="ehr")
    pid = store.resolve_patient(f"{WHO.system}|{WHO.value}")
    d = derive_inputs(store, pid, AT)
    assert d["bp_treated"].value is True
    assert d["bp_treated"].detail.startswith(f"active {display}")


@pytest.mark.parametrize(
    ("rxcui", "display"),
    [
        ("1013930", "12 HR clonidine hydrochloride 0.1 MG Extended Release Oral Tablet"),
        ("1013937", None),  # the code alone
        ("local-1", "clonidine hydrochloride 0.1 MG 12HR Extended Release Oral Tablet [Kapvay]"),
    ],
)
def test_adhd_clonidine_is_not_blood_pressure_treatment(
    store: SqlStore, rxcui: str, display: str | None
) -> None:
    """Twice-daily extended-release clonidine (Kapvay) is indicated for ADHD only; ATC gives
    clonidine one code (C02AC01) whatever the use, so the product decides. The input says the
    order was seen and not counted; immediate-release clonidine beside it still counts."""
    store.append_facts([_patient(), _med(rxcui, days_before=100, display=display)], source="ehr")
    pid = store.resolve_patient(f"{WHO.system}|{WHO.value}")
    d = derive_inputs(store, pid, AT)
    bp = d["bp_treated"]
    assert bp.value is False and bp.status == "absent"
    assert "not counted:" in bp.detail and "indicated for ADHD" in bp.detail
    assert "not counted" not in d["statin"].detail

    store.append_facts(
        [_med("884173", days_before=50, display="clonidine hydrochloride 0.1 MG Oral Tablet")],
        source="ehr",
    )
    bp = derive_inputs(store, pid, AT)["bp_treated"]
    assert bp.value is True and bp.detail.startswith("active clonidine")
    assert "not counted:" in bp.detail


PRIMARY_PREVENTION = (
    "pce_ascvd_10y", "pce_ascvd_10y_2018", "framingham_cvd_10y", "prevent_10y",
    "prevent_10y_ascvd", "prevent_10y_hf", "prevent_30y", "prevent_30y_ascvd", "prevent_30y_hf",
)  # fmt: skip


def _history(sid: str, system: str, code: str, kind: type[Fact] = Condition) -> Fact:
    return kind(
        source="ehr", source_id=sid, subject=WHO, code=Coding(system, code),
        status="completed" if kind is not Condition else None,
        effective_start=AT - dt.timedelta(days=2000),
    )  # fmt: skip


def test_first_event_equations_do_not_apply_after_a_cardiovascular_event(store: SqlStore) -> None:
    """PCE, PREVENT and Framingham estimate a first cardiovascular event: for a record with an
    old myocardial infarction (ICD-10-CM I25.2) they say "not applicable" and name it, where
    the same record without it gets a risk (primary prevention; ACC/AHA 2018 clinical ASCVD)."""
    pid = _record(store)
    before = {s.name: s for s in evaluate(store, pid, AT).scores}
    assert all(before[n].status == "computed" for n in PRIMARY_PREVENTION[:4])
    store.append_facts(
        [_history("old-mi", "http://hl7.org/fhir/sid/icd-10-cm", "I25.2")], source="test"
    )
    after = {s.name: s for s in evaluate(store, pid, AT).scores}
    for name in PRIMARY_PREVENTION:
        assert after[name].status == "refused", name
        assert after[name].message.startswith(
            "not applicable: clinical atherosclerotic cardiovascular disease is recorded"
        )
        assert "I25.2" in after[name].message
    assert after["ckd_epi_2021"].status == "computed"  # not a first-event equation
    # nothing is stored for them
    stored = store_results(store, evaluate(store, pid, AT))
    scores = {sid.split("/")[2] for sid in stored.changed}  # risk/<patient>/<score>/<date>
    assert scores and not scores & set(PRIMARY_PREVENTION)


def test_a_coronary_bypass_procedure_is_clinical_ascvd(store: SqlStore) -> None:
    from medtwin.record.facts import Procedure

    pid = _record(store, [_history("cabg", SNOMED, "232717009", Procedure)])
    derived = derive_inputs(store, pid, AT)
    assert derived["clinical_ascvd"].value is True
    assert "232717009" in derived["clinical_ascvd"].detail


def test_unknown_race_gives_the_pce_range_over_both_equations(store: SqlStore) -> None:
    """Without a race on the Patient, the PCE (race-specific equations) give their range over
    the white and Black equations instead of no answer, each end the score of that race; the
    JSON and the text say it, and nothing is stored for it."""
    from click.testing import CliRunner

    from medtwin.cli import main

    pid = _record(store)
    store.append_facts(
        [dataclasses.replace(_patient(), raw={"resourceType": "Patient"})], source="test"
    )
    report = evaluate(store, pid, AT, scores=["pce_ascvd_10y"])
    (pce,) = report.scores
    assert report.inputs["race"].alternatives == ("white", "black")
    score = get("pce_ascvd_10y")
    ends = sorted(
        score.compute_one({**row_from(score, report.inputs), "race": r}).value  # type: ignore[misc]
        for r in ("white", "black")
    )
    assert pce.status == "range" and [pce.low, pce.high] == pytest.approx(ends)
    assert pce.band == "high"  # both ends (36 and 47 %: a smoker with diabetes)
    assert pce.message == (
        "range over what the record leaves possible: race not known (no US Core race "
        "extension on the Patient): white or black"
    )
    assert pce.to_dict()["low"] == pce.low and pce.to_dict()["high"] == pce.high
    # stored as a range: no value, the ends in the text and in the RiskAssessment
    assert store_results(store, report).changed == [f"risk/{pid}/pce_ascvd_10y/2024-06-30"]
    [fact] = store.timeline(pid, codes=["pce_ascvd_10y"], include_raw=True)
    assert fact.fact.value_num is None
    assert fact.fact.value_text == f"{pce.low:.3g} to {pce.high:.3g} %"  # type: ignore[attr-defined]
    prediction = fact.fact.raw["prediction"][0]  # type: ignore[index]
    assert prediction["probabilityRange"]["low"]["value"] == pce.low
    assert prediction["qualitativeRisk"] == {"text": "high"}
    if isinstance(store, SqlStore) and store.url.startswith("sqlite"):
        out = CliRunner().invoke(
            main, ["risk", pid, "--store", store.url, "--date", AT.date().isoformat(),
                   "--score", "pce_ascvd_10y", "--no-save"],
        )  # fmt: skip
        assert out.exit_code == 0, out.output
        line = next(x for x in out.output.splitlines() if x.lstrip().startswith("pce_ascvd_10y"))
        assert f"{ends[0]:.3g} to {ends[1]:.3g} %" in line


def test_a_whatif_on_a_range_runs_on_each_possibility(store: SqlStore) -> None:
    """Without a race, the PCE is a range over the white and Black equations; a blood-pressure
    what-if runs on both: its baseline and new risk are ranges, its ARR the smaller of the two
    reductions (what the change does whatever the race), each end the equation's own."""
    pid = _record(store)
    store.append_facts(
        [dataclasses.replace(_patient(), raw={"resourceType": "Patient"})], source="test"
    )
    report = evaluate(store, pid, AT, scores=["pce_ascvd_10y"])
    (row,) = rank_changes(report, parse_changes("sbp=-10"))
    score = get("pce_ascvd_10y")
    base = row_from(score, report.inputs)
    before = [score.compute_one({**base, "race": r}).value for r in ("white", "black")]
    after = [
        score.compute_one({**base, "race": r, "systolic_bp_mm_hg": 140.0}).value
        for r in ("white", "black")
    ]
    reductions = [b - a for b, a in zip(before, after, strict=True)]  # type: ignore[operator]
    assert (row.baseline, row.baseline_high) == (
        pytest.approx(min(before)),  # type: ignore[type-var]
        pytest.approx(max(before)),  # type: ignore[type-var]
    )
    assert (row.value, row.value_high) == (
        pytest.approx(min(after)),  # type: ignore[type-var]
        pytest.approx(max(after)),  # type: ignore[type-var]
    )
    assert row.arr == pytest.approx(min(reductions)) and row.rank == 1
    assert (row.arr_low, row.arr_high) == (
        pytest.approx(min(reductions)),
        pytest.approx(max(reductions)),
    )
    assert row.notes[-1] == "over what the record leaves possible: race white or black"
    text = "\n".join(format_plan([row]))
    assert f"(now {min(before):.1f} to {max(before):.1f} %)" in text  # type: ignore[type-var]


STATIN_FREE = ("pce_ascvd_10y", "pce_ascvd_10y_2018", "qrisk3_10y")
"""Derived without statin users: PCE (Goff 2014) and QRISK3 (Hippisley-Cox 2017)."""


def test_a_statin_user_is_outside_the_pce_and_qrisk3(store: SqlStore) -> None:
    """On a statin, the PCE and QRISK3 (both derived in people not taking one) say "not
    applicable" and name the order; PREVENT, which has statin use as an input, still computes.
    An order of unknown state makes them "cannot compute", not "not applicable"."""
    pid = _record(store, [_med("259255")])  # atorvastatin 20 MG, active
    out = {s.name: s for s in evaluate(store, pid, AT).scores}
    for name in STATIN_FREE:
        assert out[name].status == "refused", name
        assert out[name].message.startswith("not applicable: on a statin")
        # the order and when the statin began: where an untreated estimate would be taken
        first = (AT - dt.timedelta(days=400)).date().isoformat()
        assert out[name].message.endswith(f"(active atorvastatin, first ordered {first})")
        assert "statin" in out[name].inputs  # the result rests on it (RiskAssessment basis)
    assert out["prevent_10y"].status == "computed"
    assert out["framingham_cvd_10y"].status == "computed"


def test_a_uacr_in_mg_per_mmol_and_a_unit_that_cannot_be_read(store: SqlStore) -> None:
    """A urine albumin/creatinine ratio in mg/mmol (as UK and European laboratories report it)
    is read in mg/g (x 8.84, creatinine's molar mass); a unit that cannot be converted makes the
    input missing and says why, where it stopped the whole report."""
    pid = _record(store, [_obs("9318-7", 3.0, "mg/mmol", 20)])
    uacr = derive_inputs(store, pid, AT)["uacr_mg_g"]
    assert uacr.status == "ok" and uacr.value == pytest.approx(26.52, abs=0.01)
    store.append_facts([_obs("9318-7", 3.0, "mg/mL", 10)], source="test")  # not a ratio
    d = derive_inputs(store, pid, AT)
    assert d["uacr_mg_g"].value is None and d["uacr_mg_g"].status == "missing"
    assert d["uacr_mg_g"].detail.startswith("LOINC 9318-7 in 'mg/mL' cannot be read as mg/g")
    assert d["uacr_mg_g"].provenance[0].source_id == "9318-7-10"
    prevent = {s.name: s for s in evaluate(store, pid, AT).scores}["prevent_10y"]
    assert prevent.status == "computed" and "uacr_mg_g (LOINC 9318-7 in 'mg/mL'" in prevent.message


def test_a_statin_users_untreated_estimate_is_read_the_day_before_it(store: SqlStore) -> None:
    """The PCE and QRISK3 refused for a statin carry the same score from the record the day
    before the statin was first ordered: the lipid panel, blood pressure and smoking status of
    then, the age then, no antihypertensive yet (begun with it). PREVENT, computed, has none."""
    from tests.risk.records import risk_text

    pre = [
        _obs("2093-3", 250.0, "mg/dL", 450), _obs("2085-9", 45.0, "mg/dL", 450),
        _obs("8480-6", 160.0, "mm[Hg]", 450), _smoking("449868002", "Smokes tobacco daily", 450),
        _obs("29463-7", 85.0, "kg", 450), _obs("8302-2", 178.0, "cm", 450),
    ]  # fmt: skip
    pid = _record(store, [_med("259255"), *pre])  # atorvastatin from 400 days before
    out = {s.name: s for s in evaluate(store, pid, AT).scores}
    before = (AT - dt.timedelta(days=401)).date()
    pce = out["pce_ascvd_10y"]
    assert pce.status == "refused" and pce.untreated is not None and pce.untreated_at == before
    expected = get("pce_ascvd_10y").compute_one(
        {"age_years": 58, "sex": "male", "race": "black", "total_cholesterol_mg_dl": 250.0,
         "hdl_mg_dl": 45.0, "systolic_bp_mm_hg": 160.0, "bp_treated": False, "smoker": True,
         "diabetes": True}
    )  # fmt: skip
    assert pce.untreated.status == "computed"
    assert pce.untreated.value == pytest.approx(expected.value, rel=1e-12)
    # with its own interval over measurement variation, from the readings before the statin
    assert pce.untreated.variation is not None
    assert pce.untreated.variation.low < pce.untreated.value < pce.untreated.variation.high
    assert "the patient's 2 readings in 5 years" in pce.untreated.variation.varied[-1]
    assert out["qrisk3_10y"].untreated is not None
    # a daily smoker of unrecorded amount: QRISK3's range over light to heavy
    assert out["qrisk3_10y"].untreated.status == "range"
    assert out["prevent_10y"].untreated is None
    as_json = pce.to_dict()["untreated"]
    assert as_json["date"] == before.isoformat() and as_json["value"] == pce.untreated.value
    from medtwin.cli_risk import _show

    text = risk_text(store, pid, AT.date().isoformat(), "pce_ascvd_10y")
    shown = f"{_show(pce.untreated.value)} %  band {pce.untreated.band}"
    assert f"before the statin (the record of {before.isoformat()}): {shown} (90 % over" in text


def test_no_record_before_the_statin_says_cannot_compute(store: SqlStore) -> None:
    """Without a lipid panel before the statin, the untreated estimate cannot be computed, and
    says why (the current panel is after the statin began)."""
    pid = _record(store, [_med("259255")])
    pce = {s.name: s for s in evaluate(store, pid, AT).scores}["pce_ascvd_10y"]
    assert pce.untreated is not None and pce.untreated.status == "missing"
    assert pce.untreated.message.startswith("cannot compute: missing total_cholesterol_mg_dl")


def test_a_statin_order_of_unknown_state_cannot_compute_the_pce(store: SqlStore) -> None:
    pid = _record(store, [_med("259255", "stopped", days_before=600)])  # no stop date
    out = {s.name: s for s in evaluate(store, pid, AT).scores}
    for name in STATIN_FREE:
        assert out[name].status == "missing", name
        assert out[name].message.startswith("cannot compute: missing statin (statin (ATC C10AA)")
        assert "is not known" in out[name].message


def test_severe_hypercholesterolaemia_is_outside_the_pce(store: SqlStore) -> None:
    """An LDL of 190 mg/dL or more (in mmol/L here: 5.0 mmol/L = 193 mg/dL, with
    cholesterol's molar mass), even years before, or familial hypercholesterolaemia, makes the
    PCE "not applicable" (Goff 2014; Grundy 2019 section 4.2); 189 mg/dL does not."""
    pid = _record(store, [_obs("13457-7", 189.0, "mg/dL", 3000)])
    derived = derive_inputs(store, pid, AT)
    assert derived["severe_hypercholesterolaemia"].value is False
    assert derived["severe_hypercholesterolaemia"].detail == (
        "no familial hypercholesterolaemia in the record; highest LDL cholesterol 189 mg/dL"
    )
    store.append_facts([_obs("18262-6", 5.0, "mmol/L", 2000)], source="test")
    derived = derive_inputs(store, pid, AT)
    severe = derived["severe_hypercholesterolaemia"]
    assert severe.value is True and severe.detail.startswith("LDL cholesterol 193 mg/dL (")
    assert [p.source_id for p in severe.provenance] == ["18262-6-2000"]
    out = {s.name: s for s in evaluate(store, pid, AT).scores}
    for name in ("pce_ascvd_10y", "pce_ascvd_10y_2018"):
        assert out[name].status == "refused"
        assert out[name].message.startswith("not applicable: LDL cholesterol of 190 mg/dL")
        assert "193 mg/dL" in out[name].message
    # not one of QRISK3's exclusions (a range here: a daily smoker without an amount)
    assert out["qrisk3_10y"].status == "range"
    assert "smoking_category not known" in out["qrisk3_10y"].message
    assert out["prevent_10y"].status == "computed"


def test_familial_hypercholesterolaemia_is_read_from_its_codes(store: SqlStore) -> None:
    pid = _record(store, [_history("fh", "http://hl7.org/fhir/sid/icd-10-cm", "E78.01")])
    severe = derive_inputs(store, pid, AT)["severe_hypercholesterolaemia"]
    assert severe.value is True and "E78.01" in severe.detail
    out = {s.name: s for s in evaluate(store, pid, AT).scores}
    assert out["pce_ascvd_10y"].status == "refused"


def test_a_statin_whatif_still_computes_the_pce(store: SqlStore) -> None:
    """The statin what-if starts a statin: the changed row is inside the population the
    baseline was found in, so the PCE is computed with the lower cholesterol, not refused."""
    pid = _record(store)
    report = evaluate(store, pid, AT)
    rows = [r for r in rank_changes(report, parse_changes("statin")) if r.score.startswith("pce")]
    assert [r.score for r in rows] == ["pce_ascvd_10y", "pce_ascvd_10y_2018"]
    for row in rows:
        assert row.value is not None and row.arr is not None and row.arr > 0, row.note


def test_heart_failure_leaves_out_prevent_and_framingham_not_pce(store: SqlStore) -> None:
    """PREVENT's outcomes include heart failure and Framingham 2008 was derived free of it:
    with chronic heart failure recorded they do not apply; the PCE (ASCVD only) still does."""
    pid = _record(store, [_history("hf", SNOMED, "88805009")])
    out = {s.name: s for s in evaluate(store, pid, AT).scores}
    assert out["pce_ascvd_10y"].status == "computed"
    for name in ("prevent_10y", "prevent_30y_hf", "framingham_cvd_10y"):
        assert out[name].status == "refused"
        assert out[name].message.startswith("not applicable: heart failure is recorded")
