"""What someone who can write the journal's database (and knows its format) does to it.

Used by the journal tests: each helper edits the SQLite file directly, as an
attacker would, recomputing the hash chain where that hides the edit from the
chain alone. The MAC needs the key, which the attacker does not have: stale MACs
stay as they were.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ipsinfra.journal import GENESIS_HASH, _hash_fields, _row_hash

KEY = b"k" * 32  # a test key; real ones come from $IPSINFRA_JOURNAL_KEY or a key file


def sql(path: Path, *statements: str, params: tuple[Any, ...] = ()) -> None:
    db = sqlite3.connect(path)
    with db:
        for statement in statements:
            db.execute(statement, params)
    db.close()


def journal_rows(path: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM journal ORDER BY seq")]
    db.close()
    return rows


def rehash_from(path: Path, first: int) -> None:
    """Recompute prev_hash and hash of every line from seq ``first`` on (what verify alone cannot see)."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    with db:
        prev = GENESIS_HASH
        for row in [dict(r) for r in db.execute("SELECT * FROM journal ORDER BY seq")]:
            if row["seq"] >= first:
                row["prev_hash"] = prev
                row["hash"] = _row_hash(_hash_fields(row))
                db.execute(
                    "UPDATE journal SET prev_hash = ?, hash = ? WHERE seq = ?",
                    (row["prev_hash"], row["hash"], row["seq"]),
                )
            prev = row["hash"]
    db.close()


def truncate_tail(path: Path, lines: int = 2) -> None:
    """Remove the last lines, and the state rows they wrote (else the state check sees it)."""
    sql(
        path,
        f"DELETE FROM journal WHERE seq > (SELECT MAX(seq) - {lines} FROM journal)",
        "DELETE FROM journal_state WHERE seq > (SELECT MAX(seq) FROM journal)",
    )


def empty_table(path: Path) -> None:
    sql(path, "DELETE FROM journal", "DELETE FROM journal_state")


def edit_and_rehash(path: Path, seq: int = 2) -> None:
    sql(path, f"UPDATE journal SET detail = 'nothing happened', result = 'refused' WHERE seq = {seq}")
    rehash_from(path, seq)


def delete_middle_and_rehash(path: Path, seq: int = 2) -> None:
    """Delete a line, renumber the later ones and recompute the chain: seamless to the chain alone."""
    sql(path, f"DELETE FROM journal WHERE seq = {seq}", f"UPDATE journal SET seq = seq - 1 WHERE seq > {seq}")
    sql(path, f"UPDATE journal_state SET seq = seq - 1 WHERE seq > {seq}")
    rehash_from(path, seq)


def edit_state_and_rehash(path: Path, key: str) -> None:
    """Change the latest value of a state key, its state.set line to match, and rehash from there."""
    new = json.dumps({"boot_id": "forged"}, separators=(",", ":"))
    db = sqlite3.connect(path)
    with db:
        sid, seq = db.execute(
            "SELECT id, seq FROM journal_state WHERE key = ? ORDER BY id DESC LIMIT 1", (key,)
        ).fetchone()
        db.execute("UPDATE journal_state SET value = ? WHERE id = ?", (new, sid))
        db.execute('UPDATE journal SET "after" = ? WHERE seq = ?', (new, seq))
    db.close()
    rehash_from(path, seq)
