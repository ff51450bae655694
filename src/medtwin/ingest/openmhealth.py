"""Open mHealth import: validated data points (heart rate, blood pressure, steps ...) into facts.

An Open mHealth *data point* is a JSON object with a ``header`` (id, creation time, schema id,
user, acquisition provenance) and a ``body`` that conforms to the schema the header names.
:class:`OpenMHealthReader` reads a file holding one data point, a JSON array of data points, or
NDJSON (one data point per line), validates every data point against the official schemas
(vendored in ``omh_schemas/``, compiled once), and turns each into one resource unit of
:class:`~medtwin.record.facts.Observation` facts with a LOINC code and a UCUM unit:

=================== ================================== ===================================
schema              LOINC                              canonical unit
=================== ================================== ===================================
heart-rate          8867-4 Heart rate                  ``/min``
blood-pressure      85354-9 panel, with 8480-6         ``mm[Hg]``
                    systolic and 8462-4 diastolic
                    (``part_of`` the panel)
step-count          55423-8 Number of steps            ``{steps}``
blood-glucose       2339-0 Glucose in Blood            ``mg/dL`` (``mmol/L`` converted)
oxygen-saturation   59408-5 SpO2 by pulse oximetry     ``%`` (+ 3151-8 inhaled O2 flow)
body-temperature    8310-5 Body temperature            ``Cel`` (``F`` and ``K`` converted)
respiratory-rate    9279-1 Respiratory rate            ``/min``
=================== ================================== ===================================

Every other body property (descriptive statistic, temporal relationship to meal, sleep or
physical activity, specimen source, posture, measurement location and method, user notes
...) is kept, as ``name=value`` pairs, in ``value_text``. ``docs/formats/openmhealth.md``
has the full mapping.

Provenance: the source is the ``source`` argument, else
``openmhealth:<header.acquisition_provenance.source_name>``, else ``openmhealth``. The source
id is ``DataPoint/<header.id>``, else ``DataPoint/<blake2b of the canonical data point>`` (so a
re-sent data point changes nothing); the blood-pressure parts add ``#8480-6`` and
``#8462-4``. The subject is the ``patient`` argument, else ``header.user_id``, as an
identifier in the system :data:`DEVICE_USER_SYSTEM`.

What cannot be used is quarantined, never dropped, one data point at a time: text that is
not JSON, a data point that fails its schema (with the JSON path of the failing field and
the schema's message), an unsupported schema, a data point with no patient, a unit that
cannot be converted. The rest of the file is imported.

Examples
--------
>>> import tempfile, pathlib
>>> point = {
...     "header": {
...         "id": "8a4bd3f4-1ef5-4b36-9b0c-0cf2d8b5a9e1",
...         "creation_date_time": "2024-03-01T08:00:05Z",
...         "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"},
...         "user_id": "watch-17",
...         "acquisition_provenance": {"source_name": "Acme Watch", "modality": "sensed"},
...     },
...     "body": {
...         "heart_rate": {"value": 62, "unit": "beats/min"},
...         "effective_time_frame": {"date_time": "2024-03-01T08:00:00+01:00"},
...     },
... }
>>> path = pathlib.Path(tempfile.mkdtemp()) / "hr.json"
>>> _ = path.write_bytes(orjson.dumps(point))
>>> OpenMHealthReader().can_read(path)
True
>>> batch = next(OpenMHealthReader().read(path, source=None, tz="UTC"))
>>> batch.source, batch.units[0].key
('openmhealth:Acme Watch', 'DataPoint/8a4bd3f4-1ef5-4b36-9b0c-0cf2d8b5a9e1')
>>> obs = batch.units[0].facts[0]
>>> obs.code.code, obs.value_num, obs.unit, obs.effective_start.isoformat()
('8867-4', 62.0, '/min', '2024-03-01T07:00:00+00:00')
>>> obs.subject, obs.device
(Identifier(system='urn:medtwin:device-user', value='watch-17'), 'Acme Watch; modality=sensed')

References
----------
.. [OMH] Open mHealth schemas, https://github.com/openmhealth/schemas (Apache-2.0), commit
   36078a8: ``schema/omh/*.json`` and the ``test-data/omh`` shouldPass / shouldFail documents.
.. [IEEE1752] IEEE 1752.1-2021, Standard for Open Mobile Health Data - Representation of
   Metadata, Sleep, and Physical Activity Measures (the newest Open mHealth schemas refer to
   its schemas; medtwin carries stand-ins, see ``omh_schemas/LICENSE``).
.. [LOINC] LOINC 8867-4, 85354-9, 8480-6, 8462-4, 55423-8, 2339-0, 59408-5, 3151-8, 8310-5,
   9279-1 (https://loinc.org); 55423-8 is the code the step-count schema itself cites, and
   3151-8 the inhaled oxygen flow rate of the US Core pulse oximetry profile.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urljoin

import orjson

from medtwin.ingest.base import Batch, Lookup, QuarantineItem, ResourceUnit
from medtwin.record.facts import LOINC, Coding, Fact, Identifier, Observation
from medtwin.record.time import InvalidTimeError, ParsedTime, get_zone, parse_fhir_datetime
from medtwin.record.units import UnitsError, normalise

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_SOURCE",
    "DEVICE_USER_SYSTEM",
    "MEASURES",
    "OMH_UNITS",
    "SCHEMA_BASE_URI",
    "Measure",
    "OpenMHealthReader",
    "SchemaIssue",
    "read_openmhealth_bytes",
    "supported_versions",
    "validate_body",
    "validate_data_point",
]

DEFAULT_SOURCE: Final = "openmhealth"
#: Identifier system of the ``patient`` argument and of ``header.user_id``.
DEVICE_USER_SYSTEM: Final = "urn:medtwin:device-user"
#: Base URI of the Open mHealth schemas (``$id`` of the newer ones, and where ``$ref`` resolves).
SCHEMA_BASE_URI: Final = "https://w3id.org/openmhealth/schemas/omh/"
_IEEE_BASE_URI: Final = "https://w3id.org/ieee/ieee-1752-schema/"
_DATA_POINT_SCHEMA: Final = "data-point-1.0.json"
#: Data points per batch (one store transaction).
BATCH_SIZE: Final = 1000

_BOM: Final = b"\xef\xbb\xbf"
_WHITE: Final = b" \t\r\n"
_HEAD_BYTES: Final = 64 * 1024
_FHIR_PEEK: Final = 512
# JSON strings (with escapes) and brackets: enough to find where the first object ends
_TOKEN: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]', re.DOTALL)


@dataclass(frozen=True, slots=True)
class Measure:
    """How one Open mHealth schema becomes facts.

    Attributes
    ----------
    schema
        The Open mHealth schema name (``heart-rate``).
    loinc, display
        LOINC code and display of the main fact (the panel for blood pressure).
    category
        FHIR observation category of the facts.
    parts
        Body properties holding the measured values, each with its LOINC code and display.
        A measure with one part stores the value on the main fact; with several (blood
        pressure), the main fact is a panel and each part is its own fact, ``part_of`` it.
    """

    schema: str
    loinc: str
    display: str
    category: str
    parts: tuple[tuple[str, str, str], ...]


#: The mapped schemas. ``parts``: (body property, LOINC, display).
MEASURES: Final[Mapping[str, Measure]] = MappingProxyType(
    {
        "heart-rate": Measure(
            "heart-rate", "8867-4", "Heart rate", "vital-signs", (("heart_rate", "", ""),)
        ),
        "blood-pressure": Measure(
            "blood-pressure",
            "85354-9",
            "Blood pressure panel with all children optional",
            "vital-signs",
            (
                ("systolic_blood_pressure", "8480-6", "Systolic blood pressure"),
                ("diastolic_blood_pressure", "8462-4", "Diastolic blood pressure"),
            ),
        ),
        "step-count": Measure(
            "step-count",
            "55423-8",
            "Number of steps in unspecified time Pedometer",
            "activity",
            (("step_count", "", ""),),
        ),
        "blood-glucose": Measure(
            "blood-glucose",
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            "laboratory",
            (("blood_glucose", "", ""),),
        ),
        "oxygen-saturation": Measure(
            "oxygen-saturation",
            "59408-5",
            "Oxygen saturation in Arterial blood by Pulse oximetry",
            "vital-signs",
            (("oxygen_saturation", "", ""),),
        ),
        "body-temperature": Measure(
            "body-temperature",
            "8310-5",
            "Body temperature",
            "vital-signs",
            (("body_temperature", "", ""),),
        ),
        "respiratory-rate": Measure(
            "respiratory-rate",
            "9279-1",
            "Respiratory rate",
            "vital-signs",
            (("respiratory_rate", "", ""),),
        ),
    }
)

# The property of a headerless body that tells its schema.
_SHAPES: Final[Mapping[str, str]] = MappingProxyType(
    {part[0]: measure.schema for measure in MEASURES.values() for part in measure.parts[:1]}
)

#: Open mHealth unit spellings -> UCUM. Open mHealth units are the "common synonyms" of the
#: UCUM tables, not UCUM codes: ``F`` is degrees Fahrenheit, which in UCUM is the farad.
OMH_UNITS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "beats/min": "/min",
        "breaths/min": "/min",
        "mmHg": "mm[Hg]",
        "kPa": "kPa",
        "mg/dL": "mg/dL",
        "mmol/L": "mmol/L",
        "%": "%",
        "F": "[degF]",
        "C": "Cel",
        "K": "K",
        "steps": "{steps}",
        "L/min": "L/min",
    }
)

# Supplemental oxygen of an oxygen-saturation body: the US Core pulse oximetry component.
_OXYGEN_FLOW: Final = ("supplemental_oxygen_flow_rate", "3151-8", "Inhaled oxygen flow rate")

# specimen_source values of blood-glucose that are not blood: 2339-0 would mislabel them.
_NOT_BLOOD: Final = frozenset({"breath", "saliva", "sweat", "tears", "urine"})

# duration-unit-value units -> seconds; a month and a year are UCUM's mean Julian mo_j and a_j.
_DURATION_SECONDS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "ps": 1e-12,
        "ns": 1e-9,
        "us": 1e-6,
        "ms": 1e-3,
        "sec": 1.0,
        "min": 60.0,
        "h": 3600.0,
        "d": 86400.0,
        "wk": 7 * 86400.0,
        "Mo": 30.4375 * 86400.0,
        "yr": 365.25 * 86400.0,
    }
)

_VERSION: Final = re.compile(r"([0-9]+)\.([0-9]+)")
_SCHEMA_FILE: Final = re.compile(
    r"(?P<name>[a-z][a-z0-9-]*?)-(?P<major>[0-9]+)\.(?P<minor>[0-9]+)\.json"
)


# --------------------------------------------------------------------------------------------
# schemas


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """Why a data point fails its schema.

    Attributes
    ----------
    path
        JSON path of the failing value in the data point (``$.body.heart_rate.unit``).
    message
        The validator's message (``'beat/min' is not one of ['beats/min']``).
    schema
        The schema that failed (``omh:heart-rate:2.0``, ``omh:data-point:1.0``).
    """

    path: str
    message: str
    schema: str


@dataclass(frozen=True, slots=True)
class _Schemas:
    validators: Mapping[str, Any]  # file name -> compiled validator
    versions: Mapping[str, tuple[tuple[int, int], ...]]  # schema name -> versions, newest first


def _is_date_time(instance: object) -> bool:
    """``format: date-time`` of the Open mHealth ``date-time-1.0`` schema.

    RFC 3339 ``date-time`` (a real date, ``T``, a time with seconds, optional fraction);
    the offset may be left out, as that schema's description allows ("If a timezone is not
    included, the timezone is assumed to be UTC"): the reader then applies ``tz``.
    """
    if not isinstance(instance, str):
        return True
    return parse_fhir_datetime(instance, require_zone=False).precision == "second"


def _inline(node: Any, base: str, documents: Mapping[str, Any]) -> Any:
    """``node`` with every ``$ref`` replaced by what it names (the schemas have no cycles).

    A subschema taken from another document keeps that document's ``$schema``, so the
    validator still applies the draft each file declares. Inlining once, at load, spares the
    validator a registry look-up per ``$ref`` per data point.
    """
    if isinstance(node, list):
        return [_inline(item, base, documents) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return {key: _inline(value, base, documents) for key, value in node.items()}
    uri, _, fragment = urljoin(base, ref).partition("#")
    document = documents[uri]
    target = document
    for part in fragment.split("/")[1:]:
        target = target[part.replace("~1", "/").replace("~0", "~")]
    inlined = _inline(target, uri, documents)
    if uri != base and isinstance(inlined, dict) and "$schema" in document:
        inlined = {"$schema": document["$schema"], **inlined}
    return inlined


@lru_cache(maxsize=1)
def _schemas() -> _Schemas:
    """Load the vendored schemas, inline their references and compile a validator each, once."""
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    folder = resources.files("medtwin.ingest") / "omh_schemas"
    documents: dict[str, Any] = {}
    latest: dict[tuple[str, int], tuple[int, str]] = {}
    versions: dict[str, list[tuple[int, int]]] = {}
    for base, sub in ((SCHEMA_BASE_URI, folder), (_IEEE_BASE_URI, folder / "ieee")):
        for entry in sorted(sub.iterdir(), key=lambda item: item.name):
            if not entry.name.endswith(".json"):
                continue
            documents[base + entry.name] = orjson.loads(entry.read_bytes())
            match = _SCHEMA_FILE.fullmatch(entry.name)
            if base == SCHEMA_BASE_URI and match is not None:
                name, major, minor = match["name"], int(match["major"]), int(match["minor"])
                versions.setdefault(name, []).append((major, minor))
                if minor >= latest.get((name, major), (-1, ""))[0]:
                    latest[(name, major)] = (minor, entry.name)
    names = [
        uri.removeprefix(SCHEMA_BASE_URI) for uri in documents if uri.startswith(SCHEMA_BASE_URI)
    ]
    # "name-1.x.json" is a symbolic link to the newest 1.y in the Open mHealth repository
    for (name, major), (_minor, target) in latest.items():
        documents[f"{SCHEMA_BASE_URI}{name}-{major}.x.json"] = documents[SCHEMA_BASE_URI + target]
    checker = FormatChecker(formats=())
    checker.checks("date-time", raises=InvalidTimeError)(_is_date_time)
    validators = {}
    for name in names:
        schema = _inline(documents[SCHEMA_BASE_URI + name], SCHEMA_BASE_URI + name, documents)
        validators[name] = validator_for(schema)(schema, format_checker=checker)
    return _Schemas(
        validators=MappingProxyType(validators),
        versions=MappingProxyType(
            {name: tuple(sorted(found, reverse=True)) for name, found in versions.items()}
        ),
    )


def supported_versions(name: str) -> tuple[str, ...]:
    """The versions of an Open mHealth schema that medtwin validates, newest first.

    Examples
    --------
    >>> supported_versions("heart-rate")
    ('2.0', '1.1', '1.0')
    """
    return tuple(f"{major}.{minor}" for major, minor in _schemas().versions.get(name, ()))


def _date_time_ok(instance: object) -> bool:
    try:
        return _is_date_time(instance)
    except InvalidTimeError:
        return False


@cache
def _fast(name: str) -> Callable[[Any], Any] | None:
    """Schema file ``name`` compiled to Python by fastjsonschema (``None``: not available).

    Only the verdict "valid" is taken from it: it is about 5x faster than jsonschema on a
    valid data point, which is what a live feed sends a thousand times a second. Anything
    it rejects goes to jsonschema, which finds the field and the message (and has the last
    word). The tests check that it rejects every official shouldFail document.
    """
    try:
        import fastjsonschema
    except ImportError:  # pragma: no cover - a dependency; jsonschema alone still works
        return None
    schema = _schemas().validators[name].schema
    try:
        compiled: Callable[[Any], Any] = fastjsonschema.compile(
            schema, formats={"date-time": _date_time_ok}
        )
    except Exception:  # a construct it cannot compile: jsonschema alone
        return None
    return compiled


def _issue(
    validator: Any,
    instance: Any,
    prefix: str,
    schema: str,
    *,
    optional: str = "",
    fast: Callable[[Any], Any] | None = None,
) -> SchemaIssue | None:
    from jsonschema.exceptions import best_match

    if fast is not None:
        try:
            fast(instance)
            return None
        except Exception:  # JsonSchemaException, or a check it could not run: ask jsonschema
            pass
    if validator.is_valid(instance):  # the common case; stops early, no error objects
        return None
    errors = [
        error
        for error in validator.iter_errors(instance)
        if not (
            optional
            and error.validator == "required"
            and error.json_path == "$.header"
            and error.message == f"{optional!r} is a required property"
        )
    ]
    error = best_match(errors)
    if error is None:
        return None
    message = error.message
    if error.cause is not None:  # a format check: say why (e.g. "day is out of range")
        message += f" ({error.cause})"
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return SchemaIssue(path=prefix + error.json_path[1:], message=message, schema=schema)


def validate_body(name: str, version: str, body: Any) -> SchemaIssue | None:
    """Validate a data point body against ``omh:<name>:<version>``; ``None`` when valid.

    Parameters
    ----------
    name, version
        A vendored schema (see :func:`supported_versions`).
    body
        The body, parsed from JSON.

    Raises
    ------
    KeyError
        When the schema is not vendored.

    Examples
    --------
    >>> validate_body("heart-rate", "2.0", {"heart_rate": {"value": 60, "unit": "beat/min"},
    ...     "effective_time_frame": {"date_time": "2020-02-05T07:25:00Z"}})
    SchemaIssue(path='$.body.heart_rate.unit', message="'beat/min' is not one of ['beats/min']", schema='omh:heart-rate:2.0')
    """
    file = f"{name}-{version}.json"
    validator = _schemas().validators[file]
    return _issue(validator, body, "$.body", f"omh:{name}:{version}", fast=_fast(file))


def validate_data_point(data_point: Any, *, require_id: bool = True) -> SchemaIssue | None:
    """Validate the envelope of a data point (``data-point-1.0``: header and a body object).

    The body itself is validated by :func:`validate_body`, against the schema the header names.
    ``require_id=False`` accepts a header without ``id`` (``header-1.2`` requires one; the
    reader then derives the source id from the content).
    """
    validator = _schemas().validators[_DATA_POINT_SCHEMA]
    optional = "" if require_id else "id"
    return _issue(
        validator,
        data_point,
        "$",
        "omh:data-point:1.0",
        optional=optional,
        fast=_fast(_DATA_POINT_SCHEMA),
    )


def _pick_version(name: str, version: str) -> str | None:
    """The vendored version that validates ``version``: itself, else the newest of its major."""
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        return None
    major, minor = int(match[1]), int(match[2])
    known = _schemas().versions.get(name, ())
    if (major, minor) in known:
        return f"{major}.{minor}"
    same_major = [v for v in known if v[0] == major]
    # Open mHealth minor versions are backward compatible: the newer schema reads older data
    return f"{same_major[0][0]}.{same_major[0][1]}" if same_major else None


# --------------------------------------------------------------------------------------------
# the reader


class OpenMHealthReader:
    """Reads Open mHealth data points from ``.json`` (one, or an array) and ``.ndjson`` files.

    Register it before the FHIR reader, which claims every ``.json`` file.

    Examples
    --------
    >>> OpenMHealthReader().name
    'openmhealth'
    """

    name = "openmhealth"

    def can_read(self, path: Path) -> bool:
        """``.json`` / ``.ndjson`` files whose first object is an Open mHealth data point.

        The first object (the first element of an array, the first line of NDJSON) must have
        a ``header`` whose ``schema_id`` has a namespace and a name (``omh``, or another
        namespace, which is then quarantined as unsupported), or a ``body`` holding one of
        the mapped measures; and no ``resourceType``, so FHIR files are never claimed.
        """
        if path.suffix.lower() not in (".json", ".ndjson"):
            return False
        try:
            with path.open("rb") as handle:
                head = handle.read(_HEAD_BYTES)
        except OSError:
            return False
        return _looks_like_data_point(_first_object(head))

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Lookup | None = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """Yield batches of at most :data:`BATCH_SIZE` data points from ``path``.

        See :func:`read_openmhealth_bytes` for the parameters.

        Raises
        ------
        OSError
            When the file cannot be read.
        medtwin.record.time.InvalidTimeError
            When ``tz`` is not a time zone.
        """
        yield from read_openmhealth_bytes(
            path.read_bytes(),
            source=source,
            tz=tz,
            file=str(path),
            patient=patient,
            ndjson=path.suffix.lower() == ".ndjson",
        )


def _object_end(text: bytes) -> int | None:
    """Index after the JSON object that starts ``text`` (at ``{``), or ``None`` if cut off."""
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                return match.end()
    return None


def _first_object(head: bytes) -> Any:
    text = head.removeprefix(_BOM).lstrip(_WHITE)
    if b'"resourceType"' in text[:_FHIR_PEEK]:
        return None  # FHIR (its resources open with resourceType): no need to scan a bundle
    if text.startswith(b"["):
        text = text[1:].lstrip(_WHITE)
    if not text.startswith(b"{"):
        return None
    end = _object_end(text)
    if end is None:
        return None
    try:
        return orjson.loads(text[:end])
    except orjson.JSONDecodeError:
        return None


def _looks_like_data_point(value: Any) -> bool:
    if not isinstance(value, dict) or "resourceType" in value:
        return False
    header = value.get("header")
    if isinstance(header, dict):
        schema_id = header.get("schema_id")
        return (
            isinstance(schema_id, dict)
            and isinstance(schema_id.get("namespace"), str)
            and isinstance(schema_id.get("name"), str)
        )
    body = value.get("body")
    return isinstance(body, dict) and any(key in body for key in _SHAPES)


# --------------------------------------------------------------------------------------------
# bytes -> documents


@dataclass(frozen=True, slots=True)
class _NotJson:
    reason: str


def _json_error(exc: orjson.JSONDecodeError) -> str:
    return f"not JSON: {exc}"


def _lines(data: bytes) -> Iterator[tuple[str, Any, bytes]]:
    for number, line in enumerate(data.splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        try:
            yield f"line {number}", orjson.loads(text), text
        except orjson.JSONDecodeError as exc:
            yield f"line {number}", _NotJson(_json_error(exc)), text


def _documents(data: bytes, *, ndjson: bool) -> Iterator[tuple[str, Any, bytes]]:
    """``(location, parsed value or _NotJson, text)`` for each data point of a file."""
    if ndjson:
        yield from _lines(data)
        return
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) > 1 and isinstance(_first_object(lines[0]), dict):
            yield from _lines(data)  # NDJSON in a .json file
        else:
            yield "file", _NotJson(_json_error(exc)), data
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield f"item[{index}]", item, orjson.dumps(item)
    else:
        yield "document", value, data


# --------------------------------------------------------------------------------------------
# one data point -> facts


class _Quarantined(Exception):
    """A data point that cannot be stored: the reason and the JSON path of the field."""

    def __init__(self, reason: str, path: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


@dataclass(frozen=True, slots=True)
class _When:
    start: datetime | None
    end: datetime | None
    original: str | None
    note: str | None = None
    reversed_end: str | None = None


@dataclass(slots=True)
class _Outcome:
    source: str
    unit: ResourceUnit | None = None
    quarantine: list[QuarantineItem] = field(default_factory=list)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _parse_time(text: Any, tz: str, path: str) -> ParsedTime:
    if not isinstance(text, str):
        raise _Quarantined(f"expected a date-time string, got {orjson.dumps(text).decode()}", path)
    try:
        parsed = parse_fhir_datetime(text, default_tz=tz, require_zone=False)
    except InvalidTimeError as exc:
        raise _Quarantined(str(exc), path) from exc
    if parsed.precision != "second":
        raise _Quarantined(f"{text!r} is not a date-time (expected YYYY-MM-DDThh:mm:ss)", path)
    return parsed


def _duration(node: Any, path: str) -> timedelta:
    unit = node.get("unit") if isinstance(node, dict) else None
    value = node.get("value") if isinstance(node, dict) else None
    if not isinstance(unit, str) or unit not in _DURATION_SECONDS:
        raise _Quarantined(f"unsupported duration {orjson.dumps(node).decode()}", path)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _Quarantined(f"unsupported duration {orjson.dumps(node).decode()}", path)
    try:
        return timedelta(seconds=float(value) * _DURATION_SECONDS[unit])
    except OverflowError as exc:
        raise _Quarantined(f"duration {value} {unit} is out of range", path) from exc


def _effective(body: Mapping[str, Any], header: Mapping[str, Any], tz: str) -> _When:
    """Valid time of a body: its effective time frame, else the header's creation times."""
    frame = body.get("effective_time_frame")
    base = "$.body.effective_time_frame"
    if isinstance(frame, dict) and "date_time" in frame:
        parsed = _parse_time(frame["date_time"], tz, f"{base}.date_time")
        return _When(parsed.instant, None, parsed.original)
    if isinstance(frame, dict) and isinstance(frame.get("time_interval"), dict):
        interval = frame["time_interval"]
        where = f"{base}.time_interval"
        original = orjson.dumps(interval).decode()
        start = end = None
        if "start_date_time" in interval:
            start = _parse_time(interval["start_date_time"], tz, f"{where}.start_date_time").instant
        if "end_date_time" in interval:
            end = _parse_time(interval["end_date_time"], tz, f"{where}.end_date_time").instant
        if "duration" in interval:
            length = _duration(interval["duration"], f"{where}.duration")
            try:
                if start is not None and end is None:
                    end = start + length
                elif end is not None and start is None:
                    start = end - length
            except OverflowError as exc:
                raise _Quarantined("time interval is out of range", f"{where}.duration") from exc
        if start is None and isinstance(interval.get("date"), str):
            # date + part_of_day: Open mHealth does not define the hours of a part of the
            # day, so the period is the whole day; the part of the day stays in the text.
            try:
                day = parse_fhir_datetime(interval["date"], default_tz=tz)
            except InvalidTimeError as exc:
                raise _Quarantined(str(exc), f"{where}.date") from exc
            return _When(day.instant, day.end, original)
        if start is None:
            raise _Quarantined("time interval has no start", where)
        if end is not None and end < start:
            return _When(start, None, original, reversed_end=end.isoformat())
        return _When(start, end, original)
    provenance = header.get("acquisition_provenance")
    for holder, name, label in (
        (provenance, "source_creation_date_time", "header.acquisition_provenance"),
        (header, "creation_date_time", "header"),
    ):
        if isinstance(holder, dict) and isinstance(holder.get(name), str):
            parsed = _parse_time(holder[name], tz, f"$.{label}.{name}")
            return _When(parsed.instant, None, parsed.original, f"{label}.{name}")
    return _When(None, None, None)


def _qualifiers(body: Mapping[str, Any], skip: Sequence[str]) -> list[str]:
    """Every other body property, as ``name=value`` (unit values as ``value unit``)."""
    parts: list[str] = []
    for key, value in body.items():
        if key in skip or key == "effective_time_frame":
            continue
        if isinstance(value, dict) and set(value) == {"value", "unit"}:
            text = f"{value['value']} {value['unit']}"
        elif isinstance(value, str):
            text = value
        else:
            text = orjson.dumps(value).decode()
        parts.append(f"{key}={text}")
    return parts


def _quantity(node: Any, code: str, path: str) -> dict[str, Any]:
    """Value and unit of a unit-value (or a bare number of steps), in the canonical unit."""
    if isinstance(node, int | float) and not isinstance(node, bool):
        return {"value_num": float(node), "unit": "{steps}", "original_value": float(node)}
    value, unit = node["value"], node["unit"]
    try:
        norm = normalise(float(value), OMH_UNITS.get(unit, unit), code=code)
    except UnitsError as exc:
        raise _Quarantined(
            f"unit {unit!r} cannot be used for LOINC {code}: {exc}", f"{path}.unit"
        ) from exc
    return {
        "value_num": norm.value,
        "unit": norm.unit,
        "original_value": float(value),
        "original_unit": unit,
    }


def _device(header: Mapping[str, Any]) -> str | None:
    provenance = header.get("acquisition_provenance")
    if not isinstance(provenance, dict):
        return None
    parts = [_text(provenance.get("source_name"))]
    modality = _text(provenance.get("modality"))
    parts.append(f"modality={modality}" if modality else None)
    return "; ".join(part for part in parts if part) or None


def _source_of(header: Any, source: str | None) -> str:
    if source:
        return source
    if isinstance(header, dict):
        provenance = header.get("acquisition_provenance")
        if isinstance(provenance, dict) and (name := _text(provenance.get("source_name"))):
            return f"{DEFAULT_SOURCE}:{name}"
    return DEFAULT_SOURCE


def _schema_of(doc: Mapping[str, Any]) -> tuple[str, str]:
    """``(name, vendored version)`` named by the header, or inferred from a headerless body."""
    header, body = doc.get("header"), doc["body"]
    if not isinstance(header, dict):
        name = next((_SHAPES[key] for key in body if key in _SHAPES), None)
        if name is None:
            raise _Quarantined(
                "headerless data point: its body holds none of "
                f"{', '.join(sorted(_SHAPES))}; add a header with a schema_id",
                "$.header",
            )
        newest = supported_versions(name)
        for version in newest:
            if validate_body(name, version, body) is None:
                return name, version
        return name, newest[0]  # fails again below, with the newest schema's message
    schema_id = header["schema_id"]
    namespace, name = schema_id["namespace"], schema_id["name"]
    label = f"{namespace}:{name}:{schema_id['version']}"
    if namespace.lower() != "omh":
        raise _Quarantined(
            f"schema {label} is not supported: medtwin reads Open mHealth (omh) data points",
            "$.header.schema_id.namespace",
        )
    if name not in MEASURES:
        raise _Quarantined(
            f"schema {label} is not mapped to facts (medtwin maps {', '.join(MEASURES)})",
            "$.header.schema_id.name",
        )
    picked = _pick_version(name, schema_id["version"])
    if picked is None:
        raise _Quarantined(
            f"schema {label}: version not supported (medtwin validates {name} "
            f"{', '.join(supported_versions(name))})",
            "$.header.schema_id.version",
        )
    return name, picked


def _digest(doc: Any) -> str:
    canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _read_one(
    doc: Any,
    location: str,
    text: bytes,
    *,
    source: str | None,
    tz: str,
    file: str | None,
    patient: str | None,
) -> _Outcome:
    """One document of a file -> a unit of facts and/or quarantine items (never raises)."""
    header = doc.get("header") if isinstance(doc, dict) else None
    outcome = _Outcome(_source_of(header, source))
    content = text.decode("utf-8", "replace")
    data_id = _text(header.get("id")) if isinstance(header, dict) else None
    resource_id = data_id or (_digest(doc) if isinstance(doc, dict) else None)

    def quarantine(reason: str, path: str | None, resource_type: str = "DataPoint") -> None:
        outcome.quarantine.append(
            QuarantineItem(
                source=outcome.source,
                reason=reason,
                content=content,
                file=file,
                location=location,
                resource_type=resource_type,
                resource_id=resource_id,
                field=path,
            )
        )

    if isinstance(doc, _NotJson):
        quarantine(doc.reason, None)
        return outcome
    try:
        facts = _map_document(doc, outcome.source, resource_id or "", tz, patient, quarantine)
    except _Quarantined as problem:
        quarantine(problem.reason, problem.path)
        return outcome
    outcome.unit = ResourceUnit(
        key=facts[0].source_id, facts=tuple(facts), file=file, location=location, content=content
    )
    return outcome


def _checked(doc: Any, patient: str | None) -> tuple[str, str, str]:
    """Validate a document; ``(schema name, version, patient)`` or :class:`_Quarantined`."""
    if not isinstance(doc, dict) or "resourceType" in doc:
        what = "a FHIR resource" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise _Quarantined(
            f"not an Open mHealth data point: {what}, expected an object with header and body",
            "$",
        )
    header, body = doc.get("header"), doc.get("body")
    if header is None and body is None:
        raise _Quarantined(
            "not an Open mHealth data point: no 'header' and 'body' (a bare body needs a "
            "header naming its schema)",
            "$",
        )
    if header is not None:
        issue = validate_data_point(doc, require_id=False)
        if issue is not None:
            raise _Quarantined(f"{issue.schema}: {issue.message}", issue.path)
    elif not isinstance(body, dict):
        raise _Quarantined("'body' must be an object", "$.body")
    name, version = _schema_of(doc)
    issue = validate_body(name, version, body)
    if issue is not None:
        raise _Quarantined(f"{issue.schema}: {issue.message}", issue.path)
    user = header.get("user_id") if isinstance(header, dict) else None
    subject = _text(patient) or _text(user)
    if subject is None:
        raise _Quarantined("no patient: pass --patient or set header.user_id", "$.header.user_id")
    specimen = doc["body"].get("specimen_source")
    if name == "blood-glucose" and specimen in _NOT_BLOOD:
        raise _Quarantined(
            f"glucose measured in {specimen} is not blood glucose (LOINC 2339-0): not mapped",
            "$.body.specimen_source",
        )
    return name, version, subject


def _map_document(
    doc: Any,
    source: str,
    resource_id: str,
    tz: str,
    patient: str | None,
    flag: Callable[[str, str | None, str], None],
) -> list[Fact]:
    """The facts of a valid data point; ``flag`` reports what is stored but suspicious."""
    name, version, subject = _checked(doc, patient)
    header: Mapping[str, Any] = doc.get("header") or {}
    body: Mapping[str, Any] = doc["body"]
    measure = MEASURES[name]
    schema = f"omh:{name}:{version}"
    source_id = f"DataPoint/{resource_id}"
    when = _effective(body, header, tz)
    recorded = None
    if isinstance(header.get("creation_date_time"), str):
        recorded = _parse_time(header["creation_date_time"], tz, "$.header.creation_date_time")
    notes = _qualifiers(body, [part[0] for part in measure.parts])
    if when.note:
        notes.append(f"effective_time_from={when.note}")
    common: dict[str, Any] = {
        "source": source,
        "subject": Identifier(DEVICE_USER_SYSTEM, subject),
        "status": "final",
        "effective_start": when.start,
        "effective_end": when.end,
        "source_recorded_at": recorded.instant if recorded is not None else None,
        "original_time": when.original,
        "resource_type": schema,
        "category": measure.category,
        "value_text": "; ".join(notes) or None,
        "device": _device(header),
    }
    code = Coding(LOINC, measure.loinc, measure.display)
    parts = list(measure.parts)
    values: dict[str, Any] = {}
    if len(parts) == 1:  # the value is on the main fact
        key = parts.pop()[0]
        values = _quantity(body[key], measure.loinc, f"$.body.{key}")
    if name == "oxygen-saturation" and isinstance(body.get(_OXYGEN_FLOW[0]), dict):
        parts.append(_OXYGEN_FLOW)
    facts: list[Fact] = [Observation(source_id=source_id, code=code, **common, **values)]
    for key, loinc, display in parts:
        facts.append(
            Observation(
                source_id=f"{source_id}#{loinc}",
                code=Coding(LOINC, loinc, display),
                part_of=source_id,
                **common,
                **_quantity(body[key], loinc, f"$.body.{key}"),
            )
        )
    if when.reversed_end:
        # Stored with its start only (so the timeline keeps it) and flagged for review; the
        # flag's resource type is the schema, so storing the fact does not resolve it.
        flag(
            f"time interval ends ({when.reversed_end}) before it starts "
            f"({when.start.isoformat() if when.start else '?'}): stored with its start only; "
            "check the clock of the device",
            "$.body.effective_time_frame.time_interval.end_date_time",
            schema,
        )
    return facts


# --------------------------------------------------------------------------------------------
# documents -> batches


def read_openmhealth_bytes(
    data: bytes,
    *,
    source: str | None = None,
    tz: str = "UTC",
    file: str | None = None,
    patient: str | None = None,
    ndjson: bool = False,
) -> Iterator[Batch]:
    """Yield batches of facts from the bytes of an Open mHealth file.

    Parameters
    ----------
    data
        One data point, a JSON array of data points, or NDJSON (one per line; also detected
        in a ``.json`` file whose lines are separate objects).
    source
        Source name of the facts; default per data point ``openmhealth:<source_name>`` (from
        ``header.acquisition_provenance``), else ``openmhealth``.
    tz
        IANA zone in which date-times without an offset are read.
    file
        File name recorded in units and quarantine items.
    patient
        Identifier value (system :data:`DEVICE_USER_SYSTEM`) of the patient of every data
        point; default ``header.user_id``.
    ndjson
        Read ``data`` line by line.

    Yields
    ------
    Batch
        At most :data:`BATCH_SIZE` data points each, one source per batch, in file order.

    Raises
    ------
    medtwin.record.time.InvalidTimeError
        When ``tz`` is not a time zone. Bad data never raises: it is quarantined.

    Examples
    --------
    >>> batches = list(read_openmhealth_bytes(b"[]"))
    >>> batches[0].quarantine[0].reason
    'no Open mHealth data point in the file (an empty array)'
    """
    get_zone(tz)
    fallback = source or DEFAULT_SOURCE
    stripped = data.removeprefix(_BOM)
    if not stripped.strip():
        what = "0 bytes" if not data else "only white space"
        yield _file_batch(fallback, file, f"empty file: no Open mHealth data point ({what})", data)
        return
    pending: dict[str, Batch] = {}
    seen = 0
    for location, doc, text in _documents(stripped, ndjson=ndjson):
        seen += 1
        outcome = _read_one(doc, location, text, source=source, tz=tz, file=file, patient=patient)
        batch = pending.get(outcome.source)
        if batch is None:
            batch = pending[outcome.source] = Batch(source=outcome.source, file=file)
        batch.resources_read += 1
        if outcome.unit is not None:
            batch.units.append(outcome.unit)
        batch.quarantine.extend(outcome.quarantine)
        if batch.resources_read >= BATCH_SIZE:
            yield pending.pop(outcome.source)
    if not seen:
        yield _file_batch(
            fallback, file, "no Open mHealth data point in the file (an empty array)", data
        )
        return
    yield from pending.values()


def _file_batch(source: str, file: str | None, reason: str, data: bytes) -> Batch:
    item = QuarantineItem(
        source=source,
        reason=reason,
        content=data.decode("utf-8", "replace"),
        file=file,
        location="file",
    )
    return Batch(source=source, file=file, quarantine=[item], resources_read=1)
