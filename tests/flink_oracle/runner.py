"""Run Flink SQL on PyFlink and dump each query's changelog as JSON: the differential oracle.

Run it with the PyFlink venv's python, never the project's (PyFlink pins old pyarrow/numpy)::

    .ci/flink-venv/bin/python tests/flink_oracle/runner.py spec.json out.json

``spec.json``::

    {"setup": ["SET ...", "CREATE TABLE ... WITH (...)", "CREATE VIEW ..."],
     "queries": {"name": "SELECT ...", ...}}

``out.json``::

    {"name": {"changelog": [["+I", [v, ...]], ["-U", [...]], ["+U", [...]], ...],
              "columns": ["c", ...], "types": ["TIMESTAMP(3) NOT NULL", ...],
              "fetch": "bulk", "seconds": 1.2},
     "other": {"error": "<Java/Python traceback>", "seconds": 0.4},
     "__runner__": {"flink": "2.3.0", "startup_seconds": ..., "total_seconds": ...}}

One JVM runs every query, one after the other, in a ``StreamTableEnvironment`` (streaming mode,
parallelism 1, ``table.local-time-zone`` = UTC and ``pipeline.auto-watermark-interval`` = 0
unless a setup ``SET 'key' = 'value'`` changes them; ``executeSql`` refuses SET, so the runner
applies it to the TableConfig itself). A query that fails records ``error`` and the others
still run. Exit status: 0 when the output was written (even with failed queries), 1 when a
setup statement failed (the reason is the last thing on stderr), 2 on bad usage.

Values in the changelog: BOOLEAN/integers/STRING as JSON scalars; DOUBLE/FLOAT as floats;
DECIMAL as an exact string (``"1.50"``); DATE ``"YYYY-MM-DD"``; TIME ``"HH:MM:SS[.ffffff]"``;
TIMESTAMP and TIMESTAMP_LTZ as ``"YYYY-MM-DD HH:MM:SS[.ffffff]"`` (what ``str()`` of a naive
``datetime`` gives; 9 fraction digits only when the value has sub-microsecond digits), without
a zone suffix: TIMESTAMP_LTZ is rendered in the session time zone, as Flink itself prints it;
BYTES as a hex string; ARRAY/ROW as lists; MAP as a list of ``[key, value]`` pairs.

How values are fetched, and why. ``collect()`` on the ``TableResult`` runs the job and yields
``Row`` objects with their ``RowKind``. PyFlink 2.3's own ``CloseableIterator`` pickles each row
on the Java side, and (measured) that fails for any TIMESTAMP_LTZ value (``PickleException:
couldn't introspect javabean`` on ``java.time.Instant``: raw ``ts``, ``TUMBLE_ROWTIME``, the
TVFs' ``window_time``), truncates TIMESTAMP(p>3) to milliseconds, and costs 3 py4j calls, about
3-4 ms, a row (20,000 rows: 82 s). So the runner does it differently:

1. It plans the query with ``sql_query`` and projects every top-level TIMESTAMP / TIMESTAMP_LTZ
   column through ``CAST(... AS STRING)``: a Calc on top of the plan that does not change the
   changelog, and lets Flink render LTZ in the session time zone as it prints it.
2. Java collects the whole bounded result into a list (``CollectionUtil.iteratorToList``) and
   Flink's shaded Jackson writes it as JSON, reading ``Row``'s fields (``kind``,
   ``fieldByPosition``) in chunks of 20,000 rows; Python maps the values by the column types.
   20,000 rows: about 5 s including the job. Nested timestamps come as ISO text too (an
   Instant in UTC, moved to the session zone by ``zoneinfo``).
3. If Jackson cannot be set up or cannot write a value, the query runs again through PyFlink's
   per-row path (``"fetch": "rows"`` and ``"fetch_error"`` in the output; no nested LTZ there).
   ``CLICKSTREAM_ORACLE_FETCH=rows`` in the environment forces that path.

Observed behaviour of Flink 2.3 here (filesystem json source, ``ts TIMESTAMP_LTZ(3)`` with
``WATERMARK FOR ts AS ts - INTERVAL '5' SECOND``, ISO-8601 timestamps like ``2017-11-26T23:00:17Z``,
ids as JSON strings into BIGINT columns: they parse fine):

* End of input: the bounded filesystem source emits a final ``MAX_WATERMARK``, so every event-time
  window fires when the file is exhausted, including the last, partial one; the job then
  finishes and ``collect()`` ends. Legacy ``GROUP BY TUMBLE(...)`` and the TUMBLE/HOP/CUMULATE
  TVFs all emit one ``+I`` per window and never retract. CUMULATE fires every step from the
  first step holding data to the end of the window, even steps after the last event: a 1-day
  CUMULATE with 30-minute steps over events from 23:00 on day 1 to 01:54 on day 2 emitted the
  steps ending 23:30 and 24:00 of day 1 and all 48 steps of day 2, the last 44 repeating the
  final value.
* Watermarks are not only periodic. The SQL ``WatermarkAssigner`` (the filesystem source does
  not take watermark push-down) also emits eagerly, right after forwarding an event, whenever
  ``(max event time - delay) - last emitted watermark > pipeline.auto-watermark-interval``,
  comparing an event-time gap with a processing-time interval (default 200 ms). So even a small
  file read in a few milliseconds gets a watermark after nearly every event, and late events
  ARE dropped: an event 2 h 44 min behind the stream was not counted by legacy TUMBLE nor by
  the TUMBLE TVF (27 buys instead of 28 in its hour), with the default interval, with 10 s and
  with 0. With the default 200 ms, an event whose lateness is within the 200 ms slack may or may
  not be counted, depending on the periodic timer (measured: counted). Hence the runner sets
  ``pipeline.auto-watermark-interval`` = 0 unless a setup ``SET`` overrides it: a watermark
  after every event that advances it, nothing periodic, fully deterministic. Each event is
  then judged against ``max(event time of earlier events) - delay``, the rule the engine
  follows. ``CURRENT_WATERMARK(ts)`` in a projection shows exactly that value (NULL for the
  first event).
* Unbounded ``GROUP BY`` (e.g. ``COUNT(DISTINCT user_id)`` per day) emits ``+I`` then a
  ``-U``/``+U`` pair for every input row that changes the result (no mini-batch by default),
  and nothing when the result stays the same. Materialising the changelog gives the final table.
* Time zone: the runner sets the Python process ``TZ=UTC`` before the JVM starts (PyFlink
  converts TIMESTAMP through the process's local zone) and the session zone to UTC.
  ``TUMBLE_START``/``window_start`` over a TIMESTAMP_LTZ rowtime are TIMESTAMP(3) values
  in the session zone; ``DATE_FORMAT(ts, ...)`` on TIMESTAMP_LTZ uses the session zone.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
import re
import sys
import time
import traceback
from typing import Any

_TIMESTAMP_ROOTS = ("TIMESTAMP_WITHOUT_TIME_ZONE", "TIMESTAMP_WITH_LOCAL_TIME_ZONE")


def normalize_timestamp_text(text: str) -> str:
    """``'2017-11-26 23:00:17.120'`` -> ``'2017-11-26 23:00:17.120000'``; no fraction when zero."""
    text = text.strip().replace("T", " ")
    base, _, frac = text.partition(".")
    if len(base) == 16:  # 'YYYY-MM-DD HH:MM' (Java's LocalDateTime.toString drops ':00')
        base += ":00"
    return base + _fraction(frac)


def _fraction(frac: str) -> str:
    frac = frac.rstrip("0")
    if not frac:
        return ""
    return "." + frac.ljust(6 if len(frac) <= 6 else 9, "0")


def normalize_time_text(text: str) -> str:
    """``'10:11'`` -> ``'10:11:00'``, ``'10:11:12.3'`` -> ``'10:11:12.300000'``."""
    base, _, frac = text.partition(".")
    if len(base) == 5:
        base += ":00"
    return base + _fraction(frac)


# A column's type as nested tuples: (type root, children...); from Java's LogicalType.
TypeSpec = tuple[Any, ...]


def type_spec(j_logical_type: Any) -> TypeSpec:
    root = str(j_logical_type.getTypeRoot().name())
    children = [type_spec(c) for c in j_logical_type.getChildren()]
    return (root, *children)


_KINDS = {"INSERT": "+I", "UPDATE_BEFORE": "-U", "UPDATE_AFTER": "+U", "DELETE": "-D"}
_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "INTERVAL_YEAR_MONTH"})


class JacksonValues:
    """Turns rows that Flink's Jackson wrote (Row's own fields) into the documented JSON values.

    Top-level TIMESTAMP/TIMESTAMP_LTZ columns arrive as text (cast by Flink); nested ones as
    ISO text from Jackson's JavaTimeModule (an Instant in UTC, moved here to ``zone``).
    """

    def __init__(self, zone: str) -> None:
        self.zone: Any = None
        try:
            import zoneinfo

            self.zone = zoneinfo.ZoneInfo(zone)
        except Exception:  # 'GMT+08:00' and such: keep UTC
            self.zone = dt.UTC

    def convert(self, value: Any, spec: TypeSpec) -> Any:
        if value is None:
            return None
        root = spec[0]
        if root in ("FLOAT", "DOUBLE"):
            return float(value)  # Decimal (exact parse) or 'NaN'/'Infinity'
        if root == "DECIMAL":
            return format(decimal.Decimal(value), "f")
        if root in ("BINARY", "VARBINARY"):
            return base64.b64decode(value).hex()
        if root == "TIMESTAMP_WITHOUT_TIME_ZONE":
            return normalize_timestamp_text(value)
        if root == "TIMESTAMP_WITH_LOCAL_TIME_ZONE":
            if value.endswith("Z"):
                instant = dt.datetime.fromisoformat(value[:-1]).replace(tzinfo=dt.UTC)
                return str(instant.astimezone(self.zone).replace(tzinfo=None))
            return normalize_timestamp_text(value)
        if root == "TIME_WITHOUT_TIME_ZONE":
            return normalize_time_text(value)
        if root == "ARRAY":
            return [self.convert(v, spec[1]) for v in value]
        if root == "ROW":
            fields = value["fieldByPosition"]
            return [self.convert(v, t) for v, t in zip(fields, spec[1:], strict=True)]
        if root in ("MAP", "MULTISET"):
            key_spec = spec[1]
            value_spec = spec[2] if root == "MAP" else ("INTEGER",)
            pairs = [[self.convert_key(k, key_spec), self.convert(v, value_spec)] for k, v in value.items()]
            return sorted(pairs, key=repr)
        if root in _INTEGERS or root in ("BOOLEAN", "CHAR", "VARCHAR", "DATE"):
            return value
        return value if isinstance(value, str | int | bool) else json.dumps(value, default=str)

    def convert_key(self, key: str, spec: TypeSpec) -> Any:
        """JSON object keys are text: Jackson wrote ``key.toString()``."""
        if spec[0] in _INTEGERS:
            return int(key)
        if spec[0] == "BOOLEAN":
            return key == "true"
        if spec[0] in ("FLOAT", "DOUBLE", "DECIMAL"):
            return self.convert(decimal.Decimal(key), spec)
        return key


def collect_bulk(table: Any, specs: list[TypeSpec], zone: str) -> list[list[Any]]:
    """Run ``table`` and fetch its changelog in a few py4j calls (about 0.4 ms a row).

    Java collects the whole bounded result into a list; Flink's shaded Jackson writes it as JSON,
    reading ``Row``'s private fields (``kind``, ``fieldByPosition``), in chunks.
    """
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    try:
        jackson = "org.apache.flink.shaded.jackson2.com.fasterxml.jackson.annotation."
        accessor = getattr(jvm, jackson + "PropertyAccessor")
        visibility = getattr(jvm, jackson + "JsonAutoDetect$Visibility")
        mapper = jvm.org.apache.flink.util.jackson.JacksonMapperFactory.createObjectMapper()
        mapper.setVisibility(accessor.ALL, visibility.NONE)
        mapper.setVisibility(accessor.FIELD, visibility.ANY)
        collection_util = jvm.org.apache.flink.util.CollectionUtil
    except Exception as e:
        raise BulkFetchUnavailable("cannot set up Jackson on the Java side") from e
    j_iter = table._j_table.execute().collect()
    try:
        j_rows = collection_util.iteratorToList(j_iter)  # a failing job raises here
    finally:
        j_iter.close()
    values = JacksonValues(zone)
    changelog: list[list[Any]] = []
    n = j_rows.size()
    for start in range(0, n, _CHUNK_ROWS):
        try:
            text = mapper.writeValueAsString(j_rows.subList(start, min(n, start + _CHUNK_ROWS)))
            rows = json.loads(text, parse_float=decimal.Decimal)
        except Exception as e:
            raise BulkFetchUnavailable("Jackson could not write the rows") from e
        for row in rows:
            fields = row["fieldByPosition"]
            changelog.append(
                [
                    _KINDS[row["kind"]],
                    [values.convert(v, t) for v, t in zip(fields, specs, strict=True)],
                ]
            )
    return changelog


class BulkFetchUnavailable(Exception):
    """The bulk path cannot fetch this result; the per-row path (a second run) will."""


_CHUNK_ROWS = 20_000


def to_json_value(value: Any) -> Any:
    """A value from PyFlink's own conversion as a JSON-friendly value (fallback path)."""
    if value is None or isinstance(value, bool | int | str | float):
        return value
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return str(value.replace(tzinfo=None))
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, dict):
        pairs = [[to_json_value(k), to_json_value(v)] for k, v in value.items()]
        return sorted(pairs, key=repr)
    if isinstance(value, list | tuple) or hasattr(value, "get_row_kind"):  # ARRAY, ROW
        return [to_json_value(v) for v in value]
    return repr(value)


def collect_rows(table: Any, specs: list[TypeSpec]) -> list[list[Any]]:
    """Run ``table`` and fetch row by row through PyFlink (3 py4j calls, about 3-4 ms a row)."""
    changelog: list[list[Any]] = []
    with table.execute().collect() as rows:
        for row in rows:
            values = []
            for v, spec in zip(row, specs, strict=True):
                if spec[0] in _TIMESTAMP_ROOTS and isinstance(v, str):
                    values.append(normalize_timestamp_text(v))
                else:
                    values.append(to_json_value(v))
            changelog.append([str(row.get_row_kind()), values])
    return changelog


def run_query(t_env: Any, sql: str) -> dict[str, Any]:
    """Plan ``sql``, run it to the end of its bounded input, and return its changelog."""
    from pyflink.table import DataTypes
    from pyflink.table.expressions import col

    table = t_env.sql_query(sql)
    j_schema = table._j_table.getResolvedSchema()
    columns = [str(c) for c in j_schema.getColumnNames()]
    j_types = list(j_schema.getColumnDataTypes())
    specs = [type_spec(t.getLogicalType()) for t in j_types]
    as_text = [spec[0] in _TIMESTAMP_ROOTS for spec in specs]
    if any(as_text):  # Flink renders them (LTZ in the session zone); see the module docstring
        table = table.select(
            *[
                col(c).cast(DataTypes.STRING()).alias(c) if text else col(c)
                for c, text in zip(columns, as_text, strict=True)
            ]
        )
    result: dict[str, Any] = {"columns": columns, "types": [str(t) for t in j_types]}
    try:
        if os.environ.get("CLICKSTREAM_ORACLE_FETCH") == "rows":
            raise BulkFetchUnavailable("CLICKSTREAM_ORACLE_FETCH=rows")
        zone = str(t_env.get_config().get_local_timezone())
        result["changelog"] = collect_bulk(table, specs, zone)
        result["fetch"] = "bulk"
    except BulkFetchUnavailable:
        result["fetch_error"] = traceback.format_exc()
        result["changelog"] = collect_rows(table, specs)
        result["fetch"] = "rows"
    return result


_SET = re.compile(r"^SET\s+'((?:[^']|'')+)'\s*=\s*'((?:[^']|'')*)'$", re.IGNORECASE | re.DOTALL)


def _statement(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


def execute_setup(t_env: Any, stmt: str) -> None:
    """``SET 'k' = 'v'`` goes to the TableConfig (``executeSql`` refuses SET); the rest runs."""
    m = _SET.match(stmt)
    if m:
        key, value = (g.replace("''", "'") for g in m.groups())
        t_env.get_config().set(key, value)
    else:
        t_env.execute_sql(stmt)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} SPEC.json OUT.json", file=sys.stderr)
        return 2
    started = time.monotonic()
    # Before the JVM starts: PyFlink converts TIMESTAMP values through the local time zone.
    os.environ["TZ"] = "UTC"
    time.tzset()
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    t_env = StreamTableEnvironment.create(env, environment_settings=EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("table.local-time-zone", "UTC")
    # A watermark after every event that advances it (not every 200 ms): deterministic.
    t_env.get_config().set("pipeline.auto-watermark-interval", "0")
    for i, stmt in enumerate(spec.get("setup", [])):
        try:
            execute_setup(t_env, _statement(stmt))
        except Exception as e:
            traceback.print_exc()
            # Last on stderr, where callers look (the traceback above ends in Java frames).
            message = "\n".join(str(e).strip().splitlines()[:12])
            print(f"\nsetup statement {i} failed:\n{stmt}\n{message}", file=sys.stderr)
            return 1
    out: dict[str, Any] = {}
    startup = time.monotonic() - started
    for name, sql in spec.get("queries", {}).items():
        q_started = time.monotonic()
        try:
            out[name] = run_query(t_env, _statement(sql))
        except Exception:
            out[name] = {"error": traceback.format_exc()}
        out[name]["seconds"] = round(time.monotonic() - q_started, 3)
    try:
        from pyflink.version import __version__ as flink_version
    except ImportError:  # pragma: no cover
        flink_version = "?"
    out["__runner__"] = {
        "flink": flink_version,
        "startup_seconds": round(startup, 3),
        "total_seconds": round(time.monotonic() - started, 3),
    }
    with open(argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
