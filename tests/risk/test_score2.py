"""SCORE2 (ESC 2021): the supplementary worked example, an independent implementation's example,
a hand-written implementation from the published coefficients, the region scales, bands by age,
refusals (age, diabetes), missing inputs, vectorised = row by row, registry and CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from tests.risk.records import lab, registered, smoking_status

from medtwin.risk import get
from medtwin.risk.score2 import CHOLESTEROL_MG_PER_MMOL, REGIONS, SCORE2, coefficients, uncalibrated

MMOL = CHOLESTEROL_MG_PER_MMOL

# SCORE2 2021 supplementary methods (the authors' Stata program score2risk), by hand: age,
# smoking, SBP, diabetes, total cholesterol, HDL, smoking x age, SBP x age, diabetes x age,
# total cholesterol x age, HDL x age; 10-year baseline survival.
BETA = {
    "male": (0.3742, 0.6012, 0.2777, 0.6457, 0.1458, -0.2698, -0.0755, -0.0255, -0.0983, -0.0281,
             0.0426, 0.9605),
    "female": (0.4648, 0.7744, 0.3131, 0.8096, 0.1002, -0.2606, -0.1088, -0.0277, -0.1272,
               -0.0226, 0.0613, 0.9776),
}  # fmt: skip
SCALES = {
    ("male", "low"): (-0.569857, 0.747593), ("female", "low"): (-0.737966, 0.701868),
    ("male", "moderate"): (-0.156481, 0.800869), ("female", "moderate"): (-0.314269, 0.770149),
    ("male", "high"): (0.320717, 0.936004), ("female", "high"): (0.570963, 0.936893),
    ("male", "very_high"): (0.583578, 0.829368), ("female", "very_high"): (0.941177, 0.832923),
}  # fmt: skip


def _by_hand(
    sex: str, age: float, smk: int, sbp: float, tc: float, hdl: float, region: str
) -> float:
    """Risk (%) written out from the published numbers (cholesterol in mmol/L), no diabetes."""
    b = BETA[sex]
    a, s, t, h = (age - 60) / 5, (sbp - 120) / 20, tc - 6, (hdl - 1.3) / 0.5
    lp = (b[0] * a + b[1] * smk + b[2] * s + b[4] * t + b[5] * h + b[6] * smk * a + b[7] * a * s
          + b[9] * a * t + b[10] * a * h)  # fmt: skip
    r0 = 1 - b[11] ** math.exp(lp)
    s1, s2 = SCALES[(sex, region)]
    return 100 * (1 - math.exp(-math.exp(s1 + s2 * math.log(-math.log(1 - r0)))))


def _row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "age_years": 50, "sex": "male", "smoker": True, "systolic_bp_mm_hg": 140,
        "total_cholesterol_mg_dl": 6.3 * MMOL, "hdl_mg_dl": 1.4 * MMOL, "diabetes": False,
        "risk_region": "low",
    }  # fmt: skip
    base.update(kw)
    return base


def test_supplementary_table_4_uncalibrated_example() -> None:
    """50 years, smoker, SBP 140 mmHg, total cholesterol 6.3 and HDL 1.4 mmol/L, no diabetes:
    uncalibrated 10-year risk 3.32 % (women) and 5.41 % (men), SCORE2 Supplementary Table 4."""
    one = lambda v: np.array([v], dtype=float)  # noqa: E731
    raw = {"age": one(50), "smoking": one(1), "sbp": one(140), "tchol": one(6.3),
           "hdl": one(1.4), "diabetes": one(0)}  # fmt: skip
    women = uncalibrated(coefficients(), "female", raw)
    men = uncalibrated(coefficients(), "male", raw)
    assert round(100 * float(women[0]), 2) == 3.32
    assert round(100 * float(men[0]), 2) == 5.41


def test_an_independent_implementations_example() -> None:
    """A 50-year-old smoker, SBP 140, total cholesterol 5.5 and HDL 1.3 mmol/L, low-risk region:
    5.9 % (men) and 4.2 % (women), as an independent Python implementation of SCORE2 prints
    (its README; one decimal)."""
    for sex, expected in (("male", 5.9), ("female", 4.2)):
        r = SCORE2.compute_one(
            _row(sex=sex, total_cholesterol_mg_dl=5.5 * MMOL, hdl_mg_dl=1.3 * MMOL)
        )
        assert r.value is not None and round(r.value, 1) == expected


def test_the_shipped_numbers_are_the_published_ones() -> None:
    c = coefficients()
    keys = ("age", "smoking", "sbp", "diabetes", "tchol", "hdl", "smoking*age", "sbp*age",
            "diabetes*age", "tchol*age", "hdl*age")  # fmt: skip
    for sex, betas in BETA.items():
        assert len(c[sex]["terms"]) == len(keys)
        assert (*(c[sex]["terms"][k] for k in keys), c[sex]["baseline_survival"]) == betas
        for region in REGIONS:
            assert tuple(c["scales"][sex][region]) == SCALES[(sex, region)]


def test_equals_the_hand_written_equation_on_random_people() -> None:
    rng = random.Random(2021)
    rows = []
    for _ in range(300):
        rows.append(
            _row(
                age_years=rng.uniform(40, 69.99), sex=rng.choice(["male", "female"]),
                smoker=rng.random() < 0.3, systolic_bp_mm_hg=rng.uniform(95, 200),
                total_cholesterol_mg_dl=rng.uniform(3, 9) * MMOL,
                hdl_mg_dl=rng.uniform(0.7, 2.5) * MMOL, risk_region=rng.choice(REGIONS),
            )
        )  # fmt: skip
    many = SCORE2.compute_many({k: [r[k] for r in rows] for k in rows[0]})
    for i, r in enumerate(rows):
        expected = _by_hand(
            r["sex"], r["age_years"], int(r["smoker"]), r["systolic_bp_mm_hg"],
            r["total_cholesterol_mg_dl"] / MMOL, r["hdl_mg_dl"] / MMOL, r["risk_region"],
        )  # fmt: skip
        one = SCORE2.compute_one(r)
        assert one.value == pytest.approx(expected, rel=1e-12)
        assert many[i].value == pytest.approx(one.value, rel=1e-12) and many[i].band == one.band


def test_the_region_raises_the_risk_of_the_same_person() -> None:
    values = [SCORE2.compute_one(_row(risk_region=r)).value for r in REGIONS]
    assert values == sorted(values) and values[0] < values[-1]  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("age", "value", "band"),
    [
        (49.9, 2.49, "low_to_moderate"), (49.9, 2.5, "high"), (49.9, 7.49, "high"),
        (49.9, 7.5, "very_high"), (50.0, 4.99, "low_to_moderate"), (50.0, 5.0, "high"),
        (50.0, 9.99, "high"), (50.0, 10.0, "very_high"),
    ],
)  # fmt: skip
def test_bands_follow_the_esc_age_groups(
    age: float, value: float, band: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 2021 ESC categories: under 50, high from 2.5 % and very high from 7.5 %; 50-69, 5 %
    and 10 % (the risk is fixed here to sit on each edge)."""
    monkeypatch.setattr(type(SCORE2), "_risk", lambda self, data, rows: np.full(rows.size, value))
    assert SCORE2.compute_one(_row(age_years=age)).band == band


def test_refusals_name_the_reason() -> None:
    young = SCORE2.compute_one(_row(age_years=39.9))
    assert young.refused and "age_years=39.9 is outside the population of SCORE2" in young.refused
    assert SCORE2.compute_one(_row(age_years=69.99)).value is not None
    old = SCORE2.compute_one(_row(age_years=70))
    assert old.refused and "SCORE2-OP for 70 and over" in old.refused
    diabetic = SCORE2.compute_one(_row(diabetes=True))
    assert diabetic.refused and "SCORE2-Diabetes" in diabetic.refused
    mmol = SCORE2.compute_one(_row(total_cholesterol_mg_dl=5.2))  # mmol/L given as mg/dL
    assert mmol.refused and "total_cholesterol_mg_dl" in mmol.refused


def test_missing_region_is_missing_not_assumed() -> None:
    row = _row()
    del row["risk_region"]
    r = SCORE2.compute_one(row)
    assert r.value is None and r.missing == ("risk_region",)
    assert SCORE2.compute_one(_row(risk_region="very high")).value == pytest.approx(
        SCORE2.compute_one(_row(risk_region="very_high")).value
    )


def test_registered_and_scored_by_the_cli() -> None:
    from medtwin.cli import main

    assert get("score2_10y") is SCORE2
    out = CliRunner().invoke(main, ["score", "score2_10y", json.dumps(_row()), "--json"])
    assert out.exit_code == 0, out.output
    assert round(json.loads(out.output)["value"], 2) == 6.31


# --- from the record (medtwin.risk.score2_inputs) ---


def _record(store: Any, address: list[dict[str, Any]] | None) -> str:
    import datetime as dt

    from medtwin.record.facts import Identifier

    who = Identifier("urn:test", "s2")
    when = dt.datetime(2024, 5, 31, 12, tzinfo=dt.UTC)
    demo = registered(who, "1974-01-15", "female")
    if address is not None:
        demo = dataclasses.replace(demo, raw={**(demo.raw or {}), "address": address})
    store.append_facts(
        [
            demo, lab(who, "2093-3", 5.5 * MMOL, "mg/dL", when),
            lab(who, "2085-9", 1.3 * MMOL, "mg/dL", when),
            lab(who, "8480-6", 140.0, "mm[Hg]", when),
            smoking_status(who, "449868002", "Smokes tobacco daily", when),
        ],
        source="test",
    )  # fmt: skip
    return str(store.resolve_patient("urn:test|s2"))


AT = "2024-06-30"


@pytest.mark.parametrize(
    ("address", "region"),
    [
        ([{"use": "home", "country": "DE"}], "moderate"),
        ([{"use": "home", "country": "Germany"}], "moderate"),
        ([{"use": "old", "country": "US", "period": {"end": "2020-01-01"}},
          {"use": "home", "country": "FRA"}], "low"),
        ([{"use": "home", "country": "Russia"}], "very_high"),
    ],
)  # fmt: skip
def test_the_region_of_the_address_country(
    store: Any, address: list[dict[str, Any]], region: str
) -> None:
    """The ESC region of the current home address's country (code or name) gives SCORE2 from
    the record, equal to the score with that region given directly."""
    import datetime as dt

    from medtwin.risk.from_record import evaluate

    pid = _record(store, address)
    report = evaluate(store, pid, dt.date.fromisoformat(AT), scores=["score2_10y"])
    (s2,) = report.scores
    assert report.inputs["risk_region"].value == region
    expected = SCORE2.compute_one(
        _row(sex="female", total_cholesterol_mg_dl=5.5 * MMOL, hdl_mg_dl=1.3 * MMOL,
             risk_region=region)
    )  # fmt: skip
    assert s2.status == "computed" and s2.value == pytest.approx(expected.value, rel=1e-12)
    assert "esc_country" in s2.inputs and "risk_region" in s2.inputs


def test_outside_europe_not_applicable_and_no_country_not_known(store: Any) -> None:
    """A United States address: SCORE2 does not apply (no ESC region); no address country:
    whether it applies is not known ("cannot compute")."""
    import datetime as dt

    from medtwin.risk.from_record import evaluate

    pid = _record(store, [{"use": "home", "country": "US"}])
    (s2,) = evaluate(store, pid, dt.date.fromisoformat(AT), scores=["score2_10y"]).scores
    assert s2.status == "refused" and s2.message.startswith(
        "not applicable: the address country has no ESC cardiovascular risk region"
    )
    (demo,) = store.timeline(pid, kinds=["Demographics"], include_raw=True)
    store.append_facts(
        [dataclasses.replace(demo.fact, raw={"resourceType": "Patient"})], source="test"
    )
    (s2,) = evaluate(store, pid, dt.date.fromisoformat(AT), scores=["score2_10y"]).scores
    assert s2.status == "missing"
    assert s2.message == "cannot compute: missing esc_country (no address country on the Patient)"
