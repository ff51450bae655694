"""The standardised CGM metrics (medtwin.physiology.glycemia.cgm_metrics, medtwin cgm).

Checked against iglu (iglu-python 0.4.3, the Python implementation of the R package of Broll S
et al. PLoS One 2021;16(4):e0248560), an independent implementation of the same consensus
metrics, on 14 days of simulated 5-minute CGM readings (UVA/Padova adult#003, three meals a
day with the simglucose Dexcom sensor error) with a 2-day gap.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.model import get_model, parse_scenario, simulate
from medtwin.physiology.glycemia import agp_profile, cgm_metrics
from medtwin.physiology.uva_padova import cgm_noise_mg_dl

iglu = pytest.importorskip("iglu_python", reason="iglu-python is a dev dependency (make test)")

T0 = datetime(2024, 3, 1, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def fortnight() -> tuple[np.ndarray, np.ndarray]:
    """14 days of 5-minute readings, days 6-7 missing (a sensor change gone wrong)."""
    m = get_model("uva_padova_2008")
    events = [{"type": "basal", "t_min": 0}]
    for d in range(14):
        for t0, carbs, units in ((420, 50, 3.0), (750, 80, 4.0), (1140, 90, 3.5)):
            events.append({"type": "meal", "t_min": d * 1440 + t0, "carbs_g": carbs})
            events.append({"type": "bolus", "t_min": d * 1440 + t0, "insulin_u": units})
    t = np.arange(0.0, 14 * 1440.0, 5.0)
    r = simulate(m, m.preset("adult#003"), parse_scenario(events), t_end=t[-1], times=t)
    y = r.observables["cgm_mg_dl"][0] + cgm_noise_mg_dl(t, 1, seed=2, sensor="Dexcom")[0]
    y = np.clip(y, 40.0, 400.0)
    keep = (t < 5 * 1440) | (t >= 7 * 1440)
    return T0 + 60.0 * t[keep], y[keep]


def test_the_metrics_agree_with_iglu(fortnight: tuple[np.ndarray, np.ndarray]) -> None:
    times, glucose = fortnight
    mine = cgm_metrics(times, glucose, start_s=T0, end_s=T0 + 14 * 86400.0)
    frame = pd.DataFrame(
        {"id": "p", "time": pd.to_datetime(times, unit="s", utc=True), "gl": glucose}
    )

    def first(table: pd.DataFrame, column: str) -> float:
        return float(table[column].iloc[0])

    assert mine["mean_mg_dl"] == pytest.approx(first(iglu.mean_glu(frame), "mean"), rel=1e-9)
    assert mine["cv_pct"] == pytest.approx(first(iglu.cv_glu(frame), "CV"), rel=1e-9)
    assert mine["gmi_pct"] == pytest.approx(first(iglu.gmi(frame), "GMI"), rel=1e-9)
    in_range = iglu.in_range_percent(frame, [[70, 180]])
    below = iglu.below_percent(frame, [54, 70])
    above = iglu.above_percent(frame, [180, 250])
    pairs = [
        ("time_in_range_70_180_pct", first(in_range, "in_range_70_180")),
        ("time_below_54_pct", first(below, "below_54")),
        ("time_below_70_pct", first(below, "below_70")),
        ("time_above_180_pct", first(above, "above_180")),
        ("time_above_250_pct", first(above, "above_250")),
    ]
    for key, theirs in pairs:
        assert mine[key] == pytest.approx(theirs, abs=1e-9), key
    assert mine["gri"] == pytest.approx(first(iglu.gri(frame), "GRI"), abs=1e-9)
    assert mine["gri"] == pytest.approx(3.0 * mine["gri_hypo"] + 1.6 * mine["gri_hyper"])
    # data sufficiency: 12 of 14 days (iglu counts the 5-minute slots of its own window)
    active = iglu.active_percent(frame)
    assert mine["active_pct"] == pytest.approx(12 / 14 * 100, abs=0.01)
    assert mine["active_pct"] == pytest.approx(first(active, "active_percent"), abs=0.05)
    # and the consensus' checks read them right
    for name, check in mine["targets"].items():
        op, limit = check["target"].split()[0], float(check["target"].split()[1])
        value = mine[name]
        assert check["met"] == {">": value > limit, ">=": value >= limit, "<": value < limit,
                                "<=": value <= limit}[op]  # fmt: skip
    # the sum of the five ranges is the whole time
    parts = ("time_below_54_pct", "time_54_69_pct", "time_in_range_70_180_pct",
             "time_181_250_pct", "time_above_250_pct")  # fmt: skip
    assert sum(mine[p] for p in parts) == pytest.approx(100.0, abs=1e-9)


def test_each_reading_stands_for_its_time_not_its_count() -> None:
    """A Libre: 15-minute history, and scans clustered after meals. Counted per reading, the
    scans would weigh an hour of high glucose four times; weighted by time they do not."""
    history_t = T0 + np.arange(0.0, 86400.0, 900.0)
    history_g = np.full(history_t.size, 120.0)
    history_g[(history_t - T0 >= 12 * 3600) & (history_t - T0 < 13 * 3600)] = 220.0
    scans_t = T0 + 12 * 3600 + np.arange(60.0, 3600.0, 300.0)  # 12 scans in that hour
    times = np.concatenate([history_t, scans_t])
    glucose = np.concatenate([history_g, np.full(scans_t.size, 220.0)])
    alone = cgm_metrics(history_t, history_g)
    mixed = cgm_metrics(times, glucose)
    assert alone["time_above_180_pct"] == pytest.approx(100 / 24)
    assert mixed["time_above_180_pct"] == pytest.approx(100 / 24, abs=1e-9)
    per_reading = 100.0 * np.mean(glucose > 180)
    assert per_reading > 3 * alone["time_above_180_pct"]


@pytest.mark.parametrize(
    ("below_54", "between", "zone", "gri"),
    [(0, 0, "A", 0.0), (5, 0, "A", 15.0), (5, 5, "B", 27.0), (20, 20, "E", 100.0)],
)
def test_the_glycemia_risk_index_and_its_zones(
    below_54: int, between: int, zone: str, gri: float
) -> None:
    """Klonoff 2023: 3.0 x %VLow + 2.4 x %Low (+ the hyperglycaemia terms), at most 100;
    zones of 20 points."""
    glucose = np.array([40.0] * below_54 + [60.0] * between + [120.0] * (100 - below_54 - between))
    m = cgm_metrics(T0 + 300.0 * np.arange(100), glucose)
    assert m["gri"] == pytest.approx(gri) and m["gri_zone"] == zone


def test_the_profile_folds_the_days_onto_the_patient_s_own_clock(
    fortnight: tuple[np.ndarray, np.ndarray],
) -> None:
    times, glucose = fortnight
    agp = agp_profile(times, glucose, tz="UTC")
    assert len(agp["minute"]) == 96 and sum(agp["readings"]) == times.size
    minute_of_day = ((times % 86400.0) // 60.0).astype(int)
    for b in (0, 30, 52, 80):  # 00:00, 07:30, 13:00, 20:00
        values = glucose[minute_of_day // 15 == b]
        want = np.percentile(values, [5, 25, 50, 75, 95])
        got = [agp[f"p{q}"][b] for q in (5, 25, 50, 75, 95)]
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert got == sorted(got)
    # the same readings on a clock 5 h 30 min ahead: every curve moves by 22 bins
    kolkata = agp_profile(times, glucose, tz="Asia/Kolkata")
    assert kolkata["p50"][22:] == agp["p50"][:-22]
    with pytest.raises(ValueError, match="bin_minutes"):
        agp_profile(times, glucose, bin_minutes=7)


def test_too_few_readings_are_refused() -> None:
    with pytest.raises(ValueError, match="1 glucose reading"):
        cgm_metrics(np.array([T0]), np.array([100.0]))


def test_the_command_reports_an_imported_export(tmp_path: Path) -> None:
    """medtwin cgm on a Dexcom export imported for real, LOW and HIGH readings included."""
    from tests.ingest.test_dexcom import clarity

    rows = []
    for i in range(14 * 288):
        when = datetime.fromtimestamp(T0 + 300.0 * i, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        g = "Low" if i % 500 == 7 else "High" if i % 500 == 300 else str(100 + (i % 288) // 2)
        rows.append([when, "EGV", "", g, "", ""])
    lows = sum(r[3] == "Low" for r in rows)
    highs = sum(r[3] == "High" for r in rows)
    path = tmp_path / "Clarity_Export.csv"
    path.write_bytes(clarity(rows))
    db = str(tmp_path / "m.db")
    runner = CliRunner()
    done = runner.invoke(
        main, ["import", str(path), "--store", db, "--patient", "c-1", "--create-patient"]
    )
    assert done.exit_code == 0, done.output
    out = runner.invoke(main, ["cgm", "c-1", "--store", db, "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["readings"] == 14 * 288 and report["bounds"] == lows + highs == 17
    assert report["active_pct"] == pytest.approx(100.0, abs=0.01)
    # LOW counts below 54 (at its bound, 40), HIGH above 250 (at 400)
    assert report["time_below_54_pct"] == pytest.approx(100 * lows / (14 * 288), abs=1e-6)
    assert report["time_above_250_pct"] == pytest.approx(100 * highs / (14 * 288), abs=1e-6)
    text = runner.invoke(main, ["cgm", "c-1", "--store", db]).output
    assert "4,032 readings, 17 sent as bounds" in text
    values = [float({"Low": 40, "High": 400}.get(r[3], r[3])) for r in rows]
    in_range = 100 * sum(70 <= v <= 180 for v in values) / len(values)
    assert report["time_in_range_70_180_pct"] == pytest.approx(in_range, abs=1e-6)
    assert f"time in range 70-180            {in_range:.1f} %   target > 70 %: NOT met" in text
    html = tmp_path / "agp.html"
    plotted = runner.invoke(
        main, ["cgm", "c-1", "--store", db, "--tz", "Europe/Berlin", "--plot", str(html)]
    )
    assert plotted.exit_code == 0 and f"ambulatory glucose profile (Europe/Berlin): {html}" in (
        plotted.output
    )
    page = html.read_text()
    assert "plotly" in page and '"name":"median"' in page and '"name":"25-75 %"' in page
    assert report["agp"]["tz"] == "UTC" and len(report["agp"]["p50"]) == 96
    shown = runner.invoke(main, ["show", "c-1", "--store", db]).output
    assert "CGM, 14 days to 2024-03-14 (4,032 readings, active 100.0 %)" in shown
    assert f"in range 70-180 {in_range:.1f} % (target not met)" in " ".join(shown.split())
    summary = json.loads(runner.invoke(main, ["show", "c-1", "--store", db, "--json"]).output)
    assert summary["cgm"]["gri_zone"] == report["gri_zone"]
    assert summary["cgm"]["time_in_range_70_180_pct"] == report["time_in_range_70_180_pct"]
    missing = runner.invoke(main, ["cgm", "nobody", "--store", db])
    assert missing.exit_code != 0 and "nobody" in missing.output
