"""Hall 2011 body weight (``hall_2011_body_weight``) specifics of calibration: a weight history.

A body-weight twin is the Hall et al. 2011 model of one adult fitted to their own weights
(LOINC 29463-7: clinic check-ups, home scales). What the record says about the person fixes
the rest (:func:`personalise`):

- sex, height (LOINC 8302-2) and the age at the first weight of the fitted data come from the
  record; a record without them is refused naming what is missing, and the model's population
  check (adults of 18-100 years, BMI 16-60 kg/m2) refuses a child or an extreme BMI with the
  reason, before anything is fitted;
- the baseline body-fat fraction is the person's measured body fat (LOINC 41982-0) within
  :data:`BODY_FAT_DAYS` of the first weight where the record has one, else the Hall model's
  regression on sex, age and BMI; resting metabolic rate by Mifflin-St Jeor; physical activity
  level 1.6 (the prior median: with the intake fitted, PAL only scales the maintenance intake
  that the intake factors multiply, so weights alone cannot tell it apart);
- the fitted data start at the first weight (the model's t = 0 is the baseline), and the
  habitual intake's ramp runs from there to the last weight (``intake_ramp_d``).

Fitted by default (:data:`DEFAULT_FIT`): the weight at the first reading and the habitual
intake at the first and at the last reading, as multiples of the maintenance intake
(``intake_factor``, ``intake_factor_end``; log-normal priors with median 1 and log SD 0.1,
about +-250 kcal/day at 2,500 kcal/day: an intake gap that, held, moves weight about 10 kg by
Hall's rule of thumb of 100 kJ/day per kg). A free-living intake is the unknown a weight
history measures (Hall KD, Chow CC. Estimating changes in free-living energy intake and its
confidence interval. Am J Clin Nutr 2011;94:66-74 estimate it from weights with the same
model); the twin gives it with its uncertainty. Beyond the data the intake stays at its value
at the last weight (the person goes on eating as lately), and diet and activity events of a
what-if change it from there.

Reading error: Student-t, its scale estimated from the residuals with a small-sample
correction (``n - k`` degrees of freedom), and never below :data:`NOISE_FLOOR_KG`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from medtwin.model.base import FloatArray, Model
from medtwin.twin.data import DataError, PatientData

if TYPE_CHECKING:
    from medtwin.twin.calibrate import Calibration, FitSpec

__all__ = [
    "BODY_FAT_DAYS",
    "DEFAULT_FIT",
    "FEW_FIT",
    "NOISE_FLOOR_KG",
    "PAL_DEFAULT",
    "RAMP_READINGS",
    "WINDOW_DAYS",
    "describe",
    "fit_spec",
    "intake_kcal_per_day",
    "personalise",
]

DEFAULT_FIT = ("weight_kg", "intake_factor", "intake_factor_end")
"""Fitted by default: the weight at the first reading and the habitual intake at the first and
the last reading (see the module docstring and docs/models/body-weight.md, "Calibration")."""

FEW_FIT = ("weight_kg", "intake_factor")
"""Fitted with fewer than :data:`RAMP_READINGS` weights: the weight at the first reading and
one habitual intake held over the whole history (no ramp)."""

RAMP_READINGS = 8
"""Weights needed to fit a change of intake over the history (:data:`DEFAULT_FIT`): five
degrees of freedom left for the reading error."""

NOISE_FLOOR_KG = 0.35
"""Smallest reading-error scale, kg: the within-person day-to-day variation of body weight.
Derived by medtwin from the day-to-day changes of weighed young adults, 32 % of them 0.5 kg or
more and 6.2 % 1.0 kg or more (Khosla T, Billewicz WZ. Measurement of change in body-weight.
Br J Nutr 1964;18:227-239, as summarised secondarily; the paper itself was not read here): a
normal difference of two days with SD 0.50 kg gives 32 % and 4.6 %, so one day's SD is about
0.50 / sqrt(2) = 0.35 kg. Scales add less (0.1 kg resolution)."""

WINDOW_DAYS = 3650.0
"""A body-weight twin is fitted to the last ten years of weights by default (check-ups are
yearly; the intake ramp is linear over the window)."""

MIN_READINGS = 5
"""Fewest weights a fit accepts: two fitted parameters (:data:`FEW_FIT`) and three degrees of
freedom for the reading error (so that its Student-t posterior has a variance)."""

BODY_FAT_DAYS = 90.0
"""A measured body fat counts as the baseline's when taken within this many days of the first
weight."""

PAL_DEFAULT = 1.6
"""Physical activity level of the base (the prior median of ``physical_activity_level``)."""


def personalise(
    model: type[Model], who: Mapping[str, Any], data: PatientData
) -> tuple[FloatArray, PatientData, tuple[str, ...]]:
    """The base parameters of this adult, their data from the first weight on, and what to
    fit (:data:`DEFAULT_FIT` from :data:`RAMP_READINGS` weights on, else :data:`FEW_FIT`).

    Raises :class:`~medtwin.twin.data.DataError` naming what the record lacks (no weights,
    no sex, birth date or height), and the model's
    :class:`~medtwin.physiology.body_weight.OutsidePopulationError` for someone it was not
    built for (a child, a BMI outside 16-60 kg/m2).
    """
    from medtwin.physiology.body_weight import params_for

    t, y = data.series("weight_kg")
    missing = [
        label
        for key, label in (
            ("sex", "sex (Patient.gender female or male)"),
            ("age_y", "age (Patient.birthDate)"),
            ("height_m", "height (LOINC 8302-2)"),
        )
        if key not in who
    ]
    if missing:
        raise DataError(
            f"patient {data.patient or '?'}: the record has no {', '.join(missing)}: the body "
            "weight model needs them"
        )
    t0 = float(t[0])
    t_last = float(t[-1])
    end = max(data.span_min, t_last)
    trimmed = data.window(t0, end) if end > t0 else data.window(t0, t0 + 1.0)
    # the age the record gives is at `at` (the end of the data when read by Twin.from_store)
    age = float(who["age_y"])
    at = who.get("at")
    if isinstance(at, dt.datetime) and data.start is not None:
        first = data.start + dt.timedelta(minutes=t0)
        age -= (at - first).total_seconds() / (365.25 * 86400.0)
    else:
        age -= (end - t0) / (365.25 * 1440.0)
    fat = None
    if data.count("body_fat_pct"):
        tf, yf = data.series("body_fat_pct")
        near = np.abs(tf - t0) <= BODY_FAT_DAYS * 1440.0
        if near.any():
            fat = float(yf[near][np.argmin(np.abs(tf[near] - t0))]) / 100.0
    sex = str(who["sex"])
    base = params_for(
        sex,  # type: ignore[arg-type]
        round(age, 4),
        float(who["height_m"]),
        float(y[0]),
        PAL_DEFAULT,
        fat_fraction=fat,
    )[0]
    names = model.parameter_names()
    ramp = t.size >= RAMP_READINGS
    base[names.index("intake_ramp_d")] = (t_last - t0) / 1440.0 if ramp else 0.0
    return base, trimmed, DEFAULT_FIT if ramp else FEW_FIT


def describe(calibration: Calibration) -> list[str]:
    """What the fit says about intake, kcal/day with 90 % intervals (posterior draws): the
    intake relative to the maintenance intake of the first weight (what weights measure) and
    the absolute intake (which scales with the assumed physical activity level)."""
    draws = calibration.sample(2000, seed=0)
    first, last = intake_kcal_per_day(draws)
    from medtwin.physiology import body_weight as bw

    maintenance = draws[:, bw.PAL] * draws[:, bw.RMR]

    def text(values: FloatArray, signed: bool = False) -> str:
        lo, mid, hi = np.quantile(values, [0.05, 0.5, 0.95])
        f = "{:+,.0f}" if signed else "{:,.0f}"
        return f"{f.format(mid)} kcal/day (90% interval {f.format(lo)} to {f.format(hi)})"

    return [
        f"intake minus maintenance at the first weight: {text(first - maintenance, True)}",
        f"intake minus maintenance at the last weight: {text(last - maintenance, True)}",
        f"habitual intake at the last weight: {text(last)} (with physical activity level "
        f"{PAL_DEFAULT:g} assumed: weights alone do not tell it)",
    ]


def fit_spec() -> FitSpec:
    """The :class:`~medtwin.twin.calibrate.FitSpec` of ``hall_2011_body_weight``."""
    from medtwin.twin.calibrate import FitSpec

    return FitSpec(
        default_fit=DEFAULT_FIT,
        observable="weight_kg",
        min_readings=MIN_READINGS,
        readings_per_parameter=1,
        noise_floor=NOISE_FLOOR_KG,
        small_sample=True,
        personalise=personalise,
        window_days=WINDOW_DAYS,
        describe=describe,
        anchored=True,
    )


def intake_kcal_per_day(params: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Habitual energy intake (kcal/day) at the first and at the last weight, per row."""
    from medtwin.physiology import body_weight as bw

    p = np.atleast_2d(params)
    ei0 = p[:, bw.PAL] * p[:, bw.RMR]
    return ei0 * p[:, bw.FACTOR0], ei0 * p[:, bw.FACTOR1]
