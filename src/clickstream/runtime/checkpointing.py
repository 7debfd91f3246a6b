"""Checkpoints of a running job, and its restore from the latest one.

Between two micro-batches no operator runs, so the job is consistent: the checkpoint is taken
there (Flink's aligned barrier, with one barrier for all sources). It holds the state tables, each
operator's Python-side state (`snapshots`), each source's position and watermarks, and the rows
exactly-once sinks have not committed yet. Once it is on disk, those sinks commit their rows with
its id (`BaseSink.commit`), and log sources with a group id commit their offsets.

After a kill, the job restores the latest complete checkpoint and commits its sinks' rows again:
a sink that committed them before the kill notes so and writes nothing. Rows after that
checkpoint were never committed, and the replay of the sources produces them again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clickstream.config import Settings, parse_duration_ms
from clickstream.errors import ExecutionError
from clickstream.runtime.checkpoint_store import CheckpointStore
from clickstream.runtime.operators.sink import SinkOperator
from clickstream.runtime.snapshots import load_tables, operator_state, restore_operator, save_tables
from clickstream.sql.plan import SinkNode, explain

if TYPE_CHECKING:
    from clickstream.runtime.executor import Job

DEFAULT_INTERVAL_MS = 10_000  # for a job with an unbounded source, when no interval is set
_STATE = "state.duckdb"
_OPERATORS = "operators.pickle"


@dataclass
class CheckpointConfig:
    interval_ms: int
    store: CheckpointStore
    job_name: str
    fingerprint: str  # of the job's plans: a checkpoint of other statements is refused
    fresh: bool = False  # start over: forget the checkpoints


def checkpoint_config(
    settings: Settings, sinks: list[tuple[str, SinkNode]], unbounded: bool, fresh: bool
) -> CheckpointConfig | None:
    """Checkpoints as the settings ask (`execution.checkpointing.interval`, on by default for a
    job with an unbounded source), or None."""
    interval = settings.values.get("execution.checkpointing.interval")
    if interval is None and not unbounded:
        return None
    interval_ms = parse_duration_ms(interval) if interval is not None else DEFAULT_INTERVAL_MS
    if interval_ms <= 0:
        return None
    name = settings.values.get("pipeline.name") or _name_of(sinks)
    root = (
        settings.values.get("state.checkpoints.dir")
        or os.environ.get("CLICKSTREAM_CHECKPOINTS_DIR")
        or settings.get("state.checkpoints.dir")
    )
    directory = Path(root.removeprefix("file://")) / _safe(name)
    retained = int(settings.get("execution.checkpointing.num-retained"))
    plans = "\n".join(explain(sink) for _, sink in sinks)
    fingerprint = hashlib.sha256(plans.encode()).hexdigest()[:16]
    return CheckpointConfig(interval_ms, CheckpointStore(directory, retained), name, fingerprint, fresh)


def _name_of(sinks: list[tuple[str, SinkNode]]) -> str:
    """A job without `pipeline.name` is named after its sink tables, so that a changed query
    into the same tables finds (and refuses) the old checkpoint instead of starting over."""
    return "insert-into-" + "-".join(sorted({sink.table.name for _, sink in sinks}))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


class Checkpointer:
    """Takes a job's checkpoints on its loop's thread, and restores the latest one."""

    def __init__(self, job: Job, config: CheckpointConfig) -> None:
        self.job, self.config = job, config
        self.last_id = 0
        self._last_at = time.monotonic()
        self.last_duration_ms = 0.0
        self.last_bytes = 0
        # One run of the job, from its fresh start through every restore: its sinks' commit notes
        # are its own, so a job started over (--fresh, or after it finished) is not taken for one
        # that committed its checkpoints already.
        self.run_id = uuid.uuid4().hex[:12]
        self._name_writers()

    def _name_writers(self) -> None:
        for i, pipeline in enumerate(self.job.pipelines):
            for op in pipeline.operators:
                if isinstance(op, SinkOperator) and op.sink.transactional:
                    op.writer = f"{self.config.job_name}/{self.run_id}/{i}/{op.sink.table.name}"

    # --- taking ---------------------------------------------------------------------------------

    def due(self) -> bool:
        return (time.monotonic() - self._last_at) * 1000 >= self.config.interval_ms

    def checkpoint(self) -> int:
        """Write checkpoint n+1, then commit what waited for it; its id."""
        started = time.monotonic()
        number = self.last_id + 1
        store = self.config.store
        path = store.begin(number)
        state_rows = save_tables(self.job.state, path / _STATE)
        readers = [reader.snapshot() for reader in self.job.readers.values()]
        content = {
            "operators": [
                [operator_state(op, self.job.clock) for op in pipeline.operators]
                for pipeline in self.job.pipelines
            ],
            "readers": readers,
            "watermarks": self.job.operator_watermarks(),
        }
        (path / _OPERATORS).write_bytes(pickle.dumps(content, protocol=pickle.HIGHEST_PROTOCOL))
        metadata = {
            "id": number,
            "job": self.config.job_name,
            "fingerprint": self.config.fingerprint,
            "run": self.run_id,
            "taken_at_ms": int(time.time() * 1000),
            "state_rows": state_rows,
        }
        final = store.complete(number, path, metadata)
        self.last_id, self._last_at = number, time.monotonic()
        self._committed(number, readers)
        self.last_duration_ms = (time.monotonic() - started) * 1000
        self.last_bytes = sum(f.stat().st_size for f in final.iterdir())
        return number

    def _committed(self, number: int, readers: list[dict]) -> None:
        """Checkpoint `number` is on disk: sinks commit its rows, log sources their offsets."""
        for pipeline in self.job.pipelines:
            for op in pipeline.operators:
                if isinstance(op, SinkOperator):
                    op.commit(number)
        for reader, saved in zip(self.job.readers.values(), readers, strict=True):
            commit = getattr(reader.source, "commit_checkpoint", None)
            if commit is not None:
                commit(saved["source"])

    def finish(self) -> None:
        """The job ran to its end: a last checkpoint commits the sinks' last rows, then the
        checkpoints go (a finished job starts over when run again, as in Flink)."""
        self.checkpoint()
        self.config.store.discard()

    # --- restoring ------------------------------------------------------------------------------

    def restore(self) -> int | None:
        """Continue from the latest checkpoint, if any; its id."""
        store = self.config.store
        if self.config.fresh:
            store.discard()
            return None
        latest = store.latest()
        if latest is None:
            return None
        number, path, metadata = latest
        if metadata.get("fingerprint") != self.config.fingerprint:
            raise ExecutionError(
                f"Job '{self.config.job_name}' has a checkpoint (chk-{number} in {store.directory}) "
                "taken by other statements: its state does not fit the job's plan now. Run with "
                "--fresh (or delete that directory) to start over, or give the job another "
                "'pipeline.name'"
            )
        content = pickle.loads((path / _OPERATORS).read_bytes())  # noqa: S301 - our own file
        load_tables(self.job.state, path / _STATE)
        for pipeline, saved in zip(self.job.pipelines, content["operators"], strict=True):
            for op, data in zip(pipeline.operators, saved, strict=True):
                restore_operator(op, data, pipeline.state, self.job.clock)
        for reader, saved in zip(self.job.readers.values(), content["readers"], strict=True):
            reader.restore(saved)
        self.job.restore_watermarks(content["watermarks"])
        self.last_id, self.run_id = number, metadata["run"]
        self._name_writers()
        # rows the crashed run may not have committed: in now, or already in (then nothing)
        self._committed(number, content["readers"])
        return number
