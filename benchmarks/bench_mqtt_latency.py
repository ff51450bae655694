"""Live feed latency: 1,000 patients publishing 1 reading/s each through MQTT into medtwin.

Four processes on this machine, plus Mosquitto:

* **publisher**: 1,000 simulated patients, each publishing one Open mHealth heart-rate data
  point per second (QoS 1) over 4 client connections; the publish time is embedded in the
  payload (``header.creation_date_time``, also the reading's effective time) and logged.
  One patient in ten sends a value above 130/min every fifth reading.
* **listener**: medtwin's :class:`~medtwin.ingest.mqtt.MqttListener` (persistent session,
  manual acknowledgement after the commit) appending to a SQLite store and feeding a
  threshold monitor through the :class:`~medtwin.monitor.hub.MonitorHub`; alerts go to the
  store's alert book when it has one (``raise_alerts``), else to an alert table in a SQLite
  file of the benchmark's own. It logs when each fact was committed and when each alert was
  stored.
* **reference**: a plain paho subscriber on the same topics (QoS 1, automatic acknowledgement)
  that only logs when each message arrived: the broker round trip alone.

Latency = stored time - publish time, per message (fact) and per alert; p50/p95/p99/max,
and the ratio to the reference shows medtwin's own share. Lost = published but never stored;
duplicated = stored more than once (a second version or a second alert). Target: p99
publish -> stored alert < 250 ms, nothing lost, over 5 minutes.

Run: ``.venv/bin/python benchmarks/bench_mqtt_latency.py [--duration-s 300] [--patients 1000]
[--broker mqtt://127.0.0.1:1883]`` (default: a private Mosquitto on a free port, stock
settings but a deeper per-session queue, so other traffic on the machine's broker does not
disturb the numbers).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _common import machine

from medtwin.monitor.base import Alert, Monitor, Reading

MOSQUITTO = "/usr/sbin/mosquitto"
HIGH_HR = 140.0
THRESHOLD = 130.0


class ThresholdMonitor(Monitor):
    """Fires on every heart rate above 130/min (a benchmark load, not a clinical rule)."""

    name = "bench-threshold"
    version = "1"
    source = "benchmark load: heart rate above 130/min (no clinical source)"
    codes = frozenset({"8867-4"})

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        self.seen = 0

    def learn_one(self, reading: Reading) -> list[Alert]:
        self.seen += 1
        if reading.value > THRESHOLD:
            return [
                self.alert(
                    "hr.high",
                    "medium",
                    reading.epoch_s,
                    f"heart rate {reading.value:.0f}/min > {THRESHOLD:.0f}",
                    [reading.ref],
                )
            ]
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.seen = int(state["seen"])


class AlertTable:
    """An alert book for stores that have none yet: one SQLite table, a commit per call."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS alerts (patient_id TEXT, rule TEXT, at REAL, "
            "evidence TEXT, body BLOB)"
        )

    def raise_alerts(self, alerts: Sequence[Alert], *, now: datetime | None = None) -> list[int]:
        self.connection.execute("BEGIN")
        self.connection.executemany(
            "INSERT INTO alerts VALUES (?,?,?,?,?)",
            [
                (
                    a.patient_id,
                    a.rule,
                    a.epoch_s,
                    a.evidence[0].source_id,
                    orjson.dumps(a.to_dict()),
                )
                for a in alerts
            ],
        )
        self.connection.execute("COMMIT")
        return []


class TimedSink:
    """Wraps an alert sink; notes when each alert was stored (after the sink returned)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.stored: list[tuple[str, float]] = []

    def raise_alerts(self, alerts: Sequence[Alert], *, now: datetime | None = None) -> list[int]:
        ids = self.inner.raise_alerts(alerts)
        at = time.time()
        self.stored.extend((a.evidence[0].source_id, at) for a in alerts)
        return list(ids)


# --------------------------------------------------------------------------------------------
# roles


def _stop_event() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def role_listener(args: argparse.Namespace) -> None:
    from medtwin.ingest.mqtt import LiveIngest, MqttListener
    from medtwin.monitor.hub import MonitorHub
    from medtwin.store import open_store

    out = Path(args.out)
    store = open_store(args.store)
    inner = store if hasattr(store, "raise_alerts") else AlertTable(out / "alerts.db")
    sink = TimedSink(inner)
    state = store if hasattr(store, "save_monitor_states") else None
    hub = MonitorHub([ThresholdMonitor], state=state, sink=sink)  # type: ignore[arg-type]
    live = LiveIngest(store, downstream=hub)
    committed: list[tuple[str, float]] = []

    def on_append(batch: Any, result: Any) -> None:
        at = time.time()
        committed.extend((unit.key, at) for unit in batch.units)

    live.on_append = on_append
    calls: list[tuple[float, float, int]] = []  # (start, seconds, messages) per handle call
    handle = live.handle

    def timed_handle(messages: Any) -> Any:
        start = time.time()
        out = handle(messages)
        calls.append((start, time.time() - start, len(messages)))
        return out

    live.handle = timed_handle  # type: ignore[method-assign]
    listener = MqttListener(args.broker, "devices/#", live, client_id="bench-listener")
    stop = _stop_event()
    listener.start()
    listener.connected.wait(10)
    print("ready", flush=True)
    report = listener.run(stop)
    (out / "listener.json").write_bytes(
        orjson.dumps(
            {
                "committed": committed,
                "alerts": sink.stored,
                "calls": calls,
                "report": report.as_dict(),
            }
        )
    )
    store.close()


def role_reference(args: argparse.Namespace) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from medtwin.ingest.mqtt import parse_mqtt_url

    host, port, _ = parse_mqtt_url(args.broker)
    received: list[tuple[str, float]] = []

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        at = time.time()
        received.append((orjson.loads(msg.payload)["header"]["id"], at))

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe("devices/#", qos=1)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-reference")
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect(host, port)
    stop = _stop_event()
    client.loop_start()
    print("ready", flush=True)
    while not stop.wait(0.2):
        pass
    client.disconnect()
    client.loop_stop()
    (Path(args.out) / "reference.json").write_bytes(orjson.dumps({"received": received}))


def _point(patient: int, seq: int, value: float, at: float) -> tuple[str, bytes]:
    stamp = datetime.fromtimestamp(at, UTC).isoformat()
    point_id = f"b{patient}-{seq}"
    doc = {
        "header": {
            "id": point_id,
            "creation_date_time": stamp,
            "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"},
            "user_id": f"bench-{patient}",
            "acquisition_provenance": {"source_name": "bench"},
        },
        "body": {
            "heart_rate": {"value": value, "unit": "beats/min"},
            "effective_time_frame": {"date_time": stamp},
        },
    }
    return point_id, orjson.dumps(doc)


def role_publisher(args: argparse.Namespace) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from medtwin.ingest.mqtt import parse_mqtt_url

    host, port, _ = parse_mqtt_url(args.broker)
    clients = []
    for index in range(args.connections):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{index}")
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect(host, port)
        client.loop_start()
        clients.append(client)
    published: list[tuple[str, float, bool]] = []
    infos = []
    n = args.patients
    start = time.time() + 0.5
    seq = 0
    end = start + args.duration_s
    slot = 0  # patient i publishes at start + seq + i/n
    while True:
        now = time.time()
        if now >= end:
            break
        due = int((now - start) * n) if now >= start else -1
        while slot <= due:
            seq, patient = divmod(slot, n)
            fires = patient % 10 == 0 and seq % 5 == 4
            value = HIGH_HR if fires else 60.0 + (patient + seq) % 30
            at = time.time()
            point_id, payload = _point(patient, seq, value, at)
            client = clients[patient % len(clients)]
            infos.append(client.publish(f"devices/bench-{patient}/watch", payload, qos=1))
            published.append((point_id, at, fires))
            slot += 1
        time.sleep(0.002)
    for info in infos:
        info.wait_for_publish(timeout=30)
    for client in clients:
        client.disconnect()
        client.loop_stop()
    (Path(args.out) / "publisher.json").write_bytes(orjson.dumps({"published": published}))


# --------------------------------------------------------------------------------------------
# the run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"no broker on port {port}")


def _spawn(role: str, args: argparse.Namespace, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--role",
            role,
            "--broker",
            args.broker,
            "--out",
            args.out,
            "--store",
            args.store,
            "--patients",
            str(args.patients),
            "--duration-s",
            str(args.duration_s),
            "--connections",
            str(args.connections),
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    if role != "publisher":
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            sys.exit(f"{role} did not start ({line!r})")
    return proc


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    import numpy as np

    if not values_ms:
        return {"n": 0}
    data = np.asarray(values_ms)
    return {
        "n": len(values_ms),
        "p50": float(np.percentile(data, 50)),
        "p95": float(np.percentile(data, 95)),
        "p99": float(np.percentile(data, 99)),
        "max": float(data.max()),
    }


def _row(name: str, stats: Mapping[str, float]) -> str:
    if not stats.get("n"):
        return f"| {name} | 0 | - | - | - | - |"
    return (
        f"| {name} | {int(stats['n']):,} | {stats['p50']:.1f} | {stats['p95']:.1f} | "
        f"{stats['p99']:.1f} | {stats['max']:.1f} |"
    )


def run(args: argparse.Namespace) -> None:
    from medtwin.record.facts import Demographics, Identifier
    from medtwin.store import open_store

    work = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    args.out = str(work)
    if args.store is None:
        args.store = str(work / "medtwin.db")
    broker_proc = None
    if args.broker is None:
        port = _free_port()
        conf = work / "mosquitto.conf"
        # Stock settings, except the per-session queue: Mosquitto's default (1000 messages)
        # drops QoS 1 messages for a listener that falls 1000 behind (see docs/live.md).
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
        )
        broker_proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
        args.broker = f"mqtt://127.0.0.1:{port}"
        _wait_port(port)
    store = open_store(args.store)
    users = [Identifier("urn:medtwin:device-user", f"bench-{i}") for i in range(args.patients)]
    store.append_facts(
        [
            Demographics(
                source="bench", source_id=f"Patient/bench-{i}", subject=u, identifiers=(u,)
            )
            for i, u in enumerate(users)
        ],
        source="bench",
    )
    store.close()
    print(f"machine: {machine()}; load average before: {os.getloadavg()}")
    print(
        f"{args.patients} patients x 1 msg/s for {args.duration_s} s over {args.connections} "
        f"connections; broker {args.broker}; store {args.store}"
    )
    listener = _spawn("listener", args)
    reference = _spawn("reference", args)
    publisher = _spawn("publisher", args)
    publisher.wait()
    published = orjson.loads((work / "publisher.json").read_bytes())["published"]
    # let the listener drain (until every reading is stored or nothing moves for 2 s)
    watch = open_store(args.store)
    target = args.patients + len(published)
    last, still = -1, 0
    while still < 10:
        count = watch.counts()["facts"]
        if count >= target:
            break
        still = still + 1 if count == last else 0
        last = count
        time.sleep(0.5)
    watch.close()
    time.sleep(1.0)
    for proc in (listener, reference):
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    if broker_proc is not None:
        broker_proc.terminate()
        broker_proc.wait(10)
    load = os.getloadavg()
    listened = orjson.loads((work / "listener.json").read_bytes())
    referenced = orjson.loads((work / "reference.json").read_bytes())["received"]
    report(args, published, listened, referenced, load)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)  # a 5-minute run leaves ~400 MB


def report(
    args: argparse.Namespace,
    published: list[Any],
    listened: Mapping[str, Any],
    referenced: list[Any],
    load: tuple[float, float, float],
) -> None:
    from medtwin.store import open_store

    sent = {pid: at for pid, at, _ in published}
    firing = {pid for pid, _, fires in published if fires}
    warm_up = min(5.0, args.duration_s * 0.1)
    t0 = min(sent.values()) + warm_up
    measured = {pid for pid, at in sent.items() if at >= t0}

    def latencies(rows: list[Any], key: str) -> tuple[list[float], int]:
        first: dict[str, float] = {}
        repeats = 0
        for source_id, at in rows:
            pid = source_id.removeprefix("DataPoint/")
            if pid in first:
                repeats += 1
                continue
            first[pid] = at
        out = [(first[p] - sent[p]) * 1000 for p in first if p in measured and p in sent]
        return out, repeats

    fact_ms, _ = latencies(listened["committed"], "facts")
    alert_ms, alert_repeats = latencies(listened["alerts"], "alerts")
    ref_ms, _ = latencies(referenced, "reference")
    store = open_store(args.store)
    rows: dict[str, int] = {}
    for fact in store.iter_facts(include_raw=False):
        if fact.fact.source == "openmhealth:bench":
            rows[fact.fact.source_id] = max(rows.get(fact.fact.source_id, 0), fact.version)
    store.close()
    stored = {s.removeprefix("DataPoint/") for s in rows}
    lost = len(set(sent) - stored)
    doubled = sum(1 for v in rows.values() if v > 1)
    alerted = {s.removeprefix("DataPoint/") for s, _ in listened["alerts"]}
    alerts_lost = len(firing - alerted)
    ref_lost = len(set(sent) - {p for p, _ in referenced})
    fact_stats, alert_stats, ref_stats = (
        _percentiles(fact_ms),
        _percentiles(alert_ms),
        _percentiles(ref_ms),
    )
    print()
    print(
        f"published {len(sent):,} messages ({len(firing):,} that fire), load average after {load}"
    )
    print("| path | n | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    print(_row("broker round trip (plain subscriber)", ref_stats))
    print(_row("publish -> stored fact (medtwin)", fact_stats))
    print(_row("publish -> stored alert (medtwin)", alert_stats))
    print(
        f"lost: facts {lost}, alerts {alerts_lost}, reference {ref_lost}; "
        f"duplicated: facts {doubled}, alerts {alert_repeats}"
    )
    if ref_stats.get("n") and alert_stats.get("n"):
        print(
            f"ratio medtwin alert / broker round trip: p50 {alert_stats['p50'] / ref_stats['p50']:.1f}x, "
            f"p99 {alert_stats['p99'] / ref_stats['p99']:.1f}x"
        )
    if alert_stats.get("n"):
        ok = alert_stats["p99"] < 250 and lost == 0 and alerts_lost == 0
        print(
            f"target p99 publish -> stored alert < 250 ms, nothing lost: {'met' if ok else 'NOT met'}"
        )
    calls = listened["calls"]
    seconds = sorted(c[1] for c in calls)
    sizes = sorted(c[2] for c in calls)
    if calls:
        busy = sum(seconds)
        print(
            f"listener: {len(calls):,} appends, {busy:.1f} s busy of {args.duration_s:.0f} s; "
            f"messages per append p50 {sizes[len(sizes) // 2]} max {sizes[-1]}; "
            f"append+monitor time p50 {seconds[len(seconds) // 2] * 1000:.1f} ms, "
            f"p99 {seconds[int(len(seconds) * 0.99)] * 1000:.1f} ms, max {seconds[-1] * 1000:.0f} ms"
        )
    print(f"listener counts: {listened['report']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=300.0)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--broker", default=None, help="Default: a private Mosquitto.")
    parser.add_argument("--store", default=None, help="Default: a SQLite file in a temp folder.")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (store, logs).")
    parser.add_argument("--role", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "listener":
        role_listener(args)
    elif args.role == "reference":
        role_reference(args)
    elif args.role == "publisher":
        role_publisher(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
