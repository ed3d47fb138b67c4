"""A tiny authoritative DNS server on loopback, for tests and the lab.

UDP only, one background thread, answers from a dict ``{name: [A/AAAA/TXT
values]}``. Names outside the dict get NXDOMAIN; ``silent=True`` makes a server
that reads queries and never answers (to test timeouts).

Example::

    with DnsTestServer({"2.0.0.127.zen.test": ["127.0.0.2"]}) as srv:
        dnsbl.check("127.0.0.2", resolver=srv.host, port=srv.port, zone="zen.test")
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DnsTestServer"]


class DnsTestServer:
    """An authoritative UDP DNS server on ``host`` (127.0.0.1) and a free port."""

    def __init__(
        self,
        records: Mapping[str, Sequence[str]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        silent: bool = False,
        ttl: int = 60,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"host: value {host!r}: the test DNS server listens on loopback only")
        self.records = {dns.name.from_text(k).canonicalize(): list(v) for k, v in records.items()}
        self.silent = silent
        self.ttl = ttl
        self.queries: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.settimeout(0.2)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-test-{self.port}", daemon=True)

    def start(self) -> DnsTestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> DnsTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(wire)
            except Exception:  # garbage on the socket: ignore, like a real server would
                continue
            if query.question:
                self.queries.append(query.question[0].name.to_text())
            if self.silent:
                continue
            self._sock.sendto(self.answer(query).to_wire(), peer)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        values = self.records.get(question.name.canonicalize())
        if values is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        wanted = [v for v in values if _rdtype_of(v) == question.rdtype]
        if wanted:
            rrset = dns.rrset.from_text_list(
                question.name, self.ttl, dns.rdataclass.IN, question.rdtype, wanted
            )
            response.answer.append(rrset)
        return response


def _rdtype_of(value: str) -> dns.rdatatype.RdataType:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return dns.rdatatype.TXT
    return dns.rdatatype.A if addr.version == 4 else dns.rdatatype.AAAA
