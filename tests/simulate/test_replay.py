"""Replaying the real Tianchi file format: event-time order, the seed's JSON, the speed-up."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from clickstream.simulate import replay
from clickstream.simulate.replay import read_user_behavior, write_sample
from tests.simulate.helpers import ms

SAMPLE = Path(__file__).parent.parent / "data" / "UserBehavior_sample.csv"


def seconds_column(path: Path) -> list[int]:
    return [int(line.rsplit(",", 1)[1]) for line in path.read_text().splitlines()]


def test_sample_is_in_the_real_format_and_out_of_order():
    lines = SAMPLE.read_text().splitlines()
    assert len(lines) == 2_000
    user, item, category, behavior, ts = lines[0].split(",")
    assert user.isdigit() and item.isdigit() and category.isdigit() and ts.isdigit()
    assert behavior in ("pv", "buy", "cart", "fav")
    times = seconds_column(SAMPLE)
    assert times != sorted(times)
    users = [int(line.split(",")[0]) for line in lines]
    assert users == sorted(users)  # grouped by user, as the real file


def test_sample_is_reproducible(tmp_path):
    write_sample(tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == SAMPLE.read_bytes()


def test_replay_orders_by_event_time_as_seed_json(tmp_path):
    out = tmp_path / "feed.jsonl"
    summary = replay(SAMPLE, str(out), speedup=None, progress=False)
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert summary.counts == {"clickstream-feed": 2_000}
    assert [ms(r["ts"]) for r in records] == sorted(ms(r["ts"]) for r in records)
    assert sorted(ms(r["ts"]) // 1000 for r in records) == sorted(seconds_column(SAMPLE))
    first = records[0]
    assert list(first) == ["user_id", "item_id", "category_id", "behavior", "ts"]
    assert first["user_id"].isdigit() and first["ts"].endswith("Z")


def test_ties_keep_file_order(tmp_path):
    path = tmp_path / "ties.csv"
    path.write_text("5,1,1,pv,1511700000\n3,2,1,pv,1511600000\n4,3,1,buy,1511700000\n")
    table = read_user_behavior(path)
    assert table["user_id"].to_pylist() == [3, 5, 4]


def test_limit_and_time_range(tmp_path):
    assert read_user_behavior(SAMPLE, limit=100).num_rows == 100
    times = sorted(seconds_column(SAMPLE))
    middle = times[1_000]
    assert read_user_behavior(SAMPLE, start_s=middle).num_rows == sum(t >= middle for t in times)
    outliers = tmp_path / "outliers.csv"
    outliers.write_text("1,1,1,pv,0\n1,1,1,pv,1511600000\n1,1,1,pv,2147483647\nbroken\n")
    assert read_user_behavior(outliers, start_s=1511481600, end_s=1512316800).num_rows == 1


def test_replay_honours_the_speedup(tmp_path):
    # two hours of events, shuffled, at 7200x: about one second
    rows = [f"{i % 7},{i},{i % 5},pv,{1511600000 + i * 30}" for i in range(241)]
    random.Random(1).shuffle(rows)
    path = tmp_path / "two_hours.csv"
    path.write_text("\n".join(rows) + "\n")
    summary = replay(path, str(tmp_path / "out.jsonl"), speedup=7200, progress=False)
    assert summary.total == 241
    assert 0.8 < summary.elapsed_s < 2.0


def test_replay_stops_at_duration(tmp_path):
    summary = replay(SAMPLE, str(tmp_path / "out.jsonl"), speedup=3_600, duration_s=0.5, progress=False)
    assert 0 < summary.total < 2_000
    assert summary.elapsed_s == pytest.approx(0.5, abs=0.3)


def test_replay_with_progress_bar(tmp_path, capsys):
    summary = replay(SAMPLE, str(tmp_path / "out.jsonl"), speedup=None, limit=500, progress=True)
    assert summary.total == 500
