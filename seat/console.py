"""The clerk console (云坐席工作台): the page shell; `static/js/console.js` drives it over the socket."""

from __future__ import annotations

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from records.models import Region

# Skills are plain codes on items and users; these are the names a clerk reads.
# A skill without a name here shows its code.
SKILL_LABELS: dict[str, tuple[str, str]] = {
    "social_insurance": ("社会保险", "Social insurance"),
    "medical": ("医疗保障", "Medical insurance"),
    "medical_insurance": ("医疗保障", "Medical insurance"),
    "household": ("户籍与居住证", "Household registration and residence"),
    "civil_affairs": ("民政与社会事务", "Civil and social affairs"),
    "housing": ("住房保障与公积金", "Housing and provident fund"),
    "employment": ("就业创业", "Employment"),
    "business": ("市场主体登记", "Business registration"),
}

NOT_READY_REASONS: tuple[tuple[str, str, str], ...] = (
    ("break", "小休", "Break"),
    ("training", "培训", "Training"),
    ("meeting", "会议", "Meeting"),
    ("other", "其他", "Other"),
)


def skill_label(skill: str) -> tuple[str, str]:
    """(zh, en) name of a skill."""
    return SKILL_LABELS.get(skill, (skill, skill))


async def console_page(request: Request) -> Response:
    """GET /seat: the console shell with the clerk's identity; everything live comes over the socket."""
    principal = request.state.principal

    def region_names() -> list[tuple[str, str]]:
        with Session(request.app.state.engine) as session:
            rows = {r.code: r for r in session.exec(select(Region).where(col(Region.code).in_(principal.regions)))}
        return [(rows[c].name_zh, rows[c].name_en) if c in rows else (c, c) for c in principal.regions]

    regions = await run_in_threadpool(region_names)
    return request.app.state.templates.TemplateResponse(
        request, "console.html",
        {"principal": principal, "role_label": ("窗口人员", "Clerk"),
         "skills": [skill_label(s) for s in principal.skills], "regions": regions,
         "not_ready_reasons": NOT_READY_REASONS},
    )
