"""The `tianchi` workload's data: events shaped like Tianchi's UserBehavior.csv, at any size.

The real set (https://tianchi.aliyun.com/dataset/649): 100,150,807 events of 987,994 users on
4,162,024 items in 9,439 categories over nine days (2017-11-25 to 2017-12-03), 89.5% `pv`, 5.5%
`cart`, 2.9% `fav`, 2.0% `buy`. Here:

* users, items and categories scale with the event count at the real set's ratios (about one
  user per 101 events, one item per 24, one category per 10,610), with floors (100 users, 1,000
  items, 100 categories) so that small sizes still have keys to group by;
* nine days at every size (so a smaller file is thinner, not shorter: the same 9 dates, 216
  hourly windows and 1,296 ten-minute steps at 1M as at 100M), with a day-night cycle and a busier
  weekend (Dec 2-3);
* heavy-tailed keys: the k-th most active user draws events in proportion to k^-0.5 (the least
  active of 98,740 users at 10M gets ~50, the most ~16,000), the k-th most popular item k^-0.7,
  and items fall into categories whose sizes follow k^-1.0; ranks are shuffled onto ids;
* written in event-time order with up to 3 s of disorder (under the seed's 5 s watermark delay:
  nothing is late), whole-second timestamps as the real set has, ids as JSON numbers.

Numpy and pyarrow, one day at a time (memory ~ a day's events, not the file's), so 10M events
take seconds and 100M a few minutes. Deterministic for a given size and seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REAL_EVENTS, REAL_USERS, REAL_ITEMS, REAL_CATEGORIES = 100_150_807, 987_994, 4_162_024, 9_439
BEHAVIORS = ("pv", "cart", "fav", "buy")
BEHAVIOR_SHARES = (0.8953, 0.0552, 0.0288, 0.0207)  # of the real set's 100,150,807 events
DAYS = 9
START_S = 1_511_568_000  # 2017-11-25T00:00:00Z
# Relative traffic per day (Nov 25 .. Dec 3: the last weekend is busier) and per hour of day (UTC).
DAY_WEIGHTS = (1.0, 1.0, 0.95, 0.95, 0.95, 1.0, 1.0, 1.3, 1.3)
HOUR_WEIGHTS = (0.5, 0.35, 0.25, 0.2, 0.2, 0.3, 0.5, 0.8, 1.0, 1.0, 1.05, 1.05,
                1.0, 1.0, 1.05, 1.05, 1.0, 1.0, 1.1, 1.3, 1.5, 1.6, 1.4, 0.9)  # fmt: skip
USER_SKEW, ITEM_SKEW, CATEGORY_SKEW = 0.5, 0.7, 1.0
DISORDER_S = 3


@dataclass(frozen=True)
class TianchiShape:
    events: int
    seed: int = 15

    @property
    def users(self) -> int:
        return max(round(self.events * REAL_USERS / REAL_EVENTS), 100)

    @property
    def items(self) -> int:
        return max(round(self.events * REAL_ITEMS / REAL_EVENTS), 1_000)

    @property
    def categories(self) -> int:
        return max(round(self.events * REAL_CATEGORIES / REAL_EVENTS), 100)

    def tag(self) -> str:
        return f"n{self.events}_u{self.users}_i{self.items}_c{self.categories}_d{DAYS}_s{self.seed}"


def _ranked_ids(rng, keys: int, skew: float):  # type: ignore[no-untyped-def]
    """(probabilities of ranks 1..keys ∝ k^-skew, a shuffle mapping rank to id 1..keys)."""
    import numpy as np

    weights = np.arange(1, keys + 1, dtype=np.float64) ** -skew
    return weights / weights.sum(), rng.permutation(keys) + 1


def _draw(rng, n: int, probabilities, ids):  # type: ignore[no-untyped-def]
    import numpy as np

    cumulative = np.cumsum(probabilities)
    ranks = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    return ids[np.minimum(ranks, len(ids) - 1)]


def item_categories(shape: TianchiShape):  # type: ignore[no-untyped-def]
    """Each item's category (index item_id - 1): category sizes heavy-tailed."""
    import numpy as np

    rng = np.random.default_rng([shape.seed, 1])
    probabilities, ids = _ranked_ids(rng, shape.categories, CATEGORY_SKEW)
    return _draw(rng, shape.items, probabilities, ids)


def events_per_day(shape: TianchiShape):  # type: ignore[no-untyped-def]
    import numpy as np

    rng = np.random.default_rng([shape.seed, 2])
    weights = np.array(DAY_WEIGHTS)
    return rng.multinomial(shape.events, weights / weights.sum())


def _day_columns(shape: TianchiShape, day: int, n: int, categories, users, items):  # type: ignore[no-untyped-def]
    """One day's `n` events in arrival order: ts (epoch s), user, item, category, behavior index."""
    import numpy as np

    rng = np.random.default_rng([shape.seed, 3, day])
    hours = np.array(HOUR_WEIGHTS)
    seconds = rng.choice(24, size=n, p=hours / hours.sum()) * 3600 + rng.integers(0, 3600, n)
    ts = np.sort(seconds) + START_S + day * 86_400
    ts = ts[np.argsort(ts + rng.random(n) * DISORDER_S, kind="stable")]  # arrival order
    user = _draw(rng, n, *users)
    item = _draw(rng, n, *items)
    behavior = rng.choice(len(BEHAVIORS), size=n, p=np.array(BEHAVIOR_SHARES) / sum(BEHAVIOR_SHARES))
    return ts, user, item, categories[item - 1], behavior


def _json_lines(ts, user, item, category, behavior) -> bytes:  # type: ignore[no-untyped-def]
    """The events as JSON lines, built column-wise by Arrow (no Python loop per event)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(values):  # type: ignore[no-untyped-def]
        return pc.cast(pa.array(values), pa.string())

    lines = pc.binary_join_element_wise(
        '{"user_id":', text(user), ',"item_id":', text(item), ',"category_id":', text(category),
        ',"behavior":"', pa.array(np.array(BEHAVIORS)[behavior]),
        '","ts":"', pc.strftime(pa.array(ts, pa.timestamp("s", "UTC")), "%Y-%m-%dT%H:%M:%SZ"),
        '"}\n', "",
    )  # fmt: skip
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]].tobytes()


CHUNK = 1_000_000  # events per Arrow string array (its offsets are 32-bit)


def write_events(shape: TianchiShape, path: Path) -> None:
    """The events file (json lines), day after day."""
    import numpy as np

    rng = np.random.default_rng([shape.seed, 0])
    users = _ranked_ids(rng, shape.users, USER_SKEW)
    items = _ranked_ids(rng, shape.items, ITEM_SKEW)
    categories = item_categories(shape)
    with path.open("wb") as out:
        for day, n in enumerate(events_per_day(shape).tolist()):
            columns = _day_columns(shape, day, n, categories, users, items)
            for start in range(0, n, CHUNK):
                out.write(_json_lines(*(c[start : start + CHUNK] for c in columns)))
