"""Fixtures of the integration tier that need a server of their own.

``postgres``: one throw-away PostgreSQL cluster for the session (tests/pg.py),
stopped and removed at the end; where it cannot start, :func:`tests.conftest.missing`
decides (skip here, FAIL under ``CI=true``) with the reason.

``store_url``: an empty state store on each backend in turn, a SQLite file and a fresh
database of that cluster: a test taking it runs on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.pg import PostgresCluster, PostgresUnavailable


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as exc:
        missing(f"the PostgreSQL tier cannot start: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.url(cluster.new_database())
