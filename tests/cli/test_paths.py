"""The simulators write where the `log` connector reads by default ($CLICKSTREAM_LOG_DIR, else
./clickstream-log), and say, per file or topic, what they wrote."""

from __future__ import annotations

import pytest

from tests.cli.helpers import clickstream

JOB = """CREATE TABLE ub (user_id BIGINT, behavior STRING) WITH ('connector' = 'log', 'topic' = '{topic}',
    'format' = 'json', 'scan.bounded.mode' = 'latest-offset');
SELECT user_id, behavior FROM ub;
"""


def rows_read_without_path(cwd, topic: str, **env: str) -> int:
    (cwd / "job.sql").write_text(JOB.format(topic=topic))
    result = clickstream("run", "-q", "job.sql", cwd=cwd, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.count("+I[")


def test_generate_writes_where_a_job_without_path_reads(tmp_path):
    result = clickstream("generate", "tianchi", "-n", "300", "-o", "log:ub", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    head, topic = result.stderr.strip().splitlines()
    assert head.startswith("wrote 300 records in ") and head.endswith(" to the log in clickstream-log:")
    assert topic == "  clickstream-feed  300 -> log:ub"
    assert (tmp_path / "clickstream-log" / "ub").is_dir()
    assert rows_read_without_path(tmp_path, "ub") == 300


def test_clickstream_log_dir_moves_both(tmp_path):
    shared = tmp_path / "shared-log"
    result = clickstream(
        "generate", "tianchi", "-n", "200", "-o", "log:ub", cwd=tmp_path, CLICKSTREAM_LOG_DIR=str(shared)
    )
    assert result.returncode == 0, result.stderr
    assert f"to the log in {shared}:" in result.stderr
    assert not (tmp_path / "clickstream-log").exists()
    assert rows_read_without_path(tmp_path, "ub", CLICKSTREAM_LOG_DIR=str(shared)) == 200


def test_replay_writes_where_a_job_without_path_reads(tmp_path):
    csv = tmp_path / "UserBehavior.csv"
    csv.write_text("".join(f"{i},2,3,pv,{1511658000 + i}\n" for i in range(50)))
    result = clickstream("replay", str(csv), "--speedup", "0", cwd=tmp_path)  # -o log:user_behavior
    assert result.returncode == 0, result.stderr
    assert "to the log in clickstream-log:" in result.stderr
    assert result.stderr.rstrip().endswith("clickstream-feed  50 -> log:user_behavior")
    assert rows_read_without_path(tmp_path, "user_behavior") == 50


@pytest.mark.parametrize("out", ["clicks.jsonl", "clicks.csv"])
def test_generate_names_each_file_it_writes_with_its_count(tmp_path, out):
    result = clickstream("generate", "ksql-clickstream", "-n", "1000", "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("wrote 1,507 records in ") and lines[0].endswith(":")
    stem, suffix = out.split(".")
    header = 1 if suffix == "csv" else 0
    written = {}
    for line in lines[1:]:
        topic, count, arrow, path = line.split()
        assert arrow == "->" and path == f"{stem}.{topic}.{suffix}"
        written[topic] = int(count.replace(",", ""))
        assert len((tmp_path / path).read_text().splitlines()) == written[topic] + header
    assert written == {"clickstream": 1000, "clickstream_codes": 7, "clickstream_users": 500}


def test_generate_names_the_dimension_tables(tmp_path):
    result = clickstream(
        "generate", "tianchi", "-n", "10", "-o", "t.jsonl", "--dimension", "data/dim.db", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[1:] == [
        "  clickstream-feed       10 -> t.jsonl",
        "  category (dimension)  490 -> data/dim.db",
    ]
