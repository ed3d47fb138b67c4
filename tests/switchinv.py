"""The one-switch inventory the switch tests share: sw1-msk1 (a lab SSH switch) and ded1 in site msk1."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipsinfra.lab.switches import IosSwitchServer

ENV_SECRET = "{env: IPSINFRA_TEST_SW_PW}"


def switch_inventory(tmp_path: Path, srv: IosSwitchServer, *, ded1: str, secret: str = ENV_SECRET) -> Path:
    """``tmp_path/inventory``: sw1-msk1 at ``srv`` (its host key pinned); ded1's host_vars are ``ded1``."""
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    sites:\n      children:\n        msk1:\n          hosts:\n"
        "            sw1-msk1:\n            ded1:\n    switches:\n      hosts:\n        sw1-msk1:\n"
        "    dedicated:\n      hosts:\n        ded1:\n"
    )
    (inv / "group_vars" / "msk1.yml").write_text("ipsinfra_site:\n  dc: lab-dc\n")
    (inv / "host_vars" / "sw1-msk1.yml").write_text(
        f"ansible_host: 127.0.0.1\nansible_port: {srv.port}\nansible_user: netops\n"
        f"platform: cisco_ios\nsecret: {secret}\n"
        f"ssh_known_hosts: {srv.known_hosts}\n"
    )
    (inv / "host_vars" / "ded1.yml").write_text(ded1)
    return inv
