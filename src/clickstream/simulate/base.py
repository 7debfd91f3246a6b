"""What every simulator shares: the record shape, the `Generator` protocol, a day-night arrival
timeline, heavy-tailed popularity, and the injection of disorder, late and malformed records.

A seed's generator only decides *what* happens at each arrival time (`BaseGenerator.events`) and
how its seed writes time (`stamp`); this module decides *when* things arrive and how they are
damaged, so every demo's data misbehaves the same, reproducible way.
"""

from __future__ import annotations

import random
import time
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np
import orjson

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BAD_TIME = "not-a-timestamp"

# Relative traffic per UTC hour of an online shop: quiet before dawn, a lunch bump, an evening peak.
HOUR_WEIGHTS = np.array(
    [
        0.55,
        0.35,
        0.22,
        0.15,
        0.12,
        0.14,
        0.25,
        0.45,
        0.65,
        0.80,
        0.90,
        0.95,
        1.00,
        0.95,
        0.90,
        0.88,
        0.90,
        0.95,
        1.05,
        1.25,
        1.45,
        1.50,
        1.30,
        0.90,
    ]
)

Payload = dict[str, Any] | str  # a str is a raw line, written as is (a malformed record)


class Record(NamedTuple):
    """One message: the topic it goes to, its value, and a key for upsert/changelog topics."""

    topic: str
    value: Payload
    key: str | None = None


@dataclass(frozen=True)
class Table:
    """A dimension table the demos join against (`--dimension`): SQL-typed columns and rows."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, one of BIGINT, DOUBLE, TEXT)
    rows: list[tuple[Any, ...]]


@runtime_checkable
class Generator(Protocol):
    """What the CLI needs of a simulator."""

    name: str

    def topics(self) -> dict[str, str]:
        """Topic name -> what its records are."""
        ...

    def records(self, n: int | None = None) -> Iterator[Record]:
        """`n` event records (table snapshots first, not counted), or endless if `n` is None."""
        ...

    def dimensions(self) -> list[Table]: ...


@dataclass(frozen=True)
class Injection:
    """How the stream misbehaves. Ratios are shares of event records (not of table snapshots)."""

    disorder_ms: int = 3_000  # every event is up to this much older than its arrival slot
    late_ratio: float = 0.0  # share of events `late_ms` older still: dropped by event-time windows
    late_ms: int = 2 * HOUR_MS
    malformed_ratio: float = 0.0  # share replaced by a broken line or an unparseable time

    def __post_init__(self) -> None:
        for name in ("late_ratio", "malformed_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.disorder_ms < 0 or self.late_ms < 0:
            raise ValueError("disorder_ms and late_ms must not be negative")


@dataclass
class Event:
    """What a seed generator says happened, before time stamping and injection."""

    topic: str
    ms: int  # arrival slot, epoch ms
    fields: dict[str, Any]
    key: str | None = None
    timed: bool = True  # False for table snapshot rows: never delayed or damaged


# -- time formats ---------------------------------------------------------------------------------


def utc(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=int(ms))


def iso_ms(ms: int) -> str:
    """ISO-8601 UTC with milliseconds and 'Z': '2017-11-26T16:00:00.000Z'."""
    t = time.gmtime(ms // 1000)  # gmtime: a third of the cost of datetime arithmetic, per record
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
        f"{t.tm_sec:02d}.{ms % 1000:03d}Z"
    )


def sql_seconds(ms: int) -> str:
    """'yyyy-MM-dd HH:mm:ss', the form Flink's TO_TIMESTAMP(s) reads by default."""
    t = time.gmtime(ms // 1000)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def to_line(value: Payload) -> bytes:
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


# -- randomness with shape ------------------------------------------------------------------------


class Popularity:
    """A heavy-tailed (Zipf-like) choice among `n` things, the favourites scattered over the ids.

    `offset` flattens the head (Zipf-Mandelbrot: rank k weighs 1 / (k + offset) ** exponent): the
    tail stays heavy, but no single favourite takes a large share of everything."""

    def __init__(self, n: int, exponent: float, rng: np.random.Generator, offset: float = 0.0) -> None:
        weights = 1.0 / (np.arange(1, n + 1) + offset) ** exponent
        self.cdf = np.cumsum(rng.permutation(weights))
        self.cdf /= self.cdf[-1]

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` indices in [0, n)."""
        return np.minimum(np.searchsorted(self.cdf, rng.random(size)), len(self.cdf) - 1)


class Timeline:
    """Arrival times of a Poisson stream whose rate follows `HOUR_WEIGHTS` through each UTC day.

    Time is rescaled: unit-rate gaps are drawn in "share of a day's events" and mapped back to the
    clock through the cumulative hourly weights, so busy hours get proportionally more arrivals.
    """

    def __init__(
        self,
        start_ms: int,
        events_per_day: float,
        rng: np.random.Generator,
        weights: np.ndarray = HOUR_WEIGHTS,
    ) -> None:
        self.start_ms, self.per_day, self.rng = start_ms, events_per_day, rng
        self.bounds = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        self.position = 0.0  # in days' worth of events

    def next(self, size: int) -> np.ndarray:
        """The next `size` arrival times, epoch ms, non-decreasing."""
        steps = self.position + np.cumsum(self.rng.exponential(1.0 / self.per_day, size))
        self.position = float(steps[-1])
        days = np.floor(steps)
        share = steps - days
        hour = np.clip(np.searchsorted(self.bounds, share, side="right") - 1, 0, 23)
        within = (share - self.bounds[hour]) / (self.bounds[hour + 1] - self.bounds[hour])
        return (self.start_ms + days * DAY_MS + (hour + within) * HOUR_MS).astype(np.int64)


def fake_uuid(rnd: random.Random) -> str:
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def fake_ipv4(rnd: random.Random) -> str:
    return f"{rnd.randint(11, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"


FIRST_NAMES = (
    "Olympia",
    "Leah",
    "Steven",
    "Karine",
    "Akiko",
    "Kassie",
    "Ferdinand",
    "Reeva",
    "Antonio",
    "Arlyne",
    "Dimitri",
    "Oriana",
    "Abdel",
    "Roberto",
    "Alan",
    "Nathan",
    "Andy",
    "Glen",
    "Luke",
    "Ben",
    "Mei",
    "Wei",
    "Priya",
    "Sofia",
    "Jonas",
    "Amara",
)
LAST_NAMES = (
    "Koss",
    "Daniel",
    "Moore",
    "Boyle",
    "Hoppe",
    "Homenick",
    "Kable",
    "Greta",
    "Sims",
    "Waters",
    "Steins",
    "Schenz",
    "Katz",
    "Robertz",
    "Zhang",
    "Li",
    "Patel",
    "Garcia",
    "Novak",
    "Okafor",
    "Berg",
    "Rossi",
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
)


# -- the shared generator -------------------------------------------------------------------------


@dataclass
class GeneratorConfig:
    seed: int = 42
    start_ms: int | None = None  # None: the generator's own default day (fixed, so reproducible)
    days: float = 1.0  # with a given n, the n events spread over this many days
    events_per_day: float | None = None  # with n=None (endless); default 100,000
    injection: Injection = field(default_factory=Injection)


class BaseGenerator(ABC):
    """Arrival timeline + injection around a seed's `events` and `stamp`."""

    name: ClassVar[str]
    default_start_ms: ClassVar[int]
    time_fields: ClassVar[dict[str, tuple[str, ...]]]  # topic -> fields stamped with event time
    chunk: ClassVar[int] = 4_096

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self.config = config or GeneratorConfig()

    @abstractmethod
    def topics(self) -> dict[str, str]: ...

    def dimensions(self) -> list[Table]:
        return []

    def prelude(self) -> list[Event]:
        """Table snapshots sent before the events (e.g. all users); not counted in `n`."""
        return []

    @abstractmethod
    def events(self, times: np.ndarray) -> Iterable[Event]:
        """What happens at these arrival times (several events may share one slot)."""

    @abstractmethod
    def stamp(self, event: Event, ms: int) -> dict[str, Any]:
        """The record of `event`, with the seed's time fields set to event time `ms`."""

    @property
    def start_ms(self) -> int:
        return self.default_start_ms if self.config.start_ms is None else self.config.start_ms

    def records(self, n: int | None = None) -> Iterator[Record]:
        self._setup()  # fresh state: the same generator object replays the same records
        per_day = self.config.events_per_day or (n / self.config.days if n else 100_000.0)
        arrivals = np.random.default_rng([self.config.seed, 7, zlib.crc32(self.name.encode())])
        timeline = Timeline(self.start_ms, per_day, arrivals)
        damage = random.Random(self.config.seed * 7919 + 13)
        for event in self.prelude():
            yield Record(event.topic, self.stamp(event, event.ms), event.key)
        count = 0
        while n is None or count < n:
            for event in self.events(timeline.next(self.chunk)):
                yield self._inject(event, damage)
                count += 1
                if n is not None and count >= n:
                    return

    def _setup(self) -> None:
        """Reset per-run state (seeded randomness, sessions); subclasses extend it."""
        self.rng = np.random.default_rng(self.config.seed)
        self.rnd = random.Random(self.config.seed)

    def _inject(self, event: Event, damage: random.Random) -> Record:
        injection = self.config.injection
        ms = event.ms
        if event.timed:
            ms -= damage.randint(0, injection.disorder_ms) if injection.disorder_ms else 0
            if injection.late_ratio and damage.random() < injection.late_ratio:
                ms -= injection.late_ms
        value: Payload = self.stamp(event, ms)
        if event.timed and injection.malformed_ratio and damage.random() < injection.malformed_ratio:
            value = self._malform(event.topic, value, damage)
        return Record(event.topic, value, event.key)

    def _malform(self, topic: str, value: dict[str, Any], damage: random.Random) -> Payload:
        """Half cut mid-record (bad JSON), half with a time no parser reads (bad value)."""
        fields = self.time_fields.get(topic, ())
        if fields and damage.random() < 0.5:
            return {**value, **dict.fromkeys(fields, BAD_TIME)}
        text = orjson.dumps(value).decode()
        return text[: max(1, len(text) // 2)]
