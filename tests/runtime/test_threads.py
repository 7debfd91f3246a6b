"""The job's threads: a file source read one batch ahead, and pipelines running in parallel.

Neither may change results, lose rows, or hang when something fails on its thread.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.connectors import filesystem
from clickstream.engine import Engine
from clickstream.runtime.source_reader import _ReadAhead
from clickstream.runtime.state import JobState


def _run(script: str, **settings: str) -> Engine:
    engine = Engine(Settings(dict(settings)))
    engine.execute_script(script)
    return engine


def test_read_ahead_keeps_order_and_survives_blocks_without_a_good_record(tmp_path, monkeypatch):
    # Tiny blocks: some hold only malformed or blank lines, so a poll decodes nothing there;
    # the source is not exhausted yet and the rows after them must still arrive, in order.
    monkeypatch.setattr(filesystem, "_BLOCK_BYTES", 64)
    lines = []
    for i in range(300):
        lines.append(f'{{"n": {i}, "s": "v{i}"}}')
        if i % 50 == 10:
            lines += ["not json at all, and long enough to fill a block " * 3] * 4 + [""] * 5
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "out.db"
    engine = _run(
        f"""
        CREATE TABLE src (n BIGINT, s STRING) WITH ('connector' = 'filesystem', 'path' = '{path}',
            'format' = 'json');
        CREATE TABLE sink (n BIGINT, s STRING) WITH ('connector' = 'jdbc',
            'url' = 'jdbc:sqlite:{db}', 'table-name' = 'out');
        INSERT INTO sink SELECT n, s FROM src;
    """,
        **{"dead-letter.dir": str(tmp_path / "dlq")},
    )
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT n, s FROM out ORDER BY rowid").fetchall()
    assert rows == [(i, f"v{i}") for i in range(300)]
    assert engine.last_job.metrics()["insert-into_sink"]["malformed"] == 6 * 4
    assert len((tmp_path / "dlq" / "src.jsonl").read_text().splitlines()) == 24


def test_read_ahead_hands_out_items_in_order_then_none():
    state = JobState()
    items = iter([(i, 0, {}) for i in range(5)])
    ahead = _ReadAhead(lambda _: next(items, (None, 0, {})), lambda: True, state)
    assert [ahead.next() for _ in range(6)] == [(i, 0, {}) for i in range(5)] + [None]
    ahead.stop()
    state.close()


def test_read_ahead_raises_the_threads_error_on_the_jobs_thread():
    state = JobState()

    def read(_state: JobState) -> int:
        raise OSError("disk gone")

    ahead = _ReadAhead(read, lambda: False, state)
    with pytest.raises(OSError, match="disk gone"):
        ahead.next()
    ahead.stop()
    state.close()


def test_read_ahead_stops_while_its_thread_waits_to_hand_over():
    state = JobState()
    ahead = _ReadAhead(lambda _: (1, 0, {}), lambda: False, state)  # an endless source
    assert ahead.next() == (1, 0, {})
    time.sleep(0.05)  # the thread has read the next item and waits for room
    started = time.monotonic()
    ahead.stop()
    assert time.monotonic() - started < 2
    assert not ahead._thread.is_alive()
    state.close()


def _events(path: Path, count: int) -> None:
    path.write_text("".join(f'{{"k": "k{i % 7}", "n": {i}}}\n' for i in range(count)))


def test_parallel_pipelines_give_the_results_of_separate_jobs(tmp_path):
    events = tmp_path / "in.jsonl"
    _events(events, 5000)
    source = (
        f"CREATE TABLE src (k STRING, n BIGINT) WITH ('connector' = 'filesystem', "
        f"'path' = '{events}', 'format' = 'json');"
    )
    inserts = {
        "counts": "SELECT k, COUNT(*) AS c FROM src GROUP BY k",
        "sums": "SELECT k, SUM(n) AS c FROM src WHERE n % 3 = 0 GROUP BY k",
        "maxima": "SELECT k, MAX(n) AS c FROM src GROUP BY k",
    }

    def sinks(db: Path) -> str:
        return "".join(
            f"CREATE TABLE {t} (k STRING PRIMARY KEY NOT ENFORCED, c BIGINT) WITH ("
            f"'connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = '{t}');"
            for t in inserts
        )

    together = tmp_path / "together.db"
    engine = _run(
        source
        + sinks(together)
        + "EXECUTE STATEMENT SET BEGIN "
        + "".join(f"INSERT INTO {t} {q};" for t, q in inserts.items())
        + " END;",
        **{"table.exec.mini-batch.size": "333"},
    )
    metrics = engine.last_job.metrics()
    assert [metrics[f"insert-into_{t}"]["state_rows"] for t in inserts] == [7, 7, 7]  # one per key
    for table, query in inserts.items():
        alone = tmp_path / f"{table}.db"
        _run(source + sinks(alone) + f"INSERT INTO {table} {query};", **{"table.exec.mini-batch.size": "333"})
        with sqlite3.connect(together) as a, sqlite3.connect(alone) as b:
            got = a.execute(f"SELECT k, c FROM {table} ORDER BY k").fetchall()
            want = b.execute(f"SELECT k, c FROM {table} ORDER BY k").fetchall()
        assert got == want and len(got) == 7


def test_a_failing_pipeline_fails_the_job_and_leaves_no_thread(tmp_path):
    events = tmp_path / "in.jsonl"
    _events(events, 2000)
    db = tmp_path / "out.db"
    with sqlite3.connect(db) as conn:  # the sink's table exists and refuses the NULLs it gets
        conn.execute("CREATE TABLE strict_out (k TEXT, n INTEGER NOT NULL)")
    before = threading.active_count()
    with pytest.raises(Exception, match="NOT NULL"):
        _run(
            f"""
            CREATE TABLE src (k STRING, n BIGINT) WITH ('connector' = 'filesystem',
                'path' = '{events}', 'format' = 'json');
            CREATE TABLE ok_out (k STRING, n BIGINT) WITH ('connector' = 'blackhole');
            CREATE TABLE strict_out (k STRING, n BIGINT) WITH ('connector' = 'jdbc',
                'url' = 'jdbc:sqlite:{db}', 'table-name' = 'strict_out');
            EXECUTE STATEMENT SET BEGIN
            INSERT INTO ok_out SELECT k, n FROM src;
            INSERT INTO strict_out SELECT k, CASE WHEN n > 1500 THEN NULL ELSE n END FROM src;
            END;
        """,
            **{"table.exec.mini-batch.size": "500"},
        )
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before
