"""The append-only action journal and the state beside it (§11.6: never erased or rewritten).

Every action ipsinfra takes (or plans, or refuses) is one line, hash-chained to
the line before it (:mod:`ipsinfra.store.chain`). The key/value state (boot
ids, outages, cancellations, the port map) is covered by the same chain: every
state write is also a ``state.set`` line, and its state row names that line's
seq, so ``verify`` checks the state table against the chain. The database is
a :class:`~ipsinfra.store.backend.Backend`: a SQLite file by default,
PostgreSQL by URL.

    >>> with Journal(tmp_path / "j.sqlite3") as j:  # doctest: +SKIP
    ...     j.record("vds.stop", "kvm1/VPS1234(34.56)", before={"state": "running"})
    JournalEntry(seq=1, action='vds.stop', result='ok', ...)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import getpass
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ipsinfra.errors import InvalidInput, JournalError
from ipsinfra.store.backend import Backend, backend_for, db_reason
from ipsinfra.store.chain import (
    GENESIS_HASH,
    MIGRATE_ACTION,
    MIN_KEY_BYTES,
    STATE_ACTION,
    Anchor,
    ChainWalk,
    VerifyReport,
    canonical,
    hash_fields,
    legacy_digest,
    load_key,
    parse_anchor,
    row_hash,
    row_mac,
)
from ipsinfra.store.errors import JournalNotFound, JournalUnreadable
from ipsinfra.store.schema import journal_table, state_table
from ipsinfra.store.urls import default_journal_url, resolve_url, safe_url, to_url
from ipsinfra.store.values import MAX_NAME, clean_text, now, redact_sorted

__all__ = ["FROM_ENV", "RESULTS", "Journal", "JournalEntry", "Result", "default_actor"]

RESULTS = ("ok", "failed", "refused", "planned")
Result = Literal["ok", "failed", "refused", "planned"]
# Attempts at one append when another writer took the same seq first. SQLite
# serialises writers with BEGIN IMMEDIATE, PostgreSQL with a transaction-level
# advisory lock (Backend.lock_chain); only other backends rely on these retries.
APPEND_ATTEMPTS = 20


class _FromEnv(enum.Enum):
    FROM_ENV = "env"


#: ``Journal(key=FROM_ENV)`` (the default): the key from the environment, if any.
FROM_ENV = _FromEnv.FROM_ENV


class JournalEntry(BaseModel):
    """One line of the journal, as written (already redacted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    ts: dt.datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    result: Result
    detail: str = ""
    prev_hash: str
    hash: str
    mac: str | None = None


def default_actor() -> str:
    """``user@host`` of whoever runs this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class Journal:
    """The append-only journal at ``url`` (a SQLAlchemy URL, or a path for a SQLite file).

    Safe to append to from many threads and processes at once: each append
    reads the chain's head and writes the next line in one serialised
    transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level
    advisory lock, so READ COMMITTED writers queue instead of forking the chain).

    ``url``: a path (SQLite) or an SQLAlchemy URL; ``postgresql://`` is read as
    ``postgresql+psycopg://``. Its password comes with it from the environment,
    or from ``password_file`` (default ``$IPSINFRA_JOURNAL_PASSWORD_FILE``; one
    line), or from libpq (``$PGPASSWORD``, ``~/.pgpass``); :attr:`url` and every
    message show it masked. ``key``: the HMAC key lines are written and
    verified with; by default :func:`load_key` (the environment), ``None`` for
    none. ``create=False`` opens an existing journal to read: a missing file is
    :class:`JournalNotFound` (nothing is created) and an old schema is read as
    it is, not migrated.
    """

    def __init__(
        self,
        url: str | Path | None = None,
        *,
        key: bytes | _FromEnv | None = FROM_ENV,
        create: bool = True,
        password_file: str | Path | None = None,
    ) -> None:
        text = to_url(url, create=create) if url is not None else default_journal_url(create=create)
        try:
            self._url = resolve_url(text, password_file)
        except InvalidInput:  # the password file: its own message
            raise
        except (SQLAlchemyError, ValueError) as exc:
            reason = "" if isinstance(exc, SQLAlchemyError) else f" ({exc})"
            raise JournalUnreadable(
                f"journal {safe_url(text)}: not a path or an SQLAlchemy URL{reason}"
            ) from None
        self._backend: Backend = backend_for(self._url)
        self._key: bytes | None = load_key() if key is FROM_ENV else key
        if self._key is not None and len(self._key) < MIN_KEY_BYTES:
            raise InvalidInput(f"journal.key: shorter than {MIN_KEY_BYTES} bytes")
        if not create:
            absent = self._backend.absent()
            if absent is not None:
                raise JournalNotFound(absent)
        try:
            self._engine = self._backend.make_engine()
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            # ImportError: no driver for this backend ("No module named 'psycopg'").
            raise JournalUnreadable(
                f"journal {self._safe_url}: cannot open: {exc.__class__.__name__}: {str(exc)[:160]}"
            ) from None
        try:
            if create:
                # One transaction under the writers' lock: processes that open a new
                # journal at once create and migrate it once, in turn.
                with self._engine.begin() as conn:
                    self._backend.lock_chain(conn)
                    legacy = self._backend.create_schema(conn)
                    if legacy:
                        self._record_migration(conn, legacy)
            self._journal_cols, self._state_cols = self._backend.columns(self._engine)
        except JournalError:
            self._engine.dispose()
            raise
        except SQLAlchemyError as exc:
            self._engine.dispose()
            cls = JournalError if create else JournalUnreadable
            raise cls(f"journal {self._safe_url}: cannot open: {db_reason(exc)}") from exc

    def _record_migration(self, conn: Connection, legacy: list[dict[str, Any]]) -> None:
        """One ``journal.migrate`` line: the count and digest of the state rows written
        before the state was chained (they stay as they are; ``verify`` checks the digest)."""
        self._append_in(
            conn,
            {
                "actor": clean_text(default_actor(), "actor")[:MAX_NAME],
                "action": MIGRATE_ACTION,
                "target": state_table.name,
                "before": None,
                "after": {
                    "legacy_state_rows": len(legacy),
                    "legacy_state_last_id": legacy[-1]["id"],
                    "legacy_state_digest": legacy_digest(legacy),
                },
                "result": "ok",
                "detail": "state rows written before the state was chained: count and digest",
            },
            now(),
        )

    @property
    def key(self) -> bytes | None:
        """The HMAC key lines are written and checked with (None: hash chain only)."""
        return self._key

    @property
    def url(self) -> str:
        """The journal's URL as messages show it: the password masked (:func:`safe_url`)."""
        return safe_url(self._url)

    @property
    def backend(self) -> str:
        """``sqlite``, ``postgresql``... (SQLAlchemy's backend name)."""
        return self._backend.name

    @property
    def _safe_url(self) -> str:
        return safe_url(self._url)

    # --- context manager ------------------------------------------------
    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- writing --------------------------------------------------------
    def record(
        self,
        action: str,
        target: str,
        *,
        result: str = "ok",
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        detail: str = "",
        actor: str | None = None,
        secrets: Iterable[str] = (),
    ) -> JournalEntry:
        """Append one line and return it as written (redacted).

        ``secrets`` are strings (passwords, tokens) to blank out wherever they
        appear; keys that look like secrets (``password``, ``api_token``...) are
        masked whatever their value.
        """
        if result not in RESULTS:
            raise InvalidInput(f"journal.result: value {result!r}: must be one of {', '.join(RESULTS)}")
        if not action:
            raise InvalidInput("journal.action: value '': must not be empty")
        secret_list = sorted({s for s in secrets if s}, key=len, reverse=True)
        fields: dict[str, Any] = {
            "actor": clean_text(redact_sorted(actor, secret_list), "actor", limit=MAX_NAME)
            if actor
            else clean_text(redact_sorted(default_actor(), secret_list), "actor")[:MAX_NAME],
            "action": clean_text(redact_sorted(action, secret_list), "action", limit=MAX_NAME),
            "target": clean_text(redact_sorted(target, secret_list), "target"),
            # A JSON round trip now, so the hash is of exactly what verify re-reads.
            "before": None if before is None else json.loads(canonical(redact_sorted(before, secret_list))),
            "after": None if after is None else json.loads(canonical(redact_sorted(after, secret_list))),
            "result": result,
            "detail": clean_text(redact_sorted(detail, secret_list), "detail"),
        }
        return JournalEntry.model_validate(
            self._write(action, lambda conn: self._append_in(conn, fields, now()))
        )

    def _write(self, what: str, work: Any) -> Any:
        """Run ``work(conn)`` in one transaction, again when another writer took the same seq first."""
        last_exc: Exception | None = None
        for attempt in range(APPEND_ATTEMPTS):
            try:
                with self._engine.begin() as conn:
                    return work(conn)
            except IntegrityError as exc:
                # Another writer took this seq first (no table lock outside SQLite): retry.
                last_exc = exc
                time.sleep(min(0.01 * 2**attempt, 0.5))
            except SQLAlchemyError as exc:
                raise JournalError(
                    f"journal {self._safe_url}: cannot append {what}: {db_reason(exc)}"
                ) from exc
        raise JournalError(
            f"journal {self._safe_url}: cannot append {what} after {APPEND_ATTEMPTS} attempts: "
            f"{last_exc.__class__.__name__}"
        )

    def _append_in(self, conn: Connection, fields: Mapping[str, Any], ts: str) -> dict[str, Any]:
        """Append one line inside the caller's transaction; return it as written."""
        return self._append_many_in(conn, [fields], ts)[0]

    def _append_many_in(
        self, conn: Connection, many: list[Mapping[str, Any]], ts: str
    ) -> list[dict[str, Any]]:
        """Append lines in order inside the caller's transaction: one head read, one insert."""
        t = journal_table
        self._backend.lock_chain(conn)
        head = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
        seq = 0 if head is None else head.seq
        prev_hash = GENESIS_HASH if head is None else head.hash
        rows: list[dict[str, Any]] = []
        stored_rows: list[dict[str, Any]] = []
        for fields in many:
            seq += 1
            row: dict[str, Any] = {"seq": seq, "ts": ts, **fields, "prev_hash": prev_hash}
            row["hash"] = prev_hash = row_hash(row)
            row["mac"] = None if self._key is None else row_mac(self._key, row)
            stored = dict(row)
            for col in ("before", "after"):
                stored[col] = None if row[col] is None else canonical(row[col])
            rows.append(row)
            stored_rows.append(stored)
        conn.execute(t.insert(), stored_rows)
        return rows

    # --- reading --------------------------------------------------------
    def entries(
        self,
        *,
        target: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
        include_state: bool = False,
    ) -> list[JournalEntry]:
        """Lines in seq order, filtered by exact ``target``/``action`` and time.

        ``since`` is inclusive (a naive datetime is taken as UTC); ``limit`` keeps
        the NEWEST ``limit`` lines (still returned oldest first). The ``state.set``
        lines every state write adds are left out unless ``include_state`` (or
        ``action="state.set"``). A line that cannot be read is
        :class:`JournalUnreadable` naming its seq.
        """
        t = journal_table
        query = sa.select(*self._journal_columns())
        if target is not None:
            query = query.where(t.c.target == target)
        if action is not None:
            query = query.where(t.c.action == action)
        elif not include_state:
            query = query.where(t.c.action != STATE_ACTION)
        if since is not None:
            when = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
            query = query.where(t.c.ts >= when.astimezone(dt.UTC).isoformat(timespec="microseconds"))
        if limit is not None:
            if limit < 0:
                raise InvalidInput(f"journal.limit: value {limit!r}: must be >= 0")
            query = query.order_by(t.c.seq.desc()).limit(limit)
        else:
            query = query.order_by(t.c.seq)
        try:
            with self._engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot read: {db_reason(exc)}") from exc
        try:
            rows.sort(key=lambda r: r["seq"])
        except TypeError:
            raise JournalUnreadable(
                f"journal {self._safe_url}: a seq is not a number: run `ipsinfra journal verify`"
            ) from None
        return [self._entry(r) for r in rows]

    def _entry(self, row: Mapping[str, Any]) -> JournalEntry:
        try:
            return JournalEntry.model_validate({**row, **hash_fields(row)})
        except (ValueError, TypeError) as exc:  # JSONDecodeError and ValidationError are ValueErrors
            field = ""
            if isinstance(exc, json.JSONDecodeError):
                field = " (a JSON column is not JSON)"
            elif hasattr(exc, "errors"):
                field = " (" + ", ".join(str(e["loc"][0]) for e in exc.errors()[:3] if e.get("loc")) + ")"
            raise JournalUnreadable(
                f"journal {self._safe_url}: seq {row.get('seq')!r}: malformed line{field}: "
                "run `ipsinfra journal verify`"
            ) from None

    def _journal_columns(self) -> list[sa.Column[Any]]:
        """The journal's columns this database has (an unmigrated journal has no ``mac``)."""
        return [c for c in journal_table.c if c.name in self._journal_cols]

    def _iter_rows(self, conn: Connection) -> Iterator[dict[str, Any]]:
        query = sa.select(*self._journal_columns()).order_by(journal_table.c.seq)
        for r in conn.execute(query):
            yield dict(r._mapping)

    def head(self) -> Anchor:
        """The last line's seq and stored hash, ``0:000…`` for an empty journal.

        Keep it outside the database (a ticket, the shift hand-over, a log
        shipper) and pass it to :meth:`verify` later: a removed tail, an emptied
        table or a rewritten chain then shows.

        >>> str(journal.head())  # doctest: +SKIP
        '42:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
        """
        t = journal_table
        try:
            with self._engine.connect() as conn:
                last = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot read: {db_reason(exc)}") from exc
        if last is None:
            return Anchor(seq=0, hash=GENESIS_HASH)
        try:
            return Anchor(seq=int(last.seq), hash=str(last.hash))
        except (ValueError, TypeError):
            raise JournalUnreadable(
                f"journal {self._safe_url}: the last line's seq {last.seq!r} is not a number"
            ) from None

    def verify(self, expect: Anchor | str | None = None) -> VerifyReport:
        """Walk the hash chain; name every line that was edited, removed or reordered.

        With ``expect`` (an :class:`Anchor` or ``"SEQ:HASH"`` taken earlier by
        :meth:`head`), a truncated tail, an emptied table or a chain rewritten
        before that point is found too. With a key, every line's MAC is checked
        (lines before the first keyed one are covered by its MAC, which signs
        their hash), so an edit with recomputed hashes shows without an anchor.
        The state table is checked against its ``state.set`` lines.
        """
        anchor = parse_anchor(expect) if isinstance(expect, str) else expect
        walk = ChainWalk(self._key, anchor)
        try:
            with self._engine.connect() as conn:
                for row in self._iter_rows(conn):
                    walk.add(row)
                state_rows = self._state_rows(conn)
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot read: {db_reason(exc)}") from exc
        walk.finish()
        state_checked = walk.check_state(state_rows, chained="seq" in self._state_cols)
        return VerifyReport(
            ok=not walk.problems,
            checked=walk.checked,
            problems=walk.problems,
            head=Anchor(seq=walk.last_seq, hash=walk.last_hash),
            macs_checked=walk.macs_ok,
            state_rows_checked=state_checked,
            notes=walk.notes,
        )

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection to read with; a database error is :class:`JournalError` naming the safe URL."""
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot read: {db_reason(exc)}") from exc

    def _state_rows(self, conn: Connection) -> list[dict[str, Any]]:
        if not self._state_cols:
            return []
        t = state_table
        cols = [c for c in t.c if c.name in self._state_cols]
        return [dict(r._mapping) for r in conn.execute(sa.select(*cols).order_by(t.c.id))]

    # --- key/value state ------------------------------------------------
    def get_state(self, key: str) -> dict[str, Any] | None:
        """The latest value stored under ``key``, or None."""
        t = state_table
        query = sa.select(t.c.value).where(t.c.key == key).order_by(t.c.id.desc()).limit(1)
        with self._reading() as conn:
            value = conn.execute(query).scalar_one_or_none()
        if value is None:
            return None
        loaded = self._state_value(key, value)
        return loaded if isinstance(loaded, dict) else None

    def _state_value(self, key: str, text: Any) -> Any:
        try:
            return json.loads(text)
        except (ValueError, TypeError):
            raise JournalUnreadable(
                f"journal {self._safe_url}: state {key!r}: value is not JSON: run `ipsinfra journal verify`"
            ) from None

    def latest_states(self, prefix: str) -> dict[str, dict[str, Any]]:
        """{key: latest value} of every key that starts with ``prefix``, in one query.

        The nightly audit reads its whole state (``boot:``, ``vds:``, ``ran:``) once
        instead of one query per VDS.
        """
        t = state_table
        newest = sa.select(sa.func.max(t.c.id)).where(t.c.key.startswith(prefix, autoescape=True))
        query = sa.select(t.c.key, t.c.value).where(t.c.id.in_(newest.group_by(t.c.key)))
        with self._reading() as conn:
            rows = conn.execute(query).all()
        states: dict[str, dict[str, Any]] = {}
        for key, value in rows:
            loaded = self._state_value(key, value)
            if isinstance(loaded, dict):
                states[key] = loaded
        return states

    def set_state(self, key: str, value: Mapping[str, Any]) -> None:
        """Store a new value under ``key`` (older values stay, as history; redacted too)."""
        self.set_states({key: value})

    def set_states(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        """Store several keys at once, in one transaction (the audit's ``boot:``/``ran:`` of every node).

        One commit instead of one per key: on SQLite each commit is an fsync.
        Each key is also a ``state.set`` line of the chain (target the key,
        ``after`` the value) and its row names that line's seq: the chain, an
        anchor and the key cover the state as they cover every action.
        """
        if any(not key for key in values):
            raise InvalidInput("journal.state key: value '': must not be empty")
        if not values:
            return
        texts = {
            clean_text(key, "state key", limit=MAX_NAME): canonical(redact_sorted(value, []))
            for key, value in values.items()
        }
        actor = clean_text(default_actor(), "actor")[:MAX_NAME]

        def work(conn: Connection) -> None:
            ts = now()
            lines = self._append_many_in(
                conn,
                [
                    {
                        "actor": actor,
                        "action": STATE_ACTION,
                        "target": key,
                        "before": None,
                        "after": json.loads(text),
                        "result": "ok",
                        "detail": "",
                    }
                    for key, text in texts.items()
                ],
                ts,
            )
            conn.execute(
                state_table.insert(),
                [
                    {"key": key, "ts": ts, "value": text, "seq": line["seq"]}
                    for (key, text), line in zip(texts.items(), lines, strict=True)
                ],
            )

        self._write(f"state {', '.join(list(texts)[:3])}", work)

    def state_history(self, key: str) -> list[tuple[dt.datetime, dict[str, Any]]]:
        """Every value ever stored under ``key``, oldest first."""
        t = state_table
        with self._reading() as conn:
            rows = conn.execute(sa.select(t.c.ts, t.c.value).where(t.c.key == key).order_by(t.c.id)).all()
        return [(dt.datetime.fromisoformat(r.ts), self._state_value(key, r.value)) for r in rows]
