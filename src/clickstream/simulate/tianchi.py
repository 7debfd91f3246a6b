"""Tianchi-style user behaviour (user, item, category, pv/buy/cart/fav, time), deterministic.

Realistic enough to exercise the queries: a day-night cycle, heavy-tailed item and category
popularity, purchases that follow views, events slightly out of order, and on request late
events (older than the watermark allows) and malformed records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
import orjson

from clickstream.simulate.base import Payload, Record, Table

BEHAVIORS = np.array(["pv", "cart", "fav", "buy"])
START = int(datetime(2017, 11, 25, tzinfo=UTC).timestamp() * 1000)


@dataclass
class TianchiConfig:
    events: int = 100_000
    users: int = 10_000
    items: int = 50_000
    categories: int = 500
    days: float = 1.0
    start_ms: int = START
    seed: int = 42
    disorder_ms: int = 3_000  # normal out-of-orderness, within a 5 s watermark delay
    late_ratio: float = 0.0  # share of events delayed by `late_ms` (dropped by windows)
    late_ms: int = 2 * 3_600_000
    malformed_ratio: float = 0.0
    # Off by default so existing configs keep their exact output; the `tianchi` generator of the
    # CLI turns it on. On: most buys are of an item their user viewed or carted shortly before.
    funnel: bool = False
    funnel_ratio: float = 0.97  # share of buys given an earlier pv/cart (the rest: impulse buys)
    funnel_lookback: int = 600  # how many pv/cart events back a buy's view may be (~10 min at 100k/day)
    block: int = 0  # endless streams: the block-th `days` span, with randomness of its own


TOPIC = "clickstream-feed"


FUNNEL_MIN_GAP_MS = 1_000  # a buy comes at least this long after its view


def item_categories(config: TianchiConfig) -> np.ndarray:
    rng = np.random.default_rng(config.seed + 1)
    return rng.zipf(1.3, config.items) % config.categories + 1


def _rng(config: TianchiConfig, salt: int) -> np.random.Generator:
    # block 0 keeps the historical seeding, so existing configs reproduce their exact output
    if config.block == 0:
        return np.random.default_rng(config.seed + salt)
    return np.random.default_rng([config.seed, salt, config.block])


def generate_columns(config: TianchiConfig) -> dict[str, np.ndarray]:
    """Columns of `config.events` events in arrival order (ts in epoch ms)."""
    rng = _rng(config, 0)
    n = config.events
    span = int(config.days * 86_400_000)
    # day-night cycle: more traffic in the evening, little at night
    hours = np.arange(24)
    weights = 0.3 + np.sin((hours - 6) / 24 * 2 * np.pi).clip(0) + (hours >= 19) * 0.6
    day = rng.choice(24, size=n, p=weights / weights.sum()) * 3_600_000
    day += rng.integers(0, 3_600_000, n)
    days = rng.integers(0, max(int(np.ceil(config.days)), 1), n) * 86_400_000
    ts = np.sort((days + day) % span) + config.start_ms
    ts = ts - rng.integers(0, config.disorder_ms + 1, n)  # arrival order != time order
    # ...but never before the span: a record stamped before it would open a window of the day
    # before (a stray point on a chart of the simulated days)
    ts = np.maximum(ts, config.start_ms)
    if config.late_ratio > 0:
        late = rng.random(n) < config.late_ratio
        ts = np.where(late, ts - config.late_ms, ts)
    users = (rng.zipf(1.5, n) * 7919) % config.users + 1
    items = (rng.zipf(1.2, n) * 104729) % config.items + 1
    categories = item_categories(config)[items - 1]
    behavior = BEHAVIORS[rng.choice(4, size=n, p=[0.82, 0.08, 0.05, 0.05])]
    if config.funnel:
        users, items = _funnel(config, users, items, behavior, ts)
        categories = item_categories(config)[items - 1]
    return {"user_id": users, "item_id": items, "category_id": categories, "behavior": behavior, "ts": ts}


def _funnel(
    config: TianchiConfig, users: np.ndarray, items: np.ndarray, behavior: np.ndarray, ts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Give buys the user and item of a pv/cart a little earlier in event time.

    A buy takes over the (user, item) of one of the `funnel_lookback` pv/cart events that precede it
    by at least FUNNEL_MIN_GAP_MS, so its view exists, is older, and the popularity of what is
    bought follows the popularity of what is viewed.
    """
    rng = _rng(config, 3)
    users, items = users.copy(), items.copy()
    views = np.flatnonzero((behavior == "pv") | (behavior == "cart"))
    views = views[np.argsort(ts[views], kind="stable")]
    view_ts = ts[views]
    buys = np.flatnonzero(behavior == "buy")
    buys = buys[rng.random(len(buys)) < config.funnel_ratio]
    earlier = np.searchsorted(view_ts, ts[buys] - FUNNEL_MIN_GAP_MS, side="right")
    buys, earlier = buys[earlier > 0], earlier[earlier > 0]
    back = (rng.random(len(buys)) * np.minimum(earlier, config.funnel_lookback)).astype(np.int64)
    chosen = views[earlier - 1 - back]
    users[buys], items[buys] = users[chosen], items[chosen]
    return users, items


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{ms % 1000:03d}Z" if ms % 1000 else "Z"
    )


def values(config: TianchiConfig, start: int = 0) -> Iterator[Payload]:
    """The seed's records: dicts with ids as strings and ISO-8601 time; a str is a broken line.

    `start`: begin at the start-th record, as if the ones before had been skipped. The columns are
    drawn whole (so the randomness is the same), but only the rest become records.
    """
    columns = generate_columns(config)
    bad = (_rng(config, 2).random(config.events) < config.malformed_ratio)[start:].tolist()
    users, items, categories, behaviors = (
        columns[name][start:].tolist() for name in ("user_id", "item_id", "category_id", "behavior")
    )
    for i, ts in enumerate(columns["ts"][start:].tolist()):
        if bad[i]:
            yield '{"user_id":"' + str(users[i]) + '","behavior":'  # truncated
            continue
        yield {
            "user_id": str(users[i]),
            "item_id": str(items[i]),
            "category_id": str(categories[i]),
            "behavior": behaviors[i],
            "ts": iso(ts),
        }


def json_lines(config: TianchiConfig) -> Iterator[str]:
    """The seed's JSON: ids as strings, ISO-8601 time."""
    for value in values(config):
        yield value if isinstance(value, str) else orjson.dumps(value).decode()


def write_jsonl(path: str, config: TianchiConfig) -> None:
    with open(path, "w") as out:
        for line in json_lines(config):
            out.write(line + "\n")


def category_rows(config: TianchiConfig) -> list[tuple[int, str]]:
    """The dimension table: sub-category id -> parent category name (some ids unknown)."""
    parents = [
        "Clothing",
        "Shoes",
        "Electronics",
        "Home",
        "Beauty",
        "Sports",
        "Books",
        "Toys",
        "Food",
        "Garden",
    ]
    return [(c, parents[(c * 7) % len(parents)]) for c in range(1, config.categories + 1) if c % 50 != 0]


class TianchiGenerator:
    """Seed 000 behind the common `Generator` protocol; the funnel is on unless `config` says no."""

    name = "tianchi"

    def __init__(self, config: TianchiConfig | None = None) -> None:
        self.config = config or TianchiConfig(funnel=True)

    def topics(self) -> dict[str, str]:
        return {TOPIC: "user behaviour: user_id, item_id, category_id, behavior (pv/cart/fav/buy), ts"}

    def dimensions(self) -> list[Table]:
        return [
            Table(
                "category",
                (("sub_category_id", "BIGINT"), ("parent_category_name", "TEXT")),
                category_rows(self.config),
            )
        ]

    def records(self, n: int | None = None, start: int = 0) -> Iterator[Record]:
        """`n` events over `config.days`; endless: `config.events` per `days` span, span after span.

        `start`: begin at this event (a resumed run: the records are those the uninterrupted run
        would have written from there).
        """
        if n is not None:
            yield from (Record(TOPIC, value) for value in values(replace(self.config, events=n), start))
            return
        span_ms = int(self.config.days * 86_400_000)
        block, skip = divmod(start, self.config.events)  # every span holds `config.events`
        while True:
            config = replace(self.config, block=block, start_ms=self.config.start_ms + block * span_ms)
            yield from (Record(TOPIC, value) for value in values(config, skip))
            block, skip = block + 1, 0
