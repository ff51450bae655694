"""Propofol PK/PD models (Marsh, Schnider, Eleveld): published numbers, an independent
implementation (opentiva 1.1.2), closed form against the ODE path, invariants, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm

from medtwin.model import ModelError, OutsidePopulationError, get_model, parse_scenario, simulate
from medtwin.model.events import ScenarioError
from medtwin.pharmacology.propofol import (
    MODELS,
    PropofolEleveld,
    PropofolMarsh,
    PropofolSchnider,
    closed_form,
    eleveld_bis,
    ffm_al_sallami_kg,
    lbm_james_kg,
    params_for,
    time_to_peak_effect_min,
)

DATA = Path(__file__).parent / "data"
NAMES = ("propofol_marsh", "propofol_schnider", "propofol_eleveld")
PATIENT = {"age_years": 53, "weight_kg": 77, "height_cm": 177, "sex": "male"}


def _rates(p: np.ndarray) -> dict[str, float]:
    v1, v2, v3, cl, q2, q3, ke0 = (float(x) for x in p[:7])
    return {
        "v1_l": v1,
        "k10_per_min": cl / v1,
        "k12_per_min": q2 / v1,
        "k13_per_min": q3 / v1,
        "k21_per_min": q2 / v2,
        "k31_per_min": q3 / v3,
        "ke0_per_min": ke0,
    }


def _infusion(t: float, amount: float, duration: float, **extra: Any) -> dict[str, Any]:
    return {
        "type": "infusion",
        "drug": "propofol",
        "t_min": t,
        "amount_mg": amount,
        "duration_min": duration,
        **extra,
    }


def test_registered() -> None:
    for name in NAMES:
        cls = get_model(name)
        assert cls.name == name
        assert "cp_ug_ml" in [o.name for o in cls.observables]
    assert "bis" in [o.name for o in PropofolEleveld.observables]


# ------------------------------------------------------------------ published values
def test_eleveld_reference_individual() -> None:
    """Eleveld 2018 Table 2/3: the reference individual (35 yr, 70 kg, 170 cm, male, no
    opioids) has V1 6.28, V2 25.5, V3 273 L, CL 1.79, Q2 1.83, Q3 1.11 L/min, ke0 0.146 /min,
    Ce50 3.08 ug/mL (3 significant figures: rtol 0.3%)."""
    p = params_for("propofol_eleveld", age_years=35, weight_kg=70, height_cm=170, sex="male")[0]
    published = [6.28, 25.5, 273.0, 1.79, 1.83, 1.11, 0.146, 3.08]
    np.testing.assert_allclose(p[:8], published, rtol=3e-3)
    # and the female reference clearance theta15 = 2.10 L/min
    f = params_for("propofol_eleveld", age_years=35, weight_kg=70, height_cm=170, sex="female")
    assert f[0, 3] == pytest.approx(2.10, rel=1e-12)


def test_eleveld_covariate_directions() -> None:
    """Eleveld 2018: opioids lower CL (exp(-0.00286 AGE)) and V3 (exp(-0.0138 AGE)); Ce50
    falls with age (3.08 exp(-0.00635 (AGE - 35)): 2.31 ug/mL at 80 yr)."""
    kw = {"age_years": 80, "weight_kg": 75, "height_cm": 172, "sex": "male"}
    base = params_for("propofol_eleveld", **kw)[0]
    opi = params_for("propofol_eleveld", opioids=True, **kw)[0]
    assert opi[3] / base[3] == pytest.approx(math.exp(-0.00286 * 80), rel=1e-12)
    assert opi[2] / base[2] == pytest.approx(math.exp(-0.0138 * 80), rel=1e-12)
    assert base[7] == pytest.approx(2.31, abs=0.005)


def test_schnider_against_published_rate_constants() -> None:
    """Schnider 1998 rate-constant form (as programmed in STANPUMP and quoted with the
    model): k10 = 0.443 + 0.0107 (W-77) - 0.0159 (LBM-59) + 0.0062 (H-177), k12 = 0.302 -
    0.0056 (age-53), k13 = 0.196, k21 = (1.29 - 0.024 (age-53)) / (18.9 - 0.391 (age-53)),
    k31 = 0.0035 /min. The published coefficients have 3 significant figures: rtol 1%."""
    for age, w, h, sex in [(53, 77, 177, "male"), (30, 60, 165, "female"), (75, 95, 180, "male")]:
        p = params_for("propofol_schnider", age_years=age, weight_kg=w, height_cm=h, sex=sex)
        k = _rates(p[0])
        lbm = lbm_james_kg(w, h, sex)
        assert k["v1_l"] == 4.27
        assert k["k10_per_min"] == pytest.approx(
            0.443 + 0.0107 * (w - 77) - 0.0159 * (lbm - 59) + 0.0062 * (h - 177), rel=1e-2
        )
        assert k["k12_per_min"] == pytest.approx(0.302 - 0.0056 * (age - 53), rel=1e-2)
        assert k["k13_per_min"] == pytest.approx(0.196, rel=1e-2)
        assert k["k21_per_min"] == pytest.approx(
            (1.29 - 0.024 * (age - 53)) / (18.9 - 0.391 * (age - 53)), rel=1e-12
        )
        assert k["k31_per_min"] == pytest.approx(0.0035, rel=1e-2)
        assert k["ke0_per_min"] == 0.456


def test_marsh_rate_constants() -> None:
    """Marsh 1991 adult set: V1 0.228 L/kg, k10 0.119, k12 0.112, k13 0.0419, k21 0.055,
    k31 0.0033 /min; Diprifusor ke0 0.26 /min."""
    k = _rates(params_for("propofol_marsh", age_years=40, weight_kg=80)[0])
    expected = {
        "v1_l": 0.228 * 80,
        "k10_per_min": 0.119,
        "k12_per_min": 0.112,
        "k13_per_min": 0.0419,
        "k21_per_min": 0.055,
        "k31_per_min": 0.0033,
        "ke0_per_min": 0.26,
    }
    for key, value in expected.items():
        assert k[key] == pytest.approx(value, rel=1e-12), key


def test_time_to_peak_effect() -> None:
    """Schnider 1999: time to peak effect after a bolus 1.6 min with ke0 0.456 /min (given to
    0.1 min for the typical patient, whose covariates the paper does not pin: |dt| <= 0.1 min
    at the covariate centre, 53 yr, 77 kg, 177 cm). Struys et al. 2000 derived ke0 1.21 /min
    for the Marsh PK from the same 1.6 min: Marsh with ke0 1.21 peaks at 1.6 +/- 0.05 min."""
    p = params_for("propofol_schnider", **PATIENT)[0]
    assert time_to_peak_effect_min(p) == pytest.approx(1.6, abs=0.1)
    m = params_for("propofol_marsh", age_years=40, weight_kg=70)[0].copy()
    m[6] = 1.21
    assert time_to_peak_effect_min(m) == pytest.approx(1.6, abs=0.05)
    # the ODE path finds the same peak
    s = parse_scenario([_infusion(0, 150, 0)])
    r = simulate(PropofolSchnider, p[None, :], s, t_end=5, dt_out=0.01)
    t_peak = float(r.times[r.observables["ce_ug_ml"][0].argmax()])
    assert t_peak == pytest.approx(time_to_peak_effect_min(p), abs=0.01)


def _opentiva_male_ffm_typo(age: float) -> float:
    """opentiva's male FFM over Al-Sallami's: (0.88 + 0.2 m) / (0.88 + 0.12 m)."""
    m = 1.0 / (1.0 + (age / 13.4) ** -12.7)
    return (0.88 + 0.2 * m) / (0.88 + 0.12 * m)


def test_against_opentiva() -> None:
    """opentiva 1.1.2 (independent implementation; values in data/opentiva_propofol.json)
    for six patients (two with opioids for Eleveld): every rate constant, V1, ke0 and Ce50
    within rtol 1e-3 (opentiva rounds BMI to 0.1 in the fat-free mass), after the two
    documented differences of reading: opentiva centres Schnider's V2 at age 52 (the paper:
    53), uses 1.83 as Eleveld's theta5 (the paper: 1.75; 1.83 is the reference
    individual's Q2) and writes Al-Sallami's male FFM with (1 - 0.8) for (1 - 0.88), which
    cancels for adult men but makes its V3 8% low for women."""
    ref = json.loads((DATA / "opentiva_propofol.json").read_text())
    for name, rows in ref["models"].items():
        for row in rows:
            pt = row["patient"]
            kw = dict(pt) if name == "propofol_eleveld" else {k: pt[k] for k in PATIENT}
            if name != "propofol_eleveld":
                kw.pop("opioids", None)
            if name == "propofol_schnider" and pt["age_years"] < 26:
                # below Schnider's youngest volunteer (26 yr): medtwin refuses this row
                with pytest.raises(OutsidePopulationError, match="age_years"):
                    params_for(name, **kw)
                continue
            p = params_for(name, **kw)[0].copy()
            if name == "propofol_schnider":
                p[1] = 18.9 - 0.391 * (pt["age_years"] - 52)  # opentiva's V2 reading
            if name == "propofol_eleveld":
                p[4] *= 1.83 / 1.75  # opentiva's theta5
                # opentiva's male Al-Sallami FFM has (1 - 0.8) for (1 - 0.88): V3 scales
                # with FFM / FFM(reference male), Q3 with V3^0.75
                factor = _opentiva_male_ffm_typo(35.0)
                if pt["sex"] == "male":
                    factor = _opentiva_male_ffm_typo(pt["age_years"]) / factor
                else:
                    factor = 1.0 / factor
                p[2] *= factor
                p[5] *= factor**0.75
            ours = _rates(p)
            if name == "propofol_eleveld":
                ours["ce50_ug_ml"] = float(p[7])
            for key, value in ours.items():
                assert value == pytest.approx(row[key], rel=1e-3), (name, pt, key)


@pytest.mark.parametrize(
    ("age", "weight", "height", "pma"),
    [
        (0.0, 0.68, 30.0, 27.0),
        (0.0, 3.5, 50.0, None),
        (1.0, 10.0, 75.0, None),
        (88, 160, 190, None),
    ],
)
def test_eleveld_whole_population_runs(
    age: float, weight: float, height: float, pma: float | None
) -> None:
    """Eleveld's range ends (27 weeks PMA / 0.68 kg, a term neonate, 88 yr / 160 kg) give
    parameters inside the declared bounds, and a weight-scaled bolus keeps the mass balance."""
    p = params_for(
        "propofol_eleveld",
        age_years=age,
        weight_kg=weight,
        height_cm=height,
        sex="female",
        pma_weeks=pma,
    )
    s = parse_scenario([_infusion(0, 2.0 * weight, 0)])
    r = simulate(PropofolEleveld, p, s, t_end=30, dt_out=10)
    assert r.states[0, -1, [0, 1, 2, 4]].sum() == pytest.approx(2.0 * weight, rel=1e-7)
    assert 0 < r.observables["cp_ug_ml"][0, -1] < r.observables["cp_ug_ml"][0, 0]


def test_ffm_and_lbm() -> None:
    """Al-Sallami FFM of Eleveld's reference individual: 54.4752 kg (the normaliser quoted in
    independent Eleveld implementations); James LBM at Schnider's centring weight and height
    (77 kg, 177 cm, male): 84.7 - 128 (77/177)^2 = 60.48 kg, near the 59 kg at which Schnider
    centred LBM (the volunteers' mean)."""
    assert ffm_al_sallami_kg(35, 70, 170, "male") == pytest.approx(54.4752059601377, rel=1e-9)
    assert lbm_james_kg(77, 177, "male") == pytest.approx(60.476, abs=1e-3)
    assert lbm_james_kg(60, 165, "female") == pytest.approx(64.2 - 148 * (60 / 165) ** 2)


def test_bis() -> None:
    """Eleveld 2018 BIS: 93 awake, 46.5 at Ce50, decreasing, continuous at Ce50."""
    p = params_for("propofol_eleveld", age_years=35, weight_kg=70, height_cm=170, sex="male")
    ce = np.array([[0.0, 1.0, 3.08 - 1e-9, 3.08, 3.08 + 1e-9, 6.0, 12.0]])
    bis = eleveld_bis(ce, p)[0]
    assert bis[0] == 93.0
    assert bis[3] == pytest.approx(46.5)
    assert bis[2] == pytest.approx(46.5, abs=1e-6) and bis[4] == pytest.approx(46.5, abs=1e-6)
    assert np.all(np.diff(bis) <= 0)
    # Ce 1 ug/mL below Ce50 uses gamma 1.89; 6 above uses 1.47
    assert bis[1] == pytest.approx(93 / (1 + (1 / 3.08) ** 1.89))
    assert bis[5] == pytest.approx(93 / (1 + (6 / 3.08) ** 1.47))


# ------------------------------------------------------------------ closed form vs ODE
REGIMENS = [
    [_infusion(0, 140, 0)],
    [_infusion(0, 100, 0), _infusion(1, 500, 60)],
    [_infusion(5, 50, 0, every_min=10, count=4), _infusion(0, 200, 20, every_min=30, count=2)],
]


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("events", REGIMENS)
def test_closed_form_matches_ode(cls: Any, events: list[dict[str, Any]]) -> None:
    """The tri-exponential superposition and the adaptive ODE path agree to 1e-6 of the
    largest concentration at every output time (boluses, infusions, repeats, overlaps)."""
    p = np.vstack([cls.preset(n) for n in cls.preset_names()])
    s = parse_scenario(events)
    r = simulate(cls, p, s, t_end=90, dt_out=0.5)
    cf = closed_form(p, s, r.times)
    for obs in ("cp_ug_ml", "ce_ug_ml"):
        scale = float(np.abs(cf[obs]).max())
        np.testing.assert_allclose(r.observables[obs], cf[obs], rtol=0, atol=1e-6 * scale)


def test_closed_form_matches_matrix_exponential() -> None:
    """A third path: the 4x4 linear system (A1, A2, A3, Ce) solved with scipy's expm after a
    bolus and during an infusion (rtol 1e-9)."""
    p = params_for("propofol_eleveld", age_years=60, weight_kg=90, height_cm=180, sex="female")[0]
    v1, v2, v3, cl, q2, q3, ke0 = p[:7]
    k = np.array(
        [
            [-(cl + q2 + q3) / v1, q2 / v2, q3 / v3, 0.0],
            [q2 / v1, -q2 / v2, 0.0, 0.0],
            [q3 / v1, 0.0, -q3 / v3, 0.0],
            [ke0 / v1, 0.0, 0.0, -ke0],
        ]
    )
    times = np.array([0.5, 2.0, 10.0, 45.0])
    x0 = np.array([120.0, 0.0, 0.0, 0.0])
    cf = closed_form(p, [*parse_scenario([_infusion(0, 120, 0)]).events], times)
    for j, t in enumerate(times):
        x = expm(k * t) @ x0
        assert cf["cp_ug_ml"][0, j] == pytest.approx(x[0] / v1, rel=1e-9)
        assert cf["ce_ug_ml"][0, j] == pytest.approx(x[3], rel=1e-9)
    # a 10 mg/min infusion from 0: x(t) = K^-1 (e^{Kt} - I) b
    b = np.array([10.0, 0.0, 0.0, 0.0])
    cf = closed_form(p, [*parse_scenario([_infusion(0, 10 * 60, 60)]).events], times)
    for j, t in enumerate(times):
        x = np.linalg.solve(k, (expm(k * t) - np.eye(4)) @ b)
        assert cf["cp_ug_ml"][0, j] == pytest.approx(x[0] / v1, rel=1e-9)
        assert cf["ce_ug_ml"][0, j] == pytest.approx(x[3], rel=1e-9)


# ------------------------------------------------------------------ invariants
@settings(max_examples=25, deadline=None)
@given(
    doses=st.lists(
        st.tuples(
            st.floats(0, 50),
            st.floats(0, 500),
            st.sampled_from([0.0, 0.5, 5.0, 30.0]),
        ),
        min_size=1,
        max_size=5,
    ),
    model=st.sampled_from(MODELS),
)
def test_mass_balance_and_nonnegative(doses: list[tuple[float, float, float]], model: Any) -> None:
    """Dose given so far = A1 + A2 + A3 + eliminated (rtol 1e-7); no negative amount."""
    s = parse_scenario([_infusion(t, a, d) for t, a, d in doses])
    p = model.preset(model.preset_names()[0])
    r = simulate(model, p, s, t_end=60, dt_out=2)
    amounts = r.states[0][:, [0, 1, 2, 4]]
    assert np.all(amounts >= 0) and np.all(r.states[0][:, 3] >= 0)
    given_mg = np.zeros_like(r.times)
    for t, a, d in doses:
        if d == 0:
            given_mg += np.where(r.times >= t, a, 0.0)
        else:
            given_mg += a * np.clip((r.times - t) / d, 0.0, 1.0)
    total = amounts.sum(axis=1)
    np.testing.assert_allclose(total, given_mg, rtol=1e-7, atol=1e-6)


# ------------------------------------------------------------------ refusals
def test_outside_population() -> None:
    with pytest.raises(OutsidePopulationError, match=r"age_years = 10 .*Diprifusor"):
        params_for("propofol_marsh", age_years=10, weight_kg=30)
    with pytest.raises(OutsidePopulationError, match="weight_kg = 180"):
        params_for("propofol_marsh", age_years=40, weight_kg=180)
    with pytest.raises(OutsidePopulationError, match="James lean body mass"):
        params_for("propofol_schnider", age_years=50, weight_kg=110, height_cm=155, sex="male")
    with pytest.raises(OutsidePopulationError, match=r"age_years = 18 .*26-81"):
        params_for("propofol_schnider", age_years=18, weight_kg=70, height_cm=175, sex="male")
    # Schnider's youngest volunteer was 26 (abstract: "aged 26-81 yr"): 25 is outside, 26 inside
    with pytest.raises(OutsidePopulationError, match=r"age_years = 25 .*26-81"):
        params_for("propofol_schnider", age_years=25, weight_kg=70, height_cm=175, sex="male")
    params_for("propofol_schnider", age_years=26, weight_kg=70, height_cm=175, sex="male")
    with pytest.raises(OutsidePopulationError, match="age_years = 95"):
        params_for("propofol_eleveld", age_years=95, weight_kg=60, height_cm=160, sex="female")
    with pytest.raises(OutsidePopulationError, match="pma_weeks = 25"):
        params_for(
            "propofol_eleveld", age_years=0, weight_kg=0.8, height_cm=35, sex="male", pma_weeks=25
        )
    # the obesity limit of James's formula for a woman of 165 cm is BMI 36.15
    params_for("propofol_schnider", age_years=50, weight_kg=98, height_cm=165, sex="female")
    with pytest.raises(OutsidePopulationError, match=r"BMI 36\.1"):
        params_for("propofol_schnider", age_years=50, weight_kg=99, height_cm=165, sex="female")
    with pytest.raises(OutsidePopulationError):
        PropofolSchnider.check_population(
            {"age_y": 50, "weight_kg": 140, "height_m": 1.75, "sex": "male"}
        )
    PropofolMarsh.check_population({"age_y": 50, "weight_kg": 80})


def test_bad_covariates_named() -> None:
    with pytest.raises(ModelError, match="weight_kg must be a finite number > 0"):
        params_for("propofol_marsh", age_years=40, weight_kg=0)
    with pytest.raises(ModelError, match="weight_kg must be a number"):
        params_for("propofol_marsh", age_years=40, weight_kg=True)
    with pytest.raises(ModelError, match="age_years must be a finite number >= 0"):
        params_for("propofol_marsh", age_years=-3, weight_kg=70)
    with pytest.raises(ModelError, match="needs height_cm"):
        params_for("propofol_schnider", age_years=40, weight_kg=70, sex="male")
    with pytest.raises(ModelError, match="sex must be"):
        params_for("propofol_eleveld", age_years=40, weight_kg=70, height_cm=170, sex="M")
    with pytest.raises(ModelError, match="opioids must be"):
        params_for(
            "propofol_eleveld", age_years=40, weight_kg=70, height_cm=170, sex="male", opioids=1
        )
    with pytest.raises(ModelError, match="unknown propofol model"):
        params_for("propofol_minto", age_years=40, weight_kg=70)


def test_bad_events_named() -> None:
    p = PropofolMarsh.preset("eleveld-reference")
    with pytest.raises(ScenarioError, match="field 'drug' = 'remifentanil'"):
        simulate(
            PropofolMarsh,
            p,
            parse_scenario([{**_infusion(0, 1, 0), "drug": "remifentanil"}]),
            t_end=5,
        )
    with pytest.raises(ScenarioError, match="steady_state"):
        simulate(PropofolMarsh, p, parse_scenario([_infusion(0, 1, 5, steady_state=True)]), t_end=5)
    with pytest.raises(ModelError, match="does not take 'meal'"):
        simulate(
            PropofolMarsh, p, parse_scenario([{"type": "meal", "t_min": 0, "carbs_g": 5}]), t_end=5
        )
    with pytest.raises(ScenarioError, match="amount_mg"):
        parse_scenario([_infusion(0, -1, 0)])


def test_presets_are_params_for() -> None:
    np.testing.assert_array_equal(
        PropofolSchnider.preset("schnider-reference"), params_for("propofol_schnider", **PATIENT)
    )
    assert "schnider-reference" in PropofolEleveld.preset_names()
