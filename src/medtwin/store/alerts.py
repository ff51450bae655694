"""The alert book: the alert lifecycle and monitor state, kept in the store.

Monitors fire :class:`~medtwin.record.alerts.Alert` objects; the hub hands them to
:meth:`AlertBook.raise_alerts` (the :class:`~medtwin.monitor.base.AlertSink` protocol), and the
book decides, under an :class:`AlertPolicy`, whether a firing opens a new alert, repeats (or
worsens) one that is already open, or is suppressed. People then acknowledge and resolve alerts;
an open alert that nobody acknowledges climbs a ladder of responders (:meth:`AlertBook.escalate_alerts`).
Every change is written to ``alert_events`` (the audit trail) and every read and write of a
patient's alerts or monitor state to the access log, with the store's actor.

Lifecycle (documented with its sources in ``docs/models/alerts.md``)::

    firing --(no live alert of this patient + key)--> open ---ack---> acknowledged ---resolve---> resolved
              |                                        |  ^             |   |                     |
              |                          repeat: count |  | worsening / |   | repeat within      | repeat at <= severity
              |                                        |  | repeat after|   | suppress_min:      | within suppress_min:
              |                                        |  | suppress_min|   | counted            | counted (suppressed)
              |                                        v  +-------------+   v                     v
              |                                  escalate_alerts(now): level + 1 every escalate_after_min

A monitor's *clear* (an :class:`~medtwin.record.alerts.Alert` with ``clears=True``, e.g. "the
personal baseline is built") resolves the live alert of its patient and key, by ``monitor NAME``
with the clear's message as the reason; it opens nothing.

Clocks: ``first_at`` / ``last_at`` are event times (when the condition was met, the monitor's
``epoch_s``); the lifecycle (suppression windows, escalation) runs on the store's clock ``now``
(wall-clock UTC unless a caller passes ``now``, as replays and tests do).

Examples
--------
>>> import os, tempfile
>>> from medtwin.record.alerts import Alert, FactRef
>>> from medtwin.store import open_store
>>> store = open_store(os.path.join(tempfile.mkdtemp(), "book.db"), actor="nurse")
>>> fired = Alert("mt-1", "news2", "1", "news2.high", "high", 1_700_000_000.0,
...               "NEWS2 7", "RCP 2017", (FactRef("monitor", "Observation/1"),))
>>> [alert_id] = store.raise_alerts([fired])
>>> store.raise_alerts([fired])  # the same firing again changes nothing
[]
>>> store.alert(alert_id).responder
'critical care outreach / rapid response team'
>>> store.acknowledge_alert(alert_id).status
'acknowledged'
>>> store.close()
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from medtwin.record.alerts import SEVERITIES, FactRef, severity_rank
from medtwin.record.time import utc_now
from medtwin.store.base import StoreError

if TYPE_CHECKING:
    from medtwin.record.alerts import Alert
    from medtwin.store.sql import Dialect

__all__ = [
    "ALERT_EVENTS",
    "ALERT_STATUSES",
    "DEFAULT_LADDER",
    "DEFAULT_POLICY",
    "AlertBook",
    "AlertError",
    "AlertEvent",
    "AlertNotFoundError",
    "AlertPolicy",
    "AlertStateError",
    "SeverityPolicy",
    "StoredAlert",
]

ALERT_STATUSES: tuple[str, ...] = ("open", "acknowledged", "resolved")
"""An alert is open until someone acknowledges it, and stays in the book once resolved."""

ALERT_EVENTS: tuple[str, ...] = (
    "opened",
    "repeated",
    "worsened",
    "acknowledged",
    "escalated",
    "resolved",
    "reopened",
)
"""What the audit trail (``alert_events``) records."""

DEFAULT_LADDER: tuple[str, ...] = (
    "registered nurse",
    "nurse in charge / ward doctor",
    "medical team with critical-care competences",
    "critical care outreach / rapid response team",
)
"""Who responds, lowest level first: the NEWS2 clinical response.

Royal College of Physicians (2017), *National Early Warning Score (NEWS) 2*, Chart 4 "Clinical
response to the NEWS trigger thresholds": score 1-4, the registered nurse assesses; 3 in a single
parameter, the nurse informs the medical team caring for the patient; 5 or more (urgent
response), urgent assessment by a clinician or team with competences in acute illness; 7 or
more (emergency response), emergency assessment by a team with critical-care competences. The
step names are medtwin's shorthand for those responders; a hospital sets its own ladder.
"""


class AlertError(StoreError):
    """A request about an alert that cannot be done; the message says which alert and why."""


class AlertNotFoundError(AlertError, LookupError):
    """No alert with that id."""


class AlertStateError(AlertError):
    """A transition the alert's status does not allow (e.g. acknowledging a resolved alert)."""


@dataclass(frozen=True, slots=True)
class SeverityPolicy:
    """How alerts of one severity are handled.

    Attributes
    ----------
    suppress_min
        After an alert of this severity is acknowledged or resolved, repeats of its key at the
        same or a lower severity within this many minutes open nothing new (they are counted on
        it); an acknowledged alert still firing after it is re-opened.
    escalate_after_min
        An open alert nobody acknowledged moves one step up the ladder every this many minutes;
        ``None`` never escalates.
    first_level
        The ladder step (0 = first responder) a new alert of this severity goes to; ``None``
        means nobody is paged (``info``).
    """

    suppress_min: float
    escalate_after_min: float | None
    first_level: int | None

    def __post_init__(self) -> None:
        if self.suppress_min < 0:
            raise ValueError(f"suppress_min must be >= 0, got {self.suppress_min}")
        if self.escalate_after_min is not None and self.escalate_after_min <= 0:
            raise ValueError(f"escalate_after_min must be > 0, got {self.escalate_after_min}")
        if self.first_level is not None and self.first_level < 0:
            raise ValueError(f"first_level must be >= 0, got {self.first_level}")


def _default_severities() -> dict[str, SeverityPolicy]:
    # Responders from RCP 2017 Chart 4; the minutes are medtwin's choices (see docs/models/alerts.md):
    # escalate if nobody acknowledged before the next observation the chart asks for is due
    # (4-6 hourly for a score of 1-4, hourly for 3 in one parameter), and within 30 / 15 min where
    # the chart says "immediately" (urgent / emergency response).
    return {
        "info": SeverityPolicy(suppress_min=60.0, escalate_after_min=None, first_level=None),
        "low": SeverityPolicy(suppress_min=240.0, escalate_after_min=240.0, first_level=0),
        "low-medium": SeverityPolicy(suppress_min=60.0, escalate_after_min=60.0, first_level=1),
        "medium": SeverityPolicy(suppress_min=60.0, escalate_after_min=30.0, first_level=2),
        "high": SeverityPolicy(suppress_min=30.0, escalate_after_min=15.0, first_level=3),
    }


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """De-duplication, suppression and escalation settings of the alert book.

    Attributes
    ----------
    ladder
        Responders, lowest first (:data:`DEFAULT_LADDER`).
    severities
        One :class:`SeverityPolicy` per severity of :data:`~medtwin.record.alerts.SEVERITIES`.
    evidence_keep
        How many fact references an alert keeps at each end: the first ``evidence_keep`` and the
        most recent ``evidence_keep`` (with the total count), so a long-running alert stays small.

    Examples
    --------
    >>> policy = AlertPolicy.from_dict({"severities": {"high": {"escalate_after_min": 5}}})
    >>> policy.severities["high"].escalate_after_min, policy.severities["high"].first_level
    (5, 3)
    """

    ladder: tuple[str, ...] = DEFAULT_LADDER
    severities: Mapping[str, SeverityPolicy] = field(default_factory=_default_severities)
    evidence_keep: int = 10

    def __post_init__(self) -> None:
        if not self.ladder:
            raise ValueError("the escalation ladder needs at least one responder")
        missing = [s for s in SEVERITIES if s not in self.severities]
        unknown = [s for s in self.severities if s not in SEVERITIES]
        if missing or unknown:
            raise ValueError(
                f"alert policy: severities must be exactly {', '.join(SEVERITIES)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
            )
        for name, setting in self.severities.items():
            if setting.first_level is not None and setting.first_level >= len(self.ladder):
                raise ValueError(
                    f"alert policy: {name} starts at level {setting.first_level}, "
                    f"but the ladder has {len(self.ladder)} steps"
                )
        if self.evidence_keep < 1:
            raise ValueError("evidence_keep must be >= 1")

    def for_severity(self, severity: str) -> SeverityPolicy:
        """The settings of ``severity``."""
        severity_rank(severity)
        return self.severities[severity]

    def responder(self, level: int | None) -> str | None:
        """The ladder step ``level`` (``None`` for no level)."""
        if level is None:
            return None
        return self.ladder[min(level, len(self.ladder) - 1)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the input of :meth:`from_dict`)."""
        return {
            "ladder": list(self.ladder),
            "evidence_keep": self.evidence_keep,
            "severities": {
                name: {
                    "suppress_min": s.suppress_min,
                    "escalate_after_min": s.escalate_after_min,
                    "first_level": s.first_level,
                }
                for name, s in self.severities.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertPolicy:
        """A policy from JSON; what is not given keeps the default."""
        known = {"ladder", "severities", "evidence_keep"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"alert policy: unknown setting(s) {', '.join(sorted(unknown))}")
        base = cls()
        severities = dict(base.severities)
        for name, overrides in (data.get("severities") or {}).items():
            if name not in severities:
                raise ValueError(f"alert policy: unknown severity {name!r}")
            bad = set(overrides) - {"suppress_min", "escalate_after_min", "first_level"}
            if bad:
                raise ValueError(
                    f"alert policy: unknown setting(s) {', '.join(sorted(bad))} for {name}"
                )
            severities[name] = replace(severities[name], **overrides)
        return cls(
            ladder=tuple(data.get("ladder") or base.ladder),
            severities=severities,
            evidence_keep=int(data.get("evidence_keep") or base.evidence_keep),
        )


DEFAULT_POLICY = AlertPolicy()
"""The policy a store uses unless its ``alert_policy`` is set."""


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as the book holds it.

    ``evidence`` is the first and the most recent fact references (see
    :attr:`AlertPolicy.evidence_keep`); ``evidence_total`` counts every distinct one.
    ``responder`` is the ladder step at ``escalation_level`` under the store's policy.
    """

    id: int
    patient_id: str
    monitor: str
    monitor_version: str
    rule: str
    severity: str
    category: str
    key: str
    status: str
    first_at: datetime
    last_at: datetime
    created_at: datetime
    updated_at: datetime
    opened_at: datetime
    count: int
    message: str
    source: str
    evidence: tuple[FactRef, ...]
    evidence_total: int
    detail: dict[str, Any]
    escalation_level: int | None
    escalated_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolved_reason: str | None
    responder: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601 text)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "patient_id": self.patient_id,
            "monitor": self.monitor,
            "monitor_version": self.monitor_version,
            "rule": self.rule,
            "severity": self.severity,
            "category": self.category,
            "key": self.key,
            "status": self.status,
            "first_at": iso(self.first_at),
            "last_at": iso(self.last_at),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "opened_at": iso(self.opened_at),
            "count": self.count,
            "message": self.message,
            "source": self.source,
            "evidence": [list(ref) for ref in self.evidence],
            "evidence_total": self.evidence_total,
            "detail": self.detail,
            "escalation_level": self.escalation_level,
            "responder": self.responder,
            "escalated_at": iso(self.escalated_at),
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": iso(self.acknowledged_at),
            "resolved_by": self.resolved_by,
            "resolved_at": iso(self.resolved_at),
            "resolved_reason": self.resolved_reason,
        }


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One row of an alert's audit trail."""

    id: int
    alert_id: int
    at: datetime
    event: str
    actor: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "alert_id": self.alert_id,
            "at": self.at.isoformat(),
            "event": self.event,
            "actor": self.actor,
            "detail": self.detail,
        }


_ALERT_COLUMNS = (
    "id, patient_id, monitor, monitor_version, rule, severity, category, dedup_key, status, "
    "first_at, last_at, created_at, updated_at, opened_at, count, message, source, evidence, "
    "detail, escalation_level, escalated_at, acknowledged_by, acknowledged_at, resolved_by, "
    "resolved_at, resolved_reason"
)
_LIVE = ("open", "acknowledged")


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _event_time(epoch_s: float) -> datetime:
    # Microseconds, as both back-ends keep them: a re-raised firing compares equal to the row.
    return datetime.fromtimestamp(round(epoch_s, 6), UTC)


@dataclass(slots=True)
class _Evidence:
    first: list[list[str]]
    recent: list[list[str]]
    total: int

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> _Evidence:
        data = data or {}
        return cls(
            [list(r) for r in data.get("first", [])],
            [list(r) for r in data.get("recent", [])],
            int(data.get("total", 0)),
        )

    def refs(self) -> set[tuple[str, ...]]:
        return {tuple(r) for r in self.first} | {tuple(r) for r in self.recent}

    def add(self, refs: Sequence[FactRef], keep: int) -> None:
        seen = self.refs()
        for ref in refs:
            item = [ref[0], ref[1]]
            if tuple(item) in seen:
                continue
            seen.add(tuple(item))
            self.total += 1
            if len(self.first) < keep:
                self.first.append(item)
            else:
                self.recent.append(item)
        del self.recent[: max(len(self.recent) - keep, 0)]

    def as_dict(self) -> dict[str, Any]:
        return {"first": self.first, "recent": self.recent, "total": self.total}


class AlertBook:
    """Alert lifecycle and monitor state over the store's connection (mixed into ``SqlStore``).

    Every public method is one transaction. Set :attr:`alert_policy` to change the policy.
    """

    alert_policy: AlertPolicy = DEFAULT_POLICY

    if TYPE_CHECKING:
        dialect: Dialect
        actor: str

        def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

        def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

        def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

        def _begin(self) -> None: ...

        def _commit(self) -> None: ...

        def _rollback(self) -> None: ...

        def log_access(
            self, action: str, patient_id: str | None, what: str, count: int = 1
        ) -> None: ...

        def _log_read(self, action: str, patient_id: str | None, what: str, count: int) -> None: ...

    # -- helpers -----------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._begin()
        try:
            yield
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def _ts_in(self, value: datetime | None) -> Any:
        return self.dialect.ts(value)

    def _ts_req(self, value: Any) -> datetime:
        out = self.dialect.ts_out(value)
        assert out is not None
        return out

    def _row_to_alert(self, r: Sequence[Any]) -> StoredAlert:
        evidence = _Evidence.load(self.dialect.json_out(r[17]))
        level = r[19]
        return StoredAlert(
            id=int(r[0]),
            patient_id=r[1],
            monitor=r[2],
            monitor_version=r[3],
            rule=r[4],
            severity=r[5],
            category=r[6],
            key=r[7],
            status=r[8],
            first_at=self._ts_req(r[9]),
            last_at=self._ts_req(r[10]),
            created_at=self._ts_req(r[11]),
            updated_at=self._ts_req(r[12]),
            opened_at=self._ts_req(r[13]),
            count=int(r[14]),
            message=r[15],
            source=r[16],
            evidence=tuple(FactRef(s, i) for s, i in evidence.first + evidence.recent),
            evidence_total=evidence.total,
            detail=self.dialect.json_out(r[18]) or {},
            escalation_level=None if level is None else int(level),
            escalated_at=self.dialect.ts_out(r[20]),
            acknowledged_by=r[21],
            acknowledged_at=self.dialect.ts_out(r[22]),
            resolved_by=r[23],
            resolved_at=self.dialect.ts_out(r[24]),
            resolved_reason=r[25],
            responder=self.alert_policy.responder(None if level is None else int(level)),
        )

    def _get_alert(self, alert_id: int) -> StoredAlert:
        rows = self._query(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (int(alert_id),))
        if not rows:
            raise AlertNotFoundError(f"no alert with id {alert_id} (list them: 'medtwin alerts')")
        return self._row_to_alert(rows[0])

    def _event(
        self, alert_id: int, event: str, now: datetime, detail: Mapping[str, Any] | None = None
    ) -> None:
        self._execute(
            "INSERT INTO alert_events (alert_id, at, event, actor, detail) VALUES (?,?,?,?,?)",
            (
                alert_id,
                self._ts_in(now),
                event,
                self.actor,
                self.dialect.json(_dumps(detail or {})),
            ),
        )

    # -- monitor state (MonitorStateStore) -----------------------------------------------------
    def load_monitor_state(self, monitor: str, patient_id: str) -> dict[str, Any] | None:
        """The saved state of ``monitor`` for ``patient_id``, or ``None`` (logged as a read)."""
        rows = self._query(
            "SELECT state FROM monitor_state WHERE monitor = ? AND patient_id = ?",
            (monitor, patient_id),
        )
        self._log_read("read", patient_id, f"monitor state {monitor}", len(rows))
        if not rows:
            return None
        state = self.dialect.json_out(rows[0][0])
        return dict(state) if state is not None else None

    def load_monitor_states(
        self, monitor: str, patient_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Saved states of ``monitor`` for many patients at once (each logged as a read).

        One query per 500 patients and one transaction for the access-log rows: a hub that
        starts on a ward of thousands of patients does not pay a round trip per patient.
        """
        out: dict[str, dict[str, Any]] = {}
        ids = list(dict.fromkeys(patient_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for pid, state in self._query(
                f"SELECT patient_id, state FROM monitor_state WHERE monitor = ? "
                f"AND patient_id IN ({marks})",
                (monitor, *chunk),
            ):
                value = self.dialect.json_out(state)
                if value is not None:
                    out[str(pid)] = dict(value)
        if ids:
            self._begin()
            try:
                for pid in ids:
                    self.log_access("read", pid, f"monitor state {monitor}", int(pid in out))
                self._commit()
            except BaseException:
                self._rollback()
                raise
        return out

    def save_monitor_states(self, states: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Insert or replace ``(monitor, patient_id, state)`` rows in one transaction."""
        if not states:
            return
        now = self._ts_in(utc_now())
        per_patient: dict[str, list[str]] = defaultdict(list)
        rows = [
            (monitor, patient_id, self.dialect.json(_dumps(state)), now)
            for monitor, patient_id, state in states
        ]
        for monitor, patient_id, _state in states:
            per_patient[patient_id].append(monitor)
        with self._transaction():
            self._executemany(
                "INSERT INTO monitor_state (monitor, patient_id, state, updated_at) "
                "VALUES (?,?,?,?) ON CONFLICT (monitor, patient_id) DO UPDATE SET "
                "state = excluded.state, updated_at = excluded.updated_at",
                rows,
            )
            for patient_id, monitors in per_patient.items():
                self.log_access(
                    "write",
                    patient_id,
                    f"monitor state {','.join(sorted(set(monitors)))}",
                    len(monitors),
                )

    # -- raising (AlertSink) -----------------------------------------------------------------
    def raise_alerts(self, alerts: Sequence[Alert], *, now: datetime | None = None) -> list[int]:
        """File monitor alerts under the policy, in one transaction.

        Each firing opens a new alert, repeats or worsens the live alert of its patient and
        de-duplication key, is counted on a recently closed one (suppression), or, when it is
        a firing the book already holds (same key, time and evidence), changes nothing.

        Returns
        -------
        list[int]
            Ids of the alerts that changed, in first-touched order (an unchanged re-raise
            returns no id).
        """
        now = now or utc_now()
        touched: dict[int, None] = {}
        per_patient: dict[str, int] = defaultdict(int)
        with self._transaction():
            for alert in alerts:
                alert_id = self._raise_one(alert, now)
                per_patient[alert.patient_id] += 1
                if alert_id is not None:
                    touched[alert_id] = None
            for patient_id, count in per_patient.items():
                self.log_access("write", patient_id, "alerts raised", count)
        return list(touched)

    def _raise_one(self, alert: Alert, now: datetime) -> int | None:
        rows = self._query(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE patient_id = ? AND dedup_key = ? "
            "ORDER BY id DESC LIMIT 1",
            (alert.patient_id, alert.dedup_key),
        )
        if not rows:
            return None if alert.clears else self._open_new(alert, now)
        row = self._row_to_alert(rows[0])
        at = _event_time(alert.epoch_s)
        if alert.clears:
            return self._clear(row, alert, at, now)
        evidence = _Evidence.load(self.dialect.json_out(rows[0][17]))
        rank, row_rank = severity_rank(alert.severity), severity_rank(row.severity)
        if self._already_held(alert, at, row, evidence):
            return None
        policy = self.alert_policy
        if row.status in _LIVE:
            if rank > row_rank:
                self._worsen(row, alert, at, evidence, now)
                return row.id
            suppress = timedelta(minutes=policy.for_severity(row.severity).suppress_min)
            if (
                row.status == "acknowledged"
                and row.acknowledged_at is not None
                and now >= row.acknowledged_at + suppress
            ):
                self._repeat(row, alert, at, evidence, now, rank == row_rank)
                self._reopen(row, now, "still firing after the suppression window")
                return row.id
            self._repeat(row, alert, at, evidence, now, rank == row_rank)
            return row.id
        # resolved: a repeat at the same or a lower severity within the window is counted on it
        suppress = timedelta(minutes=policy.for_severity(row.severity).suppress_min)
        if rank <= row_rank and row.resolved_at is not None and now < row.resolved_at + suppress:
            self._repeat(row, alert, at, evidence, now, rank == row_rank, suppressed=True)
            return row.id
        return self._open_new(alert, now)

    def _clear(self, row: StoredAlert, alert: Alert, at: datetime, now: datetime) -> int | None:
        """The monitor says the condition has ended: resolve the live alert (its message is
        the reason). A clear of a resolved alert, or one older than the alert's last firing
        (the condition came back after it), changes nothing."""
        if row.status not in _LIVE or at < row.last_at:
            return None
        by = f"monitor {alert.monitor}"
        self._execute(
            "UPDATE alerts SET status = 'resolved', resolved_by = ?, resolved_at = ?, "
            "resolved_reason = ?, updated_at = ? WHERE id = ?",
            (by, self._ts_in(now), alert.message, self._ts_in(now), row.id),
        )
        self._event(
            row.id,
            "resolved",
            now,
            {"by": by, "reason": alert.message, "at": at.isoformat(), "rule": alert.rule},
        )
        return row.id

    @staticmethod
    def _already_held(alert: Alert, at: datetime, row: StoredAlert, evidence: _Evidence) -> bool:
        """The same firing again: no later than the row's last, no worse, no new evidence."""
        if at > row.last_at or severity_rank(alert.severity) > severity_rank(row.severity):
            return False
        if alert.evidence:
            held = evidence.refs()
            return all((ref[0], ref[1]) in held for ref in alert.evidence)
        return at in (row.first_at, row.last_at)

    def _open_new(self, alert: Alert, now: datetime) -> int:
        policy = self.alert_policy
        evidence = _Evidence([], [], 0)
        evidence.add(alert.evidence, policy.evidence_keep)
        level = (
            None
            if alert.category == "artefact"
            else policy.for_severity(alert.severity).first_level
        )
        at = self._ts_in(_event_time(alert.epoch_s))
        ts_now = self._ts_in(now)
        cursor = self._execute(
            "INSERT INTO alerts (patient_id, monitor, monitor_version, rule, severity, category, "
            "dedup_key, status, first_at, last_at, created_at, updated_at, opened_at, count, "
            "message, source, evidence, detail, escalation_level) "
            "VALUES (?,?,?,?,?,?,?,'open',?,?,?,?,?,1,?,?,?,?,?) RETURNING id",
            (
                alert.patient_id,
                alert.monitor,
                alert.monitor_version,
                alert.rule,
                alert.severity,
                alert.category,
                alert.dedup_key,
                at,
                at,
                ts_now,
                ts_now,
                ts_now,
                alert.message,
                alert.source,
                self.dialect.json(_dumps(evidence.as_dict())),
                self.dialect.json(_dumps(dict(alert.detail))),
                level,
            ),
        )
        alert_id = int(cursor.fetchone()[0])
        self._event(
            alert_id,
            "opened",
            now,
            {
                "severity": alert.severity,
                "at": _event_time(alert.epoch_s).isoformat(),
                "responder": policy.responder(level),
            },
        )
        return alert_id

    def _repeat(
        self,
        row: StoredAlert,
        alert: Alert,
        at: datetime,
        evidence: _Evidence,
        now: datetime,
        same_severity: bool,
        *,
        suppressed: bool = False,
    ) -> None:
        """Count a firing on ``row``; at the row's severity the newest message and numbers win."""
        evidence.add(alert.evidence, self.alert_policy.evidence_keep)
        params: list[Any] = [
            self._ts_in(max(at, row.last_at)),
            self._ts_in(now),
            self.dialect.json(_dumps(evidence.as_dict())),
        ]
        extra = ""
        if same_severity and at >= row.last_at:
            extra = ", message = ?, detail = ?, monitor_version = ?"
            params += [
                alert.message,
                self.dialect.json(_dumps(dict(alert.detail))),
                alert.monitor_version,
            ]
        self._execute(
            "UPDATE alerts SET count = count + 1, last_at = ?, updated_at = ?, evidence = ?"
            f"{extra} WHERE id = ?",
            [*params, row.id],
        )
        detail: dict[str, Any] = {"severity": alert.severity, "at": at.isoformat()}
        if suppressed:
            detail["suppressed"] = True
        self._event(row.id, "repeated", now, detail)

    def _worsen(
        self, row: StoredAlert, alert: Alert, at: datetime, evidence: _Evidence, now: datetime
    ) -> None:
        """A higher severity: the row takes the new severity, message and numbers; a worsening
        needs a new look, so an acknowledged alert is re-opened and the responder moves up to
        the new severity's first step."""
        policy = self.alert_policy
        evidence.add(alert.evidence, policy.evidence_keep)
        first = (
            None
            if alert.category == "artefact"
            else policy.for_severity(alert.severity).first_level
        )
        level = row.escalation_level
        if first is not None and (level is None or first > level):
            level = first
        self._execute(
            "UPDATE alerts SET severity = ?, rule = ?, message = ?, detail = ?, source = ?, "
            "monitor_version = ?, category = ?, count = count + 1, last_at = ?, updated_at = ?, "
            "evidence = ?, escalation_level = ? WHERE id = ?",
            (
                alert.severity,
                alert.rule,
                alert.message,
                self.dialect.json(_dumps(dict(alert.detail))),
                alert.source,
                alert.monitor_version,
                alert.category,
                self._ts_in(max(at, row.last_at)),
                self._ts_in(now),
                self.dialect.json(_dumps(evidence.as_dict())),
                level,
                row.id,
            ),
        )
        self._event(
            row.id,
            "worsened",
            now,
            {"from": row.severity, "to": alert.severity, "at": at.isoformat()},
        )
        if level != row.escalation_level:
            self._event(
                row.id,
                "escalated",
                now,
                {
                    "from": row.escalation_level,
                    "to": level,
                    "responder": policy.responder(level),
                    "reason": "worsened",
                },
            )
        if row.status == "acknowledged":
            self._reopen(row, now, "worsened")
        elif level != row.escalation_level:
            # a new responder: the escalation clock starts again for them
            self._execute(
                "UPDATE alerts SET opened_at = ?, escalated_at = NULL WHERE id = ?",
                (self._ts_in(now), row.id),
            )

    def _reopen(self, row: StoredAlert, now: datetime, reason: str) -> None:
        self._execute(
            "UPDATE alerts SET status = 'open', opened_at = ?, escalated_at = NULL, "
            "updated_at = ? WHERE id = ?",
            (self._ts_in(now), self._ts_in(now), row.id),
        )
        self._event(
            row.id,
            "reopened",
            now,
            {"reason": reason, "acknowledged_by": row.acknowledged_by},
        )

    # -- reading -----------------------------------------------------------------------------
    def alerts(
        self,
        *,
        patient_id: str | None = None,
        status: str | Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[StoredAlert]:
        """Alerts, newest first; of one patient (patients merged into it included) and/or statuses.

        Every patient whose alerts are returned gets an access-log row.
        """
        where: list[str] = []
        params: list[Any] = []
        if patient_id is not None:
            where.append(
                "(patient_id = ? OR patient_id IN (SELECT id FROM patients WHERE merged_into = ?))"
            )
            params += [patient_id, patient_id]
        statuses = (status,) if isinstance(status, str) else tuple(status or ())
        for s in statuses:
            if s not in ALERT_STATUSES:
                raise AlertError(f"unknown alert status {s!r} (one of {', '.join(ALERT_STATUSES)})")
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            params += list(statuses)
        rows = self._query(
            f"SELECT {_ALERT_COLUMNS} FROM alerts"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY id DESC LIMIT {int(limit)}",
            params,
        )
        out = [self._row_to_alert(r) for r in rows]
        per_patient: dict[str, int] = defaultdict(int)
        for a in out:
            per_patient[a.patient_id] += 1
        if patient_id is not None and not out:
            per_patient[patient_id] = 0
        if per_patient:
            what = "alerts" + (f" status={','.join(statuses)}" if statuses else "")
            with self._transaction():
                for pid, count in per_patient.items():
                    self.log_access("list", pid, what, count)
        return out

    def alert(self, alert_id: int) -> StoredAlert:
        """One alert (logged as a read of its patient); :class:`AlertNotFoundError` if none."""
        found = self._get_alert(alert_id)
        self._log_read("read", found.patient_id, f"alert {found.id}", 1)
        return found

    def alert_events(self, alert_id: int) -> list[AlertEvent]:
        """The audit trail of one alert, oldest first (logged as a read of its patient)."""
        found = self._get_alert(alert_id)
        rows = self._query(
            "SELECT id, alert_id, at, event, actor, detail FROM alert_events WHERE alert_id = ? "
            "ORDER BY id",
            (found.id,),
        )
        self._log_read("read", found.patient_id, f"alert {found.id} events", len(rows))
        return [
            AlertEvent(
                id=int(r[0]),
                alert_id=int(r[1]),
                at=self._ts_req(r[2]),
                event=r[3],
                actor=r[4],
                detail=self.dialect.json_out(r[5]) or {},
            )
            for r in rows
        ]

    # -- people's transitions ------------------------------------------------------------------
    def acknowledge_alert(
        self, alert_id: int, *, note: str | None = None, now: datetime | None = None
    ) -> StoredAlert:
        """Someone (the store's actor) has seen an open alert and is acting on it.

        Raises
        ------
        AlertNotFoundError
            No such alert.
        AlertStateError
            The alert is already acknowledged or resolved.
        """
        now = now or utc_now()
        with self._transaction():
            found = self._get_alert(alert_id)
            if found.status == "resolved":
                raise AlertStateError(
                    f"alert {found.id} was resolved by {found.resolved_by} at "
                    f"{_when(found.resolved_at)}; a resolved alert cannot be acknowledged"
                )
            if found.status == "acknowledged":
                raise AlertStateError(
                    f"alert {found.id} is already acknowledged by {found.acknowledged_by} at "
                    f"{_when(found.acknowledged_at)}"
                )
            self._execute(
                "UPDATE alerts SET status = 'acknowledged', acknowledged_by = ?, "
                "acknowledged_at = ?, updated_at = ? WHERE id = ?",
                (self.actor, self._ts_in(now), self._ts_in(now), found.id),
            )
            self._event(found.id, "acknowledged", now, {"note": note} if note else {})
            self.log_access("write", found.patient_id, f"alert {found.id} acknowledged", 1)
            return self._get_alert(found.id)

    def resolve_alert(
        self, alert_id: int, *, reason: str | None = None, now: datetime | None = None
    ) -> StoredAlert:
        """Close an open or acknowledged alert.

        Raises
        ------
        AlertNotFoundError
            No such alert.
        AlertStateError
            The alert is already resolved.
        """
        now = now or utc_now()
        with self._transaction():
            found = self._get_alert(alert_id)
            if found.status == "resolved":
                raise AlertStateError(
                    f"alert {found.id} is already resolved (by {found.resolved_by} at "
                    f"{_when(found.resolved_at)})"
                )
            self._execute(
                "UPDATE alerts SET status = 'resolved', resolved_by = ?, resolved_at = ?, "
                "resolved_reason = ?, updated_at = ? WHERE id = ?",
                (self.actor, self._ts_in(now), reason, self._ts_in(now), found.id),
            )
            self._event(found.id, "resolved", now, {"reason": reason} if reason else {})
            self.log_access("write", found.patient_id, f"alert {found.id} resolved", 1)
            return self._get_alert(found.id)

    def escalate_alerts(self, now: datetime | None = None) -> list[int]:
        """Move every open, unacknowledged alert whose time is up one or more ladder steps.

        Step ``k`` above the first responder is due ``k * escalate_after_min`` after the alert
        was (re)opened: an alert is escalated when ``now >= due`` (a sweep that runs late
        makes every step that fell due, each logged). Artefact alerts, ``info`` alerts and
        alerts at the top of the ladder stay where they are.

        Returns
        -------
        list[int]
            Ids of the alerts escalated.
        """
        now = now or utc_now()
        policy = self.alert_policy
        top = len(policy.ladder) - 1
        escalated: list[int] = []
        per_patient: dict[str, int] = defaultdict(int)
        with self._transaction():
            rows = self._query(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE status = 'open' "
                "AND category <> 'artefact' AND escalation_level IS NOT NULL "
                f"AND escalation_level < {top} ORDER BY id"
            )
            for r in rows:
                row = self._row_to_alert(r)
                after_min = policy.for_severity(row.severity).escalate_after_min
                if after_min is None or row.escalation_level is None:
                    continue
                step = timedelta(minutes=after_min)
                level = row.escalation_level
                due = (row.escalated_at or row.opened_at) + step
                last_due = None
                while level < top and now >= due:
                    self._event(
                        row.id,
                        "escalated",
                        now,
                        {
                            "from": level,
                            "to": level + 1,
                            "responder": policy.responder(level + 1),
                            "due_at": due.isoformat(),
                        },
                    )
                    level += 1
                    last_due = due
                    due += step
                if last_due is None:
                    continue
                self._execute(
                    "UPDATE alerts SET escalation_level = ?, escalated_at = ?, updated_at = ? "
                    "WHERE id = ?",
                    (level, self._ts_in(last_due), self._ts_in(now), row.id),
                )
                escalated.append(row.id)
                per_patient[row.patient_id] += 1
            for patient_id, count in per_patient.items():
                self.log_access("write", patient_id, "alerts escalated", count)
        return escalated


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "an unknown time"
