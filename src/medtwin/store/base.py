"""The Store protocol: where the patient record lives.

One protocol, two back-ends that pass one conformance suite:
:class:`~medtwin.store.sqlite.SqliteStore` (the embedded default, a WAL file) and
:class:`~medtwin.store.postgres.PostgresStore` (server deployments).

Every method that reads or writes a patient's data writes a row to the access
log naming the actor, the action and the patient.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from medtwin.record.batch import Batch, QuarantineItem
from medtwin.record.facts import Fact, Identifier

if TYPE_CHECKING:
    from medtwin.record.alerts import Alert
    from medtwin.store.alerts import AlertEvent, StoredAlert
    from medtwin.store.twins import StoredTwin

__all__ = [
    "AccessEntry",
    "AppendResult",
    "ObservationValue",
    "PatientNotFoundError",
    "PatientSummary",
    "QuarantineEntry",
    "Store",
    "StoreError",
    "StoredFact",
]


class StoreError(RuntimeError):
    """A store that cannot be opened or used; the message says which and why."""


class PatientNotFoundError(LookupError):
    """No patient matches the id or identifier given."""


@dataclass(slots=True)
class AppendResult:
    """What one or more appends did, counted per resource unit and per fact."""

    inserted: int = 0
    new_versions: int = 0
    unchanged: int = 0
    retracted: int = 0
    stale: int = 0
    quarantined: int = 0
    resolved_quarantine: int = 0
    patients_created: int = 0
    resources_read: int = 0
    changed: list[str] = field(default_factory=list)
    """Source ids of the facts this append made current (new facts and new versions, not
    retractions, stale or unchanged ones): what monitors are fed after the append."""

    def add(self, other: AppendResult) -> None:
        """Accumulate ``other`` into this result."""
        for name in self.__dataclass_fields__:
            if name == "changed":
                self.changed.extend(other.changed)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (without ``changed``)."""
        return {
            name: getattr(self, name) for name in self.__dataclass_fields__ if name != "changed"
        }


@dataclass(frozen=True, slots=True)
class StoredFact:
    """A fact as the store holds it: the fact plus its version and transaction times."""

    id: int
    patient_id: str | None
    version: int
    recorded_at: datetime
    superseded_at: datetime | None
    content_hash: str
    fact: Fact


class ObservationValue(NamedTuple):
    """One numeric observation as its stored columns hold it (:meth:`Store.observation_values`):
    the effective time, the value and unit as the fact keeps them (a bound's value is the bound,
    its comparator in ``text``: :func:`medtwin.record.facts.text_comparator`), the status."""

    time: datetime
    value: float | None
    unit: str | None
    status: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class PatientSummary:
    """A patient row: medtwin id, name, birth date, sex and linked identifiers."""

    id: str
    family: str | None
    given: str | None
    birth_date: str | None
    gender: str | None
    identifiers: tuple[Identifier, ...] = ()

    @property
    def name(self) -> str:
        """``Given Family`` or a dash."""
        return " ".join(part for part in (self.given, self.family) if part) or "-"


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """A stored quarantine row."""

    id: int
    created_at: datetime
    status: str
    item: QuarantineItem
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One access-log row: who did what to which patient's data, when."""

    at: datetime
    actor: str
    action: str
    patient_id: str | None
    what: str | None
    count: int | None = None


@runtime_checkable
class Store(Protocol):
    """What every store back-end offers."""

    url: str
    actor: str

    def append(self, batch: Batch) -> AppendResult:
        """Write one batch atomically: facts idempotently on (source, source id), quarantine the rest."""
        ...

    def append_facts(self, facts: Iterable[Fact], *, source: str) -> AppendResult:
        """Convenience: append facts with no dependencies, one unit per fact."""
        ...

    def resolve_patient(self, ref: str) -> str:
        """Medtwin id for a medtwin id or any linked identifier (``value`` or ``system|value``)."""
        ...

    def patient(self, patient_id: str) -> PatientSummary:
        """One patient with identifiers (logged as a read)."""
        ...

    def patients(
        self, *, search: str | None = None, birth_date: str | None = None, limit: int = 1000
    ) -> list[PatientSummary]:
        """List patients, optionally searching name/identifier text and birth date."""
        ...

    def timeline(
        self,
        patient_id: str,
        *,
        codes: Sequence[str] = (),
        kinds: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
        as_of: datetime | None = None,
        include_raw: bool = False,
        resource_types: Sequence[str] = (),
    ) -> list[StoredFact]:
        """A patient's current facts ordered by effective time; ``as_of`` travels in recorded time.

        ``resource_types`` keeps the facts of those FHIR resource types (``FamilyMemberHistory``
        among the kept-whole ``RawResource`` facts)."""
        ...

    def latest(
        self,
        patient_id: str,
        *,
        codes: Sequence[str] = (),
        as_of: datetime | None = None,
        include_raw: bool = False,
    ) -> dict[str, StoredFact]:
        """The latest observation per code (not a cancelled one)."""
        ...

    def observation_values(
        self,
        patient_id: str,
        *,
        codes: Sequence[str],
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ObservationValue]:
        """The current observations of ``codes`` with an effective time in ``[start, end)``, in
        time order, as their columns (:class:`ObservationValue`): what a long series (a CGM's
        288 readings a day) needs, without decoding each fact. Logged as a read."""
        ...

    def versions(self, source: str, source_id: str) -> list[StoredFact]:
        """Every version of one fact, oldest first."""
        ...

    def iter_facts(
        self, *, patient_id: str | None = None, include_raw: bool = True, derived: bool = False
    ) -> Iterator[StoredFact]:
        """Every current fact (for export); ``patient_id=None`` means the whole store."""
        ...

    def link(self, keep: str, merge: str) -> str:
        """Merge patient ``merge`` into ``keep``; returns the surviving medtwin id."""
        ...

    def quarantine(self, *, status: str | None = "open") -> list[QuarantineEntry]:
        """Quarantine entries, open ones by default."""
        ...

    def add_quarantine(self, items: Iterable[QuarantineItem]) -> int:
        """Store quarantine items (idempotent); returns how many are new."""
        ...

    def resolve_quarantine(self, ids: Iterable[int]) -> None:
        """Mark entries resolved."""
        ...

    def access_log(self, *, patient_id: str | None = None, limit: int = 1000) -> list[AccessEntry]:
        """The newest access-log rows."""
        ...

    def log_access(self, action: str, patient_id: str | None, what: str, count: int = 1) -> None:
        """Record an access (the store does this itself for its own reads and writes)."""
        ...

    def find_resource(self, source: str, resource_type: str, system: str, value: str) -> str | None:
        """``Type/id`` of a stored resource with this business identifier (conditional references)."""
        ...

    def shared_facts(self, source_ids: Sequence[str]) -> list[StoredFact]:
        """Current facts without a patient (Practitioner, Organization ...) by source id."""
        ...

    def counts(self) -> dict[str, int]:
        """Numbers of patients, current facts and open quarantine entries."""
        ...

    def bulk(self) -> AbstractContextManager[None]:
        """Tune the back-end for a long run of appends; restores it after."""
        ...

    def checkpoint(self) -> None:
        """Move committed writes of other connections into the main database (SQLite's WAL)."""
        ...

    def start_job(self, kind: str, detail: dict[str, Any]) -> int:
        """Record the start of a long job; returns its id."""
        ...

    def finish_job(self, job_id: int, status: str, detail: dict[str, Any]) -> None:
        """Record how a job ended."""
        ...

    def jobs(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest jobs."""
        ...

    # -- monitor state and the alert book (medtwin.store.alerts) --------------------------------
    def load_monitor_state(self, monitor: str, patient_id: str) -> dict[str, Any] | None:
        """The saved state of a monitor for a patient, or ``None`` (MonitorStateStore)."""
        ...

    def load_monitor_states(
        self, monitor: str, patient_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Saved states of a monitor for many patients at once (the hub's start-up)."""
        ...

    def save_monitor_states(self, states: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Insert or replace ``(monitor, patient_id, state)`` rows atomically."""
        ...

    def raise_alerts(self, alerts: Sequence[Alert], *, now: datetime | None = None) -> list[int]:
        """File alerts: de-duplicated, suppressed per policy (AlertSink); ids of alerts changed."""
        ...

    def alerts(
        self,
        *,
        patient_id: str | None = None,
        status: str | Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[StoredAlert]:
        """Alerts, newest first, optionally of one patient and of given statuses."""
        ...

    def alert(self, alert_id: int) -> StoredAlert:
        """One alert by id."""
        ...

    def alert_events(self, alert_id: int) -> list[AlertEvent]:
        """The audit trail of one alert, oldest first."""
        ...

    def acknowledge_alert(
        self, alert_id: int, *, note: str | None = None, now: datetime | None = None
    ) -> StoredAlert:
        """Acknowledge an open alert as the store's actor."""
        ...

    def resolve_alert(
        self, alert_id: int, *, reason: str | None = None, now: datetime | None = None
    ) -> StoredAlert:
        """Resolve an open or acknowledged alert as the store's actor."""
        ...

    def escalate_alerts(self, now: datetime | None = None) -> list[int]:
        """Escalate open, unacknowledged alerts whose time is up; ids escalated."""
        ...

    # -- fitted twins (medtwin.store.twins) -----------------------------------------------------
    def save_twin(
        self,
        patient_id: str,
        model: str,
        model_version: str,
        calibration: Mapping[str, Any],
        *,
        data_start: datetime | None = None,
        data_end: datetime | None = None,
        facts_used: int = 0,
        filter_state: Mapping[str, Any] | None = None,
    ) -> int:
        """Save a fitted twin; returns its id."""
        ...

    def update_twin_state(self, twin_id: int, filter_state: Mapping[str, Any]) -> None:
        """Replace a twin's assimilation state."""
        ...

    def twin(self, twin_id: int) -> StoredTwin:
        """One twin by id."""
        ...

    def twins(self, patient_id: str, *, model: str | None = None) -> list[StoredTwin]:
        """A patient's twins, newest first."""
        ...

    def latest_twin(self, patient_id: str, model: str) -> StoredTwin | None:
        """The patient's current twin of a model, or ``None``."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
