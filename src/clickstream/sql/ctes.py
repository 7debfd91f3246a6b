"""`WITH name AS (query), ...`: common table expressions, inlined as named subqueries.

A CTE is a subquery with a name, so the planner never sees one: each reference to a CTE in FROM, in
a JOIN or in a window TVF's `TABLE name` is replaced by a copy of its query, aliased by the name
(or by the reference's own alias). Each use is planned on its own, as Flink plans a CTE used twice
as two subtrees; scans of the same table are still shared.

Scoping follows SQL: a CTE sees the CTEs defined before it in the same WITH and those of enclosing
queries, and shadows a table or view of the same name; of two CTEs with the same name in one WITH
the later wins (Flink accepts that too).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from clickstream.errors import UnsupportedFeatureError
from clickstream.sql.statements import position_of


@dataclass(frozen=True)
class _Cte:
    query: exp.Expression
    columns: tuple[exp.Identifier, ...]  # `WITH t (a, b) AS (...)` renames the query's columns


def inline_ctes(query: exp.Expression) -> exp.Expression:
    """A copy of `query` with every WITH clause (at any depth) removed and its names inlined."""
    return _inline(query.copy(), {})


def _inline(node: exp.Expression, visible: dict[str, _Cte]) -> exp.Expression:
    with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
    if with_ is not None:
        visible = _define(with_, visible)
        node.set("with_", None)
    if isinstance(node, exp.Table) and _is_plain_name(node) and node.name.lower() in visible:
        return _reference(node, visible[node.name.lower()])
    for child in list(node.iter_expressions()):
        replacement = _inline(child, visible)
        if replacement is not child:
            child.replace(replacement)
    return node


def _define(with_: exp.With, outer: dict[str, _Cte]) -> dict[str, _Cte]:
    if with_.args.get("recursive"):
        raise UnsupportedFeatureError("WITH RECURSIVE is not supported", *position_of(with_))
    visible = dict(outer)
    for cte in with_.expressions:
        body = _inline(cte.this, visible)  # sees only the CTEs defined before it
        alias = cte.args.get("alias")
        columns = tuple(alias.columns) if alias is not None else ()  # with their positions
        visible[cte.alias.lower()] = _Cte(body, columns)
    return visible


def _is_plain_name(table: exp.Table) -> bool:
    """`name`, not `db.name`, and not a call such as TABLE(TUMBLE(...))."""
    return isinstance(table.this, exp.Identifier) and not table.args.get("db")


def _reference(table: exp.Table, cte: _Cte) -> exp.Subquery:
    if table.args.get("version") is not None:
        raise UnsupportedFeatureError(
            f"FOR SYSTEM_TIME AS OF on the CTE '{table.name}' is not supported", *position_of(table)
        )
    name = table.alias or table.name
    alias = exp.TableAlias(this=exp.to_identifier(name), columns=[c.copy() for c in cte.columns] or None)
    return exp.Subquery(this=cte.query.copy(), alias=alias)
