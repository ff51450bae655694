"""The live feed: device readings from an MQTT broker into the store, then to the monitors.

A device (or a gateway) publishes one reading per message to a topic
``devices/{patient identifier}/{device id}``; the payload is an Open mHealth data point or a
FHIR Observation (sniffed: a JSON object with ``resourceType`` is FHIR, one with ``header`` /
``body`` is Open mHealth). The patient is named by the payload (FHIR ``subject.identifier`` or
``subject.reference``, Open mHealth ``header.user_id``) or else by the topic; a topic that
names another patient than the payload is refused (a reading filed under the wrong patient is
worse than a lost one).

Delivery: the listener subscribes with QoS 1 on a **persistent session** (MQTT 5,
``clean_start=False``, a session that never expires, a stable client id), so the broker keeps
what is published while the listener is down, and acknowledges a message only **after** its facts (or its quarantine
entry) are committed. A crash before the commit means the broker sends the message again; the
store's idempotent append on (source, source id) makes the second copy a no-op: nothing lost,
nothing doubled. Messages that arrive within ``window_s`` (50 ms) are appended in one
transaction per source.

Bad input never stops the loop: text that is not JSON, a data point that fails its schema,
an unknown unit, an unknown device user or a reading stamped too far in the future
(``skew_tolerance_s``, 5 min) becomes a quarantine entry naming the topic, the message id and
the field, and the message is acknowledged (it would fail again on every redelivery).

The listener knows nothing of monitors: after each append it calls ``after_append(store,
batch, result)`` of a *downstream* object (:class:`Downstream`; the
:class:`~medtwin.monitor.hub.MonitorHub` is one) and ``save()`` when it stops.

Examples
--------
>>> from medtwin.ingest.mqtt import parse_mqtt_url, topic_identity
>>> parse_mqtt_url("mqtt://127.0.0.1:1883")
('127.0.0.1', 1883, False)
>>> topic_identity("devices/watch-17/hr-sensor", "devices")
('watch-17', 'hr-sensor')
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, cast
from urllib.parse import urlsplit

import orjson

from medtwin.record.batch import Batch, QuarantineItem, ResourceUnit
from medtwin.record.facts import Demographics, Fact, Identifier

if TYPE_CHECKING:
    from medtwin.store.base import AppendResult, Store

__all__ = [
    "BATCH_WINDOW_S",
    "DEFAULT_TOPIC",
    "DEVICE_USER_SYSTEM",
    "FHIR_SOURCE",
    "SKEW_TOLERANCE_S",
    "Downstream",
    "LiveIngest",
    "LiveReport",
    "Message",
    "MqttListener",
    "decode_message",
    "parse_mqtt_url",
    "topic_identity",
    "topic_prefix",
]

log = logging.getLogger("medtwin.mqtt")

DEVICE_USER_SYSTEM: Final = "urn:medtwin:device-user"
#: Default subscription.
DEFAULT_TOPIC: Final = "devices/#"
#: A reading stamped more than this far ahead of the listener's clock is quarantined.
SKEW_TOLERANCE_S: Final = 300.0
#: Messages that arrive within this window are appended in one transaction.
BATCH_WINDOW_S: Final = 0.05
#: Source name of FHIR Observations (so ``Patient/{id}`` finds patients imported from FHIR files).
FHIR_SOURCE: Final = "fhir"
#: MQTT 5 session expiry: never (the broker keeps the session and its queue until told).
SESSION_EXPIRY_S: Final = 0xFFFFFFFF
#: Unacknowledged messages the broker may send the listener at once (MQTT 5 Receive Maximum).
RECEIVE_MAXIMUM: Final = 2000
_MAX_BATCH: Final = 5000
_IDLE_S: Final = 0.005
_UNKNOWN_RECHECK_S: Final = 5.0
_KNOWN_RECHECK_S: Final = 60.0  # a 'medtwin link' merge is seen within a minute


class Downstream(Protocol):
    """What is told about every append (the monitor hub is one)."""

    def after_append(self, store: Store, batch: Batch, result: AppendResult) -> Sequence[object]:
        """React to an append; returns what it produced (alerts)."""
        ...

    def save(self) -> int:
        """Persist state (called when the listener stops)."""
        ...


@dataclass(frozen=True, slots=True)
class Message:
    """One received MQTT message."""

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1
    received_epoch_s: float = 0.0


# --------------------------------------------------------------------------------------------
# topics and URLs


def parse_mqtt_url(url: str) -> tuple[str, int, bool]:
    """``(host, port, tls)`` of ``mqtt://host[:port]`` or ``mqtts://host[:port]``.

    Raises
    ------
    ValueError
        For another scheme or no host.

    Examples
    --------
    >>> parse_mqtt_url("mqtts://broker.example.org")
    ('broker.example.org', 8883, True)
    """
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
        raise ValueError(f"{url!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    tls = parts.scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


def topic_prefix(topic_filter: str) -> str:
    """The literal part of a subscription before its first wildcard (``devices/#`` -> ``devices``).

    >>> topic_prefix("ward-3/devices/#")
    'ward-3/devices'
    """
    literal: list[str] = []
    for level in topic_filter.split("/"):
        if level in ("#", "+"):
            break
        literal.append(level)
    return "/".join(literal)


def topic_identity(topic: str, prefix: str) -> tuple[str | None, str | None]:
    """``(patient identifier, device id)`` named by ``{prefix}/{patient}/{device}``.

    Levels that are missing or empty are ``None``.

    >>> topic_identity("devices/p1", "devices")
    ('p1', None)
    >>> topic_identity("elsewhere/p1/d1", "devices")
    (None, None)
    """
    head = prefix.strip("/")
    rest = topic
    if head:
        if not topic.startswith(head + "/"):
            return None, None
        rest = topic[len(head) + 1 :]
    levels = rest.split("/")
    patient = levels[0] or None
    device = levels[1] or None if len(levels) > 1 else None
    return patient, device


# --------------------------------------------------------------------------------------------
# one message -> batches


def _where(message: Message) -> str:
    return f"message {message.mid}"


def _quarantine(
    message: Message,
    source: str,
    reason: str,
    *,
    field_path: str | None = None,
    content: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
) -> QuarantineItem:
    return QuarantineItem(
        source=source,
        reason=reason,
        content=content if content is not None else message.payload.decode("utf-8", "replace"),
        file=f"mqtt:{message.topic}",
        location=_where(message),
        resource_type=resource_type,
        resource_id=resource_id,
        field=field_path,
    )


def _payload_patient_fhir(resource: dict[str, Any]) -> str | None:
    subject = resource.get("subject")
    if not isinstance(subject, dict):
        return None
    ident = subject.get("identifier")
    if isinstance(ident, dict) and isinstance(ident.get("value"), str):
        return str(ident["value"])
    ref = subject.get("reference")
    if isinstance(ref, str) and ref.startswith("Patient/"):
        return ref[8:]
    return None


def decode_message(
    message: Message,
    *,
    prefix: str = "devices",
    fhir_source: str = FHIR_SOURCE,
    now_epoch_s: float | None = None,
    skew_tolerance_s: float = SKEW_TOLERANCE_S,
) -> list[Batch]:
    """The batches (facts and quarantine items) of one message; never raises.

    Parameters
    ----------
    message
        The message.
    prefix
        Topic levels before ``{patient}/{device}``.
    fhir_source
        Source name of FHIR Observations (Open mHealth data points name their own).
    now_epoch_s
        The listener's clock (default: now); readings later than it by more than
        ``skew_tolerance_s`` are quarantined.

    Examples
    --------
    >>> [batch] = decode_message(Message("devices/p1/d1", b"{not json", mid=7))
    >>> item = batch.quarantine[0]
    >>> item.file, item.location, item.reason.split(":")[0]
    ('mqtt:devices/p1/d1', 'message 7', 'invalid JSON')
    """
    from medtwin.ingest.fhir import units_from_resources
    from medtwin.ingest.openmhealth import DEFAULT_SOURCE as OMH_SOURCE
    from medtwin.ingest.openmhealth import read_openmhealth_bytes

    now = time.time() if now_epoch_s is None else now_epoch_s
    topic_patient, _device = topic_identity(message.topic, prefix)
    payload = message.payload.removeprefix(b"\xef\xbb\xbf")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return [
            Batch(
                source=OMH_SOURCE,
                resources_read=1,
                quarantine=[_quarantine(message, OMH_SOURCE, f"invalid JSON: {exc}")],
            )
        ]
    if isinstance(doc, dict) and "resourceType" in doc:
        batch = Batch(source=fhir_source, file=f"mqtt:{message.topic}", resources_read=1)
        if doc.get("resourceType") != "Observation":
            batch.quarantine.append(
                _quarantine(
                    message,
                    fhir_source,
                    f"a live message must be one FHIR Observation, not a {doc.get('resourceType')!r}",
                    field_path="resourceType",
                )
            )
            return [batch]
        named = _payload_patient_fhir(doc)
        if named is not None and topic_patient is not None and named != topic_patient:
            batch.quarantine.append(
                _quarantine(
                    message,
                    fhir_source,
                    f"the topic names patient {topic_patient!r} but the Observation's subject is "
                    f"{named!r}: not stored (which one is right?)",
                    field_path="Observation.subject",
                )
            )
            return [batch]
        if named is None and topic_patient is None:
            batch.quarantine.append(
                _quarantine(
                    message,
                    fhir_source,
                    "no patient: the Observation has no subject and the topic names none "
                    "(publish to devices/{patient identifier}/{device id})",
                    field_path="Observation.subject",
                )
            )
            return [batch]
        if named is None:
            doc = {
                **doc,
                "subject": {"identifier": {"system": DEVICE_USER_SYSTEM, "value": topic_patient}},
            }
        units_from_resources([(doc, _where(message), None)], batch)
        # A live reading needs its patient, not the Device or gateway resources it cites.
        batch.units = [dataclasses.replace(u, requires=()) for u in batch.units]
        batches = [batch]
    else:
        if isinstance(doc, dict) and isinstance(doc.get("header"), dict) and topic_patient:
            user = doc["header"].get("user_id")
            if isinstance(user, str) and user and user != topic_patient:
                return [
                    Batch(
                        source=OMH_SOURCE,
                        resources_read=1,
                        quarantine=[
                            _quarantine(
                                message,
                                OMH_SOURCE,
                                f"the topic names patient {topic_patient!r} but header.user_id is "
                                f"{user!r}: not stored (which one is right?)",
                                field_path="$.header.user_id",
                            )
                        ],
                    )
                ]
            if not user:
                # kept in the document, so a quarantine retry knows the patient too
                doc = {**doc, "header": {**doc["header"], "user_id": topic_patient}}
                payload = orjson.dumps(doc)
        batches = list(
            read_openmhealth_bytes(
                payload,
                file=f"mqtt:{message.topic}",
                patient=None if isinstance(doc, dict) and "header" in doc else topic_patient,
            )
        )
        for batch in batches:
            batch.units = [dataclasses.replace(u, location=_where(message)) for u in batch.units]
            batch.quarantine = [
                dataclasses.replace(q, location=_where(message)) for q in batch.quarantine
            ]
    for batch in batches:
        _refuse_future(batch, message, now, skew_tolerance_s)
    return batches


def _refuse_future(batch: Batch, message: Message, now: float, tolerance_s: float) -> None:
    keep: list[ResourceUnit] = []
    for unit in batch.units:
        latest = max(
            (
                t.timestamp()
                for fact in unit.facts
                for t in (fact.effective_start, fact.effective_end)
                if t is not None
            ),
            default=None,
        )
        if latest is not None and latest > now + tolerance_s:
            ahead = latest - now
            stamp = datetime.fromtimestamp(latest, UTC).isoformat()
            rtype, _, rid = unit.key.partition("/")
            batch.quarantine.append(
                _quarantine(
                    message,
                    batch.source,
                    f"reading stamped {stamp}, {ahead:.0f} s ahead of the listener's clock "
                    f"(tolerance {tolerance_s:.0f} s): check the device clock",
                    field_path="effective time",
                    content=unit.text() or None,
                    resource_type=rtype if rid else None,
                    resource_id=rid.split("#", 1)[0] or None,
                )
            )
        else:
            keep.append(unit)
    batch.units = keep


# --------------------------------------------------------------------------------------------
# messages -> store -> downstream


@dataclass(slots=True)
class LiveReport:
    """Counts of what the live path did."""

    messages: int = 0
    batches: int = 0
    facts_changed: int = 0
    unchanged: int = 0
    quarantined: int = 0
    alerts: int = 0
    patients_created: int = 0
    store_errors: int = 0
    reconnects: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return dataclasses.asdict(self)


@dataclass(slots=True)
class _Known:
    pid: str | None
    checked: float


class _Resolving:
    """The store, with ``resolve_patient`` answered from the listener's identity cache."""

    def __init__(self, store: Store, known: dict[Identifier, _Known]) -> None:
        self._store = store
        self._known = known

    def resolve_patient(self, ref: str) -> str:
        system, bar, value = ref.partition("|")
        if bar:
            known = self._known.get(Identifier(system, value))
            if known is not None and known.pid is not None:
                return known.pid
        return self._store.resolve_patient(ref)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class LiveIngest:
    """Decode messages, append them (one transaction per source), tell the downstream.

    This is the path shared by :class:`MqttListener` and ``medtwin replay``.

    Parameters
    ----------
    store
        Where facts and quarantine entries go.
    downstream
        Told about every append (the monitor hub); its ``save`` runs at :meth:`close`.
    prefix
        Topic levels before ``{patient}/{device}``.
    create_patients
        Give an unknown device user a new patient of its own (merge it later with
        ``medtwin link``) instead of quarantining its readings.
    on_alert
        Called with each alert the downstream returns (printing, notification).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from medtwin.store import open_store
    >>> store = open_store(str(pathlib.Path(tempfile.mkdtemp()) / "live.db"))
    >>> live = LiveIngest(store, create_patients=True)
    >>> body = {"heart_rate": {"value": 61, "unit": "beats/min"},
    ...         "effective_time_frame": {"date_time": "2024-03-01T08:00:00Z"}}
    >>> point = {"header": {"id": "x1", "creation_date_time": "2024-03-01T08:00:01Z",
    ...          "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"}},
    ...          "body": body}
    >>> report = live.handle([Message("devices/watch-1/hr", orjson.dumps(point), mid=1)])
    >>> report.facts_changed, report.patients_created
    (1, 1)
    """

    def __init__(
        self,
        store: Store,
        *,
        downstream: Downstream | None = None,
        prefix: str = "devices",
        fhir_source: str = FHIR_SOURCE,
        skew_tolerance_s: float = SKEW_TOLERANCE_S,
        create_patients: bool = False,
        on_alert: Callable[[object], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.downstream = downstream
        self.prefix = prefix
        self.fhir_source = fhir_source
        self.skew_tolerance_s = skew_tolerance_s
        self.create_patients = create_patients
        self.on_alert = on_alert
        self.clock = clock
        self.report = LiveReport()
        self._known: dict[Identifier, _Known] = {}
        # the store, answering resolve_patient from the identities checked for this batch
        # (the hub resolves every subject of every batch: one query each otherwise)
        self._resolving = cast("Store", _Resolving(store, self._known))
        self.on_append: Callable[[Batch, AppendResult], None] | None = None
        """Called right after each append is committed (before the downstream): metrics."""

    # -- patients ----------------------------------------------------------------------------
    def _patient_of(self, ident: Identifier) -> str | None:
        now = time.monotonic()
        known = self._known.get(ident)
        if known is not None and now - known.checked < (
            _KNOWN_RECHECK_S if known.pid is not None else _UNKNOWN_RECHECK_S
        ):
            return known.pid
        try:
            pid: str | None = self.store.resolve_patient(f"{ident.system}|{ident.value}")
        except LookupError:
            pid = None
        self._known[ident] = _Known(pid, now)
        return pid

    def _check_patients(self, batch: Batch) -> list[Fact]:
        """Quarantine units whose patient is unknown; returns Demographics to create."""
        keep: list[ResourceUnit] = []
        new: dict[Identifier, Fact] = {}
        for unit in batch.units:
            subject = next((f.subject for f in unit.facts if f.subject is not None), None)
            if subject is None or self._patient_of(subject) is not None or subject in new:
                keep.append(unit)
                continue
            if self.create_patients:
                new[subject] = Demographics(
                    source="medtwin:live",
                    source_id=f"Device-user/{subject.value}",
                    subject=subject,
                    identifiers=(subject,),
                )
                keep.append(unit)
                continue
            rtype, _, rid = unit.key.partition("/")
            ref = f"{subject.system}|{subject.value}"
            who = "device user" if subject.system == DEVICE_USER_SYSTEM else "patient"
            batch.quarantine.append(
                QuarantineItem(
                    source=batch.source,
                    reason=(
                        f"unknown {who} {subject.value!r}: no patient has the identifier "
                        f"{ref}. Link it: give the patient that identifier (FHIR Patient.identifier "
                        f"and 'medtwin import'), or listen with --create-patients and then "
                        f"'medtwin link PATIENT \"{ref}\"'; then 'medtwin quarantine retry'"
                    ),
                    content=unit.text(),
                    file=unit.file or batch.file,
                    location=unit.location,
                    resource_type=rtype if rid else None,
                    resource_id=rid.split("#", 1)[0] or None,
                    field="patient",
                    waits_for=f"Patient/{subject.value}",
                )
            )
        batch.units = keep
        return list(new.values())

    # -- the path ----------------------------------------------------------------------------
    def decode(self, messages: Iterable[Message]) -> list[Batch]:
        """Messages -> one batch per source (in arrival order within a source)."""
        merged: dict[str, Batch] = {}
        now = self.clock()
        for message in messages:
            for batch in decode_message(
                message,
                prefix=self.prefix,
                fhir_source=self.fhir_source,
                now_epoch_s=now,
                skew_tolerance_s=self.skew_tolerance_s,
            ):
                into = merged.get(batch.source)
                if into is None:
                    into = merged[batch.source] = Batch(source=batch.source, file="mqtt")
                into.units += batch.units
                into.quarantine += batch.quarantine
                into.resources_read += batch.resources_read
        return list(merged.values())

    def handle(self, messages: Sequence[Message]) -> LiveReport:
        """Append ``messages`` (one transaction per source), then tell the downstream.

        Returns the counts of this call (the running totals are in :attr:`report`). Raises
        only when the store itself fails (the caller retries; nothing was acknowledged).
        """
        done = LiveReport(messages=len(messages))
        batches = self.decode(messages)
        demographics: list[Fact] = []
        for batch in batches:
            demographics += self._check_patients(batch)
        for batch in batches:
            # encoded and hashed once, for the store and then the hub (each would redo it)
            batch.units = [unit.prepared_copy() for unit in batch.units]
        if demographics:
            created = self.store.append_facts(demographics, source="medtwin:live")
            done.patients_created += created.patients_created
            self._known.clear()
        for batch in batches:
            result = self.store.append(batch)
            if self.on_append is not None:
                self.on_append(batch, result)
            done.batches += 1
            done.facts_changed += len(result.changed)
            done.unchanged += result.unchanged
            done.quarantined += result.quarantined
            if self.downstream is not None and result.changed:
                produced = self.downstream.after_append(self._resolving, batch, result)
                done.alerts += len(produced)
                if self.on_alert is not None:
                    for alert in produced:
                        self.on_alert(alert)
        for name in done.__dataclass_fields__:
            if name not in ("store_errors", "reconnects"):
                setattr(self.report, name, getattr(self.report, name) + getattr(done, name))
        return done

    def handle_safely(self, messages: Sequence[Message]) -> bool:
        """:meth:`handle`, isolating a message that makes the store fail.

        When the whole group fails, each message is tried alone; one that still fails is
        quarantined with the error. Returns False when even that fails (the store is down):
        nothing may be acknowledged then.
        """
        try:
            self.handle(messages)
            return True
        except Exception as exc:
            self.report.store_errors += 1
            log.warning("append of %d messages failed: %s", len(messages), exc)
            first_error = exc
        if len(messages) == 1:
            return self._quarantine_failed(messages[0], first_error)
        ok = True
        for message in messages:
            try:
                self.handle([message])
            except Exception as exc:
                self.report.store_errors += 1
                ok = self._quarantine_failed(message, exc) and ok
        return ok

    def _quarantine_failed(self, message: Message, exc: Exception) -> bool:
        item = _quarantine(message, "mqtt", f"could not be stored: {type(exc).__name__}: {exc}")
        try:
            self.store.add_quarantine([item])
        except Exception as again:
            log.error("store unavailable (%s); the message stays unacknowledged", again)
            return False
        self.report.quarantined += 1
        return True

    def close(self) -> None:
        """Save the downstream's state."""
        if self.downstream is not None:
            self.downstream.save()


# --------------------------------------------------------------------------------------------
# the MQTT client


class _Checkpointer:
    """Checkpoints a SQLite store's write-ahead log from a thread of its own.

    SQLite checkpoints in the connection whose commit fills the log: every few thousand
    live readings one commit would copy ~40 MB into the database and stall the listener for
    100-400 ms (the benchmark's periodic tail). Here this thread copies the log into the
    database every ``every_s`` with its own connection (PASSIVE: it never blocks the writer,
    and SQLite releases the GIL while it works); the writer's own checkpoint (every 1000
    pages) then has little left to copy, and restarts the log so that it stays small.
    """

    def __init__(self, store: Store, every_s: float = 0.2) -> None:
        import sqlite3

        self.store = store
        self.every_s = every_s
        self.stop = threading.Event()
        path = store.url.removeprefix("sqlite:///")
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA busy_timeout=1000")
        # The writer still checkpoints (it alone can restart the log, keeping it small), but
        # finds nearly every frame already copied by this thread: a few ms, not a few hundred.
        store.conn.execute("PRAGMA wal_autocheckpoint=1000")  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self.thread.start()

    @classmethod
    def maybe(cls, store: Store) -> _Checkpointer | None:
        """One for a SQLite store, else ``None``."""
        from medtwin.store.sqlite import SqliteStore

        return cls(store) if isinstance(store, SqliteStore) else None

    def _run(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as exc:  # busy or closing: the next round tries again
                log.debug("checkpoint skipped: %s", exc)

    def close(self) -> None:
        """Stop the thread; the store's connection checkpoints by itself again."""
        self.stop.set()
        self.thread.join(5)
        self.connection.close()
        with contextlib.suppress(Exception):  # the store may be closed already
            self.store.conn.execute("PRAGMA wal_autocheckpoint=10000")  # type: ignore[attr-defined]


def _freeze_long_lived() -> None:
    """Move what is alive now (schemas, validators, caches) out of the collector's sight.

    The first message loads the Open mHealth and FHIR schemas and their compiled validators:
    about 100,000 long-lived objects that every full cyclic collection would walk again
    (about 200 ms on the benchmark machine, a latency spike each time). ``gc.freeze`` after
    the first batch keeps them out of those walks; the live path makes no cycles of its own.
    """
    gc.collect()
    gc.freeze()


class MqttListener:
    """Subscribe to a broker and feed every message through :class:`LiveIngest`.

    Parameters
    ----------
    url
        ``mqtt://host:port`` of the broker.
    topic
        Subscription filter (``devices/#``).
    live
        The ingest path.
    client_id
        Stable id of the persistent session: the broker queues QoS 1 messages for it while
        the listener is down (default ``medtwin-listener``; one id per listener process).
    window_s
        Messages arriving within this window are appended together.
    reconnect_max_s
        Longest wait between reconnection attempts (the wait doubles from 1 s).
    """

    def __init__(
        self,
        url: str,
        topic: str,
        live: LiveIngest,
        *,
        client_id: str = "medtwin-listener",
        window_s: float = BATCH_WINDOW_S,
        reconnect_max_s: float = 30.0,
        keepalive_s: int = 30,
    ) -> None:
        self.host, self.port, self.tls = parse_mqtt_url(url)
        self.url = url
        self.topic = topic
        self.live = live
        self.client_id = client_id
        self.window_s = window_s
        self.reconnect_max_s = reconnect_max_s
        self.keepalive_s = keepalive_s
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self._inbox: queue.Queue[Message] = queue.Queue()
        self._client: Any = None
        self.session_present = False
        self._checkpointer: _Checkpointer | None = None
        self.on_connect_change: Callable[[bool], None] | None = None
        self._unreachable = False  # said once an outage, until the broker answers

    # callbacks run in paho's network thread
    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        # the TCP connection failed (no broker there, refused, unknown host): paho retries
        # with back-off; without a word the listener would look connected
        if not self._unreachable:
            self._unreachable = True
            log.warning(
                "cannot reach the broker %s; retrying (every %d s at most) until it answers",
                self.url,
                int(self.reconnect_max_s),
            )

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker %s refused the connection: %s", self.url, reason)
            return
        self.session_present = bool(getattr(flags, "session_present", False))
        self._unreachable = False
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        # connected means subscribed: a message published from now on reaches this session
        if self.connected.is_set():
            return
        if self.live.report.batches or self.live.report.messages:
            self.live.report.reconnects += 1
        log.info(
            "connected to %s as %s, subscribed to %s (session present: %s)",
            self.url,
            self.client_id,
            self.topic,
            self.session_present,
        )
        self.connected.set()
        if self.on_connect_change is not None:
            self.on_connect_change(True)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self.connected.is_set() and not self.stopping.is_set():
            log.warning("lost the broker %s (%s); reconnecting", self.url, reason)
        self.connected.clear()
        if self.on_connect_change is not None:
            self.on_connect_change(False)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._inbox.put(Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, time.time()))

    def start(self) -> None:
        """Connect (in the background, retrying with back-off until the broker answers)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(self.reconnect_max_s)))
        if self.tls:
            client.tls_set()
        self._client = client
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.SessionExpiryInterval = SESSION_EXPIRY_S
        # Without it the broker sends a session only 20 unacknowledged messages at a time
        # (Mosquitto's max_inflight_messages): batches of 20, whatever the window.
        connect.ReceiveMaximum = RECEIVE_MAXIMUM
        client.connect_async(
            self.host,
            self.port,
            keepalive=self.keepalive_s,
            clean_start=False,
            properties=connect,
        )
        client.loop_start()

    def _gather(self) -> list[Message]:
        """The next group: what arrives within the window (or until a short lull)."""
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        group = [first]
        deadline = time.monotonic() + self.window_s
        while len(group) < _MAX_BATCH:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                group.append(self._inbox.get(timeout=min(left, _IDLE_S)))
            except queue.Empty:
                break  # a lull: the broker's in-flight window is probably full
        return group

    def _ack(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)

    def run(self, stop: threading.Event | None = None) -> LiveReport:
        """Process messages until ``stop`` (or :meth:`stop`); then finish, save, disconnect."""
        if self._client is None:
            self.start()
        delay = 0.5
        frozen = False
        self._checkpointer = _Checkpointer.maybe(self.live.store)
        try:
            while not self.stopping.is_set() and not (stop is not None and stop.is_set()):
                group = self._gather()
                if not group:
                    continue
                while not self.live.handle_safely(group):
                    # the store is down: keep the group, acknowledge nothing, retry
                    if self.stopping.is_set() or (stop is not None and stop.is_set()):
                        return self.live.report
                    time.sleep(delay)
                    delay = min(delay * 2, self.reconnect_max_s)
                delay = 0.5
                self._ack(group)
                if not frozen:
                    _freeze_long_lived()
                    frozen = True
            # finish what has arrived (the current batch), acknowledge it
            rest: list[Message] = []
            while True:
                try:
                    rest.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            if rest and self.live.handle_safely(rest):
                self._ack(rest)
        finally:
            self.close()
        return self.live.report

    def stop(self) -> None:
        """Ask :meth:`run` to finish the current batch and return."""
        self.stopping.set()

    def close(self) -> None:
        """Save downstream state and disconnect (unacknowledged messages stay at the broker)."""
        self.stopping.set()
        try:
            self.live.close()
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        finally:
            client, self._client = self._client, None
            if client is not None:
                time.sleep(0.05)  # let the last acknowledgements leave
                client.disconnect()
                client.loop_stop()
