"""Dimension tables into SQLite, PostgreSQL (psycopg) and MariaDB (PyMySQL)."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from clickstream.simulate import make_generator
from clickstream.simulate.base import Table
from clickstream.simulate.dimension import write_dimensions


def sample_table() -> Table:
    # a name of its own: other tests use the same databases at the same time
    name = f"sim_dim_{uuid.uuid4().hex[:10]}"
    return Table(
        name,
        (("id", "BIGINT"), ("name", "TEXT"), ("price", "DOUBLE")),
        [(1, "lamp", 19.99), (2, "chair", 49.5), (3, None, 0.0)],
    )


@pytest.mark.parametrize("form", ["path", "sqlite:", "jdbc:sqlite:"])
def test_sqlite(tmp_path, form):
    db = tmp_path / "sub" / "dim.db"
    target = str(db) if form == "path" else f"{form}{db}"
    table = sample_table()
    assert write_dimensions(target, [table]) == [table.name]
    write_dimensions(target, [table])  # again: replaced, not appended
    with sqlite3.connect(db) as conn:
        assert conn.execute(f'SELECT * FROM "{table.name}" ORDER BY id').fetchall() == table.rows


@pytest.mark.parametrize("kind", ["tianchi", "ecommerce", "ksql-clickstream", "users-clicks", "checkouts"])
def test_every_kind_has_dimension_tables(tmp_path, kind):
    tables = make_generator(kind).dimensions()
    assert tables and all(t.rows for t in tables)
    write_dimensions(str(tmp_path / "d.db"), tables)


def test_unsupported_scheme():
    with pytest.raises(ValueError, match="unsupported --dimension scheme 'oracle'"):
        write_dimensions("oracle://db", [sample_table()])


@pytest.mark.integration
def test_postgres(postgres_url):
    import psycopg

    table = sample_table()
    write_dimensions(postgres_url, [table])
    url = postgres_url.removeprefix("jdbc:")
    with psycopg.connect(url) as conn:
        try:
            rows = conn.execute(f'SELECT id, name, price FROM "{table.name}" ORDER BY id').fetchall()
            assert rows == table.rows
        finally:
            conn.execute(f'DROP TABLE "{table.name}"')


@pytest.mark.integration
def test_mariadb(mariadb_url):
    import pymysql

    table = sample_table()
    write_dimensions(mariadb_url, [table])
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test")
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT id, name, price FROM `{table.name}` ORDER BY id")
            assert [tuple(r) for r in cursor.fetchall()] == table.rows
            cursor.execute(f"DROP TABLE `{table.name}`")
    finally:
        conn.close()


@pytest.mark.integration
def test_generated_users_table_in_postgres(postgres_url):
    import psycopg

    users = make_generator("checkouts").dimensions()[0]
    table = Table(f"sim_users_{uuid.uuid4().hex[:10]}", users.columns, users.rows)
    write_dimensions(postgres_url.replace("jdbc:postgresql://", "postgresql://"), [table])
    with psycopg.connect(postgres_url.removeprefix("jdbc:")) as conn:
        try:
            (count,) = conn.execute(f'SELECT COUNT(*) FROM "{table.name}"').fetchone()
            assert count == len(users.rows)
        finally:
            conn.execute(f'DROP TABLE "{table.name}"')
