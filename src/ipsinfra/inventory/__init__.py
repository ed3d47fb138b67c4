"""The fleet as an Ansible YAML inventory (``inventory/<name>/``) -> models, and back.

One inventory serves both Ansible and this library. Layout (see
``inventory/example/hosts.yml`` for the commented original):

- ``hosts.yml``: groups ``sites`` (children: one group per site, holding that
  site's nodes, switches and dedicated servers), ``nodes`` (children
  ``libvirt_nodes``, ``proxmox_nodes``), ``switches``, ``vds``, ``dedicated``.
- A VDS is an Ansible host named by its DNS-safe twin (``VPS1001-113-10``);
  its house name (``VPS1001(113.10)``, §8.5) is the ``vds_name`` variable.
- ``group_vars/<site>.yml``: ``ipsinfra_site:`` (dc, own_network, ...).
- ``group_vars/all/clients.yml``: ``ipsinfra_clients:`` keyed by client id.
- ``host_vars/<host>.yml``: a host's fields, flat, named as in
  :mod:`ipsinfra.models` (``main_ip``, ``kind``, ``cpus``...). Ansible's own
  ``ansible_host``/``ansible_port``/``ansible_user`` fill the SSH address,
  port and user; a dedicated server's switch port is ``switch_port``.

Variables merge the way Ansible merges them (all < parent group < child group
< host; inventory-file vars < ``group_vars/`` < ``host_vars/``), in pure Python
with ``yaml.safe_load`` semantics: no Ansible import, no side effects.
Secrets are references only (``{env: NAME}``, ``{file: path}``, a Jinja
template or an ``!vault`` value); a literal secret is refused without being
echoed.

One job per module: :mod:`.yamlfile` reads one YAML file, :mod:`.tree` merges
group and host vars, :mod:`.reading` reads a directory, :mod:`.records` and
:mod:`.assemble` check records into a :class:`Fleet` (:mod:`.fleet`),
:mod:`.layout` converts plain data and dumps a fresh inventory,
:mod:`.writeback` edits an existing inventory after a change to the fleet
(:mod:`.yamledit` splices YAML text, :mod:`.atomic` locks and writes), and
:mod:`.sync` brings it in line with what the nodes report (``inventory sync``);
:mod:`.reference` writes docs/inventory.md, every field of every record, from the models.
Which inventory a command reads when it is not given one is
:func:`resolve_inventory`'s (:mod:`ipsinfra.inventory_source`): no default.

    >>> fleet = load("inventory/example")  # doctest: +SKIP
    >>> fleet.node_of("VPS1001(113.10)").name  # doctest: +SKIP
    'kvm1'
"""

from __future__ import annotations

from ipsinfra.inventory.fleet import Fleet, InventoryGroup
from ipsinfra.inventory.layout import dump, fleet_to_dict, load_dict
from ipsinfra.inventory.literal_secrets import SECRET_KEY_RE
from ipsinfra.inventory.reading import host_vars, load
from ipsinfra.inventory.writeback import InventoryChange, WriteBackError, commit_change, write_back
from ipsinfra.inventory.yamlfile import VaultedValue
from ipsinfra.inventory_source import resolve_inventory

__all__ = [
    "SECRET_KEY_RE",
    "Fleet",
    "InventoryChange",
    "InventoryGroup",
    "VaultedValue",
    "WriteBackError",
    "commit_change",
    "dump",
    "fleet_to_dict",
    "host_vars",
    "load",
    "load_dict",
    "resolve_inventory",
    "write_back",
]
