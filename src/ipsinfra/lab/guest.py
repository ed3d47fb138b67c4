"""A real tiny guest for the lab's libvirt daemons: a Debian kernel + an initramfs running ``qemu-ga``.

The lab's qemu guests have no disk. :func:`ensure_guest_image` gives them an
operating system small enough to boot from RAM under TCG in a few seconds:

* the host's Debian kernel (``linux-image-cloud-amd64``; ``linux-image-amd64``
  works too) booted directly (``<os><kernel>/<initrd>``),
* an initramfs (an uncompressed newc cpio written here in pure Python) with
  busybox-static, Debian's ``qemu-ga`` and Debian's shadow ``chpasswd`` (with
  PAM's ``pam_unix``: hashes are yescrypt, as on a real Debian 12 guest), every
  shared library they load (``ldd``), the virtio modules the cloud kernel
  builds as modules (``virtio_pci``, ``virtio_console``, ``virtio_net``), and
  ``/etc/passwd``, ``/etc/shadow`` (root has no password: ``*``), ``/etc/group``,
* ``/init`` (a shell script) mounts proc/sys/devtmpfs, loads the modules and
  hands over to busybox ``init``, which respawns the agent on the virtio
  serial port named ``org.qemu.guest_agent.0`` (found in
  ``/sys/class/virtio-ports/*/name``).

qemu-ga's ``guest-set-user-password`` runs ``chpasswd`` (``-e`` for a crypted
password) with ``user:password`` on its stdin: libvirt's ``setUserPassword``
therefore really changes root's hash in the guest's ``/etc/shadow``, which a
test reads back with ``guest-file-open``/``guest-file-read``.

The image is cached under :data:`DEFAULT_CACHE_DIR` in a directory named by a
hash of everything that goes in (this module's recipe version, every source
file's path, size and mtime, the kernel): a package upgrade builds a new one,
a second call costs a few ``ldd`` runs. The cache is world-readable: qemu runs
as ``nobody``.

Memory: the guest needs :data:`MIN_MEMORY_MIB` MiB (kernel + the unpacked
initramfs); the caller's ``VdsSpec.memory_mib`` must be at least that.

Needs Debian's ``linux-image-cloud-amd64``, ``busybox-static``,
``qemu-guest-agent`` and ``passwd`` (chpasswd; always installed).

The ``nocloud`` variant (``ensure_guest_image(variant="nocloud")``) has NO
guest agent: it stands for a cloud image with cloud-init. Its
``/usr/sbin/ipsinfra-nocloud`` implements a SUBSET of cloud-init honestly:
it finds the seed as the NoCloud datasource does (a block device with an
``iso9660``/``vfat`` filesystem labelled ``cidata``/``CIDATA``, via
``blkid``), mounts it read-only, reads ``meta-data`` (``instance-id``,
``local-hostname``: the host name is set) and ``user-data`` (must start with
``#cloud-config``; only ``chpasswd.users`` entries with ``type: hash``, in
the block style :mod:`ipsinfra.hypervisors.nocloud` writes) and applies each
hash as cc_set_passwords does (``chpasswd -e``). Nothing else of cloud-config
is read (``ssh_pwauth``: the guest has no sshd; ``expire: false`` is the
default here). It then prints the user's resulting ``/etc/shadow`` line on the
serial console (``ipsinfra-nocloud: shadow root:$6$...``) so a test can check
the hash without any agent. Extra modules: ``ata_piix``, ``sr_mod``,
``isofs`` (the seed is an IDE cdrom on the ``pc`` machine).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import lzma
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ipsinfra.errors import IpsinfraError
from ipsinfra.hypervisors.domxml import DirectBoot

#: Bump when the recipe changes (it is part of the cache key).
IMAGE_VERSION = "1"
DEFAULT_CACHE_DIR = Path("/var/tmp/ipsinfra-guest")
DEFAULT_CMDLINE = "console=ttyS0 quiet panic=-1"
#: Guest memory (MiB) to give the image: 96 boots (measured, TCG), 64 does not (the
#: kernel + uncompressed initramfs do not fit); 128 leaves room for guest-exec.
MIN_MEMORY_MIB = 128
GUEST_AGENT_PORT = "org.qemu.guest_agent.0"

BUSYBOX = Path("/bin/busybox")
QEMU_GA = Path("/usr/sbin/qemu-ga")
CHPASSWD = Path("/usr/sbin/chpasswd")
BLKID = Path("/usr/sbin/blkid")
PAM_DIRS = (Path("/usr/lib/x86_64-linux-gnu/security"), Path("/lib/x86_64-linux-gnu/security"))
PAM_MODULES = ("pam_unix.so", "pam_deny.so", "pam_permit.so")
KERNEL_MODULES = ("virtio_pci", "virtio_console", "virtio_net")
#: What the nocloud variant adds: the IDE cdrom the seed sits on, and its filesystem.
NOCLOUD_MODULES = ("ata_piix", "sr_mod", "isofs")
Variant = Literal["agent", "nocloud"]
#: Debian packages the image is made of (scripts/dev setup installs them).
APT_PACKAGES = ("linux-image-cloud-amd64", "busybox-static", "qemu-guest-agent", "passwd", "libpam-modules")


class GuestImageUnavailable(IpsinfraError, RuntimeError):
    """The host lacks what the guest image is built from; the message names the package."""


@dataclass(frozen=True)
class GuestImage:
    """A bootable guest: give ``kernel``, ``initrd`` and ``cmdline`` to ``<os>`` (direct kernel boot)."""

    kernel: Path
    initrd: Path
    cmdline: str = DEFAULT_CMDLINE
    kernel_version: str = ""

    def direct_boot(self, *, serial_log: Path | None = None) -> DirectBoot:
        """For ``LibvirtDriver(ex_boot=...)``; ``serial_log``: the guest console's file (qemu writes it)."""
        return DirectBoot(kernel=self.kernel, initrd=self.initrd, cmdline=self.cmdline, serial_log=serial_log)


# --- newc cpio -------------------------------------------------------------
_NEWC_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class CpioEntry:
    """One archive member: a regular file, directory, symlink (data = target) or device node."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)
    uid: int = 0
    gid: int = 0
    mtime: int = 0


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def cpio_header(ino: int, entry: CpioEntry, name: bytes, size: int) -> bytes:
    fields = (
        ino,
        entry.mode,
        entry.uid,
        entry.gid,
        2 if stat.S_ISDIR(entry.mode) else 1,
        entry.mtime,
        size,
        0,
        0,
        entry.rdev[0],
        entry.rdev[1],
        len(name) + 1,
        0,
    )
    return _NEWC_MAGIC + b"".join(b"%08X" % f for f in fields)


def write_cpio(entries: Iterable[CpioEntry], out: Path) -> None:
    """Write a newc ("070701") archive, as the kernel's initramfs unpacker reads it.

    Names are relative (no leading ``/``); parents must come before children.
    """
    with out.open("wb") as f:
        for ino, entry in enumerate([*entries, CpioEntry(_TRAILER, 0)], start=1):
            name = entry.name.lstrip("/").encode()
            header = cpio_header(ino if entry.name != _TRAILER else 0, entry, name, len(entry.data))
            f.write(header + name + b"\0" + _pad4(len(header) + len(name) + 1))
            f.write(entry.data + _pad4(len(entry.data)))


def read_cpio(data: bytes) -> Iterator[CpioEntry]:
    """Parse a newc archive (the inverse of :func:`write_cpio`; for tests and inspection)."""
    pos = 0
    while True:
        if data[pos : pos + 6] != _NEWC_MAGIC:
            raise ValueError(f"cpio: bad magic at offset {pos}")
        f = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        _ino, mode, uid, gid, _nlink, mtime, size, _maj, _min, rmaj, rmin, namesize, _check = f
        pos += 110
        name = data[pos : pos + namesize - 1].decode()
        pos += namesize
        pos += -pos % 4
        body = data[pos : pos + size]
        pos += size
        pos += -pos % 4
        if name == _TRAILER:
            return
        yield CpioEntry(name, mode, body, (rmaj, rmin), uid, gid, mtime)


# --- what goes in ------------------------------------------------------------
_INIT = """#!/bin/sh
# ipsinfra lab guest: set up, then busybox init respawns the guest agent.
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
chmod 1777 /tmp
for m in $(cat /etc/ipsinfra/modules); do
    insmod "/lib/modules/ipsinfra/$m" || echo "ipsinfra-guest: insmod $m failed" >/dev/console
done
hostname ipsinfra-guest
ip link set lo up
if ip link show eth0 >/dev/null 2>&1; then
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0
    ip route add default via 10.0.2.2
fi
echo "ipsinfra-guest: up in $(cut -d' ' -f1 /proc/uptime) s" >/dev/console
exec /usr/bin/busybox init
"""

_AGENT = f"""#!/bin/sh
# Find the virtio serial port named {GUEST_AGENT_PORT} and run qemu-ga on it.
export PATH=/usr/sbin:/usr/bin
port=
i=0
while [ -z "$port" ] && [ $i -lt 300 ]; do
    for p in /sys/class/virtio-ports/*; do
        dev="/dev/${{p##*/}}"
        [ "$(cat "$p/name" 2>/dev/null)" = "{GUEST_AGENT_PORT}" ] && [ -e "$dev" ] && port="$dev"
    done
    [ -n "$port" ] || {{ i=$((i + 1)); usleep 100000; }}
done
if [ -z "$port" ]; then
    echo "ipsinfra-guest: no {GUEST_AGENT_PORT} port" >/dev/console
    exec sleep 3600
fi
echo "ipsinfra-guest: qemu-ga on $port at $(cut -d' ' -f1 /proc/uptime) s" >/dev/console
exec /usr/sbin/qemu-ga -m virtio-serial -p "$port" -t /run/qemu-ga -f /run/qemu-ga.pid
"""

_INITTAB = """::sysinit:/bin/mkdir -p /run/qemu-ga
::respawn:/usr/sbin/ipsinfra-agent
::ctrlaltdel:/usr/bin/poweroff -f
::shutdown:/bin/sync
"""

_NOCLOUD_INITTAB = """::sysinit:/usr/sbin/ipsinfra-nocloud
::ctrlaltdel:/usr/bin/poweroff -f
::shutdown:/bin/sync
"""

# A subset of cloud-init (see the module docstring); reads exactly the keys
# ipsinfra.hypervisors.nocloud writes, in the layout it writes them.
_NOCLOUD = r"""#!/bin/sh
export PATH=/usr/sbin:/usr/bin
say() { echo "ipsinfra-nocloud: $*" >/dev/console; }
# cloud-init: util.find_devs_with("TYPE=iso9660"|"TYPE=vfat") & ("LABEL=cidata"|"LABEL=CIDATA"), blkid.
find_seed() {
    for d in /dev/sr* /dev/hd* /dev/sd* /dev/vd*; do
        [ -b "$d" ] || continue
        blkid -c /dev/null -o export "$d" 2>/dev/null | awk '/^LABEL=(cidata|CIDATA)$/ { l = 1 }
            /^TYPE=(iso9660|vfat)$/ { t = 1 } END { exit !(l && t) }' && { echo "$d"; return 0; }
    done
    return 1
}
dev=
i=0
while [ -z "$dev" ] && [ $i -lt 50 ]; do
    dev=$(find_seed) || { i=$((i + 1)); usleep 100000; }
done
if [ -z "$dev" ]; then
    devs=$(cd /dev && echo sr* hd* sd* vd*)
    say "no cidata volume (block devices: $devs; blkid: $(blkid -c /dev/null 2>&1 | tr '\n' ' '))"
    exit 0
fi
mkdir -p /run/cidata
fstype=$(blkid -c /dev/null -o value -s TYPE "$dev")
if ! mount -t "$fstype" -o ro "$dev" /run/cidata; then
    say "cannot mount $dev ($fstype)"
    exit 0
fi
iid=$(sed -n 's/^instance-id: *//p' /run/cidata/meta-data | tr -d "\"'")
host=$(sed -n 's/^local-hostname: *//p' /run/cidata/meta-data | tr -d "\"'")
[ -n "$host" ] && hostname "$host"
say "seed $dev ($fstype) instance-id $iid hostname $host"
if [ "$(head -n 1 /run/cidata/user-data)" != "#cloud-config" ]; then
    say "user-data is not #cloud-config"
    umount /run/cidata
    exit 0
fi
awk '
function field(l,   k, v) {
    k = l; sub(/:.*/, "", k)
    v = l; sub(/^[^:]*: */, "", v); gsub(/^"|"$/, "", v)
    f[k] = v
}
function flush() {
    if (f["name"] != "" && f["type"] == "hash" && f["password"] != "") print f["name"] ":" f["password"]
    split("", f)
}
/^[^ #]/ { flush(); top = $0; sub(/:.*/, "", top); inusers = 0; next }
top == "chpasswd" && /^  users:/ { inusers = 1; next }
top == "chpasswd" && /^  [^ -]/ { flush(); inusers = 0; next }
inusers && /^  - / { flush(); field(substr($0, 5)); next }
inusers && /^    [^ ]/ { field(substr($0, 5)); next }
END { flush() }
' /run/cidata/user-data > /run/cidata-users
umount /run/cidata
while IFS=: read -r user hash; do
    if printf '%s:%s\n' "$user" "$hash" | chpasswd -e; then
        say "shadow $(grep "^$user:" /etc/shadow)"
    else
        say "chpasswd -e failed for $user"
    fi
done < /run/cidata-users
rm -f /run/cidata-users
"""

# qemu-ga's guest-shutdown runs `shutdown -P +0 ...`; busybox has no `shutdown`.
_SHUTDOWN = """#!/bin/sh
sync
case " $* " in
    *" -r "*) exec reboot -f ;;
    *" -H "*) exec halt -f ;;
    *) exec poweroff -f ;;
esac
"""

_ETC: dict[str, str] = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/shadow": "root:*:19700:0:99999:7:::\nnobody:*:19700:0:99999:7:::\n",
    "etc/group": "root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
    "etc/hosts": "127.0.0.1 localhost ipsinfra-guest\n",
    "etc/hostname": "ipsinfra-guest\n",
    "etc/login.defs": "ENCRYPT_METHOD YESCRYPT\n",
    "etc/shells": "/bin/sh\n",
    # chpasswd's PAM service, as Debian's common-password has it (pam_unix, yescrypt).
    "etc/pam.d/chpasswd": "password required pam_unix.so yescrypt\n",
    "etc/pam.d/other": "auth required pam_deny.so\naccount required pam_deny.so\n"
    "password required pam_deny.so\nsession required pam_deny.so\n",
    "etc/inittab": _INITTAB,
}


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    except FileNotFoundError:
        raise GuestImageUnavailable(f"`{argv[0]}` is missing") from None
    except subprocess.CalledProcessError as exc:
        raise GuestImageUnavailable(f"{' '.join(argv)} failed: {exc.stderr.strip()}") from None


def shared_libraries(binary: Path) -> list[Path]:
    """Every shared object ``binary`` loads (``ldd``'s transitive list), the loader included."""
    libs: list[Path] = []
    for line in _run(["ldd", str(binary)]).splitlines():
        line = line.strip()
        if "not found" in line:
            raise GuestImageUnavailable(f"{binary}: {line}")
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            libs.append(Path(match.group(1)))
    return libs


def _canonical(path: Path) -> str:
    """The path inside the image: parent symlinks resolved (Debian 12 has merged /usr)."""
    return str(Path(os.path.realpath(path.parent)) / path.name).lstrip("/")


def _natural(text: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def find_kernel(boot: Path = Path("/boot"), modules_root: Path = Path("/lib/modules")) -> tuple[Path, str]:
    """The newest Debian kernel with its modules (a ``-cloud-`` flavour first): (vmlinuz, version)."""
    found: list[tuple[bool, list[object], Path, str]] = []
    for vmlinuz in boot.glob("vmlinuz-*"):
        version = vmlinuz.name.removeprefix("vmlinuz-")
        if (modules_root / version / "modules.dep").is_file():
            found.append(("-cloud-" in version, _natural(version), vmlinuz, version))
    if not found:
        raise GuestImageUnavailable(
            f"no kernel with modules in {boot}: apt-get install linux-image-cloud-amd64"
        )
    _, _, vmlinuz, version = max(found, key=lambda f: (f[0], f[1]))
    return vmlinuz, version


def _module_order(modules_root: Path, version: str, wanted: Iterable[str]) -> list[Path]:
    """``wanted`` and their dependencies, dependencies first (absent modules are built in)."""
    base = modules_root / version
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (base / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[re.sub(r"\.ko(\.\w+)?$", "", Path(path).name).replace("-", "_")] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        if name in by_name:  # else: built into the kernel
            visit(by_name[name])
    return [base / p for p in order]


def _module_bytes(path: Path) -> bytes:
    """A module as busybox insmod loads it: xz/gz compression undone here."""
    raw = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(raw)
    if path.suffix == ".gz":
        return gzip.decompress(raw)
    if path.suffix == ".zst":
        raise GuestImageUnavailable(f"{path}: zstd-compressed modules are not supported")
    return raw


@dataclass
class _Recipe:
    """Everything the image is made of: archive path -> host file, text, or symlink target."""

    files: dict[str, Path] = dataclasses.field(default_factory=dict)
    texts: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)
    links: dict[str, str] = dataclasses.field(default_factory=dict)
    modules: list[Path] = dataclasses.field(default_factory=list)

    def add_binary(self, path: Path) -> None:
        self.files[_canonical(path)] = path
        for lib in shared_libraries(path):
            self.files.setdefault(_canonical(lib), lib)

    def key(self, kernel: Path) -> str:
        h = hashlib.sha256(f"v{IMAGE_VERSION}\n".encode())
        for src in [kernel, *self.modules, *(self.files[k] for k in sorted(self.files))]:
            st = src.stat()
            h.update(f"{src}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        h.update(repr(sorted(self.files)).encode())
        h.update(repr(sorted(self.texts.items())).encode())
        h.update(repr(sorted(self.links.items())).encode())
        return h.hexdigest()[:16]


def _recipe(modules_root: Path, version: str, variant: Variant = "agent") -> _Recipe:
    needed = [(BUSYBOX, "busybox-static"), (CHPASSWD, "passwd")]
    if variant == "agent":
        needed.append((QEMU_GA, "qemu-guest-agent"))
    for path, package in needed:
        if not path.is_file():
            raise GuestImageUnavailable(f"{path} is missing: apt-get install {package}")
    r = _Recipe()
    r.files["usr/bin/busybox"] = BUSYBOX
    if variant == "agent":
        r.add_binary(QEMU_GA)
    r.add_binary(CHPASSWD)
    if variant == "nocloud":
        r.add_binary(BLKID)  # util-linux's, as cloud-init uses (busybox-static has none)
    pam_dir = next((d for d in PAM_DIRS if (d / "pam_unix.so").is_file()), None)
    if pam_dir is None:
        raise GuestImageUnavailable("pam_unix.so is missing: apt-get install libpam-modules")
    for module in PAM_MODULES:
        r.add_binary(pam_dir / module)
    wanted = KERNEL_MODULES if variant == "agent" else (*KERNEL_MODULES, *NOCLOUD_MODULES)
    r.modules = _module_order(modules_root, version, wanted)
    for name, text in _ETC.items():
        r.texts[name] = (text, 0o640 if name == "etc/shadow" else 0o644)
    if variant == "nocloud":
        r.texts["etc/inittab"] = (_NOCLOUD_INITTAB, 0o644)
        r.texts["usr/sbin/ipsinfra-nocloud"] = (_NOCLOUD, 0o755)
    r.texts["etc/ipsinfra/modules"] = ("".join(f"{m.name.split('.ko')[0]}.ko\n" for m in r.modules), 0o644)
    r.texts["init"] = (_INIT, 0o755)
    if variant == "agent":
        r.texts["usr/sbin/ipsinfra-agent"] = (_AGENT, 0o755)
    r.texts["usr/sbin/shutdown"] = (_SHUTDOWN, 0o755)
    for top in ("bin", "sbin", "lib", "lib64"):
        r.links[top] = f"usr/{top}"
    r.links["var/run"] = "../run"
    applets = _run([str(BUSYBOX), "--list"]).split()
    taken = set(r.files) | set(r.texts)
    for applet in applets:
        if applet in {"busybox", "init", "linuxrc"} or f"usr/sbin/{applet}" in taken:
            continue
        r.links.setdefault(f"usr/bin/{applet}", "busybox")
    r.links["usr/sbin/init"] = "../bin/busybox"
    return r


def _entries(r: _Recipe) -> list[CpioEntry]:
    modules = {f"usr/lib/modules/ipsinfra/{m.name.split('.ko')[0]}.ko": m for m in r.modules}
    dirs = {"dev", "proc", "sys", "run", "tmp", "root", "var", "etc"}
    for name in [*r.files, *r.texts, *r.links, *modules]:
        parent = Path(name).parent
        while str(parent) != ".":
            dirs.add(str(parent))
            parent = parent.parent
    dirs -= set(r.links)
    out = [CpioEntry(d, stat.S_IFDIR | (0o700 if d == "root" else 0o755)) for d in sorted(dirs)]
    out.append(CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    out.append(CpioEntry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3)))
    for name, target in sorted(r.links.items()):
        out.append(CpioEntry(name, stat.S_IFLNK | 0o777, target.encode()))
    for name, src in sorted(r.files.items()):
        mode = stat.S_IMODE(src.stat().st_mode) & 0o755  # no setuid bits in the guest
        out.append(CpioEntry(name, stat.S_IFREG | mode, src.read_bytes()))
    for name, module in modules.items():
        out.append(CpioEntry(name, stat.S_IFREG | 0o644, _module_bytes(module)))
    for name, (text, mode) in sorted(r.texts.items()):
        out.append(CpioEntry(name, stat.S_IFREG | mode, text.encode()))
    return out


def ensure_guest_image(
    cache_dir: Path | None = None, *, kernel: Path | None = None, variant: Variant = "agent"
) -> GuestImage:
    """The cached guest image, built first when absent or stale. Idempotent; safe to call per test.

    ``kernel``: a ``/boot/vmlinuz-<version>`` to use instead of the newest
    (``/lib/modules/<version>`` must exist). ``variant``: ``agent`` (qemu-ga)
    or ``nocloud`` (no agent; the password comes from a NoCloud seed, see the
    module docstring).
    """
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    modules_root = Path("/lib/modules")
    if kernel is None:
        kernel, version = find_kernel(modules_root=modules_root)
    else:
        version = kernel.name.removeprefix("vmlinuz-")
    recipe = _recipe(modules_root, version, variant)
    key = recipe.key(kernel)
    target = cache / (f"{version}-{key}" if variant == "agent" else f"{version}-{variant}-{key}")
    image = GuestImage(target / "vmlinuz", target / "initrd.cpio", DEFAULT_CMDLINE, version)
    if (target / "stamp").is_file():
        return image
    cache.mkdir(parents=True, exist_ok=True)
    cache.chmod(0o755)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        shutil.copyfile(kernel, tmp / "vmlinuz")
        write_cpio(_entries(recipe), tmp / "initrd.cpio")
        (tmp / "stamp").write_text(f"{key}\n", encoding="utf-8")
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.chmod(0o755)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "stamp").is_file():  # not a concurrent builder that won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    # Older builds are left alone: a domain defined elsewhere may still point at them.
    return image
