"""How many switch sessions ``collect`` opens at once."""

from __future__ import annotations

import pytest

from ipsinfra.network.switches import MAX_DEFAULT_WORKERS, pool_size


@pytest.mark.parametrize(
    ("switches", "max_workers", "expected"),
    [
        (20, None, 20),  # one session per switch by default
        (1, None, 1),
        (0, None, 1),
        (MAX_DEFAULT_WORKERS + 1, None, MAX_DEFAULT_WORKERS),  # ... up to a sane bound
        (1000, None, MAX_DEFAULT_WORKERS),
        (20, 4, 4),  # an explicit limit wins
        (3, 10, 3),
        (20, 0, 1),
        (200, 100, 100),  # even above the default bound, when asked for
    ],
)
def test_pool_size(switches: int, max_workers: int | None, expected: int) -> None:
    assert pool_size(switches, max_workers) == expected
