"""docs/inventory.md: generated from the models, in sync, complete, and enough to write an inventory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from ipsinfra.inventory import load
from ipsinfra.inventory.reference import SECTIONS, inventory_key, main, render
from ipsinfra.models import (
    Client,
    DedicatedServer,
    DirectBootSpec,
    Disk,
    Nic,
    Node,
    SecretRef,
    Site,
    Switch,
    Vds,
)

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "inventory.md"
# Every model an inventory holds, named here on purpose (not taken from SECTIONS).
INVENTORY_MODELS: tuple[type[BaseModel], ...] = (
    Site,
    Node,
    DirectBootSpec,
    SecretRef,
    Switch,
    Vds,
    Disk,
    Nic,
    DedicatedServer,
    Client,
)


def test_the_checked_in_doc_is_the_generators_output() -> None:
    assert DOC.is_file(), "docs/inventory.md is missing; run: python -m ipsinfra.inventory.reference"
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/inventory.md is out of date with src/ipsinfra/models.py; "
        "run: python -m ipsinfra.inventory.reference"
    )


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_field_of_every_model_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert {s.model for s in SECTIONS} == set(INVENTORY_MODELS)
    for section in SECTIONS:
        body = _section(text, section.title)
        rows = [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("| Key ")]
        assert len(rows) == len(section.model.model_fields), section.title
        for name, info in section.model.model_fields.items():
            key = inventory_key(section, name)
            shown = key if key.startswith("(") else f"`{key}`"
            row = next((r for r in rows if r.startswith(f"| {shown} ")), None)
            assert row is not None, f"{section.title}: field {name} (key {key}) is not in docs/inventory.md"
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
            assert len(cells) == 7, row
            assert cells[2] == ("**yes**" if info.is_required() else "no"), row
            # every field says what it is and shows a value
            assert info.description and cells[6], f"{section.model.__name__}.{name}: no description"
            assert info.examples and cells[4], f"{section.model.__name__}.{name}: no example"


def test_the_questions_of_issue_20_are_answered_in_the_fields() -> None:
    node, switch = Node.model_fields, Switch.model_fields
    assert "root@pam!pg" in (node["api_token_id"].description or "")
    assert "https://" in (node["uri"].description or "")
    assert "reboot" in (node["ssh_host"].description or "")
    assert "`linux`" in (switch["platform"].description or "")
    assert "ansible_ssh_private_key_file" in (switch["ssh_key_file"].description or "")
    text = DOC.read_text(encoding="utf-8")
    node_doc = _section(text, "Node")
    libvirt = node_doc[node_doc.index("### libvirt nodes") : node_doc.index("### Proxmox nodes")]
    proxmox = node_doc[node_doc.index("### Proxmox nodes") :]
    assert "`password_method`" in libvirt and "`direct_boot`" in libvirt
    assert "`api_token_id`" in proxmox and "`ca_file`" in proxmox and "`password_method`" not in proxmox


def test_an_inventory_written_from_the_doc_alone_loads(tmp_path: Path) -> None:
    """The doc's YAML examples, put where the doc says, make an inventory the loader accepts."""
    text = DOC.read_text(encoding="utf-8")

    def example(title: str) -> dict[str, object]:
        body = _section(text, title)
        block = body[body.index("```yaml\n") + 8 :]
        data = yaml.safe_load(block[: block.index("```")])
        assert isinstance(data, dict)
        return data

    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    site, node, switch = example("Site"), example("Node"), example("Switch")
    vds, dedicated, client = example("VDS"), example("Dedicated server"), example("Client")
    node_name, switch_name, vds_host = vds["node"], dedicated["switch"], "VPS1001-113-10"
    hosts = {
        "all": {
            "children": {
                "sites": {
                    "children": {"msk1": {"hosts": {node_name: None, switch_name: None, "ded1": None}}}
                },
                "nodes": {"children": {"libvirt_nodes": {"hosts": {node_name: None}}}},
                "switches": {"hosts": {switch_name: None}},
                "vds": {"hosts": {vds_host: None}},
                "dedicated": {"hosts": {"ded1": None}},
            }
        }
    }
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (inv / "group_vars" / "msk1.yml").write_text(yaml.safe_dump({"ipsinfra_site": site}))
    (inv / "group_vars" / "all" / "clients.yml").write_text(
        yaml.safe_dump({"ipsinfra_clients": {dedicated["client"]: client}})
    )
    for host, data in ((node_name, node), (switch_name, switch), (vds_host, vds), ("ded1", dedicated)):
        (inv / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(data))
    fleet = load(inv)
    assert fleet.switches[str(switch_name)].ssh_key_file == switch["ansible_ssh_private_key_file"]
    assert fleet.dedicated["ded1"].port == dedicated["switch_port"]
    assert fleet.vds["VPS1001(113.10)"].node == node_name


def test_check_mode_names_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "inventory.md"
    stale.write_text("old\n")
    assert main([str(stale), "--check"]) == 1
    assert "python -m ipsinfra.inventory.reference" in capsys.readouterr().err
    assert stale.read_text() == "old\n"  # --check writes nothing
    assert main([str(stale)]) == 0
    assert stale.read_text() == render()
    assert main([str(stale), "--check"]) == 0
