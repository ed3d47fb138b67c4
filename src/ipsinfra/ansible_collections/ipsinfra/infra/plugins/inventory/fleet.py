# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Inventory plugin ipsinfra.infra.fleet: every VDS of every node, as the hypervisors report them."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet
short_description: Every VDS of the fleet (Proxmox VE and libvirt alike) as Ansible hosts
description:
  - Reads the static ipsinfra inventory (nodes, sites, the VDS records), asks every node's hypervisor which
    VDS it runs (Proxmox over its API, libvirt over its URI, concurrently) and lists each VDS as a host.
  - Host names are the DNS-safe twin of the house name (C(VPS1001-113-10)); the house name itself
    (C(VPS1001(113.10))) is the C(vds_name) variable, since parentheses are awkward in host patterns.
  - "Host variables: C(vds_name), C(node), C(site), C(hypervisor), C(ips), C(vds_state), C(blocked),
    C(trial_end), C(vcpus), C(cpuset), C(memory_mib), C(autostart), C(client), C(os), C(backend_id),
    C(in_inventory), and C(ansible_connection=local) (a VDS's tasks run on the controller)."
  - "Groups: C(vds); C(site_<site>); C(node_<node>); the state (C(running), C(stopped), C(paused)...);
    C(blocked); C(trial) (a trial end date is set) and C(trial_expired); C(not_in_inventory) for a VDS
    a hypervisor reports that the static inventory does not list."
  - A node that does not answer gives a warning; its VDS are listed from the static inventory with
    C(vds_state=unknown) in group C(unknown), so one dead node never hides the rest.
  - The config file name must end in C(fleet.yml), C(fleet.yaml), C(ipsinfra.yml) or C(ipsinfra.yaml).
author: ipsinfra maintainers (@ipsinfra)
version_added: "0.1.0"
requirements:
  - the C(ipsinfra) Python package on the controller
extends_documentation_fragment:
  - ansible.builtin.inventory_cache
  - ansible.builtin.constructed
options:
  plugin:
    description: The name of this plugin.
    required: true
    type: str
    choices: [ipsinfra.infra.fleet]
  inventory:
    description:
      - The static ipsinfra inventory directory, absolute, or relative to the folder of this config file
        (not to the current directory), so a config checked into an AWX project works from any directory.
      - C(~) is expanded.
    required: true
    type: str
  nodes:
    description: Only ask these nodes (default every node of the static inventory).
    type: list
    elements: str
  timeout:
    description: Seconds a node may take to list its VDS.
    type: float
    default: 60
  today:
    description: The date trials are compared with for C(trial_expired) (YYYY-MM-DD); today when omitted.
    type: str
"""

EXAMPLES = r"""
# fleet.yml
plugin: ipsinfra.infra.fleet
inventory: example          # the static inventory directory beside this file
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ipsinfra-fleet
cache_timeout: 300

# ansible -i fleet.yml 'node_kvm1:&running' --list-hosts
# ansible-inventory -i fleet.yml --graph blocked
"""

import concurrent.futures  # noqa: E402
import datetime as dt  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from ansible.errors import AnsibleError, AnsibleParserError  # type: ignore[import-untyped]  # noqa: E402
from ansible.plugins.inventory import (  # type: ignore[import-untyped]  # noqa: E402
    BaseInventoryPlugin,
    Cacheable,
    Constructable,
)

CONFIG_SUFFIXES = ("fleet.yml", "fleet.yaml", "ipsinfra.yml", "ipsinfra.yaml")


def _lister(pool: Any, node: str) -> Callable[[], list[Any]]:
    def list_vds() -> list[Any]:
        result: list[Any] = pool.get(node).list_vds()
        return result

    return list_vds


def _host_record(vds: Any, record: Any, node: Any, state: str, today: dt.date) -> dict[str, Any]:
    from ipsinfra import naming
    from ipsinfra.audit.checks import facts_of

    facts = facts_of(vds, record, None)
    trial_end = facts.trial_end
    try:
        host = naming.pve_safe_name(vds.name)
    except ValueError:
        host = vds.name  # not a house name (a stray VM): listed as the hypervisor names it
    return {
        "host": host,
        "vars": {
            "vds_name": vds.name,
            "node": node.name,
            "site": node.site,
            "hypervisor": node.kind.value,
            "ips": [str(ip) for ip in (vds.ips or (record.ips if record is not None else []))],
            "vds_state": state,
            "blocked": facts.blocked,
            "trial_end": trial_end.isoformat() if trial_end else None,
            "trial_expired": bool(trial_end and trial_end < today),
            "vcpus": vds.vcpus,
            "cpuset": vds.cpuset,
            "memory_mib": vds.memory_mib,
            "autostart": vds.autostart,
            "client": vds.client or (record.client if record is not None else None),
            "os": vds.os or (record.os if record is not None else None),
            "backend_id": vds.backend_id,
            "in_inventory": record is not None,
            "ansible_connection": "local",
        },
    }


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):  # type: ignore[misc]
    NAME = "ipsinfra.infra.fleet"

    def verify_file(self, path: str) -> bool:
        return bool(super().verify_file(path)) and path.endswith(CONFIG_SUFFIXES)

    def _static_dir(self, path: str) -> str:
        # The option is a plain string on purpose: Ansible resolves a `type: path` option against
        # the current directory before the plugin sees it.
        target = os.path.expanduser(str(self.get_option("inventory")))
        if not os.path.isabs(target):
            target = os.path.join(os.path.dirname(os.path.abspath(path)), target)
        return os.path.normpath(target)

    def _fetch(self, static_dir: str) -> list[dict[str, Any]]:
        """Ask every node; one host record per VDS (JSON-safe, so it can be cached)."""
        try:
            from ipsinfra.errors import IpsinfraError
            from ipsinfra.hypervisors import DriverPool
            from ipsinfra.inventory import load
        except ImportError as exc:
            raise AnsibleError(f"ipsinfra.infra.fleet needs the ipsinfra package: {exc}") from exc
        try:
            fleet = load(static_dir)
        except IpsinfraError as exc:
            raise AnsibleParserError(f"ipsinfra.infra.fleet: {exc}") from exc
        wanted = self.get_option("nodes") or list(fleet.nodes)
        unknown = [n for n in wanted if n not in fleet.nodes]
        if unknown:
            raise AnsibleParserError(f"ipsinfra.infra.fleet: nodes: value {unknown[0]!r}: no such node")
        today_opt = self.get_option("today")
        today = dt.date.fromisoformat(str(today_opt)) if today_opt else dt.date.today()
        timeout = float(self.get_option("timeout"))
        hosts: list[dict[str, Any]] = []
        pool = DriverPool(fleet.nodes)
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(wanted) or 1)) as ex:
                futures = {ex.submit(_lister(pool, n)): n for n in wanted}
                listed: dict[str, list[Any]] = {}
                for fut, name in futures.items():
                    try:
                        listed[name] = fut.result(timeout=timeout)
                    except (IpsinfraError, concurrent.futures.TimeoutError) as exc:
                        why = str(exc) or "no answer within the timeout"
                        self.display.warning(f"ipsinfra.infra.fleet: node {name}: {why}; from the inventory")
        finally:
            pool.close()
        for name in wanted:
            node = fleet.nodes[name]
            if name in listed:
                for vds in listed[name]:
                    record = fleet.vds.get(vds.name)
                    hosts.append(_host_record(vds, record, node, vds.state.value, today))
            else:
                for record in fleet.vds_on(name):
                    hosts.append(_host_record(record, record, node, "unknown", today))
        return hosts

    def _populate(self, hosts: list[dict[str, Any]]) -> None:
        strict = self.get_option("strict")
        self.inventory.add_group("vds")
        for entry in hosts:
            host = entry["host"]
            hv = entry["vars"]
            self.inventory.add_host(host, group="vds")
            for key, value in hv.items():
                self.inventory.set_variable(host, key, value)
            groups = [
                f"site_{hv['site']}",
                f"node_{hv['node']}",
                hv["vds_state"],
            ]
            if hv["blocked"]:
                groups.append("blocked")
            if hv["trial_end"]:
                groups.append("trial")
            if hv["trial_expired"]:
                groups.append("trial_expired")
            if not hv["in_inventory"]:
                groups.append("not_in_inventory")
            for group in groups:
                safe = self._sanitize_group_name(group)
                self.inventory.add_group(safe)
                self.inventory.add_child(safe, host)
            # The constructed options (compose, groups, keyed_groups), as in every inventory plugin.
            self._set_composite_vars(self.get_option("compose"), hv, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hv, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hv, host, strict=strict)

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        static_dir = self._static_dir(path)
        cache_key = self.get_cache_key(path)
        # Ansible's inventory cache conventions: read when allowed, refresh on --flush-cache.
        use_cache = bool(self.get_option("cache")) and cache
        update_cache = bool(self.get_option("cache")) and not cache
        hosts: list[dict[str, Any]] | None = None
        if use_cache:
            try:
                hosts = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if hosts is None:
            hosts = self._fetch(static_dir)
        if update_cache:
            self._cache[cache_key] = hosts
        self._populate(hosts)
