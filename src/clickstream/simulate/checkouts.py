"""Seed 004, checkout attribution: `clicks`, `checkouts` and the `users` table.

The seed attributes each checkout to the earliest click of the same user on the same product in
the hour before. So most checkouts here (85%) follow a click of their user and product between
5 s and 55 min earlier, often after several clicks on it; the rest have no such click (bought
on another visit), so a LEFT join keeps them with a NULL click. Fields are the seed's DDL's,
`datetime_occured` in ISO-8601 UTC; `total_amount` stays below 1,000 (the seed's DECIMAL(5, 2)).
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

from clickstream.simulate.base import (
    FIRST_NAMES,
    LAST_NAMES,
    USER_AGENTS,
    BaseGenerator,
    Event,
    GeneratorConfig,
    Popularity,
    Table,
    fake_ipv4,
    fake_uuid,
    iso_ms,
)

CLICKS, CHECKOUTS, USERS = "clicks", "checkouts", "users"
CHECKOUT_SHARE = 0.06  # of arrival slots
ATTRIBUTED_SHARE = 0.85  # of checkouts with a click of the same user and product in the hour
MIN_LEAD_MS, MAX_LEAD_MS = 5_000, 55 * 60_000  # click -> checkout, inside the seed's hour
_REFERRERS = ("home", "search", "ad", "mail")
PAYMENT_METHODS = ("VISA 16 digit", "Mastercard", "American Express", "Discover", "JCB 16 digit")
WORDS = (
    "lamp",
    "chair",
    "kettle",
    "backpack",
    "sneakers",
    "jacket",
    "blender",
    "novel",
    "puzzle",
    "candle",
    "mug",
    "scarf",
    "tent",
    "helmet",
    "guitar",
    "speaker",
    "wallet",
    "watch",
)
STREETS = ("Main St", "Oak Ave", "Pine Rd", "Maple Dr", "Cedar Ln", "Elm St", "Lakeview Blvd")
CITIES = (
    ("Springfield", "IL"),
    ("Austin", "TX"),
    ("Portland", "OR"),
    ("Denver", "CO"),
    ("Raleigh", "NC"),
    ("Madison", "WI"),
    ("Boise", "ID"),
)


def _address(rnd: random.Random) -> str:
    city, state = rnd.choice(CITIES)
    return f"{rnd.randint(1, 9999)} {rnd.choice(STREETS)}, {city}, {state} {rnd.randint(10000, 99999)}"


class CheckoutsGenerator(BaseGenerator):
    name = "checkouts"
    default_start_ms = int(datetime(2023, 6, 1, tzinfo=UTC).timestamp() * 1000)
    time_fields = {CLICKS: ("datetime_occured",), CHECKOUTS: ("datetime_occured",)}

    def __init__(
        self, config: GeneratorConfig | None = None, users: int = 1_000, products: int = 300
    ) -> None:
        super().__init__(config)
        catalogue = random.Random(self.config.seed * 31 + 4)
        self.usernames = [
            f"{catalogue.choice(FIRST_NAMES).lower()}.{catalogue.choice(LAST_NAMES).lower()}"
            f"{catalogue.randint(1, 99)}"
            for _ in range(users)
        ]
        self.ips = [fake_ipv4(catalogue) for _ in range(users)]
        self.agents = [catalogue.choice(USER_AGENTS) for _ in range(users)]
        self.addresses = [_address(catalogue) for _ in range(users)]
        self.products = [
            (
                fake_uuid(catalogue),
                f"{catalogue.choice(WORDS)}-{i}",
                round(min(catalogue.lognormvariate(3.3, 0.8), 320.0) + 0.99, 2),
            )
            for i in range(products)
        ]
        shape = np.random.default_rng([self.config.seed, 4])
        self.user_pick = Popularity(users, 1.0, shape)
        self.product_pick = Popularity(products, 1.1, shape)

    def topics(self) -> dict[str, str]:
        return {
            CLICKS: "product clicks",
            CHECKOUTS: "purchases, most after a click in the hour",
            USERS: "users (id, username): a table, sent first",
        }

    def dimensions(self) -> list[Table]:
        rows = [(user_id, name) for user_id, name in enumerate(self.usernames, start=1)]
        return [Table(USERS, (("id", "BIGINT"), ("username", "TEXT")), rows)]

    def prelude(self) -> list[Event]:
        return [
            Event(USERS, self.start_ms, {"id": user_id, "username": name}, str(user_id), False)
            for user_id, name in enumerate(self.usernames, start=1)
        ]

    def _setup(self) -> None:
        super()._setup()
        self.recent: deque[int] = deque(maxlen=32)  # users mid-session
        self.last_product: dict[int, int] = {}
        # clicks of the last hour, time-ordered: parallel lists, trimmed from the front
        self.click_ms: list[int] = []
        self.click_of: list[tuple[int, int]] = []

    def events(self, times: np.ndarray) -> Iterator[Event]:
        users = self.user_pick.sample(self.rng, len(times))
        products = self.product_pick.sample(self.rng, len(times))
        for ms, user, product in zip(times.tolist(), users.tolist(), products.tolist(), strict=True):
            if self.rnd.random() < CHECKOUT_SHARE:
                yield self._checkout(ms, user, product)
            else:
                yield self._click(ms, user, product)

    def _click(self, ms: int, popular: int, product: int) -> Event:
        rnd = self.rnd
        user = popular
        if self.recent and rnd.random() < 0.7:  # sessions: the same users keep clicking
            user = rnd.choice(self.recent)
            if user in self.last_product and rnd.random() < 0.4:  # ... often on the same product
                product = self.last_product[user]
        else:
            self.recent.append(user)
        self.last_product[user] = product
        self._remember(ms, user, product)
        product_id, name, price = self.products[product]
        return Event(
            CLICKS,
            ms,
            {
                "click_id": fake_uuid(rnd),
                "user_id": user + 1,
                "product_id": product_id,
                "product": name,
                "price": price,
                "url": f"https://shop.example.com/p/{name}?ref={rnd.choice(_REFERRERS)}",
                "user_agent": self.agents[user],
                "ip_address": self.ips[user],
            },
        )

    def _remember(self, ms: int, user: int, product: int) -> None:
        self.click_ms.append(ms)
        self.click_of.append((user, product))
        if len(self.click_ms) > 4_096 and self.click_ms[2_048] < ms - MAX_LEAD_MS:
            del self.click_ms[:2_048], self.click_of[:2_048]

    def _checkout(self, ms: int, user: int, product: int) -> Event:
        rnd = self.rnd
        lo = bisect.bisect_left(self.click_ms, ms - MAX_LEAD_MS)
        hi = bisect.bisect_right(self.click_ms, ms - MIN_LEAD_MS)
        if hi > lo and rnd.random() < ATTRIBUTED_SHARE:
            user, product = self.click_of[rnd.randrange(lo, hi)]
        product_id, _, price = self.products[product]
        quantity = min(rnd.choice((1, 1, 1, 1, 2, 3)), int(999.99 // price))
        shipping = self.addresses[user]
        return Event(
            CHECKOUTS,
            ms,
            {
                "checkout_id": fake_uuid(rnd),
                "user_id": user + 1,
                "product_id": product_id,
                "payment_method": rnd.choice(PAYMENT_METHODS),
                "total_amount": round(quantity * price, 2),
                "shipping_address": shipping,
                "billing_address": shipping if rnd.random() < 0.8 else _address(rnd),
                "user_agent": self.agents[user],
                "ip_address": self.ips[user],
            },
        )

    def stamp(self, event: Event, ms: int) -> dict[str, Any]:
        if not event.timed:
            return event.fields
        return event.fields | {"datetime_occured": iso_ms(ms)}
