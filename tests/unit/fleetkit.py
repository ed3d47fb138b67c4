"""Small fleets built in code for the pure-logic tests (no inventory files)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ipsinfra.inventory import Fleet
from ipsinfra.models import Client, Node, Site, Vds


def node(name: str, ip: str, *, kind: str = "libvirt", site: str = "msk1", cpus: int = 8, **kw: Any) -> Node:
    return Node.model_validate(
        {
            "name": name,
            "site": site,
            "main_ip": ip,
            "kind": kind,
            "uri": f"test:///{name}",
            "cpus": cpus,
            **kw,
        }
    )


def fleet(*nodes: Node, vds: tuple[Vds, ...] = (), **kw: Any) -> Fleet:
    return Fleet(
        sites={
            "msk1": Site(name="msk1", dc="DataLine", own_network=True),
            "fra1": Site(name="fra1", dc="Hetzner"),
        },
        nodes={n.name: n for n in nodes},
        vds={v.name: v for v in vds},
        clients={
            "c1": Client(
                id="c1", name="Ivan Petrov", address="Moscow", activated=dt.date(2026, 11, 3), services=1
            )
        },
        **kw,
    )


def vds(name: str, node_name: str, **kw: Any) -> Vds:
    values: dict[str, Any] = {"name": name, "node": node_name, "vcpus": 2, "memory_mib": 1024}
    values.update(kw)
    return Vds.model_validate(values)
