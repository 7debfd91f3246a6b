"""Shared fixtures: JDBC URLs of the databases tests may use.

PostgreSQL (127.0.0.1:5432, trust auth) and MariaDB (127.0.0.1:3306, root without password) run on
the test machine, each with a database `test`; `scripts/services.sh` installs, configures and starts
them. A fixture checks the server answers, runs that script if not, and then skips the test, or
fails it under CI=true, where a missing service is a broken setup. The URLs carry the user in their
query string, as JDBC URLs may: `jdbc:...?user=postgres`.

Kafka: `kafka_broker` is one Apache Kafka broker for the whole session (tests/kafka_broker.py), its
jars fetched from Maven Central by `scripts/kafka.sh` on first use; `kafka_sasl` is its SASL/PLAIN
listener; `fresh_kafka_broker` is a broker of a test's own, to stop, kill or restart. Without Java or
Maven they skip, and under CI=true they fail.

Tests marked `flink` compare with PyFlink, which lives in its own venv: without it they skip and say
how to create it, and under CI=true they fail.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.flink_oracle import pyflink_unusable
from tests.kafka_broker import KAFKA_SCRIPT, SASL_PASSWORD, SASL_USER, BrokerError, KafkaBroker, fetch_libs

SERVICES_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services.sh"
POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER = "127.0.0.1", 5432, "postgres"
MARIADB_HOST, MARIADB_PORT, MARIADB_USER = "127.0.0.1", 3306, "root"
TEST_DATABASE = "test"
START_TIMEOUT_S = 30


@pytest.fixture(autouse=True)
def _own_checkpoints(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's jobs (and the processes it starts) keep their checkpoints apart: a job with
    an unbounded source checkpoints by default, and a later test's job of the same name would
    resume from it."""
    directory = tmp_path_factory.mktemp("checkpoints")
    monkeypatch.setenv("CLICKSTREAM_CHECKPOINTS_DIR", str(directory))


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unavailable(service: str, reason: str, script: Path = SERVICES_SCRIPT) -> None:
    message = f"{service} is not reachable: {reason} (start it with: bash {script})"
    if _under_ci():
        pytest.fail(f"{message} (CI=true: integration services must be up)")
    pytest.skip(message)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A `flink` test needs the PyFlink venv: skip without it (fail under CI=true), saying how to get it."""
    if item.get_closest_marker("flink") is None:
        return
    why = pyflink_unusable()
    if why is None:
        return
    message = (
        f"PyFlink oracle unavailable: {why}. Enable with: python3 -m venv .ci/flink-venv && "
        ".ci/flink-venv/bin/pip install 'apache-flink==2.3.*' (or set CLICKSTREAM_PYFLINK_PYTHON)"
    )
    if _under_ci():
        pytest.fail(f"{message} (CI=true: the differential tests must run)", pytrace=False)
    pytest.skip(message)


def _run_quietly(command: list[str]) -> None:
    # A failed start is not reported here: the check that follows says why the server is down.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(command, capture_output=True, timeout=600, check=False)


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
    _ensure_service("PostgreSQL", _check_postgres, ["bash", str(SERVICES_SCRIPT), "postgres"])
    return f"jdbc:postgresql://{POSTGRES_HOST}:{POSTGRES_PORT}/{TEST_DATABASE}?user={POSTGRES_USER}"


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A schema of the test's own in the test database (its tables go with it after the test)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, dbname=TEST_DATABASE, autocommit=True
    ) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        yield schema
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    _ensure_service("MariaDB", _check_mariadb, ["bash", str(SERVICES_SCRIPT), "mariadb"])
    return f"jdbc:mariadb://{MARIADB_HOST}:{MARIADB_PORT}/{TEST_DATABASE}?user={MARIADB_USER}"


@dataclass(frozen=True)
class KafkaSasl:
    """The SASL/PLAIN listener of the session's broker: `bootstrap`, the user and password it accepts."""

    broker: KafkaBroker
    bootstrap: str
    username: str = SASL_USER
    password: str = SASL_PASSWORD

    def client_config(self, password: str | None = None, **extra: Any) -> dict[str, Any]:
        return self.broker.sasl_config(self.password if password is None else password, **extra)


def _started_broker(directory: Path) -> KafkaBroker:
    """A running broker in `directory`, or skip (fail under CI=true) saying why it is not."""
    try:
        broker = KafkaBroker(fetch_libs(), directory)
        broker.start()
    except BrokerError as e:
        _unavailable("Kafka", str(e), KAFKA_SCRIPT)
    return broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One broker for the session: `.bootstrap` is '127.0.0.1:<port>'. Tests create their own topics
    (`new_topic`); they do not stop it (see `fresh_kafka_broker`)."""
    broker = _started_broker(tmp_path_factory.mktemp("kafka"))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_sasl(kafka_broker: KafkaBroker) -> KafkaSasl:
    return KafkaSasl(kafka_broker, kafka_broker.sasl_bootstrap)


@pytest.fixture
def fresh_kafka_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own (about 5 s to start), to stop, kill or restart mid-test."""
    broker = _started_broker(tmp_path / "kafka")
    yield broker
    broker.stop()
