"""The one event format for everything that happens to a patient in a simulation.

An event is a JSON object with a ``type`` and fields whose names carry their unit::

    {"type": "meal", "t_min": 60, "carbs_g": 50}
    {"type": "bolus", "t_min": 60, "insulin_u": 5}
    {"type": "basal", "u_per_h": 1.2}                 (no time: from 0)
    {"type": "infusion", "drug": "vancomycin", "t_h": 0, "amount_mg": 1000,
     "duration_h": 1, "every_h": 12, "count": 10}
    {"type": "blood_loss", "t_min": 30, "volume_ml": 500, "duration_min": 20}
    {"type": "diet", "t_d": 0, "intake_change_kcal_per_day": -500}

Times and durations come as ``t_min``, ``t_h`` or ``t_d`` (``duration_min``/``duration_h``,
``every_min``/``every_h``, ...), rates as ``u_per_h`` or ``u_per_min``; the parser normalises them
to minutes (``Event.t_min``, ``duration_min``, ``every_min``, ``u_per_min``). A scenario is
``{"events": [...]}`` (a bare list is read the same). Unknown types or fields, a field given in
two units, negative amounts and times outside the simulated range are refused with
:class:`ScenarioError`, naming the event's index and the field.

>>> s = parse_scenario({"events": [{"type": "meal", "t_h": 1, "carbs_g": 50}]}, t_end_min=1440)
>>> s.events[0].t_min, s.events[0]["carbs_g"]
(60.0, 50.0)
>>> parse_scenario([{"type": "meal", "t_min": 60, "carbs_g": -5}])
Traceback (most recent call last):
...
medtwin.model.events.ScenarioError: event 0 (meal): field 'carbs_g' must be >= 0, got -5
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from medtwin.model.base import ModelError

__all__ = [
    "EVENT_TYPES",
    "Event",
    "EventSpec",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
]


class ScenarioError(ModelError):
    """A scenario or one of its events is not valid; the message names the event and field."""


_TIME_UNITS = {"min": 1.0, "h": 60.0, "d": 1440.0}


@dataclass(frozen=True)
class EventSpec:
    """What an event type takes.

    ``times`` are the time-like fields (given as ``NAME_min`` or ``NAME_h``), with whether
    each is required (``t`` may be optional: then it defaults to 0); ``amounts`` the
    non-negative numbers (unit in the name); ``rates`` per-time amounts (``NAME_per_h`` or
    ``NAME_per_min``); ``signed`` finite numbers that may be negative (changes, unit or
    ``_pct`` in the name); ``flags`` true/false fields; ``texts`` string fields; ``counts``
    positive integers.
    """

    times: Mapping[str, bool]
    amounts: Mapping[str, bool] = field(default_factory=dict)
    rates: Mapping[str, bool] = field(default_factory=dict)
    signed: Mapping[str, bool] = field(default_factory=dict)
    flags: Mapping[str, bool] = field(default_factory=dict)
    texts: Mapping[str, bool] = field(default_factory=dict)
    counts: Mapping[str, bool] = field(default_factory=dict)
    description: str = ""


EVENT_TYPES: dict[str, EventSpec] = {
    "meal": EventSpec(
        times={"t": True}, amounts={"carbs_g": True}, description="carbohydrate eaten at t"
    ),
    "bolus": EventSpec(
        times={"t": True}, amounts={"insulin_u": True}, description="insulin bolus given at t"
    ),
    "basal": EventSpec(
        times={"t": False},
        rates={"u": False},
        description="basal insulin rate from t (default 0) until the next basal event; "
        "a model may read a missing rate as the patient's own steady-state basal",
    ),
    "infusion": EventSpec(
        times={"t": True, "duration": True, "every": False},
        amounts={"amount_mg": True},
        texts={"drug": True},
        counts={"count": False},
        flags={"steady_state": False},
        description="intravenous drug infusion (or bolus with duration 0), optionally repeated; "
        "steady_state: the regimen has been given long enough to be at steady state at t",
    ),
    "oral": EventSpec(
        times={"t": True, "every": False},
        amounts={"amount_mg": True},
        texts={"drug": True},
        counts={"count": False},
        flags={"steady_state": False},
        description="oral dose (absorption as the model describes it), optionally repeated; "
        "steady_state as for infusion",
    ),
    "blood_loss": EventSpec(
        times={"t": True, "duration": True},
        amounts={"volume_ml": True},
        description="blood lost over a duration",
    ),
    "fluid_bolus": EventSpec(
        times={"t": True, "duration": True},
        amounts={"volume_ml": True},
        texts={"fluid": False},
        description="intravenous fluid given over a duration (fluid: crystalloid, colloid, "
        "blood; default crystalloid)",
    ),
    "exercise": EventSpec(
        times={"t": True, "duration": True},
        amounts={"intensity_pct_vo2max": True},
        description="a bout of exercise at a fraction of the patient's maximal oxygen uptake",
    ),
    "diet": EventSpec(
        times={"t": False},
        amounts={"intake_kcal_per_day": False, "carbs_pct": False, "sodium_mg_per_day": False},
        signed={"intake_change_kcal_per_day": False},
        description="energy intake from t (default 0) on: an absolute intake or a change from "
        "the patient's baseline intake (give one), with optional diet composition",
    ),
    "activity": EventSpec(
        times={"t": False},
        amounts={"physical_activity_level": False},
        signed={"activity_change_pct": False},
        description="habitual physical activity from t on: a physical activity level (total / "
        "resting energy expenditure) or a percent change of activity energy expenditure",
    ),
    "weight": EventSpec(
        times={"t": False},
        amounts={"weight_kg": True},
        description="body weight from t on (e.g. after weight loss): models that scale with "
        "body weight use it",
    ),
    "drug_effect": EventSpec(
        times={"t": True, "duration": False},
        texts={"target": True, "drug": False},
        signed={"change_pct": True},
        description="a drug's effect on a model quantity (target: e.g. 'svr', "
        "'contractility', 'heart_rate', 'insulin_sensitivity') as a percent change from t, "
        "for a duration (default: to the end)",
    ),
}
"""Every event type medtwin knows; a model declares which of them it takes."""


@dataclass(frozen=True)
class Event:
    """One normalised event: its ``type``, start ``t_min`` and its other fields (minutes).

    Fields are read with ``event["carbs_g"]``; ``index`` is its position in the scenario.
    """

    type: str
    t_min: float
    fields: Mapping[str, float | str]
    index: int = 0

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        """A field, or ``default`` when the event does not have it."""
        return self.fields.get(name, default)

    def doses(self) -> Iterator[tuple[float, float]]:
        """``(start_min, duration_min)`` of each repeat of the event (``every``/``count``).

        >>> ev = parse_scenario([{"type": "infusion", "drug": "x", "t_h": 0, "amount_mg": 1,
        ...     "duration_h": 1, "every_h": 12, "count": 2}]).events[0]
        >>> list(ev.doses())
        [(0.0, 60.0), (720.0, 60.0)]
        """
        count = int(self.fields.get("count", 1))
        every = float(self.fields.get("every_min", 0.0))
        duration = float(self.fields.get("duration_min", 0.0))
        for k in range(count):
            yield self.t_min + k * every, duration

    def to_dict(self) -> dict[str, Any]:
        """The event in the normalised JSON form (minutes)."""
        return {"type": self.type, "t_min": self.t_min, **self.fields}


@dataclass(frozen=True)
class Scenario:
    """A list of events, sorted by time (stable for equal times)."""

    events: tuple[Event, ...]

    def of_type(self, kind: str) -> list[Event]:
        """The events of one type, in time order."""
        return [e for e in self.events if e.type == kind]

    def to_dict(self) -> dict[str, Any]:
        """The scenario in the normalised JSON form."""
        return {"events": [e.to_dict() for e in sorted(self.events, key=lambda e: e.index)]}


def _number(i: int, kind: str, name: str, value: Any, *, signed: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"event {i} ({kind}): field {name!r} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ScenarioError(f"event {i} ({kind}): field {name!r} must be finite, got {value!r}")
    if x < 0 and not signed:
        raise ScenarioError(f"event {i} ({kind}): field {name!r} must be >= 0, got {value!r}")
    return x


def _flag(i: int, kind: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(
            f"event {i} ({kind}): field {name!r} must be true or false, got {value!r}"
        )
    return value


def _text(i: int, kind: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"event {i} ({kind}): field {name!r} must be a non-empty text")
    return value.strip()


def _count(i: int, kind: str, name: str, value: Any) -> float:
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        raise ScenarioError(
            f"event {i} ({kind}): field {name!r} must be a whole number >= 1, got {value!r}"
        )
    return float(value)


def _one_unit(
    i: int, kind: str, raw: Mapping[str, Any], stem: str, units: Mapping[str, float]
) -> tuple[str, float] | None:
    given = [f"{stem}{suffix}" for suffix in units if f"{stem}{suffix}" in raw]
    if len(given) > 1:
        raise ScenarioError(
            f"event {i} ({kind}): give only one of {', '.join(given)} (same quantity, two units)"
        )
    if not given:
        return None
    name = given[0]
    value = _number(i, kind, name, raw[name])
    return name, value * units[name[len(stem) :]]


def _parse_event(i: int, raw: Any, t_end_min: float | None) -> Event:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"event {i}: must be a JSON object, got {raw!r}")
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        raise ScenarioError(
            f"event {i}: unknown type {kind!r} (known: {', '.join(sorted(EVENT_TYPES))})"
        )
    spec = EVENT_TYPES[kind]
    used = {"type"}
    fields: dict[str, float | str] = {}
    t_min = 0.0
    time_suffixes = {f"_{u}": f for u, f in _TIME_UNITS.items()}
    for stem, required in spec.times.items():
        got = _one_unit(i, kind, raw, stem, time_suffixes)
        if got is None:
            if required:
                raise ScenarioError(
                    f"event {i} ({kind}): missing field '{stem}_min' (or '{stem}_h', '{stem}_d')"
                )
            continue
        used.add(got[0])
        if stem == "t":
            t_min = got[1]
            if t_end_min is not None and t_min > t_end_min:
                raise ScenarioError(
                    f"event {i} ({kind}): field {got[0]!r} = {raw[got[0]]!r} is after the end "
                    f"of the simulation ({t_end_min:g} min)"
                )
        else:
            fields[f"{stem}_min"] = got[1]
    rate_suffixes = {f"_per_{u}": 1.0 / f for u, f in _TIME_UNITS.items()}
    for stem, required in spec.rates.items():
        got = _one_unit(i, kind, raw, stem, rate_suffixes)
        if got is None:
            if required:
                raise ScenarioError(
                    f"event {i} ({kind}): missing field '{stem}_per_h' (or '{stem}_per_min', "
                    f"'{stem}_per_d')"
                )
            continue
        used.add(got[0])
        fields[f"{stem}_per_min"] = got[1]
    readers: tuple[tuple[Mapping[str, bool], Callable[[str, Any], float | str]], ...] = (
        (spec.amounts, lambda name, v: _number(i, kind, name, v)),
        (spec.signed, lambda name, v: _number(i, kind, name, v, signed=True)),
        (spec.flags, lambda name, v: _flag(i, kind, name, v)),
        (spec.texts, lambda name, v: _text(i, kind, name, v)),
        (spec.counts, lambda name, v: _count(i, kind, name, v)),
    )
    for names, read in readers:
        for name, required in names.items():
            if name not in raw:
                if required:
                    raise ScenarioError(f"event {i} ({kind}): missing field {name!r}")
                continue
            used.add(name)
            fields[name] = read(name, raw[name])
    if kind in {"diet", "activity"}:
        given = [n for n in (*spec.amounts, *spec.signed) if n in fields]
        main = [n for n in given if n not in {"carbs_pct", "sodium_mg_per_day"}]
        if len(main) != 1:
            raise ScenarioError(
                f"event {i} ({kind}): give exactly one of "
                f"{', '.join(n for n in (*spec.amounts, *spec.signed) if n not in {'carbs_pct', 'sodium_mg_per_day'})}"
            )
    if "carbs_pct" in fields and float(fields["carbs_pct"]) > 100:
        raise ScenarioError(f"event {i} ({kind}): field 'carbs_pct' must be <= 100")
    if "count" in fields and fields["count"] != 1.0 and "every_min" not in fields:
        raise ScenarioError(f"event {i} ({kind}): 'count' needs 'every_min' or 'every_h'")
    unknown = sorted(set(raw) - used)
    if unknown:
        raise ScenarioError(
            f"event {i} ({kind}): unknown field {unknown[0]!r} "
            f"(a {kind} event takes: {', '.join(_field_names(spec))})"
        )
    return Event(type=str(kind), t_min=t_min, fields=fields, index=i)


def _field_names(spec: EventSpec) -> list[str]:
    names = [f"{s}_min|{s}_h|{s}_d" for s in spec.times]
    names += [f"{s}_per_h|{s}_per_min|{s}_per_d" for s in spec.rates]
    return [
        *names,
        *spec.amounts,
        *spec.signed,
        *spec.flags,
        *spec.texts,
        *spec.counts,
    ]


def parse_scenario(data: Any, *, t_end_min: float | None = None) -> Scenario:
    """Validate and normalise a scenario (``{"events": [...]}`` or a list of events).

    ``t_end_min``, when given, is the end of the simulated range: an event starting after it
    is refused.
    """
    if isinstance(data, Mapping):
        extra = sorted(set(data) - {"events"})
        if extra:
            raise ScenarioError(f"scenario: unknown key {extra[0]!r} (a scenario has 'events')")
        if "events" not in data:
            raise ScenarioError("scenario: missing key 'events'")
        data = data["events"]
    if isinstance(data, str | bytes) or not isinstance(data, Sequence):
        raise ScenarioError("scenario: 'events' must be a list of event objects")
    events = [_parse_event(i, raw, t_end_min) for i, raw in enumerate(data)]
    return Scenario(events=tuple(sorted(events, key=lambda e: (e.t_min, e.index))))


def load_scenario(path: str | Path, *, t_end_min: float | None = None) -> Scenario:
    """Read a scenario JSON file (``-`` for standard input) and validate it."""
    import sys

    try:
        text = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError(f"scenario {path}: cannot read ({exc.strerror})") from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ScenarioError(f"scenario {path}: not valid JSON ({exc})") from None
    try:
        return parse_scenario(data, t_end_min=t_end_min)
    except ScenarioError as exc:
        raise ScenarioError(f"scenario {path}: {exc}") from None
