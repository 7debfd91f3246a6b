"""A user mistake gets one message with line, column and what was expected; never a traceback."""

from __future__ import annotations

import io

import pytest

from clickstream.engine import Engine
from clickstream.errors import (
    CatalogError,
    PlanningError,
    SqlError,
    SqlParseError,
    SqlValidationError,
    UnsupportedFeatureError,
)

DDL = """CREATE TABLE ub (
    user_id BIGINT,
    behavior STRING,
    ts TIMESTAMP_LTZ(3),
    proctime AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE sink (a BIGINT, b BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE append_only (a STRING, b BIGINT) WITH ('connector' = 'jdbc',
    'url' = 'jdbc:sqlite::memory:', 'table-name' = 'x');
"""
DDL_LINES = DDL.count("\n")


def error_of(script: str) -> SqlError:
    with pytest.raises(SqlError) as info:
        Engine(out=io.StringIO()).execute_script(DDL + script, "job.sql")
    return info.value


def test_syntax_error_position():
    error = error_of("SELECT user_id FROM ub WHERE;")
    assert isinstance(error, SqlParseError)
    assert (error.line, error.col) == (DDL_LINES + 1, 24)
    assert "WHERE" in str(error) and "line" in str(error)
    assert "^" in str(error)  # the caret under the token


def test_unknown_table():
    error = error_of("INSERT INTO sink SELECT a, b FROM nope;")
    assert isinstance(error, CatalogError)
    assert "nope" in error.message
    assert error.line == DDL_LINES + 1 and error.col == 35


def test_unknown_column_names_the_candidates():
    error = error_of("INSERT INTO sink\nSELECT user_idd, 1 FROM ub;")
    assert isinstance(error, SqlValidationError)
    assert "user_idd" in error.message
    assert "user_id" in error.hint
    assert (error.line, error.col) == (DDL_LINES + 2, 8)


def test_unknown_function():
    error = error_of("INSERT INTO sink SELECT FROBNICATE(user_id), 1 FROM ub;")
    assert isinstance(error, SqlValidationError)
    assert "FROBNICATE" in error.message


def test_type_mismatch_into_sink():
    error = error_of("INSERT INTO sink SELECT behavior, 1 FROM ub;")
    assert isinstance(error, SqlValidationError)
    assert "Incompatible types" in error.message and "STRING" in error.message


def test_wrong_column_count():
    error = error_of("INSERT INTO sink SELECT user_id FROM ub;")
    assert "Different number of columns" in error.message


def test_not_grouped_column():
    error = error_of("INSERT INTO sink SELECT user_id, COUNT(*) FROM ub GROUP BY behavior;")
    assert "not being grouped" in error.message


def test_unknown_column_in_a_grouped_query_is_not_found_not_ungrouped():
    # as Flink: "Column 'user_idd' not found in any table", before any GROUP BY check
    error = error_of("SELECT user_idd, COUNT(*) FROM ub GROUP BY user_id;")
    assert error.message == "Column 'user_idd' not found in any table"
    assert error.hint.startswith("Did you mean 'user_id'?")
    assert (error.line, error.col) == (DDL_LINES + 1, 8)


def test_ambiguous_column_in_a_grouped_query():
    error = error_of(
        "SELECT user_id, COUNT(*) FROM ub a JOIN ub b ON a.user_id = b.user_id GROUP BY a.user_id;"
    )
    assert "ambiguous" in error.message


def test_the_hint_qualifies_columns_only_when_several_tables_are_in_scope():
    one = error_of("SELECT user_idd FROM ub;")
    assert one.hint == "Did you mean 'user_id'? Available columns: user_id, behavior, ts, proctime"
    two = error_of("SELECT a.user_idd FROM ub a JOIN ub b ON a.user_id = b.user_id;")
    assert "a.user_id, a.behavior" in two.hint and "b.user_id" in two.hint


def test_updating_query_into_append_only_sink_is_refused():
    error = error_of("INSERT INTO append_only SELECT behavior, COUNT(*) FROM ub GROUP BY behavior;")
    assert isinstance(error, PlanningError)
    assert "doesn't support consuming update changes" in error.message
    assert "GroupAggregate" in error.message
    assert "PRIMARY KEY" in error.hint


def test_session_window_on_processing_time_is_refused():
    error = error_of(
        "INSERT INTO sink SELECT user_id, COUNT(*) FROM ub "
        "GROUP BY user_id, SESSION(proctime, INTERVAL '1' HOUR);"
    )
    assert isinstance(error, UnsupportedFeatureError)
    assert "processing-time" in error.message


@pytest.mark.parametrize(
    "statement,feature",
    [
        (
            "INSERT INTO sink SELECT user_id, 1 FROM ub a WHERE EXISTS "
            "(SELECT 1 FROM ub b WHERE b.user_id = a.user_id GROUP BY b.item_id);",
            "correlated subquery with GROUP BY",
        ),
        ("INSERT INTO sink SELECT a.user_id, 1 FROM ub a CROSS JOIN ub b;", "CROSS JOIN"),
        ("INSERT INTO sink WITH RECURSIVE r AS (SELECT 1) SELECT user_id, 1 FROM ub;", "RECURSIVE"),
        ("CREATE FUNCTION f AS 'x';", "CREATE FUNCTION"),
    ],
)
def test_unsupported_features_are_named(statement, feature):
    error = error_of(statement)
    assert isinstance(error, UnsupportedFeatureError)
    assert feature.lower() in error.message.lower()


def test_bad_option_value():
    error = error_of("SET 'table.exec.mini-batch.size' = 'many';")
    assert "integer" in error.message


def test_secret_never_in_errors_or_describe():
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        "CREATE TABLE d (k BIGINT) WITH ('connector'='jdbc', "
        "'url'='jdbc:postgresql://127.0.0.1:1/none', 'table-name'='d', "
        "'password'='s3cret-pw');"
    )
    assert "s3cret-pw" not in str(engine.catalog.table("d").public_options())


def test_cli_prints_message_not_traceback(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "bad.sql"
    script.write_text("SELECT * FROM missing_table;\n")
    result = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "run", str(script)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "missing_table" in result.stderr
    assert "Traceback" not in result.stderr
