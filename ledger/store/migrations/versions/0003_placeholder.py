"""Placeholder for migration 0003 (written on another branch); does nothing.

Only here so that 0004 has its parent on this branch; the integrator drops this file.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
