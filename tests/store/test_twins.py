"""Fitted twins in the store: save, read back, newest first, filter state, access log."""

from __future__ import annotations

import datetime as dt

import pytest

from medtwin.store.base import StoreError
from medtwin.store.sql import SqlStore


def test_twins_round_trip_and_are_logged(store: SqlStore) -> None:
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=7)
    calibration = {"model": "uva_padova_2008", "map": [0.5, 1.25], "fitted": ["kabs_per_min"]}
    first = store.save_twin(
        "mt-9",
        "uva_padova_2008",
        "1.0.0",
        calibration,
        data_start=start,
        data_end=end,
        facts_used=2016,
    )
    second = store.save_twin("mt-9", "uva_padova_2008", "1.0.0", {"map": [2.0]})
    other = store.save_twin("mt-9", "hall_2011", "1.0.0", {"map": [70.0]})
    t = store.twin(first)
    assert (t.patient_id, t.model, t.facts_used) == ("mt-9", "uva_padova_2008", 2016)
    assert t.calibration == calibration
    assert (t.data_start, t.data_end) == (start, end)
    assert t.filter_state is None and t.created_by == store.actor
    assert [x.id for x in store.twins("mt-9")] == [other, second, first]
    assert [x.id for x in store.twins("mt-9", model="uva_padova_2008")] == [second, first]
    latest = store.latest_twin("mt-9", "uva_padova_2008")
    assert latest is not None and latest.id == second
    assert store.latest_twin("mt-9", "nope") is None
    assert store.latest_twin("mt-0", "uva_padova_2008") is None

    store.update_twin_state(second, {"particles": [[1.0, 2.0]], "t_min": 5.0})
    assert store.twin(second).filter_state == {"particles": [[1.0, 2.0]], "t_min": 5.0}

    log = [(e.action, e.what) for e in store.access_log(patient_id="mt-9")]
    assert ("write", f"twin uva_padova_2008 #{first}") in log
    assert ("write", f"twin uva_padova_2008 #{second} state") in log
    assert ("read", f"twin uva_padova_2008 #{first}") in log
    assert ("read", "twins all") in log


def test_unknown_twin_is_an_error(store: SqlStore) -> None:
    with pytest.raises(StoreError, match="no twin #404"):
        store.twin(404)
    with pytest.raises(StoreError, match="no twin #404"):
        store.update_twin_state(404, {})
