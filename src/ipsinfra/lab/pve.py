"""A fake Proxmox VE cluster for tests and the embedded lab, on top of ``fakepve``.

``fakepve`` (PyPI, AGPL, a dev/test-only dependency) is imported lazily and
only subclassed here, never copied. The subclass closes the gaps that matter
to ipsinfra, each the way the real PVE 9 API behaves:

* ``POST /nodes/{node}/qemu/{vmid}/migrate`` really moves the VM to the target
  node in a ``qmigrate`` task; a running VM stays running (needs ``online=1``)
  and, as on PVE, its pending changes move with it still pending.
* ``GET .../qemu/{vmid}/config`` answers as PVE does: pending values applied
  unless ``current=1``; typed: integer and boolean options as JSON numbers
  (``memory`` stays a string: it is a property string in PVE 9).
* ``cipassword`` is masked as ``**********`` in config answers and as ``***``
  in the fake's own request log.
* ``GET /nodes/{node}/status`` reports a per-node CPU count and an uptime a
  test can set (:meth:`FakePveHandle.set_uptime`, :meth:`FakePveHandle.reboot`).
* ``POST /nodes/{node}/execute`` (PVE's batch endpoint, root only) answers
  ``GET qemu/<vmid>/config`` commands (with their ``args``), so a listing can
  read every config in one request as it can on a real node.

Every route added here is one PVE's API schema documents (fakepve ships it,
``fakepve/data/pve-api.json.gz``) and reads only the parameters the schema
lists for it; ``tests/unit/test_pve_routes_schema.py`` checks that.

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
# pve-manager PVE/API2/Nodes.pm $verify_command_item_desc: the keys of one /execute command.
COMMAND_ITEM_KEYS = frozenset({"path", "method", "args"})


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


def _command_item(cmd: Any) -> bool:
    """One item of pve-manager's ``pve-command-batch`` (``$verify_command_item_desc``):
    ``path`` (string), ``method`` (GET|POST|PUT|DELETE), ``args`` (object, optional)."""
    return (
        isinstance(cmd, dict)
        and isinstance(cmd.get("path"), str)
        and cmd.get("method") in {"GET", "POST", "PUT", "DELETE"}
        and isinstance(cmd.get("args", {}), dict)
        and set(cmd) <= COMMAND_ITEM_KEYS
    )


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
    from fakepve.model import PveError, TaskError

    config_props: dict[str, Any] = pve_schema.load().paths[_CONFIG_SCHEMA_PATH]["PUT"]["parameters"][
        "properties"
    ]
    config_get_params: dict[str, Any] = pve_schema.load().paths[_CONFIG_SCHEMA_PATH]["GET"]["parameters"]

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
        def config_view(self, vm: Any, *, current: bool = False) -> dict[str, Any]:
            """The config as real PVE answers it: typed, cipassword masked, with its digest.

            Pending values are applied unless ``current`` (pve-guest-common
            ``PVE/AbstractConfig.pm`` ``load_current_config``: pending values
            replace current ones, pending deletes remove them).
            """
            merged = dict(vm.config)
            if not current:
                for key, value in vm.pending.items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
            cfg: dict[str, Any] = {}
            for key, value in merged.items():
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
            # qemu-server PVE/API2/Qemu.pm, vm_config: pending values unless current=1.
            values = self._verify(request, dict(request.query))
            vm = self._vm(request, "VM.Audit")
            current = _truthy(values.get("current", 0))
            return web.json_response({"data": self.config_view(vm, current=current)})

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
        # Each route below is in PVE's API schema with this method, and its
        # handler reads only parameters the schema lists for it (checked by
        # tests/unit/test_pve_routes_schema.py). fakepve's own /cluster/nextid
        # already hands out the lowest free vmid (PVE::Cluster nextid), so it
        # is not overridden here.
        def _routes_ipsinfra(self) -> list[tuple[str, str, Callable[..., Any]]]:
            return [
                ("POST", "/nodes/{node}/qemu/{vmid}/migrate", self._ips_migrate),
                ("GET", "/nodes/{node}/status", self._ips_node_status),
                ("POST", "/nodes/{node}/execute", self._ips_execute),
            ]

        async def _ips_migrate(self, v: Mapping[str, Any], user: str) -> Any:
            """qemu-server ``PVE/API2/Qemu.pm`` ``migrate_vm`` + ``PVE/QemuMigrate.pm``.

            The checks and messages are ``migrate_vm``'s: ``target is local node.``,
            ``PVE::Cluster::check_node_exists`` (``no such cluster node``), ``can't
            migrate running VM without --online``. The config file moves to the
            target with its pending section: a live migration starts the target
            QEMU with ``--stateuri``, and ``vm_start_nolock`` applies pending
            changes only without one, so they stay pending (fakepve's move keeps
            ``vm.pending`` as it is).
            """
            node, vmid, target = v["node"], int(v["vmid"]), str(v["target"])
            vm = self.find(node, vmid)
            self.need_quorum()
            if target == node:
                raise PveError(400, "Parameter verification failed.", {"target": "target is local node."})
            if target not in self.nodes:
                raise PveError(500, f"no such cluster node '{target}'")
            if vm.status == "running" and not _truthy(v.get("online", 0)):
                raise PveError(500, "can't migrate running VM without --online")
            self._check_lock(vm)
            if not self.nodes[target].get("online", True):
                # migrate_vm has no such check: QemuMigrate::prepare's ssh to the
                # target fails inside the task, and AbstractMigrate ends it with
                # "migration aborted".
                async def unreachable() -> None:
                    raise TaskError("migration aborted")

                return await self.task(node, "qmigrate", vmid, user, unreachable, vm=vm)
            return await self.migrate(vmid, target, secs=self.migrate_secs, user=user)

        async def _ips_node_status(self, v: Mapping[str, Any], user: str) -> Any:
            """pve-manager ``PVE/API2/Nodes.pm`` ``status`` (GET): uptime, cpuinfo, memory of the node."""
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

        async def _ips_execute(self, v: Mapping[str, Any], user: str) -> Any:
            """pve-manager ``PVE/API2/Nodes.pm`` ``execute``: commands in order, root only.

            ``commands`` is the ``pve-command-batch`` format
            (``verify_command_batch``: a JSON array of ``{path, method, args?}``,
            ``$verify_command_item_desc``). Each command answers ``{status: 200,
            data}`` or ``{status, message, errors?}``; a path without a handler
            is ``no handler for 'nodes/<node>/<path>'``. Only ``GET
            qemu/<vmid>/config`` (with its ``current`` argument) has a handler here.
            """
            if (user or "").split("!")[0] != "root@pam":
                raise PveError(403, "Permission check failed (user != root@pam)")
            try:
                commands = json.loads(str(v["commands"]))
            except ValueError:
                raise PveError(
                    400,
                    "Parameter verification failed.",
                    {"commands": "commands param did not contain valid JSON"},
                ) from None
            if not isinstance(commands, list) or not all(_command_item(c) for c in commands):
                raise PveError(
                    400,
                    "Parameter verification failed.",
                    {"commands": "commands is not a valid array of commands"},
                )
            out: list[dict[str, Any]] = []
            for cmd in commands:
                path = str(cmd["path"]).strip("/")
                found = re.fullmatch(r"qemu/(\d+)/config", path)
                if cmd["method"] != "GET" or found is None:
                    out.append({"status": 500, "message": f"no handler for 'nodes/{v['node']}/{path}'\n"})
                    continue
                args = dict(cmd.get("args") or {})
                config_args, errors = pve_schema.validate(
                    config_get_params, {**args, "node": v["node"], "vmid": found[1]}
                )
                if errors:
                    out.append(
                        {"status": 400, "message": "Parameter verification failed.\n", "errors": errors}
                    )
                    continue
                try:
                    vm = self.find(v["node"], int(found[1]))
                    self.require(user, f"/vms/{vm.vmid}", "VM.Audit")
                    current = _truthy(config_args.get("current", 0))
                    out.append({"status": 200, "data": self.config_view(vm, current=current)})
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
            "cpus": getattr(self.pve, "node_cpus", {}).get(name, 4),
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
    stock: bool = False,
) -> Iterator[FakePveHandle]:
    """Serve a fake PVE cluster over HTTPS on ``host`` with a free port, in a background thread.

    Args:
        nodes: node name -> CPU count, or just names (4 CPUs each).
        time_scale: 0 runs every task to completion before its request returns;
            0.01 makes a 60 PVE-second shutdown take 0.6 s.
        workdir: where the certificate and the secret files go (a fresh
            temporary directory, removed afterwards, when None).
        stock: serve fakepve's own ``FakePve`` with none of this module's
            routes or overrides: the product against a fake it did not shape.
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

        server_class = _fakepve().server.FakePve if stock else lab_class()
        pve = server_class(user=user, password=password, host=host, port=0)
        pve.time_scale = time_scale
        pve.cluster_name = cluster_name
        pve.nodes.clear()
        for name, count in cpus.items():
            pve.add_node(name)
            if not stock:
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
