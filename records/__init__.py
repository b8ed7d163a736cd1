"""Records: SQLModel tables, plain data-access functions, file storage and the hash-chained event log.

Knows nothing of pages, sockets or media; everything here takes an explicit
SQLModel session or engine.
"""
