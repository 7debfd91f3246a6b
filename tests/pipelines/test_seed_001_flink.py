"""Two of seed 001's analyses through PyFlink on a small input, over the seed's `user_page_views`
as written (its watermark taken from `timestamp_str`, its rowtime `timestamp_sec` read from the
JSON): a Top-N over an updating aggregate of DECIMAL sums, and the comma-join interval self-join
feeding an aggregate and a Top-N. Flink's final tables (built as an upsert sink builds them) equal
ours and the batch oracle's. The other analyses' constructs are conformance cases
(`tests/conformance/cases/seed001.json`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from clickstream import pipelines
from clickstream.engine import Engine
from clickstream.simulate.cli import make_generator
from tests.flink_oracle import run_flink
from tests.pipelines.seed_001 import TOPICS, batch_answers, flink_statements

pytestmark = [pytest.mark.flink, pytest.mark.integration]

# analysis -> positions of its result table's primary key
CHECKED = {"top_selling_products": (0,), "recommendations": (0, 1)}


def _final_table(changelog: Iterable[tuple[str, tuple[Any, ...]]], key: tuple[int, ...]) -> Counter:
    """What an upsert sink ends with: +I/+U replace the row of their key, -D deletes it, -U is
    ignored (Flink's Top-N replaces a rank's row with a +U alone)."""
    table: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for kind, row in changelog:
        if kind in ("+I", "+U"):
            table[tuple(row[i] for i in key)] = row
        elif kind == "-D":
            table.pop(tuple(row[i] for i in key), None)
    return Counter(_plain(row) for row in table.values())


def _plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values as the Flink oracle writes them: times and decimals as text."""
    return tuple(str(v) if isinstance(v, datetime | Decimal) else v for v in row)


def test_seed_001_on_pyflink(tmp_path: Path) -> None:
    records = list(make_generator("ecommerce", seed=3, days=0.05).records(3_000))
    for topic in TOPICS:
        lines = b"".join(orjson.dumps(r.value) + b"\n" for r in records if r.topic == topic)
        (tmp_path / f"{topic}.jsonl").write_bytes(lines)
    files = pipelines.Place(
        lambda topic: {"connector": "filesystem", "path": str(tmp_path / f"{topic}.jsonl")}
    )
    blackhole = pipelines.Place(lambda _: {"connector": "blackhole"})
    setup, queries = flink_statements(pipelines.load("seed_001", topics=files, results=blackhole))
    checked = {name: queries[name] for name in CHECKED}

    flink = run_flink(setup, checked)
    engine = Engine()
    engine.execute_script(";\n".join(setup) + ";")
    oracle = batch_answers(records)
    for name, key in CHECKED.items():
        theirs = _final_table(flink[name], key)
        assert theirs == _final_table(engine.collect(checked[name]), key), name
        assert theirs == Counter(_plain(row) for row in oracle[name].elements()), name
        assert len(theirs) >= 5, name
