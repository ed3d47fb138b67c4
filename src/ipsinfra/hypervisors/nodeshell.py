"""One shell script run on a node over SSH, and the bulk domain listing built on it.

libvirt's RPC protocol has no bulk call for domain XML: listing N domains
remotely costs N ``XMLDesc`` round trips. Run on the node itself, ``virsh``
reaches libvirtd over its local socket, so one SSH exec lists every domain
whatever their number (``Node.libvirt_listing = "ssh"``, B3).

The script is fed to ``sh -s`` on stdin (nothing of it on the command line);
its only variable part, the on-node libvirt URI, is ``shlex.quote``-d and
validated by the :class:`~ipsinfra.models.Node` model.
"""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
from dataclasses import dataclass

from ipsinfra.errors import HypervisorApiError, NodeUnreachable, OperationTimeout
from ipsinfra.models import Node

SSH = "ssh"
# virsh's command line takes ';'-separated commands; one argument stays far
# below Linux's 128 KiB per-argument limit at this many domains per virsh.
DOMAINS_PER_VIRSH = 300
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def ssh_argv(node: Node, *, timeout: float) -> list[str]:
    """``ssh`` to the node as the inventory says (key, known_hosts, port), batch mode."""
    argv = [
        SSH,
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={max(1, int(timeout))}",
        "-o",
        "ControlMaster=no",
        "-p",
        str(node.ssh_port),
        "-l",
        node.ssh_user,
    ]
    if node.ssh_key_file:
        argv += ["-i", node.ssh_key_file, "-o", "IdentitiesOnly=yes"]
    if node.ssh_known_hosts:
        argv += ["-o", f"UserKnownHostsFile={node.ssh_known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    return [*argv, "--", node.ssh_host or str(node.main_ip)]


def run_script(node: Node, script: str, *, what: str, timeout: float = 60.0) -> str:
    """Run ``script`` with ``sh -s`` on the node; its stdout. Errors name the node and ``what``."""
    try:
        done = subprocess.run(
            [*ssh_argv(node, timeout=timeout), "sh", "-s"],
            input=script.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OperationTimeout(f"{what}: no answer over SSH within {timeout:g} s", node=node.name) from None
    except OSError as exc:
        raise NodeUnreachable(f"{what}: cannot run ssh: {exc.strerror or exc}", node=node.name) from None
    err = done.stderr.decode(errors="replace").strip().splitlines()
    if done.returncode == 255:
        raise NodeUnreachable(f"{what}: SSH failed: {err[-1] if err else 'exit 255'}", node=node.name)
    if done.returncode != 0:
        raise HypervisorApiError(
            f"{what}: the script on the node exited {done.returncode}: {err[-1] if err else 'no message'}",
            node=node.name,
        )
    return done.stdout.decode(errors="replace")


def listing_script(uri: str, marker: str) -> str:
    """The on-node script: autostart UUIDs, then per domain its state and live XML.

    Output: ``<marker>-A <uuid>`` lines (autostart set), then for every domain
    ``<marker>-D <uuid>`` followed by ``virsh domstats --state`` and ``dumpxml``
    (virsh's ``echo`` ends without a newline; :func:`parse_listing` copes).
    A domain undefined meanwhile shows its marker and no XML.
    """
    u = shlex.quote(uri)
    return (
        "set -e\n"
        # Listing failures fail the script (exit 3). A domain that fails later
        # (undefined meanwhile) only lacks its XML: the caller asks libvirt for it.
        f"autostart=$(virsh -q -c {u} list --all --uuid --autostart) || exit 3\n"
        f"all=$(virsh -q -c {u} list --all --uuid) || exit 3\n"
        f"printf '%s\\n' \"$autostart\" | sed -e '/^$/d' -e 's/^/{marker}-A /'\n"
        f"printf '%s\\n' \"$all\" | sed -e '/^$/d' "
        f"-e 's/.*/echo {marker}-D &; domstats --state &; dumpxml &;/' "
        f"| xargs -r -d '\\n' -n {DOMAINS_PER_VIRSH} sh -c 'exec virsh -q -c \"$0\" \"$*\"' {u} || true\n"
    )


@dataclass(frozen=True)
class ListedDomain:
    uuid: str
    state: int | None
    reason: int | None
    xml: str | None


@dataclass(frozen=True)
class Listing:
    autostart: frozenset[str]
    domains: list[ListedDomain]


def parse_listing(text: str, marker: str) -> Listing:
    """Split :func:`listing_script`'s output. A domain without XML has ``xml`` None."""
    autostart = frozenset(
        m.group(1).lower() for m in re.finditer(rf"^{re.escape(marker)}-A ({_UUID})\s*$", text, re.M)
    )
    parts = re.split(rf"{re.escape(marker)}-D ({_UUID})", text)
    domains: list[ListedDomain] = []
    for uuid, body in zip(parts[1::2], parts[2::2], strict=True):
        state = re.search(r"^\s*state\.state=(\d+)\s*$", body, re.M)
        reason = re.search(r"^\s*state\.reason=(\d+)\s*$", body, re.M)
        start = body.find("<domain")
        end = body.rfind("</domain>")
        xml = body[start : end + len("</domain>")] if start >= 0 and end > start else None
        domains.append(
            ListedDomain(
                uuid=uuid.lower(),
                state=int(state.group(1)) if state else None,
                reason=int(reason.group(1)) if reason else None,
                xml=xml,
            )
        )
    return Listing(autostart=autostart, domains=domains)


def list_domains(node: Node, *, timeout: float = 60.0) -> Listing:
    """Every domain of a libvirt node in ONE SSH exec (virsh on the node)."""
    marker = f"@@ipsinfra-{secrets.token_hex(8)}"
    script = listing_script(node.libvirt_local_uri, marker)
    text = run_script(node, script, what="list domains", timeout=timeout)
    return parse_listing(text, marker)
