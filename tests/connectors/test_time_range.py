"""Dates and times outside Flink's range (years 0000 to 9999; 0001 here, see `formats`) are
malformed records, in both formats, with the reason and their position in the batch."""

from __future__ import annotations

import pyarrow as pa
import pytest

from clickstream.connectors.formats import Decoder
from clickstream.schema import Column, TableDef

COLUMNS = [
    Column("d", "DATE", "DATE"),
    Column("t", "TIMESTAMP(3)", "TIMESTAMP"),
    Column("n", "INT", "INTEGER"),
]


@pytest.mark.parametrize(
    ("fmt", "lines"),
    [
        (
            "json",
            [
                '{"d": "2024-01-02", "t": "2024-01-02T03:04:05Z", "n": 1}',
                '{"d": "294247-01-01", "t": "2024-01-02T03:04:05Z", "n": 2}',
                '{"d": "2024-01-02", "t": "10000-01-01T00:00:00Z", "n": 3}',
                '{"d": "9999-12-31", "t": "0001-01-01T00:00:00Z", "n": 4}',
            ],
        ),
        (
            "csv",
            [
                "2024-01-02,2024-01-02 03:04:05,1",
                "294247-01-01,2024-01-02 03:04:05,2",
                "2024-01-02,10000-01-01 00:00:00,3",
                "9999-12-31,0001-01-01 00:00:00,4",
            ],
        ),
    ],
)
def test_out_of_range_dates_and_times_are_malformed(fmt, lines):
    decoded = Decoder(TableDef("t", COLUMNS, options={"format": fmt})).decode(pa.array(lines))
    assert decoded.rows.column("n").to_pylist() == [1, 4]
    assert decoded.positions == [1, 2]
    assert [reason for _, reason in decoded.malformed] == [
        "d: cannot read 294247-01-01 as DATE (years 0001 to 9999)",
        f"t: cannot read 10000-01-01{'T' if fmt == 'json' else ' '}00:00:00{'Z' if fmt == 'json' else ''} "
        "as TIMESTAMP(3) (years 0001 to 9999)",
    ]
