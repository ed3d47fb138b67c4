"""Which inventory a command reads: -i, IPSINFRA_INVENTORY, ANSIBLE_INVENTORY, ansible.cfg, else exit 2.

Driven through the real CLI (``ipsinfra.cli.main``); ``inventory show --json``
prints the ``path`` it loaded, which says which step won. Every test runs in
a scratch directory with a scratch HOME and no system ansible.cfg, so the
machine's own settings never leak in.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
from pathlib import Path

import pytest

from ipsinfra import cli, inventory_source

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE = REPO / "inventory" / "example"
COMPLAINT = REPO / "tests" / "data" / "complaints" / "24_zeus_cnc.eml"
NONE_GIVEN = "ipsinfra: error: inventory: none given: pass -i DIR, or set IPSINFRA_INVENTORY"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch cwd (``work/``), HOME (``home/``); none of the four sources set."""
    for name in ("IPSINFRA_INVENTORY", "ANSIBLE_INVENTORY", "ANSIBLE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir(mode=0o755)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(inventory_source, "SYSTEM_CONFIG", tmp_path / "etc" / "ansible.cfg")
    monkeypatch.chdir(work)
    return tmp_path


def inv(where: Path) -> Path:
    """A copy of the example inventory at ``where``."""
    shutil.copytree(EXAMPLE, where)
    return where


def cfg(path: Path, inventory: str | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = f"inventory = {inventory}\n" if inventory is not None else ""
    path.write_text(f"[defaults]\nforks = 5\n{line}", encoding="utf-8")
    return path


def loaded(capsys: pytest.CaptureFixture[str], *args: str) -> Path:
    """The inventory ``inventory show`` read (exit 0 required)."""
    code = cli.main(["inventory", "show", "--json", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return Path(json.loads(captured.out)["path"]).resolve()


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one line a refused command printed (exit 2, nothing on stdout)."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert captured.out == ""
    return lines[0]


# --------------------------------------------------------------------------- precedence


def test_option_wins_over_everything(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c, d = (inv(world / n) for n in ("a", "b", "c", "d"))
    monkeypatch.setenv("IPSINFRA_INVENTORY", str(b))
    monkeypatch.setenv("ANSIBLE_INVENTORY", str(c))
    cfg(world / "work" / "ansible.cfg", str(d))
    assert loaded(capsys, "-i", str(a)) == a.resolve()
    assert loaded(capsys, "--inventory", str(a)) == a.resolve()


def test_ipsinfra_inventory_wins_over_ansible(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    b, c, d = (inv(world / n) for n in ("b", "c", "d"))
    monkeypatch.setenv("IPSINFRA_INVENTORY", str(b))
    monkeypatch.setenv("ANSIBLE_INVENTORY", str(c))
    cfg(world / "work" / "ansible.cfg", str(d))
    assert loaded(capsys) == b.resolve()


def test_ansible_inventory_wins_over_ansible_cfg(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    c, d = inv(world / "c"), inv(world / "d")
    monkeypatch.setenv("ANSIBLE_INVENTORY", str(c))
    cfg(world / "work" / "ansible.cfg", str(d))
    assert loaded(capsys) == c.resolve()


def test_ansible_inventory_list_first_directory_relative_to_cwd(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = inv(world / "work" / "inventory" / "site")
    inv(world / "work" / "inventory" / "other")
    (world / "work" / "static.ini").write_text("[web]\nw1\n", encoding="utf-8")
    # Ansible's own list syntax: a host list, a missing path, a file, then the directories.
    monkeypatch.setenv(
        "ANSIBLE_INVENTORY", "localhost, missing/dir, static.ini,inventory/site,inventory/other"
    )
    assert loaded(capsys) == site.resolve()


def test_ansible_inventory_only_entry_may_be_a_hosts_file(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = inv(world / "site")
    monkeypatch.setenv("ANSIBLE_INVENTORY", f"{site / 'hosts.yml'},")
    assert loaded(capsys) == (site / "hosts.yml").resolve()


def test_ansible_inventory_without_a_directory_is_exit_2(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANSIBLE_INVENTORY", "localhost,db1")
    line = refused(capsys, "inventory", "show")
    assert "value 'localhost,db1' (from ANSIBLE_INVENTORY): none of its entries is a directory" in line
    monkeypatch.setenv("ANSIBLE_INVENTORY", "inventory/gone")
    line = refused(capsys, "inventory", "show")
    assert "inventory/gone" in line and "(from ANSIBLE_INVENTORY): no such directory" in line


def test_ansible_cfg_in_cwd_relative_to_the_cfg(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = inv(world / "work" / "inventory" / "site")
    cfg(world / "work" / "ansible.cfg", "inventory/site ; Ansible strips ';' comments")
    assert loaded(capsys) == site.resolve()


def test_ansible_config_env_wins_and_paths_follow_the_cfg_not_the_cwd(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = inv(world / "project" / "inventory" / "prod")
    inv(world / "work" / "inventory" / "prod")  # the cwd's twin must not be taken
    cfg(world / "work" / "ansible.cfg", "inventory/prod")
    mine = cfg(world / "project" / "ansible.cfg", "inventory/prod")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(mine))
    assert loaded(capsys) == project.resolve()
    monkeypatch.setenv("ANSIBLE_CONFIG", str(mine.parent))  # a directory: its ansible.cfg
    assert loaded(capsys) == project.resolve()


def test_ansible_config_that_does_not_exist_falls_through_as_in_ansible(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = inv(world / "work" / "site")
    cfg(world / "work" / "ansible.cfg", "site")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(world / "nowhere.cfg"))
    assert loaded(capsys) == site.resolve()


def test_home_cfg_then_system_cfg(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home_inv, etc_inv = inv(world / "home" / "fleet"), inv(world / "etc" / "fleet")
    cfg(world / "etc" / "ansible.cfg", "fleet")
    assert loaded(capsys) == etc_inv.resolve()
    cfg(world / "home" / ".ansible.cfg", "~/fleet")
    assert loaded(capsys) == home_inv.resolve()


def test_only_the_first_cfg_found_is_read(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As Ansible: ./ansible.cfg without an inventory line hides ~/.ansible.cfg's."""
    inv(world / "home" / "fleet")
    cfg(world / "home" / ".ansible.cfg", "~/fleet")
    here = cfg(world / "work" / "ansible.cfg", None)
    line = refused(capsys, "inventory", "show")
    assert line.startswith(NONE_GIVEN) and line.endswith(f"{here} sets none")


def test_world_writable_cwd_cfg_is_skipped_as_in_ansible(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home_inv = inv(world / "home" / "fleet")
    cfg(world / "home" / ".ansible.cfg", "~/fleet")
    inv(world / "work" / "site")
    cfg(world / "work" / "ansible.cfg", "site")
    os.chmod(world / "work", 0o777)
    try:
        assert loaded(capsys) == home_inv.resolve()
    finally:
        os.chmod(world / "work", 0o755)


def test_unreadable_cfg_is_exit_2_naming_it(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = world / "work" / "ansible.cfg"
    bad.write_text("inventory = before any section\n", encoding="utf-8")
    line = refused(capsys, "inventory", "show")
    assert f"inventory: {bad}: not a readable ansible.cfg" in line


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("source", "value"),
    [("-i", "/nonexistent/inv"), ("IPSINFRA_INVENTORY", "/nonexistent/inv")],
)
def test_missing_directory_is_exit_2_naming_value_and_source(
    world: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: str,
    value: str,
) -> None:
    args = ["inventory", "show"]
    if source == "-i":
        args += ["-i", value]
    else:
        monkeypatch.setenv(source, value)
    line = refused(capsys, *args)
    assert line == f"ipsinfra: error: inventory: value '{value}' (from {source}): no such directory"


def commands(tmp: Path) -> dict[str, list[str]]:
    """A run of each command that reads (and may write back) the inventory, minus the inventory."""
    journal = ["--journal", str(tmp / "journal.sqlite3")]
    order = "--order 1234 --node kvm1 --client c1001 --vcpus 1 --memory 1024 --disk 10 --os debian-12"
    letters = ["--abuse-from", "abuse@ips.example", "--outbox", str(tmp / "outbox"), "--no-dnsbl"]
    return {
        "inventory show": ["inventory", "show"],
        "provision": ["provision", *order.split(), "--show-password", *journal],
        "migrate": ["migrate", "VPS1001(113.10)", "--to", "kvm2", *journal],
        "audit": ["audit", *journal],
        "block": ["block", "203.0.113.101", "--reason", "malware", *journal],
        "unblock": ["unblock", "203.0.113.101", *journal],
        "resize": ["resize", "VPS1001(113.10)", "--ticket", "1", "--vcpus", "2", *journal],
        "abuse handle": ["abuse", "handle", str(COMPLAINT), *letters, *journal],
        "portmap": ["portmap", "--write", *journal],
    }


def snapshot(root: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every path under ``root``; a file's bytes and mtime."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else None
        for p in root.rglob("*")
    }


@pytest.mark.parametrize("command", sorted(commands(Path())))
def test_nothing_set_is_exit_2_and_touches_nothing(
    world: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """From a checkout's root (its example inventory, its ansible.cfg): refused, nothing written."""
    inv(world / "work" / "inventory" / "example")
    shutil.copy(REPO / "ansible.cfg", world / "work" / "ansible.cfg")
    before = snapshot(world)
    line = refused(capsys, *commands(world)[command])
    assert line == (
        "ipsinfra: error: inventory: none given: pass -i DIR, or set IPSINFRA_INVENTORY "
        "(or ANSIBLE_INVENTORY / ansible.cfg [defaults] inventory); "
        f"{world / 'work' / 'ansible.cfg'} sets none"
    )
    assert snapshot(world) == before  # no journal, no outbox, no inventory edit


def test_nothing_set_and_no_cfg_at_all(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(capsys, "inventory", "show")
    assert line == (
        "ipsinfra: error: inventory: none given: pass -i DIR, or set IPSINFRA_INVENTORY "
        "(or ANSIBLE_INVENTORY / ansible.cfg [defaults] inventory)"
    )


# --------------------------------------------------------------------------- help and the repo's cfg


@pytest.mark.parametrize("command", [*sorted(commands(Path())), "trust"])
def test_help_says_where_the_inventory_comes_from(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert cli.main([*command.split(), "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "-i" in text and "--inventory" in text
    for needle in ("$IPSINFRA_INVENTORY", "$ANSIBLE_INVENTORY", "$ANSIBLE_CONFIG", "./ansible.cfg"):
        assert needle in text, (command, needle)
    assert "inventory/example" not in text


@pytest.mark.parametrize("path", ["ansible.cfg", "src/ipsinfra/data/ansible.cfg"])
def test_shipped_ansible_cfgs_name_no_inventory(path: str) -> None:
    """Else running from the repo root would silently read (and write back) the example again."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read(REPO / path, encoding="utf-8")
    assert not parser.has_option("defaults", "inventory")
