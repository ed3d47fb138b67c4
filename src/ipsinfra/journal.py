"""The action journal and state store, kept importable from here (§11.6).

The code lives in :mod:`ipsinfra.store` (one job per module, a SQLite and a
PostgreSQL backend behind one interface); this module re-exports its public
names, and the private helpers tests and older callers import, unchanged.

    >>> from ipsinfra.journal import Journal  # doctest: +SKIP
"""

from __future__ import annotations

# The public names, and (aliased, with a leading underscore) the private ones of the module
# before the split, for the tests that tamper with a journal as an attacker would
# (tests/unit/journal_tamper.py): those are not a public API.
from ipsinfra.store.backend import db_reason as _db_reason  # noqa: F401
from ipsinfra.store.backend import fork_safe as _fork_safe  # noqa: F401
from ipsinfra.store.chain import (
    GENESIS_HASH,
    KEY_ENV,
    KEY_FILE_ENV,
    MIGRATE_ACTION,
    MIN_KEY_BYTES,
    STATE_ACTION,
    Anchor,
    VerifyReport,
    load_key,
    parse_anchor,
)
from ipsinfra.store.chain import ChainWalk as _ChainWalk  # noqa: F401
from ipsinfra.store.chain import canonical as _canonical  # noqa: F401
from ipsinfra.store.chain import hash_fields as _hash_fields  # noqa: F401
from ipsinfra.store.chain import hashed_bytes as _hashed_bytes  # noqa: F401
from ipsinfra.store.chain import legacy_digest as _legacy_digest  # noqa: F401
from ipsinfra.store.chain import row_hash as _row_hash  # noqa: F401
from ipsinfra.store.chain import row_mac as _row_mac  # noqa: F401
from ipsinfra.store.errors import JournalNotFound, JournalTableMissing, JournalUnreadable
from ipsinfra.store.journal import APPEND_ATTEMPTS as _APPEND_ATTEMPTS  # noqa: F401
from ipsinfra.store.journal import FROM_ENV, RESULTS, Journal, JournalEntry, Result, default_actor
from ipsinfra.store.postgres import CHAIN_LOCK as _PG_CHAIN_LOCK  # noqa: F401
from ipsinfra.store.schema import journal_table, state_table
from ipsinfra.store.schema import metadata as _metadata  # noqa: F401
from ipsinfra.store.urls import PASSWORD_FILE_ENV, default_journal_url, safe_url, url_secrets
from ipsinfra.store.urls import read_password as _read_password  # noqa: F401
from ipsinfra.store.urls import resolve_url as _resolve_url  # noqa: F401
from ipsinfra.store.urls import to_url as _to_url  # noqa: F401
from ipsinfra.store.values import MAX_NAME as _MAX_NAME  # noqa: F401
from ipsinfra.store.values import REDACTED, SECRET_KEY_RE, redact
from ipsinfra.store.values import clean_text as _text  # noqa: F401
from ipsinfra.store.values import now as _now  # noqa: F401
from ipsinfra.store.values import redact_sorted as _redact  # noqa: F401

__all__ = [
    "FROM_ENV",
    "GENESIS_HASH",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "MIGRATE_ACTION",
    "MIN_KEY_BYTES",
    "PASSWORD_FILE_ENV",
    "REDACTED",
    "RESULTS",
    "SECRET_KEY_RE",
    "STATE_ACTION",
    "Anchor",
    "Journal",
    "JournalEntry",
    "JournalNotFound",
    "JournalTableMissing",
    "JournalUnreadable",
    "Result",
    "VerifyReport",
    "default_actor",
    "default_journal_url",
    "journal_table",
    "load_key",
    "parse_anchor",
    "redact",
    "safe_url",
    "state_table",
    "url_secrets",
]
