"""The alert book and monitor state in the store: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from medtwin.monitor import Alert, FactRef, Monitor, MonitorHub, Reading
from medtwin.store import open_store
from medtwin.store.alerts import (
    DEFAULT_LADDER,
    DEFAULT_POLICY,
    AlertError,
    AlertNotFoundError,
    AlertPolicy,
    AlertStateError,
)
from medtwin.store.base import Store
from medtwin.store.migrations import HEAD, upgrade
from medtwin.store.sql import SqlStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
"""Wall clock of the tests (the store's ``now``)."""
E0 = datetime(2026, 3, 1, 7, 55, tzinfo=UTC).timestamp()
"""Event time of the first firing (the monitor's clock)."""


def fire(
    severity: str = "medium",
    *,
    t_s: float = 0.0,
    refs: tuple[str, ...] = ("Observation/1",),
    patient: str = "mt-a",
    key: str | None = None,
    category: str = "clinical",
    message: str | None = None,
    rule: str = "news2.aggregate",
) -> Alert:
    return Alert(
        patient_id=patient,
        monitor="news2",
        monitor_version="1",
        rule=rule,
        severity=severity,
        epoch_s=E0 + t_s,
        message=message or f"NEWS2 {severity}",
        source="RCP 2017 NEWS2, Table 2",
        evidence=tuple(FactRef("monitor-test", r) for r in refs),
        category=category,
        detail={"score": {"info": 0, "low": 2, "medium": 5, "high": 7}.get(severity, 3)},
        key=key,
    )


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def events(store: SqlStore, alert_id: int) -> list[str]:
    return [e.event for e in store.alert_events(alert_id)]


# -- schema ---------------------------------------------------------------------------------


def test_store_is_a_monitor_state_store_and_sink(store: SqlStore) -> None:
    assert isinstance(store, Store)
    assert store._query("SELECT version_num FROM alembic_version")[0][0] == HEAD
    for table in ("alerts", "alert_events", "monitor_state"):
        assert store._query(f"SELECT COUNT(*) FROM {table}")[0][0] == 0


@pytest.fixture(params=["sqlite", "postgres"])
def old_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database migrated only to 0001 (created before the alert tables), with one patient."""
    if request.param == "sqlite":
        file = tmp_path / "old.db"
        upgrade(f"sqlite:///{file}", "0001")
        conn = sqlite3.connect(file)
        conn.execute(
            "INSERT INTO patients (id, created_at, updated_at, family) "
            "VALUES ('mt-old', '2026-01-01T00:00:00.000000+00:00', "
            "'2026-01-01T00:00:00.000000+00:00', 'Lovelace')"
        )
        conn.commit()
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
        conn.close()
        yield str(file)
    else:
        import psycopg

        url = request.getfixturevalue("pg_url")
        upgrade(url.replace("postgresql://", "postgresql+psycopg://", 1), "0001")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO patients (id, created_at, updated_at, family) "
                "VALUES ('mt-old', now(), now(), 'Lovelace')"
            )
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            assert row is not None and row[0] == "0001"
            missing = conn.execute("SELECT to_regclass('alerts')").fetchone()
            assert missing is not None and missing[0] is None
        yield url


def test_a_store_from_before_the_alerts_is_upgraded_on_open(old_store_url: str) -> None:
    store = open_store(old_store_url, actor="test")
    try:
        assert store._query("SELECT version_num FROM alembic_version")[0][0] == HEAD
        assert store.patient("mt-old").family == "Lovelace"
        [alert_id] = store.raise_alerts([fire(patient="mt-old")], now=T0)
        assert store.alert(alert_id).patient_id == "mt-old"
        store.save_monitor_states([("news2", "mt-old", {"n": 1})])
        assert store.load_monitor_state("news2", "mt-old") == {"n": 1}
    finally:
        store.close()


# -- monitor state ----------------------------------------------------------------------------


def test_monitor_state_round_trip(store: SqlStore) -> None:
    assert store.load_monitor_state("news2", "mt-a") is None
    state: dict[str, Any] = {
        "version": "1",
        "watermark": 1_700_000_000.25,
        "state": {"window": [1.5, None, 3.0], "n": 3, "label": "x", "nested": {"a": [1, 2]}},
    }
    store.save_monitor_states([("news2", "mt-a", state), ("rhr", "mt-a", {"mean": 61.5})])
    assert store.load_monitor_state("news2", "mt-a") == state
    assert store.load_monitor_state("rhr", "mt-a") == {"mean": 61.5}
    assert store.load_monitor_state("news2", "mt-b") is None
    store.save_monitor_states([("news2", "mt-a", {"version": "1", "state": {"n": 4}})])
    assert store.load_monitor_state("news2", "mt-a") == {"version": "1", "state": {"n": 4}}
    assert store._query("SELECT COUNT(*) FROM monitor_state")[0][0] == 2
    log = store.access_log(patient_id="mt-a")
    writes = [e for e in log if e.action == "write"]
    reads = [e for e in log if e.action == "read" and "monitor state" in (e.what or "")]
    assert [w.what for w in writes] == ["monitor state news2", "monitor state news2,rhr"]
    assert writes[1].count == 2
    assert len(reads) == 4 and all(e.actor == "test" for e in log)


def test_monitor_states_load_in_bulk_and_each_read_is_logged(store: SqlStore) -> None:
    store.save_monitor_states([("rhr", f"mt-{i}", {"n": i}) for i in range(3)])
    found = store.load_monitor_states("rhr", ["mt-0", "mt-1", "mt-2", "mt-none", "mt-0"])
    assert found == {"mt-0": {"n": 0}, "mt-1": {"n": 1}, "mt-2": {"n": 2}}
    assert store.load_monitor_states("news2", ["mt-0"]) == {}
    for pid, count in (("mt-1", 1), ("mt-none", 0)):
        reads = [e for e in store.access_log(patient_id=pid) if e.action == "read"]
        assert reads[0].what == "monitor state rhr" and reads[0].count == count


def test_monitor_state_save_is_atomic(store: SqlStore) -> None:
    store.save_monitor_states([("news2", "mt-a", {"n": 1})])
    with pytest.raises(TypeError):
        store.save_monitor_states([("news2", "mt-a", {"n": 2}), ("rhr", "mt-a", {"bad": object()})])
    assert store.load_monitor_state("news2", "mt-a") == {"n": 1}
    assert store.load_monitor_state("rhr", "mt-a") is None


# -- raising: de-duplication, worsening, idempotence ----------------------------------------------


def test_a_repeat_is_counted_on_the_open_alert(store: SqlStore) -> None:
    [first] = store.raise_alerts([fire(refs=("Observation/1",))], now=T0)
    assert store.raise_alerts(
        [fire(t_s=60, refs=("Observation/2",), message="NEWS2 6")], now=minutes(1)
    ) == [first]
    alerts = store.alerts(patient_id="mt-a")
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.id, alert.status, alert.count, alert.severity) == (first, "open", 2, "medium")
    assert alert.first_at == datetime.fromtimestamp(E0, UTC)
    assert alert.last_at == datetime.fromtimestamp(E0 + 60, UTC)
    assert alert.created_at == T0 and alert.updated_at == minutes(1)
    assert alert.message == "NEWS2 6"  # the newest numbers at the same severity
    assert [r.source_id for r in alert.evidence] == ["Observation/1", "Observation/2"]
    assert alert.evidence_total == 2
    assert events(store, first) == ["opened", "repeated"]
    # another patient, or another key, is another alert
    other = store.raise_alerts([fire(patient="mt-b"), fire(key="news2:single")], now=minutes(2))
    assert len(other) == 2 and first not in other


def test_a_lower_severity_repeat_does_not_downgrade(store: SqlStore) -> None:
    [alert_id] = store.raise_alerts([fire("high")], now=T0)
    store.raise_alerts([fire("low", t_s=60, refs=("Observation/2",))], now=minutes(1))
    alert = store.alert(alert_id)
    assert (alert.severity, alert.count, alert.message) == ("high", 2, "NEWS2 high")
    assert events(store, alert_id) == ["opened", "repeated"]


def test_worsening_updates_the_row_and_moves_the_responder(store: SqlStore) -> None:
    [alert_id] = store.raise_alerts([fire("low-medium")], now=T0)
    assert store.alert(alert_id).escalation_level == 1
    store.raise_alerts([fire("high", t_s=120, refs=("Observation/2",))], now=minutes(2))
    alert = store.alert(alert_id)
    assert (alert.severity, alert.count, alert.status) == ("high", 2, "open")
    assert alert.escalation_level == 3 and alert.responder == DEFAULT_LADDER[3]
    assert alert.detail == {"score": 7} and alert.message == "NEWS2 high"
    trail = store.alert_events(alert_id)
    assert [e.event for e in trail] == ["opened", "worsened", "escalated"]
    assert trail[1].detail["from"] == "low-medium" and trail[1].detail["to"] == "high"
    assert trail[2].detail["to"] == 3 and trail[2].detail["reason"] == "worsened"
    assert len(store.alerts()) == 1


def test_worsening_reopens_an_acknowledged_alert(store: SqlStore) -> None:
    [alert_id] = store.raise_alerts([fire("medium")], now=T0)
    store.acknowledge_alert(alert_id, note="seen", now=minutes(5))
    store.raise_alerts([fire("high", t_s=600, refs=("Observation/9",))], now=minutes(10))
    alert = store.alert(alert_id)
    assert alert.status == "open" and alert.severity == "high"
    assert alert.opened_at == minutes(10)
    assert events(store, alert_id) == [
        "opened",
        "acknowledged",
        "worsened",
        "escalated",
        "reopened",
    ]


def test_raising_the_same_alert_twice_changes_nothing(store: SqlStore) -> None:
    alert = fire("medium", refs=("Observation/1", "Observation/2"))
    first = store.raise_alerts([alert], now=T0)
    before = (store.alerts(), store.alert_events(first[0]))
    assert store.raise_alerts([alert], now=minutes(3)) == []
    assert store.raise_alerts([alert, alert], now=minutes(4)) == []
    assert (store.alerts(), store.alert_events(first[0])) == before
    # the same firing after resolution is not a new alert either, inside or outside the window
    store.resolve_alert(first[0], now=minutes(5))
    assert store.raise_alerts([alert], now=minutes(6)) == []
    assert store.raise_alerts([alert], now=minutes(600)) == []
    assert len(store.alerts()) == 1


def test_a_batch_is_atomic(store: SqlStore) -> None:
    good = fire("medium")
    bad = Alert("mt-a", "news2", "1", "other", "low", E0, "x", "s", (), detail={"bad": object()})
    with pytest.raises(TypeError):
        store.raise_alerts([good, bad], now=T0)
    assert store.alerts() == []
    assert store._query("SELECT COUNT(*) FROM alert_events")[0][0] == 0


def test_evidence_keeps_the_first_and_the_latest(store: SqlStore) -> None:
    store.alert_policy = AlertPolicy(evidence_keep=3)
    for i in range(10):
        store.raise_alerts([fire(t_s=60 * i, refs=(f"Observation/{i}",))], now=minutes(i))
    [alert] = store.alerts()
    assert alert.count == 10 and alert.evidence_total == 10
    assert [r.source_id for r in alert.evidence] == [f"Observation/{i}" for i in (0, 1, 2, 7, 8, 9)]
    # a firing that repeats held evidence at an older time is the same firing: unchanged
    assert store.raise_alerts([fire(t_s=60 * 8, refs=("Observation/8",))], now=minutes(11)) == []


# -- suppression ------------------------------------------------------------------------------


def test_suppression_after_resolution_edges(store: SqlStore) -> None:
    window = DEFAULT_POLICY.severities["medium"].suppress_min
    [alert_id] = store.raise_alerts([fire("medium")], now=T0)
    store.resolve_alert(alert_id, reason="treated", now=minutes(10))
    resolved = minutes(10)
    # just inside the window: counted on the resolved alert, which stays resolved
    inside = resolved + timedelta(minutes=window) - timedelta(seconds=1)
    assert store.raise_alerts([fire("medium", t_s=1, refs=("O/2",))], now=inside) == [alert_id]
    # a lower severity inside the window, too
    assert store.raise_alerts([fire("low", t_s=2, refs=("O/3",))], now=inside) == [alert_id]
    alert = store.alert(alert_id)
    assert (alert.status, alert.count) == ("resolved", 3)
    trail = store.alert_events(alert_id)
    assert [e.event for e in trail] == ["opened", "resolved", "repeated", "repeated"]
    assert trail[2].detail["suppressed"] is True
    # just outside (exactly at the end of the window): a new alert
    outside = resolved + timedelta(minutes=window)
    [new_id] = store.raise_alerts([fire("medium", t_s=3, refs=("O/4",))], now=outside)
    assert new_id != alert_id
    assert store.alert(new_id).status == "open" and store.alert(new_id).count == 1
    assert store.alert(alert_id).count == 3


def test_a_worse_firing_inside_the_window_opens_a_new_alert(store: SqlStore) -> None:
    [alert_id] = store.raise_alerts([fire("medium")], now=T0)
    store.resolve_alert(alert_id, now=minutes(1))
    [new_id] = store.raise_alerts([fire("high", t_s=60, refs=("O/2",))], now=minutes(2))
    assert new_id != alert_id
    assert store.alert(new_id).severity == "high" and store.alert(alert_id).count == 1


def test_an_acknowledged_alert_still_firing_after_the_window_reopens(store: SqlStore) -> None:
    window = DEFAULT_POLICY.severities["low"].suppress_min
    [alert_id] = store.raise_alerts([fire("low")], now=T0)
    store.acknowledge_alert(alert_id, now=minutes(1))
    inside = minutes(1 + window) - timedelta(seconds=1)
    assert store.raise_alerts([fire("low", t_s=60, refs=("O/2",))], now=inside) == [alert_id]
    assert store.alert(alert_id).status == "acknowledged"
    at_edge = minutes(1 + window)
    assert store.raise_alerts([fire("low", t_s=120, refs=("O/3",))], now=at_edge) == [alert_id]
    alert = store.alert(alert_id)
    assert (alert.status, alert.count, alert.opened_at) == ("open", 3, at_edge)
    assert events(store, alert_id) == [
        "opened",
        "acknowledged",
        "repeated",
        "repeated",
        "reopened",
    ]
    assert len(store.alerts()) == 1


# -- escalation -------------------------------------------------------------------------------


def test_escalation_timing_edges(store: SqlStore) -> None:
    after = DEFAULT_POLICY.severities["medium"].escalate_after_min
    assert after is not None
    [alert_id] = store.raise_alerts([fire("medium")], now=T0)
    assert store.alert(alert_id).escalation_level == 2
    assert store.escalate_alerts(minutes(after) - timedelta(seconds=1)) == []
    assert store.escalate_alerts(minutes(after)) == [alert_id]
    alert = store.alert(alert_id)
    assert alert.escalation_level == 3 and alert.escalated_at == minutes(after)
    assert alert.responder == "critical care outreach / rapid response team"
    # the top of the ladder: nothing more
    assert store.escalate_alerts(minutes(10 * after)) == []
    trail = store.alert_events(alert_id)
    assert [e.event for e in trail] == ["opened", "escalated"]
    assert trail[1].detail == {
        "from": 2,
        "to": 3,
        "responder": DEFAULT_LADDER[3],
        "due_at": minutes(after).isoformat(),
    }


def test_a_late_sweep_climbs_every_step_that_fell_due(store: SqlStore) -> None:
    after = DEFAULT_POLICY.severities["low"].escalate_after_min
    assert after is not None
    [alert_id] = store.raise_alerts([fire("low")], now=T0)
    assert store.alert(alert_id).responder == "registered nurse"
    assert store.escalate_alerts(minutes(2 * after) + timedelta(seconds=1)) == [alert_id]
    assert store.alert(alert_id).escalation_level == 2
    trail = store.alert_events(alert_id)
    assert [(e.detail["from"], e.detail["to"]) for e in trail[1:]] == [(0, 1), (1, 2)]
    # step 3 is due at 3 * after from the opening, not from the late sweep
    assert store.escalate_alerts(minutes(3 * after) - timedelta(seconds=1)) == []
    assert store.escalate_alerts(minutes(3 * after)) == [alert_id]
    assert store.alert(alert_id).escalation_level == 3


def test_acknowledged_artefact_and_info_alerts_do_not_escalate(store: SqlStore) -> None:
    acked, artefact, info = (
        store.raise_alerts([fire("medium", key="k1")], now=T0)[0],
        store.raise_alerts([fire("info", key="k2", category="artefact")], now=T0)[0],
        store.raise_alerts([fire("info", key="k3", category="data-quality")], now=T0)[0],
    )
    store.acknowledge_alert(acked, now=minutes(1))
    assert store.escalate_alerts(minutes(10_000)) == []
    assert store.alert(artefact).escalation_level is None
    assert store.alert(info).responder is None
    assert store.alert(acked).escalation_level == 2


def test_a_configured_ladder(store: SqlStore) -> None:
    store.alert_policy = AlertPolicy.from_dict(
        {
            "ladder": ["ward nurse", "charge nurse", "resident", "ICU outreach", "consultant"],
            "severities": {"high": {"escalate_after_min": 5, "first_level": 3}},
        }
    )
    [alert_id] = store.raise_alerts([fire("high")], now=T0)
    assert store.alert(alert_id).responder == "ICU outreach"
    assert store.escalate_alerts(minutes(5)) == [alert_id]
    assert store.alert(alert_id).responder == "consultant"
    with pytest.raises(ValueError, match="unknown severity"):
        AlertPolicy.from_dict({"severities": {"critical": {}}})
    with pytest.raises(ValueError, match="ladder has 2 steps"):
        AlertPolicy.from_dict({"ladder": ["a", "b"]})


# -- people's transitions ---------------------------------------------------------------------


def test_ack_and_resolve_transitions(store: SqlStore) -> None:
    [alert_id] = store.raise_alerts([fire("medium")], now=T0)
    acked = store.acknowledge_alert(alert_id, note="on my way", now=minutes(3))
    assert (acked.status, acked.acknowledged_by, acked.acknowledged_at) == (
        "acknowledged",
        "test",
        minutes(3),
    )
    with pytest.raises(AlertStateError, match="already acknowledged by test"):
        store.acknowledge_alert(alert_id)
    resolved = store.resolve_alert(alert_id, reason="fluids given", now=minutes(30))
    assert (resolved.status, resolved.resolved_by, resolved.resolved_reason) == (
        "resolved",
        "test",
        "fluids given",
    )
    with pytest.raises(AlertStateError, match="resolved alert cannot be acknowledged"):
        store.acknowledge_alert(alert_id)
    with pytest.raises(AlertStateError, match="already resolved"):
        store.resolve_alert(alert_id)
    trail = store.alert_events(alert_id)
    assert [(e.event, e.actor) for e in trail] == [
        ("opened", "test"),
        ("acknowledged", "test"),
        ("resolved", "test"),
    ]
    assert trail[1].detail == {"note": "on my way"} and trail[2].detail == {
        "reason": "fluids given"
    }
    assert trail[1].at == minutes(3)
    # an open alert can be resolved directly
    [other] = store.raise_alerts([fire("low", key="other")], now=T0)
    assert store.resolve_alert(other).status == "resolved"
    for call in (store.alert, store.acknowledge_alert, store.resolve_alert, store.alert_events):
        with pytest.raises(AlertNotFoundError, match="no alert with id 999"):
            call(999)


def note(*, t_s: float = 0.0, clears: bool = False, message: str = "building") -> Alert:
    return Alert(
        patient_id="mt-a",
        monitor="rhr",
        monitor_version="1",
        rule="rhr.baseline-pending",
        severity="info",
        epoch_s=E0 + t_s,
        message=message,
        source="Mishra 2020",
        evidence=(FactRef("monitor-test", f"Observation/{t_s:g}"),),
        category="data-quality",
        clears=clears,
    )


def test_a_monitors_clear_resolves_its_live_alert(store: SqlStore) -> None:
    # nothing to clear: nothing happens
    assert store.raise_alerts([note(clears=True)], now=T0) == []
    assert store.alerts() == []
    [note_id] = store.raise_alerts([note()], now=T0)
    # a clear older than the alert's last firing: the condition came back after it
    store.raise_alerts([note(t_s=600)], now=minutes(10))
    assert store.raise_alerts([note(t_s=300, clears=True)], now=minutes(11)) == []
    assert store.alert(note_id).status == "open"
    built = "baseline built from 28 days"
    clear = note(t_s=86400, clears=True, message=built)
    assert store.raise_alerts([clear], now=minutes(20)) == [note_id]
    done = store.alert(note_id)
    assert (done.status, done.resolved_by, done.resolved_reason, done.resolved_at) == (
        "resolved",
        "monitor rhr",
        built,
        minutes(20),
    )
    assert done.count == 2 and done.message == "building"  # the clear is not a firing
    trail = store.alert_events(note_id)
    assert [e.event for e in trail] == ["opened", "repeated", "resolved"]
    assert trail[-1].detail == {
        "by": "monitor rhr",
        "reason": built,
        "at": datetime.fromtimestamp(E0 + 86400, UTC).isoformat(),
        "rule": "rhr.baseline-pending",
    }
    # the same clear again (a replay) changes nothing; nothing new was opened
    before = (store.alerts(), store.alert_events(note_id))
    assert store.raise_alerts([clear], now=minutes(30)) == []
    assert (store.alerts(), store.alert_events(note_id)) == before
    # an acknowledged alert is cleared as well; the access log counts the clears
    [other] = store.raise_alerts([replace(note(), patient_id="mt-b")], now=T0)
    store.acknowledge_alert(other, now=minutes(1))
    assert store.raise_alerts([replace(clear, patient_id="mt-b")], now=minutes(2)) == [other]
    assert store.alert(other).status == "resolved"
    logged = store._query(
        "SELECT COUNT(*) FROM access_log WHERE patient_id = 'mt-b' AND what = 'alerts raised'"
    )
    assert logged[0][0] == 2


def test_listing_filters_and_access_log(store: SqlStore) -> None:
    a = store.raise_alerts([fire("medium", patient="mt-a")], now=T0)[0]
    b = store.raise_alerts([fire("low", patient="mt-b")], now=T0)[0]
    store.resolve_alert(b)
    assert [x.id for x in store.alerts()] == [b, a]
    assert [x.id for x in store.alerts(status="open")] == [a]
    assert [x.id for x in store.alerts(status=("open", "acknowledged"))] == [a]
    assert [x.id for x in store.alerts(patient_id="mt-b")] == [b]
    assert store.alerts(patient_id="mt-c") == []
    assert [x.id for x in store.alerts(limit=1)] == [b]
    with pytest.raises(AlertError, match="unknown alert status"):
        store.alerts(status="closed")
    log_a = store.access_log(patient_id="mt-a")
    log_b = store.access_log(patient_id="mt-b")
    log_c = store.access_log(patient_id="mt-c")
    assert all(e.actor == "test" for e in log_a + log_b + log_c)
    assert [(e.action, e.what) for e in reversed(log_a)] == [
        ("write", "alerts raised"),
        ("list", "alerts"),
        ("list", "alerts status=open"),
        ("list", "alerts status=open,acknowledged"),
    ]
    assert ("write", f"alert {b} resolved") in [(e.action, e.what) for e in log_b]
    assert [(e.action, e.count) for e in log_c] == [("list", 0)]
    store.alert(a)
    store.alert_events(a)
    store.escalate_alerts(minutes(10_000))
    whats = [e.what for e in store.access_log(patient_id="mt-a", limit=3)]
    assert whats == ["alerts escalated", f"alert {a} events", f"alert {a}"]


def test_alerts_of_a_merged_patient_are_listed_with_the_survivor(store: SqlStore) -> None:
    from medtwin.record.facts import Demographics, Identifier

    system = "urn:test:mrn"
    store.append_facts(
        [
            Demographics(
                source="t",
                source_id=f"Patient/{mrn}",
                subject=Identifier(system, mrn),
                identifiers=(Identifier(system, mrn),),
                family=mrn,
            )
            for mrn in ("M1", "M2")
        ],
        source="t",
    )
    keep, merge = store.resolve_patient("M1"), store.resolve_patient("M2")
    store.raise_alerts([fire(patient=keep, key="k1"), fire(patient=merge, key="k2")], now=T0)
    store.link(keep, merge)
    assert {a.patient_id for a in store.alerts(patient_id=keep)} == {keep, merge}


# -- the hub with the store as state and sink ----------------------------------------------------


class RisingHeartRate(Monitor):
    """Fires when heart rate exceeds the highest value seen so far by ``margin_per_min``."""

    name = "test-rising-hr"
    version = "1"
    source = "a test rule"
    codes: ClassVar[frozenset[str]] = frozenset({"8867-4"})
    defaults: ClassVar[Mapping[str, Any]] = {"margin_per_min": 20.0}

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        self.peak_per_min: float | None = None
        self.n = 0

    def learn_one(self, reading: Reading) -> list[Alert]:
        self.n += 1
        out: list[Alert] = []
        peak = self.peak_per_min
        if peak is not None and reading.value > peak + self.params["margin_per_min"]:
            severity = "high" if reading.value > 150 else "medium"
            out.append(
                self.alert(
                    "rising",
                    severity,
                    reading.epoch_s,
                    f"HR {reading.value:g}/min above peak {peak:g}",
                    [reading.ref],
                    detail={"peak_per_min": peak, "n": self.n},
                )
            )
        self.peak_per_min = reading.value if peak is None else max(peak, reading.value)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"peak_per_min": self.peak_per_min, "n": self.n}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.peak_per_min = state["peak_per_min"]
        self.n = int(state["n"])


def hr(t_s: float, value: float, pid: str = "mt-a") -> Reading:
    return Reading(pid, "8867-4", E0 + t_s, value, "/min", FactRef("watch", f"HR/{pid}/{t_s:g}"))


def test_hub_runs_on_the_store_and_resumes_after_a_restart(store: SqlStore) -> None:
    hub = MonitorHub([RisingHeartRate], state=store, sink=store)
    fired = hub.feed([hr(0, 70), hr(60, 72), hr(120, 95), hr(0, 60, "mt-b")])
    assert [(a.severity, a.epoch_s) for a in fired] == [("medium", E0 + 120)]
    saved = store.load_monitor_state("test-rising-hr", "mt-a")
    assert saved == {
        "version": "1",
        "watermark": E0 + 120,
        "state": {"peak_per_min": 95.0, "n": 3},
    }
    [alert] = store.alerts()
    assert alert.patient_id == "mt-a" and alert.evidence == (FactRef("watch", "HR/mt-a/120"),)

    # a new process: a new hub over the same store picks up the peak and the watermark
    restarted = MonitorHub([RisingHeartRate], state=store, sink=store)
    fired = restarted.feed([hr(90, 200), hr(180, 120), hr(240, 160)])
    assert restarted.late == 1  # the reading at 90 s is behind the saved watermark
    assert [(a.severity, a.epoch_s) for a in fired] == [("medium", E0 + 180), ("high", E0 + 240)]
    mon = restarted.monitor("test-rising-hr", "mt-a")
    assert isinstance(mon, RisingHeartRate) and mon.n == 5 and mon.peak_per_min == 160.0
    [alert] = store.alerts()  # one alert: repeated, then worsened
    assert (alert.count, alert.severity, alert.evidence_total) == (3, "high", 3)
    assert events(store, alert.id) == ["opened", "repeated", "worsened", "escalated"]
    # replaying the same readings through a fresh hub changes nothing
    again = MonitorHub([RisingHeartRate], state=store, sink=store)
    assert again.feed([hr(180, 120), hr(240, 160)]) == []
    assert store.alerts()[0].count == 3


def test_a_restarted_hub_loads_every_patients_state_in_one_query(store: SqlStore) -> None:
    first = MonitorHub([RisingHeartRate], state=store)
    first.feed([hr(0, 70, f"mt-{i}") for i in range(4)])
    restarted = MonitorHub([RisingHeartRate], state=store)
    calls: list[str] = []
    single = store.load_monitor_state
    store.load_monitor_state = lambda m, p: calls.append(p) or single(m, p)  # type: ignore[method-assign]
    try:
        fired = restarted.feed([hr(60, 95, f"mt-{i}") for i in range(4)])
    finally:
        del store.load_monitor_state
    assert calls == []  # no per-patient look-up: the four states came in one bulk load
    assert sorted(a.patient_id for a in fired) == [f"mt-{i}" for i in range(4)]  # peaks resumed
    mon = restarted.monitor("test-rising-hr", "mt-2")
    assert isinstance(mon, RisingHeartRate) and mon.n == 2


def test_the_default_policy_is_the_documented_one() -> None:
    """docs/models/alerts.md tables and DEFAULT_POLICY must agree (a changed default needs the doc)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "models" / "alerts.md").read_text()
    rows = [line.split("|")[1:-1] for line in doc.splitlines() if line.startswith("| `")]
    documented = {}
    for cells in rows:
        name = cells[0].strip().strip("`")
        if name in DEFAULT_POLICY.severities:
            first = cells[1].split()[0]
            after = cells[2].strip()
            documented[name] = (
                None if first == "none" else int(first),
                None if after == "never" else float(after),
                float(cells[3]),
            )
    assert documented == {
        name: (s.first_level, s.escalate_after_min, s.suppress_min)
        for name, s in DEFAULT_POLICY.severities.items()
    }
    ladder = [
        line.split("|")[2].strip()
        for line in doc.splitlines()
        if line[:4] in {"| 0 ", "| 1 ", "| 2 ", "| 3 "}
    ]
    assert tuple(ladder) == DEFAULT_LADDER
