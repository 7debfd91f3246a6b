"""Session windows: per key, rows whose gap windows `[t, t + gap)` overlap or touch form one session.

Sessions evolve record by record, as in Flink's merging windows: a session whose end the
watermark has reached is closed (it fires at the end of the batch), so a later row can no longer
join it; a row whose own window has ended (`t + gap - 1 <= watermark`) and that reaches no open
session of its key is late, dropped and counted. Which session each row joins is decided by one
pass over the batch in arrival order (sessions of different keys never interact), which keeps the
results independent of batch boundaries; the rows themselves wait in a state table, labelled
with their session, and are aggregated in SQL when the session fires.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK, SEQ, WM, quote, stamp
from clickstream.runtime.operators.aggregates import accumulators, final
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.operators.running import row_codes
from clickstream.runtime.state import JobState
from clickstream.schema import window_time_sql
from clickstream.sql.plan import WindowAggregateNode


@dataclass
class _Session:
    start: int
    end: int  # exclusive: last row's time + gap


class SessionWindowOperator(BaseOperator):
    name = "SessionWindowAggregate"

    def __init__(self, node: WindowAggregateNode, state: JobState, time_zone: str) -> None:
        super().__init__()
        self.node, self.state, self.time_zone = node, state, time_zone
        self.gap = node.window.size_ms
        self.p = state.new_prefix("session")
        self.keys = [quote(k) for k in node.keys]
        self.args = sorted({a.argument for a in node.aggregates if a.argument})
        self.sessions: dict[tuple, dict[int, _Session]] = {}  # key values -> open sessions
        # sessions the watermark closed while a batch was placed: they wait for the batch's end
        # to fire, out of the open ones that each row of their key looks through
        self.closed: set[int] = set()
        self.next_id = 0
        self._created = False
        self.emitted = 0

    # --- input --------------------------------------------------------------------------------

    def process(self, batch: pa.Table) -> list[pa.Table]:
        p = self.p
        time_column = self.node.input.column(self.node.window.time_column)
        columns = self.keys + [quote(a) for a in self.args]  # none for COUNT(*) over one session
        columns.append(quote(SEQ))  # the arrival order, for FIRST_VALUE, LAST_VALUE and LISTAGG
        columns += [f"{window_time_sql(time_column, self.time_zone)} AS __t", f"{quote(WM)} AS __w"]
        rows = self.state.query(
            f"SELECT {', '.join(columns)} FROM batch WHERE {quote(time_column.name)} IS NOT NULL "
            f"ORDER BY {quote(SEQ)}",
            batch=batch,
        )
        self.metrics.records_in += batch.num_rows
        if not rows.num_rows:
            return []
        labels, relabel = self._assign(rows)
        keep = labels >= 0
        self.metrics.late_dropped += int((~keep).sum())
        labelled = rows.drop_columns(["__w"]).append_column("__sid", pa.array(labels)).filter(pa.array(keep))
        if not self._created:
            self.state.execute(f"CREATE TABLE {p}_rows AS SELECT * FROM labelled LIMIT 0", labelled=labelled)
            self._created = True
        if relabel:
            moves = pa.table({"old": list(relabel), "new": list(relabel.values())})
            self.state.execute(
                f"UPDATE {p}_rows SET __sid = m.new FROM moves m WHERE {p}_rows.__sid = m.old", moves=moves
            )
        self.state.execute(f"INSERT INTO {p}_rows SELECT * FROM labelled", labelled=labelled)
        return []

    def _assign(self, rows: pa.Table) -> tuple[np.ndarray, dict[int, int]]:
        """Session id per row (-1: late), and the ids of stored sessions merged into others."""
        codes, key_of_code = self._key_codes(rows)
        # Python ints, not numpy scalars: this loop runs once per row
        times = rows.column("__t").to_pylist()
        marks = rows.column("__w").to_pylist()
        merged_into: dict[int, int] = {}
        placed = [
            self._place(key_of_code[code], times[i], marks[i], merged_into)
            for i, code in enumerate(codes.tolist())
        ]
        relabel: dict[int, int] = {}
        for old, new in merged_into.items():
            while new in merged_into:
                new = merged_into[new]
            relabel[old] = new
        if relabel:  # (-1, late, is never a session's id)
            placed = [relabel.get(sid, sid) for sid in placed]
        return np.array(placed, dtype=np.int64), relabel

    def _key_codes(self, rows: pa.Table) -> tuple[np.ndarray, dict[int, tuple]]:
        """One int per row, equal for rows of the same key, and the key's values of each code
        (read from its first row only: a tuple per row cost more than the placing)."""
        if not self.keys:
            return np.zeros(rows.num_rows, dtype=np.int64), {0: ()}
        names = [k.strip('"') for k in self.node.keys]
        codes = row_codes(rows, names)
        uniques, first = np.unique(codes, return_index=True)
        values = rows.select(names).take(pa.array(first)).to_pylist()
        return codes, {code: tuple(row.values()) for code, row in zip(uniques.tolist(), values, strict=True)}

    def _place(self, key: tuple, t: int, watermark: int, merged_into: dict[int, int]) -> int:
        sessions = self.sessions.get(key)
        if sessions is None:
            sessions = self.sessions[key] = {}
        gap, unbounded = self.gap, watermark == MIN_WATERMARK
        touching, closed = [], []
        for sid, s in sessions.items():
            if not unbounded and s.end - 1 <= watermark:
                closed.append(sid)  # the watermark reached its end: no row joins it any more
            elif t <= s.end and t + gap >= s.start:
                touching.append(sid)  # Flink merges windows that overlap or touch: [0, 10) and [10, 20)
        for sid in closed:
            del sessions[sid]
            self.closed.add(sid)
        if not touching:
            if watermark != MIN_WATERMARK and t + self.gap - 1 <= watermark:
                return -1  # late: its own session has ended and no open one reaches it
            sid = self.next_id
            self.next_id += 1
            sessions[sid] = _Session(t, t + self.gap)
            return sid
        target = touching[0]
        merged = sessions[target]
        merged.start, merged.end = min(merged.start, t), max(merged.end, t + self.gap)
        for sid in touching[1:]:
            other = sessions.pop(sid)
            merged.start, merged.end = min(merged.start, other.start), max(merged.end, other.end)
            merged_into[sid] = target
        return target

    # --- firing --------------------------------------------------------------------------------

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        due: dict[tuple, list[int]] = {}  # key -> its sessions to fire (none: the key is left empty)
        for key, sessions in self.sessions.items():
            sids = [sid for sid, s in sessions.items() if s.end - 1 <= watermark]
            if sids or not sessions:
                due[key] = sids
        done = sorted(self.closed) + [sid for sids in due.values() for sid in sids]
        if not done or not self._created:
            return []
        fired = pa.table({"sid": pa.array(done, pa.int64())})
        out = self.state.query(self._fire_sql(), fired=fired)
        self.state.execute(f"DELETE FROM {self.p}_rows WHERE __sid IN (SELECT sid FROM fired)", fired=fired)
        self.closed.clear()
        for key, sids in due.items():
            sessions = self.sessions[key]
            for sid in sids:
                del sessions[sid]
            if not sessions:
                del self.sessions[key]
        self.metrics.state_rows = self.state.scalar(f"SELECT count(*) FROM {self.p}_rows") or 0
        stamped = stamp(out, self.emitted, watermark)
        self.emitted += out.num_rows
        self.metrics.records_out += out.num_rows
        return [stamped]

    def _fire_sql(self) -> str:
        """Each fired session's accumulators over its rows, then the results from them."""
        partials = [f"any_value({k}) AS {k}" for k in self.keys] + ["min(__t) AS __lo", "max(__t) AS __hi"]
        for i, call in enumerate(self.node.aggregates):
            distinct = f"DISTINCT {quote(call.argument)}" if call.distinct and call.argument else None
            partials += [f"{sql} AS {name}" for name, sql, _ in accumulators(i, call, distinct)]
        values = [f"a.{k}" for k in self.keys]
        values += [
            f"{final(i, c, 'a')} AS {quote(c.output.name)}" for i, c in enumerate(self.node.aggregates)
        ]
        start, end, time = (quote(c) for c in self.node.window_columns)
        values += [
            f"make_timestamp(__lo * 1000) AS {start}",
            f"make_timestamp((__hi + {self.gap}) * 1000) AS {end}",
            f"{self._window_time(f'__hi + {self.gap}')} AS {time}",
        ]
        return (
            f"SELECT {', '.join(values)} FROM (SELECT __sid, {', '.join(partials)} FROM {self.p}_rows "
            f"WHERE __sid IN (SELECT sid FROM fired) GROUP BY __sid) a ORDER BY __hi, __sid"
        )

    def _window_time(self, end: str) -> str:
        wall = f"make_timestamp(({end} - 1) * 1000)"
        if self.node.time_is_ltz:
            return f"timezone('{self.time_zone}', {wall})"
        return wall
