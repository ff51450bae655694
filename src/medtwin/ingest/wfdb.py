"""PhysioNet WFDB numerics records (``.hea`` + ``.dat``) into Observation facts.

A WFDB *numerics* record holds slowly sampled vital signs from a bedside monitor (MIMIC II
numerics: one sample per minute of heart rate, arterial and cuff blood pressure, pulse,
respiration, SpO2). :class:`WfdbReader` reads the record named by its header file through
the ``wfdb`` package (``pip install 'medtwin[wfdb]'``), single- or multi-segment, and turns
every valid sample into one :class:`~medtwin.record.facts.Observation`:

* **code**: the signal name mapped to LOINC by ``medtwin/record/data/wfdb_loinc.csv`` (one
  row per signal name, each citing its source; names are matched ignoring case, spaces and
  ``_``, so ``ABP Sys`` is ``ABPSys``);
* **value and unit**: the physical value ``(digital - baseline) / gain`` in the header's
  unit, translated to UCUM (:data:`WFDB_UNITS`: ``bpm`` and ``pm`` -> ``/min``, ``mmHg`` ->
  ``mm[Hg]``) and normalised to the LOINC code's canonical unit; the header's own unit is
  kept as ``original_unit``;
* **time**: the header's base date and time (read in ``--tz``; de-identified years such as
  2896 are kept as given) plus ``sample index / sampling frequency``, rounded to the
  microsecond;
* **patient**: ``--patient``, else the record name, as a device-user identifier
  (``urn:medtwin:device-user``, like CSV and Open mHealth readings);
* **source id**: ``Sample/<record>/<signal>/<sample index>`` (the index counts from the
  start of the whole record, across segments), so importing the record again changes
  nothing.

Missing samples (the WFDB invalid value, read as NaN, and the gaps of a multi-segment
layout) are skipped and counted in the import report (``missing_samples`` and
``missing_samples:<signal>``). The segment and layout headers of a multi-segment record
(headers that a master header in the same folder lists) are skipped and counted
(``segment_headers_skipped``): the master header reads them, so a folder import stores each
sample once. Values that are physiologically impossible (a heart rate of
0 while a lead is off) are stored as recorded: flagging artefacts is the monitors' job.

The samples of one signal are written in units of up to :data:`SAMPLES_PER_UNIT` (one
store transaction per signal), so a record whose patient is not known yet waits in
quarantine as one entry per signal, not one per sample.

What cannot be used is quarantined with the file named, never raised: a header that does
not parse, a missing ``.dat`` file, a record without a base date, a signal with no LOINC
mapping or a unit that does not fit its code, and **waveform records** (sampled faster than
:data:`MAX_NUMERICS_HZ`, e.g. MIT-BIH ECG at 360 Hz): medtwin stores numerics, not
waveforms; derive numerics first (heart rate from the beat annotations, for instance) and
import those.

Examples
--------
>>> from pathlib import Path
>>> WfdbReader().can_read(Path("s00001-2896-10-10-00-31n.hea"))
True
>>> signal_loinc("ABP Sys").loinc, signal_loinc("HR").loinc
('76215-3', '8867-4')

References
----------
.. [WFDB] Moody GB. WFDB Programmer's Guide, and "header(5)": the header file format
   (record line: name, segments, signals, frequency/counter frequency, samples, base time,
   base date; signal lines: file, format, gain(baseline)/units, ADC resolution, ADC zero,
   initial value, checksum, block size, description). https://physionet.org/physiotools/wag/
.. [WFDBPY] Xie C, McCullum L, Johnson A, Pollard T, Gow B, Moody B. Waveform Database
   Software Package (WFDB) for Python, version 4.3.1. PhysioNet.
.. [MIMICII] Saeed M, Villarroel M, Reisner AT, et al. Multiparameter Intelligent Monitoring in
   Intensive Care II (MIMIC-II): a public-access intensive care unit database. Crit Care Med.
   2011;39(5):952-960. Numerics signal names as in the MIMIC II waveform database.
.. [PhysioNet] Goldberger AL, Amaral LAN, Glass L, et al. PhysioBank, PhysioToolkit, and
   PhysioNet. Circulation. 2000;101(23):e215-e220.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from medtwin.ingest.base import Lookup
from medtwin.record.batch import Batch, QuarantineItem, ResourceUnit
from medtwin.record.facts import LOINC, Coding, Identifier, Observation
from medtwin.record.time import get_zone

__all__ = [
    "DEFAULT_SOURCE",
    "DEVICE_USER_SYSTEM",
    "MAX_NUMERICS_HZ",
    "SAMPLES_PER_UNIT",
    "WFDB_UNITS",
    "SignalMapping",
    "WfdbReader",
    "read_wfdb_record",
    "signal_loinc",
    "signal_table",
]

DEFAULT_SOURCE: Final = "wfdb"
DEVICE_USER_SYSTEM: Final = "urn:medtwin:device-user"
#: Records sampled faster than this are waveforms, not numerics.
MAX_NUMERICS_HZ: Final = 1.0
#: Samples of one signal per resource unit (written atomically).
SAMPLES_PER_UNIT: Final = 5000

#: WFDB unit strings (lower-cased) -> UCUM. WFDB headers write units as free text; these are
#: the spellings of the PhysioNet numerics databases ("pm" is per minute there, not the
#: UCUM picometre).
WFDB_UNITS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "bpm": "/min",
        "pm": "/min",
        "rpm": "/min",
        "/min": "/min",
        "breaths/min": "/min",
        "beats/min": "/min",
        "mmhg": "mm[Hg]",
        "mm hg": "mm[Hg]",
        "%": "%",
        "degc": "Cel",
        "deg c": "Cel",
        "celsius": "Cel",
        "cmh2o": "cm[H2O]",
    }
)


@dataclass(frozen=True, slots=True)
class SignalMapping:
    """One row of ``wfdb_loinc.csv``: a WFDB signal name, its LOINC code and the source."""

    signal: str
    loinc: str
    display: str
    source: str


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "").replace("_", "")


@functools.cache
def signal_table() -> Mapping[str, SignalMapping]:
    """The shipped signal-name -> LOINC table, keyed by normalised signal name (read once)."""
    from medtwin.record.codes import CodeTableError, lookup

    where = "medtwin/record/data/wfdb_loinc.csv"
    text = resources.files("medtwin.record").joinpath("data", "wfdb_loinc.csv").read_text("utf-8")
    rows: dict[str, SignalMapping] = {}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for row in reader:
        name = (row.get("signal") or "").strip()
        loinc = (row.get("loinc") or "").strip()
        info = lookup(LOINC, loinc)
        if not name or _key(name) in rows or info is None or not row.get("source"):
            raise CodeTableError(
                f"{where}, line {reader.line_num}: bad row {row} (unique signal names, LOINC "
                "codes in loinc.csv, every row cites a source)"
            )
        rows[_key(name)] = SignalMapping(name, loinc, info.display, row["source"])
    return MappingProxyType(rows)


def signal_loinc(name: str) -> SignalMapping | None:
    """The LOINC mapping of a WFDB signal name (case, spaces and ``_`` ignored), or ``None``."""
    return signal_table().get(_key(name))


class WfdbReader:
    """Reads PhysioNet WFDB numerics records named by their ``.hea`` header file."""

    name = "wfdb"

    def can_read(self, path: Path) -> bool:
        """A ``.hea`` file."""
        return path.suffix.lower() == ".hea"

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Lookup | None = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """One batch per signal; a record that cannot be read is one quarantined batch."""
        yield from read_wfdb_record(path, source=source or DEFAULT_SOURCE, tz=tz, patient=patient)


def _base_time(header: Any, tz: str) -> datetime | None:
    if header.base_date is None:
        return None
    naive = datetime.combine(header.base_date, header.base_time or time())
    return naive.replace(tzinfo=get_zone(tz)).astimezone(UTC)


def _record_line(header: Path) -> tuple[str, list[str]]:
    """The record line's first token and the first tokens of the lines after it."""
    tokens: list[str] = []
    with header.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            words = line.split("#", 1)[0].split()
            if words:
                tokens.append(words[0])
                if len(tokens) == 1 and "/" not in words[0]:
                    break  # a single-segment header: its other lines are signals
    return (tokens[0] if tokens else ""), tokens[1:]


@functools.lru_cache(maxsize=64)
def _segments_in(folder: str, stamp: int) -> Mapping[str, str]:
    """Segment record name -> master record name, for the multi-segment headers of a folder."""
    out: dict[str, str] = {}
    for header in Path(folder).glob("*.hea"):
        try:
            first, rest = _record_line(header)
        except OSError:
            continue
        if "/" in first:
            for segment in rest:
                if segment != "~":
                    out[segment] = first.split("/", 1)[0]
    return MappingProxyType(out)


def _master_of(path: Path) -> str | None:
    """The multi-segment record that lists ``path`` as one of its segments, if any."""
    try:
        stamp = path.parent.stat().st_mtime_ns
    except OSError:
        return None
    master = _segments_in(str(path.parent.resolve()), stamp).get(path.stem)
    return master if master != path.stem else None


def read_wfdb_record(
    path: Path, *, source: str = DEFAULT_SOURCE, tz: str = "UTC", patient: str | None = None
) -> Iterator[Batch]:
    """Yield batches of Observation facts from the WFDB record whose header is ``path``.

    See the module docstring for the mapping; nothing here raises for bad input.
    """
    file = str(path)
    get_zone(tz)

    def whole_record(reason: str, field: str | None = None, content: str = "") -> Batch:
        if not content:
            try:
                content = path.read_text("utf-8", "replace")
            except OSError:
                content = ""
        return Batch(
            source=source,
            file=file,
            resources_read=1,
            quarantine=[
                QuarantineItem(
                    source=source,
                    reason=reason,
                    content=content,
                    file=file,
                    location="record",
                    resource_type="WfdbRecord",
                    resource_id=path.stem,
                    field=field,
                )
            ],
        )

    master = _master_of(path)
    if master is not None:
        # a segment (or layout) header of a multi-segment record: the master header reads it
        yield Batch(source=source, file=file, counts={"segment_headers_skipped": 1})
        return
    try:
        import numpy as np
        import wfdb
    except ImportError:
        yield whole_record(
            "reading WFDB records needs the wfdb package: pip install 'medtwin[wfdb]'"
        )
        return
    record_name = str(path.with_suffix(""))
    if not path.read_bytes().strip():
        yield whole_record("empty header file: no WFDB record line", "header")
        return
    try:
        header = wfdb.rdheader(record_name)
    except Exception as exc:  # wfdb raises many types for a bad header; all mean the same
        yield whole_record(f"not a readable WFDB header: {type(exc).__name__}: {exc}", "header")
        return
    fs = header.fs
    if not fs or fs <= 0:
        yield whole_record(f"sampling frequency {fs!r} is not positive", "frequency")
        return
    if fs > MAX_NUMERICS_HZ:
        names = ", ".join(header.sig_name or ()) or "no signal names"
        yield whole_record(
            f"{path.name}: WFDB record {header.record_name!r} holds waveforms ({names} at "
            f"{fs:g} Hz), not numerics (at most {MAX_NUMERICS_HZ:g} Hz); medtwin stores "
            "numerics only: derive them first (e.g. heart rate from the beat annotations) "
            "and import those, or import the record's numerics ('n') record instead",
            "frequency",
        )
        return
    base = _base_time(header, tz)
    if base is None:
        yield whole_record(
            f"{path.name}: the header has no base date, so the samples cannot be placed in "
            "time; add the base date and time to the record line",
            "base date",
        )
        return
    try:
        record = wfdb.rdrecord(record_name, physical=True, m2s=True, return_res=64)
    except FileNotFoundError as exc:
        missing = Path(exc.filename).name if exc.filename else "a signal file"
        yield whole_record(
            f"{path.name}: signal file {missing} not found next to the header; copy the "
            "record's .dat files (and segment headers) into the same folder",
            "signal file",
        )
        return
    except Exception as exc:  # corrupt or truncated signal files
        yield whole_record(f"{path.name}: cannot read the samples: {type(exc).__name__}: {exc}")
        return
    if record.p_signal is None or not record.sig_name:
        yield whole_record(f"{path.name}: the record has no samples")
        return
    who = patient or str(header.record_name)
    subject = Identifier(DEVICE_USER_SYSTEM, who)
    step_us = 1e6 / float(fs)
    rec = str(header.record_name)
    for column, name in enumerate(record.sig_name):
        yield _signal_batch(
            np.asarray(record.p_signal[:, column], dtype=np.float64),
            _Signal(str(name), str(record.units[column] or ""), column, rec),
            base,
            step_us,
            subject,
            source,
            file,
        )


@dataclass(frozen=True, slots=True)
class _Signal:
    name: str
    wfdb_unit: str
    column: int
    record: str


def _signal_batch(
    values: Any,
    signal: _Signal,
    base: datetime,
    step_us: float,
    subject: Identifier,
    source: str,
    file: str,
) -> Batch:
    """The facts of one signal, in units of :data:`SAMPLES_PER_UNIT` samples."""
    import numpy as np

    from medtwin.record.units import UnitsError, normalise

    name, wfdb_unit, column, record = signal.name, signal.wfdb_unit, signal.column, signal.record

    batch = Batch(source=source, file=file, resources_read=len(values))
    valid = ~np.isnan(values)
    missing = int(len(values) - valid.sum())
    batch.counts = {"missing_samples": missing, f"missing_samples:{name}": missing}
    where = f"record {record}, signal {column} ({name})"

    def bad(reason: str, field: str) -> Batch:
        batch.quarantine.append(
            QuarantineItem(
                source=source,
                reason=reason,
                content=f"WFDB record {record}, signal {name!r} in {wfdb_unit!r}, "
                f"{int(valid.sum())} valid samples",
                file=file,
                location=where,
                resource_type="WfdbSignal",
                resource_id=f"{record}/{name}",
                field=field,
            )
        )
        return batch

    mapping = signal_loinc(name)
    if mapping is None:
        return bad(
            f"signal {name!r} has no LOINC mapping in medtwin/record/data/wfdb_loinc.csv "
            "(add a row: signal, LOINC code, source) and import the record again",
            "signal name",
        )
    ucum = WFDB_UNITS.get(wfdb_unit.strip().lower(), wfdb_unit.strip())
    try:
        normalise(1.0, ucum, code=mapping.loinc)
    except UnitsError as exc:
        return bad(f"unit {wfdb_unit!r} of signal {name!r}: {exc}", "units")
    code = Coding(LOINC, mapping.loinc, mapping.display)
    indexes = np.flatnonzero(valid)
    offsets = np.rint(indexes * step_us).astype(np.int64)
    for begin in range(0, len(indexes), SAMPLES_PER_UNIT):
        facts = []
        chunk = indexes[begin : begin + SAMPLES_PER_UNIT]
        for index, offset in zip(
            chunk.tolist(), offsets[begin : begin + SAMPLES_PER_UNIT].tolist(), strict=True
        ):
            value = float(values[index])
            norm = normalise(value, ucum, code=mapping.loinc)
            facts.append(
                Observation(
                    source=source,
                    source_id=f"Sample/{record}/{name}/{index}",
                    subject=subject,
                    code=code,
                    status="final",
                    effective_start=base + timedelta(microseconds=offset),
                    resource_type="Sample",
                    category="vital-signs",
                    value_num=norm.value,
                    unit=norm.unit,
                    original_value=value,
                    original_unit=wfdb_unit,
                )
            )
        first, last = int(chunk[0]), int(chunk[-1])
        batch.units.append(
            ResourceUnit(
                key=f"WfdbSignal/{record}/{name}/{first}",
                facts=tuple(facts),
                file=file,
                location=f"{where}, samples {first}-{last}",
                content=f"WFDB record {record} ({file}), signal {name!r}, samples "
                f"{first}-{last}: import the .hea file again to retry",
            )
        )
    return batch
