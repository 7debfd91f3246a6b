"""The Python evaluation of simple MATCH_RECOGNIZE conditions gives DuckDB's answer (three-valued
logic, NULLs, mixed integers and decimals), and refuses what it cannot spell out."""

from __future__ import annotations

import random
from decimal import Decimal

import duckdb
import pytest
from sqlglot import exp, parse_one

from clickstream.runtime.operators.match_conditions import python_condition

TYPES = {"$r0": "INTEGER", "$r1": "DECIMAL(10,2)", "$r2": "VARCHAR", "$r3": "BOOLEAN"}
VALUES = {
    "$r0": [None, -2, 0, 3, 7],
    "$r1": [None, Decimal("-2.00"), Decimal("3.50"), Decimal("7.00")],
    "$r2": [None, "", "a", "b"],
    "$r3": [None, True, False],
}


def _random_condition(rng: random.Random, depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.3:
        choice = rng.randrange(5)
        if choice == 0:
            left, right = (
                rng.choice(['"$r0"', '"$r1"', "3", "2.5", "NULL"]),
                rng.choice(['"$r0"', '"$r1"', "7"]),
            )
            return f"{left} {rng.choice(['=', '<>', '<', '<=', '>', '>='])} {right}"
        if choice == 1:
            operator = rng.choice(["=", "<>", "<"])
            return '"$r2" ' + operator + " " + rng.choice(["'a'", "''", '"$r2"'])
        if choice == 2:
            return rng.choice(['"$r0"', '"$r2"', '"$r3"']) + " IS NULL"
        if choice == 3:
            return rng.choice(['"$r3"', "TRUE", "FALSE"])
        return '"$r3" = TRUE'
    operator = rng.choice(["AND", "OR", "NOT"])
    if operator == "NOT":
        return f"NOT ({_random_condition(rng, depth + 1)})"
    return f"({_random_condition(rng, depth + 1)}) {operator} ({_random_condition(rng, depth + 1)})"


def test_agrees_with_duckdb_on_random_conditions():
    rng = random.Random(5)
    con = duckdb.connect()
    for _ in range(150):
        text = _random_condition(rng)
        evaluate = python_condition(parse_one(text, read="duckdb"), TYPES)
        assert evaluate is not None, text
        for _ in range(6):
            row = {name: rng.choice(values) for name, values in VALUES.items()}
            params = [row[name] for name in TYPES]
            casts = ", ".join(f'CAST(? AS {t}) AS "{n}"' for n, t in TYPES.items())
            want = con.execute(f"SELECT {text} FROM (SELECT {casts})", params).fetchone()[0]
            assert evaluate(row) == want, (text, row)


@pytest.mark.parametrize(
    "text",
    ['"$r0" + 1 > 2', "UPPER(\"$r2\") = 'A'", '"$r2" = 3', "CAST(\"$r0\" AS VARCHAR) = '1'", '"$r9" = 1'],
)
def test_other_conditions_are_left_to_duckdb(text: str):
    assert python_condition(parse_one(text, read="duckdb"), TYPES) is None


def test_a_comparison_is_not_a_column_of_the_wrong_family():
    condition = exp.EQ(this=exp.column("$r3", quoted=True), expression=exp.Literal.number(1))
    assert python_condition(condition, TYPES) is None
