"""LookupJoin: enrich each row with the dimension rows whose keys match, fetched per batch."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from clickstream.connectors.base import BaseLookupSource
from clickstream.runtime.batch import SEQ, hidden_columns, quote
from clickstream.runtime.operators import running
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.schema import arrow_type
from clickstream.sql.plan import LookupJoinNode
from clickstream.sql.render import column, substituted, to_sql


class LookupJoinOperator(BaseOperator):
    name = "LookupJoin"

    def __init__(self, node: LookupJoinNode, lookup: BaseLookupSource, state: JobState) -> None:
        super().__init__()
        self.node, self.lookup, self.state = node, lookup, state
        dim_columns = {c.name: c for c in node.table.physical}
        self._key_types = [arrow_type(dim_columns[k]) for k in node.right_keys]
        left = ", ".join(f"l.{quote(c.name)}" for c in node.input.columns)
        right = ", ".join(f"r.{quote(dim)} AS {quote(out)}" for dim, out in node.right_columns)
        on = " AND ".join(
            f"l.{quote(lk)} = r.{quote(rk)}" for lk, rk in zip(node.left_keys, node.right_keys, strict=True)
        )
        if node.condition:
            # The extra condition is written over output names; evaluate it on the joined row.
            sides = {c.name: column(c.name, "l") for c in node.input.columns}
            sides.update({out: column(dim, "r") for dim, out in node.right_columns})
            on = f"{on} AND ({to_sql(substituted(node.condition, sides))})"
        join = "LEFT JOIN" if node.join_type == "LEFT" else "JOIN"
        self._sql = f"SELECT {left}, {right}{{hidden}} FROM batch l {join} dim r ON {on}"

    def process(self, batch: pa.Table) -> list[pa.Table]:
        keys = self._distinct_keys(batch)
        dim = self.lookup.lookup(self.node.right_keys, keys)
        result = self._by_index(batch, dim)
        if result is None:
            hidden = "".join(f", l.{quote(h)}" for h in hidden_columns(batch))
            sql = self._sql.format(hidden=hidden) + f" ORDER BY l.{quote(SEQ)}"
            result = self.state.query(sql, batch=batch, dim=dim)
        return self._count(batch, [result] if result.num_rows else [])

    def _by_index(self, batch: pa.Table, dim: pa.Table) -> pa.Table | None:
        """The common case, one key column and at most one dimension row per key: find each
        row's match by hash lookup and append its columns, leaving the batch's columns as they
        are. None when the case does not apply (the SQL join handles it)."""
        if len(self.node.left_keys) != 1 or self.node.condition:
            return None
        right_key = dim.column(self.node.right_keys[0])
        if pc.count_distinct(right_key).as_py() != dim.num_rows or right_key.null_count:
            return None
        left = pc.cast(batch.column(self.node.left_keys[0]), right_key.type, safe=False)
        index = pc.index_in(left, value_set=right_key.combine_chunks())
        if self.node.join_type != "LEFT":
            keep = pc.is_valid(index)
            batch, index = batch.filter(keep), index.filter(keep)
        matched = dim.take(index)
        hidden = hidden_columns(batch)
        out = batch.select([c.name for c in self.node.input.columns])
        for dim_name, out_name in self.node.right_columns:
            out = out.append_column(out_name, matched.column(dim_name))
        for name in hidden:
            out = out.append_column(name, batch.column(name))
        return out

    def _distinct_keys(self, batch: pa.Table) -> pa.Table:
        columns = {}
        for left, right, arrow in zip(
            self.node.left_keys, self.node.right_keys, self._key_types, strict=True
        ):
            columns[right] = pc.cast(batch.column(left), arrow, safe=False)
        keys = pa.table(columns)
        mask = None
        for name in keys.column_names:
            valid = pc.is_valid(keys.column(name))
            mask = valid if mask is None else pc.and_(mask, valid)
        if mask is not None:
            keys = keys.filter(mask)
        return keys.take(pa.array(running.first_occurrences(keys, keys.column_names)))
