"""ipsinfra.playbooks without Ansible: results from recorded stats, and input checks.

The stats dicts below are ``runner.stats`` as ansible-runner 2.4.3 returned them
for playbooks/ping.yml on this machine (ansible-core 2.19).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipsinfra import playbooks
from ipsinfra.errors import InvalidInput, IpsinfraError, PlaybookError
from ipsinfra.playbooks import HostResult, PlaybookResult, result_from_stats

EMPTY = {"skipped": {}, "ignored": {}, "rescued": {}}

# A clean run on localhost: 7 tasks ok, 3 of them changed.
STATS_OK: dict[str, Any] = {
    **EMPTY,
    "ok": {"localhost": 7},
    "dark": {},
    "failures": {},
    "processed": {"localhost": 1},
    "changed": {"localhost": 3},
}
# web1 fails a task, web2 is unreachable (nothing listens on its port), localhost fails too.
STATS_FAILED_AND_UNREACHABLE: dict[str, Any] = {
    **EMPTY,
    "ok": {"localhost": 3, "web1": 3},
    "dark": {"web2": 1},
    "failures": {"web1": 1, "localhost": 1},
    "processed": {"web2": 1, "localhost": 1, "web1": 1},
    "changed": {},
}
# One host ok, the other unreachable: one result per host, the dead one does not hide the other.
STATS_ONE_UNREACHABLE: dict[str, Any] = {
    **EMPTY,
    "ok": {"web1": 7},
    "dark": {"web2": 1},
    "failures": {},
    "processed": {"web1": 1, "web2": 1},
    "changed": {"web1": 3},
}


def test_ok_run_gives_one_result_per_host() -> None:
    result = result_from_stats("successful", 0, STATS_OK, playbook="ping", duration_s=5.98765)

    assert result.ok
    assert result.hosts == {"localhost": HostResult(ok=7, changed=3)}
    assert result.hosts["localhost"].succeeded
    assert result.failed_hosts == []
    assert result.duration_s == 5.988
    assert result.raise_on_error() is result


def test_failed_and_unreachable_hosts_are_counted_and_named() -> None:
    result = result_from_stats("failed", 4, STATS_FAILED_AND_UNREACHABLE, playbook="ping")

    assert not result.ok
    assert set(result.hosts) == {"localhost", "web1", "web2"}
    assert result.hosts["web1"] == HostResult(ok=3, failed=1)
    assert result.hosts["web2"] == HostResult(unreachable=1)
    assert result.failed_hosts == ["localhost", "web1", "web2"]
    with pytest.raises(PlaybookError) as excinfo:
        result.raise_on_error()
    message = str(excinfo.value)
    assert "'ping'" in message
    assert "web1 (failed=1)" in message
    assert "web2 (unreachable=1)" in message
    assert "rc=4" in message


def test_one_unreachable_host_does_not_hide_the_other() -> None:
    result = result_from_stats("failed", 4, STATS_ONE_UNREACHABLE)

    assert result.hosts["web1"].succeeded
    assert result.hosts["web1"].ok == 7
    assert result.hosts["web2"].unreachable == 1
    assert result.failed_hosts == ["web2"]


def test_failed_status_without_failed_hosts_is_not_ok() -> None:
    result = result_from_stats("failed", 1, STATS_OK)

    assert not result.ok
    with pytest.raises(PlaybookError, match="no host failed"):
        result.raise_on_error()


def test_missing_stats_raise_a_clear_playbook_error() -> None:
    with pytest.raises(PlaybookError, match=r"no stats \(status=failed, rc=127\)") as excinfo:
        result_from_stats("failed", 127, None, playbook="ping")
    assert isinstance(excinfo.value, IpsinfraError)
    assert "PLAY RECAP" in str(excinfo.value)


def test_stats_missing_keys_default_to_zero() -> None:
    result = result_from_stats("successful", 0, {"ok": {"a": 1}})

    assert result.hosts == {"a": HostResult(ok=1)}


def test_results_are_frozen_values() -> None:
    result = result_from_stats("successful", 0, STATS_OK)

    with pytest.raises(ValueError, match="frozen"):
        result.rc = 1
    assert PlaybookResult.model_validate(result.model_dump()) == result


@pytest.mark.parametrize(
    "name",
    ["../etc/passwd", "/etc/passwd", "sub/ping", "..", "ping/..", "ping..yml", "", ".hidden", "a b"],
)
def test_playbook_names_that_are_paths_or_odd_are_refused(name: str, tmp_path: Path) -> None:
    (tmp_path / "ping.yml").write_text("[]\n")
    with pytest.raises(InvalidInput, match="playbook"):
        playbooks.run(name, {"all": {}}, playbook_dir=tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / "ping.yml"]


def test_unknown_playbook_names_the_name_and_lists_the_available_ones(tmp_path: Path) -> None:
    for stem in ("ping", "node_audit"):
        (tmp_path / f"{stem}.yml").write_text("[]\n")
    (tmp_path / "notes.txt").write_text("not a playbook\n")

    with pytest.raises(InvalidInput) as excinfo:
        playbooks.run("provision_vds", {"all": {}}, playbook_dir=tmp_path)
    message = str(excinfo.value)
    assert "'provision_vds'" in message
    assert "available: node_audit, ping" in message
    assert isinstance(excinfo.value, ValueError)


def test_the_repository_playbooks_are_found() -> None:
    assert playbooks.default_playbook_dir().name == "playbooks"
    assert "ping" in playbooks.available_playbooks()


def test_missing_inventory_path_is_refused_before_running(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        playbooks.run("ping", tmp_path / "no-such-inventory")


def test_non_positive_timeout_is_refused() -> None:
    with pytest.raises(InvalidInput, match="timeout"):
        playbooks.run("ping", {"all": {}}, timeout=0)


def test_environment_finds_the_venv_and_the_embedded_collections(tmp_path: Path) -> None:
    import sys

    import ipsinfra

    env = playbooks._envvars(tmp_path, "run1", None)

    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["ANSIBLE_COLLECTIONS_PATH"].split(":")[0] == str(Path(ipsinfra.__file__).resolve().parent)
    assert env["ANSIBLE_LOCAL_TEMP"] == str(tmp_path / "tmp")
    assert env["IPSINFRA_RUN_ID"] == "run1"


def test_host_key_checking_is_always_on_unless_the_caller_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_HOST_KEY_CHECKING", raising=False)

    env = playbooks._envvars(tmp_path, "run1", {"ANSIBLE_FORKS": "7"})

    # Explicitly on, whatever the inventory says: ansible-runner would turn it off.
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_FORKS"] == "7"
    # Only the caller turns it off (envvars=, or their own environment).
    assert (
        playbooks._envvars(tmp_path, "r", {"ANSIBLE_HOST_KEY_CHECKING": "False"})["ANSIBLE_HOST_KEY_CHECKING"]
        == "False"
    )


def test_secret_values_are_masked_in_messages_and_data() -> None:
    found = playbooks._secret_strings({"secret_password": "s3cr3t-value", "nested": {"list": ["tok-123"]}})

    assert playbooks._mask("x s3cr3t-value y tok-123", found) == "x ******** y ********"
    assert playbooks._mask_data({"k": ["tok-123"]}, found) == {"k": ["********"]}
