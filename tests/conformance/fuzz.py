"""A SQLancer-style differential fuzzer: random Flink SQL on random small inputs, clickstream against PyFlink.

    .venv/bin/python -m tests.conformance.fuzz --seed 1 --queries 200               # report only
    .venv/bin/python -m tests.conformance.fuzz --seed 1 --queries 200 --out tests/conformance/cases/fuzz.json

Everything is deterministic from the seed. Each batch of queries gets two fresh tables (``k STRING``,
``n INT``, a few columns of random types among INT, BIGINT, DOUBLE, DECIMAL(p,s), STRING, BOOLEAN, and
``ts TIMESTAMP(3)`` with a ``WATERMARK``; 5-30 rows with NULLs, duplicates, negative numbers, empty
strings, out-of-order and late times) and statements drawn from a typed grammar: projections of random
expressions, ``SELECT DISTINCT``, ``WHERE``, ``GROUP BY`` with aggregates and ``HAVING``, GROUPING
SETS/ROLLUP/CUBE with ``GROUPING(...)`` (unbounded or per window), TUMBLE/HOP/CUMULATE window
aggregates and the legacy ``GROUP BY TUMBLE/HOP``, OVER aggregates on event time (one window per
SELECT: ROWS/RANGE frames, LAG, FIRST_VALUE/LAST_VALUE), Top-N and deduplication, regular and interval
joins, ``UNION ALL`` of two projections, a CTE, and pipelines of two operators (a window over a
window's ``window_time``, GROUP BY over GROUP BY, a window over a first-row deduplication, an
aggregate over an interval join, Top-N over GROUP BY).
The generator tracks each expression's type, so statements are meant to be well typed; one Flink
rejects anyway is skipped, not a finding.

A batch runs in one PyFlink JVM (``run_flink_json``) while clickstream runs the same queries in this
process, at ``table.exec.mini-batch.size`` unbounded and 1, as ``test_conformance.py`` does. Results
are compared as the conformance suite compares them (``harness.materialize``/``same_rows``). A
difference is: other rows, a clean ``ClickstreamError`` where Flink gives rows, rows where Flink's job
fails, or any other exception escaping clickstream (always a finding, even where Flink rejects the SQL).

With ``--out``, each difference is shrunk (fewer rows, fewer select items, conjuncts and keys, simpler
expressions; each round's candidates of all differences run in one JVM, within ``--shrink-seconds``),
differences that shrink to a query already recorded are folded into that case, and the rest are
recorded with the conformance recorder (``record.record_batch``) and marked with triage's
``divergence`` sentence, so the suite holds them as xfail until fixed. Every case keeps ``fuzz``:
the seed, query number and ``origins``, the fingerprints of the generated statements that led to it;
``test_fuzz.py`` fails on a difference whose fingerprint is in no case (a new one).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as dt
import decimal
import hashlib
import json
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clickstream.errors import ClickstreamError
from tests.conformance.harness import (
    Case,
    Table,
    dump_group,
    group_path,
    materialize,
    same_rows,
)
from tests.conformance.record import error_summary, record_batch
from tests.conformance.test_conformance import UNBOUNDED, run_on_clickstream
from tests.conformance.triage import difference
from tests.flink_oracle import run_flink_json

GROUP = "fuzz"
BATCH = 50  # queries per JVM
CLICKSTREAM_TIMEOUT_S = 60
BASE_TIME = dt.datetime(2024, 1, 1, 0, 0, 10)

# --- tables -------------------------------------------------------------------------------------

KINDS = ("INT", "BIGINT", "DOUBLE", "DECIMAL", "STRING", "BOOLEAN")
PREFIX = {"INT": "i", "BIGINT": "g", "DOUBLE": "d", "DECIMAL": "m", "STRING": "s", "BOOLEAN": "f"}
NUMERIC = ("INT", "BIGINT", "DOUBLE", "DECIMAL")
STRINGS = ("a", "b", "B", "ab", "", " a ", "a_b", "x%", "hello", "Hello World", "123", "-4")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # one of KINDS, or TIMESTAMP for the rowtime
    decl: str  # the type as declared: DECIMAL(10, 2)


@dataclass(frozen=True)
class TableData:
    """A generated table: columns, watermark delay and rows (JSON-ready dicts)."""

    columns: tuple[Column, ...]
    delay_s: int
    rows: tuple[tuple[tuple[str, Any], ...], ...]  # each row as sorted (column, value) pairs

    @property
    def name(self) -> str:
        """A name from the content, so equal tables share one CREATE TABLE in a batch."""
        digest = hashlib.sha1(repr((self.columns, self.delay_s, self.rows)).encode()).hexdigest()
        return f"t_{digest[:10]}"

    def columns_sql(self) -> str:
        cols = ", ".join(f"{c.name} {c.decl}" for c in self.columns)
        return f"{cols}, WATERMARK FOR ts AS ts - INTERVAL '{self.delay_s}' SECOND"

    def to_json(self, name: str) -> dict[str, Any]:
        order = [c.name for c in self.columns]
        rows = [{c: dict(r).get(c) for c in order} for r in self.rows]
        return {"name": name, "columns": self.columns_sql(), "rows": rows}

    def table(self, name: str) -> Table:
        return Table.from_json(self.to_json(name))

    def with_rows(self, rows: tuple) -> TableData:
        return dataclasses.replace(self, rows=rows)

    def without_columns(self, names: set[str]) -> TableData:
        columns = tuple(c for c in self.columns if c.name not in names)
        rows = tuple(tuple((k, v) for k, v in r if k not in names) for r in self.rows)
        return TableData(columns, self.delay_s, rows)


def _value(rng: random.Random, column: Column) -> Any:
    kind = column.kind
    if rng.random() < 0.15:
        return None
    if column.name == "k":
        return rng.choice(["a", "b", "c", ""])
    if column.name == "n":
        return rng.choice([-2, -1, 0, 1, 2, 3])
    if kind == "INT":
        if rng.random() < 0.03:
            return rng.choice([2147483647, -2147483648])
        return rng.choice([-100, -7, -1, 0, 1, 2, 3, 5, 10, 42])
    if kind == "BIGINT":
        if rng.random() < 0.03:
            return 9223372036854775807
        return rng.choice([-5, -3, 0, 1, 7, 1000000, 10000000000])
    if kind == "DOUBLE":
        return rng.choice([-2.5, -1.0, 0.0, 0.1, 0.5, 1.25, 2.5, 3.0, 10.75, 100.125])
    if kind == "DECIMAL":
        precision, scale = (int(x) for x in re.findall(r"\d+", column.decl))
        limit = 10 ** min(precision - scale, 4) - 1
        units = rng.randint(-limit * 10**scale, limit * 10**scale)
        if rng.random() < 0.3:  # ties for ROUND and friends
            units = units - units % 10**scale + 5 * 10 ** max(scale - 1, 0) if scale else units
        value = decimal.Decimal(units).scaleb(-scale)
        return int(value) if scale == 0 else float(value)
    if kind == "STRING":
        return rng.choice(STRINGS)
    return rng.choice([True, False])


def gen_table(rng: random.Random) -> TableData:
    """k STRING, n INT, 2-4 columns of random types, ts TIMESTAMP(3) with a watermark; 5-30 rows."""
    columns = [Column("k", "STRING", "STRING"), Column("n", "INT", "INT")]
    counts: Counter[str] = Counter()
    for kind in rng.choices(KINDS, k=rng.randint(2, 4)):
        counts[kind] += 1
        decl = kind
        if kind == "DECIMAL":
            precision = rng.choice([5, 10, 18])
            decl = f"DECIMAL({precision}, {rng.choice([0, 2, 3])})"
        columns.append(Column(f"{PREFIX[kind]}{counts[kind]}", kind, decl))
    columns.append(Column("ts", "TIMESTAMP", "TIMESTAMP(3)"))
    rows: list[dict[str, Any]] = []
    cursor_ms = 0
    for _ in range(rng.randint(5, 30)):
        if rows and rng.random() < 0.12:  # a duplicate, sometimes with its time too
            row = dict(rng.choice(rows))
            if rng.random() < 0.5:
                rows.append(row)
                continue
        else:
            row = {c.name: _value(rng, c) for c in columns if c.kind != "TIMESTAMP"}
        if rng.random() < 0.15:  # out of order, often late
            at = cursor_ms - rng.choice([500, 1500, 3000, 6000])
        else:
            cursor_ms += rng.choice([0, 250, 500, 1000, 1000, 2000, 3000])
            at = cursor_ms
        row["ts"] = (BASE_TIME + dt.timedelta(milliseconds=at)).isoformat(timespec="milliseconds")
        rows.append(row)
    frozen = tuple(tuple(sorted(r.items())) for r in rows)
    return TableData(tuple(columns), rng.choice([0, 1, 2]), frozen)


# --- expressions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """A typed expression: ``fmt`` with ``{0}``, ``{1}`` for the arguments (a leaf has none)."""

    kind: str
    fmt: str
    args: tuple[Expr, ...] = ()
    agg: bool = False

    def sql(self) -> str:
        return self.fmt.format(*(a.sql() for a in self.args)) if self.args else self.fmt

    def nodes(self, path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], Expr]]:
        yield path, self
        for i, a in enumerate(self.args):
            yield from a.nodes((*path, i))

    def replace(self, path: tuple[int, ...], new: Expr) -> Expr:
        if not path:
            return new
        args = list(self.args)
        args[path[0]] = args[path[0]].replace(path[1:], new)
        return dataclasses.replace(self, args=tuple(args))

    def functions(self) -> set[str]:
        own = set(re.findall(r"([A-Z_]+)\(", self.fmt)) | set(
            re.findall(r"\b(CASE|LIKE|BETWEEN|IN)\b", self.fmt)
        )
        return own.union(*(a.functions() for a in self.args))


def leaf(kind: str, text: str) -> Expr:
    return Expr(kind, text)


LITERALS = {
    "INT": ["0", "1", "2", "3", "-1", "-7", "10", "100"],
    "BIGINT": ["CAST(3 AS BIGINT)", "CAST(-2 AS BIGINT)", "2147483648"],
    "DOUBLE": ["2.5E0", "-1.25E0", "0.0E0", "1.0E1", "0.1E0"],
    "DECIMAL": ["1.5", "-0.25", "10.00", "0.1", "2.345"],
    "STRING": ["'a'", "'b'", "''", "'ab'", "'A'", "' a '", "'hello'"],
    "BOOLEAN": ["TRUE", "FALSE"],
    "TIMESTAMP": ["TIMESTAMP '2024-01-01 00:00:15'", "TIMESTAMP '2024-01-01 00:00:12.500'"],
}
NONZERO = {
    "INT": ["2", "3", "-4", "7"],
    "DOUBLE": ["2.0E0", "-0.5E0", "3.0E0"],
    "DECIMAL": ["0.5", "-3", "1.25"],
}
# How to get a kind no column has from one that some column has (every table has k, n and ts).
CONVERSIONS = {
    "BIGINT": [("INT", "CAST({0} AS BIGINT)")],
    "DOUBLE": [("INT", "CAST({0} AS DOUBLE)"), ("DECIMAL", "CAST({0} AS DOUBLE)")],
    "DECIMAL": [("INT", "CAST({0} AS DECIMAL(10, 2))"), ("DOUBLE", "CAST({0} AS DECIMAL(10, 3))")],
    "BOOLEAN": [("INT", "({0} > 0)"), ("STRING", "({0} = 'a')")],
}
COMPARABLE = ("INT", "BIGINT", "DOUBLE", "DECIMAL", "STRING", "TIMESTAMP")


class ExprGen:
    """Random well-typed expressions over the columns in scope (``[(sql name, kind)]``)."""

    def __init__(self, rng: random.Random, scope: list[tuple[str, str]]) -> None:
        self.rng = rng
        self.scope = scope

    def literal(self, kind: str) -> Expr:
        return leaf(kind, self.rng.choice(LITERALS[kind]))

    def column(self, kind: str) -> Expr | None:
        names = [name for name, k in self.scope if k == kind]
        return leaf(kind, self.rng.choice(names)) if names else None

    def leaf(self, kind: str) -> Expr:
        col = self.column(kind)
        if col is not None and self.rng.random() < 0.8:
            return col
        if col is None and kind in CONVERSIONS and self.rng.random() < 0.7:
            source, fmt = self.rng.choice(CONVERSIONS[kind])
            arg = self.column(source)
            if arg is not None:
                return Expr(kind, fmt, (arg,))
        return self.literal(kind)

    def expr(self, kind: str, depth: int) -> Expr:
        if depth <= 0 or (self.rng.random() < 0.25 and self.column(kind) is not None):
            return self.leaf(kind)
        rules = _RULES[kind] + _GENERIC
        for _ in range(8):
            built = self.rng.choice(rules)(self, kind, depth - 1)
            if built is not None:
                return built
        return self.leaf(kind)

    def pick(self, options: list[str]) -> str:
        return self.rng.choice(options)

    def aggregate(self, depth: int = 1) -> Expr:
        rng = self.rng
        choice = rng.choice(["COUNT(*)", "COUNT", "COUNT DISTINCT", "SUM", "MIN", "MAX", "AVG", "SUM", "MIN"])
        if choice == "COUNT(*)":
            return Expr("BIGINT", "COUNT(*)", agg=True)
        if choice == "COUNT":
            return Expr("BIGINT", "COUNT({0})", (self.expr(rng.choice(KINDS), depth),), agg=True)
        if choice == "COUNT DISTINCT":
            arg = self.expr(rng.choice(["INT", "STRING", "BIGINT", "DECIMAL"]), depth)
            return Expr("BIGINT", "COUNT(DISTINCT {0})", (arg,), agg=True)
        if choice in ("SUM", "AVG"):
            kind = rng.choice(NUMERIC)
            return Expr(kind, f"{choice}({{0}})", (self.expr(kind, depth),), agg=True)
        kind = rng.choice(["INT", "BIGINT", "DOUBLE", "DECIMAL", "STRING", "TIMESTAMP"])
        return Expr(kind, f"{choice}({{0}})", (self.expr(kind, depth),), agg=True)

    def having(self, aggregate: Expr) -> Expr:
        kind = aggregate.kind
        op = self.pick(["=", "<>", "<", "<=", ">", ">="])
        return Expr("BOOLEAN", f"{{0}} {op} {{1}}", (aggregate, self.literal(kind)))


Rule = Callable[[ExprGen, str, int], "Expr | None"]


def _op(fmt: str, *kinds: str) -> Rule:
    """A rule: ``fmt`` over expressions of ``kinds`` ('*': the kind asked for, 'nz': a nonzero literal)."""

    def build(g: ExprGen, kind: str, depth: int) -> Expr:
        args = []
        for k in kinds:
            if k == "nz":
                args.append(leaf(kind, g.pick(NONZERO[kind])))
            else:
                args.append(g.expr(kind if k == "*" else k, depth))
        return Expr(kind, fmt, tuple(args))

    return build


def _fmt(fmt: str, *kinds: str, options: dict[str, list[str]] | None = None) -> Rule:
    """Like ``_op``, and ``fmt`` may hold ``<name>`` slots filled from ``options``."""

    def build(g: ExprGen, kind: str, depth: int) -> Expr:
        text = fmt
        for name, values in (options or {}).items():
            text = text.replace(f"<{name}>", g.pick(values))
        return _op(text, *kinds)(g, kind, depth)

    return build


def _generic(fmt: str, *kinds: str) -> Rule:
    return _op(fmt, *kinds)


def _compare(g: ExprGen, kind: str, depth: int) -> Expr:
    k = g.pick(list(COMPARABLE) + ["BOOLEAN"])
    op = "=" if k == "BOOLEAN" else g.pick(["=", "<>", "<", "<=", ">", ">="])
    return Expr("BOOLEAN", f"({{0}} {op} {{1}})", (g.expr(k, depth), g.expr(k, depth)))


def _between(g: ExprGen, kind: str, depth: int) -> Expr:
    k = g.pick(list(COMPARABLE))
    neg = g.pick(["", "NOT "])
    return Expr(
        "BOOLEAN", f"({{0}} {neg}BETWEEN {{1}} AND {{2}})", (g.expr(k, depth), g.literal(k), g.literal(k))
    )


def _in(g: ExprGen, kind: str, depth: int) -> Expr:
    k = g.pick(["INT", "STRING", "BIGINT", "DECIMAL"])
    values = sorted({g.literal(k).sql() for _ in range(3)})
    neg = g.pick(["", "NOT "])
    return Expr("BOOLEAN", f"({{0}} {neg}IN ({', '.join(values)}))", (g.expr(k, depth),))


def _is_null(g: ExprGen, kind: str, depth: int) -> Expr:
    k = g.pick(list(KINDS))
    return Expr("BOOLEAN", f"({{0}} IS {g.pick(['', 'NOT '])}NULL)", (g.expr(k, depth),))


def _like(g: ExprGen, kind: str, depth: int) -> Expr:
    pattern = g.pick(["a%", "%b", "_", "%a%", "h_llo", "", "%"])
    return Expr("BOOLEAN", f"({{0}} {g.pick(['', 'NOT '])}LIKE '{pattern}')", (g.expr("STRING", depth),))


def _ts_part(g: ExprGen, kind: str, depth: int) -> Expr:
    fn = g.pick(
        [
            "HOUR",
            "MINUTE",
            "SECOND",
            "YEAR",
            "MONTH",
            "DAYOFMONTH",
            "DAYOFWEEK",
            "DAYOFYEAR",
            "WEEK",
            "QUARTER",
        ]
    )
    return Expr("BIGINT", f"{fn}({{0}})", (g.expr("TIMESTAMP", depth),))


def _cast_from(*sources: str) -> Rule:
    def build(g: ExprGen, kind: str, depth: int) -> Expr:
        target = {
            "DECIMAL": g.pick(["DECIMAL(10, 2)", "DECIMAL(8, 3)", "DECIMAL(5, 0)"]),
            "TIMESTAMP": "TIMESTAMP(3)",
        }
        return Expr(kind, f"CAST({{0}} AS {target.get(kind, kind)})", (g.expr(g.pick(list(sources)), depth),))

    return build


_GENERIC: list[Rule] = [
    _generic("CASE WHEN {0} THEN {1} ELSE {2} END", "BOOLEAN", "*", "*"),
    _generic("CASE WHEN {0} THEN {1} END", "BOOLEAN", "*"),
    _generic("COALESCE({0}, {1})", "*", "*"),
    _generic("IFNULL({0}, {1})", "*", "*"),
    _generic("NULLIF({0}, {1})", "*", "*"),
    _generic("IF({0}, {1}, {2})", "BOOLEAN", "*", "*"),
]

_ARITH = [
    _op("({0} + {1})", "*", "*"),
    _op("({0} - {1})", "*", "*"),
    _op("({0} * {1})", "*", "*"),
    _op("ABS({0})", "*"),
]

_RULES: dict[str, list[Rule]] = {
    "INT": [
        *_ARITH,
        _op("({0} / {1})", "*", "nz"),
        _op("MOD({0}, {1})", "*", "nz"),
        _op("-({0})", "*"),
        _op("CHAR_LENGTH({0})", "STRING"),
        _cast_from("BIGINT", "DOUBLE", "DECIMAL"),
    ],
    "BIGINT": [
        *_ARITH,
        _op("({0} + {1})", "INT", "*"),
        _cast_from("INT"),
        _ts_part,
        _ts_part,
        _op("UNIX_TIMESTAMP(DATE_FORMAT({0}, 'yyyy-MM-dd HH:mm:ss'))", "TIMESTAMP"),
    ],
    "DOUBLE": [
        *_ARITH,
        _op("({0} / {1})", "*", "nz"),
        _op("({0} * {1})", "INT", "*"),
        _cast_from("INT", "DECIMAL", "BIGINT"),
        _op("FLOOR({0})", "*"),
        _op("CEIL({0})", "*"),
        _fmt("ROUND({0}, <n>)", "*", options={"n": ["0", "1", "2"]}),
        _op("POWER({0}, 2)", "*"),
        _op("SQRT(ABS({0}))", "*"),
        _op("LN(ABS({0}) + 1)", "*"),
        _op("LOG10(ABS({0}) + 1)", "*"),
    ],
    "DECIMAL": [
        *_ARITH,
        _op("({0} / {1})", "*", "nz"),
        _op("({0} + {1})", "*", "INT"),
        _cast_from("INT", "DOUBLE"),
        _fmt("ROUND({0}, <n>)", "*", options={"n": ["0", "1", "2"]}),
        _op("FLOOR({0})", "*"),
        _op("CEIL({0})", "*"),
    ],
    "STRING": [
        _op("UPPER({0})", "*"),
        _op("LOWER({0})", "*"),
        _op("TRIM({0})", "*"),
        _op("INITCAP({0})", "*"),
        _op("MD5({0})", "*"),
        _op("({0} || {1})", "*", "*"),
        _op("CONCAT({0}, {1})", "*", "*"),
        _op("CONCAT_WS('-', {0}, {1})", "*", "*"),
        _fmt(
            "SUBSTRING({0}, <a>, <b>)",
            "*",
            options={"a": ["-1", "0", "1", "2", "3"], "b": ["0", "1", "2", "5"]},
        ),
        _fmt("SUBSTR({0}, <a>)", "*", options={"a": ["1", "2", "4"]}),
        _op("REPLACE({0}, 'a', 'xy')", "*"),
        _fmt("LPAD({0}, <n>, '*')", "*", options={"n": ["0", "2", "5"]}),
        _fmt("RPAD({0}, <n>, '-')", "*", options={"n": ["0", "2", "5"]}),
        _op("REGEXP_REPLACE({0}, '[ab]', 'z')", "*"),
        _op("REGEXP_EXTRACT({0}, '([a-z]+)', 1)", "*"),
        _op("SPLIT_INDEX({0}, '_', 0)", "*"),
        _cast_from("INT", "BIGINT", "DECIMAL", "BOOLEAN", "TIMESTAMP"),
        _fmt(
            "DATE_FORMAT({0}, '<f>')",
            "TIMESTAMP",
            options={"f": ["yyyy-MM-dd HH:mm:ss", "HH:mm:ss.SSS", "yyyyMMdd"]},
        ),
    ],
    "BOOLEAN": [
        _compare,
        _compare,
        _between,
        _in,
        _is_null,
        _like,
        _op("(NOT {0})", "*"),
        _op("({0} AND {1})", "*", "*"),
        _op("({0} OR {1})", "*", "*"),
    ],
    "TIMESTAMP": [
        _fmt("{0} + INTERVAL '<n>' SECOND", "*", options={"n": ["1", "3", "90"]}),
        _fmt("{0} - INTERVAL '<n>' MINUTE", "*", options={"n": ["1", "5"]}),
        _op("TO_TIMESTAMP(DATE_FORMAT({0}, 'yyyy-MM-dd HH:mm:ss'))", "*"),
    ],
}


# --- queries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A generated statement, kept as parts so the shrinker can drop and simplify them.

    ``kind``: project, distinct, group, gsets (GROUPING SETS/ROLLUP/CUBE, unbounded or over a window
    TVF), window (TVF), legacy (GROUP BY TUMBLE/HOP), over (OVER aggregation), topn, join, ijoin
    (interval join), union (UNION ALL of two projections). ``items`` are ``(alias, expression)``;
    ``keys`` are grouping or partition columns; ``opts`` holds the rest (window function and sizes,
    OVER frame, grouping form, N, join type and equi-columns). ``inner`` makes a pipeline: this query
    reads the inner one's result (a subquery, or a CTE ``v`` with ``opts`` cte), or for a union it is
    the second projection, over table B.
    """

    kind: str
    items: tuple[tuple[str, Expr], ...]
    where: tuple[Expr, ...] = ()
    keys: tuple[Expr, ...] = ()
    having: tuple[Expr, ...] = ()
    order: tuple[tuple[Expr, str], ...] = ()
    on: tuple[Expr, ...] = ()
    opts: tuple[tuple[str, Any], ...] = ()
    inner: Query | None = None

    def opt(self, name: str) -> Any:
        return dict(self.opts).get(name)

    def with_opt(self, name: str, value: Any) -> Query:
        return dataclasses.replace(self, opts=tuple({**dict(self.opts), name: value}.items()))

    @property
    def shape(self) -> str:
        """The kind, with the inner query's for a pipeline: ``window_of_topn``."""
        return self.kind if self.inner is None else f"{self.kind}_of_{self.inner.shape}"

    def render(self, a: str, b: str) -> str:
        if self.inner is None:
            return self._render(a, b)
        if self.kind == "union":
            return f"{self._render(a, b)} UNION ALL {self.inner.render(b, a)}"
        inner = self.inner.render(a, b)
        if self.opt("cte"):
            return f"WITH v AS ({inner}) {self._render('v', b)}"
        return self._render(f"({inner})", b)

    def _tvf(self, a: str) -> str:
        fn, sizes = self.opt("fn"), ", ".join(f"INTERVAL '{s}' SECOND" for s in self.opt("sizes"))
        return f"TABLE({fn}(TABLE {a}, DESCRIPTOR(ts), {sizes}))"

    def _sets(self) -> list[tuple[str, ...]]:
        """The grouping sets, of the keys still there (the shrinker drops keys)."""
        names = [k.sql() for k in self.keys]
        return list(dict.fromkeys(tuple(x for x in s if x in names) for s in self.opt("sets")))

    def _grouped(self) -> list[str]:
        """The keys some grouping set holds: the ones the select list may show."""
        names = [k.sql() for k in self.keys]
        return (
            names if self.opt("form") != "SETS" else [n for n in names if any(n in s for s in self._sets())]
        )

    def _grouping(self) -> str:
        names = [k.sql() for k in self.keys]
        if self.opt("form") != "SETS":
            return f"{self.opt('form')} ({', '.join(names)})"
        sets = self._sets()
        listed = ", ".join("(" + ", ".join(s) + ")" for s in sets)
        return f"GROUPING SETS ({listed})"

    def _render(self, a: str, b: str) -> str:
        where = f" WHERE {' AND '.join(e.sql() for e in self.where)}" if self.where else ""
        having = f" HAVING {' AND '.join(e.sql() for e in self.having)}" if self.having else ""
        items = [f"{e.sql()} AS {alias}" for alias, e in self.items]
        keys = [k.sql() for k in self.keys]
        if self.kind in ("project", "union", "distinct"):
            distinct = "DISTINCT " if self.kind == "distinct" else ""
            return f"SELECT {distinct}{', '.join(items)} FROM {a}{where}"
        if self.kind == "over":
            partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
            spec = f"{partition}ORDER BY ts{self.opt('frame')}"
            cols = [
                f"{e.sql()} OVER ({spec}) AS {alias}" if e.agg else f"{e.sql()} AS {alias}"
                for alias, e in self.items
            ]
            return f"SELECT {', '.join(cols)} FROM {a}{where}"
        if self.kind == "group":
            group = f" GROUP BY {', '.join(keys)}" if keys else ""
            return f"SELECT {', '.join(keys + items)} FROM {a}{where}{group}{having}"
        if self.kind == "gsets":
            keys = self._grouped()
            if self.opt("fn") is None:
                return f"SELECT {', '.join(keys + items)} FROM {a}{where} GROUP BY {self._grouping()}{having}"
            select = ", ".join(["window_start", "window_end", *keys, *items])
            group = f"window_start, window_end, {self._grouping()}"
            return f"SELECT {select} FROM {self._tvf(a)}{where} GROUP BY {group}{having}"
        if self.kind == "window":
            # with "time", the window's time is the output's rowtime ts, for a window over it
            bounds = ["window_time AS ts"] if self.opt("time") else ["window_start", "window_end"]
            select = ", ".join([*bounds, *keys, *items])
            time_key = ["window_time"] if self.opt("time") else []
            group = ", ".join(["window_start", "window_end", *time_key, *keys])
            return f"SELECT {select} FROM {self._tvf(a)}{where} GROUP BY {group}{having}"
        if self.kind == "legacy":
            fn, sizes = self.opt("fn"), ", ".join(f"INTERVAL '{s}' SECOND" for s in self.opt("sizes"))
            bounds = [f"{fn}_START(ts, {sizes}) AS ws", f"{fn}_END(ts, {sizes}) AS we"]
            select = ", ".join([*bounds, *keys, *items])
            return (
                f"SELECT {select} FROM {a}{where} GROUP BY {', '.join([f'{fn}(ts, {sizes})', *keys])}{having}"
            )
        if self.kind == "topn":
            partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
            order = ", ".join(f"{e.sql()} {d}" for e, d in self.order)
            inner = f"SELECT *, ROW_NUMBER() OVER ({partition}ORDER BY {order}) AS rn FROM {a}{where}"
            cmp = "=" if self.opt("n") == 1 and self.opt("eq") else "<="
            return f"SELECT {', '.join(self.output_columns())} FROM ({inner}) WHERE rn {cmp} {self.opt('n')}"
        on = " AND ".join([f"l.{x} = r.{y}" for x, y in self.opt("eq")] + [e.sql() for e in self.on])
        if self.kind == "ijoin":
            lo, hi = self.opt("bounds")
            on += f" AND l.ts BETWEEN r.ts - INTERVAL '{lo}' SECOND AND r.ts + INTERVAL '{hi}' SECOND"
        return f"SELECT {', '.join(items)} FROM {a} AS l {self.opt('join')} JOIN {b} AS r ON {on}{where}"

    def output_columns(self) -> list[str]:
        """Top-N only: its select list (keys first, rn last when shown)."""
        names = [k.sql() for k in self.keys] + [alias for alias, _ in self.items]
        names = list(dict.fromkeys(names))
        return [*names, "rn"] if self.opt("rn") else names

    def upsert_key(self) -> list[str] | None:
        """Top-N showing rn is keyed by partition and rn; Top-1 without it by partition (Flink's +U)."""
        if self.kind == "topn" and self.opt("rn"):
            return [k.sql() for k in self.keys] + ["rn"]
        if self.kind == "topn" and self.opt("n") == 1 and self.keys:
            return [k.sql() for k in self.keys]
        return None

    def uses_b(self) -> bool:
        return self.kind in ("join", "ijoin", "union") or (self.inner is not None and self.inner.uses_b())

    def expressions(self) -> list[Expr]:
        return (
            [e for _, e in self.items]
            + list(self.where)
            + list(self.having)
            + [e for e, _ in self.order]
            + list(self.on)
        )

    def features(self) -> frozenset[str]:
        found: set[str] = set()
        for e in self.expressions():
            found |= e.functions()
        inner = self.inner.features() if self.inner is not None else frozenset()
        return frozenset({self.shape, *found, *inner})


def _scope(table: TableData, prefix: str = "") -> list[tuple[str, str]]:
    return [(prefix + c.name, c.kind) for c in table.columns]


def _items(g: ExprGen, count: int, depth: int) -> tuple[tuple[str, Expr], ...]:
    kinds = [*KINDS, "INT", "STRING", "DECIMAL", "TIMESTAMP"]
    return tuple((f"c{i}", g.expr(g.pick(kinds), depth)) for i in range(count))


def _where(g: ExprGen, chance: float = 0.6) -> tuple[Expr, ...]:
    if g.rng.random() > chance:
        return ()
    return tuple(g.expr("BOOLEAN", 2) for _ in range(g.rng.randint(1, 2)))


def _key_columns(g: ExprGen, table: TableData, most: int) -> tuple[Expr, ...]:
    candidates = [c for c in table.columns if c.kind in ("STRING", "INT", "BIGINT", "BOOLEAN", "DECIMAL")]
    weights = [4 if c.name in ("k", "n") else 1 for c in candidates]
    picked: list[Column] = []
    for _ in range(g.rng.randint(1, most)):
        c = g.rng.choices(candidates, weights)[0]
        if c not in picked:
            picked.append(c)
    return tuple(leaf(c.kind, c.name) for c in picked)


def _aggregates(g: ExprGen, prefix: str = "a") -> tuple[tuple[tuple[str, Expr], ...], tuple[Expr, ...]]:
    aggs = tuple((f"{prefix}{i}", g.aggregate()) for i in range(g.rng.randint(1, 3)))
    having = (g.having(g.aggregate(depth=0)),) if g.rng.random() < 0.3 else ()
    return aggs, having


def _window_opts(g: ExprGen, legacy: bool) -> tuple[tuple[str, Any], ...]:
    fn = g.pick(["TUMBLE", "HOP"] if legacy else ["TUMBLE", "HOP", "CUMULATE"])
    if fn == "TUMBLE":
        return (("fn", fn), ("sizes", (g.pick(["2", "5", "10"]),)))
    step = g.rng.choice([1, 2, 5])
    return (("fn", fn), ("sizes", (str(step), str(step * g.rng.choice([2, 3])))))


# OVER frames (after ORDER BY ts); LAG takes none of them but the default
FRAMES = (
    "",
    " ROWS BETWEEN 1 PRECEDING AND CURRENT ROW",
    " ROWS BETWEEN 2 PRECEDING AND CURRENT ROW",
    " RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW",
    " RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW",
    " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
    " RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
)
KINDS_WEIGHTS = {
    "project": 5,
    "group": 4,
    "window": 4,
    "legacy": 2,
    "topn": 3,
    "join": 2,
    "ijoin": 2,
    "over": 4,
    "gsets": 3,
    "pipeline": 4,
    "distinct": 1,
    "union": 1,
    "cte": 1,
}
PIPELINES = ("window_of_window", "group_of_group", "window_of_dedup", "group_of_ijoin", "topn_of_group")


def gen_query(rng: random.Random, a: TableData, b: TableData) -> Query:
    kind = rng.choices(list(KINDS_WEIGHTS), list(KINDS_WEIGHTS.values()))[0]
    g = ExprGen(rng, _scope(a))
    if kind == "over":
        return _gen_over(g, a)
    if kind == "gsets":
        return _gen_gsets(g, a)
    if kind == "pipeline":
        return _gen_pipeline(rng, a, b)
    if kind == "distinct":
        return Query(kind, _items(g, rng.randint(1, 3), 2), where=_where(g, 0.4))
    if kind == "union":
        first = _items(g, rng.randint(1, 3), 2)
        gb = ExprGen(rng, _scope(b))
        second = tuple((alias, gb.expr(e.kind, 2)) for alias, e in first)
        return Query(kind, first, where=_where(g, 0.3), inner=Query("project", second, where=_where(gb, 0.3)))
    if kind == "cte":
        inner = Query("project", _items(g, rng.randint(2, 4), 2), where=_where(g, 0.3))
        outer = ExprGen(rng, _outputs(inner))
        items = _items(outer, rng.randint(1, 3), 2)
        return Query("project", items, where=_where(outer, 0.5), opts=(("cte", True),), inner=inner)
    return _gen_basic(rng, kind, a, b)


def _over_aggregate(g: ExprGen, lag: bool) -> Expr:
    choice = g.pick(["AGG", "AGG", "AGG", "FIRST_VALUE", "LAST_VALUE"] + (["LAG", "LAG"] if lag else []))
    if choice == "AGG":
        agg = g.aggregate()
        return agg if "DISTINCT" not in agg.fmt else Expr("BIGINT", "COUNT(*)", agg=True)
    kind = g.pick(["INT", "BIGINT", "DOUBLE", "DECIMAL", "STRING", "BOOLEAN"])
    offset = g.pick(["", "", ", 1", ", 2"]) if choice == "LAG" else ""
    return Expr(kind, f"{choice}({{0}}{offset})", (g.expr(kind, 1),), agg=True)


def _gen_over(g: ExprGen, a: TableData) -> Query:
    """One OVER window on ts per SELECT: a few columns and 1-3 aggregates over it."""
    frame = g.pick(list(FRAMES))
    keys = _key_columns(g, a, 2) if g.rng.random() < 0.75 else ()
    shown = [(c.name, leaf(c.kind, c.name)) for c in g.rng.sample(list(a.columns), g.rng.randint(1, 3))]
    overs = [(f"o{i}", _over_aggregate(g, lag=not frame)) for i in range(g.rng.randint(1, 3))]
    return Query("over", (*shown, *overs), where=_where(g, 0.3), keys=keys, opts=(("frame", frame),))


def _gen_gsets(g: ExprGen, a: TableData) -> Query:
    """GROUPING SETS, ROLLUP or CUBE of 1-3 keys with GROUPING(...) items, unbounded or per window."""
    rng = g.rng
    keys = _key_columns(g, a, 3)
    names = [k.sql() for k in keys]
    form = g.pick(["ROLLUP", "CUBE", "SETS", "SETS"])
    sets = tuple(tuple(x for x in names if rng.random() < 0.5) for _ in range(rng.randint(2, 3)))
    grouped = names if form != "SETS" else [n for n in names if any(n in s for s in sets)]
    groupings = tuple(
        (
            f"g{i}",
            Expr(
                "BIGINT",
                f"GROUPING({', '.join(rng.sample(grouped, rng.randint(1, len(grouped))))})",
                agg=True,
            ),
        )
        for i in range(rng.randint(0, 2) if grouped else 0)
    )
    aggs, having = _aggregates(g)
    if grouped and rng.random() < 0.2:
        having = (*having, Expr("BOOLEAN", f"GROUPING({g.pick(grouped)}) = {g.pick(['0', '1'])}"))
    window = _window_opts(g, False) if rng.random() < 0.4 else ()
    opts = (("form", form), ("sets", sets), *window)
    return Query("gsets", groupings + aggs, where=_where(g, 0.3), keys=keys, having=having, opts=opts)


def _outputs(q: Query) -> list[tuple[str, str]]:
    """The columns a query gives (name, kind), for the query over it in a pipeline."""
    items = [(alias, e.kind) for alias, e in q.items]
    keys = [(k.sql(), k.kind) for k in q.keys]
    if q.kind == "window":
        return [("ts", "TIMESTAMP"), *keys, *items]
    if q.kind in ("group", "topn"):
        return list(dict.fromkeys(keys + items))
    return items


def _scope_keys(g: ExprGen, scope: list[tuple[str, str]], most: int) -> tuple[Expr, ...]:
    candidates = [(n, k) for n, k in scope if k in ("STRING", "INT", "BIGINT", "BOOLEAN", "DECIMAL")]
    if not candidates:
        return ()
    picked = dict.fromkeys(g.rng.choice(candidates) for _ in range(g.rng.randint(1, most)))
    return tuple(leaf(k, n) for n, k in picked)


def _gen_inner(rng: random.Random, inner: str, a: TableData, b: TableData) -> Query:
    g = ExprGen(rng, _scope(a))
    if inner == "window":  # its window_time as ts: the rowtime of the window over it
        keys = _key_columns(g, a, 2) if rng.random() < 0.7 else ()
        aggs, _ = _aggregates(g)
        return Query(
            "window", aggs, where=_where(g, 0.3), keys=keys, opts=(*_window_opts(g, False), ("time", True))
        )
    if inner == "group":
        aggs, _ = _aggregates(g)
        return Query("group", aggs, where=_where(g, 0.3), keys=_key_columns(g, a, 2))
    if inner == "dedup":  # keeps the first row per key on rowtime: append-only, ts stays a rowtime
        items = tuple((c.name, leaf(c.kind, c.name)) for c in a.columns)
        order = ((leaf("TIMESTAMP", "ts"), "ASC"),)
        opts = (("n", 1), ("eq", True), ("rn", False))
        return Query("topn", items, where=_where(g, 0.3), keys=_key_columns(g, a, 1), order=order, opts=opts)
    return _gen_basic(rng, inner, a, b)


def _gen_pipeline(rng: random.Random, a: TableData, b: TableData) -> Query:
    """Two operators: a window over a window, GROUP BY over GROUP BY, a window over a deduplication,
    an aggregate over an interval join, Top-N over GROUP BY."""
    outer, inner_kind = rng.choice(PIPELINES).split("_of_")
    inner = _gen_inner(rng, inner_kind, a, b)
    scope = _outputs(inner)
    g = ExprGen(rng, scope)
    cte = outer == "window" or rng.random() < 0.5  # a window TVF reads a named table only
    if outer in ("window", "group"):
        keys = _scope_keys(g, [s for s in scope if s[0] != "ts"], 2) if rng.random() < 0.7 else ()
        aggs, having = _aggregates(g, "b")  # not a0: the inner query's names are in scope
        window = _window_opts(g, False) if outer == "window" else ()
        return Query(outer, aggs, _where(g, 0.3), keys, having, opts=(*window, ("cte", cte)), inner=inner)
    keys = _scope_keys(g, [(k.sql(), k.kind) for k in inner.keys], 1) if rng.random() < 0.7 else ()
    orderable = [(n, k) for n, k in scope if k in COMPARABLE]
    order = tuple(
        (leaf(k, n), rng.choice(["ASC", "DESC"])) for n, k in rng.sample(orderable, min(2, len(orderable)))
    )
    shown = tuple((n, leaf(k, n)) for n, k in rng.sample(scope, rng.randint(1, min(3, len(scope)))))
    opts = (
        ("n", rng.choice([1, 2, 3])),
        ("eq", rng.random() < 0.5),
        ("rn", rng.random() < 0.6 or not keys),
        ("cte", cte),
    )
    return Query("topn", shown, keys=keys, order=order, opts=opts, inner=inner)


def _gen_basic(rng: random.Random, kind: str, a: TableData, b: TableData) -> Query:
    g = ExprGen(rng, _scope(a))
    if kind == "project":
        return Query(kind, _items(g, rng.randint(1, 4), 3), where=_where(g))
    if kind in ("group", "window", "legacy"):
        keys = _key_columns(g, a, 2) if kind == "group" or rng.random() < 0.6 else ()
        if kind == "group" and rng.random() < 0.15:
            keys = ()
        aggs, having = _aggregates(g)
        opts = _window_opts(g, kind == "legacy") if kind != "group" else ()
        return Query(kind, aggs, where=_where(g, 0.4), keys=keys, having=having, opts=opts)
    if kind == "topn":
        keys = _key_columns(g, a, 1) if rng.random() < 0.8 else ()
        orderable = [
            c for c in a.columns if c.kind in ("INT", "BIGINT", "DOUBLE", "DECIMAL", "STRING", "TIMESTAMP")
        ]
        order = tuple(
            (leaf(c.kind, c.name), rng.choice(["ASC", "DESC"]))
            for c in rng.sample(orderable, rng.randint(1, 2))
        )
        shown = rng.sample([c for c in a.columns if c.kind != "TIMESTAMP"], rng.randint(1, 3))
        items = tuple((c.name, leaf(c.kind, c.name)) for c in shown)
        # rn is shown without a partition: a global Top-1 is an upsert stream keyed by nothing else
        opts = (
            ("n", rng.choice([1, 1, 2, 3])),
            ("eq", rng.random() < 0.5),
            ("rn", rng.random() < 0.6 or not keys),
        )
        return Query(kind, items, where=_where(g, 0.3), keys=keys, order=order, opts=opts)
    g = ExprGen(rng, _scope(a, "l.") + _scope(b, "r."))
    shared = [c.name for c in a.columns if c.kind != "TIMESTAMP" and any(c == d for d in b.columns)]
    eq = tuple((x, x) for x in rng.sample(shared, min(len(shared), rng.choice([1, 1, 2]))))
    items = _items(g, rng.randint(1, 4), 2)
    on = (g.expr("BOOLEAN", 1),) if rng.random() < 0.25 else ()
    if kind == "join":
        if rng.random() < 0.7:  # a regular join cannot carry time attributes to its output
            items = tuple((alias, e) for alias, e in items if e.kind != "TIMESTAMP") or (
                ("c0", leaf("INT", "l.n")),
            )
        opts = (("join", rng.choice(["INNER", "LEFT"])), ("eq", eq))
    else:
        bounds = (rng.choice([0, 1, 2, 5]), rng.choice([0, 1, 3]))
        opts = (("join", rng.choice(["INNER", "LEFT", "RIGHT", "FULL"])), ("eq", eq), ("bounds", bounds))
    return Query(kind, items, where=_where(g, 0.3), on=on, opts=opts)


# --- one trial: tables + query, on both engines -------------------------------------------------


@dataclass(frozen=True)
class Trial:
    a: TableData
    b: TableData
    query: Query

    def tables(self) -> list[TableData]:
        return [self.a, self.b] if self.query.uses_b() else [self.a]

    def sql(self, names: tuple[str, str] | None = None) -> str:
        a, b = names or (self.a.name, self.b.name)
        return self.query.render(a, b)

    def fingerprint(self) -> str:
        text = json.dumps([t.to_json("t") for t in self.tables()] + [self.sql(("A", "B"))], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def case(self, name: str = "trial", names: tuple[str, str] | None = None) -> Case:
        names = names or (self.a.name, self.b.name)
        tables = [t.table(n) for t, n in zip(self.tables(), names, strict=False)]
        upsert = self.query.upsert_key()
        expected = {"columns": self.query.output_columns()} if upsert is not None else None
        return Case(GROUP, name, self.sql(names), tables, upsert_key=upsert, expected=expected)

    def size(self) -> int:
        return sum(len(t.rows) for t in self.tables()) * 40 + len(self.sql(("A", "B")))


@dataclass
class Outcome:
    """What one engine did: rows, or an error (``internal``: not a ClickstreamError / a Flink job failure)."""

    rows: list[list[Any]] | None = None
    error: str | None = None
    internal: bool = False


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout(f"clickstream took more than {CLICKSTREAM_TIMEOUT_S} s")


def run_clickstream(trial: Trial) -> dict[str, Outcome]:
    """The trial on clickstream at mini-batch size unbounded and 1."""
    results = {}
    case = trial.case()
    for size in (UNBOUNDED, "1"):
        with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(CLICKSTREAM_TIMEOUT_S)
            try:
                results[size] = Outcome(rows=run_on_clickstream(case, Path(tmp), size))
            except ClickstreamError as e:
                results[size] = Outcome(error=f"{type(e).__name__}: {_first_line(e)}")
            except Exception as e:  # noqa: BLE001 - anything else escaping clickstream is a finding
                results[size] = Outcome(error=f"{type(e).__name__}: {_first_line(e)}", internal=True)
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, previous)
    return results


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else ""


def flink_outcome(trial: Trial, out: dict[str, Any] | None) -> Outcome:
    """Flink's result for the trial from ``run_flink_json`` output; ``internal`` marks a job failure."""
    if out is None:
        return Outcome(error="no output from PyFlink")
    if "error" in out:
        trace = out["error"]
        failed_job = "JobExecutionException" in trace or "org.apache.flink.runtime.taskmanager" in trace
        return Outcome(error=error_summary(trace), internal=failed_job)
    changelog = [(kind, list(values)) for kind, values in out["changelog"]]
    upsert = trial.query.upsert_key()
    key = [out["columns"].index(c) for c in upsert] if upsert is not None else None
    return Outcome(rows=materialize(changelog, key))


@dataclass
class Verdict:
    status: str  # rejected | agreed | both_failed | rows | clean_error | internal | flink_failed_cs_rows
    detail: str = ""

    @property
    def finding(self) -> bool:
        return self.status in ("rows", "clean_error", "internal", "flink_failed_cs_rows")


def judge(flink: Outcome, ours: dict[str, Outcome]) -> Verdict:
    crashes = [o.error for o in ours.values() if o.internal]
    if crashes:
        return Verdict("internal", crashes[0] or "")
    if flink.error is not None:
        if not flink.internal:
            return Verdict("rejected", flink.error)
        if all(o.error is not None for o in ours.values()):
            return Verdict("both_failed", flink.error)
        return Verdict("flink_failed_cs_rows", flink.error)
    for size, o in ours.items():
        if o.error is not None:
            return Verdict("clean_error", o.error)
        if not same_rows(o.rows or [], flink.rows or []):
            where = " (mini-batch size 1)" if size == "1" else ""
            return Verdict("rows", f"Flink {_short(flink.rows)}, clickstream{where} {_short(o.rows)}")
    return Verdict("agreed")


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_trials(
    trials: list[Trial], timeout: float = 1200, ours: list[dict[str, Outcome]] | None = None
) -> list[tuple[Verdict, Outcome, dict[str, Outcome]]]:
    """Run the trials in one PyFlink JVM while clickstream runs them here (unless ``ours`` has
    its outcomes already); judge each."""
    tables = {t.name: t for trial in trials for t in trial.tables()}
    queries = {f"q{i}": trial.sql() for i, trial in enumerate(trials)}
    with (
        tempfile.TemporaryDirectory(prefix="fuzz-flink-") as tmp,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        setup = [t.table(name).ddl(Path(tmp)) for name, t in tables.items()]
        future = pool.submit(run_flink_json, setup, queries, timeout)
        if ours is None:
            ours = [run_clickstream(trial) for trial in trials]
        raw = future.result()
    results = []
    for i, trial in enumerate(trials):
        flink = flink_outcome(trial, raw.get(f"q{i}"))
        results.append((judge(flink, ours[i]), flink, ours[i]))
    return results


# --- shrinking ----------------------------------------------------------------------------------

SIMPLE = {k: v[0] for k, v in LITERALS.items()}


def _expr_reductions(e: Expr) -> Iterator[Expr]:
    """Simpler expressions of the same kind: each node replaced by a same-kind argument or a literal."""
    for path, node in e.nodes():
        if not node.args:
            continue
        if not node.agg:
            for arg in node.args:
                if arg.kind == node.kind:
                    yield e.replace(path, arg)
            if node.kind in SIMPLE:
                yield e.replace(path, leaf(node.kind, SIMPLE[node.kind]))
        elif node.args and node.fmt != "COUNT(*)" and node.kind == "BIGINT" and "COUNT" in node.fmt:
            yield e.replace(path, Expr("BIGINT", "COUNT(*)", agg=True))


def _pipeline_reductions(q: Query) -> Iterator[Query]:
    """A pipeline without its outer query, or with a smaller inner one; a union's items in pairs."""
    if q.inner is None:
        return
    yield q.inner if q.kind != "union" else dataclasses.replace(q, kind="project", inner=None)
    for smaller in _query_reductions(q.inner):
        if q.kind != "union" or len(smaller.items) == len(q.inner.items):
            yield dataclasses.replace(q, inner=smaller)
    if q.kind == "union" and len(q.items) > 1:
        for i in range(len(q.items)):
            second = dataclasses.replace(q.inner, items=q.inner.items[:i] + q.inner.items[i + 1 :])
            yield dataclasses.replace(q, items=q.items[:i] + q.items[i + 1 :], inner=second)


def _query_reductions(q: Query) -> Iterator[Query]:
    yield from _pipeline_reductions(q)
    if q.kind == "gsets":  # plain GROUP BY of the same keys
        window = tuple((k, v) for k, v in q.opts if k in ("fn", "sizes"))
        yield Query("window" if window else "group", q.items, q.where, q.keys, q.having, opts=window)
    if q.kind == "distinct":
        yield dataclasses.replace(q, kind="project")
    aggregating = q.kind in ("group", "window", "legacy", "gsets")
    least = 0 if (aggregating and (q.keys or q.kind != "group")) else 1
    if q.kind == "union":
        least = len(q.items)  # items go in pairs, above
    if len(q.items) > 1 and q.kind != "union":
        for i in range(len(q.items)):
            yield dataclasses.replace(q, items=(q.items[i],))
    if len(q.items) > least:
        for i in range(len(q.items)):
            yield dataclasses.replace(q, items=q.items[:i] + q.items[i + 1 :])
    for name in ("where", "having", "on"):
        parts = getattr(q, name)
        if parts:
            yield dataclasses.replace(q, **{name: ()})
        if len(parts) > 1:
            for i in range(len(parts)):
                yield dataclasses.replace(q, **{name: parts[:i] + parts[i + 1 :]})
    keyed_top1 = q.kind == "topn" and q.opt("n") == 1 and not q.opt("rn")
    for i in range(len(q.keys) if not keyed_top1 else 0):
        if (q.kind != "group" or q.items) and (q.kind != "gsets" or len(q.keys) > 1):
            yield dataclasses.replace(q, keys=q.keys[:i] + q.keys[i + 1 :])
    if len(q.order) > 1:
        yield dataclasses.replace(q, order=q.order[:1])
    if q.kind in ("join", "ijoin") and q.opt("join") != "INNER":
        yield q.with_opt("join", "INNER")
    if q.kind in ("window", "legacy", "gsets") and q.opt("fn") not in (None, "TUMBLE"):
        yield q.with_opt("fn", "TUMBLE").with_opt("sizes", q.opt("sizes")[-1:])
    for slot in ("items", "where", "having", "on", "order"):
        parts = getattr(q, slot)
        for i, part in enumerate(parts):
            e = part[1] if slot == "items" else part[0] if slot == "order" else part
            for simpler in _expr_reductions(e):
                new = (
                    (part[0], simpler)
                    if slot == "items"
                    else (simpler, part[1])
                    if slot == "order"
                    else simpler
                )
                yield dataclasses.replace(q, **{slot: parts[:i] + (new,) + parts[i + 1 :]})


def _row_reductions(t: TableData) -> Iterator[TableData]:
    rows, n = t.rows, len(t.rows)
    if n < 2:
        return
    for parts in (2, 4, 8):
        if n >= parts:
            step = (n + parts - 1) // parts
            for start in range(0, n, step):
                yield t.with_rows(rows[:start] + rows[start + step :])
    if n <= 8:
        for i in range(n):
            yield t.with_rows(rows[:i] + rows[i + 1 :])


def _unused_columns(trial: Trial, t: TableData) -> set[str]:
    """Columns the query never names (a Top-N reads ``SELECT *``: none then); k, n and ts stay."""
    if "SELECT *" in trial.sql(("A", "B")):
        return set()
    used = set(re.findall(r"\b[a-z]\w*\b", trial.sql(("A", "B"))))
    return {c.name for c in t.columns if c.name not in used and c.name not in ("ts", "k", "n")}


def tidy(trial: Trial) -> Trial:
    """The trial without the columns its query never names: they cannot change its result."""
    return dataclasses.replace(
        trial,
        a=trial.a.without_columns(_unused_columns(trial, trial.a)),
        b=trial.b.without_columns(_unused_columns(trial, trial.b)),
    )


def reductions(trial: Trial) -> list[Trial]:
    """Smaller trials, interleaving fewer rows, fewer query parts and simpler expressions."""
    rows: list[Trial] = []
    for t in trial.tables():
        for smaller in _row_reductions(t):
            rows.append(dataclasses.replace(trial, **({"a": smaller} if t is trial.a else {"b": smaller})))
    parts = [dataclasses.replace(trial, query=q) for q in _query_reductions(trial.query)]
    out: list[Trial] = []
    for i in range(max(len(rows), len(parts))):
        out.extend(x[i] for x in (rows, parts) if i < len(x))
    return out


def same_finding(finding: Verdict, verdict: Verdict) -> bool:
    """A smaller trial keeps the finding when it fails the same way (any row difference counts)."""
    if finding.status in ("internal", "clean_error"):
        return verdict.status == finding.status and _error_class(verdict.detail) == _error_class(
            finding.detail
        )
    return verdict.status in ("rows", "flink_failed_cs_rows")


def _error_class(detail: str) -> str:
    return detail.split(":", 1)[0]


@dataclass
class Finding:
    index: int
    trial: Trial
    verdict: Verdict
    origins: list[str] = field(default_factory=list)
    current: Trial | None = None
    tried: set[str] = field(default_factory=set)

    @property
    def signature(self) -> str:
        """What makes two findings the same before shrinking: an error's text or the query's features."""
        if self.verdict.status in ("internal", "clean_error"):
            detail = re.sub(r"[0-9]+|'[^']*'", "?", self.verdict.detail)
            return f"{self.verdict.status}:{detail}"
        return f"{self.verdict.status}:{','.join(sorted(self.trial.query.features()))}"

    def candidates(self, limit: int) -> list[Trial]:
        assert self.current is not None
        fresh = []
        for c in reductions(self.current):
            fp = c.fingerprint()
            if fp not in self.tried:
                self.tried.add(fp)
                fresh.append(c)
                if len(fresh) == limit:
                    break
        return fresh


def _screen(f: Finding, candidates: list[Trial]) -> list[tuple[Trial, dict[str, Outcome]]]:
    """Candidates whose clickstream outcome can still show the finding (cheap: no Flink)."""
    kept = []
    for c in candidates:
        ours = run_clickstream(c)
        crash = next((o.error for o in ours.values() if o.internal), None)
        if f.verdict.status == "internal":
            ok = crash is not None and _error_class(crash) == _error_class(f.verdict.detail)
        elif f.verdict.status == "clean_error":
            errors = [o.error for o in ours.values() if o.error and not o.internal]
            ok = crash is None and any(_error_class(e) == _error_class(f.verdict.detail) for e in errors)
        else:
            ok = crash is None
        if ok:
            kept.append((c, ours))
    return kept


def shrink(findings: list[Finding], deadline: float, per_finding: int = 12, rounds: int = 25) -> None:
    """Greedy rounds, each keeping a finding's smallest candidate that still shows it.

    Candidates are screened on clickstream first. An internal exception needs nothing more (it is
    a finding whatever Flink says); the others' survivors of every finding run in one JVM a round.
    """
    for f in findings:
        f.current = f.trial
    active = list(findings)
    for _ in range(rounds):
        if not active or time.monotonic() > deadline:
            return
        batch: list[tuple[Finding, Trial, dict[str, Outcome]]] = []
        progressed, exhausted = [], []
        for f in active:
            candidates = f.candidates(per_finding if f.verdict.status != "internal" else 4 * per_finding)
            if not candidates:
                exhausted.append(f)
                continue
            screened = _screen(f, candidates)
            if f.verdict.status == "internal":
                if screened:
                    f.current = min((c for c, _ in screened), key=Trial.size)
                    progressed.append(f)
                continue
            batch.extend((f, c, ours) for c, ours in screened)
        if batch:
            remaining = max(deadline - time.monotonic(), 60)
            try:
                results = run_trials(
                    [c for _, c, _ in batch], timeout=remaining + 120, ours=[o for _, _, o in batch]
                )
            except Exception as e:  # noqa: BLE001 - a failed round keeps what was found so far
                print(f"  shrink round failed: {type(e).__name__}: {_first_line(e)}", file=sys.stderr)
                return
            for f in active:
                survivors = [
                    c
                    for (owner, c, _), (v, _, _) in zip(batch, results, strict=True)
                    if owner is f and same_finding(f.verdict, v)
                ]
                if survivors:
                    f.current = min(survivors, key=Trial.size)
                    progressed.append(f)
        print(
            f"  shrink round: {len(batch)} candidates on Flink, "
            f"{len(progressed)} of {len(active)} differences smaller",
            file=sys.stderr,
        )
        active = [f for f in active if f not in exhausted]


# --- recording ----------------------------------------------------------------------------------


def load_fuzz_group(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"tables": [], "cases": []}


def known_origins(path: Path | None = None) -> set[str]:
    data = load_fuzz_group(path or group_path(GROUP))
    return {o for case in data["cases"] for o in case.get("fuzz", {}).get("origins", [])}


def _shape(query: str) -> str:
    return re.sub(r"\bs\d+_q\d+_[ab]\b|\bt_[0-9a-f]{10}\b", "T", query)


def record(findings: list[Finding], seed: int, path: Path) -> list[str]:
    """Append the shrunk findings to the group file (one recorder JVM); return the new case names."""
    data = load_fuzz_group(path)
    by_shape = {_shape(c["query"]): c for c in data["cases"]}
    new_cases: list[tuple[Finding, Case, dict[str, Any]]] = []
    for f in findings:
        trial = tidy(f.current or f.trial)
        name = f"s{seed}_q{f.index}_{trial.query.shape}"
        names = (f"s{seed}_q{f.index}_a", f"s{seed}_q{f.index}_b")
        case = trial.case(name, names)
        existing = by_shape.get(_shape(case.query))
        if existing is not None:
            origins = existing.setdefault("fuzz", {}).setdefault("origins", [])
            origins.extend(o for o in f.origins if o not in origins)
            print(f"  {name}: shrinks to case {existing['name']}, noted there", file=sys.stderr)
            continue
        case.expected = None
        raw: dict[str, Any] = {"name": name, "query": case.query}
        raw["tables"] = [t.to_json(n) for t, n in zip(trial.tables(), names, strict=False)]
        if case.upsert_key is not None:
            raw["upsert_key"] = case.upsert_key
        raw["fuzz"] = {"seed": seed, "query": f.index, "origins": list(f.origins)}
        by_shape[_shape(case.query)] = raw
        new_cases.append((f, case, raw))
    added = []
    if new_cases:
        expected = record_batch([c for _, c, _ in new_cases])
        for f, case, raw in new_cases:
            case.expected = raw["expected"] = expected[case.name]
            text, size = difference(case)
            if text is None:
                print(f"  {case.name}: agrees once recorded (not kept): {f.verdict.detail}", file=sys.stderr)
                continue
            raw["divergence"] = text
            if size is not None:
                raw["divergence_batch_size"] = size
            data["cases"].append(raw)
            added.append(case.name)
    path.write_text(dump_group(data), encoding="utf-8")
    return added


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Report:
    statuses: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    rejections: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, index: int, trial: Trial, verdict: Verdict) -> None:
        self.statuses[verdict.status] += 1
        self.by_kind.setdefault(trial.query.shape, Counter())[verdict.status] += 1
        if verdict.status == "rejected":
            self.rejections[re.sub(r"'[^']*'|\d+", "?", verdict.detail)[:110]] += 1
        if verdict.finding:
            f = Finding(index, trial, verdict, origins=[trial.fingerprint()])
            self.findings.append(f)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> str:
        s = self.statuses
        lines = [
            f"{self.total} queries in {self.seconds:.0f} s: {s['agreed']} agreed, "
            f"{s['both_failed']} failed on both, {s['rejected']} rejected by Flink (skipped); "
            f"{len(self.findings)} differ: {s['rows']} other rows, {s['flink_failed_cs_rows']} rows "
            f"where Flink's job fails, {s['clean_error']} clean ClickstreamErrors where Flink gives rows, "
            f"{s['internal']} internal exceptions escaping clickstream",
            "per shape: "
            + "; ".join(
                f"{kind} {sum(c.values())} ({', '.join(f'{k} {n}' for k, n in sorted(c.items()))})"
                for kind, c in sorted(self.by_kind.items())
            ),
        ]
        if self.rejections:
            lines.append("Flink's commonest rejections:")
            lines += [f"  {n} x {text}" for text, n in self.rejections.most_common(5)]
        for f in self.findings:
            lines.append(f"  q{f.index} [{f.verdict.status}] {f.trial.sql(('A', 'B'))}")
            lines.append(f"      {f.verdict.detail}")
        return "\n".join(lines)


def generate(seed: int, count: int, batch: int = BATCH) -> Iterator[list[tuple[int, Trial]]]:
    """The seed's trials in batches: each batch draws two tables, then its queries."""
    rng = random.Random(seed)
    index = 0
    while index < count:
        a, b = gen_table(rng), gen_table(rng)
        size = min(batch, count - index)
        yield [(index + i, Trial(a, b, gen_query(rng, a, b))) for i in range(size)]
        index += size


def fuzz(
    seed: int, queries: int, budget_s: float, batch: int = BATCH, log: Callable[[str], None] | None = None
) -> Report:
    """Generate and run ``queries`` statements (fewer when the budget runs out before a batch starts)."""
    report = Report()
    start = time.monotonic()
    for trials in generate(seed, queries, batch):
        elapsed = time.monotonic() - start
        if elapsed > budget_s:
            break
        results = run_trials([t for _, t in trials], timeout=max(budget_s - elapsed, 60) + 300)
        for (index, trial), (verdict, _, _) in zip(trials, results, strict=True):
            report.add(index, trial, verdict)
        if log:
            log(
                f"  ... {report.total} queries, {len(report.findings)} differences, "
                f"{time.monotonic() - start:.0f} s"
            )
    report.seconds = time.monotonic() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--budget-seconds", type=float, default=3600, help="no new batch starts after this")
    parser.add_argument("--batch", type=int, default=BATCH, help="queries per PyFlink JVM")
    parser.add_argument(
        "--out", type=Path, help="shrink the differences and append them as cases to this file"
    )
    parser.add_argument(
        "--shrink-seconds", type=float, default=900, help="time for shrinking, all findings together"
    )
    parser.add_argument(
        "--max-shrink", type=int, default=12, help="shrink at most this many findings (distinct first)"
    )
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    report = fuzz(args.seed, args.queries, args.budget_seconds, args.batch, log)
    print(report.summary())
    known = known_origins(args.out) if args.out else known_origins()
    new = [f for f in report.findings if not set(f.origins) & known]
    print(f"{len(report.findings) - len(new)} differences already recorded, {len(new)} new")
    if not args.out or not new:
        return 0
    chosen: list[Finding] = []
    by_signature: dict[str, Finding] = {}
    for f in new:  # one finding per signature is shrunk; the others' origins ride along with it
        first = by_signature.get(f.signature)
        if first is None and len(chosen) < args.max_shrink:
            by_signature[f.signature] = f
            chosen.append(f)
        elif first is not None:
            first.origins.extend(f.origins)
    log(
        f"shrinking {len(chosen)} differences (of {len(new)} new; same signature folded, "
        f"--max-shrink {args.max_shrink})"
    )
    crashes = [f for f in chosen if f.verdict.status in ("internal",)]
    shrink(chosen, time.monotonic() + args.shrink_seconds)
    added = record(chosen, args.seed, args.out)
    print(
        f"recorded {len(added)} new cases in {args.out}: {', '.join(added) or '-'} "
        f"({len(crashes)} internal exceptions)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
