"""DuckDB SQL text from the bound expression trees that plan nodes hold.

Plan nodes keep sqlglot expressions whose column references are quoted names of their input's
columns. Operators turn them into text here, and only here, when they build their queries: a
column that an operator reads under a table alias is qualified by rewriting the tree, never by
editing text, so no user name can be mistaken for another or for an internal one.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp


def to_sql(expression: exp.Expression) -> str:
    return expression.sql(dialect="duckdb")


def column(name: str, table: str | None = None) -> exp.Column:
    """A reference to column `name` (of table alias `table`), quoted whatever its spelling."""
    return exp.column(name, table=table, quoted=True)


def null_of(duck_type: str) -> exp.Expression:
    """A typed NULL: `CAST(NULL AS <duck_type>)`."""
    return exp.cast(exp.null(), exp.DataType.build(duck_type, dialect="duckdb"))


def try_cast(expression: exp.Expression, duck_type: str) -> exp.Expression:
    return exp.TryCast(this=expression, to=exp.DataType.build(duck_type, dialect="duckdb"))


def column_name(expression: exp.Expression) -> str | None:
    """The input column an expression only copies (`"k"`), else None."""
    if isinstance(expression, exp.Column) and not expression.table:
        return expression.name
    return None


def substituted(expression: exp.Expression, columns: Mapping[str, exp.Expression]) -> exp.Expression:
    """`expression` with each unqualified column that `columns` names replaced by its value."""

    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name in columns:
            return columns[node.name].copy()
        return node

    return expression.transform(substitute, copy=True)


def qualified(expression: exp.Expression, tables: Mapping[str, str]) -> exp.Expression:
    """`expression` with each column that `tables` names (column -> table alias) read from that
    alias: `"a" = "b"` becomes `l."a" = r."b"`."""
    return substituted(expression, {name: column(name, table) for name, table in tables.items()})


def quote(name: str) -> str:
    """A quoted DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'
