"""Apple Health ``export.xml``: HealthKit samples into Observation facts, streamed.

The Health app exports everything it holds as one XML file (``apple_health_export/export.xml``,
often gigabytes). :class:`AppleHealthReader` streams it with expat, the parser under
:func:`xml.etree.ElementTree.iterparse`, used directly: its callbacks hand over each element's
attributes and line number and no tree is built, so there is nothing to clear and memory stays
bounded by one batch (the 1 GB benchmark in ``benchmarks/bench_apple_health.py`` measures it).

What is read
------------
``Record`` elements whose ``type`` is listed in the mapping table ``ingest/data/healthkit.csv``
(HealthKit type -> LOINC code, with the source of each mapping) become one
:class:`~medtwin.record.facts.Observation` each, in the canonical UCUM unit of its code
(:func:`medtwin.record.units.normalise`), the original value and HealthKit unit kept:

* HealthKit units are translated to UCUM (:data:`HEALTHKIT_UNITS`); ``count`` means what the
  table's ``count_unit`` says for the type (steps, kg/m2 for BMI); percentages that HealthKit
  stores as fractions (oxygen saturation, body fat: ``0.97`` with unit ``%``) are multiplied
  by 100.
* ``startDate`` / ``endDate`` carry UTC offsets (``2019-06-04 18:37:03 -0700``); a sample over
  an interval (steps, energy) keeps it (``effective_end``), an instant has no end.
  ``creationDate`` is the source's recorded time.
* A ``HKCorrelationTypeIdentifierBloodPressure`` becomes the LOINC 85354-9 panel with its
  systolic and diastolic Records as parts (``part_of`` the panel). Exports also list those two
  Records on their own; they are held back (they are few) and dropped when a correlation
  claims them, so each reading is stored once.
* ``ActivitySummary`` (one per day): ``activeEnergyBurned`` -> 41981-2 and
  ``appleExerciseTime`` -> the HealthKit exercise-time code, over that local day (read in
  ``tz``), resource type ``ActivitySummary``; stand hours and goals are not mapped.
* ``Workout`` elements (with routes and events), ``Me`` (birth date, sex: the patient is
  registered elsewhere and a device must not overwrite its demographics), ``ExportDate`` and
  clinical records are skipped; their counts are reported in one summary entry per kind.

Provenance: the source is ``--source``, else ``apple-health``; the device
(``sourceName sourceVersion`` and the ``HKDevice`` name, manufacturer, model, hardware and
software, without the memory address that changes per export) goes to ``Observation.device``;
``MetadataEntry`` pairs go to ``value_text``. The source id is ``HKRecord/<blake2b of type,
start, end, sourceName, value and unit>``: exporting again and importing again changes nothing.

What cannot be used is quarantined: a record with a bad value, date or unit, one per record,
with its line number and attribute; a type with no mapping, one summary entry per type (count,
first and last line), not one per record; a file that is not well-formed XML, from the line
where it breaks (everything before it is imported).

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "export.xml"
>>> _ = path.write_text(
...     '<HealthData><Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" '
...     'unit="count/min" startDate="2019-06-04 18:37:03 -0700" '
...     'endDate="2019-06-04 18:37:03 -0700" value="72"/></HealthData>'
... )
>>> AppleHealthReader().can_read(path)
True
>>> batch = next(AppleHealthReader().read(path, source=None, tz="UTC", patient="p1"))
>>> obs = batch.units[0].facts[0]
>>> obs.code.code, obs.value_num, obs.unit, obs.effective_start.isoformat()
('8867-4', 72.0, '/min', '2019-06-05T01:37:03+00:00')

References
----------
.. [HK] Apple, HealthKit ``HKQuantityTypeIdentifier`` documentation (units of each type;
   ``HKUnit.percent()`` values are fractions, 1.0 = 100 %).
.. [HKF] Stanford Biodesign Digital Health, HealthKitOnFHIR, "HealthKit Mapping Table"
   (MIT): the HealthKit type -> LOINC pairs of ``healthkit.csv``.
.. [PA] HL7 Physical Activity Implementation Guide: 40443-4 for average resting heart rate.
"""

from __future__ import annotations

import csv
import hashlib
import math
import xml.parsers.expat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from xml.sax.saxutils import quoteattr

from medtwin.ingest.base import Batch, Lookup, QuarantineItem, ResourceUnit
from medtwin.record.facts import LOINC, Coding, Identifier, Observation
from medtwin.record.time import get_zone
from medtwin.record.units import UnitsError, normalise

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_SOURCE",
    "DEVICE_USER_SYSTEM",
    "HEALTHKIT_SYSTEM",
    "HEALTHKIT_UNITS",
    "AppleHealthReader",
    "HealthKitType",
    "healthkit_types",
    "parse_healthkit_date",
    "read_apple_health",
]

DEFAULT_SOURCE: Final = "apple-health"
DEVICE_USER_SYSTEM: Final = "urn:medtwin:device-user"
#: Code system of HealthKit types that have no LOINC code (as HealthKitOnFHIR writes it).
HEALTHKIT_SYSTEM: Final = "http://developer.apple.com/documentation/healthkit"
#: Records per batch (one store transaction).
BATCH_SIZE: Final = 2000
_CHUNK_BYTES: Final = 1 << 20
# Export-level elements that are not data about a sample: not counted as skipped.
_METADATA: Final = frozenset({"ExportDate", "Me"})
_BP_PANEL: Final = "HKCorrelationTypeIdentifierBloodPressure"
_BP_PARTS: Final = frozenset(
    {
        "HKQuantityTypeIdentifierBloodPressureSystolic",
        "HKQuantityTypeIdentifierBloodPressureDiastolic",
    }
)

#: HealthKit unit strings (``HKUnit`` unit strings as exported) -> UCUM. ``count`` is per type
#: (the table's ``count_unit``); ``%`` of a fraction type is handled apart.
HEALTHKIT_UNITS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "count/min": "/min",
        "count/s": "/s",
        "%": "%",
        "degC": "Cel",
        "degF": "[degF]",
        "K": "K",
        "mmHg": "mm[Hg]",
        "cmAq": "cm[H2O]",
        "mg/dL": "mg/dL",
        "mmol<180.1558800000541>/L": "mmol/L",  # glucose, with its molar mass in g/mol
        "mmol/L": "mmol/L",
        "kg": "kg",
        "g": "g",
        "lb": "[lb_av]",
        "oz": "[oz_av]",
        "st": "[stone_av]",
        "cm": "cm",
        "m": "m",
        "mm": "mm",
        "km": "km",
        "in": "[in_i]",
        "ft": "[ft_i]",
        "mi": "[mi_i]",
        "ms": "ms",
        "s": "s",
        "min": "min",
        "hr": "h",
        "d": "d",
        "kcal": "kcal",
        "Cal": "kcal",  # the nutrition Calorie of HealthKit is the kilocalorie
        "cal": "cal",
        "kJ": "kJ",
        "J": "J",
        "mL/min·kg": "mL/min/kg",
        "L/min": "L/min",
        "mL": "mL",
        "L": "L",
    }
)


@dataclass(frozen=True, slots=True)
class HealthKitType:
    """One row of ``healthkit.csv``: how a HealthKit type becomes facts.

    Attributes
    ----------
    name
        The HealthKit identifier (``HKQuantityTypeIdentifierHeartRate``).
    coding
        The code of the facts (LOINC, or the HealthKit system where LOINC has none).
    category
        FHIR observation category.
    count_unit
        UCUM unit that HealthKit's ``count`` stands for with this type (``{steps}``), if any.
    fraction
        HealthKit stores this percentage as a fraction (``0.97`` for 97 %).
    source
        Where the mapping comes from.
    """

    name: str
    coding: Coding
    category: str
    count_unit: str | None
    fraction: bool
    source: str


@lru_cache(maxsize=1)
def healthkit_types() -> Mapping[str, HealthKitType]:
    """The mapping table ``ingest/data/healthkit.csv``, read once.

    Examples
    --------
    >>> healthkit_types()["HKQuantityTypeIdentifierStepCount"].coding.code
    '55423-8'
    """
    text = (resources.files("medtwin.ingest") / "data" / "healthkit.csv").read_text("utf-8")
    table: dict[str, HealthKitType] = {}
    for row in csv.DictReader(text.splitlines()):
        system = LOINC if row["system"] == "loinc" else HEALTHKIT_SYSTEM
        table[row["healthkit_type"]] = HealthKitType(
            name=row["healthkit_type"],
            coding=Coding(system, row["code"], row["display"]),
            category=row["category"],
            count_unit=row["count_unit"] or None,
            fraction=row["fraction"] == "yes",
            source=row["source"],
        )
    return MappingProxyType(table)


@lru_cache(maxsize=256)
def _offset(text: str) -> timezone:
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[3:5])
    if text[0] not in "+-" or not text[1:5].isdigit() or hours > 23 or minutes > 59:
        raise ValueError(f"bad UTC offset {text!r}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


@lru_cache(maxsize=65536)  # start and end are often equal, neighbours share creation dates
def parse_healthkit_date(text: str) -> datetime:
    """A HealthKit export date (``2019-06-04 18:37:03 -0700``) as an aware UTC datetime.

    Raises
    ------
    ValueError
        When the text is not in that form or is not a real date.

    Examples
    --------
    >>> parse_healthkit_date("2019-06-04 18:37:03 -0700").isoformat()
    '2019-06-05T01:37:03+00:00'
    """
    if len(text) != 25 or text[4] != "-" or text[10] != " " or text[19] != " ":
        raise ValueError(f"{text!r} is not 'YYYY-MM-DD hh:mm:ss +hhmm'")
    try:
        local = datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
            tzinfo=_offset(text[20:]),
        )
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    return local.astimezone(UTC)


def _device(attrs: Mapping[str, str]) -> str | None:
    """``sourceName sourceVersion; name=..., manufacturer=...`` without the HKDevice address."""
    return _device_text(
        attrs.get("sourceName", ""), attrs.get("sourceVersion", ""), attrs.get("device", "")
    )


@lru_cache(maxsize=1024)
def _device_text(name: str, version: str, text: str) -> str | None:
    parts = [" ".join(p for p in (name, version) if p)]
    if text.startswith("<<HKDevice"):
        # "<<HKDevice: 0x282a45810>, name:Apple Watch, manufacturer:Apple, ... software:4.3.1>"
        fields = text.removesuffix(">").split(">, ", 1)[-1]
        pairs = []
        for item in fields.split(", "):
            key, colon, value = item.partition(":")
            if colon:
                pairs.append(f"{key.strip()}={value.strip()}")
            elif pairs:  # a comma inside a value ("hardware:Watch2,4")
                pairs[-1] += f",{item}"
        parts.append(", ".join(pairs))
    elif text:
        parts.append(text)
    return "; ".join(p for p in parts if p) or None


@dataclass(slots=True)
class _Element:
    """A Record, Correlation or ActivitySummary being read: attributes, line, metadata."""

    tag: str
    attrs: dict[str, str]
    line: int
    metadata: list[str] = field(default_factory=list)
    children: list[_Element] = field(default_factory=list)


class _Bad(Exception):
    def __init__(self, attribute: str | None, reason: str) -> None:
        super().__init__(reason)
        self.attribute = attribute
        self.reason = reason


@dataclass(slots=True)
class _Skipped:
    count: int = 0
    first_line: int = 0
    last_line: int = 0

    def add(self, line: int) -> None:
        self.count += 1
        self.first_line = self.first_line or line
        self.last_line = line


class _State:
    """Everything one file's import keeps between expat callbacks."""

    def __init__(self, source: str, file: str, tz: str, patient: str | None) -> None:
        self.source = source
        self.file = file
        self.zone = get_zone(tz)
        self.patient = patient
        self.types = healthkit_types()
        self.batch = Batch(source=source, file=file)
        self.stack: list[_Element | None] = []  # None: an element inside a skipped one
        self.skip_depth = 0
        self.unmapped: dict[str, _Skipped] = {}
        self.pending_bp: dict[str, ResourceUnit] = {}
        self.claimed_bp: set[str] = set()


def _text(element: _Element) -> str:
    """The element as XML text (without its children), for quarantine and review."""
    attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in element.attrs.items())
    return f"<{element.tag} {attrs}/>"


def _quantity(element: _Element, kind: HealthKitType) -> dict[str, Any]:
    return _value(kind, element.attrs.get("value"), element.attrs.get("unit", ""), "value", "unit")


def _value(
    kind: HealthKitType, raw_value: str | None, hk_unit: str, value_attr: str, unit_attr: str
) -> dict[str, Any]:
    """Value and unit in the canonical unit of ``kind``'s code, with the original ones."""
    if raw_value is None:
        raise _Bad(value_attr, f"no {value_attr} attribute")
    try:
        value = float(raw_value)
    except ValueError:
        raise _Bad(value_attr, f"{raw_value!r} is not a number") from None
    if not math.isfinite(value):
        raise _Bad(value_attr, f"{raw_value!r} is not a finite number")
    if hk_unit == "count" and kind.count_unit:
        ucum = kind.count_unit
    elif hk_unit == "%" and kind.fraction:
        ucum = "1"  # a fraction: normalise turns it into % (x 100)
    else:
        ucum = HEALTHKIT_UNITS.get(hk_unit, "")
    if not ucum:
        raise _Bad(unit_attr, f"unknown HealthKit unit {hk_unit!r} for {kind.name}")
    try:
        norm = normalise(
            value, ucum, code=kind.coding.code if kind.coding.system == LOINC else None
        )
    except UnitsError as exc:
        raise _Bad(unit_attr, f"unit {hk_unit!r} cannot be used for {kind.name}: {exc}") from None
    return {
        "value_num": norm.value,
        "unit": norm.unit,
        "original_value": value,
        "original_unit": hk_unit,
    }


def _times(element: _Element) -> tuple[datetime, datetime | None, str]:
    start_text = element.attrs.get("startDate", "")
    end_text = element.attrs.get("endDate", start_text)
    try:
        start = parse_healthkit_date(start_text)
    except ValueError as exc:
        raise _Bad("startDate", str(exc)) from None
    try:
        end = parse_healthkit_date(end_text)
    except ValueError as exc:
        raise _Bad("endDate", str(exc)) from None
    if end < start:
        raise _Bad("endDate", f"endDate {end_text!r} is before startDate {start_text!r}")
    original = start_text if end_text == start_text else f"{start_text}/{end_text}"
    return start, (end if end != start else None), original


def _recorded(element: _Element) -> datetime | None:
    text = element.attrs.get("creationDate")
    if not text:
        return None
    try:
        return parse_healthkit_date(text)
    except ValueError:
        raise _Bad("creationDate", f"{text!r} is not 'YYYY-MM-DD hh:mm:ss +hhmm'") from None


def _key(element: _Element) -> str:
    a = element.attrs
    parts = [a.get(name, "") for name in ("type", "startDate", "endDate", "sourceName")]
    parts += [a.get("value", ""), a.get("unit", "")]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()


def _observation(
    state: _State, element: _Element, kind: HealthKitType, source_id: str, **extra: Any
) -> Observation:
    start, end, original = _times(element)
    return Observation(
        source=state.source,
        source_id=source_id,
        subject=Identifier(DEVICE_USER_SYSTEM, state.patient or ""),
        code=kind.coding,
        status="final",
        effective_start=start,
        effective_end=end,
        source_recorded_at=_recorded(element),
        original_time=original,
        resource_type=element.attrs.get("type", element.tag),
        category=kind.category,
        value_text="; ".join(element.metadata) or None,
        device=_device(element.attrs),
        **extra,
    )


def _quarantine(state: _State, element: _Element, problem: _Bad) -> None:
    state.batch.quarantine.append(
        QuarantineItem(
            source=state.source,
            reason=problem.reason,
            content=_text(element),
            file=state.file,
            location=f"line {element.line}",
            resource_type=element.attrs.get("type", element.tag),
            field=problem.attribute,
        )
    )


def _record(state: _State, element: _Element) -> None:
    kind = state.types.get(element.attrs.get("type", ""))
    if kind is None:
        state.unmapped.setdefault(element.attrs.get("type", "(no type)"), _Skipped()).add(
            element.line
        )
        return
    state.batch.resources_read += 1
    key = _key(element)
    try:
        fact = _observation(state, element, kind, f"HKRecord/{key}", **_quantity(element, kind))
    except _Bad as problem:
        _quarantine(state, element, problem)
        return
    unit = ResourceUnit(
        key=fact.source_id,
        facts=(fact,),
        file=state.file,
        location=f"line {element.line}",
        content=_text(element),
    )
    if kind.name in _BP_PARTS:
        # held until the end: a blood-pressure correlation may claim it
        if key not in state.claimed_bp:
            state.pending_bp[key] = unit
        return
    state.batch.units.append(unit)


def _correlation(state: _State, element: _Element) -> None:
    panel_kind = state.types.get(element.attrs.get("type", ""))
    if panel_kind is None or element.attrs.get("type") != _BP_PANEL:
        state.unmapped.setdefault(element.attrs.get("type", "(no type)"), _Skipped()).add(
            element.line
        )
        return
    state.batch.resources_read += 1
    parts = [c for c in element.children if c.attrs.get("type") in _BP_PARTS]
    panel_id = (
        "HKCorrelation/"
        + hashlib.blake2b(
            "|".join(_key(c) for c in sorted(parts, key=lambda c: c.attrs.get("type", ""))).encode()
            + element.attrs.get("startDate", "").encode(),
            digest_size=12,
        ).hexdigest()
    )
    try:
        if len(parts) != 2 or {c.attrs.get("type") for c in parts} != _BP_PARTS:
            raise _Bad(
                "type", "a blood-pressure correlation needs one systolic and one diastolic Record"
            )
        facts = [_observation(state, element, panel_kind, panel_id)]
        for child in sorted(parts, key=lambda c: c.attrs.get("type", ""), reverse=True):
            kind = state.types[child.attrs["type"]]
            key = _key(child)
            facts.append(
                _observation(
                    state,
                    child,
                    kind,
                    f"HKRecord/{key}",
                    part_of=panel_id,
                    **_quantity(child, kind),
                )
            )
    except _Bad as problem:
        _quarantine(state, element, problem)
        return
    for child in parts:
        key = _key(child)
        if state.pending_bp.pop(key, None) is None:
            state.claimed_bp.add(key)  # its standalone copy may still come
    state.batch.units.append(
        ResourceUnit(
            key=panel_id,
            facts=tuple(facts),
            file=state.file,
            location=f"line {element.line}",
            content=_text(element) + "".join(_text(c) for c in parts),
        )
    )


_SUMMARY_FIELDS: Final = (
    ("activeEnergyBurned", "activeEnergyBurnedUnit", "HKQuantityTypeIdentifierActiveEnergyBurned"),
    ("appleExerciseTime", "", "HKQuantityTypeIdentifierAppleExerciseTime"),
)


def _activity_summary(state: _State, element: _Element) -> None:
    state.batch.resources_read += 1
    text = element.attrs.get("dateComponents", "")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        _quarantine(state, element, _Bad("dateComponents", f"{text!r} is not a date YYYY-MM-DD"))
        return
    start = datetime.combine(day, time(), tzinfo=state.zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=state.zone).astimezone(UTC)
    units: list[ResourceUnit] = []
    for value_attr, unit_attr, type_name in _SUMMARY_FIELDS:
        if value_attr not in element.attrs:
            continue
        kind = state.types[type_name]
        # exercise time is in minutes, with no unit attribute
        hk_unit = element.attrs.get(unit_attr, "") if unit_attr else "min"
        try:
            values = _value(
                kind, element.attrs[value_attr], hk_unit, value_attr, unit_attr or value_attr
            )
        except _Bad as problem:
            _quarantine(state, element, problem)
            return
        source_id = f"ActivitySummary/{day.isoformat()}#{kind.coding.code}"
        goal = element.attrs.get(f"{value_attr}Goal")
        fact = Observation(
            source=state.source,
            source_id=source_id,
            subject=Identifier(DEVICE_USER_SYSTEM, state.patient or ""),
            code=kind.coding,
            status="final",
            effective_start=start,
            effective_end=end,
            original_time=text,
            resource_type="ActivitySummary",
            category=kind.category,
            value_text=f"daily summary; goal={goal}" if goal else "daily summary",
            **values,
        )
        units.append(
            ResourceUnit(
                key=source_id,
                facts=(fact,),
                file=state.file,
                location=f"line {element.line}",
                content=_text(element),
            )
        )
    state.batch.units.extend(units)


class _Parser:
    """expat callbacks that turn elements into units in ``state.batch``."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.parser = xml.parsers.expat.ParserCreate()
        self.parser.buffer_text = True
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        state = self.state
        stack = state.stack
        depth = len(stack)
        parent = stack[-1] if stack else None
        element: _Element | None = None
        if state.skip_depth:
            state.skip_depth += 1
        elif tag == "MetadataEntry":
            if parent is not None:
                parent.metadata.append(f"{attrs.get('key', '')}={attrs.get('value', '')}")
        elif tag == "Record" or tag == "Correlation" or tag == "ActivitySummary":
            element = _Element(tag, attrs, self.parser.CurrentLineNumber)
        elif depth >= 1 and tag not in ("HealthData",):
            # Workout, Me, ExportDate, ClinicalRecord ...: counted, their insides skipped
            if depth == 1 and tag not in _METADATA:
                state.unmapped.setdefault(tag, _Skipped()).add(self.parser.CurrentLineNumber)
            state.skip_depth = 1
        stack.append(element)

    def end(self, tag: str) -> None:
        state = self.state
        element = state.stack.pop()
        if state.skip_depth:
            state.skip_depth -= 1
            return
        if element is None:
            return
        parent = state.stack[-1] if state.stack else None
        if parent is not None and parent.tag == "Correlation":
            parent.children.append(element)
        elif tag == "Record":
            _record(state, element)
        elif tag == "Correlation":
            _correlation(state, element)
        elif tag == "ActivitySummary":
            _activity_summary(state, element)


def read_apple_health(
    path: Path,
    *,
    source: str | None = None,
    tz: str = "UTC",
    patient: str | None = None,
) -> Iterator[Batch]:
    """Yield batches of facts from an Apple Health ``export.xml`` (see the module docstring).

    Parameters
    ----------
    path
        The export file.
    source
        Source name of the facts (default ``apple-health``).
    tz
        Zone of the ``ActivitySummary`` days (the export's dates carry their own offsets).
    patient
        Device-user identifier (system :data:`DEVICE_USER_SYSTEM`) of the person; required,
        as the export does not name one.

    Yields
    ------
    Batch
        At most :data:`BATCH_SIZE` records each; the last one carries the blood-pressure
        Records no correlation claimed and the summary of what was not mapped.
    """
    name = source or DEFAULT_SOURCE
    file = str(path)
    if not patient:
        yield Batch(
            source=name,
            file=file,
            resources_read=1,
            quarantine=[
                QuarantineItem(
                    source=name,
                    reason="no patient: an Apple Health export does not name its person; "
                    "pass --patient (the device-user id)",
                    content=file,
                    file=file,
                    location="file",
                    field="patient",
                )
            ],
        )
        return
    state = _State(name, file, tz, patient)
    parser = _Parser(state)
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                parser.parser.Parse(chunk, False)
                if len(state.batch.units) + len(state.batch.quarantine) >= BATCH_SIZE:
                    yield state.batch
                    state.batch = Batch(source=name, file=file)
            parser.parser.Parse(b"", True)
    except xml.parsers.expat.ExpatError as exc:
        state.batch.quarantine.append(
            QuarantineItem(
                source=name,
                reason=f"not well-formed XML: {xml.parsers.expat.ErrorString(exc.code)} at line "
                f"{exc.lineno}, column {exc.offset}; the records before it were imported",
                content=f"{file}: {exc}",
                file=file,
                location=f"line {exc.lineno}",
                resource_type="HealthData",
            )
        )
    state.batch.units.extend(state.pending_bp.values())
    for what, seen in sorted(state.unmapped.items()):
        why = (
            "no mapping in medtwin/ingest/data/healthkit.csv"
            if what.startswith("HK")
            else f"medtwin does not map {what} elements"
        )
        state.batch.quarantine.append(
            QuarantineItem(
                source=name,
                reason=f"{seen.count} {what} element(s) not imported: {why} (one summary "
                f"entry for all of them; lines {seen.first_line}-{seen.last_line})",
                content=f"{what}: {seen.count} (lines {seen.first_line}-{seen.last_line})",
                file=file,
                location=f"lines {seen.first_line}-{seen.last_line}",
                resource_type=what,
                field="type",
            )
        )
    yield state.batch


class AppleHealthReader:
    """Reads Apple Health ``export.xml`` files (by name, or an XML file with ``<HealthData``)."""

    name = "apple-health"

    def can_read(self, path: Path) -> bool:
        """An ``.xml`` file whose first 4 KiB open a ``HealthData`` element."""
        if path.suffix.lower() != ".xml" or not path.is_file():
            return False
        try:
            with path.open("rb") as handle:
                head = handle.read(4096)
        except OSError:
            return False
        return b"<HealthData" in head or b"<!DOCTYPE HealthData" in head

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Lookup | None = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """Stream ``path`` (see :func:`read_apple_health`)."""
        yield from read_apple_health(path, source=source, tz=tz, patient=patient)
