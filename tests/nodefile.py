"""A libvirt test-driver node file (``test:///path``) holding house-named VDS, for the CLI tests.

Each CLI run opens the file anew, so the domains exist at every open.
"""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path

from ipsinfra import naming
from ipsinfra.hypervisors import domxml
from ipsinfra.models import Nic, VdsSpec


def node_file(
    tmp: Path, name: str, ip: str, vds: list[tuple[int, str]], *, vcpus: int = 1, autostart: bool = False
) -> Path:
    """``tmp/<name>.xml``: an 8-core 16 GiB node whose main IP is ``ip``, one domain per (order, VDS IP)."""
    domains = []
    for order, vip in vds:
        spec = VdsSpec(
            name=naming.vps_name(order, ip),
            vcpus=vcpus,
            cpuset="1-3",
            memory_mib=64,
            nics=[Nic(mac=f"52:54:00:00:{order % 256:02x}:01", bridge="br0")],
            ips=[ipaddress.ip_address(vip)],
            vnc_listen=ipaddress.ip_address("127.0.0.1"),
            autostart=autostart,
        )
        xml = domxml.build_domain(spec, domain_type="test")
        domains.append(xml.replace("</name>", f"</name><uuid>{uuid.UUID(int=order)}</uuid>", 1))
    path = tmp / f"{name}.xml"
    path.write_text(
        "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads>"
        "<active>8</active><mhz>2400</mhz><model>x86_64</model></cpu>"
        f"<memory>{16 * 1024 * 1024}</memory>{''.join(domains)}</node>",
        encoding="utf-8",
    )
    return path
