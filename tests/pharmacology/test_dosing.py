"""Vancomycin and gentamicin PK models, MAP TDM fits and dose recommendations."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from scipy.linalg import expm
from scipy.optimize import minimize

from medtwin.cli import main
from medtwin.model import OutsidePopulationError, get_model, parse_scenario, simulate
from medtwin.pharmacology import pk
from medtwin.pharmacology.antibiotics import POP_MODEL_NAMES, get_pop_model
from medtwin.pharmacology.case import CaseError, parse_case
from medtwin.pharmacology.covariates import CovariateError, PatientCovariates
from medtwin.pharmacology.tdm import Level, TdmError, fit_map
from medtwin.twin.optimise import Target, recommend

ADULT = {"age_years": 50, "weight_kg": 70, "height_cm": 175, "sex": "male", "creatinine_mg_dl": 1.0}
EVENTS = [
    {
        "type": "infusion",
        "drug": "x",
        "t_h": 0,
        "amount_mg": 1000,
        "duration_h": 1,
        "every_h": 12,
        "count": 5,
    },
    {"type": "infusion", "drug": "x", "t_h": 62.5, "amount_mg": 300, "duration_h": 0},
]
TIMES = [0.5, 1.0, 6.0, 12.0, 13.0, 30.0, 62.5, 63.0, 80.0]


def patient(**kw: object) -> PatientCovariates:
    return PatientCovariates.from_dict({**ADULT, **kw})


# ------------------------------------------------------------------ published numbers
def test_goti_typical_values_table2() -> None:
    """Goti 2018 Table 2: CL 4.5 L/h at CrCL 120 mL/min, V1 58.4 L at 70 kg, Q 6.5, V2 38.4;
    haemodialysis x0.7 on CL and x0.5 on V1 (exact)."""
    pop = get_pop_model("vancomycin_goti2018")
    ref = pop.individual(
        PatientCovariates.from_dict(
            {"age_years": 57, "weight_kg": 70, "sex": "male", "crcl_ml_min": 120}
        )
    )
    np.testing.assert_allclose(ref[0], [4.5, 58.4, 6.5, 38.4], rtol=1e-12)
    hd = pop.individual(
        PatientCovariates.from_dict(
            {"age_years": 57, "weight_kg": 70, "sex": "male", "crcl_ml_min": 120, "dialysis": True}
        )
    )
    np.testing.assert_allclose(hd[0], [4.5 * 0.7, 58.4 * 0.5, 6.5, 38.4], rtol=1e-12)
    # CrCL truncated at 150 mL/min as in the source
    hi = pop.individual(
        PatientCovariates.from_dict(
            {"age_years": 30, "weight_kg": 70, "sex": "male", "crcl_ml_min": 200}
        )
    )
    assert hi[0, 0] == pytest.approx(4.5 * (150 / 120) ** 0.8, rel=1e-12)
    assert np.sqrt(np.diag(pop.omega)) == pytest.approx([0.398, 0.816, 0.571], abs=1e-3)


def test_goti_pinned_readings() -> None:
    """Methods: serum creatinine below 1 mg/dL raised to 1 above 60 y; volumes per 70 kg."""
    pop = get_pop_model("vancomycin_goti2018")
    old = patient(age_years=70, creatinine_mg_dl=0.6)
    assert pop.check_patient(old) == pytest.approx((140 - 70) * 70 / 72.0)
    young = patient(age_years=40, creatinine_mg_dl=0.9)
    assert pop.check_patient(young) == pytest.approx((140 - 40) * 70 / (72.0 * 0.9))
    heavy = pop.individual(patient(weight_kg=100))[0]
    assert heavy[1] == pytest.approx(58.4 * 100 / 70) and heavy[3] == pytest.approx(38.4 * 100 / 70)


def test_buelga_typical_values() -> None:
    """Buelga 2005: CL = 1.08 CrCL (L/h), V = 0.98 TBW: CrCL 90 mL/min, 65 kg -> CL 5.832 L/h,
    V 63.7 L, half-life 7.6 h (the worked value of the nlmixr2lib translation)."""
    pop = get_pop_model("vancomycin_buelga2005")
    p = pop.individual(
        PatientCovariates.from_dict(
            {"age_years": 50, "weight_kg": 65, "sex": "male", "crcl_ml_min": 90}
        )
    )[0]
    assert p == pytest.approx([5.832, 63.7], rel=1e-12)
    assert math.log(2) * p[1] / p[0] == pytest.approx(7.6, abs=0.05)


def test_hull_sarubbi_and_cockcroft_gault() -> None:
    """Hull & Sarubbi: kel = 0.00293 CrCL + 0.014, V = 0.26 L/kg IBW; Cockcroft-Gault by hand."""
    pt = patient()
    crcl = (140 - 50) * 70 / (72 * 1.0)
    assert pt.crcl_ml_min() == pytest.approx(crcl)
    assert patient(sex="female").crcl_ml_min() == pytest.approx(0.85 * crcl)
    ibw = 50 + 2.3 * (175 / 2.54 - 60)
    pop = get_pop_model("gentamicin_hull1976")
    cl, v = pop.individual(patient(weight_kg=80))[0]  # above IBW, not obese: IBW
    assert v == pytest.approx(0.26 * ibw)
    # gentamicin's CrCL uses the dosing weight (IBW here)
    crcl_ibw = (140 - 50) * ibw / 72
    assert cl / v == pytest.approx(0.00293 * crcl_ibw + 0.014)
    obese = patient(weight_kg=130)
    assert pop.dosing_weight_kg(obese) == pytest.approx(ibw + 0.4 * (130 - ibw))


# ------------------------------------------------------------------ closed form vs ODE
@pytest.mark.parametrize("name", POP_MODEL_NAMES)
def test_closed_form_agrees_with_ode(name: str) -> None:
    pop = get_pop_model(name)
    model = get_model(name)
    params = pop.individual(patient(), np.array([[0.2, -0.3, 0.1][: len(pop.eta_names)]]))
    events = [{**e, "drug": pop.drug} for e in EVENTS]
    scen = parse_scenario(events)
    r = simulate(model, params, scen, t_end=80.0, times=TIMES)
    ode = r.observables["conc_mg_l"][0]
    a, lam = pop.modes(params)
    doses = pk.doses_from_events(scen.events)
    exact = pk.concentrations(a, lam, doses, r.times)[0]
    np.testing.assert_allclose(ode, exact, rtol=1e-6, atol=1e-7)
    # AUC: the ODE's integral state against the exact primitive
    assert r.states[0, -1, -1] == pytest.approx(pk.auc(a, lam, doses, 0.0, 80.0)[0], rel=1e-6)


def test_single_dose_auc_is_dose_over_clearance() -> None:
    pop = get_pop_model("vancomycin_goti2018")
    p = pop.individual(patient())
    a, lam = pop.modes(p)
    total = pk.auc(a, lam, [pk.Dose(0.0, 1500.0, 2.0)], 0.0, 5000.0)[0]
    assert total == pytest.approx(1500.0 / p[0, 0], rel=1e-9)


@pytest.mark.parametrize("name", POP_MODEL_NAMES)
def test_steady_state_flag_is_the_limit_of_many_doses(name: str) -> None:
    pop = get_pop_model(name)
    a, lam = pop.modes(pop.individual(patient()))
    t = np.array([0.0, 0.5, 1.0, 3.0, 11.99])
    ss = pk.concentrations(a, lam, [pk.Dose(0.0, 1000.0, 1.0, 12.0, 1, steady_state=True)], t)
    many = pk.concentrations(a, lam, [pk.Dose(0.0, 1000.0, 1.0, 12.0, 200)], t + 199 * 12.0)
    np.testing.assert_allclose(ss, many, rtol=1e-9)
    auc_ss = pk.auc(a, lam, [pk.Dose(0.0, 1000.0, 1.0, 12.0, 1, steady_state=True)], 0.0, 12.0)
    assert auc_ss[0] == pytest.approx(1000.0 / pop.individual(patient())[0, 0], rel=1e-9)


# ------------------------------------------------------------------ MAP vs independent
def _independent_two_comp(
    cl: float, v1: float, q: float, v2: float, times: list[float]
) -> np.ndarray:
    """Matrix exponential of the 2-compartment system, 1000 mg over 1 h every 12 h x 4."""
    k = np.array([[-(cl + q) / v1, q / v2], [q / v1, -q / v2]])
    out = []
    for t in times:
        x = np.zeros(2)
        clock = 0.0
        events = sorted({0.0, 1.0, 12.0, 13.0, 24.0, 25.0, 36.0, 37.0, t})
        for a, b in itertools.pairwise(events):
            if b > t:
                break
            rate = 1000.0 if any(s <= a < s + 1 for s in (0, 12, 24, 36)) else 0.0
            aug = np.zeros((3, 3))
            aug[:2, :2] = k
            aug[0, 2] = rate
            x = (expm(aug * (b - a)) @ np.array([*x, 1.0]))[:2]
            clock = b
        assert clock == t
        out.append(x[0] / v1)
    return np.array(out)


@pytest.mark.slow
def test_map_fit_matches_an_independent_minimisation() -> None:
    pop = get_pop_model("vancomycin_goti2018")
    pt = patient()
    levels = [Level(13.0, 28.0), Level(36.0, 14.0)]
    fit = fit_map(pop, pt, [pk.Dose(0, 1000, 1, 12, 4)], levels)
    typ = pop.individual(pt)[0]
    omega_inv = np.linalg.inv(np.diag([0.1584, 0.6659, 0.3260]))

    def ofv(eta: np.ndarray) -> float:
        cl, v1, q, v2 = (
            typ[0] * math.exp(eta[0]),
            typ[1] * math.exp(eta[1]),
            typ[2],
            typ[3] * math.exp(eta[2]),
        )
        f = _independent_two_comp(cl, v1, q, v2, [lv.t_h for lv in levels])
        y = np.array([lv.conc_mg_l for lv in levels])
        var = 3.4**2 + (0.227 * f) ** 2
        return float(np.sum((y - f) ** 2 / var + np.log(var)) + eta @ omega_inv @ eta)

    ref = minimize(
        ofv,
        np.zeros(3),
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 4000},
    )
    np.testing.assert_allclose(fit.etas, ref.x, atol=2e-3)
    assert fit.ofv == pytest.approx(ref.fun, abs=1e-5)
    assert np.all(np.linalg.eigvalsh(fit.cov) > 0)


def test_map_one_compartment_matches_hand_objective() -> None:
    pop = get_pop_model("vancomycin_buelga2005")
    pt = patient()
    levels = [Level(2.0, 35.0), Level(11.5, 12.0)]
    fit = fit_map(pop, pt, [pk.Dose(0, 1000, 1, 12, 3)], levels)
    cl0, v0 = pop.individual(pt)[0]
    om = np.array([[0.07631, 0.02296], [0.02296, 0.12930]])

    def conc(cl: float, v: float, t: float) -> float:
        k = cl / v
        end = (1000 / cl) * (1 - math.exp(-k * 1.0))
        return end * math.exp(-k * (t - 1.0)) if t >= 1 else (1000 / cl) * (1 - math.exp(-k * t))

    def ofv(e: np.ndarray) -> float:
        cl, v = cl0 * math.exp(e[0]), v0 * math.exp(e[1])
        r = sum((lv.conc_mg_l - conc(cl, v, lv.t_h)) ** 2 / 3.52**2 for lv in levels)
        return r + 2 * math.log(3.52**2) + float(e @ np.linalg.solve(om, e))

    ref = minimize(ofv, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12})
    np.testing.assert_allclose(fit.etas, ref.x, atol=1e-3)
    # Laplace: Cov = 2 H^-1, H by forward differences of the hand objective (another step)
    h = 1e-4
    x0 = ref.x
    f0 = ofv(x0)
    hess = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            hess[i, j] = (ofv(x0 + ei + ej) - ofv(x0 + ei) - ofv(x0 + ej) + f0) / h**2
    np.testing.assert_allclose(fit.cov, 2 * np.linalg.inv(hess), rtol=0.02)
    # the posterior samples follow it
    etas = np.log(fit.samples / pop.individual(pt)[0])
    np.testing.assert_allclose(np.cov(etas.T), fit.cov, rtol=0.15, atol=2e-3)


def test_level_before_first_dose_is_refused() -> None:
    pop = get_pop_model("vancomycin_goti2018")
    with pytest.raises(TdmError, match="not after the first dose"):
        fit_map(pop, patient(), [pk.Dose(5, 1000, 1)], [Level(2.0, 10.0)])
    with pytest.raises(TdmError, match="conc_mg_l must be >= 0"):
        fit_map(pop, patient(), [pk.Dose(0, 1000, 1)], [Level(2.0, -1.0)])


# ------------------------------------------------------------------ bad covariates, population
@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("weight_kg", 0, "'weight_kg' must be > 0"),
        ("creatinine_mg_dl", -1.0, "'creatinine_mg_dl' must be > 0"),
        ("sex", "x", "'sex' must be"),
        ("age_years", None, "missing field 'age_years'"),
    ],
)
def test_impossible_covariates_name_the_field(field: str, value: object, match: str) -> None:
    with pytest.raises(CovariateError, match=match):
        PatientCovariates.from_dict({**ADULT, field: value})


def test_outside_population_is_refused_with_reason() -> None:
    with pytest.raises(OutsidePopulationError, match=r"age 16 y .*17-101"):
        get_pop_model("vancomycin_goti2018").typical(patient(age_years=16))
    with pytest.raises(OutsidePopulationError, match="dialysis"):
        get_pop_model("vancomycin_buelga2005").typical(patient(dialysis=True))
    with pytest.raises(OutsidePopulationError, match="below"):
        get_pop_model("gentamicin_hull1976").typical(patient(creatinine_mg_dl=12.0))


# ------------------------------------------------------------------ recommendation
def test_acceptance_two_levels_give_a_regimen_with_auc_band() -> None:
    """A vancomycin patient with two measured levels gets a regimen with its AUC band."""
    pop = get_pop_model("vancomycin_goti2018")
    pt = patient(creatinine_mg_dl=1.3)
    history = [pk.Dose(0.0, 1000.0, 1.0, 12.0, 3)]
    fit = fit_map(pop, pt, history, [Level(25.5, 30.0), Level(35.5, 17.0)])
    rec = recommend(pop, pt, fit=fit, history=history, allergies=["penicillin"])
    assert rec.recommended
    assert rec.regimen["dose_mg"] % 250 == 0
    assert rec.regimen["every_h"] in (8, 12, 24, 36, 48)
    assert rec.regimen["infusion_h"] >= rec.regimen["dose_mg"] / 1000.0
    assert rec.regimen["loading_dose_mg"] == 0  # doses already given: no loading dose
    assert rec.regimen["start_h"] == 36.0
    ss = rec.exposure["auc24_ss_mg_h_l"]
    assert 400 <= ss["predicted"] <= 600
    lo, hi = ss["band_5_95"]
    assert lo < ss["predicted"] < hi
    # the band is narrower than the population prior's for the same regimen
    prior = recommend(pop, pt, history=history)
    assert hi - lo < np.diff(prior.exposure["auc24_ss_mg_h_l"]["band_5_95"])[0]
    assert 0.3 < rec.exposure["probability_of_target_attainment"] <= 1.0
    assert "none to vancomycin" in rec.allergy_check
    # the predicted steady state agrees with a long simulation of the recommended events
    a, lam = pop.modes(fit.param_array[None, :])
    dose, tau = rec.regimen["dose_mg"], rec.regimen["every_h"]
    regimen = [pk.Dose(36.0, dose, rec.regimen["infusion_h"], tau, 200)]
    late = 36.0 + 190 * tau
    assert pk.auc(a, lam, [*history, *regimen], late, late + 24.0 * (tau / math.gcd(int(tau), 24)))[
        0
    ] / (tau / math.gcd(int(tau), 24)) == pytest.approx(ss["predicted"], rel=1e-6)


def test_new_patient_gets_loading_dose_within_consensus() -> None:
    pop = get_pop_model("vancomycin_goti2018")
    rec = recommend(pop, patient(creatinine_mg_dl=0.7, weight_kg=90))
    assert rec.recommended
    load = rec.regimen["loading_dose_mg"]
    assert 20 * 90 <= load <= 35 * 90 and load <= 3000 and load % 250 == 0


def test_unreachable_target_and_allergy_are_explicit() -> None:
    pop = get_pop_model("vancomycin_goti2018")
    rec = recommend(pop, patient(), target=Target.auc24(5000, 6000))
    assert not rec.recommended and rec.reason.startswith("cannot recommend because")
    assert rec.regimen == {} and rec.exposure == {}
    rec = recommend(pop, patient(), allergies=["Vancomycin - red man syndrome"])
    assert not rec.recommended and "allergy to vancomycin" in rec.reason


def test_gentamicin_peak_trough_target() -> None:
    pop = get_pop_model("gentamicin_hull1976")
    rec = recommend(pop, patient())
    assert rec.recommended
    assert 5 <= rec.exposure["peak_ss_mg_l"]["predicted"] <= 10
    assert rec.exposure["trough_ss_mg_l"]["predicted"] <= 2
    assert rec.regimen["dose_mg"] % 20 == 0


# ------------------------------------------------------------------ case files and CLI
CASE = {
    "model": "vancomycin_goti2018",
    "patient": ADULT,
    "events": [
        {
            "type": "infusion",
            "t_h": 0,
            "amount_mg": 1000,
            "duration_h": 1,
            "every_h": 12,
            "count": 3,
        }
    ],
    "observations": [{"t_h": 13, "conc_mg_l": 22.0}, {"t_h": 23.5, "conc_mg_l": 11.0}],
    "times_h": [1, 2, 12],
    "target": {"auc24_mg_h_l": 500},
}


@pytest.mark.parametrize("kind", ["simulate", "fit", "recommend"])
def test_cli_dose(kind: str, tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "case.json"
    path.write_bytes(orjson.dumps(CASE))
    res = CliRunner().invoke(main, ["dose", kind, str(path), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = orjson.loads(res.output)
    if kind == "simulate":
        assert out["times_h"] == [1, 2, 12] and len(out["conc_mg_l"]) == 3
        assert out["auc24_steady_state_mg_h_l"] == pytest.approx(
            24 / 12 * 1000 / out["params"]["cl_l_per_h"]
        )
    elif kind == "fit":
        assert len(out["levels"]) == 2 and set(out["etas"]) == {"cl_l_per_h", "v1_l", "v2_l"}
    else:
        assert out["recommended"] and "auc24_ss_mg_h_l" in out["exposure"]


def test_cli_dose_bad_case(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "case.json"
    path.write_bytes(orjson.dumps({**CASE, "patient": {**ADULT, "weight_kg": 0}}))
    res = CliRunner().invoke(main, ["dose", "fit", str(path)])
    assert res.exit_code == 1 and "weight_kg" in res.output
    with pytest.raises(CaseError, match="unknown key"):
        parse_case({**CASE, "bogus": 1})
    # an unknown model lists every dosing model, warfarin's too (it was left out)
    known = "(known: vancomycin_goti2018, vancomycin_buelga2005, gentamicin_hull1976, warfarin_hamberg2007)"
    with pytest.raises(CaseError, match=re.escape(known)):
        parse_case({**CASE, "model": "vancomycin"})
    res = CliRunner().invoke(main, ["dose", "recommend", "--patient", "P", "--model", "x"])
    assert res.exit_code == 1 and f"unknown dosing model 'x' {known}" in res.output
