"""State that outgrows 'state.memory-limit' spills to disk ('io.tmp.dirs') instead of failing, and
the job's answer is the batch answer; a limit that is not a memory size is refused in one line."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.errors import SqlError
from clickstream.runtime.executor import Job

# 3M distinct (group, name) pairs of about 40 bytes: over 100 MB of state, beyond a 64 MB limit
USERS = 3_000_000
QUERY = (
    "SELECT g, COUNT(DISTINCT name) AS uv, COUNT(*) AS n FROM (SELECT u % 4 AS g, "
    "CONCAT('a user with a long name, number ', CAST(u AS STRING)) AS name FROM ev) GROUP BY g"
)


def _engine(settings: dict[str, str]) -> Engine:
    engine = Engine(Settings(settings), out=io.StringIO())
    engine.execute_script(
        "CREATE TABLE ev (u BIGINT) WITH ('connector' = 'datagen', "
        f"'number-of-rows' = '{USERS}', 'rows-per-second' = '1000000000', "
        f"'fields.u.kind' = 'sequence', 'fields.u.start' = '1', 'fields.u.end' = '{USERS}')"
    )
    return engine


def _final(changelog: list[tuple[str, tuple]]) -> list[tuple]:
    rows = {row[0]: row for kind, row in changelog if kind in ("+I", "+U")}
    return sorted(rows.values())


def test_state_beyond_the_memory_limit_spills_and_the_answer_is_the_batch_answer(tmp_path: Path) -> None:
    engine = _engine({"state.memory-limit": "64mb", "io.tmp.dirs": str(tmp_path)})
    spilled: list[int] = []

    def count_spill_files(job: Job) -> None:
        if not job.status.finished:
            spilled.append(job.state.scalar("SELECT count(*) FROM duckdb_temporary_files()") or 0)

    engine.on_batch = count_spill_files
    result = _final(engine.collect(QUERY))

    batch = duckdb.sql(
        f"SELECT u % 4, count(DISTINCT u), count(*) FROM range(1, {USERS + 1}) t(u) GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert result == batch
    assert max(spilled) > 0  # it did outgrow the limit
    assert list(tmp_path.iterdir()) == []  # the job's spill directory is gone with the job


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "option 'state.memory-limit' needs a memory size such as '512mb' or '2gb', got 'lots'"),
        ("12 parsecs", "needs a memory size"),
        ("1kb", "option 'state.memory-limit' must be at least 16mb, got '1kb'"),
    ],
)
def test_a_bad_memory_limit_is_refused_in_one_line(value: str, message: str) -> None:
    with pytest.raises(SqlError) as error:
        Engine(out=io.StringIO()).execute_script(f"SET 'state.memory-limit' = '{value}'")
    assert message in str(error.value)
    assert "\n" not in error.value.message


@pytest.mark.parametrize(("value", "size"), [("512mb", 512 << 20), ("2 GB", 2 << 30), ("64m", 64 << 20)])
def test_memory_sizes_read_as_flink_reads_them(value: str, size: int) -> None:
    assert Settings({"state.memory-limit": value}).state_memory_limit == size
