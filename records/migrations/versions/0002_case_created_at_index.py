"""Index case.created_at: statistics select the cases of a period by their creation time.

`records.statistics` selects the cases of a period with
`created_at >= lo AND created_at < hi`; without an index that is a full scan
of the case table for every statistics request.

Revision ID: 0002
Revises: 0001
Create Date: 2026-03-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_case_created_at"), "case", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_case_created_at"), table_name="case")
