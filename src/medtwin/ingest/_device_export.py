"""What the CGM exports (Dexcom Clarity, LibreView) share: their facts and their bad rows.

A row of such an export is a glucose reading (a value, or a sensor's LOW / HIGH kept as a
bound), a carbohydrate entry or an insulin dose of the device user ``--patient``; each becomes
one fact whose source id is derived from the patient, the row's kind, its time and its amount,
so that exporting again (or a later export that repeats earlier sessions) changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medtwin.ingest.base import export_number
from medtwin.record.batch import Batch, QuarantineItem
from medtwin.record.facts import (
    LOINC,
    Coding,
    Fact,
    Identifier,
    MedicationAdministration,
    Observation,
)

__all__ = [
    "CARBS",
    "CGM",
    "DEVICE_USER_SYSTEM",
    "FINGERSTICK",
    "ExportReader",
    "LocalClock",
    "Problem",
    "Row",
    "carbs_fact",
    "decode_export",
    "glucose_fact",
    "insulin_fact",
    "row_quarantine",
]

DEVICE_USER_SYSTEM = "urn:medtwin:device-user"
CGM = Coding(LOINC, "99504-3", "Glucose [Mass/volume] in Interstitial fluid")
FINGERSTICK = Coding(LOINC, "41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer")
CARBS = Coding(LOINC, "9059-7", "Carbohydrate intake Estimated")

Problem = tuple[str, str]
"""``(column, reason)``: why a row's value cannot be used."""


@dataclass(frozen=True)
class Row:
    """Where a row's fact comes from: the export, the device user, the time and the device."""

    source: str
    patient: str
    when: datetime
    original_time: str
    resource_type: str
    id_prefix: str
    device: str | None = None

    @property
    def subject(self) -> Identifier:
        return Identifier(DEVICE_USER_SYSTEM, self.patient)

    def common(self, status: str) -> dict[str, Any]:
        return {
            "source": self.source,
            "subject": self.subject,
            "status": status,
            "effective_start": self.when,
            "original_time": self.original_time,
            "resource_type": self.resource_type,
        }

    def identified(self, fact: Fact, kind: str, amount: str) -> Fact:
        """``fact`` with its source id: ``<prefix>/<blake2b of patient, kind, time, amount>``."""
        digest = hashlib.blake2b(
            f"{self.patient}|{kind}|{self.when.isoformat()}|{amount}".encode(), digest_size=12
        ).hexdigest()
        return dataclasses.replace(fact, source_id=f"{self.id_prefix}/{digest}")


def glucose_fact(
    row: Row,
    kind: str,
    code: Coding,
    text: str,
    unit: str,
    column: str,
    words: dict[str, str],
    normalise: Callable[..., Any],
) -> Fact | Problem:
    """A glucose reading: a number in ``unit``, or a word of ``words`` (``{"low": "<40"}``)
    standing for a bound, kept as FHIR keeps a ``Quantity.comparator`` (the bound as the
    value, ``"<40"`` in ``value_text``)."""
    from medtwin.record.units import UnknownUnitError

    bound = words.get(text.strip().lower())
    try:
        value = export_number(bound[1:] if bound else text)
    except ValueError:
        names = " or ".join(w.upper() if len(w) == 2 else w.capitalize() for w in words)
        return column, f"{text!r} is not a glucose (a number, {names})"
    try:
        norm = normalise(value, unit, code=code.code)
    except UnknownUnitError as exc:
        return column, f"unit {unit!r}: {exc}"
    fact = Observation(
        source_id="",
        code=code,
        category="vital-signs" if code == CGM else "laboratory",
        value_num=norm.value,
        unit=norm.unit,
        original_value=norm.original_value,
        original_unit=norm.original_unit,
        value_text=bound,  # "<40": the sensor's LOW, a bound (value_comparator)
        device=row.device,
        **row.common("final"),
    )
    return row.identified(fact, kind, "")


def carbs_fact(row: Row, kind: str, text: str, column: str) -> Fact | Problem:
    """Carbohydrates eaten, in grams (LOINC 9059-7: the twin's ``meal`` events)."""
    try:
        grams = export_number(text)
    except ValueError:
        return column, f"{text!r} is not a number of grams"
    if grams < 0:
        return column, f"{text!r}: carbohydrates cannot be negative"
    fact = Observation(
        source_id="",
        code=CARBS,
        category="survey",
        value_num=grams,
        unit="g",
        device=row.device,
        **row.common("final"),
    )
    return row.identified(fact, kind, text)


def insulin_fact(row: Row, kind: str, coding: Coding, text: str, column: str) -> Fact | Problem:
    """A subcutaneous insulin dose in units, of the kind ``coding`` names."""
    try:
        units = export_number(text)
    except ValueError:
        return column, f"{text!r} is not a number of units"
    if units < 0:
        return column, f"{text!r}: a dose cannot be negative"
    fact = MedicationAdministration(
        source_id="",
        code=coding,
        dose_value=units,
        dose_unit="U",
        route="subcutaneous",
        **row.common("completed"),
    )
    return row.identified(fact, kind, text)


def row_quarantine(
    source: str, file: str | None, resource_type: str
) -> Callable[[int, str | None, str, str], QuarantineItem]:
    """``bad(line, column, reason, text)``: the quarantine entry of one row of the file."""

    def bad(line: int, column: str | None, reason: str, text: str) -> QuarantineItem:
        return QuarantineItem(
            source=source,
            reason=reason,
            content=text,
            file=file,
            location=f"line {line}",
            resource_type=resource_type,
            field=column,
        )

    return bad


class ExportReader:
    """A reader of one kind of device export: the file's bytes to :meth:`read_bytes`."""

    name: str
    default_source: str

    def read_bytes(
        self, data: bytes, *, source: str, tz: str, file: str | None, patient: str | None
    ) -> Iterator[Batch]:
        raise NotImplementedError

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Any = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """Batches of up to 2,000 rows; local times are read in ``tz``."""
        yield from self.read_bytes(
            path.read_bytes(),
            source=source or self.default_source,
            tz=tz,
            file=str(path),
            patient=patient,
        )


class LocalClock:
    """Wall-clock times of an export, read in time order, as instants in UTC.

    A device writes local time without an offset. Where the clocks go back (the end of summer
    time) one hour of wall-clock times happens twice: read alone, a time in it is the first
    pass (``fold=0``), and the second pass's readings would land on the first's instants (the
    same source ids: a correction, one hour lost). Read in the file's time order, the times go
    back within that hour: from there to the end of the hour they are the second pass
    (``fold=1``). A jump back that is not into a repeated hour (a new group of rows in a
    LibreView export, which is sorted by record type first) starts over.

    >>> clock = LocalClock("Europe/Berlin")
    >>> [clock.instant(datetime.fromisoformat(t)).strftime("%H:%M") for t in (
    ...     "2024-10-27T02:50", "2024-10-27T02:55", "2024-10-27T02:00", "2024-10-27T03:00")]
    ['00:50', '00:55', '01:00', '02:00']
    """

    def __init__(self, tz: str) -> None:
        from medtwin.record.time import get_zone

        self.zone = get_zone(tz)
        self._previous: datetime | None = None
        self._fold = 0

    def _repeated(self, naive: datetime) -> bool:
        first = naive.replace(tzinfo=self.zone, fold=0).utcoffset()
        return first != naive.replace(tzinfo=self.zone, fold=1).utcoffset()

    def instant(self, naive: datetime) -> datetime:
        """The UTC instant of wall-clock time ``naive`` (no tzinfo), the next in file order."""
        repeated = self._repeated(naive)
        if not repeated:
            self._fold = 0
        elif self._previous is not None and naive < self._previous:
            self._fold = 1 if self._repeated(self._previous) else 0
        self._previous = naive
        return naive.replace(tzinfo=self.zone, fold=self._fold if repeated else 0).astimezone(UTC)


def decode_export(data: bytes) -> str:
    """The export's text (UTF-8, with or without a byte-order mark); ``ValueError`` naming the
    offset of the first byte that is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: invalid byte at offset {exc.start}") from None
