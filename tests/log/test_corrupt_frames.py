"""A damaged frame in the log is reported with its topic, partition and offset and handled by
the source's 'scan.corrupt-frame.policy' ('fail' or 'skip'), never a hang (issue 12)."""

from __future__ import annotations

import pytest

from clickstream.log import LogCorruptionError, TopicLog
from clickstream.log.frames import HEADER_BYTES, read_header
from tests.runtime.poison_jobs import counted, dead_letters, good_json, run_job


def _log_with_frames(path, frames: int = 10, per_frame: int = 5) -> None:
    with TopicLog(path) as log:
        log.create_topic("src", 1)
        for k in range(frames):
            log.append("src", [good_json(i) for i in range(k * per_frame, (k + 1) * per_frame)])


def _segment(path):
    return next((path / "src" / "0").glob("*.log"))


def _frame_at(path, index: int) -> int:
    """Byte position of the `index`-th frame of the segment."""
    data, at = _segment(path).read_bytes(), 0
    for _ in range(index):
        at += read_header(data, at).size
    return at


def _flip(path, position: int) -> None:
    segment = _segment(path)
    data = bytearray(segment.read_bytes())
    data[position] ^= 0x20
    segment.write_bytes(bytes(data))


def _source(path, policy: str | None = None) -> str:
    extra = f", 'scan.corrupt-frame.policy' = '{policy}'" if policy else ""
    return (
        f"'connector' = 'log', 'path' = '{path}', 'topic' = 'src', 'format' = 'json', "
        f"'scan.bounded.mode' = 'latest-offset'{extra}"
    )


def test_a_flipped_byte_fails_the_job_with_topic_partition_and_offset(tmp_path):
    _log_with_frames(tmp_path / "log")
    _flip(tmp_path / "log", _frame_at(tmp_path / "log", 5) + HEADER_BYTES + 40)  # in a record
    result = run_job(tmp_path, _source(tmp_path / "log"), timeout=30)
    assert result.returncode != 0
    assert (
        "topic 'src', partition 0, offset 25: corrupt frame (CRC mismatch)" in result.stdout + result.stderr
    )


def test_skip_sends_the_damaged_frames_records_to_the_dead_letters(tmp_path):
    _log_with_frames(tmp_path / "log")
    _flip(tmp_path / "log", _frame_at(tmp_path / "log", 5) + HEADER_BYTES + 40)
    result = run_job(tmp_path, _source(tmp_path / "log", "skip"), timeout=30)
    assert result.returncode == 0, result.stderr
    dead = dead_letters(tmp_path)
    assert [(d["partition"], d["offset"]) for d in dead] == [(0, o) for o in range(25, 30)]
    assert all(d["reason"] == "corrupt frame (CRC mismatch)" for d in dead)
    assert counted(tmp_path) + len(dead) == 50


def test_a_damaged_header_is_stepped_over_to_the_next_valid_frame(tmp_path):
    _log_with_frames(tmp_path / "log")
    _flip(tmp_path / "log", _frame_at(tmp_path / "log", 5) + 5)  # its payload length
    result = run_job(tmp_path, _source(tmp_path / "log", "skip"), timeout=30)
    assert result.returncode == 0, result.stderr
    assert [d["offset"] for d in dead_letters(tmp_path)] == list(range(25, 30))
    assert counted(tmp_path) == 45


def test_a_new_writer_appends_after_the_damage_without_cutting_it_off(tmp_path):
    _log_with_frames(tmp_path / "log")
    _flip(tmp_path / "log", _frame_at(tmp_path / "log", 5) + 5)
    with TopicLog(tmp_path / "log") as log:
        log.append("src", [good_json(50)])
        assert log.end_offsets("src") == {0: 51}  # the offsets after the damage are kept
        reader = log.open_reader("src", stop="latest")
        with pytest.raises(LogCorruptionError, match="partition 0, offset 25"):
            while not reader.finished():
                reader.poll(7)
        reader.close()
        skipping = log.open_reader("src", stop="latest", corrupt="skip")
        read = 0
        while not skipping.finished():
            read += skipping.poll(7).num_rows
        assert read == 46
        assert [(f.first, f.end) for f in skipping.skipped()] == [(25, 30)]
        skipping.close()
