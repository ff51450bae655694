"""The live feed against real Mosquitto brokers: delivery, quarantine, restarts of both ends."""

from __future__ import annotations

import importlib.util
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import missing
from medtwin.ingest.mqtt import (
    DEVICE_USER_SYSTEM,
    LiveIngest,
    Message,
    MqttListener,
    decode_message,
    topic_prefix,
)
from medtwin.monitor.hub import MonitorHub
from medtwin.record.facts import Demographics, Identifier
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

_spec = importlib.util.spec_from_file_location(
    "live_proc", Path(__file__).with_name("live_proc.py")
)
assert _spec is not None and _spec.loader is not None
live_proc = importlib.util.module_from_spec(_spec)
sys.modules["live_proc"] = live_proc
_spec.loader.exec_module(live_proc)

MACHINE_BROKER = "mqtt://127.0.0.1:1883"
OMH_TYPES = (
    "heart-rate",
    "blood-pressure",
    "step-count",
    "blood-glucose",
    "oxygen-saturation",
    "body-temperature",
    "respiratory-rate",
)
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# helpers


def hr_point(point_id: str, value: float, when: datetime, user: str | None = None) -> bytes:
    header: dict[str, Any] = {
        "id": point_id,
        "creation_date_time": when.isoformat(),
        "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"},
        "acquisition_provenance": {"source_name": "Test Watch"},
    }
    if user is not None:
        header["user_id"] = user
    body = {
        "heart_rate": {"value": value, "unit": "beats/min"},
        "effective_time_frame": {"date_time": when.isoformat()},
    }
    return orjson.dumps({"header": header, "body": body})


def fhir_hr(obs_id: str, value: float, when: datetime, unit: str = "/min") -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Observation",
            "id": obs_id,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "effectiveDateTime": when.isoformat(),
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        }
    )


def make_patient(store: SqlStore, user: str, *more: Identifier) -> str:
    ident = Identifier(DEVICE_USER_SYSTEM, user)
    store.append_facts(
        [
            Demographics(
                source="registry",
                source_id=f"Patient/{user}",
                subject=ident,
                identifiers=(ident, *more),
            )
        ],
        source="registry",
    )
    return store.resolve_patient(f"{DEVICE_USER_SYSTEM}|{user}")


def reachable(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    return bool(live_proc.wait_port(port, timeout_s=1.0))


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Publisher:
    """A QoS 1 publisher that retries until the broker confirms (duplicates are allowed)."""

    def __init__(self, url: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        port = int(url.rsplit(":", 1)[1])
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="")
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        self.resent = 0

    def send(self, topic: str, payload: bytes) -> None:
        for _ in range(120):
            info = self.client.publish(topic, payload, qos=1)
            try:
                info.wait_for_publish(timeout=2)
                if info.is_published():
                    return
            except (RuntimeError, ValueError):
                time.sleep(0.25)
            self.resent += 1
        raise AssertionError(f"could not publish to {topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def machine_broker() -> str:
    if not reachable(MACHINE_BROKER):
        missing(f"Mosquitto not reachable at {MACHINE_BROKER}")
    return MACHINE_BROKER


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Any]:
    if not live_proc.MOSQUITTO.exists():
        missing(f"mosquitto not installed at {live_proc.MOSQUITTO} (apt-get install mosquitto)")
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = live_proc.Broker(folder)
    broker.start()
    yield broker
    broker.stop()


def run_listener(listener: MqttListener) -> threading.Thread:
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    assert listener.connected.wait(10), "listener did not connect"
    return thread


# --------------------------------------------------------------------------------------------
# decoding one message (no broker)


def test_fhir_patient_from_identifier_or_topic() -> None:
    by_topic = decode_message(Message("devices/w1/hr", fhir_hr("o1", 70, T0), mid=1))
    [fact] = [f for b in by_topic for u in b.units for f in u.facts]
    assert fact.subject == Identifier(DEVICE_USER_SYSTEM, "w1")
    assert fact.source == "fhir" and fact.source_id == "Observation/o1"
    named = orjson.loads(fhir_hr("o2", 70, T0))
    named["subject"] = {"identifier": {"system": "urn:hospital:mrn", "value": "MRN-9"}}
    [batch] = decode_message(Message("other/topic", orjson.dumps(named), mid=2))
    assert batch.units[0].facts[0].subject == Identifier("urn:hospital:mrn", "MRN-9")
    # the topic and the payload disagree: refused, not guessed
    [batch] = decode_message(Message("elsewhere", fhir_hr("o4", 70, T0), mid=9))
    assert batch.units == [] and batch.quarantine[0].reason.startswith("no patient")
    [batch] = decode_message(Message("devices/w2/hr", orjson.dumps(named), mid=3))
    assert batch.units == []
    assert "topic names patient 'w2'" in batch.quarantine[0].reason
    assert batch.quarantine[0].field == "Observation.subject"


def test_future_stamp_and_unknown_unit_are_quarantined() -> None:
    now = T0.timestamp()
    ahead = decode_message(
        Message("devices/w1/hr", fhir_hr("o1", 70, T0 + timedelta(minutes=6)), mid=4),
        now_epoch_s=now,
    )
    [item] = [q for b in ahead for q in b.quarantine]
    assert "360 s ahead of the listener's clock (tolerance 300 s)" in item.reason
    assert (item.file, item.location, item.resource_id) == ("mqtt:devices/w1/hr", "message 4", "o1")
    within = decode_message(
        Message("devices/w1/hr", fhir_hr("o1", 70, T0 + timedelta(minutes=4)), mid=5),
        now_epoch_s=now,
    )
    assert [len(b.units) for b in within] == [1]
    [batch] = decode_message(Message("devices/w1/hr", fhir_hr("o3", 7, T0, unit="furlong"), mid=6))
    assert batch.units == [] and "furlong" in batch.quarantine[0].reason


def test_open_mhealth_user_from_topic_is_kept_in_the_document() -> None:
    [batch] = decode_message(Message("devices/w9/hr", hr_point("p1", 64, T0), mid=7))
    [unit] = batch.units
    assert unit.facts[0].subject == Identifier(DEVICE_USER_SYSTEM, "w9")
    assert orjson.loads(unit.content)["header"]["user_id"] == "w9"  # a retry finds the patient
    [batch] = decode_message(Message("devices/w8/hr", hr_point("p2", 64, T0, user="w9"), mid=8))
    assert batch.units == [] and batch.quarantine[0].field == "$.header.user_id"


# --------------------------------------------------------------------------------------------
# the machine's broker: the normal path, bad messages, repeats


def test_live_path_stores_good_and_quarantines_bad(
    machine_broker: str, store: SqlStore, shared: Path
) -> None:
    omh = shared / "wearables" / "openmhealth" / "test-data" / "omh"
    phd = orjson.loads((shared / "wearables" / "hl7-phd" / "glucose-observation.json").read_bytes())
    fhir_patient = Identifier("urn:medtwin:fhir:fhir:Patient", "patientExample-1")
    pid = make_patient(store, "w1", fhir_patient)
    prefix = f"t-{uuid.uuid4().hex[:10]}/devices"
    hub = MonitorHub([live_proc.CountingMonitor])
    live = LiveIngest(store, downstream=hub, prefix=prefix)
    alerts: list[Any] = []
    live.on_alert = alerts.append
    listener = MqttListener(
        machine_broker, f"{prefix}/#", live, client_id=f"medtwin-test-{uuid.uuid4().hex[:8]}"
    )
    thread = run_listener(listener)
    publisher = Publisher(machine_broker)
    good = [
        hr_point(f"hr-{i}", 60 + i * 4, T0 + timedelta(minutes=i)) for i in range(20)
    ]  # 124/min and up fire the test monitor
    bad: list[tuple[bytes, str | None]] = [(b"{this is not json", None)]
    for name in OMH_TYPES:
        for folder in sorted((omh / name).iterdir()):
            for path in sorted((folder / "shouldFail").glob("*.json")):
                point = {
                    "header": {
                        "id": f"{name}/{folder.name}/{path.stem}",
                        "creation_date_time": "2024-03-01T08:00:00Z",
                        "schema_id": {"namespace": "omh", "name": name, "version": folder.name},
                    },
                    "body": orjson.loads(path.read_bytes()),
                }
                bad.append((orjson.dumps(point), "$.body"))
    future = datetime.now(UTC) + timedelta(hours=1)
    bad.append((fhir_hr("ahead", 80, future), "effective time"))
    bad.append((fhir_hr("furlongs", 80, T0, unit="furlong"), None))
    try:
        for payload in good[:10]:
            publisher.send(f"{prefix}/w1/watch", payload)
        for payload, _ in bad:
            publisher.send(f"{prefix}/w1/watch", payload)
        publisher.send(f"{prefix}/nobody/watch", hr_point("stranger", 70, T0))
        phd_payload = orjson.dumps(phd)
        publisher.send(f"{prefix}/patientExample-1/meter", phd_payload)
        for payload in good[10:]:  # the loop survived every bad message
            publisher.send(f"{prefix}/w1/watch", payload)
        total = len(good) + len(bad) + 2
        wait_until(lambda: live.report.messages >= total, 30, f"{total} messages")
        # the same messages again (a device that re-sends): nothing changes
        for payload in good:
            publisher.send(f"{prefix}/w1/watch", payload)
        publisher.send(f"{prefix}/patientExample-1/meter", phd_payload)
        wait_until(lambda: live.report.messages >= total + 21, 30, "the repeats")
    finally:
        publisher.close()
        listener.stop()
        thread.join(10)
    assert not thread.is_alive()
    heart = store.timeline(pid, codes=["8867-4"])
    assert sorted(s.fact.source_id for s in heart) == sorted(f"DataPoint/hr-{i}" for i in range(20))
    assert all(s.version == 1 for s in heart)
    [glucose] = [
        s for s in store.timeline(pid) if s.fact.source_id == "Observation/glucose-observation"
    ]
    assert glucose.fact.value_num == 99.0  # type: ignore[attr-defined]
    entries = store.quarantine()
    assert len(entries) == len(bad) + 1
    assert all(
        e.item.file == f"mqtt:{prefix}/w1/watch" for e in entries if "nobody" not in e.item.reason
    )
    assert all(e.item.location and e.item.location.startswith("message ") for e in entries)
    schema_failures = [e for e in entries if e.item.field and e.item.field.startswith("$.body")]
    assert len(schema_failures) == sum(1 for _, f in bad if f == "$.body") == 73
    [unknown] = [e for e in entries if e.item.field == "patient"]
    assert (
        "unknown device user 'nobody'" in unknown.item.reason
        and "medtwin link" in unknown.item.reason
    )
    assert live.report.unchanged >= 21 and live.report.facts_changed == 21
    learned = hub.monitor("test-count", pid).state_dict()["learned"]
    assert sorted(learned) == sorted(f"DataPoint/hr-{i}" for i in range(20))  # each once
    assert [a.evidence[0].source_id for a in alerts] == [f"DataPoint/hr-{i}" for i in range(16, 20)]


# --------------------------------------------------------------------------------------------
# a private broker: restarts


def publish_stream(
    publisher: Publisher, topic: str, count: int, rate_per_s: float, start: int = 0
) -> threading.Thread:
    def run() -> None:
        for i in range(start, start + count):
            value = 130 if i % 50 == 7 else 60 + i % 40
            publisher.send(topic, hr_point(f"s-{i}", value, T0 + timedelta(seconds=i)))
            time.sleep(1 / rate_per_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def fact_rows(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as connection:
        row = connection.execute(
            "SELECT count(*), count(DISTINCT source_id) FROM facts WHERE source_id LIKE 'DataPoint/s-%'"
        ).fetchone()
    return int(row[0]), int(row[1])


def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    own_broker: Any, tmp_path: Path
) -> None:
    db = tmp_path / "live.db"
    store = open_store(str(db))
    pid = make_patient(store, "w1")
    hub = MonitorHub([live_proc.CountingMonitor])
    live = LiveIngest(store, downstream=hub)
    listener = MqttListener(own_broker.url, "devices/#", live, client_id="listener-a")
    thread = run_listener(listener)
    publisher = Publisher(own_broker.url)
    n = 400
    stream = publish_stream(publisher, "devices/w1/watch", n, rate_per_s=200)
    try:
        wait_until(lambda: fact_rows(db)[1] >= 120, 30, "the first readings")
        own_broker.stop()  # mid-stream
        time.sleep(1.5)
        own_broker.start()
        stream.join(120)
        wait_until(lambda: fact_rows(db)[1] >= n, 60, f"all {n} readings")
        time.sleep(0.5)  # any late redelivery would show up now
    finally:
        publisher.close()
        listener.stop()
        thread.join(10)
    assert fact_rows(db) == (n, n)  # stored once each, no second version
    assert live.report.reconnects >= 1
    assert listener.session_present  # the restarted broker restored the listener's session
    learned = hub.monitor("test-count", pid).state_dict()["learned"]
    assert len(learned) == len(set(learned)) == n
    store.close()


def start_listener_proc(db: Path, broker: Any, state: Path, alerts: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(live_proc.__file__)),
            str(db),
            broker.url,
            "devices/#",
            "listener-proc",
            str(state),
            str(alerts),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.slow
def test_listener_killed_and_restarted_mid_stream(own_broker: Any, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    store = open_store(str(db))
    pid = make_patient(store, "w1")
    state, alerts = tmp_path / "state.json", tmp_path / "alerts.jsonl"
    proc = start_listener_proc(db, own_broker, state, alerts)
    publisher = Publisher(own_broker.url)
    n = 600
    stream = publish_stream(publisher, "devices/w1/watch", n, rate_per_s=300)
    try:
        wait_until(lambda: fact_rows(db)[1] >= 150, 30, "the first readings")
        proc.send_signal(signal.SIGKILL)  # a crash: unacknowledged messages come again
        proc.wait(10)
        time.sleep(0.5)
        proc = start_listener_proc(db, own_broker, state, alerts)
        wait_until(lambda: fact_rows(db)[1] >= 350, 30, "more readings")
        proc.send_signal(signal.SIGTERM)  # a clean stop: finish the batch, save the state
        assert proc.wait(15) == 0
        saved = orjson.loads(state.read_bytes())[f"test-count|{pid}"]["state"]["learned"]
        proc = start_listener_proc(db, own_broker, state, alerts)
        stream.join(120)
        wait_until(lambda: fact_rows(db)[1] >= n, 60, f"all {n} readings")
        time.sleep(0.5)
    finally:
        publisher.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert fact_rows(db) == (n, n)
    learned = orjson.loads(state.read_bytes())[f"test-count|{pid}"]["state"]["learned"]
    assert len(learned) == len(set(learned))  # no reading learned twice
    assert learned[: len(saved)] == saved  # the state survived the restart
    # A SIGKILL between the fact commit and the state save loses those readings for the
    # monitor (they are stored); at most one batch of the stream.
    assert len(learned) >= n - 150
    fired = [orjson.loads(line)["evidence"][0][1] for line in alerts.read_text().splitlines()]
    assert len(fired) == len(set(fired))
    assert set(fired) <= {f"DataPoint/s-{i}" for i in range(n) if i % 50 == 7}
    store.close()


def test_a_broker_that_is_not_there_is_said_once_and_retried(
    sqlite_store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    """No broker on the port: the listener said "listening" and nothing else, looking
    connected; it now warns once per outage, and keeps retrying until stopped."""
    import logging
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    live = LiveIngest(sqlite_store, downstream=MonitorHub([]), prefix="devices")
    listener = MqttListener(f"mqtt://127.0.0.1:{port}", "devices/#", live, reconnect_max_s=1)
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    with caplog.at_level(logging.WARNING, logger="medtwin.mqtt"):
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not caplog.records:
            time.sleep(0.1)
        time.sleep(2.5)  # more failed attempts: still one warning
        stop.set()
        thread.join(10)
    warnings = [
        r.getMessage() for r in caplog.records if "cannot reach the broker" in r.getMessage()
    ]
    assert warnings == [
        f"cannot reach the broker mqtt://127.0.0.1:{port}; retrying (every 1 s at most) until it answers"
    ]
    assert not listener.connected.is_set() and not thread.is_alive()


def test_topic_prefix_of_filters() -> None:
    assert topic_prefix("devices/#") == "devices"
    assert topic_prefix("devices/+/hr") == "devices"


def test_fast_validator_agrees_with_jsonschema_on_official_documents(shared: Path) -> None:
    """The compiled fast path never passes what jsonschema rejects (nor the reverse)."""
    from medtwin.ingest.openmhealth import _fast, _schemas

    omh = shared / "wearables" / "openmhealth" / "test-data" / "omh"
    checked = {"shouldPass": 0, "shouldFail": 0}
    for name in OMH_TYPES:
        for folder in sorted((omh / name).iterdir()):
            file = f"{name}-{folder.name}.json"
            slow = _schemas().validators[file]
            fast = _fast(file)
            assert fast is not None, file
            for verdict in checked:
                for path in sorted((folder / verdict).glob("*.json")):
                    body = orjson.loads(path.read_bytes())
                    try:
                        fast(body)
                        fast_ok = True
                    except Exception:
                        fast_ok = False
                    assert fast_ok == slow.is_valid(body) == (verdict == "shouldPass"), path
                    checked[verdict] += 1
    assert checked["shouldFail"] == 73 and checked["shouldPass"] > 50


def test_unknown_device_is_quarantined_then_retried_after_linking(sqlite_store: SqlStore) -> None:
    from medtwin.ingest import retry_quarantine

    live = LiveIngest(sqlite_store)
    named = orjson.loads(fhir_hr("f1", 70, T0))
    named["subject"] = {"identifier": {"system": "urn:hospital:mrn", "value": "MRN-5"}}
    report = live.handle(
        [
            Message("devices/ring-7/hr", hr_point("p1", 64, T0), mid=11),  # user from the topic
            Message("devices/MRN-5/hr", orjson.dumps(named), mid=12),
        ]
    )
    assert report.facts_changed == 0 and report.quarantined == 2
    reasons = sorted(e.item.reason.split(":")[0] for e in sqlite_store.quarantine())
    assert reasons == ["unknown device user 'ring-7'", "unknown patient 'MRN-5'"]
    pid = make_patient(sqlite_store, "ring-7", Identifier("urn:hospital:mrn", "MRN-5"))
    retried = retry_quarantine(sqlite_store)
    assert retried.counts.get("inserted") == 2 and sqlite_store.quarantine() == []
    assert {s.fact.source_id for s in sqlite_store.timeline(pid, codes=["8867-4"])} == {
        "DataPoint/p1",
        "Observation/f1",
    }
