"""The network map (§4.6): which server is on which port of which switch. Pure.

:func:`build_port_map` joins the switches' MAC tables with the servers' MACs
(``mac -> server name``, from the hypervisors for VDS and node NICs, from the
inventory for dedicated servers); :func:`diff_port_map` compares the map on
record with the one observed. Neither opens a socket.

Example::

    >>> observed = build_port_map(report.facts, {"52:54:00:aa:00:01": "ded1"})
    >>> observed.port_of("ded1")
    SwitchPort(switch='sw1-msk1', port='Gi0/5', description='ded1', macs=['52:54:00:aa:00:01'],
               server='ded1', uplink=False)
    >>> diff_port_map(recorded, observed).moved
    [PortMove(server='ded1', before=PortRef(switch='sw1-msk1', port='Gi0/4'),
              after=PortRef(switch='sw1-msk1', port='Gi0/5'))]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping

from pydantic import Field

from ipsinfra.identity import interface_key
from ipsinfra.models import DedicatedServer, Frozen, SwitchPort, normalize_mac
from ipsinfra.network.models import SwitchFacts, natural_port_key

__all__ = [
    "DEFAULT_UPLINK_THRESHOLD",
    "DescriptionMismatch",
    "PortConflict",
    "PortMap",
    "PortMapDiff",
    "PortMove",
    "PortRef",
    "baseline_port_map",
    "build_port_map",
    "diff_port_map",
    "diff_with_baseline",
    "find_uplinks",
    "recorded_or_baseline",
]

UNMAPPED_LINE = (
    "unmapped  no map recorded yet: compared with the inventory's switch/switch_port (--write records it)"
)
# More distinct MACs than this on one port and it is a trunk/uplink. A hypervisor
# node's port carries one MAC per VDS, so this is well above a node's VDS count.
DEFAULT_UPLINK_THRESHOLD = 64


class PortRef(Frozen):
    switch: str
    port: str

    def __str__(self) -> str:
        return f"{self.switch} {self.port}"


class PortMove(Frozen):
    server: str
    before: PortRef
    after: PortRef


class DescriptionMismatch(Frozen):
    """A port whose description on the switch is not the name of the server on it."""

    switch: str
    port: str
    server: str
    description: str


class PortConflict(Frozen):
    """A non-uplink port where MACs of several servers are seen and none is the host."""

    switch: str
    port: str
    servers: tuple[str, ...]


class PortMap(Frozen):
    """``switch, port -> server``: one :class:`SwitchPort` per attributed port or uplink.

    ``ports`` are sorted by switch, then naturally by port (Gi0/2 before Gi0/10).
    """

    ports: tuple[SwitchPort, ...] = ()
    conflicts: tuple[PortConflict, ...] = ()
    platforms: dict[str, str] = Field(
        default_factory=dict,
        description="switch -> platform, for comparing its ports canonically (not in the map file)",
    )

    def __eq__(self, other: object) -> bool:
        """Maps are equal when their ports and conflicts are: ``platforms`` only says how to compare."""
        if not isinstance(other, PortMap):
            return NotImplemented
        return (self.ports, self.conflicts) == (other.ports, other.conflicts)

    __hash__ = None  # type: ignore[assignment]  # holds mutable SwitchPorts, as before

    def port_key(self, switch: str, port: str) -> tuple[str, str]:
        """``(switch, canonical port)``: ``Et1`` and ``Ethernet1`` of an Arista are one port.

        A switch of unknown platform (a map read from its file) compares as printed.
        """
        return switch, interface_key(self.platforms.get(switch, ""), port)

    def by_server(self) -> dict[str, SwitchPort]:
        """Server name -> its port (the first one if a server shows on two ports)."""
        out: dict[str, SwitchPort] = {}
        for p in self.ports:
            if p.server is not None:
                out.setdefault(p.server, p)
        return out

    def port_of(self, server: str) -> SwitchPort | None:
        return self.by_server().get(server)

    def get(self, switch: str, port: str) -> SwitchPort | None:
        """The map's entry for ``port`` of ``switch``, whichever way ``port`` is spelled."""
        wanted = self.port_key(switch, port)
        return next((p for p in self.ports if self.port_key(p.switch, p.port) == wanted), None)

    def switches(self) -> list[str]:
        return sorted({p.switch for p in self.ports})


class PortMapDiff(Frozen):
    """What changed between the recorded map and the observed one."""

    moved: list[PortMove] = Field(default_factory=list)
    appeared: list[SwitchPort] = Field(default_factory=list)
    vanished: list[SwitchPort] = Field(default_factory=list)
    description_mismatches: list[DescriptionMismatch] = Field(default_factory=list)
    unrecorded: bool = Field(
        default=False,
        description="no map was on record: compared with the inventory's baseline (diff_with_baseline)",
    )

    @property
    def changed(self) -> bool:
        """True when the map file should be (re)written (descriptions are the switch's business)."""
        return bool(self.unrecorded or self.moved or self.appeared or self.vanished)

    @property
    def empty(self) -> bool:
        return not (self.changed or self.description_mismatches)

    def lines(self) -> list[str]:
        """Human lines, for the CLI and the shift hand-over (§4.11)."""
        out = [UNMAPPED_LINE] if self.unrecorded else []
        out += [f"moved     {m.server}: {m.before} -> {m.after}" for m in self.moved]
        out += [f"appeared  {p.server}: {p.switch} {p.port}" for p in self.appeared]
        out += [f"vanished  {p.server}: was {p.switch} {p.port}" for p in self.vanished]
        out += [
            f"describe  {d.switch} {d.port}: description {d.description!r} != server {d.server!r}"
            for d in self.description_mismatches
        ]
        return out


def _sort_key(p: SwitchPort) -> tuple[str, tuple[tuple[int, int | str], ...]]:
    return p.switch, natural_port_key(p.port)


def find_uplinks(
    facts: SwitchFacts,
    *,
    threshold: int = DEFAULT_UPLINK_THRESHOLD,
    uplinks: Collection[str] = (),
) -> set[str]:
    """Ports of ``facts.switch`` that are uplinks/trunks, never a server's port.

    A port is an uplink when it is listed in ``uplinks``, when its LLDP
    neighbour is a switch or router, or when more than ``threshold`` distinct
    MACs are learnt on it. Ports are matched in their canonical form
    (:attr:`SwitchFacts.names`): Arista's LLDP says ``Ethernet49`` where its MAC
    table says ``Et49``, Huawei's ``XGigabitEthernet0/0/1`` where it says
    ``XGE0/0/1``. Each uplink is returned once, spelled as the MAC table spells
    it (else as the interface table, else as LLDP or ``uplinks`` do).
    """
    names = facts.names
    macs: dict[str, set[str]] = defaultdict(set)  # as printed, in the table's order
    for entry in facts.mac_table:
        macs[entry.port].add(entry.mac)
    spelled: dict[str, str] = {}  # canonical -> the MAC table's spelling, else the interface table's
    by_key: dict[str, set[str]] = defaultdict(set)
    for port, seen in macs.items():
        key = names.key(port)
        spelled.setdefault(key, port)
        by_key[key] |= seen
    for iface in facts.interfaces:
        spelled.setdefault(names.key(iface.name), iface.name)
    found = {names.key(p) for p in uplinks}
    found |= {names.key(n.local_port) for n in facts.neighbors if n.is_switch}
    found |= {key for key, seen in by_key.items() if len(seen) > threshold}
    given = {names.key(p): p for p in (*uplinks, *(n.local_port for n in facts.neighbors))}
    return {spelled.get(key) or given.get(key) or key for key in found}


def build_port_map(
    facts: Iterable[SwitchFacts],
    server_macs: Mapping[str, str],
    *,
    hosts: Collection[str] = (),
    threshold: int = DEFAULT_UPLINK_THRESHOLD,
    uplinks: Mapping[str, Collection[str]] | None = None,
) -> PortMap:
    """Join MAC tables with ``server_macs`` (``mac -> server``) into a :class:`PortMap`.

    Args:
        facts: one poll per switch.
        server_macs: every known MAC (any spelling) and the server it belongs to.
        hosts: names that own a port when several servers show on it (a
            hypervisor node: its VDS's MACs are seen on the node's port too).
        threshold: more distinct MACs than this on a port make it an uplink.
        uplinks: ports known to be uplinks, by switch name.

    Uplinks are in the map (``uplink=True``, no server, no MACs); ports whose
    MACs belong to several servers and no single host are listed in ``conflicts``.
    """
    known = {normalize_mac(mac): name for mac, name in server_macs.items()}
    host_names = set(hosts)
    ports: list[SwitchPort] = []
    conflicts: list[PortConflict] = []
    platforms: dict[str, str] = {}
    for f in facts:
        platforms[f.switch] = f.platform
        key = f.names.key  # every port is matched in its canonical form
        up = find_uplinks(f, threshold=threshold, uplinks=(uplinks or {}).get(f.switch, ()))
        up_keys = {key(p) for p in up}
        descriptions = {key(i.name): i.description for i in f.interfaces}
        keys: dict[str, str] = {}  # as printed -> canonical, for this table's few ports
        spelled: dict[str, str] = {}  # canonical -> the MAC table's first spelling
        by_port: dict[str, set[str]] = defaultdict(set)
        for entry in f.mac_table:
            if entry.mac in known:
                k = keys.get(entry.port) or keys.setdefault(entry.port, key(entry.port))
                if k not in up_keys:
                    by_port[spelled.setdefault(k, entry.port)].add(entry.mac)
        for port in up:
            ports.append(
                SwitchPort(
                    switch=f.switch, port=port, description=descriptions.get(key(port), ""), uplink=True
                )
            )
        for port, macs in by_port.items():
            servers = sorted({known[m] for m in macs})
            if len(servers) == 1:
                server: str | None = servers[0]
            else:
                owners = [s for s in servers if s in host_names]
                server = owners[0] if len(owners) == 1 else None
            if server is None:
                conflicts.append(PortConflict(switch=f.switch, port=port, servers=tuple(servers)))
                continue
            ports.append(
                SwitchPort(
                    switch=f.switch,
                    port=port,
                    description=descriptions.get(key(port), ""),
                    macs=sorted(macs),
                    server=server,
                )
            )
    return PortMap(
        ports=tuple(sorted(ports, key=_sort_key)),
        conflicts=tuple(sorted(conflicts, key=lambda c: (c.switch, natural_port_key(c.port)))),
        platforms=platforms,
    )


def diff_port_map(
    recorded: PortMap, observed: PortMap, *, switches: Collection[str] | None = None
) -> PortMapDiff:
    """What moved, appeared and vanished between ``recorded`` and ``observed``.

    Args:
        switches: compare only servers recorded on these switches (the ones that
            answered this poll), so a dead switch does not make its servers
            "vanish". Default: every switch.

    Description mismatches are observed server ports whose description is not
    the server's name (§4.4: our name everywhere).
    """
    rec = recorded.by_server()
    obs = observed.by_server()
    scope = set(switches) if switches is not None else None
    # ports compare canonically: the map on record may spell a port as another poll did
    both = PortMap(platforms={**recorded.platforms, **observed.platforms})
    moved: list[PortMove] = []
    appeared: list[SwitchPort] = []
    vanished: list[SwitchPort] = []
    for server, now in sorted(obs.items()):
        before = rec.get(server)
        if before is None:
            appeared.append(now)
        elif both.port_key(before.switch, before.port) != both.port_key(now.switch, now.port):
            moved.append(
                PortMove(
                    server=server,
                    before=PortRef(switch=before.switch, port=before.port),
                    after=PortRef(switch=now.switch, port=now.port),
                )
            )
    for server, before in sorted(rec.items()):
        if server not in obs and (scope is None or before.switch in scope):
            vanished.append(before)
    mismatches = [
        DescriptionMismatch(switch=p.switch, port=p.port, server=p.server, description=p.description)
        for p in observed.ports
        if p.server is not None and p.description != p.server
    ]
    return PortMapDiff(
        moved=moved,
        appeared=sorted(appeared, key=_sort_key),
        vanished=sorted(vanished, key=_sort_key),
        description_mismatches=mismatches,
    )


def baseline_port_map(servers: Iterable[DedicatedServer], switches: Collection[str]) -> PortMap:
    """The map the inventory states: each dedicated server on its ``switch``/``switch_port``.

    Only servers on one of ``switches`` (a site's) with both fields set; their
    MACs come along. This is the map on record before any was written, so a
    first poll reports what differs from the inventory, not every server as new.

    >>> ded1 = DedicatedServer(name="ded1", site="msk1", switch="sw1", port="Gi0/5")
    >>> [(p.switch, p.port, p.server) for p in baseline_port_map([ded1], {"sw1"}).ports]
    [('sw1', 'Gi0/5', 'ded1')]
    """
    wanted = set(switches)
    ports = [
        SwitchPort(switch=d.switch, port=d.port, server=d.name, macs=list(d.macs))
        for d in servers
        if d.switch is not None and d.port is not None and d.switch in wanted
    ]
    return PortMap(ports=tuple(sorted(ports, key=_sort_key)))


def recorded_or_baseline(recorded: PortMap, baseline: PortMap) -> PortMap:
    """The map to diff against: the recorded one, or the inventory's baseline while none is recorded.

    A site whose map was never written (no file, or no port in it) has no
    record: without the baseline every server on it would be reported
    "appeared" on the first run.
    """
    return recorded if recorded.ports else baseline


def diff_with_baseline(
    recorded: PortMap, baseline: PortMap, observed: PortMap, *, switches: Collection[str] | None = None
) -> PortMapDiff:
    """:func:`diff_port_map` against the recorded map, or against ``baseline`` while none is recorded.

    Against the baseline the diff is marked ``unrecorded`` (so ``changed``: the
    map is still to be written) and lists only what differs from the inventory.
    """
    diff = diff_port_map(recorded_or_baseline(recorded, baseline), observed, switches=switches)
    if recorded.ports or not observed.ports:
        return diff
    return diff.model_copy(update={"unrecorded": True})
