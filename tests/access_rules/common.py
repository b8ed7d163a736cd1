"""Principal kinds, as the access table names them."""

A, B, C, S, D = "anonymous", "booth", "clerk", "supervisor", "admin"
ALL = {A, B, C, S, D}
STAFF = {C, S, D}
