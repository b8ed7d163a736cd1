"""The schema as it stood when migrations began (what `create_all` made before revision 0001 existed).

Written out in full, not generated at run time: later model changes must not
change what this revision creates.  Databases made before Alembic are
adopted at this revision (`records.migrate.adopt`) after their tables are
checked against it.

Revision ID: 0001
Revises:
Create Date: 2026-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL enum types create_table makes for the enum columns (SQLite stores VARCHAR + no type).
ENUM_TYPES = ("role", "callstatus", "casestatus", "ratinglevel", "alertkind", "alertstatus", "printstatus")


def upgrade() -> None:
    op.create_table('chainhead',
        sa.Column('chain', sa.String(length=48), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('chain')
    )
    op.create_table('event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=48), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('session_id', sa.String(length=36), nullable=True),
        sa.Column('booth_id', sa.Integer(), nullable=True),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('session_seq', sa.Integer(), nullable=True),
        sa.Column('session_prev_hash', sa.String(length=64), nullable=True),
        sa.Column('session_hash', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('session_id', 'session_seq')
    )
    op.create_index(op.f('ix_event_booth_id'), 'event', ['booth_id'], unique=False)
    op.create_index(op.f('ix_event_kind'), 'event', ['kind'], unique=False)
    op.create_index(op.f('ix_event_seq'), 'event', ['seq'], unique=True)
    op.create_index(op.f('ix_event_session_id'), 'event', ['session_id'], unique=False)
    op.create_index(op.f('ix_event_ts'), 'event', ['ts'], unique=False)
    op.create_table('region',
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name_zh', sa.String(length=64), nullable=False),
        sa.Column('name_en', sa.String(length=64), nullable=False),
        sa.Column('service_hours', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code')
    )
    op.create_table('serviceitem',
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name_zh', sa.String(length=100), nullable=False),
        sa.Column('name_en', sa.String(length=150), nullable=False),
        sa.Column('category', sa.String(length=32), nullable=False),
        sa.Column('skill', sa.String(length=32), nullable=False),
        sa.Column('materials', sa.JSON(), nullable=False),
        sa.Column('time_limit_days', sa.Integer(), nullable=False),
        sa.Column('cross_region', sa.Boolean(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('code')
    )
    op.create_index(op.f('ix_serviceitem_category'), 'serviceitem', ['category'], unique=False)
    op.create_index(op.f('ix_serviceitem_skill'), 'serviceitem', ['skill'], unique=False)
    op.create_table('user',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('display_name', sa.String(length=64), nullable=False),
        sa.Column('role', sa.Enum('CLERK', 'SUPERVISOR', 'ADMIN', name='role'), nullable=False),
        sa.Column('password_hash', sa.String(), nullable=False),
        sa.Column('skills', sa.JSON(), nullable=False),
        sa.Column('regions', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_user_username'), 'user', ['username'], unique=True)
    op.create_table('alertrule',
        sa.Column('scope', sa.String(length=32), nullable=False),
        sa.Column('yellow_days', sa.Integer(), nullable=True),
        sa.Column('red_enabled', sa.Boolean(), nullable=True),
        sa.Column('blue_max_level', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['updated_by'], ['user.id']),
        sa.PrimaryKeyConstraint('scope')
    )
    op.create_table('booth',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('region_code', sa.String(), nullable=False),
        sa.Column('address', sa.String(length=200), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('device_status', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['region_code'], ['region.code']),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_booth_name'), 'booth', ['name'], unique=True)
    op.create_index(op.f('ix_booth_region_code'), 'booth', ['region_code'], unique=False)
    op.create_index(op.f('ix_booth_token_hash'), 'booth', ['token_hash'], unique=True)
    op.create_table('websession',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_websession_user_id'), 'websession', ['user_id'], unique=False)
    op.create_table('appointment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('booth_id', sa.Integer(), nullable=False),
        sa.Column('item_code', sa.String(), nullable=False),
        sa.Column('clerk_id', sa.Integer(), nullable=True),
        sa.Column('slot_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('slot_end', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('contact', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['booth_id'], ['booth.id']),
        sa.ForeignKeyConstraint(['clerk_id'], ['user.id']),
        sa.ForeignKeyConstraint(['item_code'], ['serviceitem.code']),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_appointment_booth_id'), 'appointment', ['booth_id'], unique=False)
    op.create_index(op.f('ix_appointment_slot_start'), 'appointment', ['slot_start'], unique=False)
    op.create_table('callsession',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('booth_id', sa.Integer(), nullable=False),
        sa.Column('region_code', sa.String(), nullable=False),
        sa.Column('item_code', sa.String(), nullable=False),
        sa.Column('clerk_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.Enum('QUEUED', 'OFFERED', 'ACTIVE', 'ENDED', 'ABANDONED', name='callstatus'), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=64), nullable=True),
        sa.Column('media_node', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['booth_id'], ['booth.id']),
        sa.ForeignKeyConstraint(['clerk_id'], ['user.id']),
        sa.ForeignKeyConstraint(['item_code'], ['serviceitem.code']),
        sa.ForeignKeyConstraint(['region_code'], ['region.code']),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_callsession_booth_id'), 'callsession', ['booth_id'], unique=False)
    op.create_index(op.f('ix_callsession_clerk_id'), 'callsession', ['clerk_id'], unique=False)
    op.create_index(op.f('ix_callsession_item_code'), 'callsession', ['item_code'], unique=False)
    op.create_index(op.f('ix_callsession_queued_at'), 'callsession', ['queued_at'], unique=False)
    op.create_index(op.f('ix_callsession_region_code'), 'callsession', ['region_code'], unique=False)
    op.create_table('case',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=40), nullable=False),
        sa.Column('region_code', sa.String(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('serial', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.String(), nullable=True),
        sa.Column('item_code', sa.String(), nullable=False),
        sa.Column('booth_id', sa.Integer(), nullable=True),
        sa.Column('clerk_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.Enum('ACCEPTED', 'REFUSED', 'NEEDS_SUPPLEMENT', 'COMPLETED', name='casestatus'), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('missing_materials', sa.JSON(), nullable=False),
        sa.Column('deadline', sa.Date(), nullable=True),
        sa.Column('progress_code', sa.String(length=16), nullable=False),
        sa.Column('legal_hold', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['booth_id'], ['booth.id']),
        sa.ForeignKeyConstraint(['clerk_id'], ['user.id']),
        sa.ForeignKeyConstraint(['item_code'], ['serviceitem.code']),
        sa.ForeignKeyConstraint(['region_code'], ['region.code']),
        sa.ForeignKeyConstraint(['session_id'], ['callsession.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('region_code', 'year', 'serial')
    )
    op.create_index(op.f('ix_case_item_code'), 'case', ['item_code'], unique=False)
    op.create_index(op.f('ix_case_number'), 'case', ['number'], unique=True)
    op.create_index(op.f('ix_case_region_code'), 'case', ['region_code'], unique=False)
    op.create_index(op.f('ix_case_session_id'), 'case', ['session_id'], unique=False)
    op.create_table('material',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.String(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('checklist_code', sa.String(length=32), nullable=True),
        sa.Column('path', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=64), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['session_id'], ['callsession.id']),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_material_session_id'), 'material', ['session_id'], unique=False)
    op.create_table('rating',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.String(), nullable=False),
        sa.Column('level', sa.Enum('VERY_SATISFIED', 'SATISFIED', 'BASICALLY_SATISFIED', 'DISSATISFIED', 'VERY_DISSATISFIED', name='ratinglevel'), nullable=False),
        sa.Column('comment', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['callsession.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('session_id')
    )
    op.create_table('recording',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.String(), nullable=False),
        sa.Column('track', sa.String(length=64), nullable=False),
        sa.Column('path', sa.String(length=255), nullable=False),
        sa.Column('codec', sa.String(length=16), nullable=False),
        sa.Column('duration_s', sa.Float(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('recovered', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['session_id'], ['callsession.id']),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_recording_session_id'), 'recording', ['session_id'], unique=False)
    op.create_table('alert',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('YELLOW', 'RED', 'BLUE', name='alertkind'), nullable=False),
        sa.Column('status', sa.Enum('OPEN', 'ACKNOWLEDGED', 'RESOLVED', name='alertstatus'), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('session_id', sa.String(), nullable=True),
        sa.Column('booth_id', sa.Integer(), nullable=True),
        sa.Column('message', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('acknowledged_by', sa.Integer(), nullable=True),
        sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_by', sa.Integer(), nullable=True),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolution_note', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['acknowledged_by'], ['user.id']),
        sa.ForeignKeyConstraint(['booth_id'], ['booth.id']),
        sa.ForeignKeyConstraint(['case_id'], ['case.id']),
        sa.ForeignKeyConstraint(['resolved_by'], ['user.id']),
        sa.ForeignKeyConstraint(['session_id'], ['callsession.id']),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_alert_case_id'), 'alert', ['case_id'], unique=False)
    op.create_index(op.f('ix_alert_session_id'), 'alert', ['session_id'], unique=False)
    op.create_table('printjob',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.String(), nullable=True),
        sa.Column('booth_id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('document', sa.String(length=32), nullable=False),
        sa.Column('path', sa.String(length=255), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('status', sa.Enum('PENDING', 'SENT', 'PRINTED', 'FAILED', name='printstatus'), nullable=False),
        sa.Column('error', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['booth_id'], ['booth.id']),
        sa.ForeignKeyConstraint(['case_id'], ['case.id']),
        sa.ForeignKeyConstraint(['session_id'], ['callsession.id']),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_printjob_booth_id'), 'printjob', ['booth_id'], unique=False)
    op.create_index(op.f('ix_printjob_session_id'), 'printjob', ['session_id'], unique=False)

def downgrade() -> None:
    op.drop_index(op.f('ix_printjob_session_id'), table_name='printjob')
    op.drop_index(op.f('ix_printjob_booth_id'), table_name='printjob')
    op.drop_table('printjob')
    op.drop_index(op.f('ix_alert_session_id'), table_name='alert')
    op.drop_index(op.f('ix_alert_case_id'), table_name='alert')
    op.drop_table('alert')
    op.drop_index(op.f('ix_recording_session_id'), table_name='recording')
    op.drop_table('recording')
    op.drop_table('rating')
    op.drop_index(op.f('ix_material_session_id'), table_name='material')
    op.drop_table('material')
    op.drop_index(op.f('ix_case_session_id'), table_name='case')
    op.drop_index(op.f('ix_case_region_code'), table_name='case')
    op.drop_index(op.f('ix_case_number'), table_name='case')
    op.drop_index(op.f('ix_case_item_code'), table_name='case')
    op.drop_table('case')
    op.drop_index(op.f('ix_callsession_region_code'), table_name='callsession')
    op.drop_index(op.f('ix_callsession_queued_at'), table_name='callsession')
    op.drop_index(op.f('ix_callsession_item_code'), table_name='callsession')
    op.drop_index(op.f('ix_callsession_clerk_id'), table_name='callsession')
    op.drop_index(op.f('ix_callsession_booth_id'), table_name='callsession')
    op.drop_table('callsession')
    op.drop_index(op.f('ix_appointment_slot_start'), table_name='appointment')
    op.drop_index(op.f('ix_appointment_booth_id'), table_name='appointment')
    op.drop_table('appointment')
    op.drop_index(op.f('ix_websession_user_id'), table_name='websession')
    op.drop_table('websession')
    op.drop_index(op.f('ix_booth_token_hash'), table_name='booth')
    op.drop_index(op.f('ix_booth_region_code'), table_name='booth')
    op.drop_index(op.f('ix_booth_name'), table_name='booth')
    op.drop_table('booth')
    op.drop_table('alertrule')
    op.drop_index(op.f('ix_user_username'), table_name='user')
    op.drop_table('user')
    op.drop_index(op.f('ix_serviceitem_skill'), table_name='serviceitem')
    op.drop_index(op.f('ix_serviceitem_category'), table_name='serviceitem')
    op.drop_table('serviceitem')
    op.drop_table('region')
    op.drop_index(op.f('ix_event_ts'), table_name='event')
    op.drop_index(op.f('ix_event_session_id'), table_name='event')
    op.drop_index(op.f('ix_event_seq'), table_name='event')
    op.drop_index(op.f('ix_event_kind'), table_name='event')
    op.drop_index(op.f('ix_event_booth_id'), table_name='event')
    op.drop_table('event')
    op.drop_table('chainhead')
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in ENUM_TYPES:
            sa.Enum(name=name).drop(bind, checkfirst=True)
