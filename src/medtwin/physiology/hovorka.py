"""The Hovorka 2004 glucose-insulin model of type 1 diabetes (``hovorka_2004``).

The model of glucoregulation of Hovorka et al. 2004 [1]_ (section 2), behind the same
interface as :mod:`medtwin.physiology.uva_padova` (the same events and observables), with an
interstitial glucose compartment for CGM after Wilinska et al. 2010 [2]_:

- **glucose subsystem** (Q1 accessible, Q2 non-accessible, mmol)::

      dQ1/dt = -(F01c / (VG G) + x1) Q1 + k12 Q2 - FR + UG + EGP0 (1 - x3)
      dQ2/dt = x1 Q1 - (k12 + x2) Q2,          G = Q1 / VG

  F01c = F01 if G >= 4.5 mmol/L, else F01 G / 4.5 (total non-insulin-dependent flux);
  FR = 0.003 (G - 9) VG if G >= 9 mmol/L, else 0 (renal clearance);
- **insulin absorption** (S1, S2, mU): dS1/dt = u - S1 / tmax,I, dS2/dt = (S1 - S2) / tmax,I,
  UI = S2 / tmax,I; **plasma insulin** (I, mU/L): dI/dt = UI / VI - ke I;
- **insulin action** (x1, x2 1/min; x3 dimensionless): dx_i/dt = -ka_i x_i + kb_i I with
  kb_i = S_I,i ka_i (SfIT, SfID, SfIE of Table 1);
- **gut absorption** (D1, D2, mmol): dD1/dt = -D1 / tmax,G, dD2/dt = (D1 - D2) / tmax,G,
  UG = D2 / tmax,G; a meal of DG mmol adds AG DG to D1 at its time, which is the state-space
  form of the paper's UG(t) = DG AG t exp(-t / tmax,G) / tmax,G^2;
- **interstitial glucose** (C, mmol/L): dC/dt = (G - C) / tau_IG ([2], measurement model).

Volumes and fluxes of Table 1 are per kg of body weight (VG, VI, F01, EGP0); the kernel
multiplies them by ``bw_kg``. Parameters, their sources, bounds and priors are in
``data/hovorka_2004/parameters.toml``; see ``docs/models/hovorka.md``.

Inputs from events: a ``meal`` (carbs_g, counted as glucose, 180.16 mg/mmol) and a ``bolus``
(insulin_u) are impulses, applied by :func:`_jump_row` when the schedule segment that starts
at their time begins (into D1 and S1); ``basal`` is a subcutaneous rate (U/h) from its time
on; without ``u_per_h`` it is the patient's own steady-state basal, the rate that holds
plasma glucose at ``gb_mg_dl`` (:func:`steady_state`). The initial state is that steady
state.

References
----------
.. [1] Hovorka R, Canonico V, Chassin LJ, et al. Nonlinear model predictive control of
   glucose concentration in subjects with type 1 diabetes. Physiol Meas 2004;25(4):905-920
   (section 2, the model; Table 1, the parameter values).
.. [2] Wilinska ME, Chassin LJ, Acerini CL, Allen JM, Dunger DB, Hovorka R. Simulation
   environment to evaluate closed-loop insulin delivery systems in type 1 diabetes.
   J Diabetes Sci Technol 2010;4(1):132-144 (glucose measurement model).

>>> from medtwin.model import parse_scenario, simulate
>>> p = Hovorka2004.preset("hovorka_2004_mean")
>>> s = parse_scenario([{"type": "basal"}, {"type": "meal", "t_min": 60, "carbs_g": 50}])
>>> r = simulate(Hovorka2004, p, s, t_end=24 * 60)
>>> bg = r.observables["bg_mg_dl"][0]
>>> round(float(bg[0]), 1), round(float(bg.max())), int(bg.argmax())  # Gb; peak, minute
(108.1, 292, 210)
"""

from __future__ import annotations

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
    Parameter,
    Prior,
    Variable,
)
from medtwin.model.events import Event

__all__ = ["MODELS", "Hovorka2004", "carbs_g_to_mmol", "steady_state"]

_DATA = "data/hovorka_2004"


@cache
def _meta() -> dict[str, Any]:
    root = resources.files("medtwin.physiology").joinpath(_DATA)
    return tomllib.loads(root.joinpath("parameters.toml").read_text(encoding="utf-8"))


_C = _meta()["constants"]
F01_THRESHOLD_MMOL_L: float = float(_C["f01_threshold_mmol_l"])
"""Below 4.5 mmol/L the non-insulin-dependent flux falls in proportion to G ([1] section 2)."""
RENAL_THRESHOLD_MMOL_L: float = float(_C["renal_threshold_mmol_l"])
"""Renal clearance above 9 mmol/L ([1] section 2)."""
RENAL_CLEARANCE_PER_MIN: float = float(_C["renal_clearance_per_min"])
"""FR = 0.003 (G - 9) VG mmol/min ([1] section 2)."""
GLUCOSE_MG_PER_MMOL: float = float(_C["glucose_mg_per_mmol"])
"""Molar mass of glucose: 1 mmol/L = 18.016 mg/dL; 1 g of carbohydrate = 5.55 mmol."""
CGM_MIN_MG_DL: float = float(_C["cgm_min_mg_dl"])
CGM_MAX_MG_DL: float = float(_C["cgm_max_mg_dl"])
MG_DL_PER_MMOL_L = GLUCOSE_MG_PER_MMOL / 10.0


def _parameters() -> tuple[Parameter, ...]:
    meta = _meta()
    out = []
    for spec in meta["parameter"]:
        value = float(spec["value"])
        sd = float(spec["log_sd"])
        if sd > 0:
            prior = Prior("lognormal", math.log(value), sd, spec["prior_source"])
        else:
            prior = Prior("fixed", value, 0.0, spec["source"])
        out.append(
            Parameter(
                name=spec["name"],
                unit=spec["unit"],
                description=spec["description"],
                lower=float(spec["lower"]),
                upper=float(spec["upper"]),
                prior=prior,
                source=spec["source"],
                symbol=spec["symbol"],
            )
        )
    return tuple(out)


PARAMETERS = _parameters()
_P = {p.name: i for i, p in enumerate(PARAMETERS)}
BW = _P["bw_kg"]
EGP0 = _P["egp0_mmol_per_kg_min"]
F01 = _P["f01_mmol_per_kg_min"]
K12 = _P["k12_per_min"]
VG = _P["vg_l_per_kg"]
KA1 = _P["ka1_per_min"]
KA2 = _P["ka2_per_min"]
KA3 = _P["ka3_per_min"]
SIT = _P["sit_per_min_per_mu_l"]
SID = _P["sid_per_min_per_mu_l"]
SIE = _P["sie_per_mu_l"]
TMAXI = _P["tmax_i_min"]
KE = _P["ke_per_min"]
VI = _P["vi_l_per_kg"]
AG = _P["ag_fraction"]
TMAXG = _P["tmax_g_min"]
TAU_IG = _P["tau_ig_min"]
GB = _P["gb_mg_dl"]

# states
Q1, Q2, S1, S2, INS, X1, X2, X3, D1, D2, CIG, ABSORBED = range(12)
# inputs
INSULIN = 0  # subcutaneous insulin rate, mU/min
MEAL_DOSE = 1  # meal glucose given at the start of this segment, mmol (an impulse)
BOLUS_DOSE = 2  # insulin bolus given at the start of this segment, mU (an impulse)
IMPULSES = 3  # impulse segments so far: consecutive impulse segments never share their inputs


def carbs_g_to_mmol(carbs_g: float) -> float:
    """Carbohydrate (g) as glucose (mmol): x 1000 / 180.16.

    >>> round(carbs_g_to_mmol(50.0), 1)
    277.5
    """
    return carbs_g * 1000.0 / GLUCOSE_MG_PER_MMOL


def _rhs_row(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    """Right-hand side of one patient ([1] section 2; interstitial glucose [2]).

    ``x``: the 12 states (see :attr:`Hovorka2004.states`), ``p``: parameters, ``u``: inputs
    (insulin mU/min; the impulse inputs are applied by :func:`_jump_row`); writes ``dx``
    (per minute).
    """
    bw = p[BW]
    vg = p[VG] * bw  # L
    vi = p[VI] * bw  # L
    q1 = x[Q1]
    g = q1 / vg  # mmol/L
    # non-insulin-dependent flux F01c (mmol/min): F01c / (VG G) * Q1 = F01c
    f01 = p[F01] * bw
    f01c = f01 if g >= F01_THRESHOLD_MMOL_L else f01 * g / F01_THRESHOLD_MMOL_L
    fr = (
        RENAL_CLEARANCE_PER_MIN * (g - RENAL_THRESHOLD_MMOL_L) * vg
        if g >= RENAL_THRESHOLD_MMOL_L
        else 0.0
    )
    tmax_g = p[TMAXG]
    ug = x[D2] / tmax_g  # mmol/min
    egp = p[EGP0] * bw * (1.0 - x[X3])
    dx[Q1] = -f01c - x[X1] * q1 + p[K12] * x[Q2] - fr + ug + egp
    dx[Q2] = x[X1] * q1 - (p[K12] + x[X2]) * x[Q2]
    tmax_i = p[TMAXI]
    dx[S1] = u[INSULIN] - x[S1] / tmax_i
    dx[S2] = (x[S1] - x[S2]) / tmax_i
    dx[INS] = x[S2] / tmax_i / vi - p[KE] * x[INS]
    dx[X1] = p[KA1] * (p[SIT] * x[INS] - x[X1])
    dx[X2] = p[KA2] * (p[SID] * x[INS] - x[X2])
    dx[X3] = p[KA3] * (p[SIE] * x[INS] - x[X3])
    dx[D1] = -x[D1] / tmax_g
    dx[D2] = (x[D1] - x[D2]) / tmax_g
    dx[CIG] = (g - x[CIG]) / p[TAU_IG]
    dx[ABSORBED] = ug


def _jump_row(x: Any, p: Any, u_before: Any, u_after: Any) -> None:
    """A meal adds AG x DG (mmol) to D1 and a bolus its insulin (mU) to S1 when the schedule
    segment that starts at their time begins (the impulses of [1] section 2)."""
    x[D1] += p[AG] * u_after[MEAL_DOSE]
    x[S1] += u_after[BOLUS_DOSE]


def steady_state(params: FloatArray) -> dict[str, FloatArray]:
    """The basal steady state at plasma glucose ``gb_mg_dl`` for each parameter set.

    With dQ2/dt = 0, x1 = SfIT I, x2 = SfID I and x3 = SfIE I, dQ1/dt = 0 becomes
    EGP0 (1 - SfIE I) - F01c - FR - SfIT SfID Q1 I^2 / (k12 + SfID I) = 0, a quadratic in
    the plasma insulin I whose one positive root exists when EGP0 > F01c + FR at Gb. The
    basal rate is then u = ke I VI (mU/min; dI/dt = 0, S1 = S2 = u tmax,I).

    Returns ``insulin_mu_l``, ``basal_mu_per_min`` (``[N]`` each). Raises
    :class:`~medtwin.model.base.ModelError` naming the parameter set when no non-negative
    insulin holds the patient at Gb (glucose falls below Gb even without insulin).

    >>> s = steady_state(Hovorka2004.preset("hovorka_2004_mean"))
    >>> round(float(s["insulin_mu_l"][0]), 3), round(float(s["basal_mu_per_min"][0] * 0.06), 3)
    (5.546, 0.386)
    """
    p = np.atleast_2d(np.asarray(params, dtype=np.float64))
    bw = p[:, BW]
    g = p[:, GB] / MG_DL_PER_MMOL_L
    vg = p[:, VG] * bw
    q1 = g * vg
    f01 = p[:, F01] * bw
    f01c = np.where(g >= F01_THRESHOLD_MMOL_L, f01, f01 * g / F01_THRESHOLD_MMOL_L)
    fr = np.where(
        g >= RENAL_THRESHOLD_MMOL_L,
        RENAL_CLEARANCE_PER_MIN * (g - RENAL_THRESHOLD_MMOL_L) * vg,
        0.0,
    )
    egp0 = p[:, EGP0] * bw
    spare = egp0 - f01c - fr
    bad = ~(spare > 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise ModelError(
            f"parameter set {row}: no basal insulin holds glucose at gb_mg_dl = "
            f"{float(p[row, GB])!r}: egp0_mmol_per_kg_min ({float(p[row, EGP0])!r}) must exceed "
            f"the non-insulin-dependent uptake and renal clearance there "
            f"({float((f01c[row] + fr[row]) / bw[row])!r} mmol/kg/min); raise gb_mg_dl or "
            "egp0, or lower f01"
        )
    b = egp0 * p[:, SIE]
    sid, sit, k12 = p[:, SID], p[:, SIT], p[:, K12]
    qa = -(b * sid + sit * sid * q1)
    qb = spare * sid - b * k12
    qc = spare * k12
    # the positive root of qa I^2 + qb I + qc (qa < 0 < qc), written to avoid cancellation
    disc = np.sqrt(qb * qb - 4.0 * qa * qc)
    insulin = 2.0 * qc / (disc - qb)
    basal = p[:, KE] * insulin * p[:, VI] * bw
    return {"insulin_mu_l": insulin, "basal_mu_per_min": basal}


def _bg(states: FloatArray, params: FloatArray) -> FloatArray:
    vg = (params[:, VG] * params[:, BW])[:, None]
    return np.asarray(states[..., Q1] / vg * MG_DL_PER_MMOL_L, dtype=np.float64)


def _cgm(states: FloatArray, params: FloatArray) -> FloatArray:
    c = states[..., CIG] * MG_DL_PER_MMOL_L
    return np.asarray(np.clip(c, CGM_MIN_MG_DL, CGM_MAX_MG_DL), dtype=np.float64)


def _state(name: str, unit: str, description: str, symbol: str) -> Variable:
    return Variable(name, unit, description, symbol, nonnegative=True)


class Hovorka2004(Model):
    """Hovorka 2004 model of glucoregulation in type 1 diabetes; see the module docstring."""

    name: ClassVar[str] = "hovorka_2004"
    version: ClassVar[str] = "1.0.0"
    title: ClassVar[str] = "Hovorka 2004 glucose-insulin model (type 1 diabetes)"
    time_unit: ClassVar[Literal["min", "h", "d"]] = "min"
    references: ClassVar[tuple[str, ...]] = (
        "Hovorka R, Canonico V, Chassin LJ, et al. Physiol Meas 2004;25(4):905-920",
        "Wilinska ME, Chassin LJ, Acerini CL, et al. J Diabetes Sci Technol 2010;4(1):132-144",
    )
    event_types: ClassVar[frozenset[str]] = frozenset({"meal", "bolus", "basal"})
    parameters: ClassVar[tuple[Parameter, ...]] = PARAMETERS
    states: ClassVar[tuple[Variable, ...]] = (
        _state("q1_mmol", "mmol", "glucose in the accessible compartment (plasma)", "Q1"),
        _state("q2_mmol", "mmol", "glucose in the non-accessible compartment", "Q2"),
        _state("s1_mu", "mU", "subcutaneous insulin, first compartment", "S1"),
        _state("s2_mu", "mU", "subcutaneous insulin, second compartment", "S2"),
        _state("i_mu_l", "mU/L", "plasma insulin concentration", "I"),
        _state("x1_per_min", "1/min", "insulin action on glucose distribution/transport", "x1"),
        _state("x2_per_min", "1/min", "insulin action on glucose disposal", "x2"),
        _state("x3_1", "1", "insulin action on endogenous glucose production", "x3"),
        _state("d1_mmol", "mmol", "meal glucose in the gut, first compartment", "D1"),
        _state("d2_mmol", "mmol", "meal glucose in the gut, second compartment", "D2"),
        _state("c_mmol_l", "mmol/L", "interstitial glucose (what a CGM reads)", "C"),
        _state("absorbed_mmol", "mmol", "meal glucose absorbed so far (integral of UG)", "int UG"),
    )
    inputs: ClassVar[tuple[Variable, ...]] = (
        Variable("insulin_mu_per_min", "mU/min", "subcutaneous insulin rate (basal)"),
        Variable("meal_dose_mmol", "mmol", "meal glucose given at the start of the segment"),
        Variable("bolus_dose_mu", "mU", "insulin bolus given at the start of the segment"),
        Variable(
            "impulses_so_far",
            "1",
            "meal or bolus segments begun so far (not used by the equations: it makes every "
            "impulse segment differ from the one before, so a solver that applies jumps only "
            "where the inputs change still applies two equal doses in a row)",
        ),
    )
    observables: ClassVar[tuple[Observable, ...]] = (
        Observable(
            "bg_mg_dl",
            "mg/dL",
            "plasma glucose G = Q1 / VG ([1] section 2), x 18.016 mg/dL per mmol/L",
            ("2339-0", "2345-7"),
            _bg,
        ),
        Observable(
            "cgm_mg_dl",
            "mg/dL",
            "CGM reading: interstitial glucose C ([2]) within 39-600 mg/dL, without sensor noise",
            ("99504-3",),
            _cgm,
        ),
    )

    default_rtol: ClassVar[float] = 1e-7
    default_atol: ClassVar[float] = 1e-6
    """In the states' units: 1e-6 mmol of glucose in ~11 L is 2e-6 mg/dL; 1e-6 mU of insulin."""

    rhs_row: ClassVar[Any] = staticmethod(_rhs_row)
    jump_row: ClassVar[Any] = staticmethod(_jump_row)
    compiled_module: ClassVar[str | None] = "medtwin.physiology._hovorka_numba"

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """``hovorka_2004_mean``: the Table 1 values of [1] (70 kg, Gb 6 mmol/L)."""
        return _presets()

    @classmethod
    def check_population(cls, patient: Mapping[str, Any]) -> None:
        """Type 1 diabetes only: a record coding type 2 (and not type 1) is refused."""
        from medtwin.physiology._population import require_type1_diabetes

        require_type1_diabetes(cls.name, patient, "Hovorka 2004: subjects with type 1 diabetes")

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """The basal steady state at Gb (:func:`steady_state`), with an empty gut."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        ss = steady_state(p)
        bw = p[:, BW]
        insulin = ss["insulin_mu_l"]
        g = p[:, GB] / MG_DL_PER_MMOL_L
        x = np.zeros((p.shape[0], len(cls.states)))
        x[:, Q1] = g * p[:, VG] * bw
        x[:, X1] = p[:, SIT] * insulin
        x[:, X2] = p[:, SID] * insulin
        x[:, X3] = p[:, SIE] * insulin
        x[:, Q2] = x[:, X1] * x[:, Q1] / (p[:, K12] + x[:, X2])
        x[:, S1] = ss["basal_mu_per_min"] * p[:, TMAXI]
        x[:, S2] = x[:, S1]
        x[:, INS] = insulin
        x[:, CIG] = g
        return x

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        """Basal as a rate; meals and boluses as impulses on the segment starting at their time."""
        n = params.shape[0]
        basal = [e for e in events if e.type == "basal"]
        impulses = [e for e in events if e.type in ("meal", "bolus")]
        cuts = {0.0, float(t_end)} | {e.t_min for e in basal} | {e.t_min for e in impulses}
        bounds = np.array(sorted(c for c in cuts if c <= t_end))
        starts = bounds[:-1]
        values = np.zeros((len(starts), n, len(cls.inputs)))
        own = steady_state(params)["basal_mu_per_min"] if basal else np.zeros(n)
        for e in sorted(basal, key=lambda e: (e.t_min, e.index)):
            rate = e.get("u_per_min")
            on = starts >= e.t_min
            values[on, :, INSULIN] = own[None, :] if rate is None else float(rate) * 1000.0
        impulse_starts = set()
        for e in impulses:
            k = int(np.searchsorted(starts, e.t_min))
            if k >= len(starts):  # at t_end: nothing left to simulate
                continue
            if e.type == "meal":
                values[k, :, MEAL_DOSE] += carbs_g_to_mmol(float(e["carbs_g"]))
            else:
                values[k, :, BOLUS_DOSE] += float(e["insulin_u"]) * 1000.0
            impulse_starts.add(k)
        for k in sorted(impulse_starts):
            values[k:, :, IMPULSES] += 1.0
        return InputSchedule(bounds, values)


@cache
def _presets() -> dict[str, FloatArray]:
    return {"hovorka_2004_mean": np.array([float(s["value"]) for s in _meta()["parameter"]])}


MODELS = (Hovorka2004,)
