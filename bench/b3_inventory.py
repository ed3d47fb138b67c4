"""B3: node inventory in bounded backend calls vs naive per-VDS calls."""

from __future__ import annotations

import collections
import functools
import ipaddress
import tempfile
from pathlib import Path
from typing import Any

from bench.core import Row, interleave, row
from bench.hyper import Calls, RpcConn, filled_driver, naive_list, node_file, node_model
from ipsinfra import naming
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.hypervisors.proxmox import ProxmoxDriver, connect, parse_vm

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
