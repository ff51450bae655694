"""Bergman minimal model (extended for type 1 diabetes): published parameter values, basal
steady state, closed-form responses of its linear parts, an independent formulation (scipy,
explicit absorption functions), solver accuracy against scipy Radau, non-negative states and
meal glucose mass balance (Hypothesis), and bad input refused naming the field."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medtwin.model import ModelError, ScenarioError, get_model, parse_scenario, simulate
from medtwin.model.base import FloatArray
from medtwin.physiology.bergman import Bergman1979, basal_mu_per_min

IDX = {n: i for i, n in enumerate(Bergman1979.parameter_names())}
STATE = {n: i for i, n in enumerate(Bergman1979.state_names())}
MEAN = Bergman1979.preset("t1d_mean")

# the type 1 set of Lynch & Bequette 2002 (after Furler et al. 1985 and Fisher 1991) as
# widely reproduced (the papers could not be read here), and the absorption values of
# Hovorka 2004 Table 1
PUBLISHED = {
    "p1_per_min": 0.028735,
    "p2_per_min": 0.028344,
    "p3_per_min2_per_mu_l": 5.035e-5,
    "n_per_min": 5.0 / 54.0,
    "vi_l": 12.0,
    "gb_mg_dl": 81.0,
    "ib_mu_l": 15.0,
    "tmax_i_min": 55.0,
    "ag_fraction": 0.8,
    "tmax_g_min": 40.0,
    "vg_dl": 0.16 * 70 * 10,
}


def _conv(c: float, a: float, k: float, s: FloatArray) -> FloatArray:
    """Solution y of dy/dt = -k y + c s exp(-a s), y(0) = 0 (a gamma-variate input)."""
    d = k - a
    return np.asarray(c * ((s / d - 1.0 / d**2) * np.exp(-a * s) + np.exp(-k * s) / d**2))


def test_registry_and_published_values() -> None:
    assert get_model("bergman_1979") is Bergman1979
    for name, value in PUBLISHED.items():
        assert MEAN[0, IDX[name]] == pytest.approx(value, rel=1e-12), name
    assert Bergman1979.preset_names() == ["t1d_mean"]
    uva = get_model("uva_padova_2008")
    assert Bergman1979.event_types == uva.event_types
    assert [o.name for o in Bergman1979.observables] == [o.name for o in uva.observables]
    assert [o.loinc for o in Bergman1979.observables] == [o.loinc for o in uva.observables]
    assert all(p.source and p.unit for p in Bergman1979.parameters)
    # the basal rate n Ib VI: 5/54 x 15 x 12 = 16.7 mU/min = 1.0 U/h
    assert basal_mu_per_min(MEAN)[0] * 0.06 == pytest.approx(1.0, rel=1e-12)


def test_basal_only_keeps_every_preset_and_prior_draw_at_gb() -> None:
    params = np.vstack([MEAN, Bergman1979.sample_prior(30, seed=2)])
    gb = params[:, IDX["gb_mg_dl"]][:, None]
    r = simulate(Bergman1979, params, parse_scenario([{"type": "basal"}]), t_end=1440, dt_out=60)
    assert np.abs(r.observables["bg_mg_dl"] - gb).max() < 1e-6
    assert np.abs(r.observables["cgm_mg_dl"] - gb).max() < 1e-6
    rate = float(basal_mu_per_min(MEAN)[0]) * 0.06
    one = simulate(
        Bergman1979, MEAN, parse_scenario([{"type": "basal", "u_per_h": rate}]), t_end=1440
    )
    assert np.abs(one.observables["bg_mg_dl"][0] - 81.0).max() < 1e-6
    none = simulate(Bergman1979, MEAN, parse_scenario([]), t_end=600, dt_out=60)
    assert none.observables["bg_mg_dl"][0, -1] > 81.0 + 100


def test_meal_and_bolus_follow_the_closed_forms() -> None:
    """With insulin at basal (X = 0) a meal gives G - Gb = Ra convolved with exp(-p1 t) / VG,
    Ra = AG DG t exp(-t/tmax,G) / tmax,G^2 (Hovorka 2004); a bolus B alone gives
    I - Ib = UI convolved with exp(-n t) / VI, UI = B t exp(-t/tmax,I) / tmax,I^2."""
    meal = [{"type": "basal"}, {"type": "meal", "t_min": 30, "carbs_g": 40}]
    r = simulate(Bergman1979, MEAN, parse_scenario(meal), t_end=600, dt_out=1)
    s = r.times[r.times >= 30] - 30
    p1, tg, vg = 0.028735, 40.0, 112.0
    dg = 40_000.0 * 0.8
    expected = 81.0 + _conv(dg / tg**2 / vg, 1.0 / tg, p1, s)
    bg = r.observables["bg_mg_dl"][0, r.times >= 30]
    assert np.abs(bg - expected).max() < 1e-6 * (expected.max() - 81.0)
    assert bg.max() - 81.0 > 50  # a real excursion
    bolus = [{"type": "basal"}, {"type": "bolus", "t_min": 30, "insulin_u": 3}]
    r = simulate(Bergman1979, MEAN, parse_scenario(bolus), t_end=600, dt_out=1)
    ti, n, vi = 55.0, 5.0 / 54.0, 12.0
    di = _conv(3000.0 / ti**2 / vi, 1.0 / ti, n, s)
    ins = r.states[0, r.times >= 30, STATE["i_mu_l"]]
    assert np.abs(ins - (15.0 + di)).max() < 1e-6 * di.max()


def _independent_bg(carbs: float, bolus_u: float, t0: float, grid: FloatArray) -> FloatArray:
    """Plasma glucose from an independent formulation: scipy LSODA on the three minimal-model
    equations with the explicit Ra(t) and UI(t) in place of the absorption compartments."""
    integrate = pytest.importorskip("scipy.integrate")
    p1, p2, p3, n, vi, vg, gb, ib = (0.028735, 0.028344, 5.035e-5, 5 / 54, 12.0, 112.0, 81.0, 15.0)
    tg, ti, basal = 40.0, 55.0, 5 / 54 * 15.0 * 12.0

    def rhs(t: float, y: Any) -> list[float]:
        g, x, i = y
        s = t - t0
        ra = 0.0 if s < 0 else 0.8 * carbs * 1000.0 * s * math.exp(-s / tg) / tg**2
        ui = basal + (0.0 if s < 0 else bolus_u * 1000.0 * s * math.exp(-s / ti) / ti**2)
        return [-(p1 + x) * g + p1 * gb + ra / vg, -p2 * x + p3 * (i - ib), -n * i + ui / vi]

    sol = integrate.solve_ivp(
        rhs,
        (t0, grid[-1]),
        [gb, 0.0, ib],
        method="LSODA",
        rtol=1e-10,
        atol=1e-10,
        t_eval=grid,
        max_step=2.0,
    )
    return np.asarray(sol.y[0])


def test_agrees_with_an_independent_formulation() -> None:
    grid = np.arange(20.0, 481.0, 5.0)
    ref = _independent_bg(60.0, 4.0, 20.0, grid)
    events = [
        {"type": "basal"},
        {"type": "meal", "t_min": 20, "carbs_g": 60},
        {"type": "bolus", "t_min": 20, "insulin_u": 4},
    ]
    r = simulate(Bergman1979, MEAN, parse_scenario(events), t_end=480, times=grid)
    bg = r.observables["bg_mg_dl"][0][np.isin(r.times, grid)]
    assert np.abs(bg - ref).max() < 1e-4, np.abs(bg - ref).max()
    assert np.ptp(bg) > 30


def _radau(params: FloatArray, scenario: Any, t_end: float, grid: FloatArray) -> FloatArray:
    integrate = pytest.importorskip("scipy.integrate")
    sched = Bergman1979.schedule(scenario.events, params, t_end)
    x = Bergman1979.initial_state(params)[0]
    previous = np.zeros(len(Bergman1979.inputs))
    out = np.empty((len(grid), x.size))
    for k in range(len(sched.boundaries) - 1):
        t0, t1 = float(sched.boundaries[k]), float(min(sched.boundaries[k + 1], t_end))
        if t0 >= t_end:
            break
        u = sched.values[k, 0]
        Bergman1979.jump_row(x, params[0], previous, u)
        previous = u
        inside = (grid >= t0) & ((grid < t1) | ((grid == t1) & (t1 == t_end)))
        sol = integrate.solve_ivp(
            lambda t, y, u=u: Bergman1979.rhs(t, y[None, :], params, u[None, :])[0],
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
    scenario = parse_scenario(
        [
            {"type": "basal"},
            {"type": "meal", "t_min": 30, "carbs_g": 55},
            {"type": "bolus", "t_min": 30, "insulin_u": 5},
            {"type": "meal", "t_min": 250.5, "carbs_g": 25},
            {"type": "basal", "t_min": 300, "u_per_h": 0.4},
        ]
    )
    grid = np.arange(0.0, 481.0, 10.0)
    for p in (MEAN, Bergman1979.sample_prior(1, seed=4)):
        ref = _radau(p, scenario, 480.0, grid)
        for method, options in (("dopri5", {}), ("rk4", {"max_step": 0.1})):
            r = simulate(Bergman1979, p, scenario, t_end=480, times=grid, method=method, **options)
            err = np.abs(r.observables["bg_mg_dl"][0] - ref[:, STATE["g_mg_dl"]]).max()
            assert err < 1e-3, (method, err)
            rel = np.abs(r.states[0] - ref) / (np.abs(ref).max(axis=0) + 1e-9)
            assert rel.max() < 1e-5, (method, rel.max())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    meals=st.lists(st.tuples(st.floats(0.0, 700.0), st.floats(0.0, 200.0)), min_size=1, max_size=4),
    boluses=st.lists(st.tuples(st.floats(0.0, 700.0), st.floats(0.0, 30.0)), max_size=3),
    basal_u_per_h=st.one_of(st.none(), st.floats(0.0, 5.0)),
)
def test_states_non_negative_and_meal_glucose_conserved(
    seed: int,
    meals: list[tuple[float, float]],
    boluses: list[tuple[float, float]],
    basal_u_per_h: float | None,
) -> None:
    params = Bergman1979.sample_prior(1, seed=seed)
    events: list[dict[str, object]] = [
        {"type": "basal"} if basal_u_per_h is None else {"type": "basal", "u_per_h": basal_u_per_h}
    ]
    events += [{"type": "meal", "t_min": t, "carbs_g": g} for t, g in meals]
    events += [{"type": "bolus", "t_min": t, "insulin_u": u} for t, u in boluses]
    r = simulate(Bergman1979, params, parse_scenario(events), t_end=720, dt_out=5)
    assert np.isfinite(r.states).all()
    masses = np.delete(r.states, STATE["x_per_min"], axis=2)
    assert masses.min() >= 0.0
    eaten = np.array([sum(g * 1000.0 for t, g in meals if t <= tt) for tt in r.times])
    x = r.states[0]
    absorbed = x[:, STATE["absorbed_mg"]]
    in_gut = x[:, STATE["d1_mg"]] + x[:, STATE["d2_mg"]]
    ag = params[0, IDX["ag_fraction"]]
    np.testing.assert_allclose(absorbed + in_gut, ag * eaten, rtol=1e-6, atol=1e-3)
    assert (absorbed <= eaten + 1e-6).all()


def test_bad_input_is_refused_naming_the_field() -> None:
    with pytest.raises(ScenarioError, match="carbs_g"):
        parse_scenario([{"type": "meal", "t_min": 5, "carbs_g": -1}])
    s = parse_scenario(
        [{"type": "exercise", "t_min": 0, "duration_min": 30, "intensity_pct_vo2max": 50}]
    )
    with pytest.raises(ModelError, match="does not take 'exercise'"):
        simulate(Bergman1979, MEAN, s, t_end=60)
    bad = MEAN.copy()
    bad[0, IDX["p3_per_min2_per_mu_l"]] = 1.0
    with pytest.raises(ModelError, match="p3_per_min2_per_mu_l"):
        simulate(Bergman1979, bad, parse_scenario([]), t_end=60)
