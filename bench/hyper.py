"""Hypervisor backends for B3/B4/B6: libvirt's test driver, a per-RPC delay, call counting.

:class:`RpcConn` wraps a REAL ``virConnect`` (libvirt's in-process test driver)
and every ``virDomain`` it hands out. Each method call on either counts as one
backend call (``name()`` excepted: libvirt answers it from the client-side
object) and, with ``delay`` > 0, first sleeps ``delay`` seconds: the round trip
a remote libvirtd (``qemu+ssh://``, ``qemu+tls://``) costs per RPC. The sleep is
in the benchmark's stand-in for the network, never in ipsinfra's code.

B6 has the same test driver served by a real session libvirtd instead
(:func:`node_file_with_domains`, :func:`remote_test_node`): the domains then
live in the daemon, not in the measured process.
"""

from __future__ import annotations

import collections
import ipaddress
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import libvirt

from ipsinfra import naming
from ipsinfra.hypervisors import domxml
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.models import Disk, HypervisorKind, Nic, Node, Vds, VdsSpec

NODE_XML = """<node>
  <cpu>
    <nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
    <active>{cpus}</active><mhz>2400</mhz><model>x86_64</model>
  </cpu>
  <memory>{memory_kib}</memory>
</node>
"""
LOCAL_CALLS = {"name"}


class Calls:
    """A thread-safe call counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()

    def add(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


class RpcConn:
    """Delegate to ``target``; each call is one counted RPC, delayed by ``delay`` seconds."""

    def __init__(self, target: Any, *, delay: float = 0.0, calls: Calls | None = None, prefix: str = "conn"):
        self._target = target
        self._delay = delay
        self._calls = calls
        self._prefix = prefix

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        if not callable(value) or attr in LOCAL_CALLS:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._calls is not None:
                self._calls.add(f"{self._prefix}.{attr}")
            if self._delay:
                time.sleep(self._delay)
            return self._wrap(value(*args, **kwargs))

        return call

    def _wrap(self, result: Any) -> Any:
        if type(result).__name__ == "virDomain":
            return RpcConn(result, delay=self._delay, calls=self._calls, prefix="dom")
        if isinstance(result, list):
            return [self._wrap(r) for r in result]
        if isinstance(result, tuple):
            return tuple(self._wrap(r) for r in result)
        return result


def node_file(directory: Path, cpus: int = 8) -> Path:
    path = directory / "node.xml"
    if not path.exists():
        path.write_text(NODE_XML.format(cpus=cpus, memory_kib=64 * 1024 * 1024), encoding="utf-8")
    return path


def node_model(name: str, index: int, node_xml: Path, cpus: int = 8) -> Node:
    """A libvirt node on the test driver; its main IP (never contacted) names its VDS."""
    ip = ipaddress.ip_address("10.0.0.0") + 256 + index
    return Node(
        name=name,
        site="lab",
        main_ip=ip,
        kind=HypervisorKind.LIBVIRT,
        uri=f"test://{node_xml}",
        cpus=cpus,
        vnc_listen=ipaddress.ip_address("127.0.0.1"),
    )


def spec(node: Node, order: int, *, autostart: bool) -> VdsSpec:
    return VdsSpec(
        name=naming.vps_name(order, node.main_ip),
        vcpus=2,
        cpuset="1-3",
        memory_mib=64,
        disks=[Disk(size_gib=1)],
        nics=[Nic(mac=f"52:54:00:{order >> 16 & 255:02x}:{order >> 8 & 255:02x}:{order & 255:02x}")],
        vnc_listen=ipaddress.ip_address("127.0.0.1"),
        autostart=autostart,
    )


def filled_driver(node: Node, count: int, first_order: int, *, running_every: int = 3) -> LibvirtDriver:
    """A test-driver node with ``count`` domains (every 2nd autostart, every ``running_every``-th running)."""
    driver = LibvirtDriver(node)
    for i in range(count):
        driver.define(spec(node, first_order + i, autostart=i % 2 == 0), start=i % running_every == 0)
    return driver


def node_file_with_domains(path: Path, specs: Sequence[VdsSpec], cpus: int = 8) -> Path:
    """A test-driver node file that also holds ``specs`` as house domains (running; no autostart).

    The XML is what :meth:`LibvirtDriver.define` sends to the test driver
    (``domxml.build_domain``, domain type ``test``); whoever opens the file
    (``test:///path`` or, through a daemon, ``test+unix:///path?socket=...``)
    gets a private copy of them, parsed on that side of the connection.
    The test-driver file format has no autostart flag: set it over the connection.
    """
    domains = "".join(domxml.build_domain(s, domain_type="test", nic_backend="bridge") for s in specs)
    text = NODE_XML.format(cpus=cpus, memory_kib=64 * 1024 * 1024)
    path.write_text(text.replace("</node>", f"{domains}</node>"), encoding="utf-8")
    path.chmod(0o644)
    return path


def remote_test_node(name: str, index: int, node_xml: Path, socket: Path, cpus: int = 8) -> Node:
    """:func:`node_model`, but served by a libvirtd's test driver: ``test+unix:///<node_xml>?socket=<socket>``."""
    node = node_model(name, index, node_xml, cpus)
    return node.model_copy(update={"uri": f"test+unix://{node_xml.resolve()}?socket={socket}"})


def naive_list(conn: Any, node: str) -> list[Vds]:
    """The classic per-domain listing: ids + defined names, then lookup/state/autostart/XML each."""
    names = [conn.lookupByID(i).name() for i in conn.listDomainsID()] + list(conn.listDefinedDomains())
    out = []
    for name in names:
        dom = conn.lookupByName(name)
        state, reason = dom.state()
        autostart = bool(dom.autostart())
        xml = dom.XMLDesc(0)
        out.append(
            domxml.parse_domain(
                xml, node=node, state=domxml.state_from_libvirt(state, reason), autostart=autostart
            )
        )
    return sorted(out, key=lambda v: v.name)


def open_test(node: Node) -> Any:
    return libvirt.open(node.uri)
