"""Talk to switches over SSH with netmiko: poll, set descriptions, shut a port safely.

* :func:`collect` polls many switches at once (a bounded thread pool, a
  per-switch timeout) and returns one :class:`SwitchResult` per switch: facts,
  or a typed failure (unreachable, auth failed, unknown platform, garbage
  output...). One dead switch never hides the others.
* :func:`shutdown_port` / :func:`no_shutdown_port` change one port only after
  a fresh MAC-table read proves the target (§11.8); otherwise they raise
  :class:`ipsinfra.errors.TargetProofFailed` and change nothing.
* :func:`set_descriptions` writes server names into port descriptions (§4.4).

Vendor text is parsed in :mod:`ipsinfra.network.parsers`; this module only
carries commands to the switch and back.

What :func:`default_platforms` sends for ports and neighbours, each command's
parsing tested on real captured output (ntc-templates' test data, in
``../shared/fixtures/ntc-templates-port-views``; ``tests/unit/
test_port_view_fixtures.py`` fails if a claim here has no capture or a capture
no claim)::

    platform       interfaces                                      LLDP
    cisco_ios      show interfaces status, show interfaces description   show lldp neighbors detail
    arista_eos     show interfaces status, show interfaces description   show lldp neighbors detail
    cisco_nxos     show interface status, show interface description     show lldp neighbors detail
    hp_procurve    show interfaces brief (state only, no names)          show lldp info remote-device
    huawei_vrp     display interface description                         display lldp neighbor
    juniper_junos  -                                                     show lldp neighbors
    linux          ip -j link                                            lldpcli -f json show neighbors

Neighbour capabilities (what marks an uplink besides its MAC count) come with
cisco_ios, cisco_nxos, huawei_vrp and arista_eos (read from the text: its
template drops them); hp_procurve's and juniper_junos's summary tables carry
none. Every other platform is polled for its MAC table only (the commands
proven in ``../shared/fixtures/ntc-templates-mac-tables``).

Structured output first: where a platform prints a view as JSON (``| json`` on
arista_eos and cisco_nxos, ``| display json`` on juniper_junos; which views,
:mod:`ipsinfra.network.structured`), that command is sent instead and the text
one above is the fallback. A switch that refuses the JSON form (an OS without
the pipe, an unconverted command) is read by its text command for the rest of
the session, the refusal logged once per switch; an answer of unexpected shape
is an error, never fewer rows. :attr:`SwitchSession.sources` says which path
each view of a session took.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib
import logging
import os
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import Field

from ipsinfra import hostkeys, redact
from ipsinfra.errors import (
    InvalidInput,
    IpsinfraError,
    SwitchError,
    TargetProofFailed,
    UnsupportedOperation,
)
from ipsinfra.identity import InterfaceNames, check_interface_name
from ipsinfra.models import Frozen, Switch, normalize_mac
from ipsinfra.network import parsers, structured
from ipsinfra.network.errors import (
    SwitchAuthFailed,
    SwitchCommandFailed,
    SwitchHostKeyChanged,
    SwitchHostKeyUnknown,
    SwitchOutputError,
    SwitchTimeout,
    SwitchUnreachable,
    UnknownPlatform,
)
from ipsinfra.network.models import (
    CollectionReport,
    FailureKind,
    Interface,
    LldpNeighbor,
    MacEntry,
    SwitchFacts,
    SwitchResult,
)
from ipsinfra.network.portmap import DEFAULT_UPLINK_THRESHOLD, find_uplinks

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_DEFAULT_WORKERS",
    "JournalLike",
    "Platform",
    "PortAction",
    "SwitchCredentials",
    "SwitchSession",
    "collect",
    "default_platforms",
    "no_shutdown",
    "no_shutdown_port",
    "open_session",
    "poll",
    "pool_size",
    "set_descriptions",
    "shutdown_port",
    "shutdown_problem",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20.0
# collect() opens one session per switch at once, up to this many: a poll is
# mostly waiting on the switches, and a thread costs little.
MAX_DEFAULT_WORKERS = 64


class JournalLike(Protocol):
    """What we need of :class:`ipsinfra.journal.Journal`: one line per action."""

    def record(
        self,
        action: str,
        target: str,
        *,
        result: str = ...,
        before: Mapping[str, Any] | None = ...,
        after: Mapping[str, Any] | None = ...,
        detail: str = ...,
    ) -> object: ...


@dataclass(frozen=True)
class Platform:
    """How to read and change one kind of switch (``name`` = netmiko device type).

    ``linux_bridge`` platforms run shell commands (``bridge -j fdb show``...)
    parsed by our JSON parsers; the others run CLI commands parsed by
    ntc-templates, and change ports in config mode (``send_config_set``).
    """

    name: str
    mac_table: str
    interfaces: tuple[str, ...] = ()
    lldp: str | None = None
    linux_bridge: bool = False
    config_style: str | None = None  # "cisco" (interface X / description / shutdown), "linux", None
    # The JSON forms of mac_table / interfaces / lldp, read by ipsinfra.network.structured
    # and preferred to the text commands (which stay the fallback).
    json_mac_table: str | None = None
    json_interfaces: str | None = None
    json_lldp: str | None = None

    def description_commands(self, port: str, text: str) -> list[str]:
        check_interface_name(port)  # nothing is built from a name that is not one word
        if self.config_style == "cisco":
            return [f"interface {port}", f"description {text}" if text else "no description"]
        if self.config_style == "linux":
            return [f"ip link set dev {shlex.quote(port)} alias {shlex.quote(text)}"]
        raise UnsupportedOperation(f"{self.name}: writing port descriptions is not supported")

    def admin_commands(self, port: str, up: bool) -> list[str]:
        check_interface_name(port)
        if self.config_style == "cisco":
            return [f"interface {port}", "no shutdown" if up else "shutdown"]
        if self.config_style == "linux":
            return [f"ip link set dev {shlex.quote(port)} {'up' if up else 'down'}"]
        raise UnsupportedOperation(f"{self.name}: port shutdown is not supported")


def default_platforms() -> dict[str, Platform]:
    """A fresh registry (a new dict every call: registries are per caller).

    MAC-table commands are those whose real output is proven in
    ``../shared/fixtures/ntc-templates-mac-tables``.
    """
    cisco_if = ("show interfaces status", "show interfaces description")
    platforms = [
        Platform(
            "cisco_ios",
            "show mac address-table",
            cisco_if,
            "show lldp neighbors detail",
            config_style="cisco",
        ),
        Platform(
            "cisco_nxos",
            "show mac address-table",
            ("show interface status", "show interface description"),
            "show lldp neighbors detail",
            config_style="cisco",
            json_mac_table="show mac address-table | json",
        ),
        Platform(
            "arista_eos",
            "show mac address-table",
            cisco_if,
            "show lldp neighbors detail",
            config_style="cisco",
            json_mac_table="show mac address-table | json",
            json_interfaces="show interfaces status | json",
            json_lldp="show lldp neighbors detail | json",
        ),
        Platform("cisco_s300", "show mac address-table"),
        Platform(
            "hp_procurve", "show mac-address", ("show interfaces brief",), "show lldp info remote-device"
        ),
        Platform(
            "huawei_vrp", "display mac-address", ("display interface description",), "display lldp neighbor"
        ),
        Platform("hp_comware", "display mac-address"),
        Platform("huawei_smartax", "display mac-address"),
        Platform("alcatel_aos", "show mac-address-table"),
        Platform("allied_telesis_awplus", "show mac address-table"),
        Platform("aruba_aoscx", "show mac-address-table"),
        Platform("avaya_ers", "show mac-address-table"),
        Platform("broadcom_icos", "show mac-addr-table"),
        Platform("brocade_fastiron", "show mac-address"),
        Platform("ruckus_fastiron", "show mac-address"),
        Platform("extreme_exos", "show fdb"),
        Platform(
            "juniper_junos",
            "show ethernet-switching table",
            (),
            "show lldp neighbors",
            json_mac_table="show ethernet-switching table detail | display json",
            json_lldp="show lldp neighbors detail | display json",
        ),
        Platform(
            "linux",
            "bridge -j fdb show",
            ("ip -j link",),
            "lldpcli -f json show neighbors",
            linux_bridge=True,
            config_style="linux",
        ),
    ]
    return {p.name: p for p in platforms}


@dataclass(frozen=True)
class SwitchCredentials:
    """A login: a password, a private key file, or both. Never printed."""

    password: str | None = field(default=None, repr=False)
    key_file: str | None = None

    @classmethod
    def for_switch(
        cls, switch: Switch, *, password: str | None = None, key_file: str | None = None
    ) -> SwitchCredentials:
        """The inventory's login: ``secret`` (a password, resolved now) and ``ssh_key_file``.

        A ``password`` or ``key_file`` given here (a CLI ``--key-file``, a module
        option) wins over the inventory's. An unset secret variable raises
        :class:`~ipsinfra.errors.SecretMissing` naming the switch and the variable.
        """
        if password is None and switch.secret is not None:
            password = switch.secret.resolve(f"switch {switch.name}")
        key = key_file or switch.ssh_key_file
        return cls(password=password, key_file=os.path.expanduser(key) if key else None)


def credentials_for(switch: Switch, given: SwitchCredentials | None = None) -> SwitchCredentials:
    """``given`` (an operator's password or key file) completed from the inventory.

    What ``given`` holds wins; the switch's ``secret`` and ``ssh_key_file`` fill
    the rest, so a module's password still logs in with the inventory's key.
    """
    if given is None:
        return SwitchCredentials.for_switch(switch)
    return SwitchCredentials.for_switch(switch, password=given.password, key_file=given.key_file)


class PortAction(Frozen):
    """What a shutdown / no shutdown / description write did, read back from the switch."""

    switch: str
    port: str
    action: str
    mac: str | None = None
    seen_on: list[str] = Field(default_factory=list)
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    changed: bool = True


def _translate(exc: BaseException, switch: str) -> SwitchError:
    """A netmiko/paramiko/socket error -> our tree, naming the switch."""
    from netmiko.exceptions import (
        NetmikoAuthenticationException,
        NetmikoTimeoutException,
        ReadTimeout,
    )

    ssh_exception: Any = importlib.import_module("paramiko.ssh_exception").SSHException  # no stubs

    if isinstance(exc, SwitchError):
        return exc
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, NetmikoAuthenticationException):
        return SwitchAuthFailed(f"{switch}: authentication failed")
    if isinstance(exc, ReadTimeout):
        return SwitchTimeout(f"{switch}: no prompt in time: {msg}")
    if isinstance(exc, NetmikoTimeoutException):
        if "TCP connection to device failed" in str(exc) or "refused" in str(exc).lower():
            return SwitchUnreachable(f"{switch}: TCP connection failed")
        return SwitchTimeout(f"{switch}: timed out: {msg}")
    if isinstance(exc, ssh_exception | OSError | EOFError):
        return SwitchUnreachable(f"{switch}: SSH session failed: {msg}")
    if isinstance(exc, ValueError) and "device_type" in str(exc):
        return UnknownPlatform(f"{switch}: netmiko does not know this platform")
    return SwitchError(f"{switch}: {type(exc).__name__}: {msg}")


class SwitchSession:
    """One logged-in netmiko session to a switch; use :func:`open_session`."""

    def __init__(self, switch: Switch, platform: Platform, conn: Any, timeout: float) -> None:
        self.switch = switch
        self.platform = platform
        self.conn = conn
        self.timeout = timeout
        self._prompt: str | None = None  # the prompt, as a regex; found again after a config change
        # view ("mac_table", "interfaces", "lldp") -> "json" or "text": the path its last read took
        self.sources: dict[str, str] = {}
        self.json_refused: str | None = None  # why the switch refused a JSON command, if it did

    def run(self, command: str) -> str:
        """Run one command and return its output (prompt and echo stripped).

        The prompt is found once and then awaited as the command's end: netmiko
        would otherwise find it again before every command (a round trip and
        its sleeps, a quarter of a small command's time).
        """
        try:
            if self._prompt is None:
                self._prompt = re.escape(str(self.conn.find_prompt()).strip())
            out = self.conn.send_command(command, expect_string=self._prompt, read_timeout=self.timeout)
        except Exception as exc:
            raise _translate(exc, self.switch.name) from exc
        return str(out)

    def run_checked(self, command: str) -> str:
        """Run a shell command on a Linux switch; a non-zero exit raises SwitchCommandFailed."""
        marker = "__ipsinfra_rc="
        out = self.run(f"{command}; echo {marker}$?")
        body, _, rc = out.rpartition(marker)
        if rc.strip() != "0":
            raise SwitchCommandFailed(
                f"{self.switch.name}: {command!r} failed (exit {rc.strip()}): {body.strip()!r}"
            )
        return body

    def configure(self, commands: list[str]) -> str:
        """Apply ``commands``: config mode on a CLI switch, shell commands on Linux."""
        if self.platform.config_style == "linux":
            return "".join(self.run_checked(c) for c in commands)
        self._prompt = None  # config mode may not have been left as entered
        try:
            out = str(self.conn.send_config_set(commands, read_timeout=self.timeout))
        except Exception as exc:
            raise _translate(exc, self.switch.name) from exc
        parsers._check_cli_error(self.platform.name, "; ".join(commands), out)
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.disconnect()


@contextlib.contextmanager
def open_session(
    switch: Switch,
    *,
    credentials: SwitchCredentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    platforms: Mapping[str, Platform] | None = None,
) -> Iterator[SwitchSession]:
    """Log into ``switch``; raises a :class:`SwitchError` subclass saying why not.

    The switch's host key must be pinned: in the file its ``ssh_known_hosts``
    names, else in the user's ``~/.ssh/known_hosts`` (entries ``host`` on port
    22, ``[host]:port`` elsewhere). An unknown key raises
    :class:`SwitchHostKeyUnknown`, a different one :class:`SwitchHostKeyChanged`,
    both with the offered key's ``SHA256:`` fingerprint, before the password
    is sent (``ipsinfra trust <switch>`` pins a first key). The agent and
    ``~/.ssh`` keys are not used, only ``credentials``.
    """
    from netmiko import ConnectHandler

    registry = default_platforms() if platforms is None else platforms
    platform = registry.get(switch.platform)
    if platform is None:
        raise UnknownPlatform(f"{switch.name}: platform {switch.platform!r} is not one of {sorted(registry)}")
    creds = credentials if credentials is not None else SwitchCredentials.for_switch(switch)
    if creds.password is None and creds.key_file is None:
        raise SwitchAuthFailed(
            f"{switch.name}: no credentials: set the switch's secret or ansible_ssh_private_key_file "
            "in the inventory (or give a key file)"
        )
    if creds.key_file is not None and not os.path.isfile(creds.key_file):
        raise SwitchAuthFailed(
            f"{switch.name}: ssh_key_file: value {creds.key_file!r}: no such file; nothing was sent"
        )
    redact.install()
    redact.register(creds.password)
    known_hosts = hostkeys.known_hosts_file(switch.ssh_known_hosts)
    if switch.ssh_known_hosts and not known_hosts.is_file():
        raise SwitchHostKeyUnknown(
            f"{switch.name}: ssh_known_hosts file {str(known_hosts)!r} does not exist; nothing was sent. "
            f"Pin the switch's key: ipsinfra trust {switch.name}"
        )
    params: dict[str, Any] = {
        "device_type": platform.name,
        "host": switch.host,
        "port": switch.port,
        "username": switch.username,
        "password": creds.password or "",
        "use_keys": creds.key_file is not None,
        "key_file": creds.key_file,
        "allow_agent": False,
        "conn_timeout": timeout,
        "auth_timeout": timeout,
        "banner_timeout": timeout,
        "read_timeout_override": timeout,
        # Verify the host key (paramiko looks "[host]:port" up for a port other than 22):
        # the inventory's file when set, else ~/.ssh/known_hosts; never add a key.
        "ssh_strict": True,
        "system_host_keys": switch.ssh_known_hosts is None,
        "alt_host_keys": switch.ssh_known_hosts is not None,
        "alt_key_file": str(known_hosts) if switch.ssh_known_hosts else "",
        "auto_connect": False,
    }
    conn = None
    try:
        conn = ConnectHandler(**params)
        # netmiko's ssh_strict refuses with RejectPolicy, whose error drops the key: this
        # policy refuses too and keeps it, for the fingerprint in the message.
        conn.key_policy = hostkeys.RefuseUnknownKeys()
        conn._open()
    except Exception as exc:
        if conn is not None:
            conn.disconnect()  # also drops netmiko's per-session log filter
        refusal = hostkeys.host_key_refusal(exc, switch.name, known_hosts, switch.host, switch.port)
        if isinstance(refusal, hostkeys.HostKeyChanged):
            raise SwitchHostKeyChanged(str(refusal)) from None
        if refusal is not None:
            raise SwitchHostKeyUnknown(str(refusal)) from None
        raise _translate(exc, switch.name) from exc
    session = SwitchSession(switch, platform, conn, timeout)
    try:
        yield session
    finally:
        session.close()


# Switches whose refusal of a JSON command was logged (a warning once, then debug).
_REFUSALS_LOGGED: set[str] = set()
_REFUSALS_LOCK = threading.Lock()


def _read_json(
    session: SwitchSession, view: str, command: str | None, parse: Callable[[str, str, str], list[Any]]
) -> list[Any] | None:
    """``view`` read by its JSON ``command``, or ``None`` where the text path must read it.

    ``None`` when the platform has no JSON form of the view, or the switch refused
    one in this session (:class:`structured.JsonPipeRejected`: logged once per
    switch). Any other failure, an answer of unexpected shape among them, raises.
    """
    if command is None or session.json_refused is not None:
        return None
    try:
        records = parse(session.platform.name, command, session.run(command))
    except structured.JsonPipeRejected as exc:
        session.json_refused = str(exc)
        name = session.switch.name
        with _REFUSALS_LOCK:
            first = name not in _REFUSALS_LOGGED
            _REFUSALS_LOGGED.add(name)
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "%s: structured output refused, reading text instead: %s",
            name,
            exc,
        )
        return None
    session.sources[view] = "json"
    return records


def read_mac_table(session: SwitchSession) -> list[MacEntry]:
    """A fresh read of the switch's MAC table (its JSON form where the platform has one)."""
    p = session.platform
    found = _read_json(session, "mac_table", p.json_mac_table, structured.parse_mac_table)
    if found is not None:
        return found
    session.sources["mac_table"] = "text"
    text = session.run_checked(p.mac_table) if p.linux_bridge else session.run(p.mac_table)
    if p.linux_bridge:
        return parsers.parse_bridge_fdb(text)
    return parsers.parse_mac_table(p.name, p.mac_table, text)


def read_interfaces(session: SwitchSession) -> list[Interface]:
    p = session.platform
    found = _read_json(session, "interfaces", p.json_interfaces, structured.parse_interfaces)
    if found is not None:
        return found
    session.sources["interfaces"] = "text"
    if p.linux_bridge:
        return parsers.parse_ip_link(session.run_checked("ip -j link"))
    if not p.interfaces:
        return []
    return parsers.parse_interfaces(p.name, {c: session.run(c) for c in p.interfaces})


def read_neighbors(session: SwitchSession) -> list[LldpNeighbor]:
    """LLDP neighbours; an LLDP that is off or absent gives ``[]`` (logged), never a failure.

    A JSON answer of unexpected shape is not "LLDP off": it raises
    (:class:`structured.StructuredOutputError`), so the uplink guard never
    loses its neighbours to a parser that did not understand them.
    """
    p = session.platform
    if p.lldp is None:
        return []
    found = _read_json(session, "lldp", p.json_lldp, structured.parse_lldp_neighbors)
    if found is not None:
        return found
    session.sources["lldp"] = "text"
    try:
        if p.linux_bridge:
            return parsers.parse_lldpcli(session.run_checked(p.lldp))
        return parsers.parse_lldp_neighbors(p.name, p.lldp, session.run(p.lldp))
    except (SwitchCommandFailed, SwitchOutputError, UnknownPlatform) as exc:
        log.info("%s: no LLDP neighbours: %s", session.switch.name, exc)
        return []


def poll(session: SwitchSession, *, lldp: bool = True) -> SwitchFacts:
    """MAC table, interfaces and (optionally) LLDP neighbours of one switch.

    The MAC table is read last: it is the long transfer and the long parse, and
    a session that ends with it has no round trips left to wait for after it
    (with many switches polled at once, the last ones finish sooner).
    """
    interfaces = tuple(read_interfaces(session))
    neighbors = tuple(read_neighbors(session)) if lldp else ()
    return SwitchFacts(
        switch=session.switch.name,
        platform=session.platform.name,
        mac_table=tuple(read_mac_table(session)),
        interfaces=interfaces,
        neighbors=neighbors,
    )


_KIND = [
    (UnknownPlatform, FailureKind.UNKNOWN_PLATFORM),
    (SwitchHostKeyUnknown, FailureKind.HOST_KEY),
    (SwitchHostKeyChanged, FailureKind.HOST_KEY),
    (SwitchAuthFailed, FailureKind.AUTH_FAILED),
    (SwitchUnreachable, FailureKind.UNREACHABLE),
    (SwitchTimeout, FailureKind.TIMEOUT),
    (SwitchOutputError, FailureKind.GARBAGE_OUTPUT),
    (SwitchCommandFailed, FailureKind.COMMAND_FAILED),
]


def _failure(switch: str, exc: BaseException, started: float) -> SwitchResult:
    kind = next((k for cls, k in _KIND if isinstance(exc, cls)), FailureKind.ERROR)
    if isinstance(exc, SwitchAuthFailed) and "no credentials" in str(exc):
        kind = FailureKind.NO_CREDENTIALS
    reason = str(exc)
    prefix = f"{switch}: "
    return SwitchResult(
        switch=switch,
        failure=kind,
        reason=reason.removeprefix(prefix),
        elapsed_s=round(time.monotonic() - started, 3),
    )


def poll_switch(
    switch: Switch,
    *,
    credentials: SwitchCredentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    platforms: Mapping[str, Platform] | None = None,
    lldp: bool = True,
) -> SwitchResult:
    """Poll one switch; never raises for the switch's own failures (they are the result)."""
    started = time.monotonic()
    try:
        with open_session(switch, credentials=credentials, timeout=timeout, platforms=platforms) as session:
            facts = poll(session, lldp=lldp)
    except IpsinfraError as exc:
        return _failure(switch.name, exc, started)
    except Exception as exc:  # a driver bug must not hide the other switches
        return _failure(switch.name, _translate(exc, switch.name), started)
    return SwitchResult(switch=switch.name, facts=facts, elapsed_s=round(time.monotonic() - started, 3))


def pool_size(switches: int, max_workers: int | None = None) -> int:
    """Sessions :func:`collect` opens at once: one per switch, at most ``max_workers``.

    >>> pool_size(20), pool_size(500), pool_size(20, max_workers=4)
    (20, 64, 4)
    """
    limit = MAX_DEFAULT_WORKERS if max_workers is None else max_workers
    return max(1, min(switches, limit))


def collect(
    switches: Iterable[Switch],
    *,
    credentials: Mapping[str, SwitchCredentials] | Callable[[Switch], SwitchCredentials] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_workers: int | None = None,
    platforms: Mapping[str, Platform] | None = None,
    lldp: bool = True,
) -> CollectionReport:
    """Poll every switch concurrently: one :class:`SwitchResult` per switch.

    Args:
        credentials: per switch name (or a function of the switch); default: each
            switch's ``secret`` as its password.
        timeout: per switch, for the login and each command; the whole poll of
            a switch is also cut off after ``3 * timeout`` (reported as timeout).
        max_workers: at most this many sessions at once; default: one per
            switch, at most :data:`MAX_DEFAULT_WORKERS`.
    """
    todo = list(switches)
    started = time.monotonic()
    workers = pool_size(len(todo), max_workers)

    def creds_of(sw: Switch) -> SwitchCredentials | None:
        if credentials is None:
            return None
        if callable(credentials):
            return credentials(sw)
        return credentials.get(sw.name)

    results: dict[str, SwitchResult] = {}
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="switch")
    try:
        futures: dict[cf.Future[SwitchResult], tuple[Switch, float]] = {}
        for sw in todo:
            try:
                c = creds_of(sw)
            except IpsinfraError as exc:  # e.g. the secret's env variable is unset
                results[sw.name] = _failure(
                    sw.name, SwitchAuthFailed(f"no credentials: {exc}"), time.monotonic()
                )
                continue
            fut = pool.submit(poll_switch, sw, credentials=c, timeout=timeout, platforms=platforms, lldp=lldp)
            futures[fut] = (sw, time.monotonic())
        deadline = 3 * timeout * (len(futures) / workers + 1)
        done, not_done = cf.wait(futures, timeout=deadline)
        for fut in done:
            sw, _ = futures[fut]
            results[sw.name] = fut.result()
        for fut in not_done:
            sw, t0 = futures[fut]
            fut.cancel()
            results[sw.name] = _failure(sw.name, SwitchTimeout(f"no result within {deadline:.0f} s"), t0)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    ordered = {sw.name: results[sw.name] for sw in todo if sw.name in results}
    return CollectionReport(results=ordered, elapsed_s=round(time.monotonic() - started, 3))


# --- changes ----------------------------------------------------------------------


def _journal(
    journal: JournalLike | None,
    action: str,
    target: str,
    *,
    result: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: str = "",
) -> None:
    if journal is not None:
        journal.record(action, target, result=result, before=before, after=after, detail=detail)


def _port_state(session: SwitchSession, port: str) -> Interface:
    """The interface ``port`` (any spelling), as the switch lists it: commands use its spelling."""
    names = InterfaceNames.of(session.platform.name)
    key = names.key(port)
    iface = next((i for i in read_interfaces(session) if names.key(i.name) == key), None)
    if iface is None:
        raise TargetProofFailed(f"{session.switch.name}: no port {port!r} on the switch; nothing was changed")
    return iface


def shutdown_problem(
    facts: SwitchFacts, port: str, mac: str, *, uplink_threshold: int = DEFAULT_UPLINK_THRESHOLD
) -> str | None:
    """Why ``port`` must not be shut down for ``mac`` on this fresh read, or ``None``. Pure.

    ``mac`` must be learnt on ``port`` and on no other port, and ``port`` must
    not be an uplink (:func:`find_uplinks`: an LLDP neighbour that is a switch or
    router, or more than ``uplink_threshold`` MACs). Every port is compared in
    its canonical form: Arista's MAC table says ``Et49`` where its LLDP says
    ``Ethernet49``, and both are the one uplink.

    >>> shutdown_problem(facts, "Et49", "52:54:00:aa:00:01")
    'Et49 of sw1 is an uplink (1 MACs / LLDP switch neighbour)'
    """
    names = facts.names
    key = names.key(port)
    seen_on = facts.ports_of(mac)
    if names.keys(seen_on) != {key}:
        where = ", ".join(seen_on) if seen_on else "no port"
        return f"{mac} is on {where} of {facts.switch}, not on {port}"
    if key in names.keys(find_uplinks(facts, threshold=uplink_threshold)):
        count = len({e.mac for e in facts.mac_table if names.key(e.port) == key})
        return f"{port} of {facts.switch} is an uplink ({count} MACs / LLDP switch neighbour)"
    return None


def _state_dict(iface: Interface) -> dict[str, Any]:
    return {"admin_up": iface.admin_up, "description": iface.description}


def _expected_mac(value: str) -> str:
    try:
        return normalize_mac(value)
    except ValueError:
        raise InvalidInput(f"expect_mac: value {value!r}: not a MAC address") from None


def shutdown_port(
    switch: Switch,
    port: str,
    expect_mac: str,
    *,
    credentials: SwitchCredentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    platforms: Mapping[str, Platform] | None = None,
    journal: JournalLike | None = None,
    uplink_threshold: int = DEFAULT_UPLINK_THRESHOLD,
    reason: str = "",
) -> PortAction:
    """Shut ``port`` down, after proving ``expect_mac`` is learnt on that very port now.

    The proof is a fresh MAC-table read in the same session, just before the
    change (:func:`shutdown_problem`): the MAC must be on ``port`` and on no
    other port, and ``port`` must not be an uplink (LLDP switch neighbour or
    more than ``uplink_threshold`` MACs), ports compared in their canonical
    form. Otherwise :class:`TargetProofFailed` says what was seen where and
    nothing is changed. ``port`` may be any spelling of the port (``Et1`` or
    ``Ethernet1``); the command names it as the switch's interface table does.
    The new state is read back from the switch.

    Raises:
        InvalidInput: ``port`` is not one word (``Gi0/5\\nreload``) or
            ``expect_mac`` not a MAC, before the switch is contacted.
    """
    check_interface_name(port, field="port")
    mac = _expected_mac(expect_mac)
    target = f"{switch.name}:{port}"
    with open_session(switch, credentials=credentials, timeout=timeout, platforms=platforms) as s:
        facts = SwitchFacts(
            switch=switch.name,
            platform=s.platform.name,
            mac_table=tuple(read_mac_table(s)),
            neighbors=tuple(read_neighbors(s)),
        )
        seen_on = facts.ports_of(mac)
        problem = shutdown_problem(facts, port, mac, uplink_threshold=uplink_threshold)
        if problem is not None:
            _journal(journal, "switch.port.shutdown", target, result="refused", detail=problem)
            raise TargetProofFailed(f"refusing to shut down {target}: {problem}; nothing was changed")
        before = _port_state(s, port)
        s.configure(s.platform.admin_commands(before.name, up=False))
        after = _port_state(s, port)
    action = PortAction(
        switch=switch.name,
        port=port,
        action="shutdown",
        mac=mac,
        seen_on=seen_on,
        before=_state_dict(before),
        after=_state_dict(after),
        changed=before.admin_up is not False,
    )
    ok = after.admin_up is False
    _journal(
        journal,
        "switch.port.shutdown",
        target,
        result="ok" if ok else "failed",
        before=action.before,
        after=action.after,
        detail=f"{mac} proven on {port}" + (f"; {reason}" if reason else ""),
    )
    if not ok:
        raise SwitchError(f"{target}: shutdown sent but the port still reads admin up")
    return action


def no_shutdown_port(
    switch: Switch,
    port: str,
    expect_mac: str,
    *,
    credentials: SwitchCredentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    platforms: Mapping[str, Platform] | None = None,
    journal: JournalLike | None = None,
    reason: str = "",
) -> PortAction:
    """Bring ``port`` back up (unblock), after proving it is still the server's port.

    A port that is down has no MACs learnt, so the proof is the other way
    round: ``expect_mac`` must not be learnt on any *other* port (the server
    has not moved; re-enabling would hand the port to whoever is there now),
    and ``port`` must exist. Ports are compared in their canonical form. The
    new state is read back.
    """
    check_interface_name(port, field="port")
    mac = _expected_mac(expect_mac)
    target = f"{switch.name}:{port}"
    with open_session(switch, credentials=credentials, timeout=timeout, platforms=platforms) as s:
        names = InterfaceNames.of(s.platform.name)
        seen_on = sorted({e.port for e in read_mac_table(s) if e.mac == mac})
        elsewhere = [p for p in seen_on if not names.same(p, port)]
        if elsewhere:
            problem = f"{mac} is on {', '.join(elsewhere)} of {switch.name}, not on {port}"
            _journal(journal, "switch.port.no_shutdown", target, result="refused", detail=problem)
            raise TargetProofFailed(f"refusing to enable {target}: {problem}; nothing was changed")
        before = _port_state(s, port)
        s.configure(s.platform.admin_commands(before.name, up=True))
        after = _port_state(s, port)
    action = PortAction(
        switch=switch.name,
        port=port,
        action="no_shutdown",
        mac=mac,
        seen_on=seen_on,
        before=_state_dict(before),
        after=_state_dict(after),
        changed=before.admin_up is not True,
    )
    ok = after.admin_up is True
    _journal(
        journal,
        "switch.port.no_shutdown",
        target,
        result="ok" if ok else "failed",
        before=action.before,
        after=action.after,
        detail=f"{mac} not seen elsewhere" + (f"; {reason}" if reason else ""),
    )
    if not ok:
        raise SwitchError(f"{target}: no shutdown sent but the port still reads admin down")
    return action


no_shutdown = no_shutdown_port


def set_descriptions(
    switch: Switch,
    descriptions: Mapping[str, str],
    *,
    credentials: SwitchCredentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    platforms: Mapping[str, Platform] | None = None,
    journal: JournalLike | None = None,
) -> list[PortAction]:
    """Write ``port -> description`` on one switch; ports already right are left alone.

    Each change is read back; a port that does not read back as written raises
    :class:`SwitchError` after the others were tried and journaled.
    """
    actions: list[PortAction] = []
    failed: list[str] = []
    for port in descriptions:
        check_interface_name(port, field="port")
    with open_session(switch, credentials=credentials, timeout=timeout, platforms=platforms) as s:
        names = InterfaceNames.of(s.platform.name)
        current = {names.key(i.name): i for i in read_interfaces(s)}
        for port, text in sorted(descriptions.items()):
            if "\n" in text or "\r" in text:
                raise SwitchError(f"{switch.name}:{port}: a description is one line")
            before = current.get(names.key(port))
            if before is None:
                failed.append(f"{port}: no such port")
                continue
            if before.description == text:
                continue
            s.configure(s.platform.description_commands(before.name, text))
            after = _port_state(s, port)
            ok = after.description == text
            _journal(
                journal,
                "switch.port.description",
                f"{switch.name}:{port}",
                result="ok" if ok else "failed",
                before={"description": before.description},
                after={"description": after.description},
            )
            if not ok:
                failed.append(f"{port}: reads back {after.description!r}")
            actions.append(
                PortAction(
                    switch=switch.name,
                    port=port,
                    action="description",
                    before={"description": before.description},
                    after={"description": after.description},
                )
            )
    if failed:
        raise SwitchError(f"{switch.name}: descriptions not written: " + "; ".join(failed))
    return actions
