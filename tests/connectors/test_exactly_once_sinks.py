"""Append sinks that commit with checkpoints: a checkpoint's rows go in once, however often a
restored job commits them again, on SQLite, PostgreSQL and MariaDB and into files."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.connectors.filesystem import FileSystemSink
from clickstream.connectors.jdbc import JdbcSink
from clickstream.connectors.log import LogSink
from clickstream.engine import Engine
from clickstream.errors import ExecutionError
from clickstream.log import TopicLog
from clickstream.runtime.executor import Job
from clickstream.schema import Column, TableDef
from tests.connectors.jdbc_db import Db
from tests.connectors.test_jdbc import changelog, jdbc_table


def test_jdbc_append_sink_commits_each_checkpoint_once(db: Db) -> None:
    name = db.new_table()
    table = jdbc_table(db.url, name)
    sink = JdbcSink(table, Settings())
    assert sink.transactional
    writer, other = f"job/{name}/0/t", f"other/{name}/0/t"  # the notes outlive the test's tables
    first = changelog(table, [("+I", 1, "Books"), ("+I", 2, "Toys")])
    sink.commit(writer, 1, [first])
    sink.commit(writer, 1, [first])  # a restored job commits checkpoint 1 again
    assert db.rows(name) == [(1, "Books"), (2, "Toys")]
    sink.commit(writer, 2, [changelog(table, [("+I", 1, "Books")])])
    sink.commit(other, 1, [changelog(table, [("+I", 3, "Garden")])])  # another writer
    sink.close()
    assert db.rows(name) == [(1, "Books"), (1, "Books"), (2, "Toys"), (3, "Garden")]
    notes = db.execute("SELECT checkpoint_id FROM clickstream_commits WHERE writer = ?", (writer,))
    assert notes == [(2,)]


def test_jdbc_sink_delivery_guarantee_options(db: Db) -> None:
    name = db.new_table()
    at_least_once = jdbc_table(db.url, name, options={"sink.delivery-guarantee": "at-least-once"})
    assert not JdbcSink(at_least_once, Settings()).transactional
    upsert = jdbc_table(db.url, name, primary_key=["sub_category_id"])
    assert not JdbcSink(upsert, Settings()).transactional  # idempotent: writes through


def _file_table(path: Path) -> TableDef:
    columns = [Column("n", "BIGINT", "BIGINT")]
    return TableDef("out", physical=columns, options={"connector": "filesystem", "path": str(path)})


def test_file_sink_cuts_a_half_written_commit_before_committing_again(tmp_path: Path) -> None:
    table = _file_table(tmp_path / "out.jsonl")
    sink = FileSystemSink(table, Settings())
    sink.commit("job/0/out", 1, [changelog(table, [("+I", 1), ("+I", 2)])])
    with (tmp_path / "out.jsonl").open("ab") as out:
        out.write(b'{"n": 3}\n{"n"')  # a kill in the middle of checkpoint 2's commit
    second = changelog(table, [("+I", 3), ("+I", 4)])
    sink.commit("job/0/out", 2, [second])
    sink.commit("job/0/out", 2, [second])
    sink.close()
    assert (tmp_path / "out.jsonl").read_text() == "".join(f'{{"n":{n}}}\n' for n in (1, 2, 3, 4))


def _script(tmp_path: Path, sink_options: str) -> str:
    events = tmp_path / "events.jsonl"
    if not events.exists():
        events.write_text("".join(f'{{"k": "k{i % 3}", "n": {i}}}\n' for i in range(40)))
    return f"""
        SET 'table.exec.mini-batch.size' = '4';
        SET 'execution.checkpointing.interval' = '1 h';
        SET 'state.checkpoints.dir' = '{tmp_path / "checkpoints"}';
        CREATE TABLE events (k STRING, n BIGINT) WITH (
            'connector' = 'filesystem', 'path' = '{events}', 'format' = 'json');
        CREATE TABLE doubled (k STRING, n BIGINT) WITH ({sink_options});
        INSERT INTO doubled SELECT k, n * 2 FROM events WHERE n % 5 <> 0;
    """


class _Killed(Exception):
    pass


def _kill_after_checkpoint(checkpoint_at: int, kill_at: int):
    """An on_batch hook: a checkpoint after batch `checkpoint_at`, death after batch `kill_at`
    (the rows in between are never committed)."""
    seen = 0

    def hook(job: Job) -> None:
        nonlocal seen
        seen += 1
        if seen == checkpoint_at:
            assert job.checkpointer is not None
            job.checkpointer.checkpoint()
        if seen == kill_at:
            raise _Killed

    return hook


def test_killed_job_into_jdbc_appends_every_row_once(db: Db, tmp_path: Path) -> None:
    name = db.new_table()
    options = f"'connector' = 'jdbc', 'url' = '{db.url}', 'table-name' = '{name}'"
    engine = Engine(out=io.StringIO())
    engine.on_batch = _kill_after_checkpoint(3, 6)
    with pytest.raises(_Killed):
        engine.execute_script(_script(tmp_path, options))
    assert len(db.rows(name)) == 9  # 3 batches of 4 events (0 to 11), less 0, 5 and 10
    again = Engine(out=io.StringIO())
    again.execute_script(_script(tmp_path, options))
    assert again.last_job is not None and again.last_job.status.restored_from == 1
    want = sorted((f"k{i % 3}", 2 * i) for i in range(40) if i % 5)
    assert sorted(db.rows(name)) == want


def test_killed_job_into_a_file_appends_every_row_once(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    options = f"'connector' = 'filesystem', 'path' = '{out}', 'format' = 'json'"
    engine = Engine(out=io.StringIO())
    engine.on_batch = _kill_after_checkpoint(2, 5)
    with pytest.raises(_Killed):
        engine.execute_script(_script(tmp_path, options))
    Engine(out=io.StringIO()).execute_script(_script(tmp_path, options))
    lines = sorted(out.read_text().splitlines())
    assert lines == sorted(f'{{"k":"k{i % 3}","n":{2 * i}}}' for i in range(40) if i % 5)


def test_changed_statements_are_refused_and_fresh_starts_over(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    options = f"'connector' = 'filesystem', 'path' = '{out}', 'format' = 'json'"
    engine = Engine(out=io.StringIO())
    engine.on_batch = _kill_after_checkpoint(2, 3)
    with pytest.raises(_Killed):
        engine.execute_script(_script(tmp_path, options))
    changed = _script(tmp_path, options).replace("n * 2", "n * 3")
    with pytest.raises(ExecutionError, match="taken by other statements.*--fresh"):
        Engine(out=io.StringIO()).execute_script(changed)
    fresh = Engine(out=io.StringIO(), fresh=True)
    fresh.execute_script(changed)
    assert fresh.last_job is not None and fresh.last_job.status.restored_from is None
    tripled = [line for line in out.read_text().splitlines() if int(line.split(":")[-1][:-1]) % 3 == 0]
    assert len(tripled) >= 32  # the fresh run wrote all 32 rows


def _log_table(tmp_path: Path, partitions: str) -> TableDef:
    columns = [Column("k", "STRING", "VARCHAR"), Column("n", "BIGINT", "BIGINT")]
    options = {
        "connector": "log",
        "path": str(tmp_path / "log"),
        "topic": "out",
        "log.partitions": partitions,
        "key.fields": "k",
    }
    return TableDef("out", physical=columns, options=options)


def _log_records(tmp_path: Path) -> list[bytes]:
    with TopicLog(tmp_path / "log") as log, log.open_reader("out", stop="latest") as reader:
        return sorted(reader.poll(1000).column("value").to_pylist())


@pytest.mark.parametrize("partitions", ["1", "3"])
def test_log_sink_appends_the_rest_of_an_interrupted_commit(tmp_path: Path, partitions: str) -> None:
    table = _log_table(tmp_path, partitions)
    rows = [("+I", f"k{i % 4}", i) for i in range(12)]
    sink = LogSink(table, Settings())
    assert sink.transactional
    sink.commit("job/r/0/out", 1, [changelog(table, rows[:4])])
    sink.commit("job/r/0/out", 1, [changelog(table, rows[:4])])  # again: nothing
    # A kill in the middle of checkpoint 2's commit: its note and some of its records are in.
    second = [changelog(table, rows[4:])]
    interrupted = LogSink(table, Settings())
    original = interrupted.log.append

    def append_once_then_die(*args: object, **kwargs: object) -> None:
        original(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # after one partition's records, before the others and the note

    interrupted.log.append = append_once_then_die  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        interrupted.commit("job/r/0/out", 2, second)
    interrupted.close()
    again = LogSink(table, Settings())
    again.commit("job/r/0/out", 2, second)
    again.commit("job/r/0/out", 2, second)
    again.close()
    sink.close()
    values = _log_records(tmp_path)
    assert values == sorted(f'{{"k":"k{i % 4}","n":{i}}}'.encode() for i in range(12))


def test_killed_job_into_the_log_appends_every_record_once(tmp_path: Path) -> None:
    options = f"'connector' = 'log', 'path' = '{tmp_path / 'log'}', 'topic' = 'out', 'log.partitions' = '2'"
    engine = Engine(out=io.StringIO())
    engine.on_batch = _kill_after_checkpoint(3, 7)
    with pytest.raises(_Killed):
        engine.execute_script(_script(tmp_path, options))
    Engine(out=io.StringIO()).execute_script(_script(tmp_path, options))
    want = sorted(f'{{"k":"k{i % 3}","n":{2 * i}}}'.encode() for i in range(40) if i % 5)
    assert _log_records(tmp_path) == want
