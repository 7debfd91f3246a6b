"""The tianchi workload of `benchmarks/run.py` end to end at a tiny size: it generates the data,
runs clickstream (blackhole and SQLite sinks) and the DuckDB batch queries, checks every result
of the four analyses against DuckDB's and prints the table and the goals. PyFlink and Pathway are
skipped there (PyFlink's JVM start alone takes ~10 s); Pathway's answers are checked on their
own when its venv exists. Timing is
not asserted (a test machine is shared); that it runs, checks and reports is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.run import (
    CLICKSTREAM,
    DUCKDB,
    PATHWAY,
    PYFLINK,
    Summary,
    goal_lines,
    pathway_check,
    pathway_python,
    prepare_tianchi_data,
    run_duckdb,
    run_pathway,
)

from benchmarks import tianchi_workload

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_shape_follows_the_real_set_at_any_size() -> None:
    shape = tianchi_workload.TianchiShape(10_000_000)
    assert (shape.users, shape.items, shape.categories) == (98_651, 415_576, 942)
    tiny = tianchi_workload.TianchiShape(5_000)
    assert (tiny.users, tiny.items, tiny.categories) == (100, 1_000, 100)  # the floors


def test_events_are_nine_days_of_the_real_mix(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "events.jsonl"
    tianchi_workload.write_events(tianchi_workload.TianchiShape(50_000), path)
    conn = duckdb.connect()
    days, buys, pvs, users, disorder = conn.execute(
        f"""SELECT count(DISTINCT ts[:10]), avg((behavior = 'buy')::INT), avg((behavior = 'pv')::INT),
                   count(DISTINCT user_id),
                   max(epoch(max_ts) - epoch(ts::TIMESTAMP))
            FROM (SELECT *, max(ts::TIMESTAMP) OVER (ROWS UNBOUNDED PRECEDING) AS max_ts
                  FROM read_json('{path}', columns = {{'user_id': 'BIGINT', 'item_id': 'BIGINT',
                      'category_id': 'BIGINT', 'behavior': 'VARCHAR', 'ts': 'VARCHAR'}}))"""
    ).fetchone()
    assert days == 9
    assert 0.015 < buys < 0.025 and 0.88 < pvs < 0.91
    assert users == tianchi_workload.TianchiShape(50_000).users  # every user shows up
    assert disorder <= tianchi_workload.DISORDER_S  # within the seed's 5 s watermark delay


def test_tianchi_benchmark_runs_checks_and_reports_its_goals(tmp_path: Path) -> None:
    path = os.pathsep.join(p for p in (str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--workload", "tianchi", "--events", "20000"]
        + ["--skip-flink", "--skip-pathway", "--work-dir", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = " ".join(done.stdout.split())  # rich wraps long lines
    assert "CUMULATE UV windows clickstream 1,296 vs DuckDB 1,296" in out
    assert "and every CUMULATE window's UV" in out
    assert "time ≤ 2× the DuckDB batch time:" in out


def _pathway() -> Path:
    """Pathway's python; without its venv the test skips, except under CI=true (.ci/run makes it)."""
    python = pathway_python()
    if python is None or not python.exists():
        message = "no Pathway venv (bash benchmarks/pathway-venv.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true: the Pathway tests must run")
        pytest.skip(message)
    return python


def test_pathway_computes_what_duckdb_does(tmp_path: Path) -> None:
    """The Pathway anchor's four analyses (streaming mode, collected) equal the batch answers."""
    python = _pathway()
    data = prepare_tianchi_data(20_000, tmp_path)
    collect = run_pathway(data, tmp_path, python, "collect", collect=True)
    assert pathway_check(data.events, collect, run_duckdb(data, tmp_path, 0)) == []


def test_goals_say_met_or_missed_with_the_figures() -> None:
    summaries = {
        (1_000_000, CLICKSTREAM): Summary(CLICKSTREAM, 1_000_000, 2.0, 3.0, 400, 1),
        (1_000_000, PYFLINK): Summary(PYFLINK, 1_000_000, 25.0, 40.0, 1500, 1),
        (1_000_000, PATHWAY): Summary(PATHWAY, 1_000_000, 8.0, 8.0, 1200, 1),
        (1_000_000, DUCKDB): Summary(DUCKDB, 1_000_000, 0.8, 1.0, 200, 1),
        (10_000_000, CLICKSTREAM): Summary(CLICKSTREAM, 10_000_000, 20.0, 40.0, 600, 1),
    }
    lines = [
        line.replace("[green]", "").replace("[red]", "").replace("[/]", "")
        for line in goal_lines(summaries, [1_000_000, 10_000_000])
    ]
    assert lines == [
        "1,000,000: events/s ≥ 10× PyFlink's: met, 500,000 ÷ 40,000 = 12.5× (by CPU s: 40.00 ÷ 3.00 = 13.3×)",
        "1,000,000: events/s ≥ 5× Pathway's: missed, 500,000 ÷ 125,000 = 4.0× (by CPU s: 8.00 ÷ 3.00 = 2.7×)",
        "1,000,000: time ≤ 2× the DuckDB batch time: missed, 2.00 s ÷ 0.80 s = 2.50× "
        "(CPU s: 3.00 ÷ 1.00 = 3.00×)",
        "CPU s per million events flat (≤ 1.2×), 1,000,000 → 10,000,000: missed, 3.00 → 4.00 s = 1.33×",
    ]


def test_pathway_streaming_run_ends_when_a_result_stays_empty(tmp_path: Path) -> None:
    """No buys: two results never change; the run must still end once every event is in."""
    python = _pathway()
    events, dim, out = tmp_path / "pv.jsonl", tmp_path / "dim.csv", tmp_path / "out.json"
    line = '{{"user_id":{u},"item_id":7,"category_id":3,"behavior":"pv","ts":"2017-11-25T00:0{u}:00Z"}}\n'
    events.write_text("".join(line.format(u=u) for u in range(5)))
    dim.write_text("3,Books\n")
    done = subprocess.run(
        [str(python), "-m", "benchmarks.pathway_job", str(events), str(dim), "5", str(out), "--collect"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    assert results["buy_cnt_per_hour"] == [] and results["top_category"] == []
    assert results["cumulative_uv"] == [{"date_str": "2017-11-25", "time_str": "00:00", "uv": 5}]
