"""Replay: recorded files through the live path, in time order, paced; in-process and via MQTT."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from conftest import missing
from medtwin.cli import main
from medtwin.ingest.mqtt import DEVICE_USER_SYSTEM, LiveIngest, Message
from medtwin.ingest.replay import parse_speed, recorded_messages, replay
from medtwin.monitor.hub import MonitorHub
from medtwin.record.facts import Demographics, Identifier
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

_spec = importlib.util.spec_from_file_location(
    "live_proc", Path(__file__).with_name("live_proc.py")
)
assert _spec is not None and _spec.loader is not None
live_proc = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("live_proc", live_proc)
_spec.loader.exec_module(live_proc)

CSV = (
    "time,metric,value,unit\n"
    "2024-03-01T02:02:00Z,heart_rate,131,/min\n"  # out of file order: replay sorts by time
    "2024-03-01T02:00:00Z,heart_rate,52,/min\n"
    "2024-03-01T02:01:00Z,heart_rate,55,bpm\n"
    "2024-03-01T02:03:00Z,heart_rate,fast,/min\n"
)


def make_patient(store: SqlStore, user: str) -> str:
    ident = Identifier(DEVICE_USER_SYSTEM, user)
    store.append_facts(
        [
            Demographics(
                source="registry", source_id=f"Patient/{user}", subject=ident, identifiers=(ident,)
            )
        ],
        source="registry",
    )
    return store.resolve_patient(user)


def test_parse_speed() -> None:
    assert parse_speed("60x") == 60.0 and parse_speed("2.5") == 2.5 and parse_speed("max") is None
    assert parse_speed("infx") is None  # as fast as it goes, as "max"
    for bad in ("0x", "fast", "-3x", "nanx", "-infx"):
        with pytest.raises(ValueError, match="speed"):
            parse_speed(bad)


def test_replay_paces_by_the_data_clock() -> None:
    messages = [(t, Message("devices/p/d", str(t).encode())) for t in (0.0, 30.0, 60.0, 60.0)]
    arrivals: list[tuple[float, int]] = []
    start = time.monotonic()
    sent = replay(
        messages, lambda group: arrivals.append((time.monotonic() - start, len(group))), speed=200
    )
    assert sent == 4
    # 60 s of data at 200x: 0.3 s of wall time; the two readings of t=60 go together
    assert [count for _, count in arrivals] == [1, 1, 2]
    assert arrivals[1][0] == pytest.approx(0.15, abs=0.06)
    assert arrivals[2][0] == pytest.approx(0.30, abs=0.06)


def test_replay_in_process_stores_in_time_order_and_fires(store: SqlStore, tmp_path: Path) -> None:
    pid = make_patient(store, "ring-1")
    path = tmp_path / "night.csv"
    path.write_text(CSV)
    recorded = recorded_messages([path], patient="ring-1")
    assert recorded.unreadable == 1  # the 'fast' row: the CSV reader quarantines it
    assert [orjson.loads(m.payload)["valueQuantity"]["value"] for _, m in recorded.messages] == [
        52.0,
        55.0,
        131.0,
    ]
    hub = MonitorHub([live_proc.CountingMonitor])
    fired: list[Any] = []
    live = LiveIngest(store, downstream=hub, on_alert=fired.append)
    replay(recorded.messages, live.handle, speed=None)
    hr = store.timeline(pid, codes=["8867-4"])
    assert [s.fact.value_num for s in hr] == [52.0, 55.0, 131.0]  # type: ignore[attr-defined]
    assert [a.message for a in fired] == ["HR 131"]
    again = LiveIngest(store, downstream=hub, on_alert=fired.append)
    replay(recorded.messages, again.handle, speed=None)  # the same data again: no change
    assert again.report.facts_changed == 0 and again.report.unchanged == 3 and len(fired) == 1


def test_a_sensor_s_low_replays_as_a_bound(sqlite_store: SqlStore, tmp_path: Path) -> None:
    """A CGM LOW ("<40") sent through the live path arrives as a bound (a FHIR
    Quantity.comparator), so the listener stores it as one and the monitors read it so."""
    from medtwin.record.facts import value_comparator

    pid = make_patient(sqlite_store, "cgm-1")
    path = tmp_path / "cgm.csv"
    path.write_text(
        "time,metric,value,unit\n"
        "2024-03-01T02:00:00Z,99504-3,62,mg/dL\n"
        "2024-03-01T02:05:00Z,99504-3,<40,mg/dL\n"
    )
    recorded = recorded_messages([path], patient="cgm-1")
    sent = [orjson.loads(m.payload)["valueQuantity"] for _, m in recorded.messages]
    assert [q.get("comparator") for q in sent] == [None, "<"]
    live = LiveIngest(sqlite_store)
    replay(recorded.messages, live.handle, speed=None)
    stored = sqlite_store.timeline(pid, codes=["99504-3"])
    assert [(s.fact.value_num, value_comparator(s.fact)) for s in stored] == [  # type: ignore[attr-defined]
        (62.0, None),
        (40.0, "<"),
    ]


def test_replay_cli_fhir_folder(shared: Path, tmp_path: Path) -> None:
    db = tmp_path / "replay.db"
    phd = shared / "wearables" / "hl7-phd"
    runner = CliRunner()
    args = ["replay", str(phd), "--speed", "max", "--store", str(db), "--monitors", ""]
    first = runner.invoke(main, [*args, "--create-patients"])
    assert first.exit_code == 0, first.output
    store = open_store(str(db))
    stored = [s for s in store.iter_facts(include_raw=False) if s.fact.kind == "Observation"]
    assert {s.patient_id for s in stored} == {
        store.resolve_patient("patientExample-1"),
        store.resolve_patient("patient-001"),
    }
    recorded = recorded_messages([phd])
    expected = {f"Observation/{orjson.loads(m.payload)['id']}" for _, m in recorded.messages}
    assert len(expected) == len(recorded.messages) == 55
    # every reading stored once, under its own id (components add facts of their own)
    assert {s.fact.source_id for s in stored if "#" not in s.fact.source_id} == expected
    assert store.quarantine() == []
    facts_before = store.counts()["facts"]
    second = runner.invoke(main, args)
    assert second.exit_code == 0 and "replayed: 0 facts stored" in second.output
    assert store.counts()["facts"] == facts_before
    store.close()


def test_replay_through_the_broker_to_medtwin_listen(tmp_path: Path) -> None:
    if not live_proc.wait_port(1883, timeout_s=1.0):
        missing("Mosquitto not reachable at 127.0.0.1:1883")
    db = tmp_path / "live.db"
    store = open_store(str(db))
    pid = make_patient(store, "ring-1")
    path = tmp_path / "night.csv"
    path.write_text(CSV)
    prefix = f"t-{uuid.uuid4().hex[:10]}/devices"
    medtwin = Path(sys.executable).with_name("medtwin")
    listen = subprocess.Popen(
        [
            str(medtwin),
            "listen",
            "--topic",
            f"{prefix}/#",
            "--store",
            str(db),
            "--monitors",
            "",
            "--client-id",
            f"listen-{uuid.uuid4().hex[:8]}",
            "-v",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert listen.stderr is not None
        while "connected to" not in listen.stderr.readline():
            assert listen.poll() is None, "medtwin listen exited"
        result = CliRunner().invoke(
            main,
            [
                "replay",
                str(path),
                "--patient",
                "ring-1",
                "--speed",
                "max",
                "--mqtt",
                "mqtt://127.0.0.1:1883",
                "--topic-prefix",
                prefix,
            ],
        )
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 20
        while len(store.timeline(pid, codes=["8867-4"])) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        listen.send_signal(signal.SIGTERM)
        _, err = listen.communicate(timeout=15)
    assert listen.returncode == 0
    assert "stopped: 3 messages, 3 facts stored" in err
    hr = store.timeline(pid, codes=["8867-4"])
    assert [s.fact.value_num for s in hr] == [52.0, 55.0, 131.0]  # type: ignore[attr-defined]
    store.close()


def test_replay_to_a_broker_that_is_not_there_says_so(tmp_path: Path) -> None:
    """A ConnectionRefusedError traceback, exit status 0, before."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path / "night.csv"
    path.write_text(CSV)
    url = f"mqtt://127.0.0.1:{port}"
    args = ["replay", str(path), "--patient", "ring-1", "--speed", "max", "--mqtt", url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert f"medtwin: error: cannot reach the broker {url}: [Errno 111]" in result.output


def test_unknown_monitor_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "night.csv"
    path.write_text(CSV)
    result = CliRunner().invoke(
        main, ["replay", str(path), "--store", str(tmp_path / "x.db"), "--monitors", "nope"]
    )
    assert result.exit_code == 2
    assert "Invalid value for --monitors: unknown monitor 'nope'" in result.output
    assert "replaying" not in result.output  # refused before reading the files


def test_replay_of_the_icu_record_through_the_live_path(
    sqlite_store: SqlStore, shared: Path
) -> None:
    """Every sample of the WFDB record is its own message; the alerts match `monitor run`."""
    try:
        import wfdb  # noqa: F401
    except ImportError:  # pragma: no cover - the dev install has it
        missing("the wfdb package is not installed (pip install 'medtwin[wfdb]')")
    pid = make_patient(sqlite_store, "ICU1")
    record = shared / "physionet" / "s00001-2896-10-10-00-31n.hea"
    recorded = recorded_messages([record], patient="ICU1")
    assert len(recorded.messages) == 14_008 and recorded.unreadable == 0
    hub = MonitorHub(["news2", "artefact"], sink=sqlite_store)
    fired: list[Any] = []
    # the record's dates are shifted into 2896: a replay, like the CLI's, accepts future stamps
    live = LiveIngest(
        sqlite_store, downstream=hub, on_alert=fired.append, skew_tolerance_s=float("inf")
    )
    replay(recorded.messages, live.handle, speed=None)
    assert live.report.facts_changed == 14_008
    news2 = [a for a in fired if a.monitor == "news2"]
    assert len(news2) == 92 and news2[0].detail["inputs"]["respiratory_rate_per_min"] == 8.8
    rows = sqlite_store.alerts(patient_id=pid)
    assert sorted(r.rule for r in rows) == [
        "artefact.59408-5",
        "artefact.76213-8",
        "artefact.76214-6",
        "artefact.76215-3",
        "artefact.8867-4",
        "artefact.8889-8",
        "news2.medium",
    ]
