"""A lumped-parameter (mean-flow) model of the circulation with the carotid baroreflex.

For perioperative forecasts over minutes to hours: haemorrhage, fluids and drugs acting on
vascular resistance, contractility, heart rate and venous capacity. The circulation, the
heart's elastances and the baroreflex (afferent carotid sinus pathway, sympathetic and vagal
efferents, effectors on peripheral resistances, venous unstressed volumes, heart period and
end-systolic elastances) follow Ursino 1998 [1] with its published parameters (Tables 1-3).
medtwin's model is **non-pulsatile**: the pulsating heart is replaced by its beat-averaged
output, so that hours can be simulated with steps of about a second:

- each ventricle ejects ``SV = EDV - Vu - P_out / Emax`` per beat, with the end-systolic
  volume on the end-systolic pressure-volume line ``P = Emax (V - Vu)`` (Suga & Sagawa [2])
  at the mean outflow pressure and the end-diastolic volume on the human end-diastolic
  pressure-volume relation of Klotz et al. [6]_ [7]_ at the atrial (filling) pressure
  (complete filling), anchored to Ursino's diastolic curve ``EDV = ln(1 + P / P0) / kE``
  ([1] eq 14-15) at the resting filling pressure (:func:`_edv`). Ursino's exponential, used
  away from rest, made stroke volume fall 43 % after a 900 mL bleed; the human curve is
  flatter (the supine heart works near the plateau of its Frank-Starling curve) and stroke
  volume falls 23 %. Cardiac output is ``HR x SV``;
- the systemic and pulmonary arteries (time constants of ~17 ms) are in quasi-steady state
  with the ventricle's output; the pulmonary veins and the left atrium share one pressure;
- the afferent pathway sees the mean arterial pressure; the pure delays of the effectors
  (0.2-5 s) are left out (they matter for beat-to-beat oscillations, not over minutes);
- systolic and diastolic pressures come from the pulse pressure ``PP = SV / C_pp``
  (stroke volume over arterial compliance, Chemla et al. [3]) around the mean with the
  one-third rule ``MAP = DBP + PP / 3`` (Meaney et al. [4]).

Fluids (``fluid_bolus``) enter the extrasplanchnic veins; blood loss (``blood_loss``) leaves
the systemic veins in proportion to their compliances. Crystalloid leaves the vessels towards
the interstitium: of the volume infused, a fraction ``crystalloid_retained_fraction`` (0.2)
stays, the rest distributes with a half-time of 8 min, fitted to Hahn's volume kinetics [5]
(50-60 % of the infused volume intravascular at the end of a 30-min infusion, 15-20 % 30 min
later). Colloid and blood stay in the vessels. ``drug_effect`` multiplies a model quantity
by ``1 + change_pct / 100`` from ``t`` for ``duration`` (default: to the end): ``svr`` (both
systemic peripheral resistances), ``contractility`` (both end-systolic elastances),
``heart_rate``, ``unstressed_volume`` (both systemic venous unstressed volumes).

Time unit: minutes (the equations are written in Ursino's seconds and multiplied by 60).
Valid population: adults (see :func:`check_population`, :func:`for_patient`). See
``docs/models/cardiovascular.md`` for the equations, the parameter table and the validation.

References
----------
.. [1] Ursino M. Interaction between carotid baroregulation and the pulsating heart: a
   mathematical model. Am J Physiol 1998;275(5):H1733-H1747 (eq 1-31, Tables 1-3).
.. [2] Suga H, Sagawa K. Instantaneous pressure-volume relationships and their ratio in the
   excised, supported canine left ventricle. Circ Res 1974;35:117-126.
.. [3] Chemla D, Hebert JL, Coirault C, et al. Total arterial compliance estimated by stroke
   volume-to-aortic pulse pressure ratio in humans. Am J Physiol 1998;274:H500-H505.
.. [4] Meaney E, Alva F, Moguel R, et al. Formula and nomogram for the sphygmomanometric
   calculation of the mean arterial pressure. Heart 2000;84:64.
.. [5] Hahn RG. Understanding volume kinetics. Acta Anaesthesiol Scand 2020;64:570-578.
.. [6] Klotz S, Hay I, Dickstein ML, et al. Single-beat estimation of end-diastolic
   pressure-volume relationship: a novel method with potential for noninvasive application.
   Am J Physiol Heart Circ Physiol 2006;291:H403-H412.
.. [7] Klotz S, Dickstein ML, Burkhoff D. A computational method of prediction of the
   end-diastolic pressure-volume relationship by single beat. Nat Protoc 2007;2:2152-2158.

>>> from medtwin.model import parse_scenario, simulate
>>> p = CardiovascularUrsino.preset("adult_70kg")
>>> s = parse_scenario([{"type": "blood_loss", "t_min": 5, "volume_ml": 1000,
...                      "duration_min": 10}])
>>> r = simulate(CardiovascularUrsino, p, s, t_end=30, dt_out=5)
>>> hr = r.observables["heart_rate_per_min"][0]
>>> bool(hr[-1] > hr[0] + 5)
True
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
    OutsidePopulationError,
    Parameter,
    Prior,
    Variable,
)
from medtwin.model.events import Event, Scenario
from medtwin.record.context import pregnancy_at_date

__all__ = [
    "DRUG_TARGETS",
    "FLUIDS",
    "MAX_NET_LOSS_FRACTION",
    "MODELS",
    "CardiovascularUrsino",
    "check_population",
    "for_patient",
]

_DATA = "data/cardiovascular"

DRUG_TARGETS = ("svr", "contractility", "heart_rate", "unstressed_volume")
"""What a ``drug_effect`` event may change (``target``)."""

FLUIDS = ("crystalloid", "colloid", "blood")
"""Kinds of ``fluid_bolus`` (``fluid``; default crystalloid)."""

MAX_NET_LOSS_FRACTION = 0.4
"""Largest net loss (blood lost minus fluid given, crystalloid counted at its retained
fraction) as a fraction of the blood volume the model answers for: beyond 40 % (ATLS class IV
haemorrhage) decompensation mechanisms that the model lacks (cerebral ischaemic response,
acidosis, myocardial failure) dominate."""

BOLUS_DURATION_MIN = 1.0
"""A ``blood_loss`` or ``fluid_bolus`` with duration 0 is spread over 1 minute."""

ADULT_AGE_YEARS = 18.0
WEIGHT_RANGE_KG = (40.0, 150.0)


@cache
def _meta() -> list[dict[str, Any]]:
    root = resources.files("medtwin.physiology").joinpath(_DATA)
    data = tomllib.loads(root.joinpath("parameters.toml").read_text(encoding="utf-8"))
    return list(data["parameter"])


_VOLUME_LIKE = (
    "blood_volume_ml",
    "csa_ml_per_mmhg",
    "cp_ml_per_mmhg",
    "csv_ml_per_mmhg",
    "cev_ml_per_mmhg",
    "cpa_ml_per_mmhg",
    "cpp_ml_per_mmhg",
    "cpv_ml_per_mmhg",
    "vu_p_ml",
    "vu_pp_ml",
    "vu_pv_ml",
    "cla_ml_per_mmhg",
    "vu_la_ml",
    "cra_ml_per_mmhg",
    "vu_ra_ml",
    "vu_lv_ml",
    "vu_rv_ml",
    "g_vusv_ml",
    "g_vuev_ml",
    "vusv0_ml",
    "vuev0_ml",
    "pulse_compliance_ml_per_mmhg",
)
_INVERSE_VOLUME = (
    "rsa_mmhg_s_per_ml",
    "rsv_mmhg_s_per_ml",
    "rev_mmhg_s_per_ml",
    "rpa_mmhg_s_per_ml",
    "rpp_mmhg_s_per_ml",
    "ke_lv_per_ml",
    "ke_rv_per_ml",
    "g_emax_lv_mmhg_per_ml",
    "g_emax_rv_mmhg_per_ml",
    "g_rsp_mmhg_s_per_ml",
    "g_rep_mmhg_s_per_ml",
    "emax_lv0_mmhg_per_ml",
    "emax_rv0_mmhg_per_ml",
    "rsp0_mmhg_s_per_ml",
    "rep0_mmhg_s_per_ml",
)
_SCALED_BOUND = 2.5
"""Default calibration bounds of the parameters :func:`for_patient` scales: value / 2.5 to
2.5 x value, which holds every adult it accepts (blood volume 0.49-2.12 x the preset's);
other parameters: value / 2 to 2 x value."""


def _parameters() -> tuple[Parameter, ...]:
    out = []
    for spec in _meta():
        value = float(spec["value"])
        factor = _SCALED_BOUND if spec["name"] in _VOLUME_LIKE + _INVERSE_VOLUME else 2.0
        lo, hi = sorted((value / factor, value * factor))
        lower = float(spec.get("lower", lo))
        upper = float(spec.get("upper", hi))
        if "cv" in spec:
            cv = float(spec["cv"])
            prior = Prior(
                "lognormal",
                math.log(value),
                math.sqrt(math.log(1.0 + cv * cv)),
                f"log-normal around the preset value, CV {cv:g} (medtwin choice)",
            )
        else:
            prior = Prior("fixed", value, 0.0, "published single value")
        out.append(
            Parameter(
                name=spec["name"],
                unit=spec["unit"],
                description=spec["description"],
                lower=lower,
                upper=upper,
                prior=prior,
                source=spec["source"],
                symbol=spec["symbol"],
            )
        )
    return tuple(out)


PARAMETERS = _parameters()
_P = {p.name: i for i, p in enumerate(PARAMETERS)}
VT = _P["blood_volume_ml"]
CSA = _P["csa_ml_per_mmhg"]
CP = _P["cp_ml_per_mmhg"]
CSV = _P["csv_ml_per_mmhg"]
CEV = _P["cev_ml_per_mmhg"]
CPA = _P["cpa_ml_per_mmhg"]
CPP = _P["cpp_ml_per_mmhg"]
CPV = _P["cpv_ml_per_mmhg"]
VUP = _P["vu_p_ml"]
VUPP = _P["vu_pp_ml"]
VUPV = _P["vu_pv_ml"]
RSA = _P["rsa_mmhg_s_per_ml"]
RSV = _P["rsv_mmhg_s_per_ml"]
REV = _P["rev_mmhg_s_per_ml"]
RPA = _P["rpa_mmhg_s_per_ml"]
RPP = _P["rpp_mmhg_s_per_ml"]
CLA = _P["cla_ml_per_mmhg"]
VULA = _P["vu_la_ml"]
CRA = _P["cra_ml_per_mmhg"]
VURA = _P["vu_ra_ml"]
P0LV = _P["p0_lv_mmhg"]
KELV = _P["ke_lv_per_ml"]
VULV = _P["vu_lv_ml"]
P0RV = _P["p0_rv_mmhg"]
KERV = _P["ke_rv_per_ml"]
VURV = _P["vu_rv_ml"]
PN = _P["pn_mmhg"]
KA = _P["ka_mmhg"]
FMIN = _P["fmin_per_s"]
FMAX = _P["fmax_per_s"]
TAUZ = _P["tau_z_s"]
TAUP = _P["tau_p_s"]
FESINF = _P["fes_inf_per_s"]
FES0 = _P["fes0_per_s"]
FESMIN = _P["fes_min_per_s"]
KES = _P["kes_s"]
FEV0 = _P["fev0_per_s"]
FEVINF = _P["fev_inf_per_s"]
FCS0 = _P["fcs0_per_s"]
KEV = _P["kev_per_s"]
GELV = _P["g_emax_lv_mmhg_per_ml"]
GERV = _P["g_emax_rv_mmhg_per_ml"]
GRSP = _P["g_rsp_mmhg_s_per_ml"]
GREP = _P["g_rep_mmhg_s_per_ml"]
GVUSV = _P["g_vusv_ml"]
GVUEV = _P["g_vuev_ml"]
GTS = _P["g_ts_s"]
GTV = _P["g_tv_s2"]
TAUE = _P["tau_emax_s"]
TAUR = _P["tau_r_s"]
TAUV = _P["tau_v_s"]
TAUTS = _P["tau_ts_s"]
TAUTV = _P["tau_tv_s"]
ELV0 = _P["emax_lv0_mmhg_per_ml"]
ERV0 = _P["emax_rv0_mmhg_per_ml"]
RSP0 = _P["rsp0_mmhg_s_per_ml"]
REP0 = _P["rep0_mmhg_s_per_ml"]
VUSV0 = _P["vusv0_ml"]
VUEV0 = _P["vuev0_ml"]
T0 = _P["t0_s"]
CPULSE = _P["pulse_compliance_ml_per_mmhg"]
GBARO = _P["baroreflex_gain_fraction"]
FCR = _P["crystalloid_retained_fraction"]
THCR = _P["crystalloid_half_life_min"]
EDPLV = _P["edp_ref_lv_mmhg"]
EDPRV = _P["edp_ref_rv_mmhg"]
EDPVR_AN = _P["edpvr_an_mmhg"]
EDPVR_BN = _P["edpvr_bn"]

EDPVR_V0_INTERCEPT = 0.6
EDPVR_V0_SLOPE_PER_MMHG = 0.006
"""Klotz et al. 2006/2007: the volume of a human left ventricle at zero diastolic pressure is
``V0 = EDV (0.6 - 0.006 EDP)`` of a measured end-diastolic point (EDV, EDP)."""
EDPVR_P30_MMHG = 30.0
"""The pressure at which Klotz's normalised curve is anchored (``V30``)."""

# states: blood volumes (their sum is the blood volume) ...
V_ART = 0  # systemic arteries + systemic peripheral circulation
V_SV = 1  # splanchnic veins
V_EV = 2  # extrasplanchnic veins
V_RA = 3  # right atrium
V_PUL = 4  # pulmonary arteries + pulmonary peripheral circulation
V_PVLA = 5  # pulmonary veins + left atrium
V_VENT = 6  # both ventricles (beat-averaged; constant in a mean-flow heart)
N_VOLUMES = 7
# ... the baroreflex ...
BARO_Y = 7  # afferent filter: y = P~ - (tau_z / tau_p) P
D_ELV = 8
D_ERV = 9
D_RSP = 10
D_REP = 11
D_VUSV = 12
D_VUEV = 13
D_TS = 14
D_TV = 15
# ... fluid bookkeeping (cumulative, mL) ...
CRYS_GIVEN = 16
CRYS_OUT = 17  # crystalloid that has left the vessels
BLOOD_LOST = 18
FLUID_GIVEN = 19
# ... and the drug factors in force (set from the inputs at each boundary by the jump kernel)
F_SVR = 20
F_CONTR = 21
F_HR = 22
F_VU = 23
# the resting arterial pressure, seen by an open-loop (baroreflex_gain_fraction < 1) reflex
P_REST = 24

# inputs
U_BLEED = 0
U_FLUID = 1
U_CRYS = 2
U_SVR = 3
U_CONTR = 4
U_HR = 5
U_VU = 6


def _edv(p_fill: float, p0: float, ke: float, p_ref: float, an: float, bn: float) -> float:
    """End-diastolic volume (mL) of a ventricle filled to ``p_fill`` (mmHg): the human EDPVR.

    Klotz et al. (module references [6], [7]) found that the end-diastolic pressure-volume
    relations of human left ventricles share one shape: with ``V0 = EDV (0.6 - 0.006 EDP)``
    (volume at zero pressure) and ``V30 = V0 + (EDV - V0) / (EDP / An)^(1/Bn)`` (volume at
    30 mmHg), An = 27.78 mmHg, Bn = 2.76, and for EDP <= 22 mmHg the curve through (EDV, EDP)
    and (V30, 30 mmHg) is ``P = alpha V^beta``. medtwin anchors it at one point of Ursino's
    diastolic curve, ``EDV_ref = ln(1 + p_ref / P0) / kE`` at the resting filling pressure
    ``p_ref``, so that the resting state keeps Ursino's volumes while the curve keeps the human
    shape away from rest: as the filling pressure falls from rest the ventricle loses far less
    volume than on Ursino's exponential (at 1 mmHg, 70-75 % of the resting EDV instead of
    28-35 %; 4 mmHg above rest, +7-11 % instead of +19-33 %): filling above rest adds little
    (the plateau of the Frank-Starling curve). The right ventricle gets the same shape (a
    medtwin assumption: Klotz measured left ventricles).
    The power law falls below Klotz's zero-pressure volume V0 only within a fraction of a mmHg
    of 0 (0.26 mmHg for the preset's left ventricle), where its slope grows without bound (stiff
    equations once the atria empty); there medtwin draws a straight line from V0 to 0 at 0 mmHg
    (a medtwin choice: collapsing atrium), and returns 0 at ``p_fill <= 0`` (no filling).
    """
    if p_fill <= 0.0:
        return 0.0
    v_ref = math.log(1.0 + p_ref / p0) / ke
    v0 = v_ref * (EDPVR_V0_INTERCEPT - EDPVR_V0_SLOPE_PER_MMHG * p_ref)
    v30 = v0 + (v_ref - v0) / (p_ref / an) ** (1.0 / bn)
    beta = math.log(p_ref / EDPVR_P30_MMHG) / math.log(v_ref / v30)
    # the power law reaches V0, the measured volume at zero pressure, at p_v0 (a fraction of a
    # mmHg); below it, a straight line from V0 to 0 at 0 mmHg (bounded slope: not stiff)
    p_v0 = p_ref * (v0 / v_ref) ** beta
    if p_fill < p_v0:
        return float(v0 * p_fill / p_v0)
    return float(v_ref * (p_fill / p_ref) ** (1.0 / beta))


def _hemo(x: Any, p: Any) -> tuple[float, ...]:
    """Pressures and flows of one state (scalar kernel, numba-compiled with :func:`_rhs_row`).

    Returns: 0 Psa, 1 Pp (systemic peripheral), 2 Psv, 3 Pev, 4 Pra, 5 Ppa, 6 Ppp,
    7 Ppv (= Pla), 8 heart rate (1/s), 9 LV stroke volume (mL), 10 RV stroke volume (mL),
    11 Rsp, 12 Rep, 13 Emax,lv, 14 Emax,rv, 15 EDV lv, 16 EDV rv.
    """
    elv = (p[ELV0] + x[D_ELV]) * x[F_CONTR]
    erv = (p[ERV0] + x[D_ERV]) * x[F_CONTR]
    rsp = (p[RSP0] + x[D_RSP]) * x[F_SVR]
    rep = (p[REP0] + x[D_REP]) * x[F_SVR]
    vusv = (p[VUSV0] + x[D_VUSV]) * x[F_VU]
    vuev = (p[VUEV0] + x[D_VUEV]) * x[F_VU]
    period = p[T0] + x[D_TS] + x[D_TV]
    hr = x[F_HR] / period
    psv = (x[V_SV] - vusv) / p[CSV]
    pev = (x[V_EV] - vuev) / p[CEV]
    pra = (x[V_RA] - p[VURA]) / p[CRA]
    ppv = (x[V_PVLA] - p[VUPV] - p[VULA]) / (p[CPV] + p[CLA])
    # left heart into the systemic arteries: quasi-steady arterial node
    # (Psa - Pp) / Rsa = HR (EDV - Vu,lv - Psa / Emax), Csa Psa + Cp Pp + Vu,p = V_art
    edv_l = _edv(ppv, p[P0LV], p[KELV], p[EDPLV], p[EDPVR_AN], p[EDPVR_BN])
    a_l = edv_l - p[VULV]
    rsa = p[RSA]
    den = 1.0 + hr * rsa / elv
    alpha = hr * a_l * rsa / den
    beta = 1.0 / den
    pp = (x[V_ART] - p[VUP] - p[CSA] * alpha) / (p[CSA] * beta + p[CP])
    psa = alpha + beta * pp
    if psa <= pp:  # the ventricle cannot open its valve: no flow
        pp = (x[V_ART] - p[VUP]) / (p[CSA] + p[CP])
        psa = pp
    sv_l = (psa - pp) / rsa / hr
    # right heart into the pulmonary arteries, the same way
    edv_r = _edv(pra, p[P0RV], p[KERV], p[EDPRV], p[EDPVR_AN], p[EDPVR_BN])
    a_r = edv_r - p[VURV]
    rpa = p[RPA]
    den = 1.0 + hr * rpa / erv
    alpha = hr * a_r * rpa / den
    beta = 1.0 / den
    ppp = (x[V_PUL] - p[VUPP] - p[CPA] * alpha) / (p[CPA] * beta + p[CPP])
    ppa = alpha + beta * ppp
    if ppa <= ppp:
        ppp = (x[V_PUL] - p[VUPP]) / (p[CPA] + p[CPP])
        ppa = ppp
    sv_r = (ppa - ppp) / rpa / hr
    return (
        psa,
        pp,
        psv,
        pev,
        pra,
        ppa,
        ppp,
        ppv,
        hr,
        sv_l,
        sv_r,
        rsp,
        rep,
        elv,
        erv,
        edv_l,
        edv_r,
    )


N_HEMO = 17


def _rhs_row(t: float, x: Any, p: Any, u: Any, dx: Any) -> None:
    """Right-hand side of one parameter set, per minute ([1] eq 1-13 and 19-31, mean flow).

    Flows are computed in mL/s and the baroreflex in s (Ursino's units) and multiplied by 60.
    """
    h = _hemo(x, p)
    psa = h[0]
    pp = h[1]
    psv = h[2]
    pev = h[3]
    pra = h[4]
    ppp = h[6]
    ppv = h[7]
    hr = h[8]
    q_lv = hr * h[9]
    q_rv = hr * h[10]
    f_sp = (pp - psv) / h[11]
    f_ep = (pp - pev) / h[12]
    # venous return: veins collapse, so the flow into the right atrium does not grow once
    # its pressure falls below 0 (the plateau of Guyton's venous return curve) and does not
    # reverse (a mean-flow medtwin choice; Ursino's veins carry no valves)
    pra_eff = max(pra, 0.0)
    f_sv = max(psv - pra_eff, 0.0) / p[RSV]
    f_ev = max(pev - pra_eff, 0.0) / p[REV]
    f_pp = (ppp - ppv) / p[RPP]
    # fluids (mL/min): infusions enter the extrasplanchnic veins; blood loss and crystalloid
    # leaving for the interstitium come from both systemic veins in proportion to compliance
    k_cr = math.log(2.0) / p[THCR]
    crys_out = k_cr * ((1.0 - p[FCR]) * x[CRYS_GIVEN] - x[CRYS_OUT])
    share_sv = p[CSV] / (p[CSV] + p[CEV])
    leave = u[U_BLEED] + crys_out
    dx[V_ART] = 60.0 * (q_lv - f_sp - f_ep)
    dx[V_SV] = 60.0 * (f_sp - f_sv) - share_sv * leave
    dx[V_EV] = 60.0 * (f_ep - f_ev) - (1.0 - share_sv) * leave + u[U_FLUID]
    dx[V_RA] = 60.0 * (f_sv + f_ev - q_rv)
    dx[V_PUL] = 60.0 * (q_rv - f_pp)
    dx[V_PVLA] = 60.0 * (f_pp - q_lv)
    dx[V_VENT] = 0.0
    # afferent carotid sinus pathway ([1] eq 19-20), on the mean arterial pressure
    ratio = p[TAUZ] / p[TAUP]
    p_cs = p[GBARO] * psa + (1.0 - p[GBARO]) * x[P_REST]
    p_filt = x[BARO_Y] + ratio * p_cs
    dx[BARO_Y] = 60.0 * (p_cs - p_filt) / p[TAUP]
    e = math.exp((p_filt - p[PN]) / p[KA])
    fcs = (p[FMIN] + p[FMAX] * e) / (1.0 + e)
    # efferent sympathetic and vagal activity ([1] eq 21-22)
    fes = p[FESINF] + (p[FES0] - p[FESINF]) * math.exp(-p[KES] * fcs)
    ev = math.exp((fcs - p[FCS0]) / p[KEV])
    fev = (p[FEV0] + p[FEVINF] * ev) / (1.0 + ev)
    # effectors ([1] eq 23-31; pure delays left out)
    s = math.log(fes - p[FESMIN] + 1.0) if fes >= p[FESMIN] else 0.0
    dx[D_ELV] = 60.0 * (p[GELV] * s - x[D_ELV]) / p[TAUE]
    dx[D_ERV] = 60.0 * (p[GERV] * s - x[D_ERV]) / p[TAUE]
    dx[D_RSP] = 60.0 * (p[GRSP] * s - x[D_RSP]) / p[TAUR]
    dx[D_REP] = 60.0 * (p[GREP] * s - x[D_REP]) / p[TAUR]
    dx[D_VUSV] = 60.0 * (p[GVUSV] * s - x[D_VUSV]) / p[TAUV]
    dx[D_VUEV] = 60.0 * (p[GVUEV] * s - x[D_VUEV]) / p[TAUV]
    dx[D_TS] = 60.0 * (p[GTS] * s - x[D_TS]) / p[TAUTS]
    dx[D_TV] = 60.0 * (p[GTV] * fev - x[D_TV]) / p[TAUTV]
    dx[CRYS_GIVEN] = u[U_CRYS]
    dx[CRYS_OUT] = crys_out
    dx[BLOOD_LOST] = u[U_BLEED]
    dx[FLUID_GIVEN] = u[U_FLUID]
    dx[F_SVR] = 0.0
    dx[F_CONTR] = 0.0
    dx[F_HR] = 0.0
    dx[F_VU] = 0.0
    dx[P_REST] = 0.0


def _hemo_batch(x: Any, p: Any, out: Any) -> None:
    """``out[n, k, :] = _hemo(x[n, k], p[n])`` for every row and time (compiled)."""
    for n in range(x.shape[0]):
        for k in range(x.shape[1]):
            h = _hemo(x[n, k], p[n])
            for j in range(len(h)):
                out[n, k, j] = h[j]


def _jump_row(x: Any, p: Any, u_before: Any, u_after: Any) -> None:
    """The drug factors in force become states (so that observables can read them)."""
    x[F_SVR] = u_after[U_SVR]
    x[F_CONTR] = u_after[U_CONTR]
    x[F_HR] = u_after[U_HR]
    x[F_VU] = u_after[U_VU]


def hemodynamics(states: FloatArray, params: FloatArray) -> FloatArray:
    """Pressures, flows and effector values (``[N, T, 17]``, columns as :func:`_hemo`
    returns them) of states ``[N, T, S]`` (compiled; see :func:`hemodynamics_py`)."""
    from medtwin.physiology._cardiovascular_numba import hemodynamics as compiled

    x = np.ascontiguousarray(states, dtype=np.float64)
    p = np.ascontiguousarray(np.atleast_2d(params), dtype=np.float64)
    out = np.empty((*x.shape[:2], N_HEMO))
    compiled(x, p, out)
    return out


def hemodynamics_py(states: FloatArray, params: FloatArray) -> FloatArray:
    """The same as :func:`hemodynamics` in plain Python (for checking)."""
    x = np.asarray(states, dtype=np.float64)
    p = np.atleast_2d(params)
    out = np.empty((*x.shape[:2], N_HEMO))
    for n in range(x.shape[0]):
        for k in range(x.shape[1]):
            out[n, k] = _hemo(x[n, k], p[n])
    return out


_hemo_fast = hemodynamics


def _map(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(_hemo_fast(states, params)[..., 0])


def _pulse(states: FloatArray, params: FloatArray) -> FloatArray:
    h = _hemo_fast(states, params)
    return np.asarray(h[..., 9] / params[:, CPULSE][:, None])


def _sbp(states: FloatArray, params: FloatArray) -> FloatArray:
    return _map(states, params) + 2.0 / 3.0 * _pulse(states, params)


def _dbp(states: FloatArray, params: FloatArray) -> FloatArray:
    return _map(states, params) - 1.0 / 3.0 * _pulse(states, params)


def _hr(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(60.0 * _hemo_fast(states, params)[..., 8])


def _co(states: FloatArray, params: FloatArray) -> FloatArray:
    h = _hemo_fast(states, params)
    return np.asarray(h[..., 8] * h[..., 9] * 60.0 / 1000.0)


def _sv(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(_hemo_fast(states, params)[..., 9])


def _cvp(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(_hemo_fast(states, params)[..., 4])


def _blood_volume(states: FloatArray, params: FloatArray) -> FloatArray:
    return np.asarray(states[..., :N_VOLUMES].sum(axis=-1))


def _volume(name: str, description: str, symbol: str) -> Variable:
    return Variable(name, "mL", description, symbol, nonnegative=True)


def check_population(*, age_years: float, weight_kg: float) -> None:
    """Refuse a patient outside the model's valid population (adults, 40-150 kg).

    Ursino's parameters describe a normal adult circulation; medtwin scales them to body
    size (:func:`for_patient`) only within adult weights.

    >>> check_population(age_years=12, weight_kg=40)
    Traceback (most recent call last):
    ...
    medtwin.model.base.ModelError: age_years = 12: the cardiovascular model is valid for adults (>= 18 years) only
    """
    if not (math.isfinite(age_years) and age_years >= ADULT_AGE_YEARS):
        raise ModelError(
            f"age_years = {age_years!r}: the cardiovascular model is valid for adults "
            f"(>= {ADULT_AGE_YEARS:g} years) only"
        )
    lo, hi = WEIGHT_RANGE_KG
    if not (math.isfinite(weight_kg) and lo <= weight_kg <= hi):
        raise ModelError(
            f"weight_kg = {weight_kg!r}: the cardiovascular model is valid for adults of "
            f"{lo:g}-{hi:g} kg only"
        )


def for_patient(
    *, age_years: float, weight_kg: float, sex: Literal["male", "female"]
) -> FloatArray:
    """The ``adult_70kg`` preset scaled to a patient's blood volume (``[1, P]``).

    Blood volume 75 mL/kg (men) or 65 mL/kg (women) (Morgan GE, Mikhail MS, Murray MJ,
    *Clinical Anesthesiology*, 4th ed., Table 29-1 estimated blood volume in adults); every
    volume, compliance and volume gain is scaled by the ratio to Ursino's 5300 mL and every
    resistance and elastance by its inverse, so that pressures, heart rate and time constants
    stay those of the preset (an isotropic scaling: a medtwin assumption). Refuses patients
    outside the valid population (:func:`check_population`).

    >>> p = for_patient(age_years=40, weight_kg=60, sex="female")
    >>> round(float(p[0, 0]))
    3900
    """
    check_population(age_years=age_years, weight_kg=weight_kg)
    if sex not in ("male", "female"):
        raise ModelError(f"sex = {sex!r}: give 'male' or 'female'")
    per_kg = 75.0 if sex == "male" else 65.0
    base = CardiovascularUrsino.preset("adult_70kg")
    scale = per_kg * weight_kg / float(base[0, VT])
    out = base.copy()
    for name in _VOLUME_LIKE:
        out[0, _P[name]] *= scale
    for name in _INVERSE_VOLUME:
        out[0, _P[name]] /= scale
    return CardiovascularUrsino.check_params(out)


class CardiovascularUrsino(Model):
    """Mean-flow circulation with the carotid baroreflex after Ursino 1998 (module docstring)."""

    name: ClassVar[str] = "cardiovascular_ursino"
    version: ClassVar[str] = "1.2.0"
    title: ClassVar[str] = (
        "Lumped-parameter circulation with carotid baroreflex (Ursino 1998, mean flow)"
    )
    time_unit: ClassVar[Literal["min", "h", "d"]] = "min"
    references: ClassVar[tuple[str, ...]] = (
        "Ursino M. Am J Physiol 1998;275(5):H1733-H1747",
        "Suga H, Sagawa K. Circ Res 1974;35:117-126",
        "Chemla D et al. Am J Physiol 1998;274:H500-H505",
        "Meaney E et al. Heart 2000;84:64",
        "Hahn RG. Acta Anaesthesiol Scand 2020;64:570-578",
        "Klotz S et al. Am J Physiol Heart Circ Physiol 2006;291:H403-H412",
        "Klotz S, Dickstein ML, Burkhoff D. Nat Protoc 2007;2:2152-2158",
    )

    PREGNANCY: ClassVar[str] = (
        "pregnancy raises the blood volume by 40-50 % and the cardiac output by 30-50 % and "
        "lowers the systemic vascular resistance (Sanghavi M, Rutherford JD. Cardiovascular "
        "physiology of pregnancy. Circulation 2014;130:1003-1008)"
    )
    """Why a twin dated in a pregnancy is refused (:meth:`check_population`)."""

    @classmethod
    def check_population(cls, patient: Mapping[str, Any]) -> None:
        """Refuse a patient the record shows pregnant at the twin's date (``patient["at"]``,
        with ``patient["pregnancies"]``: :func:`medtwin.twin.twin.characteristics`) or within
        :data:`~medtwin.record.context.PUERPERIUM_DAYS` after a pregnancy: the model and its
        parameters describe the circulation of adults who are not pregnant (:attr:`PREGNANCY`).
        Age and weight are checked where the parameters are scaled (:func:`for_patient`)."""
        said = pregnancy_at_date(patient)
        if said is not None:
            raise OutsidePopulationError(
                f"{cls.name} describes the circulation of adults who are not pregnant "
                f"(Ursino 1998): {cls.PREGNANCY}; {said}"
            )

    event_types: ClassVar[frozenset[str]] = frozenset({"blood_loss", "fluid_bolus", "drug_effect"})
    parameters: ClassVar[tuple[Parameter, ...]] = PARAMETERS
    states: ClassVar[tuple[Variable, ...]] = (
        _volume("v_arterial_ml", "systemic arteries and peripheral circulation", "Vsa+Vsp+Vep"),
        _volume("v_splanchnic_veins_ml", "splanchnic veins", "Vsv"),
        _volume("v_extrasplanchnic_veins_ml", "extrasplanchnic veins", "Vev"),
        _volume("v_right_atrium_ml", "right atrium", "Vra"),
        _volume("v_pulmonary_arterial_ml", "pulmonary arteries and peripheral", "Vpa+Vpp"),
        _volume("v_pulmonary_veins_left_atrium_ml", "pulmonary veins and left atrium", "Vpv+Vla"),
        _volume("v_ventricles_ml", "both ventricles, beat-averaged (constant)", "Vlv+Vrv"),
        Variable("baro_filter_mmhg", "mmHg", "afferent filter state P~ - (tau_z/tau_p) P", "y"),
        Variable("d_emax_lv_mmhg_per_ml", "mmHg/mL", "baroreflex change of Emax,lv", "dEmax,lv"),
        Variable("d_emax_rv_mmhg_per_ml", "mmHg/mL", "baroreflex change of Emax,rv", "dEmax,rv"),
        Variable("d_rsp_mmhg_s_per_ml", "mmHg*s/mL", "baroreflex change of Rsp", "dRsp"),
        Variable("d_rep_mmhg_s_per_ml", "mmHg*s/mL", "baroreflex change of Rep", "dRep"),
        Variable("d_vusv_ml", "mL", "baroreflex change of Vu,sv", "dVu,sv"),
        Variable("d_vuev_ml", "mL", "baroreflex change of Vu,ev", "dVu,ev"),
        Variable("d_ts_s", "s", "sympathetic change of the heart period", "dTs"),
        Variable("d_tv_s", "s", "vagal change of the heart period", "dTv"),
        _volume("crystalloid_given_ml", "crystalloid infused so far", ""),
        _volume("crystalloid_out_ml", "crystalloid moved to the interstitium so far", ""),
        _volume("blood_lost_ml", "blood lost so far", ""),
        _volume("fluid_given_ml", "fluid (all kinds) infused so far", ""),
        Variable("factor_svr", "1", "drug factor on the peripheral resistances", nonnegative=True),
        Variable("factor_contractility", "1", "drug factor on Emax", nonnegative=True),
        Variable("factor_heart_rate", "1", "drug factor on the heart rate", nonnegative=True),
        Variable("factor_unstressed_volume", "1", "drug factor on Vu,sv, Vu,ev", nonnegative=True),
        Variable(
            "p_rest_mmhg",
            "mmHg",
            "resting mean arterial pressure of the intact loop (constant): what a reflex with "
            "baroreflex_gain_fraction < 1 sees instead of part of the pressure change",
        ),
    )
    inputs: ClassVar[tuple[Variable, ...]] = (
        Variable("bleed_ml_per_min", "mL/min", "blood loss rate"),
        Variable("fluid_ml_per_min", "mL/min", "intravenous fluid rate (all kinds)"),
        Variable("crystalloid_ml_per_min", "mL/min", "crystalloid part of the fluid rate"),
        Variable("svr_factor", "1", "drug factor on the peripheral resistances"),
        Variable("contractility_factor", "1", "drug factor on the end-systolic elastances"),
        Variable("heart_rate_factor", "1", "drug factor on the heart rate"),
        Variable("unstressed_volume_factor", "1", "drug factor on the venous unstressed volumes"),
    )
    observables: ClassVar[tuple[Observable, ...]] = (
        Observable("heart_rate_per_min", "/min", "heart rate 60 / T", ("8867-4",), _hr),
        Observable(
            "map_mmhg",
            "mm[Hg]",
            "mean systemic arterial pressure Psa",
            ("8478-0",),
            _map,
        ),
        Observable(
            "sbp_mmhg",
            "mm[Hg]",
            "systolic pressure MAP + 2/3 PP, PP = SV / C_pp",
            ("8480-6",),
            _sbp,
        ),
        Observable(
            "dbp_mmhg",
            "mm[Hg]",
            "diastolic pressure MAP - 1/3 PP",
            ("8462-4",),
            _dbp,
        ),
        Observable(
            "cardiac_output_l_per_min",
            "L/min",
            "left ventricular output HR x SV",
            ("8741-1",),
            _co,
        ),
        Observable("stroke_volume_ml", "mL", "left ventricular stroke volume", ("20562-5",), _sv),
        Observable(
            "cvp_mmhg", "mm[Hg]", "right atrial (central venous) pressure", ("60985-9",), _cvp
        ),
        Observable(
            "blood_volume_ml",
            "mL",
            "circulating blood volume (sum of the compartments)",
            ("55420-4",),
            _blood_volume,
        ),
    )

    default_rtol: ClassVar[float] = 1e-7
    default_atol: ClassVar[float] = 1e-6
    """1e-6 mL, mmHg or s on every state."""

    rhs_row: ClassVar[Any] = staticmethod(_rhs_row)
    jump_row: ClassVar[Any] = staticmethod(_jump_row)
    compiled_module: ClassVar[str | None] = "medtwin.physiology._cardiovascular_numba"

    @classmethod
    def presets(cls) -> Mapping[str, FloatArray]:
        """``adult_70kg``: Ursino 1998 Tables 1-3 (blood volume 5300 mL)."""
        return {"adult_70kg": np.array([float(s["value"]) for s in _meta()])}

    @classmethod
    def initial_state(cls, params: FloatArray) -> FloatArray:
        """The resting closed-loop steady state holding ``blood_volume_ml``.

        A first guess (Ursino's basal pressures: arterial 92, venous 6, right atrial 4,
        pulmonary 14, left atrial 7 mmHg) is scaled to the blood volume and settled by
        simulating 30 minutes without events, twice (the second time with the ventricles'
        volume recomputed at the settled pressures).
        """
        p_given = cls.check_params(params)
        p = p_given.copy()
        p[:, GBARO] = 1.0  # the resting state is that of the intact loop
        n = p.shape[0]
        x = np.zeros((n, len(cls.states)))
        x[:, F_SVR : F_VU + 1] = 1.0
        # baroreflex at the set point
        fcs = (p[:, FMIN] + p[:, FMAX]) / 2.0
        fes = p[:, FESINF] + (p[:, FES0] - p[:, FESINF]) * np.exp(-p[:, KES] * fcs)
        ev = np.exp((fcs - p[:, FCS0]) / p[:, KEV])
        fev = (p[:, FEV0] + p[:, FEVINF] * ev) / (1.0 + ev)
        s = np.log(np.maximum(fes - p[:, FESMIN], 0.0) + 1.0)
        for state, gain in (
            (D_ELV, GELV),
            (D_ERV, GERV),
            (D_RSP, GRSP),
            (D_REP, GREP),
            (D_VUSV, GVUSV),
            (D_VUEV, GVUEV),
            (D_TS, GTS),
        ):
            x[:, state] = p[:, gain] * s
        x[:, D_TV] = p[:, GTV] * fev
        psa, pv, pra, ppul, pla = 92.0, 6.0, 4.0, 14.0, 7.0
        x[:, BARO_Y] = (1.0 - p[:, TAUZ] / p[:, TAUP]) * psa
        x[:, V_ART] = p[:, VUP] + (p[:, CSA] + p[:, CP]) * psa
        x[:, V_SV] = p[:, VUSV0] + x[:, D_VUSV] + p[:, CSV] * pv
        x[:, V_EV] = p[:, VUEV0] + x[:, D_VUEV] + p[:, CEV] * pv
        x[:, V_RA] = p[:, VURA] + p[:, CRA] * pra
        x[:, V_PUL] = p[:, VUPP] + (p[:, CPA] + p[:, CPP]) * ppul
        x[:, V_PVLA] = p[:, VUPV] + p[:, VULA] + (p[:, CPV] + p[:, CLA]) * pla
        x[:, V_VENT] = _ventricles(x[:, None, :], p)[:, 0]
        _fill_veins(x, p)
        for _ in range(2):
            x = _settle(cls, p, x)
            x[:, V_VENT] = _ventricles(x[:, None, :], p)[:, 0]
            _fill_veins(x, p)
        x = _settle(cls, p, x)
        x[:, P_REST] = hemodynamics(x[:, None, :], p)[:, 0, 0]
        return x

    @classmethod
    def schedule(cls, events: Sequence[Event], params: FloatArray, t_end: float) -> InputSchedule:
        """Blood loss and fluids as constant rates over their durations (1 min if 0); drug
        effects as factors from ``t`` for ``duration`` (default: to the end)."""
        n = params.shape[0]
        spans: list[tuple[Event, float, float]] = []
        cuts = {0.0, float(t_end)}
        for e in events:
            if e.type in ("blood_loss", "fluid_bolus"):
                duration = float(e["duration_min"]) or BOLUS_DURATION_MIN
                if e.type == "fluid_bolus":
                    fluid = str(e.get("fluid", "crystalloid")).lower()
                    if fluid not in FLUIDS:
                        raise ModelError(
                            f"event {e.index} (fluid_bolus): field 'fluid' = {fluid!r} is not "
                            f"one of {', '.join(FLUIDS)}"
                        )
            else:
                target = str(e["target"]).lower()
                if target not in DRUG_TARGETS:
                    raise ModelError(
                        f"event {e.index} (drug_effect): field 'target' = {target!r} is not one "
                        f"the cardiovascular model knows ({', '.join(DRUG_TARGETS)})"
                    )
                if float(e["change_pct"]) <= -100.0:
                    raise ModelError(
                        f"event {e.index} (drug_effect): field 'change_pct' must be > -100, "
                        f"got {e['change_pct']!r}"
                    )
                duration = float(e.get("duration_min", math.inf))
                if duration <= 0.0:
                    raise ModelError(
                        f"event {e.index} (drug_effect): field 'duration_min' must be > 0"
                    )
            end = e.t_min + duration
            spans.append((e, e.t_min, end))
            cuts.add(e.t_min)
            if math.isfinite(end):
                cuts.add(end)
        bounds = np.array(sorted(c for c in cuts if c <= t_end))
        starts = bounds[:-1]
        values = np.zeros((len(starts), n, len(cls.inputs)))
        values[:, :, U_SVR : U_VU + 1] = 1.0
        column = {
            "svr": U_SVR,
            "contractility": U_CONTR,
            "heart_rate": U_HR,
            "unstressed_volume": U_VU,
        }
        for e, t0, t1 in spans:
            on = (starts >= t0) & (starts < t1)
            if e.type == "blood_loss":
                values[on, :, U_BLEED] += float(e["volume_ml"]) / (t1 - t0)
            elif e.type == "fluid_bolus":
                rate = float(e["volume_ml"]) / (t1 - t0)
                values[on, :, U_FLUID] += rate
                if str(e.get("fluid", "crystalloid")).lower() == "crystalloid":
                    values[on, :, U_CRYS] += rate
            else:
                values[on, :, column[str(e["target"]).lower()]] *= (
                    1.0 + float(e["change_pct"]) / 100.0
                )
        _check_net_loss(bounds, values, params, spans)
        return InputSchedule(bounds, values)


def _check_net_loss(
    bounds: FloatArray,
    values: FloatArray,
    params: FloatArray,
    spans: Sequence[tuple[Event, float, float]],
) -> None:
    """Refuse a scenario whose net loss exceeds :data:`MAX_NET_LOSS_FRACTION` of the blood
    volume at some time (crystalloid counted at its retained fraction)."""
    widths = np.diff(bounds)[:, None]
    kept = values[:, :, U_FLUID] - values[:, :, U_CRYS] * (1.0 - params[None, :, FCR])
    net = np.cumsum((values[:, :, U_BLEED] - kept) * widths, axis=0)
    limit = MAX_NET_LOSS_FRACTION * params[:, VT]
    over = net > limit[None, :] + 1e-9
    if over.any():
        k, row = (int(i) for i in np.argwhere(over)[0])
        t = float(bounds[k + 1])
        losses = [e for e, t0, _ in spans if e.type == "blood_loss" and t0 < t]
        which = f"event {losses[-1].index} (blood_loss): " if losses else ""
        raise ModelError(
            f"{which}parameter set {row}: net blood loss {float(net[k, row]):.0f} mL by "
            f"t = {t:g} min exceeds {MAX_NET_LOSS_FRACTION:.0%} of the blood volume "
            f"({float(params[row, VT]):.0f} mL): beyond ATLS class III haemorrhage the model "
            "is not valid"
        )


def _ventricles(states: FloatArray, params: FloatArray) -> FloatArray:
    """Beat-averaged volume of both ventricles, (EDV + ESV) / 2 each, at the given states."""
    h = hemodynamics(states, params)
    return np.asarray(h[..., 15] + h[..., 16] - (h[..., 9] + h[..., 10]) / 2.0)


def _fill_veins(x: FloatArray, p: FloatArray) -> None:
    """Put the difference to the blood volume into the systemic veins (by compliance)."""
    missing = p[:, VT] - x[:, :N_VOLUMES].sum(axis=1)
    share = p[:, CSV] / (p[:, CSV] + p[:, CEV])
    x[:, V_SV] += share * missing
    x[:, V_EV] += (1.0 - share) * missing


def _settle(model: type[Model], p: FloatArray, x: FloatArray) -> FloatArray:
    from medtwin.model.solver import simulate

    r = simulate(model, p, Scenario(events=()), t_end=30.0, dt_out=30.0, x0=x)
    return np.array(r.states[:, -1, :])


MODELS = (CardiovascularUrsino,)
