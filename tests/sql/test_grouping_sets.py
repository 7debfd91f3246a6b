"""The grouping sets of GROUP BY's items, as Calcite expands them."""

from __future__ import annotations

import sqlglot

import clickstream.sql.dialect  # noqa: F401 - registers the flink dialect
from clickstream.sql.grouping_sets import grouping_sets


def _sets(group_by: str) -> list[list[str]]:
    query = sqlglot.parse_one(f"SELECT 1 FROM t GROUP BY {group_by}", read="flink")
    spec = grouping_sets(list(query.args["group"].expressions), lambda e: e.sql())
    return [[spec.keys[i].sql() for i in s] for s in spec.sets]


def test_rollup_is_its_prefixes() -> None:
    assert _sets("ROLLUP (a, b)") == [["a", "b"], ["a"], []]


def test_cube_is_every_subset() -> None:
    assert _sets("CUBE (a, b)") == [["a", "b"], ["a"], ["b"], []]


def test_plain_keys_cross_the_sets() -> None:
    assert _sets("a, ROLLUP (b, c)") == [["a", "b", "c"], ["a", "b"], ["a"]]


def test_grouping_sets_keep_duplicates_and_nest() -> None:
    assert _sets("GROUPING SETS ((a), a, ROLLUP (a, b), ())") == [["a"], ["a"], ["a", "b"], ["a"], [], []]


def test_grouping_value_sets_a_bit_per_rolled_up_key() -> None:
    query = sqlglot.parse_one("SELECT 1 FROM t GROUP BY CUBE (a, b)", read="flink")
    spec = grouping_sets(list(query.args["group"].expressions), lambda e: e.sql())
    # sets: (a, b), (a), (b), (): GROUPING(a, b) is 0, 1, 2, 3
    assert [spec.grouping_value(i, [0, 1]) for i in range(4)] == [0, 1, 2, 3]
    assert [spec.group_id(i) for i in range(4)] == [0, 0, 0, 0]
