"""AHA PREVENT base equations: the preventr R package's published example, an independent
row-by-row implementation (coefficients typed from Linden's Stata module prevent10i/prevent30i,
SSC 2024), band thresholds from both sides, valid-range edges, refusals and the registry/CLI."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from medtwin.risk import get, score_json, score_list
from medtwin.risk.prevent import PREVENT_10Y, PREVENT_30Y, coefficients

# preventr 0.10 README (Mayer MG, CRAN package preventr), estimate_risk() example, base model,
# risks as proportions rounded to 3 decimals: female, 50 y, SBP 160 treated, TC 200, HDL 45 mg/dL,
# no statin, diabetes, non-smoker, eGFR 90, BMI 35.
PREVENTR_EXAMPLE = {
    "age_years": 50, "sex": "female", "systolic_bp_mm_hg": 160, "bp_treated": True,
    "total_cholesterol_mg_dl": 200, "hdl_mg_dl": 45, "statin": False, "diabetes": True,
    "smoker": False, "egfr_ml_min_1_73m2": 90, "bmi_kg_m2": 35,
}  # fmt: skip
PREVENTR_10Y = {"cvd": 0.147, "ascvd": 0.092, "hf": 0.081}
PREVENTR_30Y = {"cvd": 0.53, "ascvd": 0.354, "hf": 0.39}


def _row(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "age_years": 55, "sex": "male", "total_cholesterol_mg_dl": 190, "hdl_mg_dl": 50,
        "systolic_bp_mm_hg": 130, "bp_treated": False, "statin": False, "diabetes": False,
        "smoker": False, "bmi_kg_m2": 27, "egfr_ml_min_1_73m2": 85,
    }  # fmt: skip
    base.update(kw)
    return base


def _stata(r: dict[str, object], years: int, outcome: str) -> float:
    """Male equations written out as in Linden's Stata prevent10i.ado / prevent30i.ado (SSC 2024),
    an independent transcription of the Khan et al. 2024 supplement; risk in percent."""
    f = {k: float(v) for k, v in r.items() if k not in ("sex", "outcome")}  # type: ignore[arg-type]
    a = (f["age_years"] - 55) / 10
    nh = (f["total_cholesterol_mg_dl"] - f["hdl_mg_dl"]) * 0.02586 - 3.5
    h = (f["hdl_mg_dl"] * 0.02586 - 1.3) / 0.3
    sbp = f["systolic_bp_mm_hg"]
    slo, shi = (min(sbp, 110) - 110) / 20, (max(sbp, 110) - 130) / 20
    g = f["egfr_ml_min_1_73m2"]
    glo, ghi = (min(g, 60) - 60) / -15, (max(g, 60) - 90) / -15
    b = f["bmi_kg_m2"]
    blo, bhi = (min(b, 30) - 25) / 5, (max(b, 30) - 30) / 5
    dm, sm, bpt, stn = f["diabetes"], f["smoker"], f["bp_treated"], f["statin"]
    if (years, outcome) == (10, "cvd"):
        x = (0.7688528 * a + 0.0736174 * nh - 0.0954431 * h - 0.4347345 * slo + 0.3362658 * shi
             + 0.7692857 * dm + 0.4386871 * sm + 0.5378979 * glo + 0.0164827 * ghi
             + 0.288879 * bpt - 0.1337349 * stn - 0.0475924 * shi * bpt + 0.150273 * nh * stn
             - 0.0517874 * a * nh + 0.0191169 * a * h - 0.1049477 * a * shi - 0.2251948 * a * dm
             - 0.0895067 * a * sm - 0.1543702 * a * glo - 3.031168)  # fmt: skip
    elif (years, outcome) == (10, "hf"):
        x = (0.8972642 * a - 0.6811466 * slo + 0.3634461 * shi + 0.923776 * dm + 0.5023736 * sm
             - 0.0485841 * blo + 0.3726929 * bhi + 0.6926917 * glo + 0.0251827 * ghi
             + 0.2980922 * bpt - 0.0497731 * shi * bpt - 0.1289201 * a * shi - 0.3040924 * a * dm
             - 0.1401688 * a * sm + 0.0068126 * a * bhi - 0.1797778 * a * glo - 3.946391)  # fmt: skip
    elif (years, outcome) == (30, "ascvd"):
        x = (0.3994099 * a - 0.0937484 * a * a + 0.1744643 * nh - 0.120203 * h
             - 0.0665117 * slo + 0.2753037 * shi + 0.4790257 * dm + 0.1782635 * sm
             - 0.0218789 * glo + 0.0602553 * ghi + 0.1421182 * bpt + 0.0135996 * stn
             - 0.0218265 * shi * bpt + 0.1013148 * nh * stn - 0.0312619 * a * nh + 0.020673 * a * h
             - 0.0920935 * a * shi - 0.2159947 * a * dm - 0.1548811 * a * sm - 0.0712547 * a * glo
             - 1.736444)  # fmt: skip
    else:
        raise AssertionError((years, outcome))
    return 100 * math.exp(x) / (1 + math.exp(x))


def test_shipped_constants_are_the_published_ones() -> None:
    # intercepts of the 12 base-model equations (Khan 2024 supplement, via the Stata module)
    published = {
        ("base_10y", "female"): {"cvd": -3.307728, "ascvd": -3.819975, "hf": -4.310409},
        ("base_10y", "male"): {"cvd": -3.031168, "ascvd": -3.500655, "hf": -3.946391},
        ("base_30y", "female"): {"cvd": -1.318827, "ascvd": -1.974074, "hf": -2.205379},
        ("base_30y", "male"): {"cvd": -1.148204, "ascvd": -1.736444, "hf": -1.95751},
    }
    c = coefficients()
    assert c["mg_dl_to_mmol_l"] == 0.02586
    for (model, sex), consts in published.items():
        for outcome, const in consts.items():
            table = c[model][sex][outcome]
            assert table["constant"] == const
            # 10-year equations have no age-squared term; 30-year ones do
            assert ("age_squared" in table) == (model == "base_30y")
            # heart failure uses BMI and no cholesterol or statin; CVD/ASCVD the reverse
            assert ("bmi_ge_30" in table) == (outcome == "hf")
            assert ("statin" in table) == (outcome != "hf")


@pytest.mark.parametrize("outcome", ["cvd", "ascvd", "hf"])
def test_preventr_published_example(outcome: str) -> None:
    # preventr rounds the proportion to 3 decimals: agreement within 0.05 percentage points
    r10 = PREVENT_10Y.compute_one({**PREVENTR_EXAMPLE, "outcome": outcome})
    r30 = PREVENT_30Y.compute_one({**PREVENTR_EXAMPLE, "outcome": outcome})
    assert r10.value == pytest.approx(100 * PREVENTR_10Y[outcome], abs=0.05)
    assert r30.value == pytest.approx(100 * PREVENTR_30Y[outcome], abs=0.05)
    assert not r10.partial and r10.refused is None and r10.missing == ()


@settings(max_examples=150, deadline=None)
@given(
    age=st.floats(30, 59),
    tc=st.floats(130, 320),
    hdl=st.floats(20, 100),
    sbp=st.floats(90, 200),
    bmi=st.floats(18.5, 39.99),
    egfr=st.floats(15, 150),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
def test_agrees_with_stata_transcription(
    age: float,
    tc: float,
    hdl: float,
    sbp: float,
    bmi: float,
    egfr: float,
    flags: tuple[bool, bool, bool, bool],
) -> None:
    bpt, stn, dm, sm = flags
    row = _row(age_years=age, total_cholesterol_mg_dl=tc, hdl_mg_dl=hdl, systolic_bp_mm_hg=sbp,
               bmi_kg_m2=bmi, egfr_ml_min_1_73m2=egfr, bp_treated=bpt, statin=stn,
               diabetes=dm, smoker=sm)  # fmt: skip
    for score, years, outcome in ((PREVENT_10Y, 10, "cvd"), (PREVENT_10Y, 10, "hf"),
                                  (PREVENT_30Y, 30, "ascvd")):  # fmt: skip
        got = score.compute_one({**row, "outcome": outcome}).value
        assert got == pytest.approx(_stata(row, years, outcome), rel=1e-12)


def test_vectorised_equals_row_by_row() -> None:
    rng = random.Random(7)
    rows = [
        _row(age_years=rng.uniform(30, 79), sex=rng.choice(["female", "male"]),
             outcome=rng.choice(["cvd", "ascvd", "hf"]),
             total_cholesterol_mg_dl=rng.uniform(130, 320), hdl_mg_dl=rng.uniform(20, 100),
             systolic_bp_mm_hg=rng.uniform(90, 200), bmi_kg_m2=rng.uniform(18.5, 39.9),
             egfr_ml_min_1_73m2=rng.uniform(15, 150), bp_treated=rng.random() < 0.3,
             statin=rng.random() < 0.3, diabetes=rng.random() < 0.2, smoker=rng.random() < 0.2)
        for _ in range(300)
    ]  # fmt: skip
    for r in rows:  # mix the models: base, +UACR, +HbA1c, full, and SDI alone (refused)
        r["uacr_mg_g"] = rng.choice([None, rng.uniform(0, 3000)])
        r["hba1c_percent"] = rng.choice([None, rng.uniform(4, 12)])
        r["sdi_decile"] = rng.choice([None, rng.randint(1, 10)])
    rows[5]["age_years"] = 85  # a refused row does not disturb the others
    rows[9].update(
        hdl_mg_dl=None, outcome="cvd", age_years=45, sdi_decile=None
    )  # nor a missing one
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    for score in (PREVENT_10Y, PREVENT_30Y):
        many = score.compute_many(cols)
        one = [score.compute_one(r) for r in rows]
        got = [None if math.isnan(v) else v for v in many.value.tolist()]
        assert got == [r.value for r in one]
        assert many.band_names() == [r.band for r in one]
        assert [m.refused for m in many] == [r.refused for r in one]
    assert PREVENT_10Y.compute_many(cols)[5].refused is not None
    assert PREVENT_30Y.compute_many(cols)[9].missing == ("hdl_mg_dl",)


def _age_at(percent: float, **kw: object) -> float:
    """Age at which the 10-year risk equals ``percent`` (bisection; risk rises with age here)."""
    lo, hi = 30.0, 79.0
    for _ in range(60):
        mid = (lo + hi) / 2
        v = PREVENT_10Y.compute_one(_row(age_years=mid, **kw)).value
        assert v is not None
        lo, hi = (mid, hi) if v < percent else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize(
    ("cut", "below", "above"),
    [(3.0, "low", "borderline"), (5.0, "borderline", "intermediate"),
     (10.0, "intermediate", "high")],
)  # fmt: skip
def test_bands_on_both_sides_of_each_threshold(cut: float, below: str, above: str) -> None:
    """The 2026 ACC/AHA dyslipidemia guideline's 10-year PREVENT-ASCVD categories (< 3 %,
    3 to < 5 %, 5 to < 10 %, >= 10 %), on the unrounded risk."""
    kw: dict[str, object] = {"systolic_bp_mm_hg": 150, "smoker": True, "outcome": "ascvd"}
    age = _age_at(cut, **kw)
    lo = PREVENT_10Y.compute_one(_row(age_years=age - 0.05, **kw))
    hi = PREVENT_10Y.compute_one(_row(age_years=age + 0.05, **kw))
    assert lo.value is not None and hi.value is not None
    assert lo.value < cut <= hi.value
    assert (lo.band, hi.band) == (below, above)
    # total CVD, heart failure and 30-year risks have no band: no guideline defines one
    for outcome in ("cvd", "hf"):
        assert (
            PREVENT_10Y.compute_one(_row(age_years=age + 0.05, **{**kw, "outcome": outcome})).band
            is None
        )
    assert PREVENT_30Y.compute_one(_row(outcome="ascvd")).band is None


@pytest.mark.parametrize(
    ("name", "low", "high", "unit"),
    [("total_cholesterol_mg_dl", 130, 320, "mg/dL"), ("hdl_mg_dl", 20, 100, "mg/dL"),
     ("systolic_bp_mm_hg", 90, 200, "mm[Hg]"), ("egfr_ml_min_1_73m2", 15, 150, ""),
     ("bmi_kg_m2", 18.5, 39.99, "kg/m2")],
)  # fmt: skip
def test_valid_range_edges(name: str, low: float, high: float, unit: str) -> None:
    outcome = "hf" if name == "bmi_kg_m2" else "cvd"
    for ok in (low, high):
        r = PREVENT_10Y.compute_one(_row(outcome=outcome, **{name: ok}))
        assert r.value is not None and r.refused is None
    for bad in (low - 0.5, high + 0.5):
        r = PREVENT_10Y.compute_one(_row(outcome=outcome, **{name: bad}))
        assert r.value is None and r.refused is not None
        assert f"{name}={bad:g} is outside {low:g}-{high:g}" in r.refused
        assert unit in r.refused and "PREVENT" in r.refused


def test_age_population_edges() -> None:
    assert PREVENT_10Y.compute_one(_row(age_years=30)).value is not None
    assert PREVENT_10Y.compute_one(_row(age_years=79)).value is not None
    assert PREVENT_30Y.compute_one(_row(age_years=59)).value is not None
    for score, age, rng in ((PREVENT_10Y, 29.9, "30-79"), (PREVENT_10Y, 79.5, "30-79"),
                            (PREVENT_30Y, 60, "30-59")):  # fmt: skip
        r = score.compute_one(_row(age_years=age))
        assert r.value is None and r.refused is not None
        assert f"age_years={age:g} is outside {rng}" in r.refused


def test_refusals_missing_and_outcomes() -> None:
    for outcome in ("chd", "stroke"):
        r = PREVENT_10Y.compute_one(_row(outcome=outcome))
        assert r.value is None and r.refused is not None and "CHD or stroke" in r.refused
    r = PREVENT_10Y.compute_one(_row(outcome="mi"))
    assert r.refused is not None and "outcome='mi' is not one of" in r.refused
    r = PREVENT_10Y.compute_one(_row(sdi_decile=7))
    assert r.value is None and r.refused is not None
    assert "base + SDI model" in r.refused and "sdi_decile" in r.refused
    for name, value in (("uacr_mg_g", -1), ("hba1c_percent", 16), ("sdi_decile", 11)):
        r = PREVENT_10Y.compute_one(_row(**{name: value}))
        assert r.refused is not None and f"{name}={value:g} is outside" in r.refused
    # outcome defaults to total CVD
    assert (
        PREVENT_10Y.compute_one(_row()).value == PREVENT_10Y.compute_one(_row(outcome="cvd")).value
    )
    # missing: listed only where the chosen equation uses the input
    r = PREVENT_10Y.compute_one(_row(total_cholesterol_mg_dl=None, bmi_kg_m2=None))
    assert r.value is None and r.partial and r.missing == ("total_cholesterol_mg_dl",)
    r = PREVENT_10Y.compute_one(_row(outcome="hf", total_cholesterol_mg_dl=None, statin=None))
    assert r.value is not None and not r.partial and r.missing == ()
    r = PREVENT_10Y.compute_one(_row(outcome="hf", bmi_kg_m2=None))
    assert r.value is None and r.missing == ("bmi_kg_m2",)
    r = PREVENT_10Y.compute_one({k: v for k, v in _row().items() if k != "sex"})
    assert r.missing == ("sex",) and r.value is None
    # the model responds in the expected direction: smoking, diabetes, higher SBP raise risk
    base = PREVENT_10Y.compute_one(_row()).value
    assert base is not None
    for kw in ({"smoker": True}, {"diabetes": True}, {"systolic_bp_mm_hg": 160}):
        v = PREVENT_10Y.compute_one(_row(**kw)).value
        assert v is not None and v > base


def test_registry_and_cli() -> None:
    assert get("PREVENT_10Y") is PREVENT_10Y and get("prevent_30y") is PREVENT_30Y
    listed = {d["name"]: d for d in score_list()}
    names = [i["name"] for i in listed["prevent_10y"]["inputs"]]
    assert names[:3] == ["outcome", "age_years", "sex"] and "uacr_mg_g" in names
    out = score_json("prevent_10y", PREVENTR_EXAMPLE)
    assert out["value"] == pytest.approx(14.7, abs=0.05) and out["band"] is None
    ascvd = score_json("prevent_10y", {**PREVENTR_EXAMPLE, "outcome": "ascvd"})
    assert ascvd["value"] == pytest.approx(9.2, abs=0.05) and ascvd["band"] == "intermediate"
    from medtwin.cli import main

    res = CliRunner().invoke(main, ["score", "prevent_30y", json.dumps(PREVENTR_EXAMPLE), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["value"] == pytest.approx(53.0, abs=0.05)


def test_many_rows_fast() -> None:
    n = 100_000
    rng = np.random.default_rng(1)
    cols = {
        "age_years": rng.uniform(30, 79, n), "sex": rng.choice(["female", "male"], n),
        "total_cholesterol_mg_dl": rng.uniform(130, 320, n), "hdl_mg_dl": rng.uniform(20, 100, n),
        "systolic_bp_mm_hg": rng.uniform(90, 200, n), "bp_treated": rng.random(n) < 0.3,
        "statin": rng.random(n) < 0.3, "diabetes": rng.random(n) < 0.2,
        "smoker": rng.random(n) < 0.2, "bmi_kg_m2": rng.uniform(18.5, 39.9, n),
        "egfr_ml_min_1_73m2": rng.uniform(15, 150, n),
    }  # fmt: skip
    r = PREVENT_10Y.compute_many(cols)
    assert not np.isnan(r.value).any() and ((r.value > 0) & (r.value < 100)).all()


# The reference profile of every PREVENT equation: age 55, non-HDL 3.5 mmol/L, HDL 1.3 mmol/L,
# SBP 130, BMI 25, eGFR 90, no diabetes, smoking or treatment: every term but the constant is 0.
REFERENCE = {
    "age_years": 55, "total_cholesterol_mg_dl": 4.8 / 0.02586, "hdl_mg_dl": 1.3 / 0.02586,
    "systolic_bp_mm_hg": 130, "bp_treated": False, "statin": False, "diabetes": False,
    "smoker": False, "bmi_kg_m2": 25, "egfr_ml_min_1_73m2": 90,
}  # fmt: skip


def _expit(x: float) -> float:
    return 100 / (1 + math.exp(-x))


@pytest.mark.parametrize("sex", ["female", "male"])
@pytest.mark.parametrize("outcome", ["cvd", "ascvd", "hf"])
def test_reference_profile_gives_the_constant_of_each_model(sex: str, outcome: str) -> None:
    c = coefficients()
    for score, years in ((PREVENT_10Y, 10), (PREVENT_30Y, 30)):
        row = {**REFERENCE, "sex": sex, "outcome": outcome}
        cases = [
            ("base", {}, 0.0),
            ("uacr", {"uacr_mg_g": 1.0}, 0.0),  # ln 1 = 0
            ("hba1c", {"hba1c_percent": 5.3}, 0.0),
            ("full", {"uacr_mg_g": 1.0, "hba1c_percent": 5.3, "sdi_decile": 2}, 0.0),
            # full model without SDI: its missing-SDI indicator term is added
            ("full", {"uacr_mg_g": 1.0, "hba1c_percent": 5.3}, None),
        ]
        for model, extra, add in cases:
            table = c[f"{model}_{years}y"][sex][outcome]
            assert score.model_of({**row, **extra}) == model
            extra_term = table["missing_sdi"] if add is None else add
            got = score.compute_one({**row, **extra}).value
            assert got == pytest.approx(_expit(table["constant"] + extra_term), rel=1e-12)


def _aha_full(r: dict[str, object], years: int, sex: str, outcome: str) -> float:
    """Full-model equations written out as in a port of the AHA PREVENT calculator code
    (``preventFull``; a transcription independent of the shipped table), risk in percent."""
    f = {k: float(v) for k, v in r.items() if isinstance(v, (int, float))}
    a = (f["age_years"] - 55) / 10
    nh = (f["total_cholesterol_mg_dl"] - f["hdl_mg_dl"]) * 0.02586 - 3.5
    h = (f["hdl_mg_dl"] * 0.02586 - 1.3) / 0.3
    sbp = f["systolic_bp_mm_hg"]
    slo, shi = (min(sbp, 110) - 110) / 20, (max(sbp, 110) - 130) / 20
    g = f["egfr_ml_min_1_73m2"]
    glo, ghi = (min(g, 60) - 60) / -15, (max(g, 60) - 90) / -15
    b = f["bmi_kg_m2"]
    blo, bhi = (min(b, 30) - 25) / 5, (max(b, 30) - 30) / 5
    dm, sm, bpt, stn = f["diabetes"], f["smoker"], f["bp_treated"], f["statin"]
    t = (
        None
        if "sdi_decile" not in f
        else (0 if f["sdi_decile"] < 4 else 1 if f["sdi_decile"] < 7 else 2)
    )

    def sdi(c1: float, c2: float, miss: float) -> float:
        return miss if t is None else c1 * (2 - t) * t + c2 * (t - 1) * (0.5 * t)

    def uacr(c: float, miss: float) -> float:
        return miss if "uacr_mg_g" not in f else c * math.log(max(f["uacr_mg_g"], 0.1))

    def a1c(cdm: float, cno: float, miss: float) -> float:
        if "hba1c_percent" not in f:
            return miss
        return cdm * (f["hba1c_percent"] - 5.3) * dm + cno * (f["hba1c_percent"] - 5.3) * (1 - dm)

    if (years, sex, outcome) == (30, "male", "cvd"):
        x = (-1.504558 + 0.4427595 * a - 0.1064108 * a * a + 0.0629381 * nh - 0.1015427 * h
             - 0.2542326 * slo + 0.2549679 * shi + 0.333835 * dm + 0.1873833 * sm
             + 0.0246102 * glo + 0.0552014 * ghi + 0.1979729 * bpt - 0.0407714 * stn
             - 0.0365522 * bpt * shi + 0.1232822 * stn * nh - 0.0441334 * a * nh
             + 0.0177865 * a * h - 0.1046657 * a * shi - 0.2116113 * a * dm - 0.1277905 * a * sm
             - 0.0955922 * a * glo + sdi(0.0256704, 0.1887637, 0.089241)
             + uacr(0.0894596, 0.0710124) + a1c(0.0676202, 0.063409, 0.0038783))  # fmt: skip
    elif (years, sex, outcome) == (10, "female", "hf"):
        x = (-4.896524 + 0.884209 * a - 0.421474 * slo + 0.3002919 * shi + 0.6170359 * dm
             + 0.5380269 * sm - 0.0191335 * blo + 0.2764302 * bhi + 0.5975847 * glo
             + 0.0654197 * ghi + 0.3313614 * bpt - 0.1002304 * bpt * shi - 0.0845363 * a * shi
             - 0.2989062 * a * dm - 0.1111354 * a * sm + 0.0008104 * a * bhi
             - 0.1666635 * a * glo + sdi(0.1213034, 0.2314147, 0.1819138)
             + uacr(0.1948135, 0.0395368) + a1c(0.176668, 0.1614911, -0.0010583))  # fmt: skip
    else:
        raise AssertionError((years, sex, outcome))
    return _expit(x)


@settings(max_examples=100, deadline=None)
@given(
    age=st.floats(30, 59),
    tc=st.floats(130, 320),
    hdl=st.floats(20, 100),
    sbp=st.floats(90, 200),
    bmi=st.floats(18.5, 39.99),
    egfr=st.floats(15, 150),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    uacr=st.floats(0.0, 5000.0),
    hba1c=st.floats(3.0, 15.0),
    sdi=st.one_of(st.none(), st.integers(1, 10)),
    drop=st.sampled_from(["none", "uacr_mg_g", "hba1c_percent"]),
)
def test_full_model_agrees_with_aha_calculator_transcription(
    age: float,
    tc: float,
    hdl: float,
    sbp: float,
    bmi: float,
    egfr: float,
    flags: tuple[bool, bool, bool, bool],
    uacr: float,
    hba1c: float,
    sdi: int | None,
    drop: str,
) -> None:
    bpt, stn, dm, sm = flags
    row: dict[str, object] = {
        "age_years": age, "total_cholesterol_mg_dl": tc, "hdl_mg_dl": hdl,
        "systolic_bp_mm_hg": sbp, "bmi_kg_m2": bmi, "egfr_ml_min_1_73m2": egfr,
        "bp_treated": bpt, "statin": stn, "diabetes": dm, "smoker": sm,
        "uacr_mg_g": uacr, "hba1c_percent": hba1c,
    }  # fmt: skip
    if sdi is not None:
        row["sdi_decile"] = sdi
    if drop != "none":
        del row[drop]
    if sum(k in row for k in ("uacr_mg_g", "hba1c_percent", "sdi_decile")) < 2:
        return  # not the full model (the single add-on models are tested above)
    for score, years, sex, outcome in ((PREVENT_30Y, 30, "male", "cvd"),
                                       (PREVENT_10Y, 10, "female", "hf")):  # fmt: skip
        r = {**row, "sex": sex, "outcome": outcome}
        assert score.model_of(r) == "full"
        got = score.compute_one(r).value
        assert got == pytest.approx(_aha_full(r, years, sex, outcome), rel=1e-12)


def _uacr_model(r: dict[str, float], years: int, sex: str, outcome: str) -> float:
    """Base + UACR equations as written out in a second, independent Python transcription of
    the supplement (formula by formula), risk in percent."""
    a = (r["age_years"] - 55) / 10
    nh = (r["total_cholesterol_mg_dl"] - r["hdl_mg_dl"]) * 0.02586 - 3.5
    h = (r["hdl_mg_dl"] * 0.02586 - 1.3) / 0.3
    sbp, g, b = r["systolic_bp_mm_hg"], r["egfr_ml_min_1_73m2"], r["bmi_kg_m2"]
    slo, shi = (min(sbp, 110) - 110) / 20, (max(sbp, 110) - 130) / 20
    glo, ghi = (min(g, 60) - 60) / -15, (max(g, 60) - 90) / -15
    blo, bhi = (min(b, 30) - 25) / 5, (max(b, 30) - 30) / 5
    dm, sm, bpt, stn = r["diabetes"], r["smoker"], r["bp_treated"], r["statin"]
    lu = math.log(max(r["uacr_mg_g"], 0.1))
    if (years, sex, outcome) == (10, "female", "cvd"):
        x = (-3.738341 + 0.7969249 * a + 0.0256635 * nh - 0.1588107 * h - 0.2255701 * slo
             + 0.3396649 * shi + 0.8047515 * dm + 0.5285338 * sm + 0.4803511 * glo
             + 0.0434472 * ghi + 0.2985207 * bpt - 0.1497787 * stn - 0.0742889 * bpt * shi
             + 0.106756 * stn * nh - 0.0778126 * a * nh + 0.0306768 * a * h - 0.0907168 * a * shi
             - 0.2705122 * a * dm - 0.0830564 * a * sm - 0.1389249 * a * glo + 0.1793037 * lu)  # fmt: skip
    elif (years, sex, outcome) == (30, "male", "hf"):
        x = (-2.314872 + 0.5750236 * a - 0.1062268 * a * a - 0.4633994 * slo + 0.2742874 * shi
             + 0.612208 * dm + 0.2614987 * sm + 0.0895459 * blo + 0.2632424 * bhi
             + 0.1430472 * glo + 0.0535184 * ghi + 0.2417468 * bpt - 0.0498574 * bpt * shi
             - 0.1193827 * a * shi - 0.316651 * a * dm - 0.2046122 * a * sm - 0.0216878 * a * bhi
             - 0.1165637 * a * glo + 0.1366452 * lu)  # fmt: skip
    else:
        raise AssertionError((years, sex, outcome))
    return _expit(x)


@settings(max_examples=100, deadline=None)
@given(
    age=st.floats(30, 59),
    tc=st.floats(130, 320),
    hdl=st.floats(20, 100),
    sbp=st.floats(90, 200),
    bmi=st.floats(18.5, 39.99),
    egfr=st.floats(15, 150),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    uacr=st.floats(0.0, 25000.0),
)
def test_uacr_model_agrees_with_second_transcription(
    age: float,
    tc: float,
    hdl: float,
    sbp: float,
    bmi: float,
    egfr: float,
    flags: tuple[bool, bool, bool, bool],
    uacr: float,
) -> None:
    row = {
        "age_years": age, "total_cholesterol_mg_dl": tc, "hdl_mg_dl": hdl,
        "systolic_bp_mm_hg": sbp, "bmi_kg_m2": bmi, "egfr_ml_min_1_73m2": egfr,
        "bp_treated": float(flags[0]), "statin": float(flags[1]), "diabetes": float(flags[2]),
        "smoker": float(flags[3]), "uacr_mg_g": uacr,
    }  # fmt: skip
    for score, years, sex, outcome in ((PREVENT_10Y, 10, "female", "cvd"),
                                       (PREVENT_30Y, 30, "male", "hf")):  # fmt: skip
        r = {**row, "sex": sex, "outcome": outcome}
        assert score.model_of(r) == "uacr"
        assert score.compute_one(r).value == pytest.approx(
            _uacr_model(row, years, sex, outcome), rel=1e-12
        )


def _hba1c_model(r: dict[str, float], years: int, sex: str, outcome: str) -> float:
    """Base + HbA1c equations as written out in another independent Python transcription of
    the supplement, risk in percent."""
    a = (r["age_years"] - 55) / 10
    nh = (r["total_cholesterol_mg_dl"] - r["hdl_mg_dl"]) * 0.02586 - 3.5
    h = (r["hdl_mg_dl"] * 0.02586 - 1.3) / 0.3
    sbp, g = r["systolic_bp_mm_hg"], r["egfr_ml_min_1_73m2"]
    slo, shi = (min(sbp, 110) - 110) / 20, (max(sbp, 110) - 130) / 20
    glo, ghi = (min(g, 60) - 60) / -15, (max(g, 60) - 90) / -15
    dm, sm, bpt, stn = r["diabetes"], r["smoker"], r["bp_treated"], r["statin"]
    d = r["hba1c_percent"] - 5.3
    if (years, sex, outcome) == (10, "female", "cvd"):
        x = (-3.306162 + 0.7858178 * a + 0.0194438 * nh - 0.1521964 * h - 0.2296681 * slo
             + 0.3465777 * shi + 0.5366241 * dm + 0.5411682 * sm + 0.5931898 * glo
             + 0.0472458 * ghi + 0.3158567 * bpt - 0.1535174 * stn - 0.0687752 * bpt * shi
             + 0.1054746 * stn * nh - 0.0761119 * a * nh + 0.0307469 * a * h
             - 0.0905966 * a * shi - 0.2241857 * a * dm - 0.080186 * a * sm - 0.1667286 * a * glo
             + 0.1338348 * d * dm + 0.1622409 * d * (1 - dm))  # fmt: skip
    elif (years, sex, outcome) == (30, "male", "ascvd"):
        x = (-1.777708 + 0.3883267 * a - 0.0958114 * a * a + 0.1613374 * nh - 0.1144418 * h
             - 0.0474338 * slo + 0.2691281 * shi + 0.2859773 * dm + 0.1759553 * sm
             - 0.0242898 * glo + 0.0644523 * ghi + 0.142874 * bpt + 0.0115062 * stn
             - 0.02333 * bpt * shi + 0.0899664 * stn * nh - 0.0275478 * a * nh + 0.022573 * a * h
             - 0.090802 * a * shi - 0.1771894 * a * dm - 0.1548847 * a * sm - 0.0732754 * a * glo
             + 0.0591089 * d * dm + 0.0821158 * d * (1 - dm))  # fmt: skip
    else:
        raise AssertionError((years, sex, outcome))
    return _expit(x)


@settings(max_examples=100, deadline=None)
@given(
    age=st.floats(30, 59),
    tc=st.floats(130, 320),
    hdl=st.floats(20, 100),
    sbp=st.floats(90, 200),
    egfr=st.floats(15, 150),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    hba1c=st.floats(3.0, 15.0),
)
def test_hba1c_model_agrees_with_second_transcription(
    age: float,
    tc: float,
    hdl: float,
    sbp: float,
    egfr: float,
    flags: tuple[bool, bool, bool, bool],
    hba1c: float,
) -> None:
    row = {
        "age_years": age, "total_cholesterol_mg_dl": tc, "hdl_mg_dl": hdl,
        "systolic_bp_mm_hg": sbp, "bmi_kg_m2": 27.0, "egfr_ml_min_1_73m2": egfr,
        "bp_treated": float(flags[0]), "statin": float(flags[1]), "diabetes": float(flags[2]),
        "smoker": float(flags[3]), "hba1c_percent": hba1c,
    }  # fmt: skip
    for score, years, sex, outcome in ((PREVENT_10Y, 10, "female", "cvd"),
                                       (PREVENT_30Y, 30, "male", "ascvd")):  # fmt: skip
        r = {**row, "sex": sex, "outcome": outcome}
        assert score.model_of(r) == "hba1c"
        assert score.compute_one(r).value == pytest.approx(
            _hba1c_model(row, years, sex, outcome), rel=1e-12
        )


def test_prevent_with_its_outcome_fixed_equals_the_outcome_input() -> None:
    """``prevent_10y_ascvd`` (a record's report shows it beside ``prevent_10y``) is the ASCVD
    equation without the ``outcome`` input, with the 2026 guideline's bands; the name reaches
    it wherever a score is named."""
    from medtwin.risk.base import ScoreInputError
    from medtwin.risk.prevent import with_outcome

    fixed = with_outcome(10, "ascvd")
    assert get("prevent_10y_ascvd") is fixed and get("PREVENT_10Y") is PREVENT_10Y
    assert "outcome" not in {i.name for i in fixed.inputs}
    assert fixed.title == "AHA PREVENT 10-year risk (%) of ASCVD"
    row = {k: v for k, v in PREVENTR_EXAMPLE.items() if k != "outcome"}
    one = fixed.compute_one(row)
    assert one.value == PREVENT_10Y.compute_one({**row, "outcome": "ascvd"}).value
    assert one.band == "intermediate"
    cols = {k: [v, v] for k, v in row.items()}
    assert fixed.compute_many(cols).value.tolist() == [one.value, one.value]
    with pytest.raises(ScoreInputError, match="the outcome is 'ascvd' by the score's name"):
        fixed.compute_many({**cols, "outcome": ["hf", "hf"]})
    assert with_outcome(10, "cvd").bands == () and with_outcome(30, "ascvd").bands == ()
    # a patient's report shows these beside the total-CVD score
    assert [c.name for c in PREVENT_30Y.companions()] == ["prevent_30y_ascvd", "prevent_30y_hf"]
    assert fixed.companions() == ()
    with pytest.raises(ValueError, match="outcome 'chd'"):
        with_outcome(10, "chd")


def test_the_registry_finds_prevent_with_its_outcome_fixed_without_listing_it() -> None:
    from medtwin.risk.base import UnknownScoreError
    from medtwin.risk.prevent import with_outcome

    assert get("Prevent_30y_HF") is with_outcome(30, "hf")
    assert "prevent_10y_ascvd" not in {d["name"] for d in score_list()}
    with pytest.raises(UnknownScoreError, match="unknown score 'prevent_10y_chd'"):
        get("prevent_10y_chd")
    out = score_json("prevent_10y_ascvd", {k: v for k, v in PREVENTR_EXAMPLE.items()})
    assert out["value"] == pytest.approx(9.2, abs=0.05) and out["band"] == "intermediate"
