"""Tianchi-style user behaviour (user, item, category, pv/buy/cart/fav, time), deterministic.

Realistic enough to exercise the queries: a day-night cycle, heavy-tailed item and category
popularity, purchases that follow views, events slightly out of order, and on request late
events (older than the watermark allows) and malformed records.

With the funnel on (the CLI's `tianchi`), conversion has structure a chart can show: carts and
buys take over the user and item of an earlier view, chosen with a preference for categories
that convert well (each top-level category has its own cart and buy propensity, each
sub-category a spread around it), and the share of carts and buys follows the hour of day
(evenings convert best, the small hours worst), the overall shares staying those of the seed.
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
FUNNEL_CANDIDATES = 8  # earlier views a cart or buy picks from, by its category's propensity
PARENTS = ("Clothing", "Shoes", "Electronics", "Home", "Beauty", "Sports", "Books", "Toys", "Food", "Garden")
# Per top-level category: how readily a view becomes a cart, and a view (or cart) a buy, relative to
# the average. Electronics is carted and compared but rarely bought; food and books are bought at once.
CART_PROPENSITY = np.array([1.2, 1.0, 1.6, 0.7, 1.3, 0.8, 0.6, 1.1, 1.4, 0.5])
BUY_PROPENSITY = np.array([1.0, 0.8, 0.35, 0.5, 1.6, 0.7, 2.2, 1.2, 2.8, 0.4])
SUB_CATEGORY_SPREAD = 0.35  # sigma of a sub-category's log-normal factor around its parent's
CART_BONUS = 3.0  # a buy prefers an item its user carted to one merely viewed
# Relative share of carts and buys among the events of each hour of day (UTC): low at night, best
# in the evening. Rescaled over each run's traffic so the overall shares stay those of the seed.
CONVERSION_BY_HOUR = np.array(
    [0.7, 0.55, 0.45, 0.4, 0.4, 0.45, 0.6, 0.75, 0.85, 0.9, 0.95, 1.0]
    + [1.05, 1.0, 0.95, 0.95, 1.0, 1.1, 1.25, 1.5, 1.75, 1.85, 1.6, 1.1]
)
SHARES = np.array([0.82, 0.08, 0.05, 0.05])  # pv, cart, fav, buy


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
    behavior = BEHAVIORS[rng.choice(4, size=n, p=SHARES)]
    if config.funnel:
        behavior = _behaviour_by_hour(config, ts)
        users, items = _funnel(config, users, items, behavior, ts)
        categories = item_categories(config)[items - 1]
    return {"user_id": users, "item_id": items, "category_id": categories, "behavior": behavior, "ts": ts}


def _behaviour_by_hour(config: TianchiConfig, ts: np.ndarray) -> np.ndarray:
    """pv/cart/fav/buy drawn anew, carts and buys more likely in the hours that convert well.

    The hour factors are rescaled by this run's traffic, so carts and buys keep the seed's overall
    shares (8% and 5%) whatever the span simulated.
    """
    factor = CONVERSION_BY_HOUR[(ts // 3_600_000) % 24]
    factor = factor / factor.mean()
    cart, buy = SHARES[1] * factor, SHARES[3] * factor
    u = _rng(config, 4).random(len(ts))
    # cumulative bounds per event: buy, then cart, then fav; the rest are views
    return np.where(
        u < buy, "buy", np.where(u < buy + cart, "cart", np.where(u < buy + cart + SHARES[2], "fav", "pv"))
    )


def category_propensities(config: TianchiConfig) -> tuple[np.ndarray, np.ndarray]:
    """(cart, buy) propensity of each category id (index 0 unused): its parent's, times a spread
    of its own. Fixed by the seed alone, so a category converts alike on every simulated day."""
    ids = np.arange(config.categories + 1)
    parent = (ids * 7) % len(PARENTS)  # as `category_rows` names them
    spread = np.random.default_rng([config.seed, 5]).lognormal(0.0, SUB_CATEGORY_SPREAD, (2, len(ids)))
    return CART_PROPENSITY[parent] * spread[0], BUY_PROPENSITY[parent] * spread[1]


def _funnel(
    config: TianchiConfig, users: np.ndarray, items: np.ndarray, behavior: np.ndarray, ts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Give carts the user and item of a view, and buys those of a view or cart, a little earlier.

    Each takes over the (user, item) of one of FUNNEL_CANDIDATES events drawn among the
    `funnel_lookback` ones that precede it by at least FUNNEL_MIN_GAP_MS, picked in proportion to
    its category's propensity: so a view exists and is older, what is carted and bought follows
    what is viewed, and some categories convert much better than others.
    """
    rng = _rng(config, 3)
    users, items = users.copy(), items.copy()
    cart_propensity, buy_propensity = category_propensities(config)
    # each item's weights, through its category (fixed), looked up once for both steps
    of_item = item_categories(config)
    cart_weight, buy_weight = cart_propensity[of_item], buy_propensity[of_item]
    is_cart = behavior == "cart"
    pick = _Pick(config, rng, users, items, ts)
    pick.take_over(np.flatnonzero(behavior == "pv"), np.flatnonzero(is_cart), cart_weight)
    buys = np.flatnonzero(behavior == "buy")
    buys = buys[rng.random(len(buys)) < config.funnel_ratio]
    pick.take_over(
        np.flatnonzero((behavior == "pv") | is_cart), buys, buy_weight, np.where(is_cart, CART_BONUS, 1.0)
    )
    return users, items


@dataclass
class _Pick:
    """The columns a funnel step rewrites in place, and the randomness it draws from."""

    config: TianchiConfig
    rng: np.random.Generator
    users: np.ndarray
    items: np.ndarray
    ts: np.ndarray

    def take_over(
        self,
        sources: np.ndarray,
        targets: np.ndarray,
        item_weight: np.ndarray,
        bonus: np.ndarray | None = None,
    ) -> None:
        """Set each target's (user, item) to that of an earlier source event, chosen among
        FUNNEL_CANDIDATES random ones in the lookback in proportion to its item's weight (times
        `bonus`, per event): a vectorised weighted choice, one row of candidates per target."""
        ts, n = self.ts, FUNNEL_CANDIDATES
        sources = sources[np.argsort(ts[sources], kind="stable")]
        earlier = np.searchsorted(ts[sources], ts[targets] - FUNNEL_MIN_GAP_MS, side="right")
        targets, earlier = targets[earlier > 0], earlier[earlier > 0]
        reach = np.minimum(earlier, self.config.funnel_lookback)[:, None]
        back = (self.rng.random((len(targets), n)) * reach).astype(np.int64)
        candidates = sources[earlier[:, None] - 1 - back]
        weights = item_weight[self.items[candidates] - 1]
        if bonus is not None:
            weights = weights * bonus[candidates]
        cumulative = np.cumsum(weights, axis=1)
        pick = (cumulative < self.rng.random(len(targets))[:, None] * cumulative[:, -1:]).sum(axis=1)
        chosen = candidates[np.arange(len(targets)), np.minimum(pick, n - 1)]
        self.users[targets], self.items[targets] = self.users[chosen], self.items[chosen]


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
    return [(c, PARENTS[(c * 7) % len(PARENTS)]) for c in range(1, config.categories + 1) if c % 50 != 0]


class TianchiGenerator:
    """Seed 000 behind the common `Generator` protocol; the funnel is on unless `config` says no."""

    name = "tianchi"
    time_fields = {TOPIC: ("ts",)}  # as the other generators say where their event time is

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
