"""What a switch tells us, as frozen models: MAC entries, interfaces, LLDP neighbours.

Parsers (:mod:`ipsinfra.network.parsers`) produce them from CLI/JSON text;
port names are kept as the switch prints them and compared through
:attr:`SwitchFacts.names` (:class:`ipsinfra.identity.InterfaceNames`), never as
raw strings;
collection (:mod:`ipsinfra.network.switches`) wraps them per switch in a
:class:`SwitchResult`, so one dead switch never hides the others.
"""

from __future__ import annotations

import enum
import re

from pydantic import Field, field_validator

from ipsinfra.errors import SwitchError
from ipsinfra.identity import InterfaceNames
from ipsinfra.models import Frozen, normalize_mac

__all__ = [
    "CollectionReport",
    "FailureKind",
    "Interface",
    "LldpNeighbor",
    "MacEntry",
    "SwitchFacts",
    "SwitchResult",
    "natural_port_key",
]


def natural_port_key(port: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts ``Gi0/2`` before ``Gi0/10`` and ``swp2`` before ``swp10``."""
    parts = re.split(r"(\d+)", port)
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p)


_ALL_MAC_FIELDS = {"mac", "port", "vlan", "kind"}


class MacEntry(Frozen):
    """One MAC-table (FDB) entry.

    >>> MacEntry(mac="0010.0de0.e289", port="Fa0/1", vlan=1)
    MacEntry(mac='00:10:0d:e0:e2:89', port='Fa0/1', vlan=1, kind='')
    """

    mac: str
    port: str = Field(min_length=1)
    vlan: int | None = None
    kind: str = Field(default="", description="dynamic, static, ... as the switch says, lower case")

    @field_validator("mac", mode="before")
    @classmethod
    def _mac(cls, v: object) -> str:
        return normalize_mac(str(v))

    @classmethod
    def trusted(cls, mac: str, port: str, vlan: int | None, kind: str) -> MacEntry:
        """An entry from values already in their valid form, not validated again.

        For a parser's loop over a 10k-line table, where validating each entry
        cost more than parsing it: ``mac`` must be normalised (``aa:bb:...``)
        and ``port`` non-empty. Sets what ``model_construct`` sets, at under
        half its cost; every such entry shares one fields-set, which a frozen
        model never changes (``model_copy`` copies it first), so the garbage
        collector has one object less per entry to walk.
        """
        entry = cls.__new__(cls)
        setattr_ = object.__setattr__  # the model is frozen
        setattr_(entry, "__dict__", {"mac": mac, "port": port, "vlan": vlan, "kind": kind})
        setattr_(entry, "__pydantic_fields_set__", _ALL_MAC_FIELDS)
        setattr_(entry, "__pydantic_extra__", None)
        setattr_(entry, "__pydantic_private__", None)
        return entry

    @property
    def multicast(self) -> bool:
        """Group addresses (01:00:5e:..., 33:33:..., ff:ff:...) never identify a server."""
        return bool(int(self.mac[:2], 16) & 1)


class Interface(Frozen):
    """A switch port's status and description."""

    name: str = Field(min_length=1)
    description: str = ""
    admin_up: bool | None = None
    oper_up: bool | None = None
    vlan: str | None = None


class LldpNeighbor(Frozen):
    """What is plugged into ``local_port``, as LLDP reports it."""

    local_port: str = Field(min_length=1)
    name: str = ""
    port_id: str = ""
    chassis_id: str = ""
    capabilities: tuple[str, ...] = ()

    @property
    def is_switch(self) -> bool:
        """A bridge or router neighbour: the port is an uplink, not a server."""
        caps = {c.strip().lower() for c in self.capabilities}
        return bool(caps & {"bridge", "b", "router", "r"})


class SwitchFacts(Frozen):
    """Everything one poll of one switch returned, parsed."""

    switch: str
    platform: str
    mac_table: tuple[MacEntry, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    neighbors: tuple[LldpNeighbor, ...] = ()

    @property
    def names(self) -> InterfaceNames:
        """This switch's port namespace: ``facts.names.same("Et1", "Ethernet1")`` on Arista."""
        return InterfaceNames.of(self.platform)

    def ports_of(self, mac: str) -> list[str]:
        """The ports ``mac`` is learnt on right now (normally one), as the MAC table spells them."""
        wanted = normalize_mac(mac)
        return sorted({e.port for e in self.mac_table if e.mac == wanted}, key=natural_port_key)

    def interface(self, name: str) -> Interface | None:
        """The interface ``name`` (any spelling of it: ``Ethernet1`` finds Arista's ``Et1``)."""
        key = self.names.key(name)
        return next((i for i in self.interfaces if self.names.key(i.name) == key), None)


class FailureKind(enum.StrEnum):
    """Why a switch gave no facts."""

    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    TIMEOUT = "timeout"
    UNKNOWN_PLATFORM = "unknown_platform"
    GARBAGE_OUTPUT = "garbage_output"
    COMMAND_FAILED = "command_failed"
    NO_CREDENTIALS = "no_credentials"
    HOST_KEY = "host_key"  # not pinned, or not the pinned one: nothing was sent
    ERROR = "error"


class SwitchResult(Frozen):
    """One switch's outcome: ``facts`` when ok, else ``failure`` and ``reason``."""

    switch: str
    facts: SwitchFacts | None = None
    failure: FailureKind | None = None
    reason: str = ""
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None and self.facts is not None


class CollectionReport(Frozen):
    """One :class:`SwitchResult` per switch asked, keyed by switch name."""

    results: dict[str, SwitchResult]
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())

    @property
    def facts(self) -> list[SwitchFacts]:
        return [r.facts for r in self.results.values() if r.facts is not None]

    @property
    def failed(self) -> dict[str, SwitchResult]:
        return {n: r for n, r in self.results.items() if not r.ok}

    def raise_on_error(self) -> None:
        """Raise :class:`SwitchError` listing every failed switch, if any failed."""
        if self.failed:
            lines = [f"{n}: {r.failure}: {r.reason}" for n, r in sorted(self.failed.items())]
            raise SwitchError("switches failed: " + "; ".join(lines))
