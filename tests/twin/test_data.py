"""PatientData: validation, windows that keep standing events, refusals that name the field."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from medtwin.model import get_model, parse_scenario
from medtwin.twin import DataError, PatientData


def _data() -> PatientData:
    t = np.array([10.0, 0.0, 5.0, 15.0])
    y = np.array([130.0, 120.0, np.nan, 140.0])
    return PatientData(
        observations={"cgm_mg_dl": (t, y)},
        scenario=parse_scenario(
            [
                {"type": "basal", "u_per_h": 0.9},
                {"type": "meal", "t_min": 3, "carbs_g": 40},
                {"type": "basal", "t_min": 4, "u_per_h": 1.1},
                {"type": "bolus", "t_min": 12, "insulin_u": 3},
            ]
        ),
        start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        patient="p1",
    )


def test_readings_are_sorted_and_missing_values_dropped() -> None:
    d = _data()
    t, y = d.series("cgm_mg_dl")
    assert t.tolist() == [0.0, 10.0, 15.0]
    assert y.tolist() == [120.0, 130.0, 140.0]
    assert d.span_min == 15.0


def test_window_rebases_and_keeps_the_basal_rate_in_force() -> None:
    w = _data().window(5, 15)
    assert w.series("cgm_mg_dl")[0].tolist() == [5.0, 10.0]
    kinds = [(e.type, e.t_min, dict(e.fields)) for e in w.scenario.events]
    assert kinds == [
        ("basal", 0.0, {"u_per_min": pytest.approx(1.1 / 60)}),
        ("bolus", 7.0, {"insulin_u": 3.0}),
    ]
    assert w.start == dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"observations": {"cgm_mg_dl": ([0.0, 1.0], [1.0])}}, "2 times but 1 values"),
        ({"observations": {"cgm_mg_dl": ([0.0, np.inf], [1.0, 2.0])}}, "times must be finite"),
        (
            {"observations": {}, "start": dt.datetime(2026, 1, 1)},
            "start must be timezone-aware",
        ),
    ],
)
def test_bad_data_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        PatientData(**kwargs)  # type: ignore[arg-type]


def test_require_names_the_missing_observable() -> None:
    model = get_model("uva_padova_2008")
    d = _data()
    d.require(model, ["cgm_mg_dl"], minimum=3)
    with pytest.raises(DataError, match="cgm_mg_dl: 3 readings, need at least 288"):
        d.require(model, ["cgm_mg_dl"], minimum=288)
    with pytest.raises(DataError, match="has no observable 'weight_kg'"):
        d.require(model, ["weight_kg"])
    with pytest.raises(DataError, match=r"no 'bg_mg_dl' readings .*has: cgm_mg_dl"):
        d.series("bg_mg_dl")
