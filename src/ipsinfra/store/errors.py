"""The store's own errors, in ipsinfra's one tree (:mod:`ipsinfra.errors`)."""

from __future__ import annotations

from ipsinfra.errors import InvalidInput, JournalError, NotFound

__all__ = ["JournalNotFound", "JournalTableMissing", "JournalUnreadable"]


class JournalNotFound(JournalError, NotFound):
    """The journal to read does not exist (nothing is created by reading it)."""


class JournalUnreadable(JournalError, InvalidInput):
    """The journal cannot be read as a journal: not a database, no journal table, a malformed line."""


class JournalTableMissing(JournalUnreadable):
    """The database has no journal table: not a journal (yet). Read-only callers that may
    treat it as an empty store (check mode before the first job) catch this one."""
