"""NoCloud seeds onto a libvirt node: a storage volume uploaded over the libvirt connection.

The seed is built where ipsinfra runs (:mod:`ipsinfra.hypervisors.nocloud`)
and the node may be remote (``qemu+ssh://``), so it travels the way libvirt
moves bytes to a node: ``virStorageVolCreateXML`` in the node's pool
(:attr:`ipsinfra.models.Node.seed_pool`), then ``virStorageVolUpload`` fed
through a ``virStream``. No file is written on the controller, no SSH/scp is
needed, and the volume is created mode 0600 (it holds the password hash).

Callers wrap these calls in :meth:`LibvirtDriver._errors` (libvirtError ->
the ipsinfra tree); a missing pool is an UnsupportedOperation saying how to
create one.
"""

from __future__ import annotations

import contextlib
from typing import Any
from xml.sax.saxutils import escape

import libvirt

from ipsinfra.errors import UnsupportedOperation

_CHUNK = 256 * 1024


def seed_volume_name(uuid: str) -> str:
    """``<domain uuid>-cidata.iso``: one seed per domain; a new seed replaces the old one."""
    return f"{uuid}-cidata.iso"


def _pool(conn: Any, pool_name: str, node: str) -> Any:
    try:
        pool = conn.storagePoolLookupByName(pool_name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        raise UnsupportedOperation(
            f"{node}: NoCloud seed: the node has no storage pool {pool_name!r}; create one "
            f"(virsh pool-define-as {pool_name} dir --target /var/lib/libvirt/images; virsh "
            f"pool-build {pool_name}; virsh pool-start {pool_name}; virsh pool-autostart {pool_name}) "
            "or set the node's seed_pool"
        ) from None
    if not pool.isActive():
        pool.create(0)
    return pool


def upload_seed(conn: Any, pool_name: str, volume: str, data: bytes, *, node: str) -> str:
    """Put ``data`` into volume ``volume`` of pool ``pool_name`` (replacing it).

    Returns the volume's path on the node (what the cdrom's ``<source file>`` names)."""
    pool = _pool(conn, pool_name, node)
    with contextlib.suppress(libvirt.libvirtError):
        pool.storageVolLookupByName(volume).delete(0)
    vol = pool.createXML(
        f"<volume><name>{escape(volume)}</name>"
        f"<capacity unit='bytes'>{len(data)}</capacity>"
        "<target><format type='raw'/><permissions><mode>0600</mode></permissions></target>"
        "</volume>",
        0,
    )
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, len(data), 0)
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            n = stream.send(bytes(view[sent : sent + _CHUNK]))
            if n < 0:
                raise libvirt.libvirtError("stream send failed")
            sent += n
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        with contextlib.suppress(libvirt.libvirtError):
            vol.delete(0)
        raise
    return str(vol.path())


def delete_seed(conn: Any, path: str) -> bool:
    """Delete the seed volume at ``path`` on the node; False when no pool holds it (nothing done)."""
    try:
        vol = conn.storageVolLookupByPath(path)
    except libvirt.libvirtError:
        return False
    vol.delete(0)
    return True


def read_seed(conn: Any, path: str) -> bytes:
    """The seed volume's bytes, downloaded from the node (``virStorageVolDownload``; checks and tests)."""
    vol = conn.storageVolLookupByPath(path)
    size = int(vol.info()[1])
    stream = conn.newStream(0)
    vol.download(stream, 0, size, 0)
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = stream.recv(_CHUNK)
        if not isinstance(chunk, bytes) or not chunk:  # a blocking stream: b"" at the end
            break
        chunks.append(chunk)
        got += len(chunk)
    stream.finish()
    return b"".join(chunks)
