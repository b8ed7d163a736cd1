"""Where a login lands (each role's page: `seat.console`, `seat.supervise_wall`) and who the caller is."""

from __future__ import annotations

from starlette.requests import Request
from pathlib import Path

from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from signaling.access import resolve_principal
from seat.auth_pages import home_of


FAVICON = Path(__file__).parent / "static" / "img" / "favicon.ico"


async def favicon(request: Request) -> Response:
    """/favicon.ico: browsers ask for it on every page whatever the page links; a day's cache."""
    return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


async def root(request: Request) -> Response:
    """Send everyone to the page of their role (the login page when anonymous)."""
    return RedirectResponse(home_of(await resolve_principal(request)), status_code=303)


async def me(request: Request) -> Response:
    """Who the caller is, for scripts and pages."""
    p = request.state.principal
    return JSONResponse({
        "kind": p.kind.value, "user_id": p.user_id, "username": p.username,
        "display_name": p.display_name, "booth_id": p.booth_id, "booth_name": p.booth_name,
        "region": p.region, "skills": list(p.skills), "regions": list(p.regions),
        # Script clients logged in by cookie echo this in X-CSRF-Token on unsafe requests.
        "csrf_token": p.csrf_token if p.via_cookie else None,
    })
