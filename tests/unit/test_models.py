"""Models: build() names field and value, MAC and cpuset parsing, secret references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipsinfra.errors import InvalidInput
from ipsinfra.models import (
    DedicatedServer,
    Nic,
    Node,
    Order,
    SecretRef,
    SwitchPort,
    Vds,
    VdsState,
    build,
    normalize_mac,
    parse_cpuset,
)

NODE: dict[str, Any] = {
    "name": "kvm1",
    "site": "msk1",
    "main_ip": "203.0.113.10",
    "kind": "libvirt",
    "uri": "qemu+ssh://root@kvm1.msk1.example/system",
    "cpus": 8,
}
VDS: dict[str, Any] = {"name": "VPS1001(113.10)", "node": "kvm1", "vcpus": 1, "memory_mib": 1024}


def test_build_good_node() -> None:
    node = build(Node, NODE)
    assert str(node.main_ip) == "203.0.113.10"
    assert node.vnc_address == node.main_ip
    with pytest.raises(ValueError):
        node.cpus = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("model", "base", "field", "value"),
    [
        (Node, NODE, "main_ip", "300.1.1.1"),
        (Node, NODE, "cpus", 0),
        (Node, NODE, "name", "kvm 1"),
        (Vds, VDS, "cpuset", "5-1"),
        (Vds, VDS, "cpuset", "1-"),
        (Vds, VDS, "vcpus", 0),
        (Nic, {}, "mac", "52:54:zz:00:00:01"),
        (Nic, {}, "mac", "garbage"),
        (
            Order,
            {"client": "c1", "node": "kvm1", "vcpus": 1, "memory_mib": 512, "disk_gib": 10, "os": "x"},
            "number",
            "12a4",
        ),
    ],
)
def test_build_names_field_and_value(model: type[Any], base: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        build(model, {**base, field: value})
    message = str(info.value)
    assert message.startswith(f"{model.__name__}.{field}"), message
    assert f"value {value!r}" in message
    assert "\n" not in message  # one line, not pydantic's report


def test_build_where_prefix_and_one_line_per_field() -> None:
    with pytest.raises(InvalidInput) as info:
        build(Node, {**NODE, "main_ip": "300.1.1.1", "cpus": 0}, where="nodes.kvm1")
    message = str(info.value)
    assert message.count("nodes.kvm1.main_ip") == 1  # IPv4 and IPv6 branches: one line
    assert "nodes.kvm1.cpus: value 0" in message


def test_build_never_echoes_a_literal_secret() -> None:
    with pytest.raises(InvalidInput) as info:
        build(Node, {**NODE, "secret": "hunter2-Zq8"})
    assert "Node.secret" in str(info.value)
    assert "hunter2-Zq8" not in str(info.value)


def test_build_refuses_unknown_fields() -> None:
    with pytest.raises(InvalidInput, match=r"Node\.main_IP"):
        build(Node, {**NODE, "main_IP": "203.0.113.11"})


@pytest.mark.parametrize(
    "spelling",
    [
        "52:54:00:AB:CD:EF",
        "52-54-00-ab-cd-ef",
        "5254.00ab.cdef",
        "525400ABCDEF",
        " 52:54:00:ab:cd:ef ",
        "52 54 00 ab cd ef",
    ],
)
def test_normalize_mac_variants(spelling: str) -> None:
    assert normalize_mac(spelling) == "52:54:00:ab:cd:ef"


@pytest.mark.parametrize(
    "bad", ["", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:01", "52:54:zz:ab:cd:ef", "garbage"]
)
def test_normalize_mac_refuses(bad: str) -> None:
    with pytest.raises(ValueError, match="not a MAC address"):
        normalize_mac(bad)


def test_macs_are_normalized_in_models() -> None:
    assert Nic(mac="5254.00AB.CDEF").mac == "52:54:00:ab:cd:ef"
    port = SwitchPort(switch="sw1", port="Gi0/1", macs=["52-54-00-AB-CD-EF"])
    assert port.macs == ["52:54:00:ab:cd:ef"]
    ded = DedicatedServer(name="ded1", site="msk1", macs=["525400abcdef"])
    assert ded.macs == ["52:54:00:ab:cd:ef"]


@pytest.mark.parametrize(
    ("cpuset", "cpus"),
    [
        ("0", {0}),
        ("1-3", {1, 2, 3}),
        ("1-3,8", {1, 2, 3, 8}),
        ("0,2,4-5", {0, 2, 4, 5}),
        ("1-40", set(range(1, 41))),
    ],
)
def test_parse_cpuset(cpuset: str, cpus: set[int]) -> None:
    assert parse_cpuset(cpuset) == cpus


@pytest.mark.parametrize("bad", ["", "5-1", "1-", "-1", "a", "1,,2", "1 - 3", "^2"])
def test_parse_cpuset_refuses(bad: str) -> None:
    with pytest.raises(ValueError, match="not a cpuset"):
        parse_cpuset(bad)


def test_parse_cpuset_bounds_hostile_values() -> None:
    # A hypervisor's answer is input too: "0-99999999" used to build a set of 10^8 ints
    # (48 s and gigabytes); the highest CPU Linux can have is 8191.
    assert parse_cpuset("0-8191") == set(range(8192))
    with pytest.raises(ValueError, match="CPU 8192 > 8191"):
        parse_cpuset("0-8192")
    with pytest.raises(ValueError, match="CPU 99999999 > 8191"):
        parse_cpuset("0-99999999")
    huge = ",".join(["1"] * 3000)  # 5999 characters
    with pytest.raises(ValueError, match="not a cpuset") as err:
        parse_cpuset(huge)
    assert len(str(err.value)) < 100  # the message quotes only the start


def test_vds_should_run_and_state() -> None:
    vds = build(Vds, {**VDS, "autostart": True})
    assert vds.should_run
    vds.blocked = True  # a record: mutable, validated on assignment
    assert not vds.should_run
    with pytest.raises(ValueError):
        vds.cpuset = "5-1"
    assert VdsState.MIGRATING.transitional and not VdsState.RUNNING.transitional


# --- secret references ---------------------------------------------------------
SECRET = "Zq8-t0ken-xK41"


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPSINFRA_TEST_TOKEN", SECRET)
    assert SecretRef(env="IPSINFRA_TEST_TOKEN").resolve() == SECRET


def test_secret_from_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"{SECRET}\nsecond line ignored\n")
    assert SecretRef(file=str(path)).resolve() == SECRET


def test_secret_from_file_with_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "token").write_text(SECRET)
    assert SecretRef(file="~/token").resolve() == SECRET


def test_secret_env_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IPSINFRA_TEST_TOKEN", raising=False)
    with pytest.raises(InvalidInput, match="'IPSINFRA_TEST_TOKEN' is not set"):
        SecretRef(env="IPSINFRA_TEST_TOKEN").resolve()


@pytest.mark.parametrize("content", ["", "\n\n", "   \n"])
def test_secret_file_empty(tmp_path: Path, content: str) -> None:
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(InvalidInput, match="is empty"):
        SecretRef(file=str(path)).resolve()


def test_secret_file_missing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot be read") as info:
        SecretRef(file=str(tmp_path / "nope")).resolve()
    assert "nope" in str(info.value)


def test_secret_file_unreadable_does_not_leak(tmp_path: Path) -> None:
    """A directory in place of the file: the error names the path, not any content."""
    path = tmp_path / "dir"
    path.mkdir()
    (path / "inner").write_text(SECRET)
    with pytest.raises(InvalidInput) as info:
        SecretRef(file=str(path)).resolve()
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "data",
    [{}, {"env": "A", "file": "/x"}, {"env": "not a name"}, {"env": SECRET}, {"password": SECRET}],
    ids=["neither", "both", "bad-env-name", "value-as-env", "unknown-key"],
)
def test_secret_ref_shape_errors(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as info:
        build(SecretRef, data)
    assert str(info.value).startswith("SecretRef")
    assert SECRET not in str(info.value)  # a token pasted where its NAME belongs stays hidden


def test_secret_ref_is_frozen_and_repr_has_no_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPSINFRA_TEST_TOKEN", SECRET)
    ref = SecretRef(env="IPSINFRA_TEST_TOKEN")
    ref.resolve()
    assert SECRET not in repr(ref)
    with pytest.raises(ValueError):
        ref.env = "OTHER"  # type: ignore[misc]
