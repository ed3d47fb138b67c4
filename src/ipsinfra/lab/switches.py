"""Lab switches for tests and the demo: an in-process Cisco-like SSH switch and a
real Linux bridge in network namespaces.

:class:`IosSwitchServer` is an asyncssh server on ``127.0.0.1`` (free port, its
own host key, password login) that netmiko's ``cisco_ios`` driver logs into. It
speaks just enough IOS for the port map: ``terminal length/width``, ``show mac
address-table``, ``show interfaces status|description``, ``show lldp neighbors
detail``, ``configure terminal`` / ``interface X`` / ``description`` /
``shutdown`` / ``no shutdown`` / ``end``. Its :class:`IosSwitchState` is plain
data a test changes between polls (move a MAC, break the output)::

    state = IosSwitchState(hostname="sw1", ports=["Gi0/1", "Gi0/2"])
    state.learn("52:54:00:aa:00:01", "Gi0/1")
    with IosSwitchServer(state, password="pw") as server:
        ...  # netmiko ConnectHandler(device_type="cisco_ios", host="127.0.0.1", port=server.port, ...)
        state.learn("52:54:00:aa:00:01", "Gi0/2")   # the server moved

:class:`BridgeLab` (root only) builds a switch namespace with bridge ``br0``, one
veth port ``swpN`` per server namespace, ``sshd`` inside the switch namespace
(key login, reachable from the root namespace over a 169.254.x management veth)
and optionally ``lldpd`` everywhere so the switch learns its neighbours' names.
MACs are learnt from real frames (a broadcast datagram each server sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ipsinfra.lab.sshd import LabError, LabNeedsRoot
from ipsinfra.models import normalize_mac

__all__ = [
    "BridgeHost",
    "BridgeLab",
    "IosPort",
    "IosSwitchServer",
    "IosSwitchState",
]

# --- the in-process IOS-like switch --------------------------------------------


@dataclass
class IosPort:
    name: str
    description: str = ""
    admin_up: bool = True
    vlan: int = 10


@dataclass
class IosSwitchState:
    """What the fake switch knows; thread-safe, change it between polls.

    ``garbage`` makes ``show mac address-table`` print junk (a broken pager,
    a wrong platform), to test the garbage-output path.
    """

    hostname: str = "sw1"
    ports: list[str] | dict[str, IosPort] = field(default_factory=list)
    macs: dict[str, tuple[str, int]] = field(default_factory=dict)
    lldp: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    garbage: bool = False
    commands: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.ports, list):
            self.ports = {name: IosPort(name) for name in self.ports}
        self._lock = threading.RLock()

    @property
    def port_states(self) -> dict[str, IosPort]:
        assert isinstance(self.ports, dict)
        return self.ports

    def learn(self, mac: str, port: str, vlan: int | None = None) -> None:
        """Put ``mac`` on ``port`` (moving it if it was elsewhere)."""
        with self._lock:
            if port not in self.port_states:
                raise KeyError(f"{self.hostname} has no port {port!r}")
            self.macs[normalize_mac(mac)] = (port, vlan or self.port_states[port].vlan)

    def forget(self, mac: str) -> None:
        with self._lock:
            self.macs.pop(normalize_mac(mac), None)

    def neighbor(self, port: str, name: str, capabilities: str = "B,R") -> None:
        """An LLDP neighbour on ``port`` (``B,R``: a switch; ``""``: a server)."""
        with self._lock:
            self.lldp[port] = (name, capabilities)

    # -- output, in the shape real IOS prints it (ntc-templates parses these) --

    def show_mac(self) -> str:
        with self._lock:
            if self.garbage:
                return "\x1b[7m--More--\x1b[0m 5254.00aa.0001 ~~ \x00\x7f@@ Gi0/1 ?? 10\nlorem ipsum\n"
            rows = [
                f"{vlan:>4}    {_dotted(mac)}    DYNAMIC     {port}"
                for mac, (port, vlan) in sorted(self.macs.items(), key=lambda kv: (kv[1][1], kv[0]))
            ]
            return (
                "          Mac Address Table\n-------------------------------------------\n\n"
                "Vlan    Mac Address       Type        Ports\n"
                "----    -----------       --------    -----\n"
                + "".join(r + "\n" for r in rows)
                + f"Total Mac Addresses for this criterion: {len(rows)}\n"
            )

    def show_status(self) -> str:
        with self._lock:
            lines = ["Port      Name               Status       Vlan       Duplex  Speed Type"]
            for p in self.port_states.values():
                linked = any(port == p.name for port, _ in self.macs.values())
                status = "disabled" if not p.admin_up else ("connected" if linked else "notconnect")
                lines.append(
                    f"{p.name:<9} {p.description[:18]:<18} {status:<12} {p.vlan:<10} "
                    "a-full a-1000 10/100/1000BaseTX"
                )
            return "\n".join(lines) + "\n"

    def show_description(self) -> str:
        with self._lock:
            lines = ["Interface                      Status         Protocol Description"]
            for p in self.port_states.values():
                linked = any(port == p.name for port, _ in self.macs.values())
                status = "up" if p.admin_up else "admin down"
                proto = "up" if p.admin_up and linked else "down"
                lines.append(f"{p.name:<30} {status:<14} {proto:<8} {p.description}".rstrip())
            return "\n".join(lines) + "\n"

    def show_lldp(self) -> str:
        with self._lock:
            blocks = []
            for port, (name, caps) in sorted(self.lldp.items()):
                blocks.append(
                    "------------------------------------------------\n"
                    f"Local Intf: {port}\nChassis id: 0011.2233.4455\nPort id: Te1/0/1\n"
                    f"Port Description: to {self.hostname}\nSystem Name: {name}\n\n"
                    "System Description: \nlab\n\nTime remaining: 101 seconds\n"
                    f"System Capabilities: {caps or 'S'}\n"
                    f"Enabled Capabilities: {caps or 'not advertised'}\n"
                    "Management Addresses:\n    IP: 127.0.0.1\n"
                    "Auto Negotiation - not supported\nPhysical media capabilities - not advertised\n"
                    "Media Attachment Unit type - not advertised\nVlan ID: - not advertised\n\n"
                )
            return "".join(blocks) + f"\nTotal entries displayed: {len(blocks)}\n"


def _dotted(mac: str) -> str:
    h = mac.replace(":", "")
    return f"{h[0:4]}.{h[4:8]}.{h[8:12]}"


INVALID = "% Invalid input detected at '^' marker.\n"


class _IosSession:
    """One CLI session: exec / config / config-if modes."""

    def __init__(self, state: IosSwitchState) -> None:
        self.state = state
        self.mode = "exec"
        self.interface: str | None = None

    @property
    def prompt(self) -> str:
        suffix = {"exec": "#", "config": "(config)#", "config-if": "(config-if)#"}[self.mode]
        return self.state.hostname + suffix

    def handle(self, line: str) -> tuple[str, bool]:
        """(output, close?) for one input line."""
        cmd = re.sub(r"\s+", " ", line.strip())
        st = self.state
        with st._lock:
            st.commands.append(cmd)
            if not cmd:
                return "", False
            if cmd in {"end", "\x1a"}:
                self.mode, self.interface = "exec", None
                return "", False
            if cmd == "exit":
                if self.mode == "exec":
                    return "", True
                self.mode = "config" if self.mode == "config-if" else "exec"
                return "", False
            if self.mode == "exec":
                return self._exec(cmd), False
            return self._config(cmd), False

    def _exec(self, cmd: str) -> str:
        st = self.state
        if re.fullmatch(r"terminal (length|width) \d+", cmd):
            return ""
        if re.fullmatch(r"sh(ow)? mac( |-)address-table", cmd):
            return st.show_mac()
        if re.fullmatch(r"sh(ow)? int(erfaces)? status", cmd):
            return st.show_status()
        if re.fullmatch(r"sh(ow)? int(erfaces)? desc(ription)?", cmd):
            return st.show_description()
        if re.fullmatch(r"sh(ow)? lldp neighbors detail", cmd):
            return st.show_lldp()
        if re.fullmatch(r"conf(igure)?( t(erminal)?)?", cmd):
            self.mode = "config"
            return "Enter configuration commands, one per line.  End with CNTL/Z.\n"
        return INVALID

    def _config(self, cmd: str) -> str:
        st = self.state
        m = re.fullmatch(r"int(erface)? (\S+)", cmd)
        if m:
            if m.group(2) not in st.port_states:
                return INVALID
            self.mode, self.interface = "config-if", m.group(2)
            return ""
        if self.mode == "config-if" and self.interface is not None:
            port = st.port_states[self.interface]
            if cmd.startswith("description "):
                port.description = cmd.removeprefix("description ")
                return ""
            if cmd == "no description":
                port.description = ""
                return ""
            if cmd in {"shutdown", "shut"}:
                port.admin_up = False
                # a port going down flushes what was learnt on it, like the real thing
                for mac in [m for m, (p, _) in st.macs.items() if p == port.name]:
                    del st.macs[mac]
                return ""
            if cmd in {"no shutdown", "no shut"}:
                port.admin_up = True
                return ""
        return INVALID


class IosSwitchServer:
    """An asyncssh server speaking enough IOS for netmiko's ``cisco_ios`` driver.

    The asyncio loop runs in a daemon thread; :meth:`stop` (or leaving the
    ``with`` block) closes the listener and every session.
    """

    def __init__(
        self, state: IosSwitchState, *, username: str = "admin", password: str = "lab-password"
    ) -> None:
        self.state = state
        self.username = username
        self.password = password
        self.host = "127.0.0.1"
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self.logins = 0

    def start(self) -> IosSwitchServer:
        import asyncssh

        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=f"ios-switch-{self.state.hostname}", daemon=True)
        self._thread.start()
        outer = self

        class _Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                ok = username == outer.username and password == outer.password
                if ok:
                    outer.logins += 1
                return ok

        async def _start() -> Any:
            return await asyncssh.create_server(
                _Server,
                self.host,
                0,
                server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
                process_factory=self._session,
                line_editor=True,
            )

        fut: Future[Any] = asyncio.run_coroutine_threadsafe(_start(), loop)
        self._server = fut.result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _session(self, process: Any) -> None:
        import asyncssh

        session = _IosSession(self.state)
        process.stdout.write(f"\n{session.prompt}")
        try:
            while True:
                try:
                    line = await process.stdin.readline()
                except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
                    continue
                if not line:
                    break
                output, close = session.handle(line)
                if close:
                    break
                process.stdout.write(output + session.prompt)
        except (asyncssh.Error, ConnectionError, BrokenPipeError):
            pass
        finally:
            process.exit(0)

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def _close() -> None:
            self._server.close()
            await self._server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()
        self._loop = None

    def __enter__(self) -> IosSwitchServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
