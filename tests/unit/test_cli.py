from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ipsinfra import cli, passwords


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipsinfra.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_name() -> None:
    proc = run("name", "--order", "1234", "--node-ip", "185.12.34.56", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"name": "VPS1234(34.56)", "pve_name": "VPS1234-34-56"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["name", "--order", "12a4", "--node-ip", "185.12.34.56"], "order: value '12a4'"),
        (["name", "--order", "1234", "--node-ip", "300.1.1.1"], "node_ip: value '300.1.1.1'"),
        (["name", "--order", "1234", "--node-ip", "2001:db8::1"], "node_ip: value '2001:db8::1'"),
        (["password", "--length", "5"], "length: value 5"),
        (["inventory", "show", "-i", "/nonexistent/inv"], "/nonexistent/inv"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


@pytest.mark.parametrize(("workers", "extra"), [("0", []), ("-1", []), ("2", ["--fix"])])
def test_audit_bad_worker_count_exit_2(workers: str, extra: list[str], tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite3"
    proc = run("audit", "-i", "inventory/example", "--journal", str(journal), "--workers", workers, *extra)
    assert proc.returncode == 2, proc.stderr
    assert f"workers: value {workers}" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_usage_errors_exit_2() -> None:
    assert run("no-such-command").returncode == 2
    assert run("name").returncode == 2


def test_password_generate_and_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["password", "--json"]) == 0
    pw = json.loads(capsys.readouterr().out)["password"]
    assert passwords.problems(pw) == []
    monkeypatch.setattr(sys, "stdin", io.StringIO("Order1234!\n"))
    assert cli.main(["password", "--check", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["acceptable"] is False
    assert any("word + digits + symbol" in p for p in report["problems"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(pw + "\n"))
    assert cli.main(["password", "--check"]) == 0
    assert "acceptable" in capsys.readouterr().out
