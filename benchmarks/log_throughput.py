"""Throughput of the embedded topic log: append N ~100-byte JSON events in batches, read them back.

    python benchmarks/log_throughput.py [--events 1000000] [--batch 5000] [--partitions 1]
                                        [--keyed] [--sync flush|fsync] [--decode]

Events are encoded before the clock starts: this measures the log, not JSON encoding. Reading
goes through `LogReader.poll`, which returns Arrow tables. Target: >= 500,000 events/s each way.
`--decode` also reads the topic through the `log` connector's source, which decodes the JSON into
typed Arrow columns (what the engine gets).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from clickstream.log import TopicLog

BEHAVIORS = ("pv", "buy", "cart", "fav")


def make_events(count: int) -> list[bytes]:
    """Tianchi-like events of about 100 bytes each."""
    return [
        orjson.dumps(
            {
                "user_id": 100_000 + i % 9973,
                "item_id": 2_000_000 + i % 50_021,
                "category_id": 4_000 + i % 503,
                "behavior": BEHAVIORS[i % 4],
                "ts": f"2017-11-25T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            }
        )
        for i in range(count)
    ]


def bench_append(log: TopicLog, events: list[bytes], batch: int, keyed: bool) -> float:
    keys = [e[12:18] for e in events] if keyed else None
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        log.append("events", events[i : i + batch], keys[i : i + batch] if keys else None)
    return time.perf_counter() - started


def bench_read(log: TopicLog, expected: int, poll_size: int) -> tuple[float, int]:
    started = time.perf_counter()
    nbytes = 0
    with log.open_reader("events", stop="latest") as reader:
        seen = 0
        while not reader.finished():
            table = reader.poll(poll_size)
            seen += table.num_rows
            nbytes += table.column("value").nbytes
    elapsed = time.perf_counter() - started
    if seen != expected:
        raise SystemExit(f"read {seen} events, expected {expected}")
    return elapsed, nbytes


def bench_source(root: Path, expected: int, poll_size: int) -> float:
    import io

    from clickstream.connectors.log import LogSource
    from clickstream.engine import Engine

    engine = Engine(out=io.StringIO())
    engine.execute_script(f"""CREATE TABLE events (user_id BIGINT, item_id BIGINT,
        category_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3)) WITH ('connector' = 'log',
        'path' = '{root}', 'topic' = 'events', 'scan.bounded.mode' = 'latest-offset')""")
    started = time.perf_counter()
    source, seen = LogSource(engine.catalog.table("events"), engine.settings), 0
    while not source.exhausted():
        batch = source.poll(poll_size)
        seen += batch.num_rows if batch is not None else 0
    elapsed = time.perf_counter() - started
    source.close()
    if seen != expected:
        raise SystemExit(f"decoded {seen} events, expected {expected}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000, help="events per append call")
    parser.add_argument("--poll", type=int, default=100_000, help="most events per poll")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--keyed", action="store_true", help="partition by user_id")
    parser.add_argument("--sync", choices=("flush", "fsync"), default="flush")
    parser.add_argument("--decode", action="store_true", help="also read through LogSource")
    parser.add_argument("--dir", help="log directory (default: a temporary one, removed after)")
    args = parser.parse_args()

    events = make_events(args.events)
    size = sum(map(len, events)) / len(events)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="log-bench-"))
    try:
        with TopicLog(root, sync=args.sync) as log:
            log.create_topic("events", args.partitions)
            append_s = bench_append(log, events, args.batch, args.keyed)
            read_s, nbytes = bench_read(log, args.events, args.poll)
        decode_s = bench_source(root, args.events, args.poll) if args.decode else None
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"{args.events:,} events of {size:.0f} bytes, batches of {args.batch:,}, "
        f"{args.partitions} partition(s), sync={args.sync}"
    )
    print(f"append: {args.events / append_s:12,.0f} events/s  ({append_s:.3f} s)")
    print(
        f"read:   {args.events / read_s:12,.0f} events/s  ({read_s:.3f} s, {nbytes / read_s / 1e6:,.0f} MB/s)"
    )
    if decode_s is not None:
        print(
            f"source: {args.events / decode_s:12,.0f} events/s  ({decode_s:.3f} s, read + JSON "
            "decode to typed Arrow columns)"
        )


if __name__ == "__main__":
    main()
