"""The ingest contract: every format turns bytes into batches of resource units.

Readers yield :class:`~medtwin.record.batch.Batch` objects (see that module for
resource units and quarantine items). A reader never raises for a bad record: it
quarantines it with the reason, the file, the record and the field, and goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from medtwin.record.batch import Batch, QuarantineItem, ResourceUnit

__all__ = [
    "Batch",
    "IngestError",
    "Lookup",
    "QuarantineItem",
    "Reader",
    "ResourceUnit",
    "StoreLookup",
    "export_delimiter",
    "export_number",
    "head_lines",
    "quantity_unit",
]

_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d+")


def export_number(text: str) -> float:
    """A number as a device export writes it: ``5.2``, or ``5,2`` with a decimal comma (an
    export made, or re-saved by a spreadsheet, in a European locale). Raises ``ValueError``
    for anything else (a thousands separator is not guessed at).

    >>> export_number("5.2"), export_number("5,2"), export_number(" 112 ")
    (5.2, 5.2, 112.0)
    """
    t = text.strip()
    if _DECIMAL_COMMA.fullmatch(t):
        t = t.replace(",", ".")
    return float(t)


def head_lines(path: Path, count: int = 1, *, suffix: str = ".csv") -> list[str] | None:
    """The first ``count`` lines of a text file (UTF-8, a byte-order mark dropped, at most 8 KiB
    a line), for a reader's ``can_read``; None when ``path`` is not a file ending in ``suffix``
    or cannot be read."""
    if path.suffix.lower() != suffix or not path.is_file():
        return None
    try:
        with path.open("rb") as handle:
            return [handle.readline(8192).decode("utf-8-sig", "replace") for _ in range(count)]
    except OSError:
        return None


def export_delimiter(header: str) -> str:
    """The field delimiter of a device export's header line: ``;`` or a tab where the line has
    more of them than commas (a spreadsheet's save in a European locale), else ``,``.

    >>> export_delimiter("Index;Timestamp (YYYY-MM-DDThh:mm:ss);Event Type"), export_delimiter("a,b")
    (';', ',')
    """
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


#: Finds a stored resource by identifier: ``(resource type, system or "", value) -> "Type/id"``.
Lookup = Callable[[str, str, str], "str | None"]


class StoreLookup:
    """A :data:`Lookup` over the resources a store holds from one source, which also gives a
    stored resource's JSON by ``Type/id`` (:meth:`resource`): the Medication a MedicationRequest
    of another file references."""

    __slots__ = ("source", "store")

    def __init__(self, store: Any, source: str) -> None:
        self.store = store
        self.source = source

    def __call__(self, resource_type: str, system: str, value: str) -> str | None:
        found: str | None = self.store.find_resource(self.source, resource_type, system, value)
        return found

    def resource(self, key: str) -> dict[str, Any] | None:
        """The current JSON of the stored resource ``Type/id`` of this source, or ``None``."""
        found: dict[str, Any] | None = self.store.resource_json(self.source, key)
        return found


class IngestError(ValueError):
    """Input that cannot be read at all; the message names the file, record and field."""


class Reader(Protocol):
    """A format reader: ``read`` yields batches from one path."""

    name: str

    def can_read(self, path: Path) -> bool:
        """True when this reader recognises the file (by extension or first bytes)."""
        ...

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Lookup | None = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """Yield batches from ``path``; never raise for bad records, quarantine them.

        ``lookup`` finds stored resources by identifier (conditional references);
        ``patient`` is the device-user id for formats whose records may not name one.
        A reader ignores what its format does not use.
        """
        ...


def quantity_unit(quantity: Any) -> str | None:
    """The unit of a FHIR ``Quantity`` (JSON) with a value: its UCUM ``code``, else its ``unit``
    (also when the code is of another system); ``None`` without a value or a unit."""
    if not isinstance(quantity, dict) or quantity.get("value") is None:
        return None
    unit = quantity.get("code") or quantity.get("unit")
    if quantity.get("system") not in (None, "http://unitsofmeasure.org") and quantity.get("unit"):
        unit = quantity.get("unit")
    return str(unit) if unit else None
