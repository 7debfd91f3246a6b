"""What every `*_functions` module builds with: a call's context and DuckDB SQL templates.

A builder gets a `Call`: the translated arguments, the DuckDB types of the Flink arguments where
they are known (columns, literals, casts, functions of known result type) and the session time zone
(`table.local-time-zone`), and returns one DuckDB expression. Templates name their arguments
`__a0`, `__a1`, ...; `bind` puts the translated expressions in their place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import sqlglot
from sqlglot import exp

from clickstream.errors import SqlValidationError, UnsupportedFeatureError

UTC_NAMES = ("UTC", "Z", "GMT", "ETC/UTC")


@dataclass
class Call:
    """One call of a Flink function: translated arguments, their types, the session time zone."""

    args: list[exp.Expression]
    types: list[str | None]  # DuckDB type of each Flink argument, None when not known
    zone: str = "UTC"
    sources: list[exp.Expression] | None = None  # the Flink arguments, untranslated

    @property
    def utc(self) -> bool:
        return self.zone.upper() in UTC_NAMES

    def type(self, i: int) -> str | None:
        return self.types[i] if i < len(self.types) else None

    def source(self, i: int) -> exp.Expression:
        return (self.sources or self.args)[i]

    def arity(self, *allowed: int) -> None:
        if len(self.args) not in allowed:
            raise SqlValidationError(f"wrong number of arguments ({len(self.args)})")

    def wall(self, i: int) -> exp.Expression:
        """Argument i as a wall-clock TIMESTAMP in the session time zone (what Flink formats and
        extracts from). An instant (TIMESTAMP_LTZ) is shifted into the zone; in UTC that is its
        epoch, which skips DuckDB's ICU conversion, by far the slowest part of DATE_FORMAT or
        HOUR on an instant."""
        arg, kind = self.args[i], self.type(i)
        if kind == "TIMESTAMP":
            return arg
        if kind == "TIMESTAMPTZ" and self.utc:
            return sql("make_timestamp(epoch_us(__a0))", arg)
        if kind is None and self.utc:
            return sql("make_timestamp(epoch_us(TRY_CAST(__a0 AS TIMESTAMPTZ)))", arg)
        return sql("TRY_CAST(__a0 AS TIMESTAMP)", arg)


Builder = Callable[[Call], exp.Expression]


def sql(text: str, *args: exp.Expression) -> exp.Expression:
    """The DuckDB expression `text` with __a0, __a1 ... replaced by `args`."""
    tree = sqlglot.parse_one(text, read="duckdb")
    return cast(exp.Expression, tree.transform(bind(*args)) if args else tree)


def bind(*values: exp.Expression) -> Callable[[exp.Expression], exp.Expression]:
    """Replace placeholders __a0, __a1 ... in a template with the given expressions."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name.startswith("__a") and not node.table:
            return values[int(node.name[3:])].copy()
        return node

    return replace


def template(text: str, arity: tuple[int, ...] | None = None) -> Builder:
    """A builder that fills `text` with the call's arguments."""

    def build(call: Call) -> exp.Expression:
        if arity is not None:
            call.arity(*arity)
        return sql(text, *call.args)

    return build


def literal_string(node: exp.Expression, what: str) -> str:
    if isinstance(node, exp.Literal) and node.is_string:
        return node.this
    raise UnsupportedFeatureError(f"{what} must be a string literal")


def literal_int(node: exp.Expression) -> int | None:
    """The value of an integer literal (or its negation), else None."""
    if isinstance(node, exp.Neg):
        inner = literal_int(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Paren):
        return literal_int(node.this)
    if isinstance(node, exp.Literal) and not node.is_string and node.is_int:
        return int(node.this)
    return None


def quote(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def func(name: str, *args: exp.Expression) -> exp.Expression:
    """A DuckDB function call sqlglot renders as written (no dialect rewriting)."""
    return exp.Anonymous(this=name, expressions=list(args))
