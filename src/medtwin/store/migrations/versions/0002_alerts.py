"""Alert lifecycle and monitor state: alerts, alert_events, monitor_state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

``alerts`` holds one row per alert episode (repeats of the same patient and de-duplication key
are counted on the row, see :mod:`medtwin.store.alerts`); ``alert_events`` is its audit trail;
``monitor_state`` keeps each monitor's JSON state per patient so a restarted hub resumes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# As in 0001: TIMESTAMPTZ / JSONB on PostgreSQL; fixed-width UTC ISO text / JSON text on SQLite.
TS = sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.Text(), nullable=False),
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("monitor_version", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.Text(), nullable=False),
        # open -> acknowledged -> resolved (a worsening or a repeat after the window re-opens)
        sa.Column("status", sa.Text(), nullable=False),
        # event times (the monitor's clock): first and latest firing
        sa.Column("first_at", TS, nullable=False),
        sa.Column("last_at", TS, nullable=False),
        # wall-clock times (the store's clock)
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        # when the alert was last (re)opened: the escalation clock starts here
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        # {"first": [[source, source_id], ...], "recent": [...], "total": n}
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=True),
        sa.Column("escalated_at", TS),
        sa.Column("acknowledged_by", sa.Text()),
        sa.Column("acknowledged_at", TS),
        sa.Column("resolved_by", sa.Text()),
        sa.Column("resolved_at", TS),
        sa.Column("resolved_reason", sa.Text()),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved')", name="ck_alerts_status"
        ),
    )
    # "open alerts of a patient" (worklists, the patient view)
    op.create_index("ix_alerts_patient_status", "alerts", ["patient_id", "status"])
    # the de-duplication look-up: the newest alert of (patient, key)
    op.create_index("ix_alerts_dedup", "alerts", ["patient_id", "dedup_key", "id"])
    # the escalation sweep reads open alerts of every patient
    op.create_index("ix_alerts_status", "alerts", ["status", "opened_at"])
    op.create_table(
        "alert_events",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("alert_id", BIGID, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("detail", JSON),
        sa.CheckConstraint(
            "event IN ('opened', 'repeated', 'worsened', 'acknowledged', 'escalated', "
            "'resolved', 'reopened')",
            name="ck_alert_events_event",
        ),
    )
    op.create_index("ix_alert_events_alert", "alert_events", ["alert_id", "id"])
    op.create_table(
        "monitor_state",
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text(), nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("monitor", "patient_id"),
    )


def downgrade() -> None:
    for table in ("monitor_state", "alert_events", "alerts"):
        op.drop_table(table)
