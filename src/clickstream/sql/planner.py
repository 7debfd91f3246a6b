"""From a parsed query to a logical plan: resolve names, check types, pick streaming operators.

One handler per clause, like RisingWave's planner: FROM (tables, views, subqueries, lookup joins,
window TVFs), WHERE, GROUP BY / aggregates (window or unbounded), SELECT, and INSERT's sink checks.
DuckDB infers and checks expression types on an empty input, so a type error is found here, before
any data flows.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb
from sqlglot import exp

from clickstream.config import Settings
from clickstream.errors import (
    CatalogError,
    PlanningError,
    SqlError,
    SqlValidationError,
    UnsupportedFeatureError,
)
from clickstream.schema import (
    WATERMARK_COLUMN,
    Column,
    ConnectorCapabilities,
    TableDef,
    plan_name,
    with_plan_name,
)
from clickstream.sql import joins, over, render
from clickstream.sql.aggregation import AggregatePlanner
from clickstream.sql.catalog import Catalog, ViewDef
from clickstream.sql.clauses import hidden_by_qualify, output_name, without_qualify
from clickstream.sql.ctes import inline_ctes
from clickstream.sql.expressions import WindowTvf
from clickstream.sql.functions import translate
from clickstream.sql.intersect_except import plan_intersect_except
from clickstream.sql.join_planner import JoinPlanner
from clickstream.sql.match_recognize import plan_match_recognize
from clickstream.sql.optimize import push_filters
from clickstream.sql.plan import (
    CalcNode,
    ChangelogNormalizeNode,
    GroupAggregateNode,
    JoinNode,
    PlanNode,
    RankNode,
    ScanNode,
    SinkNode,
    WindowAggregateNode,
)
from clickstream.sql.ranking import RankFilter, filters_on, rank_window, split_rank_filter
from clickstream.sql.scope import Scope, ScopeEntry, unique_name
from clickstream.sql.set_operations import plan_set_operation
from clickstream.sql.sorting import plan_sorted
from clickstream.sql.statements import InsertStatement, Statement, position_of
from clickstream.sql.subqueries import has_subquery, is_subquery, plan_select, plan_where
from clickstream.sql.types import flink_type_of_duckdb, normalize_duckdb_type
from clickstream.sql.unnest import plan_unnest
from clickstream.sql.windowing import WindowTvfRelation, interval_ms, parse_window_tvf

# What a table's connector can do: given by the engine, which knows the connectors (the SQL layer does not).
CapabilitiesOf = Callable[[TableDef], ConnectorCapabilities]


class Planner:
    """Plans the queries of one job; scans of the same table are shared between queries."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        capabilities: CapabilitiesOf,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.capabilities = capabilities
        self.scans: dict[str, ScanNode] = {}
        self._rank_filters: dict[int, RankFilter] = {}
        # type inference only: one connection can serve every planner of an engine
        self._con = con or duckdb.connect()
        self._con.execute(f"SET TimeZone = '{settings.local_time_zone}'")

    # --- statements ---------------------------------------------------------------------------

    def plan_insert(self, statement: InsertStatement) -> SinkNode:
        try:
            return self._plan_insert(statement)
        except SqlError as error:
            raise _in_statement(error, statement) from None

    def plan_query(self, query: exp.Expression, statement: Statement) -> tuple[PlanNode, list[str]]:
        """The plan of a SELECT and its output column names (as the user sees them)."""
        try:
            node, scope = self._query(query)
        except SqlError as error:
            raise _in_statement(error, statement) from None
        return push_filters(node), [e.name for e in scope.visible()]

    def _plan_insert(self, statement: InsertStatement) -> SinkNode:
        target = self.catalog.get(statement.target)
        if not isinstance(target, TableDef):
            line, col = position_of(statement.target_node)
            what = "a view" if isinstance(target, ViewDef) else "not found"
            raise CatalogError(f"Sink table '{statement.target}' is {what}", line, col)
        if not self.capabilities(target).can_be("sink"):
            line, col = position_of(statement.target_node)
            raise PlanningError(
                f"Table '{target.name}' (connector '{target.connector}') cannot be written to", line, col
            )
        node, scope = self._query(statement.query)
        outputs = scope.visible()
        sink_columns = self._sink_columns(target, statement)
        if len(outputs) != len(sink_columns):
            raise SqlValidationError(
                f"Column types of query result and sink for '{target.name}' do not match. "
                f"Cause: Different number of columns. Query has {len(outputs)}, "
                f"sink has {len(sink_columns)}: {', '.join(c.name for c in sink_columns)}",
                *position_of(statement.query),
            )
        self._check_sink_types(statement, outputs, sink_columns, target)
        self._check_changelog(node, target)
        by_sink_name = {c.name: e for c, e in zip(sink_columns, outputs, strict=True)}
        projections: list[exp.Expression] = []
        for column in target.physical:
            entry = by_sink_name.get(column.name)
            if entry is None:
                projections.append(render.null_of(column.duck_type))
            elif normalize_duckdb_type(entry.column.duck_type) == column.duck_type:
                projections.append(render.column(entry.internal))
            else:
                projections.append(render.try_cast(render.column(entry.internal), column.duck_type))
        key_map = {
            by_sink_name[c.name].internal: plan_name(c.name)
            for c in target.physical
            if c.name in by_sink_name
        }
        columns = [with_plan_name(c) for c in target.physical]  # the sink writes them by position
        calc = CalcNode(columns=columns, input=node, projections=projections, key_map=key_map)
        self._choose_update_folding(calc, target)
        return SinkNode(columns=list(columns), input=push_filters(calc), table=target)

    def _sink_columns(self, target: TableDef, statement: InsertStatement) -> list[Column]:
        if not statement.columns:
            return list(target.persisted)
        columns = []
        for name in statement.columns:
            column = next((c for c in target.persisted if c.name.lower() == name.lower()), None)
            if column is None:
                raise SqlValidationError(
                    f"Unknown target column '{name}' in '{target.name}'", *position_of(statement.target_node)
                )
            columns.append(column)
        return columns

    def _check_sink_types(
        self,
        statement: InsertStatement,
        outputs: list[ScopeEntry],
        sink_columns: list[Column],
        target: TableDef,
    ) -> None:
        for entry, column in zip(outputs, sink_columns, strict=True):
            source_family = _family(entry.column.duck_type)
            sink_family = _family(column.duck_type)
            if source_family != sink_family and "null" not in (source_family, sink_family):
                raise SqlValidationError(
                    f"Incompatible types for sink column '{column.name}' of '{target.name}': "
                    f"query gives {entry.column.flink_type} ({entry.name}), sink wants "
                    f"{column.flink_type}",
                    *position_of(statement.query),
                    hint="Add a CAST in the SELECT list.",
                )

    def _check_changelog(self, node: PlanNode, target: TableDef) -> None:
        if not node.updating or target.primary_key:
            return
        if self.capabilities(target).sink_mode == "changelog":
            return
        producer = _first_updating(node)
        raise PlanningError(
            f"Table sink '{target.name}' doesn't support consuming update changes which is "
            f"produced by node {producer.describe()}",
            hint="Declare a PRIMARY KEY (...) NOT ENFORCED on the sink so it can upsert, or use "
            "a windowed aggregation, which only appends.",
        )

    def _choose_update_folding(self, calc: CalcNode, target: TableDef) -> None:
        """Per-record updates when the sink's key is not the query's upsert key (see plan.py)."""
        upserts = self.capabilities(target).sink_mode == "upsert"
        if not calc.input.updating or not target.primary_key or not upserts:
            return
        upsert = calc.upsert_keys
        sink_key = {plan_name(k).lower() for k in target.primary_key}
        if upsert is not None and {k.lower() for k in upsert} == sink_key:
            return
        aggregate = _first_updating(calc)
        if isinstance(aggregate, GroupAggregateNode) and not _nets_changes_above(calc, aggregate):
            aggregate.per_record = True

    # --- queries ------------------------------------------------------------------------------

    def _query(self, query: exp.Expression) -> tuple[PlanNode, Scope]:
        if isinstance(query, exp.Subquery):
            return self._query(query.this)
        if query.args.get("with_") is not None:
            query = inline_ctes(query)
        if any(query.args.get(clause) for clause in ("order", "limit", "offset")):
            return plan_sorted(self, query)
        if isinstance(query, exp.Intersect | exp.Except):
            return plan_intersect_except(self, query)
        if isinstance(query, exp.Union):
            return plan_set_operation(self, query)
        if isinstance(query, exp.Select) and query.args.get("qualify"):
            return self._query(without_qualify(query))
        if not isinstance(query, exp.Select):
            raise UnsupportedFeatureError(
                f"{type(query).__name__} queries are not supported", *position_of(query)
            )
        if query.args.get("distinct") and _distinct_of_result(query):
            return self._distinct(query)
        window_item = rank_window(query)
        rank = self._rank_filters.pop(id(query), None) if window_item is not None else None
        if window_item is not None and rank is not None:
            return self._rank(query, window_item, rank)
        # a ROW_NUMBER() that nothing filters on numbers every row: an OVER aggregate (below)
        query = self._take_rank_filter(query)
        joins.conditions_from_where(query)
        node, scope, window = self._from(query)
        where = query.args.get("where")
        filtered = where.this if where else None
        if filtered is not None and has_subquery(filtered):
            if window is not None:  # Flink filters the TVF's rows: window bounds are plain columns
                if window.spec.kind != "TUMBLE":
                    raise UnsupportedFeatureError(
                        f"a subquery in the WHERE of a {window.spec.kind} window query is not supported",
                        *position_of(where),
                    )
                node, scope = window.as_columns(self, node, scope)
                window = None
            node, scope, filtered = plan_where(self, node, scope, filtered)
        if any(has_subquery(item) for item in query.expressions):
            node, scope, items = plan_select(self, node, scope, list(query.expressions))
            query = query.copy()
            query.set("expressions", items)
        condition = self.bind(filtered, scope) if filtered is not None else None
        if over.over_windows(query):
            if query.args.get("group") or window is not None:
                raise UnsupportedFeatureError(
                    "OVER windows together with GROUP BY or a window TVF are not supported",
                    *position_of(query),
                )
            return over.plan_over(self, query, node, scope, condition)
        if query.args.get("group") or _has_aggregate(query) or query.args.get("distinct"):
            return AggregatePlanner(self).plan(query, node, scope, condition, window)
        if window is not None:
            node, scope = window.as_columns(self, node, scope)
        return self._select(query, node, scope, condition)

    def _distinct(self, query: exp.Select) -> tuple[PlanNode, Scope]:
        """SELECT DISTINCT over an aggregate, OVER or ROW_NUMBER(): group the query's result."""
        distinct = query.args["distinct"]
        query.set("distinct", None)  # in place: the rank filters are registered by id(query)
        try:
            node, scope = self._query(query)
        finally:
            query.set("distinct", distinct)
        return AggregatePlanner(self).plan_distinct(node, scope)

    def query_plan(self, query: exp.Expression) -> tuple[PlanNode, Scope]:
        """The plan of a query inside this one (a UNION's input, a subquery)."""
        return self._query(query)

    def select_over(self, query: exp.Select, node: PlanNode, scope: Scope) -> tuple[PlanNode, Scope]:
        """The SELECT list over an OverAggregate's output (its columns qualified `__over__`)."""
        return self._select(query, node, scope, None)

    def _take_rank_filter(self, query: exp.Select) -> exp.Select:
        """If FROM is a subquery with ROW_NUMBER(), move this query's `rn <= N` to it."""
        source = query.args.get("from_")
        inner = source.this if source is not None else None
        if not isinstance(inner, exp.Subquery) or not isinstance(inner.this, exp.Select):
            return query
        window_item = rank_window(inner.this)
        if window_item is None or not filters_on(query, window_item.alias):
            return query
        rank, query = split_rank_filter(query, window_item.alias)
        inner = query.args["from_"].this.this
        self._rank_filters[id(inner)] = rank
        return query

    def _rank(self, query: exp.Select, window_item: exp.Alias, rank: RankFilter) -> tuple[PlanNode, Scope]:
        """Plan the subquery without its ROW_NUMBER(), computing the partition and order keys as
        hidden columns, then rank its rows."""
        window = window_item.this
        partition = list(window.args.get("partition_by") or [])
        order = list(window.args["order"].expressions) if window.args.get("order") else []
        if not order:
            raise SqlValidationError("ROW_NUMBER() needs an ORDER BY", *position_of(window))
        inner = query.copy()
        inner.set(
            "expressions",
            [e.copy() for e in query.expressions if e is not window_item]
            + [exp.alias_(p.copy(), f"$p{i}") for i, p in enumerate(partition)]
            + [exp.alias_(o.this.copy(), f"$o{i}") for i, o in enumerate(order)],
        )
        node, scope = self._query(inner)
        keys = 0
        if node.updating and not node.upsert_keys:
            # The input's key (say the GROUP BY columns) is needed to apply its changes: carry it
            # as hidden columns when the SELECT list leaves it out, as Flink does.
            node, scope, keys = self._with_input_key(inner, node, scope)
        hidden = {f"$p{i}" for i in range(len(partition))} | {f"$o{i}" for i in range(len(order))}
        hidden |= {f"$k{i}" for i in range(keys)}
        rank_column = Column(
            unique_name(plan_name(rank.rank_name), {c.name.lower() for c in node.columns}), "BIGINT", "BIGINT"
        )
        rank_node = RankNode(
            columns=list(node.columns) + [rank_column],
            input=node,
            partition=[_visible_twin(node, f"$p{i}") for i in range(len(partition))],
            order=[(f"$o{i}", bool(o.args.get("desc"))) for i, o in enumerate(order)],
            limit=rank.limit,
            start=rank.start,
            rank_column=rank_column.name,
            row_key=node.upsert_keys,
            # Flink's keep-first-row on rowtime waits for the watermark and drops late rows; its
            # keep-last-row (ORDER BY rowtime DESC) takes every row as it comes.
            drop_late=rank.limit == 1 and _orders_by_rowtime(node) and not order[0].args.get("desc"),
            deduplicate=rank.limit == 1 and len(order) == 1 and _orders_by_time_attribute(node),
            last_on_rowtime=rank.limit == 1
            and len(order) == 1
            and _orders_by_rowtime(node)
            and bool(order[0].args.get("desc")),
        )
        rank_node.per_window = not node.updating and len(_window_bounds(node) & set(rank_node.partition)) == 2
        entries = [
            ScopeEntry(None, e.name, e.internal, e.column, e.internal in hidden) for e in scope.entries
        ]
        entries.append(
            ScopeEntry(None, rank.rank_name, rank_column.name, rank_column, hidden_by_qualify(rank.rank_name))
        )
        return rank_node, Scope(entries)

    def _with_input_key(self, inner: exp.Select, node: PlanNode, scope: Scope) -> tuple[PlanNode, Scope, int]:
        """Plan `inner` again with its input's key columns added as `$k0, $k1, ...`."""
        below = node.inputs[0] if isinstance(node, CalcNode) else None
        keys = below.upsert_keys if below is not None else None
        if not keys:
            return node, scope, 0
        widened = inner.copy()
        extra = [exp.alias_(exp.column(k, quoted=True), f"$k{i}") for i, k in enumerate(keys)]
        widened.set("expressions", list(widened.expressions) + extra)
        try:
            node, scope = self._query(widened)
        except SqlError:
            return node, scope, 0  # the key is not reachable by name: keep the first plan
        return node, scope, len(keys)

    def _select(
        self, query: exp.Select, node: PlanNode, scope: Scope, condition: exp.Expression | None
    ) -> tuple[PlanNode, Scope]:
        items = self.expand_star(query.expressions, scope)
        names: set[str] = set()
        columns, entries = [], []
        projections: list[exp.Expression] = []
        key_map: dict[str, str] = {}
        rowtime = None
        for index, item in enumerate(items):
            inner = item.this if isinstance(item, exp.Alias) else item
            name = unique_name(output_name(item, index), names)
            names.add(name.lower())
            projections.append(self.bind(inner, scope))
            entries.append(name)
            entry = scope.find(inner) if isinstance(inner, exp.Column) else None
            if entry is not None:
                source = entry.internal
                key_map.setdefault(source, plan_name(name))
                if source == node.rowtime and rowtime is None:  # the first copy, not a hidden one
                    rowtime = plan_name(name)
        types = self.infer_types(node, projections, condition)
        for name, duck in zip(entries, types, strict=True):
            columns.append(Column(plan_name(name), flink_type_of_duckdb(duck), normalize_duckdb_type(duck)))
        calc = CalcNode(
            columns=columns,
            input=node,
            projections=projections,
            condition=condition,
            keeps_rowtime=rowtime,
            key_map=key_map,
        )
        return calc, Scope(
            [
                ScopeEntry(None, n, c.name, c, hidden_by_qualify(n))
                for n, c in zip(entries, columns, strict=True)
            ]
        )

    def expand_star(self, items: list[exp.Expression], scope: Scope) -> list[exp.Expression]:
        expanded: list[exp.Expression] = []
        for item in items:
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
            ):
                qualifier = item.table if isinstance(item, exp.Column) else None
                for entry in scope.visible(qualifier or None):
                    expanded.append(exp.column(entry.name, table=entry.qualifier, quoted=True))
            else:
                expanded.append(item)
        return expanded

    # --- FROM ---------------------------------------------------------------------------------

    def _from(self, query: exp.Select) -> tuple[PlanNode, Scope, WindowTvfRelation | None]:
        source = query.args.get("from_") or query.args.get("from")
        if source is None:
            raise UnsupportedFeatureError("a SELECT without FROM is not supported", *position_of(query))
        node, scope, window = self.relation(source.this)
        match = query.args.get("match")
        if match is not None:
            if query.args.get("joins") or window is not None:
                raise UnsupportedFeatureError(
                    "MATCH_RECOGNIZE together with a join or a window TVF is not supported",
                    *position_of(match),
                )
            node, scope = plan_match_recognize(self, match, node, scope)
        for join in query.args.get("joins") or []:
            if isinstance(join.this, exp.Unnest):
                node, scope = plan_unnest(self, node, scope, join)
                continue
            node, scope = JoinPlanner(self).plan(node, scope, join)
        return node, scope, window

    def relation(self, relation: exp.Expression):
        alias = relation.alias if relation.alias else None
        if isinstance(relation, exp.Subquery):
            node, scope = self._query(relation.this)
            scope = _renamed(scope, relation.args.get("alias"))
            return node, scope.requalified(alias) if alias else scope, None
        if (
            isinstance(relation, exp.Table)
            and isinstance(relation.this, exp.Anonymous)
            and (relation.this.name.upper() == "TABLE")
        ):
            tvf = relation.this.expressions[0] if relation.this.expressions else None
            if not isinstance(tvf, WindowTvf):
                raise UnsupportedFeatureError(
                    "TABLE(...) needs a window function (TUMBLE, HOP, CUMULATE)", *position_of(relation)
                )
            return self._window_tvf(tvf, alias)
        if isinstance(relation, exp.Table):
            if relation.args.get("version") is not None:
                raise UnsupportedFeatureError(
                    "FOR SYSTEM_TIME AS OF is only supported on the right side of a JOIN",
                    *position_of(relation),
                )
            return (*self._named_relation(relation, alias), None)
        what = (
            "UNNEST without a table to join it to"
            if isinstance(relation, exp.Unnest)
            else type(relation).__name__
        )
        raise UnsupportedFeatureError(f"{what} in FROM is not supported", *position_of(relation))

    def _named_relation(self, relation: exp.Table, alias: str | None) -> tuple[PlanNode, Scope]:
        obj = self.catalog.get(relation.name)
        if obj is None:
            line, col = position_of(relation)
            try:
                self.catalog.table(relation.name)
            except CatalogError as error:
                error.line, error.col = line, col
                raise CatalogError(f"Object '{relation.name}' not found", line, col, error.hint) from None
        qualifier = alias or obj.name
        if isinstance(obj, ViewDef):
            node, scope = self._query(obj.query.copy())
            return node, scope.requalified(qualifier)
        if not self.capabilities(obj).can_be("source"):
            raise PlanningError(
                f"Table '{obj.name}' (connector '{obj.connector}') cannot be read as a stream",
                *position_of(relation),
            )
        scan = self.scan(obj)
        # an upsert source's changes are completed into -U/+U/-D, as Flink's ChangelogNormalize
        read: PlanNode = scan
        if scan.changelog == "upsert":
            read = ChangelogNormalizeNode(columns=list(scan.columns), input=scan, keys=scan.upsert_keys or [])
        return read, Scope(
            [
                ScopeEntry(qualifier, column.name, internal.name, internal)
                for column, internal in zip(scan.table.columns, scan.columns, strict=True)
            ]
        )

    def scan(self, table: TableDef) -> ScanNode:
        key = table.name.lower()
        if key not in self.scans:
            self.scans[key] = self._plan_scan(table)
        return self.scans[key]

    def _plan_scan(self, table: TableDef) -> ScanNode:
        # the scan's columns go by their plan names (schema.plan_name), the scope by the user's
        columns = [with_plan_name(c) for c in table.physical]
        scope = Scope(
            [ScopeEntry(None, c.name, p.name, p) for c, p in zip(table.physical, columns, strict=True)]
        )
        physical = ScanNode(columns=list(columns), table=table)
        computed_expressions: list[tuple[str, exp.Expression]] = []
        computed_columns: list[Column] = []
        for computed in table.computed:
            expression = self.bind(computed.expression, scope)
            duck = normalize_duckdb_type(self.infer_types(physical, [expression])[0])
            column = Column(computed.name, flink_type_of_duckdb(duck), duck)
            if computed.is_proctime:
                column = Column(computed.name, "TIMESTAMP_LTZ(3) *PROCTIME*", "TIMESTAMPTZ")
            internal = with_plan_name(column)
            computed_expressions.append((internal.name, expression))
            computed_columns.append(column)
            columns.append(internal)
            scope.entries.append(ScopeEntry(None, column.name, internal.name, internal))
            physical = ScanNode(columns=list(columns), table=table)
        table.computed_columns = computed_columns
        watermark_expression = None
        if table.watermark is not None:
            column = table.column(table.watermark.column)
            if column is None or not column.is_timestamp:
                raise SqlValidationError(
                    f"The rowtime attribute '{table.watermark.column}' of '{table.name}' must be "
                    "of type TIMESTAMP(3) or TIMESTAMP_LTZ(3)"
                )
            watermark_expression = self.bind(table.watermark.expression, scope)
            self.infer_types(physical, [watermark_expression])
        return ScanNode(
            columns=columns,
            table=table,
            computed_expressions=computed_expressions,
            watermark_expression=watermark_expression,
            proctime_columns=[plan_name(c.name) for c in table.computed if c.is_proctime],
            watermark_delay=_watermark_delay(table),
            changelog=self.capabilities(table).source_mode,
        )

    def _window_tvf(self, tvf: WindowTvf, alias: str | None):
        relation = tvf.expressions[0].this
        if isinstance(relation, exp.Subquery):  # `TABLE name` of a CTE (ctes.py)
            node, scope, _ = self.relation(relation)
        else:
            node, scope = self._named_relation(relation, relation.alias or None)
        window = parse_window_tvf(tvf, node, scope)
        scope = window.extend_scope(scope, alias)
        return node, scope, window

    # --- expressions and types ----------------------------------------------------------------

    def bind(self, node: exp.Expression, scope: Scope) -> exp.Expression:
        """`node` with its columns resolved in `scope` and its Flink semantics spelled in DuckDB's."""
        found = next((n for n in node.walk() if isinstance(n, exp.Expression) and is_subquery(n)), None)
        if found is not None:  # WHERE's conjuncts with subqueries are semi/anti joins by now
            raise UnsupportedFeatureError(
                "a subquery is only supported in WHERE (IN, EXISTS, a scalar aggregate) and FROM",
                *position_of(found),
            )

        def column_type(column: exp.Column) -> str:
            return scope.resolve_entry(column).column.duck_type

        def column_precision(column: exp.Column) -> int | None:
            found = re.search(r"TIMESTAMP(?:_LTZ)?\((\d)\)", scope.resolve_entry(column).column.flink_type)
            return int(found.group(1)) if found else None

        zone = self.settings.local_time_zone
        return translate(node, scope.resolve, zone, column_type, column_precision)

    def common_type(self, duck_types: list[str]) -> str | None:
        """The type DuckDB unifies `duck_types` to (UNION's rule), or None when they have none."""
        if len({_family(t) for t in duck_types} - {"null"}) > 1:
            return None
        union = " UNION ALL ".join(f"SELECT CAST(NULL AS {t}) AS c" for t in duck_types)
        try:
            return str(self._con.execute(f"DESCRIBE {union}").fetchall()[0][1])
        except duckdb.Error:
            return None

    def infer_types(
        self, node: PlanNode, projections: list[exp.Expression], condition: exp.Expression | None = None
    ) -> list[str]:
        """DuckDB's result types of `projections` over `node`'s columns; checks them too."""
        if not projections:
            if condition is not None:
                self.infer_types(node, [exp.Literal.number(1)], condition)
            return []
        inputs = ", ".join(
            [f"CAST(NULL AS {c.duck_type}) AS {render.quote(c.name)}" for c in node.columns]
            + [f"CAST(NULL AS BIGINT) AS {render.quote(WATERMARK_COLUMN)}"]  # read by CURRENT_WATERMARK
        )
        select = ", ".join(f"{render.to_sql(p)} AS __c{i}" for i, p in enumerate(projections))
        where = f" WHERE {render.to_sql(condition)}" if condition else ""
        try:
            rows = self._con.execute(
                f"DESCRIBE SELECT {select} FROM (SELECT {inputs}) AS __input{where}"
            ).fetchall()
        except duckdb.Error as error:
            message = str(error).split("\n")[0]
            for prefix in ("Binder Error: ", "Parser Error: ", "Conversion Error: "):
                message = message.replace(prefix, "")
            raise SqlValidationError(f"Type error: {message}") from None
        return [row[1] for row in rows]


def _renamed(scope: Scope, alias: exp.TableAlias | None) -> Scope:
    """`(subquery) AS t (a, b)` (or a CTE's column list): its visible columns renamed in order."""
    names = [c.name for c in alias.columns] if alias is not None else []
    if not names:
        return scope
    visible = scope.visible()
    if len(names) != len(visible):
        raise SqlValidationError(
            f"List of column aliases must have same degree as table; table has {len(visible)} "
            f"columns {[e.name for e in visible]}, whereas alias list has {len(names)} columns",
            *position_of(alias),
        )
    renames = {id(e): n for e, n in zip(visible, names, strict=True)}
    return Scope(
        [
            ScopeEntry(e.qualifier, renames.get(id(e), e.name), e.internal, e.column, e.hidden)
            for e in scope.entries
        ]
    )


def _visible_twin(node: PlanNode, hidden: str) -> str:
    """A selected column computing the same as hidden column `hidden`, if any: then the rank's
    partition key (its upsert key) survives the projections above it."""
    if isinstance(node, CalcNode):
        names = [c.name for c in node.columns]
        target = node.projections[names.index(hidden)]
        for name, projection in zip(names, node.projections, strict=True):
            if projection == target and not name.startswith("$"):
                return name
    return hidden


def _orders_by_rowtime(node: PlanNode) -> bool:
    """Deduplication on event time (Flink's RowTimeDeduplicate): is `$o0` a time attribute (the
    rowtime, or after an interval join the other side's, as in seed 004's attribution)?"""
    if not isinstance(node, CalcNode) or node.rowtime is None or node.updating:
        return False
    names = [c.name for c in node.columns]
    order = node.projections[names.index("$o0")]
    return any(order == node.projections[names.index(t)] for t in node.time_attributes)


def _window_bounds(node: PlanNode) -> set[str]:
    """Columns of `node` that are the window_start and window_end of a window aggregate below it."""
    if isinstance(node, WindowAggregateNode):
        return set(node.window_columns[:2])
    if isinstance(node, CalcNode):
        below = _window_bounds(node.input)
        pairs = zip(node.columns, node.projections, strict=True)
        return {c.name for c, p in pairs if render.column_name(p) in below}
    return set()


def _orders_by_time_attribute(node: PlanNode) -> bool:
    """Is `$o0` the rowtime or a processing-time attribute (Flink's deduplication)?"""
    order_column = next(c for c in node.columns if c.name == "$o0")
    return "PROCTIME" in order_column.flink_type or _orders_by_rowtime(node)


def _in_statement(error: SqlError, statement: Statement) -> SqlError:
    """Positions inside a statement's query are relative to the statement; make them absolute."""
    if error.line is None:
        error.line, error.col = 1, 1
    return error.shifted(statement.line - 1, statement.col - 1)


def _has_aggregate(query: exp.Select) -> bool:
    return any(
        isinstance(n, exp.AggFunc) and not isinstance(n.parent, exp.Window)
        for item in query.expressions
        for n in item.walk()
    )


def _distinct_of_result(query: exp.Select) -> bool:
    """Is DISTINCT applied to rows computed by aggregates or ranking, rather than to the input's?"""
    return bool(
        query.args.get("group") or _has_aggregate(query) or over.over_windows(query) or rank_window(query)
    )


def _nets_changes_above(top: PlanNode, bottom: PlanNode) -> bool:
    """Does a node between `top` and `bottom` net retractions against additions (a GROUP BY or a
    join over an updating input)? It needs every -U, which per-record emission leaves out."""
    node = top
    while node is not bottom:
        if isinstance(node, GroupAggregateNode | JoinNode) and node is not top:
            return True
        node = next(i for i in node.inputs if i.updating)
    return False


def _first_updating(node: PlanNode) -> PlanNode:
    """The node where updates start: an updating node whose inputs only append (a GROUP BY, a
    deduplication keeping the last row, an outer join, ...)."""
    while True:
        updating = [i for i in node.inputs if i.updating]
        if not updating:
            return node
        node = updating[0]


def _family(duck_type: str) -> str:
    duck_type = normalize_duckdb_type(duck_type)
    if duck_type in (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "FLOAT",
        "DOUBLE",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
    ) or duck_type.startswith("DECIMAL"):
        return "number"
    if duck_type in ("TIMESTAMP", "TIMESTAMPTZ", "DATE"):
        return "time"
    if duck_type == '"NULL"' or duck_type == "NULL":
        return "null"
    return {"VARCHAR": "string", "BOOLEAN": "boolean", "BLOB": "bytes"}.get(duck_type, duck_type)


def _watermark_delay(table: TableDef) -> tuple[str, int] | None:
    """`WATERMARK FOR ts AS ts - INTERVAL '5' SECOND` as ('ts', 5000); `AS ts` as ('ts', 0)."""
    if table.watermark is None:
        return None
    expression, column = table.watermark.expression, table.watermark.column
    delay = 0
    if isinstance(expression, exp.Sub) and isinstance(expression.expression, exp.Interval):
        try:
            delay = interval_ms(expression.expression, allow_zero=True)
        except SqlValidationError:
            return None
        expression = expression.this
    if isinstance(expression, exp.Paren):
        expression = expression.this
    if (
        isinstance(expression, exp.Column)
        and not expression.table
        and (expression.name.lower() == column.lower())
    ):
        return plan_name(table.column(column).name), delay
    return None
