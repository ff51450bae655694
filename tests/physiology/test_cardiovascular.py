"""Cardiovascular model (Ursino 1998, mean flow): resting operating point against Ursino's
tables, haemorrhage against volunteer data, crystalloid kinetics against Hahn 2020, the solver
against scipy's Radau, invariants (Hypothesis) and refusals.

Tolerances are those of docs/models/cardiovascular.md (validation table).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from medtwin.model import ModelError, get_model, parse_scenario, simulate
from medtwin.physiology import cardiovascular as cv
from medtwin.physiology.cardiovascular import CardiovascularUrsino as CV

PRESET = CV.preset("adult_70kg")
NAMES = CV.parameter_names()


@pytest.fixture(scope="module")
def rest() -> np.ndarray:
    return CV.initial_state(PRESET)


def _run(events: list[dict[str, object]], t_end: float = 60.0, params: np.ndarray = PRESET):
    return simulate(CV, params, parse_scenario(events), t_end=t_end, dt_out=1.0)


def test_registry_contract_and_loinc() -> None:
    assert get_model("cardiovascular_ursino") is CV
    loinc = {o["name"]: o["loinc"] for o in CV.describe()["observables"]}
    assert loinc["heart_rate_per_min"] == ["8867-4"]
    assert loinc["sbp_mmhg"] == ["8480-6"]
    assert loinc["dbp_mmhg"] == ["8462-4"]
    assert loinc["map_mmhg"] == ["8478-0"]
    assert loinc["cardiac_output_l_per_min"] == ["8741-1"]
    assert "blood_volume_ml" in loinc
    assert CV.event_types == {"blood_loss", "fluid_bolus", "drug_effect"}
    assert all(p.source and p.unit for p in CV.parameters)
    CV.check_params(PRESET)
    CV.check_params(CV.sample_prior(20, seed=1))


def test_resting_state_reproduces_ursino_basal_effectors(rest: np.ndarray) -> None:
    """Ursino 1998 Table 1 (Rsp 3.307, Rep 1.407, Vu,sv 1121, Vu,ev 1375 at basal) and Table 2
    (Emax,lv 2.95, Emax,rv 1.75): the closed loop at rest reaches them within 10 %."""
    h = cv.hemodynamics(rest[:, None, :], PRESET)[0, 0]
    p = PRESET[0]
    ours = {
        "Rsp": h[11],
        "Rep": h[12],
        "Emax,lv": h[13],
        "Emax,rv": h[14],
        "Vu,sv": p[cv.VUSV0] + rest[0, cv.D_VUSV],
        "Vu,ev": p[cv.VUEV0] + rest[0, cv.D_VUEV],
    }
    published = {
        "Rsp": 3.307,
        "Rep": 1.407,
        "Emax,lv": 2.95,
        "Emax,rv": 1.75,
        "Vu,sv": 1121.0,
        "Vu,ev": 1375.0,
    }
    for key, value in published.items():
        assert ours[key] == pytest.approx(value, rel=0.10), key
    # arterial pressure at the baroreflex set point Pn = 92 mmHg (Table 3) within 5 %, and a
    # normal adult heart rate and cardiac output
    r = _run([], t_end=10.0)
    o = {k: v[0] for k, v in r.observables.items()}
    assert o["map_mmhg"][0] == pytest.approx(92.0, rel=0.05)
    assert 60.0 <= o["heart_rate_per_min"][0] <= 80.0
    assert 4.5 <= o["cardiac_output_l_per_min"][0] <= 6.5
    assert 110.0 <= o["sbp_mmhg"][0] <= 130.0 and 70.0 <= o["dbp_mmhg"][0] <= 90.0
    assert o["blood_volume_ml"][0] == pytest.approx(5300.0, abs=1e-6)
    # it is a steady state: nothing moves over 10 minutes
    for name in ("map_mmhg", "heart_rate_per_min", "cardiac_output_l_per_min"):
        assert np.ptp(o[name]) < 1e-3 * abs(o[name][0]), name


def _bleed(volume_ml: float, duration_min: float, at: int) -> dict[str, np.ndarray]:
    """Observables at rest (index 0) and ``at`` minutes after a bleed starting at 5 min."""
    r = _run(
        [{"type": "blood_loss", "t_min": 5, "volume_ml": volume_ml, "duration_min": duration_min}]
    )
    o = {k: v[0] for k, v in r.observables.items()}
    o["pp_mmhg"] = o["sbp_mmhg"] - o["dbp_mmhg"]
    assert o["blood_volume_ml"][at] == pytest.approx(5300.0 - volume_ml, abs=1e-3)
    return {k: np.array([v[0], v[at]]) for k, v in o.items()}


def _fall(o: dict[str, np.ndarray], name: str) -> float:
    return float(o[name][0] - o[name][1])


def test_haemorrhage_900_ml_against_volunteers() -> None:
    """Drobin & Hahn, Anesthesiology 1999;90:81-91: withdrawing 900 mL of blood lowered systolic
    and diastolic pressures by about 10 mmHg in healthy men (tolerance +-5 mmHg; MAP, which
    lies between them, likewise)."""
    o = _bleed(900.0, 15.0, 40)
    assert 5.0 <= _fall(o, "sbp_mmhg") <= 15.0
    assert 5.0 <= _fall(o, "map_mmhg") <= 15.0
    # not met (card): the diastolic pressure falls about 3 mmHg, not 10; the pulse pressure
    # narrows with stroke volume, as in Johnson 2015's intra-arterial data (see below)
    assert 0.0 < _fall(o, "dbp_mmhg") < 5.0


def test_haemorrhage_1000_ml_against_intra_arterial_data() -> None:
    """Johnson BD et al. (Mayo Clinic), FASEB J 2013;27:1206.3 (abstract; 6 healthy men, three
    333 mL stages, 1 L in all, intra-arterial and central venous catheters): MAP 89.5 -> 80.8
    mmHg, heart rate 59 -> 66 /min (P = 0.07), CVP 5.8 -> 1.1 mmHg. Tolerances: +-5 mmHg on the
    MAP fall, +-2 mmHg on the CVP fall, 0-15 /min on the heart rate rise."""
    o = _bleed(1000.0, 15.0, 25)
    assert 3.7 <= _fall(o, "map_mmhg") <= 13.7
    assert 0.0 <= -_fall(o, "heart_rate_per_min") <= 15.0
    assert 2.7 <= _fall(o, "cvp_mmhg") <= 6.7


def _johnson_2015() -> dict[str, float]:
    """Mean change over Johnson 2015's six trials: four reached 1000 mL, two stopped early for
    presyncope after 333 and 667 mL (the abstract's wording), each in 333 mL stages (5 min per
    stage here), read 5 min after the last stage."""
    trials = [1000.0, 1000.0, 1000.0, 1000.0, 333.0, 667.0]
    per = {v: _bleed(v, 15.0 * v / 1000.0, round(5 + 15.0 * v / 1000.0 + 5)) for v in {*trials}}
    out = {}
    for name in ("map_mmhg", "heart_rate_per_min", "cvp_mmhg", "pp_mmhg", "dbp_mmhg"):
        out[name] = float(np.mean([_fall(per[v], name) for v in trials]))
    sv = [_fall(per[v], "stroke_volume_ml") / per[v]["stroke_volume_ml"][0] for v in trials]
    out["sv_fraction"] = float(np.mean(sv))
    return out


def test_haemorrhage_up_to_1000_ml_against_intra_arterial_data_2015() -> None:
    """Johnson BD et al. FASEB J 2015;29:823.4 (abstract; 6 healthy men; up to 1000 mL in 333 mL
    stages, two trials stopped at 333 and 667 mL for presyncope; mean loss 833 mL): MAP 93 -> 86
    mmHg, heart rate 60 -> 68 /min (P = 0.16), CVP 6.4 -> 1.9 mmHg, pulse pressure 68 -> 59
    mmHg, stroke volume 108 -> 96 mL. Tolerances: +-5 mmHg on pressure falls, +-2 mmHg on the
    CVP fall, 0-15 /min on the heart rate rise, +-10 percentage points on stroke volume."""
    o = _johnson_2015()
    assert 2.0 <= o["map_mmhg"] <= 12.0
    assert 0.0 <= -o["heart_rate_per_min"] <= 15.0
    assert 2.5 <= o["cvp_mmhg"] <= 6.5
    assert 4.0 <= o["pp_mmhg"] <= 14.0
    # diastolic fall implied by the same data, DBP = MAP - PP/3: 7 - 9/3 = 4 mmHg (+-3)
    assert 1.0 <= o["dbp_mmhg"] <= 7.0
    # not met (card): stroke volume falls 21.2 %, published 11 % (+-10 points: 0.2 points out)
    assert 0.21 < o["sv_fraction"] < 0.22


def test_phlebotomy_375_ml_against_finometer_data() -> None:
    """Leonetti P et al., Clin Auton Res 2004;14:176-181 (12 patients, 375 mL in 6.4 min):
    stroke volume 94.0 -> 80.7 mL (-14 %), pulse pressure 53.0 -> 47.1 mmHg (-11 %), heart rate
    75.2 -> 78.3 /min (not significant). Tolerances: +-10 percentage points, 0-10 /min."""
    o = _bleed(375.0, 6.4, 12)
    sv_fall = _fall(o, "stroke_volume_ml") / o["stroke_volume_ml"][0]
    pp_fall = _fall(o, "pp_mmhg") / o["pp_mmhg"][0]
    assert 0.04 <= sv_fall <= 0.24
    assert 0.01 <= pp_fall <= 0.21
    assert 0.0 <= -_fall(o, "heart_rate_per_min") <= 10.0


def test_blood_donation_450_ml_against_doppler_stroke_distance() -> None:
    """Hanson JM, Van Hoeyweghen R, Kirkman E, Thomas A, Horan MA. J Trauma 1998;44:128-134
    (abstract; 9 healthy volunteers, standard 450 mL donation): aortic stroke distance
    (suprasternal Doppler; proportional to stroke volume at a constant aortic area) fell by
    3.3 +- 1.6 of 22.2 +- 2.8 cm (-15 %), heart rate unchanged, mean pressure "increased
    slightly". The donation's duration is not in the abstract: 10 min here (the model's values
    are the same for 8-15 min and 5-20 min after). Tolerances: +-10 percentage points, 0-10 /min.
    """
    o = _bleed(450.0, 10.0, 20)
    sv_fall = _fall(o, "stroke_volume_ml") / o["stroke_volume_ml"][0]
    assert 0.049 <= sv_fall <= 0.249
    assert 0.0 <= -_fall(o, "heart_rate_per_min") <= 10.0
    # not met (card): the model's mean pressure falls about 2 mmHg; the donors' rose slightly
    # (so did Zoellei 2004's 48 donors: stress of the donation, which the model lacks)
    assert 0.0 < _fall(o, "map_mmhg") < 5.0


def test_staged_haemorrhage_667_ml_heart_rate() -> None:
    """Johnson BD et al. FASEB J 2013;27:1206.3 (abstract; 6 healthy men, 333 mL stages of
    5 min): heart rate 59 +- 4 at baseline, 63 +- 4 /min after 667 mL. Tolerance +-5 /min on
    the rise (medtwin; the abstract gives no test of this stage against baseline)."""
    o = _bleed(667.0, 10.0, 20)
    assert -1.0 <= -_fall(o, "heart_rate_per_min") <= 9.0
    # and less than after the full 1000 mL (66 /min), as published
    full = _bleed(1000.0, 15.0, 25)
    assert -_fall(o, "heart_rate_per_min") < -_fall(full, "heart_rate_per_min")


def test_stroke_volume_on_the_plateau_of_the_starling_curve() -> None:
    """Supine at rest the heart works near the plateau of its Frank-Starling curve (Truijen J,
    Bundgaard-Nielsen M, van Lieshout JJ, Eur J Appl Physiol 2010;109:141-157): adding 500 mL
    raises stroke volume less than removing 500 mL lowers it. Ursino's exponential diastolic
    curve alone would not show this: the human (Klotz) curve is flatter above the resting
    filling pressure and still finite below it."""
    loss = _bleed(500.0, 10.0, 25)
    r = _run(
        [
            {
                "type": "fluid_bolus",
                "t_min": 5,
                "volume_ml": 500,
                "duration_min": 10,
                "fluid": "colloid",
            }
        ]
    ).observables
    rise = r["stroke_volume_ml"][0, 25] - r["stroke_volume_ml"][0, 0]
    fall = _fall(loss, "stroke_volume_ml")
    assert 0.0 < rise < 0.8 * fall


@pytest.mark.parametrize(
    ("fraction", "sbp_low", "sbp_high"),
    [
        (0.15, 100.0, 130.0),  # class I (up to 15 %): SBP normal
        (0.25, 90.0, 130.0),  # class II (15-30 %): SBP normal
        (0.35, 50.0, 90.0),  # class III (30-40 %): SBP decreased
        (0.40, 0.0, 70.0),  # class IV (> 40 %; the model answers up to 40 %): markedly low
    ],
)
def test_atls_classes_systolic_pressure(fraction: float, sbp_low: float, sbp_high: float) -> None:
    """ATLS 10th ed. (American College of Surgeons 2018) classes of haemorrhage, loss over
    15 min, 10 min later. medtwin reads 'normal' as >= 100 (class I) or >= 90 mmHg (class II),
    'decreased' as 50-90 mmHg and 'markedly low' as < 70 mmHg. The heart rate rises with the
    class but stays below ATLS's 100-120, 120-140 and > 140 /min (not met, card): Ursino's
    reflex saturates at 108 /min, near the highest median heart rate (114 /min) that Guly et
    al. (Resuscitation 2011;82:556-559) found in trauma patients of class IV."""
    o = _bleed(fraction * 5300.0, 15.0, 30)
    assert sbp_low <= o["sbp_mmhg"][1] <= sbp_high
    hr = o["heart_rate_per_min"][1]
    assert o["heart_rate_per_min"][0] < hr < 110.0
    if fraction <= 0.15:
        assert hr < 100.0


def test_heart_rate_saturates_at_ursinos_reflex_limit() -> None:
    """The afferent firing cannot fall below fmin (Ursino 1998 Table 3), so the heart period
    cannot fall below T0 + G_Ts ln(fes(fmin) - fes,min + 1) + G_Tv fev(fmin) = 0.553 s
    (108.4 /min); in class IV haemorrhage the model's heart rate sits at that limit."""
    p = PRESET[0]
    fcs = p[cv.FMIN]
    fes = p[cv.FESINF] + (p[cv.FES0] - p[cv.FESINF]) * np.exp(-p[cv.KES] * fcs)
    ev = np.exp((fcs - p[cv.FCS0]) / p[cv.KEV])
    fev = (p[cv.FEV0] + p[cv.FEVINF] * ev) / (1.0 + ev)
    period = p[cv.T0] + p[cv.GTS] * np.log(fes - p[cv.FESMIN] + 1.0) + p[cv.GTV] * fev
    limit = 60.0 / period
    assert limit == pytest.approx(108.4, abs=0.1)
    o = _bleed(0.40 * 5300.0, 15.0, 30)
    assert o["heart_rate_per_min"][1] == pytest.approx(limit, abs=1.0)
    # even with no afferent firing at all (what an extra afferent input feeding Ursino's
    # efferent equations could at most achieve) the period cannot fall below 0.529 s
    # (113.5 /min): the vagal efferent cannot fall below fev0 = 3.2 /s, which alone keeps
    # 0.29 s in the period
    fes0 = p[cv.FES0]
    e0 = np.exp(-p[cv.FCS0] / p[cv.KEV])
    fev0 = (p[cv.FEV0] + p[cv.FEVINF] * e0) / (1.0 + e0)
    floor = p[cv.T0] + p[cv.GTS] * np.log(fes0 - p[cv.FESMIN] + 1.0) + p[cv.GTV] * fev0
    assert floor == pytest.approx(0.529, abs=0.001)
    assert 60.0 / floor == pytest.approx(113.5, abs=0.1)


def test_baroreflex_limits_the_fall_of_pressure() -> None:
    """With the reflex open (baroreflex_gain_fraction 0) the same 500 mL loss lowers MAP more
    than twice as much and the heart rate does not move (the reflex acts within seconds, so
    it compensates during the bleed)."""
    events = [{"type": "blood_loss", "t_min": 5, "volume_ml": 500, "duration_min": 10}]
    open_loop = PRESET.copy()
    open_loop[0, cv.GBARO] = 0.0
    intact = _run(events).observables
    broken = _run(events, params=open_loop).observables
    assert intact["map_mmhg"][0, 0] == pytest.approx(broken["map_mmhg"][0, 0], abs=1e-6)
    fall_intact = intact["map_mmhg"][0, 0] - intact["map_mmhg"][0, 40]
    fall_open = broken["map_mmhg"][0, 0] - broken["map_mmhg"][0, 40]
    assert fall_open > 2.0 * fall_intact > 0.0
    assert np.ptp(broken["heart_rate_per_min"][0]) < 1e-6
    # a small reflex tachycardia, as after 375 mL in Leonetti 2004 (+3 /min, not significant)
    rise = intact["heart_rate_per_min"][0, 40] - intact["heart_rate_per_min"][0, 0]
    assert 1.0 < rise < 10.0


def test_crystalloid_kinetics_against_hahn_2020() -> None:
    """Hahn, Acta Anaesthesiol Scand 2020;64:570-578: a crystalloid expands plasma by 50-60 %
    of the infused volume while a 30-min infusion lasts and 15-20 % 30 min after it ends
    (tolerance: 5 percentage points). Colloid and blood stay in the vessels."""
    r = _run([{"type": "fluid_bolus", "t_min": 0, "volume_ml": 1000, "duration_min": 30}], 60.0)
    gain = r.observables["blood_volume_ml"][0] - 5300.0
    assert 0.45 <= gain[30] / 1000.0 <= 0.65
    assert 0.15 <= gain[60] / 1000.0 <= 0.25
    colloid = _run(
        [
            {
                "type": "fluid_bolus",
                "t_min": 0,
                "volume_ml": 500,
                "duration_min": 10,
                "fluid": "colloid",
            }
        ]
    ).observables
    assert colloid["blood_volume_ml"][0, 60] == pytest.approx(5800.0, abs=1e-3)
    assert colloid["map_mmhg"][0, 60] > colloid["map_mmhg"][0, 0]


def test_drug_effects_act_on_their_targets() -> None:
    base = _run([], t_end=30.0).observables
    for target, name, sign in (
        ("svr", "map_mmhg", 1),
        ("heart_rate", "heart_rate_per_min", 1),
        ("contractility", "stroke_volume_ml", 1),
        ("unstressed_volume", "cvp_mmhg", -1),
    ):
        r = _run(
            [{"type": "drug_effect", "t_min": 5, "target": target, "change_pct": 30}], 30.0
        ).observables
        assert sign * (r[name][0, 4] - base[name][0, 4]) == pytest.approx(0.0, abs=1e-9)
        assert sign * (r[name][0, 6] - base[name][0, 6]) > 0.0, target
    # a duration ends the effect: back towards rest
    r = _run(
        [
            {
                "type": "drug_effect",
                "t_min": 5,
                "duration_min": 5,
                "target": "svr",
                "change_pct": -40,
            }
        ],
        60.0,
    ).observables
    assert r["map_mmhg"][0, 8] < base["map_mmhg"][0, 8] - 5.0
    assert abs(r["map_mmhg"][0, 60] - base["map_mmhg"][0, 0]) < 1.0


def _radau(events: list[dict[str, object]], t_end: float) -> tuple[np.ndarray, np.ndarray]:
    """Segment by segment with scipy's Radau (rtol = atol = 1e-10), applying the jump rule."""
    sched = CV.schedule(parse_scenario(events).events, PRESET, t_end)
    x = CV.initial_state(PRESET)[0].copy()
    zero = np.zeros(len(CV.inputs))
    times = [0.0]
    states = []
    segments = len(sched.boundaries) - 1
    cv._jump_row(x, PRESET[0], zero, sched.values[0, 0])
    states.append(x.copy())
    for k in range(segments):
        u = sched.values[k, 0]

        def f(t: float, y: np.ndarray, u: np.ndarray = u) -> np.ndarray:
            return CV.rhs(t, y[None, :], PRESET, u[None, :])[0]

        a, b = sched.boundaries[k], sched.boundaries[k + 1]
        sol = solve_ivp(f, (a, b), x, method="Radau", rtol=1e-10, atol=1e-10)
        x = sol.y[:, -1].copy()
        if k + 1 < segments:  # the state reported at a boundary is the one after its jump
            cv._jump_row(x, PRESET[0], u, sched.values[k + 1, 0])
        times.append(b)
        states.append(x.copy())
    return np.array(times), np.array(states)


def test_solver_agrees_with_radau() -> None:
    events = [
        {"type": "blood_loss", "t_min": 2, "volume_ml": 700, "duration_min": 6},
        {"type": "fluid_bolus", "t_min": 9, "volume_ml": 500, "duration_min": 5},
        {"type": "drug_effect", "t_min": 12, "duration_min": 4, "target": "svr", "change_pct": 25},
    ]
    times, ref = _radau(events, 20.0)
    for method in ("dopri5", "rk4"):
        r = simulate(
            CV,
            PRESET,
            parse_scenario(events),
            t_end=20.0,
            times=times,
            method=method,
            max_step=0.005 if method == "rk4" else None,
        )
        scale = np.abs(ref).max(axis=0) + 1.0
        assert (np.abs(r.states[0] - ref) / scale).max() < 1e-5, method
        ref_map = cv.hemodynamics(ref[None], PRESET)[0, :, 0]
        assert np.abs(r.observables["map_mmhg"][0] - ref_map).max() < 1e-3


def test_compiled_and_python_hemodynamics_agree(rest: np.ndarray) -> None:
    r = _run([{"type": "blood_loss", "t_min": 1, "volume_ml": 800, "duration_min": 5}], 10.0)
    np.testing.assert_allclose(
        cv.hemodynamics(r.states, PRESET), cv.hemodynamics_py(r.states, PRESET), rtol=1e-12
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    draw=st.integers(0, 10_000),
    losses=st.lists(
        st.tuples(st.integers(0, 60), st.floats(0.0, 700.0), st.integers(0, 30)), max_size=3
    ),
    fluids=st.lists(
        st.tuples(
            st.integers(0, 60),
            st.floats(0.0, 1500.0),
            st.integers(0, 60),
            st.sampled_from(cv.FLUIDS),
        ),
        max_size=3,
    ),
    drug=st.one_of(st.none(), st.tuples(st.sampled_from(cv.DRUG_TARGETS), st.floats(-50.0, 100.0))),
)
def test_volumes_non_negative_and_balanced(
    draw: int,
    losses: list[tuple[int, float, int]],
    fluids: list[tuple[int, float, int, str]],
    drug: tuple[str, float] | None,
) -> None:
    params = CV.sample_prior(1, seed=draw)
    events: list[dict[str, object]] = [
        {"type": "blood_loss", "t_min": t, "volume_ml": v, "duration_min": d} for t, v, d in losses
    ]
    events += [
        {"type": "fluid_bolus", "t_min": t, "volume_ml": v, "duration_min": d, "fluid": f}
        for t, v, d, f in fluids
    ]
    if drug is not None:
        events.append(
            {"type": "drug_effect", "t_min": 10, "target": drug[0], "change_pct": drug[1]}
        )
    try:
        r = simulate(CV, params, parse_scenario(events), t_end=120.0, dt_out=5.0)
    except ModelError as exc:  # only a net loss beyond the valid range may be refused
        assert "exceeds 40% of the blood volume" in str(exc)
        return
    x = r.states[0]
    assert np.isfinite(x).all()
    assert x[:, : cv.N_VOLUMES].min() > 0.0
    # blood volume change = fluids in - blood lost - crystalloid moved to the interstitium
    bv = r.observables["blood_volume_ml"][0]
    expected = bv[0] + x[:, cv.FLUID_GIVEN] - x[:, cv.BLOOD_LOST] - x[:, cv.CRYS_OUT]
    assert np.abs(bv - expected).max() < 1e-6 * bv[0]
    given_ = sum(v for _, v, _, _ in fluids)
    lost = sum(v for _, v, _ in losses)
    assert x[-1, cv.FLUID_GIVEN] == pytest.approx(given_, abs=1e-6)
    assert x[-1, cv.BLOOD_LOST] == pytest.approx(lost, abs=1e-6)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (
            {
                "type": "fluid_bolus",
                "t_min": 0,
                "volume_ml": 100,
                "duration_min": 1,
                "fluid": "seawater",
            },
            "'fluid'",
        ),
        (
            {"type": "drug_effect", "t_min": 0, "target": "insulin_sensitivity", "change_pct": 10},
            "'target'",
        ),
        ({"type": "drug_effect", "t_min": 0, "target": "svr", "change_pct": -100}, "'change_pct'"),
        (
            {"type": "blood_loss", "t_min": 0, "volume_ml": 2500, "duration_min": 30},
            "exceeds 40% of the blood volume",
        ),
    ],
)
def test_bad_events_are_refused_naming_the_field(event: dict[str, object], field: str) -> None:
    with pytest.raises(ModelError, match=field):
        _run([event], 60.0)


def test_other_event_types_and_populations_are_refused() -> None:
    with pytest.raises(ModelError, match="does not take 'meal' events"):
        _run([{"type": "meal", "t_min": 0, "carbs_g": 10}])
    with pytest.raises(ModelError, match="age_years"):
        cv.for_patient(age_years=15, weight_kg=55, sex="female")
    with pytest.raises(ModelError, match="weight_kg"):
        cv.for_patient(age_years=50, weight_kg=200, sex="male")
    bad = PRESET.copy()
    bad[0, NAMES.index("blood_volume_ml")] = 1000.0
    with pytest.raises(ModelError, match="blood_volume_ml"):
        CV.check_params(bad)


def test_for_patient_scales_volume_and_keeps_pressures() -> None:
    p = cv.for_patient(age_years=45, weight_kg=60, sex="female")
    assert p[0, cv.VT] == pytest.approx(3900.0)
    small = _run([], 5.0, params=p).observables
    base = _run([], 5.0).observables
    assert small["map_mmhg"][0, 0] == pytest.approx(base["map_mmhg"][0, 0], rel=1e-3)
    assert small["heart_rate_per_min"][0, 0] == pytest.approx(
        base["heart_rate_per_min"][0, 0], rel=1e-3
    )
    ratio = small["cardiac_output_l_per_min"][0, 0] / base["cardiac_output_l_per_min"][0, 0]
    assert ratio == pytest.approx(3900.0 / 5300.0, rel=1e-3)
    # the ends of the valid population pass the parameter bounds (40 kg woman: 2600 mL; 150 kg
    # man: 11250 mL) and keep the preset's pressure
    for weight, sex, volume in ((40.0, "female", 2600.0), (150.0, "male", 11250.0)):
        p = cv.for_patient(age_years=30, weight_kg=weight, sex=sex)
        assert p[0, cv.VT] == pytest.approx(volume)
        edge = _run([], 5.0, params=p).observables
        assert edge["map_mmhg"][0, 0] == pytest.approx(base["map_mmhg"][0, 0], rel=1e-3)
