"""Run the project's playbooks through ansible-runner; results come back as data.

Each :func:`run` gets a fresh 0700 temporary ``private_data_dir`` (ansible-runner
writes extravars, i.e. passwords, to ``<dir>/env/extravars``) that is removed
whatever happens. ``project_dir`` is the repository's ``playbooks/``. The
result has one :class:`HostResult` per host, so one dead host never hides the
others; call :meth:`PlaybookResult.raise_on_error` to get an exception instead.

Host keys are always checked: :func:`run` sets ``ANSIBLE_HOST_KEY_CHECKING=True``
(ansible-runner would set it to False) unless the caller's environment or
``envvars=`` says otherwise. Pin each host's key in a known_hosts file the
inventory points ssh at (``ansible_ssh_common_args: -o
UserKnownHostsFile=<file>``), or in ``~/.ssh/known_hosts``; a host whose key is
unknown or changed is unreachable, and :meth:`PlaybookResult.raise_on_error`
raises :class:`PlaybookHostKeyError` naming it.

Kept artifacts (``keep_artifacts=``) hold no secrets: ``command`` keeps the
argv and only the run's own ``ANSIBLE_*`` settings of its environment, and
every file is masked (secret-keyed extravars, registered secrets, ``password=...``).

Connection settings: every run uses the ``ansible.cfg`` ipsinfra ships
(:func:`ansible_config_file`: pipelining, SSH ControlPersist with sockets in
a short per-user directory, 50 forks, smart gathering) unless ``ANSIBLE_CONFIG``
is set, and any ``ANSIBLE_*`` variable (in the environment or ``envvars=``)
wins over a line of it. With the ``mitogen`` extra installed, ``mitogen=True``
(or ``IPSINFRA_MITOGEN=1``) runs plays with Mitogen's ``mitogen_linear``
strategy: one persistent Python per host instead of one per task.

Example::

    result = run("ping", {"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}})
    result.hosts["localhost"]       # HostResult(ok=2, changed=0, failed=0, unreachable=0, ...)
    result.raise_on_error()
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import BaseModel, ConfigDict

import ipsinfra
from ipsinfra import redact
from ipsinfra.errors import InvalidInput, OperationTimeout, PlaybookError
from ipsinfra.hostkeys import HostKeyError

__all__ = [
    "HostResult",
    "PlaybookHostKeyError",
    "PlaybookResult",
    "ansible_config_file",
    "available_playbooks",
    "control_path_dir",
    "default_playbook_dir",
    "mitogen_strategy_dir",
    "result_from_stats",
    "run",
    "settings_env",
]

PLAYBOOK_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.ya?ml)?$")
# ansible-runner's stats keys -> HostResult fields.
_STATS_FIELDS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}
_MASK = "********"
# A socket path is at most 107 bytes; ssh binds "<dir>/<10-char hash>.<16 random chars>" first.
_CONTROL_DIR_MAX = 107 - 1 - 10 - 17
_TRUE = {"1", "true", "yes", "on"}
# What ssh prints when it refuses a host's key (unknown, changed, or no way to ask).
_HOST_KEY_FAILURE = re.compile(
    r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|"
    r"No (?:ED25519|RSA|ECDSA|DSA)? ?host key is known|Host key for .* has changed",
    re.IGNORECASE,
)
# Extravars (at any depth) under such a key are secrets: masked in kept artifacts and logs.
_SECRET_KEY = re.compile(r"pass|secret|token|key|pw|cred", re.IGNORECASE)
# Of the run's environment, only these go into a kept artifacts/<id>/command.
_KEPT_ENV = re.compile(r"^(ANSIBLE_[A-Z0-9_]+|IPSINFRA_RUN_ID)$")


def _host_key_summary(reason: str) -> str:
    """ssh's refusal in a few words, with the offered key's fingerprint when ssh printed it."""
    changed = re.search(r"IDENTIFICATION HAS CHANGED|has changed", reason, re.IGNORECASE)
    offered = re.search(r"SHA256:[A-Za-z0-9+/]{20,}", reason)
    what = "key CHANGED" if changed else "key not pinned"
    return f"{what}, offered {offered.group(0)}" if offered else what


class PlaybookHostKeyError(PlaybookError, HostKeyError):
    """A host's SSH key was unknown or not the pinned one: ssh refused it, nothing ran there."""


class HostResult(BaseModel):
    """Task counts for one host, as in Ansible's PLAY RECAP (``ok`` includes ``changed``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def succeeded(self) -> bool:
        """No failed task and the host was reachable."""
        return self.failed == 0 and self.unreachable == 0


class PlaybookResult(BaseModel):
    """The outcome of one playbook run.

    ``status`` is ansible-runner's (``successful``, ``failed``); ``rc`` is
    ansible-playbook's exit code (0 ok, 2 a host failed, 4 a host unreachable).
    ``data`` is what the playbook reported with ``ansible.builtin.set_stats``
    (extravar values masked). ``run_dir`` is the temporary private data dir the
    run used; it no longer exists when the result is returned. ``failures``
    gives, per host, the last failed task and its ``msg`` (``"<task>: <msg>"``,
    secrets masked; a ``no_log`` task's msg is Ansible's "hidden" notice).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    playbook: str
    status: str
    rc: int
    hosts: dict[str, HostResult]
    duration_s: float
    data: dict[str, Any] = {}
    run_dir: Path | None = None
    unreachable_reasons: dict[str, str] = {}
    failures: dict[str, str] = {}

    @property
    def ok(self) -> bool:
        """The run succeeded and every host succeeded."""
        return self.status == "successful" and self.rc == 0 and all(h.succeeded for h in self.hosts.values())

    @property
    def failed_hosts(self) -> list[str]:
        """Hosts with a failed task or that could not be reached, sorted."""
        return sorted(name for name, host in self.hosts.items() if not host.succeeded)

    @property
    def host_key_failures(self) -> dict[str, str]:
        """Unreachable hosts whose SSH key ssh refused (unknown or changed), with ssh's words."""
        return {
            host: reason
            for host, reason in sorted(self.unreachable_reasons.items())
            if _HOST_KEY_FAILURE.search(reason)
        }

    def raise_on_error(self) -> PlaybookResult:
        """Return self if :attr:`ok`, else raise PlaybookError naming the failed hosts.

        Raises:
            PlaybookHostKeyError: a host was unreachable because ssh refused its key.
            PlaybookError: any other failure.
        """
        if self.ok:
            return self
        refused = self.host_key_failures
        if refused:
            raise PlaybookHostKeyError(
                f"playbook {self.playbook!r}: ssh refused the host key of "
                + "; ".join(f"{host} ({_host_key_summary(reason)})" for host, reason in refused.items())
                + "; nothing ran there. Pin the key after checking its fingerprint (ipsinfra trust, or "
                "ssh-keyscan into the known_hosts file the inventory names)"
            )
        details = []
        for name in self.failed_hosts:
            host = self.hosts[name]
            parts = [f"{field}={getattr(host, field)}" for field in ("failed", "unreachable")]
            why = self.failures.get(name)
            details.append(
                f"{name} ({', '.join(p for p in parts if not p.endswith('=0'))})"
                + (f": {why}" if why else "")
            )
        where = f"failed on {', '.join(details)}" if details else "no host failed"
        raise PlaybookError(f"playbook {self.playbook!r}: {where} (status={self.status}, rc={self.rc})")


def result_from_stats(
    status: str,
    rc: int | None,
    stats: Mapping[str, Mapping[str, int]] | None,
    *,
    playbook: str = "",
    duration_s: float = 0.0,
    data: Mapping[str, Any] | None = None,
    run_dir: Path | None = None,
    unreachable_reasons: Mapping[str, str] | None = None,
    failures: Mapping[str, str] | None = None,
) -> PlaybookResult:
    """Build a :class:`PlaybookResult` from ansible-runner's ``status``, ``rc`` and ``stats``.

    Pure: feed it a recorded ``runner.stats`` dict, e.g.
    ``{"ok": {"web1": 2}, "dark": {"web2": 1}, "failures": {}, ...}``.
    Every host named under any key (``processed`` too) gets a result.

    Raises:
        PlaybookError: ``stats`` is None: ansible-playbook never reached its
            recap (syntax error, no such inventory, rc 127: not found...).
    """
    if stats is None:
        raise PlaybookError(
            f"playbook {playbook!r}: ansible-runner reported no stats (status={status}, rc={rc}): "
            "ansible-playbook stopped before its PLAY RECAP (bad playbook or inventory, "
            "no hosts matched, or ansible-playbook not found)"
        )
    names: set[str] = set()
    for per_host in stats.values():
        names.update(per_host)
    hosts = {
        name: HostResult(
            **{field: int(stats.get(key, {}).get(name, 0)) for key, field in _STATS_FIELDS.items()}
        )
        for name in sorted(names)
    }
    return PlaybookResult(
        playbook=playbook,
        status=status,
        rc=-1 if rc is None else int(rc),
        hosts=hosts,
        duration_s=round(duration_s, 3),
        data=dict(data or {}),
        run_dir=run_dir,
        unreachable_reasons=dict(unreachable_reasons or {}),
        failures=dict(failures or {}),
    )


def default_playbook_dir() -> Path:
    """The repository's ``playbooks/`` (beside ``src/``) for a source checkout."""
    return Path(ipsinfra.__file__).resolve().parents[2] / "playbooks"


def available_playbooks(playbook_dir: Path | None = None) -> list[str]:
    """Names (without ``.yml``) of the playbooks in ``playbook_dir``."""
    directory = playbook_dir or default_playbook_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.iterdir() if p.suffix in {".yml", ".yaml"} and p.is_file())


def _playbook_file(name: str, playbook_dir: Path) -> Path:
    if not isinstance(name, str) or "/" in name or "\\" in name or ".." in name:
        raise InvalidInput(f"playbook: {name!r} must be a bare playbook name, not a path")
    if not PLAYBOOK_NAME_RE.fullmatch(name):
        raise InvalidInput(f"playbook: {name!r} is not a valid playbook name")
    candidates = [name] if name.endswith((".yml", ".yaml")) else [f"{name}.yml", f"{name}.yaml"]
    for candidate in candidates:
        path = playbook_dir / candidate
        if path.is_file():
            return path
    known = ", ".join(available_playbooks(playbook_dir)) or "none"
    raise InvalidInput(f"playbook: no playbook named {name!r} in {playbook_dir} (available: {known})")


def _inventory_arg(inventory: str | Path | Mapping[str, Any]) -> str | dict[str, Any]:
    """What to hand ansible-runner: a JSON-safe dict, an absolute path, or INI text."""
    if isinstance(inventory, Mapping):
        data: dict[str, Any] = json.loads(json.dumps(inventory))  # a plain, JSON-safe copy
        return data
    if isinstance(inventory, Path) or (isinstance(inventory, str) and "\n" not in inventory):
        path = Path(inventory).expanduser()
        if not path.exists():
            raise InvalidInput(f"inventory: {str(inventory)!r} does not exist")
        # ansible-runner takes a relative path as inventory *text*: always pass it absolute.
        return str(path.resolve())
    if isinstance(inventory, str):
        return inventory
    raise InvalidInput(f"inventory: {type(inventory).__name__} is not a path, INI text or a dict")


def ansible_config_file() -> Path:
    """The ``ansible.cfg`` ipsinfra ships and :func:`run` applies (``ipsinfra/data/ansible.cfg``)."""
    return Path(ipsinfra.__file__).resolve().parent / "data" / "ansible.cfg"


def _private_dir(path: Path) -> bool:
    """Make ``path`` (0700) if missing; True if it is a real directory only we can enter."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def control_path_dir() -> Path | None:
    """A short per-user directory for SSH ControlPath sockets, or None if none is usable.

    Ansible's own ``~/.ansible/cp`` where its path is short enough for a unix
    socket (so masters are shared with ``ansible-playbook`` run by hand), else
    ``<tmp>/ipsinfra-cp-<uid>``. Either must be a 0700 directory owned by the
    current user; a socket directory others can write to would let them
    stand in for a master.

    >>> control_path_dir()  # doctest: +SKIP
    PosixPath('/root/.ansible/cp')
    """
    candidates = [
        Path("~/.ansible/cp").expanduser(),
        Path(tempfile.gettempdir()) / f"ipsinfra-cp-{os.geteuid()}",
    ]
    for candidate in candidates:
        if len(os.fsencode(candidate)) <= _CONTROL_DIR_MAX and _private_dir(candidate):
            return candidate
    return None


def mitogen_strategy_dir() -> Path | None:
    """Where the installed Mitogen keeps its strategy plugins, or None without the ``mitogen`` extra."""
    import importlib.util

    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"
    return path if (path / "mitogen_linear.py").is_file() else None


def _require_mitogen() -> Path:
    strategies = mitogen_strategy_dir()
    if strategies is None:
        raise InvalidInput(
            "mitogen: asked for, but Mitogen is not installed (pip install 'ipsinfra[mitogen]')"
        )
    return strategies


def _mitogen_wanted(mitogen: bool | None, environ: Mapping[str, str]) -> bool:
    if mitogen is None:
        return environ.get("IPSINFRA_MITOGEN", "").strip().lower() in _TRUE
    return mitogen


def settings_env(environ: Mapping[str, str] | None = None, *, mitogen: bool = False) -> dict[str, str]:
    """The ``ANSIBLE_*`` variables that apply ipsinfra's shipped settings to a run.

    Nothing the caller already set in ``environ`` (default: ``os.environ``) is
    returned: with ``ANSIBLE_CONFIG`` there, that file is used and the shipped
    one is not; ``ANSIBLE_SSH_CONTROL_PATH_DIR`` or ``ANSIBLE_STRATEGY`` there
    win likewise (``ANSIBLE_STRATEGY_PLUGINS`` comes back with Mitogen's
    directory put in front of the one set). ``bench`` hands the same variables to a bare
    ``ansible-playbook`` so both sides run with equal settings.

    >>> settings_env({})  # doctest: +SKIP
    {'ANSIBLE_CONFIG': '.../ipsinfra/data/ansible.cfg', 'ANSIBLE_SSH_CONTROL_PATH_DIR': '/root/.ansible/cp'}

    Raises:
        InvalidInput: ``mitogen`` was asked for and the ``mitogen`` extra is not installed.
    """
    environ = os.environ if environ is None else environ
    env: dict[str, str] = {}
    if "ANSIBLE_CONFIG" not in environ:
        env["ANSIBLE_CONFIG"] = str(ansible_config_file())
        cp_dir = control_path_dir()
        if cp_dir is not None and "ANSIBLE_SSH_CONTROL_PATH_DIR" not in environ:
            env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(cp_dir)
    if mitogen:
        plugin_dirs = [str(_require_mitogen())]
        if environ.get("ANSIBLE_STRATEGY_PLUGINS"):
            plugin_dirs.append(environ["ANSIBLE_STRATEGY_PLUGINS"])
        env["ANSIBLE_STRATEGY_PLUGINS"] = os.pathsep.join(plugin_dirs)
        if "ANSIBLE_STRATEGY" not in environ:
            env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    return env


def _envvars(
    pdd: Path,
    run_id: str,
    extra: Mapping[str, str] | None,
    *,
    mitogen: bool = False,
) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    package_dir = str(Path(ipsinfra.__file__).resolve().parent)
    collections = [package_dir]
    if os.environ.get("ANSIBLE_COLLECTIONS_PATH"):
        collections.append(os.environ["ANSIBLE_COLLECTIONS_PATH"])
    env: dict[str, str] = {
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(collections),
        # Controller-side temp files (copy's content=, templates) go away with the run dir.
        "ANSIBLE_LOCAL_TEMP": str(pdd / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        # <inventory>/switch_ports.<site>.yml is ipsinfra's port map, not an inventory source.
        "ANSIBLE_INVENTORY_IGNORE_REGEX": r"^switch_ports(\..+)?\.ya?ml$",
        # Marks every process of this run, so none outlives it (see _kill_leftovers).
        "IPSINFRA_RUN_ID": run_id,
    }
    if "ANSIBLE_HOST_KEY_CHECKING" not in os.environ:
        # On, always: ansible-runner turns host key checking off unless told (and ssh would
        # then add whatever key answers to ~/.ssh/known_hosts). Only the caller turns it off.
        env["ANSIBLE_HOST_KEY_CHECKING"] = "True"
    given = {str(k): str(v) for k, v in (extra or {}).items()}
    env.update(given)
    # ansible-runner starts from os.environ: settings_env adds only what is not set there or given.
    env.update(settings_env({**os.environ, **given}, mitogen=mitogen))
    path = env.get("PATH") or os.environ.get("PATH") or os.defpath
    if venv_bin not in path.split(os.pathsep):
        path = os.pathsep.join([venv_bin, path])
    env["PATH"] = path
    return env


def _secret_strings(value: Any) -> list[str]:
    """Every string (and number) inside extravars, longest first, for masking."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for item in value.values():
            found += _secret_strings(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            found += _secret_strings(item)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 4:
            found.append(text)
    return sorted(set(found), key=len, reverse=True)


def _secret_values(value: Any, *, under_secret: bool = False) -> list[str]:
    """The strings of ``value`` that sit under a secret-like key (``root_password``, ``api_token``...)."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found += _secret_values(item, under_secret=under_secret or bool(_SECRET_KEY.search(str(key))))
    elif isinstance(value, list | tuple | set):
        for item in value:
            found += _secret_values(item, under_secret=under_secret)
    elif under_secret:
        found += _secret_strings(value)
    return sorted(set(found), key=len, reverse=True)


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return text


def _stdout_tail(pdd: Path, secrets: list[str], lines: int = 12) -> str:
    chunks: list[str] = []
    for name in ("stdout", "stderr"):
        for file in sorted((pdd / "artifacts").glob(f"*/{name}")):
            with contextlib.suppress(OSError):
                chunks += file.read_text(errors="replace").splitlines()
    tail = "\n".join(line for line in chunks if line.strip())
    tail = "\n".join(tail.splitlines()[-lines:])
    return _mask(tail, secrets)


def _mask_data(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {_mask(str(k), secrets): _mask_data(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_data(v, secrets) for v in value]
    if isinstance(value, str):
        return _mask(value, secrets)
    return value


class _StatsKeeper:
    """ansible-runner event_handler: keep only the recap event, on disk and here.

    ``runner.stats`` reads the recap back from disk; every other event (task
    results, which may carry values a playbook forgot to ``no_log``) is dropped
    at once, neither written nor held in memory. Of an unreachable host only
    ssh's message is kept (masked), to tell a refused host key from a dead host;
    of a failed task (not ``ignore_errors``) only its name and ``msg`` (masked:
    the secret-keyed extravars, registered secrets, ``password=...``), so
    :meth:`PlaybookResult.raise_on_error` can say why.
    """

    def __init__(self, secrets: list[str] | None = None, msg_secrets: list[str] | None = None) -> None:
        self.artifact_data: dict[str, Any] = {}
        self.unreachable: dict[str, str] = {}
        self.failures: dict[str, str] = {}
        self._secrets = secrets or []
        self._msg_secrets = msg_secrets or []

    def __call__(self, event: dict[str, Any]) -> bool:
        if event.get("event") == "runner_on_failed":
            self._failed(event.get("event_data", {}))
            return False
        if event.get("event") == "runner_on_unreachable":
            data = event.get("event_data", {})
            res: Any = data.get("res")
            if not isinstance(res, dict):
                res = {}
            host = str(data.get("host") or "")
            if host:
                self.unreachable[host] = redact.redact(str(res.get("msg", ""))[:4000], self._secrets)
            return False
        if event.get("event") != "playbook_on_stats":
            return False
        data = event.get("event_data", {}).get("artifact_data")
        if isinstance(data, dict):
            self.artifact_data = data
        return True

    def _failed(self, data: dict[str, Any]) -> None:
        """Keep a failed task's name and ``msg`` (the last one per host), masked."""
        result = data.get("res")
        host = str(data.get("host") or "")
        if not host or data.get("ignore_errors") or not isinstance(result, dict):
            return
        msg = " ".join(str(result.get("msg") or f"rc={result.get('rc')}").split())[:2000]
        task = str(data.get("task") or "a task")
        self.failures[host] = redact.redact(f"{task}: {msg}", self._msg_secrets)


def _sanitized_command(text: str, secrets: list[str]) -> str:
    """An ``artifacts/<id>/command`` without secrets: argv and cwd kept, env cut to ANSIBLE_* settings.

    ansible-runner writes the whole environment of ansible-playbook there
    (``os.environ`` included: a Proxmox token or switch password variable).
    """
    try:
        data = json.loads(text)
    except ValueError:
        return json.dumps({"command": "(unreadable; dropped by ipsinfra)"})
    if not isinstance(data, dict):
        return json.dumps({"command": "(unexpected shape; dropped by ipsinfra)"})
    env: Any = data.get("env")
    if not isinstance(env, dict):
        env = {}
    kept = {
        str(k): redact.redact(str(v), secrets)
        for k, v in sorted(env.items())
        if _KEPT_ENV.match(str(k)) and not _SECRET_KEY.search(str(k).removesuffix("_FILE"))
    }
    clean = {
        "command": [redact.redact(str(arg), secrets) for arg in data.get("command") or []],
        "cwd": redact.redact(str(data.get("cwd", "")), secrets),
        "env": kept,
        "env_note": "only the run's ANSIBLE_* settings are kept; the rest was dropped by ipsinfra",
    }
    return json.dumps(clean, indent=1)


def _keep_artifacts(source: Path, dest: Path, secrets: list[str]) -> None:
    """Copy ``artifacts/`` to ``dest``, each file masked as it is written (0600, dirs 0700).

    Nothing is copied raw and edited after: a secret is never on disk in ``dest``.
    """
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        target = dest / path.relative_to(source)
        if path.is_symlink():
            continue
        if path.is_dir():
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        text = _sanitized_command(text, secrets) if path.name == "command" else redact.redact(text, secrets)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)


def _kill_leftovers(marker: bytes, rounds: int = 5) -> list[int]:
    """SIGKILL every process whose environment carries ``marker``; return their pids.

    On a timeout ansible-runner SIGKILLs ansible-playbook's process group, but
    ansible's workers ``setsid()`` (ansible-core >= 2.17), so they and the task
    they run (``sleep 60``, an ssh client...) would live on. They all inherit
    the run's environment, which is how they are found here.
    """
    killed: list[int] = []
    me = os.getpid()
    for _ in range(rounds):
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as fh:
                    if marker in fh.read().split(b"\0"):
                        found.append(int(entry.name))
            except OSError:
                continue
        if not found:
            break
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        killed += found
        time.sleep(0.02)
    return killed


def _run_ansible_runner(
    secrets: list[str], timeout: int | None, canceled: Callable[[], bool], **kwargs: Any
) -> Any:
    """Run ansible-playbook through ansible-runner with plain pipes; return the finished Runner.

    ``ansible_runner.run()`` always drives ansible-playbook through a pty
    (pexpect): closing it sleeps 0.1 s, and cancellation is polled once a
    second. Its Runner also runs a command on pipes (``runner_mode
    "subprocess"``, what ``run_command`` uses), which is switched on here for
    the same prepared config: events, stats and artifacts are processed the
    same way, only without the pty. stdin is /dev/null, so nothing ever waits
    for the caller's keyboard. A signal during the run kills it (see
    :func:`_cancel_on_signals`); after one (``canceled()``) ansible-playbook
    is not started at all. Errors of ansible-runner itself become PlaybookError
    (secrets masked).
    """
    from ansible_runner.exceptions import AnsibleRunnerException
    from ansible_runner.interface import init_runner

    try:
        # timeout and pexpect_timeout (wake each second to check it) serve an
        # ansible-runner whose Runner has no runner_mode to switch.
        runner = init_runner(
            timeout=timeout, settings={"pexpect_timeout": 1}, cancel_callback=canceled, **kwargs
        )
        if canceled():
            return runner
        with open(os.devnull, "rb") as devnull:
            if getattr(runner, "runner_mode", None) == "pexpect":
                runner.runner_mode = "subprocess"
                runner.config.subprocess_timeout = timeout
                runner.config.input_fd = devnull
            runner.run()
        return runner
    except (AnsibleRunnerException, ValueError, OSError) as exc:
        raise PlaybookError(f"ansible-runner failed: {_mask(str(exc), secrets)}") from None


@contextlib.contextmanager
def _cancel_on_signals(marker: bytes) -> Iterator[tuple[Callable[[], bool], list[int]]]:
    """SIGINT/SIGTERM during the run end it (every process carrying ``marker`` is killed).

    Yields a cancel_callback and the signals received; the caller's handlers
    are restored after. After a signal, a reaper thread kills whatever of the
    run still starts (ansible-playbook, if the signal came just before it was
    spawned) until the block ends. Without this, ansible-runner installs its
    own SIGINT/SIGTERM handlers for good, and Ctrl-C no longer interrupts the
    caller after the first run. Outside the main thread no handler can be set:
    nothing is caught there.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield (lambda: False), received
        return
    done = threading.Event()

    def reap() -> None:
        while not done.wait(0.02):
            _kill_leftovers(marker, rounds=1)

    reaper = threading.Thread(target=reap, name="ipsinfra-run-reaper", daemon=True)

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        _kill_leftovers(marker)  # ansible-playbook ends, so the runner returns at once
        if not reaper.is_alive() and not done.is_set():
            reaper.start()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield (lambda: bool(received)), received
    finally:
        done.set()
        if reaper.is_alive():
            reaper.join()
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(
    name: str,
    inventory: str | Path | Mapping[str, Any],
    *,
    limit: str | None = None,
    extravars: Mapping[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
    playbook_dir: Path | None = None,
    timeout: float | None = None,
    envvars: Mapping[str, str] | None = None,
    keep_artifacts: Path | None = None,
    private_data_root: Path | None = None,
    mitogen: bool | None = None,
) -> PlaybookResult:
    """Run playbook ``name`` (``playbooks/<name>.yml``) and return one result per host.

    Args:
        name: a bare playbook name, ``ping`` or ``ping.yml``; never a path.
        inventory: an inventory path (file or directory), INI text, or a dict
            in Ansible's YAML/JSON inventory shape.
        limit: ``--limit`` pattern.
        extravars: ``-e`` values; written only inside the temporary run dir
            and masked in every message this function produces.
        check: ``--check``.  diff: ``--diff``.
        playbook_dir: where playbooks live (default: the repository's ``playbooks/``).
        timeout: seconds (rounded up) before ansible-playbook is killed.
        envvars: extra environment for ansible-playbook (wins over the defaults
            and over the shipped ansible.cfg, see :func:`settings_env`).
        keep_artifacts: copy the run's ``artifacts/`` (never ``env/``) there, masked:
            ``command`` keeps argv, cwd and the ``ANSIBLE_*`` settings only, and
            every file has the extravars under a secret-like key (``*password*``,
            ``*token*``, ``*secret*``, ``*key*``...), registered secrets and
            ``password=...`` values replaced.
        private_data_root: where the temporary run dir is made (default: TMPDIR).
        mitogen: run with Mitogen's ``mitogen_linear`` strategy (needs the
            ``mitogen`` extra); None: only if ``IPSINFRA_MITOGEN=1`` is set
            (in the environment or ``envvars``).

    Raises:
        InvalidInput: bad playbook name or inventory, or ``mitogen`` asked for
            and not installed.
        OperationTimeout: the run exceeded ``timeout``.
        PlaybookError: the run was canceled or ansible-playbook produced no recap.
    """
    directory = (playbook_dir or default_playbook_dir()).resolve()
    if not directory.is_dir():
        raise InvalidInput(f"playbook_dir: {str(directory)!r} is not a directory")
    playbook = _playbook_file(name, directory)
    if timeout is not None and not timeout > 0:
        raise InvalidInput(f"timeout: {timeout!r} must be a positive number of seconds")
    inventory_arg = _inventory_arg(inventory)
    secrets = _secret_strings(dict(extravars or {}))
    # Kept artifacts and every log line mask the secret-keyed ones (messages of run() mask all).
    secret_extravars = _secret_values(dict(extravars or {}))
    redact.install()
    redact.register(*secret_extravars)
    cmdline = " ".join(flag for flag, on in (("--check", check), ("--diff", diff)) if on)
    use_mitogen = _mitogen_wanted(mitogen, {**os.environ, **(envvars or {})})
    if use_mitogen:
        _require_mitogen()  # before any run dir exists

    if private_data_root is not None:
        private_data_root.mkdir(parents=True, exist_ok=True)
    pdd = Path(tempfile.mkdtemp(prefix="ipsinfra-run-", dir=private_data_root))  # mode 0700
    started = time.monotonic()
    keeper = _StatsKeeper(secrets, secret_extravars)
    run_id = uuid.uuid4().hex
    marker = f"IPSINFRA_RUN_ID={run_id}".encode()
    ended_normally = False
    try:
        (pdd / "tmp").mkdir(mode=0o700)
        with _cancel_on_signals(marker) as (cancel_callback, received):
            runner = _run_ansible_runner(
                secrets,
                math.ceil(timeout) if timeout is not None else None,
                cancel_callback,
                private_data_dir=str(pdd),
                project_dir=str(directory),
                playbook=playbook.name,
                inventory=inventory_arg,
                limit=limit,
                extravars=dict(extravars) if extravars else None,
                cmdline=cmdline or None,
                envvars=_envvars(pdd, run_id, envvars, mitogen=use_mitogen),
                fact_cache_type="memory",
                quiet=True,
                event_handler=keeper,
            )
        duration = time.monotonic() - started
        status, rc = str(runner.status), runner.rc
        ended_normally = status in {"successful", "failed"} and not received
        if status == "timeout":
            raise OperationTimeout(
                f"playbook {playbook.stem!r} did not finish within {timeout:g} s and was killed"
            )
        if status == "canceled" or received:
            if signal.SIGINT in received:
                raise KeyboardInterrupt
            raise PlaybookError(f"playbook {playbook.stem!r}: canceled by signal {received}")
        stats = runner.stats
        if stats is None:
            raise PlaybookError(
                f"playbook {playbook.stem!r}: ansible-runner reported no stats "
                f"(status={status}, rc={rc}); last output:\n{_stdout_tail(pdd, secrets)}"
            )
        return result_from_stats(
            status,
            rc,
            stats,
            playbook=playbook.stem,
            duration_s=duration,
            data=_mask_data(keeper.artifact_data, secrets),
            run_dir=pdd,
            unreachable_reasons=keeper.unreachable,
            failures=keeper.failures,
        )
    finally:
        if not ended_normally:
            # After a normal end only ssh ControlPersist masters remain; they may stay.
            _kill_leftovers(marker)
        try:
            if keep_artifacts is not None and (pdd / "artifacts").is_dir():
                _keep_artifacts(pdd / "artifacts", keep_artifacts, secret_extravars)
        finally:
            shutil.rmtree(pdd, ignore_errors=True)
            if pdd.exists():  # a just-killed worker finished one last mkdir
                time.sleep(0.05)
                shutil.rmtree(pdd, ignore_errors=True)
