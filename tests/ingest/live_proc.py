"""Helpers of the live-feed tests: a listener process, a counting monitor, a private broker.

Run as a script it is a listener process the tests can kill::

    python live_proc.py STORE_URL BROKER_URL TOPIC CLIENT_ID STATE_JSON ALERTS_JSONL

Monitor state is kept in ``STATE_JSON`` and alerts are appended to ``ALERTS_JSONL``
(stand-ins for the store's monitor-state table and alert book, which live on another branch).
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from medtwin.monitor.base import Alert, Monitor, Reading

MOSQUITTO = Path("/usr/sbin/mosquitto")


class CountingMonitor(Monitor):
    """Remembers every reading it learned; fires when heart rate exceeds 120/min."""

    name = "test-count"
    version = "1"
    source = "test monitor (no clinical source): heart rate above 120/min"
    codes = frozenset({"8867-4"})

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(patient_id, params)
        self.learned: list[str] = []

    def learn_one(self, reading: Reading) -> list[Alert]:
        self.learned.append(reading.ref.source_id)
        if reading.value > 120:
            return [
                self.alert(
                    "hr.high", "high", reading.epoch_s, f"HR {reading.value:.0f}", [reading.ref]
                )
            ]
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"learned": list(self.learned)}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.learned = list(state["learned"])


class FileState:
    """A MonitorStateStore in one JSON file (replaced atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.states: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}

    def load_monitor_state(self, monitor: str, patient_id: str) -> dict[str, Any] | None:
        state = self.states.get(f"{monitor}|{patient_id}")
        return dict(state) if state is not None else None

    def save_monitor_states(self, states: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        for monitor, patient_id, state in states:
            self.states[f"{monitor}|{patient_id}"] = state
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.states))
        os.replace(tmp, self.path)


class FileSink:
    """An AlertSink appending JSON lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def raise_alerts(self, alerts: Sequence[Alert], *, now: datetime | None = None) -> list[int]:
        with self.path.open("ab") as handle:
            for alert in alerts:
                handle.write(orjson.dumps(alert.to_dict()) + b"\n")
        return []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Broker:
    """A private Mosquitto with persistence, so a test can stop and restart it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # run as root, mosquitto drops to user 'mosquitto', who cannot write tmp_path
            f"user {getpass.getuser()}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            f"log_dest file {folder}/mosquitto.log\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen([str(MOSQUITTO), "-c", str(self.conf)])
        if not wait_port(self.port):
            raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        """SIGTERM: the broker saves its queues to the persistence file and exits."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
            if not (self.folder / "mosquitto.db").exists():
                raise RuntimeError(f"mosquitto saved no persistence file in {self.folder}")


def _main(argv: list[str]) -> None:
    from medtwin.ingest.mqtt import LiveIngest, MqttListener, topic_prefix
    from medtwin.monitor.hub import MonitorHub
    from medtwin.store import open_store

    store_url, broker_url, topic, client_id, state_path, alerts_path = argv
    store = open_store(store_url)
    hub = MonitorHub(
        [CountingMonitor], state=FileState(Path(state_path)), sink=FileSink(Path(alerts_path))
    )
    live = LiveIngest(store, downstream=hub, prefix=topic_prefix(topic))
    listener = MqttListener(broker_url, topic, live, client_id=client_id)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    listener.start()
    listener.connected.wait(10)
    print("ready", flush=True)
    listener.run(stop)
    store.close()


if __name__ == "__main__":
    _main(sys.argv[1:])
