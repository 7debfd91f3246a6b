"""jdbc sinks and lookups ride out a database outage, through a TCP proxy the tests control.

A job writes a few thousand rows, in batches of 100, to PostgreSQL or MariaDB through `TcpProxy`;
after a few batches the proxy cuts every connection and refuses new ones for a while. The sink
waits ("waiting for database"), reconnects and re-sends the unacknowledged batch in a new
transaction: the table ends with exactly the rows of an uninterrupted run. Past
`connection.max-retry-timeout` the job fails with one message naming the table and database.
Connections reset at random moments and a slow link are ridden out too.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.connectors.jdbc import JdbcLookupSource
from clickstream.engine import Engine
from clickstream.errors import ClickstreamError
from clickstream.runtime.executor import Job
from tests.connectors.jdbc_db import Db
from tests.connectors.tcp_proxy import TcpProxy
from tests.connectors.test_jdbc import ids, names
from tests.connectors.test_jdbc import jdbc_table as _jdbc_table

ROWS = 3000
KEYS = 97
CUT_AT_BATCH = 8


@pytest.fixture
def proxy(server_db: Db) -> Iterator[TcpProxy]:
    url = server_db.dialect.url
    with TcpProxy(url.host, url.port or (5432 if server_db.kind == "postgres" else 3306)) as proxy:
        yield proxy


@pytest.fixture
def source(tmp_path: Path) -> str:
    path = tmp_path / "events.json"
    path.write_text("".join(json.dumps({"id": i, "k": i % KEYS, "v": i * 3}) + "\n" for i in range(ROWS)))
    return (
        "SET 'table.exec.mini-batch.size' = '100';"
        "CREATE TABLE events (id INT, k INT, v INT, pt AS PROCTIME()) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');"
    )


def _through(db: Db, proxy: TcpProxy) -> str:
    """The database's URL, by way of the proxy."""
    url = db.dialect.url
    return db.url.replace(f"{url.host}:{url.port}", f"127.0.0.1:{proxy.port}")


def _jdbc(url: str, name: str, columns: str, **options: str) -> str:
    extra = "".join(f", '{k}' = '{v}'" for k, v in options.items())
    return (
        f"CREATE TABLE {name} ({columns}) "
        f"WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = '{name}'{extra});"
    )


class _Outage:
    """Cuts the proxy after a few batches and records what the job's status said meanwhile."""

    def __init__(self, proxy: TcpProxy, seconds: float) -> None:
        self.proxy, self.seconds = proxy, seconds
        self.seen: set[str] = set()
        self._done = threading.Event()

    def run(self, engine: Engine, script: str) -> None:
        engine.on_job_start, engine.on_batch = self._watch, self._cut
        try:
            engine.execute_script(script)
        finally:
            self._done.set()

    def _cut(self, job: Job) -> None:
        if job.status.batches == CUT_AT_BATCH:
            self.proxy.cut(self.seconds)

    def _watch(self, job: Job) -> None:
        def poll() -> None:
            while not self._done.wait(0.05):
                self.seen.update(job.waiting())

        threading.Thread(target=poll, daemon=True).start()


def test_append_and_upsert_sinks_lose_and_duplicate_nothing(
    server_db: Db, proxy: TcpProxy, source: str, caplog: pytest.LogCaptureFixture
) -> None:
    append, upsert = server_db.new_table(), server_db.new_table()
    url = _through(server_db, proxy)
    outage = _Outage(proxy, seconds=2.0)
    with caplog.at_level(logging.WARNING):
        outage.run(
            Engine(out=io.StringIO()),
            source
            + _jdbc(url, append, "id INT, v INT")
            + _jdbc(url, upsert, "k INT, n BIGINT, total BIGINT, PRIMARY KEY (k) NOT ENFORCED")
            + f"INSERT INTO {append} SELECT id, v FROM events;"
            + f"INSERT INTO {upsert} SELECT k, COUNT(*), SUM(v) FROM events GROUP BY k;",
        )
    assert server_db.rows(append) == [(i, i * 3) for i in range(ROWS)]
    expected = {k: (0, 0) for k in range(KEYS)}
    for i in range(ROWS):
        n, total = expected[i % KEYS]
        expected[i % KEYS] = (n + 1, total + i * 3)
    assert server_db.rows(upsert) == [(k, n, total) for k, (n, total) in sorted(expected.items())]
    assert proxy.connections > 2  # both sinks reconnected
    assert {f"{append}: waiting for database", f"{upsert}: waiting for database"} & outage.seen
    assert "error ignored terminating" not in caplog.text


def test_lookup_join_rides_out_an_outage(server_db: Db, proxy: TcpProxy, source: str) -> None:
    dim = server_db.category_table([(k, f"cat{k}") for k in range(KEYS)])
    out = server_db.new_table()
    outage = _Outage(proxy, seconds=2.0)
    outage.run(
        Engine(out=io.StringIO()),
        source
        + _jdbc(_through(server_db, proxy), dim, "sub_category_id INT, parent_category_name STRING")
        + _jdbc(server_db.url, out, "id INT, name STRING")
        + f"INSERT INTO {out} SELECT e.id, d.parent_category_name FROM events AS e "
        f"JOIN {dim} FOR SYSTEM_TIME AS OF e.pt AS d ON e.k = d.sub_category_id;",
    )
    assert server_db.rows(out) == [(i, f"cat{i % KEYS}") for i in range(ROWS)]
    assert f"{dim}: waiting for database" in outage.seen


def test_an_outage_past_the_timeout_fails_with_a_clear_message(
    server_db: Db, proxy: TcpProxy, source: str
) -> None:
    sink = server_db.new_table()
    outage = _Outage(proxy, seconds=10.0)
    with pytest.raises(ClickstreamError) as error:
        outage.run(
            Engine(out=io.StringIO()),
            source
            + _jdbc(
                _through(server_db, proxy),
                sink,
                "id INT, v INT",
                **{"connection.max-retry-timeout": "1 s"},
            )
            + f"INSERT INTO {sink} SELECT id, v FROM events;",
        )
    message = str(error.value)
    assert f"'{sink}' at " in message and f"127.0.0.1:{proxy.port}" in message
    assert "lost the database: gave up after" in message
    assert "connection.max-retry-timeout = 1 s" in message
    assert "last error:" in message
    assert len(server_db.rows(sink)) < ROWS  # it stopped, and what it wrote was committed batches


def test_upsert_sink_survives_resets_in_the_middle_of_its_transactions(
    server_db: Db, proxy: TcpProxy, source: str
) -> None:
    """Connections reset at arbitrary moments, statements in flight too: each batch is redone whole.

    Only the upsert sink: redoing a batch whose commit reached the database but whose answer was
    lost writes the same rows again, harmless for an upsert (an append sink would add them twice).
    """
    upsert = server_db.new_table()
    stop = threading.Event()

    def reset_often() -> None:
        # Once right after the sink connects (on an idle machine the whole job can take less than
        # the 0.5 s period), then every 0.5 s.
        while proxy.connections < 1 and not stop.wait(0.005):
            pass
        if not stop.wait(0.02):
            proxy.reset()
        while not stop.wait(0.5):
            proxy.reset()

    resetter = threading.Thread(target=reset_often, daemon=True)
    resetter.start()
    try:
        Engine(out=io.StringIO()).execute_script(
            source
            + _jdbc(
                _through(server_db, proxy),
                upsert,
                "k INT, n BIGINT, PRIMARY KEY (k) NOT ENFORCED",
                **{"sink.max-retries": "10"},
            )
            + f"INSERT INTO {upsert} SELECT k, COUNT(*) FROM events GROUP BY k;"
        )
    finally:
        stop.set()
        resetter.join()
    assert server_db.rows(upsert) == [(k, len(range(k, ROWS, KEYS))) for k in range(KEYS)]
    assert proxy.connections >= 2  # reset at least once


def test_a_slow_link_is_waited_on_not_an_outage(server_db: Db, proxy: TcpProxy) -> None:
    name = server_db.category_table([(1, "Books")])
    table = _jdbc_table(_through(server_db, proxy), name)
    source = JdbcLookupSource(table, Settings())
    assert names(source.lookup(["sub_category_id"], ids(1))) == ["Books"]
    proxy.delay(0.2)
    started = time.monotonic()
    assert names(source.lookup(["sub_category_id"], ids(1))) == ["Books"]
    assert time.monotonic() - started >= 0.4  # a query and its answer, each held back
    assert source.status == "" and proxy.connections == 1
    source.close()
