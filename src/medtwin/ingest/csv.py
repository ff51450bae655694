"""Plain CSV device readings: ``time,metric,value,unit`` (optionally a ``patient`` column).

Each row becomes one :class:`~medtwin.record.facts.Observation`. ``metric`` is a LOINC
code (``8867-4``) or a vital-sign name of :data:`medtwin.record.codes.VITAL_SIGNS`
(``heart_rate``, ``spo2``, ``body_temperature`` ...); ``unit`` is UCUM (or a common
spelling the unit layer knows, such as ``bpm`` or ``degF``) and is normalised to the
code's canonical unit, the original value and unit kept. ``time`` is ISO 8601; a time
without an offset is read in ``--tz``.

The patient is the ``patient`` column, else ``--patient``: a device-user identifier
(system ``urn:medtwin:device-user``). The source id of a reading is its patient, metric
and time, so sending the same reading again changes nothing and sending a new value
for the same time is a correction (a new version).

A value may be a bound, ``<40`` or ``>400`` (a meter's LOW and HIGH): stored as the FHIR
reader stores a ``Quantity.comparator`` (the bound in ``value_num``, ``<40`` in ``value_text``,
:func:`medtwin.record.facts.value_comparator`). A bad row (unknown metric or unit, a value that
is not a number, a bad time, no patient) is quarantined with its line number and column; the
other rows go on. A file saved by a spreadsheet in a European locale (``;`` between fields,
decimal commas: ``36,8``) is read too (:func:`medtwin.ingest.base.export_delimiter`).

>>> from pathlib import Path
>>> CsvReader().can_read(Path("readings.csv"))
False
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

from medtwin.ingest._device_export import row_quarantine
from medtwin.ingest.base import Lookup, export_delimiter, export_number, head_lines
from medtwin.record.batch import Batch, ResourceUnit
from medtwin.record.facts import LOINC, Coding, Identifier, Observation
from medtwin.record.time import InvalidTimeError, get_zone, parse_fhir_datetime

__all__ = ["DEVICE_USER_SYSTEM", "REQUIRED_COLUMNS", "CsvReader", "read_csv_bytes"]

DEVICE_USER_SYSTEM = "urn:medtwin:device-user"
REQUIRED_COLUMNS = ("time", "metric", "value", "unit")
BATCH_ROWS = 2000


class CsvReader:
    """Reads ``.csv`` files whose header has the columns ``time,metric,value,unit``."""

    name = "csv"

    def can_read(self, path: Path) -> bool:
        """A ``.csv`` file whose first line names the required columns."""
        head = head_lines(path)
        if head is None:
            return False
        columns = {c.strip().lower() for c in head[0].split(export_delimiter(head[0]))}
        return set(REQUIRED_COLUMNS) <= columns

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Lookup | None = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """Batches of up to 2,000 rows."""
        yield from read_csv_bytes(
            path.read_bytes(),
            source=source or f"csv:{path.stem}",
            tz=tz,
            file=str(path),
            patient=patient,
        )


def _metric(text: str) -> Coding | None:
    from medtwin.record.codes import VITAL_SIGNS, display, lookup

    name = text.strip()
    code = VITAL_SIGNS.get(name.lower(), name)
    if lookup(LOINC, code) is None:
        return None
    return Coding(LOINC, code, display(LOINC, code))


def read_csv_bytes(
    data: bytes,
    *,
    source: str,
    tz: str = "UTC",
    file: str | None = None,
    patient: str | None = None,
) -> Iterator[Batch]:
    """Yield batches of Observation facts from CSV bytes (see the module docstring)."""
    from medtwin.record.units import UnknownUnitError, normalise

    get_zone(tz)

    bad = row_quarantine(source, file, "Reading")

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield Batch(
            source=source,
            file=file,
            quarantine=[bad(0, None, f"not UTF-8 text: invalid byte at offset {exc.start}", "")],
        )
        return
    delimiter = export_delimiter(text.split("\n", 1)[0])
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(rows, None)
    if header is None:
        yield Batch(source=source, file=file, quarantine=[bad(0, None, "empty file", "")])
        return
    columns = [c.strip().lower() for c in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        yield Batch(
            source=source,
            file=file,
            quarantine=[
                bad(1, None, f"header lacks column(s) {', '.join(missing)}", delimiter.join(header))
            ],
        )
        return
    index = {
        name: columns.index(name) for name in (*REQUIRED_COLUMNS, "patient") if name in columns
    }
    batch = Batch(source=source, file=file)
    for line, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        raw_line = delimiter.join(row)
        batch.resources_read += 1
        if len(row) < len(columns):
            batch.quarantine.append(
                bad(line, None, f"{len(row)} columns, the header has {len(columns)}", raw_line)
            )
        else:
            cells = {name: row[i].strip() for name, i in index.items()}
            item = _row(cells, line, source, tz, file, patient, normalise, UnknownUnitError)
            if isinstance(item, str):
                column, _, reason = item.partition(":")
                batch.quarantine.append(bad(line, column, reason.strip(), raw_line))
            else:
                batch.units.append(item)
        if batch.resources_read >= BATCH_ROWS:
            yield batch
            batch = Batch(source=source, file=file)
    if batch.resources_read or batch.quarantine:
        yield batch


def _row(
    cells: dict[str, str],
    line: int,
    source: str,
    tz: str,
    file: str | None,
    patient: str | None,
    normalise: object,
    unknown_unit: type[Exception],
) -> ResourceUnit | str:
    """One row as a unit, or ``"column: reason"``."""
    who = cells.get("patient") or patient
    if not who:
        return "patient: no patient (add a patient column or pass --patient)"
    code = _metric(cells["metric"])
    if code is None:
        return f"metric: unknown metric {cells['metric']!r} (a LOINC code in medtwin's table or a vital-sign name)"
    text = cells["value"].strip()
    comparator = next((c for c in ("<=", ">=", "<", ">") if text.startswith(c)), None)
    number = text[len(comparator) :].strip() if comparator else text
    try:
        value = export_number(number)
    except ValueError:
        return f"value: {cells['value']!r} is not a number (or a bound such as '<40')"
    try:
        when = parse_fhir_datetime(
            cells["time"].replace(" ", "T"), default_tz=tz, require_zone=False
        )
    except InvalidTimeError as exc:
        return f"time: {exc}"
    assert callable(normalise)
    try:
        norm = normalise(value, cells["unit"], code=code.code)
    except unknown_unit as exc:
        return f"unit: unknown unit {cells['unit']!r}: {exc}"
    subject = Identifier(DEVICE_USER_SYSTEM, who)
    key = hashlib.blake2b(
        f"{who}|{code.code}|{when.instant.isoformat()}".encode(), digest_size=12
    ).hexdigest()
    fact = Observation(
        source=source,
        source_id=f"Reading/{key}",
        subject=subject,
        code=code,
        status="final",
        effective_start=when.instant,
        original_time=when.original,
        resource_type="Reading",
        category="vital-signs",
        value_num=norm.value,
        unit=norm.unit,
        original_value=norm.original_value,
        original_unit=norm.original_unit,
        # a bound ("<40": a meter's LOW), kept as the FHIR reader keeps a Quantity.comparator
        value_text=f"{comparator}{number}" if comparator else None,
    )
    return ResourceUnit(
        key=fact.source_id,
        facts=(fact,),
        file=file,
        location=f"line {line}",
        content=",".join(cells.values()),
    )
