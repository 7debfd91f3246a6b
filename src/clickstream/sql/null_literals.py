"""Where Flink accepts an untyped `NULL` literal, and the error where it does not.

Flink's validator (Calcite, without type coercion) types a bare `NULL` from its place in the query
and refuses it where nothing gives it a type: "Illegal use of 'NULL'". Tried on PyFlink 2.3 (the
`null_literal_*` conformance cases), a bare `NULL` is accepted

- as an operand of a comparison (`=`, `<>`, `<`, ..., `IS [NOT] DISTINCT FROM`), of `IN` (either
  side) and of `BETWEEN`; as the operand of `IS [NOT] NULL`;
- as a `THEN` or `ELSE` value of `CASE` and an argument of `COALESCE`/`IFNULL`, when another branch
  or argument is not a bare `NULL` ("ELSE clause or at least one THEN clause must be non-NULL");
  as a `WHEN` condition; as the second argument of `NULLIF`;
- in `CAST(NULL AS type)`, and as a whole `WHERE`, `HAVING` or `ON` condition;

and refused everywhere else: arithmetic, `AND`/`OR`/`NOT`, `IS TRUE`, `IF(...)`, function and
aggregate arguments (`UPPER(NULL)`, `COUNT(NULL)`), a select item of its own (`SELECT NULL AS x`).
"""

from __future__ import annotations

from sqlglot import exp

from clickstream.errors import SqlValidationError

_COMPARISONS = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.In,
    exp.Between,
)
# Places that give a bare NULL a type: comparisons, casts, and a condition of its own (BOOLEAN).
_TYPED_PLACES = (*_COMPARISONS, exp.Cast, exp.TryCast, exp.Where, exp.Having, exp.Join)
_ALL_NULL = "ELSE clause or at least one THEN clause must be non-NULL"
_HINT = "Give the NULL a type: CAST(NULL AS <type>)."


def check_null_literals(node: exp.Expression) -> None:
    """Raise Flink's validation error for the first bare NULL in `node` that Flink refuses."""
    for null in node.find_all(exp.Null):
        problem = _problem(null)
        if problem is not None:
            from clickstream.sql.statements import position_of

            raise SqlValidationError(problem, *position_of(null), _HINT)


def _problem(null: exp.Null) -> str | None:
    """Why Flink refuses this NULL, or None when it accepts it."""
    child, parent = _unwrapped(null)
    if parent is None or isinstance(parent, _TYPED_PLACES):
        return None
    if isinstance(parent, exp.Is):  # `x IS NULL` and `NULL IS NULL`, not `NULL IS TRUE`
        return None if isinstance(parent.expression, exp.Null) else "Illegal use of 'NULL'"
    if isinstance(parent, exp.Nullif):
        return None if child is parent.expression else _ALL_NULL
    if isinstance(parent, exp.If) and isinstance(parent.parent, exp.Case):  # WHEN c THEN v
        return _case_problem(parent.parent)
    if isinstance(parent, exp.Case):
        return None if child is parent.this else _case_problem(parent)
    if isinstance(parent, exp.Coalesce):
        arguments = [parent.this, *parent.expressions]
        return None if any(not _is_null(a) for a in arguments) else "Illegal use of 'NULL'"
    return "Illegal use of 'NULL'"


def _case_problem(case: exp.Case) -> str | None:
    values = [i.args.get("true") for i in case.args.get("ifs") or []] + [case.args.get("default")]
    return None if any(v is not None and not _is_null(v) for v in values) else _ALL_NULL


def _unwrapped(null: exp.Expr) -> tuple[exp.Expr, exp.Expr | None]:
    """The NULL (inside any parentheses) and what holds it."""
    child, parent = null, null.parent
    while isinstance(parent, exp.Paren):
        child, parent = parent, parent.parent
    return child, parent


def _is_null(node: exp.Expression) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Null)
