"""The join workload (seed 004's first-click attribution): checkouts LEFT JOIN the clicks of the
same user and product in the hour before, as an event-time interval join.

The SQL is standard library only: `flink_job` imports this module from PyFlink's venv. The data
generator (`write_join_data`) imports numpy lazily, in clickstream's venv.

* clickstream and PyFlink run the identical script text: two filesystem json sources with
  watermarks, a `blackhole` sink and the INSERT below.
* DuckDB runs the same join once, as a batch query over `read_json(...)` of both files, and
  summarises its rows (count, matched, id sums) for the correctness check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SOURCES_DDL = """
CREATE TABLE clicks (
    click_id BIGINT,
    user_id BIGINT,
    product_id BIGINT,
    ts TIMESTAMP_LTZ(3),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '{clicks}',
    'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601'
);
CREATE TABLE checkouts (
    checkout_id BIGINT,
    user_id BIGINT,
    product_id BIGINT,
    amount DOUBLE,
    ts TIMESTAMP_LTZ(3),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '{checkouts}',
    'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601'
)"""

SINK_DDL = """
CREATE TABLE attributed (
    checkout_id BIGINT,
    click_id BIGINT,
    amount DOUBLE
) WITH ('connector' = 'blackhole')"""

ATTRIBUTION = """
SELECT co.checkout_id, cl.click_id, co.amount
FROM checkouts AS co LEFT JOIN clicks AS cl
  ON co.user_id = cl.user_id AND co.product_id = cl.product_id
  AND co.ts BETWEEN cl.ts AND cl.ts + INTERVAL '1' HOUR"""

INSERT = "INSERT INTO attributed" + ATTRIBUTION


def setup_statements(clicks: str, checkouts: str) -> list[str]:
    """The DDL (sources and the blackhole sink), one statement each."""
    ddl = SOURCES_DDL.format(clicks=clicks, checkouts=checkouts) + ";" + SINK_DDL
    return [s.strip() for s in ddl.split(";") if s.strip()]


def clickstream_script(clicks: str, checkouts: str, dead_letters: str | None = None) -> str:
    """The script clickstream runs: the same DDL and INSERT text PyFlink executes."""
    parts = [f"SET 'dead-letter.dir' = '{dead_letters}'"] if dead_letters else []
    parts += [*setup_statements(clicks, checkouts), INSERT.strip()]
    return ";\n".join(parts) + ";\n"


def ddl_script(clicks: str, checkouts: str) -> str:
    """Only the sources: for counting the rows of `ATTRIBUTION` through `Engine.collect`."""
    return SOURCES_DDL.format(clicks=clicks, checkouts=checkouts).strip() + ";\n"


def duckdb_query(clicks: str, checkouts: str) -> str:
    """The same LEFT interval join over `read_json` of both files (`ts` as a UTC TIMESTAMP),
    summarised into one row: the answer's size and checksums of its (checkout_id, click_id) pairs."""
    click_cols = "{'click_id': 'BIGINT', 'user_id': 'BIGINT', 'product_id': 'BIGINT', 'ts': 'TIMESTAMP'}"
    checkout_cols = (
        "{'checkout_id': 'BIGINT', 'user_id': 'BIGINT', 'product_id': 'BIGINT', "
        "'amount': 'DOUBLE', 'ts': 'TIMESTAMP'}"
    )
    return f"""
        SELECT count(*) AS rows, count(click_id) AS matched,
               count(DISTINCT checkout_id) AS checkouts,
               sum(checkout_id) AS sum_checkout_id, sum(click_id) AS sum_click_id,
               sum(checkout_id::HUGEINT * (coalesce(click_id, -1) + 2)) AS pair_checksum
        FROM (
          SELECT co.checkout_id, cl.click_id, co.amount
          FROM read_json('{checkouts}', format = 'newline_delimited', columns = {checkout_cols}) AS co
          LEFT JOIN read_json('{clicks}', format = 'newline_delimited', columns = {click_cols}) AS cl
            ON co.user_id = cl.user_id AND co.product_id = cl.product_id
            AND co.ts BETWEEN cl.ts AND cl.ts + INTERVAL 1 HOUR)"""


SUMMARY_KEYS = ("rows", "matched", "checkouts", "sum_checkout_id", "sum_click_id", "pair_checksum")


class CollectSummary:
    """The same summary as `duckdb_query`, accumulated over the Arrow batches `Engine.collect`
    streams (clickstream's venv only: imports pyarrow)."""

    def __init__(self) -> None:
        self.values = dict.fromkeys(SUMMARY_KEYS, 0)
        self.kinds: dict[str, int] = {}
        self.checkout_ids: set[int] = set()

    def add(self, batch) -> None:  # a pyarrow.Table with `_op`, checkout_id, click_id, amount
        import pyarrow.compute as pc

        from clickstream.connectors.base import OP_COLUMN, OP_SHORT

        for kind, n in zip(*_value_counts(batch.column(OP_COLUMN)), strict=True):
            short = OP_SHORT.get(kind, str(kind))
            self.kinds[short] = self.kinds.get(short, 0) + n
        checkout = batch.column("checkout_id").to_pylist()
        click = batch.column("click_id").to_pylist()
        v = self.values
        v["rows"] += batch.num_rows
        v["matched"] += batch.num_rows - batch.column("click_id").null_count
        v["sum_checkout_id"] += pc.sum(batch.column("checkout_id")).as_py() or 0
        v["sum_click_id"] += pc.sum(batch.column("click_id")).as_py() or 0
        v["pair_checksum"] += sum(
            co * ((-1 if cl is None else cl) + 2) for co, cl in zip(checkout, click, strict=True)
        )
        self.checkout_ids.update(checkout)

    def result(self) -> dict[str, object]:
        return {**self.values, "checkouts": len(self.checkout_ids), "changes": self.kinds}


def _value_counts(column) -> tuple[list[object], list[int]]:
    counts = column.value_counts()
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


# --- data -------------------------------------------------------------------------------------

EPOCH_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z
DAY_MS = 86_400_000


@dataclass(frozen=True)
class JoinConfig:
    events: int = 1_000_000  # clicks + checkouts
    checkout_share: float = 0.10
    attributed_share: float = 0.80  # checkouts with a planted click 1 s .. 50 min before
    users: int = 10_000
    products: int = 2_000
    disorder_ms: int = 3_000  # events are written up to this much out of event-time order
    seed: int = 4

    @property
    def checkouts(self) -> int:
        return round(self.events * self.checkout_share)

    @property
    def clicks(self) -> int:
        return self.events - self.checkouts

    def tag(self) -> str:
        return (
            f"n{self.events}_co{self.checkout_share:g}_a{self.attributed_share:g}_u{self.users}"
            f"_p{self.products}_o{self.disorder_ms}_s{self.seed}"
        )


def write_join_data(config: JoinConfig, clicks_path: Path, checkouts_path: Path) -> dict[str, int]:
    """Generate both streams with numpy (deterministic for a config) and write them as JSON Lines.

    Checkout times are uniform over one day. For `attributed_share` of the checkouts a click of
    the same user and product is planted 1 s .. 50 min before it (so it may fall just before the
    day starts); the other clicks have random users, products and times. Each file is written in
    the order of `ts + uniform(0, disorder_ms)`: up to `disorder_ms` out of order, less than the
    5 s watermark delay, so nothing is late. Ids are the row numbers in the file."""
    import numpy as np

    rng = np.random.default_rng(config.seed)
    n_co, n_cl = config.checkouts, config.clicks
    co_user = rng.integers(1, config.users + 1, n_co)
    co_product = rng.integers(1, config.products + 1, n_co)
    co_ts = EPOCH_MS + rng.integers(0, DAY_MS, n_co)
    amount = rng.integers(100, 50_000, n_co) / 100
    planted = np.flatnonzero(rng.random(n_co) < config.attributed_share)
    planted = planted[:n_cl]
    n_random = n_cl - len(planted)
    cl_user = np.concatenate([co_user[planted], rng.integers(1, config.users + 1, n_random)])
    cl_product = np.concatenate([co_product[planted], rng.integers(1, config.products + 1, n_random)])
    cl_ts = np.concatenate(
        [
            co_ts[planted] - rng.integers(1_000, 3_000_001, len(planted)),
            EPOCH_MS + rng.integers(0, DAY_MS, n_random),
        ]
    )

    def write(path: Path, ts: np.ndarray, id_name: str, columns: dict[str, np.ndarray]) -> None:
        order = np.argsort(ts + rng.integers(0, config.disorder_ms, len(ts)), kind="stable")
        iso = np.char.add(np.datetime_as_string(ts[order].astype("datetime64[ms]"), unit="ms"), "Z")
        cols = {name: values[order].tolist() for name, values in columns.items()}
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as out:
            for i, t in enumerate(iso.tolist()):
                fields = ", ".join(f'"{name}": {json.dumps(values[i])}' for name, values in cols.items())
                out.write(f'{{"{id_name}": {i}, {fields}, "ts": "{t}"}}\n')
        tmp.replace(path)

    write(clicks_path, cl_ts, "click_id", {"user_id": cl_user, "product_id": cl_product})
    write(
        checkouts_path, co_ts, "checkout_id", {"user_id": co_user, "product_id": co_product, "amount": amount}
    )
    return {"clicks": n_cl, "checkouts": n_co, "planted": len(planted)}
