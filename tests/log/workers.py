"""Code run in child processes by the multi-process log tests (spawned, so importable by name)."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection

import orjson

from clickstream.log import TopicLog


def event(writer: int, seq: int, pad: int = 60) -> bytes:
    return orjson.dumps({"w": writer, "seq": seq, "pad": "x" * pad})


def write_events(
    root: str, topic: str, writer: int, batches: int, batch: int, keys_per_writer: int = 4
) -> None:
    """Append `batches` x `batch` events, keyed so one writer's events spread over partitions."""
    with TopicLog(root) as log:
        for b in range(batches):
            seqs = range(b * batch, (b + 1) * batch)
            log.append(
                topic,
                [event(writer, s) for s in seqs],
                [f"{writer}-{s % keys_per_writer}".encode() for s in seqs],
            )


def write_until_killed(root: str, topic: str, batch: int, pad: int, acks: Connection) -> None:
    """Append big batches for ever; after each append returns, send the next sequence number."""
    with TopicLog(root) as log:
        seq = 0
        while True:
            log.append(topic, [event(0, s, pad) for s in range(seq, seq + batch)])
            seq += batch
            acks.send(seq)


def read_all(root: str, topic: str, expected: int, timeout_s: float, out: Connection) -> None:
    """Poll until `expected` records were read (or the time is up); send them as (p, offset, value)."""
    rows: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + timeout_s
    with TopicLog(root) as log, log.open_reader(topic) as reader:
        while len(rows) < expected and time.monotonic() < deadline:
            table = reader.poll(1000)
            if table.num_rows == 0:
                time.sleep(0.005)
            rows.extend(zip(*(table.column(n).to_pylist() for n in table.column_names), strict=True))
    out.send(rows)


def consume_and_commit(
    root: str, topic: str, group: str, output: str, poll: int, stop_latest: bool, pause_s: float = 0.002
) -> None:
    """A consumer: poll, record what was processed (flushed to `output`), then commit, then wait
    `pause_s`. Runs until killed, or with `stop_latest` until the end offsets seen at start."""
    with TopicLog(root) as log, open(output, "ab", buffering=0) as out:
        reader = log.open_reader(topic, group, "committed", "latest" if stop_latest else None)
        while not (stop_latest and reader.finished()):
            table = reader.poll(poll)
            if table.num_rows == 0:
                time.sleep(0.005)
                continue
            out.write(b"".join(v + b"\n" for v in table.column("value").to_pylist()))
            reader.commit()
            time.sleep(pause_s)
