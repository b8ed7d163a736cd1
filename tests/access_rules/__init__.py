"""The route x role table, one module per package that owns routes (so packages evolve apart).

Each module exports `TABLE`: (method, declared path, concrete path) -> kinds allowed.
"""

from tests.access_rules.common import A, ALL, B, C, D, S, STAFF

__all__ = ["A", "ALL", "B", "C", "D", "S", "STAFF"]
