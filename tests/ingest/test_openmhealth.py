"""Open mHealth import: the official schema test documents, provenance, bad input, the store."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medtwin.ingest.base import Batch, QuarantineItem
from medtwin.ingest.openmhealth import (
    DEVICE_USER_SYSTEM,
    MEASURES,
    SCHEMA_BASE_URI,
    OpenMHealthReader,
    read_openmhealth_bytes,
    supported_versions,
    validate_body,
)
from medtwin.record.facts import LOINC, Demographics, Identifier, Observation, content_hash
from medtwin.store.base import AppendResult
from medtwin.store.sql import SqlStore

OMH_TYPES = tuple(MEASURES)
USER = "watch-17"
DEVICE_USER = Identifier(DEVICE_USER_SYSTEM, USER)
CREATED = "2024-03-01T09:00:00Z"
# the one official shouldPass document whose time interval ends before it starts
REVERSED = ("body-temperature", "4.0", "valid-temperature-with-statistic")
# facts per data point beyond the first: blood pressure adds systolic and diastolic
EXTRA_FACTS = {"blood-pressure": 2}
_IDS = itertools.count(1)


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def omh_dir(shared: Path) -> Path:
    """``<shared data>/wearables/openmhealth`` (``shared`` skips, or fails under CI, when absent)."""
    folder = shared / "wearables" / "openmhealth"
    if not folder.is_dir():
        reason = f"Open mHealth schemas and test data not found at {folder}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return folder


def official(omh_dir: Path, verdict: str) -> list[tuple[str, str, Path]]:
    """``(schema, version, file)`` of every official test document with this verdict."""
    found = []
    for name in OMH_TYPES:
        for folder in sorted((omh_dir / "test-data" / "omh" / name).iterdir()):
            for path in sorted((folder / verdict).glob("*.json")):
                found.append((name, folder.name, path))
    return found


def data_point(
    name: str,
    version: str,
    body: Any,
    *,
    point_id: str | None = "auto",
    user: str | None = USER,
    source_name: str | None = "Acme Watch",
    created: str | None = CREATED,
) -> dict[str, Any]:
    """An Open mHealth data point around ``body``."""
    header: dict[str, Any] = {
        "schema_id": {"namespace": "omh", "name": name, "version": version},
    }
    if point_id is not None:
        header["id"] = f"{name}-{version}-{next(_IDS)}" if point_id == "auto" else point_id
    if created is not None:
        header["creation_date_time"] = created
    if user is not None:
        header["user_id"] = user
    if source_name is not None:
        header["acquisition_provenance"] = {"source_name": source_name, "modality": "sensed"}
    return {"header": header, "body": body}


def hr_body(value: float, when: str) -> dict[str, Any]:
    return {
        "heart_rate": {"value": value, "unit": "beats/min"},
        "effective_time_frame": {"date_time": when},
    }


def read(data: bytes, **kwargs: Any) -> list[Batch]:
    return list(read_openmhealth_bytes(data, file="test.json", **kwargs))


def read_points(points: list[dict[str, Any]], **kwargs: Any) -> list[Batch]:
    return read(orjson.dumps(points), **kwargs)


def facts_of(batches: list[Batch]) -> list[Observation]:
    out = []
    for batch in batches:
        for unit in batch.units:
            for fact in unit.facts:
                assert isinstance(fact, Observation)
                out.append(fact)
    return out


def quarantine_of(batches: list[Batch]) -> list[QuarantineItem]:
    return [item for batch in batches for item in batch.quarantine]


def append_all(store: SqlStore, batches: list[Batch]) -> AppendResult:
    total = AppendResult()
    for batch in batches:
        total.add(store.append(batch))
    return total


def make_patient(store: SqlStore, user: str = USER) -> None:
    """Create the patient whose device user id is ``user`` (as the lead's issue asks)."""
    demographics = Demographics(
        source="registry",
        source_id=f"Patient/{user}",
        subject=Identifier("urn:hospital:mrn", f"MRN-{user}"),
        identifiers=(
            Identifier("urn:hospital:mrn", f"MRN-{user}"),
            Identifier(DEVICE_USER_SYSTEM, user),
        ),
        family="Lovelace",
        given=("Ada",),
    )
    store.append_facts([demographics], source="registry")


def by_code(facts: list[Observation], code: str) -> list[Observation]:
    return [f for f in facts if f.code is not None and f.code.code == code]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --------------------------------------------------------------------------------------------
# the vendored schemas


def _vendored() -> dict[str, bytes]:
    folder = resources.files("medtwin.ingest") / "omh_schemas"
    return {e.name: e.read_bytes() for e in folder.iterdir() if e.name.endswith(".json")}


def _stand_ins() -> dict[str, bytes]:
    folder = resources.files("medtwin.ingest") / "omh_schemas" / "ieee"
    return {e.name: e.read_bytes() for e in folder.iterdir() if e.name.endswith(".json")}


def test_vendored_schemas_are_the_upstream_files(omh_dir: Path) -> None:
    vendored = _vendored()
    assert len(vendored) == 47
    for name, data in vendored.items():
        assert data == (omh_dir / "schemas" / "omh" / name).read_bytes(), name


def test_version_aliases_match_upstream_links(omh_dir: Path) -> None:
    """``name-1.x.json`` (a symbolic link upstream) resolves to the newest vendored 1.y."""
    vendored = set(_vendored())
    pattern = re.compile(r"(.+)-([0-9]+)\.([0-9]+)\.json")
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    for name in vendored:
        match = pattern.fullmatch(name)
        assert match is not None
        key = (match[1], match[2])
        newest[key] = max(newest.get(key, (-1, "")), (int(match[3]), name))
    checked = 0
    for (family, major), (_minor, target) in newest.items():
        link = omh_dir / "schemas" / "omh" / f"{family}-{major}.x.json"
        if link.exists():
            assert link.read_text().strip() == target, link.name
            checked += 1
    assert checked >= 20


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_vendored_schemas_are_closed_under_ref() -> None:
    """Every ``$ref`` of every vendored schema names a vendored file, alias or stand-in."""
    vendored = _vendored()
    stand_ins = _stand_ins()
    aliases = {re.sub(r"\.[0-9]+\.json$", ".x.json", name) for name in vendored}
    ieee = "https://w3id.org/ieee/ieee-1752-schema/"
    known = {SCHEMA_BASE_URI + n for n in (*vendored, *aliases)} | {ieee + n for n in stand_ins}
    for name, data in (*vendored.items(), *stand_ins.items()):
        for ref in _refs(orjson.loads(data)):
            target = ref.split("#", 1)[0]
            if not target:
                continue
            uri = target if "://" in target else SCHEMA_BASE_URI + target
            assert uri in known, f"{name}: $ref {ref} is not vendored"


def test_supported_versions() -> None:
    assert supported_versions("heart-rate") == ("2.0", "1.1", "1.0")
    assert supported_versions("blood-pressure") == ("4.0", "3.1", "3.0", "2.0", "1.0")
    assert supported_versions("step-count") == ("3.0", "2.0", "1.0")
    assert supported_versions("body-weight") == ()


# --------------------------------------------------------------------------------------------
# the official test documents


def test_every_should_pass_document_validates_and_maps(omh_dir: Path) -> None:
    documents = official(omh_dir, "shouldPass")
    assert len(documents) == 85
    counts: dict[str, int] = {}
    for name, version, path in documents:
        body = orjson.loads(path.read_bytes())
        assert validate_body(name, version, body) is None, path
        point = data_point(name, version, body, point_id=f"{name}/{version}/{path.stem}")
        batches = read(orjson.dumps(point))
        facts = facts_of(batches)
        flags = quarantine_of(batches)
        if (name, version, path.stem) == REVERSED:
            assert len(flags) == 1 and "ends" in flags[0].reason, flags
            assert flags[0].resource_type == f"omh:{name}:{version}"
        else:
            assert flags == [], (path, [f.describe() for f in flags])
        measure = MEASURES[name]
        assert len(facts) == 1 + EXTRA_FACTS.get(name, 0) + (
            "supplemental_oxygen_flow_rate" in body
        )
        main = facts[0]
        assert main.code is not None and (main.code.system, main.code.code) == (
            LOINC,
            measure.loinc,
        )
        assert main.subject == DEVICE_USER
        assert main.resource_type == f"omh:{name}:{version}"
        assert main.effective_start is not None, path  # time frame, else the header's creation
        for fact in facts:
            if fact.value_num is not None:
                assert fact.unit in ("/min", "mm[Hg]", "{steps}", "mg/dL", "%", "Cel", "L/min")
        counts[name] = counts.get(name, 0) + 1
    assert counts == {
        "heart-rate": 8,
        "blood-pressure": 18,
        "step-count": 10,
        "blood-glucose": 26,
        "oxygen-saturation": 5,
        "body-temperature": 11,
        "respiratory-rate": 7,
    }


def _official_point(omh_dir: Path, name: str, version: str, stem: str) -> dict[str, Any]:
    path = omh_dir / "test-data" / "omh" / name / version / "shouldPass" / f"{stem}.json"
    return data_point(name, version, orjson.loads(path.read_bytes()), point_id=stem)


def test_should_pass_values(omh_dir: Path) -> None:
    points = [
        _official_point(omh_dir, "blood-pressure", "4.0", "blood-pressure-only"),
        _official_point(omh_dir, "body-temperature", "2.0", "valid-temperature"),
        _official_point(omh_dir, "step-count", "3.0", "valid-step-count"),
        _official_point(omh_dir, "step-count", "1.0", "with-time-frame"),
        _official_point(omh_dir, "blood-glucose", "2.0", "with-everything"),
        _official_point(omh_dir, "oxygen-saturation", "2.0", "with-oxygen"),
        _official_point(omh_dir, "heart-rate", "2.0", "with-descriptive-statistic"),
        _official_point(omh_dir, "heart-rate", "1.0", "heart-rate-only"),
        _official_point(omh_dir, "blood-pressure", "1.0", "with-time-frame"),
        _official_point(omh_dir, "respiratory-rate", "2.0", "respiratory-rate-only"),
    ]
    facts = facts_of(read_points(points, tz="America/New_York"))

    panel, systolic, diastolic = facts[0:3]
    assert panel.code is not None and panel.code.code == "85354-9" and panel.value_num is None
    assert panel.source_id == "DataPoint/blood-pressure-only"
    assert (systolic.code and systolic.code.code, systolic.value_num, systolic.unit) == (
        "8480-6",
        115.0,
        "mm[Hg]",
    )
    assert systolic.source_id == "DataPoint/blood-pressure-only#8480-6"
    assert systolic.part_of == panel.source_id == diastolic.part_of
    assert (diastolic.code and diastolic.code.code, diastolic.value_num) == ("8462-4", 60.0)
    assert systolic.original_unit == "mmHg"
    assert systolic.effective_start == utc("2020-02-05T15:25:00+00:00")
    assert systolic.original_time == "2020-02-05T07:25:00-08:00"

    temperature = facts[3]
    assert temperature.code is not None and temperature.code.code == "8310-5"
    assert temperature.value_num == pytest.approx((97 - 32) * 5 / 9)
    assert (temperature.unit, temperature.original_value, temperature.original_unit) == (
        "Cel",
        97.0,
        "F",
    )
    assert temperature.value_text == "measurement_location=forehead"

    steps = facts[4]
    assert (steps.code and steps.code.code, steps.value_num, steps.unit) == (
        "55423-8",
        10600.0,
        "{steps}",
    )
    assert steps.effective_start == utc("2016-02-05T06:25:00+00:00")
    assert steps.effective_end == utc("2016-02-05T07:25:00+00:00")
    assert steps.category == "activity"
    steps_v1 = facts[5]  # step-count 1.0: a bare number of steps
    assert (steps_v1.value_num, steps_v1.unit, steps_v1.original_unit) == (6000.0, "{steps}", None)

    glucose = facts[6]
    assert (glucose.code and glucose.code.code, glucose.value_num, glucose.unit) == (
        "2339-0",
        120.0,
        "mg/dL",
    )
    assert glucose.value_text == (
        "specimen_source=interstitial fluid; temporal_relationship_to_meal=fasting; "
        "temporal_relationship_to_sleep=on waking; descriptive_statistic=minimum"
    )

    spo2, oxygen = facts[7:9]
    assert (spo2.code and spo2.code.code, spo2.value_num, spo2.unit) == ("59408-5", 95.0, "%")
    assert "measurement_method=pulse oximetry" in (spo2.value_text or "")
    assert "supplemental_oxygen_flow_rate=2.5 L/min" in (spo2.value_text or "")
    assert "oxygen_therapy_mode_of_administration=nasal cannula" in (spo2.value_text or "")
    assert (oxygen.code and oxygen.code.code, oxygen.value_num, oxygen.unit) == (
        "3151-8",
        2.5,
        "L/min",
    )
    assert oxygen.part_of == spo2.source_id

    heart = facts[9]
    assert (heart.value_num, heart.unit, heart.original_unit) == (50.0, "/min", "beats/min")
    assert heart.value_text == "descriptive_statistic=minimum"
    assert heart.effective_start == utc("2020-02-05T05:00:00+00:00")
    assert heart.effective_end == utc("2020-02-06T05:00:00+00:00")

    untimed = facts[10]  # heart-rate 1.0 without a time frame: the header's creation time
    assert untimed.effective_start == utc(CREATED.replace("Z", "+00:00"))
    assert untimed.value_text == "effective_time_from=header.creation_date_time"
    assert untimed.source_recorded_at == untimed.effective_start

    part_of_day = facts[11]  # date + part_of_day: the whole day, read in tz
    assert part_of_day.effective_start == utc("2013-02-05T05:00:00+00:00")
    assert part_of_day.effective_end == utc("2013-02-06T05:00:00+00:00")
    assert part_of_day.original_time == '{"date":"2013-02-05","part_of_day":"evening"}'

    breathing = facts[14]
    assert (breathing.code and breathing.code.code, breathing.value_num, breathing.unit) == (
        "9279-1",
        12.0,
        "/min",
    )
    assert breathing.device == "Acme Watch; modality=sensed"


def test_every_should_fail_document_is_quarantined(omh_dir: Path, sqlite_store: SqlStore) -> None:
    documents = official(omh_dir, "shouldFail")
    assert len(documents) == 73
    make_patient(sqlite_store)
    before = sqlite_store.counts()["facts"]
    total = AppendResult()
    for name, version, path in documents:
        body = orjson.loads(path.read_bytes())
        assert validate_body(name, version, body) is not None, path
        point = data_point(name, version, body, point_id=f"{name}/{version}/{path.stem}")
        batches = read(orjson.dumps(point))
        assert facts_of(batches) == [], path
        (item,) = quarantine_of(batches)
        assert item.reason.startswith(f"omh:{name}:{version}: "), item.reason
        assert item.field is not None and item.field.startswith("$.body"), item
        assert (item.file, item.location) == ("test.json", "document")
        assert item.resource_id == f"{name}/{version}/{path.stem}"
        total.add(append_all(sqlite_store, batches))
    assert (total.inserted, total.quarantined) == (0, 73)
    assert sqlite_store.counts()["facts"] == before


def test_should_fail_messages_name_the_field(omh_dir: Path) -> None:
    body = orjson.loads(
        (omh_dir / "test-data/omh/heart-rate/2.0/shouldFail/incorrect-unit.json").read_bytes()
    )
    (item,) = quarantine_of(read_points([data_point("heart-rate", "2.0", body)]))
    assert item.field == "$.body.heart_rate.unit"
    assert item.reason == "omh:heart-rate:2.0: 'beat/min' is not one of ['beats/min']"
    assert item.describe().startswith("test.json, item[0], field $.body.heart_rate.unit: ")


# --------------------------------------------------------------------------------------------
# recognising files


def test_can_read(tmp_path: Path, shared: Path, omh_dir: Path) -> None:
    reader = OpenMHealthReader()
    point = data_point("heart-rate", "2.0", hr_body(60, "2024-03-01T08:00:00Z"))
    single = tmp_path / "one.json"
    single.write_bytes(orjson.dumps(point, option=orjson.OPT_INDENT_2))
    array = tmp_path / "many.json"
    array.write_bytes(b"\xef\xbb\xbf  [\n" + orjson.dumps(point) + b"]")
    lines = tmp_path / "points.ndjson"
    lines.write_bytes(orjson.dumps(point) + b"\n" + orjson.dumps(point) + b"\n")
    headerless = tmp_path / "body.json"
    headerless.write_bytes(orjson.dumps({"body": hr_body(60, "2024-03-01T08:00:00Z")}))
    for path in (single, array, lines, headerless):
        assert reader.can_read(path), path

    bare_body = tmp_path / "bare.json"
    bare_body.write_bytes(orjson.dumps(hr_body(60, "2024-03-01T08:00:00Z")))
    not_json = tmp_path / "broken.json"
    not_json.write_bytes(b"{not json")
    other_suffix = tmp_path / "points.txt"
    other_suffix.write_bytes(orjson.dumps(point))
    for path in (bare_body, not_json, other_suffix, tmp_path / "missing.json"):
        assert not reader.can_read(path), path

    # FHIR files are never claimed: a Synthea bundle and Bulk Data NDJSON
    bundle = next(iter(sorted((shared / "fhir" / "synthea-r4").glob("*.json"))))
    bulk = shared / "fhir" / "bulk-10-patients" / "Condition.000.ndjson"
    assert not reader.can_read(bundle)
    assert not reader.can_read(bulk)
    # nor the official bodies, which are not data points
    assert not reader.can_read(
        omh_dir / "test-data/omh/heart-rate/2.0/shouldPass/with-temporal-relationship-to-sleep.json"
    )


def test_reader_reads_json_and_ndjson_files(tmp_path: Path) -> None:
    points = [
        data_point("heart-rate", "2.0", hr_body(60 + i, f"2024-03-01T08:0{i}:00Z"))
        for i in range(3)
    ]
    array = tmp_path / "hr.json"
    array.write_bytes(orjson.dumps(points))
    lines = tmp_path / "hr.ndjson"
    lines.write_bytes(b"\n".join(orjson.dumps(p) for p in points) + b"\n\n")
    reader = OpenMHealthReader()
    from_array = list(reader.read(array, source=None, tz="UTC"))
    from_lines = list(reader.read(lines, source=None, tz="UTC"))
    assert [u.location for b in from_array for u in b.units] == ["item[0]", "item[1]", "item[2]"]
    assert [u.location for b in from_lines for u in b.units] == ["line 1", "line 2", "line 3"]
    assert [f.value_num for f in facts_of(from_array)] == [60.0, 61.0, 62.0]
    assert [content_hash(f) for f in facts_of(from_array)] == [
        content_hash(f) for f in facts_of(from_lines)
    ]
    assert from_array[0].units[0].file == str(array)
    assert from_array[0].resources_read == 3


# --------------------------------------------------------------------------------------------
# provenance


def test_source_and_source_id() -> None:
    body = hr_body(60, "2024-03-01T08:00:00Z")
    with_id = data_point("heart-rate", "2.0", body, point_id="1b7d")
    without_id = data_point("heart-rate", "2.0", body, point_id=None, source_name="Band")
    anonymous = data_point("heart-rate", "2.0", body, point_id=None, source_name=None)
    batches = read_points([with_id, without_id, anonymous])
    assert [b.source for b in batches] == [
        "openmhealth:Acme Watch",
        "openmhealth:Band",
        "openmhealth",
    ]
    first, second, third = facts_of(batches)
    assert first.source_id == "DataPoint/1b7d"
    assert re.fullmatch(r"DataPoint/[0-9a-f]{32}", second.source_id)
    assert second.source_id != third.source_id
    assert first.device == "Acme Watch; modality=sensed"
    assert third.device is None

    named = read_points([with_id, without_id], source="my-watch")
    assert [b.source for b in named] == ["my-watch"]
    assert {f.source for f in facts_of(named)} == {"my-watch"}


@settings(max_examples=40, deadline=None)
@given(
    value=st.floats(min_value=20, max_value=250, allow_nan=False),
    seconds=st.integers(min_value=0, max_value=59),
    data=st.data(),
)
def test_hash_source_id_ignores_key_order(value: float, seconds: int, data: st.DataObject) -> None:
    """A data point without ``header.id`` gets the same source id however its keys are ordered,
    so re-sending it (from another serialiser) is a no-op."""
    point = data_point(
        "heart-rate", "2.0", hr_body(value, f"2024-03-01T08:00:{seconds:02d}Z"), point_id=None
    )

    def shuffled(node: Any) -> Any:
        if isinstance(node, dict):
            keys = data.draw(st.permutations(list(node)))
            return {key: shuffled(node[key]) for key in keys}
        return node

    (fact,) = facts_of(read_points([point]))
    (again,) = facts_of(read_points([shuffled(point)]))
    assert fact.source_id == again.source_id
    assert content_hash(fact) == content_hash(again)


def test_patient_argument_and_user_id() -> None:
    body = hr_body(60, "2024-03-01T08:00:00Z")
    (fact,) = facts_of(read_points([data_point("heart-rate", "2.0", body)], patient="bed-4"))
    assert fact.subject == Identifier(DEVICE_USER_SYSTEM, "bed-4")

    nobody = data_point("heart-rate", "2.0", body, user=None)
    batches = read_points([nobody])
    assert facts_of(batches) == []
    (item,) = quarantine_of(batches)
    assert item.reason == "no patient: pass --patient or set header.user_id"
    assert item.field == "$.header.user_id"
    (fact,) = facts_of(read_points([nobody], patient="bed-4"))
    assert fact.subject == Identifier(DEVICE_USER_SYSTEM, "bed-4")


def test_headerless_data_point() -> None:
    """A ``{"body": ...}`` without a header: the schema is inferred from the body."""
    old = {"body": {"heart_rate": {"value": 70, "unit": "beats/min"}}}  # 1.x: no time frame
    new = {"body": hr_body(71, "2024-03-01T08:00:00Z")}
    batches = read_points([old, new], patient="bed-4")
    old_fact, new_fact = facts_of(batches)
    assert old_fact.resource_type == "omh:heart-rate:1.1"
    assert old_fact.effective_start is None
    assert new_fact.resource_type == "omh:heart-rate:2.0"
    assert all(f.source == "openmhealth" for f in (old_fact, new_fact))

    (item,) = quarantine_of(read_points([{"body": {"weight": 3}}], patient="bed-4"))
    assert "headerless data point" in item.reason


def test_unsupported_schemas() -> None:
    body = hr_body(60, "2024-03-01T08:00:00Z")
    weight = data_point("body-weight", "2.0", {"body_weight": {"value": 70, "unit": "kg"}})
    ieee = data_point("heart-rate", "2.0", body)
    ieee["header"]["schema_id"]["namespace"] = "ieee"
    future = data_point("heart-rate", "9.0", body)
    minor = data_point("heart-rate", "2.3", body)  # an unknown minor: the newest 2.x validates
    batches = read_points([weight, ieee, future, minor])
    reasons = [item.reason for item in quarantine_of(batches)]
    assert reasons[0].startswith("schema omh:body-weight:2.0 is not mapped")
    assert reasons[1].startswith("schema ieee:heart-rate:2.0 is not supported")
    assert reasons[2].startswith("schema omh:heart-rate:9.0: version not supported")
    assert len(reasons) == 3
    (fact,) = facts_of(batches)
    assert fact.resource_type == "omh:heart-rate:2.0"


def test_header_errors() -> None:
    point = data_point("heart-rate", "2.0", hr_body(60, "2024-03-01T08:00:00Z"))
    del point["header"]["schema_id"]["version"]
    (item,) = quarantine_of(read_points([point]))
    assert item.field == "$.header.schema_id"
    assert item.reason == "omh:data-point:1.0: 'version' is a required property"


def test_glucose_units_and_specimens() -> None:
    mmol = {
        "blood_glucose": {"value": 5.5, "unit": "mmol/L"},
        "effective_time_frame": {"date_time": "2024-03-01T07:00:00Z"},
        "specimen_source": "capillary blood",
        "temporal_relationship_to_meal": "fasting",
    }
    urine = {**mmol, "specimen_source": "urine"}
    batches = read_points(
        [data_point("blood-glucose", "4.0", mmol), data_point("blood-glucose", "4.0", urine)]
    )
    (fact,) = facts_of(batches)
    assert fact.value_num == pytest.approx(99.09, abs=0.01)  # 5.5 mmol/L x 18.016 g/mol / 10
    assert (fact.unit, fact.original_value, fact.original_unit) == ("mg/dL", 5.5, "mmol/L")
    assert fact.category == "laboratory"
    (item,) = quarantine_of(batches)
    assert "glucose measured in urine is not blood glucose" in item.reason


def test_time_interval_forms() -> None:
    def steps(interval: dict[str, Any]) -> dict[str, Any]:
        return {"step_count": 100, "effective_time_frame": {"time_interval": interval}}

    start = "2024-03-01T08:00:00Z"
    points = [
        data_point(
            "step-count",
            "2.0",
            steps({"start_date_time": start, "duration": {"value": 90, "unit": "min"}}),
        ),
        data_point(
            "step-count",
            "2.0",
            steps({"end_date_time": start, "duration": {"value": 1, "unit": "d"}}),
        ),
    ]
    after, before = facts_of(read_points(points))
    assert (after.effective_start, after.effective_end) == (
        utc("2024-03-01T08:00:00+00:00"),
        utc("2024-03-01T09:30:00+00:00"),
    )
    assert (before.effective_start, before.effective_end) == (
        utc("2024-02-29T08:00:00+00:00"),
        utc("2024-03-01T08:00:00+00:00"),
    )
    assert after.original_time == (
        '{"start_date_time":"2024-03-01T08:00:00Z","duration":{"value":90,"unit":"min"}}'
    )


# --------------------------------------------------------------------------------------------
# bad input


def test_non_json(tmp_path: Path) -> None:
    (item,) = quarantine_of(read(b"heart rate 60"))
    assert item.reason.startswith("not JSON: ")
    assert (item.location, item.content) == ("file", "heart rate 60")

    body = hr_body(60, "2024-03-01T08:00:00Z")
    good = orjson.dumps(data_point("heart-rate", "2.0", body, point_id="a"))
    other = orjson.dumps(data_point("heart-rate", "2.0", body, point_id="b"))
    text = good + b'\n{"header": oops\n' + other + b"\n"
    batches = read(text, ndjson=True)
    assert len(facts_of(batches)) == 2
    (item,) = quarantine_of(batches)
    assert item.location == "line 2" and item.reason.startswith("not JSON: ")
    # the same lines in a .json file are read as NDJSON too
    assert len(facts_of(read(text))) == 2

    for empty in (b"", b"  \n", b"[]"):
        (item,) = quarantine_of(read(empty))
        assert item.location == "file" and "no Open mHealth data point" in item.reason
    number, fhir = quarantine_of(read(b'[1, {"resourceType": "Patient"}]'))
    assert number.reason.startswith("not an Open mHealth data point: a JSON int")
    assert number.location == "item[0]"
    assert fhir.reason.startswith("not an Open mHealth data point: a FHIR resource")


def test_unknown_unit() -> None:
    body = {
        "body_temperature": {"value": 310, "unit": "kelvin"},
        "effective_time_frame": {"date_time": "2024-03-01T08:00:00Z"},
    }
    (item,) = quarantine_of(read_points([data_point("body-temperature", "4.0", body)]))
    assert item.field == "$.body.body_temperature.unit"
    assert "'kelvin' is not one of ['K', 'F', 'C']" in item.reason
    kelvin = {**body, "body_temperature": {"value": 310.15, "unit": "K"}}
    (fact,) = facts_of(read_points([data_point("body-temperature", "4.0", kelvin)]))
    assert fact.value_num == pytest.approx(37.0)
    assert fact.unit == "Cel"


def test_naive_timestamps_read_in_tz() -> None:
    point = data_point("heart-rate", "2.0", hr_body(60, "2024-07-01T08:00:00"))
    (paris,) = facts_of(read_points([point], tz="Europe/Paris"))
    assert paris.effective_start == utc("2024-07-01T06:00:00+00:00")
    assert paris.original_time == "2024-07-01T08:00:00"
    (default,) = facts_of(read_points([point]))
    assert default.effective_start == utc("2024-07-01T08:00:00+00:00")
    with pytest.raises(ValueError, match="unknown time zone"):
        read_points([point], tz="Mars/Olympus")


def test_invalid_date_time_is_quarantined() -> None:
    point = data_point("heart-rate", "2.0", hr_body(60, "2024-02-30T08:00:00Z"))
    (item,) = quarantine_of(read_points([point]))
    assert item.field == "$.body.effective_time_frame.date_time"
    assert item.reason.startswith("omh:heart-rate:2.0: '2024-02-30T08:00:00Z' is not a 'date-time'")
    assert "day is out of range for month" in item.reason


def test_reversed_interval_is_stored_and_flagged(sqlite_store: SqlStore) -> None:
    body = {
        "body_temperature": {"value": 37.2, "unit": "C"},
        "effective_time_frame": {
            "time_interval": {
                "start_date_time": "2024-03-02T08:00:00Z",
                "end_date_time": "2024-03-01T08:00:00Z",
            }
        },
    }
    make_patient(sqlite_store)
    batches = read_points([data_point("body-temperature", "4.0", body, point_id="t1")])
    (fact,) = facts_of(batches)
    assert (fact.effective_start, fact.effective_end) == (utc("2024-03-02T08:00:00+00:00"), None)
    result = append_all(sqlite_store, batches)
    assert (result.inserted, result.quarantined) == (1, 1)
    (entry,) = sqlite_store.quarantine()
    assert "ends (2024-03-01T08:00:00+00:00) before it starts" in entry.item.reason


# --------------------------------------------------------------------------------------------
# the store


def _wearable_day() -> list[dict[str, Any]]:
    """A day of one patient's readings, heart rates out of order, one sent twice."""
    hr = [
        data_point("heart-rate", "2.0", hr_body(72, "2024-03-01T10:00:00+01:00"), point_id="hr-3"),
        data_point("heart-rate", "2.0", hr_body(58, "2024-03-01T07:00:00+01:00"), point_id="hr-1"),
        data_point("heart-rate", "2.0", hr_body(64, "2024-03-01T08:30:00+01:00"), point_id="hr-2"),
    ]
    bp = {
        "systolic_blood_pressure": {"value": 128, "unit": "mmHg"},
        "diastolic_blood_pressure": {"value": 82, "unit": "mmHg"},
        "effective_time_frame": {"date_time": "2024-03-01T07:05:00+01:00"},
        "body_posture": "sitting",
    }
    glucose = {
        "blood_glucose": {"value": 5.5, "unit": "mmol/L"},
        "effective_time_frame": {"date_time": "2024-03-01T07:10:00+01:00"},
        "temporal_relationship_to_meal": "fasting",
    }
    temperature = {
        "body_temperature": {"value": 98.6, "unit": "F"},
        "effective_time_frame": {"date_time": "2024-03-01T07:15:00+01:00"},
    }
    spo2 = {
        "oxygen_saturation": {"value": 97, "unit": "%"},
        "effective_time_frame": {"date_time": "2024-03-01T07:20:00+01:00"},
        "measurement_method": "pulse oximetry",
    }
    breathing = {
        "respiratory_rate": {"value": 14, "unit": "breaths/min"},
        "effective_time_frame": {"date_time": "2024-03-01T07:25:00+01:00"},
    }
    steps = {
        "step_count": {"value": 8421, "unit": "steps"},
        "effective_time_frame": {
            "time_interval": {
                "start_date_time": "2024-03-01T00:00:00+01:00",
                "end_date_time": "2024-03-02T00:00:00+01:00",
            }
        },
    }
    return [
        *hr,
        hr[0],  # a duplicate
        data_point("blood-pressure", "4.0", bp, point_id="bp-1"),
        data_point("blood-glucose", "4.0", glucose, point_id="bg-1"),
        data_point("body-temperature", "4.0", temperature, point_id="bt-1"),
        data_point("oxygen-saturation", "2.0", spo2, point_id="ox-1"),
        data_point("respiratory-rate", "2.0", breathing, point_id="rr-1"),
        data_point("step-count", "3.0", steps, point_id="sc-1"),
    ]


def test_end_to_end_both_stores(store: SqlStore, tmp_path: Path) -> None:
    make_patient(store)
    path = tmp_path / "day.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(p) for p in _wearable_day()))
    reader = OpenMHealthReader()
    assert reader.can_read(path)
    first = append_all(store, list(reader.read(path, source=None, tz="UTC")))
    # 3 heart rates (+1 duplicate), 3 blood-pressure facts, 5 others
    assert (first.inserted, first.unchanged, first.quarantined) == (11, 1, 0)
    assert first.resources_read == 10
    again = append_all(store, list(reader.read(path, source=None, tz="UTC")))
    assert (again.inserted, again.new_versions, again.unchanged) == (0, 0, 12)

    pid = store.resolve_patient(f"{DEVICE_USER_SYSTEM}|{USER}")
    heart = store.timeline(pid, codes=["8867-4"])
    assert [getattr(s.fact, "value_num", None) for s in heart] == [58.0, 64.0, 72.0]  # by time
    assert [s.fact.effective_start for s in heart] == [
        utc("2024-03-01T06:00:00+00:00"),
        utc("2024-03-01T07:30:00+00:00"),
        utc("2024-03-01T09:00:00+00:00"),
    ]
    values = {}
    for stored in store.timeline(pid, kinds=["Observation"]):
        fact = stored.fact
        assert isinstance(fact, Observation) and fact.code is not None
        values[fact.code.code] = (fact.value_num, fact.unit)
    assert values["8480-6"] == (128.0, "mm[Hg]")
    assert values["8462-4"] == (82.0, "mm[Hg]")
    assert values["85354-9"] == (None, None)
    assert values["2339-0"][0] == pytest.approx(99.09, abs=0.01)
    assert values["2339-0"][1] == "mg/dL"
    assert values["8310-5"][0] == pytest.approx(37.0)
    assert values["8310-5"][1] == "Cel"
    assert values["59408-5"] == (97.0, "%")
    assert values["9279-1"] == (14.0, "/min")
    assert values["55423-8"] == (8421.0, "{steps}")
    latest = store.latest(pid, codes=["8867-4"])
    assert latest["8867-4"].fact.source == "openmhealth:Acme Watch"


def test_all_should_pass_documents_into_sqlite(omh_dir: Path, sqlite_store: SqlStore) -> None:
    make_patient(sqlite_store)
    points = [
        data_point(
            name, version, orjson.loads(path.read_bytes()), point_id=f"{name}/{version}/{path.stem}"
        )
        for name, version, path in official(omh_dir, "shouldPass")
    ]
    batches = read_points(points)
    facts = facts_of(batches)
    result = append_all(sqlite_store, batches)
    assert result.inserted == len(facts) == 85 + 2 * 18 + 2
    assert result.quarantined == 1  # the reversed interval flag
    assert append_all(sqlite_store, read_points(points)).unchanged == len(facts)
    pid = sqlite_store.resolve_patient(f"{DEVICE_USER_SYSTEM}|{USER}")
    temperatures = sqlite_store.timeline(pid, codes=["8310-5"])
    assert len(temperatures) == 11
    assert all(getattr(s.fact, "unit", None) == "Cel" for s in temperatures)


def test_unknown_patient_waits_in_quarantine(sqlite_store: SqlStore) -> None:
    point = data_point(
        "heart-rate", "2.0", hr_body(60, "2024-03-01T08:00:00Z"), point_id="w1", user="watch-99"
    )
    first = append_all(sqlite_store, read_points([point]))
    assert (first.inserted, first.quarantined) == (0, 1)
    (entry,) = sqlite_store.quarantine()
    assert entry.item.waits_for == "Patient/watch-99"
    make_patient(sqlite_store, "watch-99")
    second = append_all(sqlite_store, read_points([point]))
    assert (second.inserted, second.resolved_quarantine) == (1, 1)
    assert sqlite_store.quarantine() == []
