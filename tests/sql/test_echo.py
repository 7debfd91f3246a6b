"""What an error echoes of the script: the line, exactly as written (brackets too, through the CLI's
rich console), except the values of secret options, which show as `******` with the caret still
under the token it points at."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from clickstream.engine import Engine
from clickstream.errors import (
    SqlError,
    SqlValidationError,
    echo_line,
    is_secret_option,
    mask_secrets,
    redact_secrets,
)

JDBC = (
    "CREATE TABLE d (k BIGINT) WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite::memory:', "
    "'table-name' = 'd', 'password' = 'hunter2-long', 'lookup.cache.ttl' = 'soon');"
)


def error_of(script: str) -> SqlError:
    with pytest.raises(SqlError) as info:
        Engine(out=io.StringIO()).execute_script(script, "job.sql")
    return info.value


def caret_target(text: str) -> str:
    """The echoed line from the caret on."""
    lines = text.splitlines()
    caret = lines[-1].index("^")
    return lines[-2][caret:]


def test_password_on_the_error_line_is_masked_and_the_caret_still_points_at_the_option():
    error = error_of(JDBC)
    text = str(error)
    assert "hunter2-long" not in text
    assert "'password' = '******'" in text
    assert caret_target(text).startswith("'lookup.cache.ttl' = 'soon'")


def test_caret_inside_a_secret_points_at_the_mask():
    sql = "SET 'password' = 'abcdefghijkl';\nSELECT 1;"
    shown, col = echo_line(sql, 1, sql.index("ghij") + 1)
    assert shown == "SET 'password' = '******';"
    assert shown[col - 1 :].startswith("******")
    # before the secret the column is unchanged; after it, moved by the length difference
    assert echo_line(sql, 1, 5) == (shown, 5)
    assert echo_line(sql, 1, sql.index("';") + 2) == (shown, shown.index("';") + 2)


def test_every_secret_on_a_line_and_across_lines_is_masked():
    sql = (
        "CREATE TABLE t (a INT) WITH ('password' = 'one1', 'properties.sasl.jaas.config' =\n"
        "  'org.apache.kafka...required username=\"u\" password=\"two2\";', 'x' = 'it''s');"
    )
    masked = mask_secrets(sql)
    assert "one1" not in masked and "two2" not in masked and "it''s" in masked
    assert masked.count("******") == 2
    assert echo_line(sql, 2, 3)[0] == "  '******', 'x' = 'it''s');"


def test_quotes_and_comments_do_not_confuse_the_masking():
    sql = (
        "-- 'password' = 'not-a-value'\n"
        "SELECT 'password' AS k, 'password = x' AS v FROM t WHERE s = 'password';\n"
        "SET 'password' = 'it''s-secret';"
    )
    masked = mask_secrets(sql)
    assert "it''s-secret" not in masked and "SET 'password' = '******';" in masked
    assert masked.splitlines()[1] == sql.splitlines()[1]


def test_secret_options_follow_flinks_sensitive_keys():
    assert is_secret_option("password") and is_secret_option("properties.ssl.key.password")
    assert is_secret_option("properties.sasl.jaas.config") and is_secret_option("some.secret")
    assert not is_secret_option("username") and not is_secret_option("url")


def test_a_secret_quoted_in_the_message_is_masked_too():
    sql = "CREATE TABLE t (a INT) WITH ('password' = s3cr3t-word);"
    error = SqlValidationError("syntax error near 's3cr3t-word'", 1, 44, sql=sql)
    assert "s3cr3t-word" not in str(error)
    assert redact_secrets("near 's3cr3t-word'", sql) == "near '******'"


def test_an_unquoted_password_is_masked_too():
    error = error_of(
        "CREATE TABLE d (k BIGINT) WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite::memory:',\n"
        "  'table-name' = 'd', 'password' = pa55word more);"
    )
    assert "pa55word" not in str(error)
    assert "LINE 2:   'table-name' = 'd', 'password' = ****** more);" in str(error)


# --- through the CLI ------------------------------------------------------------------------------


def run_cli(tmp_path, script: str) -> subprocess.CompletedProcess:
    path = tmp_path / "bad.sql"
    path.write_text(script)
    return subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "run", "--quiet", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_echoes_bracketed_text_exactly(tmp_path):
    line = "INSERT INTO snk SELECT REGEXP_EXTRACT(s, '([a-z]+)'), '[bold]x[/bold]' FROM srcx;"
    result = run_cli(
        tmp_path,
        "CREATE TABLE src (s STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '3');\n"
        "CREATE TABLE snk (a STRING, b STRING) WITH ('connector' = 'print');\n" + line + "\n",
    )
    assert result.returncode == 1, result.stderr
    assert f"LINE 3: {line}\n" in result.stderr
    # the caret sits under the unknown table, even on a line wider than the console
    lines = result.stderr.splitlines()
    echo = next(i for i, text in enumerate(lines) if text.startswith("LINE 3: "))
    assert lines[echo][lines[echo + 1].index("^") :].startswith("srcx;")


def test_cli_never_prints_the_password(tmp_path):
    result = run_cli(tmp_path, JDBC + "\n")
    assert result.returncode == 1
    assert "hunter2-long" not in result.stderr + result.stdout
    assert "'password' = '******'" in result.stderr
    assert "'lookup.cache.ttl' = 'soon' is not a duration" in result.stderr


def test_cli_refuses_a_misspelled_option_before_running(tmp_path):
    result = run_cli(
        tmp_path,
        f"CREATE TABLE e (a BIGINT) WITH ('connector' = 'log', 'path' = '{tmp_path / 'log'}',\n"
        "  'topic' = 'e', 'scan.bounded.mod' = 'latest-offset');\n"
        "CREATE TABLE p (a BIGINT) WITH ('connector' = 'print');\n"
        "INSERT INTO p SELECT a FROM e;\n",
    )
    assert result.returncode == 1
    assert "Unsupported options found for 'log'." in result.stderr
    assert "Hint: Did you mean 'scan.bounded.mode'?" in result.stderr


def test_explain_never_shows_the_password():
    script = (
        "CREATE TABLE s (k BIGINT, p AS PROCTIME()) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\n"
        "CREATE TABLE d (k BIGINT, v STRING) WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite::memory:', "
        "'table-name' = 'd', 'password' = 'hunter2-long');\n"
        "CREATE TABLE o (k BIGINT, v STRING) WITH ('connector' = 'print');\n"
        "INSERT INTO o SELECT s.k, d.v FROM s JOIN d FOR SYSTEM_TIME AS OF s.p ON s.k = d.k;"
    )
    plan = Engine(out=io.StringIO()).explain(script)
    assert "LookupJoin" in plan and "hunter2-long" not in plan


def test_a_password_inside_a_url_is_masked():
    sql = (
        "CREATE TABLE d (k BIGINT) WITH ('connector' = 'jdbc',\n"
        "  'url' = 'jdbc:mysql://root:rootpw1@127.0.0.1:3306/test', 'table-name' = 'd',\n"
        "  'url' = 'jdbc:postgresql://h/db?user=u&password=pgpass2&ssl=true', x);"
    )
    masked = mask_secrets(sql)
    assert "rootpw1" not in masked and "pgpass2" not in masked
    assert "'jdbc:mysql://root:******@127.0.0.1:3306/test'" in masked
    assert "'jdbc:postgresql://h/db?user=u&password=******&ssl=true'" in masked
    assert mask_secrets("SELECT 'http://a:b@c' FROM t") == "SELECT 'http://a:b@c' FROM t"  # not an option
    error = error_of(sql)
    assert "pgpass2" not in str(error) and "password=******" in str(error)
