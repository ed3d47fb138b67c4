"""A secret variable that is not set: the error names the host, the variable and the field,
and the audit files it as a configuration finding, not a §1.4 outage (issue #20)."""

from __future__ import annotations

import pickle
import socket
from typing import Any

import pytest

from ipsinfra import outage
from ipsinfra.audit import Priority, to_markdown
from ipsinfra.audit.run import run as audit_run
from ipsinfra.errors import InvalidInput, SecretMissing
from ipsinfra.hypervisors import DriverPool
from ipsinfra.hypervisors.proxmox.api import connect
from ipsinfra.inventory import load_dict
from ipsinfra.models import SecretRef, Switch
from ipsinfra.network.switches import SwitchCredentials, collect

GONE = "IPSINFRA_TEST_PVE1_TOKEN_UNSET"
SET = "IPSINFRA_TEST_PVE2_TOKEN"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fleet_data() -> dict[str, Any]:
    port = closed_port()  # pve2 is configured right but does not answer
    pve: dict[str, Any] = {"site": "fra1", "kind": "proxmox", "cpus": 8, "api_token_id": "root@pam!pg"}
    return {
        "sites": {"fra1": {"dc": "Example DC Frankfurt"}},
        "clients": {"c1": {"name": "Beispiel GmbH", "email": "it@c1.example"}},
        "nodes": {
            "pve1": {**pve, "main_ip": "198.51.100.30", "uri": f"127.0.0.1:{port}", "secret": {"env": GONE}},
            "pve2": {**pve, "main_ip": "198.51.100.31", "uri": f"127.0.0.1:{port}", "secret": {"env": SET}},
        },
        "vds": {
            "VPS1005(100.30)": {
                "node": "pve1",
                "vcpus": 1,
                "memory_mib": 512,
                "client": "c1",
                "autostart": True,
            },
            "VPS1007(100.31)": {
                "node": "pve2",
                "vcpus": 1,
                "memory_mib": 512,
                "client": "c1",
                "autostart": True,
            },
        },
    }


def test_the_error_names_the_host_the_variable_and_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GONE, raising=False)
    fleet = load_dict(fleet_data())
    with pytest.raises(SecretMissing) as caught:
        connect(fleet.nodes["pve1"])
    assert str(caught.value) == f"node pve1: environment variable {GONE} (secret) is not set"
    assert isinstance(caught.value, InvalidInput)  # bad input: the CLI exits 2
    assert (caught.value.owner, caught.value.field) == ("node pve1", "secret")
    again = pickle.loads(pickle.dumps(caught.value))  # crosses the audit's worker processes intact
    assert (str(again), again.owner, again.reference) == (str(caught.value), "node pve1", f"env {GONE}")
    # a reference alone, with nobody to name, says as much as it knows (as before)
    with pytest.raises(SecretMissing, match=f"secret: environment variable '{GONE}' is not set"):
        SecretRef(env=GONE).resolve()


def test_a_switch_secret_names_the_switch(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv(GONE, raising=False)
    sw = Switch(name="sw1-msk1", site="msk1", host="127.0.0.1", port=closed_port(), platform="cisco_ios",
                secret=SecretRef(env=GONE))  # fmt: skip
    with pytest.raises(
        SecretMissing, match=f"^switch sw1-msk1: environment variable {GONE} \\(secret\\) is not set$"
    ):
        SwitchCredentials.for_switch(sw)
    report = collect([sw], timeout=2)
    result = report.results["sw1-msk1"]
    assert not result.ok and f"switch sw1-msk1: environment variable {GONE} (secret)" in (result.reason or "")
    # a file reference that cannot be read names the switch and the file too
    missing = sw.model_copy(update={"secret": SecretRef(file=str(tmp_path / "absent"))})
    with pytest.raises(SecretMissing, match=r"^switch sw1-msk1: file '.*absent' \(secret\) cannot be read"):
        SwitchCredentials.for_switch(missing)


def test_the_audit_files_it_as_configuration_not_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GONE, raising=False)
    monkeypatch.setenv(SET, "00000000-0000-0000-0000-000000000000")
    fleet = load_dict(fleet_data())
    with DriverPool(fleet.nodes) as pool:
        report = audit_run(fleet, pool, reach=False, recheck_delay=0.0, node_timeout=10, processes=1)
    by_node = {n.node: n for n in report.nodes}

    misconfigured = by_node["pve1"]
    assert misconfigured.config_error == f"node pve1: environment variable {GONE} (secret) is not set"
    (finding,) = misconfigured.findings
    assert (finding.check, finding.priority, finding.target) == (
        "node_config",
        Priority.CONFIGURATION,
        "pve1",
    )
    assert GONE in finding.message and "pve1" in finding.message
    assert "notify" not in finding.action and "client" not in finding.action
    assert finding.rule != "§5.1"

    down = by_node["pve2"]  # a real outage stays one
    assert [(f.check, f.priority) for f in down.findings] == [("node_reachable", Priority.SERVICE_DOWN)]
    assert report.exit_code == 1

    text = to_markdown(report)
    config_at = text.index("### Configuration: nodes not checked (not a §1.4 priority)")
    assert config_at < text.index("### 1. service down (§1.4)")
    section_1 = text[text.index("### 1. service down") :]
    assert "pve1" not in section_1 and "pve2" in section_1
    assert "Not checked (configuration): pve1." in text

    notes = outage.notices(report, fleet, None)
    assert [i.node for i in notes.opened] == ["pve2"]  # no incident, no client notice for pve1
    assert [(n.nodes, n.services) for n in notes.notices] == [(["pve2"], ["VPS1007(100.31)"])]
    assert not any("pve1" in line for line in notes.handover)
