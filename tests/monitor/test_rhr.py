"""Resting heart rate rule, RHR-Diff/CuSum baseline detector (Mishra et al. 2020), real COVID data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medtwin.monitor import MonitorConfigError
from medtwin.monitor._resting import RestingMinutes, columns
from medtwin.monitor.base import Alert, Reading
from medtwin.monitor.rhr import RestingHeartRateCusum, cusum_null

from .wearable_streams import START, minute_stream

DAY = 1440


def resting_minutes(readings: list[Reading], window: int = 12, chunk: int = 0) -> list[int]:
    """Minutes (since the stream start) that the rule calls resting."""
    rest = RestingMinutes(rest_window_min=window)
    found: list[int] = []
    step = chunk or len(readings)
    for a in range(0, len(readings), step):
        part = readings[a : a + step]
        c = columns(part)
        out = rest.process(c.epoch_s, c.value, c.is_hr, c.is_step, c.end_epoch_s, part)
        found.extend((out.minute - int(START // 60)).tolist())
    return found


# -- the resting rule -------------------------------------------------------------------------
def test_steps_exclude_the_minute_and_the_eleven_after() -> None:
    n = 60
    steps = np.zeros(n)
    steps[20] = 35.0
    rest = set(resting_minutes(minute_stream(np.full(n, 62.0), steps)))
    assert 31 not in rest  # steps 11 minutes earlier: excluded
    assert 32 in rest  # 12 minutes earlier: outside the 12-minute window
    assert 33 in rest  # 13 minutes earlier: included
    assert not rest & set(range(20, 32))
    assert 19 in rest and 11 in rest  # before the steps (and 12 min after the stream start)
    assert 58 in rest and 59 not in rest  # the last minute waits for a later reading


def test_rule_is_the_same_whatever_the_chunking() -> None:
    rng = np.random.default_rng(3)
    n = 600
    steps = np.where(rng.random(n) < 0.05, 20.0, 0.0)
    hr = 60 + rng.normal(0, 3, n)
    hr[rng.random(n) < 0.1] = np.nan
    stream = minute_stream(hr, steps)
    whole = resting_minutes(stream)
    assert 100 < len(whole) < 500
    for chunk in (1, 7, 250):
        assert resting_minutes(stream, chunk=chunk) == whole


def test_step_interval_marks_every_minute_it_covers() -> None:
    n = 40
    stream = minute_stream(np.full(n, 60.0), np.zeros(n))
    # a 5-minute step sample (Apple Health style) from minute 10 to 15
    t = START + 600.0
    stream.append(
        Reading(
            "mt-wear",
            "41950-7",
            t,
            40.0,
            "{steps}",
            stream[0].ref._replace(source_id="st/apple"),
            t + 300.0,
        )
    )
    stream.sort(key=lambda r: r.epoch_s)
    rest = set(resting_minutes(stream))
    assert 25 not in rest  # minute 14 had steps: 14 + 11 = 25
    assert 26 in rest


def test_no_step_feed_means_no_resting_minutes() -> None:
    stream = minute_stream(np.full(100, 60.0), np.full(100, np.nan))
    assert resting_minutes(stream) == []


def test_implausible_heart_rate_is_ignored() -> None:
    hr = np.full(30, 60.0)
    hr[15] = 250.0
    hr[16] = 12.0
    rest = set(resting_minutes(minute_stream(hr, np.zeros(30))))
    assert 14 in rest and 17 in rest
    assert 15 not in rest and 16 not in rest
    monitor = RestingHeartRateCusum("mt-wear")
    alerts = monitor.learn_many(minute_stream(hr, np.zeros(30)))
    artefacts = [a for a in alerts if a.rule == "rhr.artefact"]
    assert len(artefacts) == 1 and artefacts[0].category == "artefact"
    assert "250" in artefacts[0].message


# -- CuSum against the 28-day baseline --------------------------------------------------------
def synthetic_days(days: int, *, shift_from_day: int | None, seed: int) -> list[Reading]:
    """Minute heart rate with a daily rhythm, a walk every 30 minutes, optional +10/min step."""
    rng = np.random.default_rng(seed)
    n = days * DAY
    minute = np.arange(n)
    hr = 62 + 6 * np.sin(2 * np.pi * (minute % DAY) / DAY) + rng.normal(0, 3, n)
    if shift_from_day is not None:
        hr[shift_from_day * DAY :] += 10.0
    steps = np.where(minute % 30 < 3, 60.0, 0.0)
    hr = np.where(steps > 0, hr + 30, hr)
    return minute_stream(np.round(hr, 1), steps)


@pytest.fixture(scope="module")
def shifted() -> list[Reading]:
    return synthetic_days(42, shift_from_day=35, seed=7)


def cusum(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.rule == "rhr.cusum"]


def test_cusum_detects_a_step_change(shifted: list[Reading]) -> None:
    monitor = RestingHeartRateCusum("mt-wear")
    alerts = monitor.learn_many(shifted)
    found = cusum(alerts)
    assert len(found) == 1, [a.message for a in alerts]
    change = START + 35 * 86400
    alarm = found[0]
    # the alarm rule needs a run of more than 48 residual hours whose maximum came after 24 h
    # (the run may have started a few noisy hours before the change)
    assert change + 40 * 3600 < alarm.epoch_s < change + 3 * 86400
    assert alarm.detail["run_start"] is not None
    assert alarm.severity == "low-medium"
    d = alarm.detail
    assert d["run_hours"] == 49 and d["run_hours_to_max"] > 24
    assert d["p_value"] is not None and d["p_value"] < 0.01
    assert 55 < d["baseline_mean_per_min"] < 70 and 2 < d["baseline_sd_per_min"] < 6
    assert d["residual_z"] > 1.5
    assert "CuSum" in alarm.message and "baseline" in alarm.message
    refs = {r.ref for r in shifted}
    assert alarm.evidence and set(alarm.evidence) <= refs
    assert len(alarm.evidence) <= 6 * 4
    # the evidence is the last hours' resting minutes, all after the change
    by_ref = {r.ref: r for r in shifted}
    assert all(by_ref[e].epoch_s > change and by_ref[e].code == "8867-4" for e in alarm.evidence)
    # elevated days are kept out of the baseline: it still ends before the change
    state = monitor.state_dict()
    assert len(state["baseline"]) == 28
    assert max(d["day"] for d in state["baseline"]) < (change // 86400)


def test_no_alarm_on_a_flat_noisy_series() -> None:
    monitor = RestingHeartRateCusum("mt-wear")
    alerts = monitor.learn_many(synthetic_days(45, shift_from_day=None, seed=11))
    assert cusum(alerts) == []
    # the note, then its clear once 28 days are in the baseline
    assert [(a.rule, a.clears) for a in alerts] == [
        ("rhr.baseline-pending", False),
        ("rhr.baseline-pending", True),
    ]
    note, clear = alerts
    assert clear.message.startswith("Personal resting-heart-rate baseline built from 28 days")
    assert clear.detail["baseline_days"] == 28 and clear.dedup_key == note.dedup_key
    # built when day 28 closed: early on day 29 (index 28) of the stream
    assert START + 28 * 86400 <= clear.epoch_s < START + 29 * 86400
    state = monitor.state_dict()
    assert state["established"] and state["cleared"]
    # the window slides: 28 days, the oldest dropped as normal days join
    days = [d["day"] for d in state["baseline"]]
    assert len(days) == 28 and days == sorted(days)
    assert days[-1] == int(START // 86400) + 43  # day 44 (index 44) is still open


def test_nothing_clinical_before_the_baseline_exists() -> None:
    monitor = RestingHeartRateCusum("mt-wear")
    alerts = monitor.learn_many(synthetic_days(20, shift_from_day=5, seed=3))
    assert [a.rule for a in alerts] == ["rhr.baseline-pending"]
    assert alerts[0].category == "data-quality" and alerts[0].severity == "info"
    assert not alerts[0].clears
    assert not monitor.state_dict()["established"]


def test_a_state_saved_before_clears_clears_its_note_on_the_next_readings() -> None:
    stream = synthetic_days(31, shift_from_day=None, seed=11)
    cut = next(i for i, r in enumerate(stream) if r.epoch_s >= START + 30 * 86400)
    first = RestingHeartRateCusum("mt-wear")
    first.learn_many(stream[:cut])
    state = first.state_dict()
    assert state["established"] and state["noted"] and state["cleared"]
    del state["cleared"]  # as saved by monitor version 1 before clears existed
    second = RestingHeartRateCusum("mt-wear")
    second.load_state(json.loads(json.dumps(state)))
    alerts = second.learn_many(stream[cut:])
    assert [(a.rule, a.clears) for a in alerts] == [("rhr.baseline-pending", True)]
    assert second.state_dict()["cleared"]


def test_state_restart_continues_identically(shifted: list[Reading]) -> None:
    expected = RestingHeartRateCusum("mt-wear").learn_many(shifted)
    assert cusum(expected)
    cut = int(len(shifted) * 0.9)  # inside the elevated period, in the middle of a run
    first = RestingHeartRateCusum("mt-wear")
    got = first.learn_many(shifted[:cut])
    saved = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    second = RestingHeartRateCusum("mt-wear")
    second.load_state(saved)
    got += second.learn_many(shifted[cut:])
    assert [a.to_dict() for a in got] == [a.to_dict() for a in expected]


def test_cusum_null_windows() -> None:
    w = np.array([0.0, 1.0, 0.5, 0.0, 2.0, 0.0, 0.0, 3.0])
    null = cusum_null(w)
    # run starts at 0, 3 and 6; the longest gap is 3 hours
    assert len(null) == 3
    assert null[0].tolist() == [1.0, 2.0, 3.0]
    assert null[1].tolist() == [1.0, 2.0]  # the window from 6 does not fit
    assert null[2].tolist() == [1.0, 2.0]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(MonitorConfigError, match="timezone"):
        RestingHeartRateCusum("x", {"timezone": "Mars/Olympus"})
    with pytest.raises(MonitorConfigError, match="rest_window_min"):
        RestingHeartRateCusum("x", {"rest_window_min": 0})


# -- real data: the Stanford COVID-19 wearables study -----------------------------------------
def test_real_daily_resting_heart_rate_is_plausible(covid: dict[str, list[Reading]]) -> None:
    for participant, readings in covid.items():
        c = columns(readings)
        out = RestingMinutes(rest_window_min=12).process(
            c.epoch_s, c.value, c.is_hr, c.is_step, c.end_epoch_s, readings
        )
        hr = out.heart_rate_milli / 1000.0
        day = out.minute // DAY
        days, start = np.unique(day, return_index=True)
        daily = np.add.reduceat(hr, start) / np.diff(np.append(start, len(hr)))
        heart_minutes = int(c.is_hr.sum())
        # at rest, most of the time: between a third and nine tenths of heart-rate minutes
        assert 0.3 * heart_minutes < len(hr) < 0.9 * heart_minutes, participant
        heart_days = np.unique(c.epoch_s[c.is_hr] // 86400)
        # a resting heart rate on (almost) every day with heart rate: 76/75 and 91/91 days
        assert len(days) >= max(70, len(heart_days) - 1), participant
        # daily medians of 77.8 and 80.7 /min were measured; adult resting range
        assert 60 < float(np.median(daily)) < 90, participant
        assert daily.min() > 50 and daily.max() < 110, participant
        # resting minutes are lower than all heart-rate minutes
        assert float(np.median(hr)) < float(np.median(c.value[c.is_hr])), participant


def test_real_participants_end_to_end(covid: dict[str, list[Reading]]) -> None:
    expected_first_alarm = {"A3OU183": "2020-06-18", "AS2MVDL": "2020-11-05"}
    for participant, readings in covid.items():
        monitor = RestingHeartRateCusum(participant)
        alerts = monitor.learn_many(readings)
        assert alerts[0].rule == "rhr.baseline-pending"
        found = cusum(alerts)
        assert found, participant
        # first alarm: after the 28-day baseline (data start + 28 days), on the verified day
        assert found[0].epoch_s > readings[0].epoch_s + 28 * 86400
        assert found[0].time.date().isoformat() == expected_first_alarm[participant]
        assert len(monitor.state_dict()["baseline"]) == 28
        # chunked learning (hub-sized chunks) gives the same alerts
        chunked = RestingHeartRateCusum(participant)
        again: list[Alert] = []
        for a in range(0, len(readings), 5000):
            again += chunked.learn_many(readings[a : a + 5000])
        assert [x.to_dict() for x in again] == [x.to_dict() for x in alerts]


def test_small_random_chunks_equal_one_call(shifted: list[Reading]) -> None:
    """learn_many must not depend on chunking: single readings and small runs, mixed."""
    expected = RestingHeartRateCusum("mt-wear").learn_many(shifted)
    monitor = RestingHeartRateCusum("mt-wear")
    rng = np.random.default_rng(5)
    got: list[Alert] = []
    a = 0
    tail = len(shifted) - 12 * DAY  # the last 6 days (2 readings a minute), alarm included
    while a < len(shifted):
        if a >= tail:
            got += monitor.learn_one(shifted[a])
            a += 1
            continue
        size = int(rng.integers(1, 400))
        got += monitor.learn_many(shifted[a : a + size])
        a += size
    assert cusum(got)
    assert [x.to_dict() for x in got] == [x.to_dict() for x in expected]
    reference = RestingHeartRateCusum("mt-wear")
    reference.learn_many(shifted)
    assert json.dumps(monitor.state_dict(), sort_keys=True) == json.dumps(
        reference.state_dict(), sort_keys=True
    )


def test_an_alarm_in_pregnancy_says_what_the_record_shows(shifted: list[Reading]) -> None:
    """The same step, with the record showing a pregnancy from day 20: the alarm stands and
    says that resting heart rate rises in pregnancy (detail ``pregnancy``); without one, it
    does not."""
    from medtwin.record.context import PatientContext

    basis = "72892002 Normal pregnancy (2025-01-21)"
    monitor = RestingHeartRateCusum("mt-wear")
    monitor.set_context(
        PatientContext(pregnancies=((START + 20 * 86400.0, START + 300 * 86400.0, basis),))
    )
    (alarm,) = cusum(monitor.learn_many(shifted))
    assert alarm.message.endswith(
        f". The record shows a pregnancy ({basis}): resting heart rate rises over a pregnancy, "
        "by 10-20 /min at its peak in the third trimester (Sanghavi M, Rutherford JD. "
        "Cardiovascular physiology of pregnancy. Circulation 2014;130:1003-1008)"
    )
    assert alarm.detail["pregnancy"] == basis
    plain = RestingHeartRateCusum("mt-wear")
    plain.set_context(PatientContext())
    (alarm,) = cusum(plain.learn_many(shifted))
    assert "pregnan" not in alarm.message and "pregnancy" not in alarm.detail
