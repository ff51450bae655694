"""Hovorka 2004: Table 1 values, basal steady state, the paper's closed-form absorption
functions, an independent formulation (scipy, explicit absorption functions), solver accuracy
against scipy Radau, non-negative states and meal glucose mass balance (Hypothesis), and bad
input refused naming the field."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medtwin.model import ModelError, ScenarioError, get_model, parse_scenario, simulate
from medtwin.model.base import FloatArray
from medtwin.physiology.hovorka import (
    GLUCOSE_MG_PER_MMOL,
    Hovorka2004,
    carbs_g_to_mmol,
    steady_state,
)

NAMES = Hovorka2004.parameter_names()
IDX = {n: i for i, n in enumerate(NAMES)}
STATE = {n: i for i, n in enumerate(Hovorka2004.state_names())}
MEAN = Hovorka2004.preset("hovorka_2004_mean")
MG_DL_PER_MMOL_L = GLUCOSE_MG_PER_MMOL / 10.0

# Hovorka R et al. Physiol Meas 2004;25:905-920, Table 1, as reproduced by independent
# transcriptions found in public code (GetSingleHormoneModelParams.m; hovorka_parameters(BW));
# the paper itself could not be read here. Units: 1/min, L/kg, mmol/kg/min, min; SfIT and
# SfID per min per mU/L, SfIE per mU/L.
TABLE_1 = {
    "k12_per_min": 0.066,
    "ka1_per_min": 0.006,
    "ka2_per_min": 0.06,
    "ka3_per_min": 0.03,
    "sit_per_min_per_mu_l": 51.2e-4,
    "sid_per_min_per_mu_l": 8.2e-4,
    "sie_per_mu_l": 520e-4,
    "ke_per_min": 0.138,
    "vi_l_per_kg": 0.12,
    "vg_l_per_kg": 0.16,
    "f01_mmol_per_kg_min": 0.0097,
    "egp0_mmol_per_kg_min": 0.0161,
    "tmax_i_min": 55.0,
    "ag_fraction": 0.8,
    "tmax_g_min": 40.0,
}


def _with(params: FloatArray, **changes: float) -> FloatArray:
    p = np.array(params, dtype=np.float64, ndmin=2)
    for name, value in changes.items():
        p[:, IDX[name]] = value
    return p


def _feasible_prior_draws(n: int, seed: int) -> FloatArray:
    """Prior draws whose basal steady state exists (EGP0 > F01 at Gb)."""
    p = Hovorka2004.sample_prior(4 * n, seed=seed)
    ok = p[:, IDX["egp0_mmol_per_kg_min"]] > 1.2 * p[:, IDX["f01_mmol_per_kg_min"]]
    return p[ok][:n]


def test_registry_presets_and_table_1() -> None:
    assert get_model("HOVORKA_2004") is Hovorka2004
    assert Hovorka2004.preset_names() == ["hovorka_2004_mean"]
    for name, value in TABLE_1.items():
        assert MEAN[0, IDX[name]] == pytest.approx(value, rel=1e-12), name
    Hovorka2004.check_params(MEAN)
    described = Hovorka2004.describe()
    assert {o["name"]: o["loinc"] for o in described["observables"]} == {
        "bg_mg_dl": ["2339-0", "2345-7"],
        "cgm_mg_dl": ["99504-3"],
    }
    assert described["event_types"] == ["basal", "bolus", "meal"]
    assert all(p.source and p.unit for p in Hovorka2004.parameters)
    # the same event and observable names as UVA/Padova, so scenarios swap models
    uva = get_model("uva_padova_2008")
    assert uva.event_types == Hovorka2004.event_types
    assert [o.name for o in uva.observables] == [o.name for o in Hovorka2004.observables]


def test_steady_state_solves_the_equations() -> None:
    params = np.vstack([MEAN, _feasible_prior_draws(40, seed=3)])
    x0 = Hovorka2004.initial_state(params)
    u = np.zeros((params.shape[0], len(Hovorka2004.inputs)))
    u[:, 0] = steady_state(params)["basal_mu_per_min"]
    dx = Hovorka2004.rhs(0.0, x0, params, u)
    # every derivative vanishes (relative to the state's size)
    assert (np.abs(dx) / (np.abs(x0) + 1e-3)).max() < 1e-10
    g = x0[:, STATE["q1_mmol"]] / (params[:, IDX["vg_l_per_kg"]] * params[:, IDX["bw_kg"]])
    np.testing.assert_allclose(g * MG_DL_PER_MMOL_L, params[:, IDX["gb_mg_dl"]], rtol=1e-12)
    # mean subject at 6 mmol/L: plasma insulin (mU/L) and basal rate (U/h) from the quadratic
    ss = steady_state(MEAN)
    bw = 70.0
    q1 = 6.0 * 0.16 * bw
    spare = (0.0161 - 0.0097) * bw
    b = 0.0161 * bw * 520e-4
    a2 = -(b * 8.2e-4 + 51.2e-4 * 8.2e-4 * q1)
    a1 = spare * 8.2e-4 - b * 0.066
    a0 = spare * 0.066
    root = max(np.roots([a2, a1, a0]))
    assert ss["insulin_mu_l"][0] == pytest.approx(root, rel=1e-9)
    assert ss["basal_mu_per_min"][0] == pytest.approx(0.138 * root * 0.12 * bw, rel=1e-9)


def test_basal_only_keeps_every_preset_and_prior_draw_at_gb() -> None:
    params = np.vstack([MEAN, _feasible_prior_draws(30, seed=11)])
    gb = params[:, IDX["gb_mg_dl"]][:, None]
    r = simulate(Hovorka2004, params, parse_scenario([{"type": "basal"}]), t_end=1440, dt_out=60)
    assert np.abs(r.observables["bg_mg_dl"] - gb).max() < 1e-3
    assert np.abs(r.observables["cgm_mg_dl"] - gb).max() < 1e-3
    # the same with the mean subject's rate written out in U/h
    rate = float(steady_state(MEAN)["basal_mu_per_min"][0]) * 60.0 / 1000.0
    one = simulate(
        Hovorka2004, MEAN, parse_scenario([{"type": "basal", "u_per_h": rate}]), t_end=1440
    )
    assert np.abs(one.observables["bg_mg_dl"] - gb[0]).max() < 1e-3
    # without insulin glucose rises; with twice the basal it falls
    none = simulate(Hovorka2004, MEAN, parse_scenario([]), t_end=600, dt_out=60)
    assert none.observables["bg_mg_dl"][0, -1] > gb[0, 0] + 30
    double = parse_scenario([{"type": "basal", "u_per_h": 2 * rate}])
    low = simulate(Hovorka2004, MEAN, double, t_end=600, dt_out=60)
    assert low.observables["bg_mg_dl"][0, -1] < gb[0, 0] - 20


def test_gut_and_insulin_absorption_follow_the_papers_closed_forms() -> None:
    """Hovorka 2004 section 2: UG(t) = DG AG t exp(-t/tmax,G) / tmax,G^2 after a meal of DG,
    and for a bolus B, UI(t) = B t exp(-t/tmax,I) / tmax,I^2; plasma insulin then follows
    dI/dt = UI / VI - ke I, solved here in closed form (deviation from basal)."""
    t_meal, carbs, bolus_u = 30.0, 60.0, 4.0
    events = [
        {"type": "basal"},
        {"type": "meal", "t_min": t_meal, "carbs_g": carbs},
        {"type": "bolus", "t_min": t_meal, "insulin_u": bolus_u},
    ]
    r = simulate(Hovorka2004, MEAN, parse_scenario(events), t_end=480, dt_out=1)
    x = r.states[0]
    t = r.times - t_meal
    after = t >= 0
    s = t[after]
    dg = carbs_g_to_mmol(carbs)
    ag, tg, ti = 0.8, 40.0, 55.0
    ug_paper = dg * ag * s * np.exp(-s / tg) / tg**2
    ug_model = x[after, STATE["d2_mmol"]] / tg
    assert np.abs(ug_model - ug_paper).max() < 1e-6 * ug_paper.max()
    # its peak: at tmax,G with DG AG / (e tmax,G) mmol/min
    assert s[np.argmax(ug_model)] == tg
    assert ug_model.max() == pytest.approx(dg * ag / (math.e * tg), rel=1e-6)
    # absorbed so far: DG AG (1 - (1 + t/tmax,G) exp(-t/tmax,G))
    absorbed = dg * ag * (1.0 - (1.0 + s / tg) * np.exp(-s / tg))
    assert np.abs(x[after, STATE["absorbed_mmol"]] - absorbed).max() < 1e-6 * dg
    # insulin: the bolus adds B t e^(-t/tmax,I) / tmax,I^2 to the basal absorption rate
    basal = float(steady_state(MEAN)["basal_mu_per_min"][0])
    b = bolus_u * 1000.0
    ui_model = x[after, STATE["s2_mu"]] / ti
    ui_paper = basal + b * s * np.exp(-s / ti) / ti**2
    assert np.abs(ui_model - ui_paper).max() < 1e-6 * ui_paper.max()
    vi, ke, a = 0.12 * 70.0, 0.138, 1.0 / ti
    c = b * a * a / vi
    di = c * (
        (s / (ke - a) - 1.0 / (ke - a) ** 2) * np.exp(-a * s) + np.exp(-ke * s) / (ke - a) ** 2
    )
    i_basal = float(steady_state(MEAN)["insulin_mu_l"][0])
    assert np.abs(x[after, STATE["i_mu_l"]] - (i_basal + di)).max() < 1e-6 * di.max()
    # and before the meal nothing moves
    assert np.abs(r.observables["bg_mg_dl"][0, ~after] - 108.096).max() < 1e-6


def _independent_bg(params: FloatArray, t_meal: float, carbs: float, bolus_u: float) -> Any:
    """Plasma glucose from an independent formulation: scipy LSODA on the glucose and
    insulin-action equations of Hovorka 2004 in concentration form, with the paper's explicit
    absorption functions UG(t) and UI(t) in place of the D and S compartments."""
    integrate = pytest.importorskip("scipy.integrate")
    p = {n: float(params[0, i]) for n, i in IDX.items()}
    bw = p["bw_kg"]
    vg, vi = p["vg_l_per_kg"] * bw, p["vi_l_per_kg"] * bw
    ss = steady_state(params)
    basal, i_b = float(ss["basal_mu_per_min"][0]), float(ss["insulin_mu_l"][0])
    dg = carbs * 1000.0 / 180.16
    tg, ti = p["tmax_g_min"], p["tmax_i_min"]

    def ug(t: float) -> float:
        s = t - t_meal
        return 0.0 if s < 0 else dg * p["ag_fraction"] * s * math.exp(-s / tg) / tg**2

    def ui(t: float) -> float:
        s = t - t_meal
        bolus = 0.0 if s < 0 else bolus_u * 1000.0 * s * math.exp(-s / ti) / ti**2
        return basal + bolus

    def rhs(t: float, y: Any) -> list[float]:
        g, q2, ins, x1, x2, x3 = y  # g in mmol/L
        f01c = p["f01_mmol_per_kg_min"] * bw * min(1.0, g / 4.5)
        fr = 0.003 * (g - 9.0) * vg if g >= 9.0 else 0.0
        egp = p["egp0_mmol_per_kg_min"] * bw * (1.0 - x3)
        dq1 = -f01c - x1 * g * vg + p["k12_per_min"] * q2 - fr + ug(t) + egp
        return [
            dq1 / vg,
            x1 * g * vg - (p["k12_per_min"] + x2) * q2,
            ui(t) / vi - p["ke_per_min"] * ins,
            p["ka1_per_min"] * (p["sit_per_min_per_mu_l"] * ins - x1),
            p["ka2_per_min"] * (p["sid_per_min_per_mu_l"] * ins - x2),
            p["ka3_per_min"] * (p["sie_per_mu_l"] * ins - x3),
        ]

    g0 = p["gb_mg_dl"] / MG_DL_PER_MMOL_L
    x1, x2, x3 = (
        p[k] * i_b for k in ("sit_per_min_per_mu_l", "sid_per_min_per_mu_l", "sie_per_mu_l")
    )
    y0 = [g0, x1 * g0 * vg / (p["k12_per_min"] + x2), i_b, x1, x2, x3]
    grid = np.arange(0.0, 481.0, 5.0)
    first = integrate.solve_ivp(rhs, (0, t_meal), y0, method="LSODA", rtol=1e-10, atol=1e-10)
    sol = integrate.solve_ivp(
        rhs,
        (t_meal, 480.0),
        first.y[:, -1],
        method="LSODA",
        rtol=1e-10,
        atol=1e-10,
        t_eval=grid[grid >= t_meal],
        max_step=2.0,
    )
    return sol.t, sol.y[0] * MG_DL_PER_MMOL_L


@pytest.mark.parametrize(("carbs", "bolus_u"), [(70.0, 3.0), (120.0, 0.0)])
def test_agrees_with_an_independent_formulation(carbs: float, bolus_u: float) -> None:
    # the 120 g meal without insulin drives glucose above 9 mmol/L (renal clearance) and the
    # 3 U bolus below 4.5 mmol/L (concentration-dependent F01): every branch is exercised
    t_ref, bg_ref = _independent_bg(MEAN, 20.0, carbs, bolus_u)
    events = [{"type": "basal"}, {"type": "meal", "t_min": 20, "carbs_g": carbs}]
    if bolus_u:
        events.append({"type": "bolus", "t_min": 20, "insulin_u": bolus_u})
    r = simulate(Hovorka2004, MEAN, parse_scenario(events), t_end=480, times=t_ref, dense=False)
    bg = r.observables["bg_mg_dl"][0][np.isin(r.times, t_ref)]
    assert np.abs(bg - bg_ref).max() < 1e-3, np.abs(bg - bg_ref).max()
    # the default path reads outputs from dopri5's 4th-order dense output: at the renal
    # clearance kink (9 mmol/L) that is 1.2e-3 mg/dL off
    dense = simulate(Hovorka2004, MEAN, parse_scenario(events), t_end=480, times=t_ref)
    bg_dense = dense.observables["bg_mg_dl"][0][np.isin(dense.times, t_ref)]
    assert np.abs(bg_dense - bg_ref).max() < 2e-3
    assert np.ptp(bg) > 60  # a real excursion
    if bolus_u:
        assert bg.min() < 4.5 * MG_DL_PER_MMOL_L
    else:
        assert bg.max() > 9.0 * MG_DL_PER_MMOL_L


def _radau(params: FloatArray, scenario: Any, t_end: float, grid: FloatArray) -> FloatArray:
    """Reference: scipy Radau (rtol = atol = 1e-10) segment by segment with the jump rule."""
    integrate = pytest.importorskip("scipy.integrate")
    sched = Hovorka2004.schedule(scenario.events, params, t_end)
    x = Hovorka2004.initial_state(params)[0]
    previous = np.zeros(len(Hovorka2004.inputs))
    out = np.empty((len(grid), x.size))
    for k in range(len(sched.boundaries) - 1):
        t0, t1 = float(sched.boundaries[k]), float(min(sched.boundaries[k + 1], t_end))
        if t0 >= t_end:
            break
        u = sched.values[k, 0]
        Hovorka2004.jump_row(x, params[0], previous, u)
        previous = u
        inside = (grid >= t0) & ((grid < t1) | ((grid == t1) & (t1 == t_end)))
        sol = integrate.solve_ivp(
            lambda t, y, u=u: Hovorka2004.rhs(t, y[None, :], params, u[None, :])[0],
            (t0, t1),
            x,
            method="Radau",
            rtol=1e-10,
            atol=1e-10,
            dense_output=True,
        )
        assert sol.success
        if inside.any():
            out[inside] = sol.sol(grid[inside]).T
        x = sol.y[:, -1].copy()
    return out


def test_solver_matches_solve_ivp_radau() -> None:
    params = np.vstack([MEAN, _feasible_prior_draws(1, seed=5)])
    scenario = parse_scenario(
        [
            {"type": "basal"},
            {"type": "meal", "t_min": 30, "carbs_g": 55},
            {"type": "bolus", "t_min": 30, "insulin_u": 3},
            {"type": "meal", "t_min": 250.5, "carbs_g": 25},
            {"type": "basal", "t_min": 300, "u_per_h": 0.2},
        ]
    )
    grid = np.arange(0.0, 481.0, 10.0)
    for row in range(params.shape[0]):
        p = params[row : row + 1]
        ref = _radau(p, scenario, 480.0, grid)
        for method, options in (("dopri5", {}), ("rk4", {"max_step": 0.1})):
            r = simulate(Hovorka2004, p, scenario, t_end=480, times=grid, method=method, **options)
            bg_ref = ref[:, STATE["q1_mmol"]] / (p[0, IDX["vg_l_per_kg"]] * p[0, IDX["bw_kg"]])
            err = np.abs(r.observables["bg_mg_dl"][0] - bg_ref * MG_DL_PER_MMOL_L).max()
            assert err < 1e-3, (row, method, err)
            rel = np.abs(r.states[0] - ref) / (np.abs(ref).max(axis=0) + 1e-9)
            assert rel.max() < 1e-5, (row, method, rel.max())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    draw=st.integers(0, 29),
    meals=st.lists(st.tuples(st.floats(0.0, 700.0), st.floats(0.0, 200.0)), min_size=1, max_size=4),
    boluses=st.lists(st.tuples(st.floats(0.0, 700.0), st.floats(0.0, 30.0)), max_size=3),
    basal_u_per_h=st.one_of(st.none(), st.floats(0.0, 5.0)),
)
def test_states_non_negative_and_meal_glucose_conserved(
    draw: int,
    meals: list[tuple[float, float]],
    boluses: list[tuple[float, float]],
    basal_u_per_h: float | None,
) -> None:
    params = np.vstack([MEAN, _feasible_prior_draws(29, seed=7)])[draw : draw + 1]
    events: list[dict[str, object]] = [
        {"type": "basal"} if basal_u_per_h is None else {"type": "basal", "u_per_h": basal_u_per_h}
    ]
    events += [{"type": "meal", "t_min": t, "carbs_g": g} for t, g in meals]
    events += [{"type": "bolus", "t_min": t, "insulin_u": u} for t, u in boluses]
    r = simulate(Hovorka2004, params, parse_scenario(events), t_end=720, dt_out=5)
    assert np.isfinite(r.states).all()
    assert r.states.min() >= 0.0, r.states.min(axis=(0, 1))
    # meal glucose: what reached plasma + what is still in the gut = AG x what was eaten,
    # at every output time; absorbed <= eaten
    eaten = np.array([sum(carbs_g_to_mmol(g) for t, g in meals if t <= tt) for tt in r.times])
    ag = params[0, IDX["ag_fraction"]]
    x = r.states[0]
    in_gut = x[:, STATE["d1_mmol"]] + x[:, STATE["d2_mmol"]]
    absorbed = x[:, STATE["absorbed_mmol"]]
    np.testing.assert_allclose(absorbed + in_gut, ag * eaten, rtol=1e-6, atol=1e-6)
    assert (absorbed <= eaten + 1e-9).all()
    assert (np.diff(absorbed) >= -1e-9).all()


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([{"type": "meal", "t_min": 10, "carbs_g": -5}], "carbs_g"),
        ([{"type": "bolus", "t_min": 10, "insulin_u": "4"}], "insulin_u"),
        ([{"type": "basal", "u_per_h": -1}], "u_per_h"),
        ([{"type": "meal", "t_min": 10, "carbs": 50}], "carbs"),
    ],
)
def test_bad_events_are_refused_naming_the_field(
    events: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ScenarioError, match=message):
        simulate(Hovorka2004, MEAN, parse_scenario(events), t_end=60)


def test_bad_model_input_is_refused_naming_the_field() -> None:
    s = parse_scenario([{"type": "blood_loss", "t_min": 0, "volume_ml": 500, "duration_min": 10}])
    with pytest.raises(ModelError, match="does not take 'blood_loss'"):
        simulate(Hovorka2004, MEAN, s, t_end=60)
    with pytest.raises(ModelError, match="sit_per_min_per_mu_l"):
        simulate(Hovorka2004, _with(MEAN, sit_per_min_per_mu_l=1.0), parse_scenario([]), t_end=60)
    with pytest.raises(ModelError, match="bw_kg"):
        Hovorka2004.check_params(_with(MEAN, bw_kg=float("nan")))
    # outside the model's valid population: no basal insulin can hold glucose at Gb
    hopeless = _with(MEAN, egp0_mmol_per_kg_min=0.009)
    with pytest.raises(ModelError, match=r"parameter set 0: .*gb_mg_dl.*egp0_mmol_per_kg_min"):
        simulate(Hovorka2004, hopeless, parse_scenario([{"type": "basal"}]), t_end=60)


def test_equal_doses_in_a_row_are_each_given() -> None:
    """Meals and boluses are impulses applied when their segment begins; two equal doses in a
    row (nothing else between them) are two doses, and a dose at t_end is not given."""
    events = [
        {"type": "meal", "t_min": 10, "carbs_g": 30},
        {"type": "meal", "t_min": 20, "carbs_g": 30},
        {"type": "bolus", "t_min": 20, "insulin_u": 2},
        {"type": "bolus", "t_min": 40, "insulin_u": 2},
        {"type": "meal", "t_min": 60, "carbs_g": 10},
    ]
    sched = Hovorka2004.schedule(parse_scenario(events).events, MEAN, 60.0)
    assert sched.boundaries.tolist() == [0.0, 10.0, 20.0, 40.0, 60.0]
    assert (np.diff(sched.values[:, 0, 3]) != 0).all()  # consecutive segments differ
    r = simulate(Hovorka2004, MEAN, parse_scenario(events), t_end=60, dt_out=5)
    x = r.states[0, -1]
    gut = x[STATE["d1_mmol"]] + x[STATE["d2_mmol"]] + x[STATE["absorbed_mmol"]]
    assert gut == pytest.approx(0.8 * carbs_g_to_mmol(60.0), rel=1e-9)
    ref = simulate(Hovorka2004, MEAN, parse_scenario([]), t_end=60, dt_out=5).states[0, -1]
    extra = x[STATE["s1_mu"]] + x[STATE["s2_mu"]] - ref[STATE["s1_mu"]] - ref[STATE["s2_mu"]]
    assert 0 < extra < 4000.0  # both boluses (4,000 mU) given, part absorbed already
    one = simulate(Hovorka2004, MEAN, parse_scenario(events[:3]), t_end=60, dt_out=5).states[0, -1]
    assert (
        extra
        > one[STATE["s1_mu"]] + one[STATE["s2_mu"]] - ref[STATE["s1_mu"]] - ref[STATE["s2_mu"]]
    )
