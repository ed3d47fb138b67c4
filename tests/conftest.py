"""Shared test set-up, and the ONE place that decides skip-versus-fail.

Every environment-dependent condition a test needs (an importable module, a
binary, root, namespaces, ``../shared/fixtures``, the guest image, an IPv6
loopback, a private ControlPath directory...) goes through :func:`missing`
(or its wrappers :func:`require`, :func:`require_module`,
:func:`require_binary`, the ``shared_fixtures`` fixture and the tier markers
root/netns/ssh/qemu). Off CI a missing condition SKIPS with its reason; on CI
(``CI`` set to ``true``, ``1`` or ``yes``, which ``.ci/run`` exports itself) it
FAILS with the same reason: CI is root on a machine the README's command
prepared, so every tier must run. No other test file skips by itself (no
skip call, skip marker or import-or-skip, and no except clause turning a
failed assertion into a skip): ``tests/unit/test_ci_gate.py`` checks the tree,
and runs this helper in a subprocess with and without ``CI``.

Environment:

``CI``
    ``true``/``1``/``yes``: missing conditions fail instead of skipping.
``IPSINFRA_SHARED_FIXTURES``
    Where the shared device output lives; default ``../shared/fixtures``
    beside the repository. Point it at a directory that does not exist to
    check that CI fails when the fixtures are absent.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import shutil
import socket
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = Path(os.environ.get("IPSINFRA_SHARED_FIXTURES") or REPO.parent / "shared" / "fixtures")
ON_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(reason: str) -> NoReturn:
    """A condition this test needs is not met: fail on CI, skip elsewhere.

    The single decision point for the whole suite. Usable in a test, a
    fixture or a module-scoped autouse fixture.
    """
    if ON_CI:
        pytest.fail(f"CI must run every tier, but: {reason}", pytrace=False)
    pytest.skip(reason)


def require(condition: object, reason: str) -> None:
    """:func:`missing` unless ``condition`` is true."""
    if not condition:
        missing(reason)


def require_module(name: str, hint: str | None = None) -> ModuleType:
    """Import and return ``name``; when it cannot be imported, :func:`missing`.

    ``hint`` says how to get it (default: ``pip install <top-level package>``).
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        problem = f"module {name!r} cannot be imported ({exc}); {hint or 'pip install ' + name.split('.')[0]}"
    missing(problem)  # outside the except block: the report is the reason, not a traceback chain


def require_binary(name: str, hint: str) -> str:
    """The path of executable ``name`` (a bare name looked up in PATH, or an
    absolute path); when it is absent, :func:`missing` naming it and ``hint``."""
    found = shutil.which(name)  # an absolute path is checked as is
    if found is None:
        missing(f"{name} is not installed ({hint})")
    return found


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
            if problem is not None:
                # Decided in setup by missing(), like every other condition.
                item._ipsinfra_tier_problem = problem  # type: ignore[attr-defined]
                break


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    problem = getattr(item, "_ipsinfra_tier_problem", None)
    if problem:
        missing(problem)


@pytest.fixture
def shared_fixtures() -> Path:
    """``../shared/fixtures`` (or ``$IPSINFRA_SHARED_FIXTURES``); :func:`missing` where absent."""
    if not SHARED_FIXTURES.is_dir():
        missing(f"{SHARED_FIXTURES} is absent (shared device output lives beside the repo)")
    return SHARED_FIXTURES


@pytest.fixture
def private_control_path() -> Path:
    """The private ControlPath directory ssh masters need; :func:`missing` without one."""
    from ipsinfra.playbooks import control_path_dir

    found = control_path_dir()
    if found is None:
        missing(
            "no private ControlPath directory (~/.ansible/cp or <tmp>/ipsinfra-cp-<uid>, 0700): no ssh master"
        )
    return found


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
