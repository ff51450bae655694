"""Readings that are bounds, not values (a CGM's LOW "<40" and HIGH ">400"), in the monitors.

A bound is never learned into a baseline, and counts only where every value it allows gives
the same answer (docs/models/glucose-monitor.md and trend-detectors.md, "Bounds").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.ingest import import_paths
from medtwin.monitor import FactRef, Reading
from medtwin.monitor._resting import columns
from medtwin.monitor.changepoint import changepoints_for
from medtwin.monitor.glucose import GlucoseMonitor
from medtwin.monitor.hub import readings_from_stored
from medtwin.monitor.trend import CusumMonitor, PageHinkleyMonitor
from medtwin.record.facts import Demographics, Identifier
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

CGM = "99504-3"


def cgm(i: int, value: float, comparator: str | None = None) -> Reading:
    """A CGM reading every 5 minutes."""
    return Reading(
        "mt-1", CGM, 300.0 * i, value, "mg/dL", FactRef("cgm", f"g{i}"), None, comparator
    )


# ------------------------------------------------------------------ from the record
def _import(store: SqlStore, tmp_path: Path, values: list[str]) -> str:
    who = Identifier("urn:medtwin:device-user", "cgm-1")
    store.append_facts(
        [Demographics(source="reg", source_id="Patient/c1", subject=who, identifiers=(who,))],
        source="reg",
    )
    rows = ["time,metric,value,unit"]
    for i, v in enumerate(values):
        rows.append(f"2024-03-01T{2 + i // 12:02d}:{(i % 12) * 5:02d}:00Z,{CGM},{v},mg/dL")
    file = tmp_path / "cgm.csv"
    file.write_text("\n".join(rows) + "\n")
    import_paths(store, [file], patient="cgm-1", source="meter")
    return store.resolve_patient("cgm-1")


def test_a_night_into_low_alerts_with_the_bound_as_sent(store: SqlStore, tmp_path: Path) -> None:
    """A CSV with LOW rows, imported for real, replayed through the glucose monitor."""
    values = ["95", "80", "66", "58", "<40", "<40", "<40", "<40", "62", "75", "90", "95"]
    pid = _import(store, tmp_path, values)
    readings = readings_from_stored(store.timeline(pid))
    assert [r.comparator for r in readings] == [None] * 4 + ["<"] * 4 + [None] * 4
    assert [r.value for r in readings[4:8]] == [40.0] * 4
    monitor = GlucoseMonitor(pid)
    alerts = monitor.learn_many(readings)
    level2 = [a for a in alerts if a.rule == "glucose.hypo.level2"]
    assert len(level2) == 1
    # 15 min beyond 54 mg/dL from the first LOW: the fourth LOW starts the event
    assert level2[0].message.startswith("level 2 hypoglycaemia: glucose <40 mg/dL < 54 mg/dL")
    assert level2[0].detail["comparator"] == "<"
    assert level2[0].evidence[0] == readings[4].ref


def test_a_bound_on_both_sides_of_a_threshold_says_nothing_of_that_level() -> None:
    m = GlucoseMonitor("mt-1")
    # "<60" is below 70 (level 1) but may or may not be below 54 (level 2)
    alerts = m.learn_many([cgm(i, 60.0, "<") for i in range(5)])
    assert [a.rule for a in alerts] == ["glucose.hypo.level1"]
    # an active level 2 event is not ended by "<60" readings: they do not say it is over
    m = GlucoseMonitor("mt-1")
    first = m.learn_many([cgm(i, 45.0) for i in range(4)])
    assert "glucose.hypo.level2" in [a.rule for a in first]
    m.learn_many([cgm(i, 60.0, "<") for i in range(4, 12)])
    assert m._levels[0].active  # level 2 still open
    m.learn_many([cgm(i, 60.0) for i in range(12, 16)])  # 60 as a value: over 15 min above 54
    assert not m._levels[0].active
    # HIGH: ">400" is above 250 (level 2), and certainly not below 70
    m = GlucoseMonitor("mt-1")
    rules = [a.rule for a in m.learn_many([cgm(i, 400.0, ">") for i in range(5)])]
    assert sorted(rules) == ["glucose.hyper.level1", "glucose.hyper.level2"]


def test_a_forecast_is_not_scored_against_a_bound() -> None:
    m = GlucoseMonitor("mt-1")
    falling = [cgm(i, 150.0 - 8 * i) for i in range(10)]
    m.learn_many(falling)
    scored = m._err_n
    assert scored > 0  # forecasts 30 min ahead met values
    m.learn_many([cgm(i, 40.0, "<") for i in range(10, 20)])
    assert m._err_n == scored  # none scored against "<40"
    m.learn_many([cgm(i, 70.0) for i in range(20, 30)])
    assert m._err_n > scored  # values are again


# ------------------------------------------------------------------ trend detectors
def _baseline(monitor: CusumMonitor | PageHinkleyMonitor, n: int = 40) -> list[Reading]:
    rng = np.random.default_rng(0)
    readings = [cgm(i, float(120.0 + 10.0 * rng.standard_normal())) for i in range(n)]
    assert monitor.learn_many(readings) == []
    return readings


def test_cusum_never_learns_a_bound_and_tests_it_on_its_own_side() -> None:
    m = CusumMonitor("mt-1", {"codes": [CGM]})
    warm = [cgm(0, 40.0, "<"), cgm(1, 400.0, ">")]
    assert m.learn_many(warm) == [] and CGM not in m._tracks  # not even a warm-up reading
    readings = _baseline(m)
    track = m._tracks[CGM]
    assert track.mean == pytest.approx(np.mean([r.value for r in readings]))
    # "<200" allows any fall or rise below 200: no evidence of a rise, though 200 would be
    n, up = track.n, track.up
    assert m.learn_many([cgm(100 + i, 200.0, "<") for i in range(20)]) == []
    after = m._tracks[CGM]
    assert after.up == up and after.n == n  # S+ left as it was, nothing learned
    assert after.low == 0.0  # S- stepped with the z of 200, far above: no fall
    as_values = CusumMonitor("mt-1", {"codes": [CGM]})
    _baseline(as_values)
    rose = as_values.learn_many([cgm(100 + i, 200.0) for i in range(20)])
    assert [a.detail["direction"] for a in rose] == ["up"]
    # "<40" is evidence of a fall: at least that of 40
    fell = m.learn_many([cgm(200 + i, 40.0, "<") for i in range(20)])
    assert [a.detail["direction"] for a in fell] == ["down"]
    assert fell[0].detail["run_mean"] == 40.0


def test_page_hinkley_leaves_bounds_out() -> None:
    m = PageHinkleyMonitor("mt-1", {"codes": [CGM]})
    _baseline(m)
    before = m.state_dict()
    assert m.learn_many([cgm(100 + i, 40.0, "<") for i in range(30)]) == []
    assert m.state_dict() == before


def test_a_heart_rate_bound_is_not_a_resting_value() -> None:
    hr = [
        Reading("mt-1", "8867-4", 60.0, 55.0, "/min", FactRef("w", "1")),
        Reading("mt-1", "8867-4", 120.0, 200.0, "/min", FactRef("w", "2"), None, ">"),
    ]
    assert columns(hr).is_hr.tolist() == [True, False]


# ------------------------------------------------------------------ offline change points
def test_change_points_leave_bounds_out_and_count_them(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    values = [str(v) for v in [120, 125, 118, 122, 119, 121]] + ["<40", ">400"]
    values += [str(v) for v in [180, 185, 178, 182, 181, 179]]
    pid = _import(sqlite_store, tmp_path, values)
    review = changepoints_for(sqlite_store, pid, CGM, min_size=3)
    assert review["n"] == 12 and review["bounds_dropped"] == 2
    assert review["implausible_dropped"] == 0
    assert [round(s["mean"], 1) for s in review["segments"]] == [120.8, 180.8]
    out = CliRunner().invoke(
        main, ["changepoints", pid, CGM, "--store", sqlite_store.url, "--min-size", "3"]
    )
    assert out.exit_code == 0, out.output
    assert "12 readings (left out: 2 sent as bounds" in out.output


def test_monitor_run_shows_the_low_as_sent(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    store = open_store(db, actor="test")
    try:
        pid = _import(store, tmp_path, ["70", "60", "<40", "<40", "<40", "<40", "<40"])
    finally:
        store.close()
    out = CliRunner().invoke(
        main, ["monitor", "run", pid, "--store", db, "--monitors", "glucose", "--json"]
    )
    assert out.exit_code == 0, out.output
    messages = [a["message"] for a in json.loads(out.output)["alerts"]]
    assert any(m.startswith("level 2 hypoglycaemia: glucose <40 mg/dL") for m in messages)
