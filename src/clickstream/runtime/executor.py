"""The micro-batch loop: poll sources, push batches through each query's operators, advance
watermarks, and stop when every bounded source is exhausted (or when asked to).

All queries of a job run in this one loop and share their sources: a table read by three queries
is read once, and each batch is pushed to the three pipelines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from clickstream.config import Settings
from clickstream.connectors import registry
from clickstream.runtime.batch import MAX_WATERMARK
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.operators.calc import CalcOperator
from clickstream.runtime.operators.group_aggregate import GroupAggregateOperator
from clickstream.runtime.operators.lookup_join import LookupJoinOperator
from clickstream.runtime.operators.rank import RankOperator
from clickstream.runtime.operators.sink import SinkOperator
from clickstream.runtime.operators.window_aggregate import WindowAggregateOperator
from clickstream.runtime.source_reader import SourceReader
from clickstream.runtime.state import JobState
from clickstream.sql.plan import (
    CalcNode,
    GroupAggregateNode,
    LookupJoinNode,
    PlanNode,
    RankNode,
    ScanNode,
    SinkNode,
    WindowAggregateNode,
)


@dataclass
class Pipeline:
    """One INSERT: a chain of operators from a shared source to a sink."""

    name: str
    reader: SourceReader
    operators: list[BaseOperator]
    watermark: int = -(2**63)

    def push(self, batch: pa.Table, start: int = 0) -> None:
        batches = [batch]
        for operator in self.operators[start:]:
            batches = [out for b in batches for out in operator.process(b)]
            if not batches:
                return

    def advance(self, watermark: int) -> None:
        if watermark <= self.watermark:
            return
        self.watermark = watermark
        for index, operator in enumerate(self.operators):
            for out in operator.on_watermark(watermark):
                self.push(out, index + 1)

    def close(self) -> None:
        for operator in self.operators:
            operator.close()


@dataclass
class JobStatus:
    started: float = field(default_factory=time.monotonic)
    batches: int = 0
    records_in: int = 0
    finished: bool = False


class Job:
    """A set of planned INSERTs, built into readers and pipelines over one JobState."""

    def __init__(self, sinks: list[tuple[str, SinkNode]], settings: Settings) -> None:
        self.settings = settings
        self.state = JobState(settings.local_time_zone)
        self.readers: dict[int, SourceReader] = {}
        self.pipelines: list[Pipeline] = []
        self.status = JobStatus()
        self._stop = threading.Event()
        try:
            for name, sink in sinks:
                self.pipelines.append(self._build(name, sink))
        except Exception:
            self.close()
            raise

    def _build(self, name: str, sink: SinkNode) -> Pipeline:
        chain: list[PlanNode] = []
        node: PlanNode = sink
        while not isinstance(node, ScanNode):
            chain.append(node)
            node = node.inputs[0]
        reader = self._reader(node)
        operators: list[BaseOperator] = []
        calcs: list[CalcNode] = []
        for plan_node in reversed(chain):
            if isinstance(plan_node, CalcNode):
                calcs.append(plan_node)
                continue
            if calcs:
                operators.append(CalcOperator(calcs, self.state))
                calcs = []
            operators.append(self._operator(plan_node))
        return Pipeline(name, reader, operators)

    def _reader(self, scan: ScanNode) -> SourceReader:
        if id(scan) not in self.readers:
            source = registry.create_source(scan.table, self.settings)
            self.readers[id(scan)] = SourceReader(scan, source, self.state, self.settings)
        return self.readers[id(scan)]

    def _operator(self, node: PlanNode) -> BaseOperator:
        if isinstance(node, LookupJoinNode):
            return LookupJoinOperator(node, registry.create_lookup(node.table, self.settings),
                                      self.state)
        if isinstance(node, WindowAggregateNode):
            return WindowAggregateOperator(node, self.state, self.settings.local_time_zone)
        if isinstance(node, GroupAggregateNode):
            return GroupAggregateOperator(node, self.state)
        if isinstance(node, RankNode):
            return RankOperator(node, self.state)
        if isinstance(node, SinkNode):
            return SinkOperator(node, registry.create_sink(node.table, self.settings), self.state)
        raise AssertionError(f"no operator for {node.describe()}")

    def stop(self) -> None:
        """Ask the loop to finish the current batch, flush and return (SIGINT/SIGTERM)."""
        self._stop.set()

    def run(self, on_batch: Callable[[Job], None] | None = None) -> JobStatus:
        batch_size = self.settings.mini_batch_size
        idle_sleep = 0.05
        try:
            while not self._stop.is_set():
                progressed = False
                for reader in self.readers.values():
                    batch = reader.poll(batch_size)
                    if batch is None:
                        continue
                    progressed = True
                    self.status.batches += 1
                    self.status.records_in += batch.num_rows
                    for pipeline in self._pipelines_of(reader):
                        pipeline.push(batch)
                        if reader.has_watermark:
                            pipeline.advance(reader.watermark)
                    if on_batch:
                        on_batch(self)
                if all(r.exhausted() for r in self.readers.values()):
                    # Bounded input: the final watermark is +infinity, every window fires.
                    for pipeline in self.pipelines:
                        pipeline.advance(MAX_WATERMARK)
                    self.status.finished = True
                    break
                if not progressed:
                    time.sleep(idle_sleep)
        finally:
            self.close()
        if on_batch:
            on_batch(self)
        return self.status

    def _pipelines_of(self, reader: SourceReader) -> list[Pipeline]:
        return [p for p in self.pipelines if p.reader is reader]

    def close(self) -> None:
        for pipeline in self.pipelines:
            pipeline.close()
        for reader in self.readers.values():
            reader.source.close()
        self.state.close()

    def metrics(self) -> dict[str, dict[str, int]]:
        """Per pipeline: records in/out, late records dropped, watermark."""
        out = {}
        for pipeline in self.pipelines:
            ops = pipeline.operators
            out[pipeline.name] = {
                "records_in": ops[0].metrics.records_in if ops else 0,
                "records_out": ops[-1].metrics.records_out if ops else 0,
                "late_dropped": sum(op.metrics.late_dropped for op in ops),
                "watermark": pipeline.reader.watermark,
                "malformed": pipeline.reader.source.metrics.malformed,
            }
        return out
