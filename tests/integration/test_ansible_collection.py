"""The ipsinfra.infra collection: ansible-doc on every plugin, ansible-lint on the playbooks,
the switch-port map playbook against an in-process SSH switch, and the AWX execution environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import ipsinfra
from ipsinfra import playbooks
from ipsinfra.lab.switches import IosSwitchServer, IosSwitchState

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
COLLECTIONS = Path(ipsinfra.__file__).resolve().parent
COLLECTION = COLLECTIONS / "ansible_collections" / "ipsinfra" / "infra"
MODULES = [
    "vds_provision",
    "vds_migrate",
    "node_audit",
    "switch_port_map",
    "server_block",
    "vds_resize",
    "abuse_watch",
]
PLAYBOOKS = ["provision_vds", "migrate_vds", "node_audit", "switch_port_map", "block_server", "resize_vds"]


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def tool(*argv: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        env=ansible_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


# --- documentation ---------------------------------------------------------------
@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_shows_every_option_and_return_value(module: str) -> None:
    done = tool("ansible-doc", f"ipsinfra.infra.{module}")
    assert done.returncode == 0, done.stderr
    assert "[WARNING]" not in done.stderr and "[ERROR]" not in done.stderr, done.stderr
    out = done.stdout
    assert f"ipsinfra.infra.{module}" in out
    for section in ("OPTIONS", "EXAMPLES", "RETURN VALUES", "ATTRIBUTES"):
        assert section in out, section
    for option in ("inventory", "journal"):  # from the shared doc fragment
        assert option in out
    # Every option the module accepts is documented, and nothing else.
    spec = tool("ansible-doc", "--json", f"ipsinfra.infra.{module}")
    assert spec.returncode == 0, spec.stderr
    documented = set(yaml.safe_load(spec.stdout)[f"ipsinfra.infra.{module}"]["doc"]["options"])
    source = (COLLECTION / "plugins" / "modules" / f"{module}.py").read_text()
    accepted = {
        line.strip().split('"')[1]
        for line in source.split("def _argument_spec")[1].split("\n\n")[0].splitlines()
        if line.strip().startswith('"') and '": {' in line
    }
    assert accepted | {"inventory", "journal", "journal_password_file"} == documented


def test_ansible_doc_lists_the_collection_and_the_inventory_plugin() -> None:
    listed = tool("ansible-doc", "-l", "ipsinfra.infra")
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split()[0] for line in listed.stdout.splitlines() if line.strip()) == sorted(
        f"ipsinfra.infra.{m}" for m in MODULES
    )
    plugin = tool("ansible-doc", "-t", "inventory", "ipsinfra.infra.fleet")
    assert plugin.returncode == 0, plugin.stderr
    for option in ("inventory", "cache_plugin", "keyed_groups", "nodes"):
        assert option in plugin.stdout


def test_secret_options_are_no_log() -> None:
    for module, secret in (
        ("vds_provision", "password"),
        ("switch_port_map", "password"),
        ("server_block", "switch_password"),
    ):
        source = (COLLECTION / "plugins" / "modules" / f"{module}.py").read_text()
        assert f'"{secret}": {{"type": "str", "no_log": True}}' in source, module
    # A file that holds (or will hold) a secret is a path: visible, and said so (no "did not set no_log").
    source = (COLLECTION / "plugins" / "modules" / "vds_provision.py").read_text()
    assert '"password_file": {"type": "path", "no_log": False}' in source


# --- Galaxy -------------------------------------------------------------------------
HANDLE = re.compile(r"^[^()]+ \(@[A-Za-z0-9-]+\)$")


def plugin_files() -> list[Path]:
    return sorted(p for p in (COLLECTION / "plugins").rglob("*.py") if "__pycache__" not in p.parts)


def test_the_collection_is_licensed_and_its_metadata_is_galaxy_ready() -> None:
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert galaxy["authors"] and all(HANDLE.match(a) for a in galaxy["authors"]), galaxy["authors"]
    assert galaxy["license"] == ["GPL-3.0-or-later"]
    for key in ("repository", "issues"):
        assert galaxy[key].startswith("https://") and "invalid" not in galaxy[key], key
    licence = (COLLECTION / "LICENSE").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in licence and "Version 3" in licence
    for plugin in plugin_files():
        head = plugin.read_text().splitlines()[:5]
        assert "# SPDX-License-Identifier: GPL-3.0-or-later" in head, plugin.name
    for module in MODULES:
        doc = tool("ansible-doc", "--json", f"ipsinfra.infra.{module}")
        assert doc.returncode == 0, doc.stderr
        meta = yaml.safe_load(doc.stdout)[f"ipsinfra.infra.{module}"]["doc"]
        authors = meta["author"] if isinstance(meta["author"], list) else [meta["author"]]
        assert all(HANDLE.match(a) for a in authors), (module, authors)
        assert {"check_mode", "diff_mode", "platform"} <= set(meta["attributes"]), module
        assert all("support" in a for a in meta["attributes"].values()), module
    changelog = yaml.safe_load((COLLECTION / "changelogs" / "changelog.yaml").read_text())
    assert galaxy["version"] in changelog["releases"] or any(
        (COLLECTION / "changelogs" / "fragments").glob("*.y*ml")
    )
    assert (COLLECTION / "CHANGELOG.md").is_file()


def test_the_readme_lists_every_plugin_and_its_links_work_in_the_installed_collection() -> None:
    readme = (COLLECTION / "README.md").read_text()
    for module in MODULES:
        assert f"`ipsinfra.infra.{module}`" in readme, module
    assert "`ipsinfra.infra.fleet`" in readme
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert targets
    for target in targets:
        if "://" in target or target.startswith("#"):
            continue
        # Relative links must stay inside the collection: that is all an installed copy has.
        resolved = (COLLECTION / target).resolve()
        assert resolved.is_relative_to(COLLECTION) and resolved.exists(), target


# --- lint ---------------------------------------------------------------------------
@pytest.mark.slow
def test_ansible_lint_production_profile_passes_offline() -> None:
    done = tool("ansible-lint", "--offline", "--profile", "production", "playbooks/", cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in (done.stdout + done.stderr)


@pytest.mark.parametrize("book", PLAYBOOKS)
def test_every_playbook_passes_syntax_check(book: str) -> None:
    done = tool("ansible-playbook", "--syntax-check", "-i", "localhost,", f"playbooks/{book}.yml", cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


# --- AWX execution environment ----------------------------------------------------
def test_execution_environment_is_ansible_builder_v3() -> None:
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    assert isinstance(ee["images"]["base_image"]["name"], str) and ee["images"]["base_image"]["name"]
    deps = ee["dependencies"]
    assert set(deps) <= {
        "python",
        "galaxy",
        "system",
        "ansible_core",
        "ansible_runner",
        "python_interpreter",
        "exclude",
    }
    assert deps["python"] == "requirements.txt"
    assert deps["galaxy"] == "requirements.yml"
    assert (REPO / deps["python"]).is_file() and (REPO / deps["galaxy"]).is_file()
    if "system" in deps:
        assert (REPO / deps["system"]).is_file()
    assert "package_pip" in deps["ansible_core"] and "package_pip" in deps["ansible_runner"]
    assert set(ee).issubset({"version", "images", "dependencies", "additional_build_steps",
                             "additional_build_files", "build_arg_defaults", "options"})  # fmt: skip
    galaxy = yaml.safe_load((REPO / "requirements.yml").read_text())
    assert galaxy["collections"] == [] or all("name" in c for c in galaxy["collections"])
    python_reqs = (REPO / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("ipsinfra") for line in python_reqs)


def test_the_collection_metadata_is_complete() -> None:
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("ipsinfra", "infra")
    runtime = yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"].startswith(">=2.19")
    assert sorted(runtime["action_groups"]["ipsinfra"]) == sorted(MODULES)


# --- the switch-port map playbook against an SSH switch ------------------------------
PASSWORD = "lab-switch-pw-7c2d"
DED1 = "52:54:00:aa:00:01"
VPS1001 = "52:54:00:10:01:01"


@pytest.fixture
def switch() -> Iterator[IosSwitchServer]:
    state = IosSwitchState(hostname="sw1-msk1", ports=[f"Gi0/{i}" for i in range(1, 9)] + ["Gi0/24"])
    state.learn(DED1, "Gi0/5")
    state.learn(VPS1001, "Gi0/7")
    with IosSwitchServer(state, username="netops", password=PASSWORD) as server:
        yield server


@pytest.fixture
def inventory(switch: IosSwitchServer, tmp_path: Path) -> Path:
    inv = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory" / "example", inv)
    secret = tmp_path / "sw1.pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    (inv / "host_vars" / "sw1-msk1.yml").write_text(
        yaml.safe_dump(
            {
                "ansible_host": switch.host,
                "ansible_port": switch.port,
                "ansible_user": "netops",
                "platform": "cisco_ios",
                "secret": {"file": str(secret)},
                "ssh_known_hosts": str(switch.known_hosts),
            }
        )
    )
    return inv


def run_portmap(inventory: Path, kept: Path, *, check: bool = False) -> playbooks.PlaybookResult:
    return playbooks.run(
        "switch_port_map",
        inventory,
        extravars={"portmap_switches": ["sw1-msk1"], "portmap_timeout": 10},
        check=check,
        diff=True,
        keep_artifacts=kept,
        timeout=180,
    )


def stdout(kept: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(kept.rglob("stdout")))


@pytest.mark.slow
def test_switch_port_map_playbook_check_write_rerun(
    switch: IosSwitchServer, inventory: Path, tmp_path: Path
) -> None:
    map_file = inventory / "switch_ports.msk1.yml"

    checked = run_portmap(inventory, tmp_path / "a1", check=True)
    assert checked.ok, stdout(tmp_path / "a1")
    assert checked.hosts["localhost"].changed == 1
    assert not map_file.exists()
    assert "+  switch: sw1-msk1" in stdout(tmp_path / "a1") or "ded1" in stdout(tmp_path / "a1")

    first = run_portmap(inventory, tmp_path / "a2")
    assert first.ok, stdout(tmp_path / "a2")
    assert first.hosts["localhost"].changed == 1
    recorded = yaml.safe_load(map_file.read_text())
    assert "ded1" in map_file.read_text() and "Gi0/5" in map_file.read_text()
    assert recorded

    again = run_portmap(inventory, tmp_path / "a3")
    assert again.ok, stdout(tmp_path / "a3")
    assert again.hosts["localhost"].changed == 0

    # ded1 moves: check mode shows it and writes nothing; a real run records it.
    switch.state.forget(DED1)
    switch.state.learn(DED1, "Gi0/6")
    before = map_file.read_text()
    moved = run_portmap(inventory, tmp_path / "a4", check=True)
    assert moved.ok and moved.hosts["localhost"].changed == 1
    assert map_file.read_text() == before
    assert "moved     ded1" in stdout(tmp_path / "a4")
    assert run_portmap(inventory, tmp_path / "a5").hosts["localhost"].changed == 1
    assert "Gi0/6" in map_file.read_text()
    for kept in ("a1", "a2", "a3", "a4", "a5"):
        assert PASSWORD not in stdout(tmp_path / kept)


def test_a_switch_that_does_not_answer_fails_the_play_with_the_reason(tmp_path: Path) -> None:
    inv = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory" / "example", inv)
    (inv / "host_vars" / "sw1-msk1.yml").write_text(
        "ansible_host: 127.0.0.1\nansible_port: 9\nansible_user: netops\nplatform: cisco_ios\n"
    )
    kept = tmp_path / "kept"
    result = run_portmap(inv, kept)
    assert not result.ok
    assert result.hosts["localhost"].failed == 1
    assert "switches not polled: sw1-msk1" in stdout(kept)


@pytest.mark.slow
def test_a_port_map_conflict_is_a_warning_without_verbose(
    switch: IosSwitchServer, inventory: Path, tmp_path: Path
) -> None:
    switch.state.forget(VPS1001)
    switch.state.learn(VPS1001, "Gi0/5")  # a VDS's MAC on ded1's port: two servers, no host

    result = run_portmap(inventory, tmp_path / "kept", check=True)

    assert result.ok, stdout(tmp_path / "kept")
    # ansible-playbook prints warnings on stderr (AWX shows both streams)
    shown = "\n".join(p.read_text(errors="replace") for p in sorted((tmp_path / "kept").rglob("stderr")))
    assert "[WARNING]: port map conflict on sw1-msk1 Gi0/5: VPS1001(113.10), ded1 (site msk1)" in shown
