"""Crash test (issue 12): a job SIGKILLed at random moments and restarted each time writes, once
let run to its end, exactly the sink tables an uninterrupted run writes: no row lost, none twice.

Job 1 is seed 000 (all its INSERTs) from the embedded log into PostgreSQL; job 2 is seed 004's
checkout attribution into an append table in MariaDB; job 3 reads CSV files into JSON files. Each
runs through `clickstream run` in a subprocess (see `crash_harness`); the uninterrupted run has
the same statements and settings, its own checkpoint directory and its own tables. The CLI's
resume after SIGTERM, `--fresh`, and its refusal of a checkpoint taken by other statements are
tested here too.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from clickstream import pipelines
from clickstream.simulate.cli import generate, make_generator
from tests.connectors.jdbc_db import Db
from tests.connectors.seed_004 import write_events
from tests.runtime.crash_harness import SRC, CrashRun, checkpoints, command, run_to_end, spawn

KILLS = 24
SEED_000_TABLES = ("buy_cnt_per_hour", "cumulative_uv", "top_category")


def _settings(checkpoint_dir: Path, name: str) -> dict[str, str]:
    return {
        "table.exec.mini-batch.size": "5000",
        "execution.checkpointing.interval": "200 ms",
        "state.checkpoints.dir": str(checkpoint_dir),
        "pipeline.name": name,
    }


def _same_tables(db: Db, reference: dict[str, str], crashed: dict[str, str], stats: str) -> list[str]:
    """Each sink table of the crashed run holds the reference's rows, as many times each; one
    line per table saying how many rows were compared."""
    lines = []
    for name, table in reference.items():
        want, got = db.rows(table), db.rows(crashed[name])
        missing, extra = Counter(want) - Counter(got), Counter(got) - Counter(want)
        assert got == want, (
            f"{name}: {len(got)} rows after {stats}, {len(want)} uninterrupted; "
            f"missing {list(missing.items())[:5]}, extra {list(extra.items())[:5]}"
        )
        lines.append(f"{name}: {len(want)} rows equal")
    return lines


def _crash_and_compare(
    tmp_path: Path,
    script_for: dict[str, Path],
    settings_for: dict[str, dict[str, str]],
    seed: int,
    kills: int = KILLS,
) -> str:
    """The uninterrupted run, then the crashed one; the numbers of both."""
    taken = run_to_end(script_for["reference"], settings_for["reference"], tmp_path / "reference.log")
    settings = settings_for["crashed"]
    directory = Path(settings["state.checkpoints.dir"]) / settings["pipeline.name"]
    stats = CrashRun(script_for["crashed"], settings, tmp_path / "crashed.log", seed).run(kills, taken)
    summary = f"{stats.summary()} (uninterrupted: {taken} checkpoints)"
    assert stats.kills == kills, f"the job ended after {summary}: give it more input"
    assert stats.kills_in_checkpoint > 0 and stats.resumed >= kills // 3, summary
    assert checkpoints(directory) == (0, 0), "a finished job deletes its checkpoints"
    return summary


# --- job 1: seed 000 into PostgreSQL --------------------------------------------------------------


def _seed_000_script(path: Path, log_dir: Path, dimension: Path, url: str, schema: str, group: str) -> Path:
    """Seed 000 as written, its source bounded with a consumer group, its results in `schema`."""
    bounded = {"scan.bounded.mode": "latest-offset", "properties.group.id": group}
    text = pipelines.load(
        "seed_000",
        topics=pipelines.log_topics(str(log_dir), extra=bounded),
        results=pipelines.jdbc_tables(url.split("?")[0], schema, extra={"username": "postgres"}),
        dimensions=pipelines.jdbc_tables(f"jdbc:sqlite:{dimension}"),
    )
    assert text.count(schema) == len(SEED_000_TABLES)
    path.write_text(text)
    return path


@pytest.fixture
def postgres_schemas(postgres_url: str) -> Iterator[tuple[Db, dict[str, str]]]:
    """A schema for the uninterrupted run's results and one for the crashed run's."""
    db = Db("postgres", postgres_url)
    schemas = {run: f"crash_{run}_{uuid.uuid4().hex[:8]}" for run in ("reference", "crashed")}
    for schema in schemas.values():
        db.execute(f"CREATE SCHEMA {schema}")
    yield db, schemas
    for schema in schemas.values():
        db.execute(f"DROP SCHEMA {schema} CASCADE")
    db.close()


@pytest.mark.integration
def test_seed_000_killed_24_times_into_postgres(postgres_schemas, postgres_url, tmp_path) -> None:
    db, schemas = postgres_schemas
    log_dir, dimension = tmp_path / "log", tmp_path / "dim.db"
    generate(
        "tianchi",
        "log:user_behavior",
        events=500_000,
        seed=12,
        late_ratio=0.01,
        disorder_ms=3_000,
        dimension=f"sqlite:{dimension}",
        log_dir=str(log_dir),
    )
    scripts = {
        run: _seed_000_script(tmp_path / f"{run}.sql", log_dir, dimension, postgres_url, schema, run)
        for run, schema in schemas.items()
    }
    settings = {run: _settings(tmp_path / f"checkpoints-{run}", "seed_000") for run in schemas}
    summary = _crash_and_compare(tmp_path, scripts, settings, seed=1200)
    compared = _same_tables(
        db,
        {t: f"{schemas['reference']}.{t}" for t in SEED_000_TABLES},
        {t: f"{schemas['crashed']}.{t}" for t in SEED_000_TABLES},
        summary,
    )
    print(f"\nseed 000 into PostgreSQL: {summary}; " + "; ".join(compared))


# --- job 2: seed 004 into MariaDB -----------------------------------------------------------------

SINK_KEY = ",\n    PRIMARY KEY (checkout_id) NOT ENFORCED"


def _mariadb_tables(url: str, names: dict[str, str]) -> pipelines.Place:
    """The seed's tables `names` gives test tables for, in MariaDB."""
    base = url.split("?")[0]
    return pipelines.Place(
        lambda table: {"connector": "jdbc", "url": base, "table-name": names[table], "username": "root"}
    )


def _seed_004_script(path: Path, root: Path, url: str, users: str, sink: str, group: str) -> Path:
    """Seed 004 as written, its sink without its key (an append table, where a duplicate shows)."""
    bounded = {"scan.bounded.mode": "latest-offset", "properties.group.id": group}
    text = pipelines.load(
        "seed_004",
        topics=pipelines.log_topics(str(root), "s4_", bounded),
        results=_mariadb_tables(url, {"attributed_checkouts": sink}),
        dimensions=_mariadb_tables(url, {"users": users}),
    )
    assert text.count(SINK_KEY) == 1
    path.write_text(text.replace(SINK_KEY, ""))
    return path


@pytest.mark.integration
def test_seed_004_killed_24_times_into_mariadb(mariadb_url, tmp_path) -> None:
    db = Db("mariadb", mariadb_url)
    try:
        records = list(make_generator("checkouts", seed=4).records(250_000))
        users = db.new_table()
        db.execute(f"CREATE TABLE {users} (id INT PRIMARY KEY, username VARCHAR(255), PASSWORD VARCHAR(255))")
        rows = [(r.value["id"], r.value["username"], "secret") for r in records if r.topic == "users"]
        db.insert(users, rows)
        root = tmp_path / "log"
        write_events(records, root, "s4_")
        sinks = {run: db.new_table() for run in ("reference", "crashed")}
        scripts = {
            run: _seed_004_script(tmp_path / f"{run}.sql", root, mariadb_url, users, sink, run)
            for run, sink in sinks.items()
        }
        settings = {run: _settings(tmp_path / f"checkpoints-{run}", "seed_004") for run in sinks}
        summary = _crash_and_compare(tmp_path, scripts, settings, seed=400)
        tables = {run: {"attributed_checkouts": sink} for run, sink in sinks.items()}
        compared = _same_tables(db, tables["reference"], tables["crashed"], summary)
    finally:
        db.close()
    print(f"\nseed 004 into MariaDB: {summary}; " + "; ".join(compared))


# --- job 3: files into files (no service needed) -------------------------------------------------

FILES_JOB = """
CREATE TABLE src (id BIGINT, k STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');
CREATE TABLE picked (id BIGINT, k STRING)
WITH ('connector' = 'filesystem', 'path' = '{output}/picked.json', 'format' = 'json');
CREATE TABLE per_minute (k STRING, w TIMESTAMP(3), c BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{output}/per_minute.json', 'format' = 'json');
INSERT INTO picked SELECT id, k FROM src WHERE k <> 'c';
INSERT INTO per_minute SELECT k, TUMBLE_START(ts, INTERVAL '1' MINUTE), COUNT(*)
FROM src GROUP BY k, TUMBLE(ts, INTERVAL '1' MINUTE);
"""


def _csv_input(directory: Path, files: int, rows: int) -> Path:
    """`files` CSV files of `rows` rows each (read one after the other, with read-ahead)."""
    rng = random.Random(3)
    directory.mkdir()
    for f in range(files):
        start = datetime(2024, 1, 1)
        lines = (f"{f * rows + i},{rng.choice('abc')},{start + timedelta(seconds=i)}\n" for i in range(rows))
        (directory / f"part-{f}.csv").write_text("".join(lines))
    return directory


def test_files_into_files_killed_20_times(tmp_path: Path) -> None:
    source = _csv_input(tmp_path / "input", files=3, rows=200_000)
    scripts = {}
    for run in ("reference", "crashed"):
        scripts[run] = tmp_path / f"{run}.sql"
        scripts[run].write_text(FILES_JOB.format(input=source, output=tmp_path / run))
    settings = {run: _settings(tmp_path / f"checkpoints-{run}", "files") for run in scripts}
    summary = _crash_and_compare(tmp_path, scripts, settings, seed=300, kills=20)
    compared = []
    for name in ("picked", "per_minute"):
        want = Counter((tmp_path / "reference" / f"{name}.json").read_text().splitlines())
        got = Counter((tmp_path / "crashed" / f"{name}.json").read_text().splitlines())
        missing, twice = sum((want - got).values()), sum((got - want).values())
        assert got == want, f"{name}: {missing} rows missing, {twice} rows twice after {summary}"
        compared.append(f"{name}: {sum(want.values())} rows equal")
    print(f"\nfiles into files: {summary}; " + "; ".join(compared))


# --- the CLI: --fresh, and a checkpoint of other statements ---------------------------------------

BUYS = """
CREATE TABLE user_behavior (user_id BIGINT, item_id BIGINT, category_id BIGINT, behavior STRING,
    ts TIMESTAMP_LTZ(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector' = 'log', 'path' = '{log_dir}', 'topic' = 'user_behavior',
    'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE buys (user_id BIGINT, item_id BIGINT, ts TIMESTAMP_LTZ(3))
WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = 'buys');
INSERT INTO buys SELECT user_id, item_id, ts FROM user_behavior WHERE behavior = '{behavior}';
"""


def _buys_script(path: Path, log_dir: Path, db: Path, behavior: str = "buy") -> Path:
    path.write_text(BUYS.format(log_dir=log_dir, db=db, behavior=behavior))
    return path


def _buys_settings(checkpoint_dir: Path) -> dict[str, str]:
    # small batches: the whole job takes about 3.7 s and its first checkpoint comes at about
    # 0.7 s, so a stop after that checkpoint lands part of the way; at 5,000 rows a batch the
    # job took 0.9 s and could end before the stop arrived
    return {**_settings(checkpoint_dir, "buys"), "table.exec.mini-batch.size": "200"}


def _rows(db: Path) -> Counter:
    with closing(sqlite3.connect(db)) as conn:
        return Counter(conn.execute("SELECT * FROM buys").fetchall())


def _stopped_after_a_checkpoint(script: Path, settings: dict[str, str], output: Path) -> int:
    """Run the job until its first checkpoint, then stop it as Ctrl-C does (it takes a last
    checkpoint, which stays: the job did not end); that checkpoint's id."""
    directory = Path(settings["state.checkpoints.dir"]) / settings["pipeline.name"]
    process = spawn(script, settings, output)
    deadline = time.monotonic() + 60
    while checkpoints(directory)[0] == 0:
        assert process.poll() is None and time.monotonic() < deadline, output.read_text()[-3000:]
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, output.read_text()[-3000:]
    return checkpoints(directory)[0]


def _cli(script: Path, settings: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        command(script, settings, *flags), env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def buys_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter]:
    """A log of tianchi events, and the rows the buys job writes from it uninterrupted."""
    directory = tmp_path_factory.mktemp("buys")
    log_dir, reference = directory / "log", directory / "reference.db"
    generate("tianchi", "log:user_behavior", events=200_000, seed=5, log_dir=str(log_dir))
    run_to_end(
        _buys_script(directory / "reference.sql", log_dir, reference),
        _settings(directory / "reference-checkpoints", "buys"),
        directory / "reference.log",
    )
    return log_dir, _rows(reference)


def test_a_job_stopped_by_sigterm_resumes_where_it_stopped(buys_log, tmp_path: Path) -> None:
    log_dir, everything = buys_log
    db, settings = tmp_path / "out.db", _buys_settings(tmp_path / "checkpoints")
    script = _buys_script(tmp_path / "buys.sql", log_dir, db)
    _stopped_after_a_checkpoint(script, settings, tmp_path / "stopped.log")
    assert 0 < sum(_rows(db).values()) < sum(everything.values())  # stopped part of the way
    resumed = _cli(script, settings)
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(db) == everything


def test_fresh_starts_over_and_a_checkpoint_of_other_statements_is_refused(buys_log, tmp_path: Path) -> None:
    log_dir, everything = buys_log
    db, settings = tmp_path / "out.db", _buys_settings(tmp_path / "checkpoints")
    script = _buys_script(tmp_path / "buys.sql", log_dir, db)
    stopped_at = _stopped_after_a_checkpoint(script, settings, tmp_path / "stopped.log")
    first = _rows(db)
    assert 0 < sum(first.values()) < sum(everything.values())  # stopped part of the way

    changed = _buys_script(tmp_path / "carts.sql", log_dir, db, behavior="cart")
    refused = _cli(changed, settings)
    assert refused.returncode == 1, refused.stderr
    assert "taken by other statements" in refused.stderr and "--fresh" in refused.stderr
    assert checkpoints(tmp_path / "checkpoints" / "buys")[0] == stopped_at and _rows(db) == first

    fresh = _cli(script, settings, "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    # resuming would have added the rest of the rows, starting over adds them all
    assert _rows(db) == first + everything
