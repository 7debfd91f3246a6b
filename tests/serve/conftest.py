"""Fixtures for the dashboard tests: a results file shaped like seed 000's sinks, and a fake job."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clickstream.serve.status import JobStatusDict, QueryStatus

# The tables the JDBC sink creates for examples/seed_000.sql.
SEED_000_DDL = (
    "CREATE TABLE buy_cnt_per_hour (hour_of_day BIGINT, buy_cnt BIGINT)",
    "CREATE TABLE cumulative_uv (date_str TEXT, time_str TEXT, uv BIGINT, PRIMARY KEY (date_str, time_str))",
    "CREATE TABLE top_category (category_name TEXT PRIMARY KEY, buy_cnt BIGINT)",
)


def local_client(app: FastAPI) -> TestClient:
    """A test client that names the server as a browser on this machine would (Host: localhost):
    the server refuses other Host names (DNS rebinding protection)."""
    return TestClient(app, base_url="http://localhost")


def write(db: Path, sql: str, rows: Iterable[tuple[Any, ...]] = ((),)) -> None:
    """Run one statement per row on a fresh writable connection and commit, as a sink would."""
    with sqlite3.connect(db) as conn:
        conn.executemany(sql, list(rows))
    conn.close()


@pytest.fixture
def results_db(tmp_path: Path) -> Path:
    path = tmp_path / "results.db"
    with sqlite3.connect(path) as conn:
        for ddl in SEED_000_DDL:
            conn.execute(ddl)
    conn.close()
    return path


class FakeJob:
    """A status source whose counters the test moves by hand."""

    def __init__(self, started: float = 1_700_000_000.0) -> None:
        self.started = started
        self.queries: dict[str, QueryStatus] = {
            "buy_cnt_per_hour": QueryStatus(
                records_in=100,
                records_out=5,
                late_dropped=2,
                malformed=1,
                watermark=1_511_740_800_000,
                state_rows=7,
            ),
            "cumulative_uv": QueryStatus(
                records_in=100,
                records_out=9,
                late_dropped=0,
                malformed=1,
                watermark=-(2**63),
                errors=["sink retry: database is locked"],
            ),
        }
        self.sources: dict[str, dict[str, Any]] = {
            "user_behavior": {"watermark": 1_511_740_800_000, "exhausted": False},
        }

    def status(self) -> JobStatusDict:
        return JobStatusDict(
            started=self.started,
            queries={k: dict(v) for k, v in self.queries.items()},  # type: ignore[misc]
            sources=self.sources,
        )


@pytest.fixture
def fake_job() -> FakeJob:
    return FakeJob()
