"""Issue #20 Build 2: one CLI grammar. One test (at least) per inconsistency the issue lists.

Driven through the real entry point (``ipsinfra.cli.main``, or a subprocess of
it where a terminal or the shell-completion protocol is needed). Backends are
real: libvirt's test driver (``test:///`` node files) for audit, block and
migrate plans, the lab's fakepve over HTTPS for provisioning, migration,
resize and ``audit --fix``, the lab's SSH switch for ``portmap``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pty
import select
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from ipsinfra import cli, inventory, naming
from ipsinfra.hypervisors import DriverPool
from ipsinfra.models import Disk, Nic, Vds, VdsSpec
from tests.conftest import require_module
from tests.nodefile import node_file
from tests.unit.fleetkit import fleet

REPO = Path(__file__).resolve().parent.parent.parent
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
KVM = {"kvm1": "10.0.1.11", "kvm2": "10.0.2.12"}
VPS = "VPS1001(1.11)"  # on kvm1, IP 198.51.100.1
SWITCH_PW = "lab-pw-grammar-7c2d"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def walk(command: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the click tree typer builds, groups included, with its path."""
    command = cli.command() if command is None else command
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


def leaves() -> list[tuple[str, ...]]:
    return [p for p, c in walk() if p and not getattr(c, "commands", None)]


def visible_options(command: Any) -> set[str]:
    return {o for p in command.params if not getattr(p, "hidden", False) for o in p.opts}


def all_options(command: Any) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


# --------------------------------------------------------------------------- backends


def _node_file(tmp: Path, name: str, ip: str, vds: list[tuple[int, str]]) -> Path:
    return node_file(tmp, name, ip, vds)


@pytest.fixture(autouse=True)
def _own_lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands (and their subprocesses) take their per-VDS locks here, not in the
    user's shared lock folder another test run may be holding at the same moment."""
    monkeypatch.setenv("IPSINFRA_LOCK_DIR", str(tmp_path / "locks"))


@pytest.fixture
def kvm_inv(tmp_path: Path) -> Path:
    """Two libvirt test-driver nodes (each CLI run opens them afresh); VPS1001(1.11) on kvm1."""
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    layout = {"kvm1": [(1001, "198.51.100.1")], "kvm2": []}
    hosts = []
    for name, ip in KVM.items():
        path = _node_file(tmp_path, name, ip, layout[name])
        node = {"main_ip": ip, "uri": f"test://{path}", "cpus": 8, "vnc_listen": "127.0.0.1"}
        (inv / "host_vars" / f"{name}.yml").write_text(json.dumps(node), encoding="utf-8")
        for order, vip in layout[name]:
            house = naming.vps_name(order, ip)
            record = {
                "vds_name": house,
                "node": name,
                "client": "c1",
                "vcpus": 1,
                "memory_mib": 64,
                "ips": [vip],
                "nics": [{"mac": f"52:54:00:00:{order % 256:02x}:01"}],
            }
            hosts.append(naming.pve_safe_name(house))
            (inv / "host_vars" / f"{hosts[-1]}.yml").write_text(json.dumps(record), encoding="utf-8")
    groups = {
        "sites": {"children": {"lab": {"hosts": dict.fromkeys(KVM)}}},
        "nodes": {"children": {"libvirt_nodes": {"hosts": dict.fromkeys(KVM)}}},
        "vds": {"hosts": dict.fromkeys(hosts)},
    }
    (inv / "hosts.yml").write_text(json.dumps({"all": {"children": groups}}), encoding="utf-8")
    (inv / "group_vars" / "libvirt_nodes.yml").write_text('{"kind": "libvirt"}', encoding="utf-8")
    (inv / "group_vars" / "lab.yml").write_text('{"ipsinfra_site": {"dc": "Lab DC"}}', encoding="utf-8")
    clients = {
        "ipsinfra_clients": {"c1": {"name": "Example Ltd", "email": "admin@c1.example", "services": 2}}
    }
    (inv / "group_vars" / "all" / "clients.yml").write_text(json.dumps(clients), encoding="utf-8")
    return inv


@pytest.fixture(scope="module")
def pve() -> Iterator[Any]:
    require_module("fakepve", "the Proxmox tier runs on fakepve (pip install fakepve)")
    from ipsinfra.lab.pve import start_fake_pve

    with start_fake_pve({"pve1": 8, "pve2": 8}) as handle:
        yield handle


PVE_OLD, PVE_NEW = "VPS4001(34.56)", "VPS4001(77.88)"


def pve_inventory(pve: Any, tmp_path: Path, *, vds: bool, running: bool = True) -> Path:
    """pve1 (…34.56) and pve2 (…77.88); with ``vds``, VPS4001(34.56) on pve1, autostart on."""
    pve.clear_vms()
    pve1 = pve.node_model(
        "pve1", "10.0.34.56", site="msk1", vnc_listen="127.0.0.21", bridge="vmbr0", ip_pool=["10.0.34.100"]
    )
    pve2 = pve.node_model(
        "pve2", "10.0.77.88", site="msk1", vnc_listen="127.0.0.22", bridge="vmbr0", ip_pool=["10.0.77.100"]
    )
    records = (Vds(name=PVE_OLD, node="pve1", vcpus=2, memory_mib=256, autostart=True),) if vds else ()
    the_fleet = fleet(pve1, pve2, vds=records)
    if vds:
        spec = VdsSpec(
            name=PVE_OLD,
            vcpus=2,
            memory_mib=256,
            disks=[Disk(size_gib=1)],
            nics=[Nic(mac="52:54:00:00:0f:a1", bridge="vmbr0")],
            vnc_listen=ipaddress.ip_address("127.0.0.21"),
            autostart=True,
            os="debian12",
        )
        with DriverPool(the_fleet.nodes) as pool:
            pool.get("pve1").define(spec, start=running)
    return inventory.dump(the_fleet, tmp_path / "inventory")


def pve_names(pve: Any) -> dict[str, str]:
    """VM name -> PVE node, read from the fake cluster itself."""
    names: dict[str, str] = {}
    pve.call(lambda: names.update({str(vm.config.get("name")): vm.node for vm in pve.pve.vms}))
    return names


# --------------------------------------------------------------------------- help, version, completion


def test_help_of_every_command_has_no_markup_leftovers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No RST double backticks, no ``<bool>`` placeholder for a flag, in any --help."""
    monkeypatch.setenv("COLUMNS", "200")
    paths = [p for p, _ in walk()]
    assert ("journal", "verify") in paths and ("portmap",) in paths and len(paths) > 20
    for path in paths:
        code, out, err = run(capsys, *path, "--help")
        assert code == 0, (path, err)
        assert "Usage: ipsinfra" in out, path
        assert "``" not in out, path
        assert "<bool>" not in out, path


def test_groups_list_their_subcommands_and_portmap_has_no_command_placeholder(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    for path, command in walk():
        code, out, _ = run(capsys, *path, "--help")
        usage = out.split("Usage:", 1)[1].splitlines()[0]
        subs = {n for n, c in getattr(command, "commands", {}).items() if not c.hidden}
        if "COMMAND" in usage:
            assert subs, f"{path}: usage promises a COMMAND but there is none"
            listed = out.split("Commands", 1)[1]
            assert all(f" {n} " in listed for n in subs), (path, subs)
        else:
            assert not subs, path
    code, out, _ = run(capsys, "portmap", "--help")
    assert code == 0 and "COMMAND" not in out
    assert all(flag in out for flag in ("--check", "--write", "--set-descriptions", "--json", "--workers"))


def test_version_comes_from_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--version")
    assert (code, out, err) == (0, f"ipsinfra {version('ipsinfra')}\n", "")
    code, out, _ = run(capsys, "--help")
    assert "--version" in out


def test_completion_script_and_a_real_completion(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for shell, needle in (
        ("bash", "complete -o default -F"),
        ("zsh", "compdef"),
        ("fish", "complete --command"),
    ):
        code, out, err = run(capsys, "completion", shell)
        assert code == 0, err
        assert needle in out and "_IPSINFRA_COMPLETE" in out, shell
    # What bash asks when the user types `ipsinfra por<TAB>` and `ipsinfra journal v<TAB>`.
    for words, cword, expected in (("ipsinfra por", "1", "portmap"), ("ipsinfra journal v", "2", "verify")):
        monkeypatch.setenv("_IPSINFRA_COMPLETE", "complete_bash")
        monkeypatch.setenv("COMP_WORDS", words)
        monkeypatch.setenv("COMP_CWORD", cword)
        with pytest.raises(SystemExit) as done:
            cli.main([])
        assert done.value.code == 0
        assert expected in capsys.readouterr().out.split(), words
    monkeypatch.delenv("_IPSINFRA_COMPLETE")
    code, out, _ = run(capsys, "--help")
    assert "--install-completion" in out and "--show-completion" in out


def test_exit_codes_are_in_the_top_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    text = " ".join(out.replace("│", " ").split())
    assert code == 0
    assert "0 done; 1 failed, or findings to act on; 2 bad input" in text


# --------------------------------------------------------------------------- one name for one thing


def test_one_flag_name_for_one_thing_everywhere() -> None:
    """--vcpus/--memory/--disk, --journal, --workers: the old names are hidden aliases, nowhere visible."""
    commands = dict(walk())
    for path, command in commands.items():
        shown = visible_options(command)
        assert not shown & {"--cores", "--processes", "--url"}, path
        for param in command.params:
            if param.name in {"journal", "journal_url"} and not getattr(param, "hidden", False):
                assert param.opts == ["--journal"], (path, param.opts)
    for path in (("provision",), ("resize",)):
        assert {"--vcpus", "--memory", "--disk"} <= visible_options(commands[path]), path
    assert "--workers" in visible_options(commands[("audit",)])
    assert "--workers" in visible_options(commands[("portmap",)])
    # The old names still parse (hidden): scripts keep working.
    assert "--cores" in all_options(commands[("resize",)])
    assert "--processes" in all_options(commands[("audit",)])
    assert "--url" in all_options(commands[("journal", "head")])
    assert "--format" in all_options(commands[("audit",)])


# Commands that do not report: the lab story, and a completion script.
NO_JSON = {("demo",), ("completion",)}


def test_every_command_that_reports_takes_json() -> None:
    commands = dict(walk())
    missing = [p for p in leaves() if p not in NO_JSON and "--json" not in visible_options(commands[p])]
    assert missing == []


def test_resize_cores_is_a_hidden_deprecated_alias_of_vcpus(
    pve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = pve_inventory(pve, tmp_path, vds=True)
    base = ["resize", PVE_OLD, "--ticket", "7", "--check", "-i", str(inv), "--journal", str(tmp_path / "j")]
    code, new, err = run(capsys, *base, "--vcpus", "4", "--price", "vcpus=300", "--json")
    assert code == 0 and err == "", err
    code, old, err = run(capsys, *base, "--cores", "4", "--price", "vcpus=300", "--json")
    assert code == 0
    assert err == "ipsinfra: warning: --cores is deprecated; use --vcpus\n"
    assert json.loads(old) == json.loads(new)
    assert [(c["param"], c["before"], c["after"]) for c in json.loads(new)["plan"]["changes"]] == [
        ("cores", 2, 4)
    ]
    code, _, err = run(capsys, *base, "--vcpus", "4")
    assert code == 2 and err.startswith("ipsinfra: error: price vcpus:"), err  # named as the flag says
    code, _, err = run(capsys, *base, "--vcpus", "4", "--cores", "3")
    assert code == 2 and "vcpus: value 4: --cores (deprecated) says 3" in err


def test_journal_url_is_a_hidden_deprecated_alias_of_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ipsinfra.journal import Journal

    path = tmp_path / "j.sqlite3"
    with Journal(path) as jr:
        jr.record("test.line", "t1", result="ok")
    code, by_journal, err = run(capsys, "journal", "head", "--journal", str(path), "--json")
    assert code == 0 and err == ""
    code, by_url, err = run(capsys, "journal", "head", "--url", str(path), "--json")
    assert code == 0 and by_url == by_journal
    assert err == "ipsinfra: warning: --url is deprecated; use --journal\n"


def test_audit_workers_and_the_deprecated_processes(
    kvm_inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "audit",
        "-i",
        str(kvm_inv),
        "--journal",
        str(tmp_path / "j"),
        "--no-reach",
        "--recheck-delay",
        "0",
    ]
    code, out, err = run(capsys, *base, "--workers", "0")
    assert (code, out, err) == (2, "", "ipsinfra: error: workers: value 0: must be at least 1\n")
    code, out, err = run(capsys, *base, "--processes", "2", "--fix")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "ipsinfra: warning: --processes is deprecated; use --workers",
        "ipsinfra: error: processes: value 2: an audit with --fix runs in one process "
        "(its starts are journalled)",
    ]
    assert not (tmp_path / "j").exists()  # refused before anything was opened
    code, _, err = run(capsys, *base, "--workers", "1", "--json")
    assert code in (0, 1) and err == "", err
    code, _, err = run(capsys, *base, "--processes", "1", "--json")
    assert code in (0, 1) and "--processes is deprecated" in err


# --------------------------------------------------------------------------- --json, UTF-8


def test_audit_json_keeps_the_section_sign_and_the_fix_header_shows_the_state_after(
    pve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = pve_inventory(pve, tmp_path, vds=True, running=False)
    base = ["audit", "-i", str(inv), "--journal", str(tmp_path / "j"), "--no-reach", "--recheck-delay", "0"]
    code, out, _ = run(capsys, *base, "--json")
    assert code == 1
    assert "\\u00a7" not in out and "§5.2" in out
    report = json.loads(out)
    assert [f["check"] for f in report["findings"]] == ["vds_not_running"]
    code, legacy, _ = run(capsys, *base, "--format", "json")
    assert code == 1 and json.loads(legacy)["findings"] == report["findings"]
    code, _, err = run(capsys, *base, "--json", "--format", "junit")
    assert code == 2 and "format: value 'junit'" in err

    code, out, _ = run(capsys, *base)  # Markdown, before any fix
    assert code == 1 and "0 of 1 VDS running" in out
    code, out, _ = run(capsys, *base, "--fix")
    assert code == 0, out
    assert "1 of 1 VDS running" in out  # the header states the fleet AFTER the fix
    assert "### Fixed by this audit" in out and f"**{PVE_OLD}** on pve1" in out
    code, out, _ = run(capsys, *base, "--json")
    assert code == 0 and json.loads(out)["nodes"][0]["vds_running"] == 1


def test_json_everywhere_is_utf8_not_escaped(
    kvm_inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ipsinfra.journal import Journal

    code, out, _ = run(capsys, "inventory", "show", "-i", str(kvm_inv), "--json")
    assert code == 0 and json.loads(out)["vds"][VPS]["node"] == "kvm1"
    with Journal(tmp_path / "j") as jr:
        jr.record("vds.block", VPS, result="ok", detail="§7.2 блокировка")
    code, out, _ = run(capsys, "journal", "list", "--journal", str(tmp_path / "j"), "--json")
    assert code == 0 and "§7.2 блокировка" in out and "\\u" not in out
    assert json.loads(out)[-1]["detail"] == "§7.2 блокировка"


# --------------------------------------------------------------------------- VDS names


def test_migrate_and_resize_take_the_dns_safe_twin(
    pve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = pve_inventory(pve, tmp_path, vds=True)
    common = ["-i", str(inv), "--journal", str(tmp_path / "j"), "--no-write-back"]
    code, out, err = run(capsys, "migrate", "VPS4001-34-56", "--to", "pve2", *common, "--json")
    assert code == 0, err
    assert json.loads(out)["plan"]["new_name"] == PVE_NEW
    assert pve_names(pve) == {"VPS4001-77-88": "pve2"}  # moved and renamed, as the fake cluster says
    resize = ["resize", "VPS4001-77-88", "--ticket", "9", "--vcpus", "3", "--price", "vcpus=100"]
    code, out, err = run(capsys, *resize, "--check", *common)
    assert code == 0, err
    assert "cores 2 -> 3" in out
    for bad in ("VPS4001_34_56", "vps4001-34-56", "VPS4001(34.56"):
        code, out, err = run(capsys, "migrate", bad, "--to", "pve2", *common)
        assert code == 2 and out == ""
        assert err.startswith(
            f"ipsinfra: error: name: value {bad!r}: neither a house name nor its DNS-safe twin"
        )
    assert pve_names(pve) == {"VPS4001-77-88": "pve2"}


# --------------------------------------------------------------------------- provision's password


def provision_args(inv: Path, tmp_path: Path, *extra: str) -> list[str]:
    order = "--order 4002 --node pve1 --client c1 --vcpus 1 --memory 256 --disk 1 --os debian-12"
    return [
        "provision",
        *order.split(),
        "-i",
        str(inv),
        "--journal",
        str(tmp_path / "j"),
        "--no-write-back",
        *extra,
    ]


def journal_bytes(tmp_path: Path) -> bytes:
    with sqlite3.connect(tmp_path / "j") as db:
        rows = db.execute("select * from sqlite_master").fetchall()
        tables = [r[1] for r in rows if r[0] == "table"]
        dump = [repr(db.execute(f'select * from "{t}"').fetchall()) for t in tables]
    return ("\n".join(dump)).encode() + (tmp_path / "j").read_bytes()


def test_provision_needs_a_place_for_the_password(
    pve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = pve_inventory(pve, tmp_path, vds=False)
    code, out, err = run(capsys, *provision_args(inv, tmp_path))
    assert code == 2 and out == ""
    assert "--password-file PATH" in err and "--show-password" in err and len(err.splitlines()) == 1
    assert pve_names(pve) == {} and not (tmp_path / "j").exists()
    code, out, _ = run(capsys, *provision_args(inv, tmp_path, "--check"))  # a plan needs no password
    assert code == 0 and "--check: nothing was changed" in out


def test_password_file_is_0600_and_the_password_is_nowhere_else(
    pve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = pve_inventory(pve, tmp_path, vds=False)
    secret_file = tmp_path / "pw"
    code, out, err = run(
        capsys, *provision_args(inv, tmp_path, "--password-file", str(secret_file), "--json")
    )
    assert code == 0, err
    password = secret_file.read_text().strip()
    assert len(password) >= 12
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    data = json.loads(out)
    assert data["password_file"] == str(secret_file) and "password" not in data
    assert password not in out and password not in err
    assert password.encode() not in journal_bytes(tmp_path)
    code, listed, _ = run(capsys, "journal", "list", "--journal", str(tmp_path / "j"), "--json")
    assert code == 0 and password not in listed
    assert pve_names(pve) == {"VPS4002-34-56": "pve1"}

    # Never overwritten: a second order into the same file is refused before anything is created.
    other = provision_args(inv, tmp_path, "--password-file", str(secret_file))
    other[other.index("4002")] = "4003"
    code, out, err = run(capsys, *other)
    assert code == 2 and out == ""
    assert err == (
        f"ipsinfra: error: password_file: value {str(secret_file)!r}: exists and is not an empty file; "
        "refusing to overwrite a password\n"
    )
    assert secret_file.read_text().strip() == password
    assert pve_names(pve) == {"VPS4002-34-56": "pve1"}


def test_show_password_prints_it_on_stdout_only(
    pve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = pve_inventory(pve, tmp_path, vds=False)
    code, out, err = run(capsys, *provision_args(inv, tmp_path, "--show-password"))
    assert code == 0, err
    [line] = [x for x in out.splitlines() if x.startswith("root password (shown once): ")]
    password = line.split(": ", 1)[1]
    assert password not in err and password.encode() not in journal_bytes(tmp_path)


# --------------------------------------------------------------------------- progress on a terminal


def on_a_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe): (exit, stdout, terminal text)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipsinfra.cli", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    os.close(slave)
    chunks = []
    while select.select([master], [], [], 60)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read().decode()
    code = proc.wait(timeout=120)
    os.close(master)
    return code, out, b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["block", "198.51.100.1", "--reason", "malware", "--no-write-back"], "block 198.51.100.1: proving"),
        (["migrate", "VPS1001-1-11", "--to", "kvm2", "--check"], f"migrate {VPS} to kvm2"),
        (["audit", "--no-reach", "--recheck-delay", "0"], "audit 0/2"),
    ],
)
def test_progress_goes_to_a_terminal_unless_quiet(
    kvm_inv: Path, tmp_path: Path, command: list[str], shown: str
) -> None:
    args = [*command, "-i", str(kvm_inv), "--journal", str(tmp_path / "j")]
    code, out, text = on_a_terminal(*args)
    assert code in (0, 1), text
    assert shown in text and "\x1b[" in text  # a live status line, drawn and cleared
    assert shown not in out and "\x1b[" not in out
    code, _, text = on_a_terminal(*args, "--quiet")
    assert code in (0, 1) and shown not in text


def test_no_progress_with_the_root_quiet_nor_in_a_pipe(kvm_inv: Path, tmp_path: Path) -> None:
    args = ["block", "198.51.100.1", "--reason", "malware", "--no-write-back", "-i", str(kvm_inv)]
    args += ["--journal", str(tmp_path / "j")]
    code, out, text = on_a_terminal("--quiet", *args)
    assert code == 0 and "proving" not in text and "block kvm1/VPS1001(1.11): done" in out
    piped = subprocess.run(
        [sys.executable, "-m", "ipsinfra.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr


def test_provision_progress_on_a_terminal_never_shows_the_password(pve: Any, tmp_path: Path) -> None:
    inv = pve_inventory(pve, tmp_path, vds=False)
    code, out, text = on_a_terminal(*provision_args(inv, tmp_path, "--password-file", str(tmp_path / "pw")))
    assert code == 0, text
    assert "provision order 4002 on pve1" in text
    password = (tmp_path / "pw").read_text().strip()
    assert password not in text and password not in out


# --------------------------------------------------------------------------- portmap


@pytest.fixture
def switch_inv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Any]]:
    """One lab SSH switch (cisco_ios) where ded1's MAC is learnt on Gi0/5 with no description."""
    from ipsinfra.lab.switches import IosSwitchServer, IosSwitchState
    from tests.switchinv import switch_inventory

    state = IosSwitchState(hostname="sw1-msk1", ports=[f"Gi0/{i}" for i in range(1, 9)])
    state.learn("52:54:00:aa:00:01", "Gi0/5")
    with IosSwitchServer(state, username="netops", password=SWITCH_PW) as server:
        inv = switch_inventory(tmp_path, server, ded1="macs: ['52:54:00:aa:00:01']\n")
        monkeypatch.setenv("IPSINFRA_TEST_SW_PW", SWITCH_PW)
        yield inv, state


def test_portmap_json_and_write_exits_0_after_writing(
    switch_inv: tuple[Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv, state = switch_inv
    base = [
        "portmap",
        "-i",
        str(inv),
        "--timeout",
        "10",
        "--no-hypervisors",
        "--journal",
        str(tmp_path / "j"),
    ]
    map_file = inv / "switch_ports.msk1.yml"
    code, out, _ = run(capsys, *base, "--check", "--json")
    assert code == 1  # a report: the map and a description differ
    [site] = json.loads(out)["sites"]
    assert site["site"] == "msk1" and site["written"] is False and site["failed_switches"] == {}
    assert [(p["server"], p["port"]) for p in site["appeared"]] == [("ded1", "Gi0/5")]
    assert [(d["port"], d["server"]) for d in site["description_mismatches"]] == [("Gi0/5", "ded1")]
    assert not map_file.exists()

    code, out, _ = run(capsys, *base, "--write", "--json")
    assert code == 0  # it did what it was asked; the description is printed, not failed on
    [site] = json.loads(out)["sites"]
    assert site["written"] is True and site["description_mismatches"]
    assert "server: ded1" in map_file.read_text()

    code, out, _ = run(capsys, *base, "--check")
    assert code == 1 and "describe  sw1-msk1 Gi0/5" in out  # the report still says so
    code, out, _ = run(capsys, *base, "--set-descriptions")
    assert code == 0, out
    assert state.port_states["Gi0/5"].description == "ded1"
    code, out, _ = run(capsys, *base, "--check", "--json")
    assert code == 0 and json.loads(out)["exit_code"] == 0


# --------------------------------------------------------------------------- bad input is exit 2


def bad_input(tmp: Path, inv: Path) -> dict[tuple[str, ...], list[str]]:
    """For every command: a run with one bad value (and the text its one-line error must hold)."""
    i, j = ["-i", str(inv)], ["--journal", str(tmp / "j")]
    nojournal = ["--journal", str(tmp / "no-such-journal")]
    complaint = str(REPO / "tests" / "data" / "complaints" / "24_zeus_cnc.eml")
    return {
        ("name",): ["name", "--order", "12a4", "--node-ip", "185.12.34.56", "order: value '12a4'"],
        ("password",): ["password", "--length", "5", "length: value 5"],
        ("completion",): ["completion", "tcsh", "shell: value 'tcsh'"],
        ("provision",): [
            *"provision --order 7 --node kvm1 --client c1 --vcpus 0 --memory 64 --disk 1".split(),
            *["--os", "debian-12", "--show-password", *i, *j, "vcpus"],
        ],
        ("migrate",): ["migrate", "VPS 1", "--to", "kvm2", *i, *j, "name: value 'VPS 1'"],
        ("resize",): ["resize", VPS, "--ticket", "1", "--vcpus", "0", *i, *j, "vcpus: value 0"],
        ("audit",): ["audit", "--workers", "0", *i, *j, "workers: value 0"],
        ("block",): ["block", "198.51.100.300", "--reason", "malware", *i, *j, "ip: value '198.51.100.300'"],
        ("unblock",): ["unblock", "no-ip", *i, *j, "ip: value 'no-ip'"],
        ("trust",): ["trust", "bad target!", *i, "target: value 'bad target!'"],
        ("demo",): ["demo", "--no-such-flag", "--no-such-flag"],
        ("portmap",): ["portmap", "--switch", "sw9", *i, "switch: value 'sw9'"],
        ("journal", "verify"): ["journal", "verify", "--expect-head", "zz", *j, "zz"],
        ("journal", "head"): ["journal", "head", *nojournal, "no-such-journal"],
        ("journal", "list"): ["journal", "list", *nojournal, "no-such-journal"],
        ("inventory", "show"): ["inventory", "show", "-i", str(tmp / "nowhere"), "nowhere"],
        ("inventory", "sync"): ["inventory", "sync", "-i", str(tmp / "nowhere"), "nowhere"],
        ("abuse", "check"): ["abuse", "check", "not-an-ip", "not-an-ip"],
        ("abuse", "classify"): ["abuse", "classify", str(tmp / "none.eml"), "none.eml"],
        ("abuse", "handle"): ["abuse", "handle", complaint, "--outbox", str(tmp / "o"), *i, *j, "abuse_from"],
        ("abuse", "fetch"): ["abuse", "fetch", "--no-such-flag", "--no-such-flag"],
        ("abuse", "watch"): ["abuse", "watch", "--no-such-flag", "--no-such-flag"],
    }


def test_bad_input_table_covers_every_command(tmp_path: Path) -> None:
    assert sorted(bad_input(tmp_path, tmp_path)) == sorted(leaves())


@pytest.mark.parametrize("command", sorted(bad_input(Path(), Path())), ids=" ".join)
def test_bad_input_exits_2_and_changes_nothing(
    command: tuple[str, ...], kvm_inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    *args, needle = bad_input(tmp_path, kvm_inv)[command]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(capsys, *args)
    assert code == 2, (command, err)
    assert needle in err and "Traceback" not in err, (command, err)
    assert out == "", (command, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no journal, no outbox, nothing
