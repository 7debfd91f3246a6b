"""The `datagen` connector: random or sequential rows, as Flink's.

Options: `number-of-rows` (bounded if set), `rows-per-second` (default 10000),
`fields.<name>.kind` (random | sequence), `.min`/`.max` (numbers), `.length` (strings),
`.start`/`.end` (sequence), `.max-past` (timestamps), `.null-rate`.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from clickstream.config import Settings, parse_duration_ms
from clickstream.connectors.base import BaseSource, physical_schema
from clickstream.connectors.options import FIELD, Option
from clickstream.errors import ConnectorError
from clickstream.schema import TableDef

OPTIONS = (
    Option(
        "number-of-rows",
        "int",
        minimum=0,
        description="Rows to generate; the source is unbounded without it.",
    ),
    Option("rows-per-second", "number", "10000", description="The rate rows are generated at."),
    Option("seed", "int", "0", description="Seed of the random values (0: a different run each time)."),
    Option("scan.parallelism", "int", minimum=1, description="Accepted for Flink compatibility."),
    Option(
        f"fields.{FIELD}.kind",
        "enum",
        "random",
        values=("random", "sequence"),
        description="Random values, or a sequence from 'start' to 'end' (which bounds the source).",
    ),
    Option(f"fields.{FIELD}.min", "number", description="Smallest random number."),
    Option(f"fields.{FIELD}.max", "number", description="Largest random number."),
    Option(
        f"fields.{FIELD}.max-past", "duration", "0", description="How far before now random timestamps go."
    ),
    Option(f"fields.{FIELD}.length", "int", "100", minimum=0, description="Length of random strings."),
    Option(f"fields.{FIELD}.start", "int", description="First value of a sequence."),
    Option(f"fields.{FIELD}.end", "int", description="Last value of a sequence."),
    Option(f"fields.{FIELD}.null-rate", "number", "0", description="Share of NULL values, from 0 to 1."),
)

_LETTERS = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


class DataGenSource(BaseSource):
    def __init__(self, table: TableDef, settings: Settings) -> None:
        super().__init__(table, settings)
        options = table.options
        self.total = int(options["number-of-rows"]) if "number-of-rows" in options else None
        self.rate = float(options.get("rows-per-second", "10000"))
        self.bounded = self.total is not None
        self.schema = physical_schema(table)
        self.produced = 0
        self.rng = np.random.default_rng(int(options.get("seed", "0")) or None)
        self._started = time.monotonic()
        for column in table.physical:
            if column.flink_type.startswith(("ARRAY<", "MAP<", "ROW<")):
                raise ConnectorError(
                    f"Table '{table.name}': datagen does not generate column '{column.name}' of type "
                    f"{column.flink_type} (ARRAY, MAP and ROW columns are not supported)"
                )
            kind = self._opt(column.name, "kind", "random")
            if kind == "sequence" and (
                self._opt(column.name, "start") is None or self._opt(column.name, "end") is None
            ):
                raise ConnectorError(
                    f"Table '{table.name}': sequence field '{column.name}' needs 'start' and 'end'"
                )
            if kind == "sequence":
                end = int(self._opt(column.name, "end")) - int(self._opt(column.name, "start")) + 1
                self.total = end if self.total is None else min(self.total, end)
                self.bounded = True

    def _opt(self, field: str, key: str, default: str | None = None) -> str | None:
        return self.table.options.get(f"fields.{field}.{key}", default)

    def poll(self, max_rows: int) -> pa.Table | None:
        allowed = int((time.monotonic() - self._started) * self.rate) - self.produced
        if self.total is not None:
            allowed = min(allowed, self.total - self.produced)
        n = min(max_rows, allowed)
        if n <= 0:
            return None
        columns = [self._column(f.name, f.type, n) for f in self.schema]
        self.produced += n
        self.metrics.records_in += n
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _column(self, name: str, arrow_type: pa.DataType, n: int) -> pa.Array:
        if self._opt(name, "kind", "random") == "sequence":
            start = int(self._opt(name, "start")) + self.produced
            values = pa.array(np.arange(start, start + n)).cast(arrow_type)
        elif pa.types.is_integer(arrow_type):
            low, high = int(self._opt(name, "min", "0")), int(self._opt(name, "max", "2147483647"))
            values = pa.array(self.rng.integers(low, high + 1, n)).cast(arrow_type)
        elif pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
            low, high = float(self._opt(name, "min", "0")), float(self._opt(name, "max", "1000"))
            values = pa.array(self.rng.uniform(low, high, n)).cast(arrow_type, safe=False)
        elif pa.types.is_boolean(arrow_type):
            values = pa.array(self.rng.integers(0, 2, n).astype(bool))
        elif pa.types.is_timestamp(arrow_type):
            past = parse_duration_ms(self._opt(name, "max-past", "0"))
            now_us = int(time.time() * 1_000_000)
            offsets = self.rng.integers(0, past * 1000 + 1, n)
            values = pa.array(now_us - offsets).cast(pa.timestamp("us")).cast(arrow_type)
        else:
            length = int(self._opt(name, "length", "100"))
            chars = _LETTERS[self.rng.integers(0, len(_LETTERS), n * length)]
            text = chars.tobytes().decode()
            values = pa.array([text[i * length : (i + 1) * length] for i in range(n)])
        rate = float(self._opt(name, "null-rate", "0"))
        if rate > 0:
            mask = pa.array(self.rng.random(n) < rate)
            values = pa.compute.if_else(mask, pa.nulls(n, values.type), values)
        return values

    def position(self) -> object:
        return {"produced": self.produced, "rng": self.rng.bit_generator.state}

    def seek(self, position: object) -> None:
        assert isinstance(position, dict)
        self.produced = position["produced"]
        self.rng.bit_generator.state = position["rng"]
        # the rate limit counts from now, as if the rows produced so far were produced just now
        self._started = time.monotonic() - self.produced / self.rate

    def exhausted(self) -> bool:
        return self.total is not None and self.produced >= self.total
