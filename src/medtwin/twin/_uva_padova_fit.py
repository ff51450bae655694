"""UVA/Padova (``uva_padova_2008``) specifics of calibration: the basal steady state.

The preset table of the UVA/Padova model stores, beside the kinetic parameters, columns that
are not free: the basal state (``gpb``, ``gtb``, ``ipb``, ``ilb``, ``isc1ss``, ``isc2ss``)
and the parameters solved from it (``kp1``, ``vm0``, and ``ib`` from the basal insulin
``u2ss``). A calibration that moves basal glucose or a kinetic parameter must solve them
again, or the fitted patient would drift away from its basal glucose at its own basal rate.

The relations are the steady state of the model's equations (Dalla Man, Rizza & Cobelli 2007,
eq 1, 3-5, 9, 20-23, 27, with the subcutaneous insulin of Dalla Man et al. 2007 GIM), with
every derivative set to zero at basal (X = 0, Id = I1 = Ib, empty gut):

- subcutaneous insulin: Isc1,ss = u2ss / (ka1 + kd), Isc2,ss = kd Isc1,ss / ka2;
- liver and plasma insulin: Ilb = m2 Ipb / (m1 + m30) and
  (m2 + m4) Ipb = m1 Ilb + ka1 Isc1,ss + ka2 Isc2,ss = m1 Ilb + u2ss, so
  Ipb = u2ss / (m2 + m4 - m1 m2 / (m1 + m30)); Ib = Ipb / VI;
- glucose: Gpb = Gb VG; Eb = ke1 max(Gpb - ke2, 0); from dGp/dt = 0,
  Gtb = (Fsnc + Eb - EGPb + k1 Gpb) / k2; from dGt/dt = 0 with Uid = Vm0 Gtb / (Km0 + Gtb),
  Vm0 = (EGPb - Fsnc - Eb) (Km0 + Gtb) / Gtb; from eq 9 at basal, kp1 = EGPb + kp2 Gpb + kp3 Ib.

The basal endogenous production EGPb (mg/kg/min, the tracer-measured flux of the original
model, not a column of medtwin's parameter vector) is held at the value the base parameter set
implies, EGPb = kp1 - kp2 Gpb - kp3 Ib. ``tests/twin/test_calibrate.py`` checks that these
relations reproduce the stored columns of all 30 virtual patients (relative 1e-9).

References
----------
.. [1] Dalla Man C, Rizza RA, Cobelli C. Meal simulation model of the glucose-insulin system.
   IEEE Trans Biomed Eng 2007;54(10):1740-1749 (eq 1-27, basal steady state).
.. [2] Dalla Man C, Raimondo DM, Rizza RA, Cobelli C. GIM, simulation software of meal
   glucose-insulin model. J Diabetes Sci Technol 2007;1(3):323-330.
"""

from __future__ import annotations

import tomllib
from importlib import resources

import numpy as np

from medtwin.model.base import FloatArray
from medtwin.model.events import Scenario
from medtwin.physiology import uva_padova as up

__all__ = [
    "DEFAULT_FIT",
    "DERIVED",
    "basal_egp_mg_per_kg_min",
    "basal_steady_state",
    "day_to_day_log_sd",
    "prepare_base",
    "unannounced_meal_prior",
    "unannounced_meal_tail_min",
]

DEFAULT_FIT = (
    "gb_mg_dl",
    "vmx_mg_per_kg_min_per_pmol_l",
    "kp2_per_min",
    "kabs_per_min",
)
"""Fitted by default: basal glucose, insulin sensitivity of utilisation, liver glucose
effectiveness and the rate of intestinal absorption (see docs/models/uva-padova.md,
"Calibration")."""

DERIVED = (
    "ib_pmol_l",
    "gpb_mg_per_kg",
    "gtb_mg_per_kg",
    "ipb_pmol_per_kg",
    "ilb_pmol_per_kg",
    "isc1ss_pmol_per_kg",
    "isc2ss_pmol_per_kg",
    "vm0_mg_per_kg_min",
    "kp1_mg_per_kg_min",
)
"""Columns solved from the others at the basal steady state: never fitted directly."""


def basal_egp_mg_per_kg_min(params: FloatArray) -> FloatArray:
    """Basal endogenous glucose production EGPb = kp1 - kp2 Gpb - kp3 Ib ([1] eq 9), ``[N]``.

    >>> p = up.UvaPadova2008.preset("adolescent#001")
    >>> round(float(basal_egp_mg_per_kg_min(p)[0]), 4)  # simglucose's EGPb column: 3.3924
    3.3924
    """
    p = np.atleast_2d(params)
    return np.asarray(
        p[:, up.KP1] - p[:, up.KP2] * p[:, up.GPB] - p[:, up.KP3] * p[:, up.IB], dtype=np.float64
    )


def basal_steady_state(params: FloatArray, egpb: FloatArray) -> FloatArray:
    """``params`` (``[N, P]``) with the derived columns (:data:`DERIVED`) solved again from
    basal glucose, the basal insulin u2ss, the kinetic parameters and EGPb (``[N]``).

    >>> p = up.UvaPadova2008.preset("adult#004")
    >>> q = basal_steady_state(p, basal_egp_mg_per_kg_min(p))
    >>> bool(np.allclose(q, p, rtol=1e-9))
    True
    """
    p = np.array(np.atleast_2d(params), dtype=np.float64)
    egp = np.asarray(egpb, dtype=np.float64).reshape(-1)
    u2ss = p[:, up.U2SS]
    m1, m2, m4, m30 = p[:, up.M1], p[:, up.M2], p[:, up.M4], p[:, up.M30]
    p[:, up.ISC1SS] = u2ss / (p[:, up.KA1] + p[:, up.KD])
    p[:, up.ISC2SS] = p[:, up.KD] * p[:, up.ISC1SS] / p[:, up.KA2]
    p[:, up.IPB] = u2ss / (m2 + m4 - m1 * m2 / (m1 + m30))
    p[:, up.ILB] = m2 * p[:, up.IPB] / (m1 + m30)
    p[:, up.IB] = p[:, up.IPB] / p[:, up.VI]
    gb = p[:, _GB]
    gpb = gb * p[:, up.VG]
    eb = p[:, up.KE1] * np.maximum(gpb - p[:, up.KE2], 0.0)
    gtb = (p[:, up.FSNC] + eb - egp + p[:, up.K1] * gpb) / p[:, up.K2]
    p[:, up.GPB] = gpb
    p[:, up.GTB] = gtb
    with np.errstate(divide="ignore", invalid="ignore"):
        p[:, up.VM0] = (egp - p[:, up.FSNC] - eb) * (p[:, up.KM0] + gtb) / gtb
    p[:, up.KP1] = egp + p[:, up.KP2] * gpb + p[:, up.KP3] * p[:, up.IB]
    return p


_GB = up.UvaPadova2008.parameter_names().index("gb_mg_dl")


def basal_rate_u_per_min(scenario: Scenario) -> float | None:
    """The basal rate (U/min) in force at minute 0, if the scenario states one."""
    rate: float | None = None
    for e in sorted(scenario.events, key=lambda e: (e.t_min, e.index)):
        if e.type == "basal" and e.t_min <= 0.0:
            value = e.get("u_per_min")
            rate = None if value is None else float(value)
    return rate


def prepare_base(base: FloatArray, scenario: Scenario) -> tuple[FloatArray, FloatArray]:
    """The base parameter sets (``[N, P]``) made consistent with the patient's data.

    When the data state the basal rate in force at minute 0, that rate becomes the patient's
    steady-state insulin u2ss = rate x 6000 / BW (pmol/kg/min): the patient is taken to be at
    basal glucose on their own basal rate at the start, as ReplayBG assumes (Cappon et al.
    2023). The derived columns are then solved again with each base's own EGPb. Returns the
    prepared bases and their EGPb (``[N]``).
    """
    p = np.array(np.atleast_2d(base), dtype=np.float64)
    egp = basal_egp_mg_per_kg_min(p)
    rate = basal_rate_u_per_min(scenario)
    if rate is not None and rate > 0.0:
        p[:, up.U2SS] = rate * up.PMOL_PER_U / p[:, up.BW]
    return basal_steady_state(p, egp), egp


def day_to_day_log_sd() -> tuple[dict[str, float], float]:
    """Day-to-day variability of insulin sensitivity: ``({parameter: SD of the log of its
    daily factor}, day length in minutes)``, from ``calibration_data/uva_padova_2008.toml``
    (Vmx and kp3 share one factor of log SD 0.17: the within-person day-to-day CV of total
    daily insulin under closed loop, 17 %, Ruan et al. Diabetes Care 2016;39(5):830-832;
    the S2017 simulator models such SI variability, Visentin et al. J Diabetes Sci Technol
    2018;12(2):273-281).

    >>> sd, day = day_to_day_log_sd()
    >>> sd["vmx_mg_per_kg_min_per_pmol_l"], day
    (0.17, 1440.0)
    """
    root = resources.files("medtwin.twin").joinpath("calibration_data")
    meta = tomllib.loads(root.joinpath("uva_padova_2008.toml").read_text(encoding="utf-8"))
    d = meta["day_to_day"]
    return {str(n): float(d["log_sd"]) for n in d["parameters"]}, float(d["day_min"])


def unannounced_meal_prior() -> tuple[float, float]:
    """Population prior of the rate of unannounced meals, ``(shape, rate in days)`` of a Gamma
    distribution with the mean and SD of missed meal boluses a week in youths on insulin
    pumps, 4.6 and 3.22 (Chase HP et al. The use of insulin pumps with meal bolus alarms in
    children with type 1 diabetes to improve glycemic control. Diabetes Care
    2006;29(5):1012-1015, baseline of both arms pooled), from
    ``calibration_data/uva_padova_2008.toml``: shape = mean^2 / SD^2, rate = 7 mean / SD^2.

    >>> shape, days = unannounced_meal_prior()
    >>> round(shape, 2), round(days, 2), round(shape / days, 3)  # mean 0.657 meals a day
    (2.04, 3.11, 0.657)
    """
    root = resources.files("medtwin.twin").joinpath("calibration_data")
    meta = tomllib.loads(root.joinpath("uva_padova_2008.toml").read_text(encoding="utf-8"))
    d = meta["unannounced_meals"]
    mean, sd = float(d["missed_per_week_mean"]), float(d["missed_per_week_sd"])
    return mean * mean / (sd * sd), 7.0 * mean / (sd * sd)


def unannounced_meal_tail_min() -> float:
    """How long after the last recorded meal of the day unannounced meals are still eaten
    (minutes): the mean gap between dinner (6:24 pm) and the last eating episode of the day
    (8:18 pm) of 15,341 US adults (Kant AK. Eating patterns of US adults: meals, snacks, and
    time of eating. Physiol Behav 2018;193(Pt B):270-278, NHANES 2009-2014), from
    ``calibration_data/uva_padova_2008.toml``. Drawn unannounced meals start within the
    patient's eating window, from the first recorded meal of the day to this long after the
    last (:meth:`medtwin.twin.calibrate.UnannouncedMeals.window_min`).

    >>> unannounced_meal_tail_min()
    114.0
    """
    root = resources.files("medtwin.twin").joinpath("calibration_data")
    meta = tomllib.loads(root.joinpath("uva_padova_2008.toml").read_text(encoding="utf-8"))
    return float(meta["unannounced_meals"]["after_last_meal_min"])
