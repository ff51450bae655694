"""Plain CSV device readings: mapping, units, corrections, bad rows, both back-ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtwin.ingest import import_paths
from medtwin.record.facts import Demographics, Identifier
from medtwin.store.sql import SqlStore

USER = Identifier("urn:medtwin:device-user", "ring-1")


@pytest.fixture
def with_user(store: SqlStore) -> SqlStore:
    store.append_facts(
        [
            Demographics(
                source="registry", source_id="Patient/r1", subject=USER, identifiers=(USER,)
            )
        ],
        source="registry",
    )
    return store


def test_csv_readings(with_user: SqlStore, tmp_path: Path) -> None:
    file = tmp_path / "night.csv"
    file.write_text(
        "time,metric,value,unit\n"
        "2024-03-01T02:00:00+01:00,heart_rate,52,/min\n"
        "2024-03-01 02:01:00,8867-4,53,bpm\n"
        "2024-03-01T02:00:00+01:00,body_temperature,98.6,[degF]\n"
        "2024-03-01T02:02:00Z,heart_rate,fast,/min\n"
        "2024-03-01T02:03:00Z,unicorns,1,1\n"
        "2024-03-01T02:04:00Z,heart_rate,50,furlongs\n"
        "2024-02-30T02:05:00Z,heart_rate,50,/min\n"
    )
    report = import_paths(with_user, [file], patient="ring-1", tz="Europe/Paris", source="ring")
    assert report.counts["inserted"] == 3 and report.counts["quarantined"] == 4
    hr = with_user.timeline("ring-1", codes=["8867-4"])
    assert [s.fact.value_num for s in hr] == [52.0, 53.0]  # type: ignore[attr-defined]
    # the naive time was read in Europe/Paris: 02:01 local = 01:01 UTC
    assert hr[1].fact.effective_start is not None and hr[1].fact.effective_start.hour == 1
    [temp] = with_user.timeline("ring-1", codes=["8310-5"])
    assert temp.fact.unit == "Cel" and abs(temp.fact.value_num - 37.0) < 0.01  # type: ignore[attr-defined]
    assert temp.fact.original_unit == "[degF]"  # type: ignore[attr-defined]
    fields = sorted((e.item.location, e.item.field) for e in with_user.quarantine())
    assert fields == [
        ("line 5", "value"),
        ("line 6", "metric"),
        ("line 7", "unit"),
        ("line 8", "time"),
    ]
    # the same file again changes nothing; a changed value for the same time is a correction
    again = import_paths(with_user, [file], patient="ring-1", tz="Europe/Paris", source="ring")
    assert again.counts["inserted"] == 0 and again.counts["new_versions"] == 0
    fix = tmp_path / "fix.csv"
    fix.write_text(
        "time,metric,value,unit,patient\n2024-03-01T01:00:00Z,heart_rate,58,/min,ring-1\n"
    )
    fixed = import_paths(with_user, [fix], source="ring")  # same source: a correction
    assert fixed.counts["new_versions"] == 1
    assert [s.fact.value_num for s in with_user.timeline("ring-1", codes=["8867-4"])] == [
        58.0,
        53.0,
    ]  # type: ignore[attr-defined]


def test_csv_without_patient_is_quarantined(sqlite_store: SqlStore, tmp_path: Path) -> None:
    file = tmp_path / "x.csv"
    file.write_text("time,metric,value,unit\n2024-03-01T02:00:00Z,heart_rate,52,/min\n")
    report = import_paths(sqlite_store, [file])
    assert report.counts["inserted"] == 0
    [entry] = sqlite_store.quarantine()
    assert entry.item.field == "patient" and "--patient" in entry.item.reason


def test_a_meters_low_and_high_are_bounds(with_user: SqlStore, tmp_path: Path) -> None:
    """A glucose meter's LOW and HIGH written as "<40" and ">400" mg/dL (or in mmol/L) are
    stored as bounds, as a FHIR Quantity with a comparator: the bound as the value (converted),
    the comparator kept, and every reader that knows bounds sees one."""
    from medtwin.record.facts import value_comparator

    file = tmp_path / "meter.csv"
    file.write_text(
        "time,metric,value,unit\n"
        "2024-03-01T02:00:00Z,41653-7,<40,mg/dL\n"
        "2024-03-01T08:00:00Z,41653-7,> 22.2,mmol/L\n"
        "2024-03-01T09:00:00Z,41653-7,131,mg/dL\n"
        "2024-03-01T10:00:00Z,41653-7,<,mg/dL\n"
    )
    report = import_paths(with_user, [file], patient="ring-1", source="meter")
    assert report.counts["inserted"] == 3 and report.counts["quarantined"] == 1
    low, high, exact = (s.fact for s in with_user.timeline("ring-1", codes=["41653-7"]))
    assert (low.value_num, value_comparator(low)) == (40.0, "<")  # type: ignore[attr-defined]
    assert value_comparator(high) == ">" and high.value_text == ">22.2"  # type: ignore[attr-defined]
    assert high.unit == "mg/dL" and abs(high.value_num - 400.0) < 0.1  # type: ignore[attr-defined]
    assert value_comparator(exact) is None and exact.value_num == 131.0  # type: ignore[attr-defined]
    (bad,) = with_user.quarantine()
    assert bad.item.field == "value" and "a bound such as '<40'" in bad.item.reason


def test_a_utf16_csv_is_named_as_such(sqlite_store: SqlStore, tmp_path: Path) -> None:
    """A UTF-16 file (Excel's "Unicode Text", Windows PowerShell 5's ``>``) is quarantined
    saying what it is and what to do, not as an unrecognised format."""
    file = tmp_path / "night.csv"
    file.write_bytes(
        "time,metric,value,unit\n2024-03-01T02:00:00Z,heart_rate,52,/min\n".encode("utf-16")
    )
    report = import_paths(sqlite_store, [file], patient="ring-1")
    [entry] = sqlite_store.quarantine()
    assert report.counts["quarantined"] == 1 and entry.item.location == "file"
    assert "UTF-16 text" in entry.item.reason and "save it as UTF-8" in entry.item.reason


def test_a_file_saved_in_a_european_locale_is_read(with_user: SqlStore, tmp_path: Path) -> None:
    """Excel in a German or French locale saves ``;`` between fields and decimal commas: the
    same readings as the comma file, the same facts (a re-send of either changes nothing)."""
    rows = [("2024-03-01T02:00:00Z", "heart_rate", "52", "/min"),
            ("2024-03-01T02:05:00Z", "body_temperature", "36.8", "Cel"),
            ("2024-03-01T02:10:00Z", "spo2", "<70", "%")]  # fmt: skip
    comma = tmp_path / "night.csv"
    comma.write_text("time,metric,value,unit\n" + "".join(",".join(r) + "\n" for r in rows))
    semicolon = tmp_path / "nacht" / "night.csv"
    semicolon.parent.mkdir()
    semicolon.write_text(
        "time;metric;value;unit\n"
        + "".join(";".join((t, m, v.replace(".", ","), u)) + "\n" for t, m, v, u in rows)
    )
    first = import_paths(with_user, [semicolon], patient="ring-1")
    assert first.counts["inserted"] == 3 and with_user.quarantine() == []
    [temp] = with_user.timeline("ring-1", codes=["8310-5"])
    assert temp.fact.value_num == 36.8  # type: ignore[attr-defined]
    again = import_paths(with_user, [comma], patient="ring-1")
    assert again.counts["inserted"] == 0 and again.counts["unchanged"] == 3


@pytest.mark.parametrize("name", ["readings.csv", "export.xml", "day.csv"])
def test_an_empty_file_no_reader_claims_says_it_is_empty(
    sqlite_store: SqlStore, tmp_path: Path, name: str
) -> None:
    """Was "unrecognised format (expected FHIR .json/.ndjson, ...)" for a 0-byte file."""
    path = tmp_path / name
    path.write_bytes(b"")
    import_paths(sqlite_store, [path], patient="ring-1")
    [entry] = sqlite_store.quarantine()
    assert entry.item.reason == f"{path}: empty file (0 bytes)" and entry.item.location == "file"
