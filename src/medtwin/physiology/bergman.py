"""The Bergman minimal model extended for type 1 diabetes (``bergman_1979``).

The minimal model of glucose kinetics of Bergman et al. 1979 [1]_, with the plasma insulin of
a person without insulin secretion driven by exogenous insulin (Fisher 1991 [2]_), and the
subcutaneous-insulin and meal-absorption chains of Hovorka 2004 [3]_ (the structure of the
"extended minimal model" used in type 1 diabetes control, e.g. Kanderian et al. 2009 [4]_).
The same events and observables as :mod:`medtwin.physiology.uva_padova` and
:mod:`medtwin.physiology.hovorka`:

- glucose ([1]): dG/dt = -(p1 + X) G + p1 Gb + Ra / VG (mg/dL/min; Ra in mg/min);
- remote insulin action ([1]): dX/dt = -p2 X + p3 (I - Ib) (X is a deviation from basal: it is
  negative when insulin is below Ib);
- plasma insulin ([2]): dI/dt = -n I + UI / VI (mU/L/min), so that the basal rate
  u = n Ib VI (mU/min) holds I at Ib and G at Gb;
- subcutaneous insulin ([3]): dS1/dt = u - S1 / tmax,I, dS2/dt = (S1 - S2) / tmax,I,
  UI = S2 / tmax,I;
- meal ([3]): a meal of DG mg adds AG DG to D1; dD1/dt = -D1 / tmax,G,
  dD2/dt = (D1 - D2) / tmax,G, Ra = D2 / tmax,G;
- interstitial glucose: dGi/dt = (G - Gi) / tau_IG (as in :mod:`medtwin.physiology.hovorka`).

Parameters and their sources: ``data/bergman_1979/parameters.toml``; see
``docs/models/bergman.md``. Meals and boluses are impulses applied by :func:`_jump_row` when
the schedule segment starting at their time begins; ``basal`` without ``u_per_h`` is the
patient's own basal n Ib VI.

References
----------
.. [1] Bergman RN, Ider YZ, Bowden CR, Cobelli C. Quantitative estimation of insulin
   sensitivity. Am J Physiol 1979;236(6):E667-E677.
.. [2] Fisher ME. A semiclosed-loop algorithm for the control of blood glucose levels in
   diabetics. IEEE Trans Biomed Eng 1991;38(1):57-61.
.. [3] Hovorka R, Canonico V, Chassin LJ, et al. Nonlinear model predictive control of glucose
   concentration in subjects with type 1 diabetes. Physiol Meas 2004;25(4):905-920.
.. [4] Kanderian SS, Weinzimer S, Voskanyan G, Steil GM. Identification of intraday metabolic
   profiles during closed-loop glucose control in individuals with type 1 diabetes.
   J Diabetes Sci Technol 2009;3(5):1047-1057.

>>> from medtwin.model import parse_scenario, simulate
>>> p = Bergman1979.preset("t1d_mean")
>>> s = parse_scenario([{"type": "basal"}, {"type": "meal", "t_min": 60, "carbs_g": 50}])
>>> r = simulate(Bergman1979, p, s, t_end=24 * 60)
>>> bg = r.observables["bg_mg_dl"][0]
>>> round(float(bg[0]), 1), round(float(bg.max())), int(bg.argmax())  # Gb; peak, minute
(81.0, 169, 136)
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
    Observable,
    Parameter,
    Prior,
    Variable,
)
from medtwin.model.events import Event

__all__ = ["MODELS", "Bergman1979", "basal_mu_per_min"]

_DATA = "data/bergman_1979"


@cache
def _meta() -> dict[str, Any]:
    root = resources.files("medtwin.physiology").joinpath(_DATA)
    return tomllib.loads(root.joinpath("parameters.toml").read_text(encoding="utf-8"))


CGM_MIN_MG_DL: float = float(_meta()["constants"]["cgm_min_mg_dl"])
CGM_MAX_MG_DL: float = float(_meta()["constants"]["cgm_max_mg_dl"])


def _parameters() -> tuple[Parameter, ...]:
    out = []
    for spec in _meta()["parameter"]:
        value, sd = float(spec["value"]), float(spec["log_sd"])
        prior = (
            Prior("lognormal", math.log(value), sd, "spread chosen by medtwin (not published)")
            if sd > 0
            else Prior("fixed", value, 0.0, spec["source"])
        )
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
P1 = _P["p1_per_min"]
P2 = _P["p2_per_min"]
P3 = _P["p3_per_min2_per_mu_l"]
N = _P["n_per_min"]
VI = _P["vi_l"]
VG = _P["vg_dl"]
GB = _P["gb_mg_dl"]
IB = _P["ib_mu_l"]
TMAXI = _P["tmax_i_min"]
AG = _P["ag_fraction"]
TMAXG = _P["tmax_g_min"]
TAU_IG = _P["tau_ig_min"]

# states
G, X, INS, S1, S2, D1, D2, GI, ABSORBED = range(9)
# inputs
INSULIN = 0  # subcutaneous insulin rate, mU/min
MEAL_DOSE = 1  # meal glucose given at the start of this segment, mg (an impulse)
BOLUS_DOSE = 2  # insulin bolus given at the start of this segment, mU (an impulse)
IMPULSES = 3  # impulse segments so far: consecutive impulse segments never share their inputs


def _rhs_row(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    """Right-hand side of one patient (glucose and X [1], insulin [2], absorption [3])."""
    tmax_g = p[TMAXG]
    ra = x[D2] / tmax_g  # mg/min
    dx[G] = -(p[P1] + x[X]) * x[G] + p[P1] * p[GB] + ra / p[VG]
    dx[X] = -p[P2] * x[X] + p[P3] * (x[INS] - p[IB])
    tmax_i = p[TMAXI]
    dx[INS] = -p[N] * x[INS] + x[S2] / tmax_i / p[VI]
    dx[S1] = u[INSULIN] - x[S1] / tmax_i
    dx[S2] = (x[S1] - x[S2]) / tmax_i
    dx[D1] = -x[D1] / tmax_g
    dx[D2] = (x[D1] - x[D2]) / tmax_g
    dx[GI] = (x[G] - x[GI]) / p[TAU_IG]
    dx[ABSORBED] = ra


def _jump_row(x: Any, p: Any, u_before: Any, u_after: Any) -> None:
    """A meal adds AG x its glucose (mg) to D1 and a bolus its insulin (mU) to S1 when the
    schedule segment that starts at their time begins ([3])."""
    x[D1] += p[AG] * u_after[MEAL_DOSE]
    x[S1] += u_after[BOLUS_DOSE]


def basal_mu_per_min(params: FloatArray) -> FloatArray:
    """The basal insulin rate that holds I at Ib (and so G at Gb): n Ib VI (mU/min).

    >>> round(float(basal_mu_per_min(Bergman1979.preset("t1d_mean"))[0]) * 0.06, 3)  # U/h
    1.0
    """
    p = np.atleast_2d(np.asarray(params, dtype=np.float64))
    return np.asarray(p[:, N] * p[:, IB] * p[:, VI], dtype=np.float64)


def _bg(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(states[..., G], dtype=np.float64)


def _cgm(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(np.clip(states[..., GI], CGM_MIN_MG_DL, CGM_MAX_MG_DL), dtype=np.float64)


class Bergman1979(Model):
    """Bergman minimal model extended for type 1 diabetes; see the module docstring."""

    name: ClassVar[str] = "bergman_1979"
    version: ClassVar[str] = "1.0.0"
    title: ClassVar[str] = "Bergman minimal model extended for type 1 diabetes"
    time_unit: ClassVar[Literal["min", "h", "d"]] = "min"
    references: ClassVar[tuple[str, ...]] = (
        "Bergman RN, Ider YZ, Bowden CR, Cobelli C. Am J Physiol 1979;236(6):E667-E677",
        "Fisher ME. IEEE Trans Biomed Eng 1991;38(1):57-61",
        "Hovorka R, Canonico V, Chassin LJ, et al. Physiol Meas 2004;25(4):905-920",
        "Lynch SM, Bequette BW. Proc American Control Conference 2002:4039-4043",
    )
    event_types: ClassVar[frozenset[str]] = frozenset({"meal", "bolus", "basal"})
    parameters: ClassVar[tuple[Parameter, ...]] = PARAMETERS
    states: ClassVar[tuple[Variable, ...]] = (
        Variable("g_mg_dl", "mg/dL", "plasma glucose", "G", nonnegative=True),
        Variable("x_per_min", "1/min", "remote insulin action (deviation from basal)", "X"),
        Variable("i_mu_l", "mU/L", "plasma insulin", "I", nonnegative=True),
        Variable("s1_mu", "mU", "subcutaneous insulin, first compartment", "S1", nonnegative=True),
        Variable("s2_mu", "mU", "subcutaneous insulin, second compartment", "S2", nonnegative=True),
        Variable(
            "d1_mg", "mg", "meal glucose in the gut, first compartment", "D1", nonnegative=True
        ),
        Variable(
            "d2_mg", "mg", "meal glucose in the gut, second compartment", "D2", nonnegative=True
        ),
        Variable("gi_mg_dl", "mg/dL", "interstitial glucose", "Gi", nonnegative=True),
        Variable(
            "absorbed_mg",
            "mg",
            "meal glucose absorbed so far (integral of Ra)",
            "",
            nonnegative=True,
        ),
    )
    inputs: ClassVar[tuple[Variable, ...]] = (
        Variable("insulin_mu_per_min", "mU/min", "subcutaneous insulin rate (basal)"),
        Variable("meal_dose_mg", "mg", "meal glucose given at the start of the segment"),
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
        Observable("bg_mg_dl", "mg/dL", "plasma glucose G ([1])", ("2339-0", "2345-7"), _bg),
        Observable(
            "cgm_mg_dl",
            "mg/dL",
            "CGM reading: interstitial glucose within 39-600 mg/dL, without sensor noise",
            ("99504-3",),
            _cgm,
        ),
    )
    default_rtol: ClassVar[float] = 1e-7
    default_atol: ClassVar[float] = 1e-6

    rhs_row: ClassVar[Any] = staticmethod(_rhs_row)
    jump_row: ClassVar[Any] = staticmethod(_jump_row)
    compiled_module: ClassVar[str | None] = "medtwin.physiology._bergman_numba"

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """``t1d_mean``: the type 1 parameter set of Lynch & Bequette 2002 (see the data file)."""
        return _presets()

    @classmethod
    def check_population(cls, patient: Mapping[str, Any]) -> None:
        """Type 1 diabetes only: a record coding type 2 (and not type 1) is refused."""
        from medtwin.physiology._population import require_type1_diabetes

        require_type1_diabetes(cls.name, patient, "the T1D extension of the minimal model")

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """Basal steady state: G = Gb, X = 0, I = Ib, S1 = S2 = n Ib VI tmax,I, empty gut."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        x = np.zeros((p.shape[0], len(cls.states)))
        x[:, G] = p[:, GB]
        x[:, INS] = p[:, IB]
        x[:, S1] = basal_mu_per_min(p) * p[:, TMAXI]
        x[:, S2] = x[:, S1]
        x[:, GI] = p[:, GB]
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
        own = basal_mu_per_min(params)
        for e in sorted(basal, key=lambda e: (e.t_min, e.index)):
            rate = e.get("u_per_min")
            on = starts >= e.t_min
            values[on, :, INSULIN] = own[None, :] if rate is None else float(rate) * 1000.0
        impulse_starts = set()
        for e in impulses:
            k = int(np.searchsorted(starts, e.t_min))
            if k >= len(starts):
                continue
            if e.type == "meal":
                values[k, :, MEAL_DOSE] += float(e["carbs_g"]) * 1000.0
            else:
                values[k, :, BOLUS_DOSE] += float(e["insulin_u"]) * 1000.0
            impulse_starts.add(k)
        for k in sorted(impulse_starts):
            values[k:, :, IMPULSES] += 1.0
        return InputSchedule(bounds, values)


@cache
def _presets() -> dict[str, FloatArray]:
    return {"t1d_mean": np.array([float(s["value"]) for s in _meta()["parameter"]])}


MODELS = (Bergman1979,)
