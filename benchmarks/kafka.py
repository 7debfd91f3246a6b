"""The Kafka benchmark (issue 13): the seed 000 job over events read from a Kafka topic, beside
the same job over the embedded log and over the file, and a bare confluent-kafka consumer
draining the same topic, in one run.

    python benchmarks/kafka.py [--events 1000000] [--runs 1] [--partitions 4] [--profile]

Goals: the Kafka job takes at most 1.3x the file job's time, and reading the topic through the
kafka source costs at most 1.5x the bare consumer's. See benchmarks/README.md ("Kafka").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/kafka.py` puts benchmarks/ first, not the repo
    sys.path.insert(0, str(REPO))

import orjson  # noqa: E402
from rich.table import Table  # noqa: E402
from tests.kafka_broker import KafkaBroker, fetch_libs  # noqa: E402

from benchmarks.checkpoints import sink_rows, written_once  # noqa: E402
from benchmarks.measure import checkout_env, measure  # noqa: E402
from benchmarks.run import DEFAULT_WORK, Dataset, Run, Summary, console, prepare_data, summarize  # noqa: E402
from benchmarks.workload import (  # noqa: E402
    clickstream_script,
    file_source,
    kafka_source,
    log_source,
    read_only_script,
)
from clickstream.connectors.kafka import CONSUMER_DEFAULTS  # noqa: E402
from clickstream.simulate.base import Record  # noqa: E402
from clickstream.simulate.kafka_output import KafkaOutput  # noqa: E402
from clickstream.simulate.outputs import LogOutput  # noqa: E402

TOPIC = "user_behavior"
GOAL_JOB = 1.3  # Kafka job's wall ÷ the file job's
GOAL_READ = 1.5  # the kafka source alone ÷ the bare consumer

FILE_JOB, LOG_JOB, KAFKA_JOB = "seed job ← file", "seed job ← log", "seed job ← Kafka"
BARE, BARE_TUNED = "bare consumer ← Kafka", "bare consumer, tuned ← Kafka"
FILE_READ, LOG_READ, KAFKA_READ = "source only ← file", "source only ← log", "source only ← Kafka"
# the same two over a topic without records: their start-up and end, which reading does not cost
BARE_EMPTY, KAFKA_READ_EMPTY = "bare consumer ← empty topic", "source only ← empty topic"
ROWS = (
    FILE_JOB,
    LOG_JOB,
    KAFKA_JOB,
    BARE,
    BARE_TUNED,
    KAFKA_READ,
    LOG_READ,
    FILE_READ,
    BARE_EMPTY,
    KAFKA_READ_EMPTY,
)
SECTION_ENDS = (KAFKA_JOB, FILE_READ)
# what each row's ratio is taken against
REFERENCE = {
    FILE_JOB: FILE_JOB,
    LOG_JOB: FILE_JOB,
    KAFKA_JOB: FILE_JOB,
    BARE: BARE,
    BARE_TUNED: BARE,
    KAFKA_READ: BARE,
    LOG_READ: BARE,
    FILE_READ: BARE,
    BARE_EMPTY: BARE_EMPTY,
    KAFKA_READ_EMPTY: BARE_EMPTY,
}


# --- data: the events file into the log and into Kafka -------------------------------------------


def _records(data: Dataset) -> Iterator[Record]:
    """The file's events as the simulators hand them to an output, keyed by user (a user's
    events stay in one partition, in order, as `clickstream generate -o kafka://...` writes)."""
    with data.jsonl.open("rb") as lines:
        for line in lines:
            value = orjson.loads(line)
            yield Record(TOPIC, value, str(value["user_id"]))


def prepare_log(data: Dataset, work: Path, partitions: int) -> Path:
    """The events in a topic of the embedded log with `partitions` partitions, written once: the
    log's root directory."""
    root = work / "data" / f"log_{data.jsonl.stem}_p{partitions}"

    def write(root: Path) -> None:
        output = LogOutput(TOPIC, [TOPIC], str(root), partitions)
        for record in _records(data):
            output.write(record)
        output.close()

    return written_once(root, f"{data.events:,} events into the log topic {root}/{TOPIC}", write)


def load_kafka(data: Dataset, broker: KafkaBroker, topic: str, partitions: int) -> None:
    """The events into a new topic of `partitions` partitions, through the generators' Kafka output."""
    broker.create_topic(topic, partitions)
    console.print(f"producing {data.events:,} events to Kafka topic {topic} ({partitions} partitions) ...")
    started = time.perf_counter()
    output = KafkaOutput(f"kafka://{broker.bootstrap}/{topic}", [TOPIC])
    for record in _records(data):
        output.write(record)
    output.close()
    if output.delivered != data.events:
        raise SystemExit(f"Kafka acknowledged {output.delivered:,} of {data.events:,} events")
    console.print(f"  done in {time.perf_counter() - started:.1f} s")


# --- the rows -----------------------------------------------------------------------------------


@dataclass
class Setup:
    data: Dataset
    log_root: Path
    bootstrap: str
    runs: Path  # scripts, reports and logs of the runs
    partitions: int
    kafka_topic: str = TOPIC
    empty_topic: str = f"{TOPIC}_empty"

    def topic(self, row: str) -> str:
        return self.empty_topic if "empty" in row else self.kafka_topic

    def source(self, row: str) -> str:
        """The `user_behavior` DDL of a row: only its WITH options differ."""
        if "Kafka" in row or "topic" in row:
            return kafka_source(self.bootstrap, self.topic(row))
        if "log" in row:
            return log_source(str(self.log_root), TOPIC)
        return file_source(str(self.data.jsonl))

    def script(self, row: str, sinks: str = "blackhole", results_db: Path | None = None) -> str:
        if row.startswith("source only"):
            return read_only_script(self.source(row))
        return clickstream_script(
            str(self.data.jsonl),
            str(self.data.dim_db),
            sinks,
            str(results_db) if results_db else None,
            dead_letters=str(self.runs / "dead-letters"),
            source=self.source(row),
        )


def _name(row: str) -> str:
    return "_".join(row.replace("←", "").split()).lower()


def _measured(setup: Setup, row: str, name: str, command: list[str]) -> Run:
    m = measure(command, cwd=REPO, log_prefix=setup.runs / name, env=checkout_env(REPO))
    if m.returncode != 0:
        tail = "\n".join(m.stderr.read_text(errors="replace").strip().splitlines()[-25:])
        raise SystemExit(f"{row} failed (exit {m.returncode}): {' '.join(command)}\n{tail}")
    out = setup.runs / f"{name}.json"
    return Run(row, setup.data.events, m, json.loads(out.read_text()))


def run_job(setup: Setup, row: str, index: int, sinks: str = "blackhole") -> Run:
    """One clickstream process running the row's script."""
    name = f"{_name(row)}_{sinks}_{index}"
    results_db = setup.runs / f"{name}.db"
    results_db.unlink(missing_ok=True)
    script = setup.runs / f"{name}.sql"
    script.write_text(setup.script(row, sinks, results_db))
    out = setup.runs / f"{name}.json"
    run = _measured(
        setup, row, name, [sys.executable, "-m", "benchmarks.clickstream_job", str(script), str(out)]
    )
    run.detail["results_db"] = str(results_db)
    return run


def run_bare(setup: Setup, row: str, index: int) -> Run:
    name = f"{_name(row)}_{index}"
    out = setup.runs / f"{name}.json"
    command = [sys.executable, "-m", "benchmarks.kafka_consumer", setup.bootstrap, setup.topic(row), str(out)]
    if row == BARE_TUNED:  # as the kafka source: no GC while polling, its client defaults
        command.append("--no-gc")
        command += [f"--property={key}={value}" for key, value in CONSUMER_DEFAULTS.items()]
    return _measured(setup, row, name, command)


def run_row(setup: Setup, row: str, index: int) -> Run:
    load = f"{os.getloadavg()[0]:.1f}"
    console.print(f"[dim]run {index + 1}: {row} (load {load}) ...[/]")
    run = run_bare(setup, row, index) if row.startswith("bare") else run_job(setup, row, index)
    run.detail["load"] = load
    m = run.measurement
    console.print(f"[dim]  {m.wall_s:.2f} s wall, {m.cpu_s:.2f} s CPU, {m.peak_rss_mb:,.0f} MB peak RSS[/]")
    return run


# --- checks -------------------------------------------------------------------------------------


def records_read(run: Run) -> int:
    """Events the row read: the bare consumer's count, else the most any query of the job saw."""
    if run.system.startswith("bare"):
        return int(run.detail["records"])  # type: ignore[call-overload]
    metrics = run.detail.get("metrics", {})
    assert isinstance(metrics, dict)
    return max(int(m.get("records_in", 0)) for m in metrics.values())


def count_failures(runs: list[Run], events: int) -> list[str]:
    expected = {row: 0 if "empty" in row else events for row in ROWS}
    return [
        f"{r.system} read {records_read(r):,} events, not {expected[r.system]:,}"
        for r in runs
        if records_read(r) != expected[r.system]
    ]


def order_free(results: dict[str, list[tuple]]) -> dict[str, object]:
    """The seed's results that do not depend on the order in which partitions interleave: the
    hourly counts, the top categories and each date's final UV. (The UV of an earlier 10-minute
    slot is the count reached when the last record of that slot arrived, which does.)"""
    final_uv: dict[str, int] = {}
    for date, _, uv in results["cumulative_uv"]:
        final_uv[date] = max(uv, final_uv.get(date, 0))
    return {
        "buy_cnt_per_hour": results["buy_cnt_per_hour"],
        "top_category": results["top_category"],
        "final_uv": final_uv,
    }


def _differences(label: str, reference: dict, results: dict) -> list[str]:
    differing = [name for name in reference if results[name] != reference[name]]
    return [f"{label}: {name} differs from the file job's" for name in differing]


def sqlite_results(setup: Setup, row: str) -> dict[str, list[tuple]]:
    return sink_rows(Path(str(run_job(setup, row, 0, "sqlite").detail["results_db"])))


def results_failures(setup: Setup, exact_topic: str | None) -> list[str]:
    """The seed job into SQLite from Kafka and from the log against the same from the file. With
    one partition every row must be equal; with more, the results that do not depend on how the
    partitions interleave (`order_free`). `exact_topic`: a one-partition copy of the topic, read
    once more for the exact check."""
    console.print("[dim]check: the seed job into SQLite from the file, the log and Kafka ...[/]")
    reference = sqlite_results(setup, FILE_JOB)
    compared = reference if setup.partitions == 1 else order_free(reference)
    failures = []
    for row in (KAFKA_JOB, LOG_JOB):
        results = sqlite_results(setup, row)
        failures += _differences(row, compared, results if setup.partitions == 1 else order_free(results))
    if exact_topic:
        one = dataclasses.replace(setup, kafka_topic=exact_topic, partitions=1)
        failures += _differences(f"{KAFKA_JOB} (1 partition)", reference, sqlite_results(one, KAFKA_JOB))
    return failures


# --- report -------------------------------------------------------------------------------------


def _ratio(s: Summary, ref: Summary) -> str:
    return f"{s.wall_s / ref.wall_s:.2f}× · {s.cpu_s / ref.cpu_s:.2f}×"


def print_table(summaries: dict[tuple[int, str], Summary], events: int, partitions: int) -> None:
    table = Table(
        title=f"Seed 000 over {events:,} events: Kafka ({partitions} partitions) vs the log vs the file",
        caption="wall = process start to exit, CPU = user + sys of the process (medians of runs); "
        "peak RSS = max of runs; ratio = wall · CPU ÷ the reference row's",
    )
    for name in ("row", "wall s", "events/s", "CPU s", "peak RSS MB", "ratio\nwall · CPU", "vs"):
        table.add_column(name, justify="left" if name in ("row", "vs") else "right", no_wrap=True)
    for row in ROWS:
        s, ref = summaries[(events, row)], summaries[(events, REFERENCE[row])]
        table.add_row(
            row,
            f"{s.wall_s:.2f}",
            "-" if "empty" in row else f"{s.events_per_s:,.0f}",
            f"{s.cpu_s:.2f}",
            f"{s.peak_rss_mb:,.0f}",
            _ratio(s, ref),
            REFERENCE[row] if row != REFERENCE[row] else "",
        )
        if row in SECTION_ENDS:
            table.add_section()
    console.print(table)


def _reading(s: dict[str, Summary], row: str, empty: str) -> float:
    """Seconds `row` spent reading: its wall less that of the same process over an empty topic
    (start-up and end: interpreter, imports, planning, connecting), which reading does not cost."""
    return s[row].wall_s - s[empty].wall_s


def goals(summaries: dict[tuple[int, str], Summary], events: int) -> list[tuple[str, bool, str]]:
    """(goal, met, figures) of the issue's two goals; reading's cost as `_reading` takes it, the
    whole processes' ratio and the one against the tuned bare consumer beside it."""
    s = {row: summaries[(events, row)] for row in ROWS}
    job = s[KAFKA_JOB].wall_s / s[FILE_JOB].wall_s
    ours, bare = _reading(s, KAFKA_READ, KAFKA_READ_EMPTY), _reading(s, BARE, BARE_EMPTY)
    read = ours / bare
    cpu = (s[KAFKA_READ].cpu_s - s[KAFKA_READ_EMPTY].cpu_s) / (s[BARE].cpu_s - s[BARE_EMPTY].cpu_s)
    return [
        (
            f"Kafka job ≤ {GOAL_JOB}× the file job's time",
            job <= GOAL_JOB,
            f"{s[KAFKA_JOB].wall_s:.2f} s ÷ {s[FILE_JOB].wall_s:.2f} s = {job:.2f}× "
            f"(CPU {s[KAFKA_JOB].cpu_s / s[FILE_JOB].cpu_s:.2f}×)",
        ),
        (
            f"reading Kafka through the source ≤ {GOAL_READ}× the bare consumer's time",
            read <= GOAL_READ,
            f"({s[KAFKA_READ].wall_s:.2f} − {s[KAFKA_READ_EMPTY].wall_s:.2f} s) ÷ "
            f"({s[BARE].wall_s:.2f} − {s[BARE_EMPTY].wall_s:.2f} s) = {ours:.2f} s ÷ {bare:.2f} s = "
            f"{read:.2f}× (CPU likewise {cpu:.2f}×; whole processes "
            f"{s[KAFKA_READ].wall_s / s[BARE].wall_s:.2f}×; against the "
            f"bare consumer tuned as the source {ours / _reading(s, BARE_TUNED, BARE_EMPTY):.2f}×)",
        ),
    ]


def print_goals(results: list[tuple[str, bool, str]]) -> None:
    console.print("[bold]goals[/]")
    for goal, met, figures in results:
        verdict = "[green]met[/]" if met else "[red]missed[/]"
        console.print(f" • {goal}: {verdict}, {figures}")


def print_notes(runs: list[Run], partitions: int, broker_s: float) -> None:
    bare = next(r for r in runs if r.system == BARE)
    loads = ", ".join(str(r.detail["load"]) for r in runs)
    notes = [
        f"one Kafka broker (KRaft, tests/kafka_broker.py, JVM -Xmx256m) on this machine, started in "
        f"{broker_s:.1f} s; topic '{TOPIC}' with {partitions} partitions, keyed by user; the log "
        f"topic likewise. The broker's CPU is not in the rows' CPU s (it is not their child).",
        "seed job: the seed's three INSERTs into blackhole sinks, the script of benchmarks/run.py "
        "with only the source's WITH options changed; source only: the five columns into one "
        "blackhole sink.",
        f"bare consumer: confluent-kafka Consumer, consume(num_messages={bare.detail.get('batch', '?')}), "
        f"orjson.loads of each value; read {int(str(bare.detail['bytes'])) / 2**20:,.0f} MiB; librdkafka's "
        "defaults. 'tuned': the same as the kafka source runs its client, Python's cyclic GC off and "
        f"{', '.join(f'{k}={v}' for k, v in CONSUMER_DEFAULTS.items())}.",
        "empty topic: the same processes over a topic without records (start-up, connecting, end). "
        "Reading's cost in the second goal = a row's wall less its empty-topic row's.",
        f"load average (1 min) before each run: {loads} (the machine may be shared).",
    ]
    console.print("[bold]notes[/]")
    for note in notes:
        console.print(f" • {note}")


def profile_row(setup: Setup, row: str, top: int = 25) -> None:
    """The row's script once more under cProfile; where the time goes, on the job's thread and
    on the source's read-ahead thread (printed apart: their times overlap)."""
    import pstats
    import subprocess

    name = _name(row)
    script, prof = setup.runs / f"{name}_profile.sql", setup.runs / f"{name}.prof"
    script.write_text(setup.script(row))
    for old in setup.runs.glob(f"{prof.name}.read-ahead-*"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "benchmarks.clickstream_job", str(script), "--profile", str(prof)],
        cwd=REPO,
        env=checkout_env(REPO),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for path in [prof, *sorted(setup.runs.glob(f"{prof.name}.read-ahead-*"))]:
        console.rule(f"cProfile of {row}: {path.name}")
        pstats.Stats(str(path)).sort_stats("tottime").print_stats(top)


# --- main ---------------------------------------------------------------------------------------


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/kafka.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1, help="runs of every row, interleaved (median)")
    parser.add_argument("--partitions", type=int, default=4, help="of the Kafka topic and the log topic")
    parser.add_argument("--skip-check", action="store_true", help="no SQLite runs comparing results")
    parser.add_argument("--profile", action="store_true", help="then cProfile the Kafka rows")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    return parser.parse_args(argv)


def measure_all(setup: Setup, repetitions: int) -> list[Run]:
    return [run_row(setup, row, i) for i in range(repetitions) for row in ROWS]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    work: Path = args.work_dir.resolve()
    data = prepare_data(args.events, work)
    log_root = prepare_log(data, work, args.partitions)
    runs_dir = work / "runs" / f"kafka_n{args.events}_p{args.partitions}"
    runs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kafka-bench-") as directory:
        started = time.perf_counter()
        # the JVM's full compiler: the broker's own throughput is part of what is measured
        with KafkaBroker(fetch_libs(), Path(directory), quick_start=False) as broker:
            broker_s = time.perf_counter() - started
            load_kafka(data, broker, TOPIC, args.partitions)
            setup = Setup(data, log_root, broker.bootstrap, runs_dir, args.partitions)
            broker.create_topic(setup.empty_topic, args.partitions)
            runs = measure_all(setup, args.runs)
            failures = count_failures(runs, args.events)
            if not args.skip_check:
                exact_topic = None
                if args.partitions != 1:
                    exact_topic = f"{TOPIC}_p1"
                    load_kafka(data, broker, exact_topic, 1)
                failures += results_failures(setup, exact_topic)
            if args.profile:
                for row in (KAFKA_READ, KAFKA_JOB):
                    profile_row(setup, row)
    summaries = summarize(runs)
    print_table(summaries, args.events, args.partitions)
    print_goals(goals(summaries, args.events))
    print_notes(runs, args.partitions, broker_s)
    if failures:
        console.print("[bold red]CHECK FAILED[/]")
        for failure in failures:
            console.print(f" ✗ {failure}")
        return 1
    if not args.skip_check:
        console.print(
            "[green]results equal: the seed job into SQLite gives the same rows from Kafka with one "
            "partition as from the file; from Kafka and the log with "
            f"{args.partitions} partitions the same hourly counts, top categories and final UV per "
            "date (see the README); every row read every event[/]"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
