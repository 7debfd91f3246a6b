"""Reads stay cheap however large the results grow, so they never hold the job's writes up: row
counts scan a bounded number of rows (measured in SQLite VM steps, not time), and one answer
serves every request while the file is unchanged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from clickstream.serve import create_app
from clickstream.serve.results import COUNT_EXACT_MAX, ResultsDB
from tests.serve.conftest import local_client, write

STEPS_PER_TICK = 1000


def _fill(db: Path, rows: int) -> None:
    write(db, "CREATE TABLE IF NOT EXISTS events (user_id BIGINT, behavior TEXT)")
    write(
        db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT ?) "
        "INSERT INTO events SELECT i, 'pv' FROM n",
        [(rows,)],
    )


def _vm_steps(db: ResultsDB, monkeypatch: pytest.MonkeyPatch) -> int:
    """SQLite VM steps (in thousands) that one `tables()` read takes."""
    ticks = [0]
    connect = ResultsDB.connect

    def counting(self: ResultsDB, timeout_s: float = 1.0) -> sqlite3.Connection | None:
        conn = connect(self, timeout_s)
        if conn is not None:
            conn.set_progress_handler(lambda: ticks.__setitem__(0, ticks[0] + 1) or 0, STEPS_PER_TICK)
        return conn

    with monkeypatch.context() as patch:
        patch.setattr(ResultsDB, "connect", counting)
        db.shared.share_for_s = 0  # read afresh
        db.tables()
    return ticks[0]


def test_counting_a_large_table_costs_the_same_as_a_smaller_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ResultsDB(tmp_path / "results.db")
    _fill(db.path, 2 * COUNT_EXACT_MAX)
    at_two = _vm_steps(db, monkeypatch)
    assert db.tables()[0].rows == 2 * COUNT_EXACT_MAX and not db.tables()[0].rows_exact
    _fill(db.path, 6 * COUNT_EXACT_MAX)
    at_eight = _vm_steps(db, monkeypatch)
    assert db.tables()[0].rows == 8 * COUNT_EXACT_MAX  # the rowid range of an append-only table
    assert at_eight == at_two  # four times the rows, not one step more


def test_small_tables_are_counted_exactly(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "results.db")
    _fill(db.path, 1234)
    write(db.path, "DELETE FROM events WHERE user_id <= 34")  # gaps in the rowids: still exact
    [table] = db.tables()
    assert (table.rows, table.rows_exact) == (1200, True)


def test_one_read_serves_every_request_while_the_file_is_unchanged(results_db: Path) -> None:
    app = create_app(results_db)
    shared = app.state.serve_context.results.shared
    shared.share_for_s = 3600.0  # only a change of the file makes a new read
    client = local_client(app)
    for _ in range(20):
        assert client.get("/api/tables").status_code == 200
        assert client.get("/api/status").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/tables/top_category", params={"order_by": "-buy_cnt"}).status_code == 200
    assert shared.reads == 2  # the tables (status and metrics use the same answer), and the rows
    write(results_db, "INSERT INTO top_category VALUES ('toys', 3)")
    body = client.get("/api/tables/top_category", params={"order_by": "-buy_cnt"}).json()
    assert body["rows"] == [{"category_name": "toys", "buy_cnt": 3}]
    assert client.get("/api/status").json()["results"]["top_category"] == 1
    assert shared.reads == 4
