"""Where the store is and how its password arrives: URLs, password files, masking.

A database password never sits in an option someone logs: it comes with the URL
from the environment (``$IPSINFRA_JOURNAL``), from a file (``password_file``,
``$IPSINFRA_JOURNAL_PASSWORD_FILE``) or from libpq's own ``$PGPASSWORD`` /
``~/.pgpass``; every message shows the URL without it (:func:`safe_url`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ipsinfra.errors import InvalidInput
from ipsinfra.store.values import REDACTED

__all__ = [
    "JOURNAL_ENV",
    "PASSWORD_FILE_ENV",
    "configured_url",
    "default_journal_url",
    "resolve_url",
    "safe_url",
    "to_url",
    "url_secrets",
]

JOURNAL_ENV = "IPSINFRA_JOURNAL"
PASSWORD_FILE_ENV = "IPSINFRA_JOURNAL_PASSWORD_FILE"
# scheme://user:PASSWORD@ in a string SQLAlchemy cannot parse: masked up to the last @.
_USERINFO_RE = re.compile(r"^([^/?#@]*://[^/:@]*:).*@")


def default_journal_url(*, create: bool = True) -> str:
    """``$IPSINFRA_JOURNAL`` or ``~/.local/state/ipsinfra/journal.sqlite3`` (as a URL).

    ``create=False`` (readers) does not make the parent directory.
    """
    env = os.environ.get(JOURNAL_ENV)
    if env:
        return to_url(env, create=create)
    return to_url(Path.home() / ".local" / "state" / "ipsinfra" / "journal.sqlite3", create=create)


def configured_url(url: str | Path | None) -> str | Path | None:
    """The store someone named: ``url``, else ``$IPSINFRA_JOURNAL``; None when neither is set.

    Unlike :func:`default_journal_url` there is no fallback to the user's own
    SQLite file: a feature whose record moves into the store only when one was
    chosen (the port map) asks this.
    """
    if url:
        return url
    return os.environ.get(JOURNAL_ENV) or None


def to_url(url: str | Path, *, create: bool = True) -> str:
    """A path becomes a ``sqlite:///`` URL (its folder made unless ``create=False``); a URL stays."""
    if isinstance(url, Path) or "://" not in url:
        path = Path(url).expanduser().resolve()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return url


def safe_url(url: str | sa.URL) -> str:
    """``url`` as every message shows it: the password (in the user part or as
    ``?password=``) masked, also in a string SQLAlchemy cannot parse.

    >>> safe_url("postgresql+psycopg://ipsinfra:s3cret@db1/journal")
    'postgresql+psycopg://ipsinfra:***@db1/journal'
    """
    try:
        parsed = url if isinstance(url, sa.URL) else sa.make_url(url)
    except (SQLAlchemyError, ValueError):
        return _USERINFO_RE.sub(r"\1***@", str(url))
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": REDACTED})
    return parsed.render_as_string(hide_password=True)


def url_secrets(url: str | None) -> list[str]:
    """The password a journal URL carries, as given and decoded (empty: none).

    The Ansible modules refuse such a URL and mask these strings in what they return.
    """
    if not url:
        return []
    found: list[str] = []
    raw = _USERINFO_RE.match(url)
    if raw is not None:
        found.append(url[len(raw[1]) : raw.end() - 1])
    try:
        parsed = sa.make_url(url)
    except (SQLAlchemyError, ValueError):
        return [s for s in found if s]
    found.append(parsed.password or "")
    query_password = parsed.query.get("password")
    found.extend([query_password] if isinstance(query_password, str) else list(query_password or ()))
    return sorted({s for s in found if s}, key=len, reverse=True)


def read_password(path: str | Path) -> str:
    """The password file's one line (its newline dropped); unreadable or empty is InvalidInput."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"journal.password_file: value {str(path)!r}: cannot read: {reason}") from None
    password = text.rstrip("\r\n")
    if not password:
        raise InvalidInput(f"journal.password_file: value {str(path)!r}: empty")
    return password


def resolve_url(text: str, password_file: str | Path | None) -> sa.URL:
    """The URL to connect with: ``postgresql://`` means psycopg 3, the password from the file."""
    parsed = sa.make_url(text)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return parsed
    if password_file is None and os.environ.get(PASSWORD_FILE_ENV):
        password_file = os.environ[PASSWORD_FILE_ENV]
    if password_file is not None:
        parsed = parsed.set(password=read_password(password_file))
    return parsed
