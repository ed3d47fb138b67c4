"""The connection to a PVE cluster: login, error translation, secret redaction, task waiting.

Every proxmoxer/requests error is translated where it happens (:func:`edge`)
into ipsinfra's tree, naming the node and the step; a task (UPID) is waited
on with a deadline (:func:`wait_task`), never with proxmoxer's
``blocking_status`` (which returns None at its timeout).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import requests

from ipsinfra import redact
from ipsinfra.errors import (
    HypervisorApiError,
    InvalidInput,
    IpsinfraError,
    NodeUnreachable,
    OperationTimeout,
    VdsNotFound,
)
from ipsinfra.models import Node

if TYPE_CHECKING:
    from proxmoxer import ProxmoxAPI


class ProxmoxQuorumLost(HypervisorApiError):
    """The PVE cluster has no quorum: /etc/pve is read-only, changes and VM actions fail."""


# proxmoxer logs request data (cipassword, password) at INFO: every record goes
# through ipsinfra's one redactor (ipsinfra.redact), for a script importing this too.
redact.install()


def connect(node: Node, *, timeout: float = 30.0) -> ProxmoxAPI:
    """A proxmoxer ``ProxmoxAPI`` for ``node``: token auth when ``api_token_id`` is set, else a ticket.

    TLS is verified (against ``node.ca_file`` when set); ``node.verify_tls=False``
    is the only way to turn it off.
    """
    from proxmoxer import ProxmoxAPI

    host = re.sub(r"^https?://", "", node.uri).rstrip("/")
    user = node.api_user or "root@pam"
    if node.secret is None:
        raise InvalidInput(f"node {node.name}: secret: a Proxmox node needs a token or password reference")
    secret = node.secret.resolve(f"node {node.name}")
    verify: bool | str = (node.ca_file or True) if node.verify_tls else False
    kwargs: dict[str, Any] = {"user": user, "verify_ssl": verify, "timeout": timeout}
    if node.api_token_id:
        token_user, sep, token_name = node.api_token_id.rpartition("!")
        kwargs.update(token_name=token_name, token_value=secret, user=token_user if sep else user)
    else:
        kwargs["password"] = secret
    with edge(node.name, "connect", secret=secret):
        return ProxmoxAPI(host, **kwargs)


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def translate(exc: Exception, node: str, step: str, vds: str | None, secret: str | None) -> IpsinfraError:
    from proxmoxer.core import AuthenticationError, ResourceException

    if isinstance(exc, ResourceException):
        status = int(exc.status_code)
        text = _scrub(f"{exc.content} {exc.errors or ''}".strip(), secret)
        low = text.lower()
        if (
            status == 595
            or "no route to host" in low
            or "hostname lookup" in low
            or "no such cluster node" in low
        ):
            return NodeUnreachable(
                f"{step}: node does not answer through the cluster API ({status} {text})", node=node
            )
        if status == 404 or ("does not exist" in low and "configuration file" in low):
            return VdsNotFound(f"{step}: {vds or 'VM'}: no such VDS on the node ({status} {text})")
        if "no quorum" in low:
            return ProxmoxQuorumLost(
                f"{step}: cluster has no quorum, nothing changed ({status} {text})", node=node
            )
        return HypervisorApiError(f"{step}: API error {status}: {text}", node=node)
    if isinstance(exc, requests.exceptions.SSLError):
        return NodeUnreachable(
            f"{step}: TLS verification of the API failed: {_scrub(str(exc), secret)}", node=node
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return OperationTimeout(f"{step}: the API did not answer in time", node=node)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return NodeUnreachable(f"{step}: cannot connect to the API: {_scrub(str(exc), secret)}", node=node)
    if isinstance(exc, AuthenticationError):
        return HypervisorApiError(f"{step}: authentication failed: {_scrub(str(exc), secret)}", node=node)
    return HypervisorApiError(f"{step}: {type(exc).__name__}: {_scrub(str(exc), secret)}", node=node)


@contextlib.contextmanager
def edge(node: str, step: str, *, vds: str | None = None, secret: str | None = None) -> Iterator[None]:
    """Translate proxmoxer/requests errors into ipsinfra's, naming the node and the step.

    With ``secret`` set the secret is scrubbed from the message and the
    original exception is not chained (its text could carry the secret).
    """
    from proxmoxer.core import AuthenticationError, ResourceException

    try:
        yield
    except IpsinfraError:
        raise
    except (ResourceException, AuthenticationError, requests.exceptions.RequestException) as exc:
        err = translate(exc, node, step, vds, secret)
        if secret:
            raise err from None
        raise err from exc


def config_missing(exc: BaseException, pve_node: str, vmid: int) -> bool:
    """True when ``exc`` is PVE's own answer that VM ``vmid`` has no config on ``pve_node``.

    ``PVE::AbstractConfig::load_config`` (pve-guest-common) dies with
    ``Configuration file 'nodes/<node>/qemu-server/<vmid>.conf' does not exist``
    (the path from ``PVE::QemuConfig::cfs_config_path``); the API answers it
    with HTTP 500. Nothing else (a 404 from a proxy, another VM's file, a
    timeout) proves the VM is gone.
    """
    from proxmoxer.core import ResourceException

    if not isinstance(exc, ResourceException) or int(exc.status_code) != 500:
        return False
    wanted = f"Configuration file 'nodes/{pve_node}/qemu-server/{vmid}.conf' does not exist"
    return wanted in f"{exc.content} {exc.errors or ''}"


def wait_task(
    api: ProxmoxAPI,
    upid: Any,
    step: str,
    *,
    node: str,
    timeout: float,
    poll_interval: float,
) -> None:
    """Wait for a task to stop; raise OperationTimeout at the deadline, HypervisorApiError unless OK."""
    if not isinstance(upid, str) or not upid.startswith("UPID:"):
        raise HypervisorApiError(f"{step}: expected a task id (UPID), got {upid!r}", node=node)
    task_node = upid.split(":")[1]
    deadline = time.monotonic() + timeout
    while True:
        with edge(node, f"{step} (task status)"):
            status = api.nodes(task_node).tasks(upid).status.get()
        if status.get("status") == "stopped":
            exit_status = str(status.get("exitstatus") or "")
            if exit_status == "OK" or exit_status.startswith("WARNINGS"):
                return
            raise HypervisorApiError(
                f"{step}: task {status.get('type', '?')} failed: {exit_status or 'no exit status'} ({upid})",
                node=node,
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OperationTimeout(f"{step}: task {upid} still running after {timeout:g} s", node=node)
        time.sleep(min(poll_interval, remaining))
