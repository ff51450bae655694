"""Alembic migrations of the store schema (both back-ends).

``HEAD`` names the newest revision; a store opened at an older revision is
upgraded on open.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HEAD", "LOCATION", "upgrade"]

HEAD = "0003"
LOCATION = Path(__file__).parent


def upgrade(sqlalchemy_url: str, revision: str = "head") -> None:
    """Upgrade the database at ``sqlalchemy_url`` to ``revision`` (:data:`HEAD`) with Alembic."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(LOCATION))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    command.upgrade(config, revision)
