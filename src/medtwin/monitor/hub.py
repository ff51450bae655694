"""The hub: feeds each patient's readings to that patient's monitors, keeps their state, files alerts.

Data flow (DESIGN.md): facts are stored first, then pushed to monitors. :meth:`MonitorHub.after_append`
takes a batch that the store has just written and the store's :class:`AppendResult`; only the
facts that the append really changed (``result.changed``: new facts and new versions) become
readings, so a re-sent message never reaches a monitor twice. :meth:`MonitorHub.feed` takes
readings directly (replaying a stored timeline, benchmarks).

Per (monitor, patient) the hub keeps a *watermark*, the newest reading time learned. A reading
more than ``late_tolerance_s`` older than the watermark arrived out of order: it is stored (the
record keeps everything) but not learned, because a streaming baseline cannot be rewound; the
hub counts it in :attr:`MonitorHub.late`. Within one call the readings of a patient are learned
in time order whatever order they arrived in.

State is saved through a :class:`~medtwin.monitor.base.MonitorStateStore` after every call that
changed it (or every ``save_every_s`` seconds, for high-rate feeds), alerts go to an
:class:`~medtwin.monitor.base.AlertSink`. Both are optional: without them the hub keeps state in
memory and returns the alerts.

>>> hub = MonitorHub([])
>>> hub.feed([])
[]
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from medtwin.monitor.base import (
    Alert,
    AlertSink,
    FactRef,
    Monitor,
    MonitorStateStore,
    PatientContext,
    Reading,
)
from medtwin.record.facts import VOID_RESULT_STATUSES, text_comparator, value_comparator

if TYPE_CHECKING:
    from medtwin.record.batch import Batch
    from medtwin.store.base import AppendResult, Store, StoredFact

__all__ = ["MonitorHub", "readings_from_batch", "readings_from_stored"]

DEFAULT_LATE_TOLERANCE_S = 0.0


@dataclass(slots=True)
class _Slot:
    monitor: Monitor
    watermark: float
    dirty: bool = False


class MonitorHub:
    """Routes readings to per-patient monitor instances.

    Parameters
    ----------
    monitors
        Monitor names (see :mod:`medtwin.monitor.registry`) or classes.
    params
        Per monitor name, parameter overrides.
    state
        Where states are loaded from and saved to (usually the store).
    sink
        Where alerts go (usually the store's alert book).
    late_tolerance_s
        How far behind the watermark a reading may be and still be learned.
    save_every_s
        Save states at most this often (0: after every call that changed them).
    context
        What the record says of a patient (``patient_id -> PatientContext``; usually
        :func:`medtwin.risk.context.patient_context` over the store), for the monitors that
        check the patient against a population (``uses_context``: the early-warning scores).
        Read when a patient's readings first arrive and again after ``context_ttl_s`` seconds,
        so that a live hub sees a pregnancy or a birth date recorded meanwhile.
    """

    def __init__(
        self,
        monitors: Sequence[str | type[Monitor]],
        *,
        params: Mapping[str, Mapping[str, Any]] | None = None,
        state: MonitorStateStore | None = None,
        sink: AlertSink | None = None,
        late_tolerance_s: float = DEFAULT_LATE_TOLERANCE_S,
        save_every_s: float = 0.0,
        context: Callable[[str], PatientContext] | None = None,
        context_ttl_s: float = 600.0,
    ) -> None:
        from medtwin.monitor import registry

        self.classes: list[type[Monitor]] = [
            registry.get(m) if isinstance(m, str) else m for m in monitors
        ]
        self.params = {k.lower(): dict(v) for k, v in (params or {}).items()}
        for cls in self.classes:  # refuse bad parameters now, not at the first reading
            cls("-", self.params.get(cls.name))
        self.state = state
        self.sink = sink
        self.late_tolerance_s = late_tolerance_s
        self.save_every_s = save_every_s
        self.late = 0
        self.learned = 0
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._prefetched: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._last_save = time.monotonic()
        self.context = context
        self.context_ttl_s = context_ttl_s
        self._contexts: dict[str, tuple[float, PatientContext]] = {}

    def _context_of(self, patient_id: str) -> PatientContext | None:
        """The patient's context, read again when older than ``context_ttl_s``."""
        if self.context is None:
            return None
        now = time.monotonic()
        cached = self._contexts.get(patient_id)
        if cached is None or now - cached[0] > self.context_ttl_s:
            cached = self._contexts[patient_id] = (now, self.context(patient_id))
        return cached[1]

    def _prefetch(self, patient_ids: Iterable[str]) -> None:
        """Load the saved states of patients not seen yet in one query per monitor, when the
        state store can (``load_monitor_states``)."""
        bulk = getattr(self.state, "load_monitor_states", None)
        if bulk is None:
            return
        for cls in self.classes:
            new = [pid for pid in patient_ids if (cls.name, pid) not in self._slots]
            if len(new) > 1:
                found = bulk(cls.name, new)
                for pid in new:
                    self._prefetched[(cls.name, pid)] = found.get(pid)

    def _slot(self, cls: type[Monitor], patient_id: str) -> _Slot:
        key = (cls.name, patient_id)
        slot = self._slots.get(key)
        if slot is None:
            monitor = cls(patient_id, self.params.get(cls.name))
            watermark = float("-inf")
            if key in self._prefetched:
                saved = self._prefetched.pop(key)
            else:
                saved = self.state.load_monitor_state(cls.name, patient_id) if self.state else None
            if saved is not None and saved.get("version") == cls.version:
                monitor.load_state(saved["state"])
                if saved.get("watermark") is not None:
                    watermark = float(saved["watermark"])
            slot = _Slot(monitor, watermark)
            self._slots[key] = slot
        return slot

    def monitor(self, name: str, patient_id: str) -> Monitor:
        """The live instance of monitor ``name`` for a patient (loaded from the store if saved)."""
        for cls in self.classes:
            if cls.name == name:
                return self._slot(cls, patient_id).monitor
        raise KeyError(f"monitor {name!r} is not run by this hub")

    def feed(self, readings: Iterable[Reading]) -> list[Alert]:
        """Learn readings (any patients, any order); file and return the alerts they fire."""
        per_patient: dict[str, list[Reading]] = defaultdict(list)
        for reading in readings:
            per_patient[reading.patient_id].append(reading)
        alerts: list[Alert] = []
        if self.state is not None:
            self._prefetch(per_patient)
        for patient_id, rows in per_patient.items():
            rows.sort(key=_epoch)
            present = {r.code for r in rows}
            for cls in self.classes:
                if not cls.codes:
                    chosen = rows
                elif present & cls.codes:
                    codes = cls.codes
                    chosen = [r for r in rows if r.code in codes]
                else:
                    continue
                slot = self._slot(cls, patient_id)
                if cls.uses_context:
                    slot.monitor.set_context(self._context_of(patient_id))
                floor = slot.watermark - self.late_tolerance_s
                fresh = [r for r in chosen if r.epoch_s >= floor]
                self.late += len(chosen) - len(fresh)
                if not fresh:
                    continue
                alerts.extend(slot.monitor.learn_many(fresh))
                slot.watermark = max(slot.watermark, fresh[-1].epoch_s)
                slot.dirty = True
                self.learned += len(fresh)
        # alerts are filed before the states move on: a crash between the two can leave a state
        # behind its readings, never a fired alert unfiled
        if alerts and self.sink is not None:
            self.sink.raise_alerts(alerts)
        if self.state is not None and (
            self.save_every_s <= 0 or time.monotonic() - self._last_save >= self.save_every_s
        ):
            self.save()
        return alerts

    def save(self) -> int:
        """Save every changed state now; returns how many were saved."""
        if self.state is None:
            return 0
        rows = [
            (
                name,
                patient_id,
                {
                    "version": slot.monitor.version,
                    "watermark": slot.watermark if slot.watermark != float("-inf") else None,
                    "state": slot.monitor.state_dict(),
                },
            )
            for (name, patient_id), slot in self._slots.items()
            if slot.dirty
        ]
        if rows:
            self.state.save_monitor_states(rows)
        for slot in self._slots.values():
            slot.dirty = False
        self._last_save = time.monotonic()
        return len(rows)

    def after_append(self, store: Store, batch: Batch, result: AppendResult) -> list[Alert]:
        """Feed the facts of ``batch`` that ``store.append`` just changed."""
        return self.feed(readings_from_batch(store, batch, result))


def _epoch(reading: Reading) -> float:
    return reading.epoch_s


def readings_from_batch(store: Store, batch: Batch, result: AppendResult) -> list[Reading]:
    """Numeric observations of ``batch`` that the append changed, as readings.

    Facts without a patient, without a numeric value or without a time are not readings, nor is
    a cancelled test's value; retracted facts are not learned (a monitor cannot unlearn; the
    alert's evidence shows the retraction).
    """
    changed = set(result.changed)
    if not changed:
        return []
    patients: dict[tuple[str, str], str | None] = {}
    out: dict[str, Reading] = {}  # by source id: the same id twice in a batch, the later wins
    for unit in batch.units:
        for p in unit.prepare():
            if (
                p.source_id not in changed
                or p.kind != "Observation"
                or p.value_num is None
                or p.effective_start is None
                or p.subject is None
                or p.code is None
                or p.retracted
                or p.status in VOID_RESULT_STATUSES
            ):
                continue
            pid = patients.get(p.subject, "")
            if pid == "":
                try:
                    pid = store.resolve_patient(f"{p.subject[0]}|{p.subject[1]}")
                except LookupError:
                    pid = None
                patients[p.subject] = pid
            if pid is None:
                continue
            out[p.source_id] = Reading(
                patient_id=pid,
                code=p.code,
                epoch_s=p.effective_start.astimezone(UTC).timestamp(),
                value=float(p.value_num),
                unit=p.unit,
                ref=FactRef(batch.source, p.source_id),
                end_epoch_s=(
                    p.effective_end.astimezone(UTC).timestamp()
                    if p.effective_end is not None
                    else None
                ),
                comparator=text_comparator(p.value_text),
            )
    return list(out.values())


def readings_from_stored(facts: Iterable[StoredFact]) -> list[Reading]:
    """Numeric observations among stored facts (a timeline), as readings in time order."""
    from medtwin.record.facts import Observation

    out: list[Reading] = []
    for stored in facts:
        fact = stored.fact
        if (
            not isinstance(fact, Observation)
            or fact.value_num is None
            or fact.effective_start is None
            or fact.code is None
            or stored.patient_id is None
            or fact.retracted
            or fact.status in VOID_RESULT_STATUSES
        ):
            continue
        out.append(
            Reading(
                patient_id=stored.patient_id,
                code=fact.code.code,
                epoch_s=fact.effective_start.timestamp(),
                value=float(fact.value_num),
                unit=fact.unit,
                ref=FactRef(fact.source, fact.source_id),
                end_epoch_s=fact.effective_end.timestamp() if fact.effective_end else None,
                comparator=value_comparator(fact),
            )
        )
    out.sort(key=lambda r: r.epoch_s)
    return out
