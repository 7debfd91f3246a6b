"""The seed's three analyses (seeds/000) as SQL for each system under test.

Standard library only: `flink_job` imports this module from PyFlink's venv, where neither
clickstream nor duckdb is installed.

* clickstream runs the seed exactly as `tests/engine/test_seed.py` does (filesystem json source,
  jdbc sqlite lookup table), with `blackhole` or `jdbc` sqlite sinks.
* PyFlink runs the same source and statements into `blackhole` sinks. Its wheel has no JDBC
  connector, so the dimension is a bounded `filesystem` csv table joined with a regular
  `LEFT JOIN` instead of a lookup join `FOR SYSTEM_TIME AS OF U.proctime`.
* DuckDB runs one batch query per analysis over `read_json(...)` of the same file.
"""

from __future__ import annotations

SOURCE_DDL = """
CREATE TABLE user_behavior (
    user_id BIGINT,
    item_id BIGINT,
    category_id BIGINT,
    behavior STRING,
    ts TIMESTAMP_LTZ(3),
    proctime AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    {options}
)"""

FILE_SOURCE = """'connector' = 'filesystem',
    'path' = '{path}',
    'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601'"""

# The same records in a topic of the embedded log, read up to its end offsets at the job's start.
LOG_SOURCE = """'connector' = 'log',
    'path' = '{root}',
    'topic' = '{topic}',
    'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601',
    'scan.bounded.mode' = 'latest-offset'"""

# The same records in a Kafka topic, read from its start up to its end offsets at the job's start.
KAFKA_SOURCE = """'connector' = 'kafka',
    'topic' = '{topic}',
    'properties.bootstrap.servers' = '{bootstrap}',
    'scan.startup.mode' = 'earliest-offset',
    'scan.bounded.mode' = 'latest-offset',
    'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601'"""

SINKS_DDL = """
CREATE TABLE buy_cnt_per_hour (
    hour_of_day BIGINT,
    buy_cnt BIGINT
) WITH ({hourly_sink});

CREATE TABLE cumulative_uv (
    date_str STRING,
    time_str STRING,
    uv BIGINT,
    PRIMARY KEY (date_str, time_str) NOT ENFORCED
) WITH ({uv_sink});

CREATE TABLE top_category (
    category_name STRING PRIMARY KEY NOT ENFORCED,
    buy_cnt BIGINT
) WITH ({top_sink})"""

JDBC_DIM_DDL = """
CREATE TABLE category_dim (
   sub_category_id BIGINT,
   parent_category_name STRING
) WITH (
   'connector' = 'jdbc',
   'url' = 'jdbc:sqlite:{db}',
   'table-name' = 'category',
   'username' = 'root',
   'password' = '123456',
   'lookup.cache.max-rows' = '5000',
   'lookup.cache.ttl' = '10min'
)"""

CSV_DIM_DDL = """
CREATE TABLE category_dim (
   sub_category_id BIGINT,
   parent_category_name STRING
) WITH (
   'connector' = 'filesystem',
   'path' = '{csv}',
   'format' = 'csv'
)"""

LOOKUP_VIEW = """
CREATE VIEW rich_user_behavior AS
SELECT U.user_id, U.item_id, U.behavior, C.parent_category_name as category_name
FROM user_behavior AS U LEFT JOIN category_dim FOR SYSTEM_TIME AS OF U.proctime AS C
ON U.category_id = C.sub_category_id"""

REGULAR_JOIN_VIEW = """
CREATE VIEW rich_user_behavior AS
SELECT U.user_id, U.item_id, U.behavior, C.parent_category_name as category_name
FROM user_behavior AS U LEFT JOIN category_dim AS C
ON U.category_id = C.sub_category_id"""

HOURLY_INSERT = """
INSERT INTO buy_cnt_per_hour
SELECT HOUR(TUMBLE_START(ts, INTERVAL '1' HOUR)), COUNT(*)
FROM user_behavior
WHERE behavior = 'buy'
GROUP BY TUMBLE(ts, INTERVAL '1' HOUR)"""

UV_INSERT = """
INSERT INTO cumulative_uv
SELECT date_str, MAX(time_str), COUNT(DISTINCT user_id) as uv
FROM (
  SELECT
    DATE_FORMAT(ts, 'yyyy-MM-dd') as date_str,
    SUBSTR(DATE_FORMAT(ts, 'HH:mm'),1,4) || '0' as time_str,
    user_id
  FROM user_behavior)
GROUP BY date_str"""

TOP_INSERT = """
INSERT INTO top_category
SELECT category_name, COUNT(*) buy_cnt
FROM rich_user_behavior
WHERE behavior = 'buy'
GROUP BY category_name"""

INSERTS = (HOURLY_INSERT, UV_INSERT, TOP_INSERT)
SINK_TABLES = ("buy_cnt_per_hour", "cumulative_uv", "top_category")

# The tianchi workload's fourth analysis: the cumulative UV as Flink's CUMULATE window (the
# seed's GROUP BY date_str, as a window per 10-minute step of each day that fires once).
CUMULATE_SINK_DDL = """
CREATE TABLE uv_per_10min (
    window_end STRING,
    uv BIGINT
) WITH ({sink})"""

CUMULATE_INSERT = """
INSERT INTO uv_per_10min
SELECT DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm'), COUNT(DISTINCT user_id)
FROM TABLE(CUMULATE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '10' MINUTES, INTERVAL '1' DAY))
GROUP BY window_start, window_end"""

BLACKHOLE = "'connector' = 'blackhole'"


def _sink_options(kind: str, results_db: str | None, table: str) -> str:
    if kind == "blackhole":
        return BLACKHOLE
    if kind == "sqlite":
        assert results_db is not None
        return f"'connector' = 'jdbc', 'url' = 'jdbc:sqlite:{results_db}', 'table-name' = '{table}'"
    raise ValueError(f"unknown sink kind {kind!r}")


def _sinks(kind: str, results_db: str | None) -> str:
    return SINKS_DDL.format(
        hourly_sink=_sink_options(kind, results_db, "buy_cnt_per_hour"),
        uv_sink=_sink_options(kind, results_db, "cumulative_uv"),
        top_sink=_sink_options(kind, results_db, "top_category"),
    )


def _cumulate(kind: str, results_db: str | None) -> list[str]:
    """The CUMULATE analysis's sink DDL and INSERT."""
    return [CUMULATE_SINK_DDL.format(sink=_sink_options(kind, results_db, "uv_per_10min")), CUMULATE_INSERT]


def file_source(events: str) -> str:
    return SOURCE_DDL.format(options=FILE_SOURCE.format(path=events))


def log_source(root: str, topic: str) -> str:
    return SOURCE_DDL.format(options=LOG_SOURCE.format(root=root, topic=topic))


def kafka_source(bootstrap: str, topic: str) -> str:
    return SOURCE_DDL.format(options=KAFKA_SOURCE.format(bootstrap=bootstrap, topic=topic))


# Only reading: the source's physical columns into a blackhole, no query work beyond a projection.
READ_ONLY = """
CREATE TABLE events_out (
    user_id BIGINT,
    item_id BIGINT,
    category_id BIGINT,
    behavior STRING,
    ts TIMESTAMP_LTZ(3)
) WITH ('connector' = 'blackhole');

INSERT INTO events_out SELECT user_id, item_id, category_id, behavior, ts FROM user_behavior"""


def read_only_script(source: str) -> str:
    """The `user_behavior` source (a `file_source`, `log_source` or `kafka_source` DDL) read to
    its end into a blackhole: the cost of reading and decoding alone."""
    return ";\n".join(p.strip() for p in (source, READ_ONLY)) + ";\n"


def clickstream_script(
    events: str,
    dim_db: str,
    sinks: str,
    results_db: str | None = None,
    dead_letters: str | None = None,
    source: str | None = None,
    cumulate: bool = False,
) -> str:
    """The seed as `tests/engine/test_seed.py` runs it; `sinks` is 'blackhole' or 'sqlite'.
    `source`: another `user_behavior` DDL (`log_source`) than the json file `events`;
    `cumulate`: also the CUMULATE analysis (the tianchi workload)."""
    parts = []
    if dead_letters:
        parts.append(f"SET 'dead-letter.dir' = '{dead_letters}'")
    parts += [
        source or file_source(events),
        _sinks(sinks, results_db),
        JDBC_DIM_DDL.format(db=dim_db),
        HOURLY_INSERT,
        UV_INSERT,
        LOOKUP_VIEW,
        TOP_INSERT,
        *(_cumulate(sinks, results_db) if cumulate else []),
    ]
    return ";\n".join(p.strip() for p in parts) + ";\n"


def flink_statements(events: str, dim_csv: str, cumulate: bool = False) -> tuple[list[str], list[str]]:
    """(setup statements, INSERTs for one STATEMENT SET) for PyFlink, all sinks `blackhole`;
    `cumulate`: also the CUMULATE analysis (the tianchi workload)."""
    setup = [
        file_source(events),
        *_sinks("blackhole", None).split(";"),
        CSV_DIM_DDL.format(csv=dim_csv),
        REGULAR_JOIN_VIEW,
    ]
    inserts = list(INSERTS)
    if cumulate:
        sink_ddl, insert = _cumulate("blackhole", None)
        setup.append(sink_ddl)
        inserts.append(insert)
    return [s.strip() for s in setup if s.strip()], [s.strip() for s in inserts]


def duckdb_source(events: str) -> str:
    columns = (
        "{'user_id': 'BIGINT', 'item_id': 'BIGINT', 'category_id': 'BIGINT', "
        "'behavior': 'VARCHAR', 'ts': 'TIMESTAMP'}"
    )
    return f"read_json('{events}', format = 'newline_delimited', columns = {columns})"


def duckdb_queries(events: str, dim_csv: str, cumulate: bool = False) -> dict[str, str]:
    """One batch query per analysis; `ts` is read as a UTC TIMESTAMP (the session zone is UTC).
    `cumulate`: also the CUMULATE analysis (the tianchi workload)."""
    src = duckdb_source(events)
    queries = _seed_duckdb_queries(src, dim_csv)
    if cumulate:
        queries["uv_per_10min"] = duckdb_cumulate_query(src)
    return queries


def duckdb_cumulate_query(src: str) -> str:
    """CUMULATE(ts, 10 min, 1 day) with COUNT(DISTINCT user_id), as a batch: each (day, user)'s
    first 10-minute step, and at every step end from the day's first non-empty step (the windows
    Flink fires) the users first seen before it."""
    return f"""
        WITH firsts AS (
          SELECT time_bucket(INTERVAL 1 DAY, ts) AS day,
                 time_bucket(INTERVAL 10 MINUTE, min(ts)) + INTERVAL 10 MINUTE AS first_end
          FROM {src} GROUP BY day, user_id),
        new_users AS (SELECT day, first_end, count(*) AS n FROM firsts GROUP BY ALL),
        ends AS (
          SELECT day, unnest(generate_series(min(first_end), day + INTERVAL 1 DAY, INTERVAL 10 MINUTE))
                 AS window_end
          FROM new_users GROUP BY day)
        SELECT strftime(e.window_end, '%Y-%m-%d %H:%M') AS window_end, sum(u.n) AS uv
        FROM ends AS e JOIN new_users AS u ON u.day = e.day AND u.first_end <= e.window_end
        GROUP BY e.window_end"""


def _seed_duckdb_queries(src: str, dim_csv: str) -> dict[str, str]:
    dim = (
        f"read_csv('{dim_csv}', header = false, "
        "columns = {'sub_category_id': 'BIGINT', 'parent_category_name': 'VARCHAR'})"
    )
    return {
        "buy_cnt_per_hour": f"""
            SELECT hour(time_bucket(INTERVAL 1 HOUR, ts)) AS hour_of_day, count(*) AS buy_cnt
            FROM {src}
            WHERE behavior = 'buy'
            GROUP BY time_bucket(INTERVAL 1 HOUR, ts)""",
        "cumulative_uv": f"""
            SELECT date_str, max(time_str) AS time_str, count(DISTINCT user_id) AS uv
            FROM (
              SELECT strftime(ts, '%Y-%m-%d') AS date_str,
                     substr(strftime(ts, '%H:%M'), 1, 4) || '0' AS time_str,
                     user_id
              FROM {src})
            GROUP BY date_str""",
        "top_category": f"""
            SELECT C.parent_category_name AS category_name, count(*) AS buy_cnt
            FROM {src} AS U LEFT JOIN {dim} AS C ON U.category_id = C.sub_category_id
            WHERE U.behavior = 'buy'
            GROUP BY C.parent_category_name""",
    }
