"""Garmin FIT: the shared files (runs, monitoring, weight scale), both back-ends, bad files, CLI.

Expected counts and values are computed in the test from the raw messages (fitdecode's raw
field values, the FIT epoch by hand), not taken from the reader's mapping.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from medtwin.cli import main
from medtwin.ingest import discover, import_paths, reader_for
from medtwin.ingest.fit import DEVICE_USER_SYSTEM, expand_timestamp_16, read_fit
from medtwin.record.batch import Batch
from medtwin.record.facts import Demographics, Identifier, Observation
from medtwin.store import open_store
from medtwin.store.sql import SqlStore

USER = "garmin-1"
FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)


def fit_dir(shared: Path) -> Path:
    return shared / "wearables" / "fit"


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


def messages(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every data message as (name, {field: raw value})."""
    import fitdecode

    out = []
    with fitdecode.FitReader(str(path)) as reader:
        for frame in reader:
            if isinstance(frame, fitdecode.FitDataMessage):
                out.append((frame.name, {f.name: f.raw_value for f in frame.fields}))
    return out


def facts_of(batches: list[Batch]) -> list[Observation]:
    return [f for b in batches for u in b.units for f in u.facts if isinstance(f, Observation)]


def by_code(facts: list[Observation], code: str) -> list[Observation]:
    return [f for f in facts if f.code is not None and f.code.code == code]


# --------------------------------------------------------------------------------------------
# runs: heart rate per record


@pytest.mark.parametrize(
    "name", ["activity-small-fenix2-run.fit", "garmin-fenix-5-run.fit", "sample-activity.fit"]
)
def test_run_heart_rates(shared: Path, name: str) -> None:
    path = fit_dir(shared) / name
    raw = [
        (m["timestamp"], m["heart_rate"])
        for n, m in messages(path)
        if n == "record" and m.get("heart_rate") not in (None, 0, 0xFF)
    ]
    facts = facts_of(list(read_fit(path, patient=USER)))
    hr = by_code(facts, "8867-4")
    assert len(hr) == len(raw)
    assert [(f.effective_start, f.value_num) for f in hr] == [
        (FIT_EPOCH + timedelta(seconds=t), float(v)) for t, v in raw
    ]
    assert all(f.unit == "/min" and f.effective_end is None for f in hr)
    assert len(facts) == len(hr)  # these files carry no other mapped measurement


def test_same_second_twice_is_one_reading(shared: Path, sqlite_store: SqlStore) -> None:
    path = fit_dir(shared) / "sample-activity.fit"
    seen: dict[int, list[int]] = defaultdict(list)
    for name, m in messages(path):
        if name == "record" and m.get("heart_rate"):
            seen[m["timestamp"]].append(m["heart_rate"])
    repeated = sum(len(v) - 1 for v in seen.values())
    assert repeated == 3 and all(len(set(v)) == 1 for v in seen.values())
    make_patient(sqlite_store)
    report = import_paths(sqlite_store, [path], patient=USER)
    assert report.counts["inserted"] == len(seen) == 3098 - repeated
    assert report.counts["unchanged"] == repeated


def test_run_counts_and_device(shared: Path) -> None:
    counts = {
        "activity-small-fenix2-run.fit": 2808,  # 2,809 records, one without a heart rate
        "garmin-fenix-5-run.fit": 21,
        "sample-activity.fit": 3098,
    }
    for name, expected in counts.items():
        facts = facts_of(list(read_fit(fit_dir(shared) / name, patient=USER)))
        assert len(by_code(facts, "8867-4")) == expected
    [first, *_] = facts_of(list(read_fit(fit_dir(shared) / "garmin-fenix-5-run.fit", patient=USER)))
    assert first.device == "garmin fenix5; serial=3945849289; software=410"
    assert (
        first.effective_start == datetime(2017, 6, 11, 14, 34, 9, tzinfo=UTC)
        and first.value_num == 61
    )


# --------------------------------------------------------------------------------------------
# monitoring: timestamp_16 and accumulated steps


def test_monitoring_steps_per_interval(shared: Path) -> None:
    path = fit_dir(shared) / "MonitoringFile.fit"
    msgs = messages(path)
    # independent expansion of timestamp_16 and the last accumulated count per activity type
    last_full = None
    last_total: dict[int, int] = {}
    times: list[int] = []
    for name, m in msgs:
        if isinstance(m.get("timestamp"), int):
            last_full = m["timestamp"]
        elif name == "monitoring" and isinstance(m.get("timestamp_16"), int):
            assert last_full is not None
            last_full += (m["timestamp_16"] - last_full) & 0xFFFF
        if name == "monitoring":
            times.append(last_full)  # type: ignore[arg-type]
            if m.get("activity_type") in (1, 6) and isinstance(
                m.get("cycles"), int
            ):  # running, walking
                assert m["cycles"] >= last_total.get(m["activity_type"], 0)  # no reset in this file
                last_total[m["activity_type"]] = m["cycles"]
    facts = facts_of(list(read_fit(path, patient=USER)))
    steps = by_code(facts, "55423-8")
    assert len(facts) == len(steps) == 79
    # per-interval counts add up to the accumulated totals (steps = raw cycles, scale 1)
    assert sum(f.value_num or 0 for f in steps) == sum(last_total.values()) > 0
    assert all(f.unit == "{steps}" and (f.value_num or 0) > 0 for f in steps)
    # every interval ends at a monitoring message time, starts before it, none overlap per type
    ends = {FIT_EPOCH + timedelta(seconds=t) for t in times}
    assert all(f.effective_end in ends for f in steps)
    assert all(f.effective_start < f.effective_end for f in steps)  # type: ignore[operator]
    intervals = sorted((f.effective_start, f.effective_end) for f in steps)
    assert intervals[0][0] == datetime(2014, 12, 27, 6, 0, tzinfo=UTC)  # monitoring_info: day start
    first_walk = next(f for f in steps if f.effective_start == intervals[0][0])
    assert first_walk.value_num == 100  # raw cycles 100 = 50 cycles x 2 steps
    assert first_walk.device == "garmin vivo_fit; serial=3882708276"


def test_expand_timestamp_16() -> None:
    assert expand_timestamp_16(788594400, 27492) == 788594400 + ((27492 - 788594400) & 0xFFFF)
    assert expand_timestamp_16(0x1FFFF, 0x0001) == 0x20001  # rolls over
    assert expand_timestamp_16(0x10005, 0x0005) == 0x10005


# --------------------------------------------------------------------------------------------
# weight scale, both back-ends, idempotent


def test_weight_scale_on_both_backends(store: SqlStore, shared: Path) -> None:
    path = fit_dir(shared) / "WeightScaleSingleUser.fit"
    raw = [m for n, m in messages(path) if n == "weight_scale"]
    make_patient(store)
    report = import_paths(store, [path], patient=USER)
    assert (
        report.counts["inserted"] == 2 * len(raw) == 4 and report.counts.get("quarantined", 0) == 0
    )
    pid = store.resolve_patient(f"{DEVICE_USER_SYSTEM}|{USER}")
    weights = [s.fact for s in store.timeline(pid, codes=["29463-7"])]
    assert sorted(f.value_num for f in weights if isinstance(f, Observation)) == sorted(
        m["weight"] / 100
        for m in raw  # FIT weight: uint16, scale 100, kg
    )
    fat = [s.fact for s in store.timeline(pid, codes=["41982-0"])]
    assert sorted(f.value_num for f in fat if isinstance(f, Observation)) == sorted(
        m["percent_fat"] / 100 for m in raw
    )
    first = min(weights, key=lambda f: f.effective_start)  # type: ignore[arg-type,return-value]
    assert first.effective_start == FIT_EPOCH + timedelta(seconds=min(m["timestamp"] for m in raw))
    assert (
        isinstance(first, Observation)
        and first.device == "dynastream hrm_fit_single_byte_product_id; serial=1234"
    )
    again = import_paths(store, [path], patient=USER)
    assert again.counts.get("inserted", 0) == 0 and again.counts.get("new_versions", 0) == 0


def test_monitoring_reimport_is_a_no_op(sqlite_store: SqlStore, shared: Path) -> None:
    make_patient(sqlite_store)
    path = fit_dir(shared) / "MonitoringFile.fit"
    first = import_paths(sqlite_store, [path], patient=USER)
    assert first.counts["inserted"] == 79
    again = import_paths(sqlite_store, [path], patient=USER)
    assert again.counts.get("inserted", 0) == 0 and again.counts.get("new_versions", 0) == 0


# --------------------------------------------------------------------------------------------
# bad files


def test_truncated_file_keeps_what_came_before(
    tmp_path: Path, shared: Path, sqlite_store: SqlStore
) -> None:
    whole = (fit_dir(shared) / "activity-small-fenix2-run.fit").read_bytes()
    cut = tmp_path / "cut.fit"
    cut.write_bytes(whole[: len(whole) // 2])
    complete = [
        (m["timestamp"], m["heart_rate"])
        for n, m in messages(fit_dir(shared) / "activity-small-fenix2-run.fit")
        if n == "record" and m.get("heart_rate")
    ]
    make_patient(sqlite_store)
    report = import_paths(sqlite_store, [cut], patient=USER)
    kept = report.counts["inserted"]
    assert 0 < kept < len(complete)
    pid = sqlite_store.resolve_patient(f"{DEVICE_USER_SYSTEM}|{USER}")
    stored = [s.fact for s in sqlite_store.timeline(pid, codes=["8867-4"])]
    # what was kept is exactly the first records of the whole file
    assert sorted(
        (f.effective_start, f.value_num) for f in stored if isinstance(f, Observation)
    ) == [(FIT_EPOCH + timedelta(seconds=t), float(v)) for t, v in complete[:kept]]
    [entry] = sqlite_store.quarantine()
    assert (
        entry.item.file == str(cut)
        and "corrupt or truncated FIT file (FitEOFError" in entry.item.reason
    )
    assert entry.item.location is not None and entry.item.location.startswith("after message ")


def test_bad_crc_is_reported_and_readings_kept(tmp_path: Path, shared: Path) -> None:
    data = bytearray((fit_dir(shared) / "garmin-fenix-5-run.fit").read_bytes())
    data[-1] ^= 0xFF  # the file CRC
    path = tmp_path / "crc.fit"
    path.write_bytes(bytes(data))
    batches = list(read_fit(path, patient=USER))
    assert len(facts_of(batches)) == 21
    [item] = [q for b in batches for q in b.quarantine]
    assert "FitCRCError" in item.reason


def test_not_a_fit_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.fit"
    path.write_bytes(b"this is not a FIT file at all")
    [batch] = list(read_fit(path, patient=USER))
    assert not batch.units and "corrupt or truncated FIT file" in batch.quarantine[0].reason


def test_an_empty_fit_file_is_quarantined(tmp_path: Path) -> None:
    """fitdecode reads 0 bytes as a file without messages: it was imported as nothing,
    silently."""
    path = tmp_path / "empty.fit"
    path.write_bytes(b"")
    [batch] = list(read_fit(path, patient=USER))
    assert not batch.units and batch.resources_read == 1
    [item] = batch.quarantine
    assert item.reason == "empty file (0 bytes): not a FIT file" and item.location == "file"


def test_without_patient_one_file_entry(shared: Path) -> None:
    [batch] = list(read_fit(fit_dir(shared) / "garmin-fenix-5-run.fit"))
    assert not batch.units and batch.quarantine[0].field == "patient"


def test_fit_files_are_found_in_folders(shared: Path) -> None:
    found, _ = discover([fit_dir(shared)])
    assert sorted(p.name for p in found) == sorted(p.name for p in fit_dir(shared).glob("*.fit"))
    assert {reader_for(p).name for p in found} == {"fit"}


# --------------------------------------------------------------------------------------------
# the command line


def test_cli_import_with_patient(tmp_path: Path, shared: Path) -> None:
    db = str(tmp_path / "cli.db")
    store = open_store(db, actor="test")
    make_patient(store)
    store.close()
    path = fit_dir(shared) / "garmin-fenix-5-run.fit"
    args = ["import", str(path), "--patient", USER, "--store", db, "--json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    assert summary["inserted"] == 21 and summary["quarantined"] == 0
    again = orjson.loads(CliRunner().invoke(main, args, catch_exceptions=False).output)
    assert again["inserted"] == 0 and again["store"]["facts"] == summary["store"]["facts"]
    per_type: dict[str, int] = defaultdict(int)
    for name, _ in messages(path):
        per_type[name] += 1
    assert per_type["record"] == 21


# --------------------------------------------------------------------------------------------
# a FIT file written here, for what the shared files lack (monitoring heart rate, SpO2,
# resting heart rate, timestamp_16 roll-over, a step counter reset, sentinel values)

T0 = 1_000_000_000  # FIT seconds: 2021-09-08T01:46:40Z


def _fit_file(messages: list[tuple[int, list[tuple[int, int, int, int]]]]) -> bytes:
    """A FIT file: each message is (global number, [(field number, size, base type, value)])."""
    import struct

    from fitdecode.utils import compute_crc

    formats = {1: "B", 2: "H", 4: "I"}
    body = bytearray()
    for local, (global_number, fields) in enumerate(messages):
        local %= 16
        body += bytes([0x40 | local, 0, 0]) + struct.pack("<HB", global_number, len(fields))
        for number, size, base_type, _ in fields:
            body += bytes([number, size, base_type])
        body += bytes([local])
        for _, size, _, value in fields:
            body += struct.pack("<" + formats[size], value)
    header = bytearray(struct.pack("<BBHI4s", 14, 0x20, 2132, len(body), b".FIT"))
    header += struct.pack("<H", compute_crc(header))
    data = bytes(header + body)
    return data + struct.pack("<H", compute_crc(data))


UINT8, UINT16, UINT32, ENUM, UINT32Z = 0x02, 0x84, 0x86, 0x00, 0x8C


def _monitoring(
    t: int, heart_rate: int, activity: int, cycles: int
) -> tuple[int, list[tuple[int, int, int, int]]]:
    return (
        55,
        [
            (26, 2, UINT16, t & 0xFFFF),
            (27, 1, UINT8, heart_rate),
            (5, 1, ENUM, activity),
            (3, 4, UINT32, cycles),
        ],
    )


def test_written_fit_file(tmp_path: Path) -> None:
    walking = 6
    data = _fit_file(
        [
            (0, [(0, 1, ENUM, 32), (1, 2, UINT16, 1), (2, 2, UINT16, 1837), (3, 4, UINT32Z, 77)]),
            (103, [(253, 4, UINT32, T0)]),  # monitoring_info opens the period
            _monitoring(T0 + 100, 58, walking, 200),
            _monitoring(T0 + 40_000, 0, walking, 500),  # heart rate 0: no contact
            _monitoring(T0 + 70_000, 61, walking, 50),  # timestamp_16 rolled over; counter reset
            (211, [(253, 4, UINT32, T0 + 70_100), (0, 1, UINT8, 47)]),  # resting heart rate
            (269, [(253, 4, UINT32, T0 + 70_200), (0, 1, UINT8, 96), (1, 1, UINT8, 3)]),  # SpO2
            (30, [(253, 4, UINT32, T0 + 70_300), (0, 2, UINT16, 0xFFFE)]),  # weight calculating
            (30, [(253, 4, UINT32, T0 + 70_400), (0, 2, UINT16, 7_250)]),  # 72.50 kg
        ]
    )
    path = tmp_path / "day.fit"
    path.write_bytes(data)
    at = lambda s: FIT_EPOCH + timedelta(seconds=s)  # noqa: E731
    batches = list(read_fit(path, patient=USER))
    facts = facts_of(batches)
    hr = [(f.effective_start, f.value_num) for f in by_code(facts, "8867-4")]
    assert hr == [(at(T0 + 100), 58.0), (at(T0 + 70_000), 61.0)]
    steps = [(f.effective_start, f.effective_end, f.value_num) for f in by_code(facts, "55423-8")]
    assert steps == [
        (at(T0), at(T0 + 100), 200.0),
        (at(T0 + 100), at(T0 + 40_000), 300.0),
        (at(T0 + 40_000), at(T0 + 70_000), 50.0),  # after the reset, the new value itself
    ]
    assert [(f.value_num, f.unit) for f in by_code(facts, "40443-4")] == [(47.0, "/min")]
    assert [(f.value_num, f.unit) for f in by_code(facts, "59408-5")] == [(96.0, "%")]
    assert [(f.effective_start, f.value_num) for f in by_code(facts, "29463-7")] == [
        (at(T0 + 70_400), 72.5)
    ]
    assert all(f.device == "garmin vivo_fit; serial=77" for f in facts)  # product 1837
    reasons = sorted(q.reason for b in batches for q in b.quarantine)
    assert reasons == [
        "1 readings not stored: heart rate 0 (no sensor contact) (one summary entry; messages 4-4)",
        "1 readings not stored: weight 'calculating' sentinel (one summary entry; messages 8-8)",
    ]


def test_docstring_examples_run() -> None:
    import doctest

    import medtwin.ingest.fit as module

    failures, tried = doctest.testmod(module)
    assert tried >= 3 and failures == 0


@given(
    last=st.integers(min_value=0, max_value=2**32 - 2**17),
    delta=st.integers(min_value=0, max_value=0xFFFF),
)
def test_timestamp_16_recovers_any_time_within_18_hours(last: int, delta: int) -> None:
    assert expand_timestamp_16(last, (last + delta) & 0xFFFF) == last + delta
