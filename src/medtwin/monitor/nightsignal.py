"""NightSignal: overnight resting heart rate against the person's median, yellow and red alerts.

The real-time alerting algorithm of Alavi et al. (2022), "Real-time alerting system for
COVID-19 and other stress events using wearable data", as described in the paper (Extended
Data Fig. 3: the deterministic finite state machine; Extended Data Fig. 4: how much overnight
data is used) and documented in the authors' code (``StanfordBioinformatics/wearable-infection``,
``nightsignal.py`` and README):

1. **Resting heart rate overnight**: heart-rate minutes with a zero step count in the same
   minute (``rest_window_min = 1``; the README: "averaging the heart rate values where the
   corresponding step value is zero") between midnight and 7 a.m. local time (the code keeps
   clock hours 00-06). No minimum amount of data per night (Extended Data Fig. 4).
2. **Night average**: the integer part of the mean of the integer heart rates of the night
   (the code truncates each value and the mean with ``int``).
3. **Baseline**: the integer part of the median of all nightly averages so far, this night
   included (``medianConfig = "MedianOfAvgs"``).
4. **Deviation**: a night is *potentially yellow* when its average is at least
   ``yellow_above_per_min`` (3) above the baseline and *potentially red* at least
   ``red_above_per_min`` (4) above (``yellow_threshold = 3``, ``red_threshold = 4``).
5. **Alerts**: red when this night and the calendar night before were both potentially red
   ("a red alert gets triggered if for two consecutive nights, the average RHR overnight is at
   least four bpm above the calculated baseline", Extended Data Fig. 3); otherwise yellow when
   both were potentially yellow; otherwise green (no alert). The alert is raised when the night
   ends (the code stamps it 07:00).

Our choices where the published algorithm says nothing or cannot stream (all documented in
``docs/models/rhr-detectors.md``): no alert until ``baseline_min_nights`` (14) nightly averages
exist before the night judged (the code has no minimum); the median is over at most the last
``baseline_max_nights`` (365) nights, to keep the state bounded (the code uses all nights); a
missing night is not imputed (the code fills a single missing night with the mean of its
neighbours, which needs the following night); an ``info`` ``data-quality`` note says once that
the baseline is being built; heart rates outside ``[30, 220]`` /min are ignored as artefacts
(an ``info`` ``artefact`` note at most once a day). Severity: yellow ``low``, red
``low-medium`` (our mapping onto the NEWS2-based scale of :data:`~medtwin.monitor.base.SEVERITIES`).

References
----------
.. [1] Alavi A, Bogu GK, Wang M, et al. Real-time alerting system for COVID-19 and other stress
   events using wearable data. Nat Med 28:175-184 (2022), Extended Data Figs. 3 and 4; code:
   github.com/StanfordBioinformatics/wearable-infection (``nightsignal.py``).

Examples
--------
>>> NightSignal("mt-1").describe()["params"]["red_above_per_min"]
4
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np

from medtwin.monitor._resting import (
    HEART_RATE_CODE,
    STEP_CODES,
    LocalClock,
    RestingMinutes,
    RestingOut,
    artefact_alert,
    artefact_events,
    columns,
    evidence_at,
    group_starts,
    pregnancy_note,
)
from medtwin.monitor.base import Alert, FactRef, Monitor, MonitorConfigError, Reading

__all__ = ["MONITORS", "NightSignal"]

SOURCE = (
    "Alavi et al. 2022, Nat Med 28:175-184, real-time alerting system for COVID-19 and other "
    "stress events using wearable data: NightSignal (Extended Data Fig. 3 state machine; "
    "authors' code StanfordBioinformatics/wearable-infection nightsignal.py)"
)
Ref = tuple[str, str, float]


def _ref(value: Sequence[Any]) -> Ref:
    return (str(value[0]), str(value[1]), float(value[2]))


class NightSignal(Monitor):
    """Nightly resting heart rate vs the median of nightly averages; see the module docstring."""

    name: ClassVar[str] = "nightsignal"
    version: ClassVar[str] = "1"
    source: ClassVar[str] = SOURCE
    description: ClassVar[str] = (
        "Average resting heart rate midnight-7 am vs the median of the person's nightly "
        "averages: yellow (>= +3/min) or red (>= +4/min) on two consecutive nights"
    )
    codes: ClassVar[frozenset[str]] = frozenset({HEART_RATE_CODE, *STEP_CODES})
    uses_context = True  # an alert says when the record shows a pregnancy (its RHR rise)
    defaults: ClassVar[Mapping[str, Any]] = {
        "rest_window_min": 1,
        "night_start_hour": 0,
        "night_end_hour": 7,
        "yellow_above_per_min": 3,
        "red_above_per_min": 4,
        "baseline_min_nights": 14,
        "baseline_max_nights": 365,
        "heart_rate_min_per_min": 30.0,
        "heart_rate_max_per_min": 220.0,
        "steps_silence_max_min": 1440,
        "timezone": "UTC",
        "evidence_per_night": 10,
    }

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        p = self.params
        self._start_min = int(p["night_start_hour"]) * 60
        self._end_min = int(p["night_end_hour"]) * 60
        if not 0 <= self._start_min < self._end_min <= 1440:
            raise MonitorConfigError(
                "monitor nightsignal: need 0 <= night_start_hour < night_end_hour <= 24"
            )
        if int(p["baseline_max_nights"]) < int(p["baseline_min_nights"]):
            raise MonitorConfigError(
                "monitor nightsignal: baseline_max_nights must be >= baseline_min_nights"
            )
        self._rest = RestingMinutes(
            rest_window_min=int(p["rest_window_min"]),
            heart_rate_min_per_min=float(p["heart_rate_min_per_min"]),
            heart_rate_max_per_min=float(p["heart_rate_max_per_min"]),
            steps_silence_max_min=int(p["steps_silence_max_min"]),
        )
        self._clock = LocalClock(str(p["timezone"]))
        self._night: dict[str, Any] | None = None  # night, sum, n, refs
        self._history: list[int] = []
        self._prev: dict[str, Any] | None = None
        self._noted = False
        self._cleared = False
        self._artefact_day: int | None = None

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain JSON state (nightly averages, never raw minutes)."""
        return {
            "rest": self._rest.state_dict(),
            "night": self._night,
            "history": self._history,
            "prev": self._prev,
            "noted": self._noted,
            "cleared": self._cleared,
            "artefact_day": self._artefact_day,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._rest.load_state(state["rest"])
        night = state["night"]
        self._night = None if night is None else {**night, "refs": [_ref(r) for r in night["refs"]]}
        self._history = [int(x) for x in state["history"]]
        prev = state["prev"]
        self._prev = None if prev is None else {**prev, "refs": [_ref(r) for r in prev["refs"]]}
        self._noted = bool(state["noted"])
        # states saved before clears existed: a built baseline's note is cleared next
        self._cleared = bool(state.get("cleared", False))
        self._artefact_day = state["artefact_day"]

    # -- learning ---------------------------------------------------------------------------
    def learn_one(self, reading: Reading) -> list[Alert]:
        """Learn one reading (the same code path as :meth:`learn_many`)."""
        return self.learn_many([reading])

    def learn_many(self, readings: Sequence[Reading]) -> list[Alert]:
        """Learn a time-ordered run of readings with numpy over the chunk."""
        if not readings:
            return []
        cols = columns(readings)
        out = self._rest.process(
            cols.epoch_s, cols.value, cols.is_hr, cols.is_step, cols.end_epoch_s, readings
        )
        if len(out.clock_pos) == 0:
            return []
        events: list[tuple[int, int, int, str, Any]] = []
        if not self._noted:
            events.append((int(out.clock_pos[0]), -1, 0, "note", None))
        self._artefact_events(out, events)
        self._night_events(readings, out, events)
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        alerts: list[Alert] = []
        min_nights = int(self.params["baseline_min_nights"])
        for position, _order, _seq, kind, payload in events:
            if kind == "night":
                alert = self._close_night(payload)
                if alert is not None:
                    alerts.append(alert)
            elif kind == "note":
                self._noted = True
                alerts.append(self._note(readings[position]))
            else:
                alerts.append(self._artefact(readings[position], payload))
            if self._noted and not self._cleared and len(self._history) >= min_nights:
                self._cleared = True
                alerts.append(self._note(readings[position], clears=True))
        return alerts

    def _artefact_events(self, out: RestingOut, events: list[Any]) -> None:
        self._artefact_day = artefact_events(self._clock, out, events, self._artefact_day)

    def _night_events(
        self, readings: Sequence[Reading], out: RestingOut, events: list[Any]
    ) -> None:
        k_refs = int(self.params["evidence_per_night"])
        nights: list[dict[str, Any]] = []
        if len(out.minute):
            local = self._clock.local_minutes(out.minute)
            of_day = local % 1440
            inside = np.flatnonzero((of_day >= self._start_min) & (of_day < self._end_min))
            if len(inside):
                night_of = local[inside] // 1440
                whole = out.heart_rate_milli[inside] // 1000  # int() of each heart rate
                starts = group_starts(night_of)
                ends = np.append(starts[1:], len(inside))
                sums = np.add.reduceat(whole, starts).tolist()
                for j, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
                    refs = [
                        evidence_at(readings, out, int(p))
                        for p in out.ref_pos[inside[max(a, b - k_refs) : b]]
                    ]
                    nights.append(
                        {"night": int(night_of[a]), "sum": sums[j], "n": b - a, "refs": refs}
                    )
        if self._night is not None:
            if nights and nights[0]["night"] == self._night["night"]:
                first = nights[0]
                first["sum"] += self._night["sum"]
                first["n"] += self._night["n"]
                first["refs"] = (self._night["refs"] + first["refs"])[-k_refs:]
            else:
                nights.insert(0, self._night)
        clock_local = np.maximum.accumulate(self._clock.local_minutes(out.clock_minute))
        self._night = None
        for seq, item in enumerate(nights):
            end = item["night"] * 1440 + self._end_min
            i = int(np.searchsorted(clock_local, end, side="left"))
            if i >= len(clock_local):
                self._night = item
                continue
            events.append((int(out.clock_pos[i]), 0, seq, "night", item))

    def _close_night(self, item: Mapping[str, Any]) -> Alert | None:
        p = self.params
        average = int(item["sum"]) // int(item["n"])
        before = len(self._history)
        self._history.append(average)
        del self._history[: -int(p["baseline_max_nights"])]
        baseline = int(statistics.median(self._history))
        yellow = average >= baseline + int(p["yellow_above_per_min"])
        red = average >= baseline + int(p["red_above_per_min"])
        prev = self._prev
        night = int(item["night"])
        self._prev = {
            "night": night,
            "average": average,
            "baseline": baseline,
            "yellow": yellow,
            "red": red,
            "n": int(item["n"]),
            "refs": list(item["refs"]),
        }
        if before < int(p["baseline_min_nights"]) or prev is None or prev["night"] != night - 1:
            return None
        if red and prev["red"]:
            color, severity, above = "red", "low-medium", int(p["red_above_per_min"])
        elif yellow and prev["yellow"]:
            color, severity, above = "yellow", "low", int(p["yellow_above_per_min"])
        else:
            return None
        refs = list(prev["refs"]) + list(item["refs"])
        epoch = max(r[2] for r in item["refs"])
        date = datetime.fromtimestamp(night * 86400, UTC).date().isoformat()
        window = f"{p['night_start_hour']:02d}:00-{p['night_end_hour']:02d}:00"
        message = (
            f"NightSignal {color}: overnight resting heart rate {average}/min on the night of "
            f"{date} ({window}, {item['n']} min) and {prev['average']}/min the night before, "
            f"both >= {above}/min above the personal baseline {baseline}/min (median of "
            f"{len(self._history)} nightly averages)"
        )
        said, pregnancy = pregnancy_note(self, epoch)
        return self.alert(
            f"nightsignal.{color}",
            severity,
            epoch,
            message + said,
            (FactRef(r[0], r[1]) for r in refs),
            detail={
                **pregnancy,
                "statistic": "overnight_rhr_average",
                "night": date,
                "night_rhr_per_min": average,
                "previous_night_rhr_per_min": prev["average"],
                "baseline_median_per_min": baseline,
                "previous_baseline_median_per_min": prev["baseline"],
                "threshold_above_per_min": above,
                "resting_minutes": int(item["n"]),
                "baseline_nights": len(self._history),
            },
        )

    # -- notes ------------------------------------------------------------------------------
    def _note(self, reading: Reading, *, clears: bool = False) -> Alert:
        """The baseline-pending note, or (``clears``) its clear once the baseline is built."""
        nights = int(self.params["baseline_min_nights"])
        message = (
            f"Overnight resting-heart-rate baseline built from {len(self._history)} nights: "
            "NightSignal alerts from now on"
            if clears
            else "Building the overnight resting-heart-rate baseline: no NightSignal alerts "
            f"until {nights} nights with resting heart rate are recorded"
        )
        return self.alert(
            "nightsignal.baseline-pending",
            "info",
            reading.epoch_s,
            message,
            (reading.ref,),
            category="data-quality",
            detail={"baseline_nights_needed": nights, "baseline_nights": len(self._history)},
            clears=clears,
        )

    def _artefact(self, reading: Reading, day: int) -> Alert:
        return artefact_alert(self, reading, day)


MONITORS = (NightSignal,)
