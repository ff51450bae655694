"""WFDB numerics import: the real MIMIC II numerics record, checked against ``wfdb.rdrecord``.

The expected counts, times and values are computed here straight from ``wfdb.rdrecord`` (the
reference reader), not from medtwin's reader.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from conftest import missing
from medtwin.cli import main
from medtwin.ingest import import_paths
from medtwin.ingest.wfdb import WfdbReader, signal_loinc, signal_table
from medtwin.record.codes import LOINC, loinc_check_digit_ok, lookup
from medtwin.record.facts import Demographics, Identifier, Observation
from medtwin.store import open_store
from medtwin.store.sql import SqlStore


@pytest.fixture(autouse=True)
def _wfdb_installed() -> None:
    try:
        import wfdb  # noqa: F401
    except ImportError:  # pragma: no cover - the dev install has it
        missing("the wfdb package is not installed (pip install 'medtwin[wfdb]')")


RECORD = "s00001-2896-10-10-00-31n"
BASE = datetime(2896, 10, 10, 0, 31, 25, 894000, tzinfo=UTC)
EXPECTED_LOINC = {
    "HR": "8867-4",
    "ABPSys": "76215-3",
    "ABPDias": "76213-8",
    "ABPMean": "76214-6",
    "PULSE": "8889-8",
    "RESP": "9279-1",
    "SpO2": "59408-5",
    "NBPSys": "8480-6",
    "NBPDias": "8462-4",
    "NBPMean": "8478-0",
}


@pytest.fixture
def physionet(shared: Path) -> Path:
    return shared / "physionet"


def _register(store: SqlStore, who: str) -> None:
    user = Identifier("urn:medtwin:device-user", who)
    store.append_facts(
        [
            Demographics(
                source="registry", source_id=f"Patient/{who}", subject=user, identifiers=(user,)
            )
        ],
        source="registry",
    )


def _by_code(store: SqlStore, who: str) -> dict[str, list[Observation]]:
    out: dict[str, list[Observation]] = {}
    for stored in store.timeline(who, kinds=("Observation",)):
        assert isinstance(stored.fact, Observation) and stored.fact.code is not None
        out.setdefault(stored.fact.code.code, []).append(stored.fact)
    return out


def test_numerics_record(store: SqlStore, physionet: Path) -> None:
    import wfdb

    reference = wfdb.rdrecord(str(physionet / RECORD))
    _register(store, "ICU1")
    report = import_paths(store, [physionet / f"{RECORD}.hea"], patient="ICU1")
    facts = _by_code(store, "ICU1")
    assert set(facts) == set(EXPECTED_LOINC.values())
    total = 0
    for column, name in enumerate(reference.sig_name):
        samples = reference.p_signal[:, column]
        valid = np.flatnonzero(~np.isnan(samples))
        stored = facts[EXPECTED_LOINC[name]]
        # one fact per valid sample; missing samples skipped and counted
        assert len(stored) == len(valid), name
        assert report.counts[f"missing_samples:{name}"] == len(samples) - len(valid)
        total += len(valid)
        # first and last times: base time + index / frequency (1 sample per minute)
        assert stored[0].effective_start == BASE + timedelta(minutes=int(valid[0]))
        assert stored[-1].effective_start == BASE + timedelta(minutes=int(valid[-1]))
        # every value is the reference's physical value, in the order of the samples
        assert [f.original_value for f in stored] == samples[valid].tolist()
        assert stored[0].source_id == f"Sample/{RECORD}/{name}/{valid[0]}"
    assert report.counts["inserted"] == total == 7 * 1936 + 3 * 152
    assert report.counts["missing_samples"] == 3 * (1936 - 152)
    # units from the header, translated to UCUM; the header's spelling is kept
    hr, resp, nbp = facts["8867-4"][1], facts["9279-1"][0], facts["8480-6"][0]
    assert (hr.value_num, hr.unit, hr.original_unit) == (62.8, "/min", "bpm")
    assert (resp.value_num, resp.unit, resp.original_unit) == (23.0, "/min", "pm")
    assert nbp.unit == "mm[Hg]" and nbp.original_unit == "mmHg"
    assert (
        nbp.value_num
        == reference.p_signal[int(np.flatnonzero(~np.isnan(reference.p_signal[:, 7]))[0]), 7]
    )
    # the year 2896 of the de-identified record is kept as given
    assert hr.effective_start is not None and hr.effective_start.year == 2896
    # impossible values (0 bpm while the lead is off) are stored, not dropped
    assert facts["8867-4"][0].value_num == 0.0
    # importing the record again changes nothing
    again = import_paths(store, [physionet / f"{RECORD}.hea"], patient="ICU1")
    assert again.counts["inserted"] == 0 and again.counts["new_versions"] == 0
    assert again.counts["unchanged"] == total


def test_record_name_is_the_default_patient(sqlite_store: SqlStore, physionet: Path) -> None:
    report = import_paths(sqlite_store, [physionet / f"{RECORD}.hea"])
    # the patient is not registered yet: each signal waits in quarantine (10 entries, not
    # 14,008), naming the patient
    assert report.counts["inserted"] == 0 and report.counts["quarantined"] == 10
    entries = sqlite_store.quarantine()
    assert len(entries) == 10 and all(RECORD in e.item.reason for e in entries)
    _register(sqlite_store, RECORD)
    report = import_paths(sqlite_store, [physionet / f"{RECORD}.hea"])
    assert report.counts["inserted"] == 7 * 1936 + 3 * 152
    assert report.counts["resolved_quarantine"] == 10 and not sqlite_store.quarantine()


def test_multi_segment_record(store: SqlStore, physionet: Path, tmp_path: Path) -> None:
    """The record split into two segments with a 100-sample gap (variable layout)."""
    import wfdb

    reference = wfdb.rdrecord(str(physionet / RECORD), physical=False)
    digital = reference.d_signal
    folder = tmp_path / "record"  # apart from the SQLite store file
    folder.mkdir()
    for name, part in (("seg_a", digital[:1000]), ("seg_b", digital[1000:])):
        wfdb.wrsamp(
            name,
            fs=reference.fs,
            units=reference.units,
            sig_name=reference.sig_name,
            d_signal=part,
            fmt=reference.fmt,
            adc_gain=reference.adc_gain,
            baseline=reference.baseline,
            write_dir=str(folder),
        )
    layout = [f"multi_layout {len(reference.sig_name)} 0.0166666666667 0"]
    for name, unit, gain in zip(
        reference.sig_name, reference.units, reference.adc_gain, strict=True
    ):
        layout.append(f"~ 0 {gain:g}/{unit} 16 0 0 0 0 {name}")
    (folder / "multi_layout.hea").write_text("\n".join(layout) + "\n")
    (folder / "multi.hea").write_text(
        "multi/4 10 0.0166666666667 2036 00:31:25.894 10/10/2896\n"
        "multi_layout 0\nseg_a 1000\n~ 100\nseg_b 936\n"
    )
    _register(store, "ICU2")
    # importing the folder reads the record through its master header only: the layout and
    # segment headers it lists are skipped, so every sample is stored once
    report = import_paths(store, [folder], patient="ICU2")
    assert report.counts["segment_headers_skipped"] == 3
    assert report.files == 4 and sorted(Path(p).name for p in report.skipped) == [
        "seg_a.dat",
        "seg_b.dat",
    ]
    physical = wfdb.rdrecord(str(physionet / RECORD)).p_signal
    hr = _by_code(store, "ICU2")["8867-4"]
    assert len(hr) == 1936 and report.counts["missing_samples:HR"] == 100
    assert report.counts["missing_samples:NBPSys"] == 100 + 1784
    # sample indexes count across segments: after the gap, index 1100 is minute 1100
    after = next(f for f in hr if f.source_id == "Sample/multi/HR/1100")
    assert after.effective_start == BASE + timedelta(minutes=1100)
    assert after.original_value == physical[1000, 0]
    assert hr[-1].original_value == physical[-1, 0]
    assert len(store.timeline("ICU2", kinds=("Observation",))) == 7 * 1936 + 3 * 152
    # a segment header named on its own is skipped too (its master reads it)
    alone = import_paths(store, [folder / "seg_a.hea"], patient="ICU2")
    assert alone.counts["segment_headers_skipped"] == 1
    assert alone.counts["inserted"] == alone.counts["unchanged"] == 0


def test_an_empty_header_is_named(sqlite_store: SqlStore, tmp_path: Path) -> None:
    """Was "not a readable WFDB header: IndexError: list index out of range"."""
    path = tmp_path / "rec.hea"
    path.write_text("\n")
    import_paths(sqlite_store, [path])
    [entry] = sqlite_store.quarantine()
    assert entry.item.reason == "empty header file: no WFDB record line"
    assert entry.item.field == "header"


def test_waveform_record_is_rejected(sqlite_store: SqlStore, physionet: Path) -> None:
    report = import_paths(sqlite_store, [physionet / "100.hea"], patient="p")
    assert report.counts["inserted"] == 0
    [entry] = sqlite_store.quarantine()
    assert entry.item.file == str(physionet / "100.hea") and entry.item.field == "frequency"
    assert "waveforms" in entry.item.reason and "360 Hz" in entry.item.reason
    assert "MLII" in entry.item.reason and "derive" in entry.item.reason


def test_missing_signal_file(sqlite_store: SqlStore, physionet: Path, tmp_path: Path) -> None:
    header = tmp_path / f"{RECORD}.hea"
    shutil.copy(physionet / f"{RECORD}.hea", header)
    import_paths(sqlite_store, [header], patient="p")
    [entry] = sqlite_store.quarantine()
    assert entry.item.file == str(header) and entry.item.field == "signal file"
    assert "3975656n.dat not found" in entry.item.reason


def test_corrupt_header(sqlite_store: SqlStore, tmp_path: Path) -> None:
    header = tmp_path / "broken.hea"
    header.write_text("broken ten 0.0166/125 lots\nbroken.dat 16 x/bpm HR\n")
    import_paths(sqlite_store, [header], patient="p")
    [entry] = sqlite_store.quarantine()
    assert entry.item.file == str(header) and "not a readable WFDB header" in entry.item.reason
    assert entry.item.content.startswith("broken ten")


def test_unmapped_signal_and_missing_base_date(
    sqlite_store: SqlStore, physionet: Path, tmp_path: Path
) -> None:
    shutil.copy(physionet / "3975656n.dat", tmp_path / "3975656n.dat")
    text = (physionet / f"{RECORD}.hea").read_text()
    (tmp_path / "renamed.hea").write_text(
        text.replace(RECORD, "renamed", 1).replace(" 0 HR\n", " 0 FOO\n", 1)
    )
    _register(sqlite_store, "p")
    report = import_paths(sqlite_store, [tmp_path / "renamed.hea"], patient="p")
    assert report.counts["inserted"] == 6 * 1936 + 3 * 152
    [entry] = sqlite_store.quarantine()
    assert entry.item.field == "signal name" and "'FOO'" in entry.item.reason
    assert "wfdb_loinc.csv" in entry.item.reason
    # without a base date the samples cannot be placed in time
    undated = text.replace(RECORD, "undated", 1).replace(" 31:25.894 10/10/2896", "", 1)
    (tmp_path / "undated.hea").write_text(undated)
    import_paths(sqlite_store, [tmp_path / "undated.hea"], patient="p")
    dated = [e for e in sqlite_store.quarantine() if e.item.field == "base date"]
    assert len(dated) == 1 and "undated.hea" in dated[0].item.reason


def test_signal_table_is_sound() -> None:
    table = signal_table()
    for row in table.values():
        assert loinc_check_digit_ok(row.loinc) and lookup(LOINC, row.loinc) is not None
        assert row.source
    assert {name: signal_loinc(name).loinc for name in EXPECTED_LOINC} == EXPECTED_LOINC  # type: ignore[union-attr]
    assert signal_loinc("abp_sys") == signal_loinc("ABP Sys") == signal_loinc("ABPSys")
    assert signal_loinc("MLII") is None
    assert WfdbReader().can_read(Path("x.HEA")) and not WfdbReader().can_read(Path("x.dat"))


def test_cli_import(physionet: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "icu.db")
    store = open_store(db, actor="test")
    _register(store, "ICU1")
    store.close()
    command = ["import", str(physionet / f"{RECORD}.hea"), "--patient", "ICU1", "--store", db]
    first = CliRunner().invoke(main, [*command, "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    report = orjson.loads(first.stdout)
    assert report["inserted"] == 7 * 1936 + 3 * 152 and report["missing_samples"] == 3 * 1784
    again = CliRunner().invoke(main, command, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "0 facts new" in again.stdout and f"{7 * 1936 + 3 * 152} unchanged" in again.stdout
    assert "5352 missing samples skipped" in again.stderr


def test_doc_lists_every_signal() -> None:
    from conftest import REPO

    page = (REPO / "docs" / "formats" / "wfdb.md").read_text()
    for row in signal_table().values():
        assert f"| `{row.signal}` | {row.loinc} {row.display} |" in page, row.signal


def test_base_time_is_read_in_tz(physionet: Path) -> None:
    from medtwin.ingest.wfdb import read_wfdb_record

    batches = list(read_wfdb_record(physionet / f"{RECORD}.hea", tz="America/New_York"))
    first = batches[0].units[0].facts[0]
    # 00:31:25.894 on 10 October, daylight saving time in New York (UTC-4), year kept
    assert first.effective_start == BASE + timedelta(hours=4)
    assert first.subject == Identifier("urn:medtwin:device-user", RECORD)
    assert [b.counts["missing_samples"] for b in batches] == [0] * 7 + [1784] * 3


def test_hea_files_are_registered(physionet: Path) -> None:
    from medtwin.ingest import discover, reader_for

    assert reader_for(physionet / f"{RECORD}.hea").name == "wfdb"
    found, skipped = discover([physionet])
    assert {p.name for p in found} == {f"{RECORD}.hea", "100.hea"}
    assert {p.name for p in skipped} >= {"3975656n.dat", "100.dat", "100.atr"}
