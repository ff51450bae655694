"""The SQL implementation of the Store protocol, shared by SQLite and PostgreSQL.

The hot paths (append, timeline) talk to the DB-API driver directly (``sqlite3``,
``psycopg``); the schema is created and upgraded by Alembic migrations
(:mod:`medtwin.store.migrations`). A back-end only supplies a :class:`Dialect`:
parameter style, how times, booleans and JSON travel, and transactions.

Bitemporal rules, in SQL:

* current fact: ``superseded_at IS NULL AND NOT retracted``;
* as of ``T``: ``recorded_at <= T AND (superseded_at IS NULL OR superseded_at > T)``
  and the version in force at ``T`` is not a retraction.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson

from medtwin.record.batch import Batch, PreparedFact, QuarantineItem, ResourceUnit
from medtwin.record.facts import (
    VOID_RESULT_STATUSES,
    Demographics,
    Fact,
    Identifier,
    fact_from_dict,
)
from medtwin.record.time import utc_now
from medtwin.store.alerts import AlertBook
from medtwin.store.base import (
    AccessEntry,
    AppendResult,
    ObservationValue,
    PatientNotFoundError,
    PatientSummary,
    QuarantineEntry,
    StoredFact,
)
from medtwin.store.twins import TwinBook

__all__ = ["Dialect", "SqlStore", "default_actor"]

_CHUNK = 400

_FACT_COLUMNS = (
    "patient_id, kind, resource_type, source, source_id, version, content_hash, code_system, "
    "code, display, status, effective_start, effective_end, value_num, unit, value_text, part_of, "
    "recorded_at, superseded_at, retracted, data, raw, source_recorded_at"
)
_READ_COLUMNS = "id, patient_id, version, recorded_at, superseded_at, content_hash, data, kind"


def default_actor() -> str:
    """Who is acting: ``MEDTWIN_USER`` or the operating-system user."""
    actor = os.environ.get("MEDTWIN_USER")
    if actor:
        return actor
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


class Dialect:
    """How one database speaks. Subclasses override the conversions they need."""

    name = "generic"
    placeholder = "?"

    def sql(self, text: str) -> str:
        """Rewrite ``?`` placeholders for the driver."""
        return text

    def ts(self, value: datetime | None) -> Any:
        """A timestamp parameter."""
        return value

    def ts_out(self, value: Any) -> datetime | None:
        """A timestamp read back, timezone-aware UTC."""
        return value  # type: ignore[no-any-return]

    def json(self, data: bytes | None) -> Any:
        """A JSON parameter from already-serialised JSON bytes."""
        return data.decode() if data is not None else None

    def json_out(self, value: Any) -> Any:
        """A JSON value read back, as Python objects."""
        if value is None or isinstance(value, dict | list):
            return value
        return orjson.loads(value)

    def boolean(self, value: bool) -> Any:
        """A boolean parameter."""
        return value

    def true(self) -> str:
        """SQL literal for true."""
        return "TRUE"

    def false(self) -> str:
        """SQL literal for false."""
        return "FALSE"


class SqlStore(AlertBook, TwinBook):
    """A store over a DB-API connection; see :class:`medtwin.store.base.Store`."""

    dialect: Dialect
    url: str
    actor: str

    def __init__(self, connection: Any, dialect: Dialect, url: str, actor: str | None = None):
        self.conn = connection
        self.dialect = dialect
        self.url = url
        self.actor = actor or default_actor()
        self._patient_cache: dict[Identifier, str] = {}

    # -- low-level helpers -------------------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self.conn.cursor()
        cursor.execute(self.dialect.sql(sql), params)
        return cursor

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor = self.conn.cursor()
            cursor.executemany(self.dialect.sql(sql), rows)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self._execute(sql, params).fetchall())

    def _begin(self) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        self.conn.commit()

    def _rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Tune the back-end for a long run of appends (an import); restores it after."""
        yield

    def checkpoint(self) -> None:
        """Move what other connections have committed into the main database, if the back-end
        keeps a write-ahead log apart from it (SQLite); a no-op elsewhere.

        An import calls it from its coordinating process while the workers parse, so that the
        disk writes overlap with their work instead of all waiting for the end.
        """

    # -- access log ------------------------------------------------------------------------
    def log_access(self, action: str, patient_id: str | None, what: str, count: int = 1) -> None:
        """Append an access-log row (in the current transaction, if any)."""
        self._execute(
            "INSERT INTO access_log (at, actor, action, patient_id, what, count) VALUES (?,?,?,?,?,?)",
            (self.dialect.ts(utc_now()), self.actor, action, patient_id, what, count),
        )

    def _log_read(self, action: str, patient_id: str | None, what: str, count: int) -> None:
        self._begin()
        try:
            self.log_access(action, patient_id, what, count)
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def access_log(self, *, patient_id: str | None = None, limit: int = 1000) -> list[AccessEntry]:
        """The newest access-log rows, newest first."""
        where, params = ("WHERE patient_id = ?", [patient_id]) if patient_id else ("", [])
        rows = self._query(
            f"SELECT at, actor, action, patient_id, what, count FROM access_log {where} "
            f"ORDER BY id DESC LIMIT {int(limit)}",
            params,
        )
        return [AccessEntry(self._ts(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def _ts(self, value: Any) -> datetime:
        out = self.dialect.ts_out(value)
        assert out is not None
        return out

    # -- patients ----------------------------------------------------------------------------
    def _lookup_identifiers(self, identifiers: Iterable[Identifier]) -> dict[Identifier, str]:
        found: dict[Identifier, str] = {}
        missing = []
        for ident in identifiers:
            pid = self._patient_cache.get(ident)
            if pid is None:
                missing.append(ident)
            else:
                found[ident] = pid
        for i in range(0, len(missing), _CHUNK):
            chunk = missing[i : i + _CHUNK]
            clause = " OR ".join(["(i.system = ? AND i.value = ?)"] * len(chunk))
            params: list[Any] = []
            for ident in chunk:
                params += [ident.system, ident.value]
            rows = self._query(
                "SELECT i.system, i.value, COALESCE(p.merged_into, p.id) FROM identifiers i "
                f"JOIN patients p ON p.id = i.patient_id WHERE {clause}",
                params,
            )
            for system, value, pid in rows:
                ident = Identifier(system, value)
                found[ident] = pid
                self._patient_cache[ident] = pid
        return found

    def resolve_patient(self, ref: str) -> str:
        """Medtwin id for a medtwin id, ``system|value`` or a bare identifier value."""
        row = self._query("SELECT COALESCE(merged_into, id) FROM patients WHERE id = ?", (ref,))
        if row:
            return str(row[0][0])
        if "|" in ref:
            system, value = ref.split("|", 1)
            rows = self._query(
                "SELECT DISTINCT COALESCE(p.merged_into, p.id) FROM identifiers i "
                "JOIN patients p ON p.id = i.patient_id WHERE i.system = ? AND i.value = ?",
                (system, value),
            )
        else:
            value = ref.split("/", 1)[1] if ref.startswith("Patient/") else ref
            rows = self._query(
                "SELECT DISTINCT COALESCE(p.merged_into, p.id) FROM identifiers i "
                "JOIN patients p ON p.id = i.patient_id WHERE i.value = ?",
                (value,),
            )
        if not rows:
            from medtwin.record.codes import nhs_number

            digits = nhs_number(ref.split("|", 1)[-1])
            if digits is not None and digits != ref.split("|", 1)[-1]:
                # an NHS number as printed ("943 476 5919"): stored as its 10 digits
                prefix = ref.split("|", 1)[0] + "|" if "|" in ref else ""
                return self.resolve_patient(prefix + digits)
            raise PatientNotFoundError(
                f"no patient with id or identifier {ref!r} (try 'medtwin patients --search ...')"
            )
        if len(rows) > 1:
            raise PatientNotFoundError(
                f"identifier {ref!r} matches {len(rows)} patients; give it as 'system|value'"
            )
        return str(rows[0][0])

    def _summary(
        self, row: Sequence[Any], identifiers: tuple[Identifier, ...] = ()
    ) -> PatientSummary:
        return PatientSummary(row[0], row[1], row[2], row[3], row[4], identifiers)

    def patient(self, patient_id: str) -> PatientSummary:
        """One patient with all linked identifiers (merged patients' identifiers included)."""
        pid = self.resolve_patient(patient_id)
        rows = self._query(
            "SELECT id, family, given, birth_date, gender FROM patients WHERE id = ?", (pid,)
        )
        idents = self._query(
            "SELECT i.system, i.value FROM identifiers i JOIN patients p ON p.id = i.patient_id "
            "WHERE COALESCE(p.merged_into, p.id) = ? ORDER BY i.system, i.value",
            (pid,),
        )
        self._log_read("read", pid, "patient", 1)
        return self._summary(rows[0], tuple(Identifier(s, v) for s, v in idents))

    def patients(
        self, *, search: str | None = None, birth_date: str | None = None, limit: int = 1000
    ) -> list[PatientSummary]:
        """Patients (not merged away), searching names and identifier values, and birth date."""
        where = ["merged_into IS NULL"]
        params: list[Any] = []
        if search:
            for word in search.lower().split():
                # the words are text, not patterns: LIKE's % and _ in them match themselves
                where.append("search_text LIKE ? ESCAPE '\\'")
                params.append(f"%{_like_literal(word)}%")
        if birth_date:
            where.append("birth_date LIKE ? ESCAPE '\\'")
            params.append(f"{_like_literal(birth_date)}%")
        rows = self._query(
            "SELECT id, family, given, birth_date, gender FROM patients WHERE "
            + " AND ".join(where)
            + f" ORDER BY family, given, id LIMIT {int(limit)}",
            params,
        )
        what = "patient list" + (f" search={search!r}" if search else "")
        what += f" birth_date={birth_date}" if birth_date else ""
        self._log_read("list", None, what, len(rows))
        return [self._summary(r) for r in rows]

    def _create_patient(self, now: datetime) -> str:
        pid = "mt-" + uuid.uuid4().hex[:16]
        ts = self.dialect.ts(now)
        self._execute(
            "INSERT INTO patients (id, created_at, updated_at) VALUES (?,?,?)", (pid, ts, ts)
        )
        return pid

    def _update_demographics(self, pid: str, fact: Demographics, now: datetime) -> None:
        given = " ".join(fact.given) or None
        words = [fact.family or "", given or "", fact.birth_date or ""]
        words += [ident.value for ident in fact.identifiers]
        self._execute(
            "UPDATE patients SET family = ?, given = ?, birth_date = ?, gender = ?, "
            "search_text = ?, updated_at = ? WHERE id = ?",
            (
                fact.family,
                given,
                fact.birth_date,
                fact.gender,
                " ".join(words).lower(),
                self.dialect.ts(now),
                pid,
            ),
        )

    def link(self, keep: str, merge: str) -> str:
        """Merge patient ``merge`` into ``keep``: facts and identifiers move, ``merge`` resolves to ``keep``."""
        keep_id = self.resolve_patient(keep)
        merge_id = self.resolve_patient(merge)
        if keep_id == merge_id:
            return keep_id
        now = utc_now()
        self._begin()
        try:
            self._execute(
                "UPDATE facts SET patient_id = ? WHERE patient_id = ?", (keep_id, merge_id)
            )
            self._execute(
                "UPDATE patients SET merged_into = ?, updated_at = ? WHERE id = ? OR merged_into = ?",
                (keep_id, self.dialect.ts(now), merge_id, merge_id),
            )
            self._execute(
                "UPDATE identifiers SET patient_id = ? WHERE patient_id = ?", (keep_id, merge_id)
            )
            # search text of the survivor gains the merged identifiers
            idents = self._query("SELECT value FROM identifiers WHERE patient_id = ?", (keep_id,))
            row = self._query(
                "SELECT family, given, birth_date FROM patients WHERE id = ?", (keep_id,)
            )[0]
            words = [row[0] or "", row[1] or "", row[2] or ""] + [v for (v,) in idents]
            self._execute(
                "UPDATE patients SET search_text = ? WHERE id = ?",
                (" ".join(words).lower(), keep_id),
            )
            self.log_access("link", keep_id, f"merged {merge_id} into {keep_id}", 1)
            self.log_access("link", merge_id, f"merged {merge_id} into {keep_id}", 1)
            self._commit()
        except BaseException:
            self._rollback()
            raise
        self._patient_cache.clear()
        return keep_id

    # -- append ----------------------------------------------------------------------------
    def append_facts(self, facts: Iterable[Fact], *, source: str) -> AppendResult:
        """Append facts that need nothing else, each its own unit, in one transaction."""
        units = [ResourceUnit(key=f.source_id, facts=(f,)) for f in facts]
        return self.append(Batch(source=source, units=units))

    def append(self, batch: Batch) -> AppendResult:
        """Write ``batch`` atomically; see the module docstring for the rules."""
        result = AppendResult(resources_read=batch.resources_read)
        now = utc_now()
        self._begin()
        try:
            self._append(batch, now, result)
            self._commit()
        except BaseException:
            self._rollback()
            self._patient_cache.clear()
            raise
        return result

    def append_many(self, batches: Sequence[Batch]) -> list[AppendResult]:
        """Write several batches, one after the other, in one transaction (all or none).

        The same as appending them in turn, in fewer commits: an import writes a few
        Bundles at a time, so index pages that every Bundle touches are written to the
        log once per group instead of once per Bundle.
        """
        results = [AppendResult(resources_read=batch.resources_read) for batch in batches]
        now = utc_now()
        self._begin()
        try:
            for batch, result in zip(batches, results, strict=True):
                self._append(batch, now, result)
            self._commit()
        except BaseException:
            self._rollback()
            self._patient_cache.clear()
            raise
        return results

    def _append(self, batch: Batch, now: datetime, result: AppendResult) -> None:
        source = batch.source
        units = batch.units
        quarantine: list[QuarantineItem] = list(batch.quarantine)
        prepared = [unit.prepare() for unit in units]

        # 1. patients: identifiers of subjects and of demographics
        subjects: set[tuple[str, str]] = set()
        wanted: set[Identifier] = set()
        for facts in prepared:
            for p in facts:
                if p.subject is not None:
                    subjects.add(p.subject)  # a Bundle has one patient: one Identifier below
                if p.demographics is not None:
                    wanted.update(p.demographics.identifiers)
        wanted.update(Identifier(*subject) for subject in subjects)
        known = self._lookup_identifiers(wanted)
        new_identifiers: list[tuple[Identifier, str]] = []
        demographics: list[tuple[str, Demographics]] = []
        for facts in prepared:
            for p in facts:
                fact = p.demographics
                if fact is None:
                    continue
                idents = list(fact.identifiers)
                if fact.subject is not None and fact.subject not in idents:
                    idents.insert(0, fact.subject)
                pids = {known[i] for i in idents if i in known}
                if pids:
                    # the FHIR logical id of this source wins over other identifiers
                    new_pid = known.get(idents[0]) or sorted(pids)[0]
                else:
                    new_pid = self._create_patient(now)
                    result.patients_created += 1
                for ident in idents:
                    if ident not in known:
                        known[ident] = new_pid
                        self._patient_cache[ident] = new_pid
                        new_identifiers.append((ident, new_pid))
                if not fact.retracted:
                    demographics.append((new_pid, fact))
        by_subject = {(i.system, i.value): pid for i, pid in known.items()}
        ts_now = self.dialect.ts(now)
        self._executemany(
            "INSERT INTO identifiers (system, value, patient_id, source, created_at) "
            "VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
            [(i.system, i.value, pid, source, ts_now) for i, pid in new_identifiers],
        )

        # 2. dependencies: subjects known, required resources present (here or in the store)
        keys_in_batch = {u.key for u in units}
        required = {r for u in units for r in u.requires if r not in keys_in_batch}
        present = self._present_keys(source, required)
        blocked: dict[str, str] = {}
        held = {f"{q.resource_type}/{q.resource_id}" for q in quarantine if q.resource_id}
        changed = True
        while changed:
            changed = False
            for unit, facts in zip(units, prepared, strict=True):
                if unit.key in blocked:
                    continue
                reason = None
                for p in facts:
                    if p.subject is not None and p.subject not in by_subject:
                        how = ""
                        if p.subject[0] == "urn:medtwin:device-user":  # a device's wearer
                            how = (
                                ": import again with --create-patient to give the device user "
                                "a patient of its own, or give the patient that identifier "
                                "(then 'medtwin quarantine retry')"
                            )
                        reason = (
                            f"waits for patient {p.subject[1]!r}: no patient with that "
                            f"identifier in this file or the store{how}",
                            f"Patient/{p.subject[1]}",
                        )
                        break
                if reason is None:
                    for req in unit.requires:
                        if req in blocked or req in held:
                            reason = (f"references {req}, which is in quarantine", req)
                            break
                        if req not in keys_in_batch and req not in present:
                            reason = (
                                f"references {req}, which is not in this file or the store",
                                req,
                            )
                            break
                if reason is not None:
                    blocked[unit.key] = reason[0]
                    rtype, _, rid = unit.key.partition("/")
                    quarantine.append(
                        QuarantineItem(
                            source=source,
                            reason=reason[0],
                            content=unit.text() or _raw_text(facts),
                            file=unit.file or batch.file,
                            location=unit.location,
                            resource_type=rtype,
                            resource_id=rid.split("#", 1)[0],
                            field="reference",
                            waits_for=reason[1],
                        )
                    )
                    changed = True

        # 3. facts: insert new ones and new versions, skip identical re-sends
        good = [u for u in units if u.key not in blocked]
        todo = [
            p
            for unit, facts in zip(units, prepared, strict=True)
            if unit.key not in blocked
            for p in facts
        ]
        current = self._current_versions(source, [p.source_id for p in todo])
        # A batch (a Bundle, an NDJSON batch or part) may hold several versions of one
        # resource. On a re-send of that batch, its earlier copies are versions already
        # stored: they are skipped, and only the batch's last copy of each resource is
        # compared with the current version, so the whole re-send changes nothing.
        last_copy: dict[str, int] = {p.source_id: i for i, p in enumerate(todo)}
        stored_hashes = (
            {sid: entry[4] for sid, entry in current.items()}
            if len(last_copy) < len(todo)
            else None
        )
        rows: list[tuple[Any, ...]] = []
        supersede: list[tuple[Any, ...]] = []
        pending_rows: dict[str, int] = {}
        touched: dict[str | None, int] = {}
        dialect = self.dialect
        ts = dialect.ts
        json = dialect.json
        for index, p in enumerate(todo):
            pid = by_subject[p.subject] if p.subject is not None else None
            digest = p.digest
            previous = current.get(p.source_id)
            superseded = None
            if previous is not None:
                old_id, old_version, old_hash, old_recorded, old_hashes = previous
                if old_hash == digest or (
                    stored_hashes is not None
                    and last_copy[p.source_id] != index
                    and digest in stored_hashes.get(p.source_id, ())
                ):
                    result.unchanged += 1
                    continue
                version = old_version + 1
                if (
                    p.source_recorded_at is not None
                    and old_recorded is not None
                    and p.source_recorded_at < old_recorded
                ):
                    # An older version arriving late (a replayed message, a lagging server):
                    # kept in the history, never current; a second arrival changes nothing.
                    if digest in old_hashes:
                        result.unchanged += 1
                        continue
                    result.stale += 1
                    current[p.source_id] = (
                        old_id,
                        version,
                        old_hash,
                        old_recorded,
                        old_hashes | {digest},
                    )
                    superseded = ts_now
                elif old_id >= 0:
                    supersede.append((ts_now, old_id))
                else:
                    # the same source id twice in one batch: the later one wins
                    pending = rows[pending_rows[p.source_id]]
                    rows[pending_rows[p.source_id]] = (*pending[:18], ts_now, *pending[19:])
                if superseded is None:
                    if p.retracted:
                        result.retracted += 1
                    else:
                        result.new_versions += 1
                        result.changed.append(p.source_id)
            else:
                version = 1
                if p.retracted:
                    result.retracted += 1
                else:
                    result.inserted += 1
                    result.changed.append(p.source_id)
            if superseded is None:
                known_hashes = previous[4] if previous is not None else frozenset()
                current[p.source_id] = (
                    -1,
                    version,
                    digest,
                    p.source_recorded_at,
                    known_hashes | {digest},
                )
                pending_rows[p.source_id] = len(rows)
            rows.append(
                (
                    pid,
                    p.kind,
                    p.resource_type,
                    source,
                    p.source_id,
                    version,
                    digest,
                    p.code_system,
                    p.code,
                    p.display,
                    p.status,
                    ts(p.effective_start),
                    ts(p.effective_end),
                    p.value_num,
                    p.unit,
                    p.value_text,
                    p.part_of,
                    ts_now,
                    superseded,
                    dialect.boolean(p.retracted),
                    json(p.data),
                    json(p.raw),
                    ts(p.source_recorded_at),
                )
            )
            touched[pid] = touched.get(pid, 0) + 1
        self._executemany("UPDATE facts SET superseded_at = ? WHERE id = ?", supersede)
        self._executemany(
            f"INSERT INTO facts ({_FACT_COLUMNS}) VALUES ({','.join(['?'] * 23)})", rows
        )
        for pid, demo in demographics:
            self._update_demographics(pid, demo, now)
        self._executemany(
            "INSERT INTO resource_identifiers (source, resource_type, system, value, source_id) "
            "VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
            [
                (source, unit.key.split("/", 1)[0], system, value, unit.key)
                for unit in good
                for system, value in unit.identifiers
            ],
        )

        # 4. quarantine: new entries; resolve entries of resources now stored
        result.quarantined += self.add_quarantine(quarantine)
        stored_keys = [u.key for u in good]
        result.resolved_quarantine += self._resolve_keys(source, stored_keys, now)

        # 5. access log: one row per patient written
        where = batch.file or "append"
        self._executemany(
            "INSERT INTO access_log (at, actor, action, patient_id, what, count) VALUES (?,?,?,?,?,?)",
            [
                (ts_now, self.actor, "write", pid, f"import {where}", count)
                for pid, count in touched.items()
                if pid is not None
            ],
        )

    def find_resource(self, source: str, resource_type: str, system: str, value: str) -> str | None:
        """``Type/id`` of a stored resource with this identifier (``system=""``: any system)."""
        if system:
            rows = self._query(
                "SELECT source_id FROM resource_identifiers WHERE source = ? AND resource_type = ? "
                "AND system = ? AND value = ?",
                (source, resource_type, system, value),
            )
        else:
            rows = self._query(
                "SELECT source_id FROM resource_identifiers WHERE source = ? AND resource_type = ? "
                "AND value = ?",
                (source, resource_type, value),
            )
        return str(rows[0][0]) if len(rows) == 1 else None

    def resource_json(self, source: str, source_id: str) -> dict[str, Any] | None:
        """The JSON of the current version of a stored resource (``Type/id`` of ``source``), or
        ``None``: what the import reads of a resource another file references (a Medication)."""
        rows = self._query(
            "SELECT raw, patient_id FROM facts WHERE source = ? AND source_id = ? "
            "AND superseded_at IS NULL AND raw IS NOT NULL",
            (source, source_id),
        )
        if not rows:
            return None
        raw, patient_id = rows[0]
        if patient_id is not None:
            self._log_read("read", patient_id, f"resource {source}:{source_id}", 1)
        out = self.dialect.json_out(raw)
        return out if isinstance(out, dict) else None

    def _present_keys(self, source: str, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        present: set[str] = set()
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            rows = self._query(
                "SELECT source_id FROM facts WHERE source = ? AND superseded_at IS NULL "
                f"AND retracted = {self.dialect.false()} AND source_id IN ({','.join(['?'] * len(chunk))})",
                [source, *chunk],
            )
            present.update(r[0] for r in rows)
        return present

    def _current_versions(
        self, source: str, source_ids: Sequence[str]
    ) -> dict[str, tuple[int, int, str, datetime | None, frozenset[str]]]:
        """Per source id: current row id, highest version, current hash, the source's
        recorded time of the current version, and the hashes of every version."""
        out: dict[str, tuple[int, int, str, datetime | None, frozenset[str]]] = {}
        ts_out = self.dialect.ts_out
        for i in range(0, len(source_ids), _CHUNK):
            chunk = source_ids[i : i + _CHUNK]
            rows = self._query(
                "SELECT source_id, id, version, content_hash, superseded_at, source_recorded_at "
                f"FROM facts WHERE source = ? AND source_id IN ({','.join(['?'] * len(chunk))})",
                [source, *chunk],
            )
            hashes: dict[str, set[str]] = {}
            top: dict[str, int] = {}
            for sid, _fid, version, digest, _superseded, _recorded in rows:
                hashes.setdefault(sid, set()).add(digest)
                top[sid] = max(version, top.get(sid, 0))
            for sid, fid, _version, digest, superseded, recorded in rows:
                if superseded is None:
                    out[sid] = (fid, top[sid], digest, ts_out(recorded), frozenset(hashes[sid]))
        return out

    def _resolve_keys(self, source: str, keys: Sequence[str], now: datetime) -> int:
        if not keys:
            return 0
        # cheap check first: most imports have no open quarantine for this source
        if not self._query(
            "SELECT 1 FROM quarantine WHERE source = ? AND status = 'open' LIMIT 1", (source,)
        ):
            return 0
        total = 0
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            cursor = self._execute(
                "UPDATE quarantine SET status = 'resolved', resolved_at = ? WHERE source = ? AND "
                "status = 'open' AND (resource_type || '/' || resource_id) IN "
                f"({','.join(['?'] * len(chunk))})",
                [self.dialect.ts(now), source, *chunk],
            )
            total += max(cursor.rowcount, 0)
        return total

    # -- quarantine ------------------------------------------------------------------------
    def add_quarantine(self, items: Iterable[QuarantineItem]) -> int:
        """Store items; an open entry with the same place and content is not duplicated."""
        now = self.dialect.ts(utc_now())
        added = 0
        for item in items:
            cursor = self._execute(
                "INSERT INTO quarantine (created_at, source, file, location, resource_type, "
                "resource_id, field, reason, content, content_hash, waits_for, status) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,'open') ON CONFLICT DO NOTHING",
                (
                    now,
                    item.source,
                    item.file,
                    item.location,
                    item.resource_type,
                    item.resource_id,
                    item.field,
                    item.reason,
                    item.content,
                    item.content_hash,
                    item.waits_for,
                ),
            )
            added += max(cursor.rowcount, 0)
        return added

    def quarantine(self, *, status: str | None = "open") -> list[QuarantineEntry]:
        """Quarantine entries (``status=None`` for all)."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self._query(
            "SELECT id, created_at, status, resolved_at, source, reason, content, file, location, "
            f"resource_type, resource_id, field, waits_for FROM quarantine {where} ORDER BY id",
            params,
        )
        return [
            QuarantineEntry(
                id=r[0],
                created_at=self._ts(r[1]),
                status=r[2],
                resolved_at=self.dialect.ts_out(r[3]),
                item=QuarantineItem(
                    source=r[4],
                    reason=r[5],
                    content=r[6],
                    file=r[7],
                    location=r[8],
                    resource_type=r[9],
                    resource_id=r[10],
                    field=r[11],
                    waits_for=r[12],
                ),
            )
            for r in rows
        ]

    def resolve_quarantine(self, ids: Iterable[int]) -> None:
        """Mark the given entries resolved."""
        now = self.dialect.ts(utc_now())
        self._begin()
        try:
            self._executemany(
                "UPDATE quarantine SET status = 'resolved', resolved_at = ? WHERE id = ?",
                [(now, i) for i in ids],
            )
            self._commit()
        except BaseException:
            self._rollback()
            raise

    # -- reads -----------------------------------------------------------------------------
    def _stored(self, row: Sequence[Any], raw: Any = None) -> StoredFact:
        data = self.dialect.json_out(row[6])
        if raw is not None:
            data["raw"] = self.dialect.json_out(raw)
        return StoredFact(
            id=row[0],
            patient_id=row[1],
            version=row[2],
            recorded_at=self._ts(row[3]),
            superseded_at=self.dialect.ts_out(row[4]),
            content_hash=row[5],
            fact=fact_from_dict(data, row[7]),
        )

    def _effective_range(
        self, where: list[str], params: list[Any], start: datetime | None, end: datetime | None
    ) -> None:
        """Add the clauses of an effective time in ``[start, end)`` (either end open)."""
        if start is not None:
            where.append("effective_start >= ?")
            params.append(self.dialect.ts(start))
        if end is not None:
            where.append("effective_start < ?")
            params.append(self.dialect.ts(end))

    def _as_of_clause(self, as_of: datetime | None, params: list[Any]) -> str:
        if as_of is None:
            return f"superseded_at IS NULL AND retracted = {self.dialect.false()}"
        params += [self.dialect.ts(as_of), self.dialect.ts(as_of)]
        return (
            "recorded_at <= ? AND (superseded_at IS NULL OR superseded_at > ?) "
            f"AND retracted = {self.dialect.false()}"
        )

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
        """Current (or as-of) facts of a patient ordered by effective time."""
        pid = self.resolve_patient(patient_id)
        params: list[Any] = [pid]
        where = ["patient_id = ?"]
        if codes:
            where.append(f"code IN ({','.join(['?'] * len(codes))})")
            params += list(codes)
        if kinds:
            where.append(f"kind IN ({','.join(['?'] * len(kinds))})")
            params += list(kinds)
        if resource_types:
            where.append(f"resource_type IN ({','.join(['?'] * len(resource_types))})")
            params += list(resource_types)
        self._effective_range(where, params, start, end)
        where.append(self._as_of_clause(as_of, params))
        cols = _READ_COLUMNS + (", raw" if include_raw else "")
        rows = self._query(
            f"SELECT {cols} FROM facts WHERE {' AND '.join(where)} ORDER BY effective_start NULLS FIRST, id",
            params,
        )
        what = "timeline" + (f" codes={','.join(codes)}" if codes else "")
        what += f" types={','.join(resource_types)}" if resource_types else ""
        what += f" as_of={as_of.isoformat()}" if as_of else ""
        self._log_read("read", pid, what, len(rows))
        return [self._stored(r, r[8] if include_raw else None) for r in rows]

    def observation_values(
        self,
        patient_id: str,
        *,
        codes: Sequence[str],
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ObservationValue]:
        """The current observations of ``codes`` in ``[start, end)`` as their columns, in the
        timeline's order (see :meth:`Store.observation_values`)."""
        pid = self.resolve_patient(patient_id)
        if not codes:
            return []
        params: list[Any] = [pid, *codes]
        where = [
            "patient_id = ?",
            "kind = 'Observation'",
            f"code IN ({','.join(['?'] * len(codes))})",
            "effective_start IS NOT NULL",
        ]
        self._effective_range(where, params, start, end)
        where.append(self._as_of_clause(None, params))
        rows = self._query(
            "SELECT effective_start, value_num, unit, status, value_text FROM facts WHERE "
            f"{' AND '.join(where)} ORDER BY effective_start, id",
            params,
        )
        self._log_read("read", pid, f"values codes={','.join(codes)}", len(rows))
        ts_out = self.dialect.ts_out
        return [
            ObservationValue(ts_out(t), None if v is None else float(v), u, st, text)  # type: ignore[arg-type]
            for t, v, u, st, text in rows
        ]

    def latest(
        self,
        patient_id: str,
        *,
        codes: Sequence[str] = (),
        as_of: datetime | None = None,
        include_raw: bool = False,
    ) -> dict[str, StoredFact]:
        """The most recent current observation per code (components included); a cancelled
        one (:data:`~medtwin.record.facts.VOID_RESULT_STATUSES`) is no result, even with a
        value.

        The newest is picked in the database (one row per code, the timeline's order: latest
        effective time, then the last stored), so a patient with a year of minute-by-minute
        wearable readings costs one row per code to read, not every reading. ``include_raw``:
        with each its source resource (as :meth:`timeline`)."""
        pid = self.resolve_patient(patient_id)
        params: list[Any] = [pid]
        where = ["patient_id = ?", "kind = 'Observation'", "code IS NOT NULL"]
        if codes:
            where.append(f"code IN ({','.join(['?'] * len(codes))})")
            params += list(codes)
        void = sorted(VOID_RESULT_STATUSES)
        where.append(f"(status IS NULL OR status NOT IN ({','.join(['?'] * len(void))}))")
        params += void
        where.append(self._as_of_clause(as_of, params))
        cols = _READ_COLUMNS + (", raw" if include_raw else "")
        rows = self._query(  # ranked on the index's columns; only the winners' data read
            f"SELECT {cols} FROM facts WHERE id IN (SELECT id FROM (SELECT id, "
            "ROW_NUMBER() OVER (PARTITION BY code ORDER BY effective_start DESC NULLS LAST, "
            f"id DESC) AS newest FROM facts WHERE {' AND '.join(where)}) AS t WHERE newest = 1) "
            "ORDER BY code",
            params,
        )
        what = "latest" + (f" codes={','.join(codes)}" if codes else "")
        what += f" as_of={as_of.isoformat()}" if as_of else ""
        self._log_read("read", pid, what, len(rows))
        out: dict[str, StoredFact] = {}
        for row in rows:
            stored = self._stored(row, row[8] if include_raw else None)
            if stored.fact.code is not None:
                out[stored.fact.code.code] = stored
        return out

    def deaths(self, patient_ids: Sequence[str]) -> dict[str, str]:
        """For the patients of ``patient_ids`` the record says have died: the death as recorded
        (a date-time, or ``"true"`` without one), from their current demographics; one query,
        logged as one list read."""
        out: dict[str, str] = {}
        ids = list(patient_ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            rows = self._query(
                f"SELECT {_READ_COLUMNS} FROM facts WHERE kind = 'Demographics' AND patient_id "
                f"IN ({','.join(['?'] * len(chunk))}) AND {self._as_of_clause(None, [])} "
                "ORDER BY id",
                chunk,
            )
            for row in rows:
                fact = self._stored(row).fact
                if isinstance(fact, Demographics) and fact.deceased and row[1] is not None:
                    out[row[1]] = fact.deceased
        if ids:
            self._log_read("list", None, f"deaths of {len(ids)} patients", len(out))
        return out

    def count_facts(self, patient_id: str, *, after: datetime | None = None) -> int:
        """How many current facts the patient has (with ``after``: dated after it; a
        patient's demographics are undated facts and never count as after)."""
        pid = self.resolve_patient(patient_id)
        params: list[Any] = [pid]
        where = ["patient_id = ?"]
        if after is not None:
            where += ["effective_start > ?", "kind <> 'Demographics'"]
            params.append(self.dialect.ts(after))
        where.append(self._as_of_clause(None, params))
        (count,) = self._query(f"SELECT COUNT(*) FROM facts WHERE {' AND '.join(where)}", params)[0]
        what = "count" + (f" after={after.isoformat()}" if after else "")
        self._log_read("count", pid, what, int(count))
        return int(count)

    def versions(self, source: str, source_id: str) -> list[StoredFact]:
        """Every version of a fact, oldest first (logged as a read of its patient)."""
        rows = self._query(
            f"SELECT {_READ_COLUMNS} FROM facts WHERE source = ? AND source_id = ? ORDER BY version",
            (source, source_id),
        )
        if rows:
            self._log_read("read", rows[0][1], f"versions {source}:{source_id}", len(rows))
        return [self._stored(r) for r in rows]

    def iter_facts(
        self, *, patient_id: str | None = None, include_raw: bool = True, derived: bool = False
    ) -> Iterator[StoredFact]:
        """Current facts for export: one patient (with shared resources) or the whole store."""
        params: list[Any] = []
        where = [self._as_of_clause(None, params)]
        pid = None
        if patient_id is not None:
            pid = self.resolve_patient(patient_id)
            where.append("patient_id = ?")
            params.append(pid)
        if not derived:
            where.append("part_of IS NULL")
        cols = _READ_COLUMNS + (", raw" if include_raw else "")
        cursor = self._execute(
            f"SELECT {cols} FROM facts WHERE {' AND '.join(where)} ORDER BY id", params
        )
        count = 0
        while True:
            rows = cursor.fetchmany(2000)
            if not rows:
                break
            for r in rows:
                count += 1
                yield self._stored(r, r[8] if include_raw else None)
        self._log_read("export", pid, "export" if pid else "export whole store", count)

    def shared_facts(self, source_ids: Sequence[str]) -> list[StoredFact]:
        """Current facts without a patient (Practitioner, Organization ...) by source id."""
        out: list[StoredFact] = []
        for i in range(0, len(source_ids), _CHUNK):
            chunk = list(source_ids[i : i + _CHUNK])
            rows = self._query(
                f"SELECT {_READ_COLUMNS}, raw FROM facts WHERE patient_id IS NULL AND "
                f"superseded_at IS NULL AND source_id IN ({','.join(['?'] * len(chunk))})",
                chunk,
            )
            out += [self._stored(r, r[8]) for r in rows]
        return out

    def start_job(self, kind: str, detail: dict[str, Any]) -> int:
        """Record the start of a long job (an import); returns its id.

        The job's process id and host go into its detail, so :meth:`jobs` can tell a job
        that is still running from one whose process was killed.
        """
        detail = {**detail, "pid": os.getpid(), "host": socket.gethostname()}
        self._begin()
        try:
            cursor = self._execute(
                "INSERT INTO jobs (kind, status, actor, started_at, detail) VALUES (?,?,?,?,?) RETURNING id",
                (
                    kind,
                    "running",
                    self.actor,
                    self.dialect.ts(utc_now()),
                    self.dialect.json(orjson.dumps(detail)),
                ),
            )
            job_id = int(cursor.fetchone()[0])
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return job_id

    def finish_job(self, job_id: int, status: str, detail: dict[str, Any]) -> None:
        """Record how a job ended (``done`` or ``failed``) with its result."""
        self._begin()
        try:
            self._execute(
                "UPDATE jobs SET status = ?, finished_at = ?, detail = ? WHERE id = ?",
                (
                    status,
                    self.dialect.ts(utc_now()),
                    self.dialect.json(orjson.dumps(detail)),
                    job_id,
                ),
            )
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def jobs(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest jobs; a job still ``running`` whose process is gone was interrupted."""
        rows = self._query(
            "SELECT id, kind, status, actor, started_at, finished_at, detail FROM jobs "
            f"ORDER BY id DESC LIMIT {int(limit)}"
        )
        out = []
        for r in rows:
            detail = self.dialect.json_out(r[6])
            status = r[2]
            if status == "running" and _process_gone(detail):
                status = "interrupted"
            out.append(
                {
                    "id": r[0],
                    "kind": r[1],
                    "status": status,
                    "actor": r[3],
                    "started_at": self._ts(r[4]).isoformat(),
                    "finished_at": (f := self.dialect.ts_out(r[5])) and f.isoformat(),
                    "detail": detail,
                }
            )
        return out

    def counts(self) -> dict[str, int]:
        """Numbers of patients, current facts, open quarantine entries."""
        patients = self._query("SELECT COUNT(*) FROM patients WHERE merged_into IS NULL")[0][0]
        facts = self._query("SELECT COUNT(*) FROM facts WHERE superseded_at IS NULL")[0][0]
        quarantined = self._query("SELECT COUNT(*) FROM quarantine WHERE status = 'open'")[0][0]
        return {"patients": patients, "facts": facts, "quarantine_open": quarantined}


def _process_gone(detail: Any) -> bool:
    """True when a job's recorded process (on this host) no longer exists."""
    if not isinstance(detail, dict) or detail.get("host") != socket.gethostname():
        return False  # another machine's job: cannot tell from here
    pid = detail.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


def _raw_text(facts: Sequence[PreparedFact]) -> str:
    """Quarantine text of a prepared unit: its first fact's raw JSON, or its data."""
    if facts:
        return (facts[0].raw or facts[0].data).decode()
    return ""


def _like_literal(text: str) -> str:
    r"""``text`` for a LIKE pattern with ``ESCAPE '\'``: its ``\``, ``%`` and ``_`` match only
    themselves.

    >>> _like_literal("50%_off\\")
    '50\\%\\_off\\\\'
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
