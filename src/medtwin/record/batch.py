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
from datetime import datetime
from typing import NamedTuple

from medtwin.record._fastinit import fast_init
from medtwin.record.facts import Demographics, Fact, Observation, encode_fact

__all__ = ["Batch", "PreparedFact", "QuarantineItem", "ResourceUnit", "prepare_fact"]


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
    prepared
        The facts already flattened by :func:`prepare_fact` (set by import workers,
        which then drop ``facts``).
    """

    key: str
    facts: tuple[Fact, ...]
    requires: tuple[str, ...] = ()
    file: str | None = None
    location: str | None = None
    content: str = ""
    raw_json: bytes | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    prepared: tuple[PreparedFact, ...] | None = None

    def text(self) -> str:
        """The resource text for quarantine: ``content``, else the raw JSON."""
        if self.content:
            return self.content
        return self.raw_json.decode() if self.raw_json is not None else ""

    def prepare(self) -> tuple[PreparedFact, ...]:
        """Every fact in the flat form the store writes (computed once, in import workers)."""
        if self.prepared is not None:
            return self.prepared
        return tuple(
            prepare_fact(fact, self.raw_json if index == 0 else None)
            for index, fact in enumerate(self.facts)
        )

    def prepared_copy(self) -> ResourceUnit:
        """A copy carrying only prepared facts: cheap to send between processes."""
        return ResourceUnit(
            key=self.key,
            facts=(),
            requires=self.requires,
            file=self.file,
            location=self.location,
            content=self.content,
            identifiers=self.identifiers,
            prepared=self.prepare(),
        )


class PreparedFact(NamedTuple):
    """A fact flattened to the columns the store writes, with its encoding and hash.

    Plain values only (pickles fast between the parsing workers and the writer);
    ``demographics`` keeps the whole fact for the few facts that update a patient.
    """

    kind: str
    source_id: str
    subject: tuple[str, str] | None
    resource_type: str | None
    code_system: str | None
    code: str | None
    display: str | None
    status: str | None
    effective_start: datetime | None
    effective_end: datetime | None
    value_num: float | None
    unit: str | None
    value_text: str | None
    part_of: str | None
    retracted: bool
    data: bytes
    raw: bytes | None
    digest: str
    demographics: Demographics | None
    source_recorded_at: datetime | None = None


def prepare_fact(fact: Fact, raw_json: bytes | None = None) -> PreparedFact:
    """Flatten and encode one fact (see :func:`medtwin.record.facts.encode_fact`)."""
    data, raw, digest = encode_fact(fact, raw_json)
    code = fact.code
    value_num = unit = value_text = None
    if isinstance(fact, Observation):
        value_num, unit, value_text = fact.value_num, fact.unit, fact.value_text
    subject = fact.subject
    return _new_prepared(  # the tuple as PreparedFact(...) builds it, without its __new__ call
        PreparedFact,
        (
            fact.kind,
            fact.source_id,
            (subject.system, subject.value) if subject is not None else None,
            fact.resource_type,
            code.system if code else None,
            code.code if code else None,
            code.display if code else None,
            fact.status,
            fact.effective_start,
            fact.effective_end,
            value_num,
            unit,
            value_text,
            fact.part_of,
            fact.retracted,
            data,
            raw,
            digest,
            fact if isinstance(fact, Demographics) else None,
            fact.source_recorded_at,
        ),
    )


_new_prepared = tuple.__new__


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
    #: Counts the reader adds to the import report (e.g. ``missing_samples``).
    counts: dict[str, int] = field(default_factory=dict)


# built once or twice per imported resource
fast_init(ResourceUnit)
fast_init(QuarantineItem)
