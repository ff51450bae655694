"""Fitted twins kept in the store: each calibration of a patient's model, and its filter state.

A twin is saved once per calibration (:meth:`TwinBook.save_twin`); the newest row per patient
and model is the patient's current twin, older ones stay so that a forecast or a what-if can
always name the twin it came from. The assimilation filter that keeps a twin in step with new
data updates its JSON state on the same row (:meth:`TwinBook.update_twin_state`). Every read
and write is recorded in the access log with the store's actor.

>>> import os, tempfile
>>> from medtwin.store import open_store
>>> store = open_store(os.path.join(tempfile.mkdtemp(), "t.db"), actor="dr-a")
>>> tid = store.save_twin("mt-1", "uva_padova_2008", "1.0.0", {"map": [1.0]}, facts_used=12)
>>> store.twin(tid).calibration, store.latest_twin("mt-1", "uva_padova_2008").id == tid
({'map': [1.0]}, True)
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from medtwin.record.time import utc_now
from medtwin.store.base import StoreError

if TYPE_CHECKING:
    from medtwin.store.sql import Dialect

__all__ = ["StoredTwin", "TwinBook"]


@dataclass(frozen=True, slots=True)
class StoredTwin:
    """One fitted twin as stored."""

    id: int
    patient_id: str
    model: str
    model_version: str
    created_at: datetime
    created_by: str
    data_start: datetime | None
    data_end: datetime | None
    facts_used: int
    calibration: dict[str, Any]
    filter_state: dict[str, Any] | None
    updated_at: datetime


_COLUMNS = (
    "id, patient_id, model, model_version, created_at, created_by, data_start, data_end, "
    "facts_used, calibration, filter_state, updated_at"
)


class TwinBook:
    """Store mixin: fitted twins (table ``twins``, migration 0003)."""

    if TYPE_CHECKING:
        dialect: Dialect
        actor: str

        def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

        def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

        def _begin(self) -> None: ...

        def _commit(self) -> None: ...

        def _rollback(self) -> None: ...

        def log_access(
            self, action: str, patient_id: str | None, what: str, count: int = 1
        ) -> None: ...

        def _log_read(self, action: str, patient_id: str | None, what: str, count: int) -> None: ...

    @contextmanager
    def _twin_transaction(self) -> Iterator[None]:
        self._begin()
        try:
            yield
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def _row_to_twin(self, r: Sequence[Any]) -> StoredTwin:
        created = self.dialect.ts_out(r[4])
        updated = self.dialect.ts_out(r[11])
        assert created is not None and updated is not None
        state = self.dialect.json_out(r[10])
        return StoredTwin(
            id=int(r[0]),
            patient_id=r[1],
            model=r[2],
            model_version=r[3],
            created_at=created,
            created_by=r[5],
            data_start=self.dialect.ts_out(r[6]),
            data_end=self.dialect.ts_out(r[7]),
            facts_used=int(r[8]),
            calibration=dict(self.dialect.json_out(r[9])),
            filter_state=None if state is None else dict(state),
            updated_at=updated,
        )

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
        """Save a fitted twin (one transaction, logged as a write); returns its id."""
        now = self.dialect.ts(utc_now())
        with self._twin_transaction():
            cursor = self._execute(
                f"INSERT INTO twins ({_COLUMNS.split(', ', 1)[1]}) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (
                    patient_id,
                    model,
                    model_version,
                    now,
                    self.actor,
                    self.dialect.ts(data_start),
                    self.dialect.ts(data_end),
                    int(facts_used),
                    self.dialect.json(orjson.dumps(dict(calibration))),
                    None
                    if filter_state is None
                    else self.dialect.json(orjson.dumps(dict(filter_state))),
                    now,
                ),
            )
            twin_id = int(cursor.fetchone()[0])
            self.log_access("write", patient_id, f"twin {model} #{twin_id}", 1)
        return twin_id

    def update_twin_state(self, twin_id: int, filter_state: Mapping[str, Any]) -> None:
        """Replace the assimilation state of a twin (logged as a write)."""
        with self._twin_transaction():
            rows = self._query("SELECT patient_id, model FROM twins WHERE id = ?", (twin_id,))
            if not rows:
                raise StoreError(f"no twin #{twin_id}")
            self._execute(
                "UPDATE twins SET filter_state = ?, updated_at = ? WHERE id = ?",
                (
                    self.dialect.json(orjson.dumps(dict(filter_state))),
                    self.dialect.ts(utc_now()),
                    twin_id,
                ),
            )
            self.log_access("write", rows[0][0], f"twin {rows[0][1]} #{twin_id} state", 1)

    def twin(self, twin_id: int) -> StoredTwin:
        """One twin by id (logged as a read); :class:`StoreError` when there is none."""
        rows = self._query(f"SELECT {_COLUMNS} FROM twins WHERE id = ?", (twin_id,))
        if not rows:
            raise StoreError(f"no twin #{twin_id}")
        out = self._row_to_twin(rows[0])
        self._log_read("read", out.patient_id, f"twin {out.model} #{twin_id}", 1)
        return out

    def twins(self, patient_id: str, *, model: str | None = None) -> list[StoredTwin]:
        """A patient's twins, newest first (optionally of one model; logged as a read)."""
        sql = f"SELECT {_COLUMNS} FROM twins WHERE patient_id = ?"
        params: list[Any] = [patient_id]
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        rows = self._query(sql + " ORDER BY id DESC", params)
        self._log_read("read", patient_id, f"twins {model or 'all'}", len(rows))
        return [self._row_to_twin(r) for r in rows]

    def latest_twin(self, patient_id: str, model: str) -> StoredTwin | None:
        """The patient's current twin of ``model`` (the newest), or ``None``."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM twins WHERE patient_id = ? AND model = ? "
            "ORDER BY id DESC LIMIT 1",
            (patient_id, model),
        )
        self._log_read("read", patient_id, f"twin {model} (latest)", len(rows))
        return self._row_to_twin(rows[0]) if rows else None
