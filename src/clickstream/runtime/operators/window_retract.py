"""WindowAggregate over a changelog that keeps its rowtime (a deduplication keeping the last row
on event time): Flink 2's window aggregation with retractions.

Rows are assigned to slices and judged late as in `WindowAggregateOperator`, a retraction
(`-U`/`-D`) against the watermark it arrived under like any row: one whose windows have all
fired is late, dropped and counted, and the window keeps the row it retracts. The state keeps
each slice's rows, signed (+1 for `+I`/`+U`, -1 for `-U`/`-D`), with only the keys and the
aggregates' arguments. When a window fires, its rows net out (a retraction cancels an equal row)
and the aggregates are taken over what is left, so MIN and MAX see retractions as Flink's
retracting accumulators do; a window and key left with no row emit nothing, as in Flink.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import OP, quote
from clickstream.runtime.operators.aggregates import accumulators, distinct_accumulators
from clickstream.runtime.operators.window_aggregate import WindowAggregateOperator

SIGN = quote("$sign")


class RetractWindowAggregateOperator(WindowAggregateOperator):
    name = "WindowAggregate"

    def _row_extras(self, batch: pa.Table) -> list[str]:
        return [f"CASE WHEN {quote(OP)} IN (1, 3) THEN -1 ELSE 1 END AS {SIGN}"]

    def _extra_names(self) -> list[str]:
        return ["$sign"]

    def _arguments(self) -> list[str]:
        names = {call.argument for call in self.node.aggregates if call.argument}
        return [quote(n) for n in sorted(names) if n not in self.node.keys]

    def _append_partials(self) -> None:
        p = self.prefix
        columns = ", ".join(["__slice", "__min_end"] + self.keys + self._arguments() + [SIGN])
        rows = f"SELECT {columns} FROM {p}_rows WHERE NOT __late"
        if not self._created:
            self.state.execute(f"CREATE TABLE {p}_signed AS {rows} LIMIT 0")
            self._created = True
        self.state.execute(f"INSERT INTO {p}_signed {rows}")
        slices = self.state.query(f"SELECT DISTINCT __slice FROM {p}_rows WHERE NOT __late")
        self.open_slices.update(slices.column(0).to_pylist())

    def _merged(self) -> tuple[str, str]:
        """Each window's rows netted (one row per copy left), then aggregated per key; DISTINCT
        aggregates too, so there are no joins."""
        p = self.prefix
        values = ", ".join(["w.w_start", "w.w_end"] + [f"a.{c}" for c in self.keys + self._arguments()])
        net = (
            f"SELECT {values}, CAST(sum(a.{SIGN}) AS BIGINT) AS __n FROM win w JOIN {p}_signed a "
            "ON a.__slice > w.w_start AND a.__slice <= w.w_end AND a.__min_end <= w.w_end "
            f"GROUP BY ALL HAVING sum(a.{SIGN}) > 0"
        )
        partials = []
        for i, call in enumerate(self.node.aggregates):
            if call.distinct and call.argument:
                partials += distinct_accumulators(i, call, quote(call.argument))
            else:
                partials += [f"{sql} AS {name}" for name, sql, _ in accumulators(i, call)]
        group = ", ".join(["w_start", "w_end"] + self.keys)
        sql = (
            f"SELECT {group}, {', '.join(partials)} FROM (SELECT *, unnest(range(__n)) AS __copy "
            f"FROM ({net})) GROUP BY {group}"
        )
        return sql, ""

    def _purge(self, wall: int) -> None:
        done = [s for s in self.open_slices if self._last_end(s) - 1 <= wall]
        if not done:
            return
        gone = pa.table({"s": pa.array(done, pa.int64())})
        self.state.execute(
            f"DELETE FROM {self.prefix}_signed WHERE __slice IN (SELECT s FROM gone)", gone=gone
        )
        self.open_slices.difference_update(done)
