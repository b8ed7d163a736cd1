"""Alembic scripts of the records schema (run through `records.migrate`, not an alembic.ini)."""
