"""The checkpoint benchmark (issue 12): the seed 000 job over events in the embedded log, with
checkpoints every second against none, a recovery after a kill, and PyFlink and DuckDB beside.

    python benchmarks/checkpoints.py [--events 1000000] [--interval '1 s'] [--runs 1] [--skip-flink]

Goal: checkpoints every second make the job at most 15% slower. See benchmarks/README.md
("Checkpoints") for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/checkpoints.py` puts benchmarks/ first
    sys.path.insert(0, str(REPO))

from rich.table import Table  # noqa: E402

from benchmarks.measure import Measurement, checkout_env, measure  # noqa: E402
from benchmarks.run import (  # noqa: E402
    DEFAULT_WORK,
    DUCKDB,
    PYFLINK,
    Dataset,
    Run,
    console,
    flink_python,
    prepare_data,
    run_duckdb,
    run_flink,
    sanity_check,
)
from benchmarks.workload import SINK_TABLES, clickstream_script, log_source  # noqa: E402

TOPIC = "user_behavior"
GOAL_OVERHEAD = 0.15
NO_CHECKPOINTS = "clickstream, no checkpoints"
RECOVERY = "clickstream, recovery after kill"


def checkpoints_label(interval: str) -> str:
    return f"clickstream, checkpoints {interval}"


# --- data -------------------------------------------------------------------------------------


def written_once(root: Path, describe: str, write: Callable[[Path], None]) -> Path:
    """`root`, filled by `write(root)` unless a marker file says an earlier run did (an
    interrupted write is redone), with the time it took on the console."""
    done = root / "complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    console.print(f"writing {describe} ...")
    started = time.perf_counter()
    write(root)
    done.touch()
    console.print(f"  done in {time.perf_counter() - started:.1f} s")
    return root


def prepare_topic(data: Dataset, work: Path) -> Path:
    """The events file's lines as records of one topic (one partition), written once: the log's
    root directory."""
    root = work / "data" / f"log_{data.jsonl.stem}"

    def write(root: Path) -> None:
        from clickstream.log import TopicLog

        with TopicLog(root) as log, data.jsonl.open("rb") as lines:
            log.create_topic(TOPIC)
            batch: list[bytes] = []
            for line in lines:
                batch.append(line.rstrip(b"\n"))
                if len(batch) == 10_000:
                    log.append(TOPIC, batch)
                    batch = []
            log.append(TOPIC, batch)

    return written_once(root, f"{data.events:,} events into the log topic {root}/{TOPIC}", write)


# --- clickstream runs -------------------------------------------------------------------------


@dataclass
class JobRun:
    """One clickstream process: its measurement and the job module's report."""

    measurement: Measurement
    report: dict
    results_db: Path
    spawned_epoch: float = 0.0
    killed_after_s: float = 0.0  # recovery: how long the killed first attempt ran
    killed_cpu_s: float = 0.0  # and its CPU seconds
    killed_at: dict = field(default_factory=dict)  # and its last progress line before the kill

    @property
    def checkpoints(self) -> list[dict]:
        return list(self.report["checkpoints"])


@dataclass
class Setup:
    data: Dataset
    root: Path  # the log holding the events
    runs: Path  # scripts, results, checkpoints and logs of the runs
    batch_size: int  # table.exec.mini-batch.size
    interval: str  # execution.checkpointing.interval of the runs with checkpoints
    load: float = field(default_factory=lambda: os.getloadavg()[0])  # the machine may be shared


def _script(setup: Setup, results_db: Path, interval: str | None) -> Path:
    """The seed's three INSERTs over the log topic into a fresh SQLite database; checkpoints
    every `interval` into a directory of their own (None: none)."""
    data, runs = setup.data, setup.runs
    settings = [
        "SET 'pipeline.name' = 'seed-000-checkpoint-bench'",
        f"SET 'table.exec.mini-batch.size' = '{setup.batch_size}'",
    ]
    if interval:
        checkpoints = runs / f"checkpoints_{results_db.stem}"
        shutil.rmtree(checkpoints, ignore_errors=True)
        settings += [
            f"SET 'execution.checkpointing.interval' = '{interval}'",
            f"SET 'state.checkpoints.dir' = '{checkpoints}'",
        ]
    body = clickstream_script(
        str(data.jsonl),
        str(data.dim_db),
        "sqlite",
        str(results_db),
        dead_letters=str(runs / "dead-letters"),
        source=log_source(str(setup.root), TOPIC),
    )
    script = runs / f"{results_db.stem}.sql"
    script.write_text(";\n".join(settings) + ";\n" + body)
    return script


def _job_command(script: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.checkpoint_job", str(script), str(out), *extra]


def _env() -> dict[str, str]:
    """The job processes import this checkout's engine (PYTHONPATH as the caller set it)."""
    return checkout_env(REPO)


def _measured(command: list[str], runs: Path, name: str, label: str) -> Measurement:
    m = measure(command, cwd=REPO, log_prefix=runs / name, env=_env())
    if m.returncode != 0:
        tail = "\n".join(m.stderr.read_text(errors="replace").strip().splitlines()[-25:])
        raise SystemExit(f"{label} failed (exit {m.returncode}): {' '.join(command)}\n{tail}")
    return m


def run_job(setup: Setup, name: str, interval: str | None) -> JobRun:
    results_db = setup.runs / f"{name}.db"
    results_db.unlink(missing_ok=True)
    script = _script(setup, results_db, interval)
    out = setup.runs / f"{name}.json"
    spawned = time.time()
    m = _measured(_job_command(script, out), setup.runs, name, name)
    return JobRun(m, json.loads(out.read_text()), results_db, spawned)


@dataclass
class Killed:
    wall_s: float
    cpu_s: float
    progress: dict  # the last progress line before the kill


def _kill_past_half(command: list[str], events: int, log: Path) -> Killed:
    """Start the job, SIGKILL it once it has read half the events and taken a checkpoint (as
    its per-batch progress lines say)."""
    started = time.monotonic()
    progress: dict = {}
    with log.open("wb") as stderr:
        proc = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=stderr)
        assert proc.stdout is not None
        for line in proc.stdout:
            progress = json.loads(line)
            if progress["records_in"] >= events // 2 and progress["checkpoint"] >= 1:
                proc.send_signal(signal.SIGKILL)
                break
        _, status, usage = os.wait4(proc.pid, 0)  # not proc.wait(): its CPU time too
    code = os.waitstatus_to_exitcode(status)
    if code != -signal.SIGKILL:
        raise SystemExit(
            f"recovery: the job ended (exit {code}) before it had read half the events "
            f"and taken a checkpoint; nothing was killed (see {log}). A smaller --batch-size "
            "gives the job more points between batches to take its checkpoints at"
        )
    return Killed(time.monotonic() - started, usage.ru_utime + usage.ru_stime, progress)


def run_recovery(setup: Setup) -> JobRun:
    """The checkpointed job killed about halfway, then started again until it finishes."""
    name, runs = "recovery", setup.runs
    results_db = runs / f"{name}.db"
    results_db.unlink(missing_ok=True)
    script = _script(setup, results_db, setup.interval)
    first = runs / f"{name}_killed.json"
    killed = _kill_past_half(
        _job_command(script, first, "--progress"), setup.data.events, runs / f"{name}_killed.stderr"
    )
    out = runs / f"{name}.json"
    spawned = time.time()
    m = _measured(_job_command(script, out), runs, name, "recovery (restart)")
    report = json.loads(out.read_text())
    if not report["restore"].get("checkpoint"):
        raise SystemExit(f"recovery: the restarted job restored no checkpoint ({out})")
    return JobRun(m, report, results_db, spawned, killed.wall_s, killed.cpu_s, killed.progress)


# --- results ----------------------------------------------------------------------------------


def sink_rows(results_db: Path) -> dict[str, list[tuple]]:
    """Every row of the three sink tables, sorted (an append sink's order is not a result)."""
    with sqlite3.connect(results_db) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in SINK_TABLES}


def differences(reference: JobRun, other: JobRun, label: str) -> list[str]:
    ours, theirs = sink_rows(reference.results_db), sink_rows(other.results_db)
    return [
        f"{label}: table {t} differs from the run without checkpoints "
        f"({len(theirs[t])} rows vs {len(ours[t])})"
        for t in SINK_TABLES
        if ours[t] != theirs[t]
    ]


# --- report -----------------------------------------------------------------------------------


def _fmt_bytes(mean: float, largest: float) -> str:
    if largest >= 2**20:
        return f"{mean / 2**20:,.2f} / {largest / 2**20:,.2f} MiB"
    return f"{mean / 1024:,.0f} / {largest / 1024:,.0f} KiB"


def _checkpoint_cells(checkpoints: list[dict]) -> list[str]:
    """checkpoints, ckpt mean/max ms, ckpt size (mean/max)."""
    if not checkpoints:
        return ["-", "-", "-"]
    durations = [c["duration_ms"] for c in checkpoints]
    sizes = [c["bytes"] for c in checkpoints]
    return [
        f"{len(durations)}",
        f"{statistics.mean(durations):,.0f} / {max(durations):,.0f}",
        _fmt_bytes(statistics.mean(sizes), max(sizes)),
    ]


@dataclass
class Row:
    label: str
    wall_s: float
    cpu_s: float
    checkpoints: list[dict] = field(default_factory=list)
    overhead: str = "-"
    notes: str = ""


def _median(runs: list[JobRun]) -> JobRun:
    """The run of median wall time (the middle one of an odd number, else the lower middle)."""
    ordered = sorted(runs, key=lambda r: r.measurement.wall_s)
    return ordered[(len(ordered) - 1) // 2]


def print_table(rows: list[Row], events: int, interval: str) -> None:
    table = Table(
        title=f"Seed 000 over {events:,} events in the log: checkpoints every {interval} vs none",
        caption="wall = process start to exit, CPU = user + sys of the process tree (medians of "
        "runs); overhead = wall (CPU) ÷ no checkpoints − 1; ckpt size = the checkpoint "
        "directory's files (mean / max)",
    )
    for name in ("", "wall s", "CPU s", "events/s", "overhead\nwall · CPU", "ckpts", "ckpt ms\nmean/max"):
        table.add_column(name, justify="left" if not name else "right", no_wrap=True)
    table.add_column("ckpt size\nmean/max", justify="right", no_wrap=True)
    table.add_column("notes", max_width=46)
    for row in rows:
        table.add_row(
            row.label,
            f"{row.wall_s:.2f}",
            f"{row.cpu_s:.2f}",
            f"{events / row.wall_s:,.0f}",
            row.overhead,
            *_checkpoint_cells(row.checkpoints),
            row.notes,
        )
    console.print(table)


def _recovery_notes(run: JobRun) -> str:
    restore = run.report["restore"]
    running = restore["done_epoch"] - run.spawned_epoch
    restoring = (restore["done_epoch"] - restore["started_epoch"]) * 1000
    return (
        f"killed at {run.killed_at['records_in']:,} events; restart → running {running:.2f} s "
        f"(restore {restoring:.0f} ms), → finished {run.measurement.wall_s:.2f} s"
    )


def _overhead(row: Row, base: Row) -> str:
    return f"{(row.wall_s / base.wall_s - 1) * 100:+.1f}% · {(row.cpu_s / base.cpu_s - 1) * 100:+.1f}%"


def _wall(runs: list[JobRun]) -> float:
    return statistics.median(r.measurement.wall_s for r in runs)


def _cpu(runs: list[JobRun]) -> float:
    return statistics.median(r.measurement.cpu_s for r in runs)


def _share_note(run: JobRun) -> str:
    """The checkpoints' own time, measured in the job: robust to other load on the machine."""
    spent = sum(c["duration_ms"] for c in run.checkpoints)
    return f"checkpoints took {spent:,.0f} ms = {spent / 10 / run.measurement.wall_s:.1f}% of its wall"


@dataclass
class ClickstreamRuns:
    plain: list[JobRun]  # no checkpoints
    checked: list[JobRun]  # checkpoints every interval
    recovery: JobRun

    def overhead(self) -> tuple[float, float]:
        """Of the runs with checkpoints over those without: (wall, CPU)."""
        return _wall(self.checked) / _wall(self.plain) - 1, _cpu(self.checked) / _cpu(self.plain) - 1

    def rows(self, interval: str) -> list[Row]:
        base = Row(
            NO_CHECKPOINTS,
            _wall(self.plain),
            _cpu(self.plain),
            notes="sinks write each batch",
        )
        checked = Row(
            checkpoints_label(interval),
            _wall(self.checked),
            _cpu(self.checked),
            _median(self.checked).checkpoints,
            notes=_share_note(_median(self.checked)),
        )
        r = self.recovery
        recovery = Row(
            RECOVERY,
            r.killed_after_s + r.measurement.wall_s,
            r.killed_cpu_s + r.measurement.cpu_s,
            r.checkpoints,
            notes=_recovery_notes(r),
        )
        checked.overhead, recovery.overhead = _overhead(checked, base), _overhead(recovery, base)
        return [base, checked, recovery]


def run_clickstream(setup: Setup, repetitions: int) -> ClickstreamRuns:
    plain, checked = [], []
    for i in range(repetitions):
        console.print(f"[dim]run {i + 1}/{repetitions}: without, then with checkpoints ...[/]")
        plain.append(run_job(setup, f"plain_{i}", None))
        checked.append(run_job(setup, f"checkpoints_{i}", setup.interval))
    console.print("[dim]recovery: with checkpoints, killed past half, started again ...[/]")
    return ClickstreamRuns(plain, checked, run_recovery(setup))


def check_results(runs: ClickstreamRuns, duck: Run, events: int) -> list[str]:
    """Every run's sink tables equal the first run without checkpoints, which agrees with
    DuckDB's batch answers. Returns the differences (empty: equal)."""
    reference = runs.plain[0]
    failures = [f for r in [*runs.plain, *runs.checked] for f in differences(reference, r, r.results_db.stem)]
    failures += differences(reference, runs.recovery, "recovery after kill")
    as_run = Run(NO_CHECKPOINTS, events, reference.measurement, {"results_db": str(reference.results_db)})
    return failures + sanity_check(events, as_run, duck)


# --- PyFlink ----------------------------------------------------------------------------------


_FLINK_CHECKPOINT = re.compile(
    r"Completed checkpoint (\d+) for job \S+ \((\d+) bytes, checkpointDuration=(\d+) ms"
)


def flink_checkpoints(log_dir: Path) -> list[dict]:
    """The checkpoints Flink's JobManager logged as completed (id, size, duration)."""
    found = []
    for log in sorted(log_dir.glob("*.log")):
        for match in _FLINK_CHECKPOINT.finditer(log.read_text(errors="replace")):
            number, size, duration = map(int, match.groups())
            found.append({"id": number, "duration_ms": duration, "bytes": size})
    return found


def flink_row(setup: Setup, work: Path, python: Path) -> Row:
    """PyFlink on the same events (from the json file: it has no log connector), checkpoints
    every interval; their count, sizes and durations from its log."""
    log_dir = setup.runs / "flink-log"
    shutil.rmtree(log_dir, ignore_errors=True)
    options = {"execution.checkpointing.interval": setup.interval}
    run = run_flink(setup.data, work, python, 0, options, log_dir)
    seconds = {key: float(str(value)) for key, value in run.detail.items() if key.endswith("_s")}
    fixed = seconds["startup_s"] + seconds["ddl_s"] + seconds["submit_s"]
    return Row(
        PYFLINK,
        run.measurement.wall_s,
        run.measurement.cpu_s,
        flink_checkpoints(log_dir),
        notes=f"JVM start + planning {fixed:.1f} s, job {seconds['wait_s']:.1f} s",
    )


def print_notes(setup: Setup, runs: ClickstreamRuns, flink: bool) -> None:
    killed = runs.recovery.killed_at
    notes = [
        f"clickstream: the seed's three INSERTs in one job over the log topic (1 partition, "
        f"'scan.bounded.mode' = 'latest-offset'), 'table.exec.mini-batch.size' = {setup.batch_size:,}, "
        "jdbc:sqlite sinks into a fresh database per run: the hourly append sink commits its rows "
        "with each checkpoint (exactly-once), the two upsert sinks write through. Checkpoints go to "
        "local disk (fsynced); ckpt columns from the job's Checkpointer (duration includes the "
        "sink's commit; size = chk-N's files), for the run of median wall.",
        f"recovery: SIGKILL once the job had read half the events and taken a checkpoint (it had "
        f"read {killed['records_in']:,}, chk-{killed['checkpoint']}); wall and CPU = the killed "
        "process + the restart; 'running' = from the restart's spawn until Checkpointer.restore "
        "returned; ckpt columns: the restart's.",
        "DuckDB batch: the batch oracle, one query per analysis over the json file.",
        "wall s of each run, without checkpoints: "
        + ", ".join(f"{r.measurement.wall_s:.2f}" for r in runs.plain)
        + "; with: "
        + ", ".join(f"{r.measurement.wall_s:.2f}" for r in runs.checked)
        + f" (load average before the runs: {setup.load:.1f}; CPU s vary less with other load)",
    ]
    if flink:
        notes.insert(
            2,
            f"PyFlink: the same statements over the json file (Flink has no log connector) into "
            f"blackhole sinks (its wheel has no JDBC), checkpoints every {setup.interval} to the "
            "JobManager's heap (its default storage); count, sizes and durations from the "
            "'Completed checkpoint' lines of its log.",
        )
    console.print("[bold]notes[/]")
    for note in notes:
        console.print(f" • {note}")


# --- main -------------------------------------------------------------------------------------


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/checkpoints.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--interval", default="1 s", help="execution.checkpointing.interval")
    parser.add_argument("--runs", type=int, default=1, help="runs with and without checkpoints (median)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=50_000,
        help="table.exec.mini-batch.size of the clickstream runs (default 50000: see the README)",
    )
    parser.add_argument("--skip-flink", action="store_true", help="do not run PyFlink")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    return parser.parse_args(argv)


def _report(failures: list[str], overhead: tuple[float, float], interval: str) -> int:
    if failures:
        console.print("[bold red]RESULTS DIFFER[/]")
        for failure in failures:
            console.print(f" ✗ {failure}")
        return 1
    console.print(
        "[green]results equal: every run's three SQLite tables (with checkpoints, and recovered "
        "after the kill) equal the run without checkpoints, which agrees with DuckDB[/]"
    )
    wall, cpu = overhead
    verdict = "within" if wall <= GOAL_OVERHEAD else "ABOVE"
    console.print(
        f"overhead of checkpoints every {interval}: wall {wall:+.1%} ({verdict} the 15% goal), CPU {cpu:+.1%}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    work: Path = args.work_dir.resolve()
    flink = None if args.skip_flink else flink_python()
    if not args.skip_flink and (flink is None or not flink.exists()):
        raise SystemExit("no PyFlink python: set CLICKSTREAM_PYFLINK_PYTHON or use --skip-flink")
    data = prepare_data(args.events, work)
    runs_dir = work / "runs" / f"checkpoints_n{args.events}"
    runs_dir.mkdir(parents=True, exist_ok=True)
    setup = Setup(data, prepare_topic(data, work), runs_dir, args.batch_size, args.interval)
    runs = run_clickstream(setup, args.runs)
    rows = runs.rows(args.interval)
    if flink is not None:
        console.print("[dim]PyFlink ...[/]")
        rows.append(flink_row(setup, work, flink))
    console.print("[dim]DuckDB batch ...[/]")
    duck = run_duckdb(data, work, 0)
    m = duck.measurement
    rows.append(Row(DUCKDB, m.wall_s, m.cpu_s, notes="batch oracle over the json file"))
    print_table(rows, args.events, args.interval)
    print_notes(setup, runs, flink is not None)
    return _report(check_results(runs, duck, args.events), runs.overhead(), args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
