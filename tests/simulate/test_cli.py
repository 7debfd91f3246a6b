"""`generate`: every kind to JSON Lines, CSV, stdout and the log, paced, with dimension tables."""

from __future__ import annotations

import csv
import sqlite3
import sys
import threading
import time
import types

import orjson
import pytest

from clickstream.log import LogError, TopicLog
from clickstream.simulate import KINDS, generate, make_generator
from clickstream.simulate.outputs import open_output
from clickstream.simulate.tianchi import TianchiConfig, category_rows


def read_jsonl(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("kind", KINDS)
def test_generate_writes_one_file_per_topic(tmp_path, kind):
    out = tmp_path / "data.jsonl"
    summary = generate(kind, str(out), events=1_000, seed=1)
    topics = list(make_generator(kind).topics())
    if len(topics) == 1:
        assert summary.targets == {topics[0]: str(out)}
    else:
        assert summary.targets == {t: str(tmp_path / f"data.{t}.jsonl") for t in topics}
    for topic, target in summary.targets.items():
        assert len(read_jsonl(tmp_path / target)) == summary.counts.get(topic, 0)
    assert summary.total >= 1_000


@pytest.mark.parametrize("kind", KINDS)
def test_progress_tells_the_simulated_time_reached(tmp_path, kind):
    """What the demo's header shows of a scenario whose statements have no event time (seed 003):
    the event time of the last record the simulator wrote."""
    from clickstream.simulate.cli import WriteProgress
    from tests.simulate.helpers import event_ms

    progress = WriteProgress()
    assert progress.event_ms() is None
    generate(kind, str(tmp_path / "data.jsonl"), events=500, seed=1, progress=progress)
    last = list(make_generator(kind, seed=1).records(500))[-1]
    assert progress.last == last
    assert progress.event_ms() == event_ms(kind, last) is not None


def test_generate_is_byte_for_byte_reproducible(tmp_path):
    for name in ("a", "b"):
        generate(
            "checkouts",
            str(tmp_path / f"{name}.jsonl"),
            events=2_000,
            seed=9,
            late_ratio=0.1,
            malformed_ratio=0.1,
        )
    for topic in ("clicks", "checkouts", "users"):
        assert (tmp_path / f"a.{topic}.jsonl").read_bytes() == (tmp_path / f"b.{topic}.jsonl").read_bytes()


def test_generate_csv(tmp_path):
    out = tmp_path / "behaviour.csv"
    generate("tianchi", str(out), events=500)
    with out.open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 500
    assert list(rows[0]) == ["user_id", "item_id", "category_id", "behavior", "ts"]


def test_generate_to_stdout(capsys):
    summary = generate("tianchi", "-", events=50)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == summary.total == 50
    assert orjson.loads(lines[0])["behavior"] in ("pv", "cart", "fav", "buy")


def test_generate_at_a_rate(tmp_path):
    summary = generate("ksql-clickstream", str(tmp_path / "c.jsonl"), events=300, rate=1_000)
    # 300 clicks + 507 table rows at 1,000/s: paced, so not much under 0.8 s; the upper bound
    # leaves a loaded machine room (it only shows the pace is not far slower than asked)
    assert summary.total == 807
    assert 0.6 < summary.elapsed_s < 4.0


def test_endless_generation_stops_at_duration(tmp_path):
    started = time.monotonic()
    summary = generate("users-clicks", str(tmp_path / "u.jsonl"), events=None, rate=2_000, duration_s=0.5)
    assert 0.4 < time.monotonic() - started < 4.0  # it stopped (a loaded machine may be late)
    assert 500 < summary.total < 1_500


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown simulator 'nope'.*tianchi"):
        generate("nope", "-", events=1)


def test_underscores_name_kinds_too(tmp_path):
    summary = generate("users_clicks", str(tmp_path / "u.jsonl"), events=10)
    assert set(summary.counts) == {"users", "clicks"}


def test_dimension_to_sqlite(tmp_path):
    db = tmp_path / "dim.db"
    summary = generate("tianchi", str(tmp_path / "t.jsonl"), events=10, dimension=f"sqlite:{db}")
    assert summary.dimension_tables == ["category"]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT sub_category_id, parent_category_name FROM category").fetchall()
    assert rows == category_rows(TianchiConfig())


class FakeTopicLog:
    """Stands in for clickstream.log.TopicLog: records the calls."""

    calls: list[tuple] = []

    def __init__(self, root: str, **options) -> None:
        self.root = root
        self.options = options

    def create_topic(self, topic: str, partitions: int) -> None:
        self.calls.append(("create", self.root, topic, partitions))

    def append(self, topic: str, values: list[bytes], keys=None) -> None:
        self.calls.append(("append", topic, list(values), keys))

    def close(self) -> None:
        self.calls.append(("close",))


def test_generate_to_log_names_topics_and_keys(tmp_path, monkeypatch):
    monkeypatch.setitem(
        sys.modules, "clickstream.log", types.SimpleNamespace(TopicLog=FakeTopicLog, LogError=LogError)
    )
    FakeTopicLog.calls = []
    summary = generate("users-clicks", "log:shop-", events=2_500, log_dir=str(tmp_path))
    assert summary.targets == {"users": "log:shop-users", "clicks": "log:shop-clicks"}
    creates = [c for c in FakeTopicLog.calls if c[0] == "create"]
    assert creates == [
        ("create", str(tmp_path), "shop-users", 1),
        ("create", str(tmp_path), "shop-clicks", 1),
    ]
    appends = [c for c in FakeTopicLog.calls if c[0] == "append"]
    assert sum(len(c[2]) for c in appends) == summary.total
    user_batch = next(c for c in appends if c[1] == "shop-users")
    assert user_batch[3][0] == orjson.loads(user_batch[2][0])["user_id"].encode()  # keyed upserts
    assert all(c[3] is None for c in appends if c[1] == "shop-clicks")  # unkeyed events
    assert FakeTopicLog.calls[-1] == ("close",)


def test_generate_to_the_embedded_log(tmp_path):
    log = pytest.importorskip(
        "clickstream.log",
        reason="clickstream.log (the embedded log) is not "
        "in this tree yet; the fake-log test covers our side",
    )
    first = generate("tianchi", "log:clickstream-feed", events=2_500, log_dir=str(tmp_path))
    again = generate("tianchi", "log:clickstream-feed", events=500, log_dir=str(tmp_path))
    assert first.targets == {"clickstream-feed": "log:clickstream-feed"}
    with log.TopicLog(tmp_path) as topics, topics.open_reader("clickstream-feed", stop="latest") as reader:
        values = []
        while not reader.finished():
            values += reader.poll(1_000).column("value").to_pylist()
    assert len(values) == first.total + again.total == 3_000  # a second run appends
    assert orjson.loads(values[0])["behavior"] in ("pv", "cart", "fav", "buy")


def test_a_resumed_tianchi_run_writes_what_the_whole_run_would_have(tmp_path):
    whole = tmp_path / "whole.jsonl"
    generate("tianchi", str(whole), events=3_000, seed=5)
    first = generate(
        "tianchi", "log:feed", events=3_000, seed=5, rate=10_000, duration_s=0.1, log_dir=str(tmp_path)
    )
    assert 0 < first.total < 3_000  # stopped part-way
    rest = generate("tianchi", "log:feed", events=3_000, seed=5, start=first.total, log_dir=str(tmp_path))
    assert rest.total == 3_000 - first.total
    with TopicLog(tmp_path) as log, log.open_reader("feed", stop="latest") as reader:
        values = []
        while not reader.finished():
            values += reader.poll(1_000).column("value").to_pylist()
    assert values == whole.read_bytes().splitlines()


def test_a_finished_run_resumed_writes_nothing(tmp_path):
    summary = generate("tianchi", str(tmp_path / "t.jsonl"), events=100, start=100)
    assert summary.total == 0


def test_log_retention_reaches_the_log_writer(tmp_path, monkeypatch):
    monkeypatch.setitem(
        sys.modules, "clickstream.log", types.SimpleNamespace(TopicLog=FakeTopicLog, LogError=LogError)
    )
    output = open_output("log:feed", ["feed"], str(tmp_path), log_retention_bytes=1 << 20)
    assert output.log.options == {"retention_bytes": 1 << 20}


def test_another_thread_stops_a_run(tmp_path):
    stop = threading.Event()
    out = tmp_path / "t.jsonl"

    def stop_once_writing() -> None:  # not on a timer: drawing the day's events may take a while
        while not (out.exists() and out.stat().st_size):
            time.sleep(0.01)
        stop.set()

    threading.Thread(target=stop_once_writing, daemon=True).start()
    summary = generate("tianchi", str(out), events=100_000, rate=2_000, stop=stop)
    assert 0 < summary.total < 50_000  # stopped early: at 2,000/s the whole run takes 50 s
