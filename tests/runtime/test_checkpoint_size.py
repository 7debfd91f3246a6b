"""A checkpoint holds an operator's state, not what it computed for its last batch: its size does
not grow with the batch size, and a job restored from it ends with the same result."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.runtime.executor import Job

ROWS = 40_000
QUERY = "SELECT date_str, COUNT(DISTINCT user_id) AS uv, COUNT(*) AS n FROM events GROUP BY date_str"


class _Killed(Exception):
    pass


def _engine(tmp_path: Path, batch_size: int) -> Engine:
    events = tmp_path / "events.jsonl"
    if not events.exists():
        tmp_path.mkdir(parents=True, exist_ok=True)
        rows = ({"user_id": i * 7919 % 5_000, "date_str": f"d{i % 3}"} for i in range(ROWS))
        events.write_bytes(b"\n".join(orjson.dumps(row) for row in rows) + b"\n")
    settings = {
        "table.exec.mini-batch.size": str(batch_size),
        "execution.checkpointing.interval": "1 h",  # only the one the test takes
        "state.checkpoints.dir": str(tmp_path / "checkpoints"),
    }
    engine = Engine(Settings(settings), out=io.StringIO())
    engine.execute_script(
        f"CREATE TABLE events (user_id BIGINT, date_str STRING) WITH ('connector' = 'filesystem', "
        f"'path' = '{events}', 'format' = 'json')"
    )
    return engine


def _final(changelog: list[tuple[str, tuple]]) -> dict[str, tuple]:
    rows: dict[str, tuple] = {}
    for kind, row in changelog:
        if kind in ("+I", "+U"):
            rows[row[0]] = row
    return rows


def _killed_after_first_batch(tmp_path: Path, batch_size: int) -> tuple[list, int]:
    """The changes the job emitted before its kill, and the size of its operators' checkpoint."""
    engine = _engine(tmp_path, batch_size)
    taken: list[int] = []

    def checkpoint_and_kill(job: Job) -> None:
        assert job.checkpointer is not None
        number = job.checkpointer.checkpoint()
        path = job.checkpointer.config.store.directory / f"chk-{number}" / "operators.pickle"
        taken.append(path.stat().st_size)
        raise _Killed

    engine.on_batch = checkpoint_and_kill
    with pytest.raises(_Killed):
        engine.collect(QUERY)
    assert engine.current_job is not None
    return engine.current_job.pipelines[0].operators[-1].sink.rows, taken[0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("batch_size", [2_000, 20_000])
def test_restored_count_distinct_ends_as_an_uninterrupted_run(tmp_path: Path, batch_size: int) -> None:
    uninterrupted = _final(_engine(tmp_path / "plain", ROWS).collect(QUERY))
    before, _ = _killed_after_first_batch(tmp_path, batch_size)
    again = _engine(tmp_path, batch_size)
    after = again.collect(QUERY)
    assert again.last_job is not None and again.last_job.status.restored_from == 1
    assert _final(before + after) == uninterrupted
    assert uninterrupted["d0"][1:] == (5_000, ROWS // 3 + 1)


def test_operator_checkpoint_does_not_grow_with_the_batch(tmp_path: Path) -> None:
    # The same 5,000 users are in either first batch: the state is the same size.
    _, small = _killed_after_first_batch(tmp_path / "small", 10_000)
    _, large = _killed_after_first_batch(tmp_path / "large", 30_000)
    assert large < small * 1.2, f"operators: {small} bytes after 10,000 rows, {large} after 30,000"
