"""A REAL guest agent: the lab's tiny guest (Debian kernel + initramfs with qemu-ga) on a real libvirtd.

``set_password`` goes libvirt -> qemu -> virtio-serial -> qemu-ga -> chpasswd
(PAM pam_unix, yescrypt) inside the guest; the test reads the guest's
``/etc/shadow`` back through the agent (``guest-file-open``/``guest-file-read``)
and checks the new hash against the password with the host's libcrypt.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import ipaddress
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]
import pytest

from ipsinfra import naming, passwords
from ipsinfra.errors import Conflict, HypervisorApiError, IpsinfraError
from ipsinfra.hypervisors import domxml
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.lab import guest
from ipsinfra.lab.libvirtd import LibvirtDaemon, start_daemons, stop_daemons
from ipsinfra.models import HypervisorKind, Nic, Node, VdsSpec, VdsState
from tests.conftest import missing

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.slow]

LAB_PARENT = "/var/tmp"  # NOT pytest's 0700 tmp root: nobody must enter it
MAIN_IP = ipaddress.ip_address("10.0.56.78")


@pytest.fixture(scope="module")
def image() -> guest.GuestImage:
    try:
        return guest.ensure_guest_image()
    except guest.GuestImageUnavailable as exc:
        missing(f"guest image: {exc}")


@pytest.fixture(scope="module")
def daemon() -> Iterator[LibvirtDaemon]:
    base = tempfile.mkdtemp(prefix="ipsinfra-guest-", dir=LAB_PARENT)
    started = start_daemons(1, base, prefix="lvguest")
    try:
        yield started[0]
    finally:
        stop_daemons(started)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def driver(daemon: LibvirtDaemon, image: guest.GuestImage) -> Iterator[LibvirtDriver]:
    node = Node(
        name=daemon.name,
        site="lab",
        main_ip=MAIN_IP,
        kind=HypervisorKind.LIBVIRT,
        uri=daemon.uri,
        cpus=2,
        vnc_listen=ipaddress.ip_address("127.0.0.1"),
    )
    # the console file: qemu runs as nobody, who owns the daemon's HOME
    boot = image.direct_boot(serial_log=daemon.home / "console.log")
    drv = LibvirtDriver(node, nic_backend="user", ex_boot=boot)
    yield drv
    for dom in drv.ex_conn.listAllDomains(0):
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    drv.close()


def spec(order: int) -> VdsSpec:
    return VdsSpec(
        name=naming.vps_name(order, MAIN_IP),
        vcpus=1,
        memory_mib=guest.MIN_MEMORY_MIB,
        nics=[Nic(mac=f"52:54:00:01:{order % 256:02x}:01", bridge="br0")],
        vnc_listen=ipaddress.ip_address("127.0.0.1"),
    )


def agent(dom: Any, command: str, **arguments: object) -> Any:
    cmd = {"execute": command, **({"arguments": arguments} if arguments else {})}
    return json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps(cmd), 10, 0))["return"]


def guest_file(dom: Any, path: str) -> str:
    """A guest file's text, read through the agent (guest-file-open/read/close)."""
    handle = agent(dom, "guest-file-open", path=path, mode="r")
    try:
        chunks = []
        while True:
            got = agent(dom, "guest-file-read", handle=handle, count=65536)
            chunks.append(base64.b64decode(got["buf-b64"]))
            if got["eof"] or not got["count"]:
                break
        return b"".join(chunks).decode()
    finally:
        agent(dom, "guest-file-close", handle=handle)


def shadow_hash(dom: Any, user: str) -> str:
    for line in guest_file(dom, "/etc/shadow").splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields[1]
    raise AssertionError(f"{user} not in the guest's /etc/shadow")


def crypt_matches(password: str, hashed: str) -> bool:
    """The host's libxcrypt (yescrypt, sha512...) checks the guest's hash."""
    libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    libcrypt.crypt.restype = ctypes.c_char_p
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = libcrypt.crypt(password.encode(), hashed.encode())
    return out is not None and out.decode() == hashed


def every_file_text(root: Path) -> Iterator[tuple[Path, str]]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path, path.read_text(errors="replace")


def test_image_is_cached_and_readable_by_nobody(image: guest.GuestImage) -> None:
    t0 = time.monotonic()
    again = guest.ensure_guest_image()
    assert again == image
    assert time.monotonic() - t0 < 5
    for path in (image.kernel, image.initrd):
        mode = path.stat().st_mode
        assert mode & 0o004, f"{path} is not world-readable"
    assert image.initrd.parent.stat().st_mode & 0o005 == 0o005


def test_set_password_really_changes_the_guest_shadow(
    driver: LibvirtDriver,
    daemon: LibvirtDaemon,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    s = spec(2001)
    password = passwords.generate()
    t0 = time.monotonic()
    vds = driver.define(s, start=True)
    assert vds.state == VdsState.RUNNING
    driver.set_password(s.name, "root", password, agent_timeout=60)  # waits for the agent to boot
    took = time.monotonic() - t0
    for inactive in (False, True):  # libvirt keeps the direct boot as defined
        assert domxml.direct_boot(driver.ex_xml(s.name, inactive=inactive)) == driver.ex_boot
    dom = driver.ex_conn.lookupByName(s.name)
    hashed = shadow_hash(dom, "root")
    assert hashed != "*"  # the image's root has no password
    assert hashed.startswith("$y$")  # yescrypt, as Debian 12's pam_unix makes it
    assert crypt_matches(password, hashed)
    assert not crypt_matches(password + "x", hashed)
    assert password not in guest_file(dom, "/etc/shadow")
    assert took < 60
    # a second password replaces the first
    second = passwords.generate()
    driver.set_password(s.name, "root", second)
    assert crypt_matches(second, shadow_hash(dom, "root"))

    # the clear text is nowhere: logs of the daemon and qemu, the guest console, XML, our output
    for path, text in every_file_text(daemon.root):
        assert password not in text and second not in text, f"password leaked into {path}"
    for inactive in (False, True):
        xml = driver.ex_xml(s.name, inactive=inactive)
        assert password not in xml and second not in xml
    out, err = capfd.readouterr()
    for text in (out, err, caplog.text):
        assert password not in text and second not in text
    assert (daemon.home / "console.log").read_text(errors="replace").count("qemu-ga on /dev/vport") == 1


def test_set_password_for_an_unknown_user_fails_without_the_password(driver: LibvirtDriver) -> None:
    s = spec(2002)
    driver.define(s, start=True)
    password = passwords.generate()
    with pytest.raises(HypervisorApiError) as info:
        driver.set_password(s.name, "nosuchuser", password, agent_timeout=60)
    assert password not in str(info.value) and info.value.__cause__ is None
    assert "nosuchuser" in str(info.value) and daemon_name(driver) in str(info.value)


def daemon_name(driver: LibvirtDriver) -> str:
    return driver.node.name


def test_set_password_on_a_stopped_vds_is_a_conflict(driver: LibvirtDriver) -> None:
    s = spec(2003)
    driver.define(s)
    with pytest.raises(Conflict, match="not running") as info:
        driver.set_password(s.name, "root", "Sup3r-Secret-Pw-1")
    assert "Sup3r-Secret-Pw-1" not in str(info.value)


def test_guest_shuts_down_on_acpi_or_agent(driver: LibvirtDriver) -> None:
    """qemu-ga's guest-shutdown runs the image's `shutdown` (busybox poweroff): stop needs no force."""
    s = spec(2004)
    driver.define(s, start=True)
    driver.set_password(s.name, "root", passwords.generate(), agent_timeout=60)  # agent is up
    dom = driver.ex_conn.lookupByName(s.name)
    try:
        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT)
    except libvirt.libvirtError as exc:
        raise AssertionError(exc.get_error_message()) from None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and driver.get_vds(s.name).state != VdsState.STOPPED:
        time.sleep(0.2)
    assert driver.get_vds(s.name).state == VdsState.STOPPED


def test_errors_are_ipsinfra_errors(driver: LibvirtDriver) -> None:
    with pytest.raises(IpsinfraError):
        driver.set_password("VPS2999(56.78)", "root", "x")
