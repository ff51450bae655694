"""The UVA/Padova type 1 diabetes model (academic version, 2008 parameter sets).

Glucose-insulin dynamics after Dalla Man, Rizza & Cobelli 2007 (the meal model) as extended for
type 1 diabetes in the UVA/Padova simulator (Kovatchev et al. 2009): a two-compartment stomach
with nonlinear gastric emptying and a gut (meal absorption), plasma and tissue glucose with
endogenous production, insulin-independent and insulin-dependent utilisation and renal
excretion, plasma and liver insulin, insulin action on utilisation and production, a
two-compartment subcutaneous insulin depot and subcutaneous (interstitial) glucose. The
equations and the 30 virtual patients are those of the open academic implementation in
simglucose 0.2.11 (``simglucose/patient/t1dpatient.py``, ``T1DPatient.model``; parameters
``params/vpatient_params.csv``, MIT licence), re-implemented here as a batched kernel; see
``docs/models/uva-padova.md`` for the equations, sources and validation.

Inputs follow simglucose: carbohydrate is eaten at 5 g/min from the meal time (``EAT_RATE``;
meals that overlap queue), a bolus is given over 1 minute (simglucose steps every minute with
the insulin rate in U/min), basal insulin is a rate in U/h from its time on; a ``basal`` event
without ``u_per_h`` means the patient's own steady-state basal (u2ss * BW / 6000 U/min), under
which the patient stays at its basal glucose Gb.

References
----------
.. [1] Dalla Man C, Rizza RA, Cobelli C. Meal simulation model of the glucose-insulin system.
   IEEE Trans Biomed Eng 2007;54(10):1740-1749 (eq 1-27).
.. [2] Kovatchev BP, Breton M, Dalla Man C, Cobelli C. In silico preclinical trials: a proof of
   concept in closed-loop control of type 1 diabetes. J Diabetes Sci Technol 2009;3(1):44-55.
.. [3] Dalla Man C, Raimondo DM, Rizza RA, Cobelli C. GIM, simulation software of meal
   glucose-insulin model. J Diabetes Sci Technol 2007;1(3):323-330.
.. [4] Xie J. simglucose v0.2.1 (2018), https://github.com/jxx123/simglucose, version 0.2.11
   on PyPI: ``T1DPatient.model``, ``params/vpatient_params.csv``, ``params/sensor_params.csv``.

>>> from medtwin.model import parse_scenario, simulate
>>> p = UvaPadova2008.preset("adolescent#001")
>>> s = parse_scenario([{"type": "basal"}, {"type": "meal", "t_min": 60, "carbs_g": 50}])
>>> r = simulate(UvaPadova2008, p, s, t_end=24 * 60)
>>> bg = r.observables["bg_mg_dl"][0]
>>> round(float(bg[0]), 2), round(float(bg.max())), int(bg.argmax())  # Gb; peak, minute
(149.02, 193, 267)
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
    Parameter,
    Prior,
    Variable,
)
from medtwin.model.events import Event

__all__ = [
    "EAT_RATE_G_PER_MIN",
    "MODELS",
    "SENSORS",
    "UvaPadova2008",
    "cgm_noise_mg_dl",
    "steady_state_basal_u_per_min",
]

EAT_RATE_G_PER_MIN = 5.0
"""Carbohydrate is eaten at 5 g/min (simglucose ``T1DPatient.EAT_RATE``)."""

BOLUS_DURATION_MIN = 1.0
"""A bolus is given as a 1-minute infusion (simglucose steps the patient every minute)."""

PMOL_PER_U = 6000.0
"""1 U of insulin = 6000 pmol (simglucose ``T1DPatient.model``; 1 U = 6 nmol)."""

_DATA = "data/uva_padova_2008"


@cache
def _table() -> tuple[list[str], dict[str, dict[str, float]], dict[str, Any]]:
    root = resources.files("medtwin.physiology").joinpath(_DATA)
    meta = tomllib.loads(root.joinpath("parameters.toml").read_text(encoding="utf-8"))
    rows: dict[str, dict[str, float]] = {}
    names: list[str] = []
    text = root.joinpath("vpatient_params.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(io.StringIO(text, newline="")):
        name = row.pop("Name")
        names.append(name)
        rows[name] = {k.strip(): float(v) for k, v in row.items()}
    return names, rows, meta


def _parameters() -> tuple[Parameter, ...]:
    names, rows, meta = _table()
    out = []
    for spec in meta["parameter"]:
        values = np.array([rows[n][spec["column"]] for n in names])
        lo, hi = float(values.min()), float(values.max())
        if lo == hi:
            prior = Prior("fixed", lo, 0.0, "the same in all 30 virtual patients")
            lower, upper = lo / 2.0, lo * 2.0
        else:
            logs = np.log(values)
            prior = Prior(
                "lognormal",
                float(logs.mean()),
                float(logs.std(ddof=1)),
                "log-normal fitted by medtwin to the 30 virtual patients",
            )
            lower, upper = lo / 4.0, hi * 4.0
        if spec["unit"] == "1":
            upper = min(upper, 1.0)
        out.append(
            Parameter(
                name=spec["name"],
                unit=spec["unit"],
                description=spec["description"],
                lower=lower,
                upper=upper,
                prior=prior,
                source=f"{meta['source']}, column {spec['column']}",
                symbol=spec["symbol"],
            )
        )
    return tuple(out)


PARAMETERS = _parameters()
_P = {p.name: i for i, p in enumerate(PARAMETERS)}
BW = _P["bw_kg"]
KABS = _P["kabs_per_min"]
KMAX = _P["kmax_per_min"]
KMIN = _P["kmin_per_min"]
B = _P["b_fraction"]
D = _P["d_fraction"]
F = _P["f_fraction"]
VG = _P["vg_dl_per_kg"]
VI = _P["vi_l_per_kg"]
K1 = _P["k1_per_min"]
K2 = _P["k2_per_min"]
VM0 = _P["vm0_mg_per_kg_min"]
VMX = _P["vmx_mg_per_kg_min_per_pmol_l"]
KM0 = _P["km0_mg_per_kg"]
P2U = _P["p2u_per_min"]
M1 = _P["m1_per_min"]
M2 = _P["m2_per_min"]
M4 = _P["m4_per_min"]
M30 = _P["m30_per_min"]
KI = _P["ki_per_min"]
KP1 = _P["kp1_mg_per_kg_min"]
KP2 = _P["kp2_per_min"]
KP3 = _P["kp3_mg_per_kg_min_per_pmol_l"]
KE1 = _P["ke1_per_min"]
KE2 = _P["ke2_mg_per_kg"]
FSNC = _P["fsnc_mg_per_kg_min"]
KD = _P["kd_per_min"]
KA1 = _P["ka1_per_min"]
KA2 = _P["ka2_per_min"]
KSC = _P["ksc_per_min"]
IB = _P["ib_pmol_l"]
U2SS = _P["u2ss_pmol_per_kg_min"]
GPB = _P["gpb_mg_per_kg"]
GTB = _P["gtb_mg_per_kg"]
IPB = _P["ipb_pmol_per_kg"]
ILB = _P["ilb_pmol_per_kg"]
ISC1SS = _P["isc1ss_pmol_per_kg"]
ISC2SS = _P["isc2ss_pmol_per_kg"]

# inputs
CARBS = 0  # carbohydrate eaten, mg/min
INSULIN = 1  # subcutaneous insulin, U/min
MEAL_SO_FAR = 2  # carbohydrate eaten so far in the current (or last) meal, mg


def _rhs_row(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    """Right-hand side of one patient (simglucose ``T1DPatient.model``, [1] eq 1-27).

    ``x``: the 14 states (see :attr:`UvaPadova2008.states`), ``p``: parameters, ``u``: inputs
    (carbs mg/min, insulin U/min, meal carbs eaten so far mg); writes ``dx`` (per minute).
    """
    bw = p[BW]
    d = u[CARBS]
    insulin = u[INSULIN] * PMOL_PER_U / bw  # U/min -> pmol/kg/min
    kmax = p[KMAX]
    kmin = p[KMIN]
    kabs = p[KABS]
    # gastric emptying ([1] eq 11-12): Dbar is the meal size in mg (stomach content at the
    # meal start plus what has been eaten; simglucose issue #41)
    qsto = x[0] + x[1]
    dbar = x[13] + u[MEAL_SO_FAR]
    if dbar > 0.0:
        aa = 5.0 / (2.0 * dbar * (1.0 - p[B]))
        cc = 5.0 / (2.0 * dbar * p[D])
        # tanh(a) - tanh(c) + 2 = 2 - 2 / (e^2a + 1) + 2 / (e^2c + 1): the same to rounding
        # (an absolute error of 1e-16 next to 2; e^2a = inf gives 2 / inf = 0), at a third of
        # the cost of two tanh calls (the right-hand side's largest cost)
        ta = 2.0 / (math.exp(2.0 * aa * (qsto - p[B] * dbar)) + 1.0)
        tc = 2.0 / (math.exp(2.0 * cc * (qsto - p[D] * dbar)) + 1.0)
        kgut = kmin + (kmax - kmin) / 2.0 * (2.0 - ta + tc)
    else:
        kgut = kmax
    dx[0] = -kmax * x[0] + d
    dx[1] = kmax * x[0] - x[1] * kgut
    dx[2] = kgut * x[1] - kabs * x[2]
    # rate of appearance ([1] eq 13), mg/kg/min
    rat = p[F] * kabs * x[2] / bw
    # endogenous production ([1] eq 9-10), utilisation ([1] eq 20-23), renal excretion (eq 27)
    egp = p[KP1] - p[KP2] * x[3] - p[KP3] * x[8]
    et = p[KE1] * (x[3] - p[KE2]) if x[3] > p[KE2] else 0.0
    dgp = max(egp, 0.0) + rat - p[FSNC] - et - p[K1] * x[3] + p[K2] * x[4]
    dx[3] = dgp if x[3] >= 0.0 else 0.0
    vmt = p[VM0] + p[VMX] * x[6]
    uid = vmt * x[4] / (p[KM0] + x[4])
    dgt = -uid + p[K1] * x[3] - p[K2] * x[4]
    dx[4] = dgt if x[4] >= 0.0 else 0.0
    # insulin kinetics ([1] eq 3-5) with subcutaneous absorption ([3])
    dip = -(p[M2] + p[M4]) * x[5] + p[M1] * x[9] + p[KA1] * x[10] + p[KA2] * x[11]
    dx[5] = dip if x[5] >= 0.0 else 0.0
    plasma_insulin = x[5] / p[VI]
    # insulin action on utilisation ([1] eq 24) and production ([1] eq 10)
    dx[6] = -p[P2U] * x[6] + p[P2U] * (plasma_insulin - p[IB])
    dx[7] = -p[KI] * (x[7] - plasma_insulin)
    dx[8] = -p[KI] * (x[8] - x[7])
    dil = -(p[M1] + p[M30]) * x[9] + p[M2] * x[5]
    dx[9] = dil if x[9] >= 0.0 else 0.0
    disc1 = insulin - (p[KA1] + p[KD]) * x[10]
    dx[10] = disc1 if x[10] >= 0.0 else 0.0
    disc2 = p[KD] * x[10] - p[KA2] * x[11]
    dx[11] = disc2 if x[11] >= 0.0 else 0.0
    # subcutaneous glucose (first-order lag of plasma glucose, ksc)
    dgs = -p[KSC] * x[12] + p[KSC] * x[3]
    dx[12] = dgs if x[12] >= 0.0 else 0.0
    dx[13] = 0.0


def _jump_row(x: Any, p: Any, u_before: Any, u_after: Any) -> None:
    """At the start of eating, remember the stomach content (simglucose ``_last_Qsto``)."""
    if u_after[CARBS] > 0.0 and u_before[CARBS] <= 0.0:
        x[13] = x[0] + x[1]


def steady_state_basal_u_per_min(params: FloatArray) -> FloatArray:
    """The basal insulin rate (U/min) that holds each patient at its basal glucose Gb.

    ``u2ss`` (pmol/kg/min) x BW / 6000 (simglucose ``T1DPatient``).

    >>> round(float(steady_state_basal_u_per_min(UvaPadova2008.preset("adult#001"))[0]), 5)
    0.02112
    """
    p = np.atleast_2d(params)
    return np.asarray(p[:, U2SS] * p[:, BW] / PMOL_PER_U, dtype=np.float64)


def _eating_ticks(meals: Sequence[Event]) -> list[tuple[float, float]]:
    """``(start_min, carbs_g)`` of each minute of eating: meals queue and are eaten at 5 g/min
    from their time (simglucose ``T1DPatient._announce_meal``)."""
    ticks: list[tuple[float, float]] = []
    queue = sorted((m.t_min, float(m["carbs_g"])) for m in meals if float(m["carbs_g"]) > 0)
    planned = 0.0
    t = 0.0
    i = 0
    while i < len(queue) or planned > 0:
        if planned <= 0:
            t = queue[i][0]
        while i < len(queue) and queue[i][0] <= t + 1e-9:
            planned += queue[i][1]
            i += 1
        eat = min(EAT_RATE_G_PER_MIN, planned)
        planned = max(0.0, planned - eat)
        ticks.append((t, eat))
        t += 1.0
    return ticks


def _gs(states: FloatArray, params: FloatArray) -> FloatArray:
    vg = params[:, VG][:, None]
    return np.asarray(states[..., 12] / vg, dtype=np.float64)


def _bg(states: FloatArray, params: FloatArray) -> FloatArray:
    vg = params[:, VG][:, None]
    return np.asarray(states[..., 3] / vg, dtype=np.float64)


@cache
def _sensors() -> dict[str, dict[str, float]]:
    root = resources.files("medtwin.physiology").joinpath(_DATA)
    out: dict[str, dict[str, float]] = {}
    text = root.joinpath("sensor_params.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(io.StringIO(text, newline="")):
        name = row.pop("Name")
        out[name] = {k: float(v) for k, v in row.items()}
    return out


SENSORS = ("Dexcom", "GuardianRT", "Navigator")
"""CGM sensors of simglucose ``params/sensor_params.csv`` (noise model and limits)."""


def _cgm(states: FloatArray, params: FloatArray) -> FloatArray:
    limits = _sensors()["Dexcom"]
    gs = _gs(states, params)
    return np.clip(gs, limits["min"], limits["max"], out=gs)  # in place: no second array


def cgm_noise_mg_dl(
    times_min: FloatArray, n: int, seed: int, sensor: Literal["Dexcom", "GuardianRT", "Navigator"]
) -> FloatArray:
    """CGM sensor error (mg/dL) at ``times_min`` for ``n`` sensors (``[n, T]``).

    The simglucose noise model (``sensor/noise_gen.py``, after Breton & Kovatchev 2008): an
    AR(1) sequence every 15 min, ``e_k = PACF * (e_{k-1} + w_k)`` with ``w_k ~ N(0, 1)``,
    transformed by the Johnson SU ``xi + lambda * sinh((e - gamma) / delta)``, interpolated to
    the output times. medtwin interpolates linearly (simglucose: cubic spline), so noise series
    agree in distribution at the 15-min knots, not sample by sample.

    >>> cgm_noise_mg_dl(np.arange(0.0, 61.0, 15.0), 2, seed=1, sensor="Dexcom").shape
    (2, 5)
    """
    if sensor not in _sensors():
        raise ModelError(f"unknown CGM sensor {sensor!r} (known: {', '.join(_sensors())})")
    sp = _sensors()[sensor]
    rng = np.random.default_rng(seed)
    t = np.asarray(times_min, dtype=np.float64)
    knots = math.ceil(float(t.max(initial=0.0)) / 15.0) + 2
    e = np.empty((n, knots))
    e[:, 0] = rng.standard_normal(n)
    for k in range(1, knots):
        e[:, k] = sp["PACF"] * (e[:, k - 1] + rng.standard_normal(n))
    eps = sp["xi"] + sp["lambda"] * np.sinh((e - sp["gamma"]) / sp["delta"])
    grid = np.arange(knots) * 15.0
    return np.stack([np.interp(t, grid, eps[i]) for i in range(n)])


def _mass(name: str, unit: str, description: str, symbol: str) -> Variable:
    return Variable(name, unit, description, symbol, nonnegative=True)


class UvaPadova2008(Model):
    """UVA/Padova T1D simulator (academic 2008 version), batched; see the module docstring."""

    name: ClassVar[str] = "uva_padova_2008"
    version: ClassVar[str] = "1.0.0"
    title: ClassVar[str] = "UVA/Padova type 1 diabetes simulator (academic version, 30 patients)"
    time_unit: ClassVar[Literal["min", "h", "d"]] = "min"
    references: ClassVar[tuple[str, ...]] = (
        "Dalla Man C, Rizza RA, Cobelli C. IEEE Trans Biomed Eng 2007;54(10):1740-1749",
        "Kovatchev BP, Breton M, Dalla Man C, Cobelli C. J Diabetes Sci Technol 2009;3(1):44-55",
        "Dalla Man C, Raimondo DM, Rizza RA, Cobelli C. J Diabetes Sci Technol 2007;1(3):323-330",
        "simglucose 0.2.11 (MIT): patient/t1dpatient.py, params/vpatient_params.csv",
    )
    event_types: ClassVar[frozenset[str]] = frozenset({"meal", "bolus", "basal"})
    parameters: ClassVar[tuple[Parameter, ...]] = PARAMETERS
    states: ClassVar[tuple[Variable, ...]] = (
        _mass("qsto1_mg", "mg", "glucose in the stomach, solid phase", "Qsto1"),
        _mass("qsto2_mg", "mg", "glucose in the stomach, liquid phase", "Qsto2"),
        _mass("qgut_mg", "mg", "glucose in the intestine", "Qgut"),
        _mass("gp_mg_per_kg", "mg/kg", "glucose mass in plasma and fast tissues", "Gp"),
        _mass("gt_mg_per_kg", "mg/kg", "glucose mass in slow tissues", "Gt"),
        _mass("ip_pmol_per_kg", "pmol/kg", "insulin mass in plasma", "Ip"),
        Variable("x_pmol_l", "pmol/L", "insulin action on glucose utilisation", "X"),
        _mass("i1_pmol_l", "pmol/L", "delayed insulin signal, first compartment", "I1"),
        _mass("id_pmol_l", "pmol/L", "delayed insulin signal on production", "Id"),
        _mass("il_pmol_per_kg", "pmol/kg", "insulin mass in the liver", "Il"),
        _mass("isc1_pmol_per_kg", "pmol/kg", "subcutaneous insulin, non-monomeric", "Isc1"),
        _mass("isc2_pmol_per_kg", "pmol/kg", "subcutaneous insulin, monomeric", "Isc2"),
        _mass("gs_mg_per_kg", "mg/kg", "subcutaneous glucose (Gs / VG is mg/dL)", "Gs"),
        _mass(
            "qsto_meal_start_mg", "mg", "stomach content when the current meal began", "Qsto(t0)"
        ),
    )
    inputs: ClassVar[tuple[Variable, ...]] = (
        Variable("carbs_mg_per_min", "mg/min", "carbohydrate eaten"),
        Variable("insulin_u_per_min", "U/min", "subcutaneous insulin (basal + bolus)"),
        Variable("meal_carbs_so_far_mg", "mg", "carbohydrate eaten so far in the current meal"),
    )
    observables: ClassVar[tuple[Observable, ...]] = (
        Observable(
            "bg_mg_dl",
            "mg/dL",
            "plasma glucose G = Gp / VG ([1] eq 1)",
            ("2339-0", "2345-7"),
            _bg,
        ),
        Observable(
            "cgm_mg_dl",
            "mg/dL",
            "CGM reading: subcutaneous glucose Gs / VG within the Dexcom limits 39-600 mg/dL "
            "(simglucose params/sensor_params.csv), without sensor noise",
            ("99504-3",),
            _cgm,
        ),
    )

    default_rtol: ClassVar[float] = 1e-7
    default_atol: ClassVar[float] = 1e-3
    """1e-3 mg, mg/kg, pmol/kg or pmol/L: 1e-3 mg/kg of glucose is 0.0005 mg/dL. A smaller
    one makes the solver follow an emptied stomach down to nanograms (1e-7: 1.7x the steps)
    for no visible difference (0.0036 against 0.0015 mg/dL from simglucose, 30 patients)."""

    rhs_row: ClassVar[Any] = staticmethod(_rhs_row)
    jump_row: ClassVar[Any] = staticmethod(_jump_row)
    compiled_module: ClassVar[str | None] = "medtwin.physiology._uva_padova_numba"

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """The 30 virtual patients: adolescent#001-010, adult#001-010, child#001-010."""
        return _presets()

    @classmethod
    def check_population(cls, patient: Mapping[str, Any]) -> None:
        """Type 1 diabetes only: a record coding type 2 (and not type 1) is refused."""
        from medtwin.physiology._population import require_type1_diabetes

        require_type1_diabetes(
            cls.name,
            patient,
            "the UVA/Padova simulator's virtual subjects: Kovatchev 2009, Dalla Man 2007",
        )

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """Basal steady state (simglucose ``x0_1`` ... ``x0_13``: Gpb, Gtb, Ipb, Ib, Ilb, Isc1,ss,
        Isc2,ss; an empty gut; Gs = Gp)."""
        p = np.atleast_2d(params)
        x = np.zeros((p.shape[0], len(cls.states)))
        x[:, 3] = p[:, GPB]
        x[:, 4] = p[:, GTB]
        x[:, 5] = p[:, IPB]
        x[:, 7] = p[:, IB]
        x[:, 8] = p[:, IB]
        x[:, 9] = p[:, ILB]
        x[:, 10] = p[:, ISC1SS]
        x[:, 11] = p[:, ISC2SS]
        x[:, 12] = p[:, GPB]
        return x

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        """Meals as 5 g/min eating minutes, boluses as 1-min infusions, basal as a rate."""
        n = params.shape[0]
        cuts = {0.0, float(t_end)}
        basal = [e for e in events if e.type == "basal"]
        boluses = [e for e in events if e.type == "bolus"]
        ticks = _eating_ticks([e for e in events if e.type == "meal"])
        for e in basal:
            cuts.add(e.t_min)
        for e in boluses:
            cuts.update((e.t_min, e.t_min + BOLUS_DURATION_MIN))
        for t0, _ in ticks:
            cuts.update((t0, t0 + 1.0))
        bounds = np.array(sorted(c for c in cuts if c <= max(t_end, 0.0)))
        if bounds[-1] < t_end:
            bounds = np.append(bounds, t_end)
        starts = bounds[:-1]
        values = np.zeros((len(starts), n, len(cls.inputs)))
        own = steady_state_basal_u_per_min(params)
        for e in sorted(basal, key=lambda e: (e.t_min, e.index)):
            rate = e.get("u_per_min")
            on = starts >= e.t_min
            values[on, :, INSULIN] = own[None, :] if rate is None else float(rate)
        for e in boluses:
            on = (starts >= e.t_min) & (starts < e.t_min + BOLUS_DURATION_MIN)
            values[on, :, INSULIN] += float(e["insulin_u"]) / BOLUS_DURATION_MIN
        if ticks:
            # per segment: the last eating minute begun by its start (ticks are in time order)
            tick_t = np.array([t0 for t0, _ in ticks])
            carbs_mg = np.array([grams * 1000.0 for _, grams in ticks])
            so_far = np.empty(len(ticks))
            total = 0.0
            previous_end = -math.inf
            for i, (t0, _) in enumerate(ticks):
                if t0 != previous_end:  # a new meal: simglucose resets _last_foodtaken
                    total = 0.0
                total += carbs_mg[i]
                so_far[i] = total
                previous_end = t0 + 1.0
            last = np.searchsorted(tick_t, starts, side="right") - 1
            begun = last >= 0
            at = np.maximum(last, 0)
            eating = begun & (starts < tick_t[at] + 1.0)
            values[:, :, CARBS] = np.where(eating, carbs_mg[at], 0.0)[:, None]
            values[:, :, MEAL_SO_FAR] = np.where(begun, so_far[at], 0.0)[:, None]
        return InputSchedule(bounds, values)


@cache
def _presets() -> dict[str, FloatArray]:
    names, rows, meta = _table()
    columns = [spec["column"] for spec in meta["parameter"]]
    return {n: np.array([rows[n][c] for c in columns]) for n in names}


MODELS = (UvaPadova2008,)
