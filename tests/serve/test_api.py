"""REST API over the results file: tables, rows, ordering, limits, 404s, and no way to inject SQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clickstream.serve import create_app
from clickstream.serve.results import ResultsDB
from clickstream.serve.status import JobStatusDict, RateTracker
from tests.serve.conftest import FakeJob, local_client, write


@pytest.fixture
def filled_db(results_db: Path) -> Path:
    write(results_db, "INSERT INTO buy_cnt_per_hour VALUES (?, ?)", [(h, 10 + h) for h in range(5)])
    write(
        results_db,
        "INSERT INTO cumulative_uv VALUES (?, ?, ?)",
        [("2017-11-26", "10:00", 3), ("2017-11-26", "10:10", 8)],
    )
    write(
        results_db,
        "INSERT INTO top_category VALUES (?, ?)",
        [("clothes", 40), ("shoes", 25), ("books", 31), (None, 2)],
    )
    # the exactly-once sinks' bookkeeping is in the same file, and is not a result
    write(results_db, "CREATE TABLE clickstream_commits (writer TEXT, checkpoint_id BIGINT)")
    return results_db


@pytest.fixture
def client(filled_db: Path) -> TestClient:
    return local_client(create_app(filled_db))


def test_lists_result_tables_with_columns_and_row_counts(client: TestClient) -> None:
    tables = {t["name"]: t for t in client.get("/api/tables").json()["tables"]}
    assert sorted(tables) == ["buy_cnt_per_hour", "cumulative_uv", "top_category"]
    assert tables["buy_cnt_per_hour"]["rows"] == 5
    assert tables["top_category"]["kind"] == "table"
    assert tables["cumulative_uv"]["columns"] == [
        {"name": "date_str", "type": "TEXT"},
        {"name": "time_str", "type": "TEXT"},
        {"name": "uv", "type": "BIGINT"},
    ]


def test_rows_as_objects_in_insertion_order(client: TestClient) -> None:
    body = client.get("/api/tables/buy_cnt_per_hour").json()
    assert body["rows"] == [{"hour_of_day": h, "buy_cnt": 10 + h} for h in range(5)]
    assert body["total"] == 5
    assert [c["name"] for c in body["columns"]] == ["hour_of_day", "buy_cnt"]


def test_order_by_and_limit(client: TestClient) -> None:
    body = client.get("/api/tables/top_category", params={"order_by": "-buy_cnt", "limit": 2}).json()
    assert body["rows"] == [
        {"category_name": "clothes", "buy_cnt": 40},
        {"category_name": "books", "buy_cnt": 31},
    ]
    assert body["total"] == 4 and body["limit"] == 2
    asc = client.get("/api/tables/top_category", params={"order_by": "buy_cnt, category_name"}).json()
    assert [r["buy_cnt"] for r in asc["rows"]] == [2, 25, 31, 40]


@pytest.mark.parametrize("limit", [0, -1, 100_001, "many"])
def test_bad_limit_is_rejected(client: TestClient, limit: object) -> None:
    assert client.get("/api/tables/top_category", params={"limit": limit}).status_code == 422


def test_unknown_table_is_404(client: TestClient) -> None:
    response = client.get("/api/tables/no_such_table")
    assert response.status_code == 404
    assert "no_such_table" in response.json()["detail"]


@pytest.mark.parametrize(
    "name",
    [
        "top_category; DROP TABLE top_category",
        'top_category" UNION SELECT name, sql FROM sqlite_master --',
        "sqlite_master",
        "top_category--",
    ],
)
def test_table_name_cannot_inject_sql(client: TestClient, filled_db: Path, name: str) -> None:
    assert client.get(f"/api/tables/{name}").status_code == 404
    assert client.get("/api/tables/top_category").json()["total"] == 4


@pytest.mark.parametrize(
    "order_by",
    [
        "buy_cnt; DROP TABLE top_category",
        "(SELECT 1)",
        "buy_cnt DESC",
        "nope",
    ],
)
def test_order_by_cannot_inject_sql(client: TestClient, order_by: str) -> None:
    response = client.get("/api/tables/top_category", params={"order_by": order_by})
    assert response.status_code == 400
    assert "unknown column" in response.json()["detail"]
    assert client.get("/api/tables/top_category").json()["total"] == 4


def test_odd_table_names_are_quoted(results_db: Path) -> None:
    # Names come from the catalogue, but are still quoted: spaces and quotes must read correctly.
    write(results_db, 'CREATE TABLE "odd ""name""" ("a b" INTEGER)')
    write(results_db, 'INSERT INTO "odd ""name""" VALUES (?)', [(1,), (2,)])
    client = local_client(create_app(results_db))
    body = client.get('/api/tables/odd "name"', params={"order_by": "-a b"}).json()
    assert body["rows"] == [{"a b": 2}, {"a b": 1}]


def test_connections_are_read_only(filled_db: Path) -> None:
    conn = ResultsDB(filled_db).connect()
    assert conn is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM top_category")
    conn.close()


def test_missing_results_file_reads_as_no_tables(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    client = local_client(create_app(path))
    assert client.get("/api/tables").json() == {"tables": []}
    assert client.get("/api/tables/top_category").status_code == 404
    assert not path.exists()  # read-only: the server never creates the file


def test_status_without_job(client: TestClient) -> None:
    body = client.get("/api/status").json()
    assert body["attached"] is False
    assert body["queries"] == {} and body["sources"] == {}
    assert body["results"] == {"buy_cnt_per_hour": 5, "cumulative_uv": 2, "top_category": 4}


def test_status_with_job_has_rates_and_utc_watermark(filled_db: Path, fake_job: FakeJob) -> None:
    app = create_app(filled_db, status=fake_job.status)
    now = [0.0]
    app.state.serve_context.rates = RateTracker(window_s=10, clock=lambda: now[0])
    client = local_client(app)
    first = client.get("/api/status").json()
    assert first["attached"] is True and first["started"] == fake_job.started
    assert first["queries"]["buy_cnt_per_hour"]["records_in_per_s"] == 0.0
    now[0] = 2.0
    fake_job.queries["buy_cnt_per_hour"]["records_in"] += 50
    fake_job.queries["buy_cnt_per_hour"]["records_out"] += 4
    body = client.get("/api/status").json()
    hourly = body["queries"]["buy_cnt_per_hour"]
    assert hourly["records_in_per_s"] == 25.0 and hourly["records_out_per_s"] == 2.0
    assert hourly["state_rows"] == 7 and hourly["late_dropped"] == 2
    assert hourly["watermark_utc"] == "2017-11-27T00:00:00.000Z"
    assert body["queries"]["cumulative_uv"]["watermark_utc"] is None
    assert body["queries"]["cumulative_uv"]["errors"] == ["sink retry: database is locked"]
    assert body["sources"]["user_behavior"]["exhausted"] is False


def test_each_simulation_has_the_simulated_time_its_job_reached(filled_db: Path) -> None:
    """The demo's header shows, on each scenario's tab, that scenario's simulated time: its own
    queries' latest watermark, not the latest over every scenario (they simulate different dates)."""
    from clickstream.serve.status import NO_WATERMARK, event_time

    queries = {
        "000/hourly": {"watermark": 1_511_600_000_000},
        "000/uv": {"watermark": 1_511_740_800_000},
        "002/sessions": {"watermark": NO_WATERMARK},
    }
    scenario = {name: {k: q for k, q in queries.items() if k.startswith(name)} for name in ("000", "002")}
    simulations = {
        name: {"dashboard": f"seed_{name}", "finished": False, "event_time": event_time(scenario[name])}
        for name in scenario
    }
    status = JobStatusDict(started=0.0, queries={}, sources={}, simulations=simulations)
    body = local_client(create_app(filled_db, status=lambda: status)).get("/api/status").json()
    assert body["simulations"]["000"]["event_time"] == 1_511_740_800_000
    assert body["simulations"]["000"]["event_time_utc"] == "2017-11-27T00:00:00.000Z"
    assert body["simulations"]["002"]["event_time"] is None  # no watermark yet
    assert body["simulations"]["002"]["event_time_utc"] is None
    assert event_time({"q": {"watermark": 2**63 - 1}}) is None  # the end of input is no time


def test_failing_status_callable_is_reported_not_raised(filled_db: Path) -> None:
    def broken() -> dict:
        raise RuntimeError("engine gone")

    body = local_client(create_app(filled_db, status=broken)).get("/api/status").json()  # type: ignore[arg-type]
    assert body["attached"] is True
    assert "engine gone" in body["error"]


def test_rate_tracker_uses_the_window() -> None:
    now = [0.0]
    rates = RateTracker(window_s=5, clock=lambda: now[0])
    for t, n in [(0, 0), (5, 100), (10, 300), (15, 600)]:
        now[0] = t
        result = rates.observe({"q": {"records_in": n, "records_out": 0}})
    # The oldest sample kept is at t=10 (the window's edge): (600 - 300) / 5 s.
    assert result["q"]["records_in_per_s"] == 60.0


def test_pages_and_vendored_chart_library_are_served(filled_db: Path) -> None:
    client = local_client(create_app(filled_db, title="shop <live>"))
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "shop &lt;live&gt;" in dashboard.text and "<live>" not in dashboard.text
    assert 'id="panels"' in dashboard.text  # filled from /api/dashboard
    assert "No job is attached" in client.get("/status").text
    script = client.get("/static/vendor/chart.umd.min.js")
    assert script.status_code == 200 and "Chart.js v4" in script.text[:200]
    assert "http" not in dashboard.text.split("<body>")[0].replace("http-equiv", "")  # no CDN in <head>


def test_status_only_server_without_a_results_file(fake_job: FakeJob) -> None:
    # `clickstream run --serve` of a job that writes no SQLite results
    client = local_client(create_app(None, status=fake_job.status))
    assert client.get("/api/tables").json() == {"tables": []}
    missing = client.get("/api/tables/top_category")
    assert missing.status_code == 404 and "no results file" in missing.json()["detail"]
    status = client.get("/api/status").json()
    assert status["attached"] is True and status["results"] == {}
    assert status["queries"]["buy_cnt_per_hour"]["records_in"] == 100
    assert "clickstream_records_in_total" in client.get("/metrics").text
    assert "clickstream_results" not in client.get("/metrics").text
