"""Exactly-once appends: the commit notes a run of a job leaves in the sink's database must not
make a later run skip its own rows, and a kill during a commit must not leave rows twice."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from clickstream.config import Settings
from clickstream.connectors import filesystem
from clickstream.connectors.filesystem import FileSystemSink
from clickstream.engine import Engine
from clickstream.schema import Column, TableDef

ROWS = 50


def _run(tmp_path: Path, fresh: bool = False) -> None:
    source = tmp_path / "in.csv"
    source.write_text("".join(f"{i},item{i}\n" for i in range(ROWS)))
    settings = Settings(
        {
            "table.exec.mini-batch.size": "10",
            "execution.checkpointing.interval": "1 ms",  # one checkpoint after each batch
            "state.checkpoints.dir": str(tmp_path / "checkpoints"),
            "pipeline.name": "copy",
        }
    )
    Engine(settings, out=io.StringIO(), fresh=fresh).execute_script(
        f"""
        CREATE TABLE src (id BIGINT, name STRING)
            WITH ('connector' = 'filesystem', 'path' = '{source}', 'format' = 'csv');
        CREATE TABLE dst (id BIGINT, name STRING)
            WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{tmp_path / "out.db"}', 'table-name' = 'dst');
        INSERT INTO dst SELECT id, name FROM src;
        """
    )


def _count(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "out.db") as conn:
        return conn.execute("SELECT count(*) FROM dst").fetchone()[0]


def test_a_finished_job_run_again_appends_all_its_rows_again(tmp_path: Path) -> None:
    _run(tmp_path)
    assert _count(tmp_path) == ROWS
    # the job's checkpoints are gone, so it starts over at chk-1: the first run's notes
    # (chk-1 to chk-n committed) are not this run's
    _run(tmp_path)
    assert _count(tmp_path) == 2 * ROWS


def test_a_fresh_run_appends_all_its_rows(tmp_path: Path) -> None:
    _run(tmp_path)
    _run(tmp_path, fresh=True)
    assert _count(tmp_path) == 2 * ROWS


class _Killed(Exception):
    pass


def _file_sink(path: Path) -> FileSystemSink:
    columns = [Column("id", "BIGINT", "BIGINT")]
    table = TableDef("dst", columns, options={"connector": "filesystem", "path": str(path), "format": "csv"})
    return FileSystemSink(table, Settings())


def test_a_kill_before_a_files_first_commit_is_noted_leaves_no_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.csv"
    rows = pa.table({"id": pa.array(range(5), pa.int64()), "_op": pa.array([0] * 5, pa.int8())})
    noted = filesystem.write_atomically

    def killed_before_noting_chk_1(notes_path: Path, content: dict, durable: bool = True) -> None:
        if content["job/0/dst"]["checkpoint"] == 1:  # the rows are in the file, the note is not
            raise _Killed
        noted(notes_path, content, durable)

    monkeypatch.setattr(filesystem, "write_atomically", killed_before_noting_chk_1)
    with pytest.raises(_Killed):
        _file_sink(path).commit("job/0/dst", 1, [rows])
    monkeypatch.undo()
    _file_sink(path).commit("job/0/dst", 1, [rows])  # the restored job commits chk-1 again
    assert path.read_text().splitlines() == [str(i) for i in range(5)]
