"""The dashboard and status page in a real headless Chromium, fed by rows written while they are open.

Uses Debian's /usr/bin/chromium through Playwright (never `playwright install`). Without it the tests
skip, except under CI=true, where a missing browser is a broken setup and fails them. Screenshots go to
artifacts/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickstream import pipelines
from clickstream.serve import ServerHandle, create_app, start_in_thread
from clickstream.serve.dashboards import Dashboard, load_dashboard
from tests.serve.conftest import FakeJob, write

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

# Seed-000-like results: a daily purchase curve, a cumulative UV curve, twelve categories.
HOURLY = [(h, round(40 + 35 * math.sin((h - 6) / 24 * 2 * math.pi) + 8 * (h % 3))) for h in range(24)]
UV_TIMES = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(0, 60, 10)]
UV = [("2017-11-26", t, 20 + round(900 * (1 - math.exp(-i / 45)) + 3 * i)) for i, t in enumerate(UV_TIMES)]
UV_PREVIOUS_DAY = [("2017-11-25", t, 5) for t in UV_TIMES[:6]]  # a line of its own, after the latest day's
CATEGORIES = [
    ("clothing", 412),
    ("shoes", 356),
    ("electronics", 301),
    ("home", 277),
    ("beauty", 240),
    ("sports", 198),
    ("books", 163),
    ("toys", 131),
    ("food", 117),
    ("garden", 96),
    ("auto", 54),
    (None, 12),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true: browser tests must run")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def seed_000_dashboard() -> Dashboard:
    spec = pipelines.dashboard_file("seed_000")
    assert spec is not None
    return load_dashboard(spec)


@pytest.fixture
def server(results_db: Path, fake_job: FakeJob) -> Iterator[ServerHandle]:
    app = create_app(results_db, status=fake_job.status, dashboards=[seed_000_dashboard()])
    with start_in_thread(app, port=0) as handle:
        yield handle


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda msg: _console_error(page.errors, msg))
    yield page
    context.close()
    assert page.errors == [], page.errors


def _console_error(errors: list[str], msg: Any) -> None:
    url = msg.location.get("url", "")
    # A result table the pipeline has not created yet is a 404 by design; the page shows "waiting".
    if msg.type == "error" and not ("/api/tables/" in url and "404" in msg.text):
        errors.append(f"{msg.text} ({url})")


def chart_data(page: Any, chart: str) -> dict[str, list]:
    """The chart's x labels, its first series' values and every series' name."""
    return page.evaluate(
        """(chart) => {
            const c = Chart.getChart(document.querySelector(`[data-chart="${chart}"] canvas`));
            return {labels: c.data.labels, values: c.data.datasets[0].data,
                    series: c.data.datasets.map((d) => d.label)};
        }""",
        chart,
    )


def wait_points(page: Any, chart: str, points: int) -> None:
    page.wait_for_selector(
        f'[data-chart="{chart}"][data-state="ready"][data-points="{points}"]', timeout=WAIT_MS
    )


def test_dashboard_draws_rows_written_while_it_is_open(
    server: ServerHandle, page: Any, results_db: Path
) -> None:
    page.goto(f"{server.url}/")
    page.wait_for_selector('#live[data-connected="true"]', timeout=WAIT_MS)
    for chart in ("hourly", "uv", "categories"):
        page.wait_for_selector(
            f'[data-chart="{chart}"][data-state="empty"][data-points="0"]', timeout=WAIT_MS
        )
    assert "No rows in buy_cnt_per_hour yet" in page.inner_text("#panel-hourly")

    # First half of the day: the charts must pick the rows up from the SSE change events.
    write(results_db, "INSERT INTO buy_cnt_per_hour VALUES (?, ?)", HOURLY[:12])
    write(results_db, "INSERT INTO cumulative_uv VALUES (?, ?, ?)", UV[:72] + UV_PREVIOUS_DAY)
    write(results_db, "INSERT INTO top_category VALUES (?, ?)", CATEGORIES[:4])
    wait_points(page, "hourly", 12)
    wait_points(page, "uv", 72)
    wait_points(page, "categories", 4)

    write(results_db, "INSERT INTO buy_cnt_per_hour VALUES (?, ?)", HOURLY[12:])
    write(results_db, "INSERT INTO cumulative_uv VALUES (?, ?, ?)", UV[72:])
    write(results_db, "INSERT INTO top_category VALUES (?, ?)", CATEGORIES[4:])
    wait_points(page, "hourly", 24)
    wait_points(page, "uv", 144)
    wait_points(page, "categories", 10)  # the panel shows the top 10 of 12

    hourly = chart_data(page, "hourly")
    assert hourly["labels"] == list(range(24))
    assert hourly["values"] == [count for _, count in HOURLY]
    uv = chart_data(page, "uv")
    assert uv["labels"] == UV_TIMES and uv["values"] == [v for _, _, v in UV]
    assert uv["series"] == ["2017-11-26", "2017-11-25"]  # one line per day, the latest first
    categories = chart_data(page, "categories")
    top = sorted(CATEGORIES, key=lambda c: -c[1])[:10]
    assert categories["labels"] == [name for name, _ in top]
    assert categories["values"] == [count for _, count in top]

    # An upsert sink updates in place: the bars follow.
    write(results_db, "UPDATE top_category SET buy_cnt = 500 WHERE category_name = 'auto'")
    page.wait_for_function(
        """() => Chart.getChart(document.querySelector('[data-chart="categories"] canvas')).data.labels[0]
                 === 'auto'""",
        timeout=WAIT_MS,
    )
    assert "1 queries" not in page.inner_text("#job-summary")
    page.wait_for_function(
        "() => document.getElementById('job-summary').textContent.includes('2 queries')", timeout=WAIT_MS
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def test_dashboard_before_the_pipeline_created_its_tables(browser: Any, page: Any, tmp_path: Path) -> None:
    app = create_app(tmp_path / "not-yet.db", dashboards=[seed_000_dashboard()])
    with start_in_thread(app, port=0) as server:
        page.goto(f"{server.url}/")
        page.wait_for_selector('[data-chart="uv"][data-state="missing"]', timeout=WAIT_MS)
        assert "Waiting for the pipeline to create cumulative_uv" in page.inner_text("#panel-uv")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-empty.png"), full_page=True)


def test_status_page_shows_the_job_live(
    server: ServerHandle, page: Any, fake_job: FakeJob, results_db: Path
) -> None:
    write(results_db, "INSERT INTO top_category VALUES (?, ?)", CATEGORIES[:3])
    page.goto(f"{server.url}/status")
    row = page.wait_for_selector('tr[data-query="buy_cnt_per_hour"]', timeout=WAIT_MS)
    cells = [c.inner_text() for c in row.query_selector_all("td")]
    assert cells[0] == "buy_cnt_per_hour" and cells[1] == "100" and cells[3] == "5"
    assert cells[5] == "2017-11-27 00:00:00Z"
    assert cells[6] == "2" and cells[7] == "1" and cells[8] == "7"
    assert page.is_hidden("#no-job")
    assert "database is locked" in page.inner_text('tr[data-query="cumulative_uv"]')
    assert page.inner_text('tr[data-table="top_category"] td.num') == "3"
    assert "2017-11-27 00:00:00Z" in page.inner_text('tr[data-source="user_behavior"]')

    # The counters move: the page follows through the SSE status events, with a rate.
    fake_job.queries["buy_cnt_per_hour"]["records_in"] = 25_100
    page.wait_for_function(
        """() => document.querySelector('tr[data-query="buy_cnt_per_hour"] td:nth-child(2)')
                 .textContent === '25,100'""",
        timeout=WAIT_MS,
    )
    page.wait_for_function(
        """() => document.querySelector('tr[data-query="buy_cnt_per_hour"] td:nth-child(3)')
                 .textContent !== '0'""",
        timeout=WAIT_MS,
    )
    # ...and the chart of records per second over time gains a point a second, the rate among them
    page.wait_for_function(
        """() => Number(document.getElementById('history').dataset.points) >= 2
                 && Chart.getChart(document.querySelector('#history canvas')).data.datasets[0].data
                        .some((v) => v > 0)""",
        timeout=WAIT_MS,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "status.png"), full_page=True)


def test_status_page_without_a_job(page: Any, results_db: Path) -> None:
    with start_in_thread(create_app(results_db), port=0) as server:
        page.goto(f"{server.url}/status")
        page.wait_for_selector('#status[data-attached="false"]', timeout=WAIT_MS)
        assert page.is_visible("#no-job")
        assert "No job attached." in page.inner_text("#queries")


# Every kind of panel, over one shop's results; figures checked against the rows written.
SHOP_DASHBOARD = """
title = "Shop"
[[panels]]
title = "Revenue per minute"
table = "revenue"
kind = "bar"
x = "window_start"
y = ["revenue"]
[[panels]]
title = "Events"
table = "events"
kind = "line"
x = "window_start"
y = ["views", "buys"]
[[panels]]
title = "Share of buys"
table = "by_device"
kind = "pie"
x = "device"
y = ["buys"]
[[panels]]
title = "Totals"
table = "events"
kind = "kpi"
y = ["views", "buys"]
[[panels]]
title = "Conversion"
table = "funnel"
kind = "funnel"
y = ["views", "carts", "buys"]
[[panels]]
title = "Low stock"
table = "low_stock"
kind = "alerts"
order_by = "-stock"
[[panels]]
title = "Sessions"
table = "sessions"
kind = "table"
columns = ["user_id", "hits"]
limit = 2
"""
MINUTES = [f"2026-11-30 10:{m:02d}:00" for m in range(0, 60, 5)] + ["2026-11-30 12:00:00"]


def test_every_kind_of_panel_and_the_time_range(browser: Any, page: Any, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    write(db, "CREATE TABLE revenue (window_start TEXT, revenue DOUBLE)")
    write(db, "INSERT INTO revenue VALUES (?, ?)", [(m, 10.5 * i) for i, m in enumerate(MINUTES)])
    write(db, "CREATE TABLE events (window_start TEXT, views BIGINT, buys BIGINT)")
    write(db, "INSERT INTO events VALUES (?, ?, ?)", [(m, 100 + i, i) for i, m in enumerate(MINUTES)])
    write(db, "CREATE TABLE by_device (device TEXT, buys BIGINT)")
    write(db, "INSERT INTO by_device VALUES (?, ?)", [("mobile", 30), ("computer", 50), (None, 2)])
    write(db, "CREATE TABLE funnel (category TEXT, views BIGINT, carts BIGINT, buys BIGINT)")
    write(db, "INSERT INTO funnel VALUES (?, ?, ?, ?)", [("a", 600, 60, 6), ("b", 400, 40, 14)])
    write(db, "CREATE TABLE low_stock (product TEXT, stock BIGINT)")
    write(db, "INSERT INTO low_stock VALUES (?, ?)", [("tv", 3), ("radio", 1)])
    write(db, "CREATE TABLE sessions (user_id TEXT, hits BIGINT, bytes BIGINT)")
    write(db, "INSERT INTO sessions VALUES (?, ?, ?)", [("u1", 4, 10), ("u2", 9, 20), ("u3", 1, 5)])
    spec = tmp_path / "shop.toml"
    spec.write_text(SHOP_DASHBOARD)
    with start_in_thread(create_app(db, dashboards=[load_dashboard(spec)]), port=0) as server:
        page.goto(f"{server.url}/")
        expected_points = {
            "revenue-per-minute": 13,
            "events": 13,
            "share-of-buys": 3,
            "totals": 2,
            "conversion": 3,
            "low-stock": 2,
            "sessions": 2,
        }
        for panel, points in expected_points.items():
            wait_points(page, panel, points)
        events = page.evaluate(
            """() => Chart.getChart(document.querySelector('[data-chart="events"] canvas'))
                     .data.datasets.map((d) => [d.label, d.data])"""
        )
        assert events == [["views", [100 + i for i in range(13)]], ["buys", list(range(13))]]
        pie = chart_data(page, "share-of-buys")
        assert pie["labels"] == ["computer", "mobile", "(none)"] and pie["values"] == [50, 30, 2]
        tiles = page.eval_on_selector_all(
            '[data-chart="totals"] .tile', "ts => ts.map((t) => [t.dataset.column, t.dataset.value])"
        )
        assert tiles == [["views", str(sum(100 + i for i in range(13)))], ["buys", str(sum(range(13)))]]
        stages = page.eval_on_selector_all(
            '[data-chart="conversion"] .stage', "ss => ss.map((s) => [s.dataset.column, s.dataset.value])"
        )
        assert stages == [["views", "1000"], ["carts", "100"], ["buys", "20"]]
        assert "10.0% of the step before" in page.inner_text('[data-chart="conversion"]')
        alerts = page.eval_on_selector_all(
            '[data-chart="low-stock"] tbody tr', "rs => rs.map((r) => r.innerText)"
        )
        assert [a.split() for a in alerts] == [["tv", "3"], ["radio", "1"]]
        headers = page.eval_on_selector_all('[data-chart="sessions"] th', "hs => hs.map((h) => h.innerText)")
        assert [h.lower() for h in headers] == ["user_id", "hits"]

        # The last hour of event time: 12:00 and the minutes after 11:00 (none), so one bar.
        page.select_option("#range", "1h")
        wait_points(page, "revenue-per-minute", 1)
        assert chart_data(page, "revenue-per-minute")["labels"] == ["2026-11-30 12:00:00"]
        page.select_option("#range", "all")
        wait_points(page, "revenue-per-minute", 13)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-kinds.png"), full_page=True)


def test_an_inferred_dashboard_grows_with_the_tables(browser: Any, page: Any, tmp_path: Path) -> None:
    db = tmp_path / "mine.db"
    write(db, "CREATE TABLE per_minute (window_start TIMESTAMP, user_id BIGINT, clicks BIGINT)")
    write(db, "INSERT INTO per_minute VALUES (?, ?, ?)", [(m, 7, 3) for m in MINUTES[:4]])
    with start_in_thread(create_app(db), port=0) as server:
        page.goto(f"{server.url}/")
        page.wait_for_selector('#live[data-connected="true"]', timeout=WAIT_MS)
        wait_points(page, "per_minute", 4)
        write(db, "CREATE TABLE top_pages (page TEXT, views BIGINT)")
        write(db, "INSERT INTO top_pages VALUES (?, ?)", [("/", 9), ("/cart", 2)])
        wait_points(page, "top_pages", 2)  # a table the job created after the page opened
        assert page.get_attribute('[data-chart="top_pages"]', "data-kind") == "table"


LIMITED_DASHBOARD = """
title = "Long run"
[[panels]]
title = "Per minute"
table = "per_minute"
kind = "line"
x = "minute"
y = ["clicks"]
limit = 50
[[panels]]
title = "Per day"
table = "per_day"
kind = "line"
x = "time_str"
y = ["uv"]
split = "date_str"
limit = 30
"""


def test_a_chart_over_its_limit_shows_the_newest_rows(browser: Any, page: Any, tmp_path: Path) -> None:
    """A long run writes more rows than a chart holds: the chart shows the latest ones (and, split
    by day, the latest days), never the first ones with the newest cut off."""
    db = tmp_path / "long.db"
    write(db, "CREATE TABLE per_minute (minute TEXT, clicks BIGINT)")
    minutes = [f"2026-11-30 {m // 60:02d}:{m % 60:02d}:00" for m in range(200)]
    write(db, "INSERT INTO per_minute VALUES (?, ?)", [(m, i) for i, m in enumerate(minutes)])
    write(db, "CREATE TABLE per_day (date_str TEXT, time_str TEXT, uv BIGINT)")
    days = [f"2026-11-{d:02d}" for d in range(20, 30)]
    day_rows = [(d, f"{h:02d}:00", h) for d in days for h in range(10)]
    write(db, "INSERT INTO per_day VALUES (?, ?, ?)", day_rows)
    spec = tmp_path / "long.toml"
    spec.write_text(LIMITED_DASHBOARD)
    with start_in_thread(create_app(db, dashboards=[load_dashboard(spec)]), port=0) as server:
        page.goto(f"{server.url}/")
        wait_points(page, "per-minute", 50)
        drawn = chart_data(page, "per-minute")
        assert drawn["labels"] == minutes[-50:] and drawn["values"] == list(range(150, 200))
        wait_points(page, "per-day", 10)
        assert chart_data(page, "per-day")["series"] == days[-1:-4:-1]  # the newest three days
