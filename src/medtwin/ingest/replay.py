"""Replay recorded device data as a live feed, in time order, at a chosen speed.

:func:`recorded_messages` reads any file that ``medtwin import`` reads (CSV readings, Open
mHealth JSON, FHIR JSON/NDJSON) and turns every observation into the message a device would
have published: an Open mHealth data point is sent as it is; any other observation becomes a
FHIR Observation whose ``subject`` names the patient by identifier (so it needs no other
resource). Each message goes to ``{prefix}/{patient identifier}/replay``.

:func:`replay` paces them by the data's own timestamps divided by ``speed`` and hands each
due group to a sink: :meth:`medtwin.ingest.mqtt.LiveIngest.handle` (in-process: the same
path as a live message) or a publisher to the broker (then ``medtwin listen`` picks them up).

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "night.csv"
>>> _ = path.write_text("time,metric,value,unit\\n2024-03-01T02:00:00Z,heart_rate,52,/min\\n")
>>> recorded = recorded_messages([path], patient="ring-1")
>>> [(m.topic, round(t)) for t, m in recorded.messages]
[('devices/ring-1/replay', 1709258400)]
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from medtwin.ingest.mqtt import Message
from medtwin.record.batch import ResourceUnit
from medtwin.record.facts import Fact, Observation, value_comparator

__all__ = ["Recorded", "observation_payload", "parse_speed", "recorded_messages", "replay"]

_UCUM: Final = "http://unitsofmeasure.org"
_CHUNK: Final = 500
_FHIR_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(slots=True)
class Recorded:
    """Messages of recorded files, oldest first, and what could not be replayed."""

    messages: list[tuple[float, Message]] = field(default_factory=list)
    skipped: int = 0
    """Units that are not observations (patients, conditions ...) or have no time."""
    unreadable: int = 0
    """Records the readers quarantined (``medtwin import`` shows why)."""


def parse_speed(text: str) -> float | None:
    """``60x`` or ``60`` -> 60.0; ``max`` -> ``None`` (no pacing).

    >>> parse_speed("60x"), parse_speed("max"), parse_speed("infx")
    (60.0, None, None)
    """
    value = text.strip().lower()
    if value in ("max", "inf", "unlimited"):
        return None
    try:
        speed = float(value.removesuffix("x"))
    except ValueError:
        raise ValueError(f"speed {text!r}: expected a factor such as 60x, or max") from None
    if math.isinf(speed) and speed > 0:
        return None  # "infx": as fast as it goes, as "max"
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"speed {text!r} must be a positive number")
    return speed


def observation_payload(unit: ResourceUnit) -> dict[str, Any] | None:
    """The FHIR Observation a device would send for ``unit`` (``None``: not an observation).

    The subject is a logical reference by identifier, so the listener finds the patient
    whatever source the facts were first imported from.
    """
    main = unit.facts[0] if unit.facts else None
    if not isinstance(main, Observation) or main.subject is None:
        return None
    subject = {"identifier": {"system": main.subject.system, "value": main.subject.value}}
    digest = hashlib.blake2b(f"{main.source}|{main.source_id}".encode(), digest_size=16)
    if unit.raw_json is not None:
        resource = orjson.loads(unit.raw_json)
        if isinstance(resource, dict) and resource.get("resourceType") == "Observation":
            rid = resource.get("id")
            if not isinstance(rid, str) or not _FHIR_ID.fullmatch(rid):
                rid = digest.hexdigest()  # a bundle entry named only by its urn:oid fullUrl
            return {**resource, "id": rid, "subject": subject}
    if main.effective_start is None or main.code is None:
        return None
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": digest.hexdigest(),
        "status": main.status or "final",
        "code": {"coding": [{"system": main.code.system, "code": main.code.code}]},
        "subject": subject,
    }
    if main.category:
        obs["category"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": main.category,
                    }
                ]
            }
        ]
    if main.effective_end is not None:
        obs["effectivePeriod"] = {
            "start": main.effective_start.isoformat(),
            "end": main.effective_end.isoformat(),
        }
    else:
        obs["effectiveDateTime"] = main.effective_start.isoformat()
    if main.value_num is not None:
        quantity: dict[str, Any] = {"value": main.value_num}
        comparator = value_comparator(main)
        if comparator is not None:  # a bound ("<40": a sensor's LOW) is sent as one
            quantity["comparator"] = comparator
        if main.unit:
            quantity.update(unit=main.unit, system=_UCUM, code=main.unit)
        obs["valueQuantity"] = quantity
    elif main.value_text is not None:
        obs["valueString"] = main.value_text
    else:
        return None
    return obs


def _observations(unit: ResourceUnit) -> list[ResourceUnit]:
    """One unit per observation: a unit of a WFDB run holds many independent samples.

    Facts with no ``part_of`` are observations of their own; components (``part_of`` naming an
    observation of the unit) travel with it.
    """
    roots = [f for f in unit.facts if f.part_of is None]
    if len(roots) <= 1:
        return [unit]
    parts: dict[str, list[Fact]] = {}
    for fact in unit.facts:
        if fact.part_of is not None:
            parts.setdefault(fact.part_of, []).append(fact)
    return [
        dataclasses.replace(
            unit,
            key=root.source_id,
            facts=(root, *parts.get(root.source_id, ())),
            raw_json=unit.raw_json if root is unit.facts[0] else None,
            prepared=None,
        )
        for root in roots
    ]


def recorded_messages(
    paths: Iterable[Path],
    *,
    prefix: str = "devices",
    tz: str = "UTC",
    patient: str | None = None,
    source: str | None = None,
) -> Recorded:
    """Every observation in ``paths`` as a message, oldest first (see the module docstring)."""
    from medtwin.ingest import discover, reader_for

    files, _skipped = discover(list(paths))
    out = Recorded()
    for path in files:
        reader = reader_for(path)
        for batch in reader.read(path, source=source, tz=tz, patient=patient):
            out.unreadable += len(batch.quarantine)
            for unit in (one for whole in batch.units for one in _observations(whole)):
                main = unit.facts[0] if unit.facts else None
                if (
                    not isinstance(main, Observation)
                    or main.subject is None
                    or main.effective_start is None
                ):
                    out.skipped += 1
                    continue
                if (main.resource_type or "").startswith("omh:") and unit.content:
                    payload = unit.content.encode()
                else:
                    resource = observation_payload(unit)
                    if resource is None:
                        out.skipped += 1
                        continue
                    payload = orjson.dumps(resource)
                topic = f"{prefix}/{main.subject.value}/replay" if prefix else main.subject.value
                out.messages.append((main.effective_start.timestamp(), Message(topic, payload)))
    out.messages.sort(key=lambda pair: pair[0])
    # numbered in time order, so a quarantine entry says which reading of the replay it was
    out.messages = [
        (at, dataclasses.replace(message, mid=number))
        for number, (at, message) in enumerate(out.messages, start=1)
    ]
    return out


def replay(
    messages: Sequence[tuple[float, Message]],
    sink: Callable[[Sequence[Message]], object],
    *,
    speed: float | None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Hand ``messages`` to ``sink`` paced by their times / ``speed`` (``None``: no pacing).

    Messages due at the same moment go to the sink together (at most 500 at a time).
    Returns how many were sent.

    >>> sent = []
    >>> replay([(0.0, Message("t", b"1")), (60.0, Message("t", b"2"))], sent.append,
    ...        speed=None)
    2
    """
    if not messages:
        return 0
    first = messages[0][0]
    start = clock()
    sent = 0
    index = 0
    while index < len(messages):
        group: list[Message] = []
        now_data = first + (clock() - start) * speed if speed is not None else float("inf")
        while index < len(messages) and len(group) < _CHUNK:
            at, message = messages[index]
            if at > now_data and group:
                break
            if at > now_data:  # the next one is not due yet: wait for it
                sleep(max(0.0, (at - first) / speed - (clock() - start)) if speed else 0.0)
                now_data = at
            group.append(message)
            index += 1
        sink(group)
        sent += len(group)
    return sent
