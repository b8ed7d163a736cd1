"""The statistics page in real Chromium: a supervisor filters, reads the table and charts, regroups, downloads.

The sessions are generated with the real records functions into the live server's database; the
figures the page shows are compared with the ones recomputed from the event log
(tests/integration/test_statistics_data.py).  Screens are checked with axe and photographed into
var/screenshots/supervise-stat-*.png at 1920x1080 and 1366x768.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from records.db import make_engine
from tests.browser.a11y import assert_accessible
from tests.integration.test_statistics_data import DAYS, RANGE, SHANGHAI, Cast, expected, facts_from_events, generate
from tests.integration.test_statistics_http import check_csv
from tests.signaling_fixtures import PASSWORD, world

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}
TIMEOUT_MS = 60_000


@pytest.fixture
def stats_world(app_settings, monkeypatch):
    with world(app_settings) as w:
        engine = make_engine(app_settings.database_url)
        regions = {"b1": "east", "b2": "east", "b3": "west"}
        cast = Cast({w.booth_ids[n]: r for n, r in regions.items()}, list(w.clerk_ids.values()),
                    sorted(set(w.item_by_skill.values()))[:3])
        generate(engine, cast, monkeypatch)
        facts = facts_from_events(engine)
        engine.dispose()
        yield w, facts


async def open_stats(browser: Any, base_url: str, *, viewport: dict[str, int], lang: str | None = None) -> tuple[Any, Any]:
    """A fresh context logged in through the form as the supervisor, on the stats page with the test's range."""
    context = await browser.new_context(viewport=viewport, timezone_id="Asia/Shanghai", accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    if lang:
        await context.add_cookies([{"name": "lang", "value": lang, "url": base_url}])
    page = await context.new_page()
    await page.goto(f"{base_url}/login")
    await page.fill("#username", "sup")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/supervise")
    await page.click("[data-testid=nav-stats]")
    await page.wait_for_url(f"{base_url}/supervise/stats")
    await page.wait_for_selector("#stats-page[data-state=ready]")
    await page.fill("#f-from", RANGE[0].isoformat())
    await page.fill("#f-to", RANGE[1].isoformat())
    await page.click("#f-apply")
    await page.wait_for_selector(f"#stats-page[data-state=ready][data-from='{RANGE[0].isoformat()}']")
    return context, page


async def cell(page: Any, period: str, group: str, column: str) -> str:
    return await page.get_attribute(f"#stats-table tr[data-period='{period}'][data-group='{group}'] td[data-col='{column}']",
                                    "data-value")


async def cell_text(page: Any, period: str, group: str, column: str) -> str:
    return (await page.text_content(
        f"#stats-table tr[data-period='{period}'][data-group='{group}'] td[data-col='{column}']") or "").strip()


async def test_supervisor_reads_regroups_and_downloads_the_statistics(browser, stats_world, screenshot_dir: Path):
    w, facts = stats_world
    want = expected(facts, start=RANGE[0], end=RANGE[1])
    day = DAYS[1].isoformat()
    context, page = await open_stats(browser, w.url, viewport=DESKTOP)
    try:
        # The totals: key figures and the table's foot.
        total = want["total"][None]
        assert await page.get_attribute("[data-kpi=offered]", "data-value") == str(total["offered"])
        assert await page.get_attribute("[data-kpi=answered]", "data-value") == str(total["answered"])
        assert await page.get_attribute("[data-kpi=abandoned]", "data-value") == str(total["abandoned"])
        assert await cell(page, "total", "", "cases_refused") == str(total["cases_refused"])
        assert await cell(page, "total", "", "dissatisfied") == str(total["dissatisfied"])
        # One day's row, as numbers and as the text a supervisor reads.
        row = want["rows"][(day, None)]
        assert await cell(page, day, "", "offered") == str(row["offered"])
        assert await cell(page, day, "", "abandoned") == str(row["abandoned"])
        assert await cell_text(page, day, "", "service_level") == f"{row['service_level'] * 100:.1f}%"
        assert await cell_text(page, day, "", "wait_p90_s") == f"{row['wait_p90_s']:.1f}"
        assert float(await cell(page, day, "", "handle_avg_s")) == pytest.approx(row["handle_avg_s"], abs=0.05)
        # The charts carry the same figures.
        for series in ("offered", "answered", "abandoned"):
            bar = f"#chart-calls rect[data-series={series}][data-period='{day}']"
            assert await page.get_attribute(bar, "data-value") == str(row[series])
        dot = f"#chart-rates [data-series=service_level][data-period='{day}']"
        assert float(await page.get_attribute(dot, "data-value")) == pytest.approx(row["service_level"], abs=5e-5)
        empty_day = "2026-02-28"
        assert await page.get_attribute(f"#chart-calls rect[data-series=offered][data-period='{empty_day}']",
                                         "data-value") == "0"
        await assert_accessible(page, "stats by day")
        await page.screenshot(path=str(screenshot_dir / "supervise-stat-day-1920x1080.png"))

        # Regroup by clerk: the select applies at once.
        await page.select_option("#f-by", "clerk")
        await page.wait_for_selector("#stats-page[data-state=ready][data-by=clerk]")
        by_clerk = expected(facts, start=RANGE[0], end=RANGE[1], by="clerk")
        assert await page.locator("#stats-rows tr").count() == len(by_clerk["rows"])
        clerk = str(w.clerk_ids["c1"])
        for (period, group), figures in by_clerk["rows"].items():
            if group == clerk:
                assert await cell(page, period, clerk, "answered") == str(figures["answered"])
                assert await cell(page, period, clerk, "rated") == str(figures["rated"])
                assert await cell_text(page, period, clerk, "offered") == str(figures["offered"])
                break
        else:
            pytest.fail("no row for clerk c1")
        for group, figures in by_clerk["groups"].items():
            key = group or ""
            assert await page.get_attribute(f"#chart-groups [data-series=offered][data-group='{key}']",
                                            "data-value") == str(figures["offered"])
        assert "C1" in (await page.text_content("#chart-groups svg") or "")
        await assert_accessible(page, "stats by clerk")
        await page.screenshot(path=str(screenshot_dir / "supervise-stat-1920x1080.png"))

        # The page's CSV link downloads the same grouping.
        async with page.expect_download() as info:
            await page.click("#csv-link")
        download = await info.value
        assert download.suggested_filename == "cloudseat-stats-2026-02-27-2026-03-10-day-clerk.csv"
        check_csv(Path(await download.path()).read_bytes(), by_clerk)

        # Weeks, by region: fewer, wider periods.
        await page.select_option("#f-period", "week")
        await page.select_option("#f-by", "region")
        await page.wait_for_selector("#stats-page[data-state=ready][data-by=region][data-period=week]")
        weekly = expected(facts, start=RANGE[0], end=RANGE[1], period="week", by="region")
        assert await cell(page, "2026-W10", "east", "offered") == str(weekly["rows"][("2026-W10", "east")]["offered"])
        assert await page.locator("#chart-calls rect[data-series=offered]").count() == 3
    finally:
        await context.close()


async def test_stats_page_on_a_laptop_and_in_english(browser, stats_world, screenshot_dir: Path):
    w, facts = stats_world
    want = expected(facts, start=RANGE[0], end=RANGE[1], by="booth")
    context, page = await open_stats(browser, w.url, viewport=LAPTOP)
    try:
        await page.select_option("#f-by", "booth")
        await page.wait_for_selector("#stats-page[data-state=ready][data-by=booth]")
        booth = str(w.booth_ids["b3"])
        assert await page.get_attribute(f"#chart-groups [data-series=offered][data-group='{booth}']",
                                        "data-value") == str(want["groups"][booth]["offered"])
        await assert_accessible(page, "stats by booth (laptop)")
        await page.screenshot(path=str(screenshot_dir / "supervise-stat-1366x768.png"))
        # A quick range counts back from today in the configured time zone.
        today = datetime.now(timezone.utc).astimezone(SHANGHAI).date()
        await page.click("[data-range='7']")
        await page.wait_for_selector(f"#stats-page[data-state=ready][data-to='{today.isoformat()}']")
        assert await page.get_attribute("#stats-page", "data-from") == (today - timedelta(days=6)).isoformat()
        await page.fill("#f-from", RANGE[0].isoformat())
        await page.fill("#f-to", RANGE[1].isoformat())
        await page.click("#f-apply")
        await page.wait_for_selector(f"#stats-page[data-state=ready][data-to='{RANGE[1].isoformat()}']")
        # A bad range is refused in place, with the figures of the last good query still shown.
        await page.fill("#f-from", "2026-03-10")
        await page.fill("#f-to", "2026-03-01")
        await page.click("#f-apply")
        await page.wait_for_selector("#stats-page[data-state=error]")
        assert await page.get_attribute("#stats-error", "data-code") == "invalid_range"
        assert "结束日期早于开始日期" in (await page.text_content("#stats-error") or "")
        assert await page.get_attribute("[data-kpi=offered]", "data-value") == str(want["total"][None]["offered"])
    finally:
        await context.close()
    context, page = await open_stats(browser, w.url, viewport=LAPTOP, lang="en")
    try:
        assert await page.text_content("#stats-title") == "Statistics"
        assert await page.text_content("#stats-table th[data-col=offered]") == "Offered"
        await assert_accessible(page, "stats in English")
        await page.screenshot(path=str(screenshot_dir / "supervise-stat-en-1366x768.png"))
    finally:
        await context.close()
