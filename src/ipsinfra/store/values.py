"""What a line may hold: secrets masked, text both backends store alike, the time stamp.

Secrets never enter: ``before``, ``after`` and ``detail`` are redacted before
they are hashed and written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ipsinfra.errors import InvalidInput

__all__ = ["MAX_NAME", "REDACTED", "SECRET_KEY_RE", "clean_text", "now", "redact", "redact_sorted"]

REDACTED = "***"
SECRET_KEY_RE = re.compile(r"pass|secret|token|key|cipassword", re.IGNORECASE)
# Columns PostgreSQL bounds (SQLite does not): refused alike on both backends.
MAX_NAME = 255


def now() -> str:
    """The time stamp of a line: UTC, ISO 8601, microseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def clean_text(value: str, what: str, *, limit: int | None = None) -> str:
    """A text column's value as both backends store it: NUL (which PostgreSQL's text
    cannot hold) as U+FFFD; longer than ``limit`` (a VARCHAR there) refused."""
    value = value.replace("\x00", "\ufffd")
    if limit is not None and len(value) > limit:
        raise InvalidInput(f"journal.{what}: value {value[:40]!r}...: longer than {limit} characters")
    return value


def _scrub_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """``value`` with secret-looking keys masked and every listed secret replaced.

    >>> redact({"cipassword": "x", "note": "pw is hunter2"}, ["hunter2"])
    {'cipassword': '***', 'note': 'pw is ***'}
    """
    return redact_sorted(value, sorted({s for s in secrets if s}, key=len, reverse=True))


def redact_sorted(value: Any, secrets: list[str]) -> Any:
    """:func:`redact` with ``secrets`` already deduplicated, longest first."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            skey = _scrub_text(str(key), secrets)
            out[skey] = REDACTED if SECRET_KEY_RE.search(str(key)) else redact_sorted(item, secrets)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_sorted(item, secrets) for item in value]
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else (an IP address, a date, an enum) is written as its text.
    return _scrub_text(str(value), secrets)
