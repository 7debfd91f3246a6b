"""Exactly-once appends across runs of one job: the commit notes a run leaves in the sink's
database must not make a later run of the job skip its own rows."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from clickstream.config import Settings
from clickstream.engine import Engine

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
