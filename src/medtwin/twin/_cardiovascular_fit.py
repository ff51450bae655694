"""Cardiovascular (``cardiovascular_ursino``) specifics of calibration: resting blood pressure.

A circulation twin is the Ursino 1998 mean-flow circulation of one adult fitted to their own
resting vitals: systolic and diastolic pressure (LOINC 8480-6, 8462-4) and heart rate (8867-4)
of the last two years (clinic visits, home readings). Those readings are of a resting steady state,
so every reading is compared with the model's resting state (:meth:`initial_state`), whatever
its time (``FitSpec.steady``): nothing is simulated over the year.

From the record (:func:`personalise`): age, sex and the latest body weight scale the preset to
the patient's blood volume (:func:`medtwin.physiology.cardiovascular.for_patient`: 75 mL/kg for
men, 65 for women); a record without them is refused, naming what is missing, and the model's
population (adults of 40-150 kg) is checked before anything is fitted.

Fitted (:data:`FIT_ORDER`, as many as the readings allow: ``n - 3`` for ``n`` readings): the
baroreflex set point ``pn_mmhg`` (what the resting mean pressure follows: the carotid
baroreflex resets to the prevailing pressure in chronic hypertension, Krieger EM, Clin Exp
Pharmacol Physiol Suppl 1989;15:3-17), the vagal gain on the heart period ``g_tv_s2`` (the
resting heart rate: people's resting rates differ mostly by vagal tone, and the basal period
``t0_s`` moves the modelled rate little), the pulse compliance (the pulse pressure, SV / C),
then the basal heart period, the systemic peripheral resistance and the left ventricle's
end-systolic elastance, which resting readings barely inform: their posteriors stay near the model's priors and carry that uncertainty into what a
haemorrhage or an anaesthetic would do to this patient. The other parameters keep the
published values (Ursino 1998 Tables 1-3, scaled).

Treatment: readings taken under another antihypertensive treatment describe another
circulation (the drugs lower the resistance, and the fitted set point would pool the two), so
only the readings under the treatment of the last reading are fitted, from
:data:`SETTLE_DAYS` after it last changed (a drug started, stopped, or its dose changed;
:func:`medtwin.record.medications.regimen_since`); the others are listed as not used, with the
reason, and the treatment is recorded with the twin. Where fewer remain than a fit needs, the
twin is refused, saying since when the treatment has been unchanged and how to fit the earlier
period instead (``medtwin twin fit --until``).

Reading error: Student-t per observable with its own scale. A year holds a few visits, too
few to estimate three scales from, so each scale starts from the within-person visit-to-visit
variation of office readings (:data:`NOISE_PRIOR`: SD 8 mmHg systolic, 5 mmHg diastolic,
6 /min heart rate, the assumptions of the order of Rothwell PM et al. Lancet 2010;375:895-905
that the synthetic population uses, ``synth/data/population.toml`` [within_person]; as a
Student-t scale with nu = 4, SD / sqrt(2)) worth 4 readings, and is updated by the residuals
(``FitSpec.noise_prior``); never below :data:`NOISE_FLOOR`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from medtwin.model.base import FloatArray, Model, ModelError, OutsidePopulationError
from medtwin.twin.data import (
    DataError,
    PatientData,
    PregnancyTerms,
    outside_pregnancy,
    require_characteristics,
)

if TYPE_CHECKING:
    from medtwin.twin.calibrate import Calibration, FitSpec

__all__ = [
    "FIT_ORDER",
    "MIN_FIT",
    "NOISE_FLOOR",
    "NOISE_PRIOR",
    "OBSERVABLES",
    "SETTLE_DAYS",
    "SPARE_READINGS",
    "WINDOW_DAYS",
    "describe",
    "fit_spec",
    "personalise",
]

OBSERVABLES = ("sbp_mmhg", "dbp_mmhg", "heart_rate_per_min")
"""Fitted jointly: systolic and diastolic pressure and heart rate (SBP first: its scale is the
calibration's ``noise_scale``)."""

FIT_ORDER = (
    "pn_mmhg",
    "g_tv_s2",
    "pulse_compliance_ml_per_mmhg",
    "t0_s",
    "rsp0_mmhg_s_per_ml",
    "emax_lv0_mmhg_per_ml",
)
"""What resting vitals are fitted for, in order: the first ``n - 3`` for ``n`` readings."""

MIN_FIT = 3
"""At least the set point, the heart period and the pulse compliance (one per observable)."""

SPARE_READINGS = 3
"""Degrees of freedom kept for the reading errors when choosing how much to fit."""

NOISE_PRIOR: Mapping[str, tuple[float, float]] = {
    "sbp_mmhg": (8.0 / 2**0.5, 4.0),
    "dbp_mmhg": (5.0 / 2**0.5, 4.0),
    "heart_rate_per_min": (6.0 / 2**0.5, 4.0),
}
"""Prior guess of each observable's Student-t scale and its weight in readings (see the module
docstring)."""

NOISE_FLOOR: Mapping[str, float] = {
    "sbp_mmhg": 2.0,
    "dbp_mmhg": 2.0,
    "heart_rate_per_min": 1.0,
}
"""Smallest reading-error scale of each observable: the resolution of the readings (whole
mmHg and beats per minute) and a little more, a choice of medtwin's."""

WINDOW_DAYS = 730.0
"""A circulation twin is fitted to the last two years of resting vitals by default (two yearly
check-ups at least: one visit's three readings cannot fit three parameters)."""


SETTLE_DAYS = 28.0
"""Readings from this many days after the antihypertensive treatment last changed are taken as
of the new treatment. Sources: an evidence synthesis of 18 placebo-controlled trials (4,168
patients starting one drug; office readings at least every 2 weeks for at least 4 weeks;
asymptotic model by non-linear mixed effects) found 50 % of the maximum lowering after 0.91
weeks systolic (95 % CI 0.74-1.10) and 0.95 weeks diastolic, no different by drug class, 1.2
weeks with titration (abstract: NIHR CLAHRC Oxford publication 140937, journal pages
1771-1775; its authors' names were not in the material read), so after 4 weeks about 95 %
of the effect (90 % with titration) is reached; a meta-analysis of 94 placebo-controlled trials
(25,637 participants; abstract, authors not in the material read) found no further lowering
after week 4 (0.4 / 0.2 mmHg from week 4 to 8). That a stopped drug's effect is gone by the
same time is medtwin's assumption (no source read)."""


def _treatment(who: Mapping[str, Any], data: PatientData, model: type[Model]) -> PatientData:
    """``data`` cut to the readings under the antihypertensive treatment of the last reading
    (from :data:`SETTLE_DAYS` after its last change), with the reason for the cut in
    ``skipped`` and the treatment in ``context``; unchanged where the characteristics hold no
    medication orders (a caller that built them by hand).

    A reading is of the treatment just before its time: one taken at the visit where a drug
    was ordered (the same time stamp) was measured before the drug could act.
    """
    from medtwin.record.medications import ANTIHYPERTENSIVE_ATC, regimen_at, regimen_since

    orders, start = who.get("medication_orders"), data.start
    if orders is None or start is None:
        return data
    present = [data.observations[n][0] for n in OBSERVABLES if n in data.observations]
    if not present:
        return data
    times = np.unique(np.concatenate(present))
    tick = dt.timedelta(microseconds=1)
    last = start + dt.timedelta(minutes=float(times[-1]))
    regimen = regimen_at(orders, last - tick, ANTIHYPERTENSIVE_ATC)
    if not regimen.known:
        raise DataError(
            f"{model.name}: patient {data.patient}: whether {', '.join(regimen.unknown)} was "
            f"still taken at the last reading ({last:%Y-%m-%d}) is not known (the order was "
            "stopped on a date the record does not give), so readings under other treatment "
            "cannot be told apart: record the order's end date"
        )
    since = regimen_since(orders, last - tick, ANTIHYPERTENSIVE_ATC)
    treatment = regimen.describe()
    used = tuple(o.fact_id for o in regimen.taken_orders if o.fact_id is not None)
    context = [f"antihypertensive treatment: {treatment}"]
    if since is not None:
        context[0] += f", unchanged since {since:%Y-%m-%d}"
    now = regimen_at(orders, max(last, dt.datetime.now(dt.UTC)), ANTIHYPERTENSIVE_ATC)
    if now.key() != regimen.key():
        context.append(
            f"the treatment changed after the last reading ({last:%Y-%m-%d}) to "
            f"{now.describe()}: the twin is of the patient before that change"
        )
    data = dataclasses.replace(
        data, fact_ids=(*data.fact_ids, *used), context=(*data.context, *context)
    )
    if since is None:
        return data
    first = since + dt.timedelta(days=SETTLE_DAYS)
    cut = (first - start).total_seconds() / 60.0
    counts = [
        (int(np.sum(t < cut)), int(np.sum(t >= cut)))
        for n in OBSERVABLES
        if n in data.observations
        for t in (data.observations[n][0],)
    ]
    dropped, kept = sum(c[0] for c in counts), sum(c[1] for c in counts)
    if dropped == 0:
        return data
    before = regimen_at(orders, since - tick, ANTIHYPERTENSIVE_ATC).describe()
    needed = MIN_FIT + SPARE_READINGS
    if kept < needed:
        raise DataError(
            f"{model.name}: patient {data.patient}: {kept} resting readings (SBP, DBP, heart "
            f"rate) under the current antihypertensive treatment ({treatment}, since "
            f"{since:%Y-%m-%d}; readings count from {SETTLE_DAYS:.0f} days later, "
            f"{first:%Y-%m-%d}), and a circulation twin needs {needed}; the {dropped} earlier "
            f"ones were taken under other treatment ({before} before {since:%Y-%m-%d}) or "
            f"while the change took effect. To fit the period before it: 'medtwin twin fit "
            f"{data.patient} --model {model.name} --until {since.isoformat()}'"
        )
    reason = (
        f"{dropped} resting readings before {first:%Y-%m-%d}: taken under other "
        f"antihypertensive treatment ({before} before {since:%Y-%m-%d}) or within "
        f"{SETTLE_DAYS:.0f} days of the change to {treatment}"
    )
    windowed = data.window(cut, max(float(times[-1]), cut) + 1.0)
    return dataclasses.replace(windowed, skipped=(*data.skipped, reason))


def personalise(
    model: type[Model], who: Mapping[str, Any], data: PatientData
) -> tuple[FloatArray, PatientData, tuple[str, ...]]:
    """The preset scaled to this adult, their readings under their current antihypertensive
    treatment (:data:`SETTLE_DAYS`), and what to fit (the first ``n - 3`` of :data:`FIT_ORDER`
    for ``n`` readings, at least :data:`MIN_FIT`)."""
    from medtwin.physiology.cardiovascular import for_patient

    require_characteristics(
        who, ("sex", "age_y", "weight_kg"), data.patient, "the circulation model is scaled to them"
    )
    try:
        base = for_patient(
            age_years=float(who["age_y"]),
            weight_kg=float(who["weight_kg"]),
            sex=str(who["sex"]),  # type: ignore[arg-type]
        )[0]
    except ModelError as exc:
        raise OutsidePopulationError(f"{model.name}: {exc}") from None
    data = outside_pregnancy(
        model,
        who,
        data,
        PregnancyTerms(
            observables=OBSERVABLES,
            reading="resting reading",
            readings="resting readings (SBP, DBP, heart rate)",
            needed=MIN_FIT + SPARE_READINGS,
            twin="a circulation twin",
            model="the circulation model (Ursino 1998)",
        ),
    )
    data = _treatment(who, data, model)
    lacking = [name for name in OBSERVABLES if not data.count(name)]
    if lacking:
        codes = {"sbp_mmhg": "SBP (LOINC 8480-6)", "dbp_mmhg": "DBP (8462-4)",
                 "heart_rate_per_min": "heart rate (8867-4)"}  # fmt: skip
        raise DataError(
            f"{model.name}: patient {data.patient}: no {' or '.join(codes[n] for n in lacking)} "
            "among the resting readings fitted (the last two years, --days; under the current "
            "antihypertensive treatment): a circulation twin fits SBP, DBP and heart rate "
            "together"
        )
    readings = sum(data.count(name) for name in OBSERVABLES)
    if readings < MIN_FIT + SPARE_READINGS:
        times = np.concatenate([data.series(name)[0] for name in OBSERVABLES])
        span = ""
        if data.start is not None:
            first, last = (
                data.start + dt.timedelta(minutes=float(x)) for x in (times.min(), times.max())
            )
            span = f" ({first:%Y-%m-%d} to {last:%Y-%m-%d})"
        raise DataError(
            f"{model.name}: patient {data.patient}: {readings} resting readings (SBP, DBP, heart "
            f"rate) in the fitted period{span}, and a circulation twin needs "
            f"{MIN_FIT + SPARE_READINGS} (two visits at least): a longer --days, or more "
            "readings in the record"
        )
    fit = FIT_ORDER[: max(MIN_FIT, min(len(FIT_ORDER), readings - SPARE_READINGS))]
    return base, data, fit


def describe(calibration: Calibration) -> list[str]:
    """The resting state the fit implies (median and 90 % interval over posterior draws)."""
    from medtwin.twin.calibrate import steady_observables

    model = calibration.model_class()
    draws = calibration.sample(200, seed=0)
    values = steady_observables(
        model,
        draws,
        ["map_mmhg", "sbp_mmhg", "dbp_mmhg", "heart_rate_per_min", "cardiac_output_l_per_min"],
    )
    lines = [str(c) for c in calibration.provenance.get("context", ())]
    for name, label, unit in (
        ("sbp_mmhg", "systolic", "mmHg"),
        ("dbp_mmhg", "diastolic", "mmHg"),
        ("map_mmhg", "mean arterial", "mmHg"),
        ("heart_rate_per_min", "heart rate", "/min"),
        ("cardiac_output_l_per_min", "cardiac output", "L/min"),
    ):
        lo, mid, hi = np.quantile(values[name], [0.05, 0.5, 0.95])
        lines.append(f"resting {label}: {mid:.1f} {unit} (90% interval {lo:.1f} to {hi:.1f})")
    scales = ", ".join(f"{k} {v:.1f}" for k, v in calibration.noise_scales.items())
    lines.append(f"reading-error scales (Student-t): {scales}")
    return lines


def fit_spec() -> FitSpec:
    """The :class:`~medtwin.twin.calibrate.FitSpec` of ``cardiovascular_ursino``."""
    from medtwin.twin.calibrate import FitSpec

    return FitSpec(
        default_fit=FIT_ORDER,
        observable=OBSERVABLES,
        min_readings=MIN_FIT + SPARE_READINGS,
        readings_per_parameter=1,
        noise_floor=NOISE_FLOOR,
        noise_prior=NOISE_PRIOR,
        small_sample=True,
        steady=True,
        personalise=personalise,
        window_days=WINDOW_DAYS,
        describe=describe,
    )
