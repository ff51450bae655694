"""Framingham general CVD 10-year risk (D'Agostino 2008): published Table 2 coefficients, an
independent published implementation, a hand-written implementation, the age range, refusals,
missing inputs, vectorised = row by row, registry and CLI."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from medtwin.risk import get, score_list
from medtwin.risk.framingham import FRAMINGHAM_CVD_10Y, coefficients

# D'Agostino et al. 2008, Table 2, by hand: ln age, ln TC, ln HDL, ln SBP untreated,
# ln SBP treated, smoker, diabetes, mean of the linear predictor, 10-year baseline survival.
TABLE_2 = {
    "female": (2.32888, 1.20904, -0.70833, 2.76157, 2.82263, 0.52873, 0.69154, 26.1931, 0.95012),
    "male": (3.06117, 1.12370, -0.93263, 1.93303, 1.99881, 0.65451, 0.57367, 23.9802, 0.88936),
}
KEYS = ("ln_age", "ln_tc", "ln_hdl", "ln_untreated_sbp", "ln_treated_sbp", "smoker", "diabetes",
        "mean_sum", "baseline_survival")  # fmt: skip


def _row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "age_years": 55, "sex": "male", "total_cholesterol_mg_dl": 213, "hdl_mg_dl": 50,
        "systolic_bp_mm_hg": 140, "bp_treated": False, "smoker": False, "diabetes": False,
    }  # fmt: skip
    base.update(kw)
    return base


def _independent(r: dict[str, Any]) -> float:
    c = TABLE_2[r["sex"]]
    s = (c[0] * math.log(r["age_years"]) + c[1] * math.log(r["total_cholesterol_mg_dl"])
         + c[2] * math.log(r["hdl_mg_dl"])
         + (c[4] if r["bp_treated"] else c[3]) * math.log(r["systolic_bp_mm_hg"])
         + (c[5] if r["smoker"] else 0.0) + (c[6] if r["diabetes"] else 0.0))  # fmt: skip
    return 100 * (1 - c[8] ** math.exp(s - c[7]))


def test_shipped_coefficients_are_the_published_ones() -> None:
    c = coefficients()
    for sex, published in TABLE_2.items():
        assert tuple(c[sex][k] for k in KEYS) == published, sex
    # the baseline survival is 0.95012 for women and 0.88936 for men (not the other way round)
    assert c["female"]["baseline_survival"] == 0.95012
    assert c["male"]["baseline_survival"] == 0.88936
    assert c["accepted"]["age_years"] == [30.0, 75.0]


def test_independent_published_implementation() -> None:
    # R package CVrisk (vcastro/CVrisk, docs/reference/ascvd_10y_frs.md), example output:
    # ascvd_10y_frs(gender="male", age=55, hdl=50, totchol=213, sbp=140, bp_med=0, smoker=0,
    # diabetes=0) -> 13.53 (percent, 2 decimals)
    r = FRAMINGHAM_CVD_10Y.compute_one(_row())
    assert r.value == pytest.approx(13.53, abs=0.005)
    assert r.band is None and not r.partial and r.refused is None


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # 61-year-old woman, TC 180, HDL 47, untreated SBP 124, smoker, no diabetes
        ({"age_years": 61, "sex": "female", "total_cholesterol_mg_dl": 180, "hdl_mg_dl": 47,
          "systolic_bp_mm_hg": 124, "smoker": True}, 10.48),
        # 53-year-old man, TC 161, HDL 55, treated SBP 125, non-smoker, diabetes
        ({"age_years": 53, "total_cholesterol_mg_dl": 161, "hdl_mg_dl": 55,
          "systolic_bp_mm_hg": 125, "bp_treated": True, "diabetes": True}, 15.62),
    ],
)  # fmt: skip
def test_worked_examples(row: dict[str, Any], expected: float) -> None:
    # By hand from Table 2 (4-5 significant digits at each step):
    # woman: sum = 26.9653, minus the mean 26.1931 = 0.7722, exp = 2.1646,
    #        risk = 1 - 0.95012^2.1646 = 10.48 %
    # man:   sum = 24.3509, minus the mean 23.9802 = 0.3707, exp = 1.4488,
    #        risk = 1 - 0.88936^1.4488 = 15.62 %
    r = FRAMINGHAM_CVD_10Y.compute_one(_row(**row))
    assert r.value == pytest.approx(expected, abs=0.005)


@settings(max_examples=200, deadline=None)
@given(
    row=st.fixed_dictionaries(
        {
            "age_years": st.floats(30, 74.99),
            "sex": st.sampled_from(("female", "male")),
            "total_cholesterol_mg_dl": st.floats(100, 400),
            "hdl_mg_dl": st.floats(15, 120),
            "systolic_bp_mm_hg": st.floats(80, 220),
            "bp_treated": st.booleans(),
            "smoker": st.booleans(),
            "diabetes": st.booleans(),
        }
    )
)
def test_agrees_with_hand_written_implementation(row: dict[str, Any]) -> None:
    r = FRAMINGHAM_CVD_10Y.compute_one(row)
    assert r.value == pytest.approx(_independent(row), rel=1e-12, abs=1e-12)
    assert 0.0 < r.value < 100.0


def test_risk_rises_with_each_risk_factor() -> None:
    base = FRAMINGHAM_CVD_10Y.compute_one(_row()).value
    assert base is not None
    for change in ({"age_years": 56}, {"total_cholesterol_mg_dl": 214}, {"hdl_mg_dl": 49},
                   {"systolic_bp_mm_hg": 141}, {"bp_treated": True}, {"smoker": True},
                   {"diabetes": True}):  # fmt: skip
        worse = FRAMINGHAM_CVD_10Y.compute_one(_row(**change)).value
        assert worse is not None and worse > base, change


@pytest.mark.parametrize(("inside", "outside"), [(30, 29.99), (74.99, 75)])
def test_age_edges(inside: float, outside: float) -> None:
    ok = FRAMINGHAM_CVD_10Y.compute_one(_row(age_years=inside))
    assert ok.value is not None and ok.refused is None
    bad = FRAMINGHAM_CVD_10Y.compute_one(_row(age_years=outside))
    assert bad.value is None and bad.refused is not None
    assert f"age_years={outside:g} is outside the population" in bad.refused
    assert "30 to 74 years" in bad.refused


def test_refusals_and_missing() -> None:
    r = FRAMINGHAM_CVD_10Y.compute_one(_row(total_cholesterol_mg_dl=5000))
    assert r.refused is not None and "total_cholesterol_mg_dl=5000 is outside the plausible" in (
        r.refused
    )
    r = FRAMINGHAM_CVD_10Y.compute_one(_row(sex="unknown"))
    assert r.refused is not None and "sex='unknown' is not one of female, male" in r.refused
    r = FRAMINGHAM_CVD_10Y.compute_one(_row(bp_treated=None, diabetes=""))
    assert r.value is None and r.partial and r.missing == ("bp_treated", "diabetes")
    # lipids outside the PCE calculator's range are still scored (the paper states no limit)
    assert FRAMINGHAM_CVD_10Y.compute_one(_row(total_cholesterol_mg_dl=350)).value is not None


def test_vectorised_equals_row_by_row() -> None:
    rng = random.Random(2008)
    rows = [
        _row(age_years=rng.uniform(25, 80), sex=rng.choice(("female", "male")),
             total_cholesterol_mg_dl=rng.uniform(120, 330), hdl_mg_dl=rng.uniform(20, 100),
             systolic_bp_mm_hg=rng.uniform(90, 200), bp_treated=rng.random() < 0.3,
             smoker=rng.random() < 0.2, diabetes=rng.random() < 0.1)
        for _ in range(300)
    ]  # fmt: skip
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    many = FRAMINGHAM_CVD_10Y.compute_many(cols)
    assert [m.to_dict() for m in many] == [
        FRAMINGHAM_CVD_10Y.compute_one(r).to_dict() for r in rows
    ]
    for r, v in zip(rows, many.value.tolist(), strict=True):
        if 30 <= r["age_years"] < 75:
            assert v == pytest.approx(_independent(r), rel=1e-12)
        else:
            assert math.isnan(v)


def test_registry_score_list_and_cli() -> None:
    assert get("Framingham_CVD_10y") is FRAMINGHAM_CVD_10Y
    entry = {d["name"]: d for d in score_list()}["framingham_cvd_10y"]
    assert [i["name"] for i in entry["inputs"]] == [
        "age_years", "sex", "total_cholesterol_mg_dl", "hdl_mg_dl", "systolic_bp_mm_hg",
        "bp_treated", "smoker", "diabetes",
    ]  # fmt: skip
    assert entry["bands"] == []

    from medtwin.cli import main

    res = CliRunner().invoke(main, ["score", "framingham_cvd_10y", json.dumps(_row()), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["value"] == pytest.approx(_independent(_row())) and out["band"] is None
