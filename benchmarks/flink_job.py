"""Run the seed on PyFlink: ``<flink venv>/bin/python -m benchmarks.flink_job EVENTS DIM_CSV [OUT]``.

A streaming ``TableEnvironment`` (local mini-cluster in a JVM started by this process), the setup
DDL of `workload.flink_statements`, then the three INSERTs as one ``EXECUTE STATEMENT SET`` and
``.wait()`` until the bounded input is exhausted. Sinks are ``blackhole``. Options are Flink's
defaults except the session time zone (UTC, as in clickstream) and
``table.exec.sink.not-null-enforcer`` = DROP (see below). Standard library + PyFlink only.

``python -m benchmarks.flink_job join CLICKS CHECKOUTS [OUT]``: the join workload instead, the
DDL of `join_workload.setup_statements` and its one INSERT (`execute_sql(...).wait()`).

``--cumulate`` (before the arguments): the tianchi workload, i.e. also its CUMULATE analysis.

``--set KEY=VALUE`` (before the arguments, repeatable): a Flink option besides those, e.g.
``execution.checkpointing.interval=1 s`` (the checkpoint benchmark); it is echoed into ``OUT``.
"""

from __future__ import annotations

import json
import os
import sys
import time

from benchmarks import join_workload
from benchmarks.workload import flink_statements

_STARTED = time.monotonic()


def _options(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """argv without its `--set KEY=VALUE` pairs, and those settings."""
    rest, options = [], {}
    args = iter(argv)
    for arg in args:
        if arg == "--set":
            key, _, value = next(args).partition("=")
            options[key] = value
        else:
            rest.append(arg)
    return rest, options


def main(argv: list[str]) -> int:
    argv, options = _options(argv)
    cumulate = "--cumulate" in argv
    argv = [a for a in argv if a != "--cumulate"]
    workload = "seed"
    if len(argv) > 1 and argv[1] == "join":
        workload, argv = "join", argv[1:]
    if len(argv) not in (3, 4):
        print(
            "usage: python -m benchmarks.flink_job EVENTS DIM_CSV [OUT]\n"
            "       python -m benchmarks.flink_job join CLICKS CHECKOUTS [OUT]",
            file=sys.stderr,
        )
        return 2
    os.environ["TZ"] = "UTC"  # before the JVM starts
    time.tzset()
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("table.local-time-zone", "UTC")
    # top_category's key is NOT NULL in Flink (PRIMARY KEY), but the LEFT JOIN yields NULL names
    # for sub-categories missing from the dimension: Flink's default enforcer (ERROR) fails the
    # job. DROP drops those rows (clickstream keeps them, as NULL).
    t_env.get_config().set("table.exec.sink.not-null-enforcer", "DROP")
    for key, value in options.items():
        t_env.get_config().set(key, value)
    started = time.monotonic()
    if workload == "join":
        setup, job = join_workload.setup_statements(argv[1], argv[2]), join_workload.INSERT.strip()
    else:
        setup, inserts = flink_statements(argv[1], argv[2], cumulate)
        job = "EXECUTE STATEMENT SET\nBEGIN\n" + ";\n".join(inserts) + ";\nEND"
    for stmt in setup:
        t_env.execute_sql(stmt)
    ddl_done = time.monotonic()
    result = t_env.execute_sql(job)  # plans, optimises, submits to the mini-cluster
    submitted = time.monotonic()
    result.wait()
    finished = time.monotonic()
    if len(argv) == 4:
        from pyflink.version import __version__

        config = t_env.get_config()
        with open(argv[3], "w") as f:
            json.dump(
                {
                    "flink": __version__,
                    "startup_s": round(started - _STARTED, 3),
                    "run_s": round(finished - started, 3),
                    "ddl_s": round(ddl_done - started, 3),
                    "submit_s": round(submitted - ddl_done, 3),
                    "wait_s": round(finished - submitted, 3),
                    "parallelism.default": config.get("parallelism.default", "(default)"),
                    **options,
                },
                f,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
