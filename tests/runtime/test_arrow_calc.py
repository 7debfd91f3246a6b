"""Calcs on Arrow compute give what the same Calc gives through DuckDB, NULLs included."""

from __future__ import annotations

import pyarrow as pa
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.runtime.batch import SEQ
from clickstream.runtime.operators.arrow_calc import compile_calc
from clickstream.runtime.operators.calc import CalcOperator
from clickstream.runtime.state import JobState
from clickstream.schema import Column
from clickstream.sql.plan import CalcNode, ScanNode

SCHEMA = pa.schema(
    [("behavior", pa.string()), ("n", pa.int64()), ("ts", pa.timestamp("ms")), (SEQ, pa.int64())]
)
COLUMNS = [
    Column("behavior", "STRING", "VARCHAR"),
    Column("n", "BIGINT", "BIGINT"),
    Column("ts", "TIMESTAMP(3)", "TIMESTAMP"),
]


def _node(projections: list[tuple[str, str]], condition: str | None, columns: list[Column]) -> CalcNode:
    by_name = {c.name: c for c in columns}
    out = [
        Column(name, by_name[source].flink_type, by_name[source].duck_type) for name, source in projections
    ]
    return CalcNode(
        columns=out,
        input=ScanNode(columns=columns),
        projections=[_tree(f'"{source}"') for _, source in projections],
        condition=_tree(condition) if condition else None,
    )


def _tree(sql: str) -> sqlglot.exp.Expression:
    """A bound expression as the planner would hold it, written here in DuckDB's SQL."""
    return sqlglot.parse_one(sql, read="duckdb")


def _duckdb(nodes: list[CalcNode], batch: pa.Table) -> pa.Table:
    operator = CalcOperator(nodes, JobState())
    operator._schema = batch.schema  # keep it on DuckDB
    out = operator.process(batch)
    return out[0] if out else batch.slice(0, 0)


comparisons = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
atoms = st.one_of(
    st.builds(lambda op, v: f"\"behavior\" {op} '{v}'", comparisons, st.sampled_from("abc")),
    st.builds(lambda op, v: f'"n" {op} {v}', comparisons, st.integers(-3, 3)),
    st.builds(lambda op, v: f'{v} {op} "n"', comparisons, st.integers(-3, 3)),
    st.sampled_from(['"n" IS NULL', '"behavior" IS NOT NULL']),
)
conditions = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a} AND {b})", inner, inner),
        st.builds(lambda a, b: f"({a} OR {b})", inner, inner),
        st.builds(lambda a: f"NOT ({a})", inner),
    ),
    max_leaves=5,
)
rows = st.lists(
    st.tuples(st.one_of(st.none(), st.sampled_from("abc")), st.one_of(st.none(), st.integers(-3, 3))),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(rows=rows, condition=conditions)
def test_filters_match_duckdb(rows, condition):
    batch = pa.table(
        {
            "behavior": [r[0] for r in rows],
            "n": [r[1] for r in rows],
            "ts": pa.array([0] * len(rows), pa.timestamp("ms")),
            SEQ: list(range(len(rows))),
        },
        schema=SCHEMA,
    )
    nodes = [_node([("b", "behavior"), ("n", "n"), ("t", "ts")], condition, COLUMNS)]
    arrow = compile_calc(nodes, batch.schema)
    assert arrow is not None, condition
    got = arrow(batch)
    assert got.column_names == ["b", "n", "t", SEQ]
    assert got.to_pylist() == _duckdb(nodes, batch).to_pylist()


def test_fused_calcs_rename_then_filter_on_the_new_name():
    batch = pa.table(
        {
            "behavior": ["buy", "pv", None, "buy"],
            "n": [1, 2, 3, None],
            "ts": pa.array([0, 1, 2, 3], pa.timestamp("ms")),
            SEQ: [0, 1, 2, 3],
        },
        schema=SCHEMA,
    )
    first = _node([("kind", "behavior"), ("n", "n")], '"n" IS NOT NULL', COLUMNS)
    second = _node([("k", "kind")], "\"kind\" = 'buy'", first.columns)
    arrow = compile_calc([first, second], batch.schema)
    assert arrow is not None
    assert arrow(batch).to_pylist() == [{"k": "buy", SEQ: 0}]
    assert arrow(batch).to_pylist() == _duckdb([first, second], batch).to_pylist()


def test_anything_else_is_left_to_duckdb():
    def calc(projection: str, condition: str | None = None) -> CalcNode:
        return CalcNode(
            columns=[Column("x", "BIGINT", "BIGINT")],
            input=ScanNode(columns=COLUMNS),
            projections=[_tree(projection)],
            condition=_tree(condition) if condition else None,
        )

    assert compile_calc([calc('"n" + 1')], SCHEMA) is None  # arithmetic
    assert compile_calc([calc('UPPER("behavior")')], SCHEMA) is None  # a function
    assert compile_calc([calc('"n"', "\"n\" = '3'")], SCHEMA) is None  # needs a cast
    assert compile_calc([calc('"n"', "\"ts\" > '2017-11-26'")], SCHEMA) is None  # a time literal
    assert compile_calc([calc('"n"', '"n" = 1.5')], SCHEMA) is None  # a decimal literal
    assert compile_calc([calc('"n"', '"n" IN (1, 2)')], SCHEMA) is None
