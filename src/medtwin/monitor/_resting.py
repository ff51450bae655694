"""Resting heart rate minutes from minute heart rate and step counts (shared by the wearable monitors).

A minute is a *resting* minute when it has a plausible heart rate and no steps were counted in
it or in the ``rest_window_min - 1`` minutes before it. With ``rest_window_min = 12`` this is
the rule of Mishra et al. (2020): the published code keeps heart-rate minutes whose 12-minute
rolling step sum (the minute and the 11 before it) is zero, so steps 11 minutes earlier exclude
a minute and steps 12 or 13 minutes earlier do not. With ``rest_window_min = 1`` it is the rule
of Alavi et al. (2022): heart rate where the corresponding step count is zero.

Streaming: a minute is decided only when a reading of a *later* minute arrives (its steps may
arrive after its heart rate), so the result never depends on how the stream is chunked. The
state is a few numbers (the open minute, the newest minute with steps), never raw minutes.

Steps are read as intervals ``[epoch_s, end_epoch_s)`` (one minute when no end is given): an
interval with steps > 0 marks every minute it covers. A step feed that only reports non-zero
counts (Apple Health) works; but a patient with heart rate and *no* step feed has no resting
minutes at all (a missing input is not read as zero steps): a minute counts only when some step
reading arrived within ``steps_silence_max_min`` minutes before it.

Heart rates outside ``[heart_rate_min_per_min, heart_rate_max_per_min]`` are artefacts: ignored
and reported to the caller. Negative step counts are ignored.

References
----------
.. [Mishra2020] Mishra T. et al. Pre-symptomatic detection of COVID-19 from smartwatch data.
   Nature Biomedical Engineering 4:1208-1220 (2020); resting heart rate as in the open code
   ``gireeshkbogu/AnomalyDetect`` ``scripts/rhrad_offline.py`` (``steps.rolling(12).sum() == 0``).
.. [Alavi2022] Alavi A. et al. Real-time alerting system for COVID-19 and other stress events
   using wearable data. Nature Medicine 28:175-184 (2022); open code
   ``StanfordBioinformatics/wearable-infection`` README ("averaging the heart rate values where
   the corresponding step value is zero").

>>> import numpy as np
>>> rest = RestingMinutes(rest_window_min=12)
>>> t = np.arange(30) * 60.0
>>> hr = np.full(30, 60.0); steps = np.zeros(30); steps[0] = 50.0
>>> epoch = np.concatenate([t, t]); value = np.concatenate([hr, steps])
>>> order = np.argsort(epoch, kind="stable")
>>> is_hr = np.arange(60)[order] < 30
>>> out = rest.process(epoch[order], value[order], is_hr, ~is_hr, np.full(60, np.nan))
>>> int(out.minute[0])  # steps in minute 0 exclude minutes 0..11
12
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from medtwin.monitor.base import Alert, Monitor, MonitorConfigError, Reading

__all__ = [
    "HEART_RATE_CODE",
    "NONE_MINUTE",
    "STEP_CODES",
    "Columns",
    "LocalClock",
    "RestingMinutes",
    "RestingOut",
    "artefact_alert",
    "columns",
    "evidence_at",
    "group_starts",
    "prepend",
]

HEART_RATE_CODE = "8867-4"
"""LOINC 8867-4 Heart rate (``/min``)."""
STEP_CODES = frozenset({"55423-8", "41950-7"})
"""LOINC 55423-8 Number of steps (what the Open mHealth reader emits) and 41950-7 Number of steps
in 24 hour Measured; both are read as a step count over the reading's interval."""
NONE_MINUTE = -(2**62)
"""Sentinel for "no such minute" inside the vectorised code (``None`` in JSON state)."""

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]


def group_starts(keys: I64) -> I64:
    """Positions where a run of equal ``keys`` starts (``keys`` sorted).

    >>> group_starts(np.array([3, 3, 4, 6, 6]))
    array([0, 2, 3])
    """
    change = np.empty(len(keys), dtype=np.bool_)
    if len(keys):
        change[0] = True
        np.not_equal(keys[1:], keys[:-1], out=change[1:])
    return np.flatnonzero(change)


def prepend(first: float, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``values`` with ``first`` in front (cheaper than ``np.r_`` on the one-reading path)."""
    out = np.empty(len(values) + 1, dtype=values.dtype)
    out[0] = first
    out[1:] = values
    return out


@dataclass(frozen=True, slots=True)
class Columns:
    """A run of readings as arrays (only the fields the wearable monitors need)."""

    epoch_s: F64
    value: F64
    is_hr: BOOL
    is_step: BOOL
    end_epoch_s: F64


def columns(readings: Sequence[Reading]) -> Columns:
    """Arrays of time, value, code flags and interval end of ``readings``."""
    n = len(readings)
    epoch = np.fromiter((r.epoch_s for r in readings), np.float64, n)
    value = np.fromiter((r.value for r in readings), np.float64, n)
    codes = [r.code for r in readings]
    # a heart rate sent as a bound (">200") is not a resting value: not learned
    is_hr = np.fromiter(
        (r.code == HEART_RATE_CODE and r.comparator is None for r in readings), np.bool_, n
    )
    is_step = np.fromiter((c in STEP_CODES for c in codes), np.bool_, n)
    end = np.fromiter(
        (math.nan if r.end_epoch_s is None else r.end_epoch_s for r in readings), np.float64, n
    )
    return Columns(epoch, value, is_hr, is_step, end)


class LocalClock:
    """UTC minute -> local minute for an IANA time zone (offsets looked up once per UTC hour).

    >>> LocalClock("UTC").local_minutes(np.array([0, 60]))
    array([ 0, 60])
    """

    def __init__(self, zone: str) -> None:
        from medtwin.record.time import get_zone

        try:
            self._zone = get_zone(zone)
        except Exception as exc:
            raise MonitorConfigError(f"unknown timezone {zone!r}: {exc}") from None
        self._utc = zone.upper() in ("UTC", "Z", "ETC/UTC", "GMT")
        self._cache: dict[int, int] = {}

    def offset_min(self, hour: int) -> int:
        """UTC offset in minutes at the start of UTC hour ``hour`` (hours since the epoch)."""
        if self._utc:
            return 0
        cached = self._cache.get(hour)
        if cached is None:
            offset = datetime.fromtimestamp(hour * 3600, UTC).astimezone(self._zone).utcoffset()
            cached = int(offset.total_seconds() // 60) if offset is not None else 0
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[hour] = cached
        return cached

    def local_minutes(self, minutes: I64) -> I64:
        """Local wall-clock minutes since the epoch for UTC minutes ``minutes``."""
        if self._utc or len(minutes) == 0:
            return minutes
        hours = minutes // 60
        unique, inverse = np.unique(hours, return_inverse=True)
        offsets = np.array([self.offset_min(int(h)) for h in unique], dtype=np.int64)
        return minutes + offsets[inverse]

    def local_minute(self, minute: int) -> int:
        """One UTC minute to local."""
        return minute + self.offset_min(minute // 60)


@dataclass(frozen=True, slots=True)
class RestingOut:
    """What one chunk decided.

    ``minute``/``heart_rate_milli``/``ref_pos``/``trigger`` describe the resting minutes
    decided in this chunk (oldest first); ``heart_rate_milli`` is the minute's mean heart rate in
    thousandths of a beat per minute (integers, so sums are exact whatever the chunking); ``ref_pos`` is the chunk position of the minute's last
    heart-rate reading (-2: the reading is :attr:`carried_ref`, from an earlier chunk) and
    ``trigger`` the chunk position of the reading that decided it. ``clock_pos``/``clock_minute``
    are the readings that moved the clock (in order), ``artefact_pos`` the implausible heart
    rates.
    """

    minute: I64
    heart_rate_milli: I64
    ref_pos: I64
    trigger: I64
    clock_pos: I64
    clock_minute: I64
    artefact_pos: I64
    carried_ref: tuple[str, str, float] | None


def _empty_out() -> RestingOut:
    e = np.zeros(0, np.int64)
    return RestingOut(e, e, e, e, e, e, e, None)


class RestingMinutes:
    """The streaming resting-minute rule (see the module docstring); state is plain JSON."""

    def __init__(
        self,
        *,
        rest_window_min: int,
        heart_rate_min_per_min: float = 30.0,
        heart_rate_max_per_min: float = 220.0,
        steps_silence_max_min: int = 1440,
    ) -> None:
        if int(rest_window_min) < 1:
            raise MonitorConfigError("rest_window_min must be >= 1")
        if not heart_rate_min_per_min < heart_rate_max_per_min:
            raise MonitorConfigError("heart_rate_min_per_min must be < heart_rate_max_per_min")
        self.rest_window_min = int(rest_window_min)
        self.hr_min = float(heart_rate_min_per_min)
        self.hr_max = float(heart_rate_max_per_min)
        self.silence = int(steps_silence_max_min)
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        self.open_minute = NONE_MINUTE
        self.open_hr_sum = 0  # thousandths of /min
        self.open_hr_n = 0
        self.open_ref: tuple[str, str, float] | None = None
        self.open_step_end = NONE_MINUTE
        self.open_seen = NONE_MINUTE
        self.last_step_end = NONE_MINUTE
        self.last_seen = NONE_MINUTE
        self.artefacts = 0

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain JSON state."""

        def opt(v: int) -> int | None:
            return None if v == NONE_MINUTE else int(v)

        return {
            "open_minute": opt(self.open_minute),
            "open_hr_sum": self.open_hr_sum,
            "open_hr_n": self.open_hr_n,
            "open_ref": list(self.open_ref) if self.open_ref else None,
            "open_step_end": opt(self.open_step_end),
            "open_seen": opt(self.open_seen),
            "last_step_end": opt(self.last_step_end),
            "last_seen": opt(self.last_seen),
            "artefacts": self.artefacts,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

        def opt(v: Any) -> int:
            return NONE_MINUTE if v is None else int(v)

        self.open_minute = opt(state["open_minute"])
        self.open_hr_sum = int(state["open_hr_sum"])
        self.open_hr_n = int(state["open_hr_n"])
        ref = state["open_ref"]
        self.open_ref = (str(ref[0]), str(ref[1]), float(ref[2])) if ref else None
        self.open_step_end = opt(state["open_step_end"])
        self.open_seen = opt(state["open_seen"])
        self.last_step_end = opt(state["last_step_end"])
        self.last_seen = opt(state["last_seen"])
        self.artefacts = int(state["artefacts"])

    # -- the rule ---------------------------------------------------------------------------
    def process(
        self,
        epoch_s: F64,
        value: F64,
        is_hr: BOOL,
        is_step: BOOL,
        end_epoch_s: F64,
        readings: Sequence[Reading] | None = None,
    ) -> RestingOut:
        """Learn one chunk (time order); return the minutes it decided.

        ``readings`` (the chunk itself) is only needed to remember the open minute's evidence
        reading across chunks.
        """
        finite = np.isfinite(epoch_s) & np.isfinite(value)
        relevant = (is_hr | is_step) & finite
        minute = np.where(relevant, np.floor(np.where(finite, epoch_s, 0.0) / 60.0), 0).astype(
            np.int64
        )
        clock = np.maximum.accumulate(np.where(relevant, minute, NONE_MINUTE))
        clock = np.maximum(clock, self.open_minute)
        on_clock = relevant & (minute >= clock)  # late readings (behind the clock) are dropped
        pos = np.flatnonzero(on_clock)
        if len(pos) == 0:
            return _empty_out()
        mk = minute[pos]
        vk = value[pos]
        hr_k = is_hr[pos]
        step_k = is_step[pos]
        artefact_k = hr_k & ((vk < self.hr_min) | (vk > self.hr_max))
        hr_ok = hr_k & ~artefact_k
        step_seen = step_k & (vk >= 0.0)
        step_pos = step_k & (vk > 0.0)
        end_k = end_epoch_s[pos]
        end_minute = np.where(
            np.isfinite(end_k), np.ceil(np.where(np.isfinite(end_k), end_k, 0.0) / 60.0) - 1, mk
        ).astype(np.int64)
        end_minute = np.maximum(end_minute, mk)

        starts = group_starts(mk)
        g_minute = mk[starts]
        milli = np.rint(np.where(hr_ok, vk, 0.0) * 1000.0).astype(np.int64)
        g_hr_sum = np.add.reduceat(milli, starts)
        g_hr_n = np.add.reduceat(hr_ok.astype(np.int64), starts)
        g_last_hr = np.maximum.reduceat(np.where(hr_ok, pos, -1), starts)
        g_step_end = np.maximum.reduceat(np.where(step_pos, end_minute, NONE_MINUTE), starts)
        g_seen = np.maximum.reduceat(np.where(step_seen, mk, NONE_MINUTE), starts)
        g_first = pos[starts]

        carried = self.open_ref
        if self.open_minute != NONE_MINUTE:
            if g_minute[0] == self.open_minute:
                g_hr_sum[0] += self.open_hr_sum
                g_hr_n[0] += self.open_hr_n
                if g_last_hr[0] < 0 and self.open_ref is not None:
                    g_last_hr[0] = -2
                g_step_end[0] = max(int(g_step_end[0]), self.open_step_end)
                g_seen[0] = max(int(g_seen[0]), self.open_seen)
            else:
                g_minute = prepend(self.open_minute, g_minute)
                g_hr_sum = prepend(self.open_hr_sum, g_hr_sum)
                g_hr_n = prepend(self.open_hr_n, g_hr_n)
                g_last_hr = prepend(-2 if self.open_ref is not None else -1, g_last_hr)
                g_step_end = prepend(self.open_step_end, g_step_end)
                g_seen = prepend(self.open_seen, g_seen)
                g_first = prepend(int(g_first[0]), g_first)  # placeholder, never used as a trigger

        # every group but the last is decided now, by the first reading of the next group
        f_minute = g_minute[:-1]
        cum_step_end = np.maximum.accumulate(prepend(self.last_step_end, g_step_end[:-1]))[1:]
        cum_seen = np.maximum.accumulate(prepend(self.last_seen, g_seen[:-1]))[1:]
        resting = (
            (g_hr_n[:-1] > 0)
            & (cum_step_end <= f_minute - self.rest_window_min)
            & (cum_seen > NONE_MINUTE)
            & (f_minute - cum_seen <= self.silence)
        )
        if len(f_minute):
            self.last_step_end = int(cum_step_end[-1])
            self.last_seen = int(cum_seen[-1])
        sel = np.flatnonzero(resting)
        sums, counts = g_hr_sum[:-1][sel], g_hr_n[:-1][sel]
        out = RestingOut(
            minute=f_minute[sel],
            heart_rate_milli=(2 * sums + counts) // (2 * counts),
            ref_pos=g_last_hr[:-1][sel],
            trigger=g_first[1:][sel],
            clock_pos=pos,
            clock_minute=mk,
            artefact_pos=pos[artefact_k],
            carried_ref=carried,
        )
        # the last group stays open
        self.open_minute = int(g_minute[-1])
        self.open_hr_sum = int(g_hr_sum[-1])
        self.open_hr_n = int(g_hr_n[-1])
        last = int(g_last_hr[-1])
        if last >= 0 and readings is not None:
            ref = readings[last].ref
            self.open_ref = (ref.source, ref.source_id, float(epoch_s[last]))
        elif last == -2:
            self.open_ref = carried
        else:
            self.open_ref = None
        self.open_step_end = int(g_step_end[-1])
        self.open_seen = int(g_seen[-1])
        self.artefacts += int(artefact_k.sum())
        return out


def evidence_at(
    readings: Sequence[Reading], out: RestingOut, position: int
) -> tuple[str, str, float]:
    """``(source, source_id, epoch_s)`` of the reading at ``position`` (-2: the carried one)."""
    if position == -2:
        if out.carried_ref is None:  # pragma: no cover - guarded by the caller
            raise ValueError("no carried reading")
        return out.carried_ref
    reading = readings[position]
    return (reading.ref.source, reading.ref.source_id, float(reading.epoch_s))


PREGNANCY_RHR = (
    "resting heart rate rises over a pregnancy, by 10-20 /min at its peak in the third "
    "trimester (Sanghavi M, Rutherford JD. Cardiovascular physiology of pregnancy. Circulation "
    "2014;130:1003-1008)"
)
"""What a resting-heart-rate alert adds when the record shows the patient pregnant then: the
rise may be the pregnancy's, not an illness's (the alert stands; the clinician weighs it)."""


def pregnancy_note(monitor: Monitor, epoch_s: float) -> tuple[str, dict[str, str]]:
    """The message suffix and detail of a resting-heart-rate alert at ``epoch_s`` for a patient
    the record shows pregnant then (the monitor's context), else nothing."""
    basis = monitor.pregnancy_at(epoch_s)
    if basis is None:
        return "", {}
    return f". The record shows a pregnancy ({basis}): {PREGNANCY_RHR}", {"pregnancy": basis}


def artefact_alert(monitor: Monitor, reading: Reading, day: int) -> Alert:
    """The once-a-day note that an implausible heart rate was ignored (``<name>.artefact``)."""
    lo = monitor.params["heart_rate_min_per_min"]
    hi = monitor.params["heart_rate_max_per_min"]
    return monitor.alert(
        f"{monitor.name}.artefact",
        "info",
        reading.epoch_s,
        f"Heart rate {reading.value:g}/min outside plausible {lo}-{hi}/min ignored "
        "(first such reading today)",
        (reading.ref,),
        category="artefact",
        detail={"heart_rate_per_min": reading.value, "local_day": day},
    )


def artefact_events(
    clock: LocalClock, out: RestingOut, events: list[Any], artefact_day: int | None
) -> int | None:
    """Queue one ``artefact`` event per local day with implausible heart rates (the first of
    the day); returns the last local day noted."""
    if len(out.artefact_pos) == 0:
        return artefact_day
    minutes = out.clock_minute[np.searchsorted(out.clock_pos, out.artefact_pos)]
    days = clock.local_minutes(minutes) // 1440
    for p, day in zip(out.artefact_pos.tolist(), days.tolist(), strict=True):
        if artefact_day is None or day > artefact_day:
            artefact_day = int(day)
            events.append((int(p), 2, 0, "artefact", int(day)))
    return artefact_day
