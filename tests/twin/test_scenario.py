"""What-if comparisons: metrics, paired differences, agreement with simglucose, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.physiology.test_uva_padova import _simglucose_live

from medtwin.model import ModelError, get_model, parse_scenario, simulate
from medtwin.physiology.glycemia import glycemic_summary
from medtwin.physiology.uva_padova import VG
from medtwin.twin.scenario import compare, metrics_for

UVA = get_model("uva_padova_2008")
DAY = [
    {"type": "basal"},
    {"type": "meal", "t_min": 60, "carbs_g": 45},
    {"type": "bolus", "t_min": 60, "insulin_u": 4},
    {"type": "meal", "t_min": 360, "carbs_g": 70},
    {"type": "bolus", "t_min": 360, "insulin_u": 6},
]


def _with(changes: dict[int, dict[str, float]]) -> list[dict[str, object]]:
    return [{**e, **changes.get(i, {})} for i, e in enumerate(DAY)]


def test_metrics_equal_the_cgm_consensus_summary_on_even_samples() -> None:
    rng = np.random.default_rng(4)
    y = rng.uniform(40, 300, size=(3, 289))
    t = np.arange(289) * 5.0
    chosen = {m.name: m for m in metrics_for(UVA)}
    for row in range(3):
        # the last sample of a closed interval carries half weight; compare on the
        # trapezoid-equivalent samples: drop nothing, allow the half-sample difference
        expected = glycemic_summary(y[row])
        tir = chosen["time_in_range_70_180_pct"].function(t, y[row : row + 1])[0]
        assert tir == pytest.approx(expected["time_in_range_70_180_pct"], abs=100 / 288)
        mean = chosen["mean_mg_dl"].function(t, y[row : row + 1])[0]
        assert mean == pytest.approx(float(y[row].mean()), abs=300 / 288)
        below = chosen["time_below_54_pct"].function(t, y[row : row + 1])[0]
        assert below == pytest.approx(expected["time_below_54_pct"], abs=100 / 288)
    # uneven sampling weighs by time, not by sample count
    t2 = np.array([0.0, 1.0, 61.0])
    y2 = np.array([[50.0, 150.0, 150.0]])
    tir2 = chosen["time_in_range_70_180_pct"].function(t2, y2)[0]
    assert tir2 == pytest.approx(100 * (0.5 + 30 + 30) / 61)


def test_smaller_dinner_and_bigger_bolus_move_the_metrics_the_right_way() -> None:
    params = UVA.preset([f"adult#{i:03d}" for i in range(1, 9)])
    c = compare(
        UVA,
        params,
        parse_scenario(DAY),
        {
            "smaller dinner": parse_scenario(_with({3: {"carbs_g": 35}})),
            "bigger bolus": parse_scenario(_with({4: {"insulin_u": 9}})),
        },
        t_end=720,
    )
    base, smaller, bigger = c.arms
    assert base.difference == {}
    assert smaller.difference["mean_mg_dl"].high < 0
    assert smaller.difference["time_above_180_pct"].median <= 0
    assert bigger.difference["min_mg_dl"].high < 0
    assert bigger.difference["time_below_70_pct"].low >= 0
    # bands are ordered and the median of the metric lies inside its band
    for a in c.arms:
        b = a.bands["bg_mg_dl"]
        assert np.all(b.low <= b.median + 1e-9) and np.all(b.median <= b.high + 1e-9)
        s = a.metrics["mean_mg_dl"]
        assert s.low <= s.median <= s.high
    # paired: the difference is exactly member-by-member
    d = smaller.members["mean_mg_dl"] - base.members["mean_mg_dl"]
    assert smaller.difference["mean_mg_dl"].median == pytest.approx(float(np.median(d)))
    # the table has one row per metric and a difference column per alternative
    rows = c.rows()
    assert rows[0] == [
        "metric",
        "baseline",
        "smaller dinner",
        "smaller dinner - baseline",
        "bigger bolus",
        "bigger bolus - baseline",
    ]
    assert len(rows) == 1 + len(c.metrics)
    data = c.to_dict()
    assert data["arms"][1]["scenario"]["events"][3]["carbs_g"] == 35.0
    assert len(data["times_min"]) == 145


def test_each_arm_agrees_with_simglucose() -> None:
    name = "adolescent#003"
    arms = {
        "smaller dinner": _with({3: {"carbs_g": 35}}),
        "bigger bolus": _with({4: {"insulin_u": 9}}),
    }
    c = compare(
        UVA,
        UVA.preset(name),
        parse_scenario(DAY),
        {k: parse_scenario(v) for k, v in arms.items()},
        t_end=720,
        dt_out=1,
    )
    vg = UVA.preset(name)[0, VG]
    for arm_name, events in [("baseline", DAY), *arms.items()]:
        states = _simglucose_live(name, {"events": events}, 720)
        ours = c.arm(arm_name).bands["bg_mg_dl"].median
        assert np.abs(ours - states[:, 3] / vg).max() < 0.01


def test_starting_states_are_shared_by_every_arm() -> None:
    params = UVA.preset(["adult#001", "adult#002"])
    r = simulate(UVA, params, parse_scenario(DAY), t_end=300)
    x0 = r.states[:, -1, :]
    c = compare(
        UVA,
        params,
        parse_scenario([{"type": "basal"}]),
        {
            "snack": parse_scenario(
                [{"type": "basal"}, {"type": "meal", "t_min": 30, "carbs_g": 15}]
            )
        },
        t_end=120,
        x0=x0,
    )
    start = c.arms[0].bands["bg_mg_dl"]
    first = r.observables["bg_mg_dl"][:, -1]
    assert start.low[0] == pytest.approx(np.quantile(first, 0.05))
    assert c.arms[1].bands["bg_mg_dl"].median[0] == pytest.approx(start.median[0])


def test_bad_what_ifs_are_refused_naming_the_arm() -> None:
    p = UVA.preset("adult#001")
    with pytest.raises(ModelError, match="at least one alternative"):
        compare(UVA, p, parse_scenario(DAY), {}, t_end=60)
    with pytest.raises(ModelError, match="named 'baseline'"):
        compare(UVA, p, parse_scenario(DAY), {"baseline": parse_scenario(DAY)}, t_end=60)
    bleed = parse_scenario(
        [{"type": "blood_loss", "t_min": 5, "volume_ml": 500, "duration_min": 10}]
    )
    with pytest.raises(ModelError, match=r"scenario 'bleed': .*does not take 'blood_loss'"):
        compare(UVA, p, parse_scenario(DAY), {"bleed": bleed}, t_end=60)


def test_html_plot_is_self_contained(tmp_path: Path) -> None:
    c = compare(
        UVA,
        UVA.preset(["adult#001", "adult#004"]),
        parse_scenario(DAY),
        {"smaller dinner": parse_scenario(_with({3: {"carbs_g": 35}}))},
        t_end=600,
    )
    out = c.write_html(tmp_path / "whatif.html", observables=["cgm_mg_dl"])
    text = out.read_text()
    assert "smaller dinner (median)" in text and "90% band" in text
    assert "cdn.plot.ly" not in text.split("<body>")[0]
    assert out.stat().st_size > 1_000_000  # plotly.js is embedded: works offline
