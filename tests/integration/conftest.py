"""Fixtures of the integration tier that need a server of their own.

``postgres``: one throw-away PostgreSQL cluster for the session (tests/pg.py),
stopped and removed at the end; where it cannot start, :func:`tests.conftest.missing`
decides (skip here, FAIL under ``CI=true``) with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator

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
