"""What `clickstream generate` and `clickstream replay` do, as plain functions.

Both write through `outputs.open_output` (file, stdout or `log:`), pace in wall-clock time
(`rate.py`), stop on Ctrl-C with what was written so far, and return a `RunSummary`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from clickstream.errors import CommandError
from clickstream.simulate.base import BaseGenerator, Generator, GeneratorConfig, Injection, Record
from clickstream.simulate.checkouts import CheckoutsGenerator
from clickstream.simulate.dimension import write_dimensions
from clickstream.simulate.ecommerce import EcommerceGenerator
from clickstream.simulate.ksql_clickstream import KsqlClickstreamGenerator
from clickstream.simulate.outputs import BaseOutput, open_output
from clickstream.simulate.rate import EventClock, RateLimiter
from clickstream.simulate.replay import paced, read_user_behavior, seed_records
from clickstream.simulate.tianchi import TianchiConfig, TianchiGenerator
from clickstream.simulate.users_clicks import UsersClicksGenerator

if TYPE_CHECKING:
    from rich.progress import Progress

_SEEDED: dict[str, type[BaseGenerator]] = {
    EcommerceGenerator.name: EcommerceGenerator,  # seed 001
    KsqlClickstreamGenerator.name: KsqlClickstreamGenerator,  # seed 002
    UsersClicksGenerator.name: UsersClicksGenerator,  # seed 003
    CheckoutsGenerator.name: CheckoutsGenerator,  # seed 004
}
KINDS = ("tianchi", *_SEEDED)


@dataclass
class RunSummary:
    counts: dict[str, int]  # records per topic
    elapsed_s: float
    targets: dict[str, str]  # topic -> file, '-' or 'log:<topic>'
    dimension_tables: list[str] = field(default_factory=list)
    interrupted: bool = False
    location: str | None = None  # where every target is ('the log in clickstream-log')
    dimension: str | None = None  # where the dimension tables went
    dimension_rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        """A line of totals, then a line per topic (records -> where) and per dimension table."""
        rate = self.total / self.elapsed_s if self.elapsed_s > 0 else float("inf")
        stopped = ", interrupted" if self.interrupted else ""
        where = f" to {self.location}" if self.location else ""
        head = f"wrote {self.total:,} records in {self.elapsed_s:.1f} s ({rate:,.0f}/s){stopped}{where}:"
        rows = [
            (topic, self.counts.get(topic, 0), "stdout" if target == "-" else target)
            for topic, target in self.targets.items()
        ]
        rows += [
            (f"{table} (dimension)", self.dimension_rows.get(table, 0), self.dimension or "")
            for table in self.dimension_tables
        ]
        width = max((len(name) for name, _, _ in rows), default=0)
        digits = max((len(f"{count:,}") for _, count, _ in rows), default=0)
        lines = [f"  {name:<{width}}  {count:>{digits},} -> {target}" for name, count, target in rows]
        return "\n".join([head, *lines])


def make_generator(
    kind: str,
    seed: int = 42,
    injection: Injection | None = None,
    days: float = 1.0,
    events_per_day: float | None = None,
) -> Generator:
    """The generator for `kind` (one of KINDS; '_' and '-' alike). `events_per_day`: for endless
    runs, how many events each simulated day holds (default: the generator's own)."""
    injection = injection or Injection()
    name = kind.strip().lower().replace("_", "-")
    if name == "tianchi":
        # endless: day after day, each of `events_per_day` events
        span = (max(int(events_per_day), 1), 1.0) if events_per_day else (TianchiConfig.events, days)
        return TianchiGenerator(
            TianchiConfig(
                seed=seed,
                events=span[0],
                days=span[1],
                disorder_ms=injection.disorder_ms,
                late_ratio=injection.late_ratio,
                late_ms=injection.late_ms,
                malformed_ratio=injection.malformed_ratio,
                funnel=True,
            )
        )
    if name not in _SEEDED:
        raise CommandError(f"unknown simulator '{kind}': choose one of {', '.join(KINDS)}")
    config = GeneratorConfig(seed=seed, days=days, events_per_day=events_per_day, injection=injection)
    return _SEEDED[name](config)


@dataclass
class WriteProgress:
    """How far a running `generate` has got, for another thread to read (the demo's page shows the
    simulated time): the last record written, and the fields of each topic that hold event time."""

    time_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    last: Record | None = None

    def event_ms(self) -> int | None:
        """The event time of the last record written (epoch ms); None before the first, or when
        it has none that reads as a time (a malformed record, a table row without one)."""
        record = self.last
        if record is None or not isinstance(record.value, dict):
            return None
        for name in self.time_fields.get(record.topic, ()):
            value = record.value.get(name)
            if isinstance(value, int):
                return value  # epoch ms (`_time` of the ksqlDB clicks)
            try:
                return int(datetime.fromisoformat(str(value)).timestamp() * 1000)
            except ValueError:  # another form (an access-log date): the next field may do
                continue
        return None


def _drain(
    records: Iterable[Record],
    output: BaseOutput,
    pace: Callable[[], None],
    done: Callable[[], bool],
    progress: WriteProgress | None = None,
) -> RunSummary:
    """Write `records` to `output` (closed after) until they end, `done()`, or Ctrl-C."""
    counts: Counter[str] = Counter()
    started, interrupted = time.monotonic(), False
    try:
        for record in records:
            if done():
                break
            pace()
            output.write(record)
            counts[record.topic] += 1
            if progress is not None:
                progress.last = record
    except KeyboardInterrupt:
        interrupted = True
    finally:
        output.close()
        close = getattr(records, "close", None)
        if close is not None:  # a generator stopped early: let it leave its `with` blocks now
            close()
    elapsed = time.monotonic() - started
    where = output.location
    return RunSummary(dict(counts), elapsed, output.targets, interrupted=interrupted, location=where)


def generate(
    kind: str,
    out: str,
    events: int | None = 100_000,
    rate: float | None = None,
    seed: int = 42,
    late_ratio: float = 0.0,
    malformed_ratio: float = 0.0,
    disorder_ms: int = 3_000,
    duration_s: float | None = None,
    dimension: str | None = None,
    log_dir: str | None = None,
    *,
    days: float = 1.0,
    events_per_day: float | None = None,
    start: int = 0,
    log_retention_bytes: int | None = None,
    stop: threading.Event | None = None,
    progress: WriteProgress | None = None,
) -> RunSummary:
    """Write `events` records of `kind` (None: endless, until `duration_s` or Ctrl-C) to `out`.

    `rate`: records per second (None: as fast as possible). Table snapshots (users, status
    codes) come first and are not counted in `events`. `dimension`: also write the kind's
    dimension tables there (sqlite:path or a path, postgresql://..., mysql://...).
    `events_per_day`: an endless run's events per simulated day (days follow days).
    `start`: resume a run that stopped after `start` records: the records from there are those
    the whole run would have written. `log_retention_bytes`: a `log:`
    output keeps about this much per partition (see `clickstream.log.writer.WriterOptions`).
    `stop`: set by another thread to end the run (Ctrl-C reaches only the main thread).
    `progress`: kept up to date with the last record written, for another thread to read.
    """
    injection = Injection(disorder_ms=disorder_ms, late_ratio=late_ratio, malformed_ratio=malformed_ratio)
    generator = make_generator(kind, seed, injection, days, events_per_day if events is None else None)
    dimensions = generator.dimensions() if dimension else []
    tables = write_dimensions(dimension, dimensions) if dimension else []
    records = _records(generator, events, start)
    output = open_output(out, list(generator.topics()), log_dir, log_retention_bytes)
    if progress is not None:
        progress.time_fields = dict(getattr(generator, "time_fields", {}))
    summary = _drain(records, output, RateLimiter(rate).acquire, _done_when(duration_s, stop), progress)
    summary.dimension_tables, summary.dimension = tables, dimension
    summary.dimension_rows = {table.name: len(table.rows) for table in dimensions}
    return summary


def _done_when(duration_s: float | None, stop: threading.Event | None = None) -> Callable[[], bool]:
    """True once `duration_s` has passed or `stop` is set."""
    deadline = time.monotonic() + duration_s if duration_s is not None else float("inf")
    if stop is None:
        return lambda: time.monotonic() >= deadline
    return lambda: stop.is_set() or time.monotonic() >= deadline


def _records(generator: Generator, events: int | None, start: int) -> Iterator[Record]:
    if not start:
        return generator.records(events)
    if isinstance(generator, TianchiGenerator):
        return generator.records(events, start)
    # Only tianchi can start part-way cheaply (its columns are drawn at once); the others carry
    # sessions and table snapshots from record to record, so they make the records before `start`
    # again and drop them (the same seed makes the same records).
    return itertools.islice(generator.records(events), start, None)


def _progress_bar(enabled: bool) -> Progress:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]replay[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[event_time]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def _with_progress(records: Iterator[tuple[int, Record]], total: int, enabled: bool) -> Iterator[Record]:
    """The records, advancing a progress bar that shows the event time being played."""
    with _progress_bar(enabled) as bar:
        task = bar.add_task("replay", total=total, event_time="")
        shown = time.monotonic()
        for done, (ms, record) in enumerate(records, start=1):
            yield record
            if time.monotonic() - shown > 0.1 or done == total:
                when = datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                bar.update(task, completed=done, event_time=when)
                shown = time.monotonic()


def replay(
    path: str | Path,
    out: str,
    speedup: float | None = 3_600.0,
    *,
    rate: float | None = None,
    limit: int | None = None,
    start_s: int | None = None,
    end_s: int | None = None,
    max_idle_s: float | None = 60.0,
    log_dir: str | None = None,
    duration_s: float | None = None,
    progress: bool = True,
) -> RunSummary:
    """Play a `UserBehavior.csv` to `out` in event-time order as the seed's JSON.

    `speedup`: event seconds per wall second (3600: an hour a second; None or 0: no waiting).
    `rate` caps records per second on top. Gaps that would last over `max_idle_s` are cut short.
    """
    table = read_user_behavior(path, limit=limit, start_s=start_s, end_s=end_s)
    records = paced(seed_records(table), EventClock(speedup, max_idle_s=max_idle_s))
    return _drain(
        _with_progress(records, table.num_rows, progress),
        open_output(out, list(TianchiGenerator().topics()), log_dir),
        RateLimiter(rate).acquire,
        _done_when(duration_s),
    )
