"""Top-N and deduplication: `ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) AS rn` in a
subquery, filtered by the enclosing query (`WHERE rn <= N`, `rn = N`, `rn BETWEEN a AND b`, ...),
as Flink plans them (Rank / Deduplicate)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from clickstream.errors import UnsupportedFeatureError
from clickstream.sql.statements import position_of


@dataclass
class RankFilter:
    """What the enclosing query asked of the row number: ranks `start` to `limit`."""

    limit: int
    rank_name: str
    start: int = 1


def rank_window(select: exp.Select) -> exp.Alias | None:
    """The `ROW_NUMBER() OVER (...) AS rn` item of a SELECT list, if any."""
    found = None
    for item in select.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(inner, exp.Window) and isinstance(inner.this, exp.Rank | exp.DenseRank):
            name = "RANK" if isinstance(inner.this, exp.Rank) else "DENSE_RANK"
            raise UnsupportedFeatureError(
                f"{name}() on streaming table is not supported currently", *position_of(inner)
            )
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


def filters_on(outer: exp.Select, rank_name: str) -> bool:
    """Does the enclosing query's WHERE read the row number? Without any condition on it,
    ROW_NUMBER() is an OVER aggregate that numbers every row, not a Top-N (as in Flink)."""
    where = outer.args.get("where")
    return where is not None and any(c.name.lower() == rank_name.lower() for c in where.find_all(exp.Column))


def split_rank_filter(outer: exp.Select, rank_name: str) -> tuple[RankFilter, exp.Select]:
    """Take the bounds on the row number (`rn <= N`, `rn = N`, `rn BETWEEN a AND b`, ...) out of
    the outer WHERE; the rest stays a filter."""
    where = outer.args.get("where")
    conjuncts = (
        list(where.this.flatten())
        if where and isinstance(where.this, exp.And)
        else ([where.this] if where else [])
    )
    low, high, rest = 1, None, []
    for conjunct in conjuncts:
        bounds = _rank_bounds(conjunct, rank_name)
        if bounds is None:
            rest.append(conjunct)
            continue
        low = max(low, bounds[0])
        if bounds[1] is not None:
            high = bounds[1] if high is None else min(high, bounds[1])
    if high is None:
        # Flink's words: a streaming rank must be a Top-N
        raise UnsupportedFeatureError(
            "Rank end is not specified. Currently rank only support TopN, which means the rank end "
            f"must be specified (e.g. WHERE {rank_name} <= N)",
            *position_of(where or outer),
        )
    if low > high:
        raise UnsupportedFeatureError(
            f"the bounds on {rank_name} select no rank ({low} to {high})", *position_of(where or outer)
        )
    outer = outer.copy()
    remaining = None
    for conjunct in rest:
        remaining = conjunct.copy() if remaining is None else exp.and_(remaining, conjunct.copy())
    outer.set("where", exp.Where(this=remaining) if remaining is not None else None)
    return RankFilter(high, rank_name, low), outer


def _rank_bounds(node: exp.Expr, rank_name: str) -> tuple[int, int | None] | None:
    """(lowest, highest or None) rank that `node` keeps, if it bounds the row number:
    `rn <= N`, `rn < N`, `rn = N`, `rn >= N`, `rn > N`, `N >= rn`, `rn BETWEEN a AND b`."""
    if isinstance(node, exp.Between) and _is_rank(node.this, rank_name):
        return _literal(node.args["low"], node, rank_name), _literal(node.args["high"], node, rank_name)
    if not isinstance(node, exp.LTE | exp.LT | exp.EQ | exp.GTE | exp.GT):
        return None
    left, right = node.this, node.expression
    kind = type(node)
    if _is_rank(right, rank_name):
        left, right = right, left
        kind = {exp.GTE: exp.LTE, exp.GT: exp.LT, exp.LTE: exp.GTE, exp.LT: exp.GT}.get(kind, kind)
    if not _is_rank(left, rank_name):
        return None
    value = _literal(right, node, rank_name)
    return {
        exp.LTE: (1, value),
        exp.LT: (1, value - 1),
        exp.EQ: (value, value),
        exp.GTE: (value, None),
        exp.GT: (value + 1, None),
    }[kind]


def _is_rank(node: exp.Expr, rank_name: str) -> bool:
    return isinstance(node, exp.Column) and node.name.lower() == rank_name.lower()


def _literal(node: exp.Expr, where: exp.Expression, rank_name: str) -> int:
    if not (isinstance(node, exp.Literal) and not node.is_string and node.is_int):
        raise UnsupportedFeatureError(
            f"the bound on {rank_name} must be an integer literal", *position_of(where)
        )
    return int(node.this)
