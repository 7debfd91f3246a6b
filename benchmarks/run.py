"""Benchmark clickstream vs PyFlink (local) vs Pathway vs DuckDB (batch) on three workloads.

* seed: the seed's three analyses (hourly buys, cumulative UV, top categories via a lookup join)
* tianchi: the same three (the same SQL) and the cumulative UV as a CUMULATE window, over data
  shaped like Tianchi's UserBehavior.csv (keys scaled with the events, nine days); Pathway too
* join: checkouts LEFT JOIN the clicks of the hour before (an event-time interval join)

    python benchmarks/run.py [--workload seed[,tianchi][,join]] [--events 1000000[,10000000]]
                             [--runs 1] [--skip-flink] [--skip-pathway]

See benchmarks/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import inspect
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/run.py` puts benchmarks/ first, not the repo
    sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks import join_workload, tianchi_workload  # noqa: E402
from benchmarks.measure import Measurement, measure  # noqa: E402
from benchmarks.workload import clickstream_script  # noqa: E402
from clickstream.simulate.tianchi import TianchiConfig, category_rows, write_jsonl  # noqa: E402

DEFAULT_WORK = Path(__file__).resolve().parent / ".work"
FLINK_PYTHON = REPO / ".ci/flink-venv/bin/python"
PATHWAY_PYTHON = REPO / ".ci/pathway-venv/bin/python"

CLICKSTREAM = "clickstream"
CLICKSTREAM_SQLITE = "clickstream → SQLite"
PYFLINK = "PyFlink"
PATHWAY = "Pathway"
DUCKDB = "DuckDB batch"
SYSTEMS = (CLICKSTREAM, CLICKSTREAM_SQLITE, PYFLINK, PATHWAY, DUCKDB)
JOIN_SYSTEMS = (CLICKSTREAM, PYFLINK, DUCKDB)
WORKLOADS = ("seed", "tianchi", "join")

console = Console(width=None if sys.stdout.isatty() else 150)


# --- data -------------------------------------------------------------------------------------


@dataclass
class Dataset:
    events: int
    jsonl: Path
    dim_db: Path
    dim_csv: Path
    workload: str = "seed"  # "tianchi": other data, and the CUMULATE analysis besides the seed's

    @property
    def cumulate(self) -> bool:
        return self.workload == "tianchi"

    def runs_dir(self, work: Path) -> Path:
        name = f"n{self.events}" if self.workload == "seed" else f"{self.workload}_n{self.events}"
        runs = work / "runs" / name
        runs.mkdir(parents=True, exist_ok=True)
        return runs


def _generator_fingerprint(config: TianchiConfig) -> str:
    """A hash of what the generator writes for a small sample, so a changed generator regenerates."""
    from clickstream.simulate.tianchi import json_lines

    sample = dataclasses.replace(config, events=2_000)
    return hashlib.sha1("\n".join(json_lines(sample)).encode()).hexdigest()[:8]


def prepare_data(events: int, work: Path) -> Dataset:
    """The events file (cached by size) and the category dimension as SQLite and CSV."""
    config = TianchiConfig(events=events)
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    tag = (
        f"n{events}_u{config.users}_i{config.items}_c{config.categories}_d{config.days:g}_s{config.seed}"
        f"_{_generator_fingerprint(config)}"
    )
    jsonl = data / f"user_behavior_{tag}.jsonl"
    if not jsonl.exists():
        console.print(f"generating {events:,} events into {jsonl} ...")
        started = time.perf_counter()
        tmp = jsonl.with_suffix(".tmp")
        write_jsonl(str(tmp), config)
        tmp.replace(jsonl)
        console.print(
            f"  done in {time.perf_counter() - started:.1f} s ({jsonl.stat().st_size / 2**20:.0f} MB)"
        )
    dim_db, dim_csv = _write_dimension(config.categories, data)
    return Dataset(events, jsonl, dim_db, dim_csv)


def _write_dimension(categories: int, data: Path) -> tuple[Path, Path]:
    """The category dimension (`category_rows`: ids 1..categories but every 50th) as SQLite and CSV."""
    rows = category_rows(TianchiConfig(categories=categories))
    dim_tag = f"c{categories}"
    dim_db = data / f"category_{dim_tag}.db"
    if not dim_db.exists():
        tmp = dim_db.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        with sqlite3.connect(tmp) as conn:
            conn.execute("CREATE TABLE category (sub_category_id BIGINT, parent_category_name TEXT)")
            conn.executemany("INSERT INTO category VALUES (?, ?)", rows)
        tmp.replace(dim_db)
    dim_csv = data / f"category_{dim_tag}.csv"
    if not dim_csv.exists():
        with dim_csv.open("w", newline="") as f:
            csv.writer(f).writerows(rows)  # no header: Flink's csv format has none
    return dim_db, dim_csv


def prepare_tianchi_data(events: int, work: Path) -> Dataset:
    """The tianchi workload's events file (cached by shape and the generator's source) and its
    category dimension."""
    shape = tianchi_workload.TianchiShape(events)
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    source = hashlib.sha1(inspect.getsource(tianchi_workload).encode()).hexdigest()[:8]
    jsonl = data / f"tianchi_{shape.tag()}_{source}.jsonl"
    if not jsonl.exists():
        console.print(
            f"generating {events:,} Tianchi-shaped events ({shape.users:,} users, {shape.items:,} items, "
            f"{shape.categories:,} categories, {tianchi_workload.DAYS} days) into {jsonl} ..."
        )
        started = time.perf_counter()
        tmp = jsonl.with_suffix(".tmp")
        tianchi_workload.write_events(shape, tmp)
        tmp.replace(jsonl)
        console.print(
            f"  done in {time.perf_counter() - started:.1f} s ({jsonl.stat().st_size / 2**20:.0f} MB)"
        )
    dim_db, dim_csv = _write_dimension(shape.categories, data)
    return Dataset(events, jsonl, dim_db, dim_csv, "tianchi")


@dataclass
class JoinDataset:
    events: int
    clicks: Path
    checkouts: Path
    stats: dict[str, int]


def prepare_join_data(events: int, work: Path) -> JoinDataset:
    """The join workload's clicks and checkouts files, cached by config and generator source."""
    config = join_workload.JoinConfig(events=events)
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    source = inspect.getsource(join_workload.write_join_data)
    tag = f"{config.tag()}_{hashlib.sha1(source.encode()).hexdigest()[:8]}"
    clicks, checkouts = data / f"join_clicks_{tag}.jsonl", data / f"join_checkouts_{tag}.jsonl"
    stats_file = data / f"join_stats_{tag}.json"
    if not (clicks.exists() and checkouts.exists() and stats_file.exists()):
        console.print(f"generating {events:,} click and checkout events into {data}/join_*_{tag}.jsonl ...")
        started = time.perf_counter()
        stats = join_workload.write_join_data(config, clicks, checkouts)
        stats_file.write_text(json.dumps(stats))
        size = (clicks.stat().st_size + checkouts.stat().st_size) / 2**20
        console.print(f"  done in {time.perf_counter() - started:.1f} s ({size:.0f} MB)")
    return JoinDataset(events, clicks, checkouts, json.loads(stats_file.read_text()))


# --- the systems ------------------------------------------------------------------------------


def flink_python() -> Path | None:
    """As tests/flink_oracle finds it: $CLICKSTREAM_PYFLINK_PYTHON, else .ci/flink-venv."""
    env = os.environ.get("CLICKSTREAM_PYFLINK_PYTHON")
    if env:
        return Path(env)
    return FLINK_PYTHON if FLINK_PYTHON.exists() else None


def pathway_python() -> Path | None:
    """$CLICKSTREAM_PATHWAY_PYTHON, else .ci/pathway-venv (`bash benchmarks/pathway-venv.sh`)."""
    env = os.environ.get("CLICKSTREAM_PATHWAY_PYTHON")
    if env:
        return Path(env)
    return PATHWAY_PYTHON if PATHWAY_PYTHON.exists() else None


@dataclass
class Run:
    system: str
    events: int
    measurement: Measurement
    detail: dict[str, object] = field(default_factory=dict)


def _check(m: Measurement, system: str) -> None:
    if m.returncode != 0:
        tail = "\n".join(m.stderr.read_text(errors="replace").strip().splitlines()[-25:])
        raise SystemExit(f"{system} failed (exit {m.returncode}): {' '.join(m.command)}\n{tail}")


def run_clickstream(data: Dataset, work: Path, sinks: str, index: int) -> Run:
    system = CLICKSTREAM if sinks == "blackhole" else CLICKSTREAM_SQLITE
    runs = data.runs_dir(work)
    results_db = runs / f"results_{sinks}_{index}.db"
    results_db.unlink(missing_ok=True)
    script = runs / f"clickstream_{sinks}.sql"
    script.write_text(
        clickstream_script(
            str(data.jsonl),
            str(data.dim_db),
            sinks,
            str(results_db),
            dead_letters=str(runs / "dead-letters"),
            cumulate=data.cumulate,
        )
    )
    out = runs / f"clickstream_{sinks}_{index}.json"
    m = measure(
        [sys.executable, "-m", "benchmarks.clickstream_job", str(script), str(out)],
        cwd=REPO,
        log_prefix=runs / f"clickstream_{sinks}_{index}",
    )
    _check(m, system)
    detail: dict[str, object] = json.loads(out.read_text())
    detail["results_db"] = str(results_db)
    return Run(system, data.events, m, detail)


def run_flink(
    data: Dataset,
    work: Path,
    python: Path,
    index: int,
    options: dict[str, str] | None = None,
    log_dir: Path | None = None,
) -> Run:
    """PyFlink on the seed; `options`: Flink settings besides the defaults (`--set KEY=VALUE`);
    `log_dir`: where Flink's log goes (else PyFlink's own directory, shared by its runs)."""
    runs = data.runs_dir(work)
    out = runs / f"flink_{index}.json"
    env = {**os.environ, "TZ": "UTC", **({"FLINK_LOG_DIR": str(log_dir)} if log_dir else {})}
    sets = [arg for key, value in (options or {}).items() for arg in ("--set", f"{key}={value}")]
    sets += ["--cumulate"] if data.cumulate else []
    m = measure(
        [str(python), "-m", "benchmarks.flink_job", *sets, str(data.jsonl), str(data.dim_csv), str(out)],
        cwd=REPO,
        log_prefix=runs / f"flink_{index}",
        env=env,
    )
    _check(m, PYFLINK)
    return Run(PYFLINK, data.events, m, json.loads(out.read_text()))


def run_duckdb(data: Dataset, work: Path, index: int) -> Run:
    runs = data.runs_dir(work)
    out = runs / f"duckdb_{index}.json"
    flags = ["--cumulate"] if data.cumulate else []
    m = measure(
        [sys.executable, "-m", "benchmarks.duckdb_job", *flags, str(data.jsonl), str(data.dim_csv), str(out)],
        cwd=REPO,
        log_prefix=runs / f"duckdb_{index}",
    )
    _check(m, DUCKDB)
    return Run(DUCKDB, data.events, m, {"results": json.loads(out.read_text())})


def run_pathway(data: Dataset, work: Path, python: Path, index: int | str, collect: bool = False) -> Run:
    """Pathway on the tianchi workload (`benchmarks/pathway_job.py`), in streaming mode, with its
    defaults (one worker thread unless $PATHWAY_THREADS says otherwise: two were no faster at 1M);
    `collect`: its final rows into the report (for the check)."""
    runs = data.runs_dir(work)
    out = runs / f"pathway_{index}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [
        str(python),
        "-m",
        "benchmarks.pathway_job",
        str(data.jsonl),
        str(data.dim_csv),
        str(data.events),
    ]
    m = measure(
        [*command, str(out), *(["--collect"] if collect else [])],
        cwd=REPO,
        log_prefix=runs / f"pathway_{index}",
        env=env,
    )
    _check(m, PATHWAY)
    return Run(PATHWAY, data.events, m, json.loads(out.read_text()))


def run_system(
    system: str, data: Dataset, work: Path, index: int, flink: Path | None, pathway: Path | None = None
) -> Run:
    if system == CLICKSTREAM:
        return run_clickstream(data, work, "blackhole", index)
    if system == CLICKSTREAM_SQLITE:
        return run_clickstream(data, work, "sqlite", index)
    if system == PYFLINK:
        assert flink is not None
        return run_flink(data, work, flink, index)
    if system == PATHWAY:
        assert pathway is not None
        return run_pathway(data, work, pathway, index)
    return run_duckdb(data, work, index)


def _join_runs_dir(data: JoinDataset, work: Path) -> Path:
    runs = work / "runs" / f"join_n{data.events}"
    runs.mkdir(parents=True, exist_ok=True)
    return runs


def run_join_system(system: str, data: JoinDataset, work: Path, index: int, flink: Path | None) -> Run:
    runs = _join_runs_dir(data, work)
    files = [str(data.clicks), str(data.checkouts)]
    if system == CLICKSTREAM:
        script = runs / "clickstream.sql"
        script.write_text(join_workload.clickstream_script(*files, dead_letters=str(runs / "dead-letters")))
        out = runs / f"clickstream_{index}.json"
        command = [sys.executable, "-m", "benchmarks.clickstream_job", str(script), str(out)]
        env = None
    elif system == PYFLINK:
        assert flink is not None
        out = runs / f"flink_{index}.json"
        command = [str(flink), "-m", "benchmarks.flink_job", "join", *files, str(out)]
        env = {**os.environ, "TZ": "UTC"}
    else:
        out = runs / f"duckdb_{index}.json"
        command = [sys.executable, "-m", "benchmarks.duckdb_job", "join", *files, str(out)]
        env = None
    prefix = {CLICKSTREAM: "clickstream", PYFLINK: "flink", DUCKDB: "duckdb"}[system]
    m = measure(command, cwd=REPO, log_prefix=runs / f"{prefix}_{index}", env=env)
    _check(m, system)
    return Run(system, data.events, m, json.loads(out.read_text()))


def run_join_collect(data: JoinDataset, work: Path) -> Run:
    """clickstream once more, the SELECT through `Engine.collect`, its rows summarised."""
    runs = _join_runs_dir(data, work)
    script, query = runs / "clickstream_ddl.sql", runs / "attribution.sql"
    script.write_text(join_workload.ddl_script(str(data.clicks), str(data.checkouts)))
    query.write_text(join_workload.ATTRIBUTION.strip() + "\n")
    out = runs / "clickstream_collect.json"
    m = measure(
        [sys.executable, "-m", "benchmarks.clickstream_job", str(script), str(out), "--collect", str(query)],
        cwd=REPO,
        log_prefix=runs / "clickstream_collect",
    )
    _check(m, "clickstream (collect)")
    return Run("clickstream (collect)", data.events, m, json.loads(out.read_text()))


def profile_clickstream(data: Dataset, work: Path, top: int = 30) -> None:
    """Run the blackhole variant once more under cProfile and print where the time goes."""
    import pstats

    runs = data.runs_dir(work)
    script = runs / "clickstream_blackhole.sql"
    prof = runs / "clickstream_blackhole.prof"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.clickstream_job", str(script), "--profile", str(prof)],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    console.rule(f"cProfile of clickstream (blackhole), {data.events:,} events: {prof}")
    for key in ("cumulative", "tottime"):
        pstats.Stats(str(prof)).sort_stats(key).print_stats(top)
    out = runs / "clickstream_blackhole_sql_profile.json"
    job = [sys.executable, "-m", "benchmarks.clickstream_job"]
    subprocess.run(
        [*job, str(script), str(out), "--sql-profile"], cwd=REPO, check=True, stdout=subprocess.DEVNULL
    )
    report = json.loads(out.read_text())
    console.rule(f"slowest state SQL statements (script {report['run_s']} s): {out}")
    for entry in report["sql_profile"][:10]:
        console.print(
            f"{entry['seconds']:7.3f} s {entry['calls']:5d} calls  {entry['sql'][:220]}",
            highlight=False,
            soft_wrap=True,
        )


# --- correctness ------------------------------------------------------------------------------


def sanity_check(events: int, sqlite_run: Run, duck: Run, cumulate: bool = False) -> list[str]:
    """Our engine's SQLite results vs DuckDB's batch answers. Returns failures (empty: agree).
    `cumulate`: also every (window_end, uv) row of the CUMULATE analysis (the tianchi workload)."""
    expected = duck.detail["results"]
    assert isinstance(expected, dict)
    with sqlite3.connect(str(sqlite_run.detail["results_db"])) as conn:
        hourly = conn.execute("SELECT hour_of_day, buy_cnt FROM buy_cnt_per_hour").fetchall()
        uv = conn.execute("SELECT date_str, MAX(uv) FROM cumulative_uv GROUP BY date_str").fetchall()
        top = conn.execute("SELECT category_name, buy_cnt FROM top_category").fetchall()
        steps = conn.execute("SELECT window_end, uv FROM uv_per_10min").fetchall() if cumulate else []
    duck_hourly = [tuple(r) for r in expected["buy_cnt_per_hour"]["rows"]]
    duck_uv = {r[0]: r[2] for r in expected["cumulative_uv"]["rows"]}
    duck_top = {r[0]: r[1] for r in expected["top_category"]["rows"]}
    failures = []
    ours_sum, duck_sum = sum(c for _, c in hourly), sum(c for _, c in duck_hourly)
    console.print(
        f"[bold]check[/] {events:,} events: hourly buy count sum clickstream {ours_sum:,} "
        f"vs DuckDB {duck_sum:,} over {len(hourly)} / {len(duck_hourly)} windows"
    )
    if ours_sum != duck_sum:
        failures.append(f"hourly buy sum differs: {ours_sum} != {duck_sum}")
    if Counter(hourly) != Counter(duck_hourly):
        failures.append("hourly (hour_of_day, buy_cnt) rows differ")
    if dict(uv) != duck_uv:
        failures.append(f"final cumulative UV per date differs: {dict(uv)} != {duck_uv}")
    if dict(top) != duck_top:
        failures.append("top_category differs")
    if cumulate:
        duck_steps = Counter(tuple(r) for r in expected["uv_per_10min"]["rows"])
        console.print(
            f"[bold]check[/] {events:,} events: CUMULATE UV windows clickstream {len(steps):,} vs DuckDB "
            f"{sum(duck_steps.values()):,}, last of each day equal to the day's UV: "
            f"{_last_steps(duck_steps) == {d: u for d, u in duck_uv.items()}}"
        )
        if Counter(steps) != duck_steps:
            failures.append("uv_per_10min (window_end, uv) rows differ")
    return failures


def _last_steps(steps: Counter[tuple[str, int]]) -> dict[str, int]:
    """Each date's UV at its last 10-minute step (window_end = the next day's 00:00)."""
    import datetime

    last = {}
    for end, uv in steps:
        if end.endswith("00:00"):
            day = datetime.date.fromisoformat(end[:10]) - datetime.timedelta(days=1)
            last[day.isoformat()] = uv
    return last


def pathway_check(events: int, collect: Run, duck: Run) -> list[str]:
    """Pathway's final rows (a `--collect` run) vs DuckDB's batch answers: the anchor computes
    the same thing. Returns failures (empty: agree)."""
    import datetime

    ours = collect.detail["results"]
    expected = duck.detail["results"]
    assert isinstance(ours, dict) and isinstance(expected, dict)
    start = datetime.datetime(2017, 11, 25)
    failures = []
    hourly = Counter((r["hour_of_day"], r["buy_cnt"]) for r in ours["buy_cnt_per_hour"])
    if hourly != Counter(tuple(r) for r in expected["buy_cnt_per_hour"]["rows"]):
        failures.append("Pathway: hourly (hour_of_day, buy_cnt) rows differ")
    if {r["date_str"]: r["uv"] for r in ours["cumulative_uv"]} != {
        r[0]: r[2] for r in expected["cumulative_uv"]["rows"]
    }:
        failures.append("Pathway: UV per date differs")
    if {r["category_name"]: r["buy_cnt"] for r in ours["top_category"]} != {
        r[0]: r[1] for r in expected["top_category"]["rows"]
    }:
        failures.append("Pathway: top_category differs")
    steps = Counter(
        (
            (
                datetime.datetime.combine(datetime.date.fromisoformat(r["date_str"]), start.time())
                + datetime.timedelta(minutes=10 * (r["step"] + 1))
            ).strftime("%Y-%m-%d %H:%M"),
            r["uv"],
        )
        for r in ours["uv_per_10min"]
    )
    if steps != Counter(tuple(r) for r in expected["uv_per_10min"]["rows"]):
        failures.append("Pathway: uv_per_10min (window_end, uv) rows differ")
    console.print(
        f"[bold]check[/] {events:,} events: Pathway's final rows vs DuckDB: "
        f"{'equal' if not failures else 'DIFFERENT'} "
        "(hourly, UV per date, top categories, UV per 10-minute step)"
    )
    return failures


def join_sanity_check(events: int, collect: Run, blackhole: Run, duck: Run) -> list[str]:
    """The rows clickstream's collect run produced vs DuckDB's batch join (count, matched,
    distinct checkouts, id sums and a checksum of the (checkout, click) pairs), and the row count
    of the measured blackhole run. Returns failures (empty: agree)."""
    ours = collect.detail["collected"]
    assert isinstance(ours, dict)
    expected = duck.detail
    metrics = blackhole.detail.get("metrics", {})
    assert isinstance(metrics, dict)
    emitted = sum(int(m.get("records_out", 0)) for m in metrics.values())
    late = sum(int(m.get("late_dropped", 0)) for m in metrics.values())
    console.print(
        f"[bold]check[/] join at {events:,} events: clickstream {ours['rows']:,} rows "
        f"({ours['matched']:,} with a click, {ours['rows'] - ours['matched']:,} unmatched) "
        f"vs DuckDB {expected['rows']:,} ({expected['matched']:,}); "
        f"blackhole run emitted {emitted:,} rows, {late:,} late"
    )
    failures = [
        f"join {key}: clickstream {ours[key]} != DuckDB {expected[key]}"
        for key in join_workload.SUMMARY_KEYS
        if ours[key] != expected[key]
    ]
    if set(ours.get("changes", {})) - {"+I"}:
        failures.append(f"join: clickstream emitted changes other than +I: {ours['changes']}")
    if emitted != expected["rows"]:
        failures.append(f"join: the blackhole run emitted {emitted} rows, DuckDB has {expected['rows']}")
    return failures


# --- report -----------------------------------------------------------------------------------


def _versions(flink: Path | None) -> str:
    import duckdb

    parts = [f"Python {platform.python_version()}", f"duckdb {duckdb.__version__}"]
    if flink is not None:
        code = "from pyflink.version import __version__; print(__version__)"
        proc = subprocess.run([str(flink), "-c", code], capture_output=True, text=True)
        parts.append(f"pyflink {proc.stdout.strip() or '?'}")
        java = subprocess.run(["java", "-version"], capture_output=True, text=True)
        if java.returncode == 0 and java.stderr:
            parts.append(java.stderr.splitlines()[0].replace('"', ""))
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True, text=True
    ).stdout.strip()
    if dirty:
        commit += f" + {len(dirty.splitlines())} uncommitted file(s) in src/"
    parts += [f"clickstream @ {commit or '?'}", f"{os.cpu_count()} cores", platform.machine()]
    return " · ".join(parts)


@dataclass
class Summary:
    system: str
    events: int
    wall_s: float  # median over runs
    cpu_s: float  # median
    peak_rss_mb: float  # max over runs
    runs: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s


def summarize(runs: list[Run]) -> dict[tuple[int, str], Summary]:
    grouped: dict[tuple[int, str], list[Run]] = {}
    for r in runs:
        grouped.setdefault((r.events, r.system), []).append(r)
    return {
        key: Summary(
            key[1],
            key[0],
            statistics.median(r.measurement.wall_s for r in rs),
            statistics.median(r.measurement.cpu_s for r in rs),
            max(r.measurement.peak_rss_mb for r in rs),
            len(rs),
        )
        for key, rs in grouped.items()
    }


def _ratio(s: Summary, ref: Summary | None) -> str:
    if ref is None:
        return "-"
    return f"{s.wall_s / ref.wall_s:.2f}× · {s.peak_rss_mb / ref.peak_rss_mb:.2f}×"


SEED_TITLE = "Seed 000: hourly buys (TUMBLE) + cumulative UV + top categories (lookup join)"
TIANCHI_TITLE = (
    "Tianchi-shaped data: seed 000's hourly buys + cumulative UV + top categories, "
    "and UV per 10 minutes (CUMULATE)"
)
JOIN_TITLE = "Join: checkouts LEFT JOIN clicks of the hour before (event-time interval join)"


def print_table(
    summaries: dict[tuple[int, str], Summary],
    sizes: list[int],
    loads: list[str],
    title: str = SEED_TITLE,
    systems: tuple[str, ...] = SYSTEMS,
) -> None:
    table = Table(
        title=title,
        caption="wall = process start to exit (median of runs); peak RSS = whole process tree; "
        "ratios = this row ÷ reference (< 1: faster / smaller)",
    )
    table.add_column("events", justify="right")
    table.add_column("system", no_wrap=True)
    table.add_column("wall s", justify="right")
    table.add_column("CPU s", justify="right")
    table.add_column("events/s", justify="right")
    table.add_column("peak RSS MB", justify="right")
    table.add_column("vs PyFlink\n(time · RSS)", justify="right")
    table.add_column("vs DuckDB\n(time · RSS)", justify="right")
    for n in sizes:
        for system in systems:
            s = summaries.get((n, system))
            if s is None:
                continue
            table.add_row(
                f"{n:,}",
                system,
                f"{s.wall_s:.2f}",
                f"{s.cpu_s:.2f}",
                f"{s.events_per_s:,.0f}",
                f"{s.peak_rss_mb:,.0f}",
                _ratio(s, summaries.get((n, PYFLINK))),
                _ratio(s, summaries.get((n, DUCKDB))),
            )
        table.add_section()
    console.print(table)
    console.print(f"load average (1 min) before each run: {', '.join(loads)}")


def print_notes(
    summaries: dict[tuple[int, str], Summary], sizes: list[int], runs: list[Run], workload: str = "seed"
) -> None:
    systems = {r.system for r in runs}
    notes = _tianchi_notes(sizes, PATHWAY in systems) if workload == "tianchi" else []
    notes += [
        "clickstream: the seed script as tests/engine/test_seed.py runs it (filesystem json source, "
        "lookup join FOR SYSTEM_TIME AS OF on a jdbc:sqlite dimension with its lookup cache), "
        f"all {'four' if workload == 'tianchi' else 'three'} INSERTs in one job; sinks 'blackhole', "
        "or jdbc:sqlite for clickstream → SQLite.",
    ]
    if PYFLINK in systems:
        notes.append(
            "PyFlink: same source and statements into 'blackhole' sinks, TableEnvironment in streaming mode, "
            "one EXECUTE STATEMENT SET + .wait(), Flink's default options (local parallelism = cores, "
            "auto-watermark-interval 200 ms), session zone UTC. The wheel has no JDBC connector, so "
            "category_dim is a bounded 'filesystem' csv table joined with a regular LEFT JOIN, "
            "not a lookup join. table.exec.sink.not-null-enforcer = DROP: the NULL category "
            "(ids missing from the dimension) violates top_category's NOT NULL key and fails the job "
            "under the default ERROR."
        )
    notes += [
        "DuckDB batch: one query per analysis over read_json(...) of the same file (one scan each); "
        "cumulative UV is the final value per date, not the 10-minute curve; dimension from the csv.",
        "peak RSS: the larger of the /proc tree sum sampled every 50 ms and wait4's ru_maxrss "
        "(largest single process). CPU s: user+sys of the tree.",
    ]
    for n in sizes:
        flink = next((r for r in runs if r.system == PYFLINK and r.events == n), None)
        if flink:
            d = flink.detail
            notes.append(
                f"PyFlink time split at {n:,} (first run): python + JVM + TableEnvironment "
                f"{d.get('startup_s')} s, DDL {d.get('ddl_s')} s, "
                f"plan + submit the statement set {d.get('submit_s')} s, "
                f"job until finished {d.get('wait_s')} s."
            )
    for n in sizes:
        ours = next((r for r in runs if r.system == CLICKSTREAM and r.events == n), None)
        if ours:
            notes.append(
                f"clickstream time split at {n:,} (first run): import "
                f"{ours.detail.get('import_s')} s, script {ours.detail.get('run_s')} s."
            )
    for n in sizes:
        pathway = next((r for r in runs if r.system == PATHWAY and r.events == n), None)
        if pathway:
            notes.append(
                f"Pathway time split at {n:,} (first run): import {pathway.detail.get('import_s')} s, "
                f"build and run the dataflow {pathway.detail.get('run_s')} s "
                f"({pathway.detail.get('mode')} mode)."
            )
    notes += _scaling_notes(summaries, sizes, SYSTEMS)
    _print_notes(notes)


def _tianchi_notes(sizes: list[int], pathway: bool) -> list[str]:
    notes = []
    for n in sizes:
        shape = tianchi_workload.TianchiShape(n)
        notes.append(
            f"data at {n:,}: {shape.users:,} users, {shape.items:,} items, {shape.categories:,} categories "
            f"(the real set's ratios, floors 100 / 1,000 / 100), nine days 2017-11-25..12-03 at every size, "
            "~89.5% pv, 5.5% cart, 2.9% fav, 2.1% buy; user activity ∝ rank^-0.5, item popularity ∝ "
            "rank^-0.7; up to 3 s out of order."
        )
    notes.append(
        "tianchi: the seed's three INSERTs (the same SQL text as the seed rows) and a fourth, "
        "COUNT(DISTINCT user_id) per CUMULATE(ts, 10 min, 1 day) window; PyFlink and DuckDB likewise."
    )
    if pathway:
        notes.append(
            "Pathway: the four analyses with its table API (benchmarks/pathway_job.py), "
            "pw.io.jsonlines in streaming mode (commits every 1.5 s, its default), its default of one worker "
            "thread ($PATHWAY_THREADS), "
            "results into pw.io.null; the process ends when every event is read and every result has "
            "closed that commit. CUMULATE: per (day, user) first 10-minute step, new users per step, "
            "summed over the steps up to each one."
        )
    return notes


def _scaling_notes(
    summaries: dict[tuple[int, str], Summary], sizes: list[int], systems: tuple[str, ...]
) -> list[str]:
    notes = []
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        for system in systems:
            a, b = summaries.get((small, system)), summaries.get((large, system))
            if a and b:
                notes.append(
                    f"{system}: {large // small if large % small == 0 else large / small}× the events → "
                    f"peak RSS {b.peak_rss_mb:,.0f} MB vs {a.peak_rss_mb:,.0f} MB "
                    f"({b.peak_rss_mb / a.peak_rss_mb:.2f}×), wall {b.wall_s / a.wall_s:.2f}×."
                )
    return notes


def _print_notes(notes: list[str]) -> None:
    console.print("[bold]notes[/]")
    for note in notes:
        console.print(f" • {note}")


def print_join_notes(
    summaries: dict[tuple[int, str], Summary],
    sizes: list[int],
    runs: list[Run],
    datasets: dict[int, JoinDataset],
) -> None:
    notes = [
        "join: the same script text on clickstream and PyFlink: two filesystem json sources "
        "(ISO-8601 'Z' timestamps, WATERMARK ts - 5 s), INSERT INTO a 'blackhole' sink of "
        "checkouts LEFT JOIN clicks ON user, product AND co.ts BETWEEN cl.ts AND cl.ts + 1 HOUR. "
        "PyFlink: streaming TableEnvironment, defaults (parallelism = cores), session zone UTC, "
        "execute_sql(INSERT).wait(). DuckDB batch: the same join as one query over read_json of "
        "both files, summarised into one row (count, id sums) for the check.",
        "events = clicks + checkouts. peak RSS: the larger of the /proc tree sum sampled every 50 ms and "
        "wait4's ru_maxrss (largest single process). CPU s: user+sys of the tree.",
    ]
    for n in sizes:
        d = datasets[n]
        notes.append(
            f"data at {n:,}: {d.stats['clicks']:,} clicks + {d.stats['checkouts']:,} checkouts "
            f"over one day, {d.stats['planted']:,} checkouts with a planted click 1 s–50 min "
            f"before; files written up to 3 s out of order."
        )
    for n in sizes:
        flink = next((r for r in runs if r.system == PYFLINK and r.events == n), None)
        if flink:
            d = flink.detail
            notes.append(
                f"PyFlink time split at {n:,} (first run): python + JVM + TableEnvironment "
                f"{d.get('startup_s')} s, DDL {d.get('ddl_s')} s, "
                f"plan + submit {d.get('submit_s')} s, "
                f"job until finished {d.get('wait_s')} s."
            )
        ours = next((r for r in runs if r.system == CLICKSTREAM and r.events == n), None)
        if ours:
            notes.append(
                f"clickstream time split at {n:,} (first run): import "
                f"{ours.detail.get('import_s')} s, script {ours.detail.get('run_s')} s."
            )
        duck = next((r for r in runs if r.system == DUCKDB and r.events == n), None)
        if duck:
            notes.append(
                f"DuckDB at {n:,}: the query took {duck.detail.get('seconds')} s of the process's "
                f"{duck.measurement.wall_s:.2f} s; {duck.detail.get('rows'):,} result rows."
            )
    notes += _scaling_notes(summaries, sizes, JOIN_SYSTEMS)
    _print_notes(notes)


# --- goals (issue 15) --------------------------------------------------------------------------

PYFLINK_GOAL, PATHWAY_GOAL, DUCKDB_GOAL, CPU_FLAT_GOAL = 10.0, 5.0, 2.0, 1.2


def _verdict(met: bool) -> str:
    return "[green]met[/]" if met else "[red]missed[/]"


def goal_lines(summaries: dict[tuple[int, str], Summary], sizes: list[int]) -> list[str]:
    """Issue 15's goals for clickstream (blackhole sinks), each met or missed with its figure."""
    lines = []
    for n in sizes:
        ours = summaries.get((n, CLICKSTREAM))
        if ours is None:
            continue
        for ref, goal in ((PYFLINK, PYFLINK_GOAL), (PATHWAY, PATHWAY_GOAL)):
            other = summaries.get((n, ref))
            if other is not None:
                ratio = ours.events_per_s / other.events_per_s
                lines.append(
                    f"{n:,}: events/s ≥ {goal:g}× {ref}'s: {_verdict(ratio >= goal)}, "
                    f"{ours.events_per_s:,.0f} ÷ {other.events_per_s:,.0f} = {ratio:.1f}× "
                    f"(by CPU s: {other.cpu_s:.2f} ÷ {ours.cpu_s:.2f} = {other.cpu_s / ours.cpu_s:.1f}×)"
                )
        duck = summaries.get((n, DUCKDB))
        if duck is not None:
            ratio = ours.wall_s / duck.wall_s
            lines.append(
                f"{n:,}: time ≤ {DUCKDB_GOAL:g}× the DuckDB batch time: {_verdict(ratio <= DUCKDB_GOAL)}, "
                f"{ours.wall_s:.2f} s ÷ {duck.wall_s:.2f} s = {ratio:.2f}× "
                f"(CPU s: {ours.cpu_s:.2f} ÷ {duck.cpu_s:.2f} = {ours.cpu_s / duck.cpu_s:.2f}×)"
            )
    measured = [n for n in sizes if (n, CLICKSTREAM) in summaries]
    if len(measured) > 1:
        small, large = summaries[(min(measured), CLICKSTREAM)], summaries[(max(measured), CLICKSTREAM)]
        per_m = [s.cpu_s / (s.events / 1e6) for s in (small, large)]
        ratio = per_m[1] / per_m[0]
        lines.append(
            f"CPU s per million events flat (≤ {CPU_FLAT_GOAL:g}×), "
            f"{small.events:,} → {large.events:,}: "
            f"{_verdict(ratio <= CPU_FLAT_GOAL)}, {per_m[0]:.2f} → {per_m[1]:.2f} s = {ratio:.2f}×"
        )
    return lines


def print_goals(summaries: dict[tuple[int, str], Summary], sizes: list[int], workload: str) -> None:
    lines = goal_lines(summaries, sizes)
    if lines:
        console.print(
            f"[bold]goals ({workload}, clickstream with blackhole sinks)[/]: verdicts on wall time "
            "(events/s); the CPU-second ratios beside them depend less on other load on the machine"
        )
        for line in lines:
            console.print(f" • {line}")


# --- main -------------------------------------------------------------------------------------


def _run_one(label: str, n: int, i: int, runs_per: int, loads: list[str], job: Callable[[], Run]) -> Run:
    load = f"{os.getloadavg()[0]:.1f}"
    loads.append(f"{label}@{n:,}: {load}")
    console.print(f"[dim]{n:,} events, run {i + 1}/{runs_per}: {label} (load {load}) ...[/]")
    run = job()
    m = run.measurement
    console.print(
        f"[dim]  {m.wall_s:.2f} s wall, {m.cpu_s:.2f} s CPU, "
        f"{m.peak_rss_mb:,.0f} MB peak RSS ({m.processes} processes)[/]"
    )
    return run


def run_seed(
    args: argparse.Namespace,
    sizes: list[int],
    work: Path,
    flink: Path | None,
    pathway: Path | None = None,
    workload: str = "seed",
) -> list[str]:
    """The seed or the tianchi workload (the same SQL over other data, plus the CUMULATE
    analysis, plus Pathway) at every size: runs, table, notes. Returns correctness failures."""
    prepare = prepare_tianchi_data if workload == "tianchi" else prepare_data
    pathway = pathway if workload == "tianchi" else None
    runs: list[Run] = []
    loads: list[str] = []
    failures: list[str] = []
    for n in sizes:
        data = prepare(n, work)
        systems = [CLICKSTREAM, *([] if args.skip_sqlite else [CLICKSTREAM_SQLITE])]
        systems += [*([PYFLINK] if flink else []), *([PATHWAY] if pathway else []), DUCKDB]
        for i in range(args.runs):
            for system in systems:
                job = partial(run_system, system, data, work, i, flink, pathway)
                runs.append(_run_one(system, n, i, args.runs, loads, job))
        by_system = {r.system: r for r in runs if r.events == n}
        if CLICKSTREAM_SQLITE in by_system:
            failures += sanity_check(n, by_system[CLICKSTREAM_SQLITE], by_system[DUCKDB], data.cumulate)
        if pathway and args.check_pathway:
            collect = _run_one(
                "Pathway (collect, for the check)",
                n,
                0,
                1,
                [],
                partial(run_pathway, data, work, pathway, "collect", True),
            )
            failures += pathway_check(n, collect, by_system[DUCKDB])

    summaries = summarize(runs)
    print_table(summaries, sizes, loads, TIANCHI_TITLE if workload == "tianchi" else SEED_TITLE)
    print_notes(summaries, sizes, runs, workload)
    if workload == "tianchi":
        print_goals(summaries, sizes, "tianchi")
    if args.profile:
        profile_clickstream(prepare(max(sizes), work), work)
    if not failures and not args.skip_sqlite:
        console.print(
            "[green]✓ clickstream (SQLite sinks) and DuckDB agree on the hourly buy counts "
            "(per window and sum), final UV per date and top categories"
            + (", and every CUMULATE window's UV" if workload == "tianchi" else "")
            + "[/]"
        )
    return failures


def run_join(args: argparse.Namespace, sizes: list[int], work: Path, flink: Path | None) -> list[str]:
    """The join workload at every size: runs, table, notes. Returns correctness failures."""
    runs: list[Run] = []
    loads: list[str] = []
    failures: list[str] = []
    datasets: dict[int, JoinDataset] = {}
    for n in sizes:
        data = datasets[n] = prepare_join_data(n, work)
        for i in range(args.runs):
            systems = [CLICKSTREAM, *([PYFLINK] if flink is not None else []), DUCKDB]
            for system in systems:
                runs.append(
                    _run_one(
                        system, n, i, args.runs, loads, partial(run_join_system, system, data, work, i, flink)
                    )
                )
        if not args.skip_check:
            collect = _run_one(
                "clickstream (collect, for the check)", n, 0, 1, [], partial(run_join_collect, data, work)
            )
            by_system = {r.system: r for r in runs if r.events == n}
            failures += join_sanity_check(n, collect, by_system[CLICKSTREAM], by_system[DUCKDB])

    summaries = summarize(runs)
    print_table(summaries, sizes, loads, JOIN_TITLE, JOIN_SYSTEMS)
    print_join_notes(summaries, sizes, runs, datasets)
    print_goals(summaries, sizes, "join")
    if not failures and not args.skip_check:
        console.print(
            "[green]✓ clickstream (collect) and DuckDB agree on the join's rows (count, matched, "
            "distinct checkouts, id sums, pair checksum); the blackhole run emitted as many[/]"
        )
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workload",
        default="seed",
        help="seed, tianchi, join, or a comma-separated list, one table each (default seed)",
    )
    parser.add_argument(
        "--events",
        default="1000000",
        help="events to generate; a comma-separated list runs each size (default 1000000)",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs per system and size (median wall)")
    parser.add_argument("--skip-flink", action="store_true", help="do not run PyFlink")
    parser.add_argument("--skip-pathway", action="store_true", help="tianchi: do not run Pathway")
    parser.add_argument(
        "--check-pathway",
        action="store_true",
        help="tianchi: run Pathway once more, collecting its final rows, and compare them with DuckDB's",
    )
    parser.add_argument(
        "--skip-sqlite",
        action="store_true",
        help="seed: no clickstream → SQLite run (also skips the seed's correctness check)",
    )
    parser.add_argument(
        "--skip-check",
        action="store_true",
        help="join: no clickstream collect run (skips the join's correctness check)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="seed: then profile clickstream (blackhole) with cProfile at the largest size",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK,
        help=f"data cache and run logs (default {DEFAULT_WORK})",
    )
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.events.split(",") if s.strip()]
    workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown or not workloads:
        parser.error(f"--workload: unknown {unknown}; choose from {', '.join(WORKLOADS)}")
    work: Path = args.work_dir.resolve()

    flink = None if args.skip_flink else flink_python()
    if not args.skip_flink and (flink is None or not flink.exists()):
        raise SystemExit("no PyFlink python: set CLICKSTREAM_PYFLINK_PYTHON or use --skip-flink")
    console.print(_versions(flink))

    pathway = None
    if "tianchi" in workloads and not args.skip_pathway:
        pathway = pathway_python()
        if pathway is None or not pathway.exists():
            raise SystemExit(
                "no Pathway python: run `bash benchmarks/pathway-venv.sh`, set CLICKSTREAM_PATHWAY_PYTHON "
                "or use --skip-pathway"
            )
        console.print(f"Pathway: {pathway}")

    failures: list[str] = []
    for workload in workloads:
        if workload == "join":
            failures += run_join(args, sizes, work, flink)
        else:
            failures += run_seed(args, sizes, work, flink, pathway, workload)
    if failures:
        console.print("[bold red]CORRECTNESS CHECK FAILED[/]")
        for f in failures:
            console.print(f" ✗ {f}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
