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
  level starting at 1.6 (the prior median; weights barely tell it apart from the intake, so
  its posterior stays near the population prior, which forecasts then carry);
- the fitted data start at the first weight (the model's t = 0 is the baseline), and the
  habitual intake's ramp runs from there to the last weight (``intake_ramp_d``).

Fitted (:data:`FIT_ORDER`, as many as the weights allow): the weight at the first reading,
the habitual intake at the first and at the last reading as multiples of the maintenance
intake, and the physical activity level (``intake_factor``, ``intake_factor_end``: log-normal
priors with median 1 and log SD 0.1,
about +-250 kcal/day at 2,500 kcal/day: an intake gap that, held, moves weight about 10 kg by
Hall's rule of thumb of 100 kJ/day per kg). A free-living intake is the unknown a weight
history measures (Hall KD, Chow CC. Estimating changes in free-living energy intake and its
confidence interval. Am J Clin Nutr 2011;94:66-74 estimate it from weights with the same
model); the twin gives it with its uncertainty. Beyond the data the intake stays at its value
at the last weight (the person goes on eating as lately), and diet and activity events of a
what-if change it from there.

Reading error: Student-t, its scale estimated from the residuals with a small-sample
correction (``n - k`` degrees of freedom), and never below :data:`NOISE_FLOOR_KG`.

Pregnancy: the model describes adults who are not pregnant (Hall et al. 2011); a pregnancy
adds some 12 kg that are not the body's fat and lean mass (fetus, placenta, amniotic fluid,
blood volume). Weights (and body-fat readings) taken during a pregnancy the record shows
(:func:`medtwin.risk.context.patient_context`) or within the 42 days after it
(:data:`~medtwin.physiology.body_weight.PUERPERIUM_DAYS`) are
left out of the fit, with the reason in the data's ``skipped``; a twin whose last weight, or
whose date, falls in a pregnancy or those weeks is refused (its forecast would start from a
pregnant body, or run through a pregnancy), saying how to fit the time before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from medtwin.model.base import FloatArray, Model, OutsidePopulationError, Prior
from medtwin.twin.data import (
    DataError,
    PatientData,
    PregnancyTerms,
    keeping,
    outside_pregnancy,
    require_characteristics,
)

if TYPE_CHECKING:
    from medtwin.twin.calibrate import Calibration, FitSpec

__all__ = [
    "BODY_FAT_DAYS",
    "BODY_FAT_READINGS",
    "DEFAULT_FIT",
    "FAT_FIT_READINGS",
    "FAT_FRACTION_SEE",
    "FEW_FIT",
    "FIT_ORDER",
    "FIT_ORDER_NO_FAT_READING",
    "FIT_ORDER_WITH_FAT",
    "NOISE_FLOOR_FAT_PCT",
    "NOISE_FLOOR_KG",
    "PAL_DEFAULT",
    "SPARE_READINGS",
    "WINDOW_DAYS",
    "complete",
    "describe",
    "fit_spec",
    "intake_kcal_per_day",
    "observables",
    "personalise",
    "priors",
]

FIT_ORDER = ("weight_kg", "intake_factor", "physical_activity_level", "intake_factor_end")
"""What a weight history is fitted for, in order: the first ``n - 3`` of these for ``n``
weights (three degrees of freedom kept for the reading error), at most all four: the weight at
the first reading, the habitual intake (at the first reading), the physical activity level
(weights barely inform it: its posterior stays near the population prior, and carries that
uncertainty into forecasts and what-ifs) and the habitual intake at the last reading (a ramp
between the two; without it one intake is held over the whole history)."""

DEFAULT_FIT = FIT_ORDER
"""Fitted from 7 weights on (see :data:`FIT_ORDER`)."""

FIT_ORDER_WITH_FAT = (
    "weight_kg",
    "intake_factor",
    "fat_fraction",
    "physical_activity_level",
    "intake_factor_end",
)
"""With body-fat readings (LOINC 41982-0, e.g. a scale's bioimpedance) fitted jointly with the
weights: the body-fat fraction at the start is fitted third (its prior: the model's population
prior, normal 0.30, SD 0.08); the readings of both count."""

FAT_FRACTION_SEE = 0.041
"""Standard error of a body-fat fraction predicted from sex, age and BMI: 4.1 % body fat, the
SEE of the adult equation of Deurenberg P, Weststrate JA, Seidell JC, Br J Nutr 1991;65:105-114
(abstract: 1,229 people, densitometry; R2 0.79), a regression on the same three predictors as
the Hall model's baseline one (its own SEE was not in the material read; taking Deurenberg's
for it is medtwin's assumption). The prior of a fitted fat fraction is normal about the
regression's value with this SD, in place of the population's (normal 0.30, SD 0.08)."""

FIT_ORDER_NO_FAT_READING = (*FIT_ORDER, "fat_fraction")
"""Where no body-fat reading sets the start's fat fraction: it is fitted last, from
:data:`FAT_FIT_READINGS` weights on, with the prior of :data:`FAT_FRACTION_SEE`. Weights barely
inform it, so its posterior stays near that prior, and carries the uncertainty of a fat
fraction predicted from BMI into forecasts and what-ifs (how much of a weight change is fat
sets its energy)."""

FAT_FIT_READINGS = 9
"""Weights from which an unmeasured fat fraction is fitted: one more than the ``n - 3`` rule
would give. The small-sample correction counts it as a whole parameter although the weights
barely inform it, so with 8 weights it cost the other parameters' precision for nothing
(``benchmarks/eval_weight_calibration.py --people 300``, each person's own Monte Carlo seeds,
8 yearly check-ups: held-out band 8.55 kg wide, coverage 0.943, against 6.55 kg and 0.887 with
it held; the diet what-if's interval 1.59 kg wide either way, coverage 0.880 against 0.883:
the activity level dominates it there); with 52 weekly weights its what-if coverage is 0.857
against 0.733 held."""

MIN_LEAN_FRACTION = 0.1
"""Least lean tissue (outside the extracellular fluid and glycogen) a fitted start may have, as
a fraction of the weight: far below any adult's (a woman of BMI 45 with 55 % fat keeps about
23 %), so it binds only on an optimiser's trial steps."""

BODY_FAT_READINGS = 2
"""Body-fat readings from which they are fitted with the weights (fewer: the nearest one, or
the regression, fixes the fat fraction)."""

FEW_FIT = FIT_ORDER[:2]
"""Fitted from 5 weights: the first weight and one habitual intake."""

NOISE_FLOOR_KG = 0.35
"""Smallest reading-error scale, kg: the within-person day-to-day variation of body weight.
Derived by medtwin from the day-to-day changes of weighed young adults, 32 % of them 0.5 kg or
more and 6.2 % 1.0 kg or more (Khosla T, Billewicz WZ. Measurement of change in body-weight.
Br J Nutr 1964;18:227-239, as summarised secondarily; the paper itself was not read here): a
normal difference of two days with SD 0.50 kg gives 32 % and 4.6 %, so one day's SD is about
0.50 / sqrt(2) = 0.35 kg. Scales add less (0.1 kg resolution)."""

NOISE_FLOOR_FAT_PCT = 0.5
"""Smallest reading-error scale of body-fat percentages, percentage points: a choice of
medtwin's (readings are given to 0.1 %; bioimpedance scatters far more, so the scale is in
practice estimated from the residuals)."""

WINDOW_DAYS = 3650.0
"""A body-weight twin is fitted to the last ten years of weights by default (check-ups are
yearly; the intake ramp is linear over the window)."""

MIN_READINGS = 5
"""Fewest weights a fit accepts: two fitted parameters (:data:`FEW_FIT`) and three degrees of
freedom for the reading error (so that its Student-t posterior has a variance)."""

SPARE_READINGS = 3
"""Degrees of freedom kept for the reading error when choosing how much to fit."""

BODY_FAT_DAYS = 90.0
"""A measured body fat counts as the baseline's when taken within this many days of the first
weight."""

PAL_DEFAULT = 1.6
"""Physical activity level of the base (the prior median of ``physical_activity_level``), and
the value kept where too few weights leave it unfitted."""


def personalise(
    model: type[Model], who: Mapping[str, Any], data: PatientData
) -> tuple[FloatArray, PatientData, tuple[str, ...]]:
    """The base parameters of this adult, their data from the first weight on, and what to
    fit (the first ``n - 3`` of :data:`FIT_ORDER` for ``n`` weights, at least two; of
    :data:`FIT_ORDER_WITH_FAT` for ``n`` weights and body-fat readings when there are
    :data:`BODY_FAT_READINGS` of the latter).

    Raises :class:`~medtwin.twin.data.DataError` naming what the record lacks (no weights,
    no sex, birth date or height), and the model's
    :class:`~medtwin.model.base.OutsidePopulationError` for someone it was not
    built for (a child, a BMI outside 16-60 kg/m2).
    """
    from medtwin.physiology.body_weight import params_for

    data = outside_pregnancy(
        model,
        who,
        _as_adult(model, who, data),
        PregnancyTerms(
            observables=("weight_kg",),
            reading="weight",
            readings="weights",
            needed=MIN_READINGS,
            twin="a body-weight twin",
            model="the body weight model (Hall 2011)",
        ),
    )
    t, y = data.series("weight_kg")
    if t.size < MIN_READINGS:
        when = f" ({_day_of(data, float(t[0]))} to {_day_of(data, float(t[-1]))})" if t.size else ""
        left = f" (left out: {'; '.join(data.skipped)})" if data.skipped else ""
        raise DataError(
            f"{model.name}: patient {data.patient}: {t.size} weight{'' if t.size == 1 else 's'} "
            f"(LOINC 29463-7) in the fitted period{when}{left}, and a body-weight twin needs "
            f"{MIN_READINGS}: a longer --days, or more weights in the record"
        )
    require_characteristics(
        who, ("sex", "age_y", "height_m"), data.patient, "the body weight model needs them"
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
    order: tuple[str, ...] = FIT_ORDER if fat is not None else FIT_ORDER_NO_FAT_READING
    readings = t.size
    if observables(trimmed) != "weight_kg":
        order, readings = FIT_ORDER_WITH_FAT, t.size + trimmed.count("body_fat_pct")
    fit = order[: max(len(FEW_FIT), min(len(order), readings - SPARE_READINGS))]
    if order is FIT_ORDER_NO_FAT_READING and readings < FAT_FIT_READINGS:
        fit = fit[: len(FIT_ORDER)]
    ramp = "intake_factor_end" in fit
    base[names.index("intake_ramp_d")] = (t_last - t0) / 1440.0 if ramp else 0.0
    return base, trimmed, fit


def _day_of(data: PatientData, minute: float) -> str:
    """The UTC date of minute ``minute`` of ``data``."""
    if data.start is None:
        return f"day {minute / 1440.0:g}"
    return f"{data.start + dt.timedelta(minutes=minute):%Y-%m-%d}"


def _adult_from(born: dt.date, years: int) -> dt.date:
    """The ``years``-th birthday of someone born on ``born`` (29 February: 1 March)."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:  # born on 29 February, and the year is not a leap year
        return dt.date(born.year + years, 3, 1)


def _as_adult(model: type[Model], who: Mapping[str, Any], data: PatientData) -> PatientData:
    """``data`` without the readings taken before the model's youngest age (the 18th
    birthday: the model has no growth), the reason in ``skipped``; refused
    (:class:`~medtwin.model.base.OutsidePopulationError`) when the last weight was taken as a
    child. A record whose weights
    reach back to childhood (Synthea's from birth) then fits its adult years."""
    from medtwin.physiology.body_weight import valid_population

    born = who.get("birth_date")
    if not isinstance(born, dt.date) or data.start is None or not data.count("weight_kg"):
        return data
    youngest = valid_population()["min_age_y"]
    adult = _adult_from(born, int(youngest))
    cut = (
        dt.datetime.combine(adult, dt.time(), dt.UTC) - data.start
    ).total_seconds() / 60.0  # minutes of the data's clock
    t, _ = data.series("weight_kg")
    if float(t[-1]) < cut:
        taken = (data.start + dt.timedelta(minutes=float(t[-1]))).date()
        raise OutsidePopulationError(
            f"{model.name}: patient {data.patient}: the last weight ({taken:%Y-%m-%d}) was taken "
            f"before the {youngest:g}th birthday ({adult:%Y-%m-%d}); the body weight model "
            f"(Hall 2011) describes adults aged {youngest:g} to "
            f"{valid_population()['max_age_y']:g}: it has no growth, so it will not extrapolate "
            "to a child (a child's body weight needs a paediatric model, which medtwin does not "
            "have)"
        )
    keep = {name: times >= cut for name, (times, _) in data.observations.items()}
    dropped = sum(int(np.sum(~k)) for k in keep.values())
    if dropped == 0:
        return data
    reason = (
        f"{dropped} readings taken before the {youngest:g}th birthday ({adult:%Y-%m-%d}): the "
        "body weight model describes adults"
    )
    return keeping(data, keep, reason)


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

    pal = np.quantile(draws[:, bw.PAL], [0.05, 0.5, 0.95])
    lines = [f"intake minus maintenance at the first weight: {text(first - maintenance, True)}"]
    if "intake_factor_end" in calibration.fitted:
        lines.append(
            "intake at the last weight minus the first weight's maintenance: "
            f"{text(last - maintenance, True)}"
        )
    else:
        lines.append(
            "one habitual intake over the whole record (too few weights to fit a change of it)"
        )
    lines.append(
        f"habitual intake at the last weight: {text(last)}, with a physical activity level of "
        f"{pal[1]:.2f} ({pal[0]:.2f} to {pal[2]:.2f}: weights barely tell it, so the level of "
        "the intake is uncertain; its change is what they measure)"
    )
    if "fat_fraction" in calibration.fitted:
        fat = 100.0 * np.quantile(draws[:, bw.FAT_FRACTION], [0.05, 0.5, 0.95])
        said = calibration.provenance.get("observables", ())
        how = (
            "fitted to the body-fat readings with the weights"
            if "body_fat_pct" in said
            else "predicted from sex, age and BMI; the weights barely tell it"
        )
        lines.append(
            f"body fat at the first weight: {fat[1]:.1f} % ({fat[0]:.1f} to {fat[2]:.1f}: {how})"
        )
    return lines


def complete(
    model: type[Model], base: FloatArray, idx: Sequence[int], values: FloatArray
) -> FloatArray:
    """Fitted values into full parameter rows, with the resting metabolic rate (Mifflin-St
    Jeor) and the extracellular fluid volume solved again at the fitted first weight (both are
    the appendix's regressions on weight; the body-fat fraction is kept, measured or not).
    The first weight is kept within the model's BMI range (16-60) and the fat fraction below
    what would leave less than :data:`MIN_LEAN_FRACTION` lean tissue."""
    from medtwin.physiology import body_weight as bw
    from medtwin.twin.calibrate import _set_columns

    p = _set_columns(model, np.atleast_2d(base), idx, values)
    # a fitted first weight is kept inside the model's BMI range (an optimiser's trial step;
    # the model refuses a body outside its population)
    pop = bw._meta()["population"]
    h2 = p[:, bw.HEIGHT] ** 2
    p[:, bw.WEIGHT] = np.clip(
        p[:, bw.WEIGHT], pop["min_bmi_kg_m2"] * h2 * 1.0001, pop["max_bmi_kg_m2"] * h2 * 0.9999
    )
    cov = {"age_y": p[:, bw.AGE], "height_m": p[:, bw.HEIGHT], "weight_kg": p[:, bw.WEIGHT]}
    p[:, bw.RMR] = bw._regression("rmr_kcal_per_day", p[:, bw.FEMALE], cov)
    p[:, bw.ECF] = bw._regression("ecf_l", p[:, bw.FEMALE], cov)
    # a fitted fat fraction is kept below what would leave less than MIN_LEAN_FRACTION of the
    # weight as lean tissue (an optimiser's trial step; the model refuses no lean mass)
    lean = bw._base(p)["l0"][:, 0]
    short = np.maximum(MIN_LEAN_FRACTION * p[:, bw.WEIGHT] - lean, 0.0)
    p[:, bw.FAT_FRACTION] -= short / p[:, bw.WEIGHT]
    return p


def priors(model: type[Model], base: FloatArray, data: PatientData) -> dict[str, Prior]:
    """This adult's prior of the start's fat fraction: normal about the Hall model's regression
    on sex, age and BMI (of the base: the first weight), SD :data:`FAT_FRACTION_SEE`."""
    from medtwin.physiology import body_weight as bw

    del data
    row = np.atleast_2d(base)[0]
    centre = bw.baseline_body_fat_fraction(
        "female" if row[bw.FEMALE] > 0.5 else "male",
        float(row[bw.AGE]),
        float(row[bw.HEIGHT]),
        float(row[bw.WEIGHT]),
    )
    source = (
        "fat fraction from sex, age and BMI (Hall model baseline regression), SD 0.041: "
        "SEE of Deurenberg et al. Br J Nutr 1991;65:105-114"
    )
    return {"fat_fraction": Prior("normal", centre, FAT_FRACTION_SEE, source)}


def observables(data: PatientData) -> str | tuple[str, ...]:
    """Weights, and body-fat percentages too where the data hold :data:`BODY_FAT_READINGS`."""
    if data.count("body_fat_pct") >= BODY_FAT_READINGS:
        return ("weight_kg", "body_fat_pct")
    return "weight_kg"


def fit_spec() -> FitSpec:
    """The :class:`~medtwin.twin.calibrate.FitSpec` of ``hall_2011_body_weight``."""
    from medtwin.twin.calibrate import FitSpec

    return FitSpec(
        default_fit=DEFAULT_FIT,
        complete=complete,
        observable="weight_kg",
        choose_observable=observables,
        min_readings=MIN_READINGS,
        readings_per_parameter=1,
        noise_floor={"weight_kg": NOISE_FLOOR_KG, "body_fat_pct": NOISE_FLOOR_FAT_PCT},
        small_sample=True,
        personalise=personalise,
        priors=priors,
        window_days=WINDOW_DAYS,
        describe=describe,
        anchored=True,
    )


def intake_kcal_per_day(params: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Habitual energy intake (kcal/day) at the first and at the last weight, per row.

    Without a ramp (``intake_ramp_d`` 0: fewer weights than fit ``intake_factor_end``) the
    intake is ``intake_factor`` throughout, at the last weight too (``intake_factor_end`` is
    then not used, whatever its value)."""
    from medtwin.physiology import body_weight as bw

    p = np.atleast_2d(params)
    ei0 = p[:, bw.PAL] * p[:, bw.RMR]
    end = np.where(p[:, bw.RAMP] > 0.0, p[:, bw.FACTOR1], p[:, bw.FACTOR0])
    return ei0 * p[:, bw.FACTOR0], ei0 * end
