"""Evaluating detectors against known onsets: detection rate, lead time, false alarms.

Streams with a known onset time per patient (medtwin's synthetic streams, or a study with
recorded symptom onsets) are run through monitors; their alerts are compared with the truth:

* an onset at time ``T`` is **detected** when the monitor raised a clinical alert for that patient
  within ``[T - before_h, T + after_h]`` (the *detection window*); the **lead time** is ``T``
  minus the time of the first such alert (positive: before onset, as in Mishra et al. 2020, who
  counted alerts from 21 days before to 7 days after symptom onset and reported the days of
  advance warning);
* every other clinical alert is a **false alarm**: alerts of one key closer together than
  ``episode_gap_h`` are one alarm *episode* (the alert book would show them as one alert), and the
  rate is episodes per patient-month (30 days) of monitored time outside detection windows;
* artefact and data-quality alerts are not counted either way, nor are rules outside what the
  detector is judged on (``rules``: a glucose monitor's hyperglycaemia alerts are not false alarms
  of a hypoglycaemia detector);
* the **chance detection rate** is what alarms at the measured false-alarm rate would "detect" by
  luck alone: with false-alarm episodes as a Poisson process of rate ``r`` per patient-month, the
  probability of at least one in a detection window of ``w`` days is ``1 - exp(-r w / 30)``. A
  detection rate near it means the detector is not finding the onsets, whatever its rate.

References
----------
Mishra T et al. Pre-symptomatic detection of COVID-19 from smartwatch data. Nat Biomed Eng
2020;4:1208-1220 (detection window and lead time as days before symptom onset).
Alavi A et al. Real-time alerting system for COVID-19 and other stress events using wearable
data. Nat Med 2022;28:175-184 (sensitivity within a window around onset; alerts outside it).

Examples
--------
>>> from medtwin.monitor.base import Alert
>>> day = 86_400.0
>>> truth = [Onset("p1", "infection", 10 * day)]
>>> a = Alert("p1", "rhr", "1", "rhr.cusum", "medium", 8 * day, "RHR up", "Mishra 2020")
>>> report = evaluate([a], truth, {"p1": (0.0, 30 * day), "p2": (0.0, 30 * day)})
>>> report["rhr"].detected, report["rhr"].lead_h_median
(1, 48.0)
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medtwin.monitor.base import Alert

__all__ = ["DetectorReport", "Onset", "evaluate"]

_MONTH_S = 30 * 86_400.0


@dataclass(frozen=True, slots=True)
class Onset:
    """A known event in a patient's stream: kind (``infection``, ``hypoglycaemia`` ...) and time."""

    patient_id: str
    kind: str
    epoch_s: float


@dataclass(slots=True)
class DetectorReport:
    """How one monitor did on a set of streams."""

    monitor: str
    onsets: int = 0
    detected: int = 0
    lead_h: list[float] = field(default_factory=list)
    false_alarm_episodes: int = 0
    monitored_months: float = 0.0
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    window_h: float = 240.0

    @property
    def detection_rate(self) -> float | None:
        """Detected / onsets (``None`` without onsets)."""
        return self.detected / self.onsets if self.onsets else None

    @property
    def lead_h_median(self) -> float | None:
        """Median lead time in hours of the detected onsets (positive: before onset)."""
        return statistics.median(self.lead_h) if self.lead_h else None

    @property
    def false_alarms_per_patient_month(self) -> float | None:
        """False-alarm episodes per 30 days of monitored time outside detection windows."""
        if self.monitored_months <= 0:
            return None
        return self.false_alarm_episodes / self.monitored_months

    @property
    def chance_detection_rate(self) -> float | None:
        """Detection expected from the false-alarm rate alone (see the module docstring)."""
        rate = self.false_alarms_per_patient_month
        if rate is None:
            return None
        return 1.0 - math.exp(-rate * (self.window_h / 24.0) / 30.0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "monitor": self.monitor,
            "onsets": self.onsets,
            "detected": self.detected,
            "detection_rate": self.detection_rate,
            "lead_h_median": self.lead_h_median,
            "lead_h_range": [min(self.lead_h), max(self.lead_h)] if self.lead_h else None,
            "false_alarm_episodes": self.false_alarm_episodes,
            "monitored_patient_months": round(self.monitored_months, 3),
            "false_alarms_per_patient_month": self.false_alarms_per_patient_month,
            "chance_detection_rate": self.chance_detection_rate,
            "by_kind": {k: {"onsets": v[0], "detected": v[1]} for k, v in self.by_kind.items()},
        }


def evaluate(
    alerts: Iterable[Alert],
    onsets: Sequence[Onset],
    spans: Mapping[str, tuple[float, float]],
    *,
    before_h: float = 7 * 24.0,
    after_h: float = 3 * 24.0,
    episode_gap_h: float = 24.0,
    kinds: Mapping[str, set[str]] | None = None,
    rules: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, DetectorReport]:
    """Score each monitor's alerts against the onsets.

    Parameters
    ----------
    alerts
        Alerts of any monitors and patients.
    onsets
        The truth.
    spans
        Per patient, the monitored time ``(start, end)`` in epoch seconds (every patient that
        was monitored, with or without onset: patients without one contribute false alarms).
    before_h, after_h
        The detection window around each onset.
    episode_gap_h
        Alerts of one key closer than this are one false-alarm episode.
    kinds
        Per monitor, the onset kinds it is meant to detect (others are ignored for its
        detection rate; its alerts inside their windows are not false alarms either). Default:
        every kind.
    rules
        Per monitor, prefixes of the alert rules that count (default: every clinical rule).
    """
    clinical = [
        a
        for a in alerts
        if a.category == "clinical"
        and (rules is None or a.monitor not in rules or a.rule.startswith(rules[a.monitor]))
    ]
    by_monitor: dict[str, list[Alert]] = defaultdict(list)
    for alert in clinical:
        by_monitor[alert.monitor].append(alert)
    reports: dict[str, DetectorReport] = {}
    before_s, after_s, gap_s = before_h * 3600.0, after_h * 3600.0, episode_gap_h * 3600.0
    onsets_of: dict[str, list[Onset]] = defaultdict(list)
    for onset in onsets:
        onsets_of[onset.patient_id].append(onset)
    for monitor, own in sorted(by_monitor.items()) + [
        (m, []) for m in sorted((kinds or {}).keys()) if m not in by_monitor
    ]:
        report = DetectorReport(monitor, window_h=before_h + after_h)
        wanted = (kinds or {}).get(monitor)
        per_patient: dict[str, list[Alert]] = defaultdict(list)
        for alert in own:
            per_patient[alert.patient_id].append(alert)
        for patient_id, (start, end) in spans.items():
            windows = [
                (o.epoch_s - before_s, o.epoch_s + after_s, o)
                for o in onsets_of.get(patient_id, [])
            ]
            mine = sorted(per_patient.get(patient_id, []), key=lambda a: a.epoch_s)
            for low, high, onset in windows:
                if wanted is not None and onset.kind not in wanted:
                    continue
                report.onsets += 1
                counts = report.by_kind.setdefault(onset.kind, [0, 0])
                counts[0] += 1
                hits = [a for a in mine if low <= a.epoch_s <= high]
                if hits:
                    report.detected += 1
                    counts[1] += 1
                    report.lead_h.append((onset.epoch_s - hits[0].epoch_s) / 3600.0)
            outside = [a for a in mine if not any(lo <= a.epoch_s <= hi for lo, hi, _ in windows)]
            last_by_key: dict[str, float] = {}
            for alert in outside:
                previous = last_by_key.get(alert.dedup_key)
                if previous is None or alert.epoch_s - previous >= gap_s:
                    report.false_alarm_episodes += 1
                last_by_key[alert.dedup_key] = alert.epoch_s
            covered = sum(max(0.0, min(end, hi) - max(start, lo)) for lo, hi, _ in _merge(windows))
            report.monitored_months += max(0.0, (end - start) - covered) / _MONTH_S
        reports[monitor] = report
    return reports


def _merge(windows: Sequence[tuple[float, float, Onset]]) -> list[tuple[float, float, None]]:
    merged: list[tuple[float, float, None]] = []
    for low, high, _ in sorted(windows, key=lambda w: w[0]):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high), None)
        else:
            merged.append((low, high, None))
    return merged
