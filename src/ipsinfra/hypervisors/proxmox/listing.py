"""Reading the configs of every VM of a node, in bounded calls and without losing one.

``/nodes/{node}/qemu`` has state, name, cpus and memory but not the config
(onboot, affinity, net0, description, args). PVE's batch endpoint ``POST
/nodes/{node}/execute`` (pve-manager ``PVE/API2/Nodes.pm``, sub ``execute``;
root only, no ``permissions`` declared) runs many ``GET qemu/<vmid>/config``
in one request and answers one item per command: ``{status: 200, data}`` or
``{status, message, errors?}``.

What the answer proves, and what it does not:

* An item that is a config (``status`` 200, ``data`` a non-empty object) is
  the VM's config.
* Any other item (an error, a missing item, a shape we do not know) proves
  nothing: that VM is read on its own with ``GET .../config``. Only PVE's own
  ``Configuration file 'nodes/<node>/qemu-server/<vmid>.conf' does not exist``
  for that VM means it is gone (deleted or moved away between the two calls).
* A refused batch (403/501: a non-root user or token) or an answer of a shape
  we do not know (stock fakepve 0.5 answers ``[{}]``) switches this reader to
  one call per VM for good, logged once (the shape case as a warning).

Every config is read with ``current=1``: what the running VM uses, not the
pending values PVE would otherwise merge in (``PVE::AbstractConfig::load_current_config``).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ipsinfra.errors import HypervisorApiError, VdsNotFound
from ipsinfra.hypervisors.proxmox.api import config_missing, edge

if TYPE_CHECKING:
    from proxmoxer import ProxmoxAPI

EXECUTE_BATCH = 500  # commands per /execute request: well under PVE's 64 KiB body limit
_log = logging.getLogger(__name__)


def _config_item(answer: Any) -> dict[str, Any] | None:
    """The config in one /execute item, or None when the item is not one."""
    if not isinstance(answer, dict):
        return None
    data = answer.get("data")
    if str(answer.get("status")) == "200" and isinstance(data, dict) and data:
        return data
    return None


def _error_item(answer: Any) -> bool:
    """True for an item of the documented error shape: ``{status: <int != 200>, message: ...}``."""
    if not isinstance(answer, dict):
        return False
    status = answer.get("status")
    return isinstance(status, int) and status != 200 and isinstance(answer.get("message"), str)


class ConfigReader:
    """The configs of many VMs of one PVE node: one ``/execute`` per EXECUTE_BATCH, else one call each.

    Args:
        api: the ready proxmoxer API.
        pve_node: the node's name in the cluster.
        node: the node's name in the inventory (for error messages).
    """

    def __init__(self, api: ProxmoxAPI, pve_node: str, node: str) -> None:
        self._api = api
        self.pve_node = pve_node
        self.node = node
        self.mode = "batch"
        self.reason: str | None = None

    def _fall_back(self, reason: str, level: int) -> None:
        self.mode, self.reason = "per-vm", reason
        _log.log(level, "%s: %s; reading configs one VM at a time from now on", self.node, reason)

    def read(self, vmids: list[int]) -> tuple[dict[int, dict[str, Any]], set[int]]:
        """``(configs by vmid, vmids proven gone)``; every vmid lands in exactly one of them.

        Raises:
            HypervisorApiError: a config could not be read and its absence is not proven.
        """
        configs: dict[int, dict[str, Any]] = {}
        gone: set[int] = set()
        todo = self._batch(vmids, configs) if self.mode == "batch" else list(vmids)
        for vmid in todo:
            config = self.read_one(vmid)
            if config is None:
                gone.add(vmid)
            else:
                configs[vmid] = config
        missing = set(vmids) - set(configs) - gone
        if missing or set(configs) & gone:
            raise HypervisorApiError(
                f"list VMs: {len(configs)} configs read and {len(gone)} VMs proven gone, "
                f"but the node listed {len(set(vmids))} (not accounted for: {sorted(missing)})",
                node=self.node,
            )
        return configs, gone

    def _batch(self, vmids: list[int], configs: dict[int, dict[str, Any]]) -> list[int]:
        """Fill ``configs`` from /execute; the vmids it did not return a config for."""
        left: list[int] = []
        for start in range(0, len(vmids), EXECUTE_BATCH):
            chunk = vmids[start : start + EXECUTE_BATCH]
            commands = [
                {"method": "GET", "path": f"qemu/{vmid}/config", "args": {"current": 1}} for vmid in chunk
            ]
            try:
                with edge(self.node, "read configs (batch)"):
                    answers = self._api.nodes(self.pve_node).execute.post(commands=json.dumps(commands))
            except HypervisorApiError as exc:
                if "API error 403" not in str(exc) and "API error 501" not in str(exc):
                    raise
                self._fall_back(f"/execute refused ({exc})", logging.INFO)
                return left + vmids[start:]
            if not isinstance(answers, list) or len(answers) != len(chunk):
                shown = f"{len(answers)} items" if isinstance(answers, list) else type(answers).__name__
                self._fall_back(
                    f"/execute answered {shown} for {len(chunk)} commands (not PVE's shape)", logging.WARNING
                )
                return left + vmids[start:]
            odd = 0
            for vmid, answer in zip(chunk, answers, strict=True):
                config = _config_item(answer)
                if config is not None:
                    configs[vmid] = config
                    continue
                left.append(vmid)
                odd += not _error_item(answer)
            if odd:
                example = next(a for a in answers if _config_item(a) is None and not _error_item(a))
                self._fall_back(
                    f"/execute answered {odd} of {len(chunk)} items in a shape that is neither a config "
                    f"nor an error (not PVE's shape; e.g. {json.dumps(example)[:80]})",
                    logging.WARNING,
                )
                return left + vmids[start + len(chunk) :]
        return left

    def read_one(self, vmid: int) -> dict[str, Any] | None:
        """The current config of ``vmid``; None only on PVE's own "does not exist" for it."""
        from proxmoxer.core import ResourceException

        try:
            with edge(self.node, f"read config of vmid {vmid}"):
                try:
                    data = self._api.nodes(self.pve_node).qemu(vmid).config.get(current=1)
                except ResourceException as exc:
                    if config_missing(exc, self.pve_node, vmid):
                        return None
                    raise
        except VdsNotFound as exc:  # a 404 or a message not about this VM: no proof it is gone
            raise HypervisorApiError(
                f"{exc}; that is not PVE's own 'does not exist' for vmid {vmid} on {self.pve_node}",
                node=self.node,
            ) from exc
        if not isinstance(data, dict) or not data:
            raise HypervisorApiError(
                f"read config of vmid {vmid}: the API answered {json.dumps(data)[:80]}, not a config",
                node=self.node,
            )
        return dict(data)


__all__ = ["EXECUTE_BATCH", "ConfigReader"]
