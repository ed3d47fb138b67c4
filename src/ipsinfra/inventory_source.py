"""Which inventory a command reads: ``-i``, else ``IPSINFRA_INVENTORY``, else Ansible's own.

There is no built-in default: a command that writes the inventory back must
never fall on one it was not pointed at (the repository's example, say). The
first of these wins:

1. the ``-i``/``--inventory`` value;
2. ``$IPSINFRA_INVENTORY``;
3. ``$ANSIBLE_INVENTORY`` (Ansible's comma-separated list of sources);
4. ``inventory`` in ``[defaults]`` of the ansible.cfg Ansible itself reads:
   ``$ANSIBLE_CONFIG`` (a file, or a directory holding ``ansible.cfg``), else
   ``./ansible.cfg`` (skipped in a world-writable directory, as Ansible does),
   else ``~/.ansible.cfg``, else ``/etc/ansible/ansible.cfg`` - the first that
   exists; a relative path is taken from the cfg file's directory.

From a list (3 and 4) the first entry that is an existing directory is taken,
else the only entry. None of them set, or a path that does not exist, raises
:class:`~ipsinfra.errors.InventoryError` (bad input, exit 2 on the CLI).
Ansible's own fallback, ``/etc/ansible/hosts``, is not used.

    >>> resolve_inventory(None, environ={"IPSINFRA_INVENTORY": "inventory/site"})  # doctest: +SKIP
    PosixPath('inventory/site')
"""

from __future__ import annotations

import configparser
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

from ipsinfra.errors import InventoryError

__all__ = [
    "ENV_VAR",
    "OPTION_HELP",
    "SOURCES_HELP",
    "ansible_config_file",
    "find_inventory",
    "resolve_inventory",
]

ENV_VAR = "IPSINFRA_INVENTORY"
SYSTEM_CONFIG = Path("/etc/ansible/ansible.cfg")

# Plain text for --help (no square brackets: rich markup would eat them).
SOURCES_HELP = (
    "Without -i: $IPSINFRA_INVENTORY, else the first directory listed in $ANSIBLE_INVENTORY "
    "(or its only entry), else the inventory setting (section defaults) of the ansible.cfg Ansible "
    "reads ($ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg, /etc/ansible/ansible.cfg, the first found)."
)
OPTION_HELP = (
    f"Inventory directory (Ansible YAML). {SOURCES_HELP} None of these set is an error: "
    "there is no built-in default."
)

_VAR = re.compile(r"\$(?:(\w+)|\{([^}]*)\})")

NONE_GIVEN = (
    "inventory: none given: pass -i DIR, or set IPSINFRA_INVENTORY "
    "(or ANSIBLE_INVENTORY / ansible.cfg [defaults] inventory)"
)


def resolve_inventory(
    option: str | Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The inventory a command reads (see the module doc for the order).

    Raises InventoryError when none is configured, or the chosen one does not
    exist; the message names where the value came from.
    """
    found = find_inventory(option, environ=environ, cwd=cwd)
    if found is None:
        where = ansible_config_file(environ=environ, cwd=cwd)
        raise InventoryError(NONE_GIVEN + (f"; {where} sets none" if where is not None else ""))
    return found[0]


def find_inventory(
    option: str | Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[Path, str] | None:
    """``(path, where it came from)``, or None when nothing names an inventory.

    ``where`` is ``-i``, ``IPSINFRA_INVENTORY``, ``ANSIBLE_INVENTORY`` or the
    ansible.cfg's path. A named path that does not exist raises InventoryError.
    """
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    if option is not None and str(option) != "":
        return _existing(Path(option), "-i"), "-i"
    if env.get(ENV_VAR, "").strip():
        return _existing(Path(env[ENV_VAR].strip()).expanduser(), ENV_VAR), ENV_VAR
    if env.get("ANSIBLE_INVENTORY", "").strip():
        source = "ANSIBLE_INVENTORY"
        return _pick(env["ANSIBLE_INVENTORY"], base=here, env=env, where=source), source
    cfg = ansible_config_file(environ=env, cwd=here)
    if cfg is None:
        return None
    value = _cfg_inventory(cfg)
    if value is None:
        return None
    return _pick(value, base=cfg.parent, env=env, where=str(cfg)), str(cfg)


def ansible_config_file(*, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The ansible.cfg Ansible would read, by its documented order; None when there is none.

    ``$ANSIBLE_CONFIG`` (a directory means its ``ansible.cfg``), ``./ansible.cfg``
    unless the current directory is world-writable, ``~/.ansible.cfg``,
    ``/etc/ansible/ansible.cfg``: the first that exists and can be read
    (ansible-core's ``find_ini_config_file``).
    """
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    candidates: list[Path] = []
    if "ANSIBLE_CONFIG" in env:
        from_env = _expand(env["ANSIBLE_CONFIG"], base=here, env=env)
        candidates.append(from_env / "ansible.cfg" if from_env.is_dir() else from_env)
    try:
        if not here.stat().st_mode & stat.S_IWOTH:
            candidates.append(here / "ansible.cfg")
    except OSError:
        pass
    candidates.append(Path(os.path.expanduser("~/.ansible.cfg")))
    candidates.append(SYSTEM_CONFIG)
    for path in candidates:
        if path.exists() and os.access(path, os.R_OK):
            return path
    return None


def _cfg_inventory(cfg: Path) -> str | None:
    """``[defaults] inventory`` of ``cfg``, read as Ansible reads it; None when unset or empty."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    try:
        parser.read_string(cfg.read_text(encoding="utf-8"), source=str(cfg))
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise InventoryError(f"inventory: {cfg}: not a readable ansible.cfg: {exc}") from None
    value = parser.get("defaults", "inventory", raw=True, fallback="").strip()
    return value or None


def _pick(value: str, *, base: Path, env: Mapping[str, str], where: str) -> Path:
    """From Ansible's comma-separated sources: the first existing directory, else the only entry."""
    entries = [_expand(x.strip(), base=base, env=env) for x in value.split(",") if x.strip()]
    for entry in entries:
        if entry.is_dir():
            return entry
    if len(entries) == 1:
        return _existing(entries[0], where)
    raise InventoryError(f"inventory: value {value!r} (from {where}): none of its entries is a directory")


def _expand(value: str, *, base: Path, env: Mapping[str, str]) -> Path:
    """``~`` and ``$VAR`` expanded, a relative path joined to ``base`` (Ansible's ``unfrackpath``)."""
    expanded = os.path.expanduser(_expandvars(value, env))
    path = Path(expanded)
    return path if path.is_absolute() else base / path


def _expandvars(value: str, env: Mapping[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` from ``env``; unknown ones stay as written (``os.path.expandvars``)."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return env.get(name, match.group(0))

    return _VAR.sub(sub, value)


def _existing(path: Path, where: str) -> Path:
    if not path.exists():
        raise InventoryError(f"inventory: value {str(path)!r} (from {where}): no such directory")
    return path
