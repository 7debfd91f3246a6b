"""CREATE TEMPORARY TABLE / VIEW, CREATE TABLE ... LIKE, SHOW VIEWS / FUNCTIONS / CREATE TABLE / VIEW."""

from __future__ import annotations

import io

import pytest

from clickstream.engine import Engine
from clickstream.errors import ClickstreamError

BASE = """
CREATE TABLE t1 (id INT, name STRING, ts TIMESTAMP(3), c AS id + 1, PRIMARY KEY (id) NOT ENFORCED,
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector' = 'filesystem', 'path' = '/tmp/none.json', 'format' = 'json');
"""


def run(script: str, engine: Engine | None = None) -> str:
    out = io.StringIO()
    engine = engine or Engine()
    engine.out = out
    engine.execute_script(script)
    return out.getvalue()


def test_seed_004_temporary_jdbc_table(tmp_path):
    # code/source/users.sql of the kafka_flink seed, with its placeholders filled in
    text = run(
        f"""
        CREATE TEMPORARY TABLE users (
            id INT,
            username STRING,
            PASSWORD STRING,
            PRIMARY KEY (id) NOT ENFORCED
        ) WITH (
            'connector' = 'jdbc',
            'url' = 'jdbc:sqlite:{tmp_path}/users.db',
            'table-name' = 'users',
            'username' = 'postgres',
            'password' = 'postgres',
            'driver' = 'org.postgresql.Driver'
        );
        SHOW TABLES;
        SHOW CREATE TABLE users;
        """
    )
    assert "\nusers\n" in text
    assert (
        "CREATE TEMPORARY TABLE `default_catalog`.`default_database`.`users` (\n  `id` INT NOT NULL," in text
    )
    assert "'password' = '******'" in text and "postgres'" in text  # the secret is masked, the user is not


def test_show_create_table_as_flink_prints_it():
    text = run(BASE + "SHOW CREATE TABLE t1;")
    assert text.split("\n", 1)[1] == (
        "CREATE TABLE `default_catalog`.`default_database`.`t1` (\n"
        "  `id` INT NOT NULL,\n"
        "  `name` VARCHAR(2147483647),\n"
        "  `ts` TIMESTAMP(3),\n"
        "  `c` AS `id` + 1,\n"
        "  WATERMARK FOR `ts` AS `ts` - INTERVAL '5' SECOND,\n"
        "  CONSTRAINT `PK_id` PRIMARY KEY (`id`) NOT ENFORCED\n"
        ")\n"
        "WITH (\n"
        "  'connector' = 'filesystem',\n"
        "  'format' = 'json',\n"
        "  'path' = '/tmp/none.json'\n"
        ")\n"
    )


def test_temporary_view_show_views_and_show_create_view():
    text = run(
        BASE
        + """
        CREATE TEMPORARY VIEW tv AS SELECT id, CHAR_LENGTH(name) AS n FROM t1 WHERE id > 1;
        CREATE VIEW v1 AS SELECT id FROM t1;
        SHOW VIEWS;
        SHOW CREATE VIEW tv;
        DROP TEMPORARY VIEW tv;
        SHOW VIEWS;
        """
    )
    assert "\ntv\nv1\n" in text
    assert (
        "CREATE TEMPORARY VIEW `default_catalog`.`default_database`.`tv` (\n  `id`,\n  `n`\n)\n"
        "AS SELECT `id`, CHAR_LENGTH(`name`) AS `n` FROM `t1` WHERE `id` > 1\n"
    ) in text
    assert text.endswith("[INFO] Execute statement succeeded.\nv1\n")


def test_show_functions_lists_what_queries_can_call():
    names = run("SHOW FUNCTIONS;").split()
    assert names == sorted(names)
    assert {"COUNT", "DATE_FORMAT", "TUMBLE", "TO_TIMESTAMP_LTZ", "UPPER", "COALESCE"} <= set(names)
    assert run("SHOW USER FUNCTIONS;").split() == names


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("SHOW CREATE TABLE nope", "Table with identifier 'nope' does not exist"),
        ("SHOW CREATE VIEW t1", "SHOW CREATE VIEW is only supported for views, but 't1' is a table"),
        ("SHOW CREATE TABLE v1", "SHOW CREATE TABLE is only supported for tables, but 'v1' is a view"),
    ],
)
def test_show_create_of_the_wrong_kind(statement, message):
    engine = Engine(out=io.StringIO())
    engine.execute_script(BASE + "CREATE VIEW v1 AS SELECT id FROM t1;")
    with pytest.raises(ClickstreamError, match=message):
        engine.execute_script(statement + ";")


def test_like_merges_as_flink_does():
    text = run(
        BASE
        + """
        CREATE TABLE t2 (x INT, c AS id * 2, WATERMARK FOR ts AS ts) WITH ('path' = '/other')
        LIKE t1 (OVERWRITING GENERATED OVERWRITING WATERMARKS);
        SHOW CREATE TABLE t2;
        CREATE TABLE t3 LIKE t1 (EXCLUDING ALL INCLUDING OPTIONS);
        SHOW CREATE TABLE t3;
        """
    )
    t2, t3 = text.split("CREATE TABLE")[1:]
    assert "`x` INT,\n  `c` AS `id` * 2,\n  WATERMARK FOR `ts` AS `ts`,\n  CONSTRAINT `PK_id`" in t2
    assert "'path' = '/other'" in t2 and "'format' = 'json'" in t2
    assert "`c` AS" not in t3 and "WATERMARK" not in t3 and "CONSTRAINT" not in t3
    assert "'path' = '/tmp/none.json'" in t3


@pytest.mark.parametrize(
    ("like", "message"),
    [
        ("t2 (id INT) LIKE t1", "A column named 'id' already exists in the base table."),
        (
            "t2 (x INT) WITH ('format' = 'csv') LIKE t1 (INCLUDING OPTIONS)",
            "There already exists an option ['format' -> 'json']  in the base table.",
        ),
        ("t2 (x INT, PRIMARY KEY (x) NOT ENFORCED) LIKE t1", "The base table already has a primary key."),
        ("t2 (WATERMARK FOR ts AS ts) LIKE t1", "There already exists a watermark spec for column 'ts'"),
        ("t2 (c AS id * 2) LIKE t1", "A generated column named 'c' already exists in the base table."),
        ("t2 (x INT) LIKE t1 (OVERWRITING ALL)", "Illegal merging strategy 'OVERWRITING' for 'ALL' option."),
        (
            "t2 (x INT) LIKE t1 (OVERWRITING CONSTRAINTS)",
            "Illegal merging strategy 'OVERWRITING' for 'CONSTRAINTS'",
        ),
        (
            "t2 (x INT) LIKE t1 (EXCLUDING ALL INCLUDING ALL)",
            "Each like option feature can be declared only once.",
        ),
        ("t2 (x INT) LIKE nope", "Source table 'nope' of the LIKE clause not found in the catalog"),
        ("t2 (x INT) LIKE v1", "Source table 'v1' of the LIKE clause can not be a VIEW"),
        ("t2 LIKE t1 (EXCLUDING GENERATED EXCLUDING WATERMARKS) ", None),
    ],
)
def test_like_conflicts_are_refused_with_flinks_message(like, message):
    engine = Engine(out=io.StringIO())
    engine.execute_script(BASE + "CREATE VIEW v1 AS SELECT id FROM t1;")
    script = f"CREATE TABLE {like};"
    if message is None:
        engine.execute_script(script)
        return
    with pytest.raises(ClickstreamError) as raised:
        engine.execute_script(script)
    assert message in raised.value.message
    # positioned at the LIKE clause's source table, as Flink positions its errors
    assert (raised.value.line, raised.value.col) == (1, script.index(" LIKE ") + 7), str(raised.value)
