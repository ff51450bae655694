"""Batches: the unit of transaction between ingest and the store.

A *resource unit* is what one source resource (a FHIR resource, an HL7 v2 OBX
segment ...) becomes: one or more facts that are written together or not at all,
with the other resources it needs to exist (``requires``). A resource that cannot
be used becomes a :class:`QuarantineItem` with the reason and its location.

A :class:`Batch` is written by the store in one transaction: all of it or none of
it, so a killed import leaves the store consistent and re-running it completes it
without duplicates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from medtwin.record.facts import Fact

__all__ = ["Batch", "QuarantineItem", "ResourceUnit"]


@dataclass(frozen=True, slots=True)
class ResourceUnit:
    """The facts made from one source resource, written atomically.

    Attributes
    ----------
    key
        ``source_id`` of the main fact, e.g. ``Observation/abc``.
    facts
        The facts; the first is the main one, the rest are derived (components).
    requires
        ``source_id`` values (same source) of resources that must exist, in this
        batch or in the store, for this unit to be stored; otherwise it waits in
        quarantine.
    location
        Where it came from: ``file`` and ``entry[12]`` / ``line 40``.
    content
        The resource text, kept for quarantine if the unit cannot be stored.
    raw_json
        The source resource as JSON, stored with the first fact (when the facts do not
        carry ``raw`` themselves); saves parsing it again.
    identifiers
        ``(system, value)`` business identifiers of the resource, so conditional
        references (``Location?identifier=sys|val``) can find it later.
    encoded
        Precomputed :func:`~medtwin.record.facts.encode_fact` results, one per fact.
    """

    key: str
    facts: tuple[Fact, ...]
    requires: tuple[str, ...] = ()
    file: str | None = None
    location: str | None = None
    content: str = ""
    raw_json: bytes | None = None
    encoded: tuple[tuple[bytes, bytes | None, str], ...] | None = None
    identifiers: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        """The resource text for quarantine: ``content``, else the raw JSON."""
        if self.content:
            return self.content
        return self.raw_json.decode() if self.raw_json is not None else ""

    def encode(self) -> ResourceUnit:
        """A copy with every fact's storage encoding computed (done in import workers)."""
        from medtwin.record.facts import encode_fact

        encoded = tuple(
            encode_fact(fact, self.raw_json if index == 0 else None)
            for index, fact in enumerate(self.facts)
        )
        return ResourceUnit(
            key=self.key,
            facts=self.facts,
            requires=self.requires,
            file=self.file,
            location=self.location,
            content=self.content,
            raw_json=None,
            encoded=encoded,
            identifiers=self.identifiers,
        )


@dataclass(frozen=True, slots=True)
class QuarantineItem:
    """Data that could not be used, with the reason and where it was found."""

    source: str
    reason: str
    content: str
    file: str | None = None
    location: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    field: str | None = None
    waits_for: str | None = None

    @property
    def content_hash(self) -> str:
        """Hash that makes re-quarantining the same data a no-op."""
        return hashlib.blake2b(self.content.encode("utf-8", "replace"), digest_size=16).hexdigest()

    def describe(self) -> str:
        """One line: ``file, location, field: reason``."""
        where = ", ".join(
            part
            for part in (self.file, self.location, self.field and f"field {self.field}")
            if part
        )
        return f"{where}: {self.reason}" if where else self.reason


@dataclass(slots=True)
class Batch:
    """What a reader hands the store in one transaction."""

    source: str
    units: list[ResourceUnit] = field(default_factory=list)
    quarantine: list[QuarantineItem] = field(default_factory=list)
    file: str | None = None
    resources_read: int = 0
