"""Write a generator's dimension tables (`--dimension`) to SQLite, PostgreSQL or MariaDB/MySQL.

Targets: `sqlite:<path>` or a bare path; `postgresql://host:port/db?user=...` (psycopg);
`mysql://` or `mariadb://user:password@host:port/db` (PyMySQL). A `jdbc:` prefix is accepted,
so the URL a pipeline's JDBC table uses works here too. Tables are dropped and rewritten.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from clickstream.errors import CommandError
from clickstream.simulate.base import Table

# our column types -> each database's
TYPES = {
    "sqlite": {"BIGINT": "BIGINT", "DOUBLE": "REAL", "TEXT": "TEXT"},
    "postgresql": {"BIGINT": "BIGINT", "DOUBLE": "DOUBLE PRECISION", "TEXT": "TEXT"},
    "mysql": {"BIGINT": "BIGINT", "DOUBLE": "DOUBLE", "TEXT": "VARCHAR(255)"},
}


def _kind(target: str) -> tuple[str, str]:
    """(sqlite | postgresql | mysql, the target without `jdbc:`/`sqlite:`)."""
    bare = target.removeprefix("jdbc:")
    scheme = bare.split(":", 1)[0].lower() if "://" in bare else ""
    if scheme in ("postgresql", "postgres"):
        return "postgresql", bare
    if scheme in ("mysql", "mariadb"):
        return "mysql", bare
    if scheme:
        raise CommandError(
            f"unsupported --dimension scheme '{scheme}': use sqlite:<path>, postgresql://... or mysql://..."
        )
    return "sqlite", bare.removeprefix("sqlite:")


def _connect_mysql(url: str) -> Any:
    import pymysql

    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    return pymysql.connect(
        host=parts.hostname or "localhost",
        port=parts.port or 3306,
        user=unquote(parts.username) if parts.username else params.get("user", "root"),
        password=unquote(parts.password) if parts.password else params.get("password", ""),
        database=unquote(parts.path.lstrip("/")) or None,
        charset="utf8mb4",
    )


def _connect(kind: str, target: str) -> Any:
    if kind == "postgresql":
        import psycopg

        return psycopg.connect(target.replace("postgres://", "postgresql://", 1), connect_timeout=10)
    if kind == "mysql":
        return _connect_mysql(target)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    return sqlite3.connect(target)


def _quote(kind: str, name: str) -> str:
    return f"`{name}`" if kind == "mysql" else f'"{name}"'


def _write_table(kind: str, cursor: Any, table: Table) -> None:
    name = _quote(kind, table.name)
    columns = ", ".join(
        f"{_quote(kind, column)} {TYPES[kind][sql_type]}" for column, sql_type in table.columns
    )
    marks = ", ".join(["?" if kind == "sqlite" else "%s"] * len(table.columns))
    cursor.execute(f"DROP TABLE IF EXISTS {name}")
    cursor.execute(f"CREATE TABLE {name} ({columns})")
    cursor.executemany(f"INSERT INTO {name} VALUES ({marks})", table.rows)


def write_dimensions(target: str, tables: list[Table]) -> list[str]:
    """Write `tables` to `target` in one transaction; the names of the tables written."""
    kind, where = _kind(target)
    try:
        conn = _connect(kind, where)
    except Exception as error:  # each driver has its own errors: all mean "cannot reach it"
        raise _unreachable(kind, where, error) from None
    try:
        cursor = conn.cursor()
        for table in tables:
            _write_table(kind, cursor, table)
        conn.commit()
    finally:
        conn.close()
    return [table.name for table in tables]


def _unreachable(kind: str, target: str, error: Exception) -> CommandError:
    reason = " ".join(str(error).split()) or type(error).__name__
    fix = "choose a path you can write to" if kind == "sqlite" else "check that it runs and the URL is right"
    return CommandError(f"cannot write the --dimension tables to {_shown(target)}: {reason}; {fix}")


def _shown(target: str) -> str:
    """`target` without its password (`user:password@host`, `?password=...`)."""
    target = re.sub(r"(//[^/@:]*:)[^@/]*@", r"\1******@", target)
    return re.sub(r"([?&;]password=)[^&;]*", r"\1******", target, flags=re.I)
