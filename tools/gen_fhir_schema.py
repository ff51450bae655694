"""Generate ``src/medtwin/ingest/fhir_r4b_schema.json`` from the ``fhir.resources.R4B`` models.

medtwin validates FHIR R4 JSON with a fast, dependency-free validator
(:mod:`medtwin.ingest.fhir_schema`) instead of the pydantic models of
``fhir.resources``, which are about 20 times slower. This dev-time script
introspects those models once and writes what the validator needs as compact JSON.

Always ``fhir.resources.R4B``: the default ``fhir.resources`` package is R5.

What is extracted
-----------------
For every concrete resource type, and every complex datatype and backbone element
reachable from one, each element's

- JSON name (the pydantic alias);
- whether it is a JSON array;
- type: a FHIR primitive (``string``, ``code``, ``dateTime`` ...), a complex type
  (the model class name, e.g. ``Period`` or ``ObservationComponent``), or
  ``Resource`` (``contained``, ``Bundle.entry.resource`` ...);
- whether it is required (``is_required()`` or ``element_required``);
- whether a ``_name`` primitive extension sibling exists;
- the choice group ``one_of_many`` (``value`` for ``value[x]``) and
  ``one_of_many_required``;
- the codes of ``enum_values`` (required bindings to small value sets).

Corrections to the models
-------------------------
Where ``fhir.resources`` departs from the FHIR R4 specification in a way that
would reject valid resources, the script follows the specification and says so:

- ``enum_values`` are parsed from each element's short description; nine are cut
  short (``registered | preliminary | final | amended +``) and are completed with
  the whole R4 value set (``TRUNCATED_ENUMS``); two are not closed lists and are
  dropped (``OPEN_ENUMS``: Expression.language, CapabilityStatement.format);
- every primitive element gets its ``_name`` sibling (R4 json.html#primitive),
  which the models lack for ``Extension.value[x]`` and ``StructureMap.import``;
  ``id`` and ``Extension.url`` are ``System.String`` and have none.

Format
------
::

    {"fhirVersion": "4.3.0", "source": "fhir.resources 8.3.0",
     "resources": ["Account", ...],
     "enums": [["final", "amended", ...], ...],
     "types": {"Observation": {"base": "DomainResource",
                               "elements": {"status": ["code", 6, null, 12], ...}}}}

Each element is ``[type, flags]`` optionally followed by the choice group (or
``null``) and an index into ``enums``. ``flags`` is a bit set: 1 array, 2 required,
4 has a ``_name`` sibling, 8 its choice group is required. A type lists only the
elements it adds to its ``base`` (a type also in the file), in specification order.

Usage
-----
``python tools/gen_fhir_schema.py [--output PATH] [--check]``

``--check`` exits 1 when the file on disk differs from what would be written
(for CI).
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "src" / "medtwin" / "ingest" / "fhir_r4b_schema.json"

FLAG_LIST = 1
FLAG_REQUIRED = 2
FLAG_PRIMITIVE_EXTENSION = 4
FLAG_CHOICE_REQUIRED = 8

# Abstract types: never the ``resourceType`` of an instance.
ABSTRACT_RESOURCES = frozenset({"Resource", "DomainResource"})

PRIMITIVES = frozenset(
    [
        "base64Binary",
        "boolean",
        "canonical",
        "code",
        "date",
        "dateTime",
        "decimal",
        "id",
        "instant",
        "integer",
        "integer64",
        "markdown",
        "oid",
        "positiveInt",
        "string",
        "time",
        "unsignedInt",
        "uri",
        "url",
        "uuid",
        "xhtml",
    ]
)


# fhir.resources parses ``enum_values`` from each element's short description
# (``title``). Where that description lists only the first codes and ends with
# ``+``, the list is completed here with the whole R4 value set (all of these
# bind the whole code system): https://hl7.org/fhir/R4/valueset-<name>.html
TRUNCATED_ENUMS: dict[str, str] = {
    # observation-status (Observation, DetectedIssue, RiskAssessment .status)
    "registered preliminary final amended +": (
        "registered preliminary final amended corrected cancelled entered-in-error unknown"
    ),
    "barcode rfid manual +": "barcode rfid manual card self-reported unknown",  # udi-entry-type
    # device-statement-status
    "active completed entered-in-error +": (
        "active completed entered-in-error intended stopped on-hold"
    ),
    # diagnostic-report-status
    "registered partial preliminary final +": (
        "registered partial preliminary final amended corrected appended cancelled "
        "entered-in-error unknown"
    ),
    # encounter-status
    "planned arrived triaged in-progress onleave finished cancelled +": (
        "planned arrived triaged in-progress onleave finished cancelled entered-in-error unknown"
    ),
    # item-type
    "group display boolean decimal integer date dateTime +": (
        "group display question boolean decimal integer date dateTime time string text url "
        "choice open-choice attachment reference quantity"
    ),
    # map-transform
    "create copy +": (
        "create copy truncate escape cast append translate reference dateOp uuid pointer "
        "evaluate cc c qty id cp"
    ),
    # supplyrequest-status
    "draft active suspended +": (
        "draft active suspended cancelled completed entered-in-error unknown"
    ),
    # task-status
    "draft requested received accepted +": (
        "draft requested received accepted rejected ready cancelled in-progress on-hold "
        "failed completed entered-in-error"
    ),
}

# ``enum_values`` that are not a closed list of codes: Expression.language is an
# extensible binding ("... etc."), CapabilityStatement.format takes MIME types
# (the list was parsed from "formats supported (xml | json | ttl | mime type)").
OPEN_ENUMS = frozenset({("Expression", "language"), ("CapabilityStatement", "format")})
INCOMPLETE_MARKERS = frozenset({"+", "etc.", "..."})


# ``id`` (of every element and resource) and ``Extension.url`` have the R4 type
# ``http://hl7.org/fhirpath/System.String``: they are not FHIR primitive
# elements and so have no ``_name`` sibling in JSON.
def is_system_string(type_name: str, alias: str) -> bool:
    """Return whether an element is a System.String (no ``_name`` sibling)."""
    return alias == "id" or (type_name, alias) == ("Extension", "url")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip ``Optional`` / ``| None`` and ``List`` from a field annotation.

    Parameters
    ----------
    annotation
        ``FieldInfo.annotation`` of a ``fhir.resources`` model field.

    Returns
    -------
    tuple
        The item annotation and whether the field is a list.
    """
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Union or origin is types.UnionType:
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                raise TypeError(f"unexpected union {annotation!r}")
            annotation = args[0]
        elif origin is list:
            if is_list:
                raise TypeError(f"nested list {annotation!r}")
            is_list = True
            (annotation,) = typing.get_args(annotation)
        else:
            return annotation, is_list


class Generator:
    """Walk the R4B models and collect the compact schema."""

    def __init__(self) -> None:
        from fhir.resources.R4B import fhirtypes
        from fhir_core.constraints import FHIR_PRIMITIVES_MAPS
        from fhir_core.fhirabstractmodel import FHIRAbstractModel
        from fhir_core.types import FhirBase

        self.fhirtypes = fhirtypes
        self.primitive_names: dict[Any, str] = dict(FHIR_PRIMITIVES_MAPS)
        self.fhir_base = FhirBase
        self.abstract_model = FHIRAbstractModel
        self.types: dict[str, dict[str, Any]] = {}
        self.classes: dict[str, type[Any]] = {}
        self.enums: list[list[str]] = []
        self.enum_index: dict[tuple[str, ...], int] = {}
        self.corrections: list[str] = []

    def resource_classes(self) -> list[type[Any]]:
        """Return every concrete resource model class, sorted by name."""
        found: dict[str, type[Any]] = {}
        for name in dir(self.fhirtypes):
            factory = getattr(self.fhirtypes, name)
            if not (isinstance(factory, type) and issubclass(factory, self.fhir_base)):
                continue
            klass = factory.get_model_klass()
            if klass.has_resource_base() and klass.__name__ not in ABSTRACT_RESOURCES:
                found[klass.__name__] = klass
        return [found[name] for name in sorted(found)]

    def kind_of(self, item: Any) -> tuple[str, type[Any] | None]:
        """Return the FHIR type name of a field item annotation and its model class.

        Parameters
        ----------
        item
            The annotation with ``Optional`` and ``List`` removed.

        Returns
        -------
        tuple
            ``(type name, model class or None for primitives)``.
        """
        if item in self.primitive_names:
            return self.primitive_names[item], None
        if isinstance(item, type) and issubclass(item, self.fhir_base):
            klass = item.get_model_klass()
            if klass.__name__ == "Resource":
                return "Resource", None
            return klass.__name__, klass
        raise TypeError(f"cannot classify annotation {item!r}")

    def enum_id(self, codes: list[str]) -> int:
        """Return the index of a code list in ``enums``, adding it once."""
        key = tuple(codes)
        if key not in self.enum_index:
            self.enum_index[key] = len(self.enums)
            self.enums.append(list(codes))
        return self.enum_index[key]

    def closed_codes(self, klass: type[Any], alias: str, codes: Any) -> list[str] | None:
        """Return the complete list of allowed codes of an element, or None if open.

        Parameters
        ----------
        klass
            The model class that has the element.
        alias
            The element's JSON name.
        codes
            Its ``enum_values`` in ``fhir.resources`` (None when absent).

        Returns
        -------
        list of str or None
            The codes of the required binding, completed where ``fhir.resources``
            has a truncated list; None when the element has no closed list.
        """
        if not codes:
            return None
        if (klass.__name__, alias) in OPEN_ENUMS:
            return None
        key = " ".join(codes)
        if key in TRUNCATED_ENUMS:
            return TRUNCATED_ENUMS[key].split()
        if INCOMPLETE_MARKERS & set(codes):
            raise TypeError(f"{klass.__name__}.{alias}: incomplete enum_values {codes}")
        return list(codes)

    def element_specs(self, klass: type[Any]) -> dict[str, list[Any]]:
        """Return ``{json name: [type, flags, choice, enum]}`` for all fields of a model.

        Parameters
        ----------
        klass
            A ``fhir.resources.R4B`` model class.

        Returns
        -------
        dict
            All elements (inherited ones too), in specification order.
        """
        fields = klass.model_fields
        aliases = {(info.alias or name): name for name, info in fields.items()}
        order = list(klass.elements_sequence())
        missing = [
            alias
            for alias, name in aliases.items()
            if not name.endswith("__ext") and name != "fhir_comments" and alias not in order
        ]
        if missing:
            raise TypeError(f"{klass.__name__}: fields not in elements_sequence: {missing}")
        specs: dict[str, list[Any]] = {}
        for alias in order:
            name = aliases[alias]
            info = fields[name]
            extra: dict[str, Any] = dict(info.json_schema_extra or {})
            item, is_list = _unwrap(info.annotation)
            kind, _ = self.kind_of(item)
            flags = FLAG_LIST if is_list else 0
            if info.is_required() or extra.get("element_required") is True:
                flags |= FLAG_REQUIRED
            if f"{name}__ext" in fields:
                ext_alias = fields[f"{name}__ext"].alias
                if ext_alias != f"_{alias}":
                    raise TypeError(f"{klass.__name__}.{alias}: extension alias {ext_alias}")
                flags |= FLAG_PRIMITIVE_EXTENSION
            elif kind in PRIMITIVES and not is_system_string(klass.__name__, alias):
                # fhir.resources has no ``_valueString`` etc. on Extension (nor
                # ``_import`` on StructureMap), but FHIR JSON allows the ``_name``
                # sibling on every primitive element: R4 json.html#primitive.
                flags |= FLAG_PRIMITIVE_EXTENSION
                self.corrections.append(f"{klass.__name__}.{alias}")
            choice = extra.get("one_of_many")
            if choice is not None and extra.get("one_of_many_required") is True:
                flags |= FLAG_CHOICE_REQUIRED
            spec: list[Any] = [kind, flags]
            enum_values = self.closed_codes(klass, alias, extra.get("enum_values"))
            if enum_values:
                if kind != "code":
                    raise TypeError(f"{klass.__name__}.{alias}: enum_values on {kind}")
                spec += [choice, self.enum_id(list(enum_values))]
            elif choice is not None:
                spec.append(choice)
            specs[alias] = spec
        return specs

    def reachable(self, roots: list[type[Any]]) -> Iterator[type[Any]]:
        """Yield the given classes and every complex type reachable from them."""
        seen: set[str] = set()
        stack = list(reversed(roots))
        while stack:
            klass = stack.pop()
            if klass.__name__ in seen:
                continue
            if klass.__name__ in self.classes and self.classes[klass.__name__] is not klass:
                raise TypeError(f"two model classes named {klass.__name__}")
            seen.add(klass.__name__)
            self.classes[klass.__name__] = klass
            yield klass
            for base in klass.__mro__[1:]:
                if base is self.abstract_model:
                    break
                if "elements_sequence" in vars(base) and base.__name__ not in seen:
                    stack.append(base)
            for info in klass.model_fields.values():
                try:
                    item, _ = _unwrap(info.annotation)
                    _, sub = self.kind_of(item)
                except TypeError:
                    continue
                if sub is not None and sub.__name__ not in seen:
                    stack.append(sub)

    def base_of(self, klass: type[Any]) -> type[Any] | None:
        """Return the nearest ancestor model class that is also in the schema."""
        for base in klass.__mro__[1:]:
            if base is self.abstract_model:
                return None
            if "elements_sequence" in vars(base) and self.classes.get(base.__name__) is base:
                return base
        return None

    def run(self) -> dict[str, Any]:
        """Build the whole schema document."""
        resources = self.resource_classes()
        classes = list(self.reachable(resources))
        all_specs = {klass.__name__: self.element_specs(klass) for klass in classes}
        for klass in classes:
            base = self.base_of(klass)
            specs = all_specs[klass.__name__]
            entry: dict[str, Any] = {}
            if base is not None:
                inherited = all_specs[base.__name__]
                entry["base"] = base.__name__
                specs = {k: v for k, v in specs.items() if inherited.get(k) != v}
                # A subclass cannot drop an element; check the model agrees.
                lost = set(inherited) - set(all_specs[klass.__name__])
                if lost:
                    raise TypeError(f"{klass.__name__} drops {sorted(lost)} of {base.__name__}")
            entry["elements"] = specs
            self.types[klass.__name__] = entry
        from fhir.resources import R4B

        return {
            "fhirVersion": R4B.__fhir_version__,
            "source": f"fhir.resources {version('fhir.resources')} (fhir.resources.R4B)",
            "resources": [klass.__name__ for klass in resources],
            "enums": self.enums,
            "types": dict(sorted(self.types.items())),
        }


def render(document: dict[str, Any]) -> bytes:
    """Serialise the schema compactly: one line per type, for readable diffs."""
    lines = [b"{"]
    head = {k: v for k, v in document.items() if k != "types"}
    for key, value in head.items():
        lines.append(orjson.dumps(key) + b":" + orjson.dumps(value) + b",")
    lines.append(b'"types":{')
    items = list(document["types"].items())
    for index, (name, entry) in enumerate(items):
        comma = b"," if index < len(items) - 1 else b""
        lines.append(orjson.dumps(name) + b":" + orjson.dumps(entry) + comma)
    lines.append(b"}}")
    return b"\n".join(lines) + b"\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    generator = Generator()
    data = render(generator.run())
    if args.check:
        current = args.output.read_bytes() if args.output.exists() else b""
        if current != data:
            print(f"{args.output} is stale: run python tools/gen_fhir_schema.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_bytes(data)
    document = orjson.loads(data)
    print(
        f"wrote {args.output} ({len(data) / 1024:.0f} KiB): "
        f"{len(document['resources'])} resource types, {len(document['types'])} types, "
        f"{len(document['enums'])} value sets"
    )
    if generator.corrections:
        print(
            "added the _name sibling missing in fhir.resources to: "
            + ", ".join(generator.corrections)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
