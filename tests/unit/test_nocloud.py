"""NoCloud seeds (issue 19 part 3): the content cloud-init reads, the hash, and the domain XML around it.

The user-data is validated with cloud-init's own schema (Debian's ``cloud-init``
package, ``cloud-init schema --config-file``); the ISO's label and type are
read back with util-linux ``blkid``, the tool cloud-init's NoCloud datasource
finds seeds with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pycdlib
import pytest
import yaml

from ipsinfra import inventory, passwords
from ipsinfra.errors import InvalidInput
from ipsinfra.hypervisors import domxml, nocloud
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.models import HypervisorKind, Node, VdsSpec, VdsState
from ipsinfra.provision import password_when_running
from tests.conftest import missing

UUID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
REPO = Path(__file__).resolve().parents[2]


def crypt_matches(password: str, hashed: str) -> bool:
    libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    libcrypt.crypt.restype = ctypes.c_char_p
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = libcrypt.crypt(password.encode(), hashed.encode())
    return out is not None and out.decode() == hashed


@pytest.fixture(scope="module")
def password() -> str:
    return passwords.generate()


@pytest.fixture(scope="module")
def hashed(password: str) -> str:
    return nocloud.hash_password(password)


@pytest.fixture
def seed(hashed: str) -> nocloud.Seed:
    return nocloud.Seed(instance_id=f"{UUID}-20261206T000000Z", hostname="VPS3001-0-11", password_hash=hashed)


# --- the hash ------------------------------------------------------------------
def test_hash_is_sha512_crypt_and_verifies(password: str, hashed: str) -> None:
    assert nocloud.SHA512_CRYPT_RE.fullmatch(hashed)
    assert crypt_matches(password, hashed)
    assert not crypt_matches(password + "x", hashed)
    assert password not in hashed
    assert nocloud.hash_password(password) != hashed  # a new salt each time


def test_the_password_never_reaches_a_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], Any]] = []
    real = subprocess.run

    def spy(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append((list(argv), kwargs.get("input")))
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(nocloud.subprocess, "run", spy)
    secret = passwords.generate()
    nocloud.hash_password(secret)
    assert len(seen) == 1
    argv, stdin = seen[0]
    assert argv[1:] == ["passwd", "-6", "-stdin"] and all(secret not in a for a in argv)
    assert stdin == secret + "\n"  # only on the pipe


@pytest.mark.parametrize("bad", ["", "two\nlines", "nul\0byte", "cr\rx"])
def test_passwords_openssl_would_cut_are_refused_unshown(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        nocloud.hash_password(bad)
    assert "value not shown" in str(info.value)
    if bad:
        assert bad not in str(info.value)


def test_a_seed_takes_only_a_hash(password: str) -> None:
    with pytest.raises(InvalidInput, match="not a SHA-512 crypt hash") as info:
        nocloud.Seed(instance_id="i-1", hostname="h", password_hash=password)
    assert password not in str(info.value)
    with pytest.raises(InvalidInput, match="host name"):
        nocloud.Seed(instance_id="i-1", hostname="VPS1(2.3)", password_hash="$6$s$" + "a" * 86)


# --- the files cloud-init reads --------------------------------------------------
def test_user_data_is_the_documented_cloud_config(seed: nocloud.Seed, hashed: str) -> None:
    text = seed.user_data()
    assert text.startswith("#cloud-config\n")
    assert yaml.safe_load(text) == {
        "ssh_pwauth": True,
        "chpasswd": {"expire": False, "users": [{"name": "root", "password": hashed, "type": "hash"}]},
    }
    assert yaml.safe_load(seed.meta_data()) == {
        "instance-id": f"{UUID}-20261206T000000Z",
        "local-hostname": "VPS3001-0-11",
    }


def test_user_data_passes_cloud_inits_own_schema(seed: nocloud.Seed, tmp_path: Path) -> None:
    tool = shutil.which("cloud-init")
    if tool is None:
        missing("cloud-init is not installed (scripts/dev installs Debian's cloud-init)")
    assert tool is not None
    path = tmp_path / "user-data"
    path.write_text(seed.user_data(), encoding="utf-8")
    done = subprocess.run(
        [tool, "schema", "--config-file", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "Valid" in done.stdout, done.stdout + done.stderr
    assert "deprecat" not in (done.stdout + done.stderr).lower()
    # and the schema does catch a mistake (the check is not a no-op)
    path.write_text("#cloud-config\nchpasswd: {users: [{name: root, password: x, type: crypt}]}\n")
    bad = subprocess.run([tool, "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert bad.returncode != 0


def test_iso_is_a_cidata_iso9660_with_joliet_and_rock_ridge(seed: nocloud.Seed, tmp_path: Path) -> None:
    data = seed.iso()
    files = nocloud.read_iso(data)
    assert files == {"<label>": "cidata", "meta-data": seed.meta_data(), "user-data": seed.user_data()}
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    try:
        assert iso.has_joliet() and iso.has_rock_ridge()
        joliet = io.BytesIO()
        iso.get_file_from_iso_fp(joliet, joliet_path="/user-data")
        assert joliet.getvalue().decode() == seed.user_data()
    finally:
        iso.close()
    blkid = shutil.which("blkid")
    if blkid is None:
        missing("blkid (util-linux) is missing")
    assert blkid is not None
    path = tmp_path / "seed.iso"
    path.write_bytes(data)
    out = subprocess.run([blkid, "-o", "export", str(path)], capture_output=True, text=True).stdout
    assert "LABEL=cidata" in out.splitlines() and "TYPE=iso9660" in out.splitlines()


# --- domain XML ------------------------------------------------------------------
def spec() -> VdsSpec:
    return VdsSpec(name="VPS300112345678(255.254)", vcpus=1, memory_mib=128)


def test_channel_gets_the_explicit_short_socket() -> None:
    path = domxml.agent_socket_path(domxml.SYSTEM_SOCKET_DIR, UUID)
    xml = domxml.build_domain(spec(), uuid=UUID, agent_socket=path)
    root = ET.fromstring(xml)
    assert root.findtext("uuid") == UUID
    (channel,) = root.findall("devices/channel")
    source = channel.find("source")
    assert source is not None and source.attrib == {"mode": "bind", "path": path}
    assert channel.find("target").attrib == {"type": "virtio", "name": domxml.GUEST_AGENT}  # type: ignore[union-attr]
    assert "VPS" not in path and len(path) <= domxml.UNIX_PATH_MAX
    assert domxml.agent_socket(xml) == path and domxml.has_guest_agent_channel(xml)
    vds = domxml.parse_domain(xml, node="n", state=VdsState.STOPPED, autostart=False)
    assert vds.backend_id == UUID
    # without one, libvirt picks it (and names it after the domain)
    assert domxml.agent_socket(domxml.build_domain(spec())) is None


def test_a_socket_dir_too_deep_is_refused_before_libvirt_sees_it() -> None:
    deep = "/var/tmp/" + "d" * 60
    with pytest.raises(InvalidInput, match="UNIX socket path holds 107"):
        domxml.agent_socket_path(deep, UUID)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("qemu:///system", domxml.SYSTEM_SOCKET_DIR),
        ("qemu+ssh://root@kvm1.example/system", domxml.SYSTEM_SOCKET_DIR),
        ("qemu+unix:///system?socket=/run/libvirt/virtqemud-sock", domxml.SYSTEM_SOCKET_DIR),
        ("qemu+unix:///session?socket=/var/tmp/lab/kvm1/s/libvirt-sock", "/var/tmp/lab/kvm1/s"),
        ("qemu:///session", "/run/user/1000/libvirt"),
        ("qemu+ssh://kvm1.example/session", None),
        ("test:///default", domxml.SYSTEM_SOCKET_DIR),
    ],
)
def test_agent_socket_dir_by_uri(uri: str, expected: str | None) -> None:
    assert domxml.agent_socket_dir(uri, local_runtime_dir="/run/user/1000/libvirt") == expected


def test_migration_moves_the_socket_to_the_target_dir() -> None:
    xml = domxml.build_domain(spec(), uuid=UUID, agent_socket=f"/a/ga-{UUID}.sock")
    moved = domxml.with_agent_socket(xml, f"/b/ga-{UUID}.sock")
    assert domxml.agent_socket(moved) == f"/b/ga-{UUID}.sock"
    assert domxml.agent_socket(domxml.with_agent_socket(xml, None)) is None


@pytest.mark.parametrize(("machine", "dev", "bus"), [("pc", "hdc", "ide"), ("q35", "sdc", "sata")])
def test_seed_cdrom(machine: str, dev: str, bus: str) -> None:
    xml = domxml.build_domain(spec(), machine=machine)
    seeded = domxml.with_seed(xml, "/pool/x-cidata.iso")
    (disk,) = ET.fromstring(seeded).findall("devices/disk")
    assert disk.attrib == {"type": "file", "device": "cdrom"}
    assert disk.find("readonly") is not None
    assert disk.find("target").attrib == {"dev": dev, "bus": bus}  # type: ignore[union-attr]
    assert disk.find("alias").get("name") == domxml.SEED_ALIAS  # type: ignore[union-attr]
    assert domxml.seed_path(seeded) == "/pool/x-cidata.iso"
    assert domxml.disk_devices(seeded) == []  # a cdrom is not one of the order's disks
    again = domxml.with_seed(seeded, "/pool/y-cidata.iso")  # replaced, not added
    assert len(ET.fromstring(again).findall("devices/disk")) == 1
    assert domxml.seed_path(again) == "/pool/y-cidata.iso"
    ejected = domxml.ejected_seed_device(seeded)
    assert ejected is not None and "source" not in ejected and dev in ejected
    assert domxml.seed_path(domxml.with_seed(seeded, None)) is None
    assert domxml.ejected_seed_device(xml) is None


# --- the node's choice -----------------------------------------------------------------
def test_password_method_is_a_node_field_the_inventory_keeps(tmp_path: Path) -> None:
    fleet = inventory.load(REPO / "inventory" / "example")
    name = next(n for n, node in fleet.nodes.items() if node.kind is HypervisorKind.LIBVIRT)
    assert fleet.nodes[name].password_method == "agent"  # the default
    nodes = {**fleet.nodes, name: fleet.nodes[name].model_copy(update={"password_method": "nocloud"})}
    inventory.dump(fleet.model_copy(update={"nodes": nodes}), tmp_path / "inv")
    again = inventory.load(tmp_path / "inv")  # not refused as a "literal secret"
    assert again.nodes[name].password_method == "nocloud"
    assert again.nodes[name].seed_pool == "default"
    with pytest.raises(ValueError):
        Node.model_validate({**fleet.nodes[name].model_dump(), "password_method": "telepathy"})


def test_provision_sets_a_seed_before_the_first_start(tmp_path: Path) -> None:
    xml = tmp_path / "node.xml"
    xml.write_text("<node><cpu><active>2</active></cpu><memory>1048576</memory></node>")
    base: dict[str, Any] = {
        "name": "kvm9",
        "site": "lab",
        "main_ip": "10.0.0.9",
        "kind": "libvirt",
        "uri": f"test://{xml}",
        "cpus": 2,
    }
    agent = LibvirtDriver(Node.model_validate(base))
    seeded = LibvirtDriver(Node.model_validate({**base, "password_method": "nocloud"}))
    try:
        assert password_when_running(agent) and not password_when_running(seeded)
        assert seeded.ex_password_at_boot and not agent.ex_password_at_boot
    finally:
        agent.close()
        seeded.close()


def test_the_nocloud_lab_image_has_no_agent_and_reads_seeds(tmp_path: Path) -> None:
    """The lab guest's nocloud variant (built from the host's Debian packages, no root needed)."""
    from ipsinfra.lab import guest

    try:
        image = guest.ensure_guest_image(tmp_path / "cache", variant="nocloud")
    except guest.GuestImageUnavailable as exc:
        missing(f"guest image packages missing: {exc}")
        raise
    entries = {e.name: e for e in guest.read_cpio(image.initrd.read_bytes())}
    assert "usr/sbin/qemu-ga" not in entries and "usr/sbin/ipsinfra-agent" not in entries
    for name in ("usr/sbin/ipsinfra-nocloud", "usr/sbin/blkid", "usr/sbin/chpasswd"):
        assert name in entries, name
    script = entries["usr/sbin/ipsinfra-nocloud"].data.decode()
    assert "chpasswd -e" in script and "cidata|CIDATA" in script and "iso9660|vfat" in script
    assert b"ipsinfra-nocloud" in entries["etc/inittab"].data
    modules = entries["etc/ipsinfra/modules"].data.decode().split()
    for wanted in ("ata_piix.ko", "sr_mod.ko", "isofs.ko", "libata.ko", "cdrom.ko"):
        assert wanted in modules, modules
    agent = guest.ensure_guest_image(tmp_path / "cache")
    assert agent.initrd != image.initrd  # two variants, two cache entries
