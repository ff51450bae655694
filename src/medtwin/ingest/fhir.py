"""FHIR R4 import: Bundles, Bulk Data NDJSON, and single resources, into facts.

The resource is the unit. Each resource is validated (:mod:`medtwin.ingest.fhir_schema`),
its references are resolved (``urn:uuid:`` full URLs and conditional references
such as ``Practitioner?identifier=sys|val`` inside the bundle; literal ``Type/id``
references in the bundle or the store), and it becomes one or more facts that keep
the raw resource (with references rewritten to ``Type/id``, as a FHIR server
does on a transaction). Resource types medtwin does not model (Claim,
ExplanationOfBenefit, Practitioner ...) are valid data and are kept as
:class:`~medtwin.record.facts.RawResource` facts so export round-trips them.

A resource that fails validation, has an unknown unit, or references nothing is
quarantined with the reason, the file, the entry index and the field; a resource
that references a quarantined one waits in quarantine too.

A ``RiskAssessment`` that medtwin wrote (``meta.source`` ``medtwin:risk``, the
``urn:medtwin:risk`` identifier, a ``urn:medtwin:score`` code: see
:func:`medtwin.risk.from_record.risk_assessment`) is read back into the score result fact
it was exported from, in a batch of the source ``medtwin:risk`` after the file's own batch
(:func:`split_score_results`), so import -> export -> import gives the same facts. Other
RiskAssessments are kept as raw resources.

References
----------
HL7 FHIR R4 (4.0.1): Bundle (section 2.36), transaction processing and
``urn:uuid`` resolution (http.html#trules), conditional references
(http.html#cond-update, "Conditional References"), FHIR Bulk Data Access IG 2.0
(NDJSON output files).
"""

from __future__ import annotations

import codecs
import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import unquote

import orjson

from medtwin.ingest.base import Batch, Lookup, QuarantineItem, ResourceUnit
from medtwin.ingest.ieee11073 import loinc_for_mdc
from medtwin.ingest.snomed import affirmed, loinc_for_snomed, smoking_answer
from medtwin.record.codes import NHS_NUMBER_SYSTEMS, nhs_number
from medtwin.record.facts import (
    LOINC,
    RXNORM,
    SNOMED,
    AllergyIntolerance,
    Coding,
    Condition,
    Demographics,
    Encounter,
    Fact,
    Identifier,
    Immunization,
    MedicationAdministration,
    MedicationRequest,
    Observation,
    Procedure,
    RawResource,
)
from medtwin.record.smoking import SMOKING_STATUS_LOINC
from medtwin.record.time import InvalidTimeError, ParsedTime, parse_fhir_datetime

__all__ = [
    "DEFAULT_SOURCE",
    "FhirReader",
    "patient_identifier_system",
    "read_bundle",
    "read_ndjson",
    "read_resource_text",
    "score_result_fact",
    "split_score_results",
    "units_from_resources",
]

DEFAULT_SOURCE = "fhir"


NDJSON_BATCH = 2000

# Bulk Data files are imported in this order so that references point backwards.
TYPE_ORDER = {
    name: rank
    for rank, name in enumerate(
        (
            "Organization",
            "Location",
            "Practitioner",
            "PractitionerRole",
            "Medication",
            "Substance",
            "Device",
            "Patient",
            "RelatedPerson",
            "Group",
            "Coverage",
            "Encounter",
            "EpisodeOfCare",
            "Condition",
            "Specimen",
            "ServiceRequest",
            "Observation",
            "DiagnosticReport",
            "MedicationRequest",
            "MedicationDispense",
            "MedicationAdministration",
            "Procedure",
            "Immunization",
            "AllergyIntolerance",
            "Goal",
            "CareTeam",
            "CarePlan",
            "DocumentReference",
            "ImagingStudy",
            "Claim",
            "ExplanationOfBenefit",
            "Provenance",
        )
    )
}

_SUBJECT_KEYS = ("subject", "patient", "beneficiary")

SMOKING_STATUS = Coding(LOINC, SMOKING_STATUS_LOINC, "Tobacco smoking status")
"""The code a smoking finding recorded as an Observation's code is stored under."""


def patient_identifier_system(source: str) -> str:
    """Identifier system of FHIR Patient logical ids from ``source``."""
    return f"urn:medtwin:fhir:{source}:Patient"


class FhirReader:
    """Reads FHIR JSON Bundles or resources (``.json``) and Bulk Data NDJSON (``.ndjson``)."""

    name = "fhir"

    def can_read(self, path: Path) -> bool:
        """``.json`` and ``.ndjson`` files whose first object looks like FHIR."""
        return path.suffix.lower() in (".json", ".ndjson")

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Lookup | None = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """Batches from one file: a bundle is one batch; NDJSON comes in batches of lines.

        An NDJSON file is read in the parts the parallel import cuts it into, each in
        batches of :data:`NDJSON_BATCH` lines, so one process and the workers store the
        same batches (a re-send is recognised within a batch: see ``docs/record.md``).
        ``lookup`` resolves conditional references against the store.
        """
        if path.suffix.lower() == ".ndjson":
            from medtwin.ingest import _ndjson_parts  # the package imports this module

            batches: Iterator[Batch] = (
                batch
                for part in _ndjson_parts(path)
                for batch in read_ndjson(path, source=source, tz=tz, lookup=lookup, part=part)
            )
        else:
            batches = iter((read_bundle(path, source=source, tz=tz, lookup=lookup),))
        for batch in batches:
            yield from split_score_results(batch, tz=tz)


# --------------------------------------------------------------------------------------------
# reading files


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _utf8(data: bytes) -> bytes:
    """``data`` as UTF-8 without a byte order mark.

    A UTF-8 BOM (Windows tools write one) is dropped: RFC 8259 section 8.1 lets a parser
    ignore it. UTF-16 text that starts with its BOM (Windows PowerShell 5's ``>`` writes it)
    is decoded and re-encoded: its characters are kept, whatever they are. Anything else is
    returned as it is (the parser reports what is wrong with it).
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :]
    if data.startswith(_UTF16_BOMS) and len(data) % 2 == 0:
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return data
    return data


def _file_problem(path: Path, data: bytes) -> str | None:
    if not data:
        return "empty file (0 bytes of content)"
    if not data.strip():
        return f"empty file (only {len(data)} bytes of white space)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} at offset {exc.start}"
    return None


def _quarantine_file(path: Path, source: str, reason: str, data: bytes) -> Batch:
    return Batch(
        source=source,
        file=str(path),
        quarantine=[
            QuarantineItem(
                source=source,
                reason=reason,
                content=data.decode("utf-8", "replace"),
                file=str(path),
                location="file",
            )
        ],
    )


def read_bundle(
    path: Path, *, source: str | None = None, tz: str = "UTC", lookup: Lookup | None = None
) -> Batch:
    """Read a JSON file holding a Bundle (transaction, collection, batch ...) or one resource."""
    data = _utf8(path.read_bytes())
    src = source or DEFAULT_SOURCE
    try:
        # orjson rejects invalid UTF-8 itself; the file is scanned for the bad byte only then
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        problem = _file_problem(path, data)
        return _quarantine_file(path, src, problem or f"invalid JSON: {exc}", data)
    if not isinstance(document, dict):
        return _quarantine_file(
            path,
            src,
            f"expected a JSON object (a FHIR resource), found {type(document).__name__}",
            data,
        )
    if document.get("resourceType") == "Bundle":
        return bundle_batch(document, source=source, tz=tz, file=str(path), lookup=lookup)
    batch = Batch(source=src, file=str(path), resources_read=1)
    units_from_resources([(document, "resource", None)], batch, tz=tz, lookup=lookup)
    return batch


def bundle_batch(
    bundle: Mapping[str, Any],
    *,
    source: str | None = None,
    tz: str = "UTC",
    file: str | None = None,
    lookup: Lookup | None = None,
) -> Batch:
    """Turn a Bundle (already parsed) into one batch."""
    src = source or _meta_source(bundle) or DEFAULT_SOURCE
    batch = Batch(source=src, file=file)
    entries = bundle.get("entry")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        batch.quarantine.append(
            QuarantineItem(
                source=src,
                reason="Bundle.entry must be a list",
                content=orjson.dumps(bundle).decode(),
                file=file,
                location="Bundle",
                resource_type="Bundle",
                field="Bundle.entry",
            )
        )
        return batch
    items: list[tuple[Any, str, str | None]] = []
    for index, entry in enumerate(entries):
        location = f"entry[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            batch.quarantine.append(
                QuarantineItem(
                    source=src,
                    reason="bundle entry has no resource object",
                    content=orjson.dumps(entry).decode(),
                    file=file,
                    location=location,
                    field=f"Bundle.entry[{index}].resource",
                )
            )
            continue
        full_url = entry.get("fullUrl")
        items.append((entry["resource"], location, full_url if isinstance(full_url, str) else None))
    batch.resources_read = len(items)
    units_from_resources(items, batch, tz=tz, lookup=lookup)
    return batch


def read_ndjson(
    path: Path,
    *,
    source: str | None = None,
    tz: str = "UTC",
    batch_size: int = NDJSON_BATCH,
    lookup: Lookup | None = None,
    part: tuple[int, int, int] | None = None,
) -> Iterator[Batch]:
    """Stream a Bulk Data NDJSON file in batches of ``batch_size`` lines (bounded memory).

    ``part`` = ``(start, end, first line number)``: only the lines in bytes ``[start, end)``
    (``start`` at the beginning of a line), numbered from the given line, as the parallel
    import reads a large file in parts (see ``medtwin.ingest``).
    """
    src = source or DEFAULT_SOURCE
    file = str(path)
    start, end, first = part if part is not None else (0, None, 1)
    if start == 0 and path.stat().st_size == 0:
        yield _quarantine_file(path, src, "empty file (0 bytes of content)", b"")
        return
    with path.open("rb") as handle:
        if start == 0 and handle.read(2) in _UTF16_BOMS:
            data = _utf8(path.read_bytes())
            reason = "UTF-16 text: NDJSON is UTF-8 (one resource a line); save the file as UTF-8"
            yield _quarantine_file(path, src, reason, data)
            return
        handle.seek(start)
        lines: Iterable[bytes] = handle if end is None else _lines_until(handle, end - start)
        items: list[tuple[Any, str, str | None]] = []
        bad: list[QuarantineItem] = []
        for number, line in enumerate(lines, start=first):
            if number == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8) :]  # RFC 8259 section 8.1: may be ignored
            if not line.strip():
                continue
            location = f"line {number}"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad.append(
                    QuarantineItem(
                        source=src,
                        reason=f"not UTF-8 text: invalid byte 0x{line[exc.start]:02x} at column {exc.start + 1}",
                        content=line.decode("utf-8", "replace"),
                        file=file,
                        location=location,
                    )
                )
                continue
            try:
                resource = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                bad.append(
                    QuarantineItem(
                        source=src,
                        reason=f"invalid JSON: {exc}",
                        content=text,
                        file=file,
                        location=location,
                    )
                )
                continue
            items.append((resource, location, None))
            if len(items) >= batch_size:
                batch = Batch(
                    source=src, file=file, resources_read=len(items) + len(bad), quarantine=bad
                )
                units_from_resources(items, batch, tz=tz, lookup=lookup)
                yield batch
                items, bad = [], []
        if items or bad:
            batch = Batch(
                source=src, file=file, resources_read=len(items) + len(bad), quarantine=bad
            )
            units_from_resources(items, batch, tz=tz, lookup=lookup)
            yield batch


def _lines_until(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """The lines of ``handle`` from where it stands, ``size`` bytes of them."""
    for line in handle:
        yield line
        size -= len(line)
        if size <= 0:
            return


def read_ndjson_part(
    path: Path,
    part: tuple[int, int, int],
    *,
    source: str | None,
    tz: str,
    lookup: Lookup | None = None,
) -> Iterator[Batch]:
    """The batches of one part of an NDJSON file, as :meth:`FhirReader.read` gives them."""
    for batch in read_ndjson(path, source=source, tz=tz, lookup=lookup, part=part):
        yield from split_score_results(batch, tz=tz)


def read_resource_text(
    text: str,
    *,
    source: str,
    tz: str = "UTC",
    file: str | None = None,
    location: str | None = None,
    lookup: Lookup | None = None,
) -> Batch:
    """One resource given as JSON text (used by quarantine retry)."""
    batch = Batch(source=source, file=file, resources_read=1)
    try:
        resource = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        batch.quarantine.append(
            QuarantineItem(
                source=source,
                reason=f"invalid JSON: {exc}",
                content=text,
                file=file,
                location=location,
            )
        )
        return batch
    if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
        return bundle_batch(resource, source=source, tz=tz, file=file, lookup=lookup)
    units_from_resources([(resource, location or "resource", None)], batch, tz=tz, lookup=lookup)
    return batch


def score_result_fact(
    resource: Mapping[str, Any], *, source: str, tz: str = "UTC"
) -> Observation | None:
    """The stored score result of a RiskAssessment that medtwin exported, else ``None``.

    The fact has the source ``medtwin:risk``, the source id of the ``urn:medtwin:risk``
    identifier, the score's code, the value (and unit) of the score-value extension and the band
    of ``qualitativeRisk``; the resource stays its raw resource, as it was on the exported
    fact. ``source`` is the import's source, which names the patient's FHIR id system.
    """
    from medtwin.risk.from_record import (
        RISK_IDENTIFIER_SYSTEM,
        RISK_SOURCE,
        SCORE_SYSTEM,
        SCORE_VALUE_URL,
    )

    if resource.get("resourceType") != "RiskAssessment" or _meta_source(resource) != RISK_SOURCE:
        return None
    source_id = next(
        (
            i.get("value")
            for i in resource.get("identifier") or ()
            if isinstance(i, dict) and i.get("system") == RISK_IDENTIFIER_SYSTEM
        ),
        None,
    )
    code = _codeable(resource.get("code"))
    predictions = resource.get("prediction") or ()
    if not isinstance(source_id, str) or code is None or code.system != SCORE_SYSTEM:
        return None
    if not predictions or not isinstance(predictions[0], dict):
        return None
    prediction = predictions[0]
    score_value = next(
        (
            e
            for e in prediction.get("extension") or ()
            if isinstance(e, dict) and e.get("url") == SCORE_VALUE_URL
        ),
        {},
    )
    quantity = score_value.get("valueQuantity")
    ends = score_value.get("valueRange")  # a range over what the record left open
    value: float | None = None
    bounds: tuple[float, float] | None = None
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        value = float(quantity["value"])
    elif isinstance(ends, dict) and all(
        isinstance((ends.get(end) or {}).get("value"), int | float) for end in ("low", "high")
    ):
        quantity = ends["low"]
        bounds = (float(ends["low"]["value"]), float(ends["high"]["value"]))
    else:
        return None
    parsed = _time(resource.get("occurrenceDateTime"), tz, "RiskAssessment.occurrenceDateTime")
    band = (prediction.get("qualitativeRisk") or {}).get("text")
    unit = quantity.get("unit")
    unit = unit if isinstance(unit, str) else None
    text = band if isinstance(band, str) else None
    if bounds is not None:
        from medtwin.risk.from_record import range_text

        text = range_text(*bounds, unit)
    fact = Observation(
        source=RISK_SOURCE,
        source_id=source_id,
        subject=_subject(resource, source),
        code=code,
        status=resource.get("status"),
        category="survey",
        effective_start=parsed.instant if parsed else None,
        value_num=value,
        unit=unit,
        value_text=text,
        resource_type="RiskAssessment",
    )
    return fact if fact.effective_start is not None else None


def split_score_results(batch: Batch, *, tz: str = "UTC") -> Iterator[Batch]:
    """``batch``, then a batch of source ``medtwin:risk`` with the score results in it.

    Every unit of a RiskAssessment that :func:`score_result_fact` recognises moves to the
    second batch as its score fact; its ``basis`` references are provenance, not dependencies,
    so they do not hold it in quarantine. The patient it is about is written first, with
    ``batch``.
    """
    from medtwin.risk.from_record import RISK_SOURCE

    scores: list[ResourceUnit] = []
    kept: list[ResourceUnit] = []
    for unit in batch.units:
        found = None
        if unit.key.startswith("RiskAssessment/") and unit.raw_json is not None:
            try:
                found = score_result_fact(orjson.loads(unit.raw_json), source=batch.source, tz=tz)
            except _Blocked:
                found = None
        if found is None:
            kept.append(unit)
            continue
        scores.append(
            ResourceUnit(
                key=found.source_id,
                facts=(found,),
                file=unit.file,
                location=unit.location,
                raw_json=unit.raw_json,
            )
        )
    if not scores:
        yield batch
        return
    batch.units = kept
    yield batch
    yield Batch(source=RISK_SOURCE, units=scores, file=batch.file)


def _meta_source(resource: Mapping[str, Any]) -> str | None:
    """``meta.source`` as a source name: percent-decoded, as medtwin's export encodes a name
    with a space ("hl7v2:EHR%20Facility")."""
    meta = resource.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("source"), str):
        return unquote(str(meta["source"]))
    return None


# --------------------------------------------------------------------------------------------
# resources -> units


@dataclass(slots=True)
class _Entry:
    resource: dict[str, Any]
    location: str
    key: str
    rtype: str


class _Blocked(Exception):
    def __init__(self, reason: str, field: str | None, waits_for: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.waits_for = waits_for


def units_from_resources(
    items: list[tuple[Any, str, str | None]],
    batch: Batch,
    *,
    tz: str = "UTC",
    lookup: Lookup | None = None,
) -> None:
    """Validate, resolve and map resources ``(resource, location, fullUrl)`` into ``batch``."""
    from medtwin.ingest.fhir_schema import validate_resource

    source = batch.source
    file = batch.file
    entries: list[_Entry] = []
    by_url: dict[str, str] = {}
    by_identifier: dict[tuple[str, str, str], str] = {}
    invalid_urls: dict[str, str] = {}
    medications: dict[str, dict[str, Any]] = {}  # Medication/id -> the resource, this file's
    for resource, location, full_url in items:
        issues = validate_resource(resource)
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if issues:
            rid = resource.get("id") if isinstance(resource, dict) else None
            first = issues[0]
            more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
            batch.quarantine.append(
                QuarantineItem(
                    source=source,
                    reason=f"{first.path}: {first.message}{more}",
                    content=orjson.dumps(resource).decode(),
                    file=file,
                    location=location,
                    resource_type=rtype if isinstance(rtype, str) else None,
                    resource_id=rid if isinstance(rid, str) else None,
                    field=first.path,
                )
            )
            if full_url:
                invalid_urls[full_url] = f"{rtype}/{rid}" if rid else full_url
            if isinstance(rtype, str) and isinstance(rid, str):
                invalid_urls[f"{rtype}/{rid}"] = f"{rtype}/{rid}"
            continue
        assert isinstance(resource, dict) and isinstance(rtype, str)
        rid = resource.get("id")
        if not isinstance(rid, str):
            rid = _id_from_url(full_url) or _content_id(resource)
            resource = {**resource, "id": rid}
        key = f"{rtype}/{rid}"
        if rtype == "Medication":
            medications[key] = resource
        if full_url:
            by_url[full_url] = key
        for ident in resource.get("identifier") or ():
            if isinstance(ident, dict) and "value" in ident:
                system = ident.get("system", "")
                value = _identifier_key(system, ident["value"])
                by_identifier[(rtype, system, value)] = key
                by_identifier[(rtype, "", value)] = key
        entries.append(_Entry(resource, location, key, rtype))

    context = _Context(
        source=source,
        tz=tz,
        by_url=by_url,
        by_identifier=by_identifier,
        invalid=invalid_urls,
        lookup=lookup,
    )
    for entry in entries:
        try:
            resource, requires, text = context.rewrite(entry.resource)
            facts = map_resource(resource, source=source, tz=tz)
            if "medicationReference" in resource:
                facts = _with_referenced_medication(resource, facts, context, medications, lookup)
        except _Blocked as blocked:
            batch.quarantine.append(
                QuarantineItem(
                    source=source,
                    reason=blocked.reason,
                    content=orjson.dumps(entry.resource).decode(),
                    file=file,
                    location=entry.location,
                    resource_type=entry.rtype,
                    resource_id=entry.resource.get("id"),
                    field=blocked.field,
                    waits_for=blocked.waits_for,
                )
            )
            continue
        batch.units.append(
            ResourceUnit(
                key=entry.key,
                facts=tuple(facts),
                requires=tuple(sorted(requires)),
                file=file,
                location=entry.location,
                raw_json=text,
                identifiers=_identifiers(entry.resource),
            )
        )


def _medication_coding(medication: Mapping[str, Any]) -> Coding | None:
    """A Medication resource's code (RxNorm preferred), else the names of its ingredients."""
    code = _codeable(medication.get("code"), RXNORM)
    if code is not None:
        return code
    names = [
        name
        for item in medication.get("ingredient") or ()
        if isinstance(item, dict)
        and (name := _display(item.get("itemCodeableConcept")) or _ref_display(item))
    ]
    return _coding("", "", " / ".join(names)) if names else None


def _ref_display(item: Mapping[str, Any]) -> str | None:
    ref = item.get("itemReference")
    return ref.get("display") if isinstance(ref, dict) else None


def _with_referenced_medication(
    resource: Mapping[str, Any],
    facts: list[Fact],
    context: _Context,
    medications: Mapping[str, dict[str, Any]],
    lookup: Lookup | None,
) -> list[Fact]:
    """The facts of a resource that names its drug by ``medicationReference`` with the drug's
    code: the Medication resource it references, contained in it (``#id``), an entry of the
    same file (GP Connect's and US Core's form) or stored from another file (a Bulk export's
    ``Medication.ndjson``: a reference to one not yet stored waits in quarantine, and is read
    again when it comes), read for its code (or its ingredients' names). Without a store to
    look in, the reference's display is kept."""
    node = resource.get("medicationReference")
    ref = node.get("reference") if isinstance(node, dict) else None
    if not isinstance(ref, str):
        return facts
    medication: Mapping[str, Any] | None = None
    if ref.startswith("#"):
        medication = next(
            (
                c
                for c in resource.get("contained") or ()
                if isinstance(c, dict)
                and c.get("resourceType") == "Medication"
                and c.get("id") == ref[1:]
            ),
            None,
        )
    else:
        key = context.by_url.get(ref, ref)
        if key.startswith(("http://", "https://")):
            key = "/".join(key.rstrip("/").rsplit("/", 2)[-2:])
        medication = medications.get(key)
        stored = getattr(lookup, "resource", None)
        if medication is None and stored is not None and key.startswith("Medication/"):
            medication = stored(key)
            if medication is None:
                # not stored yet (a parallel import's worker may be writing it now): the order
                # waits, and is read again with its drug when the Medication is stored; were
                # it kept now, the Medication's arrival before the append would let it through
                # with the reference's text for its drug
                raise _Blocked(
                    f"references {key}, which is not in this file or the store (the drug of "
                    "the order is read from it)",
                    "medicationReference",
                    key,
                )
    code = _medication_coding(medication) if medication is not None else None
    if code is None:
        return facts
    return [replace(f, code=code) if isinstance(f, _DRUG_FACTS) else f for f in facts]


def _identifiers(resource: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for ident in resource.get("identifier") or ():
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            out.append((str(ident.get("system", "")), ident["value"]))
    return tuple(out)


_FHIR_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _id_from_url(full_url: str | None) -> str | None:
    if not full_url:
        return None
    if full_url.startswith("urn:uuid:"):
        return full_url[9:]
    if full_url.startswith("urn:oid:"):
        full_url = full_url[8:]  # an OID (1.2.840...) is a valid FHIR id; "urn:oid:" is not
    tail = full_url.rstrip("/").rsplit("/", 1)[-1]
    # a FHIR id is [A-Za-z0-9.-]{1,64}: anything else falls back to an id from the content
    return tail if _FHIR_ID_RE.fullmatch(tail) else None


def _content_id(resource: Mapping[str, Any]) -> str:
    digest = hashlib.blake2b(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return str(uuid.UUID(bytes=digest.digest()))


@dataclass(slots=True)
class _Context:
    source: str
    tz: str
    by_url: dict[str, str]
    by_identifier: dict[tuple[str, str, str], str]
    invalid: dict[str, str]
    lookup: Lookup | None = None
    # serialised reference -> (reference, Type/id it needs or None, new text and its
    # serialised bytes, or None when it stays); the resources of one Bundle share most
    # references (their patient, encounter ...)
    resolved: dict[bytes, tuple[str, str | None, str | None, bytes | None]] = field(
        default_factory=dict
    )

    def resolve(self, reference: str) -> str | None:
        """The literal ``Type/id`` for a reference, or None when it stays as written."""
        if reference.startswith("#"):
            return None
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            if reference in self.by_url:
                return self.by_url[reference]
            if reference in self.invalid:
                raise _Blocked(
                    f"references {reference}, which is in quarantine", None, self.invalid[reference]
                )
            raise _Blocked(f"reference {reference} matches no entry of this bundle", None)
        if "?" in reference:
            rtype, _, query = reference.partition("?")
            name, _, value = query.partition("=")
            if name != "identifier" or not value:
                raise _Blocked(f"conditional reference {reference!r} is not identifier-based", None)
            system, bar, ident = value.partition("|")
            if not bar:
                system, ident = "", value
            ident = _identifier_key(system, ident)
            key = self.by_identifier.get((rtype, system, ident))
            if key is None and self.lookup is not None:
                key = self.lookup(rtype, system, ident)
            if key is None:
                raise _Blocked(
                    f"conditional reference {reference!r} matches no {rtype} in this file or the store",
                    None,
                    reference,
                )
            return key
        if reference in self.by_url:
            return self.by_url[reference]
        if reference in self.invalid:
            raise _Blocked(f"references {reference}, which is in quarantine", None, reference)
        if reference.startswith(("http://", "https://")):
            return None
        return reference

    def rewrite(self, resource: dict[str, Any]) -> tuple[dict[str, Any], set[str], bytes]:
        """Rewrite references to ``Type/id``; return the resource, the keys it needs, its JSON.

        Works on the serialised text rather than walking every node in Python: it is
        split (in C) at each ``"reference":"`` key, and only the values that change are
        replaced; references are few, nodes many. A key inside a string value is escaped
        (``\\"reference\\"``) and does not match.
        """
        text = orjson.dumps(resource)
        parts = text.split(_REFERENCE_KEY)  # each part after the first opens with a value
        requires: set[str] = set()
        if len(parts) == 1:
            return resource, requires, text
        resolved: dict[str, str] = {}
        cache = self.resolved
        pieces = [parts[0]]
        for part in parts[1:]:
            end = part.find(b'"')
            if end > 0 and part[end - 1] == 92:  # a backslash before the quote: rare
                end = _value_end(part)
            raw_ref = part[:end]
            hit = cache.get(raw_ref)
            if hit is None:
                hit = cache[raw_ref] = self._resolve_raw(resource, raw_ref)
            ref, needed, new_text, replacement = hit
            if needed is not None:
                requires.add(needed)
            if replacement is None:
                pieces.append(part)
            else:
                assert new_text is not None
                resolved[ref] = new_text
                pieces.append(replacement + part[end:])
        requires.discard(f"{resource['resourceType']}/{resource.get('id')}")
        if not resolved:
            return resource, requires, text
        return self._patched(resource, resolved), requires, _REFERENCE_KEY.join(pieces)

    def _resolve_raw(
        self, resource: Mapping[str, Any], raw_ref: bytes
    ) -> tuple[str, str | None, str | None, bytes | None]:
        """A reference as serialised: (reference, the key it needs, its new text and that
        text serialised, or None twice when it stays as written)."""
        ref = orjson.loads(b'"' + raw_ref + b'"') if b"\\" in raw_ref else raw_ref.decode()
        try:
            new = self.resolve(ref)
        except _Blocked as blocked:
            blocked.field = _reference_path(resource, ref)
            raise
        needed = new if new is not None and new.count("/") == 1 else None
        if new is None or new == ref:
            return ref, needed, None, None
        encoded = (
            new.encode()
            if new.isascii() and '"' not in new and "\\" not in new
            else orjson.dumps(new)[1:-1]
        )
        return ref, needed, new, encoded

    @staticmethod
    def _patched(resource: dict[str, Any], resolved: dict[str, str]) -> dict[str, Any]:
        """The mappers read only these references; patch them instead of re-parsing the text."""
        view = resource
        for name in _MAPPED_REFERENCES:
            node = resource.get(name)
            if isinstance(node, dict) and node.get("reference") in resolved:
                if view is resource:
                    view = dict(resource)
                view[name] = {**node, "reference": resolved[node["reference"]]}
        return view


_MAPPED_REFERENCES = ("subject", "patient", "beneficiary", "device")
_DRUG_FACTS = (MedicationRequest, MedicationAdministration)
_REFERENCE_KEY = b'"reference":"'


def _value_end(part: bytes) -> int:
    """Where the JSON string value at the start of ``part`` ends (its closing quote)."""
    end = part.find(b'"')
    while end > 0 and part[end - 1] == 92:  # a backslash before it: escaped if their count is odd
        backslashes = 1
        while backslashes < end and part[end - 1 - backslashes] == 92:
            backslashes += 1
        if backslashes % 2 == 0:
            break
        end = part.find(b'"', end + 1)
    return end


def _reference_path(node: Any, reference: str, path: str = "") -> str | None:
    """FHIRPath-like location of ``reference`` in a resource (only called on failure)."""
    if isinstance(node, dict):
        if not path:
            path = str(node.get("resourceType", ""))
        for name, value in node.items():
            if name == "reference" and value == reference:
                return f"{path}.reference"
            found = _reference_path(value, reference, f"{path}.{name}")
            if found:
                return found
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found = _reference_path(value, reference, f"{path}[{index}]")
            if found:
                return found
    return None


# --------------------------------------------------------------------------------------------
# mapping resources to facts


def _codeable(concept: Any, prefer: str | None = None) -> Coding | None:
    if not isinstance(concept, dict):
        return None
    codings = concept.get("coding") or ()
    chosen = None
    for coding in codings:
        if not isinstance(coding, dict) or "code" not in coding:
            continue
        if chosen is None or (
            prefer is not None and coding.get("system") == prefer and chosen.get("system") != prefer
        ):
            chosen = coding
    if chosen is not None:
        return _coding(
            chosen.get("system", ""), chosen["code"], chosen.get("display") or concept.get("text")
        )
    text = concept.get("text")
    if isinstance(text, str):
        return _coding("", "", text)
    return None


# Codings and patient identifiers recur in every resource of a patient and every patient's
# vitals: the facts share one immutable object per value instead of building thousands.
_T = TypeVar("_T")
_SHARED: dict[tuple[Any, ...], Any] = {}  # (class, *fields) -> the one object
_SHARED_MAX = 100_000


def _shared(cls: Callable[..., _T], *fields: Any) -> _T:
    key = (cls, *fields)
    found = _SHARED.get(key)
    if found is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        found = _SHARED[key] = cls(*fields)
    return found


def _coding(system: Any, code: Any, display: Any) -> Coding:
    return _shared(Coding, system, code, display)


def _identifier(system: str, value: str) -> Identifier:
    return _shared(Identifier, system, value)


def _code_text(concept: Any) -> str | None:
    coding = _codeable(concept)
    if coding is None:
        return None
    return coding.code or coding.display


def _display(concept: Any) -> str | None:
    coding = _codeable(concept)
    if coding is None:
        return None
    return coding.display or coding.code


# Parsed times by (text, zone): a Bundle repeats the same instants (an encounter's
# start on every resource of the encounter). ParsedTime is immutable.
_TIMES: dict[tuple[str, str], ParsedTime] = {}
_TIMES_MAX = 20_000


def _time(value: Any, tz: str, path: str) -> ParsedTime | None:
    if not isinstance(value, str):
        return None
    parsed = _TIMES.get((value, tz))
    if parsed is not None:
        return parsed
    try:
        parsed = parse_fhir_datetime(value, default_tz=tz)
    except InvalidTimeError as exc:
        raise _Blocked(str(exc), path) from exc
    if len(_TIMES) >= _TIMES_MAX:
        _TIMES.clear()
    _TIMES[(value, tz)] = parsed
    return parsed


def _period_keys(prefix: str) -> tuple[str, str, str, str]:
    """``<prefix>DateTime``, ``<prefix>Instant``, ``<prefix>``, ``<prefix>Period`` (``period``)."""
    return (
        prefix + "DateTime",
        prefix + "Instant",
        prefix,
        prefix + "Period" if prefix else "period",
    )


_PERIOD_KEYS: dict[str, tuple[str, str, str, str]] = {}


def _period(
    resource: Mapping[str, Any], prefix: str, tz: str
) -> tuple[datetime | None, datetime | None, str | None]:
    """``<prefix>DateTime`` / ``<prefix>Instant`` / ``<prefix>Period`` / ``<prefix>`` as (start, end, text)."""
    keys = _PERIOD_KEYS.get(prefix)
    if keys is None:
        keys = _PERIOD_KEYS[prefix] = _period_keys(prefix)
    for key in keys[:3]:
        value = resource.get(key)
        if isinstance(value, str):
            parsed = _time(value, tz, f"{resource.get('resourceType')}.{key}")
            assert parsed is not None
            return parsed.instant, parsed.end, parsed.original
    period = resource.get(keys[3])
    if isinstance(period, dict):
        rtype = resource.get("resourceType")
        start = _time(period.get("start"), tz, f"{rtype}.{prefix}Period.start")
        end = _time(period.get("end"), tz, f"{rtype}.{prefix}Period.end")
        if start is not None and end is not None and end.instant < start.instant:
            raise _Blocked(
                f"period ends ({end.original}) before it starts ({start.original})",
                f"{rtype}.{prefix}Period",
            )
        text = period.get("start") or period.get("end")
        return (
            start.instant if start else None,
            (end.end or end.instant) if end else None,
            text if isinstance(text, str) else None,
        )
    return None, None, None


def _subject(resource: Mapping[str, Any], source: str) -> Identifier | None:
    if resource.get("resourceType") == "Patient":
        return _identifier(patient_identifier_system(source), resource["id"])
    for key in _SUBJECT_KEYS:
        ref = resource.get(key)
        if isinstance(ref, dict):
            text = ref.get("reference")
            if isinstance(text, str) and text.startswith("Patient/"):
                return _identifier(patient_identifier_system(source), text[8:])
            # a logical reference (live device feeds): the patient's business identifier
            ident = ref.get("identifier")
            if text is None and isinstance(ident, dict) and isinstance(ident.get("value"), str):
                system = ident.get("system")
                system = system if isinstance(system, str) else ""
                path = f"{resource.get('resourceType')}.{key}.identifier"
                return Identifier(system, _checked_identifier(system, ident["value"], path))
    return None


def _identifier_key(system: str, value: Any) -> Any:
    """An identifier's value as the store keeps it: an NHS number as its 10 digits (a wrong one
    as sent: the Patient is quarantined for it); any other value as it is."""
    if system in NHS_NUMBER_SYSTEMS and isinstance(value, str):
        return nhs_number(value) or value
    return value


def _checked_identifier(system: str, value: str, path: str) -> str:
    """An identifier's value, checked where its system has a check digit: an NHS number must be
    10 digits whose last is the modulus 11 check of the first nine (spaces ignored; stored as
    the 10 digits, so "943 476 5919" and "9434765919" are one patient). A wrong one is refused:
    matching patients on a mistyped number would join two people's records."""
    if system not in NHS_NUMBER_SYSTEMS:
        return value
    number = nhs_number(value)
    if number is None:
        raise _Blocked(
            f"NHS number {value!r} is not valid: 10 digits, the last the modulus 11 check digit "
            "of the first nine (NHS Data Dictionary, NHS Number)",
            f"{path}.value",
        )
    return number


def _common(resource: Mapping[str, Any], source: str, tz: str) -> dict[str, Any]:
    rtype = resource["resourceType"]
    meta = resource.get("meta")
    recorded = None
    if isinstance(meta, dict) and isinstance(meta.get("lastUpdated"), str):
        parsed = _time(meta["lastUpdated"], tz, f"{rtype}.meta.lastUpdated")
        recorded = parsed.instant if parsed else None
    status = resource.get("status")
    if status is None:
        verification = resource.get("verificationStatus")
        if _code_text(verification) == "entered-in-error":
            status = "entered-in-error"
    return {
        "source": source,
        "source_id": f"{rtype}/{resource['id']}",
        "subject": _subject(resource, source),
        "status": status if isinstance(status, str) else None,
        "source_recorded_at": recorded,
        "resource_type": rtype,
    }


def _category(resource: Mapping[str, Any]) -> str | None:
    categories = resource.get("category")
    if isinstance(categories, list) and categories:
        return _code_text(categories[0])
    if isinstance(categories, dict):
        return _code_text(categories)
    return None


def _quantity(quantity: Any, code: str | None, path: str) -> dict[str, Any]:
    from medtwin.record.units import IncompatibleUnitsError, UnknownUnitError, normalise

    value = quantity.get("value")
    if value is None:
        return {}
    unit = quantity.get("code") or quantity.get("unit")
    if quantity.get("system") not in (None, "http://unitsofmeasure.org") and quantity.get("unit"):
        unit = quantity.get("unit")
    comparator = quantity.get("comparator")
    out: dict[str, Any] = {}
    if comparator:
        out["value_text"] = f"{comparator}{value}"
    if not unit:
        out.update(value_num=float(value), original_value=float(value))
        return out
    try:
        norm = normalise(float(value), str(unit), code=code)
    except UnknownUnitError as exc:
        raise _Blocked(f"unknown unit {unit!r}: {exc}", f"{path}.code") from exc
    except IncompatibleUnitsError as exc:
        # a heart rate in kg: the unit cannot measure what the code names
        raise _Blocked(f"unit {unit!r} does not fit code {code}: {exc}", f"{path}.code") from exc
    out.update(
        value_num=norm.value,
        unit=norm.unit,
        original_value=norm.original_value,
        original_unit=norm.original_unit,
    )
    return out


def _observation_value(node: Mapping[str, Any], code: str | None, path: str) -> dict[str, Any]:
    if isinstance(node.get("valueQuantity"), dict):
        return _quantity(node["valueQuantity"], code, f"{path}.valueQuantity")
    if isinstance(node.get("valueCodeableConcept"), dict):
        coding = _codeable(node["valueCodeableConcept"])
        return {"value_code": coding, "value_text": coding.display if coding else None}
    for name in ("valueString", "valueDateTime", "valueTime"):
        if isinstance(node.get(name), str):
            return {"value_text": node[name]}
    if isinstance(node.get("valueBoolean"), bool):
        return {"value_text": "true" if node["valueBoolean"] else "false"}
    if isinstance(node.get("valueInteger"), int):
        return {
            "value_num": float(node["valueInteger"]),
            "original_value": float(node["valueInteger"]),
        }
    if isinstance(node.get("valueRatio"), dict):
        ratio = node["valueRatio"]
        num = (ratio.get("numerator") or {}).get("value")
        den = (ratio.get("denominator") or {}).get("value")
        return {"value_text": f"{num}:{den}"}
    return {}


def _map_observation(resource: dict[str, Any], common: dict[str, Any], tz: str) -> list[Fact]:
    code = _codeable(resource.get("code"), LOINC)
    smoking: Coding | None = None
    if code is not None and code.system != LOINC:  # device codes (IEEE 11073), SNOMED CT
        quantity = resource.get("valueQuantity")
        concept = resource.get("code")
        mapped = loinc_for_mdc(concept, quantity) or loinc_for_snomed(concept, quantity)
        if mapped is None and affirmed(resource):
            smoking = smoking_answer(concept)  # "Ex-smoker" as the code: 72166-2's answer
            mapped = SMOKING_STATUS if smoking is not None else None
        code = mapped or code
    start, end, text = _period(resource, "effective", tz)
    if start is None and isinstance(resource.get("issued"), str):
        parsed = _time(resource["issued"], tz, "Observation.issued")
        assert parsed is not None
        start, text = parsed.instant, parsed.original
    loinc = code.code if code and code.system == LOINC else None
    ranges = resource.get("referenceRange") or ()
    low = high = None
    if ranges and isinstance(ranges[0], dict):
        low = (ranges[0].get("low") or {}).get("value")
        high = (ranges[0].get("high") or {}).get("value")
    interpretation = None
    if resource.get("interpretation"):
        interpretation = _code_text(resource["interpretation"][0])
    device = (resource.get("device") or {}).get("reference")
    category = _category(resource)
    main = Observation(
        **common,
        code=code,
        effective_start=start,
        effective_end=end,
        original_time=text,
        category=category,
        interpretation=interpretation,
        reference_low=low,
        reference_high=high,
        device=device,
        **(
            {"value_code": smoking, "value_text": smoking.display}
            if smoking is not None
            else _observation_value(resource, loinc, "Observation")
        ),
    )
    facts: list[Fact] = [main]
    for index, component in enumerate(resource.get("component") or ()):
        ccode = _codeable(component.get("code"), LOINC)
        if ccode is None:
            continue
        ckey = ccode.code or index  # the source's own code: stable when the mapping changes
        if ccode.system != LOINC:
            cquantity = component.get("valueQuantity")
            ccode = (
                loinc_for_mdc(component.get("code"), cquantity)
                or loinc_for_snomed(component.get("code"), cquantity)
                or ccode
            )
        cloinc = ccode.code if ccode.system == LOINC else None
        values = _observation_value(component, cloinc, f"Observation.component[{index}]")
        facts.append(
            Observation(
                source=common["source"],
                source_id=f"{common['source_id']}#{ckey}",
                subject=common["subject"],
                status=common["status"],
                source_recorded_at=common["source_recorded_at"],
                resource_type="Observation",
                part_of=common["source_id"],
                code=ccode,
                effective_start=start,
                effective_end=end,
                original_time=text,
                category=category,
                device=device,
                **values,
            )
        )
    return facts


def _map_patient(resource: dict[str, Any], common: dict[str, Any], tz: str) -> list[Fact]:
    source = common["source"]
    identifiers = [Identifier(patient_identifier_system(source), resource["id"])]
    for index, ident in enumerate(resource.get("identifier") or ()):
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            system = ident.get("system") or "urn:medtwin:unknown-system"
            value = _checked_identifier(system, ident["value"], f"Patient.identifier[{index}]")
            identifiers.append(Identifier(system, value))
    names = resource.get("name") or ()
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = tuple(official.get("given") or ())
    family = official.get("family")
    if family is None and official.get("text"):
        family = official["text"]
    address = None
    addresses = resource.get("address") or ()
    if addresses:
        first = addresses[0]
        address = (
            ", ".join(p for p in (first.get("city"), first.get("state"), first.get("country")) if p)
            or None
        )
    deceased = resource.get("deceasedDateTime")
    if deceased is None and resource.get("deceasedBoolean") is True:
        deceased = "true"
    telecom = tuple(
        t["value"] for t in resource.get("telecom") or () if isinstance(t, dict) and "value" in t
    )
    birth = resource.get("birthDate")
    if isinstance(birth, str):
        _time(birth, tz, "Patient.birthDate")
    return [
        Demographics(
            **common,
            identifiers=tuple(dict.fromkeys(identifiers)),
            family=family,
            given=given,
            birth_date=birth,
            gender=resource.get("gender"),
            deceased=deceased,
            address=address,
            telecom=telecom,
        )
    ]


DIAGNOSIS_CERTAINTY_URL = "http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit"
"""The German ICD-10-GM "Diagnosesicherheit" extension on ``Condition.code.coding`` (KBV code
system KBV_CS_SFHIR_ICD_DIAGNOSESICHERHEIT): A ausgeschlossen (excluded), V Verdacht
(suspected), G gesichert (confirmed), Z Zustand nach (status after)."""
_CERTAINTY_VERIFICATION = {"A": "refuted", "V": "provisional", "G": "confirmed", "Z": "confirmed"}


def _diagnosis_certainty(resource: Mapping[str, Any]) -> str | None:
    """The Diagnosesicherheit code (A, V, G, Z) of a German Condition's ICD-10-GM coding."""
    code = resource.get("code")
    for coding in (code.get("coding") or ()) if isinstance(code, dict) else ():
        for ext in (coding.get("extension") or ()) if isinstance(coding, dict) else ():
            if isinstance(ext, dict) and ext.get("url") == DIAGNOSIS_CERTAINTY_URL:
                value = ext.get("valueCoding") or {}
                text = value.get("code") if isinstance(value, dict) else ext.get("valueCode")
                if isinstance(text, str) and text.strip().upper() in _CERTAINTY_VERIFICATION:
                    return text.strip().upper()
    return None


def _map_condition(resource: dict[str, Any], common: dict[str, Any], tz: str) -> list[Fact]:
    start, _, text = _period(resource, "onset", tz)
    if start is None:
        recorded = _time(resource.get("recordedDate"), tz, "Condition.recordedDate")
        if recorded:
            start, text = recorded.instant, recorded.original
    end, _, _ = _period(resource, "abatement", tz)
    clinical = _code_text(resource.get("clinicalStatus"))
    verification = _code_text(resource.get("verificationStatus"))
    certainty = _diagnosis_certainty(resource)
    # a German diagnosis marked excluded (A) is refuted whatever else it says; the others give
    # the verification status where the resource has none
    if certainty == "A" and verification != "entered-in-error":
        verification = "refuted"
    elif certainty is not None and verification is None:
        verification = _CERTAINTY_VERIFICATION[certainty]
    if common["status"] is None:
        common["status"] = "entered-in-error" if verification == "entered-in-error" else clinical
    return [
        Condition(
            **common,
            code=_codeable(resource.get("code"), SNOMED),
            effective_start=start,
            effective_end=end,
            original_time=text,
            clinical_status=clinical,
            verification_status=verification,
            category=_category(resource),
        )
    ]


def _dosage(dosages: Any) -> dict[str, Any]:
    if not isinstance(dosages, list) or not dosages:
        return {}
    dosage = dosages[0]
    out: dict[str, Any] = {"dosage_text": dosage.get("text")}
    route = _codeable(dosage.get("route"))
    if route:
        out["route"] = route.display or route.code
    dose_and_rate = dosage.get("doseAndRate") or ()
    if dose_and_rate:
        quantity = dose_and_rate[0].get("doseQuantity")
        if isinstance(quantity, dict):
            out["dose_value"] = quantity.get("value")
            out["dose_unit"] = quantity.get("code") or quantity.get("unit")
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    frequency, period, period_unit = (
        repeat.get("frequency"),
        repeat.get("period"),
        repeat.get("periodUnit"),
    )
    per_day = {"h": 24.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30, "min": 1440.0}.get(period_unit or "")
    if frequency and period and per_day:
        out["frequency_per_day"] = frequency / period * per_day
    return out


def _medication_code(resource: Mapping[str, Any]) -> Coding | None:
    if "medicationCodeableConcept" in resource:
        return _codeable(resource["medicationCodeableConcept"], RXNORM)
    ref = resource.get("medicationReference")
    if isinstance(ref, dict):
        # the referenced Medication's code replaces this where the file holds it
        # (_with_referenced_medication); elsewhere the reference's display, or the reference
        return Coding("", "", ref.get("display") or ref.get("reference"))
    return None


def _map_medication_request(
    resource: dict[str, Any], common: dict[str, Any], tz: str
) -> list[Fact]:
    if resource.get("doNotPerform") is True:
        # "do not give": a prohibition, not a drug the patient takes; kept whole (it exports
        # as it came), read as no order by anything that reads what a patient takes
        return _map_raw(resource, common, tz)
    authored = _time(resource.get("authoredOn"), tz, "MedicationRequest.authoredOn")
    start = authored.instant if authored else None
    text = authored.original if authored else None
    end = None
    if resource.get("intent") == "plan":
        start, end, text = _authorisation(resource, tz, start, text)
    return _drug_fact(resource, common, (start, end, text), resource.get("dosageInstruction"))


def _drug_fact(
    resource: Mapping[str, Any],
    common: dict[str, Any],
    when: tuple[datetime | None, datetime | None, str | None],
    dosages: Any,
) -> list[Fact]:
    """The medication fact of a MedicationRequest or MedicationStatement: its drug, valid time
    ``(start, end, original text)``, intent (a statement has none) and first dosage."""
    start, end, text = when
    return [
        MedicationRequest(
            **common,
            code=_medication_code(resource),
            effective_start=start,
            effective_end=end,
            original_time=text,
            intent=resource.get("intent"),
            **_dosage(dosages),
        )
    ]


def _authorisation(
    resource: Mapping[str, Any], tz: str, start: datetime | None, text: str | None
) -> tuple[datetime | None, datetime | None, str | None]:
    """A plan's authorised period: ``dispenseRequest.validityPeriod``, which GP Connect's
    authorisations (intent ``plan``: a repeat template) give as the authorisation's start and,
    once it has one, its end. The start is used where ``authoredOn`` is missing; the end (the
    end of its day for a date) ends the plan, so a repeat stopped in 2022 is not taken in 2024
    whatever status the record still shows."""
    dispense = resource.get("dispenseRequest")
    period = dispense.get("validityPeriod") if isinstance(dispense, dict) else None
    if not isinstance(period, dict):
        return start, None, text
    path = "MedicationRequest.dispenseRequest.validityPeriod"
    first = _time(period.get("start"), tz, f"{path}.start")
    last = _time(period.get("end"), tz, f"{path}.end")
    if start is None and first is not None:
        start, text = first.instant, first.original
    end = (last.end or last.instant) if last is not None else None
    if end is not None and start is not None and end < start:
        raise _Blocked(f"the authorisation ends ({last.original}) before it starts", path)  # type: ignore[union-attr]
    return start, end, text


def _map_medication_statement(
    resource: dict[str, Any], common: dict[str, Any], tz: str
) -> list[Fact]:
    """A MedicationStatement (the patient is, was or will be taking a drug: the medication
    list of the International Patient Summary and of GP Connect) as a MedicationRequest fact
    (its ``resource_type`` says it is a statement; no intent): valid from its effective start
    (else the date asserted) to its effectivePeriod's end; a single effectiveDateTime is when
    it was known to be taken, not an end, so the status decides (active, completed, stopped;
    ``not-taken`` and ``intended`` are not taken: :data:`medtwin.record.medications
    .VOID_STATUSES`)."""
    start, end, text = _period(resource, "effective", tz)
    if "effectivePeriod" not in resource:
        end = None
    if start is None:
        asserted = _time(resource.get("dateAsserted"), tz, "MedicationStatement.dateAsserted")
        if asserted is not None:
            start, text = asserted.instant, asserted.original
    return _drug_fact(resource, common, (start, end, text), resource.get("dosage"))


def _map_medication_administration(
    resource: dict[str, Any], common: dict[str, Any], tz: str
) -> list[Fact]:
    start, end, text = _period(resource, "effective", tz)
    dosage = resource.get("dosage") or {}
    dose = dosage.get("dose") or {}
    rate = dosage.get("rateQuantity") or {}
    route = _codeable(dosage.get("route"))
    return [
        MedicationAdministration(
            **common,
            code=_medication_code(resource),
            effective_start=start,
            effective_end=end,
            original_time=text,
            dose_value=dose.get("value"),
            dose_unit=dose.get("code") or dose.get("unit"),
            route=(route.display or route.code) if route else None,
            rate_value=rate.get("value"),
            rate_unit=rate.get("code") or rate.get("unit"),
        )
    ]


def _map_procedure(resource: dict[str, Any], common: dict[str, Any], tz: str) -> list[Fact]:
    start, end, text = _period(resource, "performed", tz)
    sites = resource.get("bodySite") or ()
    return [
        Procedure(
            **common,
            code=_codeable(resource.get("code"), SNOMED),
            effective_start=start,
            effective_end=end,
            original_time=text,
            body_site=_code_text(sites[0]) if sites else None,
        )
    ]


def _map_allergy(resource: dict[str, Any], common: dict[str, Any], tz: str) -> list[Fact]:
    start, _, text = _period(resource, "onset", tz)
    if start is None:
        recorded = _time(resource.get("recordedDate"), tz, "AllergyIntolerance.recordedDate")
        if recorded:
            start, text = recorded.instant, recorded.original
    clinical = _code_text(resource.get("clinicalStatus"))
    if common["status"] is None:
        # R4 has no AllergyIntolerance.status: the fact's is the clinical status, or the
        # verification status where it qualifies the allergy: "refuted" (ruled out) or
        # "unconfirmed" (suspected: still a reason not to give the drug, marked so);
        # entered-in-error retracts (_common)
        verification = _code_text(resource.get("verificationStatus"))
        qualified = verification in ("refuted", "unconfirmed")
        common["status"] = verification if qualified else clinical
    reactions: list[str] = []
    for reaction in resource.get("reaction") or ():
        for manifestation in reaction.get("manifestation") or ():
            coding = _codeable(manifestation)
            if coding and (coding.display or coding.code):
                reactions.append(coding.display or coding.code)
    categories = resource.get("category") or ()
    return [
        AllergyIntolerance(
            **common,
            code=_codeable(resource.get("code"), SNOMED),
            effective_start=start,
            original_time=text,
            clinical_status=clinical,
            criticality=resource.get("criticality"),
            category=categories[0] if categories else None,
            reactions=tuple(reactions),
        )
    ]


def _map_immunization(resource: dict[str, Any], common: dict[str, Any], tz: str) -> list[Fact]:
    start, _, text = _period(resource, "occurrence", tz)
    return [
        Immunization(
            **common,
            code=_codeable(resource.get("vaccineCode")),
            effective_start=start,
            original_time=text,
            lot_number=resource.get("lotNumber"),
        )
    ]


def _map_encounter(resource: dict[str, Any], common: dict[str, Any], tz: str) -> list[Fact]:
    start, end, text = _period(resource, "", tz)
    types = resource.get("type") or ()
    reasons = resource.get("reasonCode") or ()
    klass = resource.get("class")
    return [
        Encounter(
            **common,
            code=_codeable(types[0], SNOMED) if types else None,
            effective_start=start,
            effective_end=end,
            original_time=text,
            class_code=klass.get("code") if isinstance(klass, dict) else None,
            reason=_display(reasons[0]) if reasons else None,
        )
    ]


_EFFECTIVE_FIELDS = (
    "effective",
    "occurrence",
    "performed",
    "onset",
    "authoredOn",
    "created",
    "date",
    "issued",
    "recordedDate",
    "billablePeriod",
    "period",
)


# Each JSON key that can carry one of the fields above -> the field's rank.
_EFFECTIVE_KEYS = {
    key: rank
    for rank, name in enumerate(_EFFECTIVE_FIELDS)
    for key in ((name,) if name in ("billablePeriod", "period") else _period_keys(name))
}


def _map_raw(resource: dict[str, Any], common: dict[str, Any], tz: str) -> list[Fact]:
    start = end = None
    text = None
    present = {_EFFECTIVE_KEYS[key] for key in resource if key in _EFFECTIVE_KEYS}
    for rank, name in enumerate(_EFFECTIVE_FIELDS):
        if rank not in present:
            continue  # none of its keys: _period would find nothing
        if name in ("billablePeriod", "period"):
            period = resource.get(name)
            if isinstance(period, dict):
                parsed = _time(period.get("start"), tz, f"{resource['resourceType']}.{name}.start")
                if parsed:
                    start, text = parsed.instant, parsed.original
                    break
            continue
        start, end, text = _period(resource, name, tz)
        if start is not None:
            break
    code = None
    for name in ("code", "type"):
        value = resource.get(name)
        if isinstance(value, dict):
            code = _codeable(value)
            break
        if isinstance(value, list) and value and isinstance(value[0], dict):
            code = _codeable(value[0])
            break
    return [
        RawResource(
            **common, code=code, effective_start=start, effective_end=end, original_time=text
        )
    ]


_MAPPERS: dict[str, Callable[[dict[str, Any], dict[str, Any], str], list[Fact]]] = {
    "Patient": _map_patient,
    "Observation": _map_observation,
    "Condition": _map_condition,
    "MedicationRequest": _map_medication_request,
    "MedicationStatement": _map_medication_statement,
    "MedicationAdministration": _map_medication_administration,
    "Procedure": _map_procedure,
    "AllergyIntolerance": _map_allergy,
    "Immunization": _map_immunization,
    "Encounter": _map_encounter,
}


def map_resource(resource: dict[str, Any], *, source: str, tz: str = "UTC") -> list[Fact]:
    """Facts for one validated resource whose references are already ``Type/id``.

    The facts carry no ``raw``: the resource's JSON travels in the unit
    (:attr:`~medtwin.record.batch.ResourceUnit.raw_json`) and the store keeps it with
    the first fact.
    """
    common = _common(resource, source, tz)
    mapper = _MAPPERS.get(resource["resourceType"], _map_raw)
    return mapper(resource, common, tz)
