"""End to end: `clickstream demo --scenario all` runs every seed's analyses; in headless Chromium each
scenario's dashboard shows data in every panel, and each panel's figures equal what its table's rows
give through the API (computed here, independently of the page's code). Screenshots of each
scenario's page go to artifacts/ (and, by hand, into docs/ for the README)."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.demo_process import free_port, interrupt, start_demo, wait_for_url

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# A quarter of a simulated day per scenario: 18,000 events each, written in about 6 s.
SPAN = ("--rate", "3000", "--speedup", "3600", "--days", "0.25")
WAIT_S = 120


def _get(url: str) -> Any:
    return json.loads(urllib.request.urlopen(url, timeout=10).read())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI=true: the browser test must run")
        pytest.skip(f"{CHROMIUM} is not installed")
    port = free_port()
    process = start_demo(tmp_path_factory.mktemp("scenarios") / "demo", port, "--scenario", "all", *SPAN)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_url(url + "/api/status", process)
        _wait_until_settled(url, process)
        yield url
        interrupt(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_until_settled(url: str, process: Any) -> None:
    """Until every simulation has finished, every job has read all of it, every table a panel
    draws has rows (joins wait for an idle source's timeout), and the results have stopped changing
    (three polls in a row)."""
    boards = [
        _get(f"{url}/api/dashboard?name={d['name']}") for d in _get(url + "/api/dashboards")["dashboards"]
    ]
    drawn = {panel["table"] for board in boards for panel in board["panels"]}
    deadline, last, stable = time.monotonic() + WAIT_S, None, 0
    while stable < 3:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, f"the demo did not settle: {_get(url + '/api/status')}"
        time.sleep(1)
        status = _get(url + "/api/status")
        done = all(s["finished"] for s in status["simulations"].values())
        caught_up = status["queries"] and all(q["lag"] == 0 for q in status["queries"].values())
        now = status["results"]
        filled = all(now.get(table, 0) > 0 for table in drawn)
        stable = stable + 1 if done and caught_up and filled and now == last else 0
        last = now


def test_every_scenario_shows_its_analyses(demo: str) -> None:
    from playwright.sync_api import sync_playwright

    dashboards = _get(demo + "/api/dashboards")["dashboards"]
    assert [d["name"] for d in dashboards][:1] == ["seed_000"] and len(dashboards) >= 3
    ARTIFACTS.mkdir(exist_ok=True)
    dates: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        for dashboard in dashboards:
            spec = _get(f"{demo}/api/dashboard?name={dashboard['name']}")
            page.goto(f"{demo}/?dashboard={dashboard['name']}")
            for panel in spec["panels"]:
                selector = f'[data-chart="{panel["id"]}"][data-state="ready"]:not([data-points="0"])'
                page.wait_for_selector(selector, timeout=30_000)
            page.select_option("#refresh", "off")  # the figures hold still while they are compared
            for panel in spec["panels"]:
                _check_panel(page, demo, panel)
            dates.append(_check_header(page, demo, dashboard["name"]))
            page.screenshot(path=str(ARTIFACTS / f"scenario-{dashboard['name']}.png"), full_page=True)
        browser.close()
    assert len(set(dates)) == len(dashboards)  # every scenario simulates a day of its own


def _check_header(page: Any, demo: str, name: str) -> str:
    """The header shows the simulated time of the scenario whose tab is shown (its job's latest
    watermark, through the API), not the latest of all scenarios; its date is returned."""
    status = _get(demo + "/api/status")
    (simulation,) = [s for s in status["simulations"].values() if s["dashboard"] == name]
    assert simulation["event_time"] is not None, name
    page.wait_for_function(
        "(ms) => document.getElementById('job-summary').dataset.eventTime === String(ms)",
        arg=simulation["event_time"],
        timeout=10_000,
    )
    shown = page.inner_text("#job-summary")
    # the page writes the time as "2017-11-25 05:59:55Z"
    assert simulation["event_time_utc"][:19].replace("T", " ") in shown, (name, shown)
    return str(simulation["event_time_utc"][:10])


# --- what each panel must show, from its table's rows -----------------------------------------


def _rows(demo: str, panel: dict[str, Any]) -> list[dict[str, Any]]:
    order = panel["order_by"] or (panel["x"] if panel["kind"] in ("line", "area", "bar") else None)
    if panel["kind"] in ("hbar", "pie") and not panel["order_by"]:
        order = f"-{panel['y'][0]},{panel['x']}"
    query = f"limit={panel['limit']}" + (f"&order_by={quote(order)}" if order else "")
    return list(_get(f"{demo}/api/tables/{panel['table']}?{query}")["rows"])


def _combine(previous: float | None, value: Any, aggregate: str) -> float | None:
    if aggregate == "count":
        return (previous or 0) + 1
    if value is None:
        return previous
    if previous is None or aggregate == "last":
        return float(value)
    return previous + float(value) if aggregate == "sum" else max(previous, float(value))


def _check_panel(page: Any, demo: str, panel: dict[str, Any]) -> None:
    rows, kind, where = _rows(demo, panel), panel["kind"], f'[data-chart="{panel["id"]}"]'
    assert rows, f"{panel['id']}: no rows in {panel['table']}"
    if kind == "kpi":
        tiles = page.eval_on_selector_all(f"{where} .tile", "ts => ts.map((t) => Number(t.dataset.value))")
        expected = [_reduce(rows, column, panel["reduce"]) for column in panel["y"]]
        assert tiles == pytest.approx(expected), panel["id"]
    elif kind == "funnel":
        stages = page.eval_on_selector_all(f"{where} .stage", "ss => ss.map((s) => Number(s.dataset.value))")
        assert stages == pytest.approx([_reduce(rows, column, "sum") for column in panel["y"]]), panel["id"]
    elif kind in ("hbar", "pie"):
        drawn = _chart(page, panel["id"])
        totals: dict[str, float | None] = {}
        for row in rows:
            label = "(none)" if row[panel["x"]] is None else str(row[panel["x"]])
            totals[label] = _combine(totals.get(label), row[panel["y"][0]], panel["aggregate"])
        top = sorted(totals.items(), key=lambda item: -(item[1] or 0))[: panel["top"] or 10]
        assert drawn["values"] == pytest.approx([value for _, value in top]), panel["id"]
        # each bar is its label's total (of equal totals, either may make the top)
        assert [totals[label] for label in drawn["labels"]] == pytest.approx(drawn["values"]), panel["id"]
    elif kind in ("line", "area", "bar"):
        drawn = _chart(page, panel["id"])
        xs = sorted({row[panel["x"]] for row in rows if row[panel["x"]] is not None}, key=str)
        assert [str(x) for x in drawn["labels"]] == [str(x) for x in xs], panel["id"]
    else:  # table, alerts
        shown = page.eval_on_selector_all(f"{where} tbody tr", "rs => rs.length")
        assert shown == len(rows), panel["id"]


def _reduce(rows: list[dict[str, Any]], column: str, how: str) -> float:
    values = [float(row[column]) for row in rows if row[column] is not None]
    if how == "count":
        return float(len(rows))
    if how == "last":
        return values[-1]
    return max(values) if how == "max" else sum(values)


def _chart(page: Any, panel: str) -> dict[str, list]:
    return page.evaluate(
        """(panel) => {
            const c = Chart.getChart(document.querySelector(`[data-chart="${panel}"] canvas`));
            return {labels: c.data.labels, values: c.data.datasets[0].data};
        }""",
        panel,
    )
