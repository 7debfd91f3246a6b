"""PyFlink as a differential oracle for clickstream's tests.

PyFlink pins old pyarrow/numpy, so it lives in its own venv and runs in a subprocess
(``runner.py`` next to this file, whose docstring records how Flink behaves there)::

    from tests.flink_oracle import materialize, run_flink

    out = run_flink(
        ["CREATE TABLE t (... ts TIMESTAMP_LTZ(3), WATERMARK FOR ts AS ...) WITH (...)"],
        {"hourly": "SELECT TUMBLE_START(ts, INTERVAL '1' HOUR), COUNT(*) FROM t "
                   "GROUP BY TUMBLE(ts, INTERVAL '1' HOUR)"},
    )
    out["hourly"]               # [("+I", ("2017-11-26 23:00:00", 27)), ...]
    materialize(out["hourly"])  # Counter({("2017-11-26 23:00:00", 27): 1, ...})

Each call starts one JVM (5-10 s, then 2-9 s per query; the first is the slowest), so
batch queries into one call. Values are JSON-friendly:
TIMESTAMP and TIMESTAMP_LTZ as ``str(naive datetime)`` in the session time zone
(``'2017-11-26 23:00:00'``, ``'2017-11-26 23:59:59.999000'``), DECIMAL as an exact string,
DATE/TIME as ISO strings, ARRAY/ROW/MAP as tuples. Rows are tuples, so they hash.

Which python runs PyFlink: ``$CLICKSTREAM_PYFLINK_PYTHON``, else ``<repo>/.ci/flink-venv/bin/python``
(see README.md for how CI creates it).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "RUNNER",
    "Changelog",
    "FlinkOracleError",
    "materialize",
    "pyflink_available",
    "pyflink_python",
    "pyflink_unusable",
    "run_flink",
    "run_flink_json",
]

RUNNER = Path(__file__).with_name("runner.py")
_REPO_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_PYTHONS = (_REPO_ROOT / ".ci/flink-venv/bin/python",)
_ADDS = frozenset({"+I", "+U"})
_REMOVES = frozenset({"-U", "-D"})

Row = tuple[Any, ...]
Changelog = list[tuple[str, Row]]


class FlinkOracleError(RuntimeError):
    """PyFlink could not be found, or a setup statement or a query failed in it."""


def pyflink_python() -> Path | None:
    """The interpreter of the PyFlink venv, or None when none of the candidates exists."""
    env = os.environ.get("CLICKSTREAM_PYFLINK_PYTHON")
    if env:
        return Path(env)
    for candidate in _DEFAULT_PYTHONS:
        if candidate.exists():
            return candidate
    return None


@functools.cache
def _check_pyflink(python: str) -> str | None:
    """None when ``python`` imports pyflink and a JVM is reachable, else why not."""
    if not Path(python).exists():
        return f"{python} does not exist"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no java on PATH and JAVA_HOME is unset (PyFlink needs Java 11+)"
    proc = subprocess.run([python, "-c", "import pyflink.table"], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return f"{python} cannot import pyflink: {_tail(proc.stderr, 5)}"
    return None


def pyflink_unusable() -> str | None:
    """None when a PyFlink venv (and Java) is there to run the oracle, else why not."""
    python = pyflink_python()
    if python is None:
        return f"no PyFlink interpreter ($CLICKSTREAM_PYFLINK_PYTHON unset, {_DEFAULT_PYTHONS[-1]} missing)"
    return _check_pyflink(str(python))


def pyflink_available() -> bool:
    """True when a PyFlink venv (and Java) is there to run the oracle."""
    return pyflink_unusable() is None


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _error_summary(trace: str) -> str:
    """The most telling lines of a PyFlink/Java traceback (the root cause comes last)."""
    lines = [
        ln
        for ln in trace.splitlines()
        if ln.strip() and not ln.startswith("\tat ") and not ln.startswith(" ")
    ]
    causes = [ln for ln in lines if "Exception" in ln or "Error" in ln]
    return "\n".join((causes or lines)[-6:])


def run_flink_json(setup: list[str], queries: dict[str, str], timeout: float = 600) -> dict[str, Any]:
    """Run ``runner.py`` and return its JSON output as is (with columns, types, errors)."""
    python = pyflink_python()
    if python is None:
        raise FlinkOracleError(
            "no PyFlink interpreter: set CLICKSTREAM_PYFLINK_PYTHON or create "
            f"{_DEFAULT_PYTHONS[-1]} (see {RUNNER.with_name('README.md')})"
        )
    why = _check_pyflink(str(python))
    if why:
        raise FlinkOracleError(f"PyFlink is not usable: {why}")
    with tempfile.TemporaryDirectory(prefix="flink-oracle-") as tmp:
        spec_path = Path(tmp, "spec.json")
        out_path = Path(tmp, "out.json")
        spec_path.write_text(json.dumps({"setup": setup, "queries": queries}), encoding="utf-8")
        env = dict(os.environ, TZ="UTC", PYTHONUNBUFFERED="1")
        # Own process group: on timeout the JVM that PyFlink started goes down with the runner.
        proc = subprocess.Popen(
            [str(python), str(RUNNER), str(spec_path), str(out_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp,
            start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            _kill_group(proc)
            _, stderr = proc.communicate()
            raise FlinkOracleError(
                f"PyFlink runner timed out after {timeout} s\n--- stderr tail ---\n{_tail(stderr or '')}"
            ) from e
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            _kill_group(proc)  # a JVM left behind by a runner that exited
        if proc.returncode != 0 or not out_path.exists():
            raise FlinkOracleError(
                f"PyFlink runner failed (exit {proc.returncode})\n--- stderr tail ---\n{_tail(stderr or '')}"
            )
        result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    return result


def run_flink(setup: list[str], queries: dict[str, str], timeout: float = 600) -> dict[str, Changelog]:
    """Run ``queries`` on PyFlink after ``setup``; return each query's changelog.

    ``setup`` holds ``SET 'k' = 'v'``, ``CREATE TABLE`` (bounded sources: filesystem json/csv)
    and ``CREATE VIEW`` statements; ``queries`` maps a name to a ``SELECT``. All run in one JVM,
    streaming mode, parallelism 1, session time zone UTC, ``pipeline.auto-watermark-interval``
    0 (a watermark after every event) unless ``setup`` sets them. A changelog is a list of
    ``(kind, row)`` with kind ``+I``/``-U``/``+U``/``-D``. Raises :class:`FlinkOracleError`
    with the stderr tail or the failing queries' errors.
    """
    raw = run_flink_json(setup, queries, timeout=timeout)
    failed = {name: raw[name]["error"] for name in queries if "error" in raw.get(name, {})}
    missing = [name for name in queries if name not in raw]
    if failed or missing:
        parts = [f"query {name!r} failed in PyFlink:\n{_error_summary(e)}" for name, e in failed.items()]
        parts += [f"query {name!r} has no output" for name in missing]
        raise FlinkOracleError("\n\n".join(parts))
    return {
        name: [(kind, tuple(_freeze(v) for v in values)) for kind, values in raw[name]["changelog"]]
        for name in queries
    }


def materialize(changelog: Iterable[tuple[str, Row]]) -> collections.Counter[Row]:
    """The table a changelog ends in: ``+I``/``+U`` add a row, ``-U``/``-D`` remove one.

    Raises ValueError if a row is removed that is not there (an inconsistent changelog).
    """
    table: collections.Counter[Row] = collections.Counter()
    for kind, row in changelog:
        if kind in _ADDS:
            table[row] += 1
        elif kind in _REMOVES:
            if table[row] <= 0:
                raise ValueError(f"{kind} of a row that is not in the table: {row!r}")
            table[row] -= 1
            if table[row] == 0:
                del table[row]
        else:
            raise ValueError(f"unknown row kind {kind!r}")
    return table


if __name__ == "__main__":  # pragma: no cover - manual smoke run: python -m ... spec.json
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    for query, log in run_flink(spec.get("setup", []), spec["queries"]).items():
        print(query, materialize(log))
