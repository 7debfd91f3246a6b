"""SET, SHOW TABLES, DESCRIBE, EXPLAIN, DROP, views, STATEMENT SET, SELECT and the print sink."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from clickstream.engine import Engine
from clickstream.errors import CatalogError
from tests.engine.conftest import SOURCE_DDL


def run(script: str) -> str:
    out = io.StringIO()
    Engine(out=out).execute_script(script)
    return out.getvalue()


def test_show_tables_and_describe(events_file):
    text = run(
        SOURCE_DDL.format(path=events_file)
        + """
        CREATE VIEW buys AS SELECT user_id, ts FROM user_behavior WHERE behavior = 'buy';
        SHOW TABLES;
        DESCRIBE user_behavior;
        DESCRIBE buys;
    """
    )
    assert "buys\nuser_behavior" in text
    assert "TIMESTAMP_LTZ(3) *ROWTIME*" in text
    assert "*PROCTIME*" in text and "AS PROCTIME()" in text
    assert "`ts` - INTERVAL '5' SECOND" in text or "ts - INTERVAL '5' SECOND" in text


def test_explain_shows_the_operators(events_file):
    text = run(
        SOURCE_DDL.format(path=events_file)
        + """
        CREATE TABLE out_t (h BIGINT, c BIGINT) WITH ('connector' = 'blackhole');
        EXPLAIN INSERT INTO out_t SELECT HOUR(TUMBLE_START(ts, INTERVAL '1' HOUR)), COUNT(*)
        FROM user_behavior WHERE behavior = 'buy' GROUP BY TUMBLE(ts, INTERVAL '1' HOUR);
    """
    )
    assert "WindowAggregate" in text and "TUMBLE" in text and "TableSourceScan" in text
    assert "Sink(table=[out_t]" in text


def test_statement_set_and_print_format(events_file, capsys):
    run(
        "SET 'table.exec.mini-batch.size' = '5000';"
        + SOURCE_DDL.format(path=events_file)
        + """
        CREATE TABLE p1 (behavior STRING, n BIGINT) WITH ('connector' = 'print',
            'print-identifier' = 'counts');
        CREATE TABLE p2 (d STRING, n BIGINT) WITH ('connector' = 'print');
        EXECUTE STATEMENT SET BEGIN
        INSERT INTO p1 SELECT behavior, COUNT(*) FROM user_behavior GROUP BY behavior;
        INSERT INTO p2 SELECT CAST(window_start AS STRING), COUNT(*)
          FROM TABLE(TUMBLE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '1' DAY))
          GROUP BY window_start, window_end;
        END;
    """
    )
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("counts> +I[pv, ") for line in lines)
    assert any(line.startswith("counts> -U[pv, ") for line in lines)
    assert any(line.startswith("counts> +U[pv, ") for line in lines)
    # CAST(TIMESTAMP(3) AS STRING) keeps the milliseconds, as Flink prints it
    assert any(line.startswith("+I[2017-11-25 00:00:00.000, ") for line in lines)


def test_drop_and_recreate(events_file):
    text = run(
        SOURCE_DDL.format(path=events_file)
        + """
        DROP TABLE user_behavior;
        DROP TABLE IF EXISTS user_behavior;
        SHOW TABLES;
    """
    )
    assert "Empty set" in text
    with pytest.raises(CatalogError):
        run("DROP VIEW nope;")


def test_set_shows_options():
    text = run("SET 'table.local-time-zone' = 'Europe/Berlin'; SET;")
    assert "'table.local-time-zone' = 'Europe/Berlin'" in text
    assert "'table.exec.mini-batch.size'" in text


def test_select_prints_changelog(events_file):
    text = run(
        SOURCE_DDL.format(path=events_file)
        + """
        SELECT behavior, COUNT(*) AS n FROM user_behavior WHERE behavior = 'buy'
        GROUP BY behavior;
    """
    )
    assert "op | behavior | n" in text
    assert "+I[buy, " in text


def test_cli_run_exits_zero_with_file_sources(tmp_path, events_file):
    script = tmp_path / "job.sql"
    script.write_text(
        SOURCE_DDL.format(path=events_file)
        + """
        CREATE TABLE out_t (h BIGINT, c BIGINT) WITH ('connector' = 'jdbc',
            'url' = 'jdbc:sqlite:%s', 'table-name' = 'hourly');
        INSERT INTO out_t SELECT HOUR(TUMBLE_START(ts, INTERVAL '1' HOUR)), COUNT(*)
        FROM user_behavior WHERE behavior = 'buy' GROUP BY TUMBLE(ts, INTERVAL '1' HOUR);
    """
        % (tmp_path / "r.db")
    )
    result = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "run", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "late dropped" in result.stderr  # the final status table
    import sqlite3

    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("SELECT count(*) FROM hourly").fetchone()[0] >= 24
    assert (tmp_path / "dead-letters" / "user_behavior.jsonl").exists()


def test_filter_is_pushed_below_the_lookup_join(events_file, category_db):
    text = run(
        SOURCE_DDL.format(path=events_file)
        + f"""
        CREATE TABLE category_dim (sub_category_id BIGINT, parent_category_name STRING)
            WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{category_db}',
                  'table-name' = 'category');
        CREATE TABLE top_category (category_name STRING PRIMARY KEY NOT ENFORCED, n BIGINT)
            WITH ('connector' = 'blackhole');
        CREATE VIEW rich AS SELECT U.behavior, C.parent_category_name AS category_name
        FROM user_behavior AS U LEFT JOIN category_dim FOR SYSTEM_TIME AS OF U.proctime AS C
        ON U.category_id = C.sub_category_id;
        EXPLAIN INSERT INTO top_category SELECT category_name, COUNT(*) FROM rich
        WHERE behavior = 'buy' GROUP BY category_name;
    """
    )
    plan = text[text.index("LookupJoin") :]
    assert "where=[\"behavior\" = 'buy']" in plan  # also applied before the lookups
