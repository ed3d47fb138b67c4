"""B1: the playbook wrapper vs ansible-playbook; B2: the settings ipsinfra ships vs stock.

SSH hosts are the lab's sshd test hosts (:class:`ipsinfra.lab.sshd.SshHostPool`).
B1 reaches them directly on loopback (the wrapper's overhead is what is measured;
latency would only dilute it); both sides run with the settings ipsinfra ships
(:func:`ipsinfra.playbooks.settings_env`), so only the wrapper differs. B2 reaches
them through :class:`bench.netlab.Forwarder` in a namespace with the RTT on the
path and runs ``playbooks.run`` three ways: with stock ansible-core settings,
with what it ships (its defaults), and with Mitogen (``mitogen=True``, when the
``mitogen`` extra is installed).
Every run, all sides, gets a fresh SSH ControlPath directory and its masters
are closed afterwards, so no run inherits a warm connection from the one before.

Every run, all sides, returns the tasks that ran ok on each host (the PLAY
RECAP: ansible-playbook's own for the bare run, ``PlaybookResult.hosts`` for
the wrapper); a row whose sides differ, or fall short of hosts x tasks, FAILS.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipsinfra
from bench.core import (
    Row,
    WorkLog,
    check_work,
    compare_work,
    cores,
    cpu_floor,
    cpu_seconds,
    interleave_work,
    median,
    row,
    timed_call,
)
from bench.netlab import Forwarder, LatencyLink
from ipsinfra import playbooks
from ipsinfra.lab.sshd import SshHostPool

BENCH = Path(__file__).resolve().parent
PLAYBOOKS = BENCH / "playbooks"
STOCK_CFG = BENCH / "ansible_stock.cfg"
TASKS = {"one_task": 1, "ten_tasks": 10}
RECAP_LINE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s", re.MULTILINE)


def ok_tasks(per_host: dict[str, int]) -> list[str]:
    """A run's work: one item per task that ran ok on a host (from its PLAY RECAP)."""
    return [f"{host} ok {i}" for host, ok in per_host.items() for i in range(1, ok + 1)]


def recap(stdout: str) -> dict[str, int]:
    """``{host: ok}`` from ansible-playbook's PLAY RECAP."""
    _, found, tail = stdout.rpartition("PLAY RECAP")
    if not found:
        raise RuntimeError(f"ansible-playbook printed no PLAY RECAP: {stdout[-1500:]}")
    return {host: int(ok) for host, ok in RECAP_LINE.findall(tail)}


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


def run_raw(playbook: str, inventory: Path, env: dict[str, str] | None = None) -> dict[str, int]:
    """``ansible-playbook -i inventory playbook.yml`` with the environment and settings the wrapper
    sets; the tasks ok per host, from its PLAY RECAP."""
    with control_dir() as cp, tempfile.TemporaryDirectory(prefix="ipsb-raw-") as tmp:
        given = {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp), **(env or {})}
        full = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(Path(ipsinfra.__file__).resolve().parent),
            "ANSIBLE_LOCAL_TEMP": tmp,
            "ANSIBLE_NOCOLOR": "1",
            **given,
            **playbooks.settings_env({**os.environ, **given}),
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
        return recap(proc.stdout)


def run_wrapper(
    playbook: str, inventory: Path, env: dict[str, str] | None = None, *, mitogen: bool = False
) -> dict[str, int]:
    """``playbooks.run``; the tasks ok per host, from its result."""
    with control_dir() as cp:
        result = playbooks.run(
            playbook,
            inventory,
            playbook_dir=PLAYBOOKS,
            envvars={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp), **(env or {})},
            mitogen=mitogen,
        )
        result.raise_on_error()
        return {host: r.ok for host, r in result.hosts.items()}


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
    for where, inv, label, n_hosts in (
        ("localhost", local, "local", 1),
        (f"{hosts} SSH test hosts", ssh, "ssh", hosts),
    ):
        for playbook, count, limit in (("one_task", 1, 1.08), ("ten_tasks", 10, 1.03)):
            if playbook not in tasks:
                continue
            base, ours, base_work, our_work = interleave_work(
                lambda p=playbook, i=inv: run_raw(p, i),  # type: ignore[misc]
                lambda p=playbook, i=inv: run_wrapper(p, i),  # type: ignore[misc]
                reps,
                ok_tasks,
                warmup=warmup and count == 1,
            )
            r = row(
                f"B1.{label}.{count}task",
                f"{count}-task play on {where}: playbooks.run",
                base,
                ours,
                kind="overhead",
                limit=limit,
                baseline="ansible-playbook -i <same inventory> (same env and shipped ansible.cfg)",
            )
            done = compare_work(
                "tasks ok (host, task)", base_work.runs, our_work.runs, expected=n_hosts * count
            )
            rows.append(check_work(r, done))
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


def remote_cpu_s(pool: SshHostPool) -> float:
    """CPU seconds the test hosts' sshd (and all it ran, once reaped) have used so far."""
    ticks = 0
    for host in pool.hosts.values():
        fields = Path(f"/proc/{host.ns_pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def interleave_sides(
    sides: dict[str, Callable[[], dict[str, int]]], reps: int, pool: SshHostPool, *, warmup: bool
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]], dict[str, WorkLog]]:
    """Seconds of ``reps`` runs of each side, in turns (a, b, c, a, b, c, ...), the
    hosts' CPU seconds, the controller's (ansible-playbook and its ssh clients)
    and the tasks each run ran ok.

    The test hosts share this machine's cores with the controller, so the
    hosts' CPU (Python started per task, or once per host with Mitogen) is
    part of what a run waits for here.
    """
    if warmup:
        for fn in sides.values():
            fn()
    runs: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    controller: dict[str, list[float]] = {name: [] for name in sides}
    done = {name: WorkLog() for name in sides}
    for _ in range(reps):
        for name, fn in sides.items():
            before, ours = remote_cpu_s(pool), cpu_seconds()
            wall, per_host = timed_call(fn)
            runs[name].append(wall)
            done[name].add(ok_tasks(per_host))
            controller[name].append(round(cpu_seconds() - ours, 2))
            time.sleep(0.3)  # the closed sessions' processes get reaped (and counted)
            cpu[name].append(round(remote_cpu_s(pool) - before, 2))
    return runs, cpu, controller, done


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
    mitogen = playbooks.mitogen_strategy_dir() is not None
    with LatencyLink(index, rtt_ms) as link, Forwarder(link, ports) as forwarder:
        inv = delayed_inventory(pool, forwarder, tmp)
        sides: dict[str, Callable[[], dict[str, int]]] = {
            "stock": lambda: run_wrapper(playbook, inv, {"ANSIBLE_CONFIG": str(STOCK_CFG)}),
            "shipped": lambda: run_wrapper(playbook, inv),
        }
        if mitogen:
            sides["mitogen"] = lambda: run_wrapper(playbook, inv, mitogen=True)
        runs, host_cpu, ctl_cpu, done = interleave_sides(sides, reps, pool, warmup=warmup)
        how = "netem" if link.netem else "namespace proxy delay"
    tasks = "10 tasks" if playbook == "ten_tasks" else "1 task"

    def same_tasks(side: str) -> dict[str, Any]:
        return compare_work(
            "tasks ok (host, task)", done["stock"].runs, done[side].runs, expected=hosts * TASKS[playbook]
        )

    where = f"{tasks} x {hosts} SSH hosts, {rtt_ms:g} ms RTT ({how})"
    baseline = "stock ansible.cfg (ansible-core defaults)"
    extra: dict[str, Any] = {
        "hosts_cpu_s_median": {name: median(values) for name, values in host_cpu.items()},
        "hosts_cpu_s": host_cpu,
        "controller_cpu_s_median": {name: median(values) for name, values in ctl_cpu.items()},
        "controller_cpu_s": ctl_cpu,
        "cpus": cores(),
    }

    def bound(side: str, limit: float) -> tuple[dict[str, float], str]:
        """The side's CPU floor on this machine against the wall time the target allows."""
        ctl, hosts = median(ctl_cpu[side]), median(host_cpu[side])
        floor = cpu_floor(ctl + hosts, median(runs["stock"]) / limit)
        return floor, (
            f"CPU per run: controller {ctl:.1f} + hosts {hosts:.1f} CPU s needs >= "
            f"{floor['cpu_floor_s']:.1f} s on {floor['cores']} cores; {limit:g}x allows "
            f"{floor['target_wall_s']:.1f} s ({floor['floor_over_target']:.2f} x)"
        )

    shipped_floor, shipped_bound = bound("shipped", 4.0)
    rows = [
        check_work(
            row(
                "B2.ssh-settings",
                f"{where}: playbooks.run as shipped",
                runs["stock"],
                runs["shipped"],
                kind="speedup",
                limit=4.0,
                baseline=baseline,
                notes="ipsinfra/data/ansible.cfg: pipelining, forks=50, ControlPersist, no -C; "
                f"the test hosts share the {cores()} cores (a Python started per task and host); "
                f"{shipped_bound}"
                + (
                    ""
                    if mitogen
                    else "; mitogen not installed (pip install 'ipsinfra[mitogen]'): no mitogen row"
                ),
                extra={**extra, "bound": shipped_floor},
            ),
            same_tasks("shipped"),
        )
    ]
    if mitogen:
        mitogen_floor, mitogen_bound = bound("mitogen", 8.0)
        rows.append(
            check_work(
                row(
                    "B2.mitogen",
                    f"{where}: playbooks.run(mitogen=True)",
                    runs["stock"],
                    runs["mitogen"],
                    kind="speedup",
                    limit=8.0,
                    baseline=baseline,
                    notes="the shipped ansible.cfg plus Mitogen's mitogen_linear strategy "
                    f"(the mitogen extra): one Python per host; {mitogen_bound}",
                    extra={**extra, "bound": mitogen_floor},
                ),
                same_tasks("mitogen"),
            )
        )
    return rows


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
    if "ANSIBLE_CONFIG" in os.environ:
        raise RuntimeError("unset ANSIBLE_CONFIG: B1 and B2 measure the ansible.cfg ipsinfra ships")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ipsb-ans-") as tmp_s, SshHostPool() as pool:
        tmp = Path(tmp_s)
        pool.start(hosts)
        if b1:
            rows += b1_rows(hosts, reps, tmp, pool, b1_tasks, warmup)
        if b2:
            rows += b2_rows(hosts, reps, tmp, pool, rtt_ms, b2_playbook, warmup)
    return rows
