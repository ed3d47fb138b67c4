"""Lab switches for tests and the demo: an in-process Cisco-like SSH switch and a
real Linux bridge in network namespaces.

:class:`IosSwitchServer` is an asyncssh server on ``127.0.0.1`` (free port, its
own host key, password login) that netmiko's ``cisco_ios`` driver logs into. It
speaks just enough IOS for the port map: ``terminal length/width``, ``show mac
address-table``, ``show interfaces status|description``, ``show lldp neighbors
detail``, ``configure terminal`` / ``interface X`` / ``description`` /
``shutdown`` / ``no shutdown`` / ``end``, its answers printed line for line as
a Catalyst on IOS 15 prints them (:mod:`ipsinfra.lab.ios_output`, checked
against real captures). Its :class:`IosSwitchState` is plain
data a test changes between polls (move a MAC, break the output)::

    state = IosSwitchState(hostname="sw1", ports=["Gi0/1", "Gi0/2"])
    state.learn("52:54:00:aa:00:01", "Gi0/1")
    with IosSwitchServer(state, password="pw") as server:
        ...  # netmiko ConnectHandler(device_type="cisco_ios", host="127.0.0.1", port=server.port, ...)
        state.learn("52:54:00:aa:00:01", "Gi0/2")   # the server moved

:class:`EosSwitchState` gives the same server an Arista EOS personality for
netmiko's ``arista_eos`` driver: EOS's text tables, and ``| json`` answers with
the keys of real EOS captures (:mod:`ipsinfra.lab.eos_output`), or a refusal of
the pipe on request, to test the structured-output path and its fallback.

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

from ipsinfra.lab.eos_output import (
    EosMac,
    EosNeighbor,
    EosPort,
    interface_status_json,
    interface_status_text,
    interfaces_description_text,
    lldp_detail_json,
    lldp_detail_text,
    mac_table_json,
    mac_table_text,
)
from ipsinfra.lab.ios_output import (
    DESCRIPTION_HEADER,
    MAC_TABLE_HEAD,
    STATUS_HEADER,
    IosLldpNeighbor,
    description_row,
    dotted,
    lldp_detail,
    mac_row,
    status_row,
)
from ipsinfra.lab.ios_output import _lab_mac as _lab_mac_of
from ipsinfra.lab.sshd import LabError, LabNeedsRoot
from ipsinfra.models import normalize_mac

__all__ = [
    "BridgeHost",
    "BridgeLab",
    "EosSwitchState",
    "IosLldpNeighbor",
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
    media_type: str = "10/100/1000BaseTX"


@dataclass
class IosSwitchState:
    """What the fake switch knows; thread-safe, change it between polls.

    ``garbage`` makes ``show mac address-table`` print junk (a broken pager,
    a wrong platform), to test the garbage-output path.
    """

    hostname: str = "sw1"
    ports: list[str] | dict[str, IosPort] = field(default_factory=list)
    macs: dict[str, tuple[str, int]] = field(default_factory=dict)
    lldp: dict[str, IosLldpNeighbor] = field(default_factory=dict, repr=False)
    garbage: bool = False
    commands: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.ports, list):
            self.ports = {name: IosPort(name) for name in self.ports}
        self._lock = threading.RLock()
        self._mac_table: tuple[dict[str, tuple[str, int]], str] | None = None  # (macs, as printed)

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

    def neighbor(self, port: str, name: str, capabilities: str = "B,R", **tlvs: Any) -> IosLldpNeighbor:
        """An LLDP neighbour on ``port`` (``B,R``: a switch; ``""``: a server).

        ``tlvs`` are :class:`IosLldpNeighbor` fields (``chassis_id``, ``port_id``...).
        """
        with self._lock:
            self.lldp[port] = IosLldpNeighbor(name, capabilities, **tlvs)
            return self.lldp[port]

    # -- output, in the shape real IOS prints it (ntc-templates parses these) --

    def show_mac(self) -> str:
        with self._lock:
            if self.garbage:
                return "\x1b[7m--More--\x1b[0m 5254.00aa.0001 ~~ \x00\x7f@@ Gi0/1 ?? 10\nlorem ipsum\n"
            # The same MACs print the same table: keep the last one. Printing 10k
            # rows costs 13 ms, and the lab's switches share one interpreter where
            # real ones each have their own CPU.
            if self._mac_table is not None and self._mac_table[0] == self.macs:
                return self._mac_table[1]
            rows = [
                mac_row(vlan, dotted(mac), "DYNAMIC", port)
                for mac, (port, vlan) in sorted(self.macs.items(), key=lambda kv: (kv[1][1], kv[0]))
            ]
            text = (
                MAC_TABLE_HEAD
                + "".join(r + "\n" for r in rows)
                + f"Total Mac Addresses for this criterion: {len(rows)}\n"
            )
            self._mac_table = (dict(self.macs), text)
            return text

    def _linked(self, port: IosPort) -> bool:
        return port.admin_up and any(p == port.name for p, _ in self.macs.values())

    def show_status(self) -> str:
        with self._lock:
            lines = [STATUS_HEADER]
            for p in self.port_states.values():
                linked = self._linked(p)
                status = "disabled" if not p.admin_up else ("connected" if linked else "notconnect")
                duplex, speed = ("a-full", "a-1000") if linked else ("auto", "auto")
                lines.append(
                    status_row(p.name, p.description, status, str(p.vlan), duplex, speed, p.media_type)
                )
            return "\n".join(lines) + "\n"

    def show_description(self) -> str:
        with self._lock:
            lines = [DESCRIPTION_HEADER]
            for p in self.port_states.values():
                status = ("up" if self._linked(p) else "down") if p.admin_up else "admin down"
                lines.append(
                    description_row(p.name, status, "up" if self._linked(p) else "down", p.description)
                )
            return "\n".join(lines) + "\n"

    def show_lldp(self) -> str:
        with self._lock:
            return lldp_detail(sorted(self.lldp.items()))

    # -- what another platform's personality answers differently --

    def exec_command(self, cmd: str) -> str | None:
        """A platform's own answer to an exec command; ``None``: the IOS handling."""
        return None

    def resolve_port(self, name: str) -> str | None:
        """The port ``interface <name>`` configures: IOS's lab knows only its own spelling."""
        return name if name in self.port_states else None


INVALID = "% Invalid input detected at '^' marker.\n"


@dataclass
class EosSwitchState(IosSwitchState):
    """An Arista EOS personality: its text tables, and ``| json`` answers shaped as real EOS's.

    Ports are named as EOS's configuration and JSON name them (``Ethernet5``);
    its text tables print them short (``Et5``) and ``interface Et5`` or
    ``interface Ethernet5`` both configure the port, as on EOS. The answers are
    :mod:`ipsinfra.lab.eos_output`'s (the keys of real captures, cited there);
    ``terminal width``/``length`` answer what netmiko's ``arista_eos`` driver
    waits for (``Width set to``, ``Pagination disabled``: netmiko/arista/arista.py).

    ``json_refusal``: when set, the line every ``| json`` command gets instead
    of JSON, as from an EOS that refuses the pipe (``% This is an unconverted
    command``: nautobot/nornir-nautobot#280). ``commands`` shows which were sent.
    """

    json_refusal: str | None = None

    def _ports(self) -> list[EosPort]:
        return [
            EosPort(p.name, p.description, p.admin_up, self._linked(p), p.vlan)
            for p in self.port_states.values()
        ]

    def _macs(self) -> list[EosMac]:
        rows = sorted(self.macs.items(), key=lambda kv: (kv[1][1], kv[0]))
        return [EosMac(mac, port, vlan) for mac, (port, vlan) in rows]

    def _neighbors(self) -> list[EosNeighbor]:
        out = []
        for port, n in sorted(self.lldp.items()):
            switch = bool(set(n.capabilities.split(",")) & {"B", "R"})
            chassis = n.chassis_id or _lab_mac_of(n.name)
            out.append(
                EosNeighbor(
                    port, n.name, n.capabilities, chassis, n.port_id or ("Ethernet1" if switch else chassis)
                )
            )
        return out

    def exec_command(self, cmd: str) -> str | None:
        with self._lock:
            width = re.fullmatch(r"terminal width (\d+)", cmd)
            if width:
                return f"Width set to {width.group(1)} columns.\n"
            if re.fullmatch(r"terminal length \d+", cmd):
                return "Pagination disabled.\n"
            base, pipe, fmt = cmd.partition(" | ")
            if pipe and fmt == "json":
                if self.json_refusal is not None:
                    return self.json_refusal + "\n"
                if re.fullmatch(r"sh(ow)? mac address-table", base):
                    return mac_table_json(self._macs()) + "\n"
                if re.fullmatch(r"sh(ow)? int(erfaces)? status", base):
                    return interface_status_json(self._ports()) + "\n"
                if re.fullmatch(r"sh(ow)? lldp neighbors detail", base):
                    return lldp_detail_json(list(self.port_states), self._neighbors()) + "\n"
                return INVALID
            if re.fullmatch(r"sh(ow)? mac address-table", cmd):
                return mac_table_text(self._macs())
            if re.fullmatch(r"sh(ow)? int(erfaces)? status", cmd):
                return interface_status_text(self._ports())
            if re.fullmatch(r"sh(ow)? int(erfaces)? desc(ription)?", cmd):
                return interfaces_description_text(self._ports())
            if re.fullmatch(r"sh(ow)? lldp neighbors detail", cmd):
                return lldp_detail_text(self._neighbors())
            return None

    def resolve_port(self, name: str) -> str | None:
        from ipsinfra.identity import interface_key

        key = interface_key("arista_eos", name)
        return next((p for p in self.port_states if interface_key("arista_eos", p) == key), None)


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
        own = st.exec_command(cmd)
        if own is not None:
            return own
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
            found = st.resolve_port(m.group(2))
            if found is None:
                return INVALID
            self.mode, self.interface = "config-if", found
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

    Input is taken a line at a time (LF-ended, as netmiko sends it) and each
    line is echoed with its answer, CR LF line ends, each prompt on a line of
    its own. The asyncio loop runs in a daemon thread; :meth:`stop` (or leaving
    the ``with`` block) closes the listener and every session.
    """

    def __init__(
        self,
        state: IosSwitchState,
        *,
        username: str = "admin",
        password: str | None = "lab-password",
        host_key: Any = None,
        client_keys: Sequence[str] = (),
    ) -> None:
        """``password=None`` with ``client_keys`` (OpenSSH public key lines) is a key-only switch."""
        import asyncssh

        self.state = state
        self.username = username
        self.password = password
        self.client_keys = [asyncssh.import_public_key(k).export_public_key("openssh") for k in client_keys]
        self.host = "127.0.0.1"
        self.port = 0
        # Its own ed25519 key unless given one (an asyncssh private key): a test hands
        # another switch's key, or a fresh one, to play "someone else answering".
        self.host_key: Any = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self._known_dir: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._connections: set[Any] = set()
        self.logins = 0

    def start(self) -> IosSwitchServer:
        import asyncssh

        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"ios-switch-{self.state.hostname}", daemon=True
        )
        self._thread.start()
        outer = self

        class _Server(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                outer._connections.add(conn)

            def connection_lost(self, exc: Exception | None) -> None:
                outer._connections.difference_update(c for c in list(outer._connections) if c.is_closed())

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return outer.password is not None

            def validate_password(self, username: str, password: str) -> bool:
                ok = outer.password is not None and username == outer.username and password == outer.password
                if ok:
                    outer.logins += 1
                return ok

            def public_key_auth_supported(self) -> bool:
                return bool(outer.client_keys)

            def validate_public_key(self, username: str, key: Any) -> bool:
                ok = username == outer.username and key.export_public_key("openssh") in outer.client_keys
                if ok:
                    outer.logins += 1
                return ok

        async def _start() -> Any:
            return await asyncssh.create_server(
                _Server,
                self.host,
                0,
                server_host_keys=[self.host_key],
                process_factory=self._session,
                # Echo is ours (see _session): asyncssh's line editor echoes each
                # line as it arrives, so under load the newlines of several
                # queued lines went out before their prompts ("sw1#sw1#").
                line_editor=False,
            )

        fut: Future[Any] = asyncio.run_coroutine_threadsafe(_start(), loop)
        self._server = fut.result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._known_dir = Path(tempfile.mkdtemp(prefix="ios-switch-"))
        self.write_known_hosts(self.known_hosts)
        return self

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file pinning only this switch's key (written at start, removed at stop)."""
        if self._known_dir is None:
            raise LabError("the switch is not started: it has no port to pin a key for yet")
        return self._known_dir / "known_hosts"

    def known_hosts_line(self) -> str:
        """This switch's host key as a known_hosts line: ``[127.0.0.1]:<port> ssh-ed25519 AAAA...``."""
        from ipsinfra.hostkeys import known_hosts_name

        public = self.host_key.export_public_key("openssh").decode("ascii").split()
        return f"{known_hosts_name(self.host, self.port)} {public[0]} {public[1]}"

    def write_known_hosts(self, path: Path) -> Path:
        """Pin this switch's key in ``path`` (created or appended to); for a Switch's ``ssh_known_hosts``."""
        with path.open("a", encoding="ascii") as fh:
            fh.write(self.known_hosts_line() + "\n")
        return path

    async def _session(self, process: Any) -> None:
        """Answer line by line as IOS does: echo, CR LF, output, prompt, all in one write.

        Each prompt therefore follows its own newline, even when a client sends
        several lines before the first answer (typed-ahead lines are echoed
        after the prompt before them, as on a real switch).
        """
        import asyncssh

        session = _IosSession(self.state)
        process.stdout.write(f"\r\n{session.prompt}")
        try:
            while True:
                try:
                    line = await process.stdin.readline()
                except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
                    continue
                if not line:
                    break
                output, close = session.handle(line)
                answer = line.rstrip("\r\n") + "\r\n" + output.replace("\n", "\r\n")
                if close:
                    process.stdout.write(answer)
                    break
                process.stdout.write(answer + session.prompt)
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
            for conn in list(self._connections):
                conn.close()
                await conn.wait_closed()
            self._connections.clear()
            # let the transports finish closing before the loop goes away
            for _ in range(3):
                await asyncio.sleep(0.01)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()
        self._loop = None
        if self._known_dir is not None:
            shutil.rmtree(self._known_dir, ignore_errors=True)
            self._known_dir = None

    def __enter__(self) -> IosSwitchServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- a real Linux bridge in network namespaces (root only) ------------------------


@dataclass(frozen=True)
class BridgeHost:
    """A server namespace plugged into the lab switch: ``eth0`` with ``mac`` and ``address``."""

    name: str
    netns: str
    mac: str
    address: str


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    return proc


_SEND_FRAME = (
    "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
    "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1);s.sendto(b'ipsinfra-lab',(sys.argv[1],9))"
)
# sshd's pid 1-ish wrapper: a private mount namespace whose /root is an empty dir
# (root's real .bashrc runs `pyenv init`, which stalls every login for a minute).
_SSHD_WRAPPER = 'mount --bind "$1" /root && exec /usr/sbin/sshd -D -e -f "$2"'


class BridgeLab:
    """A Linux-bridge switch in a namespace, servers as namespaces on its ports.

    Every namespace and link carries a per-run prefix; :meth:`stop` (or leaving
    the ``with`` block) kills what it started by pid and deletes the namespaces.
    The switch is reached on ``mgmt_address`` (a 169.254.x.y/30 veth from the
    root namespace) with ``key_file``, as ``root``; netmiko's ``linux`` driver
    runs ``bridge -j fdb show`` there::

        with BridgeLab(lldp=True) as lab:
            ded1, ded2 = lab.start(["ded1", "ded2"])      # on swp1, swp2
            lab.send_frames()                              # the bridge learns their MACs
            switch = lab.switch("sw2-msk1")                # an ipsinfra Switch (platform linux)
            lab.move("ded1", "swp3")                       # re-plug ded1's cable
    """

    def __init__(self, *, prefix: str | None = None, lldp: bool = False, bridge: str = "br0") -> None:
        if os.geteuid() != 0:
            raise LabNeedsRoot("BridgeLab needs root (network namespaces)")
        for tool in ("ip", "ssh-keygen", "unshare", "/usr/sbin/sshd"):
            if shutil.which(tool) is None:
                raise LabError(f"BridgeLab needs {tool}")
        if lldp and shutil.which("/usr/sbin/lldpd") is None:
            raise LabError("BridgeLab(lldp=True) needs lldpd (apt-get install lldpd)")
        self.prefix = prefix or f"ips{uuid.uuid4().hex[:5]}"
        self.lldp = lldp
        self.bridge = bridge
        self.switch_ns = f"{self.prefix}sw"
        self.hosts: dict[str, BridgeHost] = {}
        self.ports: dict[str, str] = {}  # host name -> switch port
        self._procs: list[subprocess.Popen[bytes]] = []
        self._namespaces: list[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.dir.chmod(0o755)  # lldpcli drops to _lldpd before it opens the control socket
        self.key_file = str(self.dir / "id_ed25519")
        seed = int(self.prefix.encode().hex()[-6:], 16)
        # a /30 in 169.254.0.0/16 for the management link, chosen per run
        self._mgmt_net = (100 + seed % 150, (seed // 150 % 63) * 4)
        self.mgmt_address = f"169.254.{self._mgmt_net[0]}.{self._mgmt_net[1] + 2}"
        self._mac_base = seed & 0xFFFF
        self.lldp_socket = str(self.dir / "lldpd-switch.sock")

    # -- life cycle --

    def __enter__(self) -> BridgeLab:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _netns(self, name: str) -> str:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)
        _run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def start(self, hosts: Iterable[str]) -> list[BridgeHost]:
        """Build the switch and one server namespace per name, on ports swp1, swp2, ..."""
        try:
            self._build_switch()
            out = [self.add_host(name, f"swp{i}") for i, name in enumerate(hosts, start=1)]
            self._start_sshd()
            if self.lldp:
                self._start_lldpd(self.switch_ns, "swp*", self.lldp_socket, hostname=None)
            return out
        except BaseException:
            self.stop()
            raise

    def _build_switch(self) -> None:
        sw = self._netns(self.switch_ns)
        _run(["ip", "-n", sw, "link", "add", self.bridge, "type", "bridge"])
        _run(["ip", "-n", sw, "link", "set", self.bridge, "up"])
        root_if = f"{self.prefix}m0"
        a, b = self._mgmt_net
        _run(["ip", "link", "add", root_if, "type", "veth", "peer", "name", "mgmt0", "netns", sw])
        _run(["ip", "addr", "add", f"169.254.{a}.{b + 1}/30", "dev", root_if])
        _run(["ip", "link", "set", root_if, "up"])
        _run(["ip", "-n", sw, "addr", "add", f"{self.mgmt_address}/30", "dev", "mgmt0"])
        _run(["ip", "-n", sw, "link", "set", "mgmt0", "up"])

    def add_host(self, name: str, port: str) -> BridgeHost:
        """A server namespace with ``eth0`` plugged into ``port`` of the switch."""
        index = len(self.hosts) + 1
        ns = self._netns(f"{self.prefix}h{index}")
        mac = f"02:{self._mac_base >> 8:02x}:{self._mac_base & 0xFF:02x}:00:00:{index:02x}"
        host = BridgeHost(name=name, netns=ns, mac=mac, address=f"169.254.200.{index}")
        self.hosts[name] = host
        self._plug(host, port)
        if self.lldp:
            self._start_lldpd(ns, "eth0", str(self.dir / f"lldpd-{index}.sock"), hostname=name)
        return host

    def _plug(self, host: BridgeHost, port: str) -> None:
        sw = self.switch_ns
        _run(
            [
                "ip",
                "link",
                "add",
                port,
                "netns",
                sw,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.netns,
            ]
        )
        _run(["ip", "-n", host.netns, "link", "set", "eth0", "address", host.mac])
        _run(["ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0"])
        _run(["ip", "-n", host.netns, "link", "set", "eth0", "up"])
        _run(["ip", "-n", sw, "link", "set", port, "master", self.bridge])
        _run(["ip", "-n", sw, "link", "set", port, "up"])
        self.ports[host.name] = port

    def move(self, name: str, port: str) -> None:
        """Re-plug server ``name`` into ``port`` (a new port of the switch) and let it talk."""
        host = self.hosts[name]
        _run(["ip", "-n", self.switch_ns, "link", "del", self.ports[name]])  # the peer eth0 goes too
        self._plug(host, port)
        self.send_frames([name])

    def send_frames(self, names: Iterable[str] | None = None) -> None:
        """Each server sends a broadcast datagram: real frames the bridge learns from."""
        for name in names if names is not None else list(self.hosts):
            host = self.hosts[name]
            bcast = host.address.rsplit(".", 1)[0] + ".255"
            _run(["ip", "netns", "exec", host.netns, sys.executable, "-c", _SEND_FRAME, bcast])

    def _keygen(self, path: Path) -> None:
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.prefix}", "-f", str(path)])

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file pinning the switch's sshd key (the Switch's ``ssh_known_hosts``)."""
        return self.dir / "known_hosts"

    def _start_sshd(self) -> None:
        host_key = self.dir / "ssh_host_ed25519_key"
        self._keygen(host_key)
        key_type, key = Path(f"{host_key}.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"{self.mgmt_address} {key_type} {key}\n")  # port 22: no [host]:port
        self._keygen(Path(self.key_file))
        home = self.dir / "home"
        home.mkdir(mode=0o700)
        authorized = self.dir / "authorized_keys"
        authorized.write_text(Path(f"{self.key_file}.pub").read_text())
        config = self.dir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    "Port 22",
                    f"ListenAddress {self.mgmt_address}",
                    f"HostKey {host_key}",
                    "PidFile none",
                    f"AuthorizedKeysFile {authorized}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "",
                ]
            )
        )
        argv = ["ip", "netns", "exec", self.switch_ns, "unshare", "--mount", "--propagation", "private",
                "sh", "-c", _SSHD_WRAPPER, "sshd-wrapper", str(home), str(config)]  # fmt: skip
        log = (self.dir / "sshd.log").open("ab")
        self._procs.append(subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True))
        log.close()
        self._wait_tcp(self.mgmt_address, 22)

    def _wait_tcp(self, host: str, port: int, timeout: float = 10.0) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
                return
            if any(p.poll() is not None for p in self._procs):
                log = (self.dir / "sshd.log").read_text(errors="replace")[-500:]
                raise LabError(f"sshd in {self.switch_ns} exited: {log}")
            time.sleep(0.05)
        raise LabError(f"sshd in {self.switch_ns} does not answer on {host}:{port}")

    def _start_lldpd(self, netns: str, interfaces: str, socket_path: str, hostname: str | None) -> None:
        conf = Path(socket_path).with_suffix(".conf")
        conf.write_text(
            (f"configure system hostname {hostname}\n" if hostname else "") + "configure lldp tx-interval 1\n"
        )
        argv = ["ip", "netns", "exec", netns, "/usr/sbin/lldpd", "-d", "-u", socket_path, "-I", interfaces,
                "-O", str(conf)]  # fmt: skip
        self._procs.append(
            subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
        )

    def wait_lldp(self, count: int | None = None, timeout: float = 10.0) -> str:
        """Wait until the switch's lldpd knows ``count`` neighbours (default: every host)."""
        want = len(self.hosts) if count is None else count
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            proc = _run(["ip", "netns", "exec", self.switch_ns, "lldpcli", "-u", self.lldp_socket,
                         "-f", "json", "show", "neighbors"], check=False)  # fmt: skip
            out = proc.stdout
            if proc.returncode == 0 and out.count('"via"') >= want:
                return out
            time.sleep(0.2)
        raise LabError(f"lldpd in {self.switch_ns} knows fewer than {want} neighbours: {out[:300]}")

    # -- what tests hand to ipsinfra --

    def switch(self, name: str = "lab-bridge", site: str = "lab") -> Any:
        """The lab switch as an :class:`ipsinfra.models.Switch` (platform ``linux``, user root)."""
        from ipsinfra.models import Switch

        return Switch(
            name=name,
            site=site,
            host=self.mgmt_address,
            port=22,
            platform="linux",
            username="root",
            ssh_known_hosts=str(self.known_hosts),
        )

    def platforms(self) -> dict[str, Any]:
        """The default platform registry, with ``lldpcli`` pointed at this lab's lldpd socket."""
        import dataclasses

        from ipsinfra.network.switches import default_platforms

        registry = default_platforms()
        registry["linux"] = dataclasses.replace(
            registry["linux"], lldp=f"lldpcli -u {self.lldp_socket} -f json show neighbors"
        )
        return registry

    def ip_link(self, port: str) -> dict[str, Any]:
        """``ip -j link show <port>`` in the switch namespace (read back a port's state)."""
        import json

        out = _run(["ip", "-n", self.switch_ns, "-j", "link", "show", port]).stdout
        rows: list[dict[str, Any]] = json.loads(out)
        return rows[0]

    def stop(self) -> None:
        """Kill what this lab started (by pid), delete its namespaces and files."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._procs.clear()
        for ns in reversed(self._namespaces):
            _run(["ip", "netns", "del", ns], check=False)
        self._namespaces.clear()
        _run(["ip", "link", "del", f"{self.prefix}m0"], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
