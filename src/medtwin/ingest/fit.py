"""Garmin FIT files: heart rate, steps, weight, SpO2 and respiration into Observation facts.

FIT (Flexible and Interoperable Data Transfer) is the binary format of Garmin and many other
wearables: activity files (runs, rides: a ``record`` message per second or so), all-day
monitoring files (``monitoring`` messages) and weight-scale files. :class:`FitReader` decodes
them with ``fitdecode`` (pinned in ``pyproject.toml``; it checks the file's CRC) and maps:

==================== =============================== =========================== =============
message              field                           LOINC                       unit
==================== =============================== =========================== =============
record (20)          heart_rate                      8867-4 Heart rate           ``/min``
record (20)          (enhanced_)respiration_rate     9279-1 Respiratory rate     ``/min``
monitoring (55)      heart_rate                      8867-4 Heart rate           ``/min``
monitoring (55)      cycles -> steps (walking,       55423-8 Number of steps     ``{steps}``
                     running), per interval
monitoring_hr_data   resting_heart_rate              40443-4 Heart rate --resting ``/min``
(211)
weight_scale (30)    weight                          29463-7 Body weight         ``kg``
weight_scale (30)    percent_fat                     41982-0 Body fat            ``%``
weight_scale (30)    bmi                             39156-5 BMI                 ``kg/m2``
spo2_data (269)      reading_spo2                    59408-5 SpO2                ``%``
respiration_rate     respiration_rate                9279-1 Respiratory rate     ``/min``
(297)
==================== =============================== =========================== =============

Times. FIT ``date_time`` values are seconds since 1989-12-31 00:00:00 UTC (FIT epoch,
631065600 s after the Unix epoch). Monitoring messages often carry only ``timestamp_16``, the
low 16 bits of that count; the full time is rebuilt from the last full ``timestamp`` seen
(any message) as ``last + ((timestamp_16 - (last & 0xFFFF)) & 0xFFFF)`` (FIT SDK, Profile
``monitoring.timestamp_16`` and the SDK's MonitoringReader), and becomes the new reference.

Steps. ``monitoring.cycles`` is *accumulated per activity type* ("Accumulated cycles.
Maintained by MonitoringReader for each activity_type", FIT SDK Profile.xlsx, message 55,
field 3); for walking and running its ``steps`` sub-field is the raw value (``cycles`` has
scale 2: one cycle is two steps). The count of an interval is the difference from the previous
value of the same activity type, over the window from that previous message (or the
``monitoring_info`` that opens the period, where the counts start at 0) to this one: the steps
certainly happened in that window, the file does not say when inside it. A value lower than
the previous one is a reset (the count restarts; the new value is the interval's count).
Other activity types' cycles (strokes, pedal turns) are not steps and are not stored.

Provenance. ``Observation.device`` is ``manufacturer product; serial=...; software=...``
from ``file_id`` and ``file_creator``. The source id is ``FIT/<blake2b of the device
(manufacturer and product numbers, serial number; without a serial, the file's creation time),
message, code and times>``: re-importing the file, or another file holding the same readings of the
same device, changes nothing. The subject is ``--patient`` (a FIT file names no person).

Bad input. A corrupt or truncated file (bad header, CRC mismatch, unexpected end) keeps every
message decoded before the damage and adds one quarantine entry naming the byte offset and
the decoder's message. Heart rates of 0 (no sensor contact) and weights at the FIT
"calculating" sentinel are not stored; they are counted in one summary entry per file.

Examples
--------
>>> FitReader().can_read(Path("run.fit"))
True

References
----------
.. [FIT] Garmin, FIT SDK: Flexible and Interoperable Data Transfer protocol and Profile.xlsx
   (messages record, monitoring, monitoring_info, monitoring_hr_data, weight_scale, spo2_data,
   respiration_rate; the date_time type and its epoch; ``timestamp_16``),
   https://developer.garmin.com/fit/.
.. [FD] fitdecode 0.11.0, https://github.com/polyvertex/fitdecode (MIT).
.. [LOINC] 8867-4, 9279-1, 40443-4, 55423-8, 29463-7, 41982-0, 39156-5, 59408-5
   (https://loinc.org); the wearable pairs as in HealthKitOnFHIR's mapping table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from medtwin.ingest.base import Batch, Lookup, QuarantineItem, ResourceUnit
from medtwin.record.facts import LOINC, Coding, Identifier, Observation
from medtwin.record.units import normalise

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_SOURCE",
    "DEVICE_USER_SYSTEM",
    "FIT_EPOCH_UNIX_S",
    "FitReader",
    "expand_timestamp_16",
    "fit_time",
    "read_fit",
]

DEFAULT_SOURCE: Final = "fit"
DEVICE_USER_SYSTEM: Final = "urn:medtwin:device-user"
#: FIT ``date_time`` zero, 1989-12-31T00:00:00Z, in Unix seconds.
FIT_EPOCH_UNIX_S: Final = 631065600
BATCH_SIZE: Final = 2000
# FIT weight (uint16, scale 100) 0xFFFE means "calculating": 655.34 kg after scaling.
_WEIGHT_CALCULATING_KG: Final = 655.34
_STEP_ACTIVITIES: Final = frozenset({"walking", "running"})

_HEART_RATE = Coding(LOINC, "8867-4", "Heart rate")
_RESTING_HR = Coding(LOINC, "40443-4", "Heart rate --resting")
_RESPIRATION = Coding(LOINC, "9279-1", "Respiratory rate")
_STEPS = Coding(LOINC, "55423-8", "Number of steps in unspecified time Pedometer")
_WEIGHT = Coding(LOINC, "29463-7", "Body Weight")
_FAT = Coding(LOINC, "41982-0", "Percentage of body fat Measured")
_BMI = Coding(LOINC, "39156-5", "Body mass index (BMI) [Ratio]")
_SPO2 = Coding(LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")

# message -> ((field, code, UCUM unit of the FIT value, category), ...)
_SIMPLE: Final[dict[str, tuple[tuple[str, Coding, str, str], ...]]] = {
    "record": (
        ("heart_rate", _HEART_RATE, "/min", "vital-signs"),
        ("enhanced_respiration_rate", _RESPIRATION, "/min", "vital-signs"),
        ("respiration_rate", _RESPIRATION, "/min", "vital-signs"),
    ),
    "monitoring": (("heart_rate", _HEART_RATE, "/min", "vital-signs"),),
    "monitoring_hr_data": (("resting_heart_rate", _RESTING_HR, "/min", "vital-signs"),),
    "weight_scale": (
        ("weight", _WEIGHT, "kg", "vital-signs"),
        ("percent_fat", _FAT, "%", "vital-signs"),
        ("bmi", _BMI, "kg/m2", "vital-signs"),
    ),
    "spo2_data": (("reading_spo2", _SPO2, "%", "vital-signs"),),
    "respiration_rate": (("respiration_rate", _RESPIRATION, "/min", "vital-signs"),),
}


def fit_time(seconds: int) -> datetime:
    """A FIT ``date_time`` (seconds since 1989-12-31 UTC) as an aware UTC datetime.

    Examples
    --------
    >>> fit_time(0).isoformat()
    '1989-12-31T00:00:00+00:00'
    """
    return datetime.fromtimestamp(FIT_EPOCH_UNIX_S + seconds, tz=UTC)


def expand_timestamp_16(last: int, timestamp_16: int) -> int:
    """The full FIT time of a ``timestamp_16`` given the last full time ``last``.

    FIT SDK: ``last + ((timestamp_16 - (last & 0xFFFF)) & 0xFFFF)``; the 16-bit counter
    rolls over every 65,536 s (about 18 h), so messages must come at least that often.

    Examples
    --------
    >>> expand_timestamp_16(0x0001FFF0, 0x0005)  # rolled over: 0x00020005
    131077
    """
    return last + ((timestamp_16 - (last & 0xFFFF)) & 0xFFFF)


@dataclass(slots=True)
class _Device:
    manufacturer: str = ""
    product: str = ""
    serial: str = ""
    software: str = ""
    created: str = ""
    numbers: str = ""  # raw manufacturer/product numbers: names change with profile versions

    def key(self) -> str:
        if self.serial:
            return f"{self.numbers}/{self.serial}"
        return f"{self.numbers}/created:{self.created}"

    def text(self) -> str | None:
        parts = [" ".join(p for p in (self.manufacturer, self.product) if p)]
        if self.serial:
            parts.append(f"serial={self.serial}")
        if self.software:
            parts.append(f"software={self.software}")
        return "; ".join(p for p in parts if p) or None


@dataclass(slots=True)
class _Ignored:
    count: int = 0
    first: int = 0
    last: int = 0

    def add(self, index: int) -> None:
        self.count += 1
        self.first = self.first or index
        self.last = index


@dataclass(slots=True)
class _State:
    source: str
    file: str
    patient: str
    device: _Device = field(default_factory=_Device)
    last_time: int | None = None  # FIT seconds of the last full timestamp
    period_start: int | None = None  # monitoring_info timestamp
    cycles: dict[str, tuple[int, int]] = field(default_factory=dict)  # type -> (raw, time)
    ignored: dict[str, _Ignored] = field(default_factory=dict)


def _field(frame: Any, name: str) -> tuple[Any, Any]:
    """``(value, raw value)`` of a field, or ``(None, None)``."""
    for item in frame.fields:
        if item.name == name:
            return item.value, item.raw_value
    return None, None


def _observation(
    state: _State,
    index: int,
    message: str,
    code: Coding,
    category: str,
    value: float,
    unit: str,
    start: int,
    end: int | None = None,
) -> ResourceUnit:
    norm = normalise(float(value), unit, code=code.code)
    start_at = fit_time(start)
    end_at = fit_time(end) if end is not None and end != start else None
    key = f"{state.device.key()}|{message}|{code.code}|{start}|{end if end is not None else ''}"
    source_id = "FIT/" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    fact = Observation(
        source=state.source,
        source_id=source_id,
        subject=Identifier(DEVICE_USER_SYSTEM, state.patient),
        code=code,
        status="final",
        effective_start=start_at,
        effective_end=end_at,
        original_time=str(start) if end_at is None else f"{start}/{end}",
        resource_type=f"FIT:{message}",
        category=category,
        value_num=norm.value,
        unit=norm.unit,
        original_value=float(value),
        original_unit=unit,
        device=state.device.text(),
    )
    return ResourceUnit(
        key=source_id,
        facts=(fact,),
        file=state.file,
        location=f"message {index}",
        content=f"{message} #{index}: {code.code}={value} {unit} at FIT time {start}"
        + (f"-{end}" if end_at is not None else ""),
    )


def _time_of(state: _State, frame: Any) -> int | None:
    """The message's full FIT time (``timestamp``, else an expanded ``timestamp_16``)."""
    _, raw = _field(frame, "timestamp")
    if isinstance(raw, int):
        state.last_time = raw
        return raw
    _, raw16 = _field(frame, "timestamp_16")
    if isinstance(raw16, int) and state.last_time is not None:
        state.last_time = expand_timestamp_16(state.last_time, raw16)
        return state.last_time
    return None


def _message(state: _State, index: int, frame: Any, units: list[ResourceUnit]) -> None:
    name = frame.name
    if name == "file_id":
        device = state.device
        manufacturer, manufacturer_number = _field(frame, "manufacturer")
        device.manufacturer = str(manufacturer or "")
        product, product_number = _field(frame, "garmin_product")
        if product is None:
            product, product_number = _field(frame, "product")
        device.product = str(product or "")
        device.numbers = f"{manufacturer_number}/{product_number}"
        device.serial = str(_field(frame, "serial_number")[0] or "")
        created = _field(frame, "time_created")[1]
        device.created = str(created) if created is not None else ""
        return
    if name == "file_creator":
        software = _field(frame, "software_version")[0]
        state.device.software = str(software) if software is not None else ""
        return
    when = _time_of(state, frame)
    if name == "monitoring_info":
        state.period_start = when
        state.cycles.clear()
        return
    mapped = _SIMPLE.get(name)
    if mapped is None and name != "monitoring":
        return
    if when is None:
        if mapped is not None and any(_field(frame, f)[0] is not None for f, *_ in mapped):
            state.ignored.setdefault(f"{name} without a time", _Ignored()).add(index)
        return
    for field_name, code, unit, category in mapped or ():
        value, _raw = _field(frame, field_name)
        if value is None:
            continue
        if code is _HEART_RATE and value == 0:
            state.ignored.setdefault("heart rate 0 (no sensor contact)", _Ignored()).add(index)
            continue
        if code is _WEIGHT and (value == "calculating" or value == _WEIGHT_CALCULATING_KG):
            state.ignored.setdefault("weight 'calculating' sentinel", _Ignored()).add(index)
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            state.ignored.setdefault(f"{name}.{field_name} not a number", _Ignored()).add(index)
            continue
        if (
            field_name == "respiration_rate"
            and name == "record"
            and _field(frame, "enhanced_respiration_rate")[0] is not None
        ):
            continue  # the enhanced field is the same reading at a finer scale
        units.append(_observation(state, index, name, code, category, value, unit, when))
    if name == "monitoring":
        _steps(state, index, frame, when, units)


def _steps(state: _State, index: int, frame: Any, when: int, units: list[ResourceUnit]) -> None:
    activity, _ = _field(frame, "activity_type")
    _, raw = _field(frame, "cycles")
    if raw is None:  # fitdecode names the field by its sub-field when activity_type came first
        _, raw = _field(frame, "steps")
    if activity not in _STEP_ACTIVITIES or not isinstance(raw, int):
        return
    previous = state.cycles.get(activity)
    if previous is None:
        count, start = raw, state.period_start if state.period_start is not None else when
    elif raw >= previous[0]:
        count, start = raw - previous[0], previous[1]
    else:  # the accumulator was reset
        count, start = raw, previous[1]
    state.cycles[activity] = (raw, when)
    if count > 0:
        units.append(
            _observation(
                state, index, "monitoring", _STEPS, "activity", count, "{steps}", start, when
            )
        )


def _problem(state: _State, reason: str, location: str, content: str) -> QuarantineItem:
    return QuarantineItem(
        source=state.source,
        reason=reason,
        content=content,
        file=state.file,
        location=location,
        resource_type="FIT",
    )


def read_fit(
    path: Path, *, source: str | None = None, patient: str | None = None
) -> Iterator[Batch]:
    """Yield batches of facts from a FIT file (see the module docstring).

    Parameters
    ----------
    path
        The ``.fit`` file.
    source
        Source name of the facts (default ``fit``).
    patient
        Device-user identifier (system :data:`DEVICE_USER_SYSTEM`); required, a FIT file
        names no person.
    """
    import fitdecode

    name = source or DEFAULT_SOURCE
    file = str(path)
    if not patient:
        item = QuarantineItem(
            source=name,
            reason="no patient: a FIT file does not name its person; pass --patient "
            "(the device-user id)",
            content=file,
            file=file,
            location="file",
            field="patient",
        )
        yield Batch(source=name, file=file, quarantine=[item], resources_read=1)
        return
    state = _State(name, file, patient)
    batch = Batch(source=name, file=file)
    if path.stat().st_size == 0:  # fitdecode reads an empty file as one with no messages
        batch.quarantine.append(
            _problem(state, "empty file (0 bytes): not a FIT file", "file", f"{file}: 0 bytes")
        )
        batch.resources_read = 1
        yield batch
        return
    index = 0
    try:
        with fitdecode.FitReader(
            file, check_crc=fitdecode.CrcCheck.ENABLED, keep_raw_chunks=False
        ) as reader:
            for frame in reader:
                if not isinstance(frame, fitdecode.FitDataMessage):
                    continue
                index += 1
                batch.resources_read += 1
                _message(state, index, frame, batch.units)
                if len(batch.units) >= BATCH_SIZE:
                    yield batch
                    batch = Batch(source=name, file=file)
    except Exception as exc:  # fitdecode raises FitError subclasses, struct errors on garbage
        kind = type(exc).__name__
        batch.quarantine.append(
            _problem(
                state,
                f"corrupt or truncated FIT file ({kind}: {exc}); the {index} messages before "
                "it were imported",
                f"after message {index}",
                f"{file}: {kind}: {exc}",
            )
        )
    for what, seen in sorted(state.ignored.items()):
        batch.quarantine.append(
            _problem(
                state,
                f"{seen.count} readings not stored: {what} (one summary entry; messages "
                f"{seen.first}-{seen.last})",
                f"messages {seen.first}-{seen.last}",
                f"{what}: {seen.count} (messages {seen.first}-{seen.last})",
            )
        )
    yield batch


class FitReader:
    """Reads Garmin ``.fit`` files (by extension, or the ``.FIT`` signature in the header)."""

    name = "fit"

    def can_read(self, path: Path) -> bool:
        """A ``.fit`` file name, or a file whose header carries the ``.FIT`` signature."""
        if path.suffix.lower() == ".fit":
            return True
        try:
            with path.open("rb") as handle:
                head = handle.read(12)
        except OSError:
            return False
        return len(head) == 12 and head[8:12] == b".FIT"

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Lookup | None = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """Decode ``path`` (see :func:`read_fit`); ``tz`` is unused: FIT times are UTC."""
        yield from read_fit(path, source=source, patient=patient)
