"""FHIR R4 export: one patient as a Bundle (like ``Patient/$everything``), a store as Bulk NDJSON.

Facts imported from FHIR keep their raw resource, which is exported as stored
(references are literal ``Type/id``), so import -> export -> import gives the same
facts. Facts from other formats (HL7 v2) have no raw resource; a FHIR resource is
built from the fact's fields.

Stored score results (source ``medtwin:risk``, code system ``urn:medtwin:score``) are
exported as FHIR R4 ``RiskAssessment`` resources: the one each result keeps as its raw
resource (with its ``basis`` and ``note``), or, for a result stored without one, the one
:func:`medtwin.risk.from_record.risk_assessment` builds from its fields. FHIR import reads
them back into score results (:func:`medtwin.ingest.fhir.split_score_results`).

References
----------
HL7 FHIR R4 Patient/$everything (patient-operation-everything.html) and the FHIR
Bulk Data Access IG 2.0 NDJSON output format.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import orjson

from medtwin.record.facts import (
    Demographics,
    Encounter,
    Fact,
    Observation,
    value_comparator,
)
from medtwin.record.time import utc_now
from medtwin.risk.from_record import RISK_SOURCE, SCORE_SYSTEM
from medtwin.store.base import StoredFact
from medtwin.store.sql import SqlStore

__all__ = [
    "ExportError",
    "fact_to_resource",
    "patient_bundle",
    "write_bulk_ndjson",
    "write_patient_bundle",
]

_UCUM = "http://unitsofmeasure.org"
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~"
"""Characters a source name keeps in ``meta.source``: RFC 3986's reserved and unreserved ones
(``quote`` encodes the rest: spaces, ``%``, anything not ASCII)."""


_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _id(fact: Fact) -> str:
    """A valid FHIR id for a fact without a raw resource (hash when its source id is not one)."""
    rest = fact.source_id.split("/", 1)[1] if "/" in fact.source_id else fact.source_id
    if _FHIR_ID.fullmatch(rest):
        return rest
    return _hashed_id(fact)


def _hashed_id(fact: Fact) -> str:
    return hashlib.blake2b(f"{fact.source}|{fact.source_id}".encode(), digest_size=16).hexdigest()


class _Ids:
    """Keeps the resources of one export unique by type and id: a resource built from a fact
    (HL7 v2, CSV ...) whose id another resource of the export already has (one patient's
    demographics from two facilities, both PID-3 "36363636") gets its hashed id instead. A
    stored FHIR resource keeps its own id: the references of its source point to it."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def resource(self, fact: Fact) -> dict[str, Any]:
        resource = fact_to_resource(fact)
        key = (resource["resourceType"], str(resource.get("id")))
        if key in self.seen and fact.raw is None:
            resource["id"] = _hashed_id(fact)
            key = (resource["resourceType"], resource["id"])
        self.seen.add(key)
        return resource


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def fact_to_resource(fact: Fact) -> dict[str, Any]:
    """The FHIR resource of a fact: its raw resource, or one built from its fields."""
    if fact.raw is not None:
        return dict(fact.raw)
    if (
        isinstance(fact, Observation)
        and fact.source == RISK_SOURCE
        and fact.code is not None
        and fact.code.system == SCORE_SYSTEM
        and fact.effective_start is not None
        and fact.value_num is not None
    ):
        from medtwin.risk.from_record import risk_assessment

        return risk_assessment(
            source_id=fact.source_id,
            subject=fact.subject,
            code=fact.code,
            at=fact.effective_start,
            value=fact.value_num,
            unit=fact.unit,
            band=fact.value_text,
        )
    rtype = fact.source_id.split("/", 1)[0] if "/" in fact.source_id else fact.kind
    subject = {"reference": f"Patient/{fact.subject.value}"} if fact.subject else None
    code = None
    if fact.code is not None:
        coding = {"system": fact.code.system, "code": fact.code.code}
        if fact.code.display:
            coding["display"] = fact.code.display
        code = {"coding": [coding]}
    # meta.source is a FHIR uri (no whitespace): an HL7 v2 sending facility "EHR Facility" or
    # a CSV file's stem with a space is percent-encoded, and decoded at import
    meta = {"source": quote(fact.source, safe=_URI_SAFE)}
    if isinstance(fact, Demographics):
        patient: dict[str, Any] = {"resourceType": "Patient", "id": _id(fact), "meta": meta}
        patient["identifier"] = [{"system": i.system, "value": i.value} for i in fact.identifiers]
        name: dict[str, Any] = {}
        if fact.family:
            name["family"] = fact.family
        if fact.given:
            name["given"] = list(fact.given)
        if name:
            patient["name"] = [name]
        if fact.gender:
            patient["gender"] = fact.gender
        if fact.birth_date:
            patient["birthDate"] = fact.birth_date
        return patient
    if isinstance(fact, Observation):
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": _id(fact),
            "meta": meta,
            "status": fact.status or "unknown",
            "code": code or {"text": "unknown"},
        }
        if subject:
            obs["subject"] = subject
        if fact.effective_start is not None and fact.effective_end is not None:
            obs["effectivePeriod"] = {
                "start": _time(fact.effective_start),
                "end": _time(fact.effective_end),
            }
        elif fact.effective_start is not None:
            obs["effectiveDateTime"] = _time(fact.effective_start)
        if fact.device:  # the wearable that measured it (Apple Health, FIT, Open mHealth)
            obs["device"] = {"display": fact.device}
        if fact.value_num is not None:
            quantity: dict[str, Any] = {"value": fact.value_num}
            comparator = value_comparator(fact)
            if comparator is not None:  # a bound ("<10", an HL7 v2 SN or a CSV "<40")
                quantity["comparator"] = comparator
            if fact.unit:
                quantity.update(unit=fact.unit, system=_UCUM, code=fact.unit)
            obs["valueQuantity"] = quantity
        elif fact.value_code is not None:
            obs["valueCodeableConcept"] = {
                "coding": [{"system": fact.value_code.system, "code": fact.value_code.code}]
            }
        elif fact.value_text is not None:
            obs["valueString"] = fact.value_text
        return obs
    if isinstance(fact, Encounter):
        encounter: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": _id(fact),
            "meta": meta,
            "status": fact.status or "unknown",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": fact.class_code or "AMB",
            },
        }
        if subject:
            encounter["subject"] = subject
        period = {"start": _time(fact.effective_start), "end": _time(fact.effective_end)}
        period = {k: v for k, v in period.items() if v}
        if period:
            encounter["period"] = period
        return encounter
    resource: dict[str, Any] = {"resourceType": rtype, "id": _id(fact), "meta": meta}
    if subject:
        resource["subject"] = subject
    if code:
        resource["code"] = code
    return resource


def _references(node: Any, out: set[str]) -> None:
    if isinstance(node, Mapping):
        for name, value in node.items():
            if name == "reference" and isinstance(value, str) and value.count("/") == 1:
                out.add(value)
            elif isinstance(value, Mapping | list):
                _references(value, out)
    elif isinstance(node, list):
        for value in node:
            _references(value, out)


def patient_bundle(store: SqlStore, patient: str) -> dict[str, Any]:
    """A ``collection`` Bundle of everything about one patient, plus the shared resources it references."""
    facts = list(store.iter_facts(patient_id=patient, include_raw=True))
    ids = _Ids()
    resources = [ids.resource(s.fact) for s in facts]
    keys = {f"{r['resourceType']}/{r['id']}" for r in resources}
    wanted: set[str] = set()
    for resource in resources:
        _references(resource, wanted)
    missing = sorted(wanted - keys)
    shared: list[StoredFact] = store.shared_facts(missing) if missing else []
    # one level more: a PractitionerRole points to its Organization
    extra: set[str] = set()
    for stored in shared:
        _references(stored.fact.raw, extra)
    extra -= keys | set(missing)
    if extra:
        shared += store.shared_facts(sorted(extra))
    resources = [ids.resource(s.fact) for s in shared] + resources
    resources.sort(key=lambda r: r["resourceType"] != "Patient")
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": utc_now().isoformat(timespec="seconds"),
        "total": len(resources),
        "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
    }


class ExportError(ValueError):
    """An export that cannot be written where it was asked (the message says why)."""


def write_patient_bundle(store: SqlStore, patient: str, out: Path) -> Path:
    """Write :func:`patient_bundle` to ``out`` (a file, or a folder to put ``<id>.json`` in).

    The file is written whole or not at all (a temporary file beside it, then renamed)."""
    bundle = patient_bundle(store, patient)
    if out.is_dir():
        out = out / f"{store.resolve_patient(patient)}.json"
    part = out.with_name(out.name + ".part")
    try:
        part.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
        part.replace(out)
    finally:
        part.unlink(missing_ok=True)
    return out


def _iter_resources(store: SqlStore) -> Iterator[dict[str, Any]]:
    ids = _Ids()
    for stored in store.iter_facts(include_raw=True):
        yield ids.resource(stored.fact)


def write_bulk_ndjson(store: SqlStore, out_dir: Path, *, replace: bool = False) -> dict[str, int]:
    """Write the whole store as Bulk Data NDJSON, one ``<Type>.ndjson`` per resource type.

    ``out_dir`` must not hold NDJSON files already: an export there would mix with them (a
    ``Claim.ndjson`` of an earlier export, of a store that no longer has claims, would be read
    back with this one). ``replace`` removes them first. The files are written as ``.part``
    files and renamed only when all are written, so a failed export leaves none of its files
    and the folder's earlier ones (without ``replace``) untouched.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file: a whole store is exported to a folder")
    old = sorted(out_dir.glob("*.ndjson")) if out_dir.is_dir() else []
    if old and not replace:
        names = ", ".join(p.name for p in old[:4]) + (" ..." if len(old) > 4 else "")
        raise ExportError(
            f"{out_dir} already holds {len(old)} NDJSON file(s) ({names}): an export there "
            "would mix with them; give an empty folder, or replace them ('medtwin export fhir "
            "--replace')"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    handles: dict[str, IO[bytes]] = {}
    counts: dict[str, int] = {}
    done = False
    try:
        for resource in _iter_resources(store):
            rtype = resource["resourceType"]
            handle = handles.get(rtype)
            if handle is None:
                handle = handles[rtype] = (out_dir / f"{rtype}.ndjson.part").open("wb")
            handle.write(orjson.dumps(resource) + b"\n")
            counts[rtype] = counts.get(rtype, 0) + 1
        done = True
    finally:
        for handle in handles.values():
            handle.close()
        if not done:
            for rtype in handles:
                (out_dir / f"{rtype}.ndjson.part").unlink(missing_ok=True)
    for path in old:
        path.unlink()
    for rtype in handles:
        (out_dir / f"{rtype}.ndjson.part").replace(out_dir / f"{rtype}.ndjson")
    return counts
