"""CUSUM and Page-Hinkley trend monitors: known shifts, no false alarm, restart, published ARL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from medtwin.monitor import FactRef, MonitorConfigError, Reading
from medtwin.monitor.base import Alert
from medtwin.monitor.trend import DEFAULT_CODES, CusumMonitor, PageHinkleyMonitor

HR = "8867-4"
DETECTORS = (CusumMonitor, PageHinkleyMonitor)


def readings(
    values: Sequence[float], code: str = HR, unit: str = "/min", t0: float = 0.0
) -> list[Reading]:
    return [
        Reading("p1", code, t0 + 60.0 * i, float(v), unit, FactRef("test", f"{code}/{i}"))
        for i, v in enumerate(values)
    ]


def shifted(
    n_before: int, n_after: int, shift: float, *, sd: float = 3.0, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = 70.0 + rng.normal(0.0, sd, n_before + n_after)
    values[n_before:] += shift
    return values


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.name)
@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["up", "down"])
def test_a_two_sd_shift_is_found_soon_with_its_size_and_evidence(
    cls: type, direction: float
) -> None:
    stream = readings(shifted(200, 100, direction * 6.0))  # 2 SD of 3 /min
    alerts: list[Alert] = cls("p1").learn_many(stream)
    assert len(alerts) == 1, [a.message for a in alerts]
    alert = alerts[0]
    index = int(alert.evidence[-1].source_id.split("/")[1])
    assert 200 <= index <= 200 + 15, "detected within 15 readings of a 2 SD shift"
    assert alert.detail["direction"] == ("up" if direction > 0 else "down")
    assert alert.detail["shift"] == pytest.approx(direction * 6.0, abs=2.5)
    assert alert.detail["statistic_value"] > alert.detail["threshold"]
    assert "/min" in alert.message and ("up" in alert.message or "down" in alert.message)
    cited = [int(ref.source_id.split("/")[1]) for ref in alert.evidence]
    assert cited == sorted(cited) and cited[-1] == index
    assert min(cited) >= 195, "evidence is the run after the change, not the baseline"
    assert alert.dedup_key == f"{cls.name}:{HR}:{alert.detail['direction']}"


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.name)
def test_no_false_alarm_on_a_stationary_series_of_1000_readings(cls: type) -> None:
    for seed in range(3):
        stream = readings(shifted(1000, 0, 0.0, seed=seed))
        assert cls("p1").learn_many(stream) == [], f"seed {seed}"


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.name)
def test_false_alarm_rate_on_30000_stationary_readings_is_below_0_2_per_1000(cls: type) -> None:
    # measured about 0.03 (CUSUM) and 0.07 (Page-Hinkley) per 1,000: docs/models/trend-detectors.md
    alarms = sum(
        len(cls("p1").learn_many(readings(shifted(3000, 0, 0.0, seed=100 + s)))) for s in range(10)
    )
    assert alarms / 30 < 0.2, alarms


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.name)
def test_autocorrelated_readings_are_not_mistaken_for_shifts(cls: type) -> None:
    rng = np.random.default_rng(8)
    series = []
    for _ in range(10):  # AR(1), lag-1 correlation 0.6, unit marginal SD, 2,000 readings each
        noise = np.empty(2000)
        noise[0] = rng.normal()
        for i in range(1, 2000):
            noise[i] = 0.6 * noise[i - 1] + rng.normal(0.0, 0.8)
        series.append(readings(70.0 + 3.0 * noise))
    adjusted = sum(len(cls("p1").learn_many(s)) for s in series)
    plain = sum(len(cls("p1", {"adjust_autocorrelation": False}).learn_many(s)) for s in series)
    assert plain >= 20, "without the adjustment: more than 1 false alarm per 1,000 readings"
    assert adjusted <= plain / 5, (adjusted, plain)


def test_cusum_in_control_arl_matches_montgomery_table_9_3() -> None:
    # k = 0.5, h = 5 two-sided: ARL0 = 465 (Montgomery 2019, Table 9.3). A 2,000-reading
    # warm-up after each restart makes the learned baseline nearly the true one; no
    # winsorising, no SD floor. One long in-control stream: the monitor restarts itself.
    warmup = 2000
    monitor = CusumMonitor(
        "p1",
        {"h_sd": 5.0, "warmup_n": warmup, "clip_sd": 1e9, "codes": [HR], "sd_floor": {HR: 1e-9}},
    )
    values = np.random.default_rng(42).normal(100.0, 10.0, 400_000)
    alerts = monitor.learn_many(readings(values))
    positions = [int(a.evidence[-1].source_id.split("/")[1]) for a in alerts]
    starts = [0] + [p + 1 for p in positions[:-1]]
    run_lengths = [p - (s + warmup) + 1 for s, p in zip(starts, positions, strict=True)]
    assert len(run_lengths) > 100
    arl = float(np.mean(run_lengths))
    assert 465 * 0.8 < arl < 465 * 1.2, arl


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.name)
def test_after_an_alarm_the_detector_restarts_and_the_new_level_is_the_baseline(cls: type) -> None:
    monitor = cls("p1")
    values = shifted(100, 300, 9.0, seed=3)
    alerts = monitor.learn_many(readings(values))
    assert len(alerts) == 1, "a sustained shift is one alert, then the new level is learned"
    fired = int(alerts[0].evidence[-1].source_id.split("/")[1])
    state = monitor.state_dict()["tracks"][HR]
    n_since = 400 - 1 - fired
    assert state["n"] == n_since, "statistics restarted at the alarm"
    assert state["mean"] == pytest.approx(79.0, abs=1.5), "baseline re-learned at the new level"
    # a second shift, from the new level, is a second alert
    more = shifted(0, 200, 0.0, seed=4)  # back to 70 from 79
    second = monitor.learn_many(readings(more, t0=60.0 * 400))
    assert [a.detail["direction"] for a in second] == ["down"]


def test_restart_right_after_an_alarm_survives_json() -> None:
    monitor = CusumMonitor("p1")
    stream = readings(shifted(60, 40, 9.0, seed=5))
    alerts = monitor.learn_many(stream)
    assert alerts
    saved = json.loads(json.dumps(monitor.state_dict(), allow_nan=False))
    again = CusumMonitor("p1")
    again.load_state(saved)
    assert again.state_dict() == monitor.state_dict()


def test_a_single_artefact_cannot_fire_the_winsorised_cusum() -> None:
    values = list(shifted(100, 0, 0.0, seed=6))
    values[60] = 250.0  # a motion artefact: 60 SD
    assert CusumMonitor("p1").learn_many(readings(values)) == []
    values[61] = values[62] = values[63] = 250.0  # four in a row is a shift
    assert CusumMonitor("p1").learn_many(readings(values)) != []


def test_codes_are_watched_separately_and_others_ignored() -> None:
    monitor = CusumMonitor("p1", {"codes": [HR, "2823-3"]})
    potassium = readings(
        list(shifted(50, 30, 0.0, sd=0.2) / 70.0 * 4.2) + [5.6] * 12, "2823-3", "mmol/L"
    )
    steps = readings([0.0] * 40 + [120.0] * 40, "41950-7", "{steps}")
    heart = readings(shifted(80, 0, 0.0))
    stream = sorted(potassium + steps + heart, key=lambda r: r.epoch_s)
    alerts = monitor.learn_many(stream)
    assert [a.detail["code"] for a in alerts] == ["2823-3"]
    assert "mmol/L" in alerts[0].message and alerts[0].detail["direction"] == "up"
    assert set(monitor.state_dict()["tracks"]) == {HR, "2823-3"}


def test_a_flat_warm_up_uses_the_sd_floor() -> None:
    spo2 = readings([98.0] * 30 + [96.0] * 20, "59408-5", "%")
    # a 2 % drop with a floor of 1 % SD is a 2 SD shift: found after a few readings, not at once
    alerts = CusumMonitor("p1").learn_many(spo2)
    assert len(alerts) == 1 and alerts[0].detail["baseline_sd"] == 1.0
    assert alerts[0].detail["run_n"] >= 3


def test_non_finite_values_are_skipped() -> None:
    values = [70.0, 72.0, 68.0, 71.0, 69.0] * 10
    values[40] = float("nan")
    monitor = CusumMonitor("p1")
    monitor.learn_many(readings(values))
    assert monitor.state_dict()["tracks"][HR]["n"] == 49


def test_defaults_cover_the_common_vitals_and_labs() -> None:
    from medtwin.record.codes import canonical_unit

    assert len(DEFAULT_CODES) == len(set(DEFAULT_CODES))
    assert all(canonical_unit(code) for code in DEFAULT_CODES), "every default is a known code"
    for code in (
        "8867-4",
        "9279-1",
        "59408-5",
        "8480-6",
        "8310-5",
        "29463-7",
        "2160-0",
        "2823-3",
        "718-7",
        "2339-0",
    ):
        assert code in DEFAULT_CODES


@pytest.mark.parametrize(
    "params",
    [
        {"k_sd": 0},
        {"h_sd": -1.0},
        {"warmup_n": 1},
        {"warmup_n": 2.5},
        {"codes": "8867-4"},
        {"sd_floor": {HR: 0}},
        {"plausible": {HR: [300, 20]}},
        {"adjust_autocorrelation": "yes"},
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(MonitorConfigError):
        CusumMonitor("p1", params)


def test_page_hinkley_alpha_must_be_at_most_one() -> None:
    with pytest.raises(MonitorConfigError, match="alpha"):
        PageHinkleyMonitor("p1", {"alpha": 1.5})


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.name)
def test_learn_many_is_fast(cls: type) -> None:
    import time

    stream = readings(shifted(50_000, 0, 0.0, seed=9))
    monitor = cls("p1")
    began = time.perf_counter()
    monitor.learn_many(stream)
    rate = len(stream) / (time.perf_counter() - began)
    # a guard, not the benchmark (benchmarks/eval_trend.py): the test machine is shared
    assert rate > 50_000, f"{rate:.0f} readings/s"


def _covid_heart_rate(shared: Path, participant: str) -> list[Reading]:
    import csv
    import io
    import zipfile
    from datetime import UTC, datetime

    path = shared / "wearables" / "covid-hr-steps" / f"{participant}_hr.csv.zip"
    with zipfile.ZipFile(path) as archive:
        text = archive.read(f"{participant}_hr.csv").decode()
    return [
        Reading(
            participant,
            HR,
            # naive local times in this copy; read as UTC (only the order and spacing matter here)
            datetime.fromisoformat(row["datetime"]).replace(tzinfo=UTC).timestamp(),
            float(row["heartrate"]),
            "/min",
            FactRef("covid-hr-steps", f"{participant}/{i}"),
        )
        for i, row in enumerate(csv.DictReader(io.StringIO(text)))
    ]


def test_real_minute_heart_rate_of_a_wearer(shared: Path) -> None:
    """Stanford COVID-19 wearables study (Mishra et al. 2020), participant A3OU183: 90 days."""
    stream = _covid_heart_rate(shared, "A3OU183")
    days = (stream[-1].epoch_s - stream[0].epoch_s) / 86_400
    assert len(stream) > 70_000 and days > 80
    refs = {r.ref for r in stream}
    for cls in DETECTORS:
        adjusted = cls("A3OU183").learn_many(stream)
        plain = cls("A3OU183", {"adjust_autocorrelation": False}).learn_many(stream)
        # measured: 1.0 (CUSUM) and 1.4 (Page-Hinkley) alerts a day, 10 a day without the
        # autocorrelation adjustment (docs/models/trend-detectors.md)
        assert len(adjusted) / days < 2.0
        assert len(plain) > 5 * len(adjusted)
        for alert in adjusted:
            assert set(alert.evidence) <= refs
            assert (alert.detail["shift"] > 0) == (alert.detail["direction"] == "up")


def _icu_numerics(shared: Path) -> list[Reading]:
    """PhysioNet MIMIC II numerics s00001 (1/min, 32 h): HR, ABP systolic, respiration, SpO2."""
    path = shared / "physionet" / "3975656n.dat"
    if not path.exists():
        from conftest import missing

        missing(f"{path} not found")
    # WFDB format 16, 10 interleaved signals (header s00001-2896-10-10-00-31n.hea), gain 10
    raw = np.fromfile(path, dtype="<i2").reshape(-1, 10)
    columns = {
        "8867-4": (0, "/min"),
        "8480-6": (1, "mm[Hg]"),
        "9279-1": (5, "/min"),
        "59408-5": (6, "%"),
    }
    stream = [
        Reading("icu", code, 60.0 * i, raw[i, col] / 10.0, unit, FactRef("mimic2", f"{code}/{i}"))
        for code, (col, unit) in columns.items()
        for i in range(raw.shape[0])
    ]
    return sorted(stream, key=lambda r: (r.epoch_s, r.code))


def test_real_icu_numerics_dropouts_are_not_shifts(shared: Path) -> None:
    stream = _icu_numerics(shared)
    values = {r.ref: r.value for r in stream}
    assert sum(v == 0.0 for v in values.values()) > 1000, "the record has lead-off zeros"
    for cls in DETECTORS:
        alerts = cls("icu").learn_many(stream)
        # measured: 9 alerts in 32 h each (HR and respiration shifts of 1.4-23 /min)
        assert 1 <= len(alerts) <= 15
        for alert in alerts:
            assert all(values[ref] > 0 for ref in alert.evidence), "no dropout in the evidence"
            assert alert.detail["baseline_mean"] > 5
        no_limits = {code: [-1e9, 1e9] for code in ("8867-4", "8480-6", "9279-1", "59408-5")}
        raw = cls("icu", {"plausible": no_limits}).learn_many(stream)
        assert any(a.detail["run_mean"] == 0.0 for a in raw), "without limits, dropouts alarm"
