"""lab/guest: the newc cpio writer, module ordering, kernel choice and (where the packages are) the build."""

from __future__ import annotations

import lzma
import stat
import subprocess
from pathlib import Path

import pytest

from ipsinfra.lab import guest
from ipsinfra.lab.guest import CpioEntry, read_cpio, write_cpio
from tests.conftest import missing, require_binary


def test_cpio_round_trip(tmp_path: Path) -> None:
    entries = [
        CpioEntry("etc", stat.S_IFDIR | 0o755),
        CpioEntry("etc/shadow", stat.S_IFREG | 0o640, b"root:*:1:0:99999:7:::\n"),
        CpioEntry("bin", stat.S_IFLNK | 0o777, b"usr/bin"),
        CpioEntry("dev", stat.S_IFDIR | 0o755),
        CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        CpioEntry("init", stat.S_IFREG | 0o755, b"#!/bin/sh\n"),
        CpioEntry("odd", stat.S_IFREG | 0o644, b"x" * 4097),  # padding of names and bodies
        CpioEntry("empty", stat.S_IFREG | 0o644),
    ]
    out = tmp_path / "a.cpio"
    write_cpio(entries, out)
    data = out.read_bytes()
    assert data.startswith(b"070701") and len(data) % 4 == 0
    assert list(read_cpio(data)) == entries


def test_cpio_extracts_with_gnu_cpio(tmp_path: Path) -> None:
    require_binary("cpio", "GNU cpio: apt-get install cpio")
    archive = tmp_path / "a.cpio"
    write_cpio(
        [
            CpioEntry("usr", stat.S_IFDIR | 0o755),
            CpioEntry("usr/bin", stat.S_IFDIR | 0o755),
            CpioEntry("usr/bin/hello", stat.S_IFREG | 0o755, b"hi\n"),
            CpioEntry("bin", stat.S_IFLNK | 0o777, b"usr/bin"),
        ],
        archive,
    )
    root = tmp_path / "root"
    root.mkdir()
    with archive.open("rb") as f:
        subprocess.run(["cpio", "-id", "--quiet"], stdin=f, cwd=root, check=True)
    assert (root / "bin" / "hello").read_text() == "hi\n"
    assert (root / "bin").is_symlink()
    assert (root / "usr/bin/hello").stat().st_mode & 0o777 == 0o755


def test_read_cpio_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="magic"):
        list(read_cpio(b"not a cpio archive at all" * 10))


def fake_kernel_tree(tmp_path: Path, versions: list[str]) -> tuple[Path, Path]:
    boot, mods = tmp_path / "boot", tmp_path / "modules"
    boot.mkdir()
    for v in versions:
        (boot / f"vmlinuz-{v}").write_bytes(b"kernel")
        (mods / v).mkdir(parents=True)
        (mods / v / "modules.dep").write_text("")
    return boot, mods


def test_find_kernel_prefers_newest_cloud(tmp_path: Path) -> None:
    boot, mods = fake_kernel_tree(
        tmp_path, ["6.1.0-9-amd64", "6.1.0-10-cloud-amd64", "6.1.0-9-cloud-amd64", "6.1.0-12-amd64"]
    )
    (boot / "vmlinuz-6.1.0-99-cloud-amd64").write_bytes(b"no modules for this one")
    assert guest.find_kernel(boot, mods) == (boot / "vmlinuz-6.1.0-10-cloud-amd64", "6.1.0-10-cloud-amd64")


def test_find_kernel_names_the_package(tmp_path: Path) -> None:
    boot, mods = fake_kernel_tree(tmp_path, [])
    with pytest.raises(guest.GuestImageUnavailable, match="linux-image-cloud-amd64"):
        guest.find_kernel(boot, mods)


def test_module_order_dependencies_first_and_xz(tmp_path: Path) -> None:
    base = tmp_path / "6.1"
    (base / "kernel").mkdir(parents=True)
    (base / "modules.dep").write_text(
        "kernel/virtio_pci.ko.xz: kernel/virtio_pci-modern_dev.ko kernel/virtio.ko kernel/virtio_ring.ko\n"
        "kernel/virtio_console.ko: kernel/virtio.ko kernel/virtio_ring.ko\n"
        "kernel/virtio.ko: kernel/virtio_ring.ko\n"
        "kernel/virtio_ring.ko:\n"
        "kernel/virtio_pci-modern_dev.ko:\n"
    )
    order = guest._module_order(tmp_path, "6.1", ["virtio_pci", "virtio_console", "virtio_builtin"])
    names = [p.name for p in order]
    assert names == [
        "virtio_pci-modern_dev.ko",
        "virtio_ring.ko",
        "virtio.ko",
        "virtio_pci.ko.xz",
        "virtio_console.ko",
    ]
    (base / "kernel/virtio_pci.ko.xz").write_bytes(lzma.compress(b"\x7fELF module"))
    assert guest._module_bytes(base / "kernel/virtio_pci.ko.xz") == b"\x7fELF module"


def test_built_image_has_what_the_agent_needs(tmp_path: Path) -> None:
    """Builds the real image where the Debian packages are installed (no root needed)."""
    try:
        image = guest.ensure_guest_image(tmp_path / "cache")
    except guest.GuestImageUnavailable as exc:
        missing(f"guest image packages missing: {exc}")
    entries = {e.name: e for e in read_cpio(image.initrd.read_bytes())}
    init = entries["init"]
    assert stat.S_IMODE(init.mode) == 0o755 and init.data.startswith(b"#!/bin/sh")
    for name in ("usr/bin/busybox", "usr/sbin/qemu-ga", "usr/sbin/chpasswd", "etc/passwd", "etc/group"):
        assert stat.S_ISREG(entries[name].mode), name
    assert any(n.endswith("/libc.so.6") for n in entries)
    assert any(n.endswith("/security/pam_unix.so") for n in entries)
    assert any(n.startswith("usr/lib64/ld-linux") for n in entries)
    assert entries["bin"].data == b"usr/bin" and stat.S_ISLNK(entries["bin"].mode)
    assert entries["usr/bin/sh"].data == b"busybox"
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)
    assert b"root:*:" in entries["etc/shadow"].data
    modules = entries["etc/ipsinfra/modules"].data.decode().split()
    for m in modules:
        assert entries[f"usr/lib/modules/ipsinfra/{m}"].data.startswith(b"\x7fELF")  # decompressed
    assert not any(stat.S_IMODE(e.mode) & (stat.S_ISUID | stat.S_ISGID) for e in entries.values())
    # cached: the same paths, no rebuild
    stamp = (image.initrd.parent / "stamp").stat().st_mtime_ns
    assert guest.ensure_guest_image(tmp_path / "cache") == image
    assert (image.initrd.parent / "stamp").stat().st_mtime_ns == stamp
    assert image.direct_boot().kernel == image.kernel
