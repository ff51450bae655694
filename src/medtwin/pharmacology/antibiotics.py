"""Population PK models of IV antibiotics for therapeutic drug monitoring.

Three models, each a Model (the ODE path of :mod:`medtwin.model`, time unit h) and a
:class:`PopPKModel` (typical values + covariate effects + etas, omega matrix and residual
error, all read from ``data/<name>.toml`` with their citations):

- ``vancomycin_goti2018``: two compartments, Goti et al. Ther Drug Monit 2018;40(2):212-221
  (Table 2): ``CL = 4.5 (CrCL/120)^0.8 0.7^DIAL``, ``V1 = 58.4 (WT/70) 0.5^DIAL``, ``Q = 6.5``,
  ``V2 = 38.4 (WT/70)``; CrCL Cockcroft-Gault (total body weight; serum creatinine at least
  1 mg/dL above 60 y), capped at 150 mL/min;
- ``vancomycin_buelga2005``: one compartment, Buelga et al. Antimicrob Agents Chemother
  2005;49(12):4934-4941 (Table 4): ``CL (L/h) = 1.08 CrCL (L/h)``, ``V = 0.98 TBW``;
- ``gentamicin_hull1976``: one compartment, Hull & Sarubbi Ann Intern Med 1976;85:183-189:
  ``kel = 0.00293 CrCL + 0.014``, ``V = 0.26 L/kg`` (ideal or adjusted body weight).

Individual parameters are ``typical(covariates) * exp(eta)``, ``eta ~ N(0, Omega)``; the
observation model is ``y = f (1 + eps_prop) + eps_add`` (variance ``add^2 + (prop f)^2``).
The analytic solution lives in :mod:`medtwin.pharmacology.pk`; ``docs/models/vancomycin.md``
and ``docs/models/gentamicin.md`` are the model cards.

>>> from medtwin.pharmacology.covariates import PatientCovariates
>>> pop = get_pop_model("vancomycin_goti2018")
>>> pt = PatientCovariates.from_dict({"age_years": 50, "weight_kg": 70, "sex": "male",
...     "creatinine_mg_dl": 1.0})
>>> [round(float(x), 3) for x in pop.individual(pt)[0]]  # CL, V1, Q, V2
[3.495, 58.4, 6.5, 38.4]
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
from medtwin.model.events import Event
from medtwin.pharmacology.covariates import PatientCovariates
from medtwin.pharmacology.pk import modes

__all__ = [
    "MODELS",
    "POP_MODEL_NAMES",
    "GentamicinHull1976",
    "PopPKModel",
    "ResidualError",
    "VancomycinBuelga2005",
    "VancomycinGoti2018",
    "get_pop_model",
]


@cache
def _data(name: str) -> dict[str, Any]:
    root = resources.files("medtwin.pharmacology").joinpath("data")
    return tomllib.loads(root.joinpath(f"{name}.toml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- ODE kernels (per row)
# states: central amount (mg), [peripheral amount (mg)], AUC of the central concentration
# inputs: infusion rate (mg/h), bolus (mg, an impulse at the segment start), impulse counter
RATE, BOLUS, IMPULSES = 0, 1, 2


def _rhs_1c(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    """One compartment: dA/dt = rate - CL/V A; dAUC/dt = A/V (p = [CL, V])."""
    dx[0] = u[RATE] - p[0] / p[1] * x[0]
    dx[1] = x[0] / p[1]


def _rhs_2c(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    """Two compartments (p = [CL, V1, Q, V2]): dA1/dt = rate - (CL + Q)/V1 A1 + Q/V2 A2,
    dA2/dt = Q/V1 A1 - Q/V2 A2; dAUC/dt = A1/V1."""
    c1 = x[0] / p[1]
    c2 = x[1] / p[3]
    dx[0] = u[RATE] - p[0] * c1 - p[2] * (c1 - c2)
    dx[1] = p[2] * (c1 - c2)
    dx[2] = c1


def _jump_row(x: Any, p: Any, u_before: Any, u_after: Any) -> None:
    """An IV bolus adds its amount to the central compartment when its segment begins."""
    x[0] += u_after[BOLUS]


def _conc(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(states[..., 0] / params[:, None, 1], dtype=np.float64)


class _LinearIV(Model):
    """Shared parts of the linear IV models (time unit h, ``infusion`` events)."""

    time_unit: ClassVar[Literal["min", "h", "d"]] = "h"
    event_types: ClassVar[frozenset[str]] = frozenset({"infusion"})
    inputs: ClassVar[tuple[Variable, ...]] = (
        Variable("rate_mg_per_h", "mg/h", "IV infusion rate"),
        Variable("bolus_mg", "mg", "IV bolus given at the start of the segment"),
        Variable("impulses_so_far", "1", "bolus segments begun so far (keeps two boluses apart)"),
    )
    default_rtol: ClassVar[float] = 1e-9
    default_atol: ClassVar[float] = 1e-9
    jump_row: ClassVar[Any] = staticmethod(_jump_row)
    data_name: ClassVar[str]
    loinc: ClassVar[tuple[str, ...]]

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """``typical``: the typical patient of the source (see :meth:`PopPKModel.reference`)."""
        pop = get_pop_model(cls.name)
        return {"typical": pop.individual(pop.reference())[0]}

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """No drug at t = 0."""
        return np.zeros((np.atleast_2d(params).shape[0], len(cls.states)))

    @classmethod
    def check_population(cls, patient: Mapping[str, Any]) -> None:
        """Refuse ages and weights outside the source population (see the data file)."""
        popn = _data(cls.data_name)["population"]
        age = patient.get("age_y")
        if age is not None and not popn["age_min_years"] <= float(age) <= popn["age_max_years"]:
            raise OutsidePopulationError(
                f"{cls.name}: age {age} y outside the model's population "
                f"({popn['age_min_years']:g}-{popn['age_max_years']:g} y)"
            )
        wt = patient.get("weight_kg")
        if wt is not None and not popn["weight_min_kg"] <= float(wt) <= popn["weight_max_kg"]:
            raise OutsidePopulationError(
                f"{cls.name}: weight {wt} kg outside the model's population "
                f"({popn['weight_min_kg']:g}-{popn['weight_max_kg']:g} kg)"
            )

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        """Infusions as rates on ``[start, start + duration)``; duration 0 as a bolus impulse.

        ``steady_state`` is not simulated on this path (the history before t = 0 has no
        state here): use the closed forms of :mod:`medtwin.pharmacology.pk`.
        """
        n = np.atleast_2d(params).shape[0]
        infusions: list[tuple[float, float, float]] = []  # start h, end h, rate mg/h
        boluses: list[tuple[float, float]] = []
        for ev in events:
            if ev.type != "infusion":
                raise ModelError(f"event {ev.index}: model {cls.name!r} takes infusion events")
            if ev.get("steady_state", False):
                raise ModelError(
                    f"event {ev.index}: steady_state is computed by the closed form "
                    "(medtwin.pharmacology.pk), not by the ODE path"
                )
            amount = float(ev["amount_mg"])
            for start_min, dur_min in ev.doses():
                start, dur = start_min / 60.0, dur_min / 60.0
                if dur <= 0:
                    boluses.append((start, amount))
                else:
                    infusions.append((start, start + dur, amount / dur))
        cuts = {0.0, float(t_end)}
        cuts |= {s for s, _, _ in infusions} | {e for _, e, _ in infusions}
        cuts |= {s for s, _ in boluses}
        bounds = np.array(sorted(c for c in cuts if 0.0 <= c <= t_end))
        starts = bounds[:-1]
        values = np.zeros((len(starts), n, len(cls.inputs)))
        for s, e, rate in infusions:
            on = (starts >= s - 1e-12) & (starts < e - 1e-12)
            values[on, :, RATE] += rate
        hit = set()
        for s, amount in boluses:
            k = int(np.searchsorted(starts, s - 1e-12))
            if k < len(starts):
                values[k, :, BOLUS] += amount
                hit.add(k)
        for k in sorted(hit):
            values[k:, :, IMPULSES] += 1.0
        return InputSchedule(bounds, values)


def _param(name: str, unit: str, desc: str, typical: float, omega: float, source: str) -> Parameter:
    return Parameter(
        name=name,
        unit=unit,
        description=desc,
        lower=1e-4,
        upper=1e5,
        prior=Prior("lognormal", math.log(typical), math.sqrt(omega), source),
        source=source,
    )


# ---------------------------------------------------------------- population models
@dataclass(frozen=True)
class ResidualError:
    """Residual error model: ``additive``, ``proportional`` or ``combined``
    (``var = additive_mg_l^2 + (proportional f)^2``)."""

    kind: Literal["additive", "proportional", "combined"]
    proportional: float
    additive_mg_l: float

    def variance(self, pred: FloatArray) -> FloatArray:
        """Variance (mg^2/L^2) of a measured level around the prediction ``pred``."""
        f = np.asarray(pred, dtype=np.float64)
        var = self.additive_mg_l**2 + (self.proportional * f) ** 2
        return np.asarray(np.maximum(var, 1e-12), dtype=np.float64)


@dataclass(frozen=True)
class PopPKModel:
    """A population PK model: typical values with covariate effects, etas and residual error.

    ``typical(covariates)`` returns the typical individual parameters (in the Model's
    parameter order); ``eta_index[j]`` is the parameter column eta ``j`` acts on
    (``value = typical * exp(eta)``); ``omega`` the eta covariance.
    """

    name: str
    drug: str
    model: type[_LinearIV]
    citation: str
    omega: FloatArray
    eta_names: tuple[str, ...]
    eta_index: tuple[int, ...]
    residual: ResidualError
    population: Mapping[str, Any]
    dosing: Mapping[str, Any]
    typical_fn: Callable[[PatientCovariates, Mapping[str, Any]], list[float]] = field(repr=False)
    theta: Mapping[str, Any] = field(default_factory=dict)
    reference_covariates: Mapping[str, Any] = field(default_factory=dict)

    @property
    def compartments(self) -> int:
        """1 or 2."""
        return 2 if len(self.model.parameters) == 4 else 1

    def reference(self) -> PatientCovariates:
        """The source's reference patient (the ``typical`` preset)."""
        return PatientCovariates.from_dict(self.reference_covariates)

    def check_patient(self, pt: PatientCovariates) -> float:
        """Refuse (:class:`OutsidePopulationError`) a patient outside the source population;
        returns the creatinine clearance (mL/min) the model uses."""
        popn = self.population
        where = f"{self.name} ({self.citation.split('.')[0]})"
        if not popn["age_min_years"] <= pt.age_years <= popn["age_max_years"]:
            raise OutsidePopulationError(
                f"{where}: age {pt.age_years:g} y is outside the model's population "
                f"({popn['age_min_years']:g}-{popn['age_max_years']:g} y)"
            )
        if not popn["weight_min_kg"] <= pt.weight_kg <= popn["weight_max_kg"]:
            raise OutsidePopulationError(
                f"{where}: weight {pt.weight_kg:g} kg is outside the model's population "
                f"({popn['weight_min_kg']:g}-{popn['weight_max_kg']:g} kg)"
            )
        if pt.dialysis and not popn["dialysis"]:
            raise OutsidePopulationError(
                f"{where}: patients on dialysis were not part of the model's population"
            )
        if pt.pregnant and not popn.get("pregnancy", False):
            raise OutsidePopulationError(
                f"{where}: pregnancy was not part of the model's population: {popn['pregnancy_basis']}"
            )
        crcl = pt.crcl_ml_min(
            self._crcl_weight(),
            scr_floor_mg_dl=float(popn.get("scr_floor_mg_dl", 0.0)),
            scr_floor_above_age_years=float(popn.get("scr_floor_above_age_years", math.inf)),
        )
        if crcl < popn["crcl_min_ml_min"]:
            raise OutsidePopulationError(
                f"{where}: creatinine clearance {crcl:.1f} mL/min is below the model's "
                f"population ({popn['crcl_min_ml_min']:g} mL/min)"
            )
        if crcl > popn["crcl_cap_ml_min"] and self.name != "vancomycin_goti2018":
            raise OutsidePopulationError(
                f"{where}: creatinine clearance {crcl:.1f} mL/min is above the model's "
                f"population ({popn['crcl_cap_ml_min']:g} mL/min)"
            )
        return min(crcl, float(popn["crcl_cap_ml_min"]))

    def _crcl_weight(self) -> str:
        kind = str(self.population["dosing_weight"])
        return "total" if kind == "total" else kind

    def dosing_weight_kg(self, pt: PatientCovariates) -> float:
        """The weight the model was built with (total, or ideal/adjusted), kg."""
        t = self.theta
        return pt.dosing_weight_kg(
            str(self.population["dosing_weight"]),
            obesity_ratio=float(t.get("obesity_ratio", 1.3)),
            fraction=float(t.get("adjusted_weight_fraction", 0.4)),
        )

    def typical(self, pt: PatientCovariates) -> FloatArray:
        """Typical individual parameters ``[P]`` of this patient (population checked)."""
        crcl = self.check_patient(pt)
        ctx = {"crcl_ml_min": crcl, "dosing_weight_kg": self.dosing_weight_kg(pt)}
        return np.array(self.typical_fn(pt, {**self.theta, **ctx}), dtype=np.float64)

    def individual(self, pt: PatientCovariates, etas: FloatArray | None = None) -> FloatArray:
        """Individual parameters ``[N, P]`` for etas ``[N, E]`` (none: the typical patient)."""
        typ = self.typical(pt)
        if etas is None:
            return typ[None, :]
        e = np.atleast_2d(np.asarray(etas, dtype=np.float64))
        out = np.repeat(typ[None, :], e.shape[0], axis=0)
        for j, col in enumerate(self.eta_index):
            out[:, col] *= np.exp(e[:, j])
        return out

    def from_typical(self, typ: FloatArray, etas: FloatArray) -> FloatArray:
        """Like :meth:`individual` from precomputed typical parameters ``[P]``."""
        e = np.atleast_2d(np.asarray(etas, dtype=np.float64))
        out = np.repeat(np.asarray(typ)[None, :], e.shape[0], axis=0)
        for j, col in enumerate(self.eta_index):
            out[:, col] *= np.exp(e[:, j])
        return out

    def modes(self, params: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Closed-form modes (see :func:`medtwin.pharmacology.pk.modes`) of ``[N, P]`` params."""
        p = np.atleast_2d(params)
        if self.compartments == 2:
            return modes(p[:, 0], p[:, 1], p[:, 2], p[:, 3])
        return modes(p[:, 0], p[:, 1])

    def describe(self) -> dict[str, Any]:
        """The population model as plain data."""
        return {
            "name": self.name,
            "drug": self.drug,
            "citation": self.citation,
            "compartments": self.compartments,
            "parameters": self.model.parameter_names(),
            "theta": dict(self.theta),
            "eta": list(self.eta_names),
            "omega": self.omega.tolist(),
            "residual": {
                "kind": self.residual.kind,
                "proportional": self.residual.proportional,
                "additive_mg_l": self.residual.additive_mg_l,
            },
            "population": dict(self.population),
        }


def _goti_typical(pt: PatientCovariates, t: Mapping[str, Any]) -> list[float]:
    """Goti 2018 Table 2: CL = 4.5 (CrCL/120)^0.8 0.7^DIAL; V1 = 58.4 (WT/70) 0.5^DIAL;
    V2 = 38.4 (WT/70) (Methods: volumes normalised to 70 kg; the pinned reading)."""
    dial = 1.0 if pt.dialysis else 0.0
    cl = t["cl_l_per_h"] * (t["crcl_ml_min"] / t["crcl_reference_ml_min"]) ** t["crcl_exponent"]
    cl *= t["dialysis_factor_cl"] ** dial
    v1 = t["v1_l"] * (pt.weight_kg / t["weight_reference_kg"]) * t["dialysis_factor_v1"] ** dial
    v2 = t["v2_l"] * (pt.weight_kg / t["weight_reference_kg"])
    return [cl, v1, t["q_l_per_h"], v2]


def _buelga_typical(pt: PatientCovariates, t: Mapping[str, Any]) -> list[float]:
    """Buelga 2005 Table 4: CL (L/h) = 1.08 CrCL (L/h); V = 0.98 TBW."""
    return [t["cl_per_crcl"] * t["crcl_ml_min"] * 0.06, t["v_l_per_kg"] * pt.weight_kg]


def _hull_typical(pt: PatientCovariates, t: Mapping[str, Any]) -> list[float]:
    """Hull & Sarubbi 1976: kel = 0.00293 CrCL + 0.014; V = 0.26 L/kg dosing weight; CL = kel V."""
    kel = t["kel_slope_per_h_per_ml_min"] * t["crcl_ml_min"] + t["kel_intercept_per_h"]
    v = t["v_l_per_kg"] * t["dosing_weight_kg"]
    return [kel * v, v]


class VancomycinGoti2018(_LinearIV):
    """Vancomycin, two compartments (Goti et al. 2018); see the module docstring."""

    name: ClassVar[str] = "vancomycin_goti2018"
    version: ClassVar[str] = "1.0.0"
    title: ClassVar[str] = "Vancomycin two-compartment PK, hospitalized adults +/- haemodialysis"
    references: ClassVar[tuple[str, ...]] = (
        "Goti V, Chaturvedula A, Fossler MJ, Mok S, Jacob JT. Ther Drug Monit 2018;40(2):212-221",
    )
    data_name: ClassVar[str] = "vancomycin_goti2018"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        _param("cl_l_per_h", "L/h", "clearance", 4.5, 0.1584, "Goti 2018 Table 2"),
        _param("v1_l", "L", "central volume", 58.4, 0.6659, "Goti 2018 Table 2"),
        _param("q_l_per_h", "L/h", "intercompartmental clearance", 6.5, 0.0, "Goti 2018 Table 2"),
        _param("v2_l", "L", "peripheral volume", 38.4, 0.3260, "Goti 2018 Table 2"),
    )
    states: ClassVar[tuple[Variable, ...]] = (
        Variable("a1_mg", "mg", "vancomycin in the central compartment", "A1", nonnegative=True),
        Variable("a2_mg", "mg", "vancomycin in the peripheral compartment", "A2", nonnegative=True),
        Variable("auc_mg_h_per_l", "mg*h/L", "area under the central concentration", "AUC"),
    )
    observables: ClassVar[tuple[Observable, ...]] = (
        Observable(
            "conc_mg_l",
            "mg/L",
            "serum vancomycin concentration A1/V1",
            ("20578-1", "4092-3", "4090-7"),
            _conc,
        ),
    )
    rhs_row: ClassVar[Any] = staticmethod(_rhs_2c)
    compiled_module: ClassVar[str | None] = "medtwin.pharmacology._pk2_numba"


class VancomycinBuelga2005(_LinearIV):
    """Vancomycin, one compartment (Buelga et al. 2005); see the module docstring."""

    name: ClassVar[str] = "vancomycin_buelga2005"
    version: ClassVar[str] = "1.0.0"
    title: ClassVar[str] = "Vancomycin one-compartment PK, adults with haematological malignancies"
    references: ClassVar[tuple[str, ...]] = (
        "Buelga DS, Fernandez de Gatta MM, Herrera EV, Dominguez-Gil A, Garcia MJ. "
        "Antimicrob Agents Chemother 2005;49(12):4934-4941",
    )
    data_name: ClassVar[str] = "vancomycin_buelga2005"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        _param("cl_l_per_h", "L/h", "clearance", 5.832, 0.07631, "Buelga 2005 Table 4"),
        _param("v_l", "L", "volume of distribution", 63.7, 0.12930, "Buelga 2005 Table 4"),
    )
    states: ClassVar[tuple[Variable, ...]] = (
        Variable("a_mg", "mg", "vancomycin in the body", "A", nonnegative=True),
        Variable("auc_mg_h_per_l", "mg*h/L", "area under the concentration", "AUC"),
    )
    observables: ClassVar[tuple[Observable, ...]] = (
        Observable(
            "conc_mg_l",
            "mg/L",
            "serum vancomycin concentration A/V",
            ("20578-1", "4092-3", "4090-7"),
            _conc,
        ),
    )
    rhs_row: ClassVar[Any] = staticmethod(_rhs_1c)
    compiled_module: ClassVar[str | None] = "medtwin.pharmacology._pk1_numba"


class GentamicinHull1976(_LinearIV):
    """Gentamicin, one compartment (Hull & Sarubbi 1976); see the module docstring."""

    name: ClassVar[str] = "gentamicin_hull1976"
    version: ClassVar[str] = "1.0.0"
    title: ClassVar[str] = "Gentamicin one-compartment PK, adults (Hull-Sarubbi)"
    references: ClassVar[tuple[str, ...]] = (
        "Hull JH, Sarubbi FA Jr. Ann Intern Med 1976;85(2):183-189",
        "Bauer LA. Applied Clinical Pharmacokinetics, 3rd ed. McGraw-Hill 2014, ch. 4",
    )
    data_name: ClassVar[str] = "gentamicin_hull1976"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        _param(
            "cl_l_per_h",
            "L/h",
            "clearance kel V",
            5.587,
            0.08618,
            "typical: Hull & Sarubbi 1976 (via Bauer ch. 4); spread: medtwin assumption (CV 30 %)",
        ),
        _param(
            "v_l",
            "L",
            "volume of distribution",
            18.2,
            0.03922,
            "typical: Bauer ch. 4 (0.26 L/kg); spread: medtwin assumption (CV 20 %)",
        ),
    )
    states: ClassVar[tuple[Variable, ...]] = (
        Variable("a_mg", "mg", "gentamicin in the body", "A", nonnegative=True),
        Variable("auc_mg_h_per_l", "mg*h/L", "area under the concentration", "AUC"),
    )
    observables: ClassVar[tuple[Observable, ...]] = (
        Observable(
            "conc_mg_l",
            "mg/L",
            "serum gentamicin concentration A/V",
            ("35668-3", "3665-7", "3663-2"),
            _conc,
        ),
    )
    rhs_row: ClassVar[Any] = staticmethod(_rhs_1c)
    compiled_module: ClassVar[str | None] = "medtwin.pharmacology._pk1_numba"


_CLASSES: dict[str, tuple[type[_LinearIV], Callable[..., list[float]], dict[str, Any]]] = {
    "vancomycin_goti2018": (
        VancomycinGoti2018,
        _goti_typical,
        {"age_years": 57, "weight_kg": 70, "sex": "male", "crcl_ml_min": 120},
    ),
    "vancomycin_buelga2005": (
        VancomycinBuelga2005,
        _buelga_typical,
        {"age_years": 51.5, "weight_kg": 65, "sex": "male", "crcl_ml_min": 90},
    ),
    "gentamicin_hull1976": (
        GentamicinHull1976,
        _hull_typical,
        {"age_years": 50, "weight_kg": 70, "height_cm": 175, "sex": "male", "crcl_ml_min": 100},
    ),
}

POP_MODEL_NAMES: tuple[str, ...] = tuple(_CLASSES)
"""Names of the population PK models (also Model names in the registry)."""


@cache
def get_pop_model(name: str) -> PopPKModel:
    """The population model called ``name`` (read from its data file)."""
    if name not in _CLASSES:
        raise ModelError(f"unknown dosing model {name!r} (known: {', '.join(POP_MODEL_NAMES)})")
    cls, fn, ref = _CLASSES[name]
    d = _data(cls.data_name)
    names = tuple(d["omega"]["names"])
    pnames = cls.parameter_names()
    res = d["residual"]
    return PopPKModel(
        name=name,
        drug=d["model"]["drug"],
        model=cls,
        citation=d["model"]["citation"],
        omega=np.array(d["omega"]["matrix"], dtype=np.float64),
        eta_names=names,
        eta_index=tuple(pnames.index(n) for n in names),
        residual=ResidualError(
            res["kind"], float(res["proportional"]), float(res["additive_mg_l"])
        ),
        population=d["population"],
        dosing=d["dosing"],
        typical_fn=fn,
        theta=d["theta"],
        reference_covariates=ref,
    )


MODELS = (VancomycinGoti2018, VancomycinBuelga2005, GentamicinHull1976)
