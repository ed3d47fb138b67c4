"""Secrets in the inventory (issue 18, smaller findings): no literal in disguise, no value echoed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ipsinfra.errors import InventoryError
from ipsinfra.inventory import load
from ipsinfra.inventory.literal_secrets import check_no_literal_secrets

CASES = Path(__file__).resolve().parents[1] / "data" / "inventories"


@pytest.mark.parametrize(
    "value",
    ["{{ vault_pve_token }}", "{{ lookup('env', 'PVE_TOKEN') }}", "{{ hostvars['x'].secret }}", ""],
)
def test_a_whole_template_expression_is_a_reference(value: str) -> None:
    check_no_literal_secrets({"password": value}, "f.yml", "sw1")


@pytest.mark.parametrize(
    "value",
    ["hunter2{{ '' }}", "{{ 'hunter2' }}", '{{ "hun" ~ "ter2" }}', "{{ a }}hunter2", "{{}}", "hunter2"],
)
def test_a_literal_in_disguise_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(InventoryError) as info:
        check_no_literal_secrets({"password": value}, "f.yml", "sw1")
    assert "sw1.password" in str(info.value)
    assert "hunter2" not in str(info.value) and "ter2" not in str(info.value)


def test_pwd_keys_are_secret_keys_too() -> None:
    with pytest.raises(InventoryError, match=r"sw1\.switch_pwd: a literal secret"):
        check_no_literal_secrets({"switch_pwd": "hunter2"}, "f.yml", "sw1")


def test_an_unknown_field_is_named_and_its_value_never_shown(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(CASES / "unknown_field", inv)
    node_file = inv / "host_vars" / "kvm1.yml"
    node_file.write_text(node_file.read_text().replace("main_IP: 203.0.113.11", "mgmt_ip: Zq8-t0ken-xK41"))
    with pytest.raises(InventoryError) as info:
        load(inv)
    message = str(info.value)
    assert message.startswith(f"{node_file}:") and "nodes.kvm1.mgmt_ip: unknown field" in message
    assert "Zq8-t0ken-xK41" not in message


def test_models_never_echo_an_unknown_fields_value() -> None:
    from ipsinfra.errors import InvalidInput
    from ipsinfra.models import Switch, build

    with pytest.raises(InvalidInput) as info:
        build(Switch, {"name": "sw1", "site": "msk1", "host": "192.0.2.1", "switch_pwd": "hunter2"})
    assert "switch_pwd" in str(info.value) and "hunter2" not in str(info.value)
