"""Shared test set-up: tier markers that skip with a clear reason off CI.

On CI (``CI=true``) a tier that cannot run is a FAILURE, never a silent skip:
CI is root on a machine the README's command prepared, so everything must run.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _tier_problem(marker: str) -> str | None:
    is_root = os.geteuid() == 0
    if marker in {"root", "netns", "ssh", "qemu"} and not is_root:
        return f"tier '{marker}' needs root (unshare/setpriv/namespaces); run as root or in CI"
    if marker == "netns" and not shutil.which("ip"):
        return "tier 'netns' needs iproute2's `ip` (apt-get install iproute2)"
    if marker == "ssh" and not Path("/usr/sbin/sshd").exists():
        return "tier 'ssh' needs Debian's openssh-server (/usr/sbin/sshd)"
    if marker == "qemu":
        for binary in ("/usr/sbin/libvirtd", "/usr/bin/qemu-system-x86_64"):
            if not Path(binary).exists():
                return (
                    f"tier 'qemu' needs {binary} (apt-get install libvirt-daemon-driver-qemu qemu-system-x86)"
                )
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in ("root", "netns", "ssh", "qemu"):
            if item.get_closest_marker(marker) is None:
                continue
            problem = _tier_problem(marker)
            if problem is None:
                continue
            if ON_CI:
                # CI must run every tier: fail loudly in setup instead of skipping.
                item._ipsinfra_ci_problem = problem  # type: ignore[attr-defined]
            else:
                item.add_marker(pytest.mark.skip(reason=problem))
            break


def pytest_runtest_setup(item: pytest.Item) -> None:
    problem = getattr(item, "_ipsinfra_ci_problem", None)
    if problem:
        pytest.fail(f"CI must run every tier, but: {problem}", pytrace=False)


@pytest.fixture
def shared_fixtures() -> Path:
    """``../shared/fixtures``; tests that need it skip with a reason where it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"{SHARED_FIXTURES} is absent (shared device output lives beside the repo)")
    return SHARED_FIXTURES


# --- the network rule, enforced -------------------------------------------------
# Tests talk only to 127.0.0.0/8 (and ::1) or to namespaces they built, which use
# link-local 169.254.0.0/16 addresses. Any other destination from this process is
# a bug (a probe of an inventory's documentation address, say): fail loudly
# instead of sending a packet.
ALLOWED_NETWORKS = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
)


class ForbiddenDestination(AssertionError):
    """A test tried to reach an address outside loopback and its own namespaces."""


def _check_destination(address: Any) -> None:
    if not isinstance(address, tuple) or not address:
        return  # AF_UNIX paths, abstract sockets
    host = str(address[0]).split("%")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host in {"localhost", ""}:
            return
        raise ForbiddenDestination(f"tests may not resolve and connect to {host!r}") from None
    if ip.is_unspecified or any(ip in net for net in ALLOWED_NETWORKS):
        return
    raise ForbiddenDestination(f"tests may only reach loopback or their own namespaces, not {host}")


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_destination(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_destination(address)
    return _real_connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
    _check_destination(args[-1] if args else None)
    return _real_sendto(self, data, *args)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign,assignment]
