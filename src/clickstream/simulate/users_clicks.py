"""Seed 003, the streaming-runtimes clickstream: a `users` upsert stream and `clicks`.

`users` starts with a snapshot of every user, then carries level changes (mostly upgrades) keyed
by `user_id`, so a join on the latest level sees users become, or stop being, PLATINUM.
`clicks` has the seed's fields plus `event_time` (ISO-8601 UTC), which the seed's query selects.
Users click in sessions on heavy-tailed pages, keep their main device, and ~1% of clicks come from
ids that never registered.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

from clickstream.simulate.base import (
    FIRST_NAMES,
    LAST_NAMES,
    BaseGenerator,
    Event,
    GeneratorConfig,
    Popularity,
    Table,
    iso_ms,
)

USERS, CLICKS = "users", "clicks"
LEVELS = ("SILVER", "GOLD", "PLATINUM")
LEVEL_SHARES = (0.6, 0.3, 0.1)
ACTIONS = ("products", "product_detail", "selection", "search", "cart", "checkout")
ACTION_SHARES = (0.32, 0.28, 0.18, 0.12, 0.06, 0.04)
DEVICES = ("computer", "mobile", "tablet")
AGENTS = {
    "computer": (
        "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/56.0.2924.87 Safari/537.36 OPR/43.0.2442.991",
        "Mozilla/5.0 (Windows NT 10.0; WOW64; rv:50.0) Gecko/20100101 Firefox/50.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_1) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/12.0.1 Safari/605.1.15",
    ),
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 12_0_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 9; SM-G960F) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/74.0.3729.157 Mobile Safari/537.36",
    ),
    "tablet": (
        "Mozilla/5.0 (iPad; CPU OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/12.0 Mobile/15E148 Safari/604.1",
    ),
}
LEVEL_CHANGE_SHARE = 0.01  # of arrival slots that carry a user's level change instead of a click


def ssn(rnd: random.Random) -> str:
    return f"{rnd.randint(1, 899):03d}-{rnd.randint(1, 99):02d}-{rnd.randint(1, 9999):04d}"


class UsersClicksGenerator(BaseGenerator):
    name = "users-clicks"
    default_start_ms = int(datetime(2022, 3, 1, tzinfo=UTC).timestamp() * 1000)
    time_fields = {USERS: ("updated_at",), CLICKS: ("event_time",)}

    def __init__(self, config: GeneratorConfig | None = None, users: int = 1_000) -> None:
        super().__init__(config)
        catalogue = random.Random(self.config.seed * 31 + 3)
        ids: dict[str, None] = {}
        while len(ids) < users:  # dict: unique and in a reproducible order
            ids[ssn(catalogue)] = None
        self.user_ids = list(ids)
        self.names = [self._name(catalogue) for _ in self.user_ids]
        self.first_levels = catalogue.choices(LEVELS, LEVEL_SHARES, k=users)
        self.devices = catalogue.choices(DEVICES, (0.45, 0.45, 0.10), k=users)
        self.strangers = [ssn(catalogue) for _ in range(20)]  # never registered
        shape = np.random.default_rng([self.config.seed, 3])
        self.user_pick = Popularity(users, 1.0, shape)
        self.page_ids = shape.choice(np.arange(1, 65_536), size=5_000, replace=False)
        self.page_pick = Popularity(len(self.page_ids), 1.1, shape)

    @staticmethod
    def _name(rnd: random.Random) -> str:
        title = "Dr. " if rnd.random() < 0.08 else ""
        return f"{title}{rnd.choice(FIRST_NAMES)} {rnd.choice(LAST_NAMES)}"

    def topics(self) -> dict[str, str]:
        return {
            USERS: "user_id -> name, level: an upsert stream keyed by user_id",
            CLICKS: "click events: user_id, page, action, device, agent, event_time",
        }

    def dimensions(self) -> list[Table]:
        rows = list(zip(self.user_ids, self.names, self.first_levels, strict=True))
        return [Table(USERS, (("user_id", "TEXT"), ("name", "TEXT"), ("level", "TEXT")), rows)]

    def prelude(self) -> list[Event]:
        return [
            Event(
                USERS,
                self.start_ms - 86_400_000,
                {"user_id": user_id, "name": name, "level": level},
                user_id,
                False,
            )
            for user_id, name, level in zip(self.user_ids, self.names, self.first_levels, strict=True)
        ]

    def _setup(self) -> None:
        super()._setup()
        self.levels = list(self.first_levels)
        self.recent: deque[int] = deque(maxlen=32)

    def events(self, times: np.ndarray) -> Iterator[Event]:
        users = self.user_pick.sample(self.rng, len(times))
        pages = self.page_ids[self.page_pick.sample(self.rng, len(times))]
        for ms, user, page in zip(times.tolist(), users.tolist(), pages.tolist(), strict=True):
            if self.rnd.random() < LEVEL_CHANGE_SHARE:
                yield self._level_change(ms, user)
            else:
                yield self._click(ms, self._who(user), page)

    def _who(self, popular: int) -> int:
        if self.recent and self.rnd.random() < 0.7:  # sessions: the same users keep clicking
            return self.rnd.choice(self.recent)
        self.recent.append(popular)
        return popular

    def _level_change(self, ms: int, user: int) -> Event:
        rank = LEVELS.index(self.levels[user])
        up = rank < 2 and (rank == 0 or self.rnd.random() < 0.8)
        self.levels[user] = LEVELS[rank + 1 if up else rank - 1]
        user_id = self.user_ids[user]
        return Event(
            USERS, ms, {"user_id": user_id, "name": self.names[user], "level": self.levels[user]}, user_id
        )

    def _click(self, ms: int, user: int, page: int) -> Event:
        rnd = self.rnd
        user_id = rnd.choice(self.strangers) if rnd.random() < 0.01 else self.user_ids[user]
        device = self.devices[user] if rnd.random() < 0.85 else rnd.choice(DEVICES)
        return Event(
            CLICKS,
            ms,
            {
                "user_id": user_id,
                "page": page,
                "action": rnd.choices(ACTIONS, ACTION_SHARES)[0],
                "device": device,
                "agent": rnd.choice(AGENTS[device]),
            },
        )

    def stamp(self, event: Event, ms: int) -> dict[str, Any]:
        field = "updated_at" if event.topic == USERS else "event_time"
        return event.fields | {field: iso_ms(ms)}
