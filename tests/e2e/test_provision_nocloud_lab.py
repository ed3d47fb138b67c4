"""Provisioning on libvirt WITHOUT a guest agent (issue 19 part 3): ``password_method: nocloud``.

The lab's libvirt nodes boot the guest's nocloud variant (no qemu-ga inside);
``provision`` defines the VDS, writes the NoCloud seed (hash only) into the
node's pool, attaches it and only then starts the guest, whose cloud-init
subset applies the hash and prints the shadow line on its console. The order
number is long (a 23-character house name) and the agent channel still gets
its short socket. The clear password appears in no file of the lab, no log,
no journal line, no exception.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra import naming
from ipsinfra.errors import Conflict
from ipsinfra.hypervisors import domxml
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import Order, VdsState
from ipsinfra.provision import provision

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]
TODAY = dt.date(2026, 12, 6)
ORDER = 300112345678
CONSOLE_TIMEOUT_S = 90.0


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(mode="daemon", password_method="nocloud") as running:
        yield running


def crypt_matches(password: str, hashed: str) -> bool:
    libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    libcrypt.crypt.restype = ctypes.c_char_p
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = libcrypt.crypt(password.encode(), hashed.encode())
    return out is not None and out.decode() == hashed


def console_line(path: Path, prefix: str) -> str:
    deadline = time.monotonic() + CONSOLE_TIMEOUT_S
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if prefix in line:
                    return line[line.index(prefix) + len(prefix) :].strip()
        time.sleep(0.2)
    raise AssertionError(f"no {prefix!r} on the guest console: {path.read_text(errors='replace')[-2000:]}")


def grep_tree(root: Path, needle: str) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle.encode() in path.read_bytes():
                    hits.append(path)
            except OSError:
                continue
    return hits


def test_provision_without_an_agent_long_name(
    lab: Lab, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lab.fleet is not None and lab.pool is not None
    caplog.set_level(logging.DEBUG)
    assert lab.fleet.nodes["kvm1"].password_method == "nocloud"
    order = Order.model_validate(
        {
            "number": ORDER,
            "client": "c1",
            "node": "kvm1",
            "vcpus": 1,
            "memory_mib": 256,
            "disk_gib": 10,
            "ips": 1,
            "os": "debian-12",
        }
    )
    name = naming.vps_name(ORDER, lab.fleet.nodes["kvm1"].main_ip)
    assert name == "VPS300112345678(113.10)"
    with lab.journal() as journal:
        result = provision(order, lab.fleet, lab.pool, journal=journal, today=TODAY)
        assert result.changed and result.ok, result.mismatches
        assert result.password is not None
        secret = result.password.get_secret_value()
        driver = lab.driver("kvm1")
        assert isinstance(driver, LibvirtDriver)
        assert driver.get_vds(name).state is VdsState.RUNNING

        # the guest (no agent in it) applied the seed's hash: read off its console
        shadow = console_line(lab.console_log("kvm1"), "ipsinfra-nocloud: shadow ")
        user, hashed = shadow.split(":")[:2]
        assert user == "root" and hashed.startswith("$6$")
        assert crypt_matches(secret, hashed) and not crypt_matches(secret + "x", hashed)

        # the agent channel has its short socket whatever the name
        uuid = driver.ex_conn.lookupByName(name).UUIDString()
        socket = domxml.agent_socket(driver.ex_xml(name))
        assert socket is not None and socket.endswith(f"/ga-{uuid}.sock") and "VPS" not in socket

        # a re-run verifies and changes nothing
        again = provision(order, lab.fleet, lab.pool, journal=journal, today=TODAY)
        assert not again.changed and again.password is None and again.ok
        assert [e.result for e in journal.entries(action="vds.provision")] == ["ok"]  # a re-run: no line

    # the seed pins the VDS to this node until it is detached; then it migrates
    with pytest.raises(Conflict, match="ex_detach_seed"):
        driver.migrate(name, lab.driver("kvm2"), new_name=naming.vps_name(ORDER, "203.0.113.20"))
    assert driver.ex_detach_seed(name)
    target = lab.driver("kvm2")
    assert isinstance(target, LibvirtDriver)
    moved = driver.migrate(name, target, new_name=naming.vps_name(ORDER, "203.0.113.20"))
    assert moved.state is VdsState.RUNNING
    moved_socket = domxml.agent_socket(target.ex_xml(moved.name))
    assert moved_socket == domxml.agent_socket_path(str(target.agent_socket_dir), uuid)
    assert moved_socket != socket  # the target node's own socket directory

    # the password was handed out once; it is nowhere else
    assert secret not in repr(result) and secret not in caplog.text
    assert secret not in capsys.readouterr().out
    assert grep_tree(lab.base_dir, secret) == []
