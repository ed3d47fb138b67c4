"""cloud-init NoCloud seeds: how a guest WITHOUT a guest agent gets its root password.

A seed is a small volume cloud-init's NoCloud datasource reads at boot, built
exactly as cloud-init documents it ("Source 2: Drive with labeled filesystem"
in ``doc/rtd/reference/datasources/nocloud.rst``; ``_get_devices`` in
``cloudinit/sources/DataSourceNoCloud.py`` looks for ``TYPE=iso9660`` or
``TYPE=vfat`` with ``LABEL=cidata``/``CIDATA``):

* an ISO9660 filesystem with Joliet and Rock Ridge (what the docs' own
  ``genisoimage -volid cidata -joliet -rock`` makes), volume label ``cidata``,
* ``meta-data``: ``instance-id`` and ``local-hostname``,
* ``user-data``: ``#cloud-config`` with ``chpasswd.users`` carrying a SHA-512
  crypt HASH (``type: hash``), ``chpasswd.expire: false`` and ``ssh_pwauth: true``
  (``cloudinit/config/cc_set_passwords.py``; schema
  ``cloudinit/config/schemas/schema-cloud-config-v1.json``).

``chpasswd.users`` is cloud-init's documented key since 22.2 (``chpasswd.list``
is deprecated); Debian 12 ships 22.4.2 and the Ubuntu LTS cloud images carry
later releases. cloud-init applies it to an existing user (root) once per
instance-id: a second seed needs a new instance-id to be applied.

The ISO is built in memory with ``pycdlib`` (pure Python): nothing is written
to disk here and no process gets the password on its command line. The hash
is made by ``openssl passwd -6 -stdin`` with the password on the pipe (the
stdlib ``crypt`` module is deprecated since 3.11 and gone in 3.13; passlib is
unmaintained), so the clear text never leaves this process except into that
pipe, and the seed holds only the hash.

>>> seed = Seed(instance_id="iid-1", hostname="VPS7-1-2", password_hash="$6$salt$" + "x" * 86)
>>> seed.meta_data()
'instance-id: iid-1\\nlocal-hostname: VPS7-1-2\\n'
>>> seed.user_data().splitlines()[0]
'#cloud-config'
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass

import yaml

from ipsinfra.errors import InvalidInput, IpsinfraError

SEED_LABEL = "cidata"
META_DATA = "meta-data"
USER_DATA = "user-data"
#: ``$6$<salt>$<86 chars>``: SHA-512 crypt (glibc/libxcrypt), what ``openssl passwd -6`` writes.
SHA512_CRYPT_RE = re.compile(r"^\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\$?$")


class SeedUnavailable(IpsinfraError, RuntimeError):
    """The seed cannot be made here (``openssl`` missing or failing); never carries the password."""


def hash_password(password: str) -> str:
    """A SHA-512 crypt hash of ``password`` (``$6$...``), from ``openssl passwd -6 -stdin``.

    The password goes to openssl on its stdin only; neither the argv nor any
    message carries it. Raises InvalidInput for a password openssl would cut
    (a newline or NUL: ``-stdin`` reads one line), SeedUnavailable when
    openssl is missing or fails.
    """
    if not password or any(c in password for c in "\r\n\0"):
        raise InvalidInput("password: empty or containing a line break/NUL (value not shown)")
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SeedUnavailable("`openssl` is missing: apt-get install openssl")
    try:
        done = subprocess.run(
            [openssl, "passwd", "-6", "-stdin"],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SeedUnavailable(f"openssl passwd failed: {type(exc).__name__}") from None
    hashed = done.stdout.strip()
    if done.returncode != 0 or not SHA512_CRYPT_RE.fullmatch(hashed):
        # stderr is openssl's own message; it never echoes stdin.
        raise SeedUnavailable(
            f"openssl passwd -6 failed (exit {done.returncode}): {done.stderr.strip()[:200]}"
        )
    return hashed


@dataclass(frozen=True)
class Seed:
    """What one NoCloud seed says. ``password_hash``: a SHA-512 crypt hash, never a clear text.

    ``instance_id``: cloud-init runs its per-instance modules (set_passwords
    among them) again whenever it changes.
    """

    instance_id: str
    hostname: str
    password_hash: str
    user: str = "root"
    ssh_pwauth: bool = True

    def __post_init__(self) -> None:
        if not SHA512_CRYPT_RE.fullmatch(self.password_hash):
            raise InvalidInput("password_hash: not a SHA-512 crypt hash ($6$...) (value not shown)")
        if not _HOSTNAME_RE.fullmatch(self.hostname):
            raise InvalidInput(f"hostname: value {self.hostname!r}: not a valid host name label")
        if not _USER_RE.fullmatch(self.user):
            raise InvalidInput(f"user: value {self.user!r}: not a valid user name")
        if not re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", self.instance_id):
            raise InvalidInput(f"instance_id: value {self.instance_id!r}: letters, digits, . _ : - only")

    def meta_data(self) -> str:
        """``meta-data`` (YAML): the instance-id cloud-init keys its per-instance runs on, the host name."""
        return yaml.safe_dump(
            {"instance-id": self.instance_id, "local-hostname": self.hostname}, sort_keys=False
        )

    def user_data(self) -> str:
        """``user-data``: a ``#cloud-config`` document (cc_set_passwords' keys only).

        Example (hash shortened)::

            #cloud-config
            ssh_pwauth: true
            chpasswd:
              expire: false
              users:
              - name: root
                password: $6$...
                type: hash
        """
        config = {
            "ssh_pwauth": self.ssh_pwauth,
            "chpasswd": {
                "expire": False,
                "users": [{"name": self.user, "password": self.password_hash, "type": "hash"}],
            },
        }
        return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)

    def iso(self) -> bytes:
        """The seed as an ISO9660 image (Joliet + Rock Ridge, label ``cidata``), built in memory."""
        import pycdlib  # a few ms; only the seed path needs it

        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=SEED_LABEL)
        try:
            for name, text in ((META_DATA, self.meta_data()), (USER_DATA, self.user_data())):
                data = text.encode()
                iso_name = "/" + name.replace("-", "_").upper() + ".;1"
                iso.add_fp(
                    io.BytesIO(data),
                    len(data),
                    iso_name,
                    rr_name=name,
                    joliet_path="/" + name,
                )
            out = io.BytesIO()
            iso.write_fp(out)
        finally:
            iso.close()
        return out.getvalue()


def read_iso(data: bytes) -> dict[str, str]:
    """The files of a seed ISO by their Rock Ridge names, its label under ``"<label>"`` (checks, tests)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    try:
        files: dict[str, str] = {"<label>": iso.pvd.volume_identifier.decode().strip()}
        for name in (META_DATA, USER_DATA):
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path="/" + name)
            files[name] = out.getvalue().decode()
    finally:
        iso.close()
    return files


__all__ = ["SEED_LABEL", "Seed", "SeedUnavailable", "hash_password", "read_iso"]
