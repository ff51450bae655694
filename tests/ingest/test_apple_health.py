"""Apple Health export.xml: the shared export on both back-ends, mapping, bad input, CLI.

Expected values are read from the raw XML in the test itself (ElementTree, strptime), not
taken from the reader.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from medtwin.cli import main
from medtwin.ingest import discover, import_paths, reader_for
from medtwin.ingest.apple_health import (
    DEVICE_USER_SYSTEM,
    healthkit_types,
    parse_healthkit_date,
    read_apple_health,
)
from medtwin.record.batch import Batch
from medtwin.record.codes import LOINC, lookup
from medtwin.record.facts import Demographics, Identifier, Observation
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

USER = "watch-1"


def make_patient(store: SqlStore, user: str = USER) -> None:
    ident = Identifier(DEVICE_USER_SYSTEM, user)
    store.append_facts(
        [
            Demographics(
                source="registry", source_id=f"Patient/{user}", subject=ident, identifiers=(ident,)
            )
        ],
        source="registry",
    )


def export_path(shared: Path) -> Path:
    return shared / "wearables" / "apple-health" / "export.xml"


def raw_date(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z").astimezone(UTC)


def facts_of(batches: list[Batch]) -> list[Observation]:
    return [f for b in batches for u in b.units for f in u.facts if isinstance(f, Observation)]


def write_export(tmp_path: Path, body: str, name: str = "export.xml") -> Path:
    path = tmp_path / name
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n'
        "<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>\n"
        ']>\n<HealthData locale="en_US">\n' + body + "\n</HealthData>\n",
        encoding="utf-8",
    )
    return path


def rec(kind: str, value: str, unit: str, start: str, end: str | None = None, **extra: str) -> str:
    attrs = " ".join(f'{k}="{v}"' for k, v in extra.items())
    return (
        f'<Record type="HKQuantityTypeIdentifier{kind}" sourceName="Watch" unit="{unit}" '
        f'startDate="{start}" endDate="{end or start}" value="{value}" {attrs}/>'
    )


# --------------------------------------------------------------------------------------------
# the shared export


def test_shared_export_on_both_backends(store: SqlStore, shared: Path) -> None:
    path = export_path(shared)
    root = ET.parse(path).getroot()
    records = {r.get("type"): r for r in root.iter("Record")}
    hr, bmi = (
        records["HKQuantityTypeIdentifierHeartRate"],
        records["HKQuantityTypeIdentifierBodyMassIndex"],
    )
    summaries = root.findall("ActivitySummary")
    make_patient(store)
    report = import_paths(store, [path], patient=USER, tz="America/Los_Angeles")
    # 2 mapped Records + 2 ActivitySummary days x (energy, exercise time); the dietary-fat
    # Record and the Workout are each one summary quarantine entry
    assert report.counts["inserted"] == 2 + 2 * len(summaries) == 6
    assert report.counts["quarantined"] == 2
    pid = store.resolve_patient(f"{DEVICE_USER_SYSTEM}|{USER}")
    [heart] = [s.fact for s in store.timeline(pid, codes=["8867-4"])]
    assert isinstance(heart, Observation)
    assert heart.value_num == float(hr.get("value", "")) and heart.unit == "/min"
    assert heart.original_unit == hr.get("unit") == "count/min"
    assert (
        heart.effective_start == raw_date(hr.get("startDate", "")) and heart.effective_end is None
    )
    assert heart.device == (
        "Apple Watch 4.3.1; name=Apple Watch, manufacturer=Apple, model=Watch, "
        "hardware=Watch2,4, software=4.3.1"
    )
    assert heart.value_text == "HKMetadataKeyHeartRateMotionContext=0"
    assert heart.source_recorded_at == raw_date(hr.get("creationDate", ""))
    [index] = [s.fact for s in store.timeline(pid, codes=["39156-5"])]
    assert isinstance(index, Observation)
    assert index.value_num == pytest.approx(float(bmi.get("value", ""))) and index.unit == "kg/m2"
    assert index.device is not None and index.device.startswith("Health Mate 2160040")
    energy = [s.fact for s in store.timeline(pid, codes=["41981-2"])]
    assert sorted(f.value_num for f in energy if isinstance(f, Observation)) == sorted(
        float(s.get("activeEnergyBurned", "")) for s in summaries
    )
    # the local day 2016-11-15 in Los Angeles (UTC-8) runs 08:00 to 08:00 UTC
    day = next(f for f in energy if f.original_time == "2016-11-15")
    assert day.effective_start == datetime(2016, 11, 15, 8, tzinfo=UTC)
    assert day.effective_end == datetime(2016, 11, 16, 8, tzinfo=UTC)
    reasons = sorted(e.item.reason for e in store.quarantine())
    assert reasons[0].startswith(
        "1 HKQuantityTypeIdentifierDietaryFatTotal element(s) not imported"
    )
    assert reasons[1].startswith("1 Workout element(s) not imported")
    again = import_paths(store, [path], patient=USER, tz="America/Los_Angeles")
    assert again.counts.get("inserted", 0) == 0 and again.counts.get("new_versions", 0) == 0
    assert store.counts()["quarantine_open"] == 2


def test_mapping_table_codes_are_known_and_cited() -> None:
    table = healthkit_types()
    for kind in table.values():
        assert kind.source.strip()
        if kind.coding.system == LOINC:
            info = lookup(LOINC, kind.coding.code)
            assert info is not None, kind.coding.code
            assert info.display == kind.coding.display
    for name in ("HeartRate", "RestingHeartRate", "StepCount", "OxygenSaturation", "BodyMass"):
        assert f"HKQuantityTypeIdentifier{name}" in table


def test_reader_is_picked_and_export_xml_is_found_in_folders(tmp_path: Path, shared: Path) -> None:
    assert reader_for(export_path(shared)).name == "apple-health"
    folder = tmp_path / "apple_health_export"
    folder.mkdir()
    write_export(folder, "")
    (folder / "export_cda.xml").write_text("<ClinicalDocument/>")
    found, skipped = discover([folder])
    assert [p.name for p in found] == ["export.xml"]
    assert [p.name for p in skipped] == ["export_cda.xml"]


# --------------------------------------------------------------------------------------------
# mapping


def test_units_fractions_intervals_and_blood_pressure(tmp_path: Path) -> None:
    bp_time = "2020-01-02 08:00:00 +0100"
    systolic = rec("BloodPressureSystolic", "128", "mmHg", bp_time)
    diastolic = rec("BloodPressureDiastolic", "82", "mmHg", bp_time)
    body = "\n".join(
        [
            rec("OxygenSaturation", "0.97", "%", "2020-01-02 07:00:00 +0100"),
            rec(
                "StepCount",
                "1200",
                "count",
                "2020-01-02 07:00:00 +0100",
                "2020-01-02 07:30:00 +0100",
            ),
            rec("BodyTemperature", "98.6", "degF", "2020-01-02 07:00:00 +0100"),
            rec("BodyMass", "150", "lb", "2020-01-02 07:00:00 +0100"),
            rec(
                "BloodGlucose",
                "5.5",
                "mmol&lt;180.1558800000541&gt;/L",
                "2020-01-02 07:00:00 +0100",
            ),
            rec("HeartRateVariabilitySDNN", "48.5", "ms", "2020-01-02 07:00:00 +0100"),
            systolic,  # exports list the parts on their own too
            diastolic,
            f'<Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Cuff" '
            f'startDate="{bp_time}" endDate="{bp_time}">{systolic}{diastolic}</Correlation>',
            rec("BloodPressureSystolic", "140", "mmHg", "2020-01-03 08:00:00 +0100"),
        ]
    )
    batches = list(read_apple_health(write_export(tmp_path, body), patient=USER))
    facts = facts_of(batches)
    by = {f.code.code: f for f in facts if f.code is not None and f.part_of is None}
    assert by["59408-5"].value_num == pytest.approx(97.0) and by["59408-5"].unit == "%"
    assert (by["59408-5"].original_value, by["59408-5"].original_unit) == (0.97, "%")
    steps = by["55423-8"]
    assert steps.value_num == 1200 and steps.unit == "{steps}"
    assert steps.effective_start == datetime(2020, 1, 2, 6, tzinfo=UTC)
    assert steps.effective_end == datetime(2020, 1, 2, 6, 30, tzinfo=UTC)
    assert by["8310-5"].value_num == pytest.approx(37.0) and by["8310-5"].unit == "Cel"
    assert by["29463-7"].value_num == pytest.approx(150 * 0.45359237)
    assert by["41653-7"].value_num == pytest.approx(5.5 * 18.0156, rel=1e-3)
    assert by["80404-7"].value_num == 48.5 and by["80404-7"].unit == "ms"
    panel = by["85354-9"]
    parts = sorted((f.code.code, f.value_num) for f in facts if f.part_of == panel.source_id)  # type: ignore[union-attr]
    assert parts == [("8462-4", 82.0), ("8480-6", 128.0)]
    # the claimed Records are stored once (as parts); the unclaimed one on its own
    alone = [
        f for f in facts if f.code is not None and f.code.code == "8480-6" and f.part_of is None
    ]
    assert [f.value_num for f in alone] == [140.0]
    assert len([f for f in facts if f.code is not None and f.code.code == "8480-6"]) == 2


def test_bad_records_are_quarantined_by_line_and_attribute(
    tmp_path: Path, sqlite_store: SqlStore
) -> None:
    good = rec("HeartRate", "61", "count/min", "2020-01-02 07:00:00 +0100")
    body = "\n".join(
        [
            good,
            rec("HeartRate", "fast", "count/min", "2020-01-02 07:01:00 +0100"),
            rec("HeartRate", "60", "count/min", "2020-02-30 07:02:00 +0100"),
            rec("HeartRate", "60", "furlongs", "2020-01-02 07:03:00 +0100"),
            rec("HeartRate", "60", "kg", "2020-01-02 07:04:00 +0100"),
            rec(
                "StepCount", "5", "count", "2020-01-02 07:05:00 +0100", "2020-01-02 07:04:00 +0100"
            ),
            rec("HeartRate", "nan", "count/min", "2020-01-02 07:06:00 +0100"),
            '<Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Watch" '
            'startDate="2020-01-02 00:00:00 +0100" endDate="2020-01-02 06:00:00 +0100" '
            'value="HKCategoryValueSleepAnalysisAsleep"/>',
            '<Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Watch" '
            'startDate="2020-01-03 00:00:00 +0100" endDate="2020-01-03 06:00:00 +0100" '
            'value="HKCategoryValueSleepAnalysisAsleep"/>',
        ]
    )
    path = write_export(tmp_path, body)
    lines = path.read_text().splitlines()
    line_of = {i + 1: text for i, text in enumerate(lines)}
    make_patient(sqlite_store)
    report = import_paths(sqlite_store, [path], patient=USER)
    assert report.counts["inserted"] == 1
    entries = sqlite_store.quarantine()
    found = sorted((e.item.location or "", e.item.field or "") for e in entries)
    expected_lines = [
        n for n, text in line_of.items() if "HKQuantity" in text and 'value="61"' not in text
    ]
    assert found == sorted(
        [
            (f"line {expected_lines[0]}", "value"),
            (f"line {expected_lines[1]}", "startDate"),
            (f"line {expected_lines[2]}", "unit"),
            (f"line {expected_lines[3]}", "unit"),
            (f"line {expected_lines[4]}", "endDate"),
            (f"line {expected_lines[5]}", "value"),
            (f"lines {expected_lines[5] + 1}-{expected_lines[5] + 2}", "type"),
        ]
    )
    sleep = next(e for e in entries if e.item.field == "type")
    assert sleep.item.reason.startswith("2 HKCategoryTypeIdentifierSleepAnalysis element(s)")
    again = import_paths(sqlite_store, [path], patient=USER)
    assert again.counts.get("inserted", 0) == 0
    assert len(sqlite_store.quarantine()) == len(entries)


def test_broken_xml_keeps_what_came_before(tmp_path: Path) -> None:
    body = rec("HeartRate", "61", "count/min", "2020-01-02 07:00:00 +0100") + "\n<Record type="
    path = tmp_path / "export.xml"
    path.write_text("<HealthData>\n" + body)
    batches = list(read_apple_health(path, patient=USER))
    assert [f.value_num for f in facts_of(batches)] == [61.0]
    [item] = [q for b in batches for q in b.quarantine]
    assert item.reason.startswith("not well-formed XML") and item.location == "line 3"


def test_without_patient_one_file_entry(tmp_path: Path) -> None:
    path = write_export(tmp_path, rec("HeartRate", "61", "count/min", "2020-01-02 07:00:00 +0100"))
    [batch] = list(read_apple_health(path))
    assert not batch.units and batch.quarantine[0].field == "patient"


def test_streams_in_batches(tmp_path: Path) -> None:
    first = datetime(2020, 1, 1, tzinfo=UTC)
    times = [
        (first + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S +0000") for i in range(6000)
    ]
    rows = [rec("HeartRate", str(50 + i % 40), "count/min", t) for i, t in enumerate(times)]
    path = write_export(tmp_path, "\n".join(rows))
    batches = list(read_apple_health(path, patient=USER))
    assert len(batches) >= 2
    keys = [u.key for b in batches for u in b.units]
    assert len(keys) == len(set(keys)) == 6000


def test_parse_healthkit_date() -> None:
    assert parse_healthkit_date("2019-06-04 18:37:03 -0700") == datetime(
        2019, 6, 5, 1, 37, 3, tzinfo=UTC
    )
    for bad in (
        "2019-06-04T18:37:03-0700",
        "2019-13-04 18:37:03 -0700",
        "2019-06-04 18:37:03 +2500",
    ):
        with pytest.raises(ValueError):
            parse_healthkit_date(bad)


# --------------------------------------------------------------------------------------------
# the command line


def test_cli_import_with_patient(tmp_path: Path, shared: Path) -> None:
    db = str(tmp_path / "cli.db")
    store = open_store(db, actor="test")
    make_patient(store)
    store.close()
    args = ["import", str(export_path(shared)), "--patient", USER, "--store", db, "--json"]
    args += ["--tz", "America/Los_Angeles"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    assert summary["inserted"] == 6 and summary["quarantined"] == 2
    result = CliRunner().invoke(
        main, ["timeline", f"{DEVICE_USER_SYSTEM}|{USER}", "--store", db, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "8867-4" in result.output and "Apple Watch" in result.output


def test_export_keeps_interval_and_device(tmp_path: Path, sqlite_store: SqlStore) -> None:
    from medtwin.export.fhir import patient_bundle

    body = rec(
        "StepCount",
        "734",
        "count",
        "2022-11-01 08:01:00 +0100",
        "2022-11-01 08:10:00 +0100",
        sourceVersion="16.1",
    )
    make_patient(sqlite_store)
    import_paths(sqlite_store, [write_export(tmp_path, body)], patient=USER)
    pid = sqlite_store.resolve_patient(f"{DEVICE_USER_SYSTEM}|{USER}")
    [obs] = [
        e["resource"]
        for e in patient_bundle(sqlite_store, pid)["entry"]
        if e["resource"]["resourceType"] == "Observation"
    ]
    assert obs["effectivePeriod"] == {
        "start": "2022-11-01T07:01:00+00:00",
        "end": "2022-11-01T07:10:00+00:00",
    }
    assert obs["device"] == {"display": "Watch 16.1"}
    assert obs["valueQuantity"]["value"] == 734 and obs["valueQuantity"]["code"] == "{steps}"


def test_docstring_examples_run() -> None:
    import doctest

    import medtwin.ingest.apple_health as module

    failures, tried = doctest.testmod(module)
    assert tried >= 5 and failures == 0


@given(
    when=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
    offset_min=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_dates_agree_with_strptime(when: datetime, offset_min: int) -> None:
    sign = "-" if offset_min < 0 else "+"
    text = (
        when.strftime("%Y-%m-%d %H:%M:%S")
        + f" {sign}{abs(offset_min) // 60:02d}{abs(offset_min) % 60:02d}"
    )
    assert parse_healthkit_date(text) == raw_date(text)


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.integers(min_value=30, max_value=220), min_size=1, max_size=20),
    minutes=st.integers(min_value=0, max_value=10_000),
)
def test_reading_twice_gives_the_same_facts(
    tmp_path_factory: pytest.TempPathFactory, values: list[int], minutes: int
) -> None:
    first = datetime(2021, 3, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    rows = [
        rec(
            "HeartRate",
            str(v),
            "count/min",
            (first + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S +0000"),
        )
        for i, v in enumerate(values)
    ]
    path = write_export(tmp_path_factory.mktemp("hk"), "\n".join(rows))
    once = facts_of(list(read_apple_health(path, patient=USER)))
    twice = facts_of(list(read_apple_health(path, patient=USER)))
    assert once == twice and len({f.source_id for f in once}) == len(values)
    assert [f.value_num for f in once] == [float(v) for v in values]
