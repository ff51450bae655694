"""SCORE2-OP (ESC 2021): the authors' program written out by hand, its published (rounded)
coefficients reproducing an independent implementation's example, bands for 70 and over,
refusals (age), diabetes as a predictor, registry, and from the record."""

from __future__ import annotations

import copy
import datetime as dt
import math
import random
from typing import Any

import numpy as np
import pytest
from tests.risk.records import lab, registered, smoking_status

from medtwin.risk import get
from medtwin.risk.score2 import (
    CHOLESTEROL_MG_PER_MMOL,
    REGIONS,
    coefficients,
    recalibrated,
    uncalibrated,
)
from medtwin.risk.score2_op import SCORE2_OP

MMOL = CHOLESTEROL_MG_PER_MMOL
FILE = "score2_op_2021.toml"

# The SCORE2-OP authors' Stata program (score2oprisk, S Kaptoge, L Pennells, S Hageman), by
# hand: age, diabetes, diabetes x age, smoking, smoking x age, SBP, SBP x age, total cholesterol,
# total cholesterol x age, HDL, HDL x age; mean linear predictor; 1 - baseline survival.
PROGRAM = {
    "male": (0.0633767915, 0.4245248910, -0.0173654217, 0.3523957899, -0.0247205945,
             0.0094362177, -0.0004794522, 0.0849594156, 0.0073336663, -0.3563571842,
             0.0091317857, 0.09285225, 0.24235298),
    "female": (0.0789191229, 0.6009874438, -0.0106909701, 0.4921147010, -0.0255496313,
               0.0101993091, -0.0004404728, 0.0604939598, -0.0009121461, -0.3040280248,
               0.0153779923, 0.2287676, 0.19178759),
}  # fmt: skip
# The same program's "rounded coefficients as published" (its `rounded` option).
PUBLISHED = {
    "male": (0.0634, 0.4245, -0.0174, 0.3524, -0.0247, 0.0094, -0.0005, 0.0850, 0.0073, -0.3564,
             0.0091, 0.0929, 0.2424),
    "female": (0.0789, 0.6010, -0.0107, 0.4921, -0.0255, 0.0102, -0.0004, 0.0605, -0.0009,
               -0.3040, 0.0154, 0.2288, 0.1918),
}  # fmt: skip
SCALES = {
    ("male", "low"): (-0.343484, 1.193038), ("female", "low"): (-0.516054, 1.007238),
    ("male", "moderate"): (0.005320, 1.248514), ("female", "moderate"): (-0.101044, 1.099621),
    ("male", "high"): (0.084305, 1.151902), ("female", "high"): (0.375720, 1.089031),
    ("male", "very_high"): (0.045959, 0.703625), ("female", "very_high"): (0.379293, 0.691530),
}  # fmt: skip


def _by_hand(
    sex: str, age: float, smk: int, sbp: float, tc: float, hdl: float, dm: int, region: str
) -> float:
    """Risk (%) written out as the authors' program computes it (cholesterol in mmol/L)."""
    b = PROGRAM[sex]
    a, s, t, h = age - 73, sbp - 150, tc - 6, hdl - 1.4
    lp = (b[0] * a + b[1] * dm + b[2] * dm * a + b[3] * smk + b[4] * smk * a + b[5] * s
          + b[6] * a * s + b[7] * t + b[8] * a * t + b[9] * h + b[10] * a * h - b[11])  # fmt: skip
    r0 = 1 - (1 - b[12]) ** math.exp(lp)
    s1, s2 = SCALES[(sex, region)]
    return 100 * (1 - math.exp(-math.exp(s1 + s2 * math.log(-math.log(1 - r0)))))


def _row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "age_years": 75, "sex": "male", "smoker": True, "systolic_bp_mm_hg": 140,
        "total_cholesterol_mg_dl": 5.5 * MMOL, "hdl_mg_dl": 1.3 * MMOL, "diabetes": False,
        "risk_region": "low",
    }  # fmt: skip
    base.update(kw)
    return base


KEYS = ("age", "diabetes", "diabetes*age", "smoking", "smoking*age", "sbp", "sbp*age", "tchol",
        "tchol*age", "hdl", "hdl*age")  # fmt: skip


def test_the_shipped_numbers_are_the_authors_program() -> None:
    c = coefficients(FILE)
    for sex, b in PROGRAM.items():
        assert len(c[sex]["terms"]) == len(KEYS)
        assert tuple(c[sex]["terms"][k] for k in KEYS) == b[:11]
        assert c[sex]["lp_mean"] == b[11]
        assert c[sex]["baseline_survival"] == pytest.approx(1 - b[12], abs=1e-12)
        for region in REGIONS:
            assert tuple(c["scales"][sex][region]) == SCALES[(sex, region)]
    assert c["centring"] == {"age": [73.0, 1.0], "sbp": [150.0, 1.0], "tchol": [6.0, 1.0],
                             "hdl": [1.4, 1.0]}  # fmt: skip


def test_published_coefficients_reproduce_an_independent_implementations_example() -> None:
    """75 years, smoker, SBP 140 mmHg, total cholesterol 5.5 and HDL 1.3 mmol/L, no diabetes,
    low-risk region: 18.56 % (men) and 15.16 % (women), as an independent R implementation's
    test of SCORE2-OP prints them (two decimals), computed with the coefficients as published
    and the scales rounded to two decimals: the program's `rounded` option, run through
    medtwin's evaluator."""
    rounded = copy.deepcopy(coefficients(FILE))
    for sex, b in PUBLISHED.items():
        rounded[sex]["terms"] = dict(zip(KEYS, b[:11], strict=True))
        rounded[sex]["lp_mean"] = b[11]
        rounded[sex]["baseline_survival"] = 1 - b[12]
    one = lambda v: np.array([v], dtype=float)  # noqa: E731
    raw = {"age": one(75), "smoking": one(1), "sbp": one(140), "tchol": one(5.5),
           "hdl": one(1.3), "diabetes": one(0)}  # fmt: skip
    for sex, expected in (("male", 18.56), ("female", 15.16)):
        s1, s2 = (round(v, 2) for v in rounded["scales"][sex]["low"])
        r0 = uncalibrated(rounded, sex, raw)
        assert round(float(recalibrated(r0, one(s1), one(s2))[0]), 2) == expected
    # medtwin ships the unrounded program: the same people, 18.43 % and 15.28 %
    men = SCORE2_OP.compute_one(_row()).value
    women = SCORE2_OP.compute_one(_row(sex="female")).value
    assert (round(men, 2), round(women, 2)) == (18.43, 15.28)  # type: ignore[arg-type]


def test_equals_the_authors_program_on_random_people() -> None:
    rng = random.Random(2021)
    rows = [
        _row(
            age_years=rng.uniform(70, 89.99), sex=rng.choice(["male", "female"]),
            smoker=rng.random() < 0.2, systolic_bp_mm_hg=rng.uniform(95, 210),
            total_cholesterol_mg_dl=rng.uniform(3, 9) * MMOL,
            hdl_mg_dl=rng.uniform(0.7, 2.5) * MMOL, diabetes=rng.random() < 0.2,
            risk_region=rng.choice(REGIONS),
        )
        for _ in range(300)
    ]  # fmt: skip
    many = SCORE2_OP.compute_many({k: [r[k] for r in rows] for k in rows[0]})
    for i, r in enumerate(rows):
        expected = _by_hand(
            r["sex"], r["age_years"], int(r["smoker"]), r["systolic_bp_mm_hg"],
            r["total_cholesterol_mg_dl"] / MMOL, r["hdl_mg_dl"] / MMOL, int(r["diabetes"]),
            r["risk_region"],
        )  # fmt: skip
        one = SCORE2_OP.compute_one(r)
        assert one.value == pytest.approx(expected, rel=1e-12)
        assert many[i].value == pytest.approx(one.value, rel=1e-12) and many[i].band == one.band


def test_diabetes_is_a_predictor_and_the_region_raises_the_risk() -> None:
    without = SCORE2_OP.compute_one(_row()).value
    with_dm = SCORE2_OP.compute_one(_row(diabetes=True)).value
    assert with_dm is not None and without is not None and with_dm > without
    values = [SCORE2_OP.compute_one(_row(risk_region=r)).value for r in REGIONS]
    assert values[0] < values[1] < values[2]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "band"),
    [(7.49, "low_to_moderate"), (7.5, "high"), (14.99, "high"), (15.0, "very_high")],
)
def test_bands_for_70_and_over(value: float, band: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 2021 ESC categories for 70 and over: high from 7.5 %, very high from 15 %."""
    monkeypatch.setattr(
        type(SCORE2_OP), "_risk", lambda self, data, rows: np.full(rows.size, value)
    )
    assert SCORE2_OP.compute_one(_row()).band == band


def test_refusals_name_the_reason() -> None:
    young = SCORE2_OP.compute_one(_row(age_years=69.9))
    assert young.refused and "age_years=69.9 is outside the population of SCORE2-OP" in (
        young.refused
    )
    assert "SCORE2 for 40-69" in young.refused
    assert SCORE2_OP.compute_one(_row(age_years=89.99)).value is not None
    old = SCORE2_OP.compute_one(_row(age_years=90))
    assert old.refused and "charts stop at 89" in old.refused
    row = _row()
    del row["risk_region"]
    missing = SCORE2_OP.compute_one(row)
    assert missing.value is None and missing.missing == ("risk_region",)


def test_registered() -> None:
    assert get("score2_op_10y") is SCORE2_OP
    described = SCORE2_OP.describe()
    assert described["accepted_ranges"][0]["low"] == 70.0
    assert [b["name"] for b in described["bands"]] == ["low_to_moderate", "high", "very_high"]


def test_from_the_record(store: Any) -> None:
    """A 75-year-old woman in France: SCORE2-OP from the record equals the score given the same
    inputs; SCORE2 refuses her age and points to SCORE2-OP."""
    from medtwin.record.facts import Identifier
    from medtwin.risk.from_record import evaluate

    who = Identifier("urn:test", "op")
    at = dt.datetime(2024, 6, 30, 12, tzinfo=dt.UTC)
    when = at - dt.timedelta(days=30)
    store.append_facts(
        [
            registered(who, "1949-01-15", "female", country="FR"),
            lab(who, "2093-3", 5.5 * MMOL, "mg/dL", when),
            lab(who, "2085-9", 1.3 * MMOL, "mg/dL", when),
            lab(who, "8480-6", 150.0, "mm[Hg]", when),
            smoking_status(who, "8517006", "Ex-smoker", when),
        ],
        source="test",
    )
    pid = str(store.resolve_patient("urn:test|op"))
    report = evaluate(store, pid, at.date(), scores=["score2_op_10y", "score2_10y"])
    op, s2 = report.scores
    expected = SCORE2_OP.compute_one(
        _row(age_years=75, sex="female", smoker=False, systolic_bp_mm_hg=150)
    )
    assert op.status == "computed" and op.value == pytest.approx(expected.value, rel=1e-12)
    assert op.band == expected.band
    assert s2.status == "refused" and "SCORE2-OP for 70 and over" in s2.message
