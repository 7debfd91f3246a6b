"""Run one clickstream script in this process: ``python -m benchmarks.clickstream_job SCRIPT [OUT]``.

Writes ``OUT`` (JSON): seconds spent importing the engine and running the script, and the job's
per-INSERT metrics. With ``--profile FILE`` the run is profiled with cProfile into FILE (and each
source's read-ahead thread into ``FILE.read-ahead-<n>``: cProfile sees one thread only); with
``--sql-profile`` every SQL statement the operators run on the job's DuckDB state is timed, and
``OUT`` gets the statements that took the longest (``sql_profile``: seconds, calls, SQL).
With ``--collect QUERY_FILE`` the script only declares tables; the SELECT in QUERY_FILE then runs
through ``Engine.collect`` and ``OUT`` gets a summary of its rows (``collected``, as
`join_workload.CollectSummary` computes it) for the join workload's correctness check.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_STARTED = time.monotonic()


_SQL_TIMES: dict[str, list[float]] = {}


def _template(sql: str) -> str:
    """The statement with its operator-id prefixes (group_3_acc) folded, so calls aggregate."""
    return re.sub(r"\b([a-z]+)_\d+_", r"\1_N_", " ".join(sql.split()))


def _timed(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, sql: str, **tables: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(self, sql, **tables)
        finally:
            entry = _SQL_TIMES.setdefault(f"{method.__name__}: {_template(sql)}", [0.0, 0])
            entry[0] += time.perf_counter() - started
            entry[1] += 1

    return wrapper


def _instrument_state() -> None:
    from clickstream.runtime.state import JobState

    for name in ("execute", "query", "scalar"):
        setattr(JobState, name, _timed(getattr(JobState, name)))


def _profile_read_ahead(path: Path) -> None:
    """Each read-ahead thread (sources polled one batch ahead) profiled into a file of its own."""
    import cProfile
    import itertools

    from clickstream.runtime import source_reader

    numbers = itertools.count()
    run = source_reader._ReadAhead._run

    def profiled(self: Any) -> None:
        profile = cProfile.Profile()
        profile.enable()
        try:
            run(self)
        finally:
            profile.disable()
            profile.dump_stats(f"{path}.read-ahead-{next(numbers)}")

    source_reader._ReadAhead._run = profiled  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clickstream_job")
    parser.add_argument("script", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--profile", type=Path, help="write a cProfile dump of the run here")
    parser.add_argument("--sql-profile", action="store_true", help="time each state SQL statement")
    parser.add_argument(
        "--collect",
        type=Path,
        metavar="QUERY_FILE",
        help="after the script, collect this SELECT and summarise its rows",
    )
    args = parser.parse_args(argv)
    if args.sql_profile:
        _instrument_state()

    from clickstream.config import Settings
    from clickstream.engine import Engine

    imported = time.monotonic()
    engine = Engine(Settings())
    script = args.script.read_text()
    if args.profile:
        import cProfile

        _profile_read_ahead(args.profile)
        cProfile.runctx(
            "engine.execute_script(script)",
            globals(),
            {"engine": engine, "script": script},
            filename=str(args.profile),
        )
    else:
        engine.execute_script(script)
    collected = None
    if args.collect:
        from benchmarks.join_workload import CollectSummary

        summary = CollectSummary()
        engine.collect(args.collect.read_text(), on_rows=summary.add)
        collected = summary.result()
    finished = time.monotonic()
    if args.out:
        metrics = engine.last_job.metrics() if engine.last_job else {}
        report: dict[str, Any] = {
            "import_s": round(imported - _STARTED, 3),
            "run_s": round(finished - imported, 3),
            "metrics": metrics,
        }
        if collected is not None:
            report["collected"] = collected
        if args.sql_profile:
            slowest = sorted(_SQL_TIMES.items(), key=lambda kv: -kv[1][0])[:15]
            report["sql_profile"] = [
                {"seconds": round(t, 3), "calls": int(n), "sql": sql} for sql, (t, n) in slowest
            ]
        args.out.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
