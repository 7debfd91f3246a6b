"""Fixtures of the connector tests: each test database, set up by the root conftest's URLs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.connectors.jdbc_db import Db
from tests.connectors.seed_004 import create_commerce


def _open_db(request: pytest.FixtureRequest, kind: str) -> Iterator[Db]:
    handle = Db(kind, request.getfixturevalue(f"{kind}_url"))
    yield handle
    handle.close()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.integration),
        pytest.param("mariadb", marks=pytest.mark.integration),
    ]
)
def db(request: pytest.FixtureRequest) -> Iterator[Db]:
    yield from _open_db(request, request.param)


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.integration),
        pytest.param("mariadb", marks=pytest.mark.integration),
    ]
)
def server_db(request: pytest.FixtureRequest) -> Iterator[Db]:
    """A database behind a network connection, which can be lost."""
    yield from _open_db(request, request.param)


@pytest.fixture
def commerce(postgres_url: str) -> Iterator[tuple[Db, str]]:
    """Seed 004's `commerce` schema in PostgreSQL (users, attributed_checkouts), named for the test."""
    db = Db("postgres", postgres_url)
    schema = f"commerce_{uuid.uuid4().hex[:10]}"
    create_commerce(db, schema)
    yield db, schema
    db.execute(f"DROP SCHEMA {schema} CASCADE")
    db.close()
