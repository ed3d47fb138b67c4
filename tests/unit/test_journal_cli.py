"""`ipsinfra journal head|verify|list` (#18 part 6): anchors and keys through the real CLI.

Exit codes: 0 intact, 1 tampered, 2 the journal cannot be read or the input is bad (one line on stderr).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ipsinfra import cli
from ipsinfra.journal import Journal
from tests.unit.journal_tamper import (
    KEY,
    delete_middle_and_rehash,
    edit_and_rehash,
    edit_state_and_rehash,
    empty_table,
    sql,
    truncate_tail,
)

TARGET = "kvm1/VPS1234(34.56)"


@pytest.fixture(autouse=True)
def _no_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IPSINFRA_JOURNAL_KEY", "IPSINFRA_JOURNAL_KEY_FILE", "IPSINFRA_JOURNAL"):
        monkeypatch.delenv(name, raising=False)


def _fill(path: Path) -> None:
    with Journal(path, key=KEY) as j:
        for i in range(1, 5):
            j.record("vds.stop", TARGET, before={"i": i}, detail="§5.2 — проверка")
        j.set_state("boot:kvm1", {"boot_id": "aaa"})
        j.set_state("outage:kvm1", {"status": "open"})
        j.record("vds.start", TARGET)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli.main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def run_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IPSINFRA_JOURNAL")}
    return subprocess.run(
        [sys.executable, "-m", "ipsinfra.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
    )


def _head(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    rc, out, err = run(capsys, "journal", "head", "--journal", str(path))
    assert rc == 0, err
    return out.strip()


def test_head_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    with Journal(path, key=None) as j:
        last = j.entries(include_state=True)[-1]
    assert _head(capsys, path) == f"7:{last.hash}"
    rc, out, _ = run(capsys, "journal", "head", "--journal", str(path), "--json")
    assert rc == 0
    assert json.loads(out) == {"seq": 7, "hash": last.hash, "head": f"7:{last.hash}"}


def test_verify_an_intact_journal_against_its_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    anchor = _head(capsys, path)
    rc, out, _ = run(capsys, "journal", "verify", "--journal", str(path), "--expect-head", anchor)
    assert rc == 0, out
    assert out.splitlines() == [
        "note: 7 line(s) carry a MAC, not checked: give the key "
        "($IPSINFRA_JOURNAL_KEY, $IPSINFRA_JOURNAL_KEY_FILE or --key-file)",
        f"7 lines, 2 state rows checked: chain intact; matches the anchor at seq 7; head {anchor}",
    ]
    rc, out, _ = run(capsys, "journal", "verify", "--journal", str(path), "--expect-head", anchor, "--json")
    data = json.loads(out)
    assert (rc, data["ok"], data["head"], data["expect_head"], data["keyed"]) == (
        0,
        True,
        anchor,
        anchor,
        False,
    )


ANCHOR_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncate tail": (truncate_tail, "journal ends at seq 5, but the anchor is at seq 7 (tail truncated)"),
    "empty table": (empty_table, "journal is empty, but the anchor is at seq 7 (table emptied)"),
    "edit and rehash": (edit_and_rehash, "seq 7: hash differs from the anchor's"),
    "delete middle, renumber, rehash": (
        delete_middle_and_rehash,
        "journal ends at seq 6, but the anchor is at seq 7",
    ),
    "edit state row and its line, rehash": (
        lambda p: edit_state_and_rehash(p, "outage:kvm1"),
        "seq 7: hash differs from the anchor's",
    ),
}


@pytest.mark.parametrize("case", list(ANCHOR_CASES))
def test_expect_head_catches(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    anchor = _head(capsys, path)
    tamper, needle = ANCHOR_CASES[case]
    tamper(path)
    rc, out, _ = run(capsys, "journal", "verify", "--journal", str(path))
    assert rc == 0, f"the chain alone sees this case, so it tests nothing new: {out}"
    rc, out, err = run(capsys, "journal", "verify", "--journal", str(path), "--expect-head", anchor)
    assert rc == 1, out + err
    assert needle in out
    assert out.rstrip().endswith("checked: TAMPERED")


KEY_CASES: dict[str, Callable[[Path], None]] = {
    "edit and rehash": edit_and_rehash,
    "delete middle, renumber, rehash": delete_middle_and_rehash,
    "edit state row and its line, rehash": lambda p: edit_state_and_rehash(p, "boot:kvm1"),
}


@pytest.mark.parametrize("how", ["env", "key file", "key file env"])
@pytest.mark.parametrize("case", list(KEY_CASES))
def test_the_key_catches_without_an_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str, how: str
) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    keyfile = tmp_path / "journal.key"
    keyfile.write_bytes(KEY + b"\n")
    args = ["journal", "verify", "--journal", str(path)]
    if how == "env":
        monkeypatch.setenv("IPSINFRA_JOURNAL_KEY", KEY.decode())
    elif how == "key file":
        args += ["--key-file", str(keyfile)]
    else:
        monkeypatch.setenv("IPSINFRA_JOURNAL_KEY_FILE", str(keyfile))
    rc, out, _ = run(capsys, *args)
    assert rc == 0, out
    assert "7 lines, 2 state rows, 7 MACs checked: chain intact" in out
    KEY_CASES[case](path)
    rc, out, err = run(capsys, *args)
    assert rc == 1, out + err
    assert "MAC does not match (line forged, or rewritten without the key)" in out
    assert KEY.decode() not in out + err


# --- unreadable journals and bad input: exit 2, one line, nothing created ------------------
@pytest.mark.parametrize("command", ["verify", "list", "head"])
@pytest.mark.parametrize("option", ["--journal", "--url"])
def test_a_missing_journal_is_exit_2_and_is_not_created(tmp_path: Path, command: str, option: str) -> None:
    missing = tmp_path / "typo" / "journal.sqlite3"
    proc = run_process("journal", command, option, str(missing))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("ipsinfra: warning:")]
    assert errors == [f"ipsinfra: error: journal {missing}: no such file (reading creates none)"]
    assert "Traceback" not in proc.stderr
    assert not missing.parent.exists()


def test_the_default_journal_is_not_created_by_reading_it(tmp_path: Path) -> None:
    missing = tmp_path / "state" / "journal.sqlite3"
    proc = run_process("journal", "verify", env={"IPSINFRA_JOURNAL": str(missing)})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no such file" in proc.stderr
    assert not missing.parent.exists()


def test_a_malformed_line_in_list_is_exit_2_one_line_and_tampered_in_verify(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    sql(path, """UPDATE journal SET "before" = '{broken' WHERE seq = 2""")
    proc = run_process("journal", "list", "--journal", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        f"ipsinfra: error: journal sqlite:///{path}: seq 2: malformed line (a JSON column is not JSON): "
        "run `ipsinfra journal verify`"
    ]
    proc = run_process("journal", "verify", "--journal", str(path))
    assert proc.returncode == 1
    assert "- seq 2: content does not match its hash (line edited)" in proc.stdout


def test_a_file_that_is_not_a_database_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("shift hand-over notes, not a journal\n" * 50)
    rc, _, err = run(capsys, "journal", "verify", "--journal", str(path))
    assert rc == 2
    assert err.count("\n") == 1 and "cannot open" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--expect-head", "7"], "journal.expect_head: value '7': must be SEQ:HASH"),
        (["--expect-head", "7:nothex"], "journal.expect_head: value '7:nothex'"),
        (["--key-file", "/nonexistent/key"], "journal.key_file: value '/nonexistent/key': cannot read"),
    ],
)
def test_bad_input_is_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    rc, out, err = run(capsys, "journal", "verify", "--journal", str(path), *args)
    assert (rc, out) == (2, "")
    assert err.count("\n") == 1 and needle in err, err


def test_a_short_key_is_refused_without_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    monkeypatch.setenv("IPSINFRA_JOURNAL_KEY", "hunter2")
    rc, _, err = run(capsys, "journal", "verify", "--journal", str(path))
    assert rc == 2
    assert "shorter than 16 bytes" in err and "hunter2" not in err


def test_url_is_a_deprecated_alias_of_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    proc = run_process("journal", "verify", "--url", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "ipsinfra: warning: --url is deprecated; use --journal\n"
    assert "chain intact" in proc.stdout
    proc = run_process("journal", "list", "--url", str(path), "--journal", str(tmp_path / "other.sqlite3"))
    assert proc.returncode == 2
    assert "--url (deprecated) and --journal name different journals" in proc.stderr
    help_text = run_process("journal", "verify", "--help").stdout
    assert "--journal" in help_text and "--url" not in help_text


def test_list_hides_state_lines_unless_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    rc, out, _ = run(capsys, "journal", "list", "--journal", str(path), "--json")
    assert rc == 0
    assert [e["action"] for e in json.loads(out)] == ["vds.stop"] * 4 + ["vds.start"]
    rc, out, _ = run(capsys, "journal", "list", "--journal", str(path), "--json", "--state", "--limit", "3")
    assert [(e["seq"], e["action"], e["target"]) for e in json.loads(out)] == [
        (5, "state.set", "boot:kvm1"),
        (6, "state.set", "outage:kvm1"),
        (7, "vds.start", TARGET),
    ]
