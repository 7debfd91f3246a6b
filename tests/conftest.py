"""Shared fixtures: JDBC URLs of the databases tests may use.

PostgreSQL (127.0.0.1:5432, trust auth) and MariaDB (127.0.0.1:3306, root without password) run on
the test machine, each with a database `test`. A fixture checks the server answers, tries to start it
if not, and then skips the test, or fails it under CI=true, where a missing service is a broken setup.
The URLs carry the user in their query string, as JDBC URLs may: `jdbc:...?user=postgres`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable

import pytest

POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER = "127.0.0.1", 5432, "postgres"
MARIADB_HOST, MARIADB_PORT, MARIADB_USER = "127.0.0.1", 3306, "root"
TEST_DATABASE = "test"
START_TIMEOUT_S = 30


def _unavailable(service: str, reason: str) -> None:
    message = f"{service} is not reachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: integration services must be up)")
    pytest.skip(message)


def _run_quietly(command: list[str]) -> None:
    # A failed start is not reported here: the check that follows says why the server is down.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(command, capture_output=True, timeout=60, check=False)


def _ensure_service(service: str, check: Callable[[], None], start: list[str]) -> None:
    """Return once `check()` passes; start the server and wait if it does not; else skip/fail."""
    try:
        check()
        return
    except Exception:  # noqa: BLE001 - any failure means: try to start the server
        pass
    _run_quietly(start)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            check()
            return
        except Exception as e:  # noqa: BLE001 - keep waiting until the deadline
            if time.monotonic() > deadline:
                _unavailable(service, str(e).strip() or type(e).__name__)
            time.sleep(0.5)


def _check_postgres() -> None:
    import psycopg

    with psycopg.connect(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        user=POSTGRES_USER,
        dbname="postgres",
        connect_timeout=3,
        autocommit=True,
    ) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DATABASE,)).fetchone()
        if found is None:
            conn.execute(f'CREATE DATABASE "{TEST_DATABASE}"')


def _postgres_start_command() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    version = versions[-1] if versions else "15"
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]


def _check_mariadb() -> None:
    import pymysql

    conn = pymysql.connect(
        host=MARIADB_HOST, port=MARIADB_PORT, user=MARIADB_USER, password="", connect_timeout=3
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{TEST_DATABASE}`")
    finally:
        conn.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A fresh SQLite database file for one test."""
    return f"jdbc:sqlite:{tmp_path / 'test.db'}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    _ensure_service("PostgreSQL", _check_postgres, _postgres_start_command())
    return f"jdbc:postgresql://{POSTGRES_HOST}:{POSTGRES_PORT}/{TEST_DATABASE}?user={POSTGRES_USER}"


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    start = [
        "start-stop-daemon",
        "--start",
        "--oknodo",
        "--background",
        "--exec",
        "/usr/sbin/mariadbd",
    ]
    _ensure_service("MariaDB", _check_mariadb, start)
    return f"jdbc:mariadb://{MARIADB_HOST}:{MARIADB_PORT}/{TEST_DATABASE}?user={MARIADB_USER}"
