"""list_vds makes a bounded number of libvirt calls whatever the domain count.

A thin counting proxy wraps the REAL virConnect of the test driver (no stub):
it counts every method call on the connection and on every virDomain the
connection hands out.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from ipsinfra.hypervisors.libvirt import LibvirtDriver
from tests.contract.base import spec_for
from tests.contract.test_libvirt_testdriver import test_node

# virDomainGetName is answered from the client-side object: no RPC.
LOCAL_DOMAIN_CALLS = {"name"}


class Counting:
    """Delegate attribute access to ``target``; count calls under ``prefix.method``."""

    def __init__(self, target: Any, counts: collections.Counter[str], prefix: str) -> None:
        self._target, self._counts, self._prefix = target, counts, prefix

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._counts[f"{self._prefix}.{attr}"] += 1
            return self._wrap(value(*args, **kwargs))

        return call

    def _wrap(self, result: Any) -> Any:
        if type(result).__name__ == "virDomain":
            return Counting(result, self._counts, "dom")
        if isinstance(result, list):
            return [self._wrap(r) for r in result]
        if isinstance(result, tuple):
            return tuple(self._wrap(r) for r in result)
        return result


def calls_for(tmp_path: Path, n: int) -> collections.Counter[str]:
    (tmp_path / f"n{n}").mkdir()
    node = test_node(tmp_path / f"n{n}")
    counts: collections.Counter[str] = collections.Counter()
    plain = LibvirtDriver(node)
    for i in range(n):
        plain.define(spec_for(plain, 2000 + i, autostart=i % 2 == 0))
    for i in range(0, n, 3):
        plain.start(spec_for(plain, 2000 + i).name)
    counted = LibvirtDriver(node, conn=Counting(plain.ex_conn, counts, "conn"))
    listed = counted.list_vds()
    assert len(listed) == n
    assert sum(v.autostart for v in listed) == (n + 1) // 2
    assert all(v.macs and v.vcpus == 2 and v.cpuset == "1-3" for v in listed)
    return counts


@pytest.mark.parametrize("n", [5, 50])
def test_list_vds_call_count(tmp_path: Path, n: int) -> None:
    counts = calls_for(tmp_path, n)
    conn_calls = {k: v for k, v in counts.items() if k.startswith("conn.")}
    dom_rpcs = {k: v for k, v in counts.items() if k.startswith("dom.") and k[4:] not in LOCAL_DOMAIN_CALLS}
    # Connection level: constant, whatever n.
    assert conn_calls == {"conn.getAllDomainStats": 1, "conn.listAllDomains": 1}
    # Domain level: exactly one XMLDesc per domain (libvirt has no bulk XML call).
    assert dom_rpcs == {"dom.XMLDesc": n}


def test_connection_calls_do_not_grow(tmp_path: Path) -> None:
    small, big = calls_for(tmp_path, 5), calls_for(tmp_path, 50)

    def conn(counts: collections.Counter[str]) -> int:
        return sum(v for k, v in counts.items() if k.startswith("conn."))

    assert conn(small) == conn(big) == 2
