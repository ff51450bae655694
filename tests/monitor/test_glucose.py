"""Glucose monitor: level edges, the 15-minute CGM rule, mmol/L input, rate, forecast, restart."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from conftest import missing
from medtwin.monitor import FactRef, MonitorConfigError, Reading
from medtwin.monitor.base import Alert
from medtwin.monitor.glucose import GlucoseMonitor, linear_forecast

CGM = "99504-3"
LEVEL_RULES = {
    "glucose.hypo.level1",
    "glucose.hypo.level2",
    "glucose.hyper.level1",
    "glucose.hyper.level2",
}


def series(
    values: Sequence[float],
    *,
    step_min: float = 5.0,
    times_min: Sequence[float] | None = None,
    code: str = CGM,
    unit: str = "mg/dL",
    t0: float = 1_767_225_600.0,
) -> list[Reading]:
    times = times_min if times_min is not None else [step_min * i for i in range(len(values))]
    return [
        Reading("p1", code, t0 + 60.0 * t, float(v), unit, FactRef("test", f"g{i}"))
        for i, (t, v) in enumerate(zip(times, values, strict=True))
    ]


def rules(alerts: Sequence[Alert], only: set[str] | None = None) -> list[str]:
    return [a.rule for a in alerts if only is None or a.rule in only]


def index_of(alert: Alert) -> int:
    return int(alert.evidence[-1].source_id[1:])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (69.9, ["glucose.hypo.level1"]),
        (70.0, []),
        (53.9, ["glucose.hypo.level2", "glucose.hypo.level1"]),
        (54.0, ["glucose.hypo.level1"]),
        (180.0, []),
        (180.1, ["glucose.hyper.level1"]),
        (250.0, ["glucose.hyper.level1"]),
        (250.1, ["glucose.hyper.level2", "glucose.hyper.level1"]),
    ],
)
def test_a_single_reading_is_judged_on_its_own_at_the_threshold_edges(
    value: float, expected: list[str]
) -> None:
    alerts = GlucoseMonitor("p1").learn_many(series([value]))
    assert rules(alerts) == expected
    for alert in alerts:
        assert alert.detail["single_reading"] is True
        assert alert.evidence == (FactRef("test", "g0"),)
    severities = {a.rule: a.severity for a in alerts}
    if "glucose.hypo.level2" in severities:
        assert severities["glucose.hypo.level2"] == "high"


def test_cgm_event_needs_15_minutes_below_70() -> None:
    # normal, then 69.9 mg/dL every 5 min from minute 10: 15 min have passed at minute 25
    alerts = GlucoseMonitor("p1").learn_many(series([100, 100, 69.9, 69.9, 69.9, 69.9, 69.9]))
    hypo = [a for a in alerts if a.rule in LEVEL_RULES]
    assert rules(hypo) == ["glucose.hypo.level1"]
    assert index_of(hypo[0]) == 5
    assert hypo[0].detail["duration_min"] == pytest.approx(15.0)
    assert [r.source_id for r in hypo[0].evidence] == ["g2", "g3", "g4", "g5"]
    assert "15 min" in hypo[0].message


def test_70_point_0_for_an_hour_is_not_hypoglycaemia() -> None:
    alerts = GlucoseMonitor("p1").learn_many(series([100, 85] + [70.0] * 12))
    assert rules(alerts, LEVEL_RULES) == []


@pytest.mark.parametrize(("last_min", "fires"), [(24.9, False), (25.0, True)])
def test_the_15_minute_duration_edge(last_min: float, fires: bool) -> None:
    times = [0.0, 5.0, 10.0, 15.0, 20.0, last_min]
    alerts = GlucoseMonitor("p1").learn_many(series([90, 90, 60, 60, 60, 60], times_min=times))
    assert rules(alerts, LEVEL_RULES) == (["glucose.hypo.level1"] if fires else [])


def test_level_2_and_hyperglycaemia_events_use_the_same_rule() -> None:
    lows = GlucoseMonitor("p1").learn_many(series([90, 80, 53, 52, 51, 50, 50]))
    level = [a for a in lows if a.rule in LEVEL_RULES]
    assert [(a.rule, index_of(a)) for a in level] == [
        ("glucose.hypo.level2", 5),
        ("glucose.hypo.level1", 5),
    ]
    highs = GlucoseMonitor("p1").learn_many(series([150, 170, 185, 190, 200, 260, 262, 265, 270]))
    assert [(a.rule, index_of(a)) for a in highs if a.rule in LEVEL_RULES] == [
        ("glucose.hyper.level1", 5),
        ("glucose.hyper.level2", 8),
    ]


def test_an_event_ends_only_after_15_minutes_back_in_range() -> None:
    low = [60.0] * 4
    short_recovery = [90.0] * 3  # 10 min
    long_recovery = [90.0] * 4  # 15 min
    monitor = GlucoseMonitor("p1", {"fall_rate_mg_dl_min": 100.0})
    first = monitor.learn_many(series([90, 90, *low, *short_recovery, *low]))
    assert rules(first, LEVEL_RULES) == ["glucose.hypo.level1"], "one event, short recovery"
    again = GlucoseMonitor("p1", {"fall_rate_mg_dl_min": 100.0})
    second = again.learn_many(series([90, 90, *low, *long_recovery, *low]))
    assert rules(second, LEVEL_RULES) == ["glucose.hypo.level1"] * 2, "two events"


def test_a_gap_over_20_minutes_breaks_the_series() -> None:
    times = [0.0, 5.0, 10.0, 40.0, 45.0]
    alerts = GlucoseMonitor("p1").learn_many(series([90, 65, 65, 65, 65], times_min=times))
    # minute 5-10: a 5-min run, no event; minute 40 comes after a gap: judged on its own
    assert [(a.rule, index_of(a)) for a in alerts if a.rule in LEVEL_RULES] == [
        ("glucose.hypo.level1", 3)
    ]


@pytest.mark.parametrize(
    ("mmol_l", "fires"), [(3.8, True), (3.88, True), (3.89, False), (3.9, False)]
)
def test_mmol_per_litre_input_is_converted(mmol_l: float, fires: bool) -> None:
    # 70 mg/dL = 3.8855 mmol/L (glucose 180.156 g/mol)
    alerts = GlucoseMonitor("p1").learn_many(series([mmol_l], code="15074-8", unit="mmol/L"))
    assert rules(alerts) == (["glucose.hypo.level1"] if fires else [])
    if fires:
        assert alerts[0].detail["glucose_mg_dl"] == pytest.approx(mmol_l * 18.0156, rel=1e-6)


def test_molar_cgm_follows_the_duration_rule_too() -> None:
    values = [5.5, 5.0, 3.5, 3.4, 3.3, 3.3]
    alerts = GlucoseMonitor("p1").learn_many(series(values, code="105272-9", unit="mmol/L"))
    assert [(a.rule, index_of(a)) for a in alerts if a.rule in LEVEL_RULES] == [
        ("glucose.hypo.level1", 5)
    ]


@pytest.mark.parametrize("value", [5.0, 9.9, 1000.1, 4000.0])
def test_impossible_values_are_artefacts_not_alarms(value: float) -> None:
    monitor = GlucoseMonitor("p1")
    alerts = monitor.learn_many(series([100, 100, value, 100]))
    assert [(a.rule, a.severity, a.category) for a in alerts] == [
        ("glucose.implausible", "info", "artefact")
    ]
    assert monitor.state_dict()["window"][-2][1] == 100.0, "the bad value was not learned"


def test_an_unconvertible_unit_is_a_data_quality_note() -> None:
    alerts = GlucoseMonitor("p1").learn_many(series([60], unit="mm[Hg]"))
    assert [(a.rule, a.category) for a in alerts] == [("glucose.unit", "data-quality")]


@pytest.mark.parametrize(("values", "fires"), [([150, 140, 130], True), ([150, 140.5, 131], False)])
def test_falling_fast_at_2_mg_dl_per_min(values: list[float], fires: bool) -> None:
    alerts = GlucoseMonitor("p1").learn_many(series(values))
    fast = [a for a in alerts if a.rule == "glucose.falling_fast"]
    assert len(fast) == (1 if fires else 0)
    if fires:
        assert fast[0].detail["rate_mg_dl_min"] == -2.0
        assert [r.source_id for r in fast[0].evidence] == ["g0", "g1", "g2"]


def test_linear_forecast_matches_numpy_polyfit() -> None:
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1200, 6))
    g = 120 - 0.02 * t + rng.normal(0, 2, 6)
    slope, intercept = np.polyfit(t, g, 1)
    value, per_min = linear_forecast(list(t), list(g), 3000.0)
    assert value == pytest.approx(intercept + slope * 3000.0)
    assert per_min == pytest.approx(60 * slope)


def test_forecast_alert_comes_before_the_threshold_is_crossed() -> None:
    values = [130.0 - 1.5 * 5 * i for i in range(10)]  # -1.5 mg/dL/min, not "falling fast"
    monitor = GlucoseMonitor("p1")
    alerts = monitor.learn_many(series(values))
    predicted = [a for a in alerts if a.rule == "glucose.hypo.predicted"]
    # forecast = now + 0.3 * (-1.5) * 30 = now - 13.5; lower bound = forecast - 0.5 * 20 (prior)
    # < 70 first at 92.5 mg/dL (reading 5); glucose itself goes below 70 at reading 9
    assert [index_of(a) for a in predicted] == [5]
    first_low = next(i for i, v in enumerate(values) if v < 70)
    assert first_low == 9
    detail = predicted[0].detail
    assert detail["lower_bound_mg_dl"] < 70 <= detail["glucose_mg_dl"]
    assert detail["forecast_mg_dl"] == pytest.approx(92.5 - 13.5)
    assert detail["lower_bound_mg_dl"] == pytest.approx(92.5 - 13.5 - 10.0)
    assert detail["rmse_measured"] is False and detail["rmse_mg_dl"] == 20.0
    # plain linear extrapolation (weight 1, z 0) warns earlier on a true line: 107.5 -> 62.5
    plain = GlucoseMonitor("p1", {"forecast_trend_weight": 1.0, "forecast_z": 0.0})
    early = [a for a in plain.learn_many(series(values)) if a.rule == "glucose.hypo.predicted"]
    assert [index_of(a) for a in early] == [3]


def test_a_flat_series_near_the_threshold_is_not_predicted_low() -> None:
    alerts = GlucoseMonitor("p1").learn_many(series([78, 77, 78, 77, 78, 77] * 10))
    assert rules(alerts) == []


def test_the_forecast_error_is_measured_on_the_series_itself() -> None:
    t_min = np.arange(0, 24 * 60, 5.0)
    values = 140 + 50 * np.sin(2 * np.pi * t_min / 240.0)
    monitor = GlucoseMonitor("p1")
    monitor.learn_many(series(list(values)))
    errors = []
    for i, t in enumerate(t_min):
        target = i + 6  # 30 min later on a 5-min grid
        window = (t_min >= t - 20) & (t_min <= t)
        if target >= len(t_min) or window.sum() < 3:
            continue
        level, slope = linear_forecast(list(60 * t_min[window]), list(values[window]), 60 * t)
        errors.append(values[target] - (level + 0.3 * slope * 30))
    assert monitor.rmse_mg_dl() == pytest.approx(math.sqrt(np.mean(np.square(errors))), rel=1e-9)
    assert monitor.rmse_mg_dl() != 15.0


def test_restart_in_the_middle_of_a_low_run_gives_the_same_alert() -> None:
    stream = series([100, 95, 69, 68, 67, 66, 66, 65])
    steady = GlucoseMonitor("p1").learn_many(stream)
    first = GlucoseMonitor("p1")
    got = first.learn_many(stream[:4])
    saved = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    second = GlucoseMonitor("p1")
    second.load_state(saved)
    got += second.learn_many(stream[4:])
    assert [a.to_dict() for a in got] == [a.to_dict() for a in steady]
    assert "glucose.hypo.level1" in rules(got)


@pytest.mark.parametrize(
    "params",
    [
        {"hypo_level2_mg_dl": 75.0},
        {"hyper_level2_mg_dl": 170.0},
        {"horizon_min": "30"},
        {"forecast_z": -1},
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(MonitorConfigError):
        GlucoseMonitor("p1", params)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # gym 0.9.4 (a simglucose dependency)
def test_forecast_on_a_simglucose_trace_warns_before_a_real_hypo() -> None:
    """A UVA/Padova child (simglucose) with over-bolused meals: forecast leads the level alert."""
    try:
        from datetime import datetime, timedelta

        from simglucose.actuator.pump import InsulinPump
        from simglucose.controller.basal_bolus_ctrller import BBController
        from simglucose.controller.base import Action
        from simglucose.patient.t1dpatient import T1DPatient
        from simglucose.sensor.cgm import CGMSensor
        from simglucose.simulation.env import T1DSimEnv
        from simglucose.simulation.scenario_gen import RandomScenario
        from simglucose.simulation.sim_engine import SimObj
    except ImportError:
        missing("simglucose is not installed (pip install -e '.[dev]')")

    class OverBolus(BBController):  # type: ignore[misc]
        def policy(self, observation, reward, done, **info):  # type: ignore[no-untyped-def]
            action = super().policy(observation, reward, done, **info)
            return Action(basal=action.basal, bolus=action.bolus * 1.5)

    class FastParams:  # plain attributes for the ODE, as benchmarks/eval_glucose.py
        def __init__(self, frame: Any) -> None:
            for key, value in frame.items():
                setattr(self, key, value if isinstance(value, str) else float(value))
            self.iloc = frame.iloc

    patient = T1DPatient.withName("child#001")
    patient._params = FastParams(patient._params)
    env = T1DSimEnv(
        patient,
        CGMSensor.withName("Dexcom", seed=3),
        InsulinPump.withName("Insulet"),
        RandomScenario(start_time=datetime(2026, 1, 1), seed=3),
    )
    sim = SimObj(env, OverBolus(), timedelta(hours=16), animate=False, path=None)
    sim.simulate()
    frame = sim.results()
    t_min = (frame.index - frame.index[0]).total_seconds().to_numpy() / 60.0
    bg = frame["BG"].to_numpy(dtype=float)
    cgm = frame["CGM"].to_numpy(dtype=float)
    assert (bg < 70).any(), "the over-bolused child goes low in 16 h"
    monitor = GlucoseMonitor("p1")
    alerts = monitor.learn_many(series(list(cgm), times_min=list(t_min)))
    first_bg_low = float(t_min[np.argmax(bg < 70)])
    t0 = 1_767_225_600.0
    predicted = [(a.epoch_s - t0) / 60.0 for a in alerts if a.rule == "glucose.hypo.predicted"]
    warned = [x for x in predicted if first_bg_low - 60 <= x <= first_bg_low]
    assert warned, f"forecast alerts at {predicted}, first BG < 70 at {first_bg_low}"
    level = [(a.epoch_s - t0) / 60.0 for a in alerts if a.rule == "glucose.hypo.level1"]
    assert level and warned[0] < level[0], "the forecast comes before the CGM event"
    assert 3.0 < monitor.rmse_mg_dl() < 40.0, "measured 30-min RMSE in a plausible range"
    assert monitor.state_dict()["err_n"] > 100


def test_a_libre_history_every_15_minutes_gets_trend_alerts() -> None:
    """A fall of 2.4 mg/dL/min seen only every 15 minutes (a Libre's history): the trend
    windows widen to two typical intervals (30 min), so the falling-fast and the forecast
    alerts fire from the third reading of the fall, with the window said; the same fall every
    5 minutes keeps the 15- and 20-minute windows."""
    values = [180.0, 180.0, 180.0, 144.0, 108.0, 90.0]
    sparse = GlucoseMonitor("p1").learn_many(series(values, step_min=15.0))
    fast = [a for a in sparse if a.rule == "glucose.falling_fast"]
    assert len(fast) == 1 and index_of(fast[0]) == 4  # 180, 144, 108 over 30 min
    assert fast[0].detail["window_min"] == 30.0
    assert "over 3 readings in 30 min" in fast[0].message
    assert "glucose.hypo.predicted" in rules(sparse)
    dense = GlucoseMonitor("p1").learn_many(
        series([180.0] * 9 + [180.0 - 12.0 * k for k in range(1, 10)], step_min=5.0)
    )
    (first,) = [a for a in dense if a.rule == "glucose.falling_fast"][:1]
    assert first.detail["window_min"] == 15.0
    # the widening is state: a restart keeps it
    monitor = GlucoseMonitor("p1")
    monitor.learn_many(series(values[:3], step_min=15.0))
    restarted = GlucoseMonitor("p1")
    restarted.load_state(json.loads(json.dumps(monitor.state_dict())))
    later = series(values, step_min=15.0)[3:]
    assert [a.to_dict() for a in restarted.learn_many(later)] == [
        a.to_dict() for a in sparse if index_of(a) >= 3
    ]
