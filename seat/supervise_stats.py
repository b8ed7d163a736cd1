"""Supervision: statistics (统计分析) page, JSON and CSV, all from `records.statistics`.

`GET /supervise/stats` is the page shell (filters, charts and table are
drawn by `static/js/supervise-stats.js` from the JSON); `GET
/api/supervise/stats` answers the figures; `GET /api/supervise/stats.csv`
the same rows as a UTF-8 CSV with a byte-order mark, so Excel opens the
Chinese headers correctly.  Every figure is limited to the regions the
caller may see (`seat.scope.visible_regions`).

Query parameters (all optional) and their refusals (400, `{"error": {"code"}}`):

| parameter | default | refusal |
|---|---|---|
| `from`, `to` | the last 7 local days up to today | `invalid_date` (not YYYY-MM-DD), `invalid_range` (to before from), `range_too_long` (over 366 days) |
| `period` | `day` (`week`, `month`) | `invalid_period` |
| `by` | `none` (`booth`, `region`, `clerk`, `item`) | `invalid_group` |
| `sl_threshold_s` | 20 | `invalid_threshold` (an integer 1..600) |
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from records.db import read_only
from records.errors import ValidationError
from records.models import Region
from records.statistics import (DEFAULT_SL_THRESHOLD_S, Dimension, Figures, Period, StatsQuery, StatsReport,
                                StatsRow, compute_statistics)
from seat.scope import visible_regions
from signaling.access import SUPERVISION, guarded_route
from signaling.json_api import ApiError, query_day, respond

THRESHOLD_RE = re.compile(r"\d{1,3}")
MAX_THRESHOLD_S = 600
DEFAULT_DAYS = 7

PERIOD_LABELS: dict[str, tuple[str, str]] = {"day": ("按日", "By day"), "week": ("按周", "By week"),
                                             "month": ("按月", "By month")}
GROUP_LABELS: dict[str, tuple[str, str]] = {
    "none": ("不分组", "No grouping"), "booth": ("按晓屋", "By booth"), "region": ("按镇街", "By region"),
    "clerk": ("按坐席人员", "By clerk"), "item": ("按事项", "By service item")}
SECOND_FIGURES = ("wait_avg_s", "wait_p90_s", "abandon_wait_avg_s", "handle_avg_s", "booth_busy_s")
SHARE_FIGURES = ("service_level", "satisfied_share")


# --------------------------------------------------------------------------- parameters


def _today(tz: str) -> date:
    return datetime.now(timezone.utc).astimezone(ZoneInfo(tz)).date()


def _date_param(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    return query_day(raw, name, code="invalid_date")


def parse_query(request: Request) -> StatsQuery:
    """The StatsQuery of the request's parameters, scoped to the caller; ApiError 400 when malformed."""
    params = request.query_params
    tz = request.app.state.settings.timezone
    end = _date_param(params.get("to"), "to") or _today(tz)
    start = _date_param(params.get("from"), "from") or end - timedelta(days=DEFAULT_DAYS - 1)
    period = params.get("period") or Period.DAY.value
    if period not in {p.value for p in Period}:
        raise ApiError(400, "invalid_period", "period must be day, week or month")
    by = params.get("by") or Dimension.NONE.value
    if by not in {d.value for d in Dimension}:
        raise ApiError(400, "invalid_group", "by must be none, booth, region, clerk or item")
    raw_threshold = params.get("sl_threshold_s") or str(int(DEFAULT_SL_THRESHOLD_S))
    if not THRESHOLD_RE.fullmatch(raw_threshold) or not 1 <= int(raw_threshold) <= MAX_THRESHOLD_S:
        raise ApiError(400, "invalid_threshold", f"sl_threshold_s must be an integer 1..{MAX_THRESHOLD_S}")
    try:
        return StatsQuery(start=start, end=end, period=Period(period), by=Dimension(by), tz=tz,
                          sl_threshold_s=float(raw_threshold), regions=visible_regions(request.state.principal))
    except ValidationError as exc:
        raise ApiError(400, exc.code, exc.message) from None


def query_params(query: StatsQuery) -> dict[str, str]:
    """The parameters that reproduce `query` (its scope comes from the caller, not the URL)."""
    return {"from": query.start.isoformat(), "to": query.end.isoformat(), "period": query.period.value,
            "by": query.by.value, "sl_threshold_s": f"{query.sl_threshold_s:g}"}


async def _report(request: Request, query: StatsQuery) -> StatsReport:
    def work() -> StatsReport:
        with Session(read_only(request.app.state.engine)) as session:
            return compute_statistics(session, query)

    return await run_in_threadpool(work)


# --------------------------------------------------------------------------- JSON


def figures_json(figures: Figures) -> dict[str, Any]:
    """Figures with seconds to 0.1 s and shares to 4 decimals (the page shows percentages)."""
    out = figures.as_dict()
    for name in SECOND_FIGURES:
        out[name] = None if out[name] is None else round(out[name], 1)
    for name in SHARE_FIGURES:
        out[name] = None if out[name] is None else round(out[name], 4)
    out["rating_counts"] = {str(k): v for k, v in figures.rating_counts.items()}
    return out


def row_json(row: StatsRow) -> dict[str, Any]:
    return {"period": row.period, "period_start": row.period_start.isoformat() if row.period_start else None,
            "group": row.group, "label_zh": row.label_zh, "label_en": row.label_en, **figures_json(row.figures)}


def report_json(report: StatsReport) -> dict[str, Any]:
    q = report.query
    return {
        "query": {**query_params(q), "timezone": q.tz,
                  "regions": sorted(q.regions) if q.regions is not None else None},
        "csv_url": "/api/supervise/stats.csv?" + urlencode(query_params(q)),
        "rows": [row_json(r) for r in report.rows],
        "periods": [row_json(r) for r in report.periods],
        "groups": [row_json(r) for r in report.groups],
        "total": row_json(report.total),
    }


async def stats_json(request: Request) -> Response:
    """GET /api/supervise/stats: the figures of the query, rows x periods x groups and the total."""

    async def handle(request: Request) -> Response:
        return JSONResponse(report_json(await _report(request, parse_query(request))))

    return await respond(request, handle)


# --------------------------------------------------------------------------- CSV


def _num(value: float | None, digits: int = 1, scale: float = 1.0) -> str:
    return "" if value is None else f"{round(value * scale, digits):.{digits}f}"


# (header zh, header en, value of a row); the same order as the page's table.
CSV_COLUMNS: tuple[tuple[str, str, Callable[[StatsRow, str], str]], ...] = (
    ("时段", "Period", lambda r, lang: r.period or ("合计" if lang == "zh" else "Total")),
    ("起始日", "Period start", lambda r, lang: r.period_start.isoformat() if r.period_start else ""),
    ("分组", "Group", lambda r, lang: r.label_en if lang == "en" else r.label_zh),
    ("分组编码", "Group key", lambda r, lang: r.group or ""),
    ("呼入", "Offered", lambda r, lang: str(r.figures.offered)),
    ("接通", "Answered", lambda r, lang: str(r.figures.answered)),
    ("放弃", "Abandoned", lambda r, lang: str(r.figures.abandoned)),
    ("限时内接通", "Answered within threshold", lambda r, lang: str(r.figures.answered_within)),
    ("服务水平%", "Service level %", lambda r, lang: _num(r.figures.service_level, 1, 100)),
    ("平均等待秒", "Avg wait s", lambda r, lang: _num(r.figures.wait_avg_s)),
    ("90%等待秒", "P90 wait s", lambda r, lang: _num(r.figures.wait_p90_s)),
    ("放弃前平均等待秒", "Avg wait before abandon s", lambda r, lang: _num(r.figures.abandon_wait_avg_s)),
    ("平均通话时长秒", "Avg handle s", lambda r, lang: _num(r.figures.handle_avg_s)),
    ("受理", "Accepted", lambda r, lang: str(r.figures.cases_accepted)),
    ("不予受理", "Refused", lambda r, lang: str(r.figures.cases_refused)),
    ("补正", "Supplement", lambda r, lang: str(r.figures.cases_supplement)),
    ("评价数", "Rated", lambda r, lang: str(r.figures.rated)),
    ("满意率%", "Satisfied %", lambda r, lang: _num(r.figures.satisfied_share, 1, 100)),
    ("不满意数", "Dissatisfied", lambda r, lang: str(r.figures.dissatisfied)),
    ("非常满意", "Very satisfied", lambda r, lang: str(r.figures.rating_counts[5])),
    ("满意", "Satisfied", lambda r, lang: str(r.figures.rating_counts[4])),
    ("基本满意", "Basically satisfied", lambda r, lang: str(r.figures.rating_counts[3])),
    ("不满意", "Dissatisfied (level 2)", lambda r, lang: str(r.figures.rating_counts[2])),
    ("非常不满意", "Very dissatisfied", lambda r, lang: str(r.figures.rating_counts[1])),
    ("使用晓屋数", "Booths used", lambda r, lang: str(r.figures.booths_active)),
    ("晓屋占用秒", "Booth busy s", lambda r, lang: _num(r.figures.booth_busy_s)),
)


def report_csv(report: StatsReport, lang: str) -> str:
    """Header `中文 English`, one line per period x group, then the total line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([f"{zh} {en}" for zh, en, _ in CSV_COLUMNS])
    for row in [*report.rows, report.total]:
        writer.writerow([value(row, lang) for _, _, value in CSV_COLUMNS])
    return "\ufeff" + buffer.getvalue()


async def stats_csv(request: Request) -> Response:
    """GET /api/supervise/stats.csv: the rows of the JSON as a download."""

    async def handle(request: Request) -> Response:
        query = parse_query(request)
        report = await _report(request, query)
        lang = _lang(request)
        name = f"cloudseat-stats-{query.start.isoformat()}-{query.end.isoformat()}-{query.period.value}-{query.by.value}.csv"
        return Response(report_csv(report, lang).encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    return await respond(request, handle)


def _lang(request: Request) -> str:
    """The page language (the `lang` cookie or ?lang=, as the templates pick it): names in the CSV follow it."""
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    return "en" if chosen == "en" else "zh"


# --------------------------------------------------------------------------- page


async def stats_page(request: Request) -> Response:
    """GET /supervise/stats: filters, charts and the table (drawn by the page's script)."""
    error: str | None = None
    status = 200
    try:
        query = parse_query(request)
    except ApiError as exc:
        error, status = exc.code, 400
        end = _today(request.app.state.settings.timezone)
        query = StatsQuery(start=end - timedelta(days=DEFAULT_DAYS - 1), end=end,
                           tz=request.app.state.settings.timezone, regions=visible_regions(request.state.principal))

    def region_names() -> list[tuple[str, str]]:
        if query.regions is None:
            return []
        with Session(read_only(request.app.state.engine)) as session:
            rows = {r.code: r for r in session.exec(select(Region).where(col(Region.code).in_(sorted(query.regions))))}
        return [(rows[c].name_zh, rows[c].name_en) if c in rows else (c, c) for c in sorted(query.regions)]

    return request.app.state.templates.TemplateResponse(
        request, "supervise_stats.html",
        {"principal": request.state.principal, "filters": query_params(query), "error": error,
         "periods": PERIOD_LABELS, "groups": GROUP_LABELS, "scope": await run_in_threadpool(region_names),
         "all_regions": query.regions is None, "timezone": query.tz, "max_threshold": MAX_THRESHOLD_S,
         "today": _today(query.tz).isoformat()},
        status_code=status,
    )


def routes() -> list[BaseRoute]:
    return [
        guarded_route("/supervise/stats", stats_page, allow=SUPERVISION),
        guarded_route("/api/supervise/stats", stats_json, allow=SUPERVISION),
        guarded_route("/api/supervise/stats.csv", stats_csv, allow=SUPERVISION),
    ]
