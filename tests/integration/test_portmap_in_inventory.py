"""The port map file sits in the inventory folder, and Ansible leaves it alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from ipsinfra import inventory
from ipsinfra.models import SwitchPort
from ipsinfra.network.portmap import PortMap
from ipsinfra.network.portmap_file import map_file_path, read_port_map, write_port_map

REPO = Path(__file__).resolve().parents[2]


def test_ansible_inventory_ignores_the_port_map(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(REPO / "inventory" / "example", inv)
    pm = PortMap(
        ports=(SwitchPort(switch="sw1-msk1", port="Gi0/5", server="ded1", macs=["52:54:00:aa:00:01"]),)
    )
    path = map_file_path(inv, "msk1")
    assert write_port_map(path, pm, "msk1") is True
    assert write_port_map(path, pm, "msk1") is False  # unchanged: not rewritten
    assert read_port_map(path).ports[0].server == "ded1"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(inv), "--list"],
        cwd=REPO,  # the repo's ansible.cfg
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr and "switch_ports" not in proc.stderr
    listed = json.loads(proc.stdout)
    assert "ded1" in listed["_meta"]["hostvars"]
    assert set(inventory.load(inv).dedicated) == {"ded1", "ded2"}
