"""End-to-end latency of an unbounded job: event appended to the embedded log -> row at the sink.

A writer thread appends Tianchi-style events to a log topic at a fixed rate (default 10,000/s),
each stamped with the wall-clock time it was appended (`sent_ms`). The engine runs, on that
unbounded topic, (a) a projection with a filter (every event reaches the sink) and (b) the seed's
updating `GROUP BY` with `MAX(sent_ms)`, and the sink notes when each row arrives. Prints the
latency percentiles of both.

    python benchmarks/latency.py [--rate 10000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import orjson
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.log import TopicLog

DDL = """
CREATE TABLE events (user_id BIGINT, item_id BIGINT, behavior STRING, sent_ms BIGINT,
    ts TIMESTAMP_LTZ(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector' = 'log', 'path' = '{log}', 'topic' = 'events', 'format' = 'json',
      'scan.startup.mode' = 'earliest-offset');
"""

QUERIES = {
    "projection + filter": "SELECT user_id, item_id, sent_ms FROM events WHERE behavior <> 'x'",
    "GROUP BY (updating)": "SELECT behavior, COUNT(*) AS n, MAX(sent_ms) AS sent_ms "
    "FROM events GROUP BY behavior",
}


def write_events(log: TopicLog, rate: float, seconds: float, stop: threading.Event) -> int:
    """Append `rate` events per second in 10 ms slices, each stamped with its append time."""
    behaviors = ["pv", "pv", "pv", "cart", "fav", "buy"]
    sent, start = 0, time.monotonic()
    while not stop.is_set() and time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate) - sent
        if due > 0:
            now_ms = int(time.time() * 1000)
            iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms / 1000))
            values = [
                orjson.dumps(
                    {
                        "user_id": (sent + i) % 5000,
                        "item_id": (sent + i) % 997,
                        "behavior": behaviors[(sent + i) % 6],
                        "sent_ms": now_ms,
                        "ts": f"{iso}.{now_ms % 1000:03d}Z",
                    }
                )
                for i in range(due)
            ]
            log.append("events", values)
            sent += due
        time.sleep(0.01)
    return sent


def measure(query: str, rate: float, seconds: float, batch: int) -> list[float]:
    latencies: list[float] = []

    def on_rows(rows: pa.Table) -> None:
        arrived = time.time() * 1000
        sent = rows.column("sent_ms").to_numpy(zero_copy_only=False)
        latencies.extend((arrived - sent).tolist())

    with tempfile.TemporaryDirectory() as tmp:
        log = TopicLog(Path(tmp) / "log")
        log.create_topic("events")
        stop = threading.Event()
        writer = threading.Thread(target=write_events, args=(log, rate, seconds, stop), daemon=True)
        engine = Engine(Settings({"table.exec.mini-batch.size": str(batch)}))
        engine.execute_script(DDL.format(log=Path(tmp) / "log"))
        writer.start()
        engine.collect(query, on_rows=on_rows, timeout_s=seconds + 1)
        stop.set()
        writer.join()
        log.close()
    warm = latencies[len(latencies) // 10 :]  # the first second includes start-up
    return warm


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()
    table = Table(
        title=f"event -> sink latency at {args.rate:,.0f} events/s, {args.seconds:.0f} s "
        "(first 10% of rows skipped as warm-up)"
    )
    for column in ("query", "rows", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "query" else "right")
    for name, query in QUERIES.items():
        values = sorted(measure(query, args.rate, args.seconds, args.batch))
        if not values:
            table.add_row(name, "0", "-", "-", "-", "-")
            continue
        table.add_row(
            name,
            f"{len(values):,}",
            f"{statistics.median(values):.0f}",
            f"{_quantile(values, 0.9):.0f}",
            f"{_quantile(values, 0.99):.0f}",
            f"{values[-1]:.0f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
