"""The Engine: runs a script of Flink SQL statements, the way Flink's SQL client does.

DDL and SET take effect at once; INSERTs are collected and, at the end of the script (or at each
`EXECUTE STATEMENT SET`), planned and run together as one job sharing its sources. A SELECT runs as
its own job and prints its changelog.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TextIO

import duckdb
import pyarrow as pa

from clickstream.config import OPTIONS, Settings
from clickstream.connectors import registry
from clickstream.connectors.base import OP_COLUMN, OP_SHORT
from clickstream.connectors.blackhole import BlackholeSink
from clickstream.connectors.print import PrintSink, format_value
from clickstream.errors import CatalogError, ConnectorOptionError, SqlError
from clickstream.runtime.clock import Clock
from clickstream.runtime.executor import Job, JobStatus
from clickstream.schema import Column, TableDef
from clickstream.sql import show
from clickstream.sql import statements as st
from clickstream.sql.catalog import Catalog, ViewDef
from clickstream.sql.plan import PlanNode, SinkNode, explain
from clickstream.sql.planner import Planner
from clickstream.sql.table_like import merge_like


@dataclass
class RunResult:
    """What a script did: the jobs it ran and their final metrics."""

    jobs: list[JobStatus] = field(default_factory=list)
    metrics: dict[str, dict[str, int]] = field(default_factory=dict)


class _CollectSink(BlackholeSink):
    """Keeps every change in memory, for `Engine.collect`."""

    def __init__(
        self, table: TableDef, settings: Settings, on_rows: Callable[[pa.Table], None] | None = None
    ) -> None:
        super().__init__(table, settings)
        self.rows: list[tuple[str, tuple]] = []
        self.on_rows = on_rows

    def write(self, batch) -> None:
        if self.on_rows is not None:
            self.on_rows(batch)
            return
        kinds = batch.column(OP_COLUMN).to_pylist()
        data = batch.drop_columns([OP_COLUMN]).to_pylist()
        self.rows.extend((OP_SHORT[k], tuple(r.values())) for k, r in zip(kinds, data, strict=True))


class Engine:
    def __init__(
        self,
        settings: Settings | None = None,
        out: TextIO | None = None,
        clock: Clock | None = None,
        fresh: bool = False,
    ) -> None:
        """`fresh`: the jobs forget their checkpoints and start over (`clickstream run --fresh`)."""
        self.settings = settings or Settings()
        self.clock = clock  # processing time of the jobs; the wall clock when None
        self.fresh = fresh
        self.catalog = Catalog()
        self.out = out or sys.stdout
        self.pending: list[tuple[str, SinkNode]] = []
        self.on_job_start: Callable[[Job], None] | None = None
        self.on_batch: Callable[[Job], None] | None = None
        self.current_job: Job | None = None
        self.last_job: Job | None = None
        self._types_con: duckdb.DuckDBPyConnection | None = None  # for the planners

    # --- entry points -------------------------------------------------------------------------

    def execute_script(self, script: str, source: str | None = None) -> RunResult:
        """Run every statement; INSERTs outside a statement set run together at the end."""
        statements = st.parse_script(script, source)
        result = RunResult()
        self._pending_statements: list[st.InsertStatement] = []
        try:
            for statement in statements:
                self._execute(statement, result)
            if self._pending_statements:
                self._run_inserts(self._pending_statements, result)
        except SqlError as error:
            raise error.with_context(script, source) from None
        return result

    def collect(
        self, query: str, on_rows: Callable[[pa.Table], None] | None = None, timeout_s: float | None = None
    ) -> list[tuple[str, tuple]]:
        """Run one SELECT and return its changelog, `[("+I", row), ("-U", row), ...]`: Flink's
        `TableResult.collect()` for Python callers. It runs to the end of bounded input, or for
        `timeout_s`; with `on_rows`, each batch of changes (an Arrow table with `_op`) goes there
        as it is produced instead of into the returned list."""
        statements = st.parse_script(query)
        if len(statements) != 1 or not isinstance(statements[0], st.QueryStatement):
            raise SqlError("collect() takes exactly one SELECT statement")
        try:
            node, names = self._planner().plan_query(statements[0].query, statements[0])
        except SqlError as error:
            raise error.with_context(query) from None
        table = TableDef(
            "__collect", physical=_result_columns(node, names), options={"connector": "blackhole"}
        )
        job = Job(
            [("collect", SinkNode(columns=list(node.columns), input=node, table=table))],
            self.settings,
            self.clock,
            # a caller collecting from an unbounded source checkpoints only when it asks to
            checkpoints="execution.checkpointing.interval" in self.settings.values,
            fresh=self.fresh,
        )
        sink = _CollectSink(table, self.settings, on_rows)
        job.pipelines[0].operators[-1].sink = sink
        if timeout_s is not None:
            timer = threading.Timer(timeout_s, job.stop)
            timer.daemon = True
            timer.start()
        self.current_job = job
        job.run(self.on_batch)
        self.current_job, self.last_job = None, job
        return sink.rows

    def explain(self, script: str) -> str:
        """The plans of a script's INSERTs and SELECTs, without running anything."""
        buffer = io.StringIO()
        saved, self.out = self.out, buffer
        try:
            for statement in st.parse_script(script):
                if isinstance(statement, st.InsertStatement | st.StatementSet | st.QueryStatement):
                    self._explain(statement)
                else:
                    self._execute(statement, RunResult())
        finally:
            self.out = saved
        return buffer.getvalue()

    # --- statements ---------------------------------------------------------------------------

    def _execute(self, statement: st.Statement, result: RunResult) -> None:
        if isinstance(statement, st.SetStatement):
            self._set(statement)
        elif isinstance(statement, st.ResetStatement):
            if statement.key:
                self.settings.values.pop(statement.key, None)
            else:
                self.settings.values.clear()
        elif isinstance(statement, st.CreateTable):
            self._create_table(statement)
        elif isinstance(statement, st.CreateView):
            self._create_view(statement)
        elif isinstance(statement, st.DropStatement):
            kind = TableDef if statement.kind == "TABLE" else ViewDef
            try:
                self.catalog.drop(statement.name, kind, statement.if_exists)
            except CatalogError as error:
                raise statement.error(CatalogError, error.message) from None
            self._print("[INFO] Execute statement succeeded.")
        elif isinstance(statement, st.InsertStatement):
            self._plan_insert(statement)  # validate now, so errors point at this statement
            self._pending_statements.append(statement)
        elif isinstance(statement, st.StatementSet):
            for insert in statement.inserts:
                self._plan_insert(insert)
            self._run_inserts(statement.inserts, result)
        elif isinstance(statement, st.QueryStatement):
            self._run_select(statement, result)
        elif isinstance(statement, st.ShowTables):
            self._show_tables(statement.views_only)
        elif isinstance(statement, st.ShowFunctions):
            self._print("\n".join(show.function_names()))
        elif isinstance(statement, st.ShowCreate):
            self._show_create(statement)
        elif isinstance(statement, st.DescribeStatement):
            self._describe(statement)
        elif isinstance(statement, st.ExplainStatement):
            self._explain(statement.inner)

    def _set(self, statement: st.SetStatement) -> None:
        if statement.key is None:
            for key in sorted(set(OPTIONS) | set(self.settings.values)):
                value = self.settings.get(key) if key in OPTIONS else self.settings.values[key]
                self._print(f"'{key}' = '{value}'")
            return
        try:
            self.settings.set(statement.key, statement.value)
        except SqlError as error:
            raise statement.error(type(error), error.message) from None
        self._print("[INFO] Execute statement succeeded.")

    def _create_table(self, statement: st.CreateTable) -> None:
        table = statement.table
        if statement.like is not None:
            table = merge_like(statement, self.catalog.get(statement.like.source))
        try:
            if table is not None:
                registry.check_options(table)
        except ConnectorOptionError as error:
            raise error.in_statement(statement.text, statement.line, statement.col) from None
        try:
            self.catalog.add(table, if_not_exists=statement.if_not_exists, temporary=statement.temporary)
        except CatalogError as error:
            raise statement.error(CatalogError, error.message) from None
        self._print("[INFO] Execute statement succeeded.")

    def _create_view(self, statement: st.CreateView) -> None:
        view = ViewDef(statement.name, statement.query)
        self._planner().plan_query(statement.query.copy(), statement)  # validate
        self.catalog.add(
            view,
            if_not_exists=statement.if_not_exists,
            replace=statement.replace,
            temporary=statement.temporary,
        )
        self._print("[INFO] Execute statement succeeded.")

    def _planner(self) -> Planner:
        if self._types_con is None:
            self._types_con = duckdb.connect()
        return Planner(self.catalog, self.settings, registry.capabilities, self._types_con)

    def _plan_insert(self, statement: st.InsertStatement, planner: Planner | None = None):
        return (planner or self._planner()).plan_insert(statement)

    def _run_inserts(self, inserts: list[st.InsertStatement], result: RunResult) -> None:
        planner = self._planner()  # one planner: scans of a table are shared by all INSERTs
        sinks = [(f"insert-into_{s.target}", self._plan_insert(s, planner)) for s in inserts]
        self._run_job(sinks, result)
        if inserts is getattr(self, "_pending_statements", None):
            self._pending_statements = []

    def _run_job(self, sinks: list[tuple[str, SinkNode]], result: RunResult) -> None:
        job = Job(sinks, self.settings, self.clock, fresh=self.fresh)
        self.current_job = job
        if self.on_job_start:
            self.on_job_start(job)
        status = job.run(self.on_batch)
        result.jobs.append(status)
        result.metrics.update(job.metrics())
        self.current_job, self.last_job = None, job

    def _run_select(self, statement: st.QueryStatement, result: RunResult) -> None:
        planner = self._planner()
        node, names = planner.plan_query(statement.query, statement)
        self._print(" | ".join(["op"] + names))
        table = TableDef("__select", physical=_result_columns(node, names), options={"connector": "print"})
        sink = SinkNode(columns=list(node.columns), input=node, table=table)
        job = Job([("select", sink)], self.settings, self.clock, checkpoints=False)
        for pipeline in job.pipelines:
            operator = pipeline.operators[-1]
            operator.sink = PrintSink(table, self.settings, stream=self.out, scalar=format_value)
        self.current_job = job  # so that SIGINT/SIGTERM stop it as they stop an INSERT's job
        try:
            status = job.run(self.on_batch)
        finally:
            self.current_job = None
        result.jobs.append(status)

    def _show_tables(self, views_only: bool) -> None:
        names = [
            n for n in self.catalog.names() if not views_only or isinstance(self.catalog.get(n), ViewDef)
        ]
        self._print("\n".join(names) if names else "Empty set")

    def _show_create(self, statement: st.ShowCreate) -> None:
        obj = self.catalog.get(statement.name)
        kind = statement.kind.lower()
        if obj is None:
            raise statement.error(
                CatalogError,
                f"Could not execute SHOW CREATE {statement.kind}. {kind.title()} with identifier "
                f"'{statement.name}' does not exist.",
            )
        temporary = self.catalog.is_temporary(statement.name)
        if isinstance(obj, ViewDef) and kind == "view":
            _, names = self._planner().plan_query(obj.query.copy(), statement)
            self._print(show.show_create_view(obj.name, names, obj.query, temporary))
        elif isinstance(obj, TableDef) and kind == "table":
            self._print(show.show_create_table(obj, temporary))
        else:
            actual, other = ("view", "TABLE") if kind == "table" else ("table", "VIEW")
            raise statement.error(
                CatalogError,
                f"SHOW CREATE {statement.kind} is only supported for {kind}s, but '{obj.name}' is a "
                f"{actual}. Please use SHOW CREATE {other} instead.",
            )

    def _describe(self, statement: st.DescribeStatement) -> None:
        obj = self.catalog.get(statement.name)
        if obj is None:
            raise statement.error(CatalogError, f"Table or view '{statement.name}' does not exist")
        if isinstance(obj, ViewDef):
            node, names = self._planner().plan_query(obj.query.copy(), statement)
            rows = [(n, c.flink_type, "TRUE", "", "", "") for n, c in zip(names, node.columns, strict=False)]
        else:
            self._planner().scan(obj) if obj.connector and obj.computed else None
            watermark = {obj.watermark.column: obj.watermark.expression.sql()} if obj.watermark else {}
            rows = []
            for column in obj.columns:
                extras = next((f"AS {c.expression.sql()}" for c in obj.computed if c.name == column.name), "")
                key = f"PRI({', '.join(obj.primary_key)})" if column.name in obj.primary_key else ""
                flink_type = column.flink_type.replace(" *PROCTIME*", "")
                if column.name in watermark:
                    flink_type += " *ROWTIME*"
                if "PROCTIME" in column.flink_type:
                    flink_type += " *PROCTIME*"
                rows.append(
                    (
                        column.name,
                        flink_type,
                        "FALSE" if not column.nullable else "TRUE",
                        key,
                        extras,
                        watermark.get(column.name, ""),
                    )
                )
        self._table(("name", "type", "null", "key", "extras", "watermark"), rows)

    def _explain(self, statement: st.Statement) -> None:
        planner = self._planner()
        if isinstance(statement, st.InsertStatement):
            plans = [self._plan_insert(statement, planner)]
        elif isinstance(statement, st.StatementSet):
            plans = [self._plan_insert(s, planner) for s in statement.inserts]
        elif isinstance(statement, st.QueryStatement):
            plans = [planner.plan_query(statement.query, statement)[0]]
        else:
            raise statement.error(SqlError, "EXPLAIN needs an INSERT or SELECT statement")
        self._print("== Optimized Physical Plan ==")
        for plan in plans:
            self._print(explain(plan))
            self._print("")

    # --- output ---------------------------------------------------------------------------------

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")

    def _table(self, header: tuple[str, ...], rows: list[tuple]) -> None:
        cells = [header] + [tuple(format_value(v) for v in row) for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
        self._print(line)
        for i, row in enumerate(cells):
            self._print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")
            if i == 0:
                self._print(line)
        self._print(line)
        self._print(f"{len(rows)} rows in set")


def _result_columns(node: PlanNode, names: list[str]) -> list[Column]:
    """A query's result columns under the names the user sees (the plan may carry some under
    other names: schema.plan_name)."""
    return [replace(c, name=n) for c, n in zip(node.columns, names, strict=True)]
