"""Dexcom Clarity CSV exports: CGM readings, fingersticks, carbohydrates and insulin.

The export a Dexcom wearer downloads from Clarity (``Clarity_Export_<Last>_<First>_<date>.csv``)
has one header of 14 columns::

    Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,Device Info,
    Source Device ID,Glucose Value (mg/dL),Insulin Value (u),Carb Value (grams),
    Duration (hh:mm:ss),Glucose Rate of Change (mg/dL/min),Transmitter Time (Long Integer),
    Transmitter ID

(``Glucose Value (mmol/L)`` and ``Glucose Rate of Change (mmol/L/min)`` in an mmol/L
account), then an untimed preamble (``FirstName``, ``LastName``, ``DateOfBirth``, one ``Device``
row and the ``Alert`` settings per display device), then the timed rows. Dexcom publishes no
specification; the shape here is that of public exports of 2016-2025 (G4 to G7), as collected
in the open-source device-format notes this reader was written from: UTF-8 with a byte-order
mark, every field quoted in exports since 2023, ragged rows (13 fields where the transmitter id
is missing), timestamps in local wall-clock time without an offset ("2024-03-01T08:05:00";
older exports "2020-02-13 17:23:32"), glucose in whole mg/dL or mmol/L with one decimal. A
copy re-saved by a spreadsheet in a European locale (``;`` between fields, decimal commas) is
read too.

What becomes a fact (each an :class:`~medtwin.record.facts.Observation` or
:class:`~medtwin.record.facts.MedicationAdministration` of the device user ``--patient``):

=================  =======================================  ================================
row                fact                                     notes
=================  =======================================  ================================
``EGV``            LOINC 99504-3 glucose in interstitial    ``Low`` / ``High`` are bounds:
                   fluid, in the export's unit (mg/dL or    "<40" / ">400" mg/dL ("<2.2" /
                   mmol/L, as the CSV reader keeps it)      ">22.2" mmol/L), Dexcom's
                                                            reporting range (G6, G7: 40-400
                                                            mg/dL)
``Calibration``    LOINC 41653-7 glucose in capillary       a fingerstick entered to
                   blood by glucometer                      calibrate the sensor
``Carbs``          LOINC 9059-7 carbohydrate intake, g      the twin's ``meal`` events
``Insulin``        MedicationAdministration in U:           the twin reads a rapid-acting
                   ``Fast-Acting`` -> "Fast-acting          dose as a bolus and refuses a
                   insulin", ``Long-Acting`` ->             window with a long-acting one
                   "Long-acting insulin"                    (:mod:`medtwin.twin.twin`)
=================  =======================================  ================================

The preamble (the wearer's name and birth date) is not stored: a device does not register or
rename a patient, the record does (``medtwin link`` joins the device user to the patient).
Other rows (``Exercise``, ``Health``, ``Alert``, ``Device`` ...) are counted in the import
report (``counts["not_stored:Exercise"]`` ..., the preamble as ``not_stored:preamble``), not
stored. The display device (``Device Info`` of the ``Device`` row) and
the ``Source Device ID`` and transmitter go to ``Observation.device``.

Provenance: the source is ``--source``, else ``dexcom``; the source id is
``Clarity/<blake2b of patient, event type, subtype and time>`` (and the amount, for insulin and
carbohydrates: two doses at one time are two doses), so exporting again, or a later export that
overlaps, changes nothing. A bad row (a time that is not one, a glucose that is neither a
number nor ``Low`` / ``High``, a dose that is not a number) is quarantined with its line, its
column and the reason; the other rows go on. Without ``--patient`` the file is quarantined
whole: an export names its wearer only in the preamble, which medtwin does not use as an
identity.

>>> from pathlib import Path
>>> DexcomClarityReader().can_read(Path("missing.csv"))
False
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from medtwin.ingest._device_export import (
    CGM,
    FINGERSTICK,
    ExportReader,
    LocalClock,
    Problem,
    Row,
    carbs_fact,
    decode_export,
    glucose_fact,
    insulin_fact,
    row_quarantine,
)
from medtwin.ingest.base import export_delimiter, head_lines
from medtwin.record.batch import Batch, ResourceUnit
from medtwin.record.facts import Coding, Fact
from medtwin.record.time import get_zone

__all__ = [
    "DEFAULT_SOURCE",
    "DEXCOM_INSULIN_SYSTEM",
    "HEADER_START",
    "RANGE",
    "DexcomClarityReader",
    "read_clarity_bytes",
]

DEFAULT_SOURCE: Final = "dexcom"
HEADER_START: Final = ("index", "timestamp (yyyy-mm-ddthh:mm:ss)", "event type")
"""The first three columns of a Clarity export (lower case), how the reader knows one."""
DEXCOM_INSULIN_SYSTEM: Final = "urn:medtwin:dexcom-clarity:insulin"
"""Code system of the insulin a Clarity export names only by its kind (``Fast-Acting``,
``Long-Acting``): the product is not in the file."""
RANGE: Final = {"mg/dL": (40.0, 400.0), "mmol/L": (2.2, 22.2)}
"""Dexcom's reporting range per unit: ``Low`` is below the first, ``High`` above the second
(G6 and G7: 40-400 mg/dL; 2.2-22.2 mmol/L is the same range to one decimal)."""
BATCH_ROWS: Final = 2000

_INSULIN = {
    "fast-acting": Coding(DEXCOM_INSULIN_SYSTEM, "fast-acting", "Fast-acting insulin"),
    "long-acting": Coding(DEXCOM_INSULIN_SYSTEM, "long-acting", "Long-acting insulin"),
}


class DexcomClarityReader(ExportReader):
    """Reads Dexcom Clarity ``.csv`` exports (see the module docstring)."""

    name = "dexcom"
    default_source = DEFAULT_SOURCE

    def can_read(self, path: Path) -> bool:
        """A ``.csv`` file whose header starts ``Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event
        Type``."""
        head = head_lines(path)
        if head is None:
            return False
        first = head[0]
        split = first.split(export_delimiter(first))[:3]
        cells = [c.strip().strip('"').strip().lower() for c in split]
        return tuple(cells) == HEADER_START

    def read_bytes(
        self, data: bytes, *, source: str, tz: str, file: str | None, patient: str | None
    ) -> Iterator[Batch]:
        """The facts of an export's bytes (:func:`read_clarity_bytes`)."""
        return read_clarity_bytes(data, source=source, tz=tz, file=file, patient=patient)


def read_clarity_bytes(
    data: bytes,
    *,
    source: str = DEFAULT_SOURCE,
    tz: str = "UTC",
    file: str | None = None,
    patient: str | None = None,
) -> Iterator[Batch]:
    """Yield batches of facts from the bytes of a Clarity export (see the module docstring)."""
    from medtwin.record.units import normalise

    get_zone(tz)
    bad = row_quarantine(source, file, "ClarityRow")
    try:
        text = decode_export(data)
    except ValueError as exc:
        yield Batch(source=source, file=file, quarantine=[bad(0, None, str(exc), "")])
        return
    rows = csv.reader(io.StringIO(text), delimiter=export_delimiter(text.split("\n", 1)[0]))
    header = next(rows, None)
    columns = [c.strip().lower() for c in header or []]
    if tuple(columns[:3]) != HEADER_START:
        reason = "not a Dexcom Clarity export: the header does not start Index,Timestamp,Event Type"
        yield Batch(
            source=source, file=file, quarantine=[bad(1, None, reason, ",".join(header or []))]
        )
        return
    if not patient:
        reason = (
            "no patient: a Clarity export names its wearer only in its preamble, which medtwin "
            "does not take as an identity; pass --patient (the device-user id)"
        )
        yield Batch(source=source, file=file, quarantine=[bad(0, "patient", reason, file or "")])
        return

    def col(name: str) -> int | None:
        return next((i for i, c in enumerate(columns) if c.startswith(name)), None)

    glucose_column = col("glucose value")
    unit = "mmol/L" if glucose_column is not None and "mmol" in columns[glucose_column] else "mg/dL"
    at = {
        "time": col("timestamp"),
        "type": col("event type"),
        "subtype": col("event subtype"),
        "device": col("device info"),
        "source_device": col("source device id"),
        "glucose": glucose_column,
        "insulin": col("insulin value"),
        "carbs": col("carb value"),
        "transmitter": col("transmitter id"),
    }
    display_device = ""
    clock = LocalClock(tz)  # rows in time order: the repeated hour of a fall back is told apart
    skipped: Counter[str] = Counter()
    batch = Batch(source=source, file=file)
    for line, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row: list[str] = row) -> str:
            i = at[name]
            return row[i].strip() if i is not None and i < len(row) else ""

        kind = cell("type")
        key = kind.lower()
        if key == "device" and cell("device"):
            display_device = cell("device")
        if key not in ("egv", "calibration", "carbs", "insulin"):
            skipped[kind or "(no event type)"] += 1
            continue
        batch.resources_read += 1
        raw_line = ",".join(row)
        made = _row(cell, key, source, clock, unit, patient, display_device, normalise)
        if isinstance(made, tuple):
            column, reason = made
            batch.quarantine.append(bad(line, column, reason, raw_line))
        else:
            batch.units.append(
                ResourceUnit(
                    key=made.source_id,
                    facts=(made,),
                    file=file,
                    location=f"line {line}",
                    content=raw_line,
                )
            )
        if batch.resources_read >= BATCH_ROWS:
            yield batch
            batch = Batch(source=source, file=file)
    for kind, n in sorted(skipped.items()):
        label = "preamble" if kind.lower() in ("firstname", "lastname", "dateofbirth") else kind
        name = f"not_stored:{label}"
        batch.counts[name] = batch.counts.get(name, 0) + n
    if batch.resources_read or batch.quarantine or batch.counts:
        yield batch


def _row(
    cell: Callable[[str], str],
    key: str,
    source: str,
    clock: LocalClock,
    unit: str,
    patient: str,
    display_device: str,
    normalise: Callable[..., Any],
) -> Fact | Problem:
    """One timed row as a fact, or ``(column, reason)``."""
    stamp = cell("time")
    when = _local_time(stamp, clock)
    if isinstance(when, str):
        return "Timestamp", when
    transmitter = cell("transmitter")
    parts = (
        display_device,
        cell("source_device"),
        f"transmitter {transmitter}" * bool(transmitter),
    )
    row = Row(
        source=source,
        patient=patient,
        when=when,
        original_time=stamp,
        resource_type="ClarityRow",
        id_prefix="Clarity",
        device=", ".join(x for x in parts if x) or None,
    )
    if key in ("egv", "calibration"):
        low, high = RANGE[unit]
        words = {"low": f"<{low:g}", "high": f">{high:g}"}
        code = CGM if key == "egv" else FINGERSTICK
        column = f"Glucose Value ({unit})"
        return glucose_fact(row, key, code, cell("glucose"), unit, column, words, normalise)
    if key == "carbs":
        return carbs_fact(row, key, cell("carbs"), "Carb Value (grams)")
    subtype = cell("subtype")
    coding = _INSULIN.get(subtype.lower())
    if coding is None:
        return "Event Subtype", f"{subtype!r} is not an insulin kind (Fast-Acting, Long-Acting)"
    return insulin_fact(row, f"insulin:{coding.code}", coding, cell("insulin"), "Insulin Value (u)")


def _local_time(stamp: str, clock: LocalClock) -> datetime | str:
    """A Clarity timestamp ("2024-03-01T07:00:00", older "2020-02-13 17:23:32": local time)
    as an instant, or why it is not one."""
    try:
        value = datetime.fromisoformat(stamp.replace(" ", "T"))
    except ValueError as exc:
        return f"{stamp!r} is not a date and time (YYYY-MM-DDThh:mm:ss): {exc}"
    if value.tzinfo is not None:  # an offset written after all: it says which instant
        return value.astimezone(UTC)
    return clock.instant(value)
