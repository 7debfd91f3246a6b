"""The micro-batch loop: poll sources, push batches through each query's operators, advance
watermarks, and stop when every bounded source is exhausted (or when asked to).

All queries of a job run in this one loop and share their sources: a table read by three queries
is read once, and each batch is pushed to the three pipelines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from clickstream.config import Settings, parse_duration_ms
from clickstream.connectors import registry
from clickstream.connectors.base import BaseLookupSource, BaseSink
from clickstream.errors import ExecutionError
from clickstream.runtime.batch import MAX_WATERMARK, MIN_WATERMARK, WM, constant
from clickstream.runtime.checkpointing import Checkpointer, checkpoint_config
from clickstream.runtime.clock import Clock, SystemClock
from clickstream.runtime.closing import close_all
from clickstream.runtime.operators import cumulate_aggregate
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.operators.calc import CalcOperator
from clickstream.runtime.operators.changelog_normalize import ChangelogNormalizeOperator
from clickstream.runtime.operators.correlate import CorrelateOperator
from clickstream.runtime.operators.cumulate_aggregate import CumulateWindowAggregateOperator
from clickstream.runtime.operators.deduplicate import FirstRowOperator
from clickstream.runtime.operators.expand import ExpandOperator
from clickstream.runtime.operators.group_aggregate import GroupAggregateOperator
from clickstream.runtime.operators.interval_join import IntervalJoinOperator
from clickstream.runtime.operators.join import JoinOperator
from clickstream.runtime.operators.last_row import LastRowOperator
from clickstream.runtime.operators.limit import LimitOperator
from clickstream.runtime.operators.lookup_join import LookupJoinOperator
from clickstream.runtime.operators.match_recognize import MatchRecognizeOperator
from clickstream.runtime.operators.over_aggregate import OverAggregateOperator
from clickstream.runtime.operators.proctime_window import ProcTimeWindowAggregateOperator
from clickstream.runtime.operators.rank import RankOperator
from clickstream.runtime.operators.replicate_rows import ReplicateRowsOperator
from clickstream.runtime.operators.retract_aggregate import RetractGroupAggregateOperator
from clickstream.runtime.operators.semi_join import SemiJoinOperator
from clickstream.runtime.operators.session_window import SessionWindowOperator
from clickstream.runtime.operators.sink import SinkOperator
from clickstream.runtime.operators.temporal_join import TemporalJoinOperator
from clickstream.runtime.operators.temporal_sort import TemporalSortOperator
from clickstream.runtime.operators.union import UnionOperator
from clickstream.runtime.operators.window_aggregate import WindowAggregateOperator
from clickstream.runtime.operators.window_retract import RetractWindowAggregateOperator
from clickstream.runtime.source_reader import SourceReader
from clickstream.runtime.state import JobState
from clickstream.sql.plan import (
    CalcNode,
    ChangelogNormalizeNode,
    CorrelateNode,
    ExpandNode,
    GroupAggregateNode,
    IntervalJoinNode,
    JoinNode,
    LimitNode,
    LookupJoinNode,
    MatchNode,
    OverAggregateNode,
    PlanNode,
    RankNode,
    ReplicateRowsNode,
    ScanNode,
    SemiJoinNode,
    SinkNode,
    TemporalJoinNode,
    TemporalSortNode,
    UnionNode,
    WindowAggregateNode,
)


@dataclass
class Pipeline:
    """One INSERT: its operators (a tree from the shared sources to the sink, sink last), with
    their own connection to the job's state: pipelines share only sources, so they run in
    parallel, one thread each."""

    name: str
    readers: list[SourceReader]
    operators: list[BaseOperator]
    state: JobState

    @property
    def reader(self) -> SourceReader:
        return self.readers[0]

    def close(self) -> None:
        close_all([*(operator.close for operator in self.operators), self.state.close])


Target = tuple[BaseOperator, int]  # an operator and its input port
_TICK_MS = 200  # processing-time timers fire at least this often while input keeps coming


@dataclass
class JobStatus:
    started: float = field(default_factory=time.monotonic)
    batches: int = 0
    records_in: int = 0
    finished: bool = False
    restored_from: int | None = None  # the checkpoint the job resumed from


class Job:
    """A set of planned INSERTs, built into readers and pipelines over one JobState."""

    def __init__(
        self,
        sinks: list[tuple[str, SinkNode]],
        settings: Settings,
        clock: Clock | None = None,
        *,
        checkpoints: bool = True,
        fresh: bool = False,
    ) -> None:
        """`checkpoints`: take them as the settings say (a SELECT printed to the terminal
        takes none); `fresh`: forget the job's checkpoints and start over."""
        self.settings = settings
        self.clock = clock or SystemClock()  # processing time: PROCTIME() and its timers
        self.state = JobState(settings.local_time_zone)
        self.readers: dict[int, SourceReader] = {}
        self.pipelines: list[Pipeline] = []
        self._consumers: dict[int, list[Target]] = {}  # reader -> operators reading it
        self._downstream: dict[int, list[Target]] = {}  # operator -> operators reading it
        self._upstream: dict[int, list[BaseOperator | SourceReader]] = {}  # operator -> its inputs
        self._input_watermarks: dict[int, list[int]] = {}
        self._watermarks: dict[int, int] = {}
        self._fed_watermarks: dict[int, int] = {}  # per reader, the last watermark fed without a batch
        self._idle_readers: set[int] = set()
        self._idle_ports: dict[int, set[int]] = {}  # operator -> its inputs that are idle
        self._pipeline_of: dict[int, int] = {}  # operator -> index of its pipeline
        self._pool: ThreadPoolExecutor | None = None
        self.status = JobStatus()
        self._stop = threading.Event()
        self._ticked = self.clock.now_ms()  # when processing-time timers last fired
        self.checkpointer: Checkpointer | None = None
        try:
            self.state.spill(settings.state_memory_limit, settings.get("io.tmp.dirs"))
            for name, sink in sinks:
                self.pipelines.append(self._build(name, sink))
            unbounded = any(not reader.source.bounded for reader in self.readers.values())
            config = checkpoint_config(settings, sinks, unbounded, fresh) if checkpoints else None
            if config is not None:
                self.checkpointer = Checkpointer(self, config)
        except Exception:
            building = getattr(self, "_building", None)  # built in part: close what it opened
            if building is not None and all(p is not building for p in self.pipelines):
                self.pipelines.append(building)
            self.close()
            raise

    def _build(self, name: str, sink: SinkNode) -> Pipeline:
        operators: list[BaseOperator] = []
        readers: list[SourceReader] = []
        pipeline = Pipeline(name, readers, operators, self.state.cursor())
        self._building = pipeline
        self._build_node(sink, operators, readers)
        for operator in operators:
            self._pipeline_of[id(operator)] = len(self.pipelines)
        return pipeline

    def _build_node(
        self, node: PlanNode, operators: list[BaseOperator], readers: list[SourceReader]
    ) -> BaseOperator | SourceReader:
        """The operator producing `node`'s output, wired to the operators of its inputs."""
        if isinstance(node, ScanNode):
            reader = self._reader(node)
            readers.append(reader)
            return reader
        if isinstance(node, CalcNode):
            calcs = [node]
            while isinstance(calcs[-1].input, CalcNode):
                calcs.append(calcs[-1].input)
            operator: BaseOperator = CalcOperator(list(reversed(calcs)), self._building.state)
            inputs = [calcs[-1].input]
        else:
            operator = self._operator(node)
            inputs = node.inputs
        self._downstream[id(operator)] = []
        self._input_watermarks[id(operator)] = operator.input_watermarks = [MIN_WATERMARK] * len(inputs)
        self._upstream[id(operator)] = []
        self._watermarks[id(operator)] = MIN_WATERMARK
        for port, child in enumerate(inputs):
            upstream = self._build_node(child, operators, readers)
            targets = (
                self._consumers.setdefault(id(upstream), [])
                if isinstance(upstream, SourceReader)
                else self._downstream[id(upstream)]
            )
            targets.append((operator, port))
            self._upstream[id(operator)].append(upstream)
        operators.append(operator)
        return operator

    # --- data and watermark flow -------------------------------------------------------------

    def _feed(self, targets: list[Target], batch: pa.Table | None, watermark: int | None) -> None:
        """A source's batch and then its watermark to the operators reading it: each pipeline's
        share on its own thread (DuckDB and numpy release the GIL), in order within a pipeline."""
        groups: dict[int, list[Target]] = {}
        for target in targets:
            groups.setdefault(self._pipeline_of[id(target[0])], []).append(target)
        if self._pool is None or len(groups) < 2:
            self._feed_pipeline(targets, batch, watermark)
            return
        futures = [
            self._pool.submit(self._feed_pipeline, group, batch, watermark) for group in groups.values()
        ]
        wait(futures)  # all of them, even if one failed: nothing may still run when the job closes
        for future in futures:
            future.result()

    def _feed_pipeline(self, targets: list[Target], batch: pa.Table | None, watermark: int | None) -> None:
        try:
            if batch is not None:
                self._push(targets, batch)
            if watermark is not None:
                self._advance(targets, watermark)
        except duckdb.Error as error:
            raise self._failed(targets[0][0], error) from error

    def _failed(self, operator: BaseOperator, error: duckdb.Error) -> ExecutionError:
        """A row the query cannot compute (division by zero, a value out of range): Flink fails
        the job; so do we, naming the query and the reason, not DuckDB's exception class."""
        query = self.pipelines[self._pipeline_of[id(operator)]].name
        reason = str(error).split(": ", 1)[-1] if " Error: " in str(error) else str(error)
        return ExecutionError(f"Query '{query}' failed: {reason}")

    def _push(self, targets: list[Target], batch: pa.Table) -> None:
        for operator, port in targets:
            outputs = operator.process(batch) if operator.arity == 1 else operator.process(batch, port)
            for out in outputs:
                self._push(self._downstream[id(operator)], out)

    def _advance(self, targets: list[Target], watermark: int) -> None:
        """An input's watermark moved; an operator's own is the minimum over its inputs, those
        that are idle left out while another is not, and the maximum once all are idle: none
        will move on, so none holds the others back (Flink's StatusWatermarkValve "flushes" the
        max across all inputs when the last one goes idle)."""
        for operator, port in targets:
            inputs = self._input_watermarks[id(operator)]
            inputs[port] = max(inputs[port], watermark)
            idle = self._idle_ports.get(id(operator), set())
            active = [w for i, w in enumerate(inputs) if i not in idle]
            combined = min(active) if active else max(inputs)
            previous = self._watermarks[id(operator)]
            if combined <= previous:
                continue
            self._watermarks[id(operator)] = combined
            delay = operator.output_delay_ms
            for out in operator.on_watermark(combined):
                # Rows a watermark releases (window results, joined rows) reach the next operator
                # before that watermark does, as in Flink: they carry the one in force before it,
                # so an event-time operator downstream does not take them for late rows.
                self._push(self._downstream[id(operator)], _with_watermark(out, _held_back(previous, delay)))
            self._advance(self._downstream[id(operator)], _held_back(combined, delay))

    def _tick(self) -> None:
        """Processing-time timers: what the clock has passed leaves its operator, with or
        without new input. The loop ticks when it has no input, and every _TICK_MS of clock time
        while it reads: a bounded input read without a pause ends before any timer fires, as
        small inputs do in Flink (which never fires the timers left at the end)."""
        now = self._ticked = self.clock.now_ms()
        for pipeline in self.pipelines:
            for operator in pipeline.operators:
                if not operator.timed:
                    continue
                try:
                    for out in operator.on_processing_time(now):
                        self._push(self._downstream[id(operator)], out)
                except duckdb.Error as error:
                    raise self._failed(operator, error) from error

    def _reader(self, scan: ScanNode) -> SourceReader:
        if id(scan) not in self.readers:
            source = registry.create_source(scan.table, self.settings)
            self.readers[id(scan)] = SourceReader(scan, source, self.state, self.settings, self.clock)
        return self.readers[id(scan)]

    def _operator(self, node: PlanNode) -> BaseOperator:
        state = self._building.state
        if isinstance(node, CorrelateNode):
            return CorrelateOperator(node, state)
        if isinstance(node, LookupJoinNode):
            return LookupJoinOperator(node, registry.create_lookup(node.table, self.settings), state)
        if isinstance(node, WindowAggregateNode) and node.window.kind == "SESSION":
            return SessionWindowOperator(node, state, self.settings.local_time_zone)
        if isinstance(node, WindowAggregateNode) and node.window.proctime:
            return ProcTimeWindowAggregateOperator(node, state, self.settings.local_time_zone, self.clock)
        if isinstance(node, WindowAggregateNode) and node.input.updating:
            return RetractWindowAggregateOperator(node, state, self.settings.local_time_zone)
        if isinstance(node, WindowAggregateNode) and cumulate_aggregate.supports(node):
            return CumulateWindowAggregateOperator(node, state, self.settings.local_time_zone)
        if isinstance(node, WindowAggregateNode):
            return WindowAggregateOperator(node, state, self.settings.local_time_zone)
        if isinstance(node, GroupAggregateNode) and node.input.updating:
            return RetractGroupAggregateOperator(node, state, self._state_ttl_ms(), self.clock)
        if isinstance(node, GroupAggregateNode):
            return GroupAggregateOperator(node, state, self._state_ttl_ms(), self.clock)
        if isinstance(node, ChangelogNormalizeNode):
            return ChangelogNormalizeOperator(node, state)
        if isinstance(node, ExpandNode):
            return ExpandOperator(node)
        if isinstance(node, JoinNode):
            return JoinOperator(node, state, self._state_ttl_ms(), self.clock)
        if isinstance(node, SemiJoinNode):
            return SemiJoinOperator(node, state, self._state_ttl_ms(), self.clock)
        if isinstance(node, TemporalJoinNode):
            return TemporalJoinOperator(node, state)
        if isinstance(node, IntervalJoinNode):
            return IntervalJoinOperator(node, state)
        if isinstance(node, RankNode):
            if node.per_record:
                return LastRowOperator(node, state)
            return FirstRowOperator(node, state) if node.first_on_rowtime else RankOperator(node, state)
        if isinstance(node, OverAggregateNode):
            return OverAggregateOperator(node, state, self.clock)
        if isinstance(node, MatchNode):
            return MatchRecognizeOperator(node, state)
        if isinstance(node, UnionNode):
            return UnionOperator(node)
        if isinstance(node, ReplicateRowsNode):
            return ReplicateRowsOperator(node)
        if isinstance(node, LimitNode):
            return LimitOperator(node)
        if isinstance(node, TemporalSortNode):
            return TemporalSortOperator(node, state)
        if isinstance(node, SinkNode):
            return SinkOperator(node, registry.create_sink(node.table, self.settings), state)
        raise AssertionError(f"no operator for {node.describe()}")

    def _state_ttl_ms(self) -> int:
        return parse_duration_ms(self.settings.get("table.exec.state.ttl"))

    def _limits_reached(self) -> bool:
        """Every query has all the rows its LIMIT lets through: it has ended, even on an
        unbounded source (as Flink's `SELECT ... LIMIT n` does)."""
        return bool(self.pipelines) and all(self._ended(p.operators[-1]) for p in self.pipelines)

    def _ended(self, operator: BaseOperator | SourceReader) -> bool:
        if isinstance(operator, BaseOperator) and operator.complete:
            return True
        inputs = self._upstream.get(id(operator), [])
        return bool(inputs) and all(self._ended(i) for i in inputs)

    def stop(self) -> None:
        """Ask the loop to finish the current batch, flush and return (SIGINT/SIGTERM)."""
        self._stop.set()

    def operator_watermarks(self) -> list[list[tuple[int, list[int]]]]:
        """Per pipeline and operator: its watermark and its inputs' (for a checkpoint)."""
        return [
            [(self._watermarks[id(op)], list(self._input_watermarks[id(op)])) for op in p.operators]
            for p in self.pipelines
        ]

    def restore_watermarks(self, saved: list[list[tuple[int, list[int]]]]) -> None:
        for pipeline, marks in zip(self.pipelines, saved, strict=True):
            for op, (watermark, inputs) in zip(pipeline.operators, marks, strict=True):
                self._watermarks[id(op)] = watermark
                self._input_watermarks[id(op)][:] = inputs  # the operator's own list, shared

    def run(self, on_batch: Callable[[Job], None] | None = None) -> JobStatus:
        idle_sleep = 0.05
        if len(self.pipelines) > 1:
            self._pool = ThreadPoolExecutor(len(self.pipelines), thread_name_prefix="pipeline")
        try:
            if self.checkpointer is not None:
                self.status.restored_from = self.checkpointer.restore()
            self._loop(on_batch, idle_sleep)
            if self.checkpointer is not None:
                # the end of bounded input: commit the last rows; stopped: resume from here
                self.checkpointer.finish() if self.status.finished else self.checkpointer.checkpoint()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
            self.close()
        if on_batch:
            on_batch(self)
        return self.status

    def _loop(self, on_batch: Callable[[Job], None] | None, idle_sleep: float) -> None:
        while not self._stop.is_set():
            progressed = False
            for reader in self.readers.values():
                batch = reader.poll()
                if batch is None:
                    self._idle_watermark(reader)
                    continue
                if id(reader) in self._idle_readers:
                    self._idle_readers.discard(id(reader))
                    self._set_idle(self._consumers.get(id(reader), []), False)
                progressed = True
                self.status.batches += 1
                self.status.records_in += batch.num_rows
                self._feed(
                    self._consumers.get(id(reader), []),
                    batch,
                    reader.watermark if reader.has_watermark else None,
                )
                if on_batch:
                    on_batch(self)
            if self._limits_reached():
                self.status.finished = True
                break
            if all(r.exhausted() for r in self.readers.values()):
                # Bounded input: the final watermark is +infinity, every window fires.
                for reader in self.readers.values():
                    self._feed(self._consumers.get(id(reader), []), None, MAX_WATERMARK)
                self.status.finished = True
                break
            if not progressed or self.clock.now_ms() - self._ticked >= _TICK_MS:
                self._tick()
            if self.checkpointer is not None and self.checkpointer.due():
                self.checkpointer.checkpoint()
            if not progressed:
                time.sleep(idle_sleep)

    def _set_idle(self, targets: list[Target], idle: bool) -> None:
        """Inputs going idle (or active again): an operator whose inputs are all idle is idle to
        the operators it feeds, and one that still has an active input may move on without them."""
        for operator, port in targets:
            ports = self._idle_ports.setdefault(id(operator), set())
            was_idle = len(ports) == len(self._input_watermarks[id(operator)])
            (ports.add if idle else ports.discard)(port)
            now_idle = len(ports) == len(self._input_watermarks[id(operator)])
            if now_idle != was_idle:
                self._set_idle(self._downstream[id(operator)], now_idle)
            if idle:  # the others may hold the watermark no more
                self._advance([(operator, port)], self._input_watermarks[id(operator)][port])

    def _idle_watermark(self, reader: SourceReader) -> None:
        """A source's watermark can move with no batch: a partition quiet for the idle timeout
        stops holding it back. Flink emits it periodically; here when it has moved."""
        if reader.has_watermark and reader.idle and id(reader) not in self._idle_readers:
            self._idle_readers.add(id(reader))
            self._set_idle(self._consumers.get(id(reader), []), True)
        if reader.has_watermark and reader.watermark > self._fed_watermarks.get(id(reader), MIN_WATERMARK):
            self._fed_watermarks[id(reader)] = reader.watermark
            self._feed(self._consumers.get(id(reader), []), None, reader.watermark)

    def close(self) -> None:
        """Close everything, the source readers (and their threads) even if a sink fails to."""
        close_all(
            [
                *(pipeline.close for pipeline in self.pipelines),
                *(reader.close for reader in self.readers.values()),
                self.state.close,
            ]
        )

    def metrics(self) -> dict[str, dict[str, int]]:
        """Per pipeline: records in/out, late records dropped, watermark."""
        out = {}
        for pipeline in self.pipelines:
            ops = pipeline.operators
            readers = {id(r): r for r in pipeline.readers}.values()
            first = {id(op) for r in readers for op, _ in self._consumers.get(id(r), [])}
            out[pipeline.name] = {
                "records_in": sum(op.metrics.records_in for op in ops if id(op) in first),
                "records_out": ops[-1].metrics.records_out if ops else 0,
                "late_dropped": sum(op.metrics.late_dropped for op in ops),
                "watermark": min(r.watermark for r in readers),
                "malformed": sum(r.source.metrics.malformed + r.rejected for r in readers),
                "state_rows": sum(op.metrics.state_rows for op in ops),
                "lag": sum(r.source.lag() for r in readers if hasattr(r.source, "lag")),
                "waiting": sum(bool((c := _connector(op)) and c.status) for op in ops),
            }
        return out

    def waiting(self) -> list[str]:
        """Each connector waiting on an external system, as "<table>: waiting for database"."""
        return [
            f"{connector.table.name}: {connector.status}"
            for pipeline in self.pipelines
            for op in pipeline.operators
            if (connector := _connector(op)) is not None and connector.status
        ]


def _connector(op: BaseOperator) -> BaseSink | BaseLookupSource | None:
    # Sinks and lookup joins talk to external systems; their connector says when it waits on one.
    if isinstance(op, SinkOperator):
        return op.sink
    if isinstance(op, LookupJoinOperator):
        return op.lookup
    return None


def _held_back(watermark: int, delay_ms: int) -> int:
    if watermark in (MIN_WATERMARK, MAX_WATERMARK):
        return watermark
    return max(watermark - delay_ms, MIN_WATERMARK + 1)


def _with_watermark(batch: pa.Table, watermark: int) -> pa.Table:
    if WM not in batch.column_names:
        return batch
    index = batch.column_names.index(WM)
    return batch.set_column(index, WM, constant(watermark, batch.num_rows, pa.int64()))
