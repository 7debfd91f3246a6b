"""Seed 004's catalogue file (`pipelines/seed_004.sql`) as written, from the embedded log into a real
PostgreSQL, checked against one batch pass (`seed_004.batch_attribution`).

Only the places differ from the seed: the embedded log stands in for Kafka, and the users and the
result are tables of the seed's `commerce` schema (its postgres/init.sql) on the test server.
"""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from clickstream import pipelines
from clickstream.engine import Engine
from clickstream.simulate.cli import make_generator
from tests.connectors.seed_004 import BOUNDED, WRITTEN, batch_attribution, statements, users, write_events

pytestmark = pytest.mark.integration


def test_seed_004_attribution_into_postgres(commerce, postgres_url, tmp_path) -> None:
    db, schema = commerce
    records = list(make_generator("checkouts").records(20_000))
    db.insert(f"{schema}.users", users(records))
    root = tmp_path / "log"
    write_events(records, root, "s4_")

    Engine(out=io.StringIO()).execute_script(
        statements(pipelines.log_topics(str(root), "s4_", BOUNDED), postgres_url, schema)
    )

    written = db.execute(f"SELECT {WRITTEN} FROM {schema}.attributed_checkouts")
    expected = batch_attribution(records)
    checkouts = sum(r.topic == "checkouts" for r in records)
    assert 0.5 * checkouts < len(expected) < checkouts  # most checkouts follow a click of theirs
    assert set(written) == expected and len(written) == len(expected)
    assert all(isinstance(row[5], datetime) and row[6] <= row[5] for row in written)
