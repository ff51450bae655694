"""The patient data a twin is fitted to and kept in step with: observations and known events.

A :class:`PatientData` holds, on one time axis in minutes from ``start``:

- ``observations``: for each model observable (``"cgm_mg_dl"``, ``"weight_kg"``, ``"map_mmhg"``
  ...), the times and values of the patient's readings;
- ``scenario``: what is known to have happened to the patient (announced meals, insulin boluses
  and basal rates, doses, diet), in the one event format of :mod:`medtwin.model.events`;
- ``censored``: for an observable whose readings include bounds, not values (a CGM's "LOW" sent
  as "<40", "HIGH" as ">400", an assay below its limit), which readings are bounds and which
  way (:data:`BELOW`, :data:`ABOVE`); calibration and assimilation take such a reading as
  "at or beyond the bound" (a censored likelihood), never as the value of the bound;
- provenance: the patient id, the absolute start time and the ids of the facts used, so every
  fitted twin records what it was fitted to.

Calibration (:mod:`medtwin.twin.calibrate`), assimilation (:mod:`medtwin.twin.assimilate`) and
:class:`medtwin.twin.Twin` all take this one object.

>>> import numpy as np
>>> from medtwin.model import parse_scenario
>>> d = PatientData(
...     observations={"cgm_mg_dl": (np.array([0.0, 5.0, 10.0]), np.array([120.0, 124.0, 131.0]))},
...     scenario=parse_scenario([{"type": "meal", "t_min": 2, "carbs_g": 40}]),
... )
>>> d.span_min, d.count("cgm_mg_dl")
(10.0, 3)
>>> d.window(4, 10).observations["cgm_mg_dl"][0].tolist()
[1.0, 6.0]

A sensor's "LOW" (below 40 mg/dL) is a bound, kept as one:

>>> low = PatientData(
...     observations={"cgm_mg_dl": (np.array([0.0, 5.0]), np.array([40.0, 52.0]))},
...     censored={"cgm_mg_dl": np.array([BELOW, EXACT])},
... )
>>> low.censoring("cgm_mg_dl").tolist(), low.count_censored()
([-1, 0], 1)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medtwin.model.base import FloatArray, Model, ModelError
from medtwin.model.events import Event, Scenario
from medtwin.record.context import PUERPERIUM_DAYS

IntArray = NDArray[np.int64]

__all__ = [
    "ABOVE",
    "BELOW",
    "CENSORED_BY_COMPARATOR",
    "CHARACTERISTICS",
    "EXACT",
    "DataError",
    "PatientData",
    "PregnancyTerms",
    "keeping",
    "outside_pregnancy",
    "require_characteristics",
]

EXACT = 0
"""A reading that is a value."""
BELOW = -1
"""A reading that is an upper bound: the true reading is at or below it ("<40", a sensor's LOW)."""
ABOVE = 1
"""A reading that is a lower bound: the true reading is at or above it (">400", a sensor's
HIGH)."""
CENSORED_BY_COMPARATOR = {"<": BELOW, "<=": BELOW, ">": ABOVE, ">=": ABOVE}
"""FHIR ``Quantity.comparator`` (an HL7 v2 SN's, a CSV's "<40") -> which way the reading is a
bound. A continuous reading's "<" and "<=" are the same event (probability 0 at the bound)."""

CHARACTERISTICS = {
    "sex": "sex (Patient.gender female or male)",
    "age_y": "age (Patient.birthDate)",
    "height_m": "height (LOINC 8302-2)",
    "weight_kg": "body weight (LOINC 29463-7)",
}
"""What :func:`medtwin.twin.twin.characteristics` reads, and where the record holds it."""


def require_characteristics(
    who: Mapping[str, object], keys: Sequence[str], patient: str | None, purpose: str
) -> None:
    """Refuse (:class:`DataError`), naming what is missing and where the record would hold it,
    when ``who`` lacks one of ``keys``.

    >>> require_characteristics({"sex": "female"}, ["sex", "height_m"], "P1", "the model needs it")
    Traceback (most recent call last):
    ...
    medtwin.twin.data.DataError: patient P1: the record has no height (LOINC 8302-2): the model needs it
    """
    missing = [CHARACTERISTICS.get(k, k) for k in keys if k not in who]
    if missing:
        raise DataError(
            f"patient {patient or '?'}: the record has no {', '.join(missing)}: {purpose}"
        )


class DataError(ModelError):
    """The patient's data cannot be used as given; the message names the field and the fix."""


@dataclass(frozen=True)
class PatientData:
    """Observations and known events of one patient, in minutes from ``start``.

    Parameters
    ----------
    observations
        Observable name -> ``(times_min [T], values [T])``, times ascending.
    scenario
        The known events (minutes from ``start``).
    start
        The absolute time of minute 0 (timezone-aware UTC), when the data come from a record.
    patient
        The medtwin patient id, when known.
    fact_ids
        Ids of the store facts the data were read from (provenance).
    skipped
        Readings of the record that were not used, each with the fact and the reason (a unit
        that cannot be converted to the observable's, a reading taken under another
        treatment).
    context
        What the data stand for, in words, where a fit chose them by it (``"antihypertensive
        treatment: Amlodipine 5 MG Oral Tablet, unchanged since 2024-03-01"``); recorded with
        the calibration.
    censored
        Observable name -> one code per reading (``[T]``, in the order of ``observations``):
        :data:`EXACT` (0), :data:`BELOW` (-1, the reading is an upper bound) or :data:`ABOVE`
        (1, a lower bound). An observable not named here has only exact readings.
    """

    observations: Mapping[str, tuple[FloatArray, FloatArray]]
    scenario: Scenario = field(default_factory=lambda: Scenario(events=()))
    start: dt.datetime | None = None
    patient: str | None = None
    fact_ids: Sequence[int] = ()
    skipped: Sequence[str] = ()
    context: Sequence[str] = ()
    censored: Mapping[str, IntArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean: dict[str, tuple[FloatArray, FloatArray]] = {}
        flags: dict[str, IntArray] = {}
        unknown = sorted(set(self.censored) - set(self.observations))
        if unknown:
            raise DataError(f"censored[{unknown[0]!r}]: no such observable in observations")
        for name, pair in self.observations.items():
            if len(pair) != 2:
                raise DataError(f"observations[{name!r}] must be (times_min, values)")
            t = np.asarray(pair[0], dtype=np.float64).ravel()
            y = np.asarray(pair[1], dtype=np.float64).ravel()
            if t.shape != y.shape:
                raise DataError(
                    f"observations[{name!r}]: {t.size} times but {y.size} values (one each)"
                )
            if t.size and not np.all(np.isfinite(t)):
                raise DataError(f"observations[{name!r}]: times must be finite numbers")
            c = np.zeros(t.size, dtype=np.int64)
            if name in self.censored:
                c = np.asarray(self.censored[name]).ravel()
                if c.shape != t.shape:
                    raise DataError(
                        f"censored[{name!r}]: {c.size} codes but {t.size} readings (one each)"
                    )
                if not np.all(np.isin(c, (EXACT, BELOW, ABOVE))):
                    raise DataError(
                        f"censored[{name!r}]: codes must be {EXACT} (a value), {BELOW} (an "
                        f"upper bound, '<') or {ABOVE} (a lower bound, '>')"
                    )
                c = c.astype(np.int64)
            if t.size > 1 and np.any(np.diff(t) < 0):
                order = np.argsort(t, kind="stable")
                t, y, c = t[order], y[order], c[order]
            keep = np.isfinite(y)
            clean[name] = (t[keep], y[keep])
            if np.any(c[keep] != EXACT):
                flags[name] = c[keep]
        if self.start is not None and self.start.utcoffset() is None:
            raise DataError("start must be timezone-aware (UTC)")
        object.__setattr__(self, "observations", clean)
        object.__setattr__(self, "censored", flags)

    def censoring(self, name: str) -> IntArray:
        """One code per reading of ``name`` (:data:`EXACT`, :data:`BELOW`, :data:`ABOVE`); all
        exact for an observable without bounds."""
        if name in self.censored:
            return self.censored[name]
        return np.zeros(self.count(name), dtype=np.int64)

    def count_censored(self, name: str | None = None) -> int:
        """Number of readings that are bounds (of ``name``, or of every observable)."""
        names = [name] if name is not None else list(self.censored)
        return int(sum(np.count_nonzero(self.censored[n]) for n in names if n in self.censored))

    @property
    def span_min(self) -> float:
        """Minutes from 0 to the last observation or event (0 when empty)."""
        last = [float(t[-1]) for t, _ in self.observations.values() if t.size]
        last += [e.t_min for e in self.scenario.events]
        return max(last, default=0.0)

    @property
    def first_reading_min(self) -> float | None:
        """Minute of the first reading of any observable (``None`` when there is none): where
        what the data say of the patient begins."""
        first = [float(t[0]) for t, _ in self.observations.values() if t.size]
        return min(first, default=None)

    def count(self, name: str) -> int:
        """Number of (finite) readings of one observable."""
        pair = self.observations.get(name)
        return 0 if pair is None else int(pair[0].size)

    def series(self, name: str) -> tuple[FloatArray, FloatArray]:
        """``(times_min, values)`` of one observable; :class:`DataError` when absent."""
        if name not in self.observations or not self.observations[name][0].size:
            known = ", ".join(sorted(n for n in self.observations if self.count(n))) or "none"
            raise DataError(f"no {name!r} readings in the patient's data (has: {known})")
        return self.observations[name]

    def window(self, t0_min: float, t1_min: float) -> PatientData:
        """The data in ``[t0_min, t1_min]``, re-based so that ``t0_min`` is minute 0.

        Events before ``t0_min`` that still act (a basal rate, a diet) are moved to 0;
        other earlier events are dropped. An empty window (``t0_min == t1_min``) holds what is
        at that minute: the standing events in force then (a forecast that absorbs no
        readings starts from them).
        """
        if not (math.isfinite(t0_min) and math.isfinite(t1_min) and t1_min >= t0_min):
            raise DataError(f"window: need t0 <= t1, got {t0_min!r}, {t1_min!r}")
        obs = {}
        flags = {}
        for name, (t, y) in self.observations.items():
            keep = (t >= t0_min) & (t <= t1_min)
            obs[name] = (t[keep] - t0_min, y[keep])
            if name in self.censored:
                flags[name] = self.censored[name][keep]
        sticky = {"basal", "diet", "activity", "weight"}
        last_sticky: dict[str, Event] = {}
        events: list[Event] = []
        for e in self.scenario.events:
            if e.t_min < t0_min:
                if e.type in sticky:
                    last_sticky[e.type] = e
                continue
            if e.t_min <= t1_min:
                events.append(Event(e.type, e.t_min - t0_min, e.fields, e.index))
        at_start = {e.type for e in events if e.t_min == 0.0}
        moved = [
            Event(e.type, 0.0, e.fields, e.index)
            for e in last_sticky.values()
            if e.type not in at_start  # one given exactly at t0 takes over
        ]
        start = None if self.start is None else self.start + dt.timedelta(minutes=t0_min)
        return PatientData(
            observations=obs,
            scenario=Scenario(
                events=tuple(sorted(moved + events, key=lambda e: (e.t_min, e.index)))
            ),
            start=start,
            patient=self.patient,
            fact_ids=self.fact_ids,
            skipped=self.skipped,
            context=self.context,
            censored=flags,
        )

    def require(self, model: type[Model], names: Sequence[str], *, minimum: int = 1) -> None:
        """Refuse, naming the field, when an observable the caller needs has too few readings
        or is not one of the model's observables."""
        known = {o.name for o in model.observables}
        for name in names:
            if name not in known:
                raise DataError(
                    f"model {model.name!r} has no observable {name!r} "
                    f"(it has: {', '.join(sorted(known))})"
                )
            if self.count(name) < minimum:
                raise DataError(
                    f"{name}: {self.count(name)} readings, need at least {minimum} "
                    f"(patient {self.patient or '?'})"
                )


def keeping(data: PatientData, keep: Mapping[str, Any], reason: str) -> PatientData:
    """``data`` with only the readings ``keep`` marks (a boolean mask per observable, in the
    order of its readings), and ``reason`` added to ``skipped``."""
    observations = {
        name: (times[keep[name]], values[keep[name]])
        for name, (times, values) in data.observations.items()
    }
    censored = {name: flags[keep[name]] for name, flags in data.censored.items()}
    return dataclasses.replace(
        data, observations=observations, censored=censored, skipped=(*data.skipped, reason)
    )


@dataclass(frozen=True, slots=True)
class PregnancyTerms:
    """How a twin's fit names its readings when it leaves out a pregnancy
    (:func:`outside_pregnancy`)."""

    observables: tuple[str, ...]
    """The readings counted (the last one's date, how many remain)."""
    reading: str
    """One of them, in words ("weight")."""
    readings: str
    """Several ("weights")."""
    needed: int
    """The fewest the fit accepts."""
    twin: str
    """The twin, in words ("a body-weight twin")."""
    model: str
    """The model and its source ("the body weight model (Hall 2011)")."""


def outside_pregnancy(
    model: type[Model], who: Mapping[str, Any], data: PatientData, terms: PregnancyTerms
) -> PatientData:
    """``data`` without the readings taken in a pregnancy of ``who["pregnancies"]``
    (:func:`medtwin.twin.twin.characteristics`) or within
    :data:`~medtwin.record.context.PUERPERIUM_DAYS` after it, the reason in ``skipped``, for a
    model that describes adults who are not pregnant; refused (:class:`DataError`) when the
    last reading falls in one (saying how to fit the time before it), or when fewer than
    ``terms.needed`` readings remain."""
    pregnancies = who.get("pregnancies") or ()
    counted = [n for n in terms.observables if data.count(n)]
    if not pregnancies or data.start is None or not counted:
        return data
    origin = data.start.timestamp()
    spans = [(s, e + PUERPERIUM_DAYS * 86400.0, basis) for s, e, basis in pregnancies]

    def day(epoch_s: float) -> str:
        return f"{dt.datetime.fromtimestamp(epoch_s, dt.UTC):%Y-%m-%d}"

    last = origin + 60.0 * max(float(data.series(n)[0][-1]) for n in counted)
    for start, end, basis in spans:  # (the twin's date: the model's check_population)
        if start <= last < end:
            raise DataError(
                f"{model.name}: patient {data.patient}: the last {terms.reading} ({day(last)}) "
                f"falls in a pregnancy or the {PUERPERIUM_DAYS} days after it (the record: "
                f"{basis}; to {day(end)}), and {terms.model} describes adults who are not "
                f"pregnant. To fit the time before it: 'medtwin twin fit {data.patient} "
                f"--model {model.name} --until {day(start)}'"
            )
    masks = {}
    dropped = 0
    hit: set[int] = set()  # the pregnancies that held a reading
    for name, (times, _) in data.observations.items():
        absolute = origin + 60.0 * times
        keep = np.ones(times.size, dtype=bool)
        for index, (start, end, _) in enumerate(spans):
            inside = (absolute >= start) & (absolute < end)
            if inside.any():
                hit.add(index)
            keep &= ~inside
        dropped += int(np.sum(~keep))
        masks[name] = keep
    if dropped == 0:
        return data
    kept = sum(int(np.sum(masks[n])) for n in counted)
    which = "; ".join(f"{spans[i][2]}, to {day(spans[i][1])}" for i in sorted(hit))
    if kept < terms.needed:
        raise DataError(
            f"{model.name}: patient {data.patient}: {kept} {terms.readings} outside pregnancy "
            f"and the {PUERPERIUM_DAYS} days after it ({which}), and {terms.twin} needs "
            f"{terms.needed}: {terms.model} describes adults who are not pregnant"
        )
    short = terms.model.split(" (")[0]
    reason = (
        f"{dropped} readings taken during a pregnancy or within {PUERPERIUM_DAYS} days after it "
        f"({which}): {short} describes adults who are not pregnant"
    )
    return keeping(data, masks, reason)
