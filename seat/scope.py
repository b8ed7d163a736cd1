"""Which regions a supervisor may see: the one place every supervision page asks.

A supervisor or admin whose `regions` list is empty sees every region; one with
regions sees only booths, calls, cases and alerts of those regions.  Clerks are
scoped by their own sessions instead (see `seat.review`).
"""

from __future__ import annotations

from signaling.access import Kind, Principal


def visible_regions(principal: Principal) -> frozenset[str] | None:
    """Regions this principal may see, or None for all of them."""
    if principal.kind in (Kind.SUPERVISOR, Kind.ADMIN):
        return frozenset(principal.regions) if principal.regions else None
    if principal.kind is Kind.CLERK:
        return frozenset(principal.regions)
    return frozenset()


def can_see_region(principal: Principal, region_code: str | None) -> bool:
    """True when the principal may see records of `region_code`."""
    regions = visible_regions(principal)
    return regions is None or (region_code is not None and region_code in regions)
