"""Network namespaces with injected latency, and a TCP forwarder into them.

:class:`LatencyLink` builds one network namespace ``ipsb-<tag>`` joined to the
root namespace by a veth pair on a link-local /30 (``169.254.<n>.1`` outside,
``169.254.<n>.2`` inside), with ``tc netem delay`` on BOTH ends when the kernel
has ``sch_netem``: every packet that crosses the link waits ``rtt_ms / 2`` each
way, so a TCP round trip costs ``rtt_ms``. Nothing outside the namespace is
slowed down.

Kernels without ``sch_netem`` (this project's CI/dev VM: a Firecracker kernel
that has only tbf/htb/pfifo) get the delay from the forwarder instead: it
holds every chunk ``rtt_ms / 2`` in each direction and opens the upstream
connection ``1.5 * rtt_ms`` after accepting (the TCP handshake a client would
have waited for before the server's first byte). Application round trips then
cost ``rtt_ms`` exactly as with netem; only the client's own ``connect()``
returns early. ``LatencyLink.netem`` says which one is in use.

:class:`Forwarder` is a subprocess (``python -m bench.netlab forward``) that
listens on ``169.254.<n>.2:<port>`` INSIDE that namespace and forwards each
connection to ``127.0.0.1:<target>`` in the root namespace (it binds its
listeners after ``setns`` into the namespace, then returns to the root
namespace for the outgoing side). A client connecting to the namespace address
therefore crosses the delayed link; the service behind it (an sshd test host,
a lab switch) runs unchanged on loopback. Traffic only ever goes to loopback or
into the namespace the benchmark created.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

CLONE_NEWNET = 0x40000000


def _sh(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")


def netns_available() -> str | None:
    """None if namespaces + netem can be used here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns, tc netem)"
    for tool in ("ip", "tc"):
        if not any(Path(d, tool).exists() for d in ("/usr/sbin", "/sbin", "/usr/bin")):
            return f"needs {tool} (apt-get install iproute2)"
    return None


class LatencyLink:
    """A namespace behind a veth pair with ``rtt_ms`` of netem delay (context manager)."""

    def __init__(self, index: int, rtt_ms: float) -> None:
        if not 1 <= index <= 254:
            raise ValueError(f"index: value {index!r}: 1..254")
        self.index = index
        self.rtt_ms = rtt_ms
        tag = f"{os.getpid() % 100000}-{index}"
        self.netns = f"ipsb-{tag}"
        self.outer_if = f"ipsbo{index}-{os.getpid() % 1000}"[:15]
        self.inner_if = f"ipsbi{index}-{os.getpid() % 1000}"[:15]
        self.outer_ip = f"169.254.{index}.1"
        self.inner_ip = f"169.254.{index}.2"
        self._up = False
        self.netem = False

    @property
    def proxy_delay_ms(self) -> float:
        """The delay the forwarder must add (0 when netem delays the link)."""
        return 0.0 if self.netem else self.rtt_ms

    def start(self) -> LatencyLink:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LatencyLink:
        half = f"{self.rtt_ms / 2:g}ms"
        ns = ("ip", "netns", "exec", self.netns)
        _sh("ip", "netns", "add", self.netns)
        self._up = True
        _sh("ip", "link", "add", self.outer_if, "type", "veth", "peer", "name", self.inner_if)
        _sh("ip", "link", "set", self.inner_if, "netns", self.netns)
        _sh("ip", "addr", "add", f"{self.outer_ip}/30", "dev", self.outer_if)
        _sh("ip", "link", "set", self.outer_if, "up")
        _sh(*ns, "ip", "addr", "add", f"{self.inner_ip}/30", "dev", self.inner_if)
        _sh(*ns, "ip", "link", "set", self.inner_if, "up")
        _sh(*ns, "ip", "link", "set", "lo", "up")
        # A deep queue: netem's default limit (1000 packets) drops bursts of 20 SSH streams.
        try:
            _sh("tc", "qdisc", "add", "dev", self.outer_if, "root", "netem", "delay", half, "limit", "100000")
        except RuntimeError as exc:
            if "unknown" not in str(exc).lower():
                raise
            return self  # no sch_netem in this kernel: the forwarder delays instead
        _sh(
            *ns, "tc", "qdisc", "add", "dev", self.inner_if, "root", "netem", "delay", half, "limit", "100000"
        )
        self.netem = True
        return self

    def stop(self) -> None:
        if not self._up:
            return
        with contextlib.suppress(RuntimeError):
            _sh("ip", "link", "del", self.outer_if)
        with contextlib.suppress(RuntimeError):
            _sh("ip", "netns", "del", self.netns)
        self._up = False

    def __enter__(self) -> LatencyLink:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Forwarder:
    """``169.254.<n>.2:<port>`` in the link's namespace -> ``127.0.0.1:<port>`` outside.

    Each target port is published under the same port number inside the
    namespace, so ``ports`` maps a loopback port to the address to use.
    """

    def __init__(self, link: LatencyLink, targets: list[int]) -> None:
        self.link = link
        self.targets = list(targets)
        self.proc: subprocess.Popen[str] | None = None

    def address(self, port: int) -> tuple[str, int]:
        return self.link.inner_ip, port

    def start(self) -> Forwarder:
        argv = [
            sys.executable,
            "-m",
            "bench.netlab",
            "forward",
            "--netns",
            self.link.netns,
            "--listen",
            self.link.inner_ip,
            "--delay-ms",
            str(self.link.proxy_delay_ms),
            *[str(p) for p in self.targets],
        ]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"forwarder did not start: {line!r}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> Forwarder:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- the forwarder process -------------------------------------------------------------


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


_Queue = asyncio.Queue[tuple[float, bytes] | None]


async def _pump(reader: asyncio.StreamReader, queue: _Queue, delay: float) -> None:
    """Read chunks into ``queue``, each stamped with when it may leave."""
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    finally:
        queue.put_nowait(None)


async def _drain(queue: _Queue, writer: asyncio.StreamWriter) -> None:
    """Write chunks from ``queue`` in order, none before its time."""
    loop = asyncio.get_running_loop()
    try:
        while (item := await queue.get()) is not None:
            due, data = item
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(listen: str, netns: str, ports: list[int], delay_ms: float) -> None:
    import socket

    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    inner = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    socks = []
    _setns(inner)
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((listen, port))
            sock.listen(1024)
            sock.setblocking(False)
            socks.append((sock, port))
    finally:
        _setns(home)

    half = delay_ms / 2000.0

    def handler(target: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            to_server: _Queue = asyncio.Queue()
            pumping = asyncio.ensure_future(_pump(reader, to_server, half))
            if half:
                # The client's connect() returned at once; a real one would have
                # waited 1 RTT, and the server accepted 1.5 RTT after the SYN.
                await asyncio.sleep(3 * half)
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                pumping.cancel()
                writer.close()
                return
            for s in (writer.get_extra_info("socket"), up_w.get_extra_info("socket")):
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            to_client: _Queue = asyncio.Queue()
            await asyncio.gather(
                pumping, _drain(to_server, up_w), _pump(up_r, to_client, half), _drain(to_client, writer)
            )

        return handle

    servers = [await asyncio.start_server(handler(port), sock=sock) for sock, port in socks]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.netlab")
    sub = parser.add_subparsers(dest="cmd", required=True)
    fwd = sub.add_parser("forward")
    fwd.add_argument("--netns", required=True)
    fwd.add_argument("--listen", required=True)
    fwd.add_argument("--delay-ms", type=float, default=0.0)
    fwd.add_argument("ports", nargs="+", type=int)
    args = parser.parse_args(argv)
    if args.cmd == "forward":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args.listen, args.netns, args.ports, args.delay_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
