"""Prevention what-if with the physiological twin: the Hall 2011 body-weight model for diet and
activity, published effect sizes of weight loss on systolic pressure and HbA1c, ranges, refusals
and the ranking."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import numpy as np
import pytest

from medtwin.risk.inputs import DerivedInput
from medtwin.twin.prevention import (
    EFFECTS,
    PAL_ASSUMED,
    PAL_RANGE,
    SOURCES,
    PreventionError,
    apply_change,
    format_plan,
    parse_changes,
    parse_horizon,
    project_weight,
    rank_changes,
)

# Neter et al. Hypertension 2003 (abstract): -1.05 mm Hg systolic per kg lost, 95% CI -1.43 to
# -0.66. Pidd et al. BMJ Open 2025 (abstract): HbA1c 1.5 (1.1-1.9) mmol/mol per kg/m2 in type 2
# diabetes, 0.6 (0.4-0.8) in non-diabetic hyperglycaemia. NGSP master equation: 0.09148 % per
# mmol/mol (Hoelzel et al. Clin Chem 2004).
SBP_PER_KG, SBP_CI = 1.05, (0.66, 1.43)
T2D_MMOL, NDH_MMOL = 1.5, 0.6
PCT_PER_MMOL = 0.09148


def _inputs(**values: Any) -> dict[str, DerivedInput]:
    base: dict[str, Any] = {
        "age_years": 50.0,
        "sex": "male",
        "height_cm": 175.0,
        "weight_kg": 90.0,
        "bmi_kg_m2": 90.0 / 1.75**2,
        "systolic_bp_mm_hg": 150.0,
        "hba1c_percent": 7.0,
        "diabetes": True,
        "smoker": False,
        "statin": False,
    }
    base.update(values)
    return {k: DerivedInput(k, v, "missing" if v is None else "ok") for k, v in base.items()}


def _one(text: str, derived: dict[str, DerivedInput], **kw: Any) -> tuple[Any, str]:
    return apply_change(parse_changes(text)[0], derived, **kw)


def test_effect_sizes_match_the_sources() -> None:
    sbp = EFFECTS["sbp_per_kg"]
    assert (sbp.estimate, sbp.low, sbp.high, sbp.source) == (1.05, 0.66, 1.43, "neter2003")
    t2d, ndh = EFFECTS["hba1c_per_bmi_t2d"], EFFECTS["hba1c_per_bmi_ndh"]
    assert t2d.estimate == pytest.approx(1.5 * PCT_PER_MMOL)
    assert (t2d.low, t2d.high) == pytest.approx((1.1 * PCT_PER_MMOL, 1.9 * PCT_PER_MMOL))
    assert (ndh.estimate, ndh.low, ndh.high) == pytest.approx(
        (0.6 * PCT_PER_MMOL, 0.4 * PCT_PER_MMOL, 0.8 * PCT_PER_MMOL)
    )
    assert {e.source for e in EFFECTS.values()} <= set(SOURCES)


def test_weight_loss_moves_bmi_sbp_and_hba1c_by_the_effect_sizes() -> None:
    derived = _inputs()
    new, note = _one("weight=-5kg", derived)
    assert new is not None
    h2 = 1.75**2
    assert new["weight_kg"].value == pytest.approx(85.0)
    assert new["bmi_kg_m2"].value == pytest.approx(85.0 / h2)
    assert new["systolic_bp_mm_hg"].value == pytest.approx(150.0 - SBP_PER_KG * 5)  # 144.75
    assert new["hba1c_percent"].value == pytest.approx(7.0 - T2D_MMOL * PCT_PER_MMOL * 5 / h2)
    assert "neter2003" in note and "pidd2025" in note
    # bmi=-2 is a loss of 2 x 1.75^2 = 6.125 kg
    new, _ = _one("bmi=-2", derived)
    assert new is not None
    assert new["systolic_bp_mm_hg"].value == pytest.approx(150.0 - SBP_PER_KG * 2 * h2)
    assert new["hba1c_percent"].value == pytest.approx(7.0 - T2D_MMOL * PCT_PER_MMOL * 2)
    # non-diabetic hyperglycaemia (6.0-6.4 %): the smaller effect; normoglycaemia: none
    new, _ = _one("weight=-5kg", _inputs(diabetes=False, hba1c_percent=6.2))
    assert new is not None
    assert new["hba1c_percent"].value == pytest.approx(6.2 - NDH_MMOL * PCT_PER_MMOL * 5 / h2)
    new, note = _one("weight=-5kg", _inputs(diabetes=False, hba1c_percent=5.5))
    assert new is not None and new["hba1c_percent"].value == 5.5
    assert "HbA1c 5.5 % unchanged: normoglycaemia" in note
    new, note = _one("weight=-5kg", _inputs(diabetes=False, hba1c_percent=6.8))
    assert new is not None and new["hba1c_percent"].value == 6.8
    assert "without a recorded diabetes" in note


def test_effects_are_bounded() -> None:
    # a large loss does not take systolic pressure below 120 (SPRINT) nor HbA1c below 6.0 %
    new, note = _one("weight=-15kg", _inputs(systolic_bp_mm_hg=126.0, hba1c_percent=6.3))
    assert new is not None
    assert new["systolic_bp_mm_hg"].value == 120.0 and "floor 120, sprint2015" in note
    assert new["hba1c_percent"].value == 6.0
    # a pressure already at target is not lowered, and the row says so
    new, note = _one("weight=-5kg", _inputs(systolic_bp_mm_hg=118.0))
    assert new is not None and new["systolic_bp_mm_hg"].value == 118.0
    assert "not lowered" in note
    # a gain moves weight and BMI only (the effect sizes come from weight-loss trials)
    new, note = _one("weight=+5kg", _inputs())
    assert new is not None and new["systolic_bp_mm_hg"].value == 150.0
    assert new["bmi_kg_m2"].value == pytest.approx(95 / 1.75**2) and "weight gain" in note
    # no loss into underweight: BMI (78 - 25) / 1.75^2 = 17.3 < 18.5
    new, note = _one("weight=-25kg", _inputs(weight_kg=78.0, bmi_kg_m2=78 / 1.75**2))
    assert new is None and "below 18.5" in note


def test_diet_goes_through_the_hall_model() -> None:
    from medtwin.model import parse_scenario, simulate
    from medtwin.physiology.body_weight import Hall2011BodyWeight, params_for

    derived = _inputs()
    new, note = _one("diet=-500kcal", derived)
    assert new is not None
    params = params_for("male", 50.0, 1.75, 90.0, PAL_ASSUMED)
    scenario = parse_scenario([{"type": "diet", "t_d": 0, "intake_change_kcal_per_day": -500}])
    direct = simulate(Hall2011BodyWeight, params, scenario, t_end=365, dt_out=365)
    weight = float(np.asarray(direct.observables["weight_kg"])[0, -1])
    assert 75.0 < weight < 85.0  # about 10 kg in a year: the model's -500 kcal/day scale
    assert new["weight_kg"].value == pytest.approx(weight, abs=1e-6)
    assert new["bmi_kg_m2"].value == pytest.approx(weight / 1.75**2, abs=1e-6)
    lost = 90.0 - weight
    assert new["systolic_bp_mm_hg"].value == pytest.approx(150.0 - SBP_PER_KG * lost, abs=1e-5)
    assert "hall_2011_body_weight, 365 d" in note and "hall2011" in note
    # a shorter horizon loses less; the PAL range brackets the point estimate
    p = project_weight(
        "male", 50.0, 1.75, 90.0, intake_change_kcal_per_day=-500, horizon_days=182.5
    )
    assert weight < p.weight_kg < 90.0
    assert min(p.low_pal_kg, p.high_pal_kg) < p.weight_kg < max(p.low_pal_kg, p.high_pal_kg)
    assert PAL_RANGE[0] < PAL_ASSUMED < PAL_RANGE[1]
    # more activity loses weight too
    new, _ = _one("activity=+20%", derived)
    assert new is not None and float(new["weight_kg"].value) < 90.0  # type: ignore[arg-type]


def test_body_weight_model_refuses_outside_its_population() -> None:
    child = _inputs(age_years=15.0, weight_kg=80.0, bmi_kg_m2=80 / 1.75**2)
    new, note = _one("diet=-300kcal", child)
    assert new is None
    assert "hall_2011_body_weight refuses" in note and "age_y = 15.0" in note
    assert "child" in note
    # BMI 62.5 at the start: outside 16-60
    heavy = _inputs(height_cm=160.0, weight_kg=160.0, bmi_kg_m2=62.5)
    new, note = _one("diet=-500kcal", heavy)
    assert new is None and "BMI 62.5" in note
    # a trajectory that leaves the population before the horizon is refused with the day
    woman = _inputs(sex="female", age_years=30.0, height_cm=165.0, weight_kg=68.1)
    woman["bmi_kg_m2"] = dataclasses.replace(woman["bmi_kg_m2"], value=68.1 / 1.65**2)
    new, note = _one("diet=-1000kcal", woman, horizon_days=730.0)
    assert new is None and "leaves the population" in note and "on day" in note
    # no height: nothing to simulate
    new, note = _one("diet=-500kcal", _inputs(height_cm=None))
    assert new is None and "height" in note
    # losing weight is not offered below BMI 25
    new, note = _one("diet=-500kcal", _inputs(weight_kg=70.0, bmi_kg_m2=70 / 1.75**2))
    assert new is None and "already below 25" in note


def test_parse_errors_name_the_change() -> None:
    assert parse_changes("diet=-500 kcal/day")[0].delta == -500.0
    assert parse_changes("activity=+20%")[0].delta == 20.0
    with pytest.raises(PreventionError, match="'diet=lots'"):
        parse_changes("diet=lots")
    with pytest.raises(PreventionError, match="more than 100 %"):
        parse_changes("activity=-150%")
    with pytest.raises(PreventionError, match="'swim'"):
        parse_changes("swim")
    assert parse_horizon("12m") == 365.0 and parse_horizon("26w") == 182.0
    with pytest.raises(PreventionError, match="--horizon '20y'"):
        parse_horizon("20y")
    with pytest.raises(PreventionError, match="not a duration"):
        parse_horizon("soon")


def _report_store(store: Any) -> Any:
    from medtwin.record.facts import (
        LOINC,
        SNOMED,
        Coding,
        Condition,
        Demographics,
        Identifier,
        Observation,
    )
    from medtwin.risk.from_record import evaluate

    who = Identifier("urn:test", "prev1")
    at = dt.datetime(2024, 6, 30, 12, tzinfo=dt.UTC)

    def obs(code: str, value: float, unit: str) -> Observation:
        return Observation(
            source="lab", source_id=code, subject=who, code=Coding(LOINC, code), status="final",
            effective_start=at - dt.timedelta(days=20), value_num=value, unit=unit,
        )  # fmt: skip

    facts = [
        Demographics(
            source="reg", source_id="Patient/1", subject=who, identifiers=(who,),
            birth_date="1969-01-15", gender="female", raw={"resourceType": "Patient"},
        ),
        obs("2093-3", 220.0, "mg/dL"),
        obs("2085-9", 45.0, "mg/dL"),
        obs("18262-6", 140.0, "mg/dL"),
        obs("8480-6", 152.0, "mm[Hg]"),
        obs("29463-7", 95.0, "kg"),
        obs("8302-2", 165.0, "cm"),
        obs("2160-0", 0.9, "mg/dL"),
        obs("4548-4", 7.6, "%"),
        Observation(
            source="ehr", source_id="smoke", subject=who, code=Coding(LOINC, "72166-2"),
            status="final", effective_start=at - dt.timedelta(days=20),
            value_code=Coding(SNOMED, "266919005", "Never smoker"),
        ),
        Condition(
            source="ehr", source_id="dm", subject=who,
            code=Coding("http://hl7.org/fhir/sid/icd-10-cm", "E11.9"), clinical_status="active",
            effective_start=at - dt.timedelta(days=900),
        ),
    ]  # fmt: skip
    store.append_facts(facts, source="test")
    pid = store.resolve_patient("urn:test|prev1")
    return evaluate(store, pid, at, scores=["prevent_10y"])


def test_ranking_is_explained_with_ranges(store: Any) -> None:
    from medtwin.risk.from_record import score_outcome
    from medtwin.risk.registry import get

    report = _report_store(store)
    (base,) = report.scores
    assert base.status == "computed" and base.value is not None, base.message
    changes = parse_changes("sbp=-10,statin,weight=-5kg,diet=-500kcal,weight=+3kg,quit_smoking")
    rows = rank_changes(report, changes)
    ranked = [r for r in rows if r.rank is not None]
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
    arrs = [r.arr for r in ranked]
    assert arrs == sorted(arrs, reverse=True)  # type: ignore[type-var]
    by = {r.change: r for r in rows}
    assert by["quit_smoking"].rank is None and by["quit_smoking"].note == "not a current smoker"
    # diet (about 10 kg in a year, BMI 34.9) beats a 5 kg loss, which beats a gain
    assert by["diet=-500kcal"].arr > by["weight=-5kg"].arr > 0 >= by["weight=+3kg"].arr  # type: ignore[operator]
    # every row with an effect size carries its range around the point estimate
    for name in ("weight=-5kg", "diet=-500kcal", "statin"):
        r = by[name]
        assert r.arr_low is not None and r.arr_high is not None
        assert r.arr_low <= r.arr <= r.arr_high  # type: ignore[operator]
        assert r.arr_low < r.arr_high
    assert by["sbp=-10"].arr_low is None  # a given change has no range
    # the low end is the score with the CI's smaller effect (0.66 mm Hg/kg, 1.1 mmol/mol)
    w = by["weight=-5kg"]
    h2 = 1.65**2
    low_inputs = dict(report.inputs)
    for name, value in (
        ("weight_kg", 90.0),
        ("bmi_kg_m2", 90.0 / h2),
        ("systolic_bp_mm_hg", 152.0 - SBP_CI[0] * 5),
        ("hba1c_percent", 7.6 - 1.1 * PCT_PER_MMOL * 5 / h2),
    ):
        low_inputs[name] = DerivedInput(name, value, "computed")
    low = score_outcome(get("prevent_10y"), low_inputs).value
    assert low is not None and w.arr_low == pytest.approx(base.value - low, abs=1e-9)
    assert math.isclose(base.value - (w.value or 0.0), w.arr or 0.0)
    # explained: which inputs, by how much, through what, with source keys
    changed = {c.input: c for c in w.inputs}
    assert set(changed) == {"weight_kg", "bmi_kg_m2", "systolic_bp_mm_hg", "hba1c_percent"}
    assert changed["systolic_bp_mm_hg"].sources == ("neter2003",)
    assert changed["systolic_bp_mm_hg"].after == pytest.approx(152.0 - SBP_PER_KG * 5)
    assert set(w.sources) == {"neter2003", "pidd2025", "ngsp_ifcc", "nice_ph38"}
    diet = {c.input: c for c in by["diet=-500kcal"].inputs}
    assert diet["weight_kg"].sources == ("hall2011", "fao2004")
    assert "hall_2011_body_weight" in diet["weight_kg"].via
    as_json = by["diet=-500kcal"].to_dict()
    assert as_json["inputs"][0]["input"] == "weight_kg" and as_json["arr_low"] is not None
    text = "\n".join(format_plan(rows))
    assert "ARR" in text and "[+" in text and "Sources" in text
    assert f"neter2003: {SOURCES['neter2003']}" in text


def test_a_statin_lowers_the_cholesterol_ratio_with_the_total_cholesterol() -> None:
    """QRISK3 reads the total/HDL ratio: the statin what-if lowers it with the total
    cholesterol (LDL 130 x 30 % = 39 mg/dL off 210, HDL 50 unchanged: 4.2 -> 3.42)."""
    derived = _inputs(
        ldl_mg_dl=130.0, total_cholesterol_mg_dl=210.0, hdl_mg_dl=50.0, cholesterol_hdl_ratio=4.2
    )
    new, note = _one("statin", derived)
    assert new is not None
    assert new["total_cholesterol_mg_dl"].value == pytest.approx(171.0)
    assert new["cholesterol_hdl_ratio"].value == pytest.approx(171.0 / 50.0)
    assert "cholesterol_hdl_ratio 4.2 -> 3.42" in note
    # without a valid ratio (no HDL), the ratio is not invented
    no_hdl = _inputs(ldl_mg_dl=130.0, total_cholesterol_mg_dl=210.0, hdl_mg_dl=None)
    new, note = _one("statin", no_hdl)
    assert new is not None and "cholesterol_hdl_ratio" not in new


@pytest.mark.parametrize("group", ["light", "moderate", "heavy"])
def test_quitting_makes_qrisk3s_current_smoker_an_ex_smoker(group: str) -> None:
    """QRISK3 reads its smoking group, not the yes/no: quitting moves a current group to
    ex-smoker (before, the what-if changed only ``smoker`` and QRISK3's risk did not move)."""
    derived = _inputs(smoker=True, smoking_category=group)
    new, note = _one("quit_smoking", derived)
    assert new is not None
    assert new["smoker"].value is False and new["smoking_category"].value == "ex_smoker"
    assert f"smoking_category {group} -> ex_smoker (quit)" in note
    # a current smoker whose group the record leaves open (light to heavy) quits all the same
    open_group = _inputs(smoker=True, smoking_category=None)
    open_group["smoking_category"] = dataclasses.replace(
        open_group["smoking_category"], alternatives=("light", "moderate", "heavy")
    )
    new, note = _one("quit_smoking", open_group)
    assert new is not None and new["smoking_category"].value == "ex_smoker"
    assert "smoking_category light or moderate or heavy -> ex_smoker" in note
    # no group at all (QRISK3 not computed): left alone
    new, _ = _one("quit_smoking", _inputs(smoker=True, smoking_category=None))
    assert new is not None and new["smoking_category"].value is None


def test_weight_changes_are_refused_in_pregnancy() -> None:
    """Weight gain in pregnancy is expected: a weight, BMI, diet or activity what-if is not for
    a patient the record shows pregnant; quitting smoking is."""
    pregnant = _inputs(sex="female", smoker=True)
    pregnant["pregnant"] = DerivedInput(
        "pregnant", True, "ok", "72892002 Normal pregnancy (2024-01-10)"
    )
    for text in ("weight=-5kg", "bmi=-2", "diet=-500kcal", "activity=+20%"):
        new, why = _one(text, pregnant)
        assert new is None, text
        assert why.startswith(
            "pregnant (72892002 Normal pregnancy (2024-01-10)): weight, diet and activity "
            "changes are not what-ifs for pregnancy"
        ), text
    new, _ = _one("quit_smoking", pregnant)
    assert new is not None and new["smoker"].value is False
    not_pregnant = dict(pregnant)
    not_pregnant["pregnant"] = DerivedInput("pregnant", False, "absent")
    assert _one("weight=-5kg", not_pregnant)[0] is not None


def test_starting_a_statin_is_refused_in_pregnancy() -> None:
    """Most pregnant patients should stop statins (FDA, 2021): starting one is not a what-if
    for a patient the record shows pregnant; the same record not pregnant gets the what-if."""
    pregnant = _inputs(sex="female", ldl_mg_dl=130.0, total_cholesterol_mg_dl=210.0)
    pregnant["pregnant"] = DerivedInput(
        "pregnant", True, "ok", "72892002 Normal pregnancy (2024-01-10)"
    )
    new, why = _one("statin", pregnant)
    assert new is None
    assert why.startswith(
        "pregnant (72892002 Normal pregnancy (2024-01-10)): starting a statin is not a what-if "
        "for pregnancy (most pregnant patients should stop statins: FDA"
    )
    not_pregnant = dict(pregnant)
    not_pregnant["pregnant"] = DerivedInput("pregnant", False, "absent")
    new, _ = _one("statin", not_pregnant)
    assert new is not None and new["statin"].value is True
