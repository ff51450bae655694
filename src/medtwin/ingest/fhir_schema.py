"""Fast structural validation of FHIR R4 JSON resources (parsed to Python objects).

:func:`validate_resource` checks a resource, already parsed from JSON (by
``orjson``), against the element definitions of the FHIR R4B models of
``fhir.resources`` (``fhir_r4b_schema.json``, written by
``tools/gen_fhir_schema.py``). It is at least as strict as
``fhir.resources.R4B`` on structure and about 50 times faster, because it
builds nothing: it walks the dicts and lists once, with per-type look-up tables
built once on first use.

What is checked, recursively (``contained`` resources, ``Bundle.entry.resource``
and ``_name`` primitive extension siblings included):

- the value is a JSON object with a known concrete ``resourceType``;
- no unknown elements (``fhir_comments``, removed from FHIR JSON in STU3, is one);
- arrays where the element repeats, single values where it does not;
- required elements present, an extension-only ``_name`` sibling standing in for a
  missing required primitive (R4 extensibility.html#Special-Case);
- at most one element of a choice group ``value[x]``, and required groups present;
- JSON types of primitives (string, number, ``true``/``false``), integer ranges,
  no empty strings, objects or arrays, no ``null`` except as the placeholder in a
  primitive array that a ``_name`` array fills;
- the FHIR R4 regular expressions of ``id``, ``code``, ``uri``, ``date``,
  ``dateTime``, ``instant``, ``time``, ``oid``, ``uuid`` and ``base64Binary``: a
  ``dateTime`` with a time needs a time-zone offset, and dates must exist
  (``2021-02-30`` does not);
- codes of required bindings that ``fhir.resources`` lists (``enum_values``).

References
----------
.. [1] HL7 FHIR R4 (4.0.1), JSON representation: https://hl7.org/fhir/R4/json.html
.. [2] HL7 FHIR R4 (4.0.1), data types: https://hl7.org/fhir/R4/datatypes.html
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

import orjson

__all__ = ["FhirIssue", "known_resource_types", "validate_resource"]

_SCHEMA_FILE = "fhir_r4b_schema.json"

# Element kinds (the first field of ``_Element``).
_COMPLEX = 0
_PRIMITIVE = 1
_RESOURCE = 2
_PRIMITIVE_EXTENSION = 3
_RESOURCE_TYPE = 4

_FLAG_LIST = 1
_FLAG_REQUIRED = 2
_FLAG_PRIMITIVE_EXTENSION = 4
_FLAG_CHOICE_REQUIRED = 8

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_STRING_MAX_CHARS = 1024 * 1024
_CACHE_MAX = 200_000
_ROOT = "Resource"


@dataclass(frozen=True, slots=True)
class FhirIssue:
    """One problem found in a FHIR resource.

    Attributes
    ----------
    path
        FHIRPath-like location, e.g. ``Observation.effectivePeriod.stop`` or
        ``Patient.name[0].given[1]``; ``Resource`` when the resource type is unknown.
    message
        What is wrong, in words, e.g. ``unknown element 'stop' (Period allows:
        start, end, id, extension)``.

    Examples
    --------
    >>> FhirIssue("Patient.gender", "expected a JSON string (code), got number")
    FhirIssue(path='Patient.gender', message='expected a JSON string (code), got number')
    """

    path: str
    message: str


# --------------------------------------------------------------------------- primitives
# A checker returns None for a valid value and the problem otherwise.
_Checker = Callable[[Any], "str | None"]


def _json_type(value: object) -> str:
    """Name the JSON type of a parsed value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# Characters that pydantic's (Rust, Unicode) ``\s`` matches but that FHIR's
# ``[ \r\n\t\S]+`` string regex does not accept: a string made only of these is
# rejected by fhir.resources, and is "whitespace only" for FHIR (datatypes.html#string).
_NON_FHIR_WHITESPACE = frozenset(
    "\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _check_string(value: Any) -> str | None:
    """FHIR ``string`` (and ``markdown``, ``xhtml``): a non-empty JSON string."""
    if type(value) is not str:
        return f"expected a JSON string, got {_json_type(value)}"
    if not value:
        return "empty string (FHIR strings have at least one character)"
    if len(value) > _STRING_MAX_CHARS:
        return f"string of {len(value)} characters (FHIR allows at most 1,048,576)"
    if value.isspace() and all(char in _NON_FHIR_WHITESPACE for char in value):
        return "string of whitespace only"
    return None


def _regex_checker(
    type_name: str, pattern: str, explain: Callable[[str], str | None] | None = None
) -> _Checker:
    """Build a checker for a string type defined by a regular expression.

    Parameters
    ----------
    type_name
        FHIR type name, for messages.
    pattern
        The regular expression that the whole value must match.
    explain
        Extra check on a matching value (e.g. calendar validity); returns the
        problem or None.

    Returns
    -------
    callable
        The checker. Valid values are remembered (bounded), since the same codes,
        identifiers and timestamps recur across resources.
    """
    fullmatch = re.compile(pattern).fullmatch
    valid: set[str] = set()

    def check(value: Any) -> str | None:
        if type(value) is not str:
            return f"expected a JSON string ({type_name}), got {_json_type(value)}"
        if value in valid:
            return None
        if not value:
            return f"empty string is not a valid {type_name}"
        if fullmatch(value) is None:
            return _describe_mismatch(type_name, value, fullmatch)
        if explain is not None:
            problem = explain(value)
            if problem is not None:
                return problem
        if len(valid) >= _CACHE_MAX:
            valid.clear()
        valid.add(value)
        return None

    return check


_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _check_calendar(value: str) -> str | None:
    """Reject dates that do not exist, e.g. ``2021-02-30`` (the regex allows day 31 of any month)."""
    if len(value) < 10:
        return None
    day = int(value[8:10])
    if day <= 28:
        return None
    year = int(value[0:4])
    month = int(value[5:7])
    last = _DAYS_IN_MONTH[month]
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        last = 29
    if day > last:
        return f"'{value[:10]}' is not a calendar date (day {day} of month {month} of {year})"
    return None


_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_MONTH = r"(0[1-9]|1[0-2])"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
# Regexes of https://hl7.org/fhir/R4/datatypes.html#primitive (whole value).
_PATTERNS = {
    "date": f"{_YEAR}(-{_MONTH}(-{_DAY})?)?",
    "dateTime": f"{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME}{_ZONE})?)?)?",
    "instant": f"{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_ZONE}",
    "time": _TIME,
    "id": r"[A-Za-z0-9\-.]{1,64}",
    "code": r"[^\s]+(\s[^\s]+)*",
    # XML Schema ``\S``: anything but space, tab, CR and LF.
    "uri": r"[^ \t\r\n]+",
    "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
    "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
}


def _describe_mismatch(type_name: str, value: str, fullmatch: Callable[[str], object]) -> str:
    """Explain why a value does not match its type's regex (error path only)."""
    shown = value if len(value) <= 60 else value[:57] + "..."
    if type_name in ("dateTime", "instant") and "T" in value and fullmatch(value + "Z"):
        return (
            f"{type_name} '{shown}' has a time but no time-zone offset "
            "(FHIR R4 requires Z or +hh:mm with a time)"
        )
    if type_name == "instant" and fullmatch(value + "T00:00:00Z"):
        return f"instant '{shown}' needs a time and a time zone"
    if type_name == "id" and len(value) > 64:
        return f"id of {len(value)} characters (FHIR R4 allows at most 64)"
    return f"'{shown}' is not a valid {type_name}"


def _check_boolean(value: Any) -> str | None:
    if type(value) is bool:
        return None
    return f"expected JSON true or false, got {_json_type(value)}"


def _int_checker(type_name: str, low: int) -> _Checker:
    def check(value: Any) -> str | None:
        if type(value) is int and low <= value <= _INT32_MAX:
            return None
        if type(value) is not int:
            if type(value) is float:
                return f"expected a JSON integer ({type_name}), got {value!r}"
            return f"expected a JSON number ({type_name}), got {_json_type(value)}"
        return f"{value} is out of range for {type_name} ({low}..{_INT32_MAX})"

    return check


def _check_decimal(value: Any) -> str | None:
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return None
    if kind is float:
        return f"{value!r} is not a valid decimal"
    return f"expected a JSON number (decimal), got {_json_type(value)}"


_BASE64 = re.compile(r"(\s*([0-9a-zA-Z+/=]){4}\s*)+").fullmatch


def _check_base64(value: Any) -> str | None:
    """FHIR ``base64Binary``: the R4 regex (with ``/``, which RFC 4648 needs) and decodable."""
    if type(value) is not str:
        return f"expected a JSON string (base64Binary), got {_json_type(value)}"
    if not value:
        return "empty string is not a valid base64Binary"
    try:
        binascii.a2b_base64(value, strict_mode=True)
        return None
    except binascii.Error:
        pass
    if _BASE64(value) is None:
        return "not valid base64 (RFC 4648)"
    try:
        binascii.a2b_base64(value)
    except binascii.Error as error:
        return f"not valid base64 ({error})"
    return None


def _build_checkers() -> dict[str, _Checker]:
    """Return the checker of every FHIR primitive type."""
    uri = _regex_checker("uri", _PATTERNS["uri"])
    checkers: dict[str, _Checker] = {
        "boolean": _check_boolean,
        "integer": _int_checker("integer", _INT32_MIN),
        "unsignedInt": _int_checker("unsignedInt", 0),
        "positiveInt": _int_checker("positiveInt", 1),
        "decimal": _check_decimal,
        "string": _check_string,
        "markdown": _check_string,
        "xhtml": _check_string,
        "base64Binary": _check_base64,
        "uri": uri,
        "url": _regex_checker("url", _PATTERNS["uri"]),
        "canonical": _regex_checker("canonical", _PATTERNS["uri"]),
        "date": _regex_checker("date", _PATTERNS["date"], _check_calendar),
        "dateTime": _regex_checker("dateTime", _PATTERNS["dateTime"], _check_calendar),
        "instant": _regex_checker("instant", _PATTERNS["instant"], _check_calendar),
    }
    for name in ("time", "id", "code", "oid", "uuid"):
        checkers[name] = _regex_checker(name, _PATTERNS[name])
    return checkers


# ------------------------------------------------------------------------------ schema
class _Element(NamedTuple):
    """One element of a type, ready for the walker."""

    kind: int
    many: bool
    sub: _Type | None  # complex or primitive-extension type
    check: _Checker | None  # primitive checker
    enum: frozenset[str] | None
    choice: str | None
    name: str  # the element name (without ``_`` for a primitive extension)
    type_name: str


class _Type:
    """Look-up tables of one resource, datatype or backbone element."""

    __slots__ = ("allowed", "elements", "is_resource", "name", "required", "required_choices")

    def __init__(self, name: str) -> None:
        self.name = name
        self.elements: dict[str, _Element] = {}
        # (element, its ``_element`` key or None)
        self.required: tuple[tuple[str, str | None], ...] = ()
        # (group, member element names)
        self.required_choices: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self.is_resource = False
        self.allowed = ""


class _Schema:
    """All types of the schema file, linked."""

    def __init__(self, document: dict[str, Any]) -> None:
        checkers = _build_checkers()
        enums = [frozenset(codes) for codes in document["enums"]]
        raw_types: dict[str, dict[str, Any]] = document["types"]
        self.types: dict[str, _Type] = {name: _Type(name) for name in raw_types}

        def merged(name: str) -> dict[str, list[Any]]:
            entry = raw_types[name]
            specs = dict(entry["elements"])
            if "base" in entry:
                for key, spec in merged(entry["base"]).items():
                    specs.setdefault(key, spec)
            return specs

        extension_type = self.types["FHIRPrimitiveExtension"]
        for name, type_ in self.types.items():
            required: list[tuple[str, str | None]] = []
            choice_members: dict[str, list[str]] = {}
            required_groups: set[str] = set()
            for key, spec in merged(name).items():
                kind_name: str = spec[0]
                flags: int = spec[1]
                choice: str | None = spec[2] if len(spec) > 2 else None
                enum = enums[spec[3]] if len(spec) > 3 else None
                many = bool(flags & _FLAG_LIST)
                if kind_name in checkers:
                    element = _Element(
                        _PRIMITIVE, many, None, checkers[kind_name], enum, choice, key, kind_name
                    )
                elif kind_name == "Resource":
                    element = _Element(_RESOURCE, many, None, None, None, choice, key, kind_name)
                else:
                    element = _Element(
                        _COMPLEX, many, self.types[kind_name], None, None, choice, key, kind_name
                    )
                type_.elements[key] = element
                has_extension = bool(flags & _FLAG_PRIMITIVE_EXTENSION)
                if has_extension:
                    type_.elements["_" + key] = _Element(
                        _PRIMITIVE_EXTENSION,
                        many,
                        extension_type,
                        None,
                        None,
                        choice,
                        key,
                        kind_name,
                    )
                if choice is not None:
                    choice_members.setdefault(choice, []).append(key)
                    if flags & _FLAG_CHOICE_REQUIRED:
                        required_groups.add(choice)
                elif flags & _FLAG_REQUIRED:
                    required.append((key, "_" + key if has_extension else None))
            type_.required = tuple(required)
            type_.required_choices = tuple(
                (group, tuple(choice_members[group])) for group in sorted(required_groups)
            )
            type_.allowed = ", ".join(key for key in type_.elements if not key.startswith("_"))
        self.resources: dict[str, _Type] = {}
        for name in document["resources"]:
            type_ = self.types[name]
            type_.is_resource = True
            type_.elements["resourceType"] = _Element(
                _RESOURCE_TYPE, False, None, None, None, None, "resourceType", "code"
            )
            self.resources[name] = type_
        self.resource_names = frozenset(self.resources)


_SCHEMA: _Schema | None = None


def _load() -> _Schema:
    """Read and link the schema file, once."""
    global _SCHEMA
    if _SCHEMA is None:
        data = resources.files(__package__).joinpath(_SCHEMA_FILE).read_bytes()
        _SCHEMA = _Schema(orjson.loads(data))
    return _SCHEMA


# ------------------------------------------------------------------------------ walker
def _has_extension(value: object) -> bool:
    """Whether a ``_name`` sibling (object, or array of objects) carries an extension."""
    if type(value) is dict:
        return bool(value.get("extension"))
    if type(value) is list:
        return any(type(item) is dict and item.get("extension") for item in value)
    return False


def _check_object(
    obj: dict[str, Any], type_: _Type, path: str, issues: list[FhirIssue], schema: _Schema
) -> None:
    """Check the elements of one JSON object of a known type, appending to ``issues``."""
    elements = type_.elements
    seen_choice: dict[str, str] | None = None
    for key, value in obj.items():
        element = elements.get(key)
        if element is None:
            issues.append(
                FhirIssue(
                    f"{path}.{key}",
                    f"unknown element '{key}' ({type_.name} allows: {type_.allowed})",
                )
            )
            continue
        kind, many, sub, check, enum, choice, name, type_name = element
        if choice is not None:
            if seen_choice is None:
                seen_choice = {choice: name}
            else:
                other = seen_choice.setdefault(choice, name)
                if other != name:
                    issues.append(
                        FhirIssue(
                            f"{path}.{key}",
                            f"more than one {choice}[x] element: '{other}' and '{name}'",
                        )
                    )
        if value is None:
            issues.append(FhirIssue(f"{path}.{key}", "null is not allowed (omit the element)"))
            continue
        if many:
            if type(value) is not list:
                issues.append(
                    FhirIssue(
                        f"{path}.{key}",
                        f"expected a JSON array of {type_name}, got {_json_type(value)}",
                    )
                )
                continue
            if not value:
                issues.append(FhirIssue(f"{path}.{key}", "empty array (omit the element instead)"))
                continue
            if kind == _PRIMITIVE:
                assert check is not None
                for index, item in enumerate(value):
                    if item is None:
                        siblings = obj.get("_" + key)
                        if (
                            type(siblings) is not list
                            or index >= len(siblings)
                            or siblings[index] is None
                        ):
                            issues.append(
                                FhirIssue(
                                    f"{path}.{key}[{index}]",
                                    f"null without an extension at _{key}[{index}]",
                                )
                            )
                        continue
                    problem = check(item)
                    if problem is None and enum is not None and item not in enum:
                        problem = _enum_problem(item, enum)
                    if problem is not None:
                        issues.append(FhirIssue(f"{path}.{key}[{index}]", problem))
            elif kind == _COMPLEX:
                assert sub is not None
                for index, item in enumerate(value):
                    if type(item) is dict and item:
                        _check_object(item, sub, f"{path}.{key}[{index}]", issues, schema)
                    else:
                        issues.append(
                            FhirIssue(f"{path}.{key}[{index}]", _object_problem(item, type_name))
                        )
            elif kind == _PRIMITIVE_EXTENSION:
                assert sub is not None
                for index, item in enumerate(value):
                    if item is None:
                        continue
                    if type(item) is dict and item:
                        _check_object(item, sub, f"{path}.{key}[{index}]", issues, schema)
                    else:
                        issues.append(
                            FhirIssue(
                                f"{path}.{key}[{index}]",
                                _object_problem(item, "primitive extension"),
                            )
                        )
            else:
                for index, item in enumerate(value):
                    _check_resource(item, f"{path}.{key}[{index}]", issues, schema)
        elif kind == _PRIMITIVE:
            assert check is not None
            problem = check(value)
            if problem is None and enum is not None and value not in enum:
                problem = _enum_problem(value, enum)
            if problem is not None:
                issues.append(FhirIssue(f"{path}.{key}", problem))
        elif kind == _COMPLEX or kind == _PRIMITIVE_EXTENSION:
            assert sub is not None
            if type(value) is dict and value:
                _check_object(value, sub, f"{path}.{key}", issues, schema)
            else:
                issues.append(
                    FhirIssue(
                        f"{path}.{key}",
                        _object_problem(
                            value, type_name if kind == _COMPLEX else "primitive extension"
                        ),
                    )
                )
        elif kind == _RESOURCE:
            _check_resource(value, f"{path}.{key}", issues, schema)
        # _RESOURCE_TYPE was checked by _check_resource.
    if type_.required:
        for name, extension_key in type_.required:
            if name not in obj and (
                extension_key is None or not _has_extension(obj.get(extension_key))
            ):
                issues.append(
                    FhirIssue(
                        f"{path}.{name}", f"missing required element '{name}' of {type_.name}"
                    )
                )
    if type_.required_choices:
        for group, members in type_.required_choices:
            present = seen_choice.get(group) if seen_choice is not None else None
            if present is None or (
                present not in obj and not _has_extension(obj.get("_" + present))
            ):
                issues.append(
                    FhirIssue(
                        f"{path}.{group}[x]",
                        f"missing required element {group}[x] of {type_.name} "
                        f"(one of: {', '.join(members)})",
                    )
                )


def _enum_problem(value: object, enum: frozenset[str]) -> str:
    return f"code '{value}' is not in the required value set ({' | '.join(sorted(enum))})"


def _object_problem(value: object, type_name: str) -> str:
    if type(value) is dict:
        return f"empty object ({type_name}; FHIR elements have a value or children)"
    if type(value) is list:
        return f"expected a single {type_name} object, got an array"
    return f"expected a JSON object ({type_name}), got {_json_type(value)}"


def _check_resource(value: object, path: str, issues: list[FhirIssue], schema: _Schema) -> None:
    """Check a nested resource (``contained``, ``Bundle.entry.resource`` ...)."""
    if type(value) is not dict:
        issues.append(FhirIssue(path, _object_problem(value, "resource")))
        return
    resource_type = value.get("resourceType")
    type_ = schema.resources.get(resource_type) if type(resource_type) is str else None
    if type_ is None:
        issues.append(FhirIssue(f"{path}.resourceType", _resource_type_problem(resource_type)))
        return
    _check_object(value, type_, path, issues, schema)


def _resource_type_problem(resource_type: object) -> str:
    if resource_type is None:
        return "missing resourceType"
    if type(resource_type) is not str:
        return f"resourceType must be a JSON string, got {_json_type(resource_type)}"
    return f"unknown resourceType '{resource_type}' (not a concrete FHIR R4B resource type)"


# ------------------------------------------------------------------------------ public
def validate_resource(resource: object) -> list[FhirIssue]:
    """Check one FHIR R4 resource, parsed from JSON, against the R4B structure definitions.

    Parameters
    ----------
    resource
        The resource as parsed from JSON: a dict with ``resourceType``.

    Returns
    -------
    list of FhirIssue
        Every problem found (unknown, missing, mistyped or malformed elements), in
        document order then required-element order; empty when the resource is valid.

    Examples
    --------
    >>> validate_resource({"resourceType": "Patient", "birthDate": "1970-01-01"})
    []
    >>> issue, = validate_resource(
    ...     {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
    ...      "effectivePeriod": {"stop": "2020-01-01"}})
    >>> issue.path
    'Observation.effectivePeriod.stop'
    >>> issue.message
    "unknown element 'stop' (Period allows: start, end, id, extension)"
    """
    schema = _SCHEMA if _SCHEMA is not None else _load()
    issues: list[FhirIssue] = []
    if type(resource) is not dict:
        return [FhirIssue(_ROOT, _object_problem(resource, "resource"))]
    resource_type = resource.get("resourceType")
    type_ = schema.resources.get(resource_type) if type(resource_type) is str else None
    if type_ is None:
        return [FhirIssue(f"{_ROOT}.resourceType", _resource_type_problem(resource_type))]
    try:
        _check_object(resource, type_, type_.name, issues, schema)
    except RecursionError:
        issues.append(FhirIssue(type_.name, "nested too deeply to check"))
    return issues


def known_resource_types() -> frozenset[str]:
    """Return the concrete resource types that :func:`validate_resource` knows (FHIR R4B).

    Examples
    --------
    >>> "Observation" in known_resource_types(), "DomainResource" in known_resource_types()
    (True, False)
    """
    return (_SCHEMA if _SCHEMA is not None else _load()).resource_names
