"""list_vds in one exec: the on-node virsh script, its parser, and the driver's ssh mode.

The script runs in a real ``sh`` with the real ``virsh`` against libvirt's test
driver (a node file holding the domains, so virsh and the RPC path read the
same node); the lab test in ``tests/e2e`` runs it over real SSH.
"""

from __future__ import annotations

import ipaddress
import subprocess
import uuid
from pathlib import Path

import pytest

from ipsinfra import naming
from ipsinfra.hypervisors import domxml, nodeshell
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.models import HypervisorKind, Nic, Node, VdsSpec
from tests.conftest import missing, require_binary

MARK = "@@ipsinfra-0123456789abcdef"
UUID1 = "6695eb01-f6a4-8304-79aa-97f2502e193f"
UUID2 = "11111111-2222-3333-4444-555555555555"
UUID3 = "aaaaaaaa-2222-3333-4444-555555555555"


@pytest.fixture
def _virsh() -> None:
    require_binary("virsh", "apt-get install libvirt-clients")


needs_virsh = pytest.mark.usefixtures("_virsh")


def _domain(name: str, uuid: str) -> str:
    return f"<domain type='test'>\n  <name>{name}</name>\n  <uuid>{uuid}</uuid>\n</domain>"


def test_parse_listing_splits_markers_glued_to_virsh_output() -> None:
    # virsh's `echo` ends without a newline: the dumpxml output follows on the same line.
    new = UUID1.replace("6", "7")
    text = (
        f"{MARK}-A {UUID1}\n"
        f"{MARK}-S Domain: 'a'\n{MARK}-S   state.state=1\n{MARK}-S   state.reason=1\n"
        f"{MARK}-S Domain: 'c & d'\n{MARK}-S   state.state=3\n{MARK}-S   state.reason=2\n"
        f"{MARK}-D {UUID1}{_domain('a', UUID1)}\n"
        f"{MARK}-D {UUID2}"  # undefined meanwhile: no XML
        f"{MARK}-D {UUID3}{_domain('c &amp; d', UUID3)}\n"
        f"{MARK}-D {new}{_domain('new', new)}\n"  # defined after domstats: no state
    )
    got = nodeshell.parse_listing(text, MARK)
    assert got.autostart == {UUID1}
    assert [(d.uuid, d.name, d.state, d.reason) for d in got.domains] == [
        (UUID1, "a", 1, 1),
        (UUID2, None, None, None),
        (UUID3, "c & d", 3, 2),
        (new, "new", None, None),
    ]
    assert got.domains[0].xml == _domain("a", UUID1)
    assert got.domains[1].xml is None


def test_a_description_that_looks_like_a_marker_of_another_run_is_only_text() -> None:
    other = "@@ipsinfra-ffffffffffffffff"
    xml = _domain("a", UUID1).replace("</domain>", f"<description>{other}-D {UUID2}</description></domain>")
    stats = f"{MARK}-S Domain: 'a'\n{MARK}-S   state.state=5\n{MARK}-S   state.reason=0\n"
    text = f"{stats}{MARK}-D {UUID1}{xml}\n"
    got = nodeshell.parse_listing(text, MARK)
    assert [d.uuid for d in got.domains] == [UUID1] and got.domains[0].xml == xml
    assert got.domains[0].state == 5


def test_script_quotes_the_uri() -> None:
    script = nodeshell.listing_script("qemu+unix:///session?socket=/run/x y", MARK)
    assert "'qemu+unix:///session?socket=/run/x y'" in script


def _node_file(tmp_path: Path, count: int) -> Node:
    ip = ipaddress.ip_address("10.0.34.56")
    domains = []
    for i in range(count):
        order = 3000 + i
        spec = VdsSpec(
            name=naming.vps_name(order, ip),
            vcpus=1 + i % 3,
            cpuset="1-3",
            memory_mib=64,
            nics=[Nic(mac=f"52:54:00:00:{order >> 8 & 255:02x}:{order & 255:02x}", bridge="br0")],
            vnc_listen=ipaddress.ip_address("127.0.0.1"),
        )
        xml = domxml.build_domain(spec, domain_type="test")
        # Fixed UUIDs: every open of a test:/// file (virsh's, the driver's) builds the node anew.
        domains.append(xml.replace("</name>", f"</name><uuid>{uuid.UUID(int=order)}</uuid>", 1))
    path = tmp_path / "node.xml"
    path.write_text(
        "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads>"
        "<active>8</active><mhz>2400</mhz><model>x86_64</model></cpu>"
        f"<memory>{16 * 1024 * 1024}</memory>{''.join(domains)}</node>",
        encoding="utf-8",
    )
    return Node(
        name="lv1",
        site="lab",
        main_ip=ip,
        kind=HypervisorKind.LIBVIRT,
        uri=f"test://{path}",
        cpus=8,
        libvirt_local_uri=f"test://{path}",
    )


def _system_python_has_libvirt() -> bool:
    return subprocess.run(["/usr/bin/python3", "-c", "import libvirt"], capture_output=True).returncode == 0


@needs_virsh
@pytest.mark.parametrize("via", ["virsh", "python"])
@pytest.mark.parametrize("count", [0, 1, 7, nodeshell.DOMAINS_PER_VIRSH + 5])
def test_the_script_in_a_real_shell_lists_what_the_rpc_path_lists(
    tmp_path: Path, count: int, via: str
) -> None:
    if via == "python" and not _system_python_has_libvirt():
        missing("/usr/bin/python3 has no libvirt module (Debian python3-libvirt; scripts/dev installs it)")
    node = _node_file(tmp_path, count)
    done = subprocess.run(
        ["sh", "-s"],
        input=nodeshell.listing_script(node.libvirt_local_uri, MARK, python=via == "python"),
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},  # a node's PATH: system python3
    )
    assert done.returncode == 0, done.stderr
    listing = nodeshell.parse_listing(done.stdout, MARK)
    assert listing.via == via
    assert len(listing.domains) == count and all(d.xml and d.state is not None for d in listing.domains)
    over_rpc = LibvirtDriver(node).list_vds()  # a fresh test-driver node from the same file
    from_virsh = sorted(
        (
            domxml.parse_domain(
                d.xml or "",
                node=node.name,
                state=domxml.state_from_libvirt(d.state or 0, d.reason or 0),
                autostart=d.uuid in listing.autostart,
            )
            for d in listing.domains
        ),
        key=lambda v: v.name,
    )
    assert from_virsh == over_rpc
    assert len({v.name for v in from_virsh}) == count


def test_ssh_failure_names_the_node(tmp_path: Path) -> None:
    node = _node_file(tmp_path, 1).model_copy(
        update={
            "libvirt_listing": "ssh",
            "ssh_host": "127.0.0.1",
            "ssh_port": 1,
            "ssh_known_hosts": "/dev/null",
        }
    )
    from ipsinfra.errors import NodeUnreachable

    with pytest.raises(NodeUnreachable) as err:
        LibvirtDriver(node).list_vds()
    assert "lv1" in str(err.value) and "list domains" in str(err.value)


def test_libvirt_local_uri_is_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        Node(
            name="lv1",
            site="lab",
            main_ip=ipaddress.ip_address("10.0.34.56"),
            kind=HypervisorKind.LIBVIRT,
            uri="test:///default",
            cpus=8,
            libvirt_local_uri="qemu:///system'; rm -rf /",
        )
    assert "libvirt_local_uri" in str(err.value)
