"""Unit-test fixtures shared by every unit test file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipsinfra.abuse.classify import _text_matches


@pytest.fixture(autouse=True)
def _fresh_keyword_cache() -> Iterator[None]:
    """Every test scans complaint text itself: a cached scan from an earlier test (or, under
    mutmut, from the unmutated code before the fork) must not answer for it."""
    _text_matches.cache_clear()
    yield
