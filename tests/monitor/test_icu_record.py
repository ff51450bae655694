"""NEWS2, qSOFA, MEWS and artefacts over the real ICU record (PhysioNet MIMIC II numerics s00001).

32 h of 1/min numerics; no temperature, consciousness or oxygen therapy is recorded, so every
score is partial. The arterial line reads 0 for 1,929 of 1,936 minutes and the oximeter drops
to 0 in 363 minutes while the ECG counts a heart rate: those are disconnected sensors, flagged as
artefacts and never scored. What remains is a slow respiratory rate (below 9 /min, NEWS2 3
points) that the NEWS2 monitor reports as a partial low-medium score, rising once to medium.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import missing
from medtwin.ingest import import_paths
from medtwin.monitor import MonitorHub, readings_from_stored
from medtwin.record.facts import Demographics, Identifier
from medtwin.store.sql import SqlStore

RECORD = "s00001-2896-10-10-00-31n"


@pytest.fixture
def icu_store(sqlite_store: SqlStore, shared: Path) -> SqlStore:
    try:
        import wfdb  # noqa: F401
    except ImportError:  # pragma: no cover - the dev install has it
        missing("the wfdb package is not installed (pip install 'medtwin[wfdb]')")
    user = Identifier("urn:medtwin:device-user", "ICU1")
    sqlite_store.append_facts(
        [
            Demographics(
                source="registry", source_id="Patient/icu1", subject=user, identifiers=(user,)
            )
        ],
        source="registry",
    )
    import_paths(sqlite_store, [shared / "physionet" / f"{RECORD}.hea"], patient="ICU1")
    return sqlite_store


def test_icu_record_alerts(icu_store: SqlStore) -> None:
    pid = icu_store.resolve_patient("ICU1")
    readings = readings_from_stored(icu_store.timeline(pid, kinds=["Observation"]))
    assert len(readings) == 14_008
    hub = MonitorHub(["news2", "qsofa", "mews", "artefact"], sink=icu_store)
    alerts = hub.feed(readings)

    artefacts = Counter(a.detail["code"] for a in alerts if a.category == "artefact")
    assert artefacts == {
        "76215-3": 1929,  # invasive systolic: the arterial line is not connected
        "76213-8": 1929,
        "76214-6": 1928,
        "8889-8": 363,  # oximeter pulse and SpO2 drop to 0 together: probe off
        "59408-5": 363,
        "8867-4": 46,  # ECG heart rate 0 while the oximeter counts a pulse: lead off
    }
    clinical = [a for a in alerts if a.category == "clinical"]
    assert {a.monitor for a in clinical} == {
        "news2"
    }  # no MEWS >= 5, no qSOFA >= 2 once zeros are out
    assert Counter(a.rule for a in clinical) == {"news2.low-medium": 91, "news2.medium": 1}
    for a in clinical:
        assert a.detail["partial"] is True
        assert {"consciousness", "temperature_c", "on_oxygen"} <= set(a.detail["missing"])
        if a.rule == "news2.low-medium":  # a red score: 3 points in one parameter
            assert 3 in a.detail["components"].values() and a.detail["value"] < 5
    slow_breathing = [
        a for a in clinical if a.detail["components"].get("respiratory_rate_per_min") == 3
    ]
    assert len(slow_breathing) >= 80
    first = clinical[0]
    # epoch seconds as float64 resolve ~4 µs in year 2896
    expected = datetime(2896, 10, 10, 1, 33, 25, 894000, tzinfo=UTC)
    assert abs((first.time - expected).total_seconds()) < 1e-3
    assert first.detail["inputs"]["respiratory_rate_per_min"] == pytest.approx(8.8)
    assert first.detail["components"]["respiratory_rate_per_min"] == 3

    # the alert book shows one NEWS2 alert (92 firings) and one artefact row per signal
    rows = icu_store.alerts(patient_id=pid)
    assert len(rows) == 7
    (news2,) = [r for r in rows if r.monitor == "news2"]
    assert news2.count == 92 and news2.severity == "medium"
