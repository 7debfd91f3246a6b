"""Clauses sqlglot reads that Flink SQL does not have: refused by name
with their position, never silently dropped; and QUALIFY, planned as the Top-N it stands for.

sqlglot parses the union of many dialects: a `DISTRIBUTE BY` (Hive), `GROUP BY ALL` (DuckDB) or a
window frame's `EXCLUDE` lands in an argument of the tree that no planning step reads. Flink's
parser stops at each of these ("Encountered ..."), and its planner cannot plan `TABLESAMPLE`.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.tokens import Token

from clickstream.errors import SqlError, SqlParseError, UnsupportedFeatureError
from clickstream.sql.dialect import Flink

NOT_FLINK = "Flink SQL has no such clause"

# (node type, argument) -> (the clause's name, the keyword to point at, error kind, why)
_FOREIGN: dict[tuple[type[exp.Expression], str], tuple[str, str, type[SqlError], str]] = {
    (exp.Select, "distribute"): ("DISTRIBUTE BY", "DISTRIBUTE", SqlParseError, NOT_FLINK),
    (exp.Select, "cluster"): ("CLUSTER BY", "CLUSTER", SqlParseError, NOT_FLINK),
    (exp.Select, "sort"): ("SORT BY", "SORT", SqlParseError, NOT_FLINK),
    (exp.Select, "laterals"): ("LATERAL VIEW", "LATERAL", SqlParseError, NOT_FLINK),
    (exp.Select, "connect"): ("CONNECT BY", "CONNECT", SqlParseError, NOT_FLINK),
    (exp.Select, "prewhere"): ("PREWHERE", "PREWHERE", SqlParseError, NOT_FLINK),
    (exp.Select, "locks"): ("FOR UPDATE / FOR SHARE", "FOR", SqlParseError, NOT_FLINK),
    (exp.Select, "into"): ("SELECT ... INTO", "INTO", SqlParseError, NOT_FLINK),
    (exp.Select, "exclude"): ("SELECT * EXCLUDE", "EXCLUDE", SqlParseError, NOT_FLINK),
    (exp.Select, "settings"): ("SETTINGS", "SETTINGS", SqlParseError, NOT_FLINK),
    (exp.Select, "format"): ("FORMAT", "FORMAT", SqlParseError, NOT_FLINK),
    (exp.Select, "options"): ("OPTION", "OPTION", SqlParseError, NOT_FLINK),
    (exp.Select, "for_"): ("FOR XML / FOR JSON", "FOR", SqlParseError, NOT_FLINK),
    (exp.Select, "sample"): ("TABLESAMPLE", "TABLESAMPLE", UnsupportedFeatureError, "Flink cannot plan it"),
    (exp.Table, "sample"): ("TABLESAMPLE", "TABLESAMPLE", UnsupportedFeatureError, "Flink cannot plan it"),
    (exp.Table, "pivots"): ("PIVOT", "PIVOT", SqlParseError, NOT_FLINK),
    (exp.Table, "changes"): ("CHANGES", "CHANGES", SqlParseError, NOT_FLINK),
    (exp.Table, "ordinality"): ("WITH ORDINALITY on a table", "WITH", SqlParseError, NOT_FLINK),
    (exp.WindowSpec, "exclude"): ("EXCLUDE in a window frame", "EXCLUDE", SqlParseError, NOT_FLINK),
    (exp.Group, "all"): ("GROUP BY ALL", "ALL", SqlParseError, NOT_FLINK),
    (exp.Group, "totals"): ("WITH TOTALS", "TOTALS", SqlParseError, NOT_FLINK),
}


def check_clauses(tree: exp.Expr, text: str) -> None:
    """Raise for the first clause of `tree` (parsed from `text`) that Flink SQL does not have or
    that is not planned here; the position is that of its keyword in `text`."""
    for node in tree.walk():
        for (kind, arg), (name, keyword, error, why) in _FOREIGN.items():
            if isinstance(node, kind) and node.args.get(arg):
                raise error(f"{name} is not supported: {why}", *_keyword_position(text, keyword, node))
        if isinstance(node, exp.Select) and node.args.get("qualify") is not None:
            _check_qualify(node, node.args["qualify"], text)


def _check_qualify(select: exp.Select, qualify: exp.Qualify, text: str) -> None:
    """QUALIFY filters on window functions of the rows a plain SELECT gives (Flink 2.3 fails to
    plan it over an aggregation)."""
    problem = None
    if select.args.get("group") or _has_aggregate(select):
        problem = "QUALIFY over an aggregation (GROUP BY) is not supported"
    elif not list(qualify.find_all(exp.Window)) and not _window_aliases(select) & _names(qualify):
        problem = "QUALIFY needs a window function (... OVER (...)) in its condition"
    if problem:
        raise UnsupportedFeatureError(problem, *_keyword_position(text, "QUALIFY", select))


def _window_aliases(select: exp.Select) -> set[str]:
    return {e.alias.lower() for e in select.expressions if isinstance(e, exp.Alias) and e.find(exp.Window)}


def _names(node: exp.Expression) -> set[str]:
    return {c.name.lower() for c in node.find_all(exp.Column) if not c.table}


def _has_aggregate(select: exp.Select) -> bool:
    return any(
        a.find_ancestor(exp.Window) is None for item in select.expressions for a in item.find_all(exp.AggFunc)
    )


def _keyword_position(text: str, keyword: str, node: exp.Expr) -> tuple[int | None, int | None]:
    """The line and column of the first `keyword` token after the start of `node`'s text."""
    start = _start_offset(node)
    tokens = [t for t in Flink().tokenize(text) if t.text.upper().split()[0] == keyword]
    chosen = [t for t in tokens if t.start >= start][:1]
    return (chosen[0].line, _token_col(chosen[0])) if chosen else (None, None)


def _start_offset(node: exp.Expr) -> int:
    starts = [n.meta["start"] for n in node.walk() if hasattr(n, "meta") and "start" in n.meta]
    return min(starts, default=0)


def _token_col(token: Token) -> int:
    return max(token.col - len(token.text) + 1, 1)  # sqlglot's col is the token's last character


# --- QUALIFY ----------------------------------------------------------------------------------

QUALIFY_RANK = "$qualify"  # prefix of the hidden columns a QUALIFY adds to its subquery


def hidden_by_qualify(name: str) -> bool:
    return name.startswith(QUALIFY_RANK)


def without_qualify(query: exp.Select) -> exp.Select:
    """`SELECT items FROM ... QUALIFY cond` as `SELECT * FROM (SELECT items, ... FROM ...) WHERE
    cond`, where the subquery also computes, as hidden columns `$qualify...`, the windows of
    `cond` and the columns it reads that are not the items' aliases (those it reads from the
    subquery's result). `ROW_NUMBER() OVER (...) <= N` makes the subquery a Top-N, as Flink plans
    it; other windows (OVER aggregates) are columns of it."""
    condition = query.args["qualify"].this.copy()
    inner = query.copy()
    inner.set("qualify", None)
    aliases = {e.alias.lower() for e in query.expressions if isinstance(e, exp.Alias)}
    extra: list[exp.Expr] = []

    def hide(node: exp.Expression) -> None:
        name = f"{QUALIFY_RANK}{len(extra)}"
        extra.append(exp.alias_(node.copy(), name, quoted=True))
        node.replace(exp.column(name, quoted=True))

    window = _rank_window(condition)
    if window is not None:
        extra.append(exp.alias_(window.copy(), QUALIFY_RANK, quoted=True))
        window.replace(exp.column(QUALIFY_RANK, quoted=True))
    for over in list(condition.find_all(exp.Window)):
        hide(over)
    for column in list(condition.find_all(exp.Column)):
        if not hidden_by_qualify(column.name) and (column.table or column.name.lower() not in aliases):
            hide(column)
    inner.set("expressions", list(inner.expressions) + extra)
    return exp.select("*").from_(exp.Subquery(this=inner)).where(condition)


def _rank_window(condition: exp.Expression) -> exp.Window | None:
    """The ROW_NUMBER() OVER (...) that `condition` compares, when it is the only window in it."""
    windows = list(condition.find_all(exp.Window))
    if len(windows) == 1 and isinstance(windows[0].this, exp.RowNumber) and windows[0].parent is condition:
        return windows[0]
    return None


def output_name(item: exp.Expression, index: int) -> str:
    """The column name Flink gives a SELECT item."""
    if isinstance(item, exp.Alias):
        return item.alias
    if isinstance(item, exp.Column):
        return item.name
    return f"EXPR${index}"
