"""The monitor contract: streaming detectors that learn one reading at a time and emit alerts.

A :class:`Monitor` watches **one patient**. It is fed that patient's numeric observations as
:class:`Reading` objects in time order (``learn_one``, or ``learn_many`` for a run of them),
keeps whatever state it needs (a window of recent vitals, a 28-day baseline, a CUSUM
statistic), and returns the :class:`Alert` objects that reading fired. Its state round-trips
through plain JSON (``state_dict`` / ``load_state``) so the hub can keep it in the store and a
restarted process resumes where it stopped, baselines intact.

The contract follows river's streaming estimators (``learn_one`` on one sample, state inside
the object), with three rules of our own:

* ``learn_many(readings)`` must give exactly the alerts and the state that ``learn_one`` on
  each reading in turn gives; fast monitors override it with vectorised code. The shared
  conformance suite (``tests/monitor/test_conformance.py``) checks every registered monitor.
* A monitor never fills a missing input with a normal value: it says what is missing.
* Every alert names its rule, the published source of that rule, the monitor's version and
  the evidence: the facts (``FactRef``) that fired it.

Times inside monitors are UTC epoch seconds (``epoch_s``), cheap to compare and store; alerts
carry an aware UTC ``datetime`` for people.

Examples
--------
>>> from medtwin.monitor.base import Reading, FactRef
>>> r = Reading("mt-1", "8867-4", 1_700_000_000.0, 72.0, "/min", FactRef("csv:watch", "Reading/1"))
>>> r.time.isoformat()
'2023-11-14T22:13:20+00:00'
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from medtwin.record.alerts import (
    CATEGORIES,
    SEVERITIES,
    Alert,
    FactRef,
    severity_rank,
)
from medtwin.record.context import PatientContext

__all__ = [
    "CATEGORIES",
    "SEVERITIES",
    "Alert",
    "AlertSink",
    "FactRef",
    "Monitor",
    "MonitorConfigError",
    "MonitorStateStore",
    "PatientContext",
    "Reading",
    "severity_rank",
]


class MonitorConfigError(ValueError):
    """A monitor parameter that is unknown or out of range; the message names it."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One numeric observation of one patient, as monitors see it.

    Attributes
    ----------
    patient_id
        The medtwin patient id.
    code
        LOINC code (``8867-4`` heart rate, ``41950-7`` steps ...).
    epoch_s
        Effective time (start of the interval for interval data such as steps), UTC epoch seconds.
    value
        The value in the code's canonical unit (``unit``).
    unit
        UCUM unit of ``value``.
    ref
        The fact this reading came from: the evidence an alert cites.
    end_epoch_s
        End of the interval for interval data (steps counted over a minute), else ``None``.
    comparator
        ``"<"``, ``"<="``, ``">="`` or ``">"`` when the reading is a bound, not a value (a
        CGM's LOW sent as "<40", HIGH as ">400"; :func:`medtwin.record.facts.value_comparator`):
        ``value`` is then the bound. The glucose, trend and resting heart rate monitors never
        learn a bound into a baseline and judge one only where every value it allows gives the
        same answer. The early-warning scores (NEWS2, qSOFA, MEWS) score a bound as its value:
        vital signs are not sent as bounds, and one beyond a score's extreme band (SpO2 "<85")
        scores as every value there does.
    """

    patient_id: str
    code: str
    epoch_s: float
    value: float
    unit: str | None
    ref: FactRef
    end_epoch_s: float | None = None
    comparator: str | None = None

    @property
    def time(self) -> datetime:
        """The effective time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.epoch_s, UTC)


class Monitor(ABC):
    """A streaming detector for one patient.

    Subclasses set the class attributes, implement :meth:`learn_one`, :meth:`state_dict`
    and :meth:`load_state`, and may override :meth:`learn_many` with vectorised code.

    Parameters
    ----------
    patient_id
        The patient this instance watches.
    params
        Overrides of :attr:`defaults` (unknown names are refused).
    """

    name: ClassVar[str]
    """Registry name, lower case (``news2``, ``rhr``, ``glucose``)."""
    version: ClassVar[str] = "1"
    """Bumped whenever the logic or a default changes, so stored alerts say which logic fired."""
    source: ClassVar[str]
    """The published source(s) of the rules."""
    description: ClassVar[str] = ""
    codes: ClassVar[frozenset[str]] = frozenset()
    """LOINC codes this monitor learns from; the hub feeds it nothing else. Empty = every code."""
    defaults: ClassVar[Mapping[str, Any]] = {}
    """Parameter names -> default values (units in the names)."""
    uses_context: ClassVar[bool] = False
    """True for monitors that check the patient against a population (age, pregnancy): the hub
    gives them the record's :class:`PatientContext` (:meth:`set_context`)."""
    context: PatientContext | None = None
    """The patient's context, when the hub has given one (None: not known, nothing checked)."""

    def __init__(self, patient_id: str, params: Mapping[str, Any] | None = None) -> None:
        self.patient_id = patient_id
        merged = dict(self.defaults)
        for key, value in (params or {}).items():
            if key not in merged:
                raise MonitorConfigError(
                    f"monitor {self.name}: unknown parameter {key!r} "
                    f"(known: {', '.join(sorted(merged)) or 'none'})"
                )
            merged[key] = value
        self.params: dict[str, Any] = merged

    def pregnancy_at(self, epoch_s: float) -> str | None:
        """What the record says of a pregnancy at ``epoch_s`` (the context's basis), or None
        (no context, or no pregnancy then)."""
        return self.context.pregnancy_at(epoch_s) if self.context is not None else None

    def set_context(self, context: PatientContext | None) -> None:
        """Give the monitor what the record says of the patient (not part of its state: the hub
        reads it from the record again after a restart)."""
        self.context = context

    @abstractmethod
    def learn_one(self, reading: Reading) -> list[Alert]:
        """Update the state with one reading; return the alerts it fired (often none)."""

    def learn_many(self, readings: Sequence[Reading]) -> list[Alert]:
        """Learn readings in order; the same alerts and state as ``learn_one`` on each."""
        alerts: list[Alert] = []
        for reading in readings:
            alerts.extend(self.learn_one(reading))
        return alerts

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """The state as plain JSON types (no NaN: use ``None``)."""

    @abstractmethod
    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""

    def alert(
        self,
        rule: str,
        severity: str,
        epoch_s: float,
        message: str,
        evidence: Iterable[FactRef] = (),
        *,
        category: str = "clinical",
        detail: Mapping[str, Any] | None = None,
        key: str | None = None,
        source: str | None = None,
        clears: bool = False,
    ) -> Alert:
        """An alert of this monitor (fills name, version, patient and source)."""
        return Alert(
            patient_id=self.patient_id,
            monitor=self.name,
            monitor_version=self.version,
            rule=rule,
            severity=severity,
            epoch_s=epoch_s,
            message=message,
            source=source or self.source,
            evidence=tuple(evidence),
            category=category,
            detail=_json_ready(detail or {}),
            key=key,
            clears=clears,
        )

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Name, version, source, codes and parameters (for ``medtwin monitor list``)."""
        return {
            "name": cls.name,
            "version": cls.version,
            "description": cls.description,
            "source": cls.source,
            "codes": sorted(cls.codes),
            "params": dict(cls.defaults),
        }


def _json_ready(detail: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
        elif hasattr(value, "item") and not isinstance(value, (str, bytes)):
            item = value.item()  # numpy scalar
            out[key] = None if isinstance(item, float) and not math.isfinite(item) else item
        else:
            out[key] = value
    return out


class MonitorStateStore(Protocol):
    """Where monitor states live between runs (the store implements it)."""

    def load_monitor_state(self, monitor: str, patient_id: str) -> dict[str, Any] | None:
        """The saved state of ``monitor`` for ``patient_id``, or ``None``."""
        ...

    def save_monitor_states(self, states: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Save ``(monitor, patient_id, state)`` rows atomically (insert or replace)."""
        ...


class AlertSink(Protocol):
    """Where alerts go (the alert book in the store implements it)."""

    def raise_alerts(self, alerts: Sequence[Alert], *, now: datetime | None = None) -> list[int]:
        """Record alerts (de-duplicated, suppressed per policy); returns the alert ids touched."""
        ...
