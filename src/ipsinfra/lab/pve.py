"""A fake Proxmox VE cluster for tests and the embedded lab, on top of ``fakepve``.

``fakepve`` (PyPI, AGPL, a dev/test-only dependency) is imported lazily and
only subclassed here, never copied. The subclass closes the gaps that matter
to ipsinfra, each the way the real PVE 9 API behaves:

* ``POST /nodes/{node}/qemu/{vmid}/migrate`` really moves the VM to the target
  node in a ``qmigrate`` task; a running VM stays running (needs ``online=1``).
* ``GET .../qemu/{vmid}/config`` answers typed: integer and boolean options as
  JSON numbers (``memory`` stays a string: it is a property string in PVE 9).
* ``cipassword`` is masked as ``**********`` in config answers and as ``***``
  in the fake's own request log.
* ``GET /nodes/{node}/status`` reports a per-node CPU count and an uptime a
  test can set (:meth:`FakePveHandle.set_uptime`, :meth:`FakePveHandle.reboot`).
* ``GET /cluster/nextid`` hands out the lowest free vmid.
* ``POST /nodes/{node}/execute`` (PVE's batch endpoint, root@pam only) answers
  ``GET qemu/<vmid>/config`` commands, so a listing can read every config in
  one request as it can on a real node.

>>> with start_fake_pve({"pve1": 8, "pve2": 8}) as lab:   # doctest: +SKIP
...     lab.uri, lab.cafile, lab.token_id
('127.0.0.1:40123', '/tmp/.../fakepve.crt', 'root@pam!ipsinfra')
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ipsinfra.errors import IpsinfraError
from ipsinfra.models import HypervisorKind, Node, SecretRef

T = TypeVar("T")
MiB = 1024 * 1024
START_TIMEOUT = 30.0
_CIPASSWORD_FORM = re.compile(rb"(?<![^&])(cipassword=)[^&]*")
_CONFIG_SCHEMA_PATH = "/nodes/{node}/qemu/{vmid}/config"


class LabUnavailable(IpsinfraError, RuntimeError):
    """The lab cannot start: a test-only dependency is missing."""


def _fakepve() -> Any:
    try:
        import fakepve.server
    except ModuleNotFoundError as exc:
        raise LabUnavailable(
            f"the fake Proxmox VE lab needs fakepve ({exc.name} is missing): "
            "pip install fakepve (a dev/test-only dependency, AGPL; never shipped with ipsinfra)"
        ) from None
    return fakepve


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


_LAB_CLASS: type[Any] | None = None


def lab_class() -> type[Any]:
    """The FakePve subclass (built on first use so fakepve is imported lazily)."""
    global _LAB_CLASS
    if _LAB_CLASS is None:
        _LAB_CLASS = _build_lab_class()
    return _LAB_CLASS


def _build_lab_class() -> type[Any]:
    fakepve = _fakepve()
    from aiohttp import web
    from fakepve import schema as pve_schema
    from fakepve.model import PveError

    config_props: dict[str, Any] = pve_schema.load().paths[_CONFIG_SCHEMA_PATH]["PUT"]["parameters"][
        "properties"
    ]

    def prop_type(key: str) -> str | None:
        spec = config_props.get(key) or config_props.get(re.sub(r"\d+$", "[n]", key))
        kind = spec.get("type") if isinstance(spec, dict) else None
        return kind if isinstance(kind, str) else None

    base: Any = fakepve.server.FakePve

    class IpsinfraFakePve(base):  # type: ignore[misc]
        """FakePve with the gaps closed that ipsinfra's Proxmox driver relies on."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.node_cpus: dict[str, int] = {}
            self.node_memory: dict[str, int] = {}
            self.boot_times: dict[str, float] = {}
            # PVE seconds a migration task takes (scaled by time_scale).
            self.migrate_secs = 2.0

        # ------------------------------------------------------- helpers
        def config_view(self, vm: Any) -> dict[str, Any]:
            """The config as real PVE answers it: typed, cipassword masked, with its digest."""
            cfg: dict[str, Any] = {}
            for key, value in vm.config.items():
                kind = prop_type(key)
                if kind in {"integer", "boolean"} and re.fullmatch(r"-?\d+", str(value)):
                    cfg[key] = int(value)
                elif kind == "boolean" and str(value).lower() in {"true", "false"}:
                    cfg[key] = int(str(value).lower() == "true")
                elif kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?", str(value)):
                    cfg[key] = float(value)
                else:
                    cfg[key] = value
            if "cipassword" in cfg:
                cfg["cipassword"] = "**********"
            cfg["digest"] = vm.digest()
            return cfg

        def boot(self, node: str) -> None:
            """Power the node on again: every VM off, then those with onboot=1 started."""
            self.boot_times[node] = time.time()
            for vm in self.vms:
                if vm.node != node:
                    continue
                vm.status = vm.qmpstatus = "stopped"
                vm.started_at = None
                vm.lock = None
                if _truthy(vm.config.get("onboot", 0)) and not vm.template:
                    vm.apply_pending()
                    vm.status = vm.qmpstatus = "running"
                    vm.started_at = time.time()

        # -------------------------------------------------- overridden
        async def _config_get(self, request: Any) -> Any:
            vm = self._vm(request, "VM.Audit")
            return web.json_response({"data": self.config_view(vm)})

        def _record(self, request: Any, body: bytes) -> None:
            if request.content_type == "application/json" and b"cipassword" in body:
                try:
                    data = json.loads(body)
                    if isinstance(data, dict) and "cipassword" in data:
                        data["cipassword"] = "***"
                        body = json.dumps(data).encode()
                except ValueError:
                    body = b""
            else:
                body = _CIPASSWORD_FORM.sub(rb"\g<1>***", body)
            super()._record(request, body)

        # ------------------------------------------------------ routes
        def _routes_ipsinfra(self) -> list[tuple[str, str, Callable[..., Any]]]:
            return [
                ("POST", "/nodes/{node}/qemu/{vmid}/migrate", self._ips_migrate),
                ("GET", "/nodes/{node}/status", self._ips_node_status),
                ("GET", "/cluster/nextid", self._ips_nextid),
                ("POST", "/nodes/{node}/execute", self._ips_execute),
            ]

        async def _ips_migrate(self, v: Mapping[str, Any], user: str) -> Any:
            node, vmid, target = v["node"], int(v["vmid"]), str(v["target"])
            vm = self.find(node, vmid)
            self.need_quorum()
            if target == node:
                raise PveError(400, "Parameter verification failed.", {"target": "target is local node."})
            if target not in self.nodes:
                raise PveError(500, f"no such cluster node '{target}'")
            if not self.nodes[target].get("online", True):
                raise PveError(500, f"target node '{target}' is not online")
            if vm.status == "running" and not _truthy(v.get("online", 0)):
                raise PveError(500, "can't migrate running VM without --online")
            self._check_lock(vm)
            return await self.migrate(vmid, target, secs=self.migrate_secs, user=user)

        async def _ips_node_status(self, v: Mapping[str, Any], user: str) -> Any:
            node = v["node"]
            cpus = self.node_cpus.get(node, 4)
            total = self.node_memory.get(node, 8192 * MiB)
            used = sum(
                int(str(vm.config.get("memory", 512)).split("=")[-1]) * MiB
                for vm in self.vms
                if vm.node == node and vm.status == "running"
            )
            booted = self.boot_times.setdefault(node, time.time() - 3600)
            return {
                "uptime": max(0, int(time.time() - booted)),
                "cpu": 0.02,
                "cpuinfo": {
                    "cpus": cpus,
                    "cores": cpus,
                    "sockets": 1,
                    "model": "fakepve vCPU",
                    "mhz": "2400",
                },
                "memory": {"total": total, "used": used, "free": total - used, "available": total - used},
                "loadavg": ["0.01", "0.02", "0.00"],
                "pveversion": f"pve-manager/{self.version}/fakepve",
                "kversion": "Linux 6.14.8-2-pve #1 SMP PREEMPT_DYNAMIC",
                "current-kernel": {
                    "sysname": "Linux",
                    "release": "6.14.8-2-pve",
                    "machine": "x86_64",
                    "version": "#1 SMP PREEMPT_DYNAMIC",
                },
                "boot-info": {"mode": "efi", "secureboot": False},
                "rootfs": {
                    "total": 64 * 1024 * MiB,
                    "used": 4 * 1024 * MiB,
                    "free": 60 * 1024 * MiB,
                    "avail": 60 * 1024 * MiB,
                },
            }

        async def _ips_nextid(self, v: Mapping[str, Any], user: str) -> Any:
            wanted = v.get("vmid")
            if wanted is not None:
                if self._qm_taken(int(wanted)):
                    raise PveError(
                        400, "Parameter verification failed.", {"vmid": f"VM {wanted} already exists"}
                    )
                return str(wanted)
            vmid = 100
            while self._qm_taken(vmid):
                vmid += 1
            return str(vmid)  # PVE sends the id as a string

        async def _ips_execute(self, v: Mapping[str, Any], user: str) -> Any:
            if (user or "").split("!")[0] != "root@pam":
                raise PveError(403, "Permission check failed (user != root@pam)")
            try:
                commands = json.loads(str(v["commands"]))
            except ValueError:
                raise PveError(400, "Parameter verification failed.", {"commands": "invalid JSON"}) from None
            out: list[dict[str, Any]] = []
            for cmd in commands if isinstance(commands, list) else []:
                method = str(cmd.get("method", "GET")).upper()
                path = str(cmd.get("path", "")).strip("/")
                found = re.fullmatch(r"qemu/(\d+)/config", path)
                if method != "GET" or found is None:
                    out.append({"status": 500, "message": f"no handler for 'nodes/{v['node']}/{path}'\n"})
                    continue
                try:
                    vm = self.find(v["node"], int(found[1]))
                    self.require(user, f"/vms/{vm.vmid}", "VM.Audit")
                    out.append({"status": 200, "data": self.config_view(vm)})
                except PveError as exc:
                    out.append({"status": exc.status, "message": exc.message + "\n"})
            return out

    return IpsinfraFakePve


@dataclasses.dataclass
class FakePveHandle:
    """A running fake cluster: where it listens, how to log in, and test levers."""

    pve: Any
    host: str
    port: int
    cafile: str
    user: str
    password: str
    token_id: str
    token_value: str
    secrets_dir: Path
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread

    @property
    def uri(self) -> str:
        """``host:port`` as a :class:`ipsinfra.models.Node` ``uri`` takes it."""
        return f"{self.host}:{self.port}"

    @property
    def token_name(self) -> str:
        return self.token_id.partition("!")[2]

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the fake's event loop thread (safe against concurrent requests)."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(START_TIMEOUT)

    def requests(self) -> list[tuple[str, str, bytes]]:
        """The fake's request log so far: (method, path, body), secrets redacted."""
        return list(self.pve.requests)

    def clear_vms(self, node: str | None = None) -> None:
        """Forget every VM (of one node): a fresh node for the next test."""

        def drop() -> None:
            self.pve.vms[:] = [vm for vm in self.pve.vms if node is not None and vm.node != node]
            for store in self.pve.storages.values():
                store.get("volumes", {}).clear()

        self.call(drop)

    def set_uptime(self, node: str, seconds: float) -> None:
        """Make ``node`` report ``seconds`` of uptime from now on."""
        self.call(lambda: self.pve.boot_times.__setitem__(node, time.time() - seconds))

    def reboot(self, node: str) -> None:
        """Reboot ``node``: uptime restarts at 0, every VM stops, onboot=1 VMs start."""
        self.call(lambda: self.pve.boot(node))

    def node_model(self, name: str, main_ip: str, *, auth: str = "token", **overrides: Any) -> Node:
        """A :class:`Node` that reaches PVE node ``name`` of this fake (auth: ``token`` or ``password``)."""
        if auth not in {"token", "password"}:
            raise ValueError(f"auth: value {auth!r}: use 'token' or 'password'")
        secret_file = self.secrets_dir / ("token" if auth == "token" else "password")
        values: dict[str, Any] = {
            "name": name,
            "site": "lab",
            "main_ip": ipaddress.ip_address(main_ip),
            "kind": HypervisorKind.PROXMOX,
            "uri": self.uri,
            "pve_node": name,
            "cpus": self.pve.node_cpus.get(name, 4),
            "api_user": self.user,
            "api_token_id": self.token_id if auth == "token" else None,
            "secret": SecretRef(file=str(secret_file)),
            "ca_file": self.cafile,
        }
        values.update(overrides)
        return Node.model_validate(values)


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")


@contextlib.contextmanager
def start_fake_pve(
    nodes: Mapping[str, int] | list[str],
    *,
    user: str = "root@pam",
    password: str | None = None,
    token_name: str = "ipsinfra",
    cluster_name: str = "ipsinfra-lab",
    time_scale: float = 0.0,
    host: str = "127.0.0.1",
    workdir: str | Path | None = None,
) -> Iterator[FakePveHandle]:
    """Serve a fake PVE cluster over HTTPS on ``host`` with a free port, in a background thread.

    Args:
        nodes: node name -> CPU count, or just names (4 CPUs each).
        time_scale: 0 runs every task to completion before its request returns;
            0.01 makes a 60 PVE-second shutdown take 0.6 s.
        workdir: where the certificate and the secret files go (a fresh
            temporary directory, removed afterwards, when None).
    """
    _fakepve()  # LabUnavailable with the install hint, before anything else
    from fakepve.certs import make_cert

    cpus = dict(nodes) if isinstance(nodes, Mapping) else dict.fromkeys(nodes, 4)
    if not cpus:
        raise ValueError("nodes: value {}: a cluster needs at least one node")
    password = password or secrets.token_urlsafe(16)
    token_value = secrets.token_hex(16)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="ipsinfra-pve-"))
        directory = Path(workdir)
        directory.mkdir(parents=True, exist_ok=True)
        certfile, keyfile, _der = make_cert(str(directory), name="fakepve", hosts=(host,))
        _write_secret(directory / "token", token_value)
        _write_secret(directory / "password", password)

        pve = lab_class()(user=user, password=password, host=host, port=0)
        pve.time_scale = time_scale
        pve.cluster_name = cluster_name
        pve.nodes.clear()
        for name, count in cpus.items():
            pve.add_node(name)
            pve.node_cpus[name] = count
        token_id = f"{user}!{token_name}"
        pve.apitokens[token_id] = token_value

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"fakepve-{host}", daemon=True)
        thread.start()
        handle = FakePveHandle(
            pve=pve,
            host=host,
            port=0,
            cafile=certfile,
            user=user,
            password=password,
            token_id=token_id,
            token_value=token_value,
            secrets_dir=directory,
            _loop=loop,
            _thread=thread,
        )
        try:
            asyncio.run_coroutine_threadsafe(pve.start(certfile, keyfile), loop).result(START_TIMEOUT)
            handle.port = int(pve.port)
            yield handle
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_drop_connections(pve), loop).result(START_TIMEOUT)
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(pve.stop(), loop).result(START_TIMEOUT)
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(START_TIMEOUT)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(START_TIMEOUT)
            if not thread.is_alive():
                loop.close()


async def _drop_connections(pve: Any) -> None:
    """Abort every client connection the server still holds (keep-alive sessions),
    so no transport outlives the loop."""
    server = getattr(getattr(pve, "runner", None), "server", None)
    for handler in list(getattr(server, "connections", None) or []):
        transport = getattr(handler, "transport", None)
        if transport is not None:
            transport.abort()
    await asyncio.sleep(0.01)


async def _cancel_pending() -> None:
    """Cancel tasks still sleeping (a slow shutdown, a long migration) so the loop closes cleanly."""
    me = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not me]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    # Let closing TLS transports finish before the loop goes away (else ResourceWarnings).
    for _ in range(5):
        await asyncio.sleep(0.01)


__all__ = ["FakePveHandle", "LabUnavailable", "lab_class", "start_fake_pve"]
