"""Fast structural validation of FHIR R4 JSON resources (parsed to Python objects).

:func:`validate_resource` checks a resource, already parsed from JSON (by
``orjson``), against the element definitions of the FHIR R4B models of
``fhir.resources`` (``fhir_r4b_schema.json``, written by
``tools/gen_fhir_schema.py``). It is at least as strict as
``fhir.resources.R4B`` on structure and about 20 times faster (over 70,000 Synthea
resources a second on one core), because it builds nothing: it walks the dicts
and lists once, with per-type look-up tables built on first use. Valid resources,
the common case, are answered by checkers generated for each shape of object (its
sequence of keys) and cached; anything they do not pass goes to the walker, which
decides and words the issues (see "fast path" below). Where
``fhir.resources`` departs from the R4 specification, the specification wins;
``docs/fhir-validation.md`` lists those places.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

import orjson

__all__ = [
    "FhirIssue",
    "compile_shapes",
    "known_resource_types",
    "learned_shapes",
    "validate_resource",
]

_SCHEMA_FILE = "fhir_r4b_schema.json"

# What an element holds (``_Element.kind``).
_PRIMITIVE = 0
_COMPLEX = 1
_RESOURCE = 2
_PRIMITIVE_EXTENSION = 3
_RESOURCE_TYPE = 4

# How the hot loop of _check_object handles an element: the first item of its
# look-up entry. Plain elements (no choice group, no code list) take the fast
# branches, in order of frequency; the rest go through _check_other. The loop
# compares with the literal numbers (a constant load beats a global load).
_FAST_CACHED = 0  # single string type with a regex: entry[1] is the set of valid values
_FAST_STRING = 1  # single string or markdown
_FAST_COMPLEX = 2  # single complex value: entry[1] is its _Type
_FAST_COMPLEX_LIST = 3  # array of complex values: entry[1] is their _Type
_FAST_CALL = 4  # other single primitive: entry[1] is its checker
_FAST_CODE = 5  # single code of a required binding: entry[1] is the set of codes
_FAST_PRIMITIVE_LIST = 6  # array of primitives: entry[1] is their checker
_SKIP = 7  # resourceType, checked before the walk
_SLOW = 8

_FLAG_LIST = 1
_FLAG_REQUIRED = 2
_FLAG_PRIMITIVE_EXTENSION = 4
_FLAG_CHOICE_REQUIRED = 8

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_STRING_MAX_CHARS = 1024 * 1024
_CACHE_MAX = 50_000  # per primitive type
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


# Unicode whitespace other than space, tab, CR and LF. fhir.resources rejects a
# string made only of these (pydantic's Rust regex reads the R4 string regex
# ``[ \r\n\t\S]+`` with a Unicode ``\S``); R4 datatypes.html#string: strings
# "SHOULD always contain non-whitespace content".
_NON_FHIR_WHITESPACE = frozenset(
    "\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _check_string(value: Any) -> str | None:
    """FHIR ``string`` and ``markdown``: a non-empty JSON string of at most 1 MiB characters."""
    if type(value) is not str:
        return f"expected a JSON string, got {_json_type(value)}"
    if not value:
        return "empty string (FHIR strings have at least one character)"
    if len(value) > _STRING_MAX_CHARS:
        return f"string of {len(value)} characters (FHIR allows at most 1,048,576)"
    if value.isspace() and all(char in _NON_FHIR_WHITESPACE for char in value):
        return "string of whitespace only"
    return None


class _RegexChecker:
    """Checker of a string type defined by a regular expression.

    Valid values are remembered (a bounded set), since the same codes, URIs and
    timestamps recur across resources; the walker tests that set inline.

    Parameters
    ----------
    type_name
        FHIR type name, for messages.
    pattern
        The regular expression that the whole value must match.
    explain
        Extra check of a matching value (calendar validity); returns the problem or None.
    """

    __slots__ = ("explain", "fullmatch", "type_name", "valid")

    def __init__(
        self, type_name: str, pattern: str, explain: Callable[[str], str | None] | None = None
    ) -> None:
        self.type_name = type_name
        self.fullmatch = re.compile(pattern).fullmatch
        self.explain = explain
        self.valid: set[str] = set()

    def __call__(self, value: Any) -> str | None:
        if type(value) is not str:
            return f"expected a JSON string ({self.type_name}), got {_json_type(value)}"
        if value in self.valid:
            return None
        if not value:
            return f"empty string is not a valid {self.type_name}"
        if self.fullmatch(value) is None:
            return _describe_mismatch(self.type_name, value, self.fullmatch)
        if self.explain is not None:
            problem = self.explain(value)
            if problem is not None:
                return problem
        if len(self.valid) >= _CACHE_MAX:
            self.valid.clear()
        self.valid.add(value)
        return None


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


def _check_xhtml(value: Any) -> str | None:
    """FHIR ``xhtml`` (``Narrative.div``): a non-empty JSON string (its XHTML is not parsed)."""
    if type(value) is str and value:
        return None
    if type(value) is str:
        return "empty string is not valid xhtml"
    return f"expected a JSON string (xhtml), got {_json_type(value)}"


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


# XML Schema whitespace, allowed between base64 characters (line breaks of MIME).
_XSD_WHITESPACE = str.maketrans("", "", " \t\r\n")


def _check_base64(value: Any) -> str | None:
    """FHIR ``base64Binary``: RFC 4648 base64, whitespace allowed between characters.

    The R4 regex ``(\\s*([0-9a-zA-Z\\+\\=]){4}\\s*)+`` omits ``/``, which RFC 4648
    needs; padding must be right (``abc`` is not base64, as for fhir.resources).
    """
    if type(value) is not str:
        return f"expected a JSON string (base64Binary), got {_json_type(value)}"
    if not value:
        return "empty string is not a valid base64Binary"
    # binascii.Error is a ValueError; a non-ASCII string raises a plain ValueError
    try:
        binascii.a2b_base64(value, strict_mode=True)
        return None
    except ValueError:
        pass
    try:
        binascii.a2b_base64(value.translate(_XSD_WHITESPACE), strict_mode=True)
    except ValueError as error:
        return f"not valid base64 ({error})"
    return None


def _build_checkers() -> dict[str, _Checker]:
    """Return the checker of every FHIR primitive type."""
    checkers: dict[str, _Checker] = {
        "boolean": _check_boolean,
        "integer": _int_checker("integer", _INT32_MIN),
        "unsignedInt": _int_checker("unsignedInt", 0),
        "positiveInt": _int_checker("positiveInt", 1),
        "decimal": _check_decimal,
        "string": _check_string,
        "markdown": _check_string,
        "xhtml": _check_xhtml,
        "base64Binary": _check_base64,
        "uri": _RegexChecker("uri", _PATTERNS["uri"]),
        "url": _RegexChecker("url", _PATTERNS["uri"]),
        "canonical": _RegexChecker("canonical", _PATTERNS["uri"]),
        "date": _RegexChecker("date", _PATTERNS["date"], _check_calendar),
        "dateTime": _RegexChecker("dateTime", _PATTERNS["dateTime"], _check_calendar),
        "instant": _RegexChecker("instant", _PATTERNS["instant"], _check_calendar),
    }
    for name in ("time", "id", "code", "oid", "uuid"):
        checkers[name] = _RegexChecker(name, _PATTERNS[name])
    return checkers


# ------------------------------------------------------------------------------ schema
class _Element(NamedTuple):
    """One element of a type: what it holds, for checks and messages."""

    kind: int
    many: bool
    sub: _Type | None  # complex type, or FHIRPrimitiveExtension for a ``_name`` sibling
    check: _Checker | None  # primitive checker
    enum: frozenset[str] | None
    choice: str | None
    name: str  # the element name (without ``_`` for a primitive extension sibling)
    type_name: str


# (fast kind, checker or type, element) by JSON key.
_Entry = tuple[int, Any, _Element]


class _Type:
    """Look-up tables of one resource, datatype or backbone element."""

    __slots__ = (
        "allowed",
        "elements",
        "name",
        "required",
        "required_choices",
        "shapes",
        "tables",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.elements: dict[str, _Entry] = {}
        # (element, its ``_element`` key or None)
        self.required: tuple[tuple[str, str | None], ...] = ()
        # (group, member element names)
        self.required_choices: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self.allowed = ""
        self.tables: tuple[
            dict[str, _Entry],
            tuple[tuple[str, str | None], ...],
            tuple[tuple[str, tuple[str, ...]], ...],
        ] = ({}, (), ())
        # the fast path's checker of each key sequence seen (see _compile_shape)
        self.shapes: dict[tuple[str, ...], Callable[[dict[str, Any]], bool]] = {}


def _entry(element: _Element) -> _Entry:
    """Pick the hot-loop branch of an element."""
    if element.kind == _RESOURCE_TYPE:
        return _SKIP, None, element
    if element.choice is None and element.kind == _PRIMITIVE and not element.many:
        if element.enum is not None:
            return _FAST_CODE, element.enum, element
        if isinstance(element.check, _RegexChecker):
            return _FAST_CACHED, element.check.valid, element
        if element.check is _check_string:
            return _FAST_STRING, None, element
        return _FAST_CALL, element.check, element
    if element.choice is None and element.enum is None:
        if element.kind == _PRIMITIVE:
            return _FAST_PRIMITIVE_LIST, element.check, element
        if element.kind == _COMPLEX:
            return (_FAST_COMPLEX_LIST if element.many else _FAST_COMPLEX), element.sub, element
    return _SLOW, None, element


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
                    sub = self.types[kind_name]
                    element = _Element(_COMPLEX, many, sub, None, None, choice, key, kind_name)
                type_.elements[key] = _entry(element)
                has_extension = bool(flags & _FLAG_PRIMITIVE_EXTENSION)
                if has_extension:
                    sibling = _Element(
                        _PRIMITIVE_EXTENSION,
                        many,
                        extension_type,
                        None,
                        None,
                        choice,
                        key,
                        kind_name,
                    )
                    type_.elements["_" + key] = _entry(sibling)
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
            type_.elements["resourceType"] = _entry(
                _Element(_RESOURCE_TYPE, False, None, None, None, None, "resourceType", "code")
            )
            self.resources[name] = type_
        for type_ in self.types.values():
            type_.tables = (type_.elements, type_.required, type_.required_choices)
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
# A location is built only when an issue is reported: the walker passes
# ``(parent, key)`` or ``(parent, key, index)`` tuples down, the root being a str.
_Path = str | tuple[Any, ...]


def _render(path: _Path, key: object = None, index: int | None = None) -> str:
    """Turn a path chain (plus an optional last key and index) into text."""
    parts: list[str] = []
    if key is not None:
        parts.append(f".{key}" if index is None else f".{key}[{index}]")
    while type(path) is tuple:
        if len(path) == 3:
            parts.append(f".{path[1]}[{path[2]}]")
        else:
            parts.append(f".{path[1]}")
        path = path[0]
    parts.append(str(path))
    return "".join(reversed(parts))


def _has_extension(value: object) -> bool:
    """Whether a ``_name`` sibling (object, or array of objects) carries an extension."""
    if type(value) is dict:
        return bool(value.get("extension"))
    if type(value) is list:
        return any(type(item) is dict and item.get("extension") for item in value)
    return False


def _check_object(obj: dict[str, Any], type_: _Type, path: _Path, issues: list[FhirIssue]) -> None:
    """Check the elements of one JSON object of a known type, appending to ``issues``."""
    elements, required, required_choices = type_.tables
    seen_choice: dict[str, str] | None = None
    for key, value in obj.items():
        try:
            fast, target, element = elements[key]
        except KeyError:
            issues.append(
                FhirIssue(
                    _render(path, key),
                    f"unknown element '{key}' ({type_.name} allows: {type_.allowed})",
                )
            )
            continue
        if fast == 0:  # _FAST_CACHED
            if type(value) is not str or value not in target:
                assert element.check is not None
                problem = element.check(value)
                if problem is not None:
                    issues.append(FhirIssue(_render(path, key), problem))
        elif fast == 1:  # _FAST_STRING
            if (
                type(value) is not str
                or not value
                or value.isspace()
                or len(value) > _STRING_MAX_CHARS
            ):
                problem = _check_string(value)
                if problem is not None:
                    issues.append(FhirIssue(_render(path, key), problem))
        elif fast == 2:  # _FAST_COMPLEX
            if type(value) is dict and value:
                _check_object(value, target, (path, key), issues)
            else:
                issues.append(
                    FhirIssue(_render(path, key), _object_problem(value, element.type_name))
                )
        elif fast == 3:  # _FAST_COMPLEX_LIST
            if type(value) is list and value:
                for index, item in enumerate(value):
                    if type(item) is dict and item:
                        _check_object(item, target, (path, key, index), issues)
                    else:
                        issues.append(
                            FhirIssue(
                                _render(path, key, index),
                                _object_problem(item, element.type_name),
                            )
                        )
            else:
                issues.append(FhirIssue(_render(path, key), _list_problem(value, element)))
        elif fast == 4:  # _FAST_CALL
            problem = target(value)
            if problem is not None:
                issues.append(FhirIssue(_render(path, key), problem))
        elif fast == 5:  # _FAST_CODE
            if type(value) is not str or value not in target:
                assert element.check is not None
                problem = element.check(value) or _enum_problem(value, target)
                issues.append(FhirIssue(_render(path, key), problem))
        elif fast == 6:  # _FAST_PRIMITIVE_LIST
            if type(value) is list and value:
                for index, item in enumerate(value):
                    problem = target(item)
                    if problem is not None:
                        _primitive_item_problem(obj, key, index, item, problem, path, issues)
            else:
                issues.append(FhirIssue(_render(path, key), _list_problem(value, element)))
        elif fast == 7:  # _SKIP
            pass
        else:
            choice = element.choice
            if choice is not None:
                if seen_choice is None:
                    seen_choice = {choice: element.name}
                else:
                    other = seen_choice.setdefault(choice, element.name)
                    if other != element.name:
                        issues.append(
                            FhirIssue(
                                _render(path, key),
                                f"more than one {choice}[x] element: '{other}' and '{element.name}'",
                            )
                        )
            _check_other(obj, key, value, element, path, issues)
    if required:
        for name, extension_key in required:
            if name not in obj and (
                extension_key is None or not _has_extension(obj.get(extension_key))
            ):
                issues.append(
                    FhirIssue(
                        _render(path, name), f"missing required element '{name}' of {type_.name}"
                    )
                )
    if required_choices:
        for group, members in required_choices:
            present = seen_choice.get(group) if seen_choice is not None else None
            if present is None or (
                present not in obj and not _has_extension(obj.get("_" + present))
            ):
                issues.append(
                    FhirIssue(
                        _render(path, f"{group}[x]"),
                        f"missing required element {group}[x] of {type_.name} "
                        f"(one of: {', '.join(members)})",
                    )
                )


def _check_other(
    obj: dict[str, Any],
    key: str,
    value: Any,
    element: _Element,
    path: _Path,
    issues: list[FhirIssue],
) -> None:
    """Check an element that the fast branches of :func:`_check_object` do not take.

    That is a member of a choice group, an array of codes with a required binding, a
    resource, or a ``_name`` sibling.
    """
    kind = element.kind
    if not element.many:
        if kind == _PRIMITIVE:
            _check_primitive(obj, key, None, value, element, path, issues)
        elif kind == _RESOURCE:
            _check_resource(value, (path, key), issues)
        elif type(value) is dict and value:
            assert element.sub is not None
            _check_object(value, element.sub, (path, key), issues)
        else:
            name = element.type_name if kind == _COMPLEX else "primitive extension"
            issues.append(FhirIssue(_render(path, key), _object_problem(value, name)))
        return
    if type(value) is not list or not value:
        issues.append(FhirIssue(_render(path, key), _list_problem(value, element)))
        return
    for index, item in enumerate(value):
        if kind == _PRIMITIVE:
            _check_primitive(obj, key, index, item, element, path, issues)
        elif kind == _RESOURCE:
            _check_resource(item, (path, key, index), issues)
        elif type(item) is dict and item:
            assert element.sub is not None
            _check_object(item, element.sub, (path, key, index), issues)
        elif not (item is None and kind == _PRIMITIVE_EXTENSION):
            # null is the placeholder in an array of ``_name`` siblings
            name = element.type_name if kind == _COMPLEX else "primitive extension"
            issues.append(FhirIssue(_render(path, key, index), _object_problem(item, name)))


def _check_primitive(
    obj: dict[str, Any],
    key: str,
    index: int | None,
    value: Any,
    element: _Element,
    path: _Path,
    issues: list[FhirIssue],
) -> None:
    """Check one primitive value (an array item when ``index`` is given), codes included."""
    assert element.check is not None
    problem = element.check(value)
    if problem is None and element.enum is not None and value not in element.enum:
        problem = _enum_problem(value, element.enum)
    if problem is not None:
        if index is None:
            issues.append(FhirIssue(_render(path, key), problem))
        else:
            _primitive_item_problem(obj, key, index, value, problem, path, issues)


def _primitive_item_problem(
    obj: dict[str, Any],
    key: str,
    index: int,
    item: object,
    problem: str,
    path: _Path,
    issues: list[FhirIssue],
) -> None:
    """Report a bad primitive array item; ``null`` is fine where ``_key[index]`` fills it."""
    if item is None:
        siblings = obj.get("_" + key)
        if type(siblings) is list and index < len(siblings) and siblings[index] is not None:
            return
        problem = f"null without an extension at _{key}[{index}]"
    issues.append(FhirIssue(_render(path, key, index), problem))


def _list_problem(value: object, element: _Element) -> str:
    if type(value) is list:
        return "empty array (omit the element instead)"
    return f"expected a JSON array of {element.type_name}, got {_json_type(value)}"


def _enum_problem(value: object, enum: frozenset[str]) -> str:
    return f"code '{value}' is not in the required value set ({' | '.join(sorted(enum))})"


def _object_problem(value: object, type_name: str) -> str:
    if type(value) is dict:
        return f"empty object ({type_name}; FHIR elements have a value or children)"
    if type(value) is list:
        return f"expected a single {type_name} object, got an array"
    return f"expected a JSON object ({type_name}), got {_json_type(value)}"


def _resource_type_problem(resource_type: object) -> str:
    if resource_type is None:
        return "missing resourceType"
    if type(resource_type) is not str:
        return f"resourceType must be a JSON string, got {_json_type(resource_type)}"
    return f"unknown resourceType '{resource_type}' (not a concrete FHIR R4B resource type)"


def _check_resource(value: object, path: _Path, issues: list[FhirIssue]) -> None:
    """Check a nested resource (``contained``, ``Bundle.entry.resource`` ...)."""
    if type(value) is not dict:
        issues.append(FhirIssue(_render(path), _object_problem(value, "resource")))
        return
    resource_type = value.get("resourceType")
    assert _SCHEMA is not None
    type_ = _SCHEMA.resources.get(resource_type) if type(resource_type) is str else None
    if type_ is None:
        issues.append(
            FhirIssue(_render(path, "resourceType"), _resource_type_problem(resource_type))
        )
        return
    _check_object(value, type_, path, issues)


# --------------------------------------------------------------------------- fast path
# Valid data is the common case, and objects of a type come in few shapes (sequences of
# keys). For each shape seen, a small function is generated once that checks an object
# of that shape with straight-line code: what depends only on the keys (unknown,
# missing, repeated choice elements) is settled when the shape is compiled, and only
# the values are tested per object. It tests the same conditions as the walker's
# branches and answers True only where the walker would find nothing; for anything
# else (including the rare valid forms it does not take: a required element or choice
# given only by its ``_name`` extension, a ``null`` in a primitive array) it answers
# False, and the walker then checks the resource and words the issues.

# Compiling a shape costs about 0.5 ms, a hundred objects' worth of checking: data whose
# objects all differ in their keys' order (hostile, or generated so) would make every object
# a compile. So each type compiles at most _SHAPES_MAX shapes and the process at most
# _COMPILED_MAX; objects of further new shapes are checked by the walker. Real data has few
# shapes: the 100 Synthea bundles 108, over 17 types.
_SHAPES_MAX = 256
_COMPILED_MAX = 4_096
_compiled = 0
_FastCheck = Callable[[Any], bool]
# Import workers are forked for each import: the shapes one compiles die with it. It hands
# them (type name and keys, a few kilobytes) back with its results, the importing process
# compiles them too (compile_shapes), and the workers of its next import, forked from it,
# start with them instead of each compiling the same ~100 shapes again (about 20 ms each).
_learned: list[tuple[str, tuple[str, ...]]] = []


def _never(obj: Any) -> bool:
    """The checker of a shape that is invalid whatever its values."""
    return False


def _shape(type_: _Type, obj: dict[str, Any]) -> _FastCheck:
    """The checker of ``obj``'s shape, compiled on first sight (within the limits above)."""
    keys = tuple(obj)
    check = type_.shapes.get(keys)
    if check is None:
        check = _add_shape(type_, keys)
        if check is None:
            return _walked(type_)
        if len(_learned) < _COMPILED_MAX:
            _learned.append((type_.name, keys))
    return check


def _add_shape(type_: _Type, keys: tuple[str, ...]) -> _FastCheck | None:
    """Compile and keep the checker of a new shape; None beyond the compile limits."""
    global _compiled
    if len(type_.shapes) >= _SHAPES_MAX or _compiled >= _COMPILED_MAX:
        return None
    check = type_.shapes[keys] = _compile_shape(type_, keys)
    _compiled += check is not _never
    return check


def learned_shapes() -> list[tuple[str, tuple[str, ...]]]:
    """The shapes this process compiled since the last call, as ``(type name, keys)``
    (and forgets them): an import worker returns them to the process that forked it."""
    taken = _learned[:]
    _learned.clear()
    return taken


def compile_shapes(shapes: Iterable[tuple[str, tuple[str, ...]]]) -> int:
    """Compile shapes another process learned (see :func:`learned_shapes`); returns how
    many were new here. Within the same limits as shapes met in data; unknown type names
    (a hand-made list) are skipped.

    >>> shape = ("Coding", ("code", "doctest-only"))  # an unknown element: never valid
    >>> compile_shapes([shape, ("NoSuchType", ("x",))]), compile_shapes([shape])
    (1, 0)
    """
    schema = _SCHEMA if _SCHEMA is not None else _load()
    added = 0
    for name, keys in shapes:
        type_ = schema.types.get(name)
        if type_ is not None and keys not in type_.shapes:
            added += _add_shape(type_, tuple(keys)) is not None
    return added


def _walked(type_: _Type) -> _FastCheck:
    """A checker that asks the walker (for shapes beyond the compile limits)."""

    def check(obj: Any) -> bool:
        issues: list[FhirIssue] = []
        _check_object(obj, type_, type_.name, issues)
        return not issues

    return check


def _primitives_valid(items: list[Any], check: _Checker) -> bool:
    for item in items:  # noqa: SIM110 (a loop is faster than all() over a generator)
        if check(item) is not None:
            return False
    return True


def _codes_valid(items: list[Any], check: _Checker, enum: frozenset[str]) -> bool:
    for item in items:  # noqa: SIM110 (a loop is faster than all() over a generator)
        if check(item) is not None or item not in enum:
            return False
    return True


def _resource_valid(value: Any) -> bool:
    if type(value) is not dict:
        return False
    assert _SCHEMA is not None
    resource_type = value.get("resourceType")
    type_ = _SCHEMA.resources.get(resource_type) if type(resource_type) is str else None
    if type_ is None:
        return False
    return (type_.shapes.get(tuple(value)) or _shape(type_, value))(value)


def _resources_valid(items: list[Any]) -> bool:
    for item in items:  # noqa: SIM110 (a loop is faster than all() over a generator)
        if not _resource_valid(item):
            return False
    return True


def _extensions_valid(items: list[Any], type_: _Type) -> bool:
    """A ``_name`` sibling array: primitive extensions, ``null`` where the value has none."""
    get = type_.shapes.get
    for item in items:
        if item is None:
            continue
        if (
            type(item) is not dict
            or not item
            or not (get(tuple(item)) or _shape(type_, item))(item)
        ):
            return False
    return True


def _condition(value: str, entry: _Entry, bind: Callable[[object], str]) -> str | None:
    """Python expression that is true when ``value`` (a variable name) passes ``entry``."""
    fast, target, element = entry
    v = value
    if fast == _FAST_CACHED:
        return (
            f"((type({v}) is str and {v} in {bind(target)}) or {bind(element.check)}({v}) is None)"
        )
    if fast == _FAST_STRING:
        return (
            f"((type({v}) is str and {v} and not {v}.isspace() and len({v}) <= {_STRING_MAX_CHARS})"
            f" or {bind(_check_string)}({v}) is None)"
        )
    if fast == _FAST_CALL:
        return f"{bind(target)}({v}) is None"
    if fast == _FAST_CODE:
        return f"(type({v}) is str and {v} in {bind(target)})"
    if fast == _FAST_PRIMITIVE_LIST:
        return f"(type({v}) is list and {v} and {bind(_primitives_valid)}({v}, {bind(target)}))"
    if fast == _SKIP:
        return None
    kind = element.kind
    sub = element.sub
    if fast in (_FAST_COMPLEX, _FAST_COMPLEX_LIST):
        kind = _COMPLEX
    if kind == _PRIMITIVE:
        check = bind(element.check)
        if not element.many:
            if element.enum is None:
                return f"{check}({v}) is None"
            return f"({check}({v}) is None and {v} in {bind(element.enum)})"
        if element.enum is None:
            return f"(type({v}) is list and {v} and {bind(_primitives_valid)}({v}, {check}))"
        return (
            f"(type({v}) is list and {v} and "
            f"{bind(_codes_valid)}({v}, {check}, {bind(element.enum)}))"
        )
    if kind == _RESOURCE:
        if not element.many:
            return f"{bind(_resource_valid)}({v})"
        return f"(type({v}) is list and {v} and {bind(_resources_valid)}({v}))"
    assert sub is not None
    if not element.many:
        get = bind(sub.shapes.get)
        miss = bind(lambda obj, sub=sub: _shape(sub, obj))
        return f"(type({v}) is dict and {v} and ({get}(tuple({v})) or {miss}({v}))({v}))"
    if kind == _PRIMITIVE_EXTENSION:
        return f"(type({v}) is list and {v} and {bind(_extensions_valid)}({v}, {bind(sub)}))"
    # a list of objects: the loop is written out in the checker (see _compile_shape)
    return f"LOOP {bind(sub.shapes.get)} {bind(lambda obj, sub=sub: _shape(sub, obj))}"


def _compile_shape(type_: _Type, keys: tuple[str, ...]) -> _FastCheck:
    """Generate the checker of objects of ``type_`` whose keys are ``keys``, in this order."""
    elements, required, required_choices = type_.tables
    seen_choice: dict[str, str] = {}
    entries = []
    for key in keys:
        entry = elements.get(key)
        if entry is None:
            return _never  # unknown element
        choice = entry[2].choice
        if choice is not None and seen_choice.setdefault(choice, entry[2].name) != entry[2].name:
            return _never  # two elements of one choice group
        entries.append(entry)
    present = set(keys)
    if any(name not in present for name, _ in required):
        return _never  # missing, or given only by its ``_name`` extension: the walker decides
    for group, _members in required_choices:
        if seen_choice.get(group) not in present:
            return _never
    constants: dict[str, object] = {}

    def bind(constant: object) -> str:
        name = f"c{len(constants)}"
        constants[name] = constant
        return name

    names = [f"v{index}" for index in range(len(keys))]
    lines = [f"    {', '.join(names)}, = o.values()"]
    for name, entry in zip(names, entries, strict=True):
        condition = _condition(name, entry, bind)
        if condition is None:
            continue
        if condition.startswith("LOOP "):
            _, get, miss = condition.split()
            lines += [
                f"    if type({name}) is not list or not {name}:",
                "        return False",
                f"    for i in {name}:",
                f"        if type(i) is not dict or not i or not ({get}(tuple(i)) or {miss}(i))(i):",
                "            return False",
            ]
        else:
            lines += [f"    if not {condition}:", "        return False"]
    # the constants are the checker's globals (a specialised LOAD_GLOBAL per use), not
    # default arguments, which every call would copy into its frame
    source = "\n".join(["def check(o):", *lines, "    return True", ""])
    namespace: dict[str, Any] = dict(constants)
    exec(compile(source, f"<fhir shape {type_.name}>", "exec"), namespace)
    check: _FastCheck = namespace["check"]
    return check


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
    >>> (issue,) = validate_resource(
    ...     {
    ...         "resourceType": "Observation",
    ...         "status": "final",
    ...         "code": {"text": "glucose"},
    ...         "effectivePeriod": {"stop": "2020-01-01"},
    ...     }
    ... )
    >>> issue.path
    'Observation.effectivePeriod.stop'
    >>> issue.message
    "unknown element 'stop' (Period allows: start, end, id, extension)"
    """
    schema = _SCHEMA if _SCHEMA is not None else _load()
    if type(resource) is not dict:
        return [FhirIssue(_ROOT, _object_problem(resource, "resource"))]
    resource_type = resource.get("resourceType")
    type_ = schema.resources.get(resource_type) if type(resource_type) is str else None
    if type_ is None:
        return [FhirIssue(f"{_ROOT}.resourceType", _resource_type_problem(resource_type))]
    try:
        if (type_.shapes.get(tuple(resource)) or _shape(type_, resource))(resource):
            return []
    except RecursionError:
        pass  # the walker says where
    issues: list[FhirIssue] = []
    try:
        _check_object(resource, type_, type_.name, issues)
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
