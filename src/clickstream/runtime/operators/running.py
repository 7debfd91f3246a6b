"""Running (per-record) aggregates within one batch, vectorized with numpy.

For each row: the aggregate of its group over the batch's rows up to and including it, in arrival
order. SQL window functions compute the same (`OVER (PARTITION BY k ORDER BY seq ROWS UNBOUNDED
PRECEDING)`) but sort and build segment trees; here one stable sort by group and cumulative sums
or maxima do it. MIN/MAX work on dense ranks, so any orderable type (numbers, strings, times) is
handled the same way. Types numpy cannot add exactly (DECIMAL sums) are left to SQL.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clickstream.runtime.operators.aggregates import accumulators
from clickstream.sql.plan import AggCall

_NUMPY_SUMMABLE = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "FLOAT", "DOUBLE")


def supported(calls: list[AggCall]) -> bool:
    return all(
        c.function in ("COUNT", "MIN", "MAX")
        or (c.function in ("SUM", "AVG") and c.argument_type in _NUMPY_SUMMABLE)
        for c in calls
    )


Codes = dict[str, tuple[np.ndarray, int]]  # column -> (code per row, number of codes)


def column_codes(batch: pa.Table, name: str, cache: Codes | None = None) -> tuple[np.ndarray, int]:
    """Small ints per row, equal for equal values (NULL its own code); cached per batch because
    encoding a string column is the costly part."""
    if cache is not None and name in cache:
        return cache[name]
    encoded = pc.dictionary_encode(batch.column(name)).combine_chunks()
    width = len(encoded.dictionary) + 1
    indices = encoded.indices.fill_null(width - 1).to_numpy(zero_copy_only=False)
    result = (indices.astype(np.int64), width)
    if cache is not None:
        cache[name] = result
    return result


def row_codes(batch: pa.Table, columns: list[str], cache: Codes | None = None) -> np.ndarray:
    """One int64 per row, equal for rows equal on `columns` (NULL equal to NULL)."""
    code, span = np.zeros(batch.num_rows, dtype=np.int64), 1
    for name in columns:
        indices, width = column_codes(batch, name, cache)
        if span * width >= 1 << 62:  # keep the combined code from overflowing: re-number
            uniques, code = np.unique(code, return_inverse=True)
            span = len(uniques)
        code = code * width + indices
        span *= width
    return code


def first_occurrences(batch: pa.Table, columns: list[str], cache: Codes | None = None) -> np.ndarray:
    """Indices of the rows that are the first of their value of `columns` in the batch."""
    codes = row_codes(batch, columns, cache)
    n = len(codes)
    span = int(codes.max()) + 1 if n else 0
    if span > 4 * n + 1024:  # sparse codes: sort them
        _, first = np.unique(codes, return_index=True)
        return np.sort(first)
    # dense codes: the smallest row index per code, without sorting the batch
    smallest = np.full(span, n, dtype=np.int64)
    np.minimum.at(smallest, codes, np.arange(n, dtype=np.int64))
    return np.sort(smallest[smallest < n])


class GroupOrder:
    """Rows sorted by group, keeping arrival order inside a group."""

    def __init__(self, batch: pa.Table, keys: list[str], cache: Codes | None = None) -> None:
        n = batch.num_rows
        _, self.group = np.unique(row_codes(batch, keys, cache), return_inverse=True)
        self.order = np.argsort(self.group, kind="stable")
        sorted_group = self.group[self.order]
        starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
        self.sizes = np.diff(np.r_[starts, n])
        self.starts = starts
        self.groups = len(starts)
        # first[i]: row i is its group's first row in this batch
        self.first = np.zeros(n, dtype=bool)
        self.first[self.order[starts]] = True
        self.last = np.zeros(n, dtype=bool)
        self.last[self.order[np.r_[starts[1:], n] - 1]] = True

    def _unsort(self, sorted_values: np.ndarray) -> np.ndarray:
        out = np.empty_like(sorted_values)
        out[self.order] = sorted_values
        return out

    def cumsum(self, values: np.ndarray) -> np.ndarray:
        totals = np.cumsum(values[self.order])
        before = np.r_[0, totals[self.starts[1:] - 1]] if self.groups else np.zeros(0)
        return self._unsort(totals - np.repeat(before, self.sizes).astype(totals.dtype))

    def cumulative_extreme(self, values: pa.Array, largest: bool) -> tuple[pa.Array, np.ndarray, int]:
        """Running MAX (or MIN) per group; NULLs are ignored, NULL until a value is seen. Also
        the running value's rank per row (a code for it) and the number of ranks."""
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
        ranks = pc.rank(values, sort_keys="ascending", tiebreaker="dense").to_numpy().astype(np.int64)
        top = int(ranks.max()) + 1 if len(ranks) else 1
        # NULL ranks lowest for MAX, highest for MIN; groups are offset so one accumulate serves all
        ranks = np.where(valid, ranks, 0 if largest else top)
        span = top + 1
        if largest:
            keyed = self.group.astype(np.int64) * span + ranks
            running = np.maximum.accumulate(keyed[self.order])
            running = self._unsort(running) - self.group * span
        else:
            keyed = (self.groups - self.group).astype(np.int64) * span + ranks
            running = np.minimum.accumulate(keyed[self.order])
            running = self._unsort(running) - (self.groups - self.group) * span
        row_of_rank = np.zeros(top + 1, dtype=np.int64)
        row_of_rank[ranks[valid]] = np.flatnonzero(valid)
        seen = (running > 0) & (running < top)
        taken = values.take(pa.array(row_of_rank[np.where(seen, running, 0)]))
        result = pc.if_else(pa.array(seen), taken, pa.nulls(len(values), values.type))
        return result, np.where(seen, running, 0), top + 1


def running_accumulators(
    batch: pa.Table,
    keys: list[str],
    calls: list[AggCall],
    distinct_flags: dict[int, str],
    cache: Codes | None = None,
) -> tuple[pa.Table, np.ndarray]:
    """Per row: the batch-local accumulator columns (named as the operator's state columns), and
    `__first` / `__last`: whether the row is its group's first / last in the batch; with the
    indices of the rows worth emitting."""
    cache = {} if cache is None else cache
    groups = GroupOrder(batch, keys, cache)
    columns: dict[str, pa.Array] = {k: batch.column(k) for k in keys}
    for index, call in enumerate(calls):
        names = [name for name, _, _ in accumulators(index, call)]
        arg = batch.column(call.argument) if call.argument else None
        if call.distinct and arg is not None:
            # each value counts once: on the row that first brings it (the others read as NULL)
            flags = batch.column(distinct_flags[index])
            arg = pc.if_else(flags, arg, pa.nulls(batch.num_rows, arg.type))
        if call.function == "COUNT":
            ones = (
                np.ones(batch.num_rows, dtype=np.int64)
                if arg is None
                else pc.is_valid(arg).to_numpy(zero_copy_only=False).astype(np.int64)
            )
            columns[names[0]] = pa.array(groups.cumsum(ones))
        elif call.function in ("MIN", "MAX"):
            values, ranks, width = groups.cumulative_extreme(arg, call.function == "MAX")
            columns[names[0]] = values
            cache[names[0]] = (ranks, width)
        else:  # SUM, AVG over integers or floats
            valid = pc.is_valid(arg).to_numpy(zero_copy_only=False)
            values = arg.fill_null(0).to_numpy(zero_copy_only=False)
            sums = groups.cumsum(values)
            counts = groups.cumsum(valid.astype(np.int64))
            sums_array = pa.array(sums, mask=counts == 0)
            if call.function == "SUM":
                columns[names[0]] = sums_array
            else:
                columns[names[0]] = sums_array
                columns[names[1]] = pa.array(counts)
    columns["__first"] = pa.array(groups.first)
    columns["__last"] = pa.array(groups.last)
    table = pa.table(columns)
    # Rows equal on group and accumulators give equal results: only the last of each such set
    # can be what a sink keeps, so the others are dropped here (a big saving: most records leave
    # a COUNT(DISTINCT) or a MAX unchanged).
    state_columns = [n for n in table.column_names if n not in ("__first", "__last")]
    codes = row_codes(table, state_columns, cache)
    _, from_end = np.unique(codes[::-1], return_index=True)
    keep = np.sort(table.num_rows - 1 - from_end)
    return table, keep
