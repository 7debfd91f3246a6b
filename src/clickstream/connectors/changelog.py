"""Decoding changelog records (`debezium-json`, `canal-json`, `maxwell-json`, and the `log`
connector's upsert records) into typed rows with their `_op`, in bulk.

Per batch, one DuckDB query unwraps each record's envelope into its changes (see `envelope`),
then the `json` decoder reads the changed rows' fields. A record is malformed as a whole when its
envelope is, or when one of its rows is (an update never loses its -U or its +U): it goes to the
dead letters with the reason, never into the results, and the job goes on (Flink fails the job,
or skips the record with `<format>.ignore-parse-errors`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clickstream.connectors import canal, debezium, maxwell, upsert
from clickstream.connectors.base import OP_COLUMN
from clickstream.connectors.envelope import Envelope
from clickstream.connectors.formats import Decoded, Decoder
from clickstream.duck import DuckSession
from clickstream.schema import TableDef

CHANGELOG_FORMATS = {"debezium-json": debezium, "canal-json": canal, "maxwell-json": maxwell}


def table_format(table: TableDef) -> tuple[str, str]:
    """The table's record format and the prefix of its options ('json.', 'value.json.')."""
    if "format" in table.options:
        return table.options["format"].lower(), ""
    if "value.format" in table.options:
        return table.options["value.format"].lower(), "value."
    return "json", ""


def is_changelog_format(table: TableDef) -> bool:
    return table_format(table)[0] in CHANGELOG_FORMATS


def decoder_for(table: TableDef, upserts: bool = False) -> Decoder | ChangelogDecoder:
    """The decoder of a table's records; `upserts`: read them as upsert records (`upsert`)."""
    name, prefix = table_format(table)
    if name in CHANGELOG_FORMATS:
        return ChangelogDecoder(table, CHANGELOG_FORMATS[name].envelope(table, f"{prefix}{name}."))
    if upserts and name == "json":
        return ChangelogDecoder(table, upsert.envelope(table))
    return Decoder(table)


class ChangelogDecoder:
    """Records of one changelog table into typed rows plus `_op`; `Decoded.origin` says which
    record each row came from."""

    def __init__(self, table: TableDef, envelope: Envelope) -> None:
        self.rows = Decoder(table, format="json")
        self.envelope = envelope
        self.state = DuckSession()  # its own connection: decoding runs on a reader thread

    def decode(self, records: pa.Array) -> Decoded:
        lines = records.cast(pa.string())
        batch = pa.table({"__rec": pa.array(np.arange(len(lines), dtype=np.int64)), "line": lines})
        rec = (
            "rec AS (SELECT __rec, CASE WHEN json_valid(line) AND ltrim(line)[1] = '{' THEN line "
            "END AS obj FROM batch)"
        )
        changes = self.state.query(
            f"WITH {rec} SELECT __rec, CAST(__op AS TINYINT) AS __op, __row FROM "
            f"({self.envelope.changes}) ORDER BY __rec, __i",
            batch=batch,
        )
        problems = self.state.query(f"WITH {rec} {self.envelope.problems}", batch=batch)
        reasons = dict(zip(problems.column(0).to_pylist(), problems.column(1).to_pylist(), strict=True))
        decoded = self.rows.decode(changes.column("__row").combine_chunks())
        origin = changes.column("__rec").to_numpy()
        if decoded.kept is not None:
            # a row that could not be read spoils its whole record
            bad_rows = ~decoded.kept
            for position, (_, reason) in zip(origin[bad_rows].tolist(), decoded.malformed, strict=True):
                reasons.setdefault(position, reason)
            origin = origin[decoded.kept]
        ops = changes.column("__op").to_numpy()
        if decoded.kept is not None:
            ops = ops[decoded.kept]
        good = ~np.isin(origin, np.fromiter(reasons, np.int64, len(reasons)))
        rows = decoded.rows.filter(pa.array(good)) if not good.all() else decoded.rows
        rows = rows.append_column(OP_COLUMN, pa.array(ops[good], pa.int8()))
        texts = lines.to_pylist() if reasons else []
        positions = sorted(reasons)
        malformed = [(texts[i], reasons[i]) for i in positions]
        return Decoded(rows, malformed, origin=origin[good], positions=positions)
