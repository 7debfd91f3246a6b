"""Kafka records into a table's rows, a whole batch at a time, as Flink's Kafka deserializer
builds them: the value's fields (`value.format`), the key's (`key.format`, `key.fields`), and the
metadata columns (`col INT METADATA FROM 'partition' VIRTUAL`).

With `value.fields-include` = 'ALL' the value holds every column and the key's columns are read
from it (Flink sets the value's fields last); with 'EXCEPT_KEY' the key columns come from the key.
An upsert table (`upsert-kafka`) reads each record as an upsert of its key (+U), a record without
value (a tombstone) as the deletion of its key (-D). A plain `kafka` table skips records without
value, as Flink's formats do. A record whose key or value cannot be read goes to the dead letters
with its topic, partition and offset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pyarrow as pa

from clickstream.connectors.base import DELETE, OP_COLUMN, PARTITION, UPDATE_AFTER
from clickstream.connectors.changelog import ChangelogDecoder, decoder_for
from clickstream.connectors.formats import Decoder
from clickstream.errors import ConnectorError
from clickstream.schema import Column, TableDef, arrow_type

# metadata keys a source reads, and the Flink type each one has
METADATA = {
    "topic": "STRING",
    "partition": "INT",
    "offset": "BIGINT",
    "timestamp": "TIMESTAMP_LTZ(3)",
    "timestamp-type": "STRING",
    "headers": "MAP<STRING, BYTES>",
    "leader-epoch": "INT",
}
WRITABLE_METADATA = ("timestamp", "headers")
_TIMESTAMP_TYPES = {0: "NoTimestampType", 1: "CreateTime", 2: "LogAppendTime"}
_KEY_FORMATS = ("json", "raw")


@dataclass
class Records:
    """One polled batch's records, column by column. `index`: each record's partition index
    (unique over the topics, for per-partition watermarks)."""

    messages: list
    index: np.ndarray
    values: list[bytes | None]

    @property
    def size(self) -> int:
        return len(self.messages)

    @cached_property
    def lengths(self) -> np.ndarray | None:
        """Each value's size in bytes; None when a record has no value (a tombstone)."""
        return _lengths(self.values)

    @property
    def complete(self) -> bool:
        """Whether every record has a value."""
        return self.lengths is not None

    @property
    def value_bytes(self) -> int:
        if self.lengths is not None:
            return int(self.lengths.sum())
        return sum(len(v) for v in self.values if v is not None)

    def where(self, positions: list[int]) -> tuple[list[str], list[dict[str, int]]]:
        """Each record's topic and place, for dead letters."""
        chosen = [self.messages[i] for i in positions]
        return [m.topic() for m in chosen], [
            {"partition": m.partition(), "offset": m.offset()} for m in chosen
        ]


def key_fields(table: TableDef, upsert: bool) -> list[str]:
    """The columns in the record key: the PRIMARY KEY (upsert-kafka) or `key.fields`."""
    if upsert:
        return [table.column(k).name for k in table.primary_key]  # type: ignore[union-attr]
    text = table.options.get("key.fields")
    names = [k.strip() for k in text.split(";") if k.strip()] if text else []
    fields = []
    for name in names:
        column = table.column(name)
        if column is None or column.name in table.metadata:
            raise ConnectorError(
                f"Table '{table.name}': key field '{name}' is not a physical column of the table"
            )
        fields.append(column.name)
    return fields


def data_columns(table: TableDef) -> list[Column]:
    return [c for c in table.physical if c.name not in table.metadata]


def check_metadata(table: TableDef) -> None:
    """Metadata columns name keys the source has, with Flink's types."""
    for name, meta in table.metadata.items():
        if meta.key not in METADATA:
            raise ConnectorError(
                f"Table '{table.name}': column '{name}' reads metadata '{meta.key}', which the kafka "
                f"connector does not have; available: {', '.join(METADATA)}"
            )


def sub_table(table: TableDef, columns: list[Column], prefix: str, fmt: str, strip: str = "") -> TableDef:
    """A table of `columns` in format `fmt` with the options under `prefix` ('key.', 'value.'),
    as the shared decoders read a table; `strip`: a `key.fields-prefix` the records lack."""
    options = {"format": fmt}
    for key, value in table.options.items():
        if key.startswith(f"{prefix}{fmt}."):
            options[key.removeprefix(prefix)] = value
    renamed = [replace(c, name=c.name.removeprefix(strip)) for c in columns]
    return TableDef(name=table.name, physical=renamed, options=options, primary_key=[])


class RecordDecoder:
    """Decodes one table's polled records into its rows, and says which records were malformed."""

    def __init__(self, table: TableDef, upsert: bool) -> None:
        self.table, self.upsert = table, upsert
        check_metadata(table)
        options = table.options
        value_format = options.get("value.format", options.get("format", "json")).lower()
        value_prefix = "value." if "value.format" in options else ""
        self.keys = key_fields(table, upsert)
        prefix = options.get("key.fields-prefix", "")
        include = options.get("value.fields-include", "ALL").upper()
        data = data_columns(table)
        value_columns = [c for c in data if include == "ALL" or c.name not in self.keys]
        self.value_names = [c.name for c in value_columns]
        self.values = decoder_for(sub_table(table, value_columns, value_prefix, value_format))
        if upsert and isinstance(self.values, ChangelogDecoder):
            raise ConnectorError(
                f"Table '{table.name}': upsert-kafka reads 'value.format' json, csv or raw, "
                f"not '{value_format}'"
            )
        self.key_format = options.get("key.format", "").lower()
        self.key_columns = [c for c in table.physical if c.name in self.keys]
        self.key_decoder = self._key_decoder(prefix)
        self.schema = pa.schema([pa.field(c.name, arrow_type(c)) for c in table.physical])

    def _key_decoder(self, prefix: str) -> Decoder | None:
        if not self.keys:
            return None
        if not self.key_format:
            raise ConnectorError(f"Table '{self.table.name}': 'key.fields' needs 'key.format'")
        if self.key_format not in _KEY_FORMATS:
            raise ConnectorError(
                f"Table '{self.table.name}': 'key.format' = '{self.key_format}' is not supported; "
                "use json or raw"
            )
        if self.key_format == "raw":
            if len(self.keys) != 1:
                raise ConnectorError(
                    f"Table '{self.table.name}': the raw key format holds one column, not {len(self.keys)}"
                )
            return None
        return Decoder(sub_table(self.table, self.key_columns, "key.", "json", prefix))

    def decode(self, records: Records) -> tuple[pa.Table, list[tuple[str, str]], list[int]]:
        """The rows (table columns, plus `_op` for an upsert table, plus `__partition`), and the
        malformed records: (text, reason) and their positions in `records`."""
        bad: dict[int, tuple[str, str]] = {}
        present = (
            np.ones(records.size, dtype=bool)
            if records.complete
            else np.array([v is not None for v in records.values], dtype=bool)
        )
        values, origin = self._values(records, present, bad)
        keys, key_ok = self._keys(records, bad)
        # tombstones: upsert deletions, read from the key only
        tombstones = np.flatnonzero(~present) if self.upsert else np.array([], dtype=np.int64)
        rows_origin = np.concatenate([origin, tombstones]).astype(np.int64)
        ok = key_ok[rows_origin] & ~np.isin(rows_origin, np.fromiter(bad, np.int64, len(bad)))
        rows = self._assemble(records, values, keys, rows_origin, len(origin))
        if self.upsert:
            ops = np.concatenate([np.full(len(origin), UPDATE_AFTER), np.full(len(tombstones), DELETE)])
            rows = rows.append_column(OP_COLUMN, pa.array(ops, pa.int8()))
        elif OP_COLUMN in values.column_names:  # a changelog format says each row's kind
            rows = rows.append_column(OP_COLUMN, values.column(OP_COLUMN))
        if len(tombstones):  # back in arrival order
            order = np.argsort(rows_origin, kind="stable")
            rows, rows_origin, ok = rows.take(pa.array(order)), rows_origin[order], ok[order]
        rows = rows.append_column(PARTITION, pa.array(records.index[rows_origin], pa.int32()))
        if not ok.all():
            rows = rows.filter(pa.array(ok))
        positions = sorted(bad)
        return rows, [bad[p] for p in positions], positions

    def _values(self, records: Records, present: np.ndarray, bad: dict) -> tuple[pa.Table, np.ndarray]:
        """The decoded values, and per row the record it came from."""
        chosen = np.flatnonzero(present)
        if len(chosen) == records.size:
            texts, readable = _texts(records.values, records.lengths)
        else:
            texts, readable = _texts([records.values[i] for i in chosen])
        for i in np.flatnonzero(~readable):
            bad[int(chosen[i])] = (_shown(records.values[chosen[i]]), "not UTF-8 text")
        chosen = chosen[readable]
        if len(chosen) == 0:
            return pa.table({n: pa.array([], self.schema.field(n).type) for n in self.value_names}), chosen
        decoded = self.values.decode(texts.filter(pa.array(readable)) if not readable.all() else texts)
        for position, reason in zip(decoded.positions, decoded.malformed, strict=True):
            bad[int(chosen[position])] = reason
        if decoded.origin is not None:
            return decoded.rows, chosen[decoded.origin]
        return decoded.rows, chosen if decoded.kept is None else chosen[decoded.kept]

    def _keys(self, records: Records, bad: dict) -> tuple[pa.Table | None, np.ndarray]:
        """Per record its key columns (None: the table reads none), and whether it could."""
        ok = np.ones(records.size, dtype=bool)
        if not self.keys:
            return None, ok
        raw = [m.key() for m in records.messages]
        texts, readable = _texts(raw)
        for i in np.flatnonzero(~readable):
            bad.setdefault(int(i), (_shown(raw[i]), "key: not UTF-8 text"))
        ok &= readable
        if self.key_decoder is None:  # raw: the key's text is the column
            column = self.key_columns[0]
            return pa.table({column.name: texts.cast(arrow_type(column))}), ok
        filled = pa.array([t if t is not None else "{}" for t in texts.to_pylist()], pa.string())
        decoded = self.key_decoder.decode(filled)
        full = np.ones(records.size, dtype=bool) if decoded.kept is None else decoded.kept.copy()
        for position, (text, reason) in zip(decoded.positions, decoded.malformed, strict=True):
            bad.setdefault(position, (text, f"key: {reason}"))
        rows = decoded.rows
        if decoded.kept is not None:  # a row per record, NULL where the key could not be read
            at = np.cumsum(full) - 1
            rows = (
                rows.take(pa.array(np.where(full, at, 0)))
                if rows.num_rows
                else _nulls(rows.schema, records.size)
            )
        names = [c.name for c in self.key_columns]
        return rows.rename_columns(names), ok & full

    def _assemble(
        self, records: Records, values: pa.Table, keys: pa.Table | None, origin: np.ndarray, valued: int
    ) -> pa.Table:
        """The table's columns, in order, for the records at `origin`: the first `valued` of them
        have a value, the others are tombstones (their key columns from the key, the rest NULL)."""
        columns = []
        for field in self.schema:
            name, meta = field.name, self.table.metadata.get(field.name)
            if meta is not None:
                columns.append(_metadata(records, meta.key, origin, field.type))
            elif name not in self.value_names:  # EXCEPT_KEY: from the key
                columns.append(_take(keys, name, origin, field.type))
            elif len(origin) == valued:
                columns.append(values.column(name).combine_chunks().cast(field.type))
            else:
                tail = origin[valued:]
                rest = (
                    _take(keys, name, tail, field.type)
                    if name in self.keys
                    else pa.nulls(len(tail), field.type)
                )
                columns.append(
                    pa.concat_arrays([values.column(name).combine_chunks().cast(field.type), rest])
                )
        return pa.Table.from_arrays(columns, schema=self.schema)


def _take(keys: pa.Table | None, name: str, at: np.ndarray, datatype: pa.DataType) -> pa.Array:
    assert keys is not None  # the table reads a key when a column comes from it
    return keys.column(name).take(pa.array(at, pa.int64())).combine_chunks().cast(datatype)


def _texts(raw: list[bytes | None], lengths: np.ndarray | None = None) -> tuple[pa.Array, np.ndarray]:
    """The records as strings, and which of them are UTF-8 (the others become NULL). `lengths`:
    their sizes, if known."""
    data = _binary(raw, _lengths(raw) if lengths is None else lengths)
    try:
        return data.cast(pa.string()), np.ones(len(raw), dtype=bool)
    except pa.ArrowInvalid:
        pass
    readable = np.array([_is_utf8(b) for b in raw], dtype=bool)
    return pa.array(
        [b.decode() if ok and b is not None else None for b, ok in zip(raw, readable, strict=True)],
        pa.string(),
    ), readable


def _lengths(raw: list[bytes | None]) -> np.ndarray | None:
    """Each value's size in bytes; None when one of them is None."""
    try:
        return np.fromiter(map(len, raw), np.int64, len(raw))  # type: ignore[arg-type]
    except TypeError:  # len(None)
        return None


def _binary(raw: list[bytes | None], lengths: np.ndarray | None) -> pa.Array:
    """`raw` as an Arrow binary array. Without None (`lengths` known), from one joined buffer and
    the lengths' running sum: `pa.array` over a list of bytes goes through Python once per
    record, several times slower."""
    if lengths is None or lengths.sum() >= 2**31:  # a None, or beyond a binary array's int32 offsets
        return pa.array(raw, pa.binary())
    offsets = np.zeros(len(raw) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    joined = b"".join(raw)  # type: ignore[arg-type]  # no None among them
    return pa.Array.from_buffers(pa.binary(), len(raw), [None, pa.py_buffer(offsets), pa.py_buffer(joined)])


def _is_utf8(data: bytes | None) -> bool:
    if data is None:
        return True
    try:
        data.decode()
        return True
    except UnicodeDecodeError:
        return False


def _shown(data: bytes | None) -> str:
    return "" if data is None else data.decode(errors="replace")


def _nulls(schema: pa.Schema, n: int) -> pa.Table:
    return pa.table({f.name: pa.nulls(n, f.type) for f in schema})


def _metadata(records: Records, key: str, origin: np.ndarray, datatype: pa.DataType) -> pa.Array:
    messages = [records.messages[i] for i in origin]
    if key == "topic":
        return pa.array([m.topic() for m in messages], datatype)
    if key == "partition":
        return pa.array([m.partition() for m in messages], pa.int32()).cast(datatype)
    if key == "offset":
        return pa.array([m.offset() for m in messages], pa.int64()).cast(datatype)
    if key == "leader-epoch":
        return pa.array([m.leader_epoch() for m in messages], pa.int32()).cast(datatype)
    if key == "timestamp-type":
        return pa.array(
            [_TIMESTAMP_TYPES.get(m.timestamp()[0], "NoTimestampType") for m in messages], datatype
        )
    if key == "timestamp":
        stamps = [m.timestamp() for m in messages]
        millis = pa.array([t if kind else None for kind, t in stamps], pa.int64())
        return millis.cast(pa.timestamp("ms", tz="UTC")).cast(datatype)
    # headers: MAP<STRING, BYTES>
    return pa.array([m.headers() or [] for m in messages], datatype)
