"""Fitted twins: one row per calibration of a patient's model, with its data window.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

``twins`` keeps every calibration (the newest per patient and model is the patient's current
twin; older ones stay for provenance: "which twin made this forecast"). ``calibration`` is the
JSON of :meth:`medtwin.twin.calibrate.Calibration.to_dict`; ``filter_state`` the JSON state of
the assimilation filter kept in step with new data (updated in place, ``updated_at``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "twins",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        # the span of the patient's data the twin was fitted to (event time, UTC)
        sa.Column("data_start", TS),
        sa.Column("data_end", TS),
        sa.Column("facts_used", sa.Integer(), nullable=False),
        sa.Column("calibration", JSON, nullable=False),
        sa.Column("filter_state", JSON),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_twins_patient_model", "twins", ["patient_id", "model", "id"])


def downgrade() -> None:
    op.drop_table("twins")
