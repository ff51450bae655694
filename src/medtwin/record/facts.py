"""Typed, immutable facts: the atoms of a patient record.

A fact is something true about a patient at a time, with its provenance
(``source``, ``source_id``) and two times (bitemporal):

* **valid time**: ``effective_start`` / ``effective_end``, when it was true;
* **transaction time**: ``recorded_at``, when medtwin learned it (set by the store).

Facts are append-only. A corrected result is a new *version* of the same
``(source, source_id)``; the store marks the older version superseded. A fact
whose ``status`` is ``entered-in-error`` retracts the earlier versions. Sending
identical content again is a no-op, decided by :func:`content_hash`.

Examples
--------
>>> from datetime import datetime, UTC
>>> obs = Observation(
...     source="demo", source_id="Observation/1", subject=Identifier("urn:demo", "p1"),
...     code=Coding(LOINC, "8867-4", "Heart rate"), status="final",
...     effective_start=datetime(2024, 1, 1, tzinfo=UTC), value_num=72.0, unit="/min",
... )
>>> obs.kind, obs.retracted
('Observation', False)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import orjson

from medtwin.record._fastinit import fast_init

__all__ = [
    "FACT_KINDS",
    "LOINC",
    "NOT_DONE_STATUSES",
    "RXNORM",
    "SNOMED",
    "VOID_RESULT_STATUSES",
    "AllergyIntolerance",
    "Coding",
    "Condition",
    "Demographics",
    "Encounter",
    "Fact",
    "Genotype",
    "Identifier",
    "Immunization",
    "MedicationAdministration",
    "MedicationRequest",
    "Observation",
    "Procedure",
    "RawResource",
    "content_hash",
    "death_date",
    "encode_fact",
    "fact_from_dict",
    "fact_to_dict",
    "text_comparator",
    "value_comparator",
]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

RETRACTED_STATUS = "entered-in-error"

VOID_RESULT_STATUSES = frozenset({"cancelled", "entered-in-error"})
"""Observation statuses of a result that is not one (FHIR R4 observation-status: the test was
cancelled, or the result was entered in error): never read as a value, even with one."""
NOT_DONE_STATUSES = frozenset({"not-done", "entered-in-error"})
"""Statuses of an act that did not happen (FHIR R4 event status of MedicationAdministration,
Immunization, Procedure: not-done, "the event was terminated prior to any activity beyond
preparation", or recorded in error): a dose not given, a vaccine not given."""


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    """A patient identifier as one source knows it: ``system`` (a URI) and ``value``.

    FHIR logical ids are identifiers too, in the system
    ``urn:medtwin:fhir:<source>:Patient``, so a reference ``Patient/123`` finds its patient.
    """

    system: str
    value: str

    def __str__(self) -> str:
        return f"{self.system}|{self.value}"


@dataclass(frozen=True, slots=True)
class Coding:
    """One code from a code system (LOINC, SNOMED CT, RxNorm, ...)."""

    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    """Common shape of every fact.

    Attributes
    ----------
    source
        Name of the system the fact came from (``--source``, default ``fhir`` / the
        HL7 v2 sending facility).
    source_id
        Id of the fact in that source, e.g. ``Observation/abc``; components of one
        resource get ``Observation/abc#8480-6``.
    subject
        Identifier of the patient the fact is about, or ``None`` for shared
        resources such as a Practitioner.
    code
        The main code of the fact.
    status
        The source's status; ``entered-in-error`` retracts.
    effective_start, effective_end
        Valid time, timezone-aware UTC.
    source_recorded_at
        When the source says it recorded the fact (``meta.lastUpdated``, ``issued``).
    original_time
        The time text exactly as the source wrote it.
    resource_type
        FHIR resource type of the raw resource (or HL7 v2 segment name).
    part_of
        ``source_id`` of the fact this one was derived from (a panel's component).
    raw
        The source resource, kept whole, so export round-trips it.
    """

    kind: ClassVar[str] = "Fact"
    source: str
    source_id: str
    subject: Identifier | None = None
    code: Coding | None = None
    status: str | None = None
    effective_start: datetime | None = None
    effective_end: datetime | None = None
    source_recorded_at: datetime | None = None
    original_time: str | None = None
    resource_type: str | None = None
    part_of: str | None = None
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def retracted(self) -> bool:
        """True for an ``entered-in-error`` fact, which retracts its earlier versions."""
        return self.status == RETRACTED_STATUS


@dataclass(frozen=True, slots=True, kw_only=True)
class Demographics(Fact):
    """Who the patient is: names, birth date, sex, identifiers (from FHIR Patient, HL7 PID)."""

    kind: ClassVar[str] = "Demographics"
    identifiers: tuple[Identifier, ...] = ()
    family: str | None = None
    given: tuple[str, ...] = ()
    birth_date: str | None = None
    gender: str | None = None
    deceased: str | None = None
    address: str | None = None
    telecom: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation(Fact):
    """A measurement or finding: vital sign, lab result, score, device reading.

    ``value_num`` and ``unit`` are normalised (a canonical UCUM unit per LOINC code);
    ``original_value`` and ``original_unit`` keep what the source said.
    """

    kind: ClassVar[str] = "Observation"
    category: str | None = None
    value_num: float | None = None
    unit: str | None = None
    original_value: float | None = None
    original_unit: str | None = None
    value_text: str | None = None
    value_code: Coding | None = None
    interpretation: str | None = None
    reference_low: float | None = None
    reference_high: float | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition(Fact):
    """A problem or diagnosis (SNOMED CT); valid time = onset to abatement."""

    kind: ClassVar[str] = "Condition"
    clinical_status: str | None = None
    verification_status: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MedicationRequest(Fact):
    """An order or prescription (RxNorm), with its dosage as the source gave it."""

    kind: ClassVar[str] = "MedicationRequest"
    intent: str | None = None
    dose_value: float | None = None
    dose_unit: str | None = None
    route: str | None = None
    frequency_per_day: float | None = None
    dosage_text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MedicationAdministration(Fact):
    """A dose given: amount, route, start and end of the administration."""

    kind: ClassVar[str] = "MedicationAdministration"
    dose_value: float | None = None
    dose_unit: str | None = None
    route: str | None = None
    rate_value: float | None = None
    rate_unit: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Procedure(Fact):
    """A procedure performed (SNOMED CT)."""

    kind: ClassVar[str] = "Procedure"
    body_site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AllergyIntolerance(Fact):
    """An allergy or intolerance with criticality and reactions."""

    kind: ClassVar[str] = "AllergyIntolerance"
    clinical_status: str | None = None
    criticality: str | None = None
    category: str | None = None
    reactions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Immunization(Fact):
    """A vaccine given (CVX)."""

    kind: ClassVar[str] = "Immunization"
    lot_number: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Encounter(Fact):
    """A contact with care: class (ambulatory, inpatient, emergency ...), type, period."""

    kind: ClassVar[str] = "Encounter"
    class_code: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Genotype(Fact):
    """A genotype at one genomic position, as a VCF or a raw array file reported it.

    Attributes
    ----------
    gene
        The pharmacogene whose allele definitions name this position (``CYP2C19``).
    variant
        The dbSNP id (``rs4244285``) where known.
    chromosome, position
        Where: ``chr10``, 1-based position on ``build``.
    ref, alt
        The reference allele and the alternate alleles of the record (VCF spelling).
    genotype
        The two alleles as bases, ``G/A`` (unphased) or ``G|A`` (phased); ``./.``
        when the file has no call at the position.
    phased
        Whether the file phased this genotype (``|``).
    build
        Genome build of ``position`` (``GRCh38``), ``None`` when the file did not say.
    sample
        The sample name in the file (a VCF column, or the raw file's name).
    """

    kind: ClassVar[str] = "Genotype"
    gene: str | None = None
    variant: str | None = None
    genotype: str | None = None
    chromosome: str | None = None
    position: int | None = None
    ref: str | None = None
    alt: tuple[str, ...] = ()
    phased: bool = False
    build: str | None = None
    sample: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RawResource(Fact):
    """A resource medtwin does not model (Claim, ExplanationOfBenefit, Practitioner ...).

    Kept whole so that export round-trips it.
    """

    kind: ClassVar[str] = "RawResource"


FACT_KINDS: dict[str, type[Fact]] = {
    cls.kind: cls
    for cls in (
        Demographics,
        Observation,
        Condition,
        MedicationRequest,
        MedicationAdministration,
        Procedure,
        AllergyIntolerance,
        Immunization,
        Encounter,
        Genotype,
        RawResource,
    )
}

for _cls in (Identifier, Coding, *FACT_KINDS.values()):
    fast_init(_cls)

# Columns the store keeps in their own columns; everything else goes into ``data``.
_COMMON = frozenset(f.name for f in dataclasses.fields(Fact) if f.name not in ("raw",))
_FIELDS: dict[type[Fact], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in FACT_KINDS.values()
}


def _plain(value: Any) -> Any:
    if isinstance(value, Identifier):
        return {"system": value.system, "value": value.value}
    if isinstance(value, Coding):
        return {"system": value.system, "code": value.code, "display": value.display}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def death_date(deceased: str | None) -> dt.date | None:
    """The day of a recorded death (``Demographics.deceased``: a date or date-time as sent,
    FHIR deceasedDateTime or HL7 v2 PID-29), or ``None``: no death, or one recorded without a
    date (``"true"``: deceasedBoolean, PID-30 Y).

    >>> death_date("1977-07-14T04:17:45-04:00"), death_date("true"), death_date(None)
    (datetime.date(1977, 7, 14), None, None)
    """
    if not deceased or len(deceased) < 10 or not deceased[:4].isdigit():
        return None
    try:
        return dt.date.fromisoformat(deceased[:10])
    except ValueError:
        return None


_COMPARATORS = ("<=", ">=", "<", ">")


def value_comparator(fact: Fact) -> str | None:
    """The comparator of an Observation whose value is a bound, not a value (FHIR
    ``Quantity.comparator``, an HL7 v2 ``SN`` value: an eGFR reported as ">90", an albumin
    below the detection limit "<3"): ``"<"``, ``"<="``, ``">="`` or ``">"``; ``None`` for an
    exact value. The reader keeps the bound in ``value_num`` and the comparator in
    ``value_text`` ("``>90``").

    >>> value_comparator(Observation(source="lab", source_id="1", value_num=90.0,
    ...                              value_text=">90"))
    '>'
    >>> value_comparator(Observation(source="lab", source_id="2", value_num=90.0)) is None
    True
    """
    if not isinstance(fact, Observation) or fact.value_num is None or not fact.value_text:
        return None
    return text_comparator(fact.value_text)


def text_comparator(value_text: str | None) -> str | None:
    """The comparator a numeric Observation's ``value_text`` starts with (``">90"`` -> ``">"``),
    for code that holds the stored columns, not the fact (:func:`value_comparator`).

    >>> text_comparator("<=0.5"), text_comparator("5.10"), text_comparator(None)
    ('<=', None, None)
    """
    if not value_text:
        return None
    text = value_text.lstrip()
    return next((c for c in _COMPARATORS if text.startswith(c)), None)


def fact_to_dict(fact: Fact, *, include_raw: bool = False) -> dict[str, Any]:
    """A JSON-ready dict of a fact (``kind`` first); ``raw`` only when asked."""
    out: dict[str, Any] = {"kind": fact.kind}
    for name in _FIELDS[type(fact)]:
        if name == "raw" and not include_raw:
            continue
        value = getattr(fact, name)
        if value is None or value == ():
            continue
        out[name] = _plain(value)
    return out


def _coding(value: Any) -> Coding | None:
    if value is None:
        return None
    return Coding(value["system"], value["code"], value.get("display"))


def fact_from_dict(data: Mapping[str, Any], kind: str | None = None) -> Fact:
    """Rebuild a fact from :func:`fact_to_dict` or :func:`encode_fact` output.

    ``kind`` is needed when ``data`` has no ``kind`` key (the store keeps it in a column).
    """
    cls = FACT_KINDS[data.get("kind") or kind or ""]
    kwargs: dict[str, Any] = {}
    for name in _FIELDS[cls]:
        value = data.get(name)
        if value is None:
            continue
        if name == "subject":
            value = Identifier(value["system"], value["value"])
        elif name in ("code", "value_code"):
            value = _coding(value)
        elif name == "identifiers":
            value = tuple(Identifier(v["system"], v["value"]) for v in value)
        elif isinstance(value, list):
            value = tuple(value)
        elif name in ("effective_start", "effective_end", "source_recorded_at") and value:
            value = datetime.fromisoformat(value)
        kwargs[name] = value
    return cls(**kwargs)


def encode_fact(fact: Fact, raw_json: bytes | None = None) -> tuple[bytes, bytes | None, str]:
    """Serialise a fact for storage: ``(data JSON, raw JSON, content hash)``.

    ``data`` is the fact's fields (without ``raw``) in declaration order; ``raw`` is
    the source resource (``raw_json`` when given, else ``fact.raw``). The hash covers
    both, so re-sending identical content is a no-op and any change is a new version.
    """
    if fact.raw is not None and raw_json is None:
        raw_json = orjson.dumps(fact.raw)
    encoder = _ENCODERS.get(type(fact))
    if encoder is not None:
        data = orjson.dumps(encoder(fact))
    else:
        if fact.raw is not None:
            fact = dataclasses.replace(fact, raw=None)
        data = orjson.dumps(fact)
    hasher = hashlib.blake2b(data, digest_size=16)
    if raw_json is not None:
        hasher.update(b"\x00")
        hasher.update(raw_json)
    return data, raw_json, hasher.hexdigest()


def _field_value(name: str, annotation: object) -> str:
    """Python expression of one field as orjson writes it from the dataclass."""
    if name == "raw":
        return "None"  # ``data`` never holds the source resource
    value = f"f.{name}"
    if annotation == "Identifier | None":
        return f"None if {value} is None else {{'system': {value}.system, 'value': {value}.value}}"
    if annotation == "Coding | None":
        return (
            f"None if {value} is None else {{'system': {value}.system, 'code': {value}.code, "
            f"'display': {value}.display}}"
        )
    if annotation == "tuple[Identifier, ...]":
        return f"[{{'system': i.system, 'value': i.value}} for i in {value}]"
    if annotation in (
        "str",
        "str | None",
        "float | None",
        "int | None",
        "bool",
        "datetime | None",
        "tuple[str, ...]",
    ):
        return value
    raise TypeError(f"no encoder for field {name}: {annotation}")


def _make_encoder(cls: type[Fact]) -> Callable[[Fact], dict[str, Any]]:
    """A function giving the dict that orjson writes exactly as it writes the fact.

    orjson serialises a dataclass with ``__slots__`` (and the Identifier and Coding
    inside it) through a slower generic path; a plain dict of the same fields, in
    the same order, gives the same bytes in about half the time. The test suite
    checks the bytes against ``orjson.dumps(fact)``.
    """
    items = ", ".join(
        f"{f.name!r}: {_field_value(f.name, f.type)}" for f in dataclasses.fields(cls)
    )
    namespace: dict[str, Any] = {}
    exec(f"def encode(f):\n return {{{items}}}", namespace)
    return namespace["encode"]  # type: ignore[no-any-return]


_ENCODERS: dict[type[Fact], Callable[[Fact], dict[str, Any]]] = {
    cls: _make_encoder(cls) for cls in FACT_KINDS.values()
}


def content_hash(fact: Fact) -> str:
    """Hash of everything a fact says (see :func:`encode_fact`)."""
    return encode_fact(fact)[2]
