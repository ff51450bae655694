"""``medtwin alerts``: list, show, ack, resolve, escalate, on SQLite and PostgreSQL stores."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from medtwin.cli import main
from medtwin.monitor import Alert, FactRef
from medtwin.record.facts import Demographics, Identifier
from medtwin.store.sql import SqlStore

MEDTWIN = Path(sys.executable).with_name("medtwin")
MRN = "urn:hospital:mrn"
OPENED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def invoke(*args: str, code: int = 0) -> Result:
    result = CliRunner(env={"MEDTWIN_USER": "nurse.jo"}).invoke(
        main, list(args), catch_exceptions=False
    )
    assert result.exit_code == code, (args, result.output)
    return result


def alert(pid: str, severity: str, rule: str, refs: tuple[str, ...], t_min: float) -> Alert:
    return Alert(
        patient_id=pid,
        monitor="news2",
        monitor_version="1",
        rule=rule,
        severity=severity,
        epoch_s=(OPENED + timedelta(minutes=t_min)).timestamp(),
        message=f"NEWS2 {rule} ({severity})",
        source="RCP 2017",
        evidence=tuple(FactRef("ward", r) for r in refs),
        detail={"score": 5},
    )


@pytest.fixture
def book(store: SqlStore) -> tuple[str, str, str, list[int]]:
    """A store with two patients (found by MRN) and three alerts; returns url, ids, alert ids."""
    store.append_facts(
        [
            Demographics(
                source="ward",
                source_id=f"Patient/{mrn}",
                subject=Identifier(MRN, mrn),
                identifiers=(Identifier(MRN, mrn),),
                family=family,
                given=("Ada",),
            )
            for mrn, family in (("MRN-1", "Lovelace"), ("MRN-2", "Byron"))
        ],
        source="ward",
    )
    p1, p2 = store.resolve_patient("MRN-1"), store.resolve_patient("MRN-2")
    ids = store.raise_alerts(
        [
            alert(p1, "medium", "news2.urgent", ("Observation/1",), 0),
            alert(p1, "low", "news2.low", ("Observation/2",), 1),
            alert(p2, "high", "news2.emergency", ("Observation/3",), 2),
        ],
        now=OPENED,
    )
    store.raise_alerts(
        [alert(p1, "medium", "news2.urgent", ("Observation/4",), 30)],
        now=OPENED + timedelta(minutes=30),
    )
    return store.url, p1, p2, ids


def test_list_table_and_json(book: tuple[str, str, str, list[int]]) -> None:
    url, p1, p2, (urgent, low, emergency) = book
    text = invoke("alerts", "--store", url).stdout
    for needle in (str(urgent), p1, p2, "news2.urgent", "news2.emergency", "medium", "high"):
        assert needle in text
    assert "2026-03-01 08:00" in text and "2026-03-01 08:30" in text
    assert "critical care outreach" in text  # the high alert's responder
    rows = orjson.loads(invoke("alerts", "--store", url, "--json").stdout)
    assert [r["id"] for r in rows] == [emergency, low, urgent]
    by_id = {r["id"]: r for r in rows}
    assert by_id[urgent]["count"] == 2 and by_id[urgent]["escalation_level"] == 2
    assert by_id[urgent]["evidence"] == [["ward", "Observation/1"], ["ward", "Observation/4"]]
    mine = orjson.loads(invoke("alerts", "--patient", "MRN-1", "--store", url, "--json").stdout)
    assert {r["id"] for r in mine} == {urgent, low} and {r["patient_id"] for r in mine} == {p1}


def test_ack_resolve_and_open_filter(book: tuple[str, str, str, list[int]]) -> None:
    url, _p1, _p2, (urgent, low, emergency) = book
    out = invoke("alerts", "ack", str(urgent), "--note", "seen at bedside", "--store", url).stdout
    assert f"alert {urgent} acknowledged by nurse.jo" in out
    again = invoke("alerts", "ack", str(urgent), "--store", url, code=1)
    assert again.stderr.strip() == again.stderr.strip().splitlines()[0]
    assert f"alert {urgent} is already acknowledged by nurse.jo" in again.stderr
    out = invoke("alerts", "--store", url, "resolve", str(low), "--reason", "false alarm").stdout
    assert f"alert {low} resolved by nurse.jo" in out
    refused = invoke("alerts", "ack", str(low), "--store", url, code=1)
    assert "resolved alert cannot be acknowledged" in refused.stderr
    live = orjson.loads(invoke("alerts", "--open", "--store", url, "--json").stdout)
    assert {r["id"]: r["status"] for r in live} == {emergency: "open", urgent: "acknowledged"}
    shown = orjson.loads(invoke("alerts", "show", str(urgent), "--store", url, "--json").stdout)
    assert shown["acknowledged_by"] == "nurse.jo"
    assert [e["event"] for e in shown["events"]] == ["opened", "repeated", "acknowledged"]
    assert shown["events"][2]["detail"] == {"note": "seen at bedside"}
    text = invoke("alerts", "show", str(low), "--store", url).stdout
    assert "resolved by nurse.jo" in text and "false alarm" in text
    assert "ward|Observation/2" in text and "opened" in text and "resolved" in text


def test_show_text(book: tuple[str, str, str, list[int]]) -> None:
    url, p1, _p2, (urgent, _low, _emergency) = book
    text = invoke("alerts", "show", str(urgent), "--store", url).stdout
    assert f"alert {urgent}  [medium] open  patient {p1}" in text
    assert "fired 2 times, first 2026-03-01 08:00, last 2026-03-01 08:30" in text
    assert "escalation level 2: medical team with critical-care competences" in text
    assert "evidence (2 facts):" in text and "ward|Observation/4" in text
    assert "source: RCP 2017" in text


def test_escalate_with_a_time(book: tuple[str, str, str, list[int]]) -> None:
    url, _p1, _p2, (urgent, low, _emergency) = book
    early = orjson.loads(
        invoke(
            "alerts", "escalate", "--now", "2026-03-01T08:29:00Z", "--store", url, "--json"
        ).stdout
    )
    assert early == []
    later = invoke("alerts", "escalate", "--now", "2026-03-01T12:00:00Z", "--store", url)
    assert f"alert {urgent} [medium]" in later.stdout and f"alert {low} [low]" in later.stdout
    assert "2 alerts escalated" in later.stderr
    rows = {r["id"]: r for r in orjson.loads(invoke("alerts", "--store", url, "--json").stdout)}
    assert rows[urgent]["escalation_level"] == 3 and rows[low]["escalation_level"] == 1
    bad = invoke("alerts", "escalate", "--now", "yesterday", "--store", url, code=2)
    assert "--now" in bad.stderr


def test_unknown_alert_is_one_line(book: tuple[str, str, str, list[int]]) -> None:
    url = book[0]
    for args in (("show", "999"), ("ack", "999"), ("resolve", "999")):
        done = subprocess.run(
            [str(MEDTWIN), "alerts", *args, "--store", url],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert (
            done.stderr.strip()
            == "medtwin: error: no alert with id 999 (list them: 'medtwin alerts')"
        )
    unknown_patient = invoke("alerts", "--patient", "MRN-404", "--store", url, code=1)
    assert "no patient with id or identifier 'MRN-404'" in unknown_patient.stderr
