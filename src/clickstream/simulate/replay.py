"""Replay Tianchi's real `UserBehavior.csv` in event-time order, as the seed's JSON.

The file (`user,item,category,behavior,unix-seconds`, no header) is grouped by user, not by time,
so it is read whole, into compact Arrow columns, and sorted by time (stably: ties keep file
order) before playing. The full file is ~100 M rows (~2 GB of columns): `limit` reads only the
first rows; `start_s`/`end_s` drop the few outlier timestamps far outside the collection days.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from clickstream.errors import CommandError
from clickstream.simulate.base import Record
from clickstream.simulate.rate import EventClock
from clickstream.simulate.tianchi import TOPIC, TianchiConfig, generate_columns, iso

COLUMNS = ("user_id", "item_id", "category_id", "behavior", "ts")
TYPES = {
    "user_id": pa.int64(),
    "item_id": pa.int64(),
    "category_id": pa.int64(),
    "behavior": pa.string(),
    "ts": pa.int64(),
}
CHUNK = 65_536
# The data set covers 2017-11-25 to 2017-12-03, China time (UTC+8).
SAMPLE_START_MS = int(datetime(2017, 11, 24, 16, tzinfo=UTC).timestamp() * 1000)


def _read_rows(path: str | Path, limit: int | None) -> pa.Table:
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=list(COLUMNS), block_size=1 << 24),
        parse_options=pacsv.ParseOptions(invalid_row_handler=lambda _row: "skip"),
        convert_options=pacsv.ConvertOptions(column_types=TYPES),
    )
    batches, rows = [], 0
    for batch in reader:
        if limit is not None and rows + batch.num_rows >= limit:
            batches.append(batch.slice(0, limit - rows))
            break
        batches.append(batch)
        rows += batch.num_rows
    return pa.Table.from_batches(batches, schema=reader.schema)


def read_user_behavior(
    path: str | Path, limit: int | None = None, start_s: int | None = None, end_s: int | None = None
) -> pa.Table:
    """The file's rows (at most `limit`, from the top), within [start_s, end_s), sorted by time.
    A file of another shape raises `CommandError` (rows of too many or too few fields are skipped)."""
    try:
        table = _read_rows(path, limit)
    except pa.ArrowInvalid as error:
        raise CommandError(
            f"cannot read {path} as Tianchi's UserBehavior.csv (user,item,category,behavior,unix "
            f"seconds, no header): {' '.join(str(error).split())}"
        ) from None
    if start_s is not None:
        table = table.filter(pc.greater_equal(table["ts"], start_s))
    if end_s is not None:
        table = table.filter(pc.less(table["ts"], end_s))
    return table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))


def seed_records(table: pa.Table) -> Iterator[tuple[int, Record]]:
    """(event ms, record) in table order, each record the seed's JSON (ids as strings)."""
    for offset in range(0, table.num_rows, CHUNK):
        chunk = table.slice(offset, CHUNK)
        users, items, categories, behaviors, seconds = (chunk[name].to_pylist() for name in COLUMNS)
        for i, ts in enumerate(seconds):
            ms = ts * 1000
            yield (
                ms,
                Record(
                    TOPIC,
                    {
                        "user_id": str(users[i]),
                        "item_id": str(items[i]),
                        "category_id": str(categories[i]),
                        "behavior": behaviors[i],
                        "ts": iso(ms),
                    },
                ),
            )


def paced(records: Iterator[tuple[int, Record]], clock: EventClock) -> Iterator[tuple[int, Record]]:
    """The records, each released when `clock` says its event time is due."""
    for ms, record in records:
        clock.wait_until(ms)
        yield ms, record


def write_sample(path: str | Path, rows: int = 2_000, seed: int = 2017) -> None:
    """A small file in the real format: Tianchi-like behaviour over two days, grouped by user with
    time only roughly increasing inside a user, as in the real file."""
    config = replace(
        TianchiConfig(
            events=rows,
            users=80,
            items=1_500,
            categories=60,
            days=2.0,
            start_ms=SAMPLE_START_MS,
            seed=seed,
            funnel=True,
        ),
        disorder_ms=0,
    )
    columns = generate_columns(config)
    seconds = columns["ts"] // 1000
    jitter = np.random.default_rng(seed).integers(-1_800, 1_800, rows)  # a little disorder per user
    order = np.lexsort((seconds + jitter, columns["user_id"]))
    with open(path, "w") as out:
        for i in order.tolist():
            out.write(
                f"{columns['user_id'][i]},{columns['item_id'][i]},{columns['category_id'][i]},"
                f"{columns['behavior'][i]},{seconds[i]}\n"
            )
