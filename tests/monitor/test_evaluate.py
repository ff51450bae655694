"""Detection rate, lead time and false alarms against known onsets."""

from __future__ import annotations

import math

import pytest

from medtwin.monitor.base import Alert
from medtwin.monitor.evaluate import Onset, evaluate

DAY = 86_400.0
HOUR = 3_600.0


def alert(
    pid: str, t: float, monitor: str = "rhr", key: str | None = None, category: str = "clinical"
) -> Alert:
    return Alert(
        pid, monitor, "1", f"{monitor}.x", "medium", t, "m", "src", category=category, key=key
    )


def test_window_edges_lead_time_and_false_alarm_episodes() -> None:
    onset = 20 * DAY
    truth = [Onset("a", "infection", onset), Onset("b", "infection", onset)]
    spans = {"a": (0.0, 60 * DAY), "b": (0.0, 60 * DAY), "c": (0.0, 30 * DAY)}
    alerts = [
        alert("a", onset - 7 * 24 * HOUR),  # exactly at the window's start: detected, lead 168 h
        alert("a", onset + HOUR),
        alert("b", onset - 7 * 24 * HOUR - 1),  # one second too early: a false alarm
        alert(
            "b", onset + 3 * 24 * HOUR + 1
        ),  # one second too late: a false alarm, 10 days after the other
        alert("c", 1 * DAY),
        alert("c", 1 * DAY + 23 * HOUR),  # same key within 24 h: the same episode
        alert("c", 3 * DAY),  # > 24 h after the previous: a new episode
        alert("c", 4 * DAY, category="artefact"),  # not counted
    ]
    report = evaluate(alerts, truth, spans)["rhr"]
    assert report.onsets == 2 and report.detected == 1
    assert report.lead_h == [168.0]
    # b: two alerts 10 days apart, each its own episode; c: two episodes
    assert report.false_alarm_episodes == 4
    # monitored time outside windows: a and b 60 - 10 days each, c 30 days: 130 days
    assert report.monitored_months == pytest.approx(130 / 30)
    assert report.false_alarms_per_patient_month == pytest.approx(4 / (130 / 30))
    assert report.as_dict()["by_kind"] == {"infection": {"onsets": 2, "detected": 1}}


def test_kinds_restrict_what_a_monitor_is_judged_on() -> None:
    truth = [Onset("a", "infection", 10 * DAY), Onset("a", "hypoglycaemia", 40 * DAY)]
    spans = {"a": (0.0, 60 * DAY)}
    alerts = [alert("a", 40 * DAY - HOUR, monitor="glucose")]
    reports = evaluate(
        alerts, truth, spans, kinds={"glucose": {"hypoglycaemia"}, "rhr": {"infection"}}
    )
    assert reports["glucose"].onsets == 1 and reports["glucose"].detected == 1
    assert reports["glucose"].lead_h == [1.0]
    assert reports["rhr"].onsets == 1 and reports["rhr"].detected == 0
    assert reports["rhr"].detection_rate == 0.0


def test_rules_filter_and_chance_detection() -> None:
    truth = [Onset("a", "glucose_low", 20 * DAY)]
    spans = {"a": (0.0, 70 * DAY)}
    hyper = Alert("a", "glucose", "1", "glucose.hyper.level1", "low", 2 * DAY, "m", "src")
    hypo = Alert("a", "glucose", "1", "glucose.hypo.level1", "medium", 40 * DAY, "m", "src")
    report = evaluate([hyper, hypo], truth, spans, rules={"glucose": ("glucose.hypo",)})["glucose"]
    # the hyperglycaemia alert is not judged; the hypo alert 20 days after onset is a false alarm
    assert report.detected == 0 and report.false_alarm_episodes == 1
    assert report.monitored_months == pytest.approx(60 / 30)
    # 0.5 episodes per patient-month over a 10-day window: 1 - exp(-0.5 * 10 / 30)
    assert report.chance_detection_rate == pytest.approx(1 - math.exp(-0.5 / 3))
