"""The Ansible settings ipsinfra ships, and how playbooks.run applies them (no playbook runs here)."""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra import playbooks
from ipsinfra.errors import InvalidInput
from tests.conftest import missing

REPO = Path(__file__).resolve().parents[2]


def _cfg(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return parser


@pytest.fixture(autouse=True)
def short_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A short TMPDIR and HOME in it (pytest's tmp_path can be too long for a socket directory).

    control_path_dir() makes its directory: here, never in the real home.
    """
    tmp_path_factory.getbasetemp()  # pytest's own tmp root stays where it is
    path = Path(tempfile.mkdtemp(prefix="ipsu-", dir="/tmp"))
    (path / "home").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    monkeypatch.setenv("HOME", str(path / "home"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_shipped_config_has_the_fast_connection_settings() -> None:
    cfg = _cfg(playbooks.ansible_config_file())

    assert cfg.getboolean("ssh_connection", "pipelining")
    ssh_args = cfg.get("ssh_connection", "ssh_args").split()
    assert "ControlMaster=auto" in ssh_args
    assert any(arg.startswith("ControlPersist=") for arg in ssh_args)
    assert "-C" not in ssh_args  # compression costs CPU on both ends
    assert cfg.getint("defaults", "forks") >= 50
    assert cfg.get("defaults", "gathering") == "smart"
    assert cfg.get("defaults", "interpreter_python") == "auto_silent"


def test_the_repository_ansible_cfg_repeats_every_shipped_setting() -> None:
    shipped, repo = _cfg(playbooks.ansible_config_file()), _cfg(REPO / "ansible.cfg")

    for section in shipped.sections():
        for key, value in shipped.items(section):
            assert repo.get(section, key, fallback=None) == value, (section, key)


def test_ansible_reads_the_shipped_settings(tmp_path: Path) -> None:
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path), **playbooks.settings_env({})}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-config"), "dump", "--only-changed", "-t", "all"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = {line.strip() for line in proc.stdout.splitlines()}
    cfg = playbooks.ansible_config_file()
    assert f"CONFIG_FILE() = {cfg}" in lines
    assert f"DEFAULT_FORKS({cfg}) = 50" in lines
    assert f"DEFAULT_GATHERING({cfg}) = smart" in lines
    assert f"pipelining({cfg}) = True" in lines
    assert f"ssh_args({cfg}) = -o ControlMaster=auto -o ControlPersist=120s" in lines
    cp_dir = playbooks.control_path_dir()
    assert f"control_path_dir(env: ANSIBLE_SSH_CONTROL_PATH_DIR) = {cp_dir}" in lines


def test_settings_env_points_at_the_shipped_config_and_a_control_path_dir() -> None:
    env = playbooks.settings_env({})

    assert env["ANSIBLE_CONFIG"] == str(playbooks.ansible_config_file())
    assert env["ANSIBLE_SSH_CONTROL_PATH_DIR"] == str(playbooks.control_path_dir())
    assert "ANSIBLE_STRATEGY" not in env  # Mitogen only when asked for


def test_a_users_own_ansible_config_replaces_the_shipped_one_whole() -> None:
    assert playbooks.settings_env({"ANSIBLE_CONFIG": "/etc/mine.cfg"}) == {}


def test_a_users_control_path_dir_wins() -> None:
    env = playbooks.settings_env({"ANSIBLE_SSH_CONTROL_PATH_DIR": "/run/me/cp"})

    assert "ANSIBLE_SSH_CONTROL_PATH_DIR" not in env
    assert env["ANSIBLE_CONFIG"] == str(playbooks.ansible_config_file())


def test_run_environment_single_variables_and_envvars_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    monkeypatch.setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", "/from/environ")

    env = playbooks._envvars(tmp_path, "run1", {"ANSIBLE_PIPELINING": "False"})

    assert env["ANSIBLE_CONFIG"] == str(playbooks.ansible_config_file())
    assert env["ANSIBLE_PIPELINING"] == "False"  # an env variable beats a line of the file
    assert "ANSIBLE_SSH_CONTROL_PATH_DIR" not in env  # ansible-runner passes os.environ's on
    mine = playbooks._envvars(tmp_path, "run1", {"ANSIBLE_CONFIG": "/etc/mine.cfg"})
    assert mine["ANSIBLE_CONFIG"] == "/etc/mine.cfg"


def test_the_control_path_dir_is_private_and_short_enough_for_a_socket(short_tmp: Path) -> None:
    cp_dir = playbooks.control_path_dir()

    assert cp_dir == short_tmp / "home" / ".ansible" / "cp"  # Ansible's own default, when short
    info = cp_dir.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
    assert not info.st_mode & 0o077
    # ssh binds "<dir>/<10-char hash>.<16 random chars>" first: it must fit in sun_path (108).
    assert len(os.fsencode(cp_dir / ("x" * 10 + "." + "y" * 16))) < 108


def test_a_long_home_falls_back_to_a_private_tmp_dir(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = short_tmp / ("h" * 90)
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))

    assert playbooks.control_path_dir() == short_tmp / f"ipsinfra-cp-{os.geteuid()}"
    assert stat.S_IMODE((short_tmp / f"ipsinfra-cp-{os.geteuid()}").stat().st_mode) == 0o700


def test_a_socket_dir_others_can_write_to_is_never_used(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = short_tmp / ("h" * 90)
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    shared = short_tmp / f"ipsinfra-cp-{os.geteuid()}"
    shared.mkdir()
    shared.chmod(0o777)

    assert playbooks.control_path_dir() is None
    assert "ANSIBLE_SSH_CONTROL_PATH_DIR" not in playbooks.settings_env({})  # Ansible's default then


def test_mitogen_sets_its_strategy_and_keeps_other_strategy_plugins() -> None:
    strategies = playbooks.mitogen_strategy_dir()
    if strategies is None:
        missing("the mitogen extra is not installed (pip install -e '.[mitogen]')")

    env = playbooks.settings_env({"ANSIBLE_STRATEGY_PLUGINS": "/mine"}, mitogen=True)

    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert env["ANSIBLE_STRATEGY_PLUGINS"] == f"{strategies}{os.pathsep}/mine"
    assert "ANSIBLE_STRATEGY" not in playbooks.settings_env({"ANSIBLE_STRATEGY": "free"}, mitogen=True)


def test_mitogen_asked_for_without_the_extra_is_refused_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(playbooks, "mitogen_strategy_dir", lambda: None)
    runs = tmp_path / "runs"

    with pytest.raises(InvalidInput, match=r"mitogen.*pip install 'ipsinfra\[mitogen\]'"):
        playbooks.run("ping", {"all": {}}, mitogen=True, private_data_root=runs)
    monkeypatch.setenv("IPSINFRA_MITOGEN", "1")
    with pytest.raises(InvalidInput, match="mitogen"):
        playbooks.run("ping", {"all": {}}, private_data_root=runs)
    assert not runs.exists() or list(runs.iterdir()) == []


@pytest.mark.parametrize(
    ("given", "environ", "wanted"),
    [
        (None, {}, False),
        (None, {"IPSINFRA_MITOGEN": "1"}, True),
        (None, {"IPSINFRA_MITOGEN": "yes"}, True),
        (None, {"IPSINFRA_MITOGEN": "0"}, False),
        (False, {"IPSINFRA_MITOGEN": "1"}, False),
        (True, {}, True),
    ],
)
def test_mitogen_is_opt_in(given: bool | None, environ: dict[str, str], wanted: bool) -> None:
    assert playbooks._mitogen_wanted(given, environ) is wanted
