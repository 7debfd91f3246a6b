"""Seed 002, the ksqlDB clickstream demo: web-server clicks, an HTTP status code table, users.

Field names and forms follow Confluent's datagen `clickstream` quickstarts (`time` as an access-log
date, `_time` in epoch ms, `remote_user` '-'), with `status` and `bytes` as numbers (the demo's DDL
declares them INT and BIGINT) and an ISO-8601 `event_time` added for Flink's WATERMARK.
Unlike datagen, users browse in sessions from a sticky IP and agent, pages are heavy-tailed, a
few users (bots, broken clients) produce most of the errors, and ~2% of clicks come from user
ids missing from the users table (so LEFT and INNER joins differ).
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
    USER_AGENTS,
    BaseGenerator,
    Event,
    GeneratorConfig,
    Popularity,
    Table,
    fake_ipv4,
    iso_ms,
    utc,
)

CLICKS, CODES, USERS = "clickstream", "clickstream_codes", "clickstream_users"
# Error bursts: every hour, a few minutes in which a share of the requests fail with one status.
OUTAGE_MINUTES = 3
OUTAGE_SHARE = 0.5
OUTAGE_STATUSES = (500, 404, 407)  # statuses of the codes table

STATUS_CODES: tuple[tuple[int, str], ...] = (
    (200, "Successful"),
    (302, "Redirect"),
    (404, "Page not found"),
    (405, "Method not allowed"),
    (406, "Not acceptable"),
    (407, "Proxy authentication required"),
    (500, "Internal server error"),
)
ERRORS = (404, 404, 404, 405, 406, 407, 500)
CITIES = ("Frankfurt", "San Francisco", "New York", "Raleigh", "London", "Palo Alto")
LEVELS = ("Silver", "Silver", "Silver", "Gold", "Gold", "Platinum")
REFERRERS = (
    "-",
    "-",
    "-",
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://t.co/",
    "https://news.ycombinator.com/",
)
# request -> typical response size in bytes; product pages are appended by popularity
STATIC_REQUESTS: tuple[tuple[str, int], ...] = (
    ("GET /index.html HTTP/1.1", 14_096),
    ("GET /site/login.html HTTP/1.1", 4_196),
    ("GET /site/user_status.html HTTP/1.1", 4_006),
    ("GET /images/track.png HTTP/1.1", 278),
    ("GET /images/logo-small.png HTTP/1.1", 1_289),
    ("POST /cart HTTP/1.1", 2_048),
    ("POST /checkout HTTP/1.1", 4_096),
)
PRODUCT_PAGES = 500
UNKNOWN_USERS = 50  # ids above the users table: clicks of visitors never registered
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _user_rows(rnd: random.Random, users: int, start_ms: int) -> list[dict[str, Any]]:
    rows = []
    for user_id in range(1, users + 1):
        first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
        registered = start_ms - rnd.randint(1, 3 * 365) * 86_400_000 - rnd.randint(0, 86_399_999)
        rows.append(
            {
                "user_id": user_id,
                "username": f"{first}{last}_{rnd.randint(1, 999)}",
                "registered_at": registered,
                "first_name": first,
                "last_name": last,
                "city": rnd.choice(CITIES),
                "level": rnd.choice(LEVELS),
            }
        )
    return rows


def access_log_time(ms: int) -> str:
    """The access-log form of the datagen `time` field: '14/Apr/2018:16:11:57 +0000'."""
    d = utc(ms)
    return f"{d.day:02d}/{MONTHS[d.month - 1]}/{d.year:04d}:{d.hour:02d}:{d.minute:02d}:{d.second:02d} +0000"


class KsqlClickstreamGenerator(BaseGenerator):
    name = "ksql-clickstream"
    default_start_ms = int(datetime(2018, 4, 14, tzinfo=UTC).timestamp() * 1000)
    time_fields = {CLICKS: ("time", "_time", "event_time")}

    def __init__(self, config: GeneratorConfig | None = None, users: int = 500) -> None:
        super().__init__(config)
        self.users = users
        shape = np.random.default_rng([self.config.seed, 2])
        self.user_pick = Popularity(users, 1.0, shape)
        self.page_pick = Popularity(len(STATIC_REQUESTS) + PRODUCT_PAGES, 1.1, shape)
        catalogue = random.Random(self.config.seed * 31 + 2)
        self.user_rows = _user_rows(catalogue, users, self.start_ms)
        # each user keeps one IP and one browser; a few users (bots, broken clients) misbehave
        everyone = range(users + UNKNOWN_USERS + 1)
        self.ips = [fake_ipv4(catalogue) for _ in everyone]
        self.agents = [catalogue.choice(USER_AGENTS) for _ in everyone]
        self.error_rate = [0.35 if catalogue.random() < 0.05 else 0.03 for _ in everyone]

    def topics(self) -> dict[str, str]:
        return {
            CLICKS: "web-server clicks (access-log fields)",
            CODES: "HTTP status code -> definition (a table, sent first)",
            USERS: "registered users (a table, sent first)",
        }

    def dimensions(self) -> list[Table]:
        user_columns = (
            ("user_id", "BIGINT"),
            ("username", "TEXT"),
            ("registered_at", "BIGINT"),
            ("first_name", "TEXT"),
            ("last_name", "TEXT"),
            ("city", "TEXT"),
            ("level", "TEXT"),
        )
        return [
            Table(CODES, (("code", "BIGINT"), ("definition", "TEXT")), list(STATUS_CODES)),
            Table(USERS, user_columns, [tuple(row.values()) for row in self.user_rows]),
        ]

    def prelude(self) -> list[Event]:
        codes = [
            Event(CODES, self.start_ms, {"code": code, "definition": text}, str(code), False)
            for code, text in STATUS_CODES
        ]
        users = [Event(USERS, self.start_ms, row, str(row["user_id"]), False) for row in self.user_rows]
        return codes + users

    def _setup(self) -> None:
        super()._setup()
        self.recent: deque[int] = deque(maxlen=32)  # users mid-session

    def events(self, times: np.ndarray) -> Iterator[Event]:
        users = self.user_pick.sample(self.rng, len(times))
        pages = self.page_pick.sample(self.rng, len(times))
        sizes = self.rng.lognormal(0.0, 0.3, len(times))
        for ms, user, page, size in zip(
            times.tolist(), users.tolist(), pages.tolist(), sizes.tolist(), strict=True
        ):
            yield Event(CLICKS, ms, self._click(self._who(user + 1), page, size, self._outage(ms)))

    def _who(self, popular: int) -> int:
        rnd = self.rnd
        if self.recent and rnd.random() < 0.7:  # sessions: the same users keep clicking
            return rnd.choice(self.recent)
        user = self.users + rnd.randint(1, UNKNOWN_USERS) if rnd.random() < 0.02 else popular
        self.recent.append(user)
        return user

    def _outage(self, ms: int) -> int | None:
        """The status of the error burst under way at `ms`, if one is: every hour of event time has
        one, OUTAGE_MINUTES long at a time of its own, of one status (a failing backend), so the
        error charts have spikes and the error alerts fire."""
        hour = ms // 3_600_000
        burst = random.Random(self.config.seed * 1_000_003 + hour)
        start = hour * 3_600_000 + burst.randrange(60 - OUTAGE_MINUTES) * 60_000
        status = burst.choice(OUTAGE_STATUSES)
        return status if start <= ms < start + OUTAGE_MINUTES * 60_000 else None

    def _click(self, user: int, page: int, size: float, outage: int | None = None) -> dict[str, Any]:
        if page < len(STATIC_REQUESTS):
            request, typical = STATIC_REQUESTS[page]
        else:
            request, typical = f"GET /products/{page - len(STATIC_REQUESTS)}.html HTTP/1.1", 9_000
        status = 200
        if outage is not None and self.rnd.random() < OUTAGE_SHARE:
            status = outage
        elif self.rnd.random() < self.error_rate[user]:
            status = self.rnd.choice(ERRORS)
        elif "login" in request and self.rnd.random() < 0.4:
            status = 302
        return {
            "ip": self.ips[user],
            "userid": user,
            "remote_user": "-",
            "request": request,
            "status": status,
            "bytes": int(typical * size) if status == 200 else 278,
            "referrer": self.rnd.choice(REFERRERS),
            "agent": self.agents[user],
        }

    def stamp(self, event: Event, ms: int) -> dict[str, Any]:
        if event.topic != CLICKS:
            return event.fields
        f = event.fields
        return {
            "ip": f["ip"],
            "userid": f["userid"],
            "remote_user": "-",
            "time": access_log_time(ms),
            "_time": ms,
            "request": f["request"],
            "status": f["status"],
            "bytes": f["bytes"],
            "referrer": f["referrer"],
            "agent": f["agent"],
            "event_time": iso_ms(ms),
        }
