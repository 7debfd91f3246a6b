"""Fuzzing the sources (issue 12): random bytes, invalid UTF-8, truncated and deeply nested JSON,
huge and tiny timestamps, NaN, duplicate keys, wrong types. Seeded and small (a few seconds): the
job runs to its end, and every record is accounted for: rows out + dead letters = records in."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from clickstream.log import TopicLog

PROJECT = """
CREATE TABLE src (id BIGINT, ts TIMESTAMP(3), v DOUBLE,
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ({source});
CREATE TABLE copy (id BIGINT, ts TIMESTAMP(3), v DOUBLE)
WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO copy SELECT id, ts, v FROM src;
"""
WINDOWED = """
CREATE TABLE src (id BIGINT, ts TIMESTAMP(3), v DOUBLE,
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ({source});
CREATE TABLE per_window (w TIMESTAMP(3), n BIGINT, total DOUBLE)
WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO per_window SELECT window_start, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end;
"""
TIMES = [
    "294247-01-10T04:00:54Z",
    "-290000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "0000-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999Z",
    "2024-02-30T00:00:00Z",
    "",
    "now",
]
ODD_VALUES = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "99999999999999999999999",
    "-9223372036854775809",
    '"abc"',
    "true",
    "null",
    "[]",
    "{}",
    '"NaN"',
    '"1e400"',
]


def _good(rng: random.Random, i: int) -> dict:
    return {"id": i, "ts": f"2024-01-01T00:{(i // 60) % 60:02d}:{i % 60:02d}Z", "v": rng.random()}


def _json_record(rng: random.Random, i: int) -> bytes:
    good = orjson.dumps(_good(rng, i))
    kind = rng.randrange(12)
    if kind == 0:  # random bytes
        return bytes(rng.choice([b for b in range(256) if b != 10]) for _ in range(rng.randint(1, 60)))
    if kind == 1:  # invalid UTF-8 inside a string
        return good[:-1] + b',"s":"' + bytes([rng.choice([0x80, 0xC0, 0xFE, 0xFF, 0xED])]) + b'"}'
    if kind == 2:  # truncated
        return good[: rng.randint(1, len(good) - 1)]
    if kind == 3:  # deeply nested, as a field or as the whole record
        depth = rng.choice([100, 1000, 20_000])
        nested = b"[" * depth + b"1" + b"]" * depth
        return good[:-1] + b',"deep":' + nested + b"}" if rng.random() < 0.5 else nested
    if kind == 4:  # huge and tiny timestamps, as text and as numbers
        ts = rng.choice(TIMES + [1e300, -(2**63), 2**63])
        return orjson.dumps({"id": i, "ts": ts, "v": 1.0})
    if kind == 5:  # NaN, infinities, out-of-range numbers, wrong types
        field = rng.choice(["id", "v", "ts"])
        record = good.replace(f'"{field}":'.encode(), b'"_":')[:-1]
        return record + f',"{field}":{rng.choice(ODD_VALUES)}}}'.encode()
    if kind == 6:  # duplicate keys
        return good[:-1] + f',"id":{i + 1},"ts":"2024-01-01T00:00:00Z"}}'.encode()
    if kind == 7:  # no rowtime: counted and reported
        return orjson.dumps({"id": i, "v": 2.0})
    return good


def _csv_record(rng: random.Random, i: int) -> bytes:
    good = f"{i},2024-01-01 00:{(i // 60) % 60:02d}:{i % 60:02d},{rng.random()}".encode()
    kind = rng.randrange(8)
    if kind == 0:
        return bytes(
            rng.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(rng.randint(1, 40))
        )
    if kind == 1:
        return good + bytes([rng.choice([0x80, 0xFF, 0xC3])])
    if kind == 2:
        return good[: rng.randint(1, len(good) - 1)]
    if kind == 3:
        return f"{i},{rng.choice(TIMES)},1.0".encode()
    if kind == 4:
        return (
            f"{rng.choice(['NaN', 'x', '1e400', ''])},2024-01-01 00:00:00,{rng.choice(ODD_VALUES)}".encode()
        )
    if kind == 5:
        return good + b",extra"
    return good


def _records(kind: str, seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    make = _csv_record if kind == "csv" else _json_record
    records = [make(rng, i) for i in range(count)]
    # a file source skips blank lines: they are no records
    return [r for r in records if r.strip(b"\r") and b"\n" not in r]


def _run(tmp_path: Path, template: str, source: str) -> subprocess.CompletedProcess:
    script = tmp_path / "job.sql"
    out = tmp_path / "out.jsonl"
    out.unlink(missing_ok=True)
    script.write_text(template.format(source=source, out=out))
    command = [sys.executable, "-m", "clickstream.cli", "run", "-q", "-s", "table.exec.mini-batch.size=97"]
    command += ["-s", f"dead-letter.dir={tmp_path / 'dead'}", str(script)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _count(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def _source(tmp_path: Path, kind: str, records: list[bytes]) -> str:
    if kind == "log":
        with TopicLog(tmp_path / "log") as log:
            log.create_topic("src", 3)
            for start in range(0, len(records), 50):
                log.append("src", records[start : start + 50], [b"%d" % i for i in range(50)])
        return (
            f"'connector' = 'log', 'path' = '{tmp_path / 'log'}', 'topic' = 'src', "
            "'format' = 'json', 'scan.bounded.mode' = 'latest-offset'"
        )
    path = tmp_path / f"in.{kind}"
    path.write_bytes(b"\n".join(records) + b"\n")
    fmt = "csv" if kind == "csv" else "json"
    return f"'connector' = 'filesystem', 'path' = '{path}', 'format' = '{fmt}'"


@pytest.mark.parametrize(("kind", "seed"), [("json", 1), ("json", 2), ("csv", 3), ("log", 4)])
def test_every_fuzzed_record_is_a_row_or_a_dead_letter(tmp_path, kind, seed):
    records = _records("csv" if kind == "csv" else "json", seed, 1500)
    source = _source(tmp_path, kind, records)
    result = _run(tmp_path, PROJECT, source)
    assert result.returncode == 0, result.stdout + result.stderr
    dead = _count(tmp_path / "dead" / "src.jsonl")
    assert _count(tmp_path / "out.jsonl") + dead == len(records)
    for letter in map(orjson.loads, (tmp_path / "dead" / "src.jsonl").read_bytes().splitlines()):
        assert letter["reason"]
        assert "line" in letter or "offset" in letter or letter["source"] == "rowtime"
    # the same records through a window operator: the job runs to its end
    result = _run(tmp_path, WINDOWED, source)
    assert result.returncode == 0, result.stdout + result.stderr
