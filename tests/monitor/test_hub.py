"""The hub: routing by code, time order, late readings, state kept and restored, only changed facts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from medtwin.monitor import FactRef, Monitor, MonitorConfigError, MonitorHub, Reading
from medtwin.monitor.base import Alert
from medtwin.record.batch import Batch, ResourceUnit
from medtwin.record.facts import LOINC, Coding, Demographics, Identifier, Observation
from medtwin.store.sql import SqlStore


class HighHeartRate(Monitor):
    """Counts heart-rate readings and fires above a threshold (a test monitor)."""

    name = "test-high-hr"
    source = "test"
    codes: ClassVar[frozenset[str]] = frozenset({"8867-4"})
    defaults: ClassVar[Mapping[str, Any]] = {"threshold_per_min": 130.0}

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        self.seen: list[float] = []

    def learn_one(self, reading: Reading) -> list[Alert]:
        self.seen.append(reading.epoch_s)
        if reading.value > self.params["threshold_per_min"]:
            return [self.alert("high", "medium", reading.epoch_s, "HR high", [reading.ref])]
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"seen": list(self.seen)}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.seen = list(state["seen"])


class MemoryStates:
    """A dict as the state store (the store's own implementation is tested with the store)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    def load_monitor_state(self, monitor: str, patient_id: str) -> dict[str, Any] | None:
        return self.rows.get((monitor, patient_id))

    def save_monitor_states(self, states: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        for monitor, patient_id, state in states:
            self.rows[(monitor, patient_id)] = state


def reading(pid: str, code: str, t: float, value: float) -> Reading:
    return Reading(pid, code, t, value, "/min", FactRef("t", f"R/{pid}/{code}/{t}"))


def test_routes_by_code_and_sorts_by_time() -> None:
    hub = MonitorHub([HighHeartRate])
    alerts = hub.feed(
        [
            reading("a", "8867-4", 30.0, 140.0),
            reading("b", "8867-4", 10.0, 90.0),
            reading("a", "8867-4", 20.0, 80.0),
            reading("a", "9279-1", 25.0, 40.0),  # not a code of this monitor
        ]
    )
    assert [(a.patient_id, a.epoch_s) for a in alerts] == [("a", 30.0)]
    mon = hub.monitor("test-high-hr", "a")
    assert isinstance(mon, HighHeartRate)
    assert mon.seen == [20.0, 30.0]
    assert hub.learned == 3


def test_late_readings_are_counted_not_learned() -> None:
    hub = MonitorHub([HighHeartRate], late_tolerance_s=5.0)
    hub.feed([reading("a", "8867-4", 100.0, 70.0)])
    hub.feed([reading("a", "8867-4", 96.0, 70.0), reading("a", "8867-4", 50.0, 150.0)])
    mon = hub.monitor("test-high-hr", "a")
    assert isinstance(mon, HighHeartRate)
    assert mon.seen == [100.0, 96.0]
    assert hub.late == 1


def test_state_is_saved_and_restored_with_its_watermark() -> None:
    states = MemoryStates()
    hub = MonitorHub([HighHeartRate], state=states)
    hub.feed([reading("a", "8867-4", 100.0, 70.0)])
    saved = states.rows[("test-high-hr", "a")]
    assert saved["watermark"] == 100.0 and saved["state"] == {"seen": [100.0]}
    restarted = MonitorHub([HighHeartRate], state=states)
    restarted.feed([reading("a", "8867-4", 90.0, 150.0), reading("a", "8867-4", 110.0, 70.0)])
    mon = restarted.monitor("test-high-hr", "a")
    assert isinstance(mon, HighHeartRate)
    assert mon.seen == [100.0, 110.0]
    assert restarted.late == 1


def test_bad_parameters_are_refused_at_start() -> None:
    with pytest.raises(MonitorConfigError, match="threshold"):
        MonitorHub([HighHeartRate], params={"test-high-hr": {"threshold": 1}})


def _unit(value: float, minute: int, status: str = "final") -> ResourceUnit:
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
    fact = Observation(
        source="watch",
        source_id=f"Reading/{minute}",
        subject=Identifier("urn:medtwin:device-user", "W1"),
        code=Coding(LOINC, "8867-4", "Heart rate"),
        status=status,
        effective_start=when,
        value_num=value,
        unit="/min",
    )
    return ResourceUnit(key=fact.source_id, facts=(fact,))


def test_after_append_feeds_only_what_the_store_changed(sqlite_store: SqlStore) -> None:
    user = Identifier("urn:medtwin:device-user", "W1")
    sqlite_store.append_facts(
        [Demographics(source="reg", source_id="Patient/w1", subject=user, identifiers=(user,))],
        source="reg",
    )
    hub = MonitorHub([HighHeartRate])
    batch = Batch(source="watch", units=[_unit(70.0, 0), _unit(150.0, 1)])
    result = sqlite_store.append(batch)
    alerts = hub.after_append(sqlite_store, batch, result)
    assert sorted(result.changed) == ["Reading/0", "Reading/1"]
    assert [a.evidence for a in alerts] == [(FactRef("watch", "Reading/1"),)]
    pid = sqlite_store.resolve_patient("urn:medtwin:device-user|W1")
    assert alerts[0].patient_id == pid
    # the same batch again changes nothing in the store, so nothing reaches the monitor
    again = sqlite_store.append(batch)
    assert again.changed == [] and again.unchanged == 2
    assert hub.after_append(sqlite_store, batch, again) == []
    # a correction (new value, same time and source id) is a new version: learned
    fix = Batch(source="watch", units=[_unit(160.0, 1)])
    fixed = sqlite_store.append(fix)
    assert fixed.new_versions == 1 and fixed.changed == ["Reading/1"]
    mon = hub.monitor("test-high-hr", pid)
    assert isinstance(mon, HighHeartRate)
    hub.late_tolerance_s = 3600.0
    assert len(hub.after_append(sqlite_store, fix, fixed)) == 1


def test_a_cancelled_reading_is_stored_not_learned(sqlite_store: SqlStore) -> None:
    """A reading whose test was cancelled (status cancelled, a value all the same) is kept in
    the record but is no reading: no monitor learns it, none fires on it, live or replayed."""
    from medtwin.monitor.hub import readings_from_stored

    user = Identifier("urn:medtwin:device-user", "W1")
    sqlite_store.append_facts(
        [Demographics(source="reg", source_id="Patient/w1", subject=user, identifiers=(user,))],
        source="reg",
    )
    hub = MonitorHub([HighHeartRate])
    batch = Batch(source="watch", units=[_unit(70.0, 0), _unit(150.0, 1, status="cancelled")])
    result = sqlite_store.append(batch)
    assert sorted(result.changed) == ["Reading/0", "Reading/1"]  # both stored
    assert hub.after_append(sqlite_store, batch, result) == []
    pid = sqlite_store.resolve_patient("urn:medtwin:device-user|W1")
    mon = hub.monitor("test-high-hr", pid)
    assert isinstance(mon, HighHeartRate) and len(mon.seen) == 1
    replayed = readings_from_stored(sqlite_store.timeline(pid))
    assert [r.value for r in replayed] == [70.0]
