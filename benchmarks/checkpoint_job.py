"""Run one clickstream script and report its checkpoints: ``python -m benchmarks.checkpoint_job
SCRIPT OUT [--progress]``.

At the end of bounded input a job discards its checkpoints, so their sizes and durations are
collected while it runs: after each checkpoint the `Checkpointer`'s `last_duration_ms` and
`last_bytes` are read. ``OUT`` (JSON) gets those, the import and script seconds, the job's records
in, and when the job restored a checkpoint (`Checkpointer.restore` is timed: epoch seconds before
and after it, so the caller can measure the time from its restart to the job running again).
``--progress`` prints one JSON line per batch (records in, last checkpoint id) so that the caller
can decide when to kill the process.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clickstream.runtime.executor import Job

_STARTED = time.monotonic()


class Recorder:
    """What the job module reports: each checkpoint, and the restore's start and end. The job's
    Checkpointer methods are wrapped on the instance, so every checkpoint is seen, the last one
    (taken by `finish` at the end of input) too."""

    def __init__(self, progress: bool) -> None:
        self.progress = progress
        self.checkpoints: list[dict[str, float]] = []
        self.restore: dict[str, Any] = {}
        self.records_in = 0

    def on_job_start(self, job: Job) -> None:
        checkpointer = job.checkpointer
        if checkpointer is None:
            return
        restore, checkpoint = checkpointer.restore, checkpointer.checkpoint

        def timed_restore() -> int | None:
            self.restore["started_epoch"] = time.time()
            restored = restore()
            self.restore.update(done_epoch=time.time(), checkpoint=restored)
            return restored

        def recorded_checkpoint() -> int:
            number = checkpoint()
            self.checkpoints.append(
                {
                    "id": number,
                    "duration_ms": round(checkpointer.last_duration_ms, 2),
                    "bytes": checkpointer.last_bytes,
                }
            )
            return number

        checkpointer.restore = timed_restore  # type: ignore[method-assign]
        checkpointer.checkpoint = recorded_checkpoint  # type: ignore[method-assign]

    def on_batch(self, job: Job) -> None:
        self.records_in = job.status.records_in
        if self.progress:
            last = job.checkpointer.last_id if job.checkpointer is not None else 0
            print(json.dumps({"records_in": self.records_in, "checkpoint": last}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkpoint_job")
    parser.add_argument("script", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--progress", action="store_true", help="a JSON line per batch on stdout")
    args = parser.parse_args(argv)

    import sys

    from clickstream.config import Settings
    from clickstream.engine import Engine

    imported = time.monotonic()
    recorder = Recorder(args.progress)
    engine = Engine(Settings(), out=sys.stderr)  # stdout is for --progress
    engine.on_job_start, engine.on_batch = recorder.on_job_start, recorder.on_batch
    engine.execute_script(args.script.read_text())
    finished = time.monotonic()
    report = {
        "import_s": round(imported - _STARTED, 3),
        "run_s": round(finished - imported, 3),
        "records_in": recorder.records_in,
        "checkpoints": recorder.checkpoints,
        "restore": recorder.restore,
    }
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
