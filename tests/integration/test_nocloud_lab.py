"""Issue 19 part 3 on REAL qemu: a short guest-agent socket whatever the name, and NoCloud seeds.

* A session libvirtd under a deep root (no short alias): libvirt's own channel
  path for a long house name passes the 108-byte UNIX socket limit and the
  start fails; the driver's explicit ``ga-<uuid>.sock`` path starts, and the
  guest agent answers through it.
* The lab guest's ``nocloud`` variant (no qemu-ga at all) boots with the
  driver's seed on an IDE cdrom, applies the hash with ``chpasswd -e`` and
  prints its shadow line on the serial console; the test checks that hash
  against the generated password with the host's libcrypt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]
import pytest
import yaml

from ipsinfra import naming, passwords
from ipsinfra.errors import Conflict, UnsupportedOperation
from ipsinfra.hypervisors import domxml, libvirt_seed, nocloud
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.lab import guest
from ipsinfra.lab.libvirtd import LibvirtDaemon
from ipsinfra.models import HypervisorKind, Nic, Node, VdsSpec, VdsState
from tests.conftest import missing

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.slow]

LAB_PARENT = "/var/tmp"  # NOT pytest's 0700 tmp root: nobody must enter it
MAIN_IP = ipaddress.ip_address("10.0.255.254")
CONSOLE_TIMEOUT_S = 90.0


def node_for(daemon: LibvirtDaemon, **kw: object) -> Node:
    return Node.model_validate(
        {
            "name": daemon.name,
            "site": "lab",
            "main_ip": MAIN_IP,
            "kind": HypervisorKind.LIBVIRT,
            "uri": daemon.uri,
            "cpus": 2,
            "vnc_listen": "127.0.0.1",
            **kw,
        }
    )


def spec(order: int) -> VdsSpec:
    return VdsSpec(
        name=naming.vps_name(order, MAIN_IP),
        vcpus=1,
        memory_mib=guest.MIN_MEMORY_MIB,
        nics=[Nic(mac=f"52:54:00:02:{order % 256:02x}:01", bridge="br0")],
        vnc_listen=ipaddress.ip_address("127.0.0.1"),
    )


def crypt_matches(password: str, hashed: str) -> bool:
    """The host's libxcrypt checks the guest's hash."""
    libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    libcrypt.crypt.restype = ctypes.c_char_p
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = libcrypt.crypt(password.encode(), hashed.encode())
    return out is not None and out.decode() == hashed


def image(variant: guest.Variant) -> guest.GuestImage:
    try:
        return guest.ensure_guest_image(variant=variant)
    except guest.GuestImageUnavailable as exc:
        missing(f"guest image: {exc}")
        raise


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ipsinfra-nocloud-", dir=LAB_PARENT))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def cleanup(drv: LibvirtDriver) -> None:
    for dom in drv.ex_conn.listAllDomains(0):
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    drv.close()


# --- 1. the guest agent's socket, whatever the name ------------------------------------
def test_agent_answers_for_a_long_house_name_under_a_deep_session_root(base: Path) -> None:
    s = spec(300112345678)
    assert len(s.name) == 24  # VPS300112345678(255.254)
    short = s.name[:20]  # libvirt's short name keeps 20 characters
    # Depth chosen so libvirt's own monitor socket fits and its own agent socket does not.
    overhead = len(f"/lvdeep/c/libvirt/qemu/lib/domain-1-{short}/monitor.sock")
    pad = "d" * max(1, 100 - overhead - len(str(base)))
    daemon = LibvirtDaemon("lvdeep", base / pad, short_alias=False)
    root = daemon.root
    lib = f"{root}/c/libvirt/qemu/lib"
    assert len(f"{lib}/domain-1-{short}/monitor.sock") <= domxml.UNIX_PATH_MAX
    assert len(f"{lib}/channel/target/domain-1-{short}/{domxml.GUEST_AGENT}") > domxml.UNIX_PATH_MAX
    boot = image("agent").direct_boot()
    daemon.start()
    try:
        drv = LibvirtDriver(node_for(daemon), nic_backend="user", ex_boot=boot)
        try:
            # libvirt's own path (no <source>): the start fails on the socket path limit.
            plain = domxml.build_domain(s, domain_type="qemu", nic_backend="user", boot=boot)
            dom = drv.ex_conn.defineXML(plain)
            with pytest.raises(libvirt.libvirtError, match="too long"):
                dom.create()
            dom.undefine()

            t0 = time.monotonic()
            vds = drv.define(s, start=True)
            assert vds.state is VdsState.RUNNING
            live = drv.ex_xml(s.name)
            uuid = drv.ex_conn.lookupByName(s.name).UUIDString()
            socket = domxml.agent_socket(live)
            assert socket == f"{daemon.sock_dir}/ga-{uuid}.sock"
            assert len(socket) <= domxml.UNIX_PATH_MAX and Path(socket).is_socket()
            assert domxml.agent_socket(drv.ex_xml(s.name, inactive=True)) == socket
            password = passwords.generate()
            drv.set_password(s.name, "root", password, agent_timeout=60)  # the agent answers
            reply = libvirt_qemu.qemuAgentCommand(
                drv.ex_conn.lookupByName(s.name), json.dumps({"execute": "guest-ping"}), 10, 0
            )
            assert json.loads(reply) == {"return": {}}
            assert time.monotonic() - t0 < 60
        finally:
            cleanup(drv)
    finally:
        daemon.stop()


# --- 2. NoCloud: the password without an agent -------------------------------------------
@pytest.fixture
def seeded(base: Path) -> Iterator[tuple[LibvirtDriver, LibvirtDaemon]]:
    daemon = LibvirtDaemon("lvseed", base)
    img = image("nocloud")
    daemon.start()
    try:
        daemon.ensure_pool("default")
        node = node_for(daemon, password_method="nocloud", seed_pool="default")
        drv = LibvirtDriver(
            node, nic_backend="user", ex_boot=img.direct_boot(serial_log=daemon.home / "console.log")
        )
        try:
            yield drv, daemon
        finally:
            cleanup(drv)
    finally:
        daemon.stop()


def console_line(path: Path, prefix: str, timeout: float = CONSOLE_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if prefix in line:
                    return line[line.index(prefix) + len(prefix) :].strip()
        time.sleep(0.2)
    tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no console log)"
    raise AssertionError(f"no {prefix!r} on the guest console within {timeout:g} s:\n{tail}")


def every_file(root: Path) -> Iterator[tuple[Path, bytes]]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                yield path, path.read_bytes()
            except OSError:
                continue


def test_nocloud_seed_sets_the_password_without_an_agent(
    seeded: tuple[LibvirtDriver, LibvirtDaemon],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    drv, daemon = seeded
    caplog.set_level(logging.DEBUG)
    entries = {e.name for e in guest.read_cpio(Path(str(drv.ex_boot.initrd)).read_bytes())}  # type: ignore[union-attr]
    assert "usr/sbin/qemu-ga" not in entries and "usr/sbin/ipsinfra-nocloud" in entries  # no agent at all

    s = spec(3001)
    drv.define(s)
    password = passwords.generate()
    t0 = time.monotonic()
    drv.set_password(s.name, "root", password)  # shut off: the seed goes on before the first boot
    path = drv.ex_seed_path(s.name)
    assert path is not None and path.startswith(str(daemon.root / "pool"))
    config = drv.ex_xml(s.name, inactive=True)
    assert domxml.seed_path(config) == path
    assert "<readonly" in config and 'device="cdrom"' in config.replace("'", '"')

    # the seed as the node holds it: label, files, the hash and no clear text
    data = libvirt_seed.read_seed(drv.ex_conn, path)
    assert password.encode() not in data
    files = nocloud.read_iso(data)
    assert files["<label>"] == nocloud.SEED_LABEL
    meta = yaml.safe_load(files["meta-data"])
    uuid = drv.ex_conn.lookupByName(s.name).UUIDString()
    assert meta["instance-id"].startswith(uuid) and meta["local-hostname"] == naming.pve_safe_name(s.name)
    user_data = files["user-data"]
    assert user_data.startswith("#cloud-config\n")
    seeded_hash = yaml.safe_load(user_data)["chpasswd"]["users"][0]["password"]
    assert crypt_matches(password, seeded_hash)
    blkid = subprocess.run(["blkid", "-o", "export", path], capture_output=True, text=True, check=False)
    assert "LABEL=cidata" in blkid.stdout and "TYPE=iso9660" in blkid.stdout, blkid

    # boot: the guest's cloud-init subset applies it; the console shows the shadow line
    drv.start(s.name)
    shadow = console_line(daemon.home / "console.log", "ipsinfra-nocloud: shadow ")
    fields = shadow.split(":")
    assert fields[0] == "root"
    hashed = fields[1]
    assert hashed.startswith("$6$") and hashed == seeded_hash
    assert crypt_matches(password, hashed)
    assert not crypt_matches(password + "x", hashed)
    seed_line = console_line(daemon.home / "console.log", "ipsinfra-nocloud: seed ")
    assert "(iso9660)" in seed_line and f"hostname {naming.pve_safe_name(s.name)}" in seed_line
    took = time.monotonic() - t0

    # no agent path on this node: a running VDS cannot take a seed
    with pytest.raises(Conflict, match="stop the VDS first") as info:
        drv.set_password(s.name, "root", password)
    assert password not in str(info.value)

    # after the first boot the seed goes: ejected live, out of the config, volume deleted
    assert drv.ex_detach_seed(s.name)
    assert domxml.seed_path(drv.ex_xml(s.name)) is None
    assert domxml.seed_path(drv.ex_xml(s.name, inactive=True)) is None
    assert not Path(path).exists()
    assert drv.get_vds(s.name).state is VdsState.RUNNING
    assert not drv.ex_detach_seed(s.name)

    # the clear text is nowhere: daemon and qemu logs, console, pool, XML, our output
    for file, content in every_file(daemon.root):
        assert password.encode() not in content, f"password leaked into {file}"
    for inactive in (False, True):
        assert password not in drv.ex_xml(s.name, inactive=inactive)
    out, err = capfd.readouterr()
    for text in (out, err, caplog.text):
        assert password not in text
    assert took < CONSOLE_TIMEOUT_S


def test_deleting_a_seeded_vds_deletes_its_seed(seeded: tuple[LibvirtDriver, LibvirtDaemon]) -> None:
    drv, daemon = seeded
    s = spec(3002)
    drv.define(s)
    drv.set_password(s.name, "root", passwords.generate())
    first = drv.ex_seed_path(s.name)
    drv.set_password(s.name, "root", passwords.generate())  # a second seed replaces the first
    path = drv.ex_seed_path(s.name)
    assert path == first and path is not None
    assert [p.name for p in (daemon.root / "pool").iterdir()] == [Path(path).name]
    drv.delete(s.name)
    assert list((daemon.root / "pool").iterdir()) == []


def test_a_missing_pool_says_how_to_make_one(seeded: tuple[LibvirtDriver, LibvirtDaemon]) -> None:
    drv, _ = seeded
    other = LibvirtDriver(
        drv.node.model_copy(update={"seed_pool": "nosuchpool"}), nic_backend="user", ex_boot=drv.ex_boot
    )
    try:
        s = spec(3003)
        other.define(s)
        password = passwords.generate()
        with pytest.raises(UnsupportedOperation, match="no storage pool 'nosuchpool'") as info:
            other.set_password(s.name, "root", password)
        assert password not in str(info.value)
        assert other.ex_seed_path(s.name) is None
    finally:
        other.close()
