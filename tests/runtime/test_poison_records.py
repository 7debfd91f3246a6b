"""Records that cannot be decoded go to the dead letters with their reason and position, and the
job goes on (issue 12, poison records)."""

from __future__ import annotations

import orjson

from tests.runtime.poison_jobs import counted, dead_letters, good_json, run_job, run_script


def _file_source(path) -> str:
    fmt = "csv" if path.suffix == ".csv" else "json"
    return f"'connector' = 'filesystem', 'path' = '{path}', 'format' = '{fmt}'"


def test_invalid_utf8_in_a_json_file_goes_to_the_dead_letters(tmp_path):
    lines = [good_json(i) for i in range(10)]
    lines[4] = b'{"id": 4, "ts": "2024-01-01T00:00:04Z", "v": 1.0, "s": "\xff\xfe"}'
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run_job(tmp_path, _file_source(path))
    assert result.returncode == 0, result.stderr
    assert counted(tmp_path) == 9
    [dead] = dead_letters(tmp_path)
    assert (dead["source"], dead["line"], dead["reason"]) == (str(path), 5, "not UTF-8 text")


def test_invalid_utf8_in_a_csv_file_goes_to_the_dead_letters(tmp_path):
    lines = [f"{i},2024-01-01 00:00:{i:02d},{i * 1.5}".encode() for i in range(10)]
    lines[3] = b"3,2024-01-01 00:00:03,\xff\xfe"
    path = tmp_path / "in.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run_job(tmp_path, _file_source(path))
    assert result.returncode == 0, result.stderr
    assert counted(tmp_path) == 9
    [dead] = dead_letters(tmp_path)
    assert (dead["line"], dead["reason"]) == (4, "not UTF-8 text")


def test_a_time_outside_flinks_range_goes_to_the_dead_letters(tmp_path):
    lines = [good_json(i) for i in range(10)]
    lines[4] = b'{"id": 4, "ts": "294247-01-10T04:00:54Z", "v": 1.0}'
    lines[6] = b'{"id": 6, "ts": "-290000-01-01T00:00:00Z", "v": 1.0}'
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run_job(tmp_path, _file_source(path))
    assert result.returncode == 0, result.stderr
    assert counted(tmp_path) == 8
    dead = dead_letters(tmp_path)
    assert [d["line"] for d in dead] == [5, 7]
    assert dead[0]["reason"] == "ts: cannot read 294247-01-10T04:00:54Z as TIMESTAMP(3) (years 0001 to 9999)"


def test_a_malformed_log_record_is_reported_with_its_partition_and_offset(tmp_path):
    from clickstream.log import TopicLog

    with TopicLog(tmp_path / "log") as log:
        log.create_topic("src", 2)
        log.append("src", [good_json(i) for i in range(6)], [b"a", b"b"] * 3)
        log.append("src", [b'{"id": "x"}', b"\xff"], [b"a", b"a"])
    source = (
        f"'connector' = 'log', 'path' = '{tmp_path / 'log'}', 'topic' = 'src', "
        "'format' = 'json', 'scan.bounded.mode' = 'latest-offset'"
    )
    result = run_job(tmp_path, source)
    assert result.returncode == 0, result.stderr
    assert counted(tmp_path) == 6
    dead = sorted(dead_letters(tmp_path), key=lambda d: d["offset"])
    assert {d["partition"] for d in dead} == {dead[0]["partition"]}
    assert [d["reason"] for d in dead] == ["id: cannot read x as BIGINT", "not UTF-8 text"]
    assert dead[1]["offset"] == dead[0]["offset"] + 1


def test_an_epoch_a_computed_rowtime_cannot_hold_goes_to_the_dead_letters(tmp_path):
    path = tmp_path / "in.jsonl"
    epochs = [1704067200000, 9 * 10**18, -9 * 10**18, 253402300800000, 1704067205000]
    path.write_bytes(b"".join(b'{"id": %d, "ms": %d}\n' % (i, ms) for i, ms in enumerate(epochs)))
    script = tmp_path / "job.sql"
    script.write_text(
        f"""
        CREATE TABLE src (id BIGINT, ms BIGINT, ts AS TO_TIMESTAMP_LTZ(ms, 3),
            WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
        WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');
        CREATE TABLE per_window (w TIMESTAMP_LTZ(3), n BIGINT)
        WITH ('connector' = 'filesystem', 'path' = '{tmp_path / "out.jsonl"}', 'format' = 'json');
        INSERT INTO per_window SELECT window_start, COUNT(*)
        FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND))
        GROUP BY window_start, window_end;
        """
    )
    result = run_script(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert counted(tmp_path) == 2
    dead = dead_letters(tmp_path)
    assert [orjson.loads(d["record"])["id"] for d in dead] == [1, 2, 3]
    assert "Overflow" in dead[0]["reason"]
    assert dead[2]["reason"] == "the rowtime attribute 'ts' is outside years 0001 to 9999"
