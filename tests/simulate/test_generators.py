"""Every generator: reproducible, shaped like real traffic, and damaged as asked."""

from __future__ import annotations

from collections import Counter

import pytest

from clickstream.simulate import KINDS, Generator, Injection, make_generator
from clickstream.simulate.base import HOUR_MS, Timeline, to_line
from tests.simulate.helpers import EVENT_TOPIC, event_ms, is_malformed

USER_FIELD = {
    "tianchi": "user_id",
    "ecommerce": "user_id",
    "ksql-clickstream": "userid",
    "users-clicks": "user_id",
    "checkouts": "user_id",
}
ITEM_FIELD = {
    "tianchi": "item_id",
    "ecommerce": "product",
    "ksql-clickstream": "request",
    "users-clicks": "page",
    "checkouts": "product_id",
}


def lines(generator: Generator, n: int) -> bytes:
    return b"\n".join(to_line(record.value) for record in generator.records(n))


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_bytes(kind):
    assert lines(make_generator(kind, seed=5), 3_000) == lines(make_generator(kind, seed=5), 3_000)
    assert lines(make_generator(kind, seed=5), 3_000) != lines(make_generator(kind, seed=6), 3_000)


@pytest.mark.parametrize("kind", KINDS)
def test_one_generator_replays_identically(kind):
    generator = make_generator(kind, seed=3, injection=Injection(late_ratio=0.1, malformed_ratio=0.1))
    assert lines(generator, 2_000) == lines(generator, 2_000)


@pytest.mark.parametrize("kind", KINDS)
def test_topics_are_declared_and_used(kind):
    generator = make_generator(kind)
    used = {record.topic for record in generator.records(5_000)}
    assert used == set(generator.topics())


@pytest.mark.parametrize("kind", KINDS)
def test_evenings_busier_than_small_hours(kind):
    generator = make_generator(kind, days=4.0)
    hours = Counter(
        event_ms(kind, r) // HOUR_MS % 24
        for r in generator.records(40_000)
        if r.topic == EVENT_TOPIC[kind] and event_ms(kind, r) is not None
    )
    evening = sum(hours[h] for h in (19, 20, 21, 22)) / 4
    small_hours = sum(hours[h] for h in (3, 4, 5)) / 3
    assert evening > 2.5 * small_hours


def top_share(counts: Counter, fraction: float) -> float:
    values = sorted(counts.values(), reverse=True)
    return sum(values[: max(1, int(len(values) * fraction))]) / sum(values)


@pytest.mark.parametrize("kind", KINDS)
def test_popularity_is_heavy_tailed(kind):
    generated = [
        r
        for r in make_generator(kind).records(30_000)
        if r.topic == EVENT_TOPIC[kind] and isinstance(r.value, dict)
    ]
    users = Counter(r.value[USER_FIELD[kind]] for r in generated)
    if kind == "ecommerce":  # its trends move what is popular every 4 hours: within the first ones
        first = min(event_ms(kind, r) for r in generated)
        generated = [r for r in generated if event_ms(kind, r) < first + 4 * HOUR_MS]
    items = Counter(r.value[ITEM_FIELD[kind]] for r in generated)
    # uniform choice would give the top 1% about 1% of the events
    assert top_share(items, 0.01) > 0.2
    assert top_share(users, 0.01) > 0.15


@pytest.mark.parametrize("kind", KINDS)
def test_disorder_is_bounded_by_disorder_ms(kind):
    generator = make_generator(kind, injection=Injection(disorder_ms=2_000))
    newest, behind = None, 0
    for record in generator.records(10_000):
        at = event_ms(kind, record)
        if at is None:
            continue
        if newest is not None:
            assert at >= newest - 2_000, record
            behind += at < newest
        newest = at if newest is None else max(newest, at)
    assert behind > 100  # out of order, though within the watermark's reach


@pytest.mark.parametrize("kind", KINDS)
def test_late_and_malformed_ratios_are_honoured(kind):
    n = 20_000
    generator = make_generator(kind, injection=Injection(late_ratio=0.05, malformed_ratio=0.03))
    records = list(generator.records(n))
    malformed = sum(is_malformed(r) for r in records)
    assert malformed / n == pytest.approx(0.03, abs=0.008)
    newest, late = None, 0
    for record in records:
        at = event_ms(kind, record)
        if at is None:
            continue
        if newest is not None and at < newest - HOUR_MS:
            late += 1
        newest = at if newest is None else max(newest, at)
    assert late / n == pytest.approx(0.05 * 0.97, abs=0.012)  # a late malformed one is not seen


def test_timeline_follows_the_requested_rate():
    import numpy as np

    times = Timeline(0, 10_000, np.random.default_rng(1)).next(50_000)
    assert (np.diff(times) >= 0).all()
    assert times[-1] / 86_400_000 == pytest.approx(5.0, rel=0.03)


def test_ecommerce_has_no_user_who_makes_a_large_share_of_everything():
    # seed 001's "also viewed" joins each user's views with that user's views of the hour around
    # them: its output grows with the square of a user's events. A plain Zipf curve gave one user
    # 17% of the events (290M pairs a simulated day at the demo's rate, gigabytes per batch).
    records = [r.value for r in make_generator("ecommerce").records(60_000) if r.topic == "ecommerce_events"]
    users = Counter(value["user_id"] for value in records)
    assert max(users.values()) < 0.01 * len(records)
    assert top_share(users, 0.01) > 0.15  # still heavy-tailed


def test_ecommerce_trends_move_and_products_convert_differently():
    generated = [
        r for r in make_generator("ecommerce", seed=3).records(60_000) if r.topic == "ecommerce_events"
    ]
    start = min(event_ms("ecommerce", r) for r in generated)
    records = [(event_ms("ecommerce", r) - start, r.value) for r in generated]

    def top(since_h: int) -> str:
        views = Counter(
            v["product"]
            for ms, v in records
            if v.get("action") == "page_view" and since_h * HOUR_MS <= ms < (since_h + 4) * HOUR_MS
        )
        return views.most_common(1)[0][0]

    assert top(0) != top(4)  # what is popular changes
    views = Counter(v["product"] for _, v in records if v.get("action") == "page_view")
    buys = Counter(v["product"] for _, v in records if v["event_type"] == "purchase")
    rate = {product: buys[product] / views[product] for product in views if views[product] > 200}
    assert max(rate.values()) > 1.5 * min(rate.values())  # and converts differently


def test_tianchi_stamps_nothing_before_the_simulation_starts():
    from clickstream.simulate.tianchi import START, TianchiConfig, generate_columns

    # dense (23 a second): the first records are drawn within milliseconds of midnight, and their
    # disorder (up to 3 s) would push some to the day before
    ts = generate_columns(TianchiConfig(events=20_000, days=0.01, disorder_ms=3_000))["ts"]
    assert ts.min() >= START
