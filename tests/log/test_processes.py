"""The topic log shared by processes: concurrent appenders, a writer killed with SIGKILL mid-append,
a consumer killed and restarted from its committed offsets."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from clickstream.log import TopicLog
from clickstream.log.segments import list_segments, scan, segment_name
from tests.log import workers

SPAWN = multiprocessing.get_context("spawn")  # no fork of a process that holds Arrow threads


def _start(target, *args) -> multiprocessing.Process:
    process = SPAWN.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def _decoded(rows) -> list[tuple[int, int, dict]]:
    return [(p, o, orjson.loads(v)) for p, o, v in rows]


def test_writers_in_parallel_with_a_reader_every_record_once_in_order(tmp_path):
    root, writers, batches, batch = str(tmp_path), 3, 20, 250
    expected = writers * batches * batch
    TopicLog(root).create_topic("t", 2)
    receive, send = SPAWN.Pipe(duplex=False)
    reader = _start(workers.read_all, root, "t", expected, 30.0, send)
    procs = [_start(workers.write_events, root, "t", w, batches, batch) for w in range(writers)]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    rows = _decoded(receive.recv())
    reader.join(10)

    assert len(rows) == expected
    assert Counter((e["w"], e["seq"]) for _, _, e in rows) == Counter(
        {(w, s): 1 for w in range(writers) for s in range(batches * batch)}
    )
    for partition in (0, 1):
        mine = [(o, e) for p, o, e in rows if p == partition]
        assert [o for o, _ in mine] == list(range(len(mine)))  # contiguous offsets
        for w in range(writers):  # each writer's records keep their order in a partition
            order = [e["seq"] for _, e in mine if e["w"] == w]
            assert order == sorted(order)
    assert {p for p, _, _ in rows} == {0, 1}


def _segment(root) -> Path:
    directory = Path(root) / "t" / "0"
    return directory / segment_name(list_segments(directory)[-1])


def _kill_writer(root: str, mid_write: bool) -> int:
    """Start a writer of 13 MB appends, let three of them return, then SIGKILL it: at once, or
    `mid_write`, as soon as its fourth frame starts to reach the file. Returns the last sequence
    number the writer acknowledged (its append had returned)."""
    receive, send = SPAWN.Pipe(duplex=False)
    writer = _start(workers.write_until_killed, root, "t", 200, 64 << 10, send)
    acked, deadline = 0, time.monotonic() + 20
    while acked < 600 and time.monotonic() < deadline:
        if receive.poll(0.1):
            acked = receive.recv()
    if mid_write:
        written = _segment(root).stat().st_size
        while _segment(root).stat().st_size == written and time.monotonic() < deadline:
            pass
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(5)
    assert writer.exitcode == -signal.SIGKILL
    while receive.poll(0):
        acked = receive.recv()
    return acked


@pytest.mark.parametrize("mid_write", [True, False])
def test_writer_killed_mid_append_leaves_no_torn_record(tmp_path, mid_write):
    root = str(tmp_path)
    acked = _kill_writer(root, mid_write)
    assert acked >= 600
    segment = _segment(root)
    if mid_write:  # the killed append left a partial frame behind
        assert segment.stat().st_size > scan_end(segment)

    with TopicLog(root) as log, log.open_reader("t") as reader:
        before = [orjson.loads(v)["seq"] for v in reader.poll(10**7).column("value").to_pylist()]
        # every record whose append returned is there, in order, each once; nothing torn
        assert before == list(range(len(before)))
        assert len(before) >= acked
        assert reader.end_offsets() == {0: len(before)}

        log.append("t", [workers.event(1, s) for s in range(100)])  # the log stays appendable
        after = [orjson.loads(v) for v in reader.poll(10**7).column("value").to_pylist()]
        assert [(e["w"], e["seq"]) for e in after] == [(1, s) for s in range(100)]
        assert reader.end_offsets() == {0: len(before) + 100}
    assert segment.stat().st_size == scan_end(segment)  # the torn tail was cut off


def scan_end(segment) -> int:
    fd = os.open(segment, os.O_RDONLY)
    try:
        return scan(fd, 0, 0).end
    finally:
        os.close(fd)


def test_consumer_killed_and_restarted_from_committed_offsets_loses_nothing(tmp_path):
    root, total = str(tmp_path), 6000
    with TopicLog(root) as log:
        log.create_topic("t", 3)
        for i in range(0, total, 500):
            log.append(
                "t",
                [workers.event(0, s) for s in range(i, i + 500)],
                [str(s).encode() for s in range(i, i + 500)],
            )
    first, second = tmp_path / "first.out", tmp_path / "second.out"
    # 0.1 s between polls of 200: the 6,000 events take 3 s, so the kill after the first 100 kB
    # (about 1,100 events) lands part of the way however late this process sees them (at 2 ms
    # it all took about 0.1 s, and a pause of this process under load let it finish first)
    consumer = _start(workers.consume_and_commit, root, "t", "g", str(first), 200, False, 0.1)
    deadline = time.monotonic() + 20
    while (not first.exists() or first.stat().st_size < 100_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(consumer.pid, signal.SIGKILL)
    consumer.join(5)

    committed = TopicLog(root).open_reader("t", "g").committed()
    assert 0 < sum(committed.values()) < total
    restarted = _start(workers.consume_and_commit, root, "t", "g", str(second), 200, True)
    restarted.join(30)
    assert restarted.exitcode == 0

    seen_first = [orjson.loads(line)["seq"] for line in first.read_bytes().splitlines()]
    seen_second = [orjson.loads(line)["seq"] for line in second.read_bytes().splitlines()]
    assert set(seen_first) | set(seen_second) == set(range(total))
    # at least once: only what was processed after the last commit comes again
    assert len(seen_first) + len(seen_second) - total <= 200
    assert len(seen_second) == total - sum(committed.values())
