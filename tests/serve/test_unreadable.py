"""A results file that cannot be read (a hot journal left by a killed writer, a writer's lock held too
long, a corrupt file) answers 503 with a sentence saying why, logs one line and no traceback, keeps
/metrics serving the job's figures, and recovers by itself once the file is fine again."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clickstream.serve import create_app
from tests.serve.conftest import FakeJob, local_client, write
from tests.serve.test_metrics import scrape

# A writer that dies mid-transaction with its changes spilled to the file: the journal stays "hot".
KILLED_WRITER = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size = 1")  # spill changed pages into the database file at once
conn.execute("BEGIN")
rows = [(f"c{i}", i) for i in range(5000)]
conn.executemany("INSERT INTO top_category VALUES (?, ?)", rows)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def client(results_db: Path, fake_job: FakeJob) -> TestClient:
    write(results_db, "INSERT INTO top_category VALUES (?, ?)", [("shoes", 3), ("books", 1)])
    return local_client(create_app(results_db, status=fake_job.status))


def _assert_unavailable(client: TestClient, caplog: pytest.LogCaptureFixture, why: str) -> None:
    for path in ("/api/tables", "/api/tables/top_category"):
        response = client.get(path)
        assert response.status_code == 503, response.text
        assert why in response.json()["detail"]
        assert "results.db" in response.json()["detail"]
    status = client.get("/api/status").json()
    assert status["attached"] is True and why in status["results_error"]
    samples = scrape(client)  # the job's figures still come; the results' are marked unreadable
    assert samples["clickstream_results_readable", ()] == 0
    assert samples["clickstream_records_in_total", (("query", "buy_cnt_per_hour"),)] == 100
    assert not any(name == "clickstream_results_rows" for name, _ in samples)
    assert caplog.records, "the reason is logged"
    assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in caplog.records)


def _assert_recovered(client: TestClient) -> None:
    tables = {t["name"]: t["rows"] for t in client.get("/api/tables").json()["tables"]}
    assert tables["top_category"] == 2
    assert client.get("/api/tables/top_category").status_code == 200
    assert scrape(client)["clickstream_results_readable", ()] == 1


def test_hot_journal_of_a_killed_writer(
    client: TestClient, results_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(results_db)], check=False)
    assert Path(f"{results_db}-journal").exists()
    with caplog.at_level(logging.WARNING):
        _assert_unavailable(client, caplog, "hot journal")
    # a writer opening the file rolls the dead transaction back (the job restarting does)
    with sqlite3.connect(results_db) as conn:
        conn.execute("SELECT count(*) FROM top_category").fetchone()
    conn.close()
    _assert_recovered(client)


def test_writer_holding_its_lock(
    client: TestClient, results_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = sqlite3.connect(results_db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO top_category VALUES ('toys', 5)")
    with caplog.at_level(logging.WARNING):
        _assert_unavailable(client, caplog, "locked")
    writer.execute("ROLLBACK")
    writer.close()
    _assert_recovered(client)


def test_corrupt_file(client: TestClient, results_db: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = results_db.read_bytes()
    results_db.write_bytes(b"this is not a database" * 500)
    with caplog.at_level(logging.WARNING):
        _assert_unavailable(client, caplog, "not a readable SQLite database")
    results_db.write_bytes(good)
    _assert_recovered(client)
