"""NightSignal (Alavi et al. 2022): the night window, the consecutive-night rule, restart, real data."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from medtwin.monitor import MonitorConfigError, MonitorHub
from medtwin.monitor.base import Alert, Reading
from medtwin.monitor.nightsignal import NightSignal
from medtwin.monitor.rhr import RestingHeartRateCusum

from .wearable_streams import START, minute_stream

DAY = 1440
NIGHT_END = 7 * 60


def nights(
    averages: list[float | None], *, day_hr: float = 95.0, day_steps: float = 30.0
) -> list[Reading]:
    """One day per entry: heart rate ``average`` at rest 00:00-06:59 (``None``: no heart rate that
    night), ``day_hr`` with ``day_steps`` steps a minute from 07:00, and a last reading that
    closes the final night."""
    hr = np.full(len(averages) * DAY + NIGHT_END + 1, day_hr)
    steps = np.full(len(hr), day_steps)
    for i, average in enumerate([*averages, None]):
        night = slice(i * DAY, i * DAY + NIGHT_END)
        hr[night] = np.nan if average is None else average
        steps[night] = 0.0
    return minute_stream(hr, steps)


def colored(alerts: list[Alert]) -> list[tuple[int, str]]:
    """(night index, color) of the yellow and red alerts."""
    out = []
    for a in alerts:
        if a.rule in ("nightsignal.yellow", "nightsignal.red"):
            out.append((int((a.epoch_s - START) // 86400), a.rule.split(".")[1]))
    return out


def test_night_window_is_midnight_to_seven() -> None:
    # resting all day (no steps): only 00:00-06:59 counts, 420 minutes
    hr = np.full(3 * DAY, 100.0)
    for i in range(3):
        hr[i * DAY : i * DAY + NIGHT_END] = 60.0
    monitor = NightSignal("mt-wear")
    monitor.learn_many(minute_stream(hr, np.zeros(len(hr))))
    state = monitor.state_dict()
    assert state["history"] == [60, 60, 60]  # each night closed by the day after it
    assert state["prev"]["n"] == NIGHT_END  # 00:00 and 06:59 in, 23:59 and 07:00 out
    assert state["prev"]["average"] == 60


def test_night_closes_at_seven_not_before() -> None:
    stream = nights([60.0])
    last_night = [r for r in stream if r.epoch_s < START + NIGHT_END * 60]
    monitor = NightSignal("mt-wear")
    monitor.learn_many(last_night)
    assert monitor.state_dict()["history"] == []
    monitor.learn_many(
        [r for r in stream if START + NIGHT_END * 60 <= r.epoch_s < START + 8 * 3600]
    )
    assert monitor.state_dict()["history"] == [60]


BASE = [60.0] * 15


def test_consecutive_night_rule() -> None:
    sequence = [*BASE, 63.0, 64.0, 64.0, 62.0, 65.0, None, 65.0, 66.0, 63.0]
    alerts = NightSignal("mt-wear").learn_many(nights(sequence))
    # night 15: +3 once -> nothing; 16: +4 after +3 -> yellow (not red: the night before was
    # below +4); 17: +4 after +4 -> red; 18: +2 -> nothing; 19: +5 alone -> nothing; 20 has no
    # data, so 21 (+5) is not consecutive -> nothing; 22: +6 after +5 -> red; 23: +3 -> yellow
    assert colored(alerts) == [(16, "yellow"), (17, "red"), (22, "red"), (23, "yellow")]
    red = next(a for a in alerts if a.rule == "nightsignal.red")
    assert red.severity == "low-medium" and red.category == "clinical"
    assert red.detail["baseline_median_per_min"] == 60
    assert red.detail["night_rhr_per_min"] == 64 and red.detail["previous_night_rhr_per_min"] == 64
    assert red.detail["threshold_above_per_min"] == 4
    assert "64/min" in red.message and "baseline 60/min" in red.message
    # evidence: resting minutes of both nights, bounded
    stream = {r.ref: r for r in nights(sequence)}
    nights_of = {int((stream[e].epoch_s - START) // 86400) for e in red.evidence}
    assert nights_of == {16, 17} and len(red.evidence) <= 20
    yellow = next(a for a in alerts if a.rule == "nightsignal.yellow")
    assert yellow.severity == "low"


def test_threshold_edges() -> None:
    # +2.9 truncates to +2: no alert; exactly +3 twice: yellow; exactly +4 twice: red
    assert colored(NightSignal("x").learn_many(nights([*BASE, 62.9, 62.9]))) == []
    assert colored(NightSignal("x").learn_many(nights([*BASE, 63.0, 63.0]))) == [(16, "yellow")]
    assert colored(NightSignal("x").learn_many(nights([*BASE, 64.0, 64.0]))) == [(16, "red")]


def test_nothing_before_the_baseline() -> None:
    monitor = NightSignal("mt-wear")
    alerts = monitor.learn_many(nights([60.0] * 10 + [75.0] * 4))
    # the note, and its clear when the 14th night (index 13) closes at 07:00: no colour yet
    assert [(a.rule, a.clears) for a in alerts] == [
        ("nightsignal.baseline-pending", False),
        ("nightsignal.baseline-pending", True),
    ]
    assert alerts[0].category == "data-quality"
    assert alerts[1].message.startswith(
        "Overnight resting-heart-rate baseline built from 14 nights"
    )
    assert alerts[1].epoch_s == START + 13 * 86400 + NIGHT_END * 60
    assert monitor.state_dict()["cleared"]
    # with 14 nights before it, the same elevation alerts
    alerts = NightSignal("mt-wear").learn_many(nights([60.0] * 14 + [75.0] * 2))
    assert colored(alerts) == [(15, "red")]


def test_state_restart_mid_night() -> None:
    stream = nights([*BASE, 66.0, 67.0, 68.0])
    expected = NightSignal("mt-wear").learn_many(stream)
    assert colored(expected) == [(16, "red"), (17, "red")]
    cut = next(i for i, r in enumerate(stream) if r.epoch_s >= START + 16 * 86400 + 3 * 3600)
    first = NightSignal("mt-wear")
    got = first.learn_many(stream[:cut])
    second = NightSignal("mt-wear")
    second.load_state(json.loads(json.dumps(first.state_dict(), allow_nan=False)))
    got += second.learn_many(stream[cut:])
    assert [a.to_dict() for a in got] == [a.to_dict() for a in expected]


def test_timezone_moves_the_night() -> None:
    # the same UTC stream seen from New York (UTC-5 in November): the night is 05:00-12:00 UTC
    hr = np.full(3 * DAY, 100.0)
    for i in range(3):
        hr[i * DAY + 300 : i * DAY + 720] = 60.0
    monitor = NightSignal("mt-wear", {"timezone": "America/New_York"})
    monitor.learn_many(minute_stream(hr, np.zeros(len(hr))))
    assert monitor.state_dict()["prev"]["average"] == 60
    assert monitor.state_dict()["prev"]["n"] == NIGHT_END


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(MonitorConfigError, match="night_start_hour"):
        NightSignal("x", {"night_start_hour": 8, "night_end_hour": 7})


def test_real_participants(covid: dict[str, list[Reading]]) -> None:
    # verified by running the monitor over the data (see docs/models/rhr-detectors.md)
    expected = {
        "A3OU183": {
            "red": ["2020-06-14", "2020-06-17", "2020-06-18", "2020-08-05"],
            "yellow": ["2020-06-15", "2020-06-16", "2020-07-18", "2020-08-06"],
        },
        "AS2MVDL": {
            "red": [
                "2020-10-11",
                "2020-10-22",
                "2020-10-23",
                "2020-11-04",
                "2020-11-09",
                "2020-11-10",
                "2020-11-11",
            ],
            "yellow": ["2020-10-12"],
        },
    }
    for participant, readings in covid.items():
        monitor = NightSignal(participant)
        alerts = monitor.learn_many(readings)
        for color in ("red", "yellow"):
            nights_alerted = [a.detail["night"] for a in alerts if a.rule == f"nightsignal.{color}"]
            assert nights_alerted == expected[participant][color], (participant, color)
        history = monitor.state_dict()["history"]
        assert 55 <= len(history) <= 91
        assert 65 <= sorted(history)[len(history) // 2] <= 85  # median overnight RHR


class JsonStates:
    """Monitor states kept as JSON text, as a database would keep them."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], str] = {}

    def load_monitor_state(self, monitor: str, patient_id: str) -> dict[str, object] | None:
        text = self.rows.get((monitor, patient_id))
        return None if text is None else json.loads(text)

    def save_monitor_states(self, states: Sequence[tuple[str, str, dict[str, object]]]) -> None:
        for monitor, patient_id, state in states:
            self.rows[(monitor, patient_id)] = json.dumps(state, allow_nan=False)


def test_hub_restart_with_both_wearable_monitors(covid: dict[str, list[Reading]]) -> None:
    readings = covid["AS2MVDL"]
    direct = NightSignal("AS2MVDL").learn_many(readings) + RestingHeartRateCusum(
        "AS2MVDL"
    ).learn_many(readings)
    states = JsonStates()
    got: list[Alert] = []
    cut = len(readings) * 3 // 5  # mid-November, inside the CuSum run and between nights
    for part in (readings[:cut], readings[cut:]):
        hub = MonitorHub(["nightsignal", "rhr"], state=states)  # a restarted process
        for a in range(0, len(part), 20_000):
            got += hub.feed(part[a : a + 20_000])
        hub.save()

    def order(alerts: list[Alert]) -> list[dict[str, object]]:
        return sorted((a.to_dict() for a in alerts), key=lambda d: (d["monitor"], d["time"]))

    assert order(got) == order(direct)
    assert sum(1 for a in got if a.rule == "rhr.cusum") == 3
    assert sum(1 for a in got if a.rule == "nightsignal.red") == 7


def test_learn_one_and_small_chunks_equal_one_call() -> None:
    stream = nights([*BASE, 66.0, 67.0, 62.0, 64.0, 65.0])
    expected = NightSignal("mt-wear").learn_many(stream)
    assert colored(expected) == [(16, "red"), (19, "red")]
    monitor = NightSignal("mt-wear")
    rng = np.random.default_rng(2)
    got: list[Alert] = []
    a = 0
    one_by_one = next(i for i, r in enumerate(stream) if r.epoch_s >= START + 15 * 86400)
    while a < len(stream):
        if a >= one_by_one:  # the last nights, alerts included, one reading at a time
            got += monitor.learn_one(stream[a])
            a += 1
            continue
        size = int(rng.integers(1, 500))
        got += monitor.learn_many(stream[a : a + size])
        a += size
    assert [x.to_dict() for x in got] == [x.to_dict() for x in expected]


def test_an_alert_in_pregnancy_says_what_the_record_shows() -> None:
    from medtwin.record.context import PatientContext

    basis = "pregnancy status 82810-3: Pregnant (2025-01-10)"
    monitor = NightSignal("mt-wear")
    monitor.set_context(PatientContext(pregnancies=((START, START + 300 * 86400.0, basis),)))
    alerts = monitor.learn_many(nights([*BASE, 64.0, 64.0]))
    (red,) = [a for a in alerts if a.rule == "nightsignal.red"]
    assert red.detail["pregnancy"] == basis
    assert f". The record shows a pregnancy ({basis}): resting heart rate rises" in red.message
    assert NightSignal.uses_context and RestingHeartRateCusum.uses_context
