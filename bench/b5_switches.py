"""B5: port-map poll of many SSH switches: ``collect`` vs sequential netmiko with defaults.

The switches are the lab's in-process IOS-like asyncssh servers (netmiko's
``cisco_ios`` logs into them), run in a SEPARATE process (``python -m
bench.b5_switches serve``) so they do not share the measured process's GIL, and
reached through :class:`bench.netlab.Forwarder` inside a namespace the
benchmark creates, with the RTT on that path.

Both sides must collect the same MACs: every timed run returns the (switch,
MAC, port) entries it parsed from ``show mac address-table``, and the row
FAILS when the two sides differ in any run or when either falls short of the
MACs the switches really hold (a switch that failed is less work, never a
faster pass).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.core import Row, Work, WorkLog, check_work, compare_work, expect_work, median, row
from bench.netlab import Forwarder, LatencyLink
from ipsinfra.models import Switch
from ipsinfra.network.models import CollectionReport
from ipsinfra.network.switches import SwitchCredentials, collect, open_session

COMMANDS = (
    "show mac address-table",
    "show interfaces status",
    "show interfaces description",
    "show lldp neighbors detail",
)
PASSWORD = "bench-switch-pw"  # a lab switch on loopback


def mac_item(switch: str, mac: str, port: str) -> str:
    """One MAC-table entry as both sides' work is compared: MAC as 12 lower-case hex digits."""
    return f"{switch} {''.join(c for c in mac.lower() if c in '0123456789abcdef')} {port}"


def serve(count: int, macs: int) -> None:
    """Child process: ``count`` lab switches, ``macs`` MACs each; print ports, serve until stdin closes."""
    from ipsinfra.lab.switches import IosSwitchServer, IosSwitchState

    servers = []
    ports = [f"Gi1/0/{i}" for i in range(1, 49)]
    for s in range(count):
        state = IosSwitchState(hostname=f"sw{s + 1}", ports=list(ports))
        for m in range(macs):
            # ports 1..46 carry a server each; the rest of the MACs sit on the uplink (port 48)
            port = ports[m] if m < 46 else ports[47]
            state.learn(f"52:54:{s:02x}:{m >> 16 & 255:02x}:{m >> 8 & 255:02x}:{m & 255:02x}", port)
        state.neighbor(ports[47], f"core{s + 1}", "B,R")
        servers.append(IosSwitchServer(state, password=PASSWORD).start())
    # each switch's port and host key ("ssh-ed25519 AAAA..."), for the client to pin
    print(json.dumps([[srv.port, srv.known_hosts_line().split(" ", 1)[1]] for srv in servers]), flush=True)
    sys.stdin.read()
    for srv in servers:
        srv.stop()


class SwitchLab:
    """The switch process plus the delayed path to it."""

    def __init__(self, count: int, macs: int, rtt_ms: float, index: int) -> None:
        root = str(Path(__file__).resolve().parents[1])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.b5_switches", "serve", str(count), str(macs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip():
            self.close()
            raise RuntimeError("the switch process did not start")
        served: list[tuple[int, str]] = [(int(p), str(k)) for p, k in json.loads(line)]
        self.ports: list[int] = [p for p, _ in served]
        self.link = LatencyLink(index, rtt_ms).start()
        self.forwarder = Forwarder(self.link, self.ports).start()
        # open_session checks host keys: pin each switch's key under the address it is reached at
        self.known_hosts = Path(tempfile.mkdtemp(prefix="b5-known-")) / "known_hosts"
        self.known_hosts.write_text("".join(f"[{self.link.inner_ip}]:{p} {k}\n" for p, k in served))
        self.switches = [
            Switch(
                name=f"sw{i + 1}",
                site="lab",
                host=self.link.inner_ip,
                port=p,
                platform="cisco_ios",
                ssh_known_hosts=str(self.known_hosts),
            )
            for i, p in enumerate(self.ports)
        ]

    def close(self) -> None:
        forwarder = getattr(self, "forwarder", None)
        if forwarder is not None:
            forwarder.stop()
        link = getattr(self, "link", None)
        if link is not None:
            link.stop()
        known = getattr(self, "known_hosts", None)
        if known is not None:
            shutil.rmtree(known.parent, ignore_errors=True)
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def sequential_netmiko(
    switches: list[Switch], connects: list[float], failures: list[str]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The baseline: one switch after the other, netmiko defaults, textfsm parsing.

    A switch that fails (netmiko's prompt detection against the lab switch under
    load) is kept in ``failures`` and reported in the row, never hidden.
    """
    from netmiko import ConnectHandler

    tables: list[tuple[str, list[dict[str, Any]]]] = []  # (switch, TextFSM records of its MAC table)
    for sw in switches:
        t0 = time.perf_counter()
        try:
            conn = ConnectHandler(
                device_type="cisco_ios", host=sw.host, port=sw.port, username=sw.username, password=PASSWORD
            )
        except Exception as exc:
            failures.append(f"{sw.name}: connect: {type(exc).__name__}")
            continue
        connects.append(time.perf_counter() - t0)
        try:
            for cmd in COMMANDS:
                out = conn.send_command(cmd, use_textfsm=True)
                if cmd == COMMANDS[0]:
                    if not isinstance(out, list):  # netmiko hands back the raw text when TextFSM fails
                        raise ValueError(f"{cmd!r} not parsed by TextFSM")
                    tables.append((sw.name, out))
        except Exception as exc:
            failures.append(f"{sw.name}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:80]}")
        finally:
            conn.disconnect()
    return tables


def netmiko_macs(tables: list[tuple[str, list[dict[str, Any]]]]) -> list[str]:
    """The baseline's work, outside its timed run: one item per (switch, MAC, port)."""
    return [
        mac_item(sw, e["destination_address"], port)
        for sw, out in tables
        for e in out
        for port in e["destination_port"]
    ]


def ours(
    switches: list[Switch], max_workers: int | None, failures: list[str] | None = None
) -> CollectionReport:
    """``collect``; a switch it reports as failed is kept in ``failures`` (and counted in the row)."""
    creds = {sw.name: SwitchCredentials(password=PASSWORD) for sw in switches}
    kwargs: dict[str, Any] = {} if max_workers is None else {"max_workers": max_workers}
    report = collect(switches, credentials=creds, **kwargs)
    bad = [f"{n}: {r.failure}: {r.reason}" for n, r in report.results.items() if r.facts is None]
    if failures is None and bad:
        raise RuntimeError(f"collect failed on {bad}")
    if failures is not None:
        failures += bad
    return report


def collected_macs(report: CollectionReport) -> list[str]:
    """``collect``'s work, outside its timed run: one item per (switch, MAC, port)."""
    return [
        mac_item(name, e.mac, e.port)
        for name, r in report.results.items()
        if r.facts is not None
        for e in r.facts.mac_table
    ]


def our_connect(sw: Switch) -> float:
    t0 = time.perf_counter()
    with open_session(sw, credentials=SwitchCredentials(password=PASSWORD)):
        elapsed = time.perf_counter() - t0
    return elapsed


def b5_rows(
    count: int,
    mac_counts: list[int],
    rtt_ms: float,
    reps: int,
    *,
    default_workers: bool = True,
    index: int = 201,
) -> list[Row]:
    rows: list[Row] = []
    for k, macs in enumerate(mac_counts):
        lab = SwitchLab(count, macs, rtt_ms, index + k)
        try:
            sws = lab.switches
            base_connects: list[float] = []
            failures: list[str] = []
            base_failures: list[str] = []
            ours(sws, count, failures)  # warm-up
            base: list[float] = []
            mine: list[float] = []
            mine_default: list[float] = []
            base_work, our_work, default_work = WorkLog(), WorkLog(), WorkLog()
            for _ in range(reps):
                t0 = time.perf_counter()
                tables = sequential_netmiko(sws, base_connects, base_failures)
                base.append(time.perf_counter() - t0)
                base_work.add(netmiko_macs(tables))
                t0 = time.perf_counter()
                report = ours(sws, count, failures)
                mine.append(time.perf_counter() - t0)
                our_work.add(collected_macs(report))
                if default_workers and macs <= 1000:
                    t0 = time.perf_counter()
                    report = ours(sws, None, failures)
                    mine_default.append(time.perf_counter() - t0)
                    default_work.add(collected_macs(report))
            where = f"{count} switches x {macs} MACs, {rtt_ms:g} ms RTT"
            variants = [(f"workers={count}", mine, our_work, f"max_workers={count}")]
            if mine_default:
                variants.append(
                    ("default", mine_default, default_work, "default max_workers (one per switch)")
                )
            for label, runs, log, workers in variants:
                r = row(
                    f"B5.poll.{macs}.{label}",
                    f"collect {workers}, {where}",
                    base,
                    runs,
                    kind="speedup",
                    limit=10.0,
                    baseline="sequential netmiko ConnectHandler defaults + send_command(use_textfsm)",
                    notes="4 commands per switch (MAC table, interfaces status/description, LLDP) "
                    "on both sides, the same ntc-templates records on both sides: the baseline through "
                    "netmiko's use_textfsm, collect through ipsinfra.network.fast_tables (MAC tables by "
                    "the templates' own regexes, the rest by TextFSM without CliTable); switches in a "
                    f"separate process; switch failures over all runs: collect {len(failures)}, "
                    f"netmiko baseline {len(base_failures)}"
                    + (f" (first: {(failures + base_failures)[0]})" if failures + base_failures else ""),
                    extra={"collect_failures": failures, "baseline_failures": base_failures},
                )
                rows.append(
                    check_work(
                        r,
                        compare_work(
                            "MACs collected (switch, MAC, port)",
                            base_work.runs,
                            log.runs,
                            expected=count * macs,
                        ),
                    )
                )
            if k == 0:
                conn_ours = [our_connect(sws[i % count]) for i in range(max(reps, 5))]
                r = row(
                    "B5.connect",
                    f"login to one switch ({rtt_ms:g} ms RTT): ipsinfra open_session vs netmiko defaults",
                    base_connects,
                    conn_ours,
                    kind="speedup",
                    limit=0.0,
                    baseline="netmiko ConnectHandler with defaults (timed inside the baseline runs)",
                    target="<= 0.5 s per switch",
                )
                r.passed = median(conn_ours) <= 0.5
                logins = expect_work(
                    "netmiko logins timed", [Work(len(base_connects), str(len(base_connects)))], reps * count
                )
                rows.append(check_work(r, logins))
        finally:
            lab.close()
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit("usage: python -m bench.b5_switches serve COUNT MACS")
