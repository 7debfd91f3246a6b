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

from clickstream.serve import ServerHandle, create_app, start_in_thread
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
UV_PREVIOUS_DAY = [("2017-11-25", t, 5) for t in UV_TIMES[:6]]  # smaller: MAX per time_str ignores them
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


@pytest.fixture
def server(results_db: Path, fake_job: FakeJob) -> Iterator[ServerHandle]:
    with start_in_thread(create_app(results_db, status=fake_job.status), port=0) as handle:
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
    return page.evaluate(
        """(chart) => {
            const c = Chart.getChart(document.querySelector(`[data-chart="${chart}"] canvas`));
            return {labels: c.data.labels, values: c.data.datasets[0].data};
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
    assert "No rows in buy_cnt_per_hour yet" in page.inner_text("#chart-hourly")

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
    assert hourly["labels"] == [f"{h:02d}" for h in range(24)]
    assert hourly["values"] == [count for _, count in HOURLY]
    uv = chart_data(page, "uv")
    assert uv["labels"] == UV_TIMES and uv["values"] == [v for _, _, v in UV]
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
    with start_in_thread(create_app(tmp_path / "not-yet.db"), port=0) as server:
        page.goto(f"{server.url}/")
        page.wait_for_selector('[data-chart="uv"][data-state="missing"]', timeout=WAIT_MS)
        assert "Waiting for the pipeline to create cumulative_uv" in page.inner_text("#chart-uv")
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
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "status.png"), full_page=True)


def test_status_page_without_a_job(page: Any, results_db: Path) -> None:
    with start_in_thread(create_app(results_db), port=0) as server:
        page.goto(f"{server.url}/status")
        page.wait_for_selector('#status[data-attached="false"]', timeout=WAIT_MS)
        assert page.is_visible("#no-job")
        assert "No job attached." in page.inner_text("#queries")
