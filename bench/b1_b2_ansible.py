"""B1: the playbook wrapper vs ansible-playbook; B2: proposed connection settings vs stock.

SSH hosts are the lab's sshd test hosts (:class:`ipsinfra.lab.sshd.SshHostPool`).
B1 reaches them directly on loopback (the wrapper's overhead is what is measured;
latency would only dilute it). B2 reaches them through
:class:`bench.netlab.Forwarder` in a namespace with the RTT on the path.
Every run, both sides, gets a fresh SSH ControlPath directory and its masters
are closed afterwards, so no run inherits a warm connection from the one before.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipsinfra
from bench.core import Row, interleave, row
from bench.netlab import Forwarder, LatencyLink
from ipsinfra import playbooks
from ipsinfra.lab.sshd import SshHostPool

BENCH = Path(__file__).resolve().parent
PLAYBOOKS = BENCH / "playbooks"
FAST_CFG = BENCH / "ansible_fast.cfg"
STOCK_CFG = BENCH / "ansible_stock.cfg"


@contextlib.contextmanager
def control_dir() -> Iterator[Path]:
    """A fresh ControlPath directory; every master in it is closed at the end."""
    path = Path(tempfile.mkdtemp(prefix="ipsb-cp-", dir="/tmp"))
    try:
        yield path
    finally:
        for sock in path.iterdir():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "ipsinfra-bench"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        subprocess.run(["rm", "-rf", str(path)], check=False)


def run_raw(playbook: str, inventory: Path, env: dict[str, str] | None = None) -> None:
    """``ansible-playbook -i inventory playbook.yml`` with the environment the wrapper also sets."""
    with control_dir() as cp, tempfile.TemporaryDirectory(prefix="ipsb-raw-") as tmp:
        full = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(Path(ipsinfra.__file__).resolve().parent),
            "ANSIBLE_LOCAL_TEMP": tmp,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp),
            **(env or {}),
        }
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), f"{playbook}.yml"],
            cwd=PLAYBOOKS,
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"ansible-playbook {playbook} failed ({proc.returncode}): {proc.stdout[-1500:]}"
            )


def run_wrapper(playbook: str, inventory: Path, env: dict[str, str] | None = None) -> None:
    with control_dir() as cp:
        result = playbooks.run(
            playbook,
            inventory,
            playbook_dir=PLAYBOOKS,
            envvars={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp), **(env or {})},
        )
        result.raise_on_error()


def _write_inventory(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def b1_rows(
    hosts: int, reps: int, tmp: Path, pool: SshHostPool, tasks: tuple[str, ...], warmup: bool
) -> list[Row]:
    local = _write_inventory(
        tmp / "local.json",
        {
            "all": {
                "hosts": {
                    "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                }
            }
        },
    )
    ssh = _write_inventory(tmp / "ssh.json", pool.ansible_inventory())
    rows = []
    for where, inv, label in (("localhost", local, "local"), (f"{hosts} SSH test hosts", ssh, "ssh")):
        for playbook, count, limit in (("one_task", 1, 1.08), ("ten_tasks", 10, 1.03)):
            if playbook not in tasks:
                continue
            base, ours = interleave(
                lambda p=playbook, i=inv: run_raw(p, i),  # type: ignore[misc]
                lambda p=playbook, i=inv: run_wrapper(p, i),  # type: ignore[misc]
                reps,
                warmup=warmup and count == 1,
            )
            rows.append(
                row(
                    f"B1.{label}.{count}task",
                    f"{count}-task play on {where}: playbooks.run",
                    base,
                    ours,
                    kind="overhead",
                    limit=limit,
                    baseline="ansible-playbook -i <same inventory> (same env)",
                )
            )
    return rows


def delayed_inventory(pool: SshHostPool, forwarder: Forwarder, tmp: Path) -> Path:
    """The pool's inventory, each host reached at its forwarded address (host keys re-listed there)."""
    inv = pool.ansible_inventory()
    known = []
    for line in pool.known_hosts.read_text().splitlines():
        hostport, *key = line.split()
        port = int(hostport.rsplit(":", 1)[1])
        ip, fport = forwarder.address(port)
        known.append(" ".join([f"[{ip}]:{fport}", *key]))
    known_file = tmp / "known_hosts_delayed"
    known_file.write_text("\n".join(known) + "\n")
    for host in inv["all"]["children"]["lab"]["hosts"].values():
        ip, fport = forwarder.address(int(host["ansible_port"]))
        host["ansible_host"], host["ansible_port"] = ip, fport
        host["ansible_ssh_common_args"] = host["ansible_ssh_common_args"].replace(
            str(pool.known_hosts), str(known_file)
        )
    return _write_inventory(tmp / "ssh_delayed.json", inv)


def b2_rows(
    hosts: int,
    reps: int,
    tmp: Path,
    pool: SshHostPool,
    rtt_ms: float,
    playbook: str,
    warmup: bool,
    index: int = 101,
) -> list[Row]:
    ports = [h.port for h in pool.hosts.values()]
    with LatencyLink(index, rtt_ms) as link, Forwarder(link, ports) as forwarder:
        inv = delayed_inventory(pool, forwarder, tmp)
        base, ours = interleave(
            lambda: run_wrapper(playbook, inv, {"ANSIBLE_CONFIG": str(STOCK_CFG)}),
            lambda: run_wrapper(playbook, inv, {"ANSIBLE_CONFIG": str(FAST_CFG)}),
            reps,
            warmup=warmup,
        )
        how = "netem" if link.netem else "namespace proxy delay"
    tasks = "10 tasks" if playbook == "ten_tasks" else "1 task"
    return [
        row(
            "B2.ssh-settings",
            f"{tasks} x {hosts} SSH hosts, {rtt_ms:g} ms RTT ({how}): bench/ansible_fast.cfg",
            base,
            ours,
            kind="speedup",
            limit=4.0,
            baseline="stock ansible.cfg (ansible-core defaults)",
            notes="pipelining, forks=50, ControlPersist 300s, no -C; ipsinfra ships no such settings yet "
            "(proposed for playbooks.run); mitogen not measured",
        )
    ]


def ansible_rows(
    hosts: int,
    reps: int,
    rtt_ms: float,
    *,
    b1: bool = True,
    b2: bool = True,
    b1_tasks: tuple[str, ...] = ("one_task", "ten_tasks"),
    b2_playbook: str = "ten_tasks",
    warmup: bool = True,
) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ipsb-ans-") as tmp_s, SshHostPool() as pool:
        tmp = Path(tmp_s)
        pool.start(hosts)
        if b1:
            rows += b1_rows(hosts, reps, tmp, pool, b1_tasks, warmup)
        if b2:
            rows += b2_rows(hosts, reps, tmp, pool, rtt_ms, b2_playbook, warmup)
    return rows
