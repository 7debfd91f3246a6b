"""Top-N and deduplication: `ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) AS rn` in a
subquery, filtered by the enclosing query (`WHERE rn <= N`, `rn < N`, `rn = 1`), as Flink plans
them (Rank / Deduplicate)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from clickstream.errors import UnsupportedFeatureError
from clickstream.sql.statements import position_of


@dataclass
class RankFilter:
    """What the enclosing query asked of the row number."""

    limit: int
    rank_name: str


def rank_window(select: exp.Select) -> exp.Alias | None:
    """The `ROW_NUMBER() OVER (...) AS rn` item of a SELECT list, if any."""
    found = None
    for item in select.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(inner, exp.Window) and isinstance(inner.this, exp.RowNumber):
            if not isinstance(item, exp.Alias):
                raise UnsupportedFeatureError(
                    "ROW_NUMBER() needs an alias (AS rn) so the enclosing query can filter on it",
                    *position_of(inner),
                )
            if found is not None:
                raise UnsupportedFeatureError(
                    "only one ROW_NUMBER() per query is supported", *position_of(inner)
                )
            found = item
    return found


def split_rank_filter(outer: exp.Select, rank_name: str) -> tuple[RankFilter, exp.Select]:
    """Take the `rn <= N` conjuncts out of the outer WHERE; the rest stays a filter."""
    where = outer.args.get("where")
    conjuncts = (
        list(where.this.flatten())
        if where and isinstance(where.this, exp.And)
        else ([where.this] if where else [])
    )
    limit, rest = None, []
    for conjunct in conjuncts:
        bound = _rank_bound(conjunct, rank_name)
        if bound is None:
            rest.append(conjunct)
        else:
            limit = bound if limit is None else min(limit, bound)
    if limit is None:
        raise UnsupportedFeatureError(
            f"ROW_NUMBER() is only supported for Top-N and deduplication: the enclosing query "
            f"must filter on it (WHERE {rank_name} <= N or {rank_name} = 1)",
            *position_of(outer),
        )
    outer = outer.copy()
    remaining = None
    for conjunct in rest:
        remaining = conjunct.copy() if remaining is None else exp.and_(remaining, conjunct.copy())
    outer.set("where", exp.Where(this=remaining) if remaining is not None else None)
    return RankFilter(limit, rank_name), outer


def _rank_bound(node: exp.Expression, rank_name: str) -> int | None:
    """N for `rn <= N`, `rn < N+1`, `rn = 1`, `N >= rn`; None if `node` is something else."""
    if not isinstance(node, exp.LTE | exp.LT | exp.EQ | exp.GTE | exp.GT):
        return None
    left, right = node.this, node.expression
    flipped = False
    if isinstance(right, exp.Column) and right.name.lower() == rank_name.lower():
        left, right, flipped = right, left, True
    if not (isinstance(left, exp.Column) and left.name.lower() == rank_name.lower()):
        return None
    if not (isinstance(right, exp.Literal) and not right.is_string):
        raise UnsupportedFeatureError(
            f"the bound on {rank_name} must be an integer literal", *position_of(node)
        )
    value = int(right.this)
    kind = type(node)
    if flipped:
        kind = {exp.GTE: exp.LTE, exp.GT: exp.LT, exp.LTE: exp.GTE, exp.LT: exp.GT}.get(kind, kind)
    if kind is exp.LTE:
        return value
    if kind is exp.LT:
        return value - 1
    if kind is exp.EQ and value == 1:
        return 1
    raise UnsupportedFeatureError(
        f"filter on {rank_name} must be {rank_name} <= N, {rank_name} < N or {rank_name} = 1",
        *position_of(node),
    )
