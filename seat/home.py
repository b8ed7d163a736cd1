"""Landing pages after login (the supervisor console grows from here; the clerk console is `seat.console`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from signaling.access import Kind, resolve_principal
from seat.auth_pages import home_of

ROLE_LABELS = {
    Kind.CLERK: ("窗口人员", "Clerk"),
    Kind.SUPERVISOR: ("监督人员", "Supervisor"),
    Kind.ADMIN: ("管理员", "Administrator"),
}


async def root(request: Request) -> Response:
    """Send everyone to the page of their role (the login page when anonymous)."""
    return RedirectResponse(home_of(await resolve_principal(request)), status_code=303)


def _render_home(request: Request, heading: tuple[str, str]) -> Response:
    principal = request.state.principal
    return request.app.state.templates.TemplateResponse(
        request, "home.html",
        {"principal": principal, "role_label": ROLE_LABELS[principal.kind], "heading": heading},
    )


async def supervise_home(request: Request) -> Response:
    """The supervisor's and admin's workspace."""
    return _render_home(request, ("监督工作台", "Supervision workspace"))


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
