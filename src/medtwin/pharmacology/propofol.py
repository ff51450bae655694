"""Propofol PK/PD: the Marsh, Schnider and Eleveld models with an effect site.

Three linear three-compartment mammillary models (central, fast and slow peripheral
compartments, elimination from the central one) with an effect compartment
(``dCe/dt = ke0 (Cp - Ce)``, negligible volume), in minutes, litres and mg (1 mg/L =
1 ug/mL):

- ``propofol_marsh``: Marsh et al. Br J Anaesth 1991;67:41-48, the adult parameter set of the
  Diprifusor (V1 0.228 L/kg, k10 0.119, k12 0.112, k13 0.0419, k21 0.055, k31 0.0033 /min) with
  the Diprifusor's ke0 0.26 /min (Absalom et al. Br J Anaesth 2009;103:26-37).
- ``propofol_schnider``: Schnider et al. Anesthesiology 1998;88:1170-1182 (Table 3: covariates
  age, weight, height and lean body mass by the James formula) with ke0 0.456 /min from
  Schnider et al. Anesthesiology 1999;90:1502-1516.
- ``propofol_eleveld``: Eleveld et al. Br J Anaesth 2018;120:942-959, the general-purpose model
  (age, post-menstrual age, weight, height, sex, opioid co-administration; fat-free mass by
  Al-Sallami) with its BIS model (Table 3), arterial sampling.

Parameters are the individual volumes and clearances (``v1_l`` ... ``ke0_per_min``, and for
Eleveld the BIS parameters); :func:`params_for` computes them from the covariates, refusing a
patient outside the population the source was built on (:class:`OutsidePopulationError`).
Coefficients live in ``data/propofol/models.toml`` with their citations.

Dosing is by ``infusion`` events (``drug: "propofol"``): ``duration`` 0 is an intravenous
bolus, added to the central compartment at its time (a jump, exact); otherwise ``amount_mg``
runs at a constant rate over the duration; ``every`` and ``count`` repeat it. Besides the ODE
path (:func:`medtwin.model.simulate`), :func:`closed_form` gives Cp and Ce exactly by
superposition of the tri-exponential unit responses (Bertrand & Mentre 2008).

>>> from medtwin.model import parse_scenario, simulate
>>> p = params_for("propofol_schnider", age_years=53, weight_kg=77, height_cm=177, sex="male")
>>> s = parse_scenario([{"type": "infusion", "drug": "propofol", "t_min": 0,
...                      "amount_mg": 100, "duration_min": 0}])
>>> r = simulate(PropofolSchnider, p, s, t_end=10, dt_out=0.1)
>>> ce = r.observables["ce_ug_ml"][0]
>>> round(float(r.times[ce.argmax()]), 1)  # time to peak effect after a bolus, min
1.6

References
----------
.. [1] Marsh B, White M, Morton N, Kenny GNC. Br J Anaesth 1991;67:41-48.
.. [2] Schnider TW et al. Anesthesiology 1998;88:1170-1182 (PK, Table 3).
.. [3] Schnider TW et al. Anesthesiology 1999;90:1502-1516 (PD, ke0).
.. [4] Eleveld DJ, Colin P, Absalom AR, Struys MMRF. Br J Anaesth 2018;120:942-959.
.. [5] Absalom AR, Mani V, De Smet T, Struys MMRF. Br J Anaesth 2009;103:26-37.
.. [6] Bertrand J, Mentre F. Mathematical expressions of the pharmacokinetic and
   pharmacodynamic models implemented in the Monolix software. 2008 (three-compartment
   closed forms).
.. [7] Al-Sallami HS et al. Clin Pharmacokinet 2015;54:1169-1178 (fat-free mass).
.. [8] James WPT. Research on obesity. London: HMSO, 1976 (lean body mass).
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, ClassVar, Literal

import numpy as np

from medtwin.model.base import (
    FloatArray,
    InputSchedule,
    Model,
    ModelError,
    Observable,
    OutsidePopulationError,
    Parameter,
    Prior,
    Variable,
)
from medtwin.model.events import Event, Scenario, ScenarioError

__all__ = [
    "MODELS",
    "PropofolEleveld",
    "PropofolMarsh",
    "PropofolSchnider",
    "closed_form",
    "doses",
    "eleveld_bis",
    "ffm_al_sallami_kg",
    "lbm_james_kg",
    "macro_constants",
    "params_for",
    "time_to_peak_effect_min",
]

_DATA = "data/propofol"

# parameter columns (shared by the three models; Eleveld adds the BIS parameters)
V1, V2, V3, CL, Q2, Q3, KE0 = range(7)
CE50, BIS0, GAMMA_LO, GAMMA_HI = range(7, 11)
# states
A1, A2, A3, CE, ELIM = range(5)
# inputs
RATE, BOLUS = 0, 1


@cache
def coefficients() -> dict[str, Any]:
    """The coefficients and citations of ``data/propofol/models.toml``."""
    root = resources.files("medtwin.pharmacology").joinpath(_DATA)
    return tomllib.loads(root.joinpath("models.toml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- covariates
def _finite(name: str, value: Any, *, zero: bool = False) -> float:
    """``value`` as a float, refused (naming ``name``) unless finite and > 0 (>= 0 with
    ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ModelError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0.0 or (v == 0.0 and not zero):
        raise ModelError(f"{name} must be a finite number {'>=' if zero else '>'} 0, got {value!r}")
    return v


def _sex(value: Any) -> Literal["male", "female"]:
    if value in ("male", "female"):
        return value  # type: ignore[no-any-return]
    raise ModelError(f"sex must be 'male' or 'female', got {value!r}")


def lbm_james_kg(weight_kg: float, height_cm: float, sex: str) -> float:
    """Lean body mass by the James formula (James 1976; as used by Schnider 1998):
    male ``1.1 W - 128 (W/H)^2``, female ``1.07 W - 148 (W/H)^2`` (W kg, H cm).

    >>> round(lbm_james_kg(77, 177, "male"), 1)
    60.5
    """
    c = coefficients()["james_lbm"]
    s = _sex(sex)
    a, b = (
        (c["male_weight_coef"], c["male_ratio_coef"])
        if s == "male"
        else (c["female_weight_coef"], c["female_ratio_coef"])
    )
    return float(a * weight_kg - b * (weight_kg / height_cm) ** 2)


def james_max_weight_kg(height_cm: float, sex: str) -> float:
    """The weight at which the James LBM stops rising with weight (``a H^2 / (2 b)``): beyond
    it the formula gives a *smaller* LBM for a heavier patient (and Schnider's clearance
    rises), the known failure of Schnider in obesity (Absalom 2009)."""
    c = coefficients()["james_lbm"]
    s = _sex(sex)
    a, b = (
        (c["male_weight_coef"], c["male_ratio_coef"])
        if s == "male"
        else (c["female_weight_coef"], c["female_ratio_coef"])
    )
    return float(a * height_cm**2 / (2.0 * b))


def ffm_al_sallami_kg(age_years: float, weight_kg: float, height_cm: float, sex: str) -> float:
    """Fat-free mass by Al-Sallami et al. 2015 (as used by Eleveld 2018):
    male ``(0.88 + 0.12 / (1 + (AGE/13.4)^-12.7)) * 9270 W / (6680 + 216 BMI)``, female
    ``(1.11 - 0.11 / (1 + (AGE/7.1)^-1.1)) * 9270 W / (8780 + 244 BMI)``.

    >>> round(ffm_al_sallami_kg(35, 70, 170, "male"), 4)  # Eleveld's reference individual
    54.4752
    """
    c = coefficients()["al_sallami_ffm"]
    k = "male" if _sex(sex) == "male" else "female"
    bmi = weight_kg / (height_cm / 100.0) ** 2
    a = c[f"{k}_a"]
    # at birth (AGE = 0) the maturation term (AGE/AGE50)^hill (hill < 0) is infinite: FFM = a ...
    ratio = age_years / c[f"{k}_age50"]
    mat = a if ratio <= 0.0 else a + (1.0 - a) / (1.0 + ratio ** c[f"{k}_hill"])
    return float(mat * c["numerator"] * weight_kg / (c[f"{k}_c"] + c[f"{k}_bmi"] * bmi))


def _check_range(model: str, what: str, value: float, lo: float, hi: float, source: str) -> None:
    if not lo <= value <= hi:
        raise OutsidePopulationError(
            f"{model}: {what} = {value:g} is outside the model's population "
            f"[{lo:g}, {hi:g}] ({source})"
        )


def _marsh(weight_kg: float, age_years: float) -> list[float]:
    c = coefficients()["marsh"]
    src = c["population_source"]
    _check_range(
        "propofol_marsh", "age_years", age_years, c["age_min_years"], c["age_max_years"], src
    )
    _check_range(
        "propofol_marsh", "weight_kg", weight_kg, c["weight_min_kg"], c["weight_max_kg"], src
    )
    v1 = c["v1_l_per_kg"] * weight_kg
    v2 = v1 * c["k12_per_min"] / c["k21_per_min"]
    v3 = v1 * c["k13_per_min"] / c["k31_per_min"]
    return [
        v1,
        v2,
        v3,
        c["k10_per_min"] * v1,
        c["k12_per_min"] * v1,
        c["k13_per_min"] * v1,
        c["ke0_per_min"],
    ]


def _schnider(age_years: float, weight_kg: float, height_cm: float, sex: str) -> list[float]:
    c = coefficients()["schnider"]
    src = c["population_source"]
    name = "propofol_schnider"
    _check_range(name, "age_years", age_years, c["age_min_years"], c["age_max_years"], src)
    _check_range(name, "weight_kg", weight_kg, c["weight_min_kg"], c["weight_max_kg"], src)
    w_max = james_max_weight_kg(height_cm, sex)
    if weight_kg > w_max:
        raise OutsidePopulationError(
            f"{name}: weight_kg = {weight_kg:g} is above {w_max:.1f} kg, where the James lean "
            f"body mass formula stops rising with weight for a {sex} of {height_cm:g} cm "
            f"(BMI {w_max / (height_cm / 100) ** 2:.1f}): Schnider's clearance would then rise "
            "paradoxically with obesity (James 1976; Absalom et al. Br J Anaesth 2009)"
        )
    lbm = lbm_james_kg(weight_kg, height_cm, sex)
    v2 = c["v2_l"] + c["v2_age_l_per_year"] * (age_years - c["age_ref_years"])
    cl = (
        c["cl_l_per_min"]
        + c["cl_weight_l_per_min_per_kg"] * (weight_kg - c["weight_ref_kg"])
        + c["cl_lbm_l_per_min_per_kg"] * (lbm - c["lbm_ref_kg"])
        + c["cl_height_l_per_min_per_cm"] * (height_cm - c["height_ref_cm"])
    )
    q2 = c["q2_l_per_min"] + c["q2_age_l_per_min_per_year"] * (age_years - c["age_ref_years"])
    if cl <= 0 or v2 <= 0 or q2 <= 0:
        raise OutsidePopulationError(
            f"{name}: the covariate equations give a non-positive volume or clearance"
        )
    return [c["v1_l"], v2, c["v3_l"], cl, q2, c["q3_l_per_min"], c["ke0_per_min"]]


def _sigmoid(x: float, e50: float, hill: float) -> float:
    return float(x**hill / (x**hill + e50**hill))


def _eleveld(
    age_years: float,
    weight_kg: float,
    height_cm: float,
    sex: str,
    opioids: bool,
    pma_weeks: float | None,
) -> list[float]:
    c = coefficients()["eleveld"]
    src = c["population_source"]
    name = "propofol_eleveld"
    _check_range(name, "age_years", age_years, c["age_min_years"], c["age_max_years"], src)
    _check_range(name, "weight_kg", weight_kg, c["weight_min_kg"], c["weight_max_kg"], src)
    pma = (
        age_years * c["weeks_per_year"] + c["pma_at_birth_weeks"]
        if pma_weeks is None
        else pma_weeks
    )
    if pma < c["pma_min_weeks"]:
        raise OutsidePopulationError(
            f"{name}: pma_weeks = {pma:g} is below {c['pma_min_weeks']:g} weeks ({src})"
        )
    age_ref, w_ref, h_ref = c["age_ref_years"], c["weight_ref_kg"], c["height_ref_cm"]
    pma_ref = age_ref * c["weeks_per_year"] + c["pma_at_birth_weeks"]

    def ageing(x: float) -> float:
        return math.exp(x * (age_years - age_ref))

    def opiates(x: float) -> float:  # f_opiates(x) = exp(x * AGE) with opioids, else 1
        return math.exp(x * age_years) if opioids else 1.0

    def central(w: float) -> float:
        return _sigmoid(w, c["theta12_v1_weight50_kg"], 1.0)

    cl_mat = _sigmoid(pma, c["theta8_cl_maturation_e50_weeks"], c["theta9_cl_maturation_slope"])
    cl_mat_ref = _sigmoid(
        pma_ref, c["theta8_cl_maturation_e50_weeks"], c["theta9_cl_maturation_slope"]
    )
    q3_mat = _sigmoid(pma, c["theta14_q3_maturation_e50_weeks"], 1.0)
    q3_mat_ref = _sigmoid(pma_ref, c["theta14_q3_maturation_e50_weeks"], 1.0)
    ffm = ffm_al_sallami_kg(age_years, weight_kg, height_cm, sex)
    ffm_ref = ffm_al_sallami_kg(age_ref, w_ref, h_ref, "male")
    v1 = c["theta1_v1ref_l"] * central(weight_kg) / central(w_ref)
    v2 = c["theta2_v2ref_l"] * weight_kg / w_ref * ageing(c["theta10_v2_ageing_per_year"])
    v3 = c["theta3_v3ref_l"] * ffm / ffm_ref * opiates(c["theta13_v3_opioid_per_year"])
    cl_ref = (
        c["theta4_clref_male_l_per_min"] if sex == "male" else c["theta15_clref_female_l_per_min"]
    )
    cl = (
        cl_ref
        * (weight_kg / w_ref) ** 0.75
        * cl_mat
        / cl_mat_ref
        * opiates(c["theta11_cl_opioid_per_year"])
    )
    q2 = (
        c["theta5_q2ref_l_per_min"]
        * (v2 / c["theta2_v2ref_l"]) ** 0.75
        * (1.0 + c["theta16_q2_maturation"] * (1.0 - q3_mat))
    )
    q3 = c["theta6_q3ref_l_per_min"] * (v3 / c["theta3_v3ref_l"]) ** 0.75 * q3_mat / q3_mat_ref
    ke0 = c["pd_ke0_arterial_per_min"] * (weight_kg / w_ref) ** -0.25
    ce50 = c["pd_ce50_ug_ml"] * ageing(c["pd_ce50_ageing_per_year"])
    return [
        v1,
        v2,
        v3,
        cl,
        q2,
        q3,
        ke0,
        ce50,
        c["pd_bis0"],
        c["pd_gamma_below_ce50"],
        c["pd_gamma_above_ce50"],
    ]


def params_for(
    model: str,
    *,
    age_years: float,
    weight_kg: float,
    height_cm: float | None = None,
    sex: str | None = None,
    opioids: bool = False,
    pma_weeks: float | None = None,
) -> FloatArray:
    """The individual parameters (``[1, P]``) of ``model`` for one patient.

    Marsh needs weight (age is checked against its population); Schnider also height and
    sex; Eleveld also ``opioids`` (co-administered: lower clearance and V3) and, for
    neonates, ``pma_weeks`` (post-menstrual age; default ``52 * age + 40``). Raises
    :class:`ModelError` naming a bad or missing covariate and
    :class:`OutsidePopulationError` outside the source's population.

    >>> p = params_for("propofol_eleveld", age_years=35, weight_kg=70, height_cm=170, sex="male")
    >>> [round(float(x), 2) for x in p[0, :7]]  # V1 V2 V3 L, CL Q2 Q3 L/min, ke0 /min
    [6.28, 25.5, 273.0, 1.79, 1.83, 1.11, 0.15]
    """
    name = model.lower()
    age = _finite("age_years", age_years, zero=True)
    weight = _finite("weight_kg", weight_kg)
    if not isinstance(opioids, bool):
        raise ModelError(f"opioids must be true or false, got {opioids!r}")
    if name == "propofol_marsh":
        row = _marsh(weight, age)
    elif name in ("propofol_schnider", "propofol_eleveld"):
        if height_cm is None:
            raise ModelError(f"{name} needs height_cm")
        if sex is None:
            raise ModelError(f"{name} needs sex ('male' or 'female')")
        height = _finite("height_cm", height_cm)
        s = _sex(sex)
        if name == "propofol_schnider":
            row = _schnider(age, weight, height, s)
        else:
            pma = None if pma_weeks is None else _finite("pma_weeks", pma_weeks)
            row = _eleveld(age, weight, height, s, opioids, pma)
    else:
        raise ModelError(
            f"unknown propofol model {model!r} "
            "(known: propofol_eleveld, propofol_marsh, propofol_schnider)"
        )
    return np.array([row], dtype=np.float64)


# ---------------------------------------------------------------------------- kernels
def _rhs_row(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    """Three-compartment mammillary PK with an effect compartment (amounts in mg, Ce in
    mg/L): ``dA1 = R - (CL + Q2 + Q3)/V1 A1 + Q2/V2 A2 + Q3/V3 A3``, ``dA2 = Q2 (A1/V1 -
    A2/V2)``, ``dA3 = Q3 (A1/V1 - A3/V3)``, ``dCe = ke0 (A1/V1 - Ce)``, eliminated
    ``dAe = CL A1/V1``."""
    c1 = x[0] / p[0]
    c2 = x[1] / p[1]
    c3 = x[2] / p[2]
    f2 = p[4] * (c1 - c2)
    f3 = p[5] * (c1 - c3)
    out = p[3] * c1
    dx[0] = u[0] - out - f2 - f3
    dx[1] = f2
    dx[2] = f3
    dx[3] = p[6] * (c1 - x[3])
    dx[4] = out


def _jump_row(x: Any, p: Any, u_before: Any, u_after: Any) -> None:
    """An intravenous bolus: ``u_after[1]`` mg enter the central compartment at the start of
    its schedule row (each bolus time starts a row of its own)."""
    x[0] += u_after[1]


# ---------------------------------------------------------------------------- observables
def _cp(states: FloatArray, params: FloatArray) -> FloatArray:
    return states[:, :, A1] / params[:, None, V1]


def _ce(states: FloatArray, params: FloatArray) -> FloatArray:
    return states[:, :, CE].copy()


def eleveld_bis(ce_ug_ml: FloatArray, params: FloatArray) -> FloatArray:
    """BIS from the effect-site concentration (Eleveld 2018, Table 3):
    ``BIS = BIS0 (1 - Ce^g / (Ce^g + Ce50^g))`` with ``g`` = 1.89 for Ce <= Ce50 and 1.47
    above (pinned reading; see the model card). ``params`` is ``[N, P]``, ``ce`` ``[N, T]``.

    >>> p = params_for("propofol_eleveld", age_years=35, weight_kg=70, height_cm=170, sex="male")
    >>> float(eleveld_bis(np.array([[0.0, 3.08]]), p)[0, 1])  # Ce = Ce50: half of 93
    46.5
    """
    ce = np.maximum(np.asarray(ce_ug_ml, dtype=np.float64), 0.0)
    ce50 = params[:, None, CE50]
    gamma = np.where(ce <= ce50, params[:, None, GAMMA_LO], params[:, None, GAMMA_HI])
    r = (ce / ce50) ** gamma
    return np.asarray(params[:, None, BIS0] * (1.0 - r / (1.0 + r)), dtype=np.float64)


def _bis(states: FloatArray, params: FloatArray) -> FloatArray:
    return eleveld_bis(states[:, :, CE], params)


# ---------------------------------------------------------------------------- events
def doses(events: Sequence[Event], t_end: float | None = None) -> list[tuple[float, float, float]]:
    """``(start_min, duration_min, amount_mg)`` of every propofol dose (repeats expanded),
    refusing events that are not propofol infusions or that ask for a steady state."""
    out: list[tuple[float, float, float]] = []
    for e in events:
        if e.type != "infusion":
            raise ScenarioError(f"event {e.index}: propofol models take only 'infusion' events")
        drug = str(e["drug"]).strip().lower()
        if drug != "propofol":
            raise ScenarioError(
                f"event {e.index} (infusion): field 'drug' = {e['drug']!r}: this model is for propofol"
            )
        if e.get("steady_state"):
            raise ScenarioError(
                f"event {e.index} (infusion): field 'steady_state': propofol models start "
                "drug-free (give the doses instead)"
            )
        amount = float(e["amount_mg"])
        for start, duration in e.doses():
            if t_end is not None and start > t_end:
                continue
            out.append((float(start), float(duration), amount))
    return out


# ---------------------------------------------------------------------------- models
def _pk_parameters(source: str) -> tuple[Parameter, ...]:
    c = coefficients()["eleveld"]
    specs = [
        ("v1_l", "L", "central volume", 0.01, 200.0, 6.28, c["omega2_v1"], "V1"),
        ("v2_l", "L", "fast peripheral volume", 0.01, 1000.0, 25.5, c["omega2_v2"], "V2"),
        ("v3_l", "L", "slow peripheral volume", 0.1, 5000.0, 273.0, c["omega2_v3"], "V3"),
        ("cl_l_per_min", "L/min", "elimination clearance", 1e-5, 20.0, 1.79, c["omega2_cl"], "CL"),
        (
            "q2_l_per_min",
            "L/min",
            "fast intercompartmental clearance",
            1e-5,
            30.0,
            1.75,
            c["omega2_q2"],
            "Q2",
        ),
        (
            "q3_l_per_min",
            "L/min",
            "slow intercompartmental clearance",
            1e-5,
            20.0,
            1.11,
            c["omega2_q3"],
            "Q3",
        ),
        (
            "ke0_per_min",
            "1/min",
            "effect-site equilibration rate constant",
            0.01,
            10.0,
            0.146,
            c["omega2_ke0"],
            "ke0",
        ),
    ]
    return tuple(
        Parameter(
            name=n,
            unit=unit,
            description=desc,
            lower=lo,
            upper=hi,
            prior=Prior(
                "lognormal",
                math.log(typ),
                math.sqrt(om2),
                "Eleveld 2018 reference individual and inter-individual variability (omega^2); "
                "use params_for for a patient's typical values",
            ),
            source=source,
            symbol=sym,
        )
        for n, unit, desc, lo, hi, typ, om2, sym in specs
    )


def _pd_parameters(source: str) -> tuple[Parameter, ...]:
    return (
        Parameter(
            "ce50_ug_ml",
            "ug/mL",
            "effect-site concentration for half the BIS effect",
            0.1,
            20.0,
            Prior("lognormal", math.log(3.08), 0.0, "Eleveld 2018 Table 3"),
            source,
            "Ce50",
        ),
        Parameter(
            "bis0",
            "1",
            "baseline (awake) BIS",
            50.0,
            100.0,
            Prior("fixed", 93.0, 0.0, "Eleveld 2018 Table 3"),
            source,
            "BIS0",
        ),
        Parameter(
            "gamma_below_ce50",
            "1",
            "Hill coefficient for Ce <= Ce50",
            0.1,
            10.0,
            Prior("fixed", 1.89, 0.0, "Eleveld 2018 Table 3"),
            source,
            "gamma",
        ),
        Parameter(
            "gamma_above_ce50",
            "1",
            "Hill coefficient for Ce > Ce50",
            0.1,
            10.0,
            Prior("fixed", 1.47, 0.0, "Eleveld 2018 Table 3"),
            source,
            "gamma2",
        ),
    )


def _amount(name: str, description: str, symbol: str) -> Variable:
    return Variable(name, "mg", description, symbol, nonnegative=True)


_STATES = (
    _amount("a1_mg", "propofol in the central compartment", "A1"),
    _amount("a2_mg", "propofol in the fast peripheral compartment", "A2"),
    _amount("a3_mg", "propofol in the slow peripheral compartment", "A3"),
    Variable("ce_ug_ml", "ug/mL", "effect-site concentration", "Ce", nonnegative=True),
    _amount("eliminated_mg", "propofol eliminated so far (for the mass balance)", "Ael"),
)
_INPUTS = (
    Variable("rate_mg_per_min", "mg/min", "infusion rate into the central compartment"),
    Variable("bolus_mg", "mg", "bolus given at the start of the schedule row (a jump)"),
)
_PK_OBS = (
    Observable("cp_ug_ml", "ug/mL", "plasma (central) concentration A1 / V1 (mg/L)", (), _cp),
    Observable("ce_ug_ml", "ug/mL", "effect-site concentration", (), _ce),
)


class _Propofol(Model):
    """Shared dynamics of the three propofol models."""

    time_unit: ClassVar[Literal["min", "h", "d"]] = "min"
    event_types: ClassVar[frozenset[str]] = frozenset({"infusion"})
    states: ClassVar[tuple[Variable, ...]] = _STATES
    inputs: ClassVar[tuple[Variable, ...]] = _INPUTS
    default_rtol: ClassVar[float] = 1e-8
    default_atol: ClassVar[float] = 1e-8
    """1e-8 mg or ug/mL: far below any measurable propofol level."""
    rhs_row: ClassVar[Any] = staticmethod(_rhs_row)
    jump_row: ClassVar[Any] = staticmethod(_jump_row)
    compiled_module: ClassVar[str | None] = "medtwin.pharmacology._propofol_numba"

    @classmethod
    def params_for(cls, **patient: Any) -> FloatArray:
        """:func:`params_for` for this model."""
        return params_for(cls.name, **patient)

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """The patients of ``data/propofol/presets.csv`` through :func:`params_for`."""
        return _presets(cls.name)

    @classmethod
    def check_population(cls, patient: Mapping[str, Any]) -> None:
        """Refuse a patient outside the model's source population (age ``age_y``, weight
        ``weight_kg``, height ``height_m``, ``sex``), as :func:`params_for` does."""
        age, weight = patient.get("age_y"), patient.get("weight_kg")
        if age is None or weight is None:
            return
        height = patient.get("height_m")
        sex = patient.get("sex")
        if cls.name != "propofol_marsh" and (height is None or sex not in ("male", "female")):
            return
        params_for(
            cls.name,
            age_years=age,
            weight_kg=weight,
            height_cm=None if height is None else float(height) * 100.0,
            sex=sex,
        )

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """Drug-free."""
        return np.zeros((np.atleast_2d(params).shape[0], len(cls.states)))

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        """Infusion rates (summed where infusions overlap) and boluses, each bolus time the
        start of a row of its own."""
        given = doses(events, t_end)
        cuts = {0.0, float(t_end)}
        for start, duration, _ in given:
            cuts.add(start)
            if start + duration < t_end:
                cuts.add(start + duration)
        bounds = np.array(sorted(cuts))
        starts = bounds[:-1]
        values = np.zeros((len(starts), 1, len(cls.inputs)))
        for start, duration, amount in given:
            if duration == 0.0:
                values[starts == start, 0, BOLUS] += amount
            else:
                on = (starts >= start) & (starts < start + duration)
                values[on, 0, RATE] += amount / duration
        return InputSchedule(bounds, values)


class PropofolMarsh(_Propofol):
    """Marsh 1991 (Diprifusor) with ke0 0.26 /min; see the module docstring."""

    name: ClassVar[str] = "propofol_marsh"
    version: ClassVar[str] = "1.0.0"
    title: ClassVar[str] = "Propofol, Marsh 1991 (Diprifusor), ke0 0.26 /min"
    references: ClassVar[tuple[str, ...]] = (
        "Marsh B, White M, Morton N, Kenny GNC. Br J Anaesth 1991;67:41-48",
        "Absalom AR, Mani V, De Smet T, Struys MMRF. Br J Anaesth 2009;103:26-37 (ke0 0.26)",
    )
    parameters: ClassVar[tuple[Parameter, ...]] = _pk_parameters("Marsh 1991 (data/propofol)")
    observables: ClassVar[tuple[Observable, ...]] = _PK_OBS


class PropofolSchnider(_Propofol):
    """Schnider 1998/1999 with ke0 0.456 /min; see the module docstring."""

    name: ClassVar[str] = "propofol_schnider"
    version: ClassVar[str] = "1.0.0"
    title: ClassVar[str] = "Propofol, Schnider 1998 (PK) and 1999 (ke0 0.456 /min)"
    references: ClassVar[tuple[str, ...]] = (
        "Schnider TW et al. Anesthesiology 1998;88:1170-1182",
        "Schnider TW et al. Anesthesiology 1999;90:1502-1516",
        "James WPT. Research on obesity. HMSO 1976 (lean body mass)",
    )
    parameters: ClassVar[tuple[Parameter, ...]] = _pk_parameters("Schnider 1998 (data/propofol)")
    observables: ClassVar[tuple[Observable, ...]] = _PK_OBS


class PropofolEleveld(_Propofol):
    """Eleveld 2018 PK-PD (arterial) with BIS; see the module docstring."""

    name: ClassVar[str] = "propofol_eleveld"
    version: ClassVar[str] = "1.0.0"
    title: ClassVar[str] = "Propofol, Eleveld 2018 general-purpose PK-PD model with BIS"
    references: ClassVar[tuple[str, ...]] = (
        "Eleveld DJ, Colin P, Absalom AR, Struys MMRF. Br J Anaesth 2018;120:942-959",
        "Al-Sallami HS et al. Clin Pharmacokinet 2015;54:1169-1178 (fat-free mass)",
    )
    parameters: ClassVar[tuple[Parameter, ...]] = _pk_parameters(
        "Eleveld 2018 Table 2 (data/propofol)"
    ) + _pd_parameters("Eleveld 2018 Table 3 (data/propofol)")
    observables: ClassVar[tuple[Observable, ...]] = (
        *_PK_OBS,
        Observable(
            "bis",
            "1",
            "bispectral index from Ce (Eleveld 2018 Table 3; monitor delay not modelled)",
            (),
            _bis,
        ),
    )


MODELS = (PropofolEleveld, PropofolMarsh, PropofolSchnider)


@cache
def _preset_rows() -> list[dict[str, str]]:
    root = resources.files("medtwin.pharmacology").joinpath(_DATA)
    text = root.joinpath("presets.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@cache
def _presets(model: str) -> dict[str, FloatArray]:
    out: dict[str, FloatArray] = {}
    for row in _preset_rows():
        try:
            p = params_for(
                model,
                age_years=float(row["age_years"]),
                weight_kg=float(row["weight_kg"]),
                height_cm=float(row["height_cm"]),
                sex=row["sex"],
                opioids=row["opioids"] == "true",
            )
        except OutsidePopulationError:
            continue
        out[row["name"]] = p[0]
    return out


# ---------------------------------------------------------------------------- closed form
def macro_constants(params: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Disposition rate constants ``lambda`` (1/min, descending) and the unit-bolus plasma
    coefficients ``A`` (1/L: ``Cp(t) = sum A_i exp(-lambda_i t)`` per mg), from the roots of
    the characteristic cubic in closed form (Bertrand & Mentre 2008, three-compartment
    model). ``params`` ``[P]`` gives ``[3]`` each, ``[N, P]`` gives ``[N, 3]``.

    >>> lam, a = macro_constants(params_for("propofol_marsh", age_years=40, weight_kg=70)[0])
    >>> [round(float(x), 4) for x in lam]
    [0.2987, 0.0302, 0.0024]
    """
    arr = np.asarray(params, dtype=np.float64)
    p = np.atleast_2d(arr)
    v1 = p[:, V1]
    k10, k12, k13 = p[:, CL] / v1, p[:, Q2] / v1, p[:, Q3] / v1
    k21, k31 = p[:, Q2] / p[:, V2], p[:, Q3] / p[:, V3]
    a0 = k10 * k21 * k31
    a1 = k10 * k31 + k21 * k31 + k21 * k13 + k10 * k21 + k31 * k12
    a2 = k10 + k12 + k13 + k21 + k31
    pp = a1 - a2 * a2 / 3.0
    qq = 2.0 * a2**3 / 27.0 - a1 * a2 / 3.0 + a0
    r1 = np.sqrt(-(pp**3) / 27.0)
    phi = np.arccos(np.clip(-qq / (2.0 * r1), -1.0, 1.0)) / 3.0
    r2 = 2.0 * np.exp(np.log(r1) / 3.0)
    lam = np.stack(
        [-(np.cos(phi + k * 2.0 * np.pi / 3.0) * r2 - a2 / 3.0) for k in range(3)], axis=1
    )
    lam = -np.sort(-lam, axis=1)
    coef = np.empty_like(lam)
    for i in range(3):
        j, k = [m for m in range(3) if m != i]
        li = lam[:, i]
        coef[:, i] = (k21 - li) * (k31 - li) / ((lam[:, j] - li) * (lam[:, k] - li)) / v1
    if arr.ndim == 1:
        return lam[0], coef[0]
    return lam, coef


def _responses(
    tau: FloatArray, lam: FloatArray, a: FloatArray, ke0: FloatArray, infusion: bool
) -> tuple[FloatArray, FloatArray]:
    """Cp and Ce (``[N, T]``) ``tau`` (``[T]``) after a 1 mg bolus or the start of a 1 mg/min
    infusion that runs on (0 before it); ``lam``, ``a`` ``[N, 3]``, ``ke0`` ``[N]``."""
    t = np.maximum(tau, 0.0)[None, :, None]
    lam3, a3, k3 = lam[:, None, :], a[:, None, :], ke0[:, None, None]
    b = a3 * k3 / (k3 - lam3)
    el, ek = np.exp(-lam3 * t), np.exp(-k3 * t)
    if infusion:
        cp = (a3 / lam3 * (1.0 - el)).sum(axis=2)
        ce = (b * ((1.0 - el) / lam3 - (1.0 - ek) / k3)).sum(axis=2)
        return cp, ce
    on = (tau >= 0.0).astype(np.float64)[None, :]
    return (a3 * el).sum(axis=2) * on, (b * (el - ek)).sum(axis=2) * on


def closed_form(
    params: FloatArray, scenario: Scenario | Sequence[Event], times: Sequence[float] | FloatArray
) -> dict[str, FloatArray]:
    """Cp and Ce (``[N, T]``, ug/mL) at ``times`` (min) by superposition of the exact
    unit responses: a bolus ``D`` at ``tb`` adds ``D g(t - tb)``, an infusion at rate ``R``
    over ``[ts, te]`` adds ``R (G(t - ts) - G(t - te))``, with ``g`` the tri-exponential
    unit-bolus response and ``G`` its integral (Bertrand & Mentre 2008; for Ce the effect
    compartment's convolution). Values at a bolus time are those just after it, as in the
    ODE path. Vectorised over the N parameter rows. Assumes ``ke0`` differs from the three
    disposition rate constants.
    """
    events = scenario.events if isinstance(scenario, Scenario) else tuple(scenario)
    t = np.asarray(times, dtype=np.float64)
    p = np.atleast_2d(np.asarray(params, dtype=np.float64))
    lam, a = macro_constants(p)
    ke0 = p[:, KE0]
    cp_out = np.zeros((p.shape[0], t.size))
    ce_out = np.zeros((p.shape[0], t.size))
    for start, duration, amount in doses(events):
        if duration == 0.0:
            cp, ce = _responses(t - start, lam, a, ke0, infusion=False)
            cp_out += amount * cp
            ce_out += amount * ce
        else:
            rate = amount / duration
            cp1, ce1 = _responses(t - start, lam, a, ke0, infusion=True)
            cp2, ce2 = _responses(t - start - duration, lam, a, ke0, infusion=True)
            cp_out += rate * (cp1 - cp2)
            ce_out += rate * (ce1 - ce2)
    return {"cp_ug_ml": cp_out, "ce_ug_ml": ce_out}


def time_to_peak_effect_min(params: FloatArray) -> float:
    """Time (min) from a bolus to the peak of Ce for one parameter row (the ``tpeak`` by which
    ke0 is often quoted), from the closed form, to 1e-6 min."""
    lam, a = macro_constants(params)
    ke0 = float(np.asarray(params, dtype=np.float64).reshape(-1)[KE0])
    b = a * ke0 / (ke0 - lam)

    def slope(x: float) -> float:
        return float((b * (-lam * np.exp(-lam * x) + ke0 * np.exp(-ke0 * x))).sum())

    lo, hi = 1e-9, 60.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if slope(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-7:
            break
    return 0.5 * (lo + hi)
