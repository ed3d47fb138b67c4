"""B3: node inventory in bounded backend calls vs naive per-VDS calls."""

from __future__ import annotations

import collections
import functools
import ipaddress
import tempfile
from pathlib import Path
from typing import Any

import libvirt

from bench.core import Row, interleave, row
from bench.hyper import Calls, RpcConn, filled_driver, naive_list, node_file, node_model
from ipsinfra import naming
from ipsinfra.hypervisors import domxml, nodeshell
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.hypervisors.proxmox import ProxmoxDriver, connect, parse_vm
from ipsinfra.models import Nic, VdsSpec

TARGET = 8.0
MAX_CALLS_PER_NODE = 3


def libvirt_rows(
    counts: list[int], reps: int, *, rpc_delay_ms: float = 0.0, warmup: bool = True
) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="ipsb-b3-", dir="/var/tmp") as tmp:
        xml = node_file(Path(tmp))
        for n in counts:
            node = node_model(f"lv{n}", n, xml)
            driver = filled_driver(node, n, 1000)
            conn = RpcConn(driver.ex_conn, delay=rpc_delay_ms / 1000)
            ours = LibvirtDriver(node, conn=conn)
            assert len(ours.list_vds()) == len(naive_list(conn, node.name)) == n
            base, mine = interleave(
                functools.partial(naive_list, conn, node.name), ours.list_vds, reps, warmup=warmup
            )
            calls_base, calls_ours = Calls(), Calls()
            naive_list(RpcConn(driver.ex_conn, calls=calls_base), node.name)
            LibvirtDriver(node, conn=RpcConn(driver.ex_conn, calls=calls_ours)).list_vds()
            per_node = calls_ours.total()
            conn_calls = sum(v for k, v in calls_ours.counts.items() if k.startswith("conn."))
            suffix = f"-rpc{rpc_delay_ms:g}ms" if rpc_delay_ms else ""
            where = (
                f"test driver + {rpc_delay_ms:g} ms per RPC (in-benchmark delay)"
                if rpc_delay_ms
                else "libvirt test driver (in-process)"
            )
            r = row(
                f"B3.libvirt{suffix}.{n}",
                f"list_vds, 1 node x {n} domains, {where}",
                base,
                mine,
                kind="speedup",
                limit=TARGET,
                baseline="per-domain lookupByName+state+autostart+XMLDesc",
                target=f">= {TARGET:g}x; calls/node <= {MAX_CALLS_PER_NODE}",
                extra={
                    "calls_per_node_ipsinfra": per_node,
                    "connection_calls_ipsinfra": conn_calls,
                    "calls_per_node_baseline": calls_base.total(),
                    "calls_ipsinfra": dict(calls_ours.counts),
                },
            )
            r.passed = r.passed and per_node <= MAX_CALLS_PER_NODE
            r.notes = (
                f"calls/node: ipsinfra {per_node} (connection-level {conn_calls} + XMLDesc per domain), "
                f"naive {calls_base.total()}"
            )
            rows.append(r)
            driver.close()
    return rows


def _fill_pve(lab: Any, nodes: list[str], total: int) -> None:
    def fill() -> None:
        vmid = 100
        per = total // len(nodes)
        for k, pve_node in enumerate(nodes):
            for i in range(per):
                order = 10000 + vmid
                ip = ipaddress.ip_address("10.1.0.0") + 256 * (k + 1)
                house = naming.vps_name(order, ip)
                lab.pve.add_vm(
                    vmid,
                    naming.pve_safe_name(house),
                    node=pve_node,
                    status="running" if i % 3 == 0 else "stopped",
                    config={
                        "cores": 2,
                        "sockets": 1,
                        "memory": "1024",
                        "onboot": i % 2,
                        "affinity": "1-3",
                        "net0": f"virtio=52:54:00:{vmid >> 8 & 255:02x}:{vmid & 255:02x}:01,bridge=vmbr0",
                        "scsi0": f"local-lvm:vm-{vmid}-disk-0,size=10G",
                        "args": f"-vnc 127.0.0.1:{vmid}",
                        "description": f"ipsinfra-name: {house}\nclient c{vmid}",
                    },
                )
                vmid += 1

    lab.call(fill)


def naive_pve(api: Any, nodes: list[str]) -> int:
    """proxmoxer, one status/current + one config call per VM."""
    n = 0
    for pve_node in nodes:
        for r in api.nodes(pve_node).qemu.get():
            vm = api.nodes(pve_node).qemu(r["vmid"])
            status = vm.status.current.get()
            config = vm.config.get()
            parse_vm(status, config, pve_node)
            n += 1
    return n


def proxmox_rows(total: int, node_count: int, reps: int, *, warmup: bool = True) -> list[Row]:
    from ipsinfra.lab.pve import start_fake_pve

    names = [f"pve{i}" for i in range(1, node_count + 1)]
    with start_fake_pve(dict.fromkeys(names, 64)) as lab:
        _fill_pve(lab, names, total)
        models = [lab.node_model(n, f"10.1.{i + 1}.0") for i, n in enumerate(names)]
        drivers = [ProxmoxDriver(m) for m in models]
        api = connect(models[0])

        def ours() -> int:
            return sum(len(d.list_vds()) for d in drivers)

        assert ours() == naive_pve(api, names) == total
        base, mine = interleave(lambda: naive_pve(api, names), ours, reps, warmup=warmup)

        def calls(fn: Any) -> dict[str, int]:
            lab.call(lab.pve.requests.clear)  # the fake keeps only its last max_requests
            fn()
            per: collections.Counter[str] = collections.Counter()
            for _m, path, _b in lab.requests():
                parts = path.removeprefix("/api2/json").split("/")
                per[parts[2] if len(parts) > 2 and parts[1] == "nodes" else "cluster"] += 1
            return dict(per)

        ours_calls, base_calls = calls(ours), calls(lambda: naive_pve(api, names))
        worst = max(ours_calls.values())
        for d in drivers:
            d.close()
        r = row(
            f"B3.proxmox.{total}",
            f"list_vds, {total} VMs over {node_count} nodes, fakepve HTTPS on loopback",
            base,
            mine,
            kind="speedup",
            limit=TARGET,
            baseline="proxmoxer status/current + config per VM",
            target=f">= {TARGET:g}x; calls/node <= {MAX_CALLS_PER_NODE}",
            extra={"calls_per_node_ipsinfra": ours_calls, "calls_per_node_baseline": base_calls},
        )
        r.passed = r.passed and worst <= MAX_CALLS_PER_NODE
        r.notes = (
            f"calls/node: ipsinfra max {worst} ({ours_calls}); naive {max(base_calls.values())} per node; "
            f"driver listing mode {drivers[0].ex_listing_mode}"
        )
        return [r]


# --- libvirt over SSH: one exec per node (Node.libvirt_listing = "ssh") ----------------


def define_domains(conn: Any, count: int, first_order: int = 5000) -> None:
    """``count`` shut-off house domains on a real libvirtd (qemu, slirp NICs: session mode)."""
    domain_type = domxml.guest_domain_type(conn.getCapabilities())
    ip = ipaddress.ip_address("10.0.0.0") + 512
    for i in range(count):
        order = first_order + i
        spec = VdsSpec(
            name=naming.vps_name(order, ip),
            vcpus=2,
            cpuset="1-3",
            memory_mib=64,
            nics=[Nic(mac=f"52:54:00:{order >> 16 & 255:02x}:{order >> 8 & 255:02x}:{order & 255:02x}")],
            vnc_listen=ipaddress.ip_address("127.0.0.1"),
        )
        conn.defineXML(domxml.build_domain(spec, domain_type=domain_type, nic_backend="user"))


def libvirt_ssh_rows(counts: list[int], reps: int, *, rtt_ms: float, warmup: bool = True) -> list[Row]:
    """list_vds of a ``qemu+ssh://`` node (``libvirt_listing`` auto, the default) vs naive
    per-domain RPCs over the SAME real qemu+ssh connection, ``rtt_ms`` on the network path.

    One REAL session libvirtd (the lab's) holds the domains; an sshd test host
    reached through :class:`bench.netlab.Forwarder` in a namespace carries
    libvirt's own ssh transport (``nc -U`` to the daemon's socket). The
    baseline pays one round trip per libvirt RPC on that path; ipsinfra runs
    one exec over the same ssh (its ControlMaster opened once and reused, like
    the baseline's libvirt connection).
    """
    from bench.netlab import Forwarder, LatencyLink
    from ipsinfra.lab.libvirtd import LibvirtDaemon, check_requirements
    from ipsinfra.lab.sshd import SshHostPool, pinned_ssh_command

    check_requirements()
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="ipsb-b3s-", dir="/var/tmp") as tmp_s,
        SshHostPool() as pool,
    ):
        tmp = Path(tmp_s)
        tmp.chmod(0o755)  # the daemons run as nobody
        (host,) = pool.start(["b3node"])
        with LatencyLink(150, rtt_ms) as link, Forwarder(link, [host.port]) as forwarder:
            ip, fport = forwarder.address(host.port)
            known = tmp / "known_hosts"
            known.write_text(
                "".join(
                    " ".join([f"[{ip}]:{fport}", *line.split()[1:]]) + "\n"
                    for line in pool.known_hosts.read_text().splitlines()
                    if line.startswith(f"[{host.host}]:{host.port} ")
                )
            )
            # The ssh both libvirt and ipsinfra run (the URI's command=).
            ssh = pinned_ssh_command(tmp / "ssh-to-node", known)
            for n in counts:
                with LibvirtDaemon(f"b3lv{n}", tmp / f"lv{n}", index=150) as daemon:
                    local = libvirt.open(daemon.uri)
                    define_domains(local, n)
                    local.close()
                    uri = (
                        f"qemu+ssh://{host.user}@{ip}:{fport}/session?socket={daemon.socket_path}"
                        f"&keyfile={host.key_file}&command={ssh}"
                    )
                    node = node_model(f"lvs{n}", n, tmp / "unused.xml").model_copy(update={"uri": uri})
                    assert node.libvirt_listing == "auto"
                    remote = libvirt.open(uri)  # a real libvirt connection across the link
                    calls = Calls()
                    ours = LibvirtDriver(node, conn=RpcConn(remote, calls=calls))
                    got = ours.list_vds()
                    want = naive_list(remote, node.name)
                    assert got == want and len(got) == n, (len(got), len(want))
                    rpcs = calls.total()
                    via = nodeshell.libvirt_ssh(node)
                    assert via is not None
                    on_node = nodeshell.list_domains(node, via=via).via
                    base, mine = interleave(
                        functools.partial(naive_list, remote, node.name),
                        ours.list_vds,
                        reps,
                        warmup=warmup,
                    )
                    r = row(
                        f"B3.libvirt-ssh-{rtt_ms:g}ms.{n}",
                        f"list_vds, 1 real libvirtd x {n} domains over qemu+ssh:// "
                        f"(libvirt_listing=auto, the default), {rtt_ms:g} ms RTT",
                        base,
                        mine,
                        kind="speedup",
                        limit=TARGET,
                        baseline=(
                            f"per-domain lookupByName+state+autostart+XMLDesc over the same qemu+ssh "
                            f"connection, {rtt_ms:g} ms RTT"
                        ),
                        target=f">= {TARGET:g}x; calls/node <= {MAX_CALLS_PER_NODE}",
                        extra={
                            "calls_per_node_ipsinfra": 1,
                            "libvirt_rpcs_ipsinfra": rpcs,
                            "on_node": on_node,
                        },
                    )
                    r.passed = r.passed and rpcs == 0
                    r.notes = (
                        f"calls/node: ipsinfra 1 SSH exec ({rpcs} libvirt RPCs from the client; {on_node} "
                        f"runs on the node), naive {4 * n + 2} libvirt RPCs; both on the real network path, "
                        f"RTT by {'netem' if link.netem else 'the forwarder'}"
                    )
                    rows.append(r)
                    remote.close()
    return rows
