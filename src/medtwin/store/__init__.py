"""Where the record lives: the Store protocol and its SQLite and PostgreSQL back-ends.

:func:`open_store` picks the back-end from the URL: ``postgresql://...`` opens
PostgreSQL, anything else is a SQLite file path (``sqlite:///path`` also works).
"""

from __future__ import annotations

import os

from medtwin.store.alerts import (
    AlertError,
    AlertEvent,
    AlertNotFoundError,
    AlertPolicy,
    AlertStateError,
    StoredAlert,
)
from medtwin.store.base import (
    AccessEntry,
    AppendResult,
    PatientNotFoundError,
    PatientSummary,
    QuarantineEntry,
    Store,
    StoredFact,
    StoreError,
)
from medtwin.store.sql import SqlStore

__all__ = [
    "DEFAULT_STORE",
    "AccessEntry",
    "AlertError",
    "AlertEvent",
    "AlertNotFoundError",
    "AlertPolicy",
    "AlertStateError",
    "AppendResult",
    "PatientNotFoundError",
    "PatientSummary",
    "QuarantineEntry",
    "SqlStore",
    "Store",
    "StoreError",
    "StoredAlert",
    "StoredFact",
    "default_store_url",
    "open_store",
]

DEFAULT_STORE = "./medtwin.db"


def default_store_url() -> str:
    """``MEDTWIN_STORE`` or ``./medtwin.db``."""
    return os.environ.get("MEDTWIN_STORE") or DEFAULT_STORE


def open_store(url: str | None = None, *, actor: str | None = None) -> SqlStore:
    """Open (creating and migrating if needed) the store at ``url``."""
    url = url or default_store_url()
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from medtwin.store.postgres import PostgresStore

        return PostgresStore(url.replace("postgres://", "postgresql://", 1), actor=actor)
    scheme, sep, _ = url.partition("://")
    if sep and scheme.isascii() and scheme.replace("+", "").isalnum() and scheme != "sqlite":
        raise StoreError(
            f"store {url!r}: unknown kind {scheme!r} (a SQLite file path or sqlite:///PATH, "
            "or postgresql://HOST[:PORT]/DB)"
        )
    from medtwin.store.sqlite import SqliteStore

    return SqliteStore(url, actor=actor)
