"""Shared fixtures: the shared data folder, real PostgreSQL, and stores of both kinds.

Rules (see README): tests read real data from ``MEDTWIN_SHARED_DATA`` (default
``../shared/data``) and use the real PostgreSQL server. When either is absent the
test skips with the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from medtwin.store import open_store
from medtwin.store.sql import SqlStore

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("MEDTWIN_PG_URL", "postgresql://127.0.0.1:5432/test")


def in_ci() -> bool:
    """True under CI, where a missing real part is a failure, not a skip."""
    return os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> None:
    """Skip with ``reason`` (fail under CI)."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: real parts must be present)")
    pytest.skip(reason)


def shared_data_dir() -> Path:
    """The shared data folder, or skip/fail."""
    path = Path(os.environ.get("MEDTWIN_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        missing(f"shared data folder {path} not found (set MEDTWIN_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of ``../shared/data``."""
    return shared_data_dir()


def _pg_admin() -> object:
    try:
        import psycopg
    except ImportError:
        missing("psycopg is not installed (pip install 'medtwin[postgres]')")
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        missing(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    raise AssertionError("unreachable")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    admin = _pg_admin()
    schema = f"mt_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE SCHEMA {schema}")  # type: ignore[attr-defined]
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A fresh store of each back-end: the conformance suite runs on both."""
    if request.param == "sqlite":
        url = str(tmp_path / "medtwin.db")
        s = open_store(url, actor="test")
        yield s
        s.close()
    else:
        pg = request.getfixturevalue("pg_url")
        s = open_store(pg, actor="test")
        yield s
        s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    """A fresh SQLite store."""
    s = open_store(str(tmp_path / "medtwin.db"), actor="test")
    yield s
    s.close()


@pytest.fixture(autouse=True, scope="session")
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compiled SBML kernels go to a folder of this test run, not the user's cache."""
    old = os.environ.get("MEDTWIN_CACHE_DIR")
    os.environ["MEDTWIN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("MEDTWIN_CACHE_DIR", None)
    else:
        os.environ["MEDTWIN_CACHE_DIR"] = old
