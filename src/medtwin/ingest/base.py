"""The ingest contract: every format turns bytes into batches of resource units.

Readers yield :class:`~medtwin.record.batch.Batch` objects (see that module for
resource units and quarantine items). A reader never raises for a bad record: it
quarantines it with the reason, the file, the record and the field, and goes on.
"""

from __future__ import annotations

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
    "quantity_unit",
]


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
