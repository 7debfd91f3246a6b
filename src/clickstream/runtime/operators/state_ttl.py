"""`table.exec.state.ttl` for keyed state: a key's state goes once it has not been written for
the TTL (processing time), as Flink's state TTL (`OnCreateAndWrite`, never returning expired state).

Nothing is emitted when a key expires: a later row of that key starts from an empty state, so an
aggregate then emits `+I` of a fresh result without retracting the old one, as in Flink.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import quote
from clickstream.runtime.clock import Clock
from clickstream.runtime.state import JobState

TOUCHED = quote("$touched")


class KeyedStateTtl:
    """When each key of one operator was last written, and the expiry of idle keys' rows."""

    def __init__(self, state: JobState, prefix: str, keys: list[str], ttl_ms: int, clock: Clock) -> None:
        self.state, self.table, self.ttl_ms, self.clock = state, f"{prefix}_ttl", ttl_ms, clock
        self.keys = keys  # quoted key columns
        self._created = False

    def _same_key(self, a: str, b: str) -> str:
        return " AND ".join(f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in self.keys) or "TRUE"

    def touch(self, source: str, **tables: pa.Table) -> None:
        """Every key of relation `source` (a state table, or an Arrow table passed by name in
        `tables`) was written now."""
        keys = ", ".join(self.keys) or "1 AS __all"
        if not self._created:
            self.state.execute(
                f"CREATE TABLE {self.table} AS SELECT DISTINCT {keys}, 0::BIGINT AS {TOUCHED} "
                f"FROM {source} LIMIT 0",
                **tables,
            )
            self._created = True
        seen = f"SELECT 1 FROM {source} b WHERE {self._same_key('t', 'b')}"
        self.state.execute(f"DELETE FROM {self.table} t WHERE EXISTS ({seen})", **tables)
        self.state.execute(
            f"INSERT INTO {self.table} SELECT DISTINCT {keys}, {self.clock.now_ms()} FROM {source}", **tables
        )

    def expire(self, tables: list[str]) -> None:
        """Deletes, from each of `tables` (keyed by the same columns), the rows of keys idle for
        longer than the TTL."""
        if not self._created:
            return
        cutoff = self.clock.now_ms() - self.ttl_ms
        idle = f"SELECT * FROM {self.table} WHERE {TOUCHED} < {cutoff}"
        for table in tables:
            expired = f"SELECT 1 FROM ({idle}) i WHERE {self._same_key('s', 'i')}"
            self.state.execute(f"DELETE FROM {table} s WHERE EXISTS ({expired})")
        self.state.execute(f"DELETE FROM {self.table} WHERE {TOUCHED} < {cutoff}")
