"""Seed 002, the ksqlDB clickstream demo: web-server clicks, an HTTP status code table, users.

Field names and forms follow Confluent's datagen `clickstream` quickstarts (`time` as an access-log
date, `_time` in epoch ms, `remote_user` '-'), with `status` and `bytes` as numbers (the demo's DDL
declares them INT and BIGINT) and an ISO-8601 `event_time` added for Flink's WATERMARK.
Unlike datagen, users browse in sessions from a sticky IP and agent, pages are heavy-tailed, a
few users (bots, broken clients) produce most of the errors, and ~2% of clicks come from user
ids missing from the users table (so LEFT and INNER joins differ).

Sessions (what the seed's SESSION window of 5 minutes finds): a user's session has a heavy-tailed
number of clicks (a median of 5 for the average user, more for the regulars, some in the hundreds)
with heavy-tailed pauses between them that stay under the session gap, and the user's next session
starts well after the gap, so sessions differ in length, hits and bytes and each one is found
whole. Which user clicks at an arrival slot follows from that: the session whose next click is
due, else a new session of a user free to start one (chosen by popularity).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterator
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
NEWCOMER_UNKNOWN = 0.04  # share of sessions of such visitors (theirs are short: ~2% of the clicks)
# Sessions, in ms of event time, around the 5-minute gap of the seed's SESSION window. A click
# inside a session comes at most MAX_PAUSE_MS + STALE_MARGIN_MS after the one before (a later
# arrival slot ends the session instead), and a user's next session starts BREAK_MS or more after
# their last click: both a margin off the gap that the stamps' disorder (3 s) cannot eat.
SESSION_GAP_MS = 5 * 60_000
MAX_PAUSE_MS = 150_000
STALE_MARGIN_MS = 90_000
BREAK_MS = SESSION_GAP_MS + 60_000
SESSION_CLICKS_MEDIAN, SESSION_CLICKS_SIGMA, MAX_SESSION_CLICKS = 5.0, 1.2, 300
PAUSE_MEDIAN_MS, PAUSE_SIGMA = 8_000, 1.1
IDLE_MEAN_MS = 20 * 60_000  # mean extra break beyond BREAK_MS before a user's next session
ACTIVITY_EXPONENT, MIN_ACTIVITY, MAX_ACTIVITY = 0.7, 0.3, 12.0  # a user's, from their popularity
NEW_SESSION_TRIES = 20  # popular picks tried before a busy site lets an open session click early
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
        # how active each user is, from how often they are picked: the regulars' sessions are
        # longer and follow each other sooner (unknown users browse as the average one)
        weight = np.diff(self.user_pick.cdf, prepend=0.0) * users
        activity = np.clip(weight**ACTIVITY_EXPONENT, MIN_ACTIVITY, MAX_ACTIVITY)
        self.activity = [1.0, *activity.tolist(), *[1.0] * UNKNOWN_USERS]
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
        self.sessions = Sessions(self.rnd, self.activity)

    def events(self, times: np.ndarray) -> Iterator[Event]:
        popular = iter((self.user_pick.sample(self.rng, len(times) * 4) + 1).tolist())
        pages = self.page_pick.sample(self.rng, len(times))
        sizes = self.rng.lognormal(0.0, 0.3, len(times))
        for ms, page, size in zip(times.tolist(), pages.tolist(), sizes.tolist(), strict=True):
            user = self.sessions.clicker(ms, lambda: self._newcomer(popular))
            yield Event(CLICKS, ms, self._click(user, page, size, self._outage(ms)))

    def _newcomer(self, popular: Iterator[int]) -> int:
        """Who would start a session: a popular registered user, or now and then an unknown one."""
        if self.rnd.random() < NEWCOMER_UNKNOWN:
            return self.users + self.rnd.randint(1, UNKNOWN_USERS)
        return next(popular, None) or self.rnd.randint(1, self.users)

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


class Sessions:
    """Who clicks at each arrival slot: the open sessions, each with its clicks still to come and
    when its next one is due, and when each user who ended one may start the next."""

    def __init__(self, rnd: random.Random, activity: list[float]) -> None:
        self.rnd, self.activity = rnd, activity  # activity: per user id, 1 is the average user
        # heap of (next click due ms, tie-break, user, their last click ms)
        self.due: list[tuple[int, int, int, int]] = []
        self.left: dict[int, int] = {}  # user -> clicks still to come in their open session
        self.free_at: dict[int, int] = {}  # user -> ms from which they may start a new session
        self.order = itertools.count()

    def clicker(self, ms: int, newcomer: Callable[[], int]) -> int:
        """The user clicking at `ms`: the most overdue session's, else a new session's; when every
        user tried is busy, the session due soonest clicks a little early."""
        user = self._overdue(ms)
        if user is None:
            user = self._start(ms, newcomer)
            if user is None:  # everyone tried is busy: an open session clicks early
                user = self._pop()[0] if self.due else min(self.free_at, key=self.free_at.__getitem__)
            if user not in self.left:
                self.left[user] = self._clicks(self.activity[user])
        self.left[user] -= 1
        if self.left[user] > 0:
            heapq.heappush(self.due, (ms + self._pause_ms(), next(self.order), user, ms))
        else:
            self._end(user, ms)
        return user

    def _overdue(self, ms: int) -> int | None:
        """The user of the open session due longest ago. A session whose user last clicked so long
        ago that a click now would fall past the session gap (arrivals too sparse for its pauses)
        ends instead: sessions are found whole at any rate."""
        while self.due and self.due[0][0] <= ms:
            user, last = self._pop()
            if ms - last <= MAX_PAUSE_MS + STALE_MARGIN_MS:
                return user
            self._end(user, last)
        return None

    def _pop(self) -> tuple[int, int]:
        _, _, user, last = heapq.heappop(self.due)
        return user, last

    def _end(self, user: int, last_ms: int) -> None:
        del self.left[user]
        idle = self.rnd.expovariate(self.activity[user] / IDLE_MEAN_MS)
        self.free_at[user] = last_ms + BREAK_MS + int(idle)

    def _start(self, ms: int, newcomer: Callable[[], int]) -> int | None:
        for _ in range(NEW_SESSION_TRIES):
            user = newcomer()
            if user not in self.left and self.free_at.get(user, ms) <= ms:
                return user
        return None

    def _clicks(self, activity: float) -> int:
        clicks = self.rnd.lognormvariate(np.log(SESSION_CLICKS_MEDIAN * activity), SESSION_CLICKS_SIGMA)
        return min(MAX_SESSION_CLICKS, max(1, round(clicks)))

    def _pause_ms(self) -> int:
        return min(MAX_PAUSE_MS, int(self.rnd.lognormvariate(np.log(PAUSE_MEDIAN_MS), PAUSE_SIGMA)))
