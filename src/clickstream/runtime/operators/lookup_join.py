"""LookupJoin: enrich each row with the dimension rows whose keys match, fetched per batch."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from clickstream.connectors.base import BaseLookupSource
from clickstream.runtime.batch import SEQ, hidden_columns, quote
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import LookupJoinNode
from clickstream.sql.types import arrow_type


class LookupJoinOperator(BaseOperator):
    name = "LookupJoin"

    def __init__(self, node: LookupJoinNode, lookup: BaseLookupSource, state: JobState) -> None:
        super().__init__()
        self.node, self.lookup, self.state = node, lookup, state
        dim_columns = {c.name: c for c in node.table.physical}
        self._key_types = [arrow_type(dim_columns[k]) for k in node.right_keys]
        left = ", ".join(f"l.{quote(c.name)}" for c in node.input.columns)
        right = ", ".join(f"r.{quote(dim)} AS {quote(out)}" for dim, out in node.right_columns)
        on = " AND ".join(f"l.{quote(lk)} = r.{quote(rk)}"
                          for lk, rk in zip(node.left_keys, node.right_keys, strict=True))
        if node.condition:
            # The extra condition is written over output names; evaluate it on the joined row.
            renamed = node.condition
            for dim, out in node.right_columns:
                renamed = renamed.replace(quote(out), f"r.{quote(dim)}")
            on = f"{on} AND ({renamed})"
        join = "LEFT JOIN" if node.join_type == "LEFT" else "JOIN"
        self._sql = f"SELECT {left}, {right}{{hidden}} FROM batch l {join} dim r ON {on}"

    def process(self, batch: pa.Table) -> list[pa.Table]:
        keys = self._distinct_keys(batch)
        dim = self.lookup.lookup(self.node.right_keys, keys)
        hidden = "".join(f", l.{quote(h)}" for h in hidden_columns(batch))
        sql = self._sql.format(hidden=hidden) + f" ORDER BY l.{quote(SEQ)}"
        result = self.state.query(sql, batch=batch, dim=dim)
        return self._count(batch, [result] if result.num_rows else [])

    def _distinct_keys(self, batch: pa.Table) -> pa.Table:
        columns = {}
        for left, right, arrow in zip(self.node.left_keys, self.node.right_keys, self._key_types,
                                      strict=True):
            columns[right] = pc.cast(batch.column(left), arrow, safe=False)
        keys = pa.table(columns)
        mask = None
        for name in keys.column_names:
            valid = pc.is_valid(keys.column(name))
            mask = valid if mask is None else pc.and_(mask, valid)
        if mask is not None:
            keys = keys.filter(mask)
        return keys.group_by(keys.column_names).aggregate([])
