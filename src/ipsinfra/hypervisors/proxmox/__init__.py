"""Proxmox VE backend: :class:`ProxmoxDriver` over proxmoxer's HTTPS API.

The package, by concern: :mod:`.api` (login, error translation, secret
redaction, task waiting), :mod:`.parse` (pure: PVE answers -> models),
:mod:`.listing` (every VM's config in bounded calls, none dropped silently),
:mod:`.driver` (the driver: reads and writes).

Choices, and why:

* **Names.** PVE's ``name`` is a dns-name, so a VM is named by the DNS-safe
  twin (``VPS1234-34-56``); the house name lives in the ``description`` as a
  line ``ipsinfra-name: VPS1234(34.56)`` (other description text is kept).
  Rename changes both in one config write.
* **vCPUs.** Configured vCPUs = ``vcpus`` when set, else ``cores * sockets``.
  We write ``cores=<n>, sockets=1`` and drop ``vcpus``; ``affinity`` (PVE 7.3+)
  is the cpuset.
* **VNC.** PVE has no per-VM VNC listen address (its own console is a unix
  socket behind vncproxy), so the listen address is what PVE admins do by
  hand: ``args: -vnc <addr>:<display>`` with display = vmid by default (port
  5900 + vmid). Other ``args`` text is kept. On a real cluster ``args`` can
  only be written by ``root@pam`` (ticket, or a root token without privilege
  separation).
* **Listing in bounded calls** (:mod:`.listing`): ``POST /nodes/{node}/execute``
  reads every config in one request (root only); a refused or odd answer
  falls back to one call per VM, and a VM is left out only on PVE's own
  "does not exist" for it. ``ex_listing_mode`` / ``ex_listing_reason`` say which.
* **Tasks.** Every UPID is waited on with a deadline; a timeout raises
  :class:`OperationTimeout` and a non-OK exit status raises
  :class:`HypervisorApiError` naming the step.

What real PVE does with a change to a running VM (read in qemu-server,
pve-guest-common and pve-manager; the driver is written against this):

* ``GET /nodes/{node}/qemu/{vmid}/config`` returns the config **with pending
  values applied** unless ``current=1`` (qemu-server ``PVE/API2/Qemu.pm``
  ``vm_config`` -> pve-guest-common ``PVE/AbstractConfig.pm``
  ``load_current_config``). So :meth:`ProxmoxDriver.get_vds` and the listing
  read ``current=1`` (what runs); :meth:`ProxmoxDriver.ex_configured` reads
  ``GET .../pending`` (``vm_pending``) for what the next start will use.
  fakepve 0.5 returns current values whatever ``current`` says; the lab's
  fakepve (:mod:`ipsinfra.lab.pve`) follows PVE.
* ``PUT .../config`` on a running VM writes every change to the pending
  section, then ``vmconfig_hotplug_pending`` (``PVE/QemuServer.pm``) applies
  what can be hot-plugged; ``args`` is not among those options (nor
  ``affinity`` or ``cores``): it stays pending (``die "skip\\n"; # skip
  non-hot-pluggable options``). On a stopped VM ``vmconfig_apply_pending``
  applies it at once.
* A **live migration** starts the target QEMU with ``qm start --migratedfrom
  <src> --stateuri tcp|unix`` (``PVE/QemuMigrate.pm``, ``phase2`` /
  ``start_remote_vm``); ``vm_start_nolock`` applies pending changes only
  ``if (!$statefile && !$resume ...)``, so with a state URI they stay
  pending, and ``config_to_command`` builds the command line, ``args``
  included, from the current values. The config file moves with its pending
  section. So after a live migration the target QEMU listens for VNC where
  the SOURCE's ``args`` said (that address must exist on the target too, or
  its QEMU cannot bind and the migration fails); the new address takes
  effect at the next **cold start** (a stop and a start by PVE, which runs
  ``vmconfig_apply_pending``; a reboot from inside the guest keeps the same
  QEMU). An offline migration of a stopped VM has nothing pending: the
  address written on the target is the one the next start uses.
* Consequence for §9.10: a migration writes the target's VNC address and
  verifies it in the pending configuration; where the running QEMU still has
  the old one, the result carries a warning ("takes effect at the next cold
  start"), not a mismatch. The driver cannot verify which address a running
  QEMU listens on (PVE's API does not expose QEMU's VNC server).
* ``POST /nodes/{node}/execute`` (pve-manager ``PVE/API2/Nodes.pm``,
  ``execute``) takes ``commands``, a JSON array of ``{path, method, args?}``
  (``$verify_command_item_desc``), and answers ``{status: 200, data}`` or
  ``{status, message, errors?}`` per command, in order.
* A VM without a config on the node answers HTTP 500 ``Configuration file
  'nodes/<node>/qemu-server/<vmid>.conf' does not exist`` (pve-guest-common
  ``AbstractConfig.pm`` ``load_config``, path from qemu-server
  ``PVE/QemuConfig.pm`` ``cfs_config_path``).
"""

from __future__ import annotations

from ipsinfra.hypervisors.proxmox.api import ProxmoxQuorumLost, connect
from ipsinfra.hypervisors.proxmox.driver import DEFAULT_STORAGE, ProxmoxDriver
from ipsinfra.hypervisors.proxmox.listing import EXECUTE_BATCH
from ipsinfra.hypervisors.proxmox.parse import (
    HOUSE_TAG,
    IPS_TAG,
    house_name,
    parse_disk,
    parse_nic,
    parse_vm,
    parse_vnc,
    split_pending,
    with_meta,
)

__all__ = [
    "DEFAULT_STORAGE",
    "EXECUTE_BATCH",
    "HOUSE_TAG",
    "IPS_TAG",
    "ProxmoxDriver",
    "ProxmoxQuorumLost",
    "connect",
    "house_name",
    "parse_disk",
    "parse_nic",
    "parse_vm",
    "parse_vnc",
    "split_pending",
    "with_meta",
]
