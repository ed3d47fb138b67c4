"""tcp_probe_many: every target probed at once over loopback, one answer each."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from ipsinfra.audit.run import tcp_probe, tcp_probe_many
from tests.conftest import missing


@pytest.fixture
def listener() -> Iterator[str]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    yield f"127.0.0.1:{srv.getsockname()[1]}"
    srv.close()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_open_refused_and_bad_targets_each_get_their_answer(listener: str) -> None:
    closed = _closed_port()
    got = tcp_probe_many([listener, closed, "127.0.0.1:notaport", listener], 2.0)
    assert set(got) == {listener, closed, "127.0.0.1:notaport"}
    assert got[listener] is None
    assert got[closed] == f"{closed}: Connection refused"
    assert got["127.0.0.1:notaport"] is not None and "notaport" in got["127.0.0.1:notaport"]


def test_ipv6_literal_in_brackets() -> None:
    try:
        srv = socket.socket(socket.AF_INET6)
        srv.bind(("::1", 0))
    except OSError as exc:
        missing(f"no IPv6 loopback here: {exc}")
    srv.listen(4)
    try:
        target = f"[::1]:{srv.getsockname()[1]}"
        assert tcp_probe_many([target], 2.0) == {target: None}
    finally:
        srv.close()


def test_many_probes_take_one_wait_not_one_each(listener: str) -> None:
    closed = _closed_port()
    targets = [listener] * 5 + [closed]
    assert tcp_probe(listener, 1.0) is None
    assert tcp_probe(closed, 1.0) is not None
    got = tcp_probe_many(targets, 1.0)
    assert got == {listener: None, closed: f"{closed}: Connection refused"}


def test_a_target_that_never_answers_times_out_and_the_others_still_answer(listener: str) -> None:
    # A listener whose accept queue is full drops further SYNs: the connect hangs.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the queue (backlog 0 still admits one or two)
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        hung = f"127.0.0.1:{port}"
        started = time.monotonic()
        got = tcp_probe_many([hung, listener], 0.5)
        took = time.monotonic() - started
        assert got[listener] is None
        assert got[hung] == f"{hung}: no answer within 0.5 s"
        assert 0.4 <= took < 3.0
    finally:
        for s in fillers:
            s.close()
        full.close()
