"""Change detection and the Server-Sent Events stream, over a real uvicorn server in a thread."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clickstream.serve import ServerHandle, create_app, start_in_thread
from clickstream.serve.results import ChangeWatcher, ResultsDB
from tests.serve.conftest import SEED_000_DDL, FakeJob, write

WAIT_S = 10.0


def test_watcher_reports_inserts_updates_and_new_tables(results_db: Path) -> None:
    watcher = ChangeWatcher(ResultsDB(results_db))
    assert watcher.poll() == []  # the first poll is the baseline
    assert watcher.poll() == []
    write(results_db, "INSERT INTO top_category VALUES (?, ?)", [("shoes", 1)])
    assert watcher.poll() == ["top_category"]
    assert watcher.poll() == []
    # An upsert sink updates in place: same row count, same rowid, still a change.
    write(results_db, "UPDATE top_category SET buy_cnt = 2 WHERE category_name = 'shoes'")
    assert watcher.poll() == ["top_category"]
    write(results_db, "CREATE TABLE revenue (m TEXT, amount REAL)")
    assert watcher.poll() == ["revenue"]
    write(results_db, "DROP TABLE revenue")
    assert watcher.poll() == ["revenue"]
    watcher.close()


def test_watcher_sees_a_file_created_after_it_started(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    watcher = ChangeWatcher(ResultsDB(path))
    assert watcher.poll() == []
    write(path, SEED_000_DDL[0])
    write(path, "INSERT INTO buy_cnt_per_hour VALUES (?, ?)", [(0, 1)])
    assert watcher.poll() == ["buy_cnt_per_hour"]
    watcher.close()


@pytest.fixture
def server(results_db: Path, fake_job: FakeJob) -> Iterator[ServerHandle]:
    handle = start_in_thread(create_app(results_db, status=fake_job.status), port=0)
    yield handle
    handle.stop()


def _events(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    event = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event:
            yield event, json.loads(line.removeprefix("data: "))
            event = None


def test_sse_pushes_status_and_a_change_after_a_write(server: ServerHandle, results_db: Path) -> None:
    with httpx.stream("GET", f"{server.url}/api/events", timeout=httpx.Timeout(WAIT_S)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
        kind, status = next(events)
        assert kind == "status" and status["attached"] is True
        assert status["queries"]["buy_cnt_per_hour"]["records_in"] == 100

        write(results_db, "INSERT INTO cumulative_uv VALUES (?, ?, ?)", [("2017-11-26", "10:00", 4)])
        deadline = time.monotonic() + WAIT_S
        seen = []
        for kind, data in events:  # a status event every second keeps this loop turning
            seen.append(kind)
            if kind == "change":
                assert data == {"tables": ["cumulative_uv"]}
                break
            assert time.monotonic() < deadline, f"no change event within {WAIT_S} s; saw {seen}"


def test_stop_is_not_held_up_by_open_streams(results_db: Path) -> None:
    handle = start_in_thread(create_app(results_db), port=0)
    with httpx.stream("GET", f"{handle.url}/api/events", timeout=WAIT_S) as response:
        next(response.iter_lines())
        started = time.monotonic()
        handle.stop()
        assert time.monotonic() - started < 5
    assert not handle.thread.is_alive()


def test_start_in_thread_fails_clearly_on_a_busy_port(results_db: Path) -> None:
    with start_in_thread(create_app(results_db), port=0) as first, pytest.raises(RuntimeError, match="start"):
        start_in_thread(create_app(results_db), port=first.port)


def test_server_listens_on_loopback_by_default(results_db: Path) -> None:
    with start_in_thread(create_app(results_db), port=0) as handle:
        assert handle.host == "127.0.0.1"
        assert httpx.get(f"{handle.url}/api/tables", timeout=WAIT_S).status_code == 200


def test_sqlite_write_lock_does_not_break_the_stream(server: ServerHandle, results_db: Path) -> None:
    # A writer holding the lock for a moment (a sink mid-transaction) delays, but never kills, the stream.
    conn = sqlite3.connect(results_db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("INSERT INTO top_category VALUES ('toys', 3)")
    with httpx.stream("GET", f"{server.url}/api/events", timeout=WAIT_S) as response:
        events = _events(response)
        time.sleep(0.3)
        conn.execute("COMMIT")
        conn.close()
        deadline = time.monotonic() + WAIT_S
        for kind, data in events:
            if kind == "change" and "top_category" in data["tables"]:
                break
            assert time.monotonic() < deadline
