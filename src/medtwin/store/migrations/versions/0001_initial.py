"""Initial schema: patients, identifiers, facts, quarantine, access log, users, jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Times: TIMESTAMPTZ on PostgreSQL; fixed-width UTC ISO text on SQLite (sorts correctly).
TS = sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("merged_into", sa.Text(), nullable=True),
        sa.Column("family", sa.Text()),
        sa.Column("given", sa.Text()),
        sa.Column("birth_date", sa.Text()),
        sa.Column("gender", sa.Text()),
        sa.Column("search_text", sa.Text()),
    )
    op.create_index("ix_patients_birth_date", "patients", ["birth_date"])
    op.create_index("ix_patients_family", "patients", ["family"])
    op.create_table(
        "identifiers",
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("source", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("system", "value"),
    )
    op.create_index("ix_identifiers_patient", "identifiers", ["patient_id"])
    op.create_index("ix_identifiers_value", "identifiers", ["value"])
    op.create_table(
        "facts",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.Text(), sa.ForeignKey("patients.id"), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text()),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("code_system", sa.Text()),
        sa.Column("code", sa.Text()),
        sa.Column("display", sa.Text()),
        sa.Column("status", sa.Text()),
        sa.Column("effective_start", TS),
        sa.Column("effective_end", TS),
        sa.Column("value_num", sa.Float()),
        sa.Column("unit", sa.Text()),
        sa.Column("value_text", sa.Text()),
        sa.Column("part_of", sa.Text()),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("superseded_at", TS),
        # when the source says it recorded this version (meta.lastUpdated, OBR-22): an older
        # version arriving after a newer one is kept in the history but never made current
        sa.Column("source_recorded_at", TS),
        sa.Column("retracted", sa.Boolean(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("raw", JSON),
    )
    # Facts by patient and code in time order: timelines, latest values and "as of" queries
    # (all versions are indexed; superseded rows are few and filtered on the row).
    op.create_index("ix_facts_timeline", "facts", ["patient_id", "code", "effective_start"])
    # Versions of each (source, source id): idempotent append, versions(), concurrent writers
    # that race to add the same next version fail on this index instead of forking history.
    op.create_index("uq_facts_version", "facts", ["source", "source_id", "version"], unique=True)
    # Business identifiers of stored resources, for conditional references across files.
    op.create_table(
        "resource_identifiers",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "resource_type", "system", "value"),
    )
    op.create_index(
        "ix_resource_identifiers_value",
        "resource_identifiers",
        ["source", "resource_type", "value"],
    )
    op.create_table(
        "quarantine",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("file", sa.Text()),
        sa.Column("location", sa.Text()),
        sa.Column("resource_type", sa.Text()),
        sa.Column("resource_id", sa.Text()),
        sa.Column("field", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("waits_for", sa.Text()),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("resolved_at", TS),
    )
    # Quarantining the same data at the same place again is a no-op (NULLs compare equal here).
    op.create_index(
        "ix_quarantine_open_key",
        "quarantine",
        [
            "source",
            sa.text("COALESCE(file, '')"),
            sa.text("COALESCE(location, '')"),
            sa.text("COALESCE(resource_type, '')"),
            sa.text("COALESCE(resource_id, '')"),
            "content_hash",
        ],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "access_log",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text()),
        sa.Column("what", sa.Text()),
        sa.Column("count", sa.Integer()),
    )
    op.create_index("ix_access_log_patient", "access_log", ["patient_id", "at"])
    op.create_table(
        "users",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text()),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text()),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("detail", JSON),
    )


def downgrade() -> None:
    for table in (
        "jobs",
        "users",
        "access_log",
        "quarantine",
        "resource_identifiers",
        "facts",
        "identifiers",
        "patients",
    ):
        op.drop_table(table)
