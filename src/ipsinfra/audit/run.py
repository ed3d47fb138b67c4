"""The nightly audit: every node concurrently, one result per node.

A node that does not answer becomes one ``node_reachable`` finding with the
reason; the other nodes are audited all the same (nornir's
``AggregatedResult`` idea: one dead node never hides the other 199).
"""

from __future__ import annotations

import concurrent.futures
import csv
import datetime as dt
import errno
import ipaddress
import json
import multiprocessing
import multiprocessing.connection
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ipsinfra.audit.checks import (
    NO_FACTS,
    BootIdentity,
    NodeObservation,
    RunningRecord,
    VdsFacts,
    facts_of,
    misconfigured,
    run_checks,
    running_record,
    should_run,
    unreachable,
)
from ipsinfra.audit.findings import AuditReport, CheckOutcome, Finding, NodeAudit
from ipsinfra.errors import InvalidInput, IpsinfraError, SecretMissing
from ipsinfra.hypervisors import DriverPool, HypervisorDriver, nodeshell
from ipsinfra.identity import ip_key
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.models import HypervisorKind, Node, Vds, VdsState
from ipsinfra.steps import with_deadline

BootReader = Callable[[Node, HypervisorDriver], BootIdentity | None]
Prober = Callable[[Sequence[str], float], dict[str, str | None]]
# TCP probes of one node in flight at once: one round trip per window instead
# of one per VDS, and a bounded number of file descriptors per audited node.
PROBE_WINDOW = 32
# Nodes per forked worker process when the audit picks the count itself. Many
# threads in one interpreter queue for its one lock at every network reply
# (measured, B4: 200 nodes at 20 ms RTT took 4.4 s in one process, 2.0-2.3 s in
# 8 on 2 cores), so the workers are more than the cores, up to
# MAX_PROCESSES_PER_CPU per core and MAX_PROCESSES in all.
NODES_PER_PROCESS = 25
MAX_PROCESSES_PER_CPU = 4
MAX_PROCESSES = 16
ProbeFor = Callable[[Vds, Vds | None], str | None]
# Findings ``--fix`` answers by starting the VDS (never a blocked or cancelled one).
STARTABLE_CHECKS = frozenset({"vds_not_running", "vds_down_after_reboot"})


def read_boot_over_ssh(node: Node, *, timeout: float = 15.0) -> BootIdentity:
    """Boot id and boot time of a libvirt node, over SSH (libvirt has no API for it).

    One exec through :func:`nodeshell.run_script`, so it rides the same
    ControlMaster as the node's ssh-mode domain listing. SSH failures raise
    ``NodeUnreachable``/``OperationTimeout`` naming the node.
    """
    script = "cat /proc/sys/kernel/random/boot_id\nawk '/^btime/ {print $2}' /proc/stat\n"
    out = nodeshell.run_script(node, script, what="read boot identity", timeout=timeout)
    lines = out.split()
    if len(lines) != 2 or not lines[1].isdigit():
        raise IpsinfraError(f"node {node.name}: unexpected boot identity output over SSH")
    return BootIdentity(boot_id=lines[0], boot_time=dt.datetime.fromtimestamp(int(lines[1]), dt.UTC))


def default_boot_reader(node: Node, driver: HypervisorDriver) -> BootIdentity | None:
    """Proxmox: the node status's uptime. libvirt: SSH when the node has an SSH address."""
    if node.kind is HypervisorKind.LIBVIRT and node.ssh_host:
        return read_boot_over_ssh(node)
    facts = driver.node_facts()
    if facts.boot_id is None and facts.boot_time is None:
        return None
    return BootIdentity(boot_id=facts.boot_id, boot_time=facts.boot_time)


def _split_target(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def tcp_probe(target: str, timeout: float) -> str | None:
    """None if ``host:port`` accepts a TCP connection within ``timeout``, else why not."""
    return tcp_probe_many([target], timeout)[target]


def tcp_probe_many(targets: Sequence[str], timeout: float) -> dict[str, str | None]:
    """Probe every ``host:port`` at once (non-blocking connects, one selector).

    Returns {target: None if it accepted a TCP connection within ``timeout``,
    else why not}. All connects are in flight together, so N probes cost one
    round trip, not N; no thread per probe.
    """
    result: dict[str, str | None] = {}
    selector = selectors.DefaultSelector()
    waiting: dict[socket.socket, str] = {}
    try:
        for target in dict.fromkeys(targets):
            try:
                host, port = _split_target(target)
                try:
                    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
                    address: Any = (host, port)
                except ValueError:  # a host name: resolve it (blocking, like create_connection)
                    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
                sock = socket.socket(family, socket.SOCK_STREAM)
            except (OSError, ValueError) as exc:
                result[target] = f"{target}: {getattr(exc, 'strerror', None) or exc}"
                continue
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                waiting[sock] = target
                selector.register(sock, selectors.EVENT_WRITE)
                continue
            result[target] = None if code == 0 else f"{target}: {os.strerror(code)}"
            sock.close()
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                sock = key.fileobj  # type: ignore[assignment]
                target = waiting.pop(sock)
                selector.unregister(sock)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                result[target] = None if code == 0 else f"{target}: {os.strerror(code)}"
                sock.close()
        for target in waiting.values():
            result[target] = f"{target}: no answer within {timeout:g} s"
    finally:
        for sock in waiting:
            sock.close()
        selector.close()
    return result


def probe_target(vds: Vds) -> str | None:
    """Where §4.10's check connects: the VDS's probe override, or SSH/RDP on its first IP."""
    if vds.probe:
        return vds.probe
    if not vds.ips:
        return None
    port = 3389 if (vds.os or "").lower().startswith("windows") else 22
    ip = vds.ips[0]
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def default_probe_for(observed: Vds, record: Vds | None) -> str | None:
    """The inventory's probe override wins; else the hypervisor's view of the VDS."""
    if record is not None and record.probe:
        return record.probe
    return probe_target(observed)


def load_dc_names(path: str | Path) -> dict[str, str]:
    """The DC's server list (CSV with columns ``ip`` and ``name``) -> {ip: name} (§4.4).

    Read as ``utf-8-sig``, so an Excel export's byte-order mark does not become
    part of the first column's name; the header names are matched ignoring
    case and blanks. Each ``ip`` is parsed with :mod:`ipaddress` and keyed by
    its canonical text (:func:`ipsinfra.identity.ip_key`): ``2001:DB8::0010``
    in the list is found by a lookup for ``2001:db8::10``, the form every
    check looks up. A row whose ``ip`` is no address, or a row that names an
    address already given another name, refuses the whole list with an error
    naming the file, the line and the value: a list read in part would make
    the check say "the DC has no name for it" about a server it does name.

    Example::

        ip,name
        2001:DB8::0010,dc-srv-77     ->  {"2001:db8::10": "dc-srv-77"}

    Raises:
        InvalidInput: the file cannot be read or a row is wrong.
    """
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = {(c or "").strip().lower(): c for c in reader.fieldnames or ()}
            rows = list(reader)
    except OSError as exc:
        raise InvalidInput(f"dc_list: value {str(path)!r}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"dc_list: {path}: not a UTF-8 CSV file ({exc})") from None
    ip_col, name_col = columns.get("ip"), columns.get("name")
    names: dict[str, str] = {}
    where: dict[str, int] = {}
    for i, row in enumerate(rows, start=2):
        ip_text = (row.get(ip_col) or "").strip() if ip_col is not None else ""
        name = (row.get(name_col) or "").strip() if name_col is not None else ""
        if not ip_text or not name:
            raise InvalidInput(f"dc_list: {path}: line {i}: needs 'ip' and 'name' columns, got {row!r}")
        try:
            ip = ip_key(ip_text, field="ip")
        except InvalidInput:
            raise InvalidInput(
                f"dc_list: {path}: line {i}: ip {ip_text!r} is not an IPv4 or IPv6 address"
            ) from None
        if ip in names and names[ip] != name:
            raise InvalidInput(
                f"dc_list: {path}: line {i}: ip {ip_text!r} is {ip} again, named {name!r} here "
                f"and {names[ip]!r} on line {where[ip]}"
            )
        names[ip] = name
        where.setdefault(ip, i)
    return names


def canonical_dc_names(dc_names: Mapping[str, str]) -> dict[str, str]:
    """``dc_names`` keyed by canonical address text (see :func:`load_dc_names`).

    For a mapping built in code rather than loaded: the checks look names up by
    ``str(ip_address)``, so a key spelt any other way would never be found.

    Raises:
        InvalidInput: a key is not an address.
    """
    return {ip_key(ip, field="dc_names"): name for ip, name in dc_names.items()}


class _Auditor:
    def __init__(
        self,
        fleet: Fleet,
        pool: DriverPool,
        journal: Journal | None,
        *,
        today: dt.date,
        dc_names: Mapping[str, str] | None,
        reach: bool,
        fix: bool,
        recheck_delay: float,
        boot_reader: BootReader,
        prober: Prober,
        probe_for: ProbeFor,
        probe_timeout: float,
        node_timeout: float,
        actor: str | None,
    ) -> None:
        self.fleet = fleet
        self.pool = pool
        self.journal = journal
        self.today = today
        self.dc_names = canonical_dc_names(dc_names) if dc_names is not None else None
        self.reach = reach
        self.fix = fix
        self.recheck_delay = recheck_delay
        self.boot_reader = boot_reader
        self.prober = prober
        self.probe_for = probe_for
        self.probe_timeout = probe_timeout
        self.node_timeout = node_timeout
        self.actor = actor
        # Indexed once: a node's audit looks only at its own records and at the
        # records of what it reports, never at the whole fleet (B4).
        self.records_by_node: dict[str, dict[str, Vds]] = {}
        for record in fleet.vds.values():
            self.records_by_node.setdefault(record.node, {})[record.name] = record
        # The journal state the checks read, in two queries instead of one per
        # VDS; nothing writes it while the audit runs (new boots are stored after).
        self.states: dict[str, dict[str, Any]] = {}
        if journal is not None:
            for prefix in ("boot:", "vds:", "ran:"):
                self.states.update(journal.latest_states(prefix))
        self._journal_lock = threading.Lock()
        # Stored together after the audit: the boot identity and what ran in it (§5.2).
        self.new_boots: dict[str, BootIdentity] = {}
        self.new_running: dict[str, RunningRecord] = {}

    def _state(self, key: str) -> dict[str, Any] | None:
        return self.states.get(key)

    def _record(self, action: str, target: str, **kwargs: Any) -> None:
        if self.journal is None:
            return
        with self._journal_lock:
            self.journal.record(action, target, actor=self.actor, **kwargs)

    def audit(self, node: Node) -> NodeAudit:
        started = time.monotonic()
        try:
            return self._audit(node, started)
        except SecretMissing as exc:  # our configuration, not the node: no outage, no client notice
            return NodeAudit(
                node=node.name,
                reachable=False,
                config_error=str(exc),
                outcomes=[misconfigured(node.name, str(exc))],
                duration_s=time.monotonic() - started,
            )
        except IpsinfraError as exc:
            return NodeAudit(
                node=node.name,
                reachable=False,
                outcomes=[unreachable(node.name, str(exc))],
                duration_s=time.monotonic() - started,
            )

    def _audit(self, node: Node, started: float) -> NodeAudit:
        driver = self.pool.get(node.name)
        listed = with_deadline("list_vds", self.node_timeout, driver.list_vds, node=node.name)
        boot_now: BootIdentity | None
        boot_problem: str | None = None
        try:
            boot_now = self.boot_reader(node, driver)
        except Exception as exc:
            boot_now, boot_problem = None, f"boot identity unreadable: {type(exc).__name__}: {exc}"
        before_raw = self._state(f"boot:{node.name}")
        boot_before = BootIdentity.model_validate(before_raw) if before_raw else None
        last_audit: RunningRecord | None = None
        ran_raw = self._state(f"ran:{node.name}")
        if ran_raw:
            try:
                last_audit = RunningRecord.model_validate(ran_raw)
            except ValidationError:  # unreadable: as on a first audit, nothing is claimed to have run
                last_audit = None

        facts: dict[str, VdsFacts] = {
            v.name: facts_of(v, self.fleet.vds.get(v.name), self._state(f"vds:{v.name}")) for v in listed
        }
        recheck: dict[str, Vds] = {}
        transitional = [v for v in listed if v.state.transitional]
        if transitional:
            time.sleep(self.recheck_delay)
            for v in transitional:
                try:
                    recheck[v.name] = driver.get_vds(v.name)
                except IpsinfraError:
                    continue
        reach: dict[str, str | None] = {}
        if self.reach:
            targets: dict[str, str] = {}
            for v in listed:
                target = self.probe_for(v, self.fleet.vds.get(v.name))
                if target and v.state is VdsState.RUNNING and should_run(v, facts[v.name], self.today):
                    targets[v.name] = target
            names = list(targets)
            for i in range(0, len(names), PROBE_WINDOW):
                window = names[i : i + PROBE_WINDOW]
                answers = self.prober([targets[n] for n in window], self.probe_timeout)
                for n in window:
                    reach[n] = answers.get(targets[n], f"{targets[n]}: not probed")

        obs = NodeObservation(
            node=node,
            vds=listed,
            recheck=recheck,
            boot_now=boot_now,
            boot_before=boot_before,
            facts=facts,
            reach=reach,
            inventory={
                **self.records_by_node.get(node.name, {}),
                **{v.name: self.fleet.vds[v.name] for v in listed if v.name in self.fleet.vds},
            },
            dc_names=self.dc_names,
            last_audit=last_audit,
        )
        rebooted, outcomes = run_checks(obs, self.today)
        if boot_problem:
            outcomes = [
                o.model_copy(update={"skipped": boot_problem}) if o.check == "node_reboot" else o
                for o in outcomes
            ]
        if self.fix:
            outcomes = [
                self._fix(driver, node, o, facts) if o.check in STARTABLE_CHECKS else o for o in outcomes
            ]
        if boot_now is not None:
            # Only with a boot identity: a record of what ran is worth something
            # only next to the boot it ran in.
            fixed_now = {
                f.target for o in outcomes if o.check in STARTABLE_CHECKS for f in o.findings if f.fixed
            }
            self.new_boots[node.name] = boot_now
            self.new_running[node.name] = running_record(obs, rebooted, self.today, fixed_now)
        # The report states the node after --fix: a VDS it started and verified runs now.
        fixed = {f.target for o in outcomes if o.check in STARTABLE_CHECKS for f in o.findings if f.fixed}
        running = sum(1 for v in listed if v.state is VdsState.RUNNING or v.name in fixed)
        return NodeAudit(
            node=node.name,
            reachable=True,
            rebooted=rebooted,
            boot_id=boot_now.boot_id if boot_now else None,
            boot_time=boot_now.boot_time if boot_now else None,
            vds_total=len(listed),
            vds_running=running,
            outcomes=outcomes,
            duration_s=time.monotonic() - started,
        )

    def _fix(
        self, driver: HypervisorDriver, node: Node, outcome: CheckOutcome, facts: Mapping[str, VdsFacts]
    ) -> CheckOutcome:
        fixed: list[Finding] = []
        for f in outcome.findings:
            known = facts.get(f.target, NO_FACTS)
            if known.blocked or known.cancelled:  # §7.2, §11.8: whatever a finding says, never these
                fixed.append(f)
                continue
            try:
                driver.start(f.target)
                ok = driver.get_vds(f.target).state is VdsState.RUNNING
                detail = "started by audit --fix" if ok else "start did not bring it to running"
            except IpsinfraError as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            self._record(
                "vds.start",
                f"{node.name}/{f.target}",
                result="ok" if ok else "failed",
                before={"state": "not running"},
                after={"state": "running" if ok else "unknown"},
                detail=detail,
            )
            fixed.append(f.model_copy(update={"fixed": ok}))
        return outcome.model_copy(update={"findings": fixed})


def _audit_in_threads(
    auditor: _Auditor, names: Sequence[str], max_workers: int, progress: Callable[[NodeAudit], None]
) -> dict[str, NodeAudit]:
    results: dict[str, NodeAudit] = {}
    if not names:
        return results
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(names)))) as ex:
        futures = [ex.submit(auditor.audit, auditor.fleet.nodes[n]) for n in names]
        for fut in concurrent.futures.as_completed(futures):
            result = fut.result()
            results[result.node] = result
            progress(result)
    return results


def _process_count(requested: int | None, nodes: int, *, fix: bool) -> int:
    if requested is not None:
        if requested < 1:
            raise InvalidInput(f"processes: value {requested!r}: must be at least 1")
        if requested > 1 and fix:
            raise InvalidInput(
                f"processes: value {requested!r}: an audit with fix runs in one process "
                "(its starts write the journal)"
            )
        wanted = requested
    elif fix or not hasattr(os, "fork"):
        return 1
    else:
        cpus = len(os.sched_getaffinity(0))
        wanted = min(-(-nodes // NODES_PER_PROCESS), MAX_PROCESSES_PER_CPU * cpus, MAX_PROCESSES)
    return max(1, min(wanted, nodes))


def _shard_main(auditor: _Auditor, shard: list[str], max_workers: int, out: Connection) -> None:
    """A forked worker: audit ``shard``, send each node's result, then the new boots."""
    auditor.pool = auditor.pool.for_child_process()
    try:
        _audit_in_threads(
            auditor, shard, max_workers, lambda r: out.send_bytes(b"N" + r.model_dump_json().encode())
        )
        boots = {node: boot.model_dump(mode="json") for node, boot in auditor.new_boots.items()}
        ran = {node: record.model_dump(mode="json") for node, record in auditor.new_running.items()}
        out.send_bytes(b"B" + json.dumps({"boots": boots, "ran": ran}).encode())
    except Exception as exc:  # the parent raises it; a per-node error is a result, not this
        out.send_bytes(b"X" + f"{type(exc).__name__}: {exc}".encode())
    finally:
        auditor.pool.close_opened()  # the inherited ones are the parent's to close
        out.close()


def _audit_in_processes(
    auditor: _Auditor,
    names: Sequence[str],
    processes: int,
    max_workers: int,
    progress: Callable[[NodeAudit], None],
) -> dict[str, NodeAudit]:
    """Split ``names`` over forked workers (each with its own threads and
    connections; the fleet and the journal state are inherited, read-only)."""
    ctx = multiprocessing.get_context("fork")
    shards = [list(names[i::processes]) for i in range(processes)]
    per_process = max(1, -(-max_workers // processes))
    workers: list[tuple[BaseProcess, list[str]]] = []
    readers: set[Connection] = set()
    results: dict[str, NodeAudit] = {}
    failures: list[str] = []
    try:
        for shard in shards:
            reader, writer = ctx.Pipe(duplex=False)
            proc: BaseProcess = ctx.Process(
                target=_shard_main,
                args=(auditor, shard, per_process, writer),
                name="ipsinfra-audit",
                daemon=True,
            )
            proc.start()
            writer.close()
            readers.add(reader)
            workers.append((proc, shard))
        while readers:
            for ready in multiprocessing.connection.wait(list(readers)):
                assert isinstance(ready, Connection)
                try:
                    message = ready.recv_bytes()
                except EOFError:
                    readers.discard(ready)
                    ready.close()
                    continue
                kind, body = message[:1], message[1:]
                if kind == b"N":
                    result = NodeAudit.model_validate_json(body)
                    results[result.node] = result
                    progress(result)
                elif kind == b"B":
                    stored = json.loads(body)
                    for node, boot in stored["boots"].items():
                        auditor.new_boots[node] = BootIdentity.model_validate(boot)
                    for node, record in stored["ran"].items():
                        auditor.new_running[node] = RunningRecord.model_validate(record)
                else:
                    failures.append(body.decode(errors="replace"))
        for proc, _ in workers:
            proc.join()
    finally:
        for proc, _ in workers:
            if proc.is_alive():
                proc.terminate()
                proc.join()
        for reader in readers:
            reader.close()
    if failures:
        raise IpsinfraError(f"audit worker process failed: {failures[0]}")
    for proc, shard in workers:
        for node in shard:
            if node not in results:  # the worker died (a crash in a C library, killed)
                why = f"audit worker process exited with code {proc.exitcode} before this node's result"
                results[node] = NodeAudit(node=node, reachable=False, outcomes=[unreachable(node, why)])
                progress(results[node])
    return results


def run(
    fleet: Fleet,
    pool: DriverPool,
    *,
    journal: Journal | None = None,
    nodes: Iterable[str] | None = None,
    today: dt.date | None = None,
    dc_names: Mapping[str, str] | None = None,
    reach: bool = True,
    fix: bool = False,
    recheck_delay: float = 5.0,
    boot_reader: BootReader = default_boot_reader,
    prober: Prober = tcp_probe_many,
    probe_for: ProbeFor = default_probe_for,
    probe_timeout: float = 3.0,
    node_timeout: float = 60.0,
    max_workers: int = 256,
    processes: int | None = None,
    actor: str | None = None,
    progress: Callable[[NodeAudit], None] | None = None,
) -> AuditReport:
    """Audit ``nodes`` (default: every node of the fleet) concurrently.

    Without ``fix`` nothing is changed; with it, VDS that should run and
    don't, and VDS that ran before their node's reboot and are down now, are
    started and re-verified, one journal line each; a blocked or cancelled VDS
    never. Each node's boot identity and the VDS running on it are stored in
    the journal's state (``boot:<node>``, ``ran:<node>``) for the next audit.

    ``max_workers`` nodes are audited at once (threads: the work is mostly
    waiting on the network). On a big fleet the nodes are split over
    ``processes`` forked worker processes, each with its own threads and its
    own connections (default: one per :data:`NODES_PER_PROCESS` nodes, see
    there for the caps; always one with ``fix``, whose starts write the
    journal). ``progress`` is called in this process either way; a worker
    that dies leaves its unfinished nodes as ``node_reachable`` findings
    naming it, never missing.
    """
    started_at = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    names = list(nodes) if nodes is not None else list(fleet.nodes)
    unknown = [n for n in names if n not in fleet.nodes]
    if unknown:
        raise InvalidInput(
            f"nodes: value {unknown[0]!r}: no such node (known: {', '.join(sorted(fleet.nodes))})"
        )
    shards = _process_count(processes, len(names), fix=fix)
    auditor = _Auditor(
        fleet,
        pool,
        journal,
        today=today or dt.date.today(),
        dc_names=dc_names,
        reach=reach,
        fix=fix,
        recheck_delay=recheck_delay,
        boot_reader=boot_reader,
        prober=prober,
        probe_for=probe_for,
        probe_timeout=probe_timeout,
        node_timeout=node_timeout,
        actor=actor,
    )
    report_one = progress or (lambda result: None)
    if shards > 1:
        results = _audit_in_processes(auditor, names, shards, max_workers, report_one)
    else:
        results = _audit_in_threads(auditor, names, max_workers, report_one)
    report = AuditReport(
        started=started_at,
        duration_s=time.monotonic() - t0,
        nodes=[results[n] for n in names],
    )
    if journal is not None:
        states = {f"boot:{node}": boot.model_dump(mode="json") for node, boot in auditor.new_boots.items()}
        states.update(
            {f"ran:{n}": record.model_dump(mode="json") for n, record in auditor.new_running.items()}
        )
        if states:
            journal.set_states(states)
        journal.record(
            "audit.run",
            ",".join(names),
            result="ok",
            after={
                "nodes": len(names),
                "unreachable": sum(not n.reachable for n in report.nodes),
                "findings": len(report.open_findings),
                "fixed": sum(f.fixed for f in report.findings),
            },
            actor=actor,
        )
    return report
