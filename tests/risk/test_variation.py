"""A risk over the day-to-day variation of its measured inputs (medtwin.risk.variation): an
independent Monte Carlo, the patient's own blood-pressure spread, refused draws, determinism,
and the report (JSON, text)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from tests.risk.records import lab, registered, risk_text, smoking_status

from medtwin.record.facts import Identifier
from medtwin.risk.from_record import evaluate, row_from
from medtwin.risk.inputs import DerivedInput
from medtwin.risk.registry import get
from medtwin.risk.variation import LEVEL, LIPID_CV, SOURCE, measurement_interval

AT = dt.datetime(2024, 6, 30, 12, tzinfo=dt.UTC)
PCE = get("pce_ascvd_10y")
ROW: dict[str, Any] = {
    "age_years": 58, "sex": "female", "race": "white", "total_cholesterol_mg_dl": 230.0,
    "hdl_mg_dl": 48.0, "systolic_bp_mm_hg": 138.0, "bp_treated": False, "smoker": False,
    "diabetes": False,
}  # fmt: skip


def _sd(value: float | None, readings: int = 4) -> dict[str, DerivedInput]:
    if value is None:
        return {
            "systolic_bp_sd_mm_hg": DerivedInput(
                "systolic_bp_sd_mm_hg", None, "missing",
                "1 systolic reading(s) in the last 5 years, at least 2 needed",
            )
        }  # fmt: skip
    from medtwin.risk.inputs import Provenance

    prov = tuple(
        Provenance("lab", f"bp{i}", "8480-6", None, "2024-01-01", 100) for i in range(readings)
    )
    return {
        "systolic_bp_sd_mm_hg": DerivedInput(
            "systolic_bp_sd_mm_hg", value, "computed", "SD of systolic readings", None, None, prov
        )
    }


def _quantiles_by_hand(row: dict[str, Any], sbp_sd: float | None, n: int, seed: int) -> Any:
    """The same model drawn with another generator and numpy's own percentiles."""
    rng = np.random.Generator(np.random.PCG64(seed))
    cols: dict[str, Any] = {k: [v] * n for k, v in row.items()}
    for name in ("total_cholesterol_mg_dl", "hdl_mg_dl"):
        sigma = math.sqrt(math.log(1 + LIPID_CV[name] ** 2))
        cols[name] = row[name] * np.exp(sigma * rng.standard_normal(n))
    if sbp_sd is not None:
        cols["systolic_bp_mm_hg"] = row["systolic_bp_mm_hg"] + sbp_sd * rng.standard_normal(n)
    values = PCE.compute_many(cols, rows=n).value
    tail = 100 * (1 - LEVEL) / 2
    return np.nanpercentile(values, [tail, 100 - tail])


@pytest.mark.parametrize("sbp_sd", [None, 9.0])
def test_agrees_with_an_independent_monte_carlo(sbp_sd: float | None) -> None:
    """The 5th and 95th percentiles agree, within 1.5 % of themselves, with 200,000 draws of
    another generator (the function's own seed-to-seed spread is 0.1-0.3 %)."""
    v = measurement_interval(PCE, _sd(sbp_sd), ROW)
    assert v is not None
    low, high = _quantiles_by_hand(ROW, sbp_sd, 200_000, seed=7)
    assert v.low == pytest.approx(low, rel=0.015) and v.high == pytest.approx(high, rel=0.015)
    point = PCE.compute_one(ROW).value
    assert point is not None and v.low < point < v.high
    assert v.level == 0.90 and v.refused == 0


def test_the_patients_own_pressure_spread_widens_it_and_without_it_is_said() -> None:
    fixed = measurement_interval(PCE, _sd(None), ROW)
    spread = measurement_interval(PCE, _sd(12.0, readings=6), ROW)
    assert fixed is not None and spread is not None
    assert spread.high - spread.low > fixed.high - fixed.low
    assert fixed.not_varied == (
        "systolic (1 systolic reading(s) in the last 5 years, at least 2 needed)",
    )
    assert spread.varied == (
        "total cholesterol CV 6.1 %",
        "HDL CV 7.4 %",
        "systolic SD 12.0 mmHg, the patient's 6 readings in 5 years",
    )
    assert spread.not_varied == ()


def test_draws_the_equation_refuses_are_counted_and_left_out() -> None:
    """A total cholesterol at the PCE's upper limit (320 mg/dL): the draws above it are refused,
    counted, and not in the interval, which then stays at or below the limit's risk."""
    row = {**ROW, "total_cholesterol_mg_dl": 318.0}
    v = measurement_interval(PCE, _sd(None), row)
    assert v is not None and 0 < v.refused < 10_000
    at_limit = PCE.compute_one({**row, "total_cholesterol_mg_dl": 320.0, "hdl_mg_dl": 48 / 1.25})
    assert at_limit.value is not None and v.high < at_limit.value


def test_the_same_record_gives_the_same_interval() -> None:
    a = measurement_interval(PCE, _sd(9.0), ROW)
    b = measurement_interval(PCE, _sd(9.0), ROW)
    assert a == b


def test_a_score_without_varied_inputs_has_none() -> None:
    egfr = get("ckd_epi_2021")
    assert (
        measurement_interval(egfr, {}, {"creatinine_mg_dl": 1.0, "age_years": 50, "sex": "male"})
        is None
    )


def test_in_the_report_json_and_text(store: Any) -> None:
    """From a record: each computed percent risk carries the interval (JSON ``variation`` with
    its source); QRISK3's ratio moves with both lipids; ``variation=False`` leaves it out."""
    who = Identifier("urn:test", "var")

    def at(days: int) -> dt.datetime:
        return AT - dt.timedelta(days=days)

    store.append_facts(
        [
            registered(who, "1966-03-01", "female"),
            lab(who, "2093-3", 230.0, "mg/dL", at(20)), lab(who, "2085-9", 48.0, "mg/dL", at(20)),
            lab(who, "8480-6", 138.0, "mm[Hg]", at(20)), lab(who, "8480-6", 150.0, "mm[Hg]", at(200)),
            lab(who, "8480-6", 128.0, "mm[Hg]", at(400)),
            lab(who, "29463-7", 70.0, "kg", at(20)), lab(who, "8302-2", 165.0, "cm", at(20)),
            smoking_status(who, "266919005", "Never smoked tobacco", at(20)),
        ],
        source="test",
    )  # fmt: skip
    pid = str(store.resolve_patient("urn:test|var"))
    report = evaluate(store, pid, AT.date(), scores=["framingham_cvd_10y", "qrisk3_10y"])
    fram, qrisk = report.scores
    assert fram.variation is not None and fram.variation.low < fram.value < fram.variation.high  # type: ignore[operator]
    expected = measurement_interval(get("framingham_cvd_10y"), report.inputs,
                                    row_from(get("framingham_cvd_10y"), report.inputs))  # fmt: skip
    assert fram.variation == expected
    assert "systolic SD 11.0 mmHg, the patient's 3 readings in 5 years" in fram.variation.varied
    as_json = fram.to_dict()["variation"]
    assert as_json["source"] == SOURCE and as_json["level"] == 0.9
    if qrisk.status == "computed":
        assert qrisk.variation is not None
        assert qrisk.variation.varied[0].startswith("total/HDL ratio")
    bare = evaluate(store, pid, AT.date(), scores=["framingham_cvd_10y"], variation=False)
    assert bare.scores[0].variation is None and "variation" not in bare.scores[0].to_dict()
    text = risk_text(store, pid, AT.date().isoformat(), "framingham_cvd_10y")
    assert "90 % over day-to-day variation: " in text


def test_a_computed_egfr_moves_with_its_creatinine_a_reported_one_is_held() -> None:
    """PREVENT reads eGFR: computed from a creatinine, the creatinine is drawn (CV 5.0 %) and
    CKD-EPI 2021 recomputed, which widens the interval; an eGFR reported as such is held."""
    prevent = get("prevent_10y")
    row = {**ROW, "egfr_ml_min_1_73m2": 48.0, "statin": False}
    base = {
        "age_years": DerivedInput("age_years", 58.0, "ok"),
        "sex": DerivedInput("sex", "female", "ok"),
        "creatinine_mg_dl": DerivedInput("creatinine_mg_dl", 1.25, "ok"),
    }
    computed = {**base, "egfr_ml_min_1_73m2": DerivedInput("egfr_ml_min_1_73m2", 48.0, "computed")}
    reported = {**base, "egfr_ml_min_1_73m2": DerivedInput("egfr_ml_min_1_73m2", 48.0, "ok")}
    moved = measurement_interval(prevent, {**computed, **_sd(None)}, row)
    held = measurement_interval(prevent, {**reported, **_sd(None)}, row)
    assert moved is not None and held is not None
    assert "creatinine CV 5.0 % (eGFR recomputed, CKD-EPI 2021)" in moved.varied
    assert "eGFR (a reported eGFR, not computed from a creatinine here)" in held.not_varied
    assert moved.high - moved.low > held.high - held.low
    assert "creatinine_source" in moved.to_dict() and "creatinine_source" not in held.to_dict()


def test_hba1c_is_drawn_for_scores_that_read_it() -> None:
    """SCORE2-Diabetes reads HbA1c: drawn log-normal with CV 1.7 % (Gough 2023, people without
    diabetes), the interval agreeing within 1.5 % with an independent Monte Carlo of HbA1c alone
    (lipids and pressure held by giving them no spread: the score's other inputs fixed)."""
    from medtwin.risk.variation import HBA1C_CV, HBA1C_SOURCE

    dm = get("score2_diabetes_10y")
    row = {
        "age_years": 60.0, "sex": "male", "smoker": False, "systolic_bp_mm_hg": 140.0,
        "total_cholesterol_mg_dl": 5.5 * 38.67, "hdl_mg_dl": 1.3 * 38.67,
        "risk_region": "moderate", "type_2_diabetes": True,
        "age_at_diabetes_diagnosis_years": 50.0, "hba1c_percent": 8.0,
        "egfr_ml_min_1_73m2": 80.0,
    }  # fmt: skip
    derived = {**_sd(None), "egfr_ml_min_1_73m2": DerivedInput("egfr_ml_min_1_73m2", 80.0, "ok")}
    v = measurement_interval(dm, derived, row)
    assert v is not None and f"HbA1c CV {100 * HBA1C_CV:.1f} %" in v.varied
    assert v.to_dict()["hba1c_source"] == HBA1C_SOURCE
    # by hand: every varied input drawn with another generator
    n = 200_000
    rng = np.random.Generator(np.random.PCG64(11))
    cols: dict[str, Any] = {k: [x] * n for k, x in row.items()}
    for name, cv in (*LIPID_CV.items(), ("hba1c_percent", HBA1C_CV)):
        cols[name] = row[name] * np.exp(math.sqrt(math.log(1 + cv**2)) * rng.standard_normal(n))
    values = dm.compute_many(cols, rows=n).value
    low, high = np.nanpercentile(values, [5, 95])
    assert v.low == pytest.approx(low, rel=0.015) and v.high == pytest.approx(high, rel=0.015)
    # HbA1c alone widens it: without it (a PCE row) nothing about HbA1c is said
    assert all("HbA1c" not in x for x in measurement_interval(PCE, _sd(None), ROW).varied)  # type: ignore[union-attr]
