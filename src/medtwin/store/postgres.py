"""PostgreSQL back-end, for server deployments (psycopg 3).

Times are ``TIMESTAMPTZ``, JSON is ``JSONB``. Needs the ``postgres`` extra
(``pip install 'medtwin[postgres]'``); :func:`is_available` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from typing import Any

import orjson

from medtwin.store.base import StoreError
from medtwin.store.migrations import HEAD, upgrade
from medtwin.store.sql import Dialect, SqlStore

__all__ = ["PostgresDialect", "PostgresStore", "is_available"]


def is_available() -> bool:
    """True when psycopg (the ``postgres`` extra) is installed."""
    return importlib.util.find_spec("psycopg") is not None


class PostgresDialect(Dialect):
    """``%s`` placeholders, native timestamps and booleans, JSONB."""

    name = "postgresql"

    def __init__(self) -> None:
        from psycopg.types.json import Jsonb

        self._jsonb = Jsonb

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def ts_out(self, value: Any) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def json(self, data: bytes | None) -> Any:
        if data is None:
            return None
        return self._jsonb(data.decode(), dumps=_identity)


def _identity(text: Any) -> str:
    return str(text)


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database; the schema is migrated on open.

    Parameters
    ----------
    url
        ``postgresql://host:port/database`` (user and password as libpq reads them).
    """

    def __init__(self, url: str, actor: str | None = None):
        if not is_available():
            raise StoreError("the PostgreSQL store needs psycopg: pip install 'medtwin[postgres]'")
        import psycopg
        from psycopg.types.json import set_json_loads

        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        try:
            conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {url}: {exc}") from exc
        set_json_loads(orjson.loads, conn)
        row = None
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.Error:
            row = None
        if row is None or row[0] != HEAD:
            upgrade(conninfo.replace("postgresql://", "postgresql+psycopg://", 1))
        super().__init__(conn, PostgresDialect(), url, actor)

    def _begin(self) -> None:
        self.conn.execute("BEGIN")
        # One writer at a time, as SQLite's write lock gives: identity matching and
        # versioning read then write, and must not interleave with another importer.
        self.conn.execute("SELECT pg_advisory_xact_lock(7700123)")

    def _commit(self) -> None:
        self.conn.execute("COMMIT")

    def _rollback(self) -> None:
        self.conn.execute("ROLLBACK")
