"""A bounded, expiring cache of lookup results, keyed by the tuple of key values.

It mirrors Flink's JDBC lookup cache: at most `max_rows` keys are kept (the oldest written go
first) and an entry older than `ttl_ms` is treated as absent, so the next lookup of that key
reloads it. An empty list is a valid entry: the key was looked up and has no row.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

Rows = list[tuple[Any, ...]]


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class LookupCache:
    """Key tuple -> rows; the oldest entries beyond `max_rows` go, expired ones are ignored."""

    def __init__(self, max_rows: int, ttl_ms: int, clock: Callable[[], int] = monotonic_ms) -> None:
        self.max_rows = max_rows
        self.ttl_ms = ttl_ms
        self._clock = clock
        # Write order is kept by the OrderedDict: the first entry is the oldest.
        self._entries: OrderedDict[Hashable, tuple[int, Rows]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Rows | None:
        """The cached rows for `key`, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is not None and self._clock() - entry[0] < self.ttl_ms:
            self.hits += 1
            return entry[1]
        if entry is not None:
            del self._entries[key]
        self.misses += 1
        return None

    def put(self, key: Hashable, rows: Rows) -> None:
        # A rewritten key becomes the newest, so a reload restarts its time to live.
        self._entries.pop(key, None)
        self._entries[key] = (self._clock(), rows)
        while len(self._entries) > self.max_rows:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
