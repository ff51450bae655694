"""Pooled Cohort Equations 2013 (Goff) and revised 2018 (Yadlowsky): published coefficients, the
Goff Table A worked example, an independent published implementation, band edges, the accepted
ranges, refusals, missing inputs, vectorised = row by row, registry and CLI."""

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
from scipy.optimize import brentq

from medtwin.risk import get, score_json, score_list
from medtwin.risk.pce import (
    GROUPS,
    PCE_ASCVD_10Y,
    PCE_ASCVD_10Y_2018,
    coefficients_2013,
    coefficients_2018,
)

# Goff et al. 2014, Table A, written out here by hand:
# ln age, ln age^2, ln TC, ln age x ln TC, ln HDL, ln age x ln HDL, ln treated SBP,
# ln age x ln treated SBP, ln untreated SBP, ln age x ln untreated SBP, smoker,
# ln age x smoker, diabetes, mean (coefficient x value), baseline survival S10.
TABLE_A = {
    "white_female": (-29.799, 4.884, 13.540, -3.114, -13.578, 3.149, 2.019, 0, 1.957, 0,
                     7.574, -1.665, 0.661, -29.18, 0.9665),
    "black_female": (17.114, 0, 0.940, 0, -18.920, 4.475, 29.291, -6.432, 27.820, -6.087,
                     0.691, 0, 0.874, 86.61, 0.9533),
    "white_male": (12.344, 0, 11.853, -2.664, -7.990, 1.769, 1.797, 0, 1.764, 0,
                   7.837, -1.795, 0.658, 61.18, 0.9144),
    "black_male": (2.469, 0, 0.302, 0, -0.307, 0, 1.916, 0, 1.809, 0,
                   0.549, 0, 0.645, 19.54, 0.8954),
}  # fmt: skip

# Yadlowsky et al. 2018, Appendix (revised PCE), by hand: women, men.
YADLOWSKY = {
    "intercept": (-12.823110, -11.679980), "age": (0.106501, 0.064200),
    "black": (0.432440, 0.482835), "sbp_sq": (0.000056, -0.000061), "sbp": (0.017666, 0.038950),
    "bp_treated": (0.731678, 2.055533), "diabetes": (0.943970, 0.842209),
    "smoker": (1.009790, 0.895589), "tc_hdl_ratio": (0.151318, 0.193307),
    "age_x_black": (-0.008580, 0.0), "sbp_x_bp_treated": (-0.003647, -0.014207),
    "sbp_x_black": (0.006208, 0.011609), "black_x_bp_treated": (0.152968, -0.119460),
    "age_x_sbp": (-0.000153, 0.000025), "black_x_diabetes": (0.115232, -0.077214),
    "black_x_smoker": (-0.092231, -0.226771), "black_x_tc_hdl_ratio": (0.070498, -0.117749),
    "black_x_sbp_x_bp_treated": (-0.000173, 0.004190),
    "black_x_age_x_sbp": (-0.000094, -0.000199),
}  # fmt: skip

SEXES = ("female", "male")
RACES = ("white", "black", "other")


def _row(**kw: Any) -> dict[str, Any]:
    """Goff Table A's example person: 55 years, TC 213, HDL 50, untreated SBP 120, no smoking,
    no diabetes."""
    base: dict[str, Any] = {
        "age_years": 55, "sex": "female", "race": "white", "total_cholesterol_mg_dl": 213,
        "hdl_mg_dl": 50, "systolic_bp_mm_hg": 120, "bp_treated": False, "smoker": False,
        "diabetes": False,
    }  # fmt: skip
    base.update(kw)
    return base


def _sum_2013(r: dict[str, Any]) -> tuple[float, float, float]:
    """Plain Python over TABLE_A (a second implementation): individual sum, mean, S10."""
    black = r["race"] == "black"
    c = TABLE_A[f"{'black' if black else 'white'}_{r['sex']}"]
    la = math.log(r["age_years"])
    ltc, lhdl = math.log(r["total_cholesterol_mg_dl"]), math.log(r["hdl_mg_dl"])
    lsbp = math.log(r["systolic_bp_mm_hg"])
    s = c[0] * la + c[1] * la**2 + c[2] * ltc + c[3] * la * ltc + c[4] * lhdl + c[5] * la * lhdl
    if r["bp_treated"]:
        s += c[6] * lsbp + c[7] * la * lsbp
    else:
        s += c[8] * lsbp + c[9] * la * lsbp
    if r["smoker"]:
        s += c[10] + c[11] * la
    if r["diabetes"]:
        s += c[12]
    return s, c[13], c[14]


def _independent_2013(r: dict[str, Any]) -> float:
    s, mean, s10 = _sum_2013(r)
    return 100 * (1 - s10 ** math.exp(s - mean))


def _independent_2018(r: dict[str, Any]) -> float:
    i = 0 if r["sex"] == "female" else 1
    c = {k: v[i] for k, v in YADLOWSKY.items()}
    age, sbp = float(r["age_years"]), float(r["systolic_bp_mm_hg"])
    b = 1.0 if r["race"] == "black" else 0.0
    tx, dm, smk = float(r["bp_treated"]), float(r["diabetes"]), float(r["smoker"])
    ratio = r["total_cholesterol_mg_dl"] / r["hdl_mg_dl"]
    x = (c["intercept"] + c["age"] * age + c["black"] * b + c["sbp_sq"] * sbp**2
         + c["sbp"] * sbp + c["bp_treated"] * tx + c["diabetes"] * dm + c["smoker"] * smk
         + c["tc_hdl_ratio"] * ratio + c["age_x_black"] * age * b
         + c["sbp_x_bp_treated"] * sbp * tx + c["sbp_x_black"] * sbp * b
         + c["black_x_bp_treated"] * b * tx + c["age_x_sbp"] * age * sbp
         + c["black_x_diabetes"] * b * dm + c["black_x_smoker"] * b * smk
         + c["black_x_tc_hdl_ratio"] * b * ratio + c["black_x_sbp_x_bp_treated"] * b * sbp * tx
         + c["black_x_age_x_sbp"] * b * age * sbp)  # fmt: skip
    return 100 / (1 + math.exp(-x))


def test_shipped_coefficients_are_the_published_ones() -> None:
    c = coefficients_2013()
    keys = ("ln_age", "ln_age_sq", "ln_tc", "ln_age_x_ln_tc", "ln_hdl", "ln_age_x_ln_hdl",
            "ln_treated_sbp", "ln_age_x_ln_treated_sbp", "ln_untreated_sbp",
            "ln_age_x_ln_untreated_sbp", "smoker", "ln_age_x_smoker", "diabetes", "mean_sum",
            "baseline_survival")  # fmt: skip
    assert set(GROUPS) == set(TABLE_A)
    for group, published in TABLE_A.items():
        assert tuple(c[group][k] for k in keys) == pytest.approx(published, abs=0), group
    y = coefficients_2018()
    for key, (women, men) in YADLOWSKY.items():
        assert (y["female"][key], y["male"][key]) == (women, men), key
    assert c["accepted"] == {
        "age_years": [40.0, 80.0], "total_cholesterol_mg_dl": [130.0, 320.0],
        "hdl_mg_dl": [20.0, 100.0], "systolic_bp_mm_hg": [90.0, 200.0],
    }  # fmt: skip


# Goff 2014 Table A, "Individual Sum" and "Estimated 10-y Risk of Hard ASCVD" of the example.
GOFF_EXAMPLE = {
    ("female", "white"): (-29.67, 2.1),
    ("female", "black"): (86.16, 3.0),
    ("male", "white"): (60.69, 5.3),
    ("male", "black"): (18.97, 6.1),
}


@pytest.mark.parametrize(("sex", "race"), list(GOFF_EXAMPLE))
def test_goff_table_a_worked_example(sex: str, race: str) -> None:
    printed_sum, printed_risk = GOFF_EXAMPLE[(sex, race)]
    row = _row(sex=sex, race=race)
    r = PCE_ASCVD_10Y.compute_one(row)
    assert r.value is not None and not r.partial and r.refused is None
    # Table A prints every "coefficient x value" to 2 decimals and sums those, so the printed
    # individual sum agrees with the unrounded one to 0.01 ...
    s, mean, s10 = _sum_2013(row)
    implied = mean + math.log(math.log(1 - r.value / 100) / math.log(s10))
    assert implied == pytest.approx(s, abs=1e-9)
    assert implied == pytest.approx(printed_sum, abs=0.01)
    # ... the printed risk is reproduced exactly from the printed sum ...
    assert round(100 * (1 - s10 ** math.exp(printed_sum - mean)), 1) == printed_risk
    # ... and the unrounded risk is within 0.1 percentage point of it (white men: 5.38 vs 5.3,
    # the effect of the sum's rounding).
    assert r.value == pytest.approx(printed_risk, abs=0.1)
    expected_band = "borderline" if sex == "male" else "low"
    assert r.band == expected_band


# An independent published implementation: the R package PooledCohort (B. Jaeger,
# github.com/bcjaeger/PooledCohort, tests/testthat/test-predict_10yr_ascvd_risk.R), which uses
# the calculator's more precise coefficients (e.g. S10 0.95334 for Black women where Table A
# prints 0.9533) and reports percent rounded to 0.1. Order: Black F, white F, Black M, white M.
JAEGER_2013 = {
    "none": (3.0, 2.1, 6.1, 5.4),
    "bp_treated": (4.6, 2.8, 9.9, 6.3),
    "smoker": (5.9, 5.0, 10.3, 10.0),
    "diabetes": (7.0, 3.9, 11.2, 10.1),
}
JAEGER_2018 = {  # the revised equations: same coefficients as shipped here
    "none": (1.8, 1.2, 3.5, 3.3),
    "bp_treated": (2.7, 1.6, 7.1, 4.7),
    "smoker": (4.3, 3.2, 6.7, 7.8),
    "diabetes": (4.9, 3.0, 7.3, 7.4),
}
ORDER = (("female", "black"), ("female", "white"), ("male", "black"), ("male", "white"))


@pytest.mark.parametrize("factor", list(JAEGER_2013))
def test_agrees_with_an_independent_published_implementation(factor: str) -> None:
    extra = {} if factor == "none" else {factor: True}
    rows = [_row(sex=s, race=r, **extra) for s, r in ORDER]
    cols = {k: [row[k] for row in rows] for k in rows[0]}
    got_2013 = PCE_ASCVD_10Y.compute_many(cols).value
    got_2018 = PCE_ASCVD_10Y_2018.compute_many(cols).value
    # 2013: 0.05 for their rounding + up to 0.1 for Table A's fewer digits
    np.testing.assert_allclose(got_2013, JAEGER_2013[factor], atol=0.15)
    # 2018: identical coefficients, so only their rounding to 0.1
    np.testing.assert_allclose(got_2018, JAEGER_2018[factor], atol=0.0501)


def test_independent_example_white_male_smoker_with_diabetes() -> None:
    # PooledCohort test: 54 y white man, TC 170, HDL 50, untreated SBP 157, smoker, diabetes
    r = PCE_ASCVD_10Y.compute_one(
        _row(age_years=54, sex="male", total_cholesterol_mg_dl=170, systolic_bp_mm_hg=157,
             smoker=True, diabetes=True)
    )  # fmt: skip
    assert r.value == pytest.approx(20.8, abs=0.15) and r.band == "high"


row_strategy = st.fixed_dictionaries(
    {
        "age_years": st.floats(40, 79.99),
        "sex": st.sampled_from(SEXES),
        "race": st.sampled_from(RACES),
        "total_cholesterol_mg_dl": st.floats(130, 320),
        "hdl_mg_dl": st.floats(20, 100),
        "systolic_bp_mm_hg": st.floats(90, 200),
        "bp_treated": st.booleans(),
        "smoker": st.booleans(),
        "diabetes": st.booleans(),
    }
)


@settings(max_examples=200, deadline=None)
@given(row=row_strategy)
def test_agrees_with_hand_written_implementation(row: dict[str, Any]) -> None:
    a = PCE_ASCVD_10Y.compute_one(row)
    b = PCE_ASCVD_10Y_2018.compute_one(row)
    assert a.value == pytest.approx(_independent_2013(row), rel=1e-12, abs=1e-12)
    assert b.value == pytest.approx(_independent_2018(row), rel=1e-12, abs=1e-12)
    assert 0.0 < a.value < 100.0 and 0.0 < b.value < 100.0


def test_other_race_uses_the_white_equations() -> None:
    for score in (PCE_ASCVD_10Y, PCE_ASCVD_10Y_2018):
        for sex in SEXES:
            other = score.compute_one(_row(sex=sex, race="other", smoker=True))
            white = score.compute_one(_row(sex=sex, race="white", smoker=True))
            black = score.compute_one(_row(sex=sex, race="black", smoker=True))
            assert other.value == white.value and other.value != black.value
    aa = PCE_ASCVD_10Y.compute_one(_row(race="African American", sex="F"))
    assert aa.value == PCE_ASCVD_10Y.compute_one(_row(race="black")).value


def test_the_other_omb_race_categories_use_the_white_equations() -> None:
    """A record's US Core race (OMB categories, as ``medtwin risk`` derives it) gives the
    equations for white adults for Asian, American Indian or Alaska Native and Native Hawaiian
    or Pacific Islander adults (Goff 2014's advice), on one row and on a column."""
    omb = ["asian", "american_indian_or_alaska_native", "native_hawaiian_or_pacific_islander"]
    for score in (PCE_ASCVD_10Y, PCE_ASCVD_10Y_2018):
        white = score.compute_one(_row(race="white", smoker=True)).value
        for race in omb:
            assert score.compute_one(_row(race=race, smoker=True)).value == white
        rows = [_row(race=race, smoker=True) for race in [*omb, "black"]]
        column = score.compute_many({k: [r[k] for r in rows] for k in rows[0]})
        values = [r.value for r in column]
        assert values[:3] == [white] * 3 and values[3] != white


def _at_risk(score: Any, target: float, **kw: Any) -> float:
    """The systolic pressure at which this profile's risk equals ``target`` percent."""

    def f(sbp: float) -> float:
        v = score.compute_one(_row(systolic_bp_mm_hg=sbp, **kw)).value
        return float(v) - target

    return float(brentq(f, 90.0, 200.0, xtol=1e-12))


@pytest.mark.parametrize("score", [PCE_ASCVD_10Y, PCE_ASCVD_10Y_2018], ids=lambda s: s.name)
@pytest.mark.parametrize(
    ("target", "below", "above", "profile"),
    [
        (5.0, "low", "borderline", {"sex": "male", "age_years": 55}),
        (7.5, "borderline", "intermediate", {"sex": "male", "age_years": 60}),
        (20.0, "intermediate", "high", {"sex": "male", "age_years": 70, "smoker": True}),
    ],
)
def test_bands_on_both_sides_of_each_threshold(
    score: Any, target: float, below: str, above: str, profile: dict[str, Any]
) -> None:
    sbp = _at_risk(score, target, **profile)
    lo = score.compute_one(_row(systolic_bp_mm_hg=sbp - 1e-6, **profile))
    hi = score.compute_one(_row(systolic_bp_mm_hg=sbp + 1e-6, **profile))
    assert lo.value < target <= hi.value  # type: ignore[operator]
    assert (lo.band, hi.band) == (below, above)


@pytest.mark.parametrize("score", [PCE_ASCVD_10Y, PCE_ASCVD_10Y_2018], ids=lambda s: s.name)
@pytest.mark.parametrize(
    ("name", "inside", "outside", "words"),
    [
        ("age_years", 40, 39.99, "40 to 79 years"),
        ("age_years", 79.99, 80, "40 to 79 years"),
        ("total_cholesterol_mg_dl", 130, 129.9, "130 to 320 mg/dL"),
        ("total_cholesterol_mg_dl", 320, 320.1, "130 to 320 mg/dL"),
        ("hdl_mg_dl", 20, 19.9, "20 to 100 mg/dL"),
        ("hdl_mg_dl", 100, 100.1, "20 to 100 mg/dL"),
        ("systolic_bp_mm_hg", 90, 89.9, "90 to 200 mm[Hg]"),
        ("systolic_bp_mm_hg", 200, 200.1, "90 to 200 mm[Hg]"),
    ],
)
def test_edges_of_the_accepted_range(
    score: Any, name: str, inside: float, outside: float, words: str
) -> None:
    ok = score.compute_one(_row(**{name: inside}))
    assert ok.refused is None and ok.value is not None and ok.band is not None
    bad = score.compute_one(_row(**{name: outside}))
    assert bad.value is None and bad.band is None and not bad.partial
    assert bad.refused is not None
    assert bad.refused.startswith(f"{name}={outside:g} is outside") and words in bad.refused


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"age_years": 10}, "age_years=10 is outside the population"),
        (
            {"total_cholesterol_mg_dl": 5000},
            "total_cholesterol_mg_dl=5000 is outside the plausible",
        ),
        ({"total_cholesterol_mg_dl": 5.2}, "total_cholesterol_mg_dl=5.2 is outside the plausible"),
        ({"hdl_mg_dl": 1.3}, "hdl_mg_dl=1.3 is outside the plausible"),
        ({"sex": "x"}, "sex='x' is not one of female, male"),
        ({"race": "hispanic"}, "race='hispanic' is not one of white, black, other"),
        ({"smoker": "sometimes"}, "smoker='sometimes' is not true or false"),
        ({"systolic_bp_mm_hg": True}, "systolic_bp_mm_hg=True is not a number"),
    ],
)
def test_bad_values_are_refused_naming_the_input(changes: dict[str, Any], words: str) -> None:
    for score in (PCE_ASCVD_10Y, PCE_ASCVD_10Y_2018):
        r = score.compute_one(_row(**changes))
        assert r.value is None and r.refused is not None and words in r.refused, r.refused


def test_missing_inputs_give_no_value_and_are_named() -> None:
    for score in (PCE_ASCVD_10Y, PCE_ASCVD_10Y_2018):
        r = score.compute_one(_row(hdl_mg_dl=None, smoker=None))
        assert r.value is None and r.band is None and r.partial and r.refused is None
        assert r.missing == ("hdl_mg_dl", "smoker")
        row = _row()
        del row["race"]
        r = score.compute_one(row)
        assert r.value is None and r.missing == ("race",)
    with pytest.raises(Exception, match="unknown input"):
        score_json("pce_ascvd_10y", {**_row(), "ldl_mg_dl": 100})


def test_vectorised_equals_row_by_row() -> None:
    rng = random.Random(2013)
    rows = []
    for i in range(400):
        row = _row(
            age_years=rng.uniform(35, 85), sex=rng.choice(SEXES), race=rng.choice(RACES),
            total_cholesterol_mg_dl=rng.uniform(120, 330), hdl_mg_dl=rng.uniform(15, 105),
            systolic_bp_mm_hg=rng.uniform(85, 205), bp_treated=rng.random() < 0.3,
            smoker=rng.random() < 0.2, diabetes=rng.random() < 0.15,
        )  # fmt: skip
        if i % 37 == 0:
            row["smoker"] = None
        rows.append(row)
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    arrays = {k: np.array(v) if k not in ("smoker",) else v for k, v in cols.items()}
    for score, ref in ((PCE_ASCVD_10Y, _independent_2013), (PCE_ASCVD_10Y_2018, _independent_2018)):
        many = score.compute_many(arrays)
        singles = [score.compute_one(r) for r in rows]
        assert [m.to_dict() for m in many] == [s.to_dict() for s in singles]
        # the reasons mapping (written on demand) covers exactly the refused rows
        assert sorted(many.reasons) == np.nonzero(many.refused)[0].tolist()
        assert len(many.reasons) == int(many.refused.sum()) > 0
        assert many.reasons.get(int(np.argmin(many.refused))) is None
        n_ok = 0
        for r, m in zip(rows, many, strict=True):
            inside = (40 <= r["age_years"] < 80 and 130 <= r["total_cholesterol_mg_dl"] <= 320
                      and 20 <= r["hdl_mg_dl"] <= 100 and 90 <= r["systolic_bp_mm_hg"] <= 200)  # fmt: skip
            if r["smoker"] is None:
                assert m.value is None and (m.partial or m.refused)
            elif inside:
                n_ok += 1
                assert m.value == pytest.approx(ref(r), rel=1e-12)
            else:
                assert m.value is None and m.refused
        assert n_ok > 100


def test_registry_score_list_and_cli() -> None:
    assert get("PCE_ASCVD_10Y") is PCE_ASCVD_10Y
    assert get("pce_ascvd_10y_2018") is PCE_ASCVD_10Y_2018
    listed = {d["name"]: d for d in score_list()}
    for name in ("pce_ascvd_10y", "pce_ascvd_10y_2018"):
        entry = listed[name]
        assert [i["name"] for i in entry["inputs"]] == [
            "age_years", "sex", "race", "total_cholesterol_mg_dl", "hdl_mg_dl",
            "systolic_bp_mm_hg", "bp_treated", "smoker", "diabetes",
        ]  # fmt: skip
        assert [b["name"] for b in entry["bands"]] == ["low", "borderline", "intermediate", "high"]
        ranges = {r["input"]: (r["low"], r["high"]) for r in entry["accepted_ranges"]}
        assert ranges["total_cholesterol_mg_dl"] == (130.0, 320.0)
        for inp in entry["inputs"]:
            if inp["kind"] == "number":
                assert inp["unit"] and inp["valid_range"] and inp["range_source"]

    from medtwin.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["score", "list", "--json"])
    assert res.exit_code == 0, res.output
    names = {d["name"] for d in json.loads(res.output)}
    assert {"pce_ascvd_10y", "pce_ascvd_10y_2018"} <= names
    res = runner.invoke(main, ["score", "pce_ascvd_10y", json.dumps(_row(sex="male")), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["value"] == pytest.approx(_independent_2013(_row(sex="male")))
    assert out["band"] == "borderline" and out["missing"] == [] and "Goff" in out["source"]
