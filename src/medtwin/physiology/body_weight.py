"""The Hall et al. 2011 adult body-weight and energy-balance model.

Body weight of an adult as the sum of fat mass F, lean tissue L, glycogen G with its water and
the extracellular fluid ECF, driven by energy intake, diet composition, sodium and physical
activity, after Hall KD, Sacks G, Chandramohan D, et al., *Quantification of the effect of
energy imbalance on bodyweight*, Lancet 2011;378:826-837 and its web appendix ("Dynamic
mathematical model of body weight change in adults"; the paper's web simulator grew into the
NIH Body Weight Planner, whose code differs in details). See ``docs/models/body-weight.md`` for
the equations, sources, validation and the valid population.

The model runs in days (``time_unit = "d"``). It starts at the person's baseline body
composition: maintenance intake EI(0) = PAL x RMR, no adaptive thermogenesis, glycogen 0.5 kg.
As in the appendix, the person eats EI(0) (energy balance) unless told otherwise; medtwin adds
a *habitual intake* for fitting a weight history (``intake_factor``, ``intake_factor_end``,
``intake_ramp_d``: the intake goes linearly from ``intake_factor`` x EI(0) to
``intake_factor_end`` x EI(0) over ``intake_ramp_d`` days and stays there; all 1 and 0 by
default, the appendix's balance).
Inputs come as events (normalised to minutes by :mod:`medtwin.model.events`; the schedule
converts to days):

- ``diet``: ``intake_kcal_per_day`` (absolute) or ``intake_change_kcal_per_day`` (signed, from
  the baseline), optional ``carbs_pct`` (% of energy from carbohydrate: glycogen and ECF) and
  ``sodium_mg_per_day`` (ECF). A diet event is the whole diet from its time on: a field it
  does not give is the baseline's (the person's carbohydrate fraction and sodium intake). A
  change counts from the habitual intake; an absolute intake replaces it.
- ``activity``: ``physical_activity_level`` (the new PAL) or ``activity_change_pct`` (signed
  change of the physical-activity expenditure coefficient delta from its baseline), from its
  time on.

The model answers for adults only (age 18-100 y, BMI 16-60 kg/m2; ``[population]`` in
``data/body_weight/parameters.toml``): parameters outside are refused with the reason
(:class:`OutsidePopulationError`).

References
----------
.. [1] Hall KD, Sacks G, Chandramohan D, Chow CC, Wang YC, Gortmaker SL, Swinburn BA.
   Quantification of the effect of energy imbalance on bodyweight. Lancet 2011;378:826-837,
   and its web appendix (eq 1 glycogen, eq 3 energy partitioning, eq 9 energy expenditure).
.. [2] Mifflin MD, St Jeor ST, Hill LA, Scott BJ, Daugherty SA, Koh YO. A new predictive
   equation for resting energy expenditure in healthy individuals. Am J Clin Nutr
   1990;51:241-247.
.. [3] Forbes GB. Body fat content influences the body composition response to nutrition and
   exercise. Ann N Y Acad Sci 2000;904:359-365.
.. [4] Camacho-Garcia-Formenti D, Zepeda-Tello R. bw: dynamic body weight models for children
   and adults (R package, MIT), ``src/adult_weight.cpp``: an independent implementation of [1]
   used for validation.

>>> from medtwin.model import parse_scenario, simulate
>>> p = Hall2011BodyWeight.preset("man_40y_180cm_90kg")
>>> s = parse_scenario([{"type": "diet", "t_d": 0, "intake_change_kcal_per_day": -500}])
>>> r = simulate(Hall2011BodyWeight, p, s, t_end=365, dt_out=365)
>>> [round(float(w), 1) for w in r.observables["weight_kg"][0]]
[90.0, 76.2]
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
    TIME_UNIT_MIN,
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
from medtwin.model.events import Event
from medtwin.record.context import PUERPERIUM_DAYS, pregnancy_at_date

__all__ = [
    "MODELS",
    "PUERPERIUM_DAYS",
    "Hall2011BodyWeight",
    "OutsidePopulationError",
    "baseline_body_fat_fraction",
    "baseline_ecf_l",
    "mifflin_st_jeor_rmr_kcal_per_day",
    "params_for",
    "population_exit_day",
    "valid_population",
]

_DATA = "data/body_weight"
KJ_PER_KCAL = 4.184
"""Thermochemical calorie: 1 kcal = 4.184 kJ."""

_CONVERSIONS = {
    ("MJ/kg", "kcal/kg"): 1000.0 / KJ_PER_KCAL,
    ("kJ/kg", "kcal/kg"): 1.0 / KJ_PER_KCAL,
    ("kJ/kg/d", "kcal/kg/d"): 1.0 / KJ_PER_KCAL,
    ("g/L", "mg/L"): 1000.0,
}
"""Factor from a constant's published unit to medtwin's unit (same unit: 1)."""


@cache
def _meta() -> dict[str, Any]:
    root = resources.files("medtwin.physiology").joinpath(_DATA)
    return tomllib.loads(root.joinpath("parameters.toml").read_text(encoding="utf-8"))


def _constant_value(spec: Mapping[str, Any]) -> float:
    units = (str(spec["published_unit"]), str(spec["unit"]))
    if units[0] == units[1]:
        return float(spec["published"])
    if units not in _CONVERSIONS:
        raise RuntimeError(f"{_DATA}/parameters.toml: {spec['name']}: no conversion {units}")
    return float(spec["published"]) * _CONVERSIONS[units]


def _parameters() -> tuple[Parameter, ...]:
    meta = _meta()
    out = []
    for spec in meta["person"]:
        prior = spec["prior"]
        out.append(
            Parameter(
                name=spec["name"],
                unit=spec["unit"],
                description=spec["description"],
                lower=float(spec["lower"]),
                upper=float(spec["upper"]),
                prior=Prior(
                    prior["kind"], float(prior["loc"]), float(prior.get("scale", 0.0)), "medtwin"
                ),
                source=spec["source"],
                symbol=spec["symbol"],
            )
        )
    for spec in meta["constant"]:
        value = _constant_value(spec)
        out.append(
            Parameter(
                name=spec["name"],
                unit=spec["unit"],
                description=f"{spec['description']} ({spec['published']} {spec['published_unit']})",
                lower=value / 2.0,
                upper=value * 2.0,
                prior=Prior("fixed", value, 0.0, spec["source"]),
                source=spec["source"],
                symbol=spec["symbol"],
            )
        )
    return tuple(out)


PARAMETER_ORDER = (
    "female",
    "age_y",
    "height_m",
    "weight_kg",
    "fat_fraction",
    "rmr_kcal_per_day",
    "ecf_l",
    "physical_activity_level",
    "intake_factor",
    "intake_factor_end",
    "intake_ramp_d",
    "carbs_fraction",
    "sodium_mg_per_day",
    "rho_f_kcal_per_kg",
    "rho_l_kcal_per_kg",
    "rho_g_kcal_per_kg",
    "gamma_f_kcal_per_kg_day",
    "gamma_l_kcal_per_kg_day",
    "eta_f_kcal_per_kg",
    "eta_l_kcal_per_kg",
    "beta_tef",
    "beta_at",
    "tau_at_d",
    "forbes_c_kg",
    "glycogen_baseline_kg",
    "glycogen_water_kg_per_kg",
    "sodium_ecf_mg_per_l",
    "xi_na_mg_per_l_day",
    "xi_ci_mg_per_day",
)
"""Column order of a parameter array, fixed in code: the compiled kernels read columns by
these positions (numba freezes them into its on-disk cache, which only notices changes to this
file), so the data file must list the parameters in this order (checked on import)."""

PARAMETERS = _parameters()
if tuple(p.name for p in PARAMETERS) != PARAMETER_ORDER:
    raise RuntimeError(
        f"medtwin/physiology/{_DATA}/parameters.toml lists the parameters in another order "
        f"than body_weight.PARAMETER_ORDER: {[p.name for p in PARAMETERS]}"
    )
_P = {name: i for i, name in enumerate(PARAMETER_ORDER)}
FEMALE = _P["female"]
AGE = _P["age_y"]
HEIGHT = _P["height_m"]
WEIGHT = _P["weight_kg"]
FAT_FRACTION = _P["fat_fraction"]
RMR = _P["rmr_kcal_per_day"]
ECF = _P["ecf_l"]
PAL = _P["physical_activity_level"]
FACTOR0 = _P["intake_factor"]
FACTOR1 = _P["intake_factor_end"]
RAMP = _P["intake_ramp_d"]
CARBS = _P["carbs_fraction"]
SODIUM = _P["sodium_mg_per_day"]
RHO_F = _P["rho_f_kcal_per_kg"]
RHO_L = _P["rho_l_kcal_per_kg"]
RHO_G = _P["rho_g_kcal_per_kg"]
GAMMA_F = _P["gamma_f_kcal_per_kg_day"]
GAMMA_L = _P["gamma_l_kcal_per_kg_day"]
ETA_F = _P["eta_f_kcal_per_kg"]
ETA_L = _P["eta_l_kcal_per_kg"]
BETA_TEF = _P["beta_tef"]
BETA_AT = _P["beta_at"]
TAU_AT = _P["tau_at_d"]
FORBES = _P["forbes_c_kg"]
G_INIT = _P["glycogen_baseline_kg"]
G_WATER = _P["glycogen_water_kg_per_kg"]
NA_ECF = _P["sodium_ecf_mg_per_l"]
XI_NA = _P["xi_na_mg_per_l_day"]
XI_CI = _P["xi_ci_mg_per_day"]

# inputs
U_DEI = 0  # change of energy intake from the baseline, kcal/d
U_CARBS = 1  # fraction of energy intake from carbohydrate
U_DNA = 2  # change of sodium intake from the baseline, mg/d
U_DELTA = 3  # physical-activity expenditure per kg of body weight, kcal/kg/d
U_HABIT = 4  # 1: the habitual intake (intake_factor ...) applies; 0: an absolute diet replaced it

# states
S_F, S_L, S_G, S_ECF, S_AT, S_DEI, S_CARBS, S_DELTA, S_FI, S_HABIT = range(10)


def _rhs_row(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    """Right-hand side of one adult ([1] web appendix), per day.

    ``x``: F, L, G (kg), ECF (L), AT (kcal/d), three held inputs, the habitual intake ramp
    and a fourth held input; ``p``: parameters; ``u``: inputs (dEI kcal/d, carbohydrate
    fraction, dNa mg/d, delta kcal/kg/d, habitual intake on/off). The intake change from the
    baseline is the events' dEI plus the habitual intake's own gap, EI(0) (factor - 1), while
    no absolute diet has replaced it; the factor goes linearly from ``intake_factor`` to
    ``intake_factor_end`` over ``intake_ramp_d`` days and stays there (:func:`_habit`;
    medtwin's extension for fitting a weight history, 1 throughout in the appendix).
    """
    rho_f = p[RHO_F]
    rho_l = p[RHO_L]
    rho_g = p[RHO_G]
    gamma_f = p[GAMMA_F]
    gamma_l = p[GAMMA_L]
    beta_tef = p[BETA_TEF]
    water = 1.0 + p[G_WATER]
    g0 = p[G_INIT]
    # baseline, in energy balance (appendix, initial conditions)
    bw0 = p[WEIGHT]
    f0 = p[FAT_FRACTION] * bw0
    ecf0 = p[ECF]
    l0 = bw0 - f0 - ecf0 - water * g0
    ei0 = p[PAL] * p[RMR]
    delta0 = ((1.0 - beta_tef) * p[PAL] - 1.0) * p[RMR] / bw0
    k = ei0 - gamma_f * f0 - gamma_l * l0 - delta0 * bw0
    ci_b = p[CARBS] * ei0
    k_g = ci_b / (g0 * g0)
    f = x[S_F]
    lean = x[S_L]
    g = x[S_G]
    ecf = x[S_ECF]
    at = x[S_AT]
    # the habitual intake factor: the ramp state held between its two ends (it stays at
    # intake_factor_end once the ramp has passed it, wherever a simulation starts)
    f_lo = min(p[FACTOR0], p[FACTOR1])
    f_hi = max(p[FACTOR0], p[FACTOR1])
    habit = min(max(x[S_FI], f_lo), f_hi)
    dei = u[U_DEI] + u[U_HABIT] * ei0 * (habit - 1.0)
    ei = ei0 + dei
    ci = u[U_CARBS] * ei
    # glycogen ([1] eq 1): rho_G dG/dt = CI - kG G^2
    dg = (ci - k_g * g * g) / rho_g
    # extracellular fluid ([1] appendix): [Na] dECF/dt = dNa - xiNa (ECF - ECF0) - xiCI (1 - CI/CIb)
    dx[S_ECF] = (u[U_DNA] - p[XI_NA] * (ecf - ecf0) - p[XI_CI] * (1.0 - ci / ci_b)) / p[NA_ECF]
    # adaptive thermogenesis ([1] appendix): tauAT dAT/dt = betaAT dEI - AT
    dx[S_AT] = (p[BETA_AT] * dei - at) / p[TAU_AT]
    # energy partitioning ([1] eq 3; Forbes [3]): p = C / (C + F), C = 10.4 kg rho_L / rho_F
    c = p[FORBES] * rho_l / rho_f
    share = c / (c + f)
    a = share * p[ETA_L] / rho_l + (1.0 - share) * p[ETA_F] / rho_f
    # energy expenditure ([1] eq 9), body weight with glycogen water and ECF
    bw = f + lean + ecf + water * g
    e0 = k + gamma_f * f + gamma_l * lean + u[U_DELTA] * bw + beta_tef * dei + at
    ee = (e0 + (ei - rho_g * dg) * a) / (1.0 + a)
    imbalance = ei - ee - rho_g * dg
    dx[S_F] = (1.0 - share) * imbalance / rho_f
    dx[S_L] = share * imbalance / rho_l
    dx[S_G] = dg
    dx[S_DEI] = 0.0
    dx[S_CARBS] = 0.0
    dx[S_DELTA] = 0.0
    # a ramp shorter than 1e-6 day (0.1 s) is none (its slope would overflow)
    dx[S_FI] = (p[FACTOR1] - p[FACTOR0]) / p[RAMP] if p[RAMP] > 1e-6 else 0.0
    dx[S_HABIT] = 0.0


def _jump_row(x: Any, p: Any, u_before: Any, u_after: Any) -> None:
    """Hold the inputs in the state at each input change (for the energy observables); an
    absolute diet ends the habitual intake (its factor becomes 1)."""
    x[S_DEI] = u_after[U_DEI]
    x[S_CARBS] = u_after[U_CARBS]
    x[S_DELTA] = u_after[U_DELTA]
    x[S_HABIT] = u_after[U_HABIT]


# ---------------------------------------------------------------- baseline (vectorised)


def _regression(name: str, female: FloatArray, covariates: Mapping[str, FloatArray]) -> FloatArray:
    spec = _meta()["regression"][name]
    out = np.zeros_like(np.asarray(female, dtype=np.float64))
    for sex, mask in (("male", female < 0.5), ("female", female >= 0.5)):
        coefs = spec[sex]
        value = np.full(out.shape, float(coefs["intercept"]))
        for covariate, beta in coefs.items():
            if covariate != "intercept":
                value = value + float(beta) * covariates[covariate]
        out = np.where(mask, value, out)
    return out


def _sex(sex: str) -> float:
    if sex not in ("male", "female"):
        raise ModelError(f"sex must be 'male' or 'female', got {sex!r}")
    return 1.0 if sex == "female" else 0.0


def mifflin_st_jeor_rmr_kcal_per_day(
    sex: Literal["male", "female"], age_y: float, height_m: float, weight_kg: float
) -> float:
    """Resting metabolic rate by Mifflin-St Jeor ([2]): 9.99 W + 6.25 H(cm) - 4.92 age + 5
    (men) or - 161 (women), kcal/day.

    >>> round(mifflin_st_jeor_rmr_kcal_per_day("male", 40, 1.80, 90), 1)
    1832.3
    """
    cov = {
        "age_y": np.array([age_y], dtype=np.float64),
        "height_m": np.array([height_m], dtype=np.float64),
        "weight_kg": np.array([weight_kg], dtype=np.float64),
    }
    return float(_regression("rmr_kcal_per_day", np.array([_sex(sex)]), cov)[0])


def baseline_body_fat_fraction(
    sex: Literal["male", "female"], age_y: float, height_m: float, weight_kg: float
) -> float:
    """Body-fat fraction from sex, age and BMI: (0.14 age + 37.31 ln BMI - 103.94) / 100 for
    men, (0.14 age + 39.96 ln BMI - 102.01) / 100 for women (the Hall model's baseline
    regression; see ``[regression.body_fat_pct]`` in the data file).

    >>> round(baseline_body_fat_fraction("male", 40, 1.80, 90), 4)
    0.2569
    """
    bmi = weight_kg / (height_m * height_m)
    cov = {"age_y": np.array([age_y], dtype=np.float64), "ln_bmi": np.array([math.log(bmi)])}
    return float(_regression("body_fat_pct", np.array([_sex(sex)]), cov)[0]) / 100.0


def baseline_ecf_l(
    sex: Literal["male", "female"], age_y: float, height_m: float, weight_kg: float
) -> float:
    """Extracellular fluid volume (L): 0.025 age + 9.57 H + 0.191 W - 12.4 for men,
    5.98 H + 0.167 W - 4.0 for women (``[regression.ecf_l]``).

    >>> round(baseline_ecf_l("male", 40, 1.80, 90), 3)
    23.016
    """
    cov = {
        "age_y": np.array([age_y], dtype=np.float64),
        "height_m": np.array([height_m], dtype=np.float64),
        "weight_kg": np.array([weight_kg], dtype=np.float64),
    }
    return float(_regression("ecf_l", np.array([_sex(sex)]), cov)[0])


def _baseline_rows(
    female: FloatArray,
    age_y: FloatArray,
    height_m: FloatArray,
    weight_kg: FloatArray,
    pal: FloatArray,
    fat_fraction: FloatArray | None = None,
    rmr_kcal_per_day: FloatArray | None = None,
) -> FloatArray:
    """``[N, P]`` parameters from the covariates (regressions fill what is not given)."""
    n = female.shape[0]
    cov = {
        "age_y": age_y,
        "height_m": height_m,
        "weight_kg": weight_kg,
        "ln_bmi": np.log(weight_kg / height_m**2),
    }
    defaults = _meta()["defaults"]
    out = np.empty((n, len(PARAMETERS)))
    for i, par in enumerate(PARAMETERS):
        out[:, i] = par.prior.loc if par.prior.kind != "lognormal" else math.exp(par.prior.loc)
    out[:, FEMALE] = female
    out[:, AGE] = age_y
    out[:, HEIGHT] = height_m
    out[:, WEIGHT] = weight_kg
    out[:, PAL] = pal
    out[:, FAT_FRACTION] = (
        _regression("body_fat_pct", female, cov) / 100.0 if fat_fraction is None else fat_fraction
    )
    out[:, RMR] = (
        _regression("rmr_kcal_per_day", female, cov)
        if rmr_kcal_per_day is None
        else rmr_kcal_per_day
    )
    out[:, ECF] = _regression("ecf_l", female, cov)
    out[:, CARBS] = float(defaults["carbs_fraction"])
    out[:, SODIUM] = float(defaults["sodium_mg_per_day"])
    return out


def params_for(
    sex: Literal["male", "female"],
    age_y: float,
    height_m: float,
    weight_kg: float,
    physical_activity_level: float,
    *,
    fat_fraction: float | None = None,
    rmr_kcal_per_day: float | None = None,
    carbs_pct: float | None = None,
    sodium_mg_per_day: float | None = None,
) -> FloatArray:
    """Parameters (``[1, P]``) of one adult from sex, age, height, weight and PAL.

    The baseline body-fat fraction, resting metabolic rate and ECF come from the appendix's
    regressions unless given (a measured body-fat fraction or RMR is better); the diet
    composition defaults to 50% carbohydrate and 4000 mg/day of sodium. Refuses, with the
    reason, someone outside the model's population (:class:`OutsidePopulationError`) and
    values outside the parameters' bounds (:class:`~medtwin.model.base.ModelError`).

    >>> p = params_for("female", 30, 1.65, 65, 1.5)
    >>> round(float(p[0, Hall2011BodyWeight.parameter_names().index("fat_fraction")]), 3)
    0.29
    >>> params_for("male", 10, 1.40, 35, 1.6)
    Traceback (most recent call last):
    ...
    medtwin.model.base.OutsidePopulationError: parameter set 0: age_y = 10.0 is \
outside the population of hall_2011_body_weight (adults aged 18 to 100 years): the model has no \
growth, so it will not extrapolate to a child (a child's body weight needs a paediatric model, \
e.g. Hall et al. Lancet Diabetes Endocrinol 2013, which medtwin does not have)
    """
    values = {
        "age_y": age_y,
        "height_m": height_m,
        "weight_kg": weight_kg,
        "physical_activity_level": physical_activity_level,
    }
    for name, value in {
        **values,
        "fat_fraction": fat_fraction,
        "rmr_kcal_per_day": rmr_kcal_per_day,
        "carbs_pct": carbs_pct,
        "sodium_mg_per_day": sodium_mg_per_day,
    }.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelError(f"{name} must be a number, got {value!r}")
        if not (math.isfinite(value) and value > 0) and name not in ("sodium_mg_per_day",):
            raise ModelError(f"{name} must be a positive number, got {value!r}")
    out = _baseline_rows(
        np.array([_sex(sex)]),
        np.array([float(age_y)]),
        np.array([float(height_m)]),
        np.array([float(weight_kg)]),
        np.array([float(physical_activity_level)]),
        None if fat_fraction is None else np.array([float(fat_fraction)]),
        None if rmr_kcal_per_day is None else np.array([float(rmr_kcal_per_day)]),
    )
    if carbs_pct is not None:
        out[:, CARBS] = float(carbs_pct) / 100.0
    if sodium_mg_per_day is not None:
        out[:, SODIUM] = float(sodium_mg_per_day)
    return Hall2011BodyWeight.check_params(out)


def _base(params: FloatArray) -> dict[str, FloatArray]:
    """Baseline quantities per row (``[N, 1]`` columns, broadcasting over time)."""
    p = np.atleast_2d(params)

    def col(i: int) -> FloatArray:
        return np.asarray(p[:, i : i + 1], dtype=np.float64)

    water = 1.0 + col(G_WATER)
    bw0 = col(WEIGHT)
    f0 = col(FAT_FRACTION) * bw0
    l0 = bw0 - f0 - col(ECF) - water * col(G_INIT)
    ei0 = col(PAL) * col(RMR)
    delta0 = ((1.0 - col(BETA_TEF)) * col(PAL) - 1.0) * col(RMR) / bw0
    k = ei0 - col(GAMMA_F) * f0 - col(GAMMA_L) * l0 - delta0 * bw0
    ci_b = col(CARBS) * ei0
    return {
        "water": water,
        "f0": f0,
        "l0": l0,
        "ei0": ei0,
        "delta0": delta0,
        "k": k,
        "ci_b": ci_b,
        "k_g": ci_b / col(G_INIT) ** 2,
    }


# ---------------------------------------------------------------- observables


def _weight(states: FloatArray, params: FloatArray) -> FloatArray:
    water = 1.0 + params[:, G_WATER][:, None]
    s = states
    return np.asarray(s[..., S_F] + s[..., S_L] + s[..., S_ECF] + water * s[..., S_G])


def _fat(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(states[..., S_F], dtype=np.float64)


def _fat_pct(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(100.0 * states[..., S_F] / _weight(states, params))


def _fat_free(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(_weight(states, params) - states[..., S_F])


def _bmi(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(_weight(states, params) / params[:, HEIGHT][:, None] ** 2)


def _intake_change(states: FloatArray, params: FloatArray, ei0: FloatArray) -> FloatArray:
    """The intake change from the baseline: the events' dEI plus the habitual intake's gap
    (as :func:`_rhs_row` computes it)."""
    f0 = params[:, FACTOR0][:, None]
    f1 = params[:, FACTOR1][:, None]
    habit = np.clip(states[..., S_FI], np.minimum(f0, f1), np.maximum(f0, f1))
    return np.asarray(states[..., S_DEI] + states[..., S_HABIT] * ei0 * (habit - 1.0))


def _intake(states: FloatArray, params: FloatArray) -> FloatArray:
    ei0 = _base(params)["ei0"]
    return np.asarray(ei0 + _intake_change(states, params, ei0))


def _expenditure(states: FloatArray, params: FloatArray) -> FloatArray:
    """Total energy expenditure, kcal/day ([1] eq 9), from the state and the held inputs."""
    b = _base(params)
    p = params

    def col(i: int) -> FloatArray:
        return np.asarray(p[:, i][:, None], dtype=np.float64)

    s = states
    f, lean, g, at = s[..., S_F], s[..., S_L], s[..., S_G], s[..., S_AT]
    dei = _intake_change(states, params, b["ei0"])
    ei = b["ei0"] + dei
    ci = s[..., S_CARBS] * ei
    rho_f, rho_l, rho_g = col(RHO_F), col(RHO_L), col(RHO_G)
    dg = (ci - b["k_g"] * g * g) / rho_g
    c = col(FORBES) * rho_l / rho_f
    share = c / (c + f)
    a = share * col(ETA_L) / rho_l + (1.0 - share) * col(ETA_F) / rho_f
    bw = _weight(states, params)
    e0 = (
        b["k"]
        + col(GAMMA_F) * f
        + col(GAMMA_L) * lean
        + s[..., S_DELTA] * bw
        + col(BETA_TEF) * dei
        + at
    )
    return np.asarray((e0 + (ei - rho_g * dg) * a) / (1.0 + a))


def _mass(name: str, unit: str, description: str, symbol: str) -> Variable:
    return Variable(name, unit, description, symbol, nonnegative=True)


class Hall2011BodyWeight(Model):
    """Hall et al. 2011 adult body-weight model, batched; see the module docstring."""

    name: ClassVar[str] = "hall_2011_body_weight"
    version: ClassVar[str] = "1.1.0"
    title: ClassVar[str] = (
        "Hall 2011 adult body weight and energy balance (Lancet web appendix model)"
    )
    time_unit: ClassVar[Literal["min", "h", "d"]] = "d"
    references: ClassVar[tuple[str, ...]] = (
        "Hall KD, Sacks G, Chandramohan D, et al. Lancet 2011;378:826-837, web appendix",
        "Mifflin MD, St Jeor ST, Hill LA, et al. Am J Clin Nutr 1990;51:241-247",
        "Forbes GB. Ann N Y Acad Sci 2000;904:359-365",
    )
    event_types: ClassVar[frozenset[str]] = frozenset({"diet", "activity"})
    parameters: ClassVar[tuple[Parameter, ...]] = PARAMETERS
    states: ClassVar[tuple[Variable, ...]] = (
        _mass("fat_mass_kg", "kg", "body fat", "F"),
        _mass("lean_mass_kg", "kg", "lean tissue (without ECF and glycogen water)", "L"),
        _mass("glycogen_kg", "kg", "glycogen (stored with 2.7 kg water per kg)", "G"),
        _mass("ecf_l", "L", "extracellular fluid", "ECF"),
        Variable("adaptive_thermogenesis_kcal_per_day", "kcal/d", "adaptive thermogenesis", "AT"),
        Variable("held_intake_change_kcal_per_day", "kcal/d", "held input: dEI", "dEI"),
        Variable("held_carbs_fraction", "1", "held input: carbohydrate fraction", "CI/EI"),
        Variable(
            "held_activity_kcal_per_kg_day", "kcal/kg/d", "held input: activity delta", "delta"
        ),
        Variable(
            "habitual_intake_ramp",
            "1",
            "habitual intake factor, running linearly from intake_factor to intake_factor_end "
            "(used held between the two)",
        ),
        Variable("held_habitual_intake_on", "1", "held input: habitual intake applies (1) or not"),
    )
    inputs: ClassVar[tuple[Variable, ...]] = (
        Variable("intake_change_kcal_per_day", "kcal/d", "energy intake minus baseline", "dEI"),
        Variable("carbs_fraction", "1", "fraction of energy intake from carbohydrate"),
        Variable("sodium_change_mg_per_day", "mg/d", "sodium intake minus baseline", "dNa"),
        Variable("activity_kcal_per_kg_day", "kcal/kg/d", "physical activity expenditure", "delta"),
        Variable(
            "habitual_intake_on",
            "1",
            "1 while the habitual intake (intake_factor ...) applies; 0 once an absolute diet "
            "(intake_kcal_per_day) replaced it",
        ),
    )
    observables: ClassVar[tuple[Observable, ...]] = (
        Observable(
            "weight_kg",
            "kg",
            "body weight F + L + ECF + 3.7 G ([1] appendix)",
            ("29463-7",),
            _weight,
        ),
        Observable("fat_mass_kg", "kg", "body fat mass F", ("73708-0",), _fat),
        Observable("body_fat_pct", "%", "body fat, % of body weight", ("41982-0",), _fat_pct),
        Observable("fat_free_mass_kg", "kg", "body weight minus fat mass", (), _fat_free),
        Observable("bmi_kg_m2", "kg/m2", "body mass index", ("39156-5",), _bmi),
        Observable(
            "energy_expenditure_kcal_per_day",
            "kcal/d",
            "total energy expenditure ([1] eq 9)",
            (),
            _expenditure,
        ),
        Observable(
            "energy_intake_kcal_per_day", "kcal/d", "energy intake EI(0) + dEI", (), _intake
        ),
    )

    default_rtol: ClassVar[float] = 1e-8
    default_atol: ClassVar[float] = 1e-7
    """1e-7 kg, L or kcal/day: far below a scale's resolution (0.1 kg), and tight enough that
    the glycogen of the bw reference trajectory is met to 1e-6 kg whatever the number of
    states in the error norm."""

    rhs_row: ClassVar[Any] = staticmethod(_rhs_row)
    jump_row: ClassVar[Any] = staticmethod(_jump_row)
    compiled_module: ClassVar[str | None] = "medtwin.physiology._body_weight_numba"

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """Example adults (``data/body_weight/presets.csv``, each with its source)."""
        return _presets()

    @classmethod
    def check_population(cls, patient: Mapping[str, Any]) -> None:
        """Refuse a patient the record shows pregnant at the date (``patient["at"]``, with
        ``patient["pregnancies"]``: :func:`medtwin.twin.twin.characteristics`), or within
        :data:`PUERPERIUM_DAYS` after a pregnancy: the model describes adults who are not
        pregnant, and a forecast or what-if from then would run through the pregnancy's
        weight (age and BMI are checked on the parameters, :meth:`check_params`)."""
        said = pregnancy_at_date(patient)
        if said is not None:
            raise OutsidePopulationError(
                f"{cls.name} describes adults who are not pregnant (Hall 2011); {said}"
            )

    @classmethod
    def check_period(cls, patient: Mapping[str, Any], start: Any, end: Any) -> None:
        """Refuse a simulated period ``[start, end]`` (a forecast, a what-if) that runs into a
        pregnancy the record shows (``patient["pregnancies"]``) or the
        :data:`PUERPERIUM_DAYS` after it: the model describes adults who are not pregnant."""
        from datetime import datetime, timedelta

        t0, t1 = start.timestamp(), end.timestamp()
        for first, last, basis in patient.get("pregnancies") or ():
            stop = last + PUERPERIUM_DAYS * 86400.0
            if first <= t1 and t0 < stop:
                zone = start.tzinfo
                begun = datetime.fromtimestamp(first, zone)
                ended = datetime.fromtimestamp(last, zone) + timedelta(days=PUERPERIUM_DAYS)
                raise OutsidePopulationError(
                    f"{cls.name} describes adults who are not pregnant (Hall 2011); the period "
                    f"{start:%Y-%m-%d} to {end:%Y-%m-%d} runs into a pregnancy the record shows "
                    f"({basis}; with the {PUERPERIUM_DAYS} days after it, {begun:%Y-%m-%d} to "
                    f"{ended:%Y-%m-%d}): ask about a period that ends before it"
                )

    @classmethod
    def check_params(cls, params: FloatArray) -> FloatArray:
        """Bounds (as every model) and the valid population: adults (age 18-100 y) with a BMI
        of 16-60 kg/m2, sex 0 or 1, a positive baseline lean mass. Raises
        :class:`OutsidePopulationError` with the reason."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        if p.ndim == 2 and p.shape[1] == len(cls.parameters) and np.isfinite(p).all():
            pop = _meta()["population"]
            for row in range(p.shape[0]):
                age = float(p[row, AGE])
                if not pop["min_age_y"] <= age <= pop["max_age_y"]:
                    why = (
                        "the model has no growth, so it will not extrapolate to a child (a "
                        "child's body weight needs a paediatric model, e.g. Hall et al. Lancet "
                        "Diabetes Endocrinol 2013, which medtwin does not have)"
                        if age < pop["min_age_y"]
                        else "beyond the ages its baseline equations were built on"
                    )
                    raise OutsidePopulationError(
                        f"parameter set {row}: age_y = {age!r} is outside the population of "
                        f"{cls.name} (adults aged {pop['min_age_y']:g} to "
                        f"{pop['max_age_y']:g} years): {why}"
                    )
                if p[row, FEMALE] not in (0.0, 1.0):
                    raise ModelError(
                        f"parameter set {row}: female = {float(p[row, FEMALE])!r} must be "
                        "0 (male) or 1 (female)"
                    )
                bmi = float(p[row, WEIGHT] / p[row, HEIGHT] ** 2)
                if not pop["min_bmi_kg_m2"] <= bmi <= pop["max_bmi_kg_m2"]:
                    raise OutsidePopulationError(
                        f"parameter set {row}: BMI {bmi:.1f} kg/m2 (weight_kg / height_m^2) is "
                        f"outside the population of {cls.name} (BMI {pop['min_bmi_kg_m2']:g} "
                        f"to {pop['max_bmi_kg_m2']:g} kg/m2): the model will not extrapolate "
                        "beyond it"
                    )
        p = super().check_params(p)
        lean = _base(p)["l0"][:, 0]
        if (lean <= 0).any():
            row = int(np.argmax(lean <= 0))
            raise ModelError(
                f"parameter set {row}: fat_fraction, ecf_l and weight_kg leave no lean mass "
                f"({float(lean[row]):.1f} kg)"
            )
        return p

    @classmethod
    def sample_prior(cls, n: int, seed: int | None = None) -> FloatArray:
        """``n`` adults: sex 50/50, age, height, weight and PAL from their priors (weight kept
        within the BMI range), the baseline body fat, RMR and ECF from the regressions."""
        rng = np.random.default_rng(seed)
        pri = {p.name: p for p in PARAMETERS}

        def draw(name: str) -> FloatArray:
            par = pri[name]
            return np.clip(par.prior.sample(rng, n), par.lower, par.upper)

        female = rng.integers(0, 2, n).astype(np.float64)
        age = draw("age_y")
        height = draw("height_m")
        pop = _meta()["population"]
        weight = np.clip(
            draw("weight_kg"),
            pop["min_bmi_kg_m2"] * height**2 * 1.0001,
            pop["max_bmi_kg_m2"] * height**2 * 0.9999,
        )
        rows = _baseline_rows(female, age, height, weight, draw("physical_activity_level"))
        rows[:, FAT_FRACTION] = np.clip(
            rows[:, FAT_FRACTION], pri["fat_fraction"].lower, pri["fat_fraction"].upper
        )
        return rows

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """Energy balance at the baseline: F(0), L(0) = BW - F - ECF - 3.7 G(0), G(0) = 0.5 kg,
        ECF(0), AT(0) = 0 ([1] appendix, initial conditions)."""
        p = np.atleast_2d(params)
        b = _base(p)
        x = np.zeros((p.shape[0], len(cls.states)))
        x[:, S_F] = b["f0"][:, 0]
        x[:, S_L] = b["l0"][:, 0]
        x[:, S_G] = p[:, G_INIT]
        x[:, S_ECF] = p[:, ECF]
        x[:, S_CARBS] = p[:, CARBS]
        x[:, S_DELTA] = b["delta0"][:, 0]
        x[:, S_FI] = p[:, FACTOR0]
        x[:, S_HABIT] = 1.0
        return x

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        """Diet and activity events as piecewise-constant inputs (times in days)."""
        p = np.atleast_2d(params)
        n = p.shape[0]
        b = _base(p)
        per_day = TIME_UNIT_MIN["d"]
        cuts = {0.0, float(t_end)}
        for e in events:
            if e.t_min / per_day < t_end:
                cuts.add(e.t_min / per_day)
        bounds = np.array(sorted(cuts))
        starts = bounds[:-1]
        values = np.zeros((len(starts), n, len(cls.inputs)))
        values[:, :, U_CARBS] = p[:, CARBS]
        values[:, :, U_DELTA] = b["delta0"][:, 0]
        values[:, :, U_HABIT] = 1.0
        ei0 = b["ei0"][:, 0]
        # without a ramp the intake is intake_factor throughout (intake_factor_end unused)
        end = np.where(p[:, RAMP] > 1e-6, p[:, FACTOR1], p[:, FACTOR0])
        habit_low = ei0 * np.minimum(p[:, FACTOR0], end) - ei0
        pal_par = PARAMETERS[PAL]
        for e in sorted(events, key=lambda e: (e.t_min, e.index)):
            on = starts >= e.t_min / per_day - 1e-12
            where = f"event {e.index} ({e.type})"
            if e.type == "diet":
                absolute = e.get("intake_kcal_per_day") is not None
                dei = (
                    float(e["intake_kcal_per_day"]) - ei0
                    if absolute
                    else np.full(n, float(e["intake_change_kcal_per_day"]))
                )
                # a change counts from the habitual intake (its lowest over the ramp)
                lowest = ei0 + dei + (0.0 if absolute else habit_low)
                if (lowest < 0).any():
                    row = int(np.argmax(lowest < 0))
                    raise ModelError(
                        f"{where}: the energy intake would be negative for parameter set {row} "
                        f"({float(lowest[row]):.0f} kcal/day; baseline "
                        f"{float(ei0[row]):.0f} kcal/day)"
                    )
                values[on, :, U_HABIT] = 0.0 if absolute else 1.0
                carbs = e.get("carbs_pct")
                if carbs is not None and float(carbs) <= 0.0:
                    raise ModelError(
                        f"{where}: field 'carbs_pct' must be > 0 (the glycogen model of the "
                        "appendix needs some carbohydrate)"
                    )
                sodium = e.get("sodium_mg_per_day")
                values[on, :, U_DEI] = dei
                values[on, :, U_CARBS] = p[:, CARBS] if carbs is None else float(carbs) / 100.0
                values[on, :, U_DNA] = 0.0 if sodium is None else float(sodium) - p[:, SODIUM]
            elif e.type == "activity":
                pal = e.get("physical_activity_level")
                if pal is not None:
                    if not pal_par.lower <= float(pal) <= pal_par.upper:
                        raise ModelError(
                            f"{where}: field 'physical_activity_level' = {pal!r} is outside "
                            f"[{pal_par.lower:g}, {pal_par.upper:g}]"
                        )
                    delta = ((1.0 - p[:, BETA_TEF]) * float(pal) - 1.0) * p[:, RMR] / p[:, WEIGHT]
                else:
                    change = float(e["activity_change_pct"])
                    if change < -100.0:
                        raise ModelError(
                            f"{where}: field 'activity_change_pct' must be >= -100, got {change!r}"
                        )
                    delta = b["delta0"][:, 0] * (1.0 + change / 100.0)
                values[on, :, U_DELTA] = delta
        return InputSchedule(bounds, values)


def valid_population() -> dict[str, float]:
    """The model's valid population (``[population]`` of the data file): ages and BMI.

    >>> valid_population()["min_age_y"]
    18.0
    """
    return {k: float(v) for k, v in _meta()["population"].items()}


def population_exit_day(result: Any) -> list[float | None]:
    """For each simulated person, the first output time (days) at which the BMI has left the
    model's population range (``[population]`` in the data file), or None if it stays inside.

    The population is checked on the parameters (at the start); a long or large energy deficit
    can carry a trajectory outside it, where the results are extrapolation.

    >>> from medtwin.model import parse_scenario, simulate
    >>> p = Hall2011BodyWeight.preset("woman_30y_165cm_65kg")
    >>> s = parse_scenario([{"type": "diet", "intake_change_kcal_per_day": -1000}])
    >>> population_exit_day(simulate(Hall2011BodyWeight, p, s, t_end=720, dt_out=1))
    [226.0]
    """
    pop = _meta()["population"]
    bmi = np.asarray(result.observables["bmi_kg_m2"])
    outside = (bmi < pop["min_bmi_kg_m2"]) | (bmi > pop["max_bmi_kg_m2"])
    times = np.asarray(result.times)
    return [float(times[np.argmax(row)]) if row.any() else None for row in outside]


@cache
def _presets() -> dict[str, FloatArray]:
    root = resources.files("medtwin.physiology").joinpath(_DATA)
    text = root.joinpath("presets.csv").read_text(encoding="utf-8")
    out: dict[str, FloatArray] = {}
    for row in csv.DictReader(io.StringIO(text, newline="")):
        sex = row["sex"]
        if sex not in ("male", "female"):
            raise ModelError(f"presets.csv: preset {row['name']!r}: bad sex {sex!r}")
        out[row["name"]] = params_for(
            sex,  # type: ignore[arg-type]
            float(row["age_y"]),
            float(row["height_m"]),
            float(row["weight_kg"]),
            float(row["physical_activity_level"]),
        )[0]
    return out


MODELS = (Hall2011BodyWeight,)
