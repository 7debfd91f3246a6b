"""Tianchi-style user behaviour (user, item, category, pv/buy/cart/fav, time), deterministic.

Realistic enough to exercise the queries: a day-night cycle, heavy-tailed item and category
popularity, purchases that follow views, events slightly out of order, and on request late
events (older than the watermark allows) and malformed records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

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


FUNNEL_MIN_GAP_MS = 1_000  # a buy comes at least this long after its view


def item_categories(config: TianchiConfig) -> np.ndarray:
    rng = np.random.default_rng(config.seed + 1)
    return rng.zipf(1.3, config.items) % config.categories + 1


def generate_columns(config: TianchiConfig) -> dict[str, np.ndarray]:
    """Columns of `config.events` events in arrival order (ts in epoch ms)."""
    rng = np.random.default_rng(config.seed)
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
    return {"user_id": users, "item_id": items, "category_id": categories,
            "behavior": behavior, "ts": ts}


def _funnel(config: TianchiConfig, users: np.ndarray, items: np.ndarray, behavior: np.ndarray,
            ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give buys the user and item of a pv/cart a little earlier in event time.

    A buy takes over the (user, item) of one of the `funnel_lookback` pv/cart events that precede it
    by at least FUNNEL_MIN_GAP_MS, so its view exists, is older, and the popularity of what is
    bought follows the popularity of what is viewed.
    """
    rng = np.random.default_rng(config.seed + 3)
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
        f".{ms % 1000:03d}Z" if ms % 1000 else "Z")


def json_lines(config: TianchiConfig) -> Iterator[str]:
    """The seed's JSON: ids as strings, ISO-8601 time."""
    columns = generate_columns(config)
    rng = np.random.default_rng(config.seed + 2)
    bad = rng.random(config.events) < config.malformed_ratio
    for i in range(config.events):
        if bad[i]:
            yield '{"user_id":"' + str(columns["user_id"][i]) + '","behavior":'  # truncated
            continue
        yield (f'{{"user_id":"{columns["user_id"][i]}","item_id":"{columns["item_id"][i]}",'
               f'"category_id":"{columns["category_id"][i]}","behavior":"{columns["behavior"][i]}",'
               f'"ts":"{iso(int(columns["ts"][i]))}"}}')


def write_jsonl(path: str, config: TianchiConfig) -> None:
    with open(path, "w") as out:
        for line in json_lines(config):
            out.write(line + "\n")


def category_rows(config: TianchiConfig) -> list[tuple[int, str]]:
    """The dimension table: sub-category id -> parent category name (some ids unknown)."""
    parents = ["Clothing", "Shoes", "Electronics", "Home", "Beauty", "Sports", "Books", "Toys",
               "Food", "Garden"]
    return [(c, parents[(c * 7) % len(parents)]) for c in range(1, config.categories + 1)
            if c % 50 != 0]
