"""Seed 001, the e-commerce simulator: user actions, purchases with amounts, inventory updates.

The seed's simulator draws every field uniformly; here users walk a funnel (page view -> product
click -> add to cart -> purchase) in sessions, products have fixed prices and heavy-tailed
popularity, and each purchase lowers a running stock that is restocked when it runs low, so
"revenue per minute", "conversion rate" and "low inventory" have something real to find.

Topics: `ecommerce_events` (event_type 'user_action' and 'purchase', as the seed's single topic)
and `ecommerce_inventory` (event_type 'inventory_update').

Every record carries its time three ways: `timestamp` (ISO-8601, as the seed's sample event),
`timestamp_str` and `timestamp_sec` ('yyyy-MM-dd HH:mm:ss'). The seed's `user_page_views` declares
`timestamp_sec TIMESTAMP(3)` as a physical column (its "derived field") and takes its watermark from
`timestamp_str`: the producer has to write both, or Flink fails the job on the NULL rowtime.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from clickstream.simulate.base import (
    BaseGenerator,
    Event,
    GeneratorConfig,
    Popularity,
    Table,
    iso_ms,
    sql_seconds,
)

EVENTS, INVENTORY = "ecommerce_events", "ecommerce_inventory"
SESSION_GAP_MS = 30 * 60_000  # a user idle this long starts over at the home page
LOW_STOCK = 10

PRODUCTS: tuple[tuple[str, float], ...] = (
    ("laptop", 1299.0),
    ("smartphone", 799.0),
    ("tablet", 449.0),
    ("headphones", 199.0),
    ("smartwatch", 249.0),
    ("monitor", 329.0),
    ("keyboard", 89.0),
    ("mouse", 39.0),
    ("webcam", 69.0),
    ("speaker", 129.0),
    ("charger", 25.0),
    ("usb_cable", 9.99),
    ("power_bank", 45.0),
    ("router", 119.0),
    ("ssd", 109.0),
    ("camera", 649.0),
    ("drone", 899.0),
    ("e_reader", 139.0),
    ("game_console", 499.0),
    ("microphone", 99.0),
)
# the chance to move one step down the funnel, else the user browses another product
STEP = {"viewed": 0.45, "clicked": 0.30, "carted": 0.55}
# What is popular changes: every TREND_HOURS of event time the popularity ranking moves on by
# TREND_SHIFT products, so the most viewed and best-selling products of one hour are not the next's.
TREND_HOURS, TREND_SHIFT = 4, 5
# Heavy-tailed users with a flattened head: the top 1% make about a fifth of the events, the
# busiest one about 0.5% (a plain Zipf curve gave one user 17% of everything, and seed 001's
# "also viewed" self-join of each user's views within half an hour grew with the square of that:
# 290M pairs a simulated day at the demo's rate, and gigabytes of memory per batch).
USERS, USER_HEAD_OFFSET = 5_000, 50
# Products convert differently: a cart of the cheapest converts up to this much more often than
# one of the dearest (a step's chance times 1 + this, scaled by price).
CHEAP_BONUS = 0.6


@dataclass
class _Session:
    stage: str  # viewed | clicked | carted
    product: int
    last_ms: int


class EcommerceGenerator(BaseGenerator):
    name = "ecommerce"
    default_start_ms = int(datetime(2024, 9, 4, tzinfo=UTC).timestamp() * 1000)
    time_fields = {
        EVENTS: ("timestamp", "timestamp_str", "timestamp_sec"),
        INVENTORY: ("timestamp", "timestamp_str", "timestamp_sec"),
    }

    def __init__(self, config: GeneratorConfig | None = None, users: int = USERS) -> None:
        super().__init__(config)
        self.users = users
        shape = np.random.default_rng([self.config.seed, 1])
        self.user_pick = Popularity(users, 1.1, shape, offset=USER_HEAD_OFFSET)
        self.product_pick = Popularity(len(PRODUCTS), 1.2, shape)
        cheapest, dearest = min(p for _, p in PRODUCTS), max(p for _, p in PRODUCTS)
        self.appeal = [1 + CHEAP_BONUS * (dearest - price) / (dearest - cheapest) for _, price in PRODUCTS]

    def topics(self) -> dict[str, str]:
        return {
            EVENTS: "user actions (page_view, product_click, add_to_cart) and purchases",
            INVENTORY: "stock changes: sales (negative) and restocks (positive), with the level",
        }

    def dimensions(self) -> list[Table]:
        rows = [(name, f"The description of {name}", price) for name, price in PRODUCTS]
        return [Table("products", (("product", "TEXT"), ("description", "TEXT"), ("price", "DOUBLE")), rows)]

    def _setup(self) -> None:
        super()._setup()
        self.sessions: dict[int, _Session] = {}
        self.stock = [self.rnd.randint(20, 120) for _ in PRODUCTS]
        self.restocks: list[tuple[int, int, int]] = []  # heap of (ms, product, quantity)

    def events(self, times: np.ndarray) -> Iterator[Event]:
        users = self.user_pick.sample(self.rng, len(times))
        browsed = self.product_pick.sample(self.rng, len(times))
        for ms, user, rank in zip(times.tolist(), users.tolist(), browsed.tolist(), strict=True):
            # a restock is decided at a sale but arrives later, in its own time order
            while self.restocks and self.restocks[0][0] <= ms:
                at, restocked, quantity = heapq.heappop(self.restocks)
                yield self._inventory(at, restocked, quantity)
            yield from self._step(ms, user + 1, self._trending(rank, ms))

    @staticmethod
    def _trending(rank: int, ms: int) -> int:
        """The product at popularity `rank` at event time `ms`."""
        return (rank + ms // (TREND_HOURS * 3_600_000) * TREND_SHIFT) % len(PRODUCTS)

    def _step(self, ms: int, user: int, product: int) -> Iterable[Event]:
        session = self.sessions.get(user)
        if session is None or ms - session.last_ms > SESSION_GAP_MS:
            self.sessions[user] = _Session("viewed", product, ms)
            return [self._action(ms, user, "page_view", self.rnd.choice(("home", "category")), product)]
        session.last_ms = ms
        if self.rnd.random() >= STEP[session.stage] * self.appeal[session.product]:
            session.stage, session.product = "viewed", product
            return [self._action(ms, user, "page_view", "category", product)]
        if session.stage == "viewed":
            session.stage = "clicked"
            return [self._action(ms, user, "product_click", "product", session.product)]
        if session.stage == "clicked":
            session.stage = "carted"
            return [self._action(ms, user, "add_to_cart", "cart", session.product)]
        del self.sessions[user]
        return self._purchase(ms, user, session.product)

    def _action(self, ms: int, user: int, action: str, page: str, product: int) -> Event:
        return Event(
            EVENTS,
            ms,
            {
                "event_type": "user_action",
                "user_id": f"user{user}",
                "action": action,
                "page": page,
                "product": PRODUCTS[product][0],
            },
        )

    def _purchase(self, ms: int, user: int, product: int) -> list[Event]:
        name, price = PRODUCTS[product]
        quantity = min(self.stock[product], self.rnd.choice((1, 1, 1, 1, 2, 2, 3, 5)))
        if quantity == 0:  # sold out: the cart is abandoned
            return [self._action(ms, user, "page_view", "home", product)]
        events = [
            Event(
                EVENTS,
                ms,
                {
                    "event_type": "purchase",
                    "user_id": f"user{user}",
                    "product": name,
                    "quantity": quantity,
                    "price": price,
                    "amount": round(quantity * price, 2),
                },
            )
        ]
        events.append(self._inventory(ms, product, -quantity))
        pending = any(restocked == product for _, restocked, _ in self.restocks)
        if self.stock[product] < LOW_STOCK and not pending:  # the warehouse reacts, with a delay
            heapq.heappush(
                self.restocks,
                (ms + self.rnd.randint(5 * 60_000, 3 * 3_600_000), product, self.rnd.randint(50, 200)),
            )
        return events

    def _inventory(self, ms: int, product: int, change: int) -> Event:
        self.stock[product] += change
        name = PRODUCTS[product][0]
        return Event(
            INVENTORY,
            ms,
            {
                "event_type": "inventory_update",
                "product": name,
                "description": f"The description of {name}",
                "quantity": change,
                "stock": self.stock[product],
            },
        )

    def stamp(self, event: Event, ms: int) -> dict[str, Any]:
        seconds = sql_seconds(ms)
        head = {
            "event_type": event.fields["event_type"],
            "timestamp": iso_ms(ms),
            "timestamp_str": seconds,
            "timestamp_sec": seconds,
        }
        return head | event.fields
