"""Warfarin PK/PD with INR: the Hamberg 2007 model (``warfarin_hamberg2007``).

S-warfarin pharmacokinetics and the INR response, with age, CYP2C9 and VKORC1 as covariates,
after Hamberg AK, Dahl ML, Barban M, et al. Clin Pharmacol Ther 2007;81(4):529-538 [1]:

* **PK** ([1] Table 2): a two-compartment model of S-warfarin (half of the racemic dose) with
  first-order absorption, apparent parameters (CL/F, V1/F, Q/F, V2/F; F is not separated):
  ``dDepot = -ka Depot``; ``dC1 = ka Depot - (CL + Q)/V1 C1 + Q/V2 C2``;
  ``dC2 = Q/V1 C1 - Q/V2 C2`` (amounts in mg), concentration ``Cs = C1 / V1`` (mg/L).
  ``CL = CL_ref * (1 - 0.0091 max(0, age - 71)) * (1 - d_CYP2C9)`` with ``d`` the fractional decrease
  of the diplotype (*1/*2 0.315 ... *3/*3 0.852).
* **PD** ([1] Table 4, Figure 2, Methods): S-warfarin inhibits the synthesis of coagulation
  factors by ``E = Emax Cs^gamma / (EC50^gamma + Cs^gamma)`` (Emax = 1; EC50 by VKORC1 -1639 G>A:
  GG 4.61, GA 3.02, AA 2.20 mg/L); the inhibition passes through two parallel transit chains
  (dimensionless amounts, 1 without drug): chain 1 of six compartments with mean transit time
  MTT1 = 11.6 h (``ktr1 = 6 / MTT1``), chain 2 of one compartment with MTT2 = 120 h
  (``ktr2 = 1 / MTT2``); ``dA1 = ktr1 (1 - E) - ktr1 A1``, ``dAi = ktr1 (A(i-1) - Ai)``
  (i = 2..6), ``dA7 = ktr2 (1 - E) - ktr2 A7``.
* **INR**: ``INR = BASE + INRmax (1 - A6 A7)^lambda`` with INRmax = 20, lambda = 3.61.

Doses are ``oral`` events of ``drug: "warfarin"`` in mg of racemic warfarin; each dose enters
the depot at once (a jump at its time). The model's time unit is the hour. ``steady_state``
regimens are simulated with :func:`simulate_regimen`, which starts the regimen at its periodic
steady state (computed exactly: the system is linear in its states for a given concentration
profile). Parameters, covariates and variability are read from
``data/warfarin_hamberg2007/parameters.toml``; readings pinned where copies of the model differ
are in ``docs/models/warfarin.md``.

References
----------
.. [1] Hamberg AK, Dahl ML, Barban M, Scordo MG, Wadelius M, Pengo V, Padrini R, Jonsson EN.
   A PK-PD model for predicting the impact of age, CYP2C9, and VKORC1 genotype on
   individualization of warfarin therapy. Clin Pharmacol Ther 2007;81(4):529-538.
.. [2] Ravvaz K, Weissert JA, Ruff CT, Chi CL, Tonellato PJ. Personalized anticoagulation:
   optimizing warfarin management using genetics and simulated clinical trials. Circ Cardiovasc
   Genet 2017;10:e001804 (a re-implementation of [1] with its tables transcribed).

>>> from medtwin.model import parse_scenario, simulate
>>> p = params_for(71, "*1/*1", "GA")
>>> s = parse_scenario([{"type": "oral", "drug": "warfarin", "t_h": 0, "amount_mg": 5,
...                      "every_h": 24, "count": 7}])
>>> r = simulate(WarfarinHamberg2007, p, s, t_end=7 * 24.0, dt_out=24.0)
>>> [round(float(v), 2) for v in r.observables["inr"][0]]
[1.0, 1.1, 1.23, 1.36, 1.49, 1.61, 1.72, 1.82]
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
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
from medtwin.model.events import Event, Scenario

__all__ = [
    "CYP2C9_DIPLOTYPES",
    "MODELS",
    "VKORC1_GENOTYPES",
    "WarfarinHamberg2007",
    "covariate_from_call",
    "covariates_from_calls",
    "dose_times_h",
    "inr_of_states",
    "maintenance_dose_mg_per_day",
    "observe",
    "params_for",
    "sample_population",
    "simulate_regimen",
    "steady_state_x0",
]

_DATA = "data/warfarin_hamberg2007"
DRUG = "warfarin"
CYP2C9_DIPLOTYPES = ("*1/*1", "*1/*2", "*1/*3", "*2/*2", "*2/*3", "*3/*3")
"""The CYP2C9 diplotypes of [1] Table 2."""
VKORC1_GENOTYPES = ("GG", "GA", "AA")
"""VKORC1 -1639 G>A (rs9923231) genotypes of [1] Table 4."""


@cache
def _meta() -> dict[str, Any]:
    root = resources.files("medtwin.pharmacology").joinpath(_DATA)
    meta = tomllib.loads(root.joinpath("parameters.toml").read_text(encoding="utf-8"))
    if meta["pd"]["n_chain1"] != 6 or meta["pd"]["n_chain2"] != 1:
        raise ModelError("warfarin_hamberg2007: the kernel has chains of 6 and 1 compartments")
    return meta


_T2 = "Hamberg 2007 Table 2"
_T4 = "Hamberg 2007 Table 4"


def _parameters() -> tuple[Parameter, ...]:
    m = _meta()
    pk, pd, var = m["pk"], m["pd"], m["variability"]

    def logn(value: float, omega2: float, src: str) -> Prior:
        return Prior("lognormal", math.log(value), math.sqrt(omega2), src)

    def fixed(value: float, src: str) -> Prior:
        return Prior("fixed", value, 0.0, src)

    ec50_ga = pd["ec50_mg_l"]["GA"]
    return (
        Parameter(
            "cl_l_per_h",
            "L/h",
            "apparent S-warfarin clearance CL/F (covariates applied)",
            0.005,
            5.0,
            logn(pk["cl_l_per_h"], var["omega2_cl"], f"{_T2}: *1/*1, 71 y"),
            _T2,
            "CL",
        ),
        Parameter(
            "v1_l",
            "L",
            "apparent central volume V1/F",
            1.0,
            200.0,
            logn(pk["v1_l"], var["omega2_v1"], _T2),
            _T2,
            "V1",
        ),
        Parameter(
            "q_l_per_h",
            "L/h",
            "apparent intercompartmental clearance Q/F",
            0.001,
            5.0,
            fixed(pk["q_l_per_h"], _T2),
            _T2,
            "Q",
        ),
        Parameter(
            "v2_l",
            "L",
            "apparent peripheral volume V2/F",
            0.1,
            500.0,
            logn(pk["v2_l"], var["omega2_v2"], _T2),
            _T2,
            "V2",
        ),
        Parameter(
            "ka_per_h",
            "1/h",
            "first-order absorption rate constant",
            0.05,
            20.0,
            fixed(pk["ka_per_h"], _T2),
            _T2,
            "ka",
        ),
        Parameter(
            "ec50_mg_l",
            "mg/L",
            "S-warfarin concentration of half-maximal inhibition (VKORC1 genotype applied)",
            0.01,
            100.0,
            logn(ec50_ga, var["omega2_ec50"], f"{_T4}: VKORC1 GA"),
            _T4,
            "EC50",
        ),
        Parameter(
            "gamma",
            "1",
            "sigmoidicity of the Emax model",
            0.05,
            5.0,
            fixed(pd["gamma"], _T4),
            _T4,
            "gamma",
        ),
        Parameter(
            "emax",
            "1",
            "maximal inhibition of coagulation-factor synthesis",
            0.0,
            1.0,
            fixed(pd["emax"], _T4),
            _T4,
            "Emax",
        ),
        Parameter(
            "mtt1_h",
            "h",
            "mean transit time of chain 1 (six compartments)",
            0.5,
            500.0,
            logn(pd["mtt1_h"], var["omega2_mtt1"], _T4),
            _T4,
            "MTT1",
        ),
        Parameter(
            "mtt2_h",
            "h",
            "mean transit time of chain 2 (one compartment)",
            1.0,
            5000.0,
            logn(pd["mtt2_h"], var["omega2_mtt2"], _T4),
            _T4,
            "MTT2",
        ),
        Parameter(
            "inr_lambda",
            "1",
            "exponent of the INR link",
            0.1,
            20.0,
            fixed(pd["inr_lambda"], _T4),
            _T4,
            "lambda",
        ),
        Parameter(
            "inr_max",
            "1",
            "INRmax of the INR link",
            1.0,
            100.0,
            fixed(pd["inr_max"], "Hamberg 2007 Methods p. 538"),
            "Hamberg 2007 p. 538",
            "INRmax",
        ),
        Parameter(
            "base_inr",
            "1",
            "INR without warfarin (the patient's baseline)",
            0.5,
            3.0,
            fixed(pd["base_inr"], "Ravvaz 2017 (the paper uses the measured baseline)"),
            "Hamberg 2007 Methods (BASE)",
            "BASE",
        ),
        Parameter(
            "s_fraction",
            "1",
            "fraction of the racemic dose that is S-warfarin",
            0.0,
            1.0,
            fixed(pk["s_fraction"], "racemic warfarin"),
            "racemate: 50 % S",
            "",
        ),
    )


PARAMETERS = _parameters()
_P = {p.name: i for i, p in enumerate(PARAMETERS)}
CL = _P["cl_l_per_h"]
V1 = _P["v1_l"]
Q = _P["q_l_per_h"]
V2 = _P["v2_l"]
KA = _P["ka_per_h"]
EC50 = _P["ec50_mg_l"]
GAMMA = _P["gamma"]
EMAX = _P["emax"]
MTT1 = _P["mtt1_h"]
MTT2 = _P["mtt2_h"]
LAMBDA = _P["inr_lambda"]
INRMAX = _P["inr_max"]
BASE = _P["base_inr"]
SFRAC = _P["s_fraction"]

DOSED = 0  # input: racemic warfarin dosed so far (mg); a step in it is a dose


def _rhs_row(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    """Right-hand side of one patient ([1] Table 2 PK, Table 4 / Figure 2 PD), per hour.

    ``x``: depot, central and peripheral S-warfarin (mg), transit chain 1 (A1-A6) and chain 2
    (A7); ``u`` is not used between doses (doses are jumps).
    """
    v1 = p[V1]
    ka = p[KA]
    k10 = p[CL] / v1
    k12 = p[Q] / v1
    k21 = p[Q] / p[V2]
    dx[0] = -ka * x[0]
    dx[1] = ka * x[0] - (k10 + k12) * x[1] + k21 * x[2]
    dx[2] = k12 * x[1] - k21 * x[2]
    c = x[1] / v1
    if c > 0.0:
        cg = c ** p[GAMMA]
        effect = p[EMAX] * cg / (p[EC50] ** p[GAMMA] + cg)
    else:
        effect = 0.0
    ktr1 = 6.0 / p[MTT1]
    ktr2 = 1.0 / p[MTT2]
    dx[3] = ktr1 * (1.0 - effect) - ktr1 * x[3]
    for i in range(4, 9):
        dx[i] = ktr1 * (x[i - 1] - x[i])
    dx[9] = ktr2 * (1.0 - effect) - ktr2 * x[9]


def _jump_row(x: Any, p: Any, u_before: Any, u_after: Any) -> None:
    """A dose: the S-warfarin part of the racemic dose given at this boundary enters the depot."""
    given = u_after[DOSED] - u_before[DOSED]
    if given > 0.0:
        x[0] += p[SFRAC] * given


def _conc(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(states[..., 1] / params[:, V1][:, None], dtype=np.float64)


def _inr(states: FloatArray, params: FloatArray) -> FloatArray:
    a = np.clip(1.0 - states[..., 8] * states[..., 9], 0.0, None)
    lam = params[:, LAMBDA][:, None]
    return np.asarray(
        params[:, BASE][:, None] + params[:, INRMAX][:, None] * a**lam, dtype=np.float64
    )


def _amount(name: str, unit: str, description: str, symbol: str) -> Variable:
    return Variable(name, unit, description, symbol, nonnegative=True)


class WarfarinHamberg2007(Model):
    """Hamberg 2007 warfarin PK/PD with INR; see the module docstring."""

    name: ClassVar[str] = "warfarin_hamberg2007"
    version: ClassVar[str] = "1.1.0"
    title: ClassVar[str] = "Warfarin S-enantiomer PK and INR (Hamberg 2007; CYP2C9, VKORC1, age)"
    time_unit: ClassVar[Literal["min", "h", "d"]] = "h"
    references: ClassVar[tuple[str, ...]] = (
        "Hamberg AK, Dahl ML, Barban M, et al. Clin Pharmacol Ther 2007;81(4):529-538",
        "Ravvaz K, Weissert JA, Ruff CT, Chi CL, Tonellato PJ. Circ Cardiovasc Genet "
        "2017;10:e001804",
    )
    event_types: ClassVar[frozenset[str]] = frozenset({"oral"})
    parameters: ClassVar[tuple[Parameter, ...]] = PARAMETERS
    states: ClassVar[tuple[Variable, ...]] = (
        _amount("depot_mg", "mg", "S-warfarin in the absorption depot", "Depot"),
        _amount("central_mg", "mg", "S-warfarin in the central compartment", "C1"),
        _amount("peripheral_mg", "mg", "S-warfarin in the peripheral compartment", "C2"),
        *(_amount(f"a{i}", "1", f"transit chain 1, compartment {i}", f"A{i}") for i in range(1, 7)),
        _amount("a7", "1", "transit chain 2, its one compartment", "A7"),
    )
    inputs: ClassVar[tuple[Variable, ...]] = (
        Variable("warfarin_dosed_mg", "mg", "racemic warfarin dosed so far (steps are doses)"),
    )
    observables: ClassVar[tuple[Observable, ...]] = (
        Observable(
            "inr",
            "{INR}",
            "INR = BASE + INRmax (1 - A6 A7)^lambda (Hamberg 2007 Methods)",
            ("6301-6",),
            _inr,
        ),
        Observable(
            "s_warfarin_conc_mg_l",
            "mg/L",
            "S-warfarin plasma concentration C1 / V1 (Hamberg 2007 Table 2 model)",
            (),
            _conc,
        ),
    )
    default_rtol: ClassVar[float] = 1e-8
    default_atol: ClassVar[float] = 1e-9
    """1e-9 mg or 1e-9 of a transit amount (amounts are 1 without drug; doses are 0.5-10 mg)."""

    rhs_row: ClassVar[Any] = staticmethod(_rhs_row)
    jump_row: ClassVar[Any] = staticmethod(_jump_row)
    compiled_module: ClassVar[str | None] = "medtwin.pharmacology._warfarin_numba"

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """Typical 71-year-old patients of every CYP2C9 diplotype and VKORC1 genotype
        (``"*1/*1 GA"``, ...), [1] Tables 2 and 4."""
        return _presets()

    @classmethod
    def check_population(cls, patient: Mapping[str, Any]) -> None:
        """Refuse patients outside adults 18-95 years (see ``population`` in the data file)."""
        age = patient.get("age_y", patient.get("age_years"))
        if age is not None:
            _check_age(float(age))

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """No drug: empty PK compartments, every transit amount 1 (INR = BASE)."""
        p = np.atleast_2d(params)
        x = np.zeros((p.shape[0], len(cls.states)))
        x[:, 3:10] = 1.0
        return x

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        """Oral warfarin doses as steps of the cumulative dose (jumps into the depot)."""
        doses = dose_times_h(events)
        cuts = {0.0, float(t_end)}
        cuts.update(t for t, _ in doses if t <= t_end)
        bounds = np.array(sorted(cuts))
        values = np.zeros((len(bounds) - 1, 1, 1))
        for t, amount in doses:
            values[bounds[:-1] >= t - 1e-12, 0, DOSED] += amount
        return InputSchedule(bounds, values)


def dose_times_h(events: Iterable[Event]) -> list[tuple[float, float]]:
    """``(t_h, amount_mg)`` of every oral warfarin dose of ``events`` (repeats expanded).

    Raises :class:`ModelError` naming the event for another drug or a ``steady_state`` flag
    (see :func:`simulate_regimen`).
    """
    out: list[tuple[float, float]] = []
    for e in events:
        if e.type != "oral":
            continue
        drug = str(e["drug"]).strip().lower()
        if drug != DRUG:
            raise ModelError(
                f"event {e.index} (oral): model 'warfarin_hamberg2007' models warfarin, "
                f"got drug {e['drug']!r}"
            )
        if e.get("steady_state"):
            raise ModelError(
                f"event {e.index} (oral): 'steady_state' needs the regimen's steady state as the "
                "start state: use medtwin.pharmacology.warfarin.simulate_regimen"
            )
        for start_min, _ in e.doses():
            out.append((start_min / 60.0, float(e["amount_mg"])))
    return out


def _check_age(age_years: float) -> None:
    pop = _meta()["population"]
    lo, hi = pop["min_age_years"], pop["max_age_years"]
    if not math.isfinite(age_years):
        raise ModelError(f"age_years must be a finite number, got {age_years!r}")
    if not lo <= age_years <= hi:
        raise OutsidePopulationError(
            f"age_years = {age_years:g}: warfarin_hamberg2007 answers for adults aged {lo:g}-{hi:g} "
            "years (Hamberg 2007 studied adults on warfarin; clearance falls linearly with age "
            "above 71 years)"
        )


def _norm_cyp2c9(cyp2c9: str) -> str:
    text = str(cyp2c9).strip().replace(" ", "")
    if text in CYP2C9_DIPLOTYPES:
        return text
    parts = text.split("/")
    if len(parts) == 2:
        flipped = f"{parts[1]}/{parts[0]}"
        if flipped in CYP2C9_DIPLOTYPES:
            return flipped
    raise ModelError(
        f"cyp2c9 = {cyp2c9!r} is not one of the diplotypes of Hamberg 2007 Table 2 "
        f"({', '.join(CYP2C9_DIPLOTYPES)})"
    )


def _norm_vkorc1(vkorc1: str) -> str:
    text = str(vkorc1).strip().upper().replace("/", "")
    if text == "AG":
        text = "GA"
    if text in VKORC1_GENOTYPES:
        return text
    raise ModelError(
        f"vkorc1_1639 = {vkorc1!r} is not one of the VKORC1 -1639 G>A genotypes of "
        f"Hamberg 2007 Table 4 ({', '.join(VKORC1_GENOTYPES)})"
    )


def params_for(
    age_years: float, cyp2c9: str, vkorc1_1639: str, *, base_inr: float | None = None
) -> FloatArray:
    """Typical parameters (``[1, P]``) of a patient of this age and genotype ([1] Tables 2, 4).

    ``CL = 0.314 * (1 - 0.0091 max(0, age - 71)) * (1 - d_CYP2C9)`` L/h; EC50 by VKORC1 genotype.
    Raises :class:`~medtwin.model.base.OutsidePopulationError` outside adults 18-95 years and
    :class:`~medtwin.model.base.ModelError` naming an unknown genotype.

    >>> p = params_for(71, "*3/*3", "AA")
    >>> round(float(p[0, 0]), 4), float(p[0, 5])
    (0.0465, 2.2)
    """
    _check_age(float(age_years))
    dip = _norm_cyp2c9(cyp2c9)
    geno = _norm_vkorc1(vkorc1_1639)
    m = _meta()
    pk, pd = m["pk"], m["pd"]
    typical = {
        "cl_l_per_h": pk["cl_l_per_h"],
        "v1_l": pk["v1_l"],
        "q_l_per_h": pk["q_l_per_h"],
        "v2_l": pk["v2_l"],
        "ka_per_h": pk["ka_per_h"],
        "ec50_mg_l": pd["ec50_mg_l"][geno],
        "gamma": pd["gamma"],
        "emax": pd["emax"],
        "mtt1_h": pd["mtt1_h"],
        "mtt2_h": pd["mtt2_h"],
        "inr_lambda": pd["inr_lambda"],
        "inr_max": pd["inr_max"],
        "base_inr": pd["base_inr"],
        "s_fraction": pk["s_fraction"],
    }
    row = np.array([float(typical[p.name]) for p in PARAMETERS], dtype=np.float64)
    row[CL] = (
        pk["cl_l_per_h"]
        # the age effect only above 71 years: Ravvaz 2017 and reil's HambergPKPD agree
        * (1.0 - pk["cl_age_per_year"] * max(0.0, float(age_years) - pk["age_ref_years"]))
        * (1.0 - pk["cl_fractional_decrease"][dip])
    )
    if base_inr is not None:
        row[BASE] = float(base_inr)
    return WarfarinHamberg2007.check_params(row[None, :])


_ETA = ("cl_l_per_h", "v1_l", "v2_l", "ec50_mg_l", "mtt1_h", "mtt2_h")
_OMEGA = ("omega2_cl", "omega2_v1", "omega2_v2", "omega2_ec50", "omega2_mtt1", "omega2_mtt2")


def sample_population(
    n: int, age_years: float, cyp2c9: str, vkorc1_1639: str, *, seed: int | None = None
) -> FloatArray:
    """``n`` patients of this age and genotype with [1]'s interindividual variability:
    ``P_i = P_typical * exp(eta)``, ``eta ~ N(0, omega^2)`` on CL, V1, V2, EC50, MTT1, MTT2.

    >>> sample_population(3, 60, "*1/*2", "GG", seed=1).shape
    (3, 14)
    """
    if n < 1:
        raise ModelError(f"n must be at least 1, got {n}")
    typical = params_for(age_years, cyp2c9, vkorc1_1639)
    var = _meta()["variability"]
    rng = np.random.default_rng(seed)
    out = np.repeat(typical, n, axis=0)
    for name, omega in zip(_ETA, _OMEGA, strict=True):
        out[:, _P[name]] *= np.exp(rng.normal(0.0, math.sqrt(var[omega]), n))
    return np.clip(out, WarfarinHamberg2007.lower_bounds(), WarfarinHamberg2007.upper_bounds())


def maintenance_dose_mg_per_day(params: FloatArray, target_inr: float = 2.5) -> FloatArray:
    """Daily racemic dose whose steady-state *average* concentration gives ``target_inr``
    with constant concentration (the model's INR link and Emax model solved for Cs; the
    fluctuation over the dosing interval is neglected): ``dose = CL * Css * 24 / s_fraction``.

    >>> round(float(maintenance_dose_mg_per_day(params_for(71, "*1/*1", "GG"))[0]), 2)
    7.89
    """
    p = np.atleast_2d(params)
    scaled = (target_inr - p[:, BASE]) / p[:, INRMAX]
    if np.any(scaled <= 0.0) or np.any(scaled >= 1.0):
        raise ModelError(f"target_inr = {target_inr!r} is outside (BASE, BASE + INRmax)")
    a = 1.0 - scaled ** (1.0 / p[:, LAMBDA])  # A6 * A7 at steady state = (1 - E)^2
    effect = 1.0 - np.sqrt(a)
    if np.any(effect >= p[:, EMAX]):
        raise ModelError(f"target_inr = {target_inr!r} needs more than the maximal inhibition")
    ratio = effect / (p[:, EMAX] - effect)
    css = p[:, EC50] * ratio ** (1.0 / p[:, GAMMA])
    return np.asarray(p[:, CL] * css * 24.0 / p[:, SFRAC], dtype=np.float64)


def observe(
    values: FloatArray,
    observable: Literal["inr", "s_warfarin_conc_mg_l"],
    *,
    seed: int | None = None,
    steady_state: bool = True,
) -> FloatArray:
    """``values`` as they would be measured: the exponential residual error of [1]
    (``y = f * exp(eps)``, ``eps ~ N(0, sigma^2)``; INR sigma 0.0325 (Table 4); S-warfarin
    concentration 0.301 at steady state or 0.0908 after a single dose (Table 2)).

    >>> observe(np.array([2.0, 2.5]), "inr", seed=1).round(3)
    array([2.023, 2.568])
    """
    var = _meta()["variability"]
    if observable == "inr":
        sd = var["sigma_inr"]
    elif observable == "s_warfarin_conc_mg_l":
        sd = var["sigma_conc_steady_state" if steady_state else "sigma_conc_single_dose"]
    else:
        raise ModelError(
            f"observable {observable!r} has no residual error model "
            "(known: inr, s_warfarin_conc_mg_l)"
        )
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return np.asarray(v * np.exp(rng.normal(0.0, sd, v.shape)), dtype=np.float64)


def _pk_matrices(p: FloatArray) -> FloatArray:
    """The PK system matrices ``[N, 3, 3]`` (depot, central, peripheral) of params ``[N, P]``."""
    n = p.shape[0]
    k10, k12, k21 = p[:, CL] / p[:, V1], p[:, Q] / p[:, V1], p[:, Q] / p[:, V2]
    m = np.zeros((n, 3, 3))
    m[:, 0, 0] = -p[:, KA]
    m[:, 1, 0] = p[:, KA]
    m[:, 1, 1] = -(k10 + k12)
    m[:, 1, 2] = k21
    m[:, 2, 1] = k12
    m[:, 2, 2] = -k21
    return m


def _transit_matrices(p: FloatArray) -> FloatArray:
    """The transit-chain matrices ``[N, 7, 7]`` (chain 1: A1-A6, chain 2: A7)."""
    n = p.shape[0]
    ktr1, ktr2 = 6.0 / p[:, MTT1], 1.0 / p[:, MTT2]
    m = np.zeros((n, 7, 7))
    for i in range(6):
        m[:, i, i] = -ktr1
        if i > 0:
            m[:, i, i - 1] = ktr1
    m[:, 6, 6] = -ktr2
    return m


def _expm(a: FloatArray) -> FloatArray:
    """Matrix exponentials of a stack ``[N, n, n]``: scaling and squaring with an 18-term
    Taylor series (the scaled norms are at most 1/2, so the truncation error is below 1e-20);
    vectorised over the stack, unlike ``scipy.linalg.expm``'s per-matrix Pade loop."""
    norm = float(np.abs(a).sum(axis=-1).max()) if a.size else 0.0
    s = max(0, math.ceil(math.log2(norm / 0.5))) if norm > 0.5 else 0
    x = a / 2.0**s
    eye = np.broadcast_to(np.eye(a.shape[-1]), a.shape)
    out = eye.copy()
    term = eye.copy()
    for k in range(1, 19):
        term = term @ x / k
        out = out + term
    for _ in range(s):
        out = out @ out
    return np.asarray(out, dtype=np.float64)


def steady_state_x0(
    params: FloatArray, amount_mg: float | FloatArray, every_h: float
) -> FloatArray:
    """The state just before a dose (``[N, S]``) when ``amount_mg`` of racemic warfarin has
    been given every ``every_h`` hours for ever (periodic steady state).

    ``amount_mg`` is one number or one per row (``[N]``). The PK is linear: the trough is
    ``(I - Phi)^-1 Phi d`` with ``Phi = expm(K tau)``. Given that concentration profile the
    transit chains are linear too: one interval simulated from empty chains (the dose put in
    the depot at its start) gives ``r``, and the trough is ``(I - Phi_A)^-1 r``. All rows at
    once (batched matrix exponentials and one batched simulation).
    """
    from medtwin.model.events import Scenario
    from medtwin.model.solver import simulate

    p = WarfarinHamberg2007.check_params(params)
    n = p.shape[0]
    amounts = np.broadcast_to(np.asarray(amount_mg, dtype=np.float64), (n,)).copy()
    if not (np.all(np.isfinite(amounts)) and np.all(amounts > 0.0)):
        raise ModelError(f"amount_mg must be a positive number, got {amount_mg!r}")
    if not (math.isfinite(every_h) and every_h > 0.0):
        raise ModelError(f"every_h must be a positive number, got {every_h!r}")
    x0 = np.zeros((n, len(WarfarinHamberg2007.states)))
    phi = _expm(_pk_matrices(p) * every_h)
    dose = np.zeros((n, 3))
    dose[:, 0] = p[:, SFRAC] * amounts
    x0[:, :3] = np.linalg.solve(np.eye(3)[None] - phi, (phi @ dose[:, :, None]))[:, :, 0]
    start = x0.copy()
    start[:, 3:] = 0.0
    start[:, 0] += dose[:, 0]  # the dose at the start of the interval, already in the depot
    r = simulate(
        WarfarinHamberg2007, p, Scenario(()), t_end=every_h, times=[0.0, every_h], x0=start
    )
    end = r.states[:, -1, :]
    phi_a = _expm(_transit_matrices(p) * every_h)
    x0[:, 3:] = np.linalg.solve(np.eye(7)[None] - phi_a, end[:, 3:, None])[:, :, 0]
    return x0


def inr_of_states(params: FloatArray, states: FloatArray) -> FloatArray:
    """The INR (``[N]``) of states ``[N, S]`` (``INR = BASE + INRmax (1 - A6 A7)^lambda``)."""
    return np.asarray(_inr(np.asarray(states)[:, None, :], np.atleast_2d(params))[:, 0])


def simulate_regimen(
    params: FloatArray, scenario: Scenario, *, t_end: float, **options: Any
) -> Any:
    """:func:`medtwin.model.simulate` of this model, honouring ``steady_state``: an oral event
    with ``steady_state: true`` (at t = 0, with ``every_*``) starts at that regimen's periodic
    steady state (:func:`steady_state_x0`); the other events are simulated as usual.
    """
    from medtwin.model.solver import simulate

    flagged = [e for e in scenario.events if e.type == "oral" and e.get("steady_state")]
    if len(flagged) > 1:
        raise ModelError("only one oral event may carry steady_state: true")
    if not flagged:
        return simulate(WarfarinHamberg2007, params, scenario, t_end=t_end, **options)
    e = flagged[0]
    if e.t_min != 0.0 or e.get("every_min") is None:
        raise ModelError(
            f"event {e.index} (oral): steady_state needs t = 0 and every_h (the regimen that "
            "has been running up to the start of the simulation)"
        )
    x0 = steady_state_x0(params, float(e["amount_mg"]), float(e["every_min"]) / 60.0)
    fields = {k: v for k, v in e.fields.items() if k != "steady_state"}
    plain = Event(e.type, e.t_min, fields, e.index)
    events = tuple(plain if ev is e else ev for ev in scenario.events)
    return simulate(WarfarinHamberg2007, params, Scenario(events), t_end=t_end, x0=x0, **options)


def covariates_from_calls(calls: Iterable[Any]) -> dict[str, str]:
    """``{"cyp2c9": ..., "vkorc1_1639": ...}`` from medtwin's PGx calls
    (:class:`medtwin.pharmacology.pgx.caller.GeneCall` objects or their ``to_dict()``).

    The VKORC1 call is on rs9923231 (plus strand C>T = -1639 G>A on the gene's strand): each
    variant (T) allele is one -1639A. Raises :class:`ModelError` when a gene is not called or
    the CYP2C9 diplotype is not one of Hamberg 2007's six.
    """
    by_gene: dict[str, Any] = {}
    for c in calls:
        gene = c["gene"] if isinstance(c, Mapping) else c.gene
        dip = c["diplotype"] if isinstance(c, Mapping) else c.diplotype
        by_gene[str(gene)] = dip
    for gene in ("CYP2C9", "VKORC1"):
        if by_gene.get(gene) is None:
            raise ModelError(f"{gene} is not called: warfarin_hamberg2007 needs its genotype")
    return {
        "cyp2c9": covariate_from_call("CYP2C9", str(by_gene["CYP2C9"])),
        "vkorc1_1639": covariate_from_call("VKORC1", str(by_gene["VKORC1"])),
    }


def covariate_from_call(gene: str, diplotype: str) -> str:
    """The model's covariate for one gene's PGx call: the CYP2C9 diplotype (one of Hamberg
    2007's six) or the VKORC1 -1639 genotype from an rs9923231 reference/variant call (each
    variant allele is one -1639A). Raises :class:`ModelError` naming what cannot be used.

    >>> covariate_from_call("VKORC1", "rs9923231 reference (C)/rs9923231 variant (T)")
    'GA'
    """
    if gene == "CYP2C9":
        return _norm_cyp2c9(diplotype)
    if gene != "VKORC1":
        raise ModelError(f"gene {gene!r} is not a covariate of warfarin_hamberg2007")
    alleles = diplotype.split("/")
    if len(alleles) != 2 or not all(("variant" in a) or ("reference" in a) for a in alleles):
        raise ModelError(
            f"VKORC1 diplotype {diplotype!r} is not an rs9923231 reference/variant call"
        )
    n_a = sum("variant" in a for a in alleles)
    return ("GG", "GA", "AA")[n_a]


@cache
def _presets() -> dict[str, FloatArray]:
    return {
        f"{d} {g}": params_for(71.0, d, g)[0] for d in CYP2C9_DIPLOTYPES for g in VKORC1_GENOTYPES
    }


MODELS = (WarfarinHamberg2007,)
