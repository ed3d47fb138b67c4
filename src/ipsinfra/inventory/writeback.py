"""Write a change to the fleet back into the inventory files it came from.

After ``provision``, ``migrate`` (with the §9.10 rename), ``resize``,
``block``/``unblock`` and the §7.2 cancel, the VDS's record must follow the
fleet, or the next audit reports ipsinfra's own work as drift. Three layers:

- :func:`updates_of` (pure): an operation's result -> :class:`RecordUpdate`
  (which record, its new name, the fields that changed).
- :func:`compute_change` (pure: texts in, texts out): the file edits that
  apply an update to an inventory, as an :class:`InventoryChange` whose
  :meth:`~InventoryChange.diff` is a unified diff (``--check``) and whose
  :meth:`~InventoryChange.ansible_diff` is Ansible's ``diff`` (before/after).
- :func:`write_back`: reads the files, computes, checks that the edited
  inventory still loads and says what the update says, then writes under a
  lock, all files or none (:mod:`ipsinfra.inventory.atomic`: temp files
  fsynced, backups, an intent record, ``os.replace``; an interrupted
  write-back is rolled back by the next one). It never raises for an inventory problem: an unwritable
  folder, a host_vars file with a syntax error, a file renamed by someone
  else come back as :attr:`InventoryChange.error`, naming the file, with the
  diff of what to change by hand where it could be computed.

Edits are spliced into the original text at the positions the YAML parser
reports (:mod:`ipsinfra.inventory.yamledit`), so every byte outside the
changed values stays as it was; files are written by
:mod:`ipsinfra.inventory.atomic` (lock, temp file, fsync, ``os.replace``).

    >>> change = write_back(result, "inventory/msk", check=True)  # doctest: +SKIP
    >>> print(change.diff())  # doctest: +SKIP
    --- a/host_vars/VPS1003-113-20.yml
    +++ b/host_vars/VPS1003-113-10.yml
    ...
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra.errors import InvalidName, InventoryError, IpsinfraError
from ipsinfra.inventory.atomic import (
    BACKUP_SUFFIX,
    LOCK_NAME,
    PENDING_NAME,
    TEMP_SUFFIX,
    inventory_lock,
    settle,
    write_atomically,
)
from ipsinfra.inventory.fleet import Fleet
from ipsinfra.inventory.yamledit import (
    DELETE,
    WriteBackError,
    add_host,
    flow,
    plain,
    rename_host,
    same,
    set_keys,
)
from ipsinfra.models import Vds
from ipsinfra.naming import pve_safe_name

if TYPE_CHECKING:
    from ipsinfra.journal import Journal

HOST_VARS_SUFFIXES = (".yml", ".yaml")
# Model field -> the host var that holds it (the rest are spelled alike).
VDS_KEYS = {"name": "vds_name", "order": "vds_order"}
# A new VDS's host_vars file lists these, in this order (the example inventory's).
NEW_VDS_FIELDS = (
    "name",
    "node",
    "client",
    "backend_id",
    "vcpus",
    "cpuset",
    "memory_mib",
    "disks",
    "ips",
    "nics",
    "os",
    "arch",
    "install_type",
    "panel",
    "comment",
    "activated",
    "trial_end",
    "autostart",
    "blocked",
    "blocked_reason",
    "cancelled",
)


# --- what changed -------------------------------------------------------------
class RecordUpdate(BaseModel):
    """One record's change, in model field names.

    ``values`` are set (``DELETE`` drops the key); ``only_if_present`` keys are
    updated where the host's file already has them and never added (a value the
    inventory does not track, e.g. ``vnc_listen``). ``record`` is a new VDS.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    action: str = Field(description="provision, migrate, resize, block, unblock, cancel, sync")
    kind: Literal["vds", "dedicated"] = "vds"
    name: str = Field(description="the record's name before the change (a VDS's house name)")
    new_name: str | None = Field(default=None, description="§9.10: the house name after a migration")
    values: dict[str, Any] = Field(default_factory=dict)
    only_if_present: frozenset[str] = frozenset()
    record: Vds | None = None

    @property
    def final_name(self) -> str:
        return self.new_name or self.name


def updates_of(result: Any) -> list[RecordUpdate]:
    """The record updates an operation's result implies (pure). Unknown results give none.

    A checked-only result gives the updates the real run would make, so
    ``--check`` can show the inventory's diff.
    """
    from ipsinfra.abuse.block import BlockResult
    from ipsinfra.abuse.handle import HandleResult, ServiceOutcome
    from ipsinfra.migrate import MigrationResult
    from ipsinfra.provision import ProvisionResult
    from ipsinfra.resize import ResizeResult

    if isinstance(result, ProvisionResult):
        return [RecordUpdate(action="provision", name=result.plan.name, record=result.record)]
    if isinstance(result, MigrationResult):
        plan = result.plan
        if not (result.changed or result.checked_only or result.vds is not None):
            return []
        values: dict[str, Any] = {"node": plan.target, "vcpus": plan.vcpus}
        present: set[str] = {"vnc_listen", "cpuset"}  # kept where the record has them, never added
        values["vnc_listen"] = str(plan.vnc_listen)
        if plan.cpuset is not None:
            values["cpuset"] = plan.cpuset
        if result.vds is not None and result.vds.backend_id:
            values["backend_id"] = result.vds.backend_id
            present.add("backend_id")
        return [
            RecordUpdate(
                action="migrate",
                name=plan.name,
                new_name=plan.new_name if plan.new_name != plan.name else None,
                values=values,
                only_if_present=frozenset(present),
            )
        ]
    if isinstance(result, ResizeResult):
        return _resize_update(result)
    if isinstance(result, BlockResult):
        proof = result.proof
        if proof.server is None:  # an unchanged block still says blocked: the record may lag
            return []
        kind: Literal["vds", "dedicated"] = "vds" if proof.kind == "vds" else "dedicated"
        if result.action == "block":
            values = {"blocked": True}
            reason = result.after.get("blocked") if kind == "vds" else None
            if isinstance(reason, str) and reason:
                values["blocked_reason"] = reason
        else:
            values = {"blocked": False, "blocked_reason": DELETE}
        present = set()
        if kind == "vds" and isinstance(result.after.get("autostart"), bool):
            values["autostart"] = result.after["autostart"]  # a record that says autostart follows it
            present.add("autostart")
        return [
            RecordUpdate(
                action=result.action,
                kind=kind,
                name=proof.server,
                values=values,
                only_if_present=frozenset(present),
            )
        ]
    if isinstance(result, ServiceOutcome):
        out = updates_of(result.block) if result.block is not None else []
        if result.cancelled and result.server is not None:
            out.append(RecordUpdate(action="cancel", name=result.server, values={"cancelled": True}))
        return out
    if isinstance(result, HandleResult):
        return [u for s in result.services for u in updates_of(s)]
    if isinstance(result, Sequence) and not isinstance(result, str):
        return [u for item in result for u in updates_of(item)]
    return []


def _resize_update(result: Any) -> list[RecordUpdate]:
    plan = result.plan
    if not plan.changes or not (result.changed or result.checked_only):
        return []
    values: dict[str, Any] = {}
    for change in plan.changes:
        if change.param == "cores":
            values["vcpus"] = change.after
        elif change.param == "memory":
            values["memory_mib"] = change.after
        elif change.param == "disk":
            values.setdefault("_disks", {})[change.disk] = change.after
    present: frozenset[str] = frozenset()
    if result.vds is not None and result.vds.cpuset is not None:
        values["cpuset"] = result.vds.cpuset  # kept where the record has one, never added
        present = frozenset({"cpuset"})
    return [RecordUpdate(action="resize", name=plan.name, values=values, only_if_present=present)]


# --- the change ------------------------------------------------------------------
class FileEdit(BaseModel):
    """One file's change. ``before`` None: a new file; ``renamed_from``: the file it replaces."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="relative to the inventory directory")
    before: str | None
    after: str
    renamed_from: str | None = None

    def diff(self) -> str:
        old = self.renamed_from or self.path
        return "".join(
            difflib.unified_diff(
                (self.before or "").splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile="/dev/null" if self.before is None else f"a/{old}",
                tofile=f"b/{self.path}",
            )
        )


class InventoryChange(BaseModel):
    """What a write-back changed (or, with ``check``/an error, would change) in an inventory."""

    model_config = ConfigDict(frozen=True)

    inventory: str
    action: str = ""
    records: list[str] = Field(default_factory=list, description="house names, after the change")
    edits: list[FileEdit] = Field(default_factory=list)
    written: bool = False
    checked_only: bool = False
    error: str | None = Field(default=None, description="why nothing was written, naming the file")
    journal_seq: int | None = Field(default=None, description="the journal line of this write-back")
    journal_error: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.edits)

    @property
    def ok(self) -> bool:
        return self.error is None

    def diff(self) -> str:
        """Every edit as one unified diff, paths relative to the inventory directory."""
        return "".join(e.diff() for e in self.edits)

    def ansible_diff(self) -> list[dict[str, str]]:
        """Ansible's ``diff`` return value: one before/after pair per file."""
        out = []
        for e in self.edits:
            out.append(
                {
                    "before_header": str(Path(self.inventory) / (e.renamed_from or e.path))
                    if e.before is not None
                    else "/dev/null",
                    "after_header": str(Path(self.inventory) / e.path),
                    "before": e.before or "",
                    "after": e.after,
                }
            )
        return out

    def describe(self) -> list[str]:
        """Lines for a human: what was (or would be) written, or what to do by hand."""
        lines: list[str] = []
        if self.error is not None:
            lines.append(f"inventory NOT updated: {self.error}")
            if self.edits:
                lines.append(f"change these files in {self.inventory} by hand:")
        elif not self.edits:
            lines.append(f"inventory {self.inventory}: up to date")
        else:
            verb = "updated" if self.written else "would update"
            for e in self.edits:
                what = f"{e.renamed_from} -> {e.path}" if e.renamed_from else e.path
                lines.append(f"inventory {verb}: {what}" + (" (new)" if e.before is None else ""))
        return lines

    def raise_on_error(self) -> None:
        if self.error is not None:
            raise WriteBackError(self.error)


def new_host_vars(record: Vds) -> str:
    """A new VDS's host_vars file, in the example inventory's shape (flow lists, one key a line)."""
    data = record.model_dump(exclude_defaults=True)
    data["name"] = record.name
    data["disks"] = [d.model_dump(exclude_none=True) for d in record.disks]
    data["nics"] = [n.model_dump(exclude_defaults=True) for n in record.nics]
    lines = ["---\n"]
    for field in NEW_VDS_FIELDS:
        if field in data and data[field] not in (None, "", []):
            lines.append(f"{VDS_KEYS.get(field, field)}: {flow(data[field])}\n")
    return "".join(lines)


# --- the change of one update (pure: texts in, texts out) ----------------------
def _host_file(files: Mapping[str, str | None], host: str) -> str:
    for suffix in HOST_VARS_SUFFIXES:
        rel = f"host_vars/{host}{suffix}"
        if files.get(rel) is not None:
            return rel
    return f"host_vars/{host}.yml"


def _twin(name: str) -> str:
    try:
        return pve_safe_name(name)
    except InvalidName:
        return name


def compute_edits(
    fleet: Fleet, files: Mapping[str, str | None], update: RecordUpdate, hosts_file: str = "hosts.yml"
) -> dict[str, FileEdit]:
    """The file edits that apply ``update`` to an inventory (pure).

    ``fleet`` is the inventory as loaded; ``files`` maps each path the update
    may touch (relative to the inventory, from :func:`files_needed`) to its text
    (None: absent). Returns ``{path: FileEdit}``; a record already as the update
    says gives no edits (a second write-back is a no-op).
    """
    records = fleet.vds if update.kind == "vds" else fleet.dedicated
    final = update.final_name
    current = records.get(final) or records.get(update.name)
    edits: dict[str, FileEdit] = {}
    if current is None:
        if update.record is None:
            gone = (
                _host_file(files, _twin(update.name)) if update.kind == "vds" else f"host_vars/{update.name}"
            )
            raise WriteBackError(
                f"{gone}: {update.kind} {update.name} is not in the inventory any more "
                f"(renamed or removed by another process?); its record must say: {plain(update.values)}"
            )
        host = _twin(final)
        rel = _host_file(files, host)
        if files.get(rel) is not None:
            raise WriteBackError(f"{rel}: exists, but {hosts_file} does not list {host} under vds")
        edits[rel] = FileEdit(path=rel, before=None, after=new_host_vars(update.record))
        hosts_text = files.get(hosts_file) or ""
        edits[hosts_file] = FileEdit(
            path=hosts_file, before=hosts_text, after=add_host(hosts_text, hosts_file, "vds", host)
        )
        return {k: e for k, e in edits.items() if e.before != e.after}

    old_host = fleet.inventory_hostname(current.name)
    new_host = _twin(final) if update.new_name and current.name != final else old_host
    old_rel = _host_file(files, old_host)
    before = files.get(old_rel)
    values = _host_values(current, update)
    if update.new_name and current.name != final:
        values = {VDS_KEYS["name"]: final, **values}
    after = set_keys(before or "---\n", old_rel, values, update.only_if_present)
    if new_host != old_host:
        new_rel = old_rel.replace(f"host_vars/{old_host}", f"host_vars/{new_host}", 1)
        if files.get(new_rel) is not None:
            raise WriteBackError(f"{new_rel}: exists already; cannot rename {old_rel} to it")
        edits[new_rel] = FileEdit(path=new_rel, before=before, after=after, renamed_from=old_rel)
        hosts_text = files.get(hosts_file) or ""
        edits[hosts_file] = FileEdit(
            path=hosts_file, before=hosts_text, after=rename_host(hosts_text, hosts_file, old_host, new_host)
        )
    elif before != after:
        edits[old_rel] = FileEdit(path=old_rel, before=before, after=after)
    return {k: e for k, e in edits.items() if e.before != e.after or e.renamed_from}


def _host_values(current: Any, update: RecordUpdate) -> dict[str, Any]:
    """The update's values as host vars, each only where the record does not say so already."""
    values: dict[str, Any] = {}
    for field, value in update.values.items():
        if field == "_disks":
            sizes = dict(value)
            if None in sizes and current.disks:  # "the first disk" when the resize named none
                sizes.setdefault(current.disks[0].name, sizes.pop(None))
            disks = [d.model_copy(update={"size_gib": sizes.get(d.name, d.size_gib)}) for d in current.disks]
            if disks != current.disks:
                values["disks"] = [d.model_dump(mode="json", exclude_none=True) for d in disks]
            continue
        unchanged = value is not DELETE and same(plain(getattr(current, field, None)), plain(value))
        if unchanged and field not in update.only_if_present:
            continue
        values[VDS_KEYS.get(field, field)] = value
    return values


def files_needed(fleet: Fleet, update: RecordUpdate, hosts_file: str = "hosts.yml") -> list[str]:
    """Every inventory path (relative) :func:`compute_edits` may read for ``update``."""
    records = fleet.vds if update.kind == "vds" else fleet.dedicated
    hosts = {_twin(update.name), _twin(update.final_name)} if update.kind == "vds" else {update.name}
    for name in (update.name, update.final_name):
        if name in records:
            hosts.add(fleet.inventory_hostname(name))
    return [hosts_file] + [f"host_vars/{h}{s}" for h in sorted(hosts) for s in HOST_VARS_SUFFIXES]


def compute_change(
    fleet: Fleet,
    files: Mapping[str, str | None],
    updates: Sequence[RecordUpdate],
    *,
    inventory: str = "",
    hosts_file: str = "hosts.yml",
) -> InventoryChange:
    """Apply ``updates`` one after another to ``files`` (pure); the edits are against the originals."""
    current: dict[str, str | None] = dict(files)
    firsts: dict[str, FileEdit] = {}
    for update in updates:
        for rel, edit in compute_edits(fleet, current, update, hosts_file).items():
            first = firsts.get(rel)
            origin = edit.renamed_from or rel
            if first is None and origin != rel and origin in firsts:
                first = firsts.pop(origin)
            firsts[rel] = FileEdit(
                path=rel,
                before=first.before if first is not None else edit.before,
                after=edit.after,
                renamed_from=(first.renamed_from if first is not None else None) or edit.renamed_from,
            )
            current[rel] = edit.after
            if edit.renamed_from:
                current[edit.renamed_from] = None
        fleet = _reload_hint(fleet, update)
    return InventoryChange(
        inventory=inventory,
        action=",".join(dict.fromkeys(u.action for u in updates)),
        records=list(dict.fromkeys(u.final_name for u in updates)),
        edits=[e for e in firsts.values() if e.before != e.after or e.renamed_from],
    )


def _reload_hint(fleet: Fleet, update: RecordUpdate) -> Fleet:
    """The fleet with ``update`` applied to names only, so a later update finds the record."""
    if update.kind != "vds" or (update.record is None and not update.new_name):
        return fleet
    vds = dict(fleet.vds)
    hostnames = dict(fleet.hostnames)
    if update.record is not None and update.name not in vds:
        vds[update.name] = update.record
        hostnames[_twin(update.name)] = update.name
    elif update.new_name and update.name in vds:
        host = fleet.inventory_hostname(update.name)
        vds[update.new_name] = vds.pop(update.name).model_copy(update={"name": update.new_name})
        hostnames.pop(host, None)
        hostnames[_twin(update.new_name)] = update.new_name
    return fleet.model_copy(update={"vds": vds, "hostnames": hostnames})


# --- I/O: lock, validate, atomic writes ------------------------------------------
def _read_files(base: Path, rels: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for rel in rels:
        path = base / rel
        try:
            out[rel] = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            out[rel] = None
        except (OSError, UnicodeDecodeError) as exc:
            raise WriteBackError(f"{path}: cannot be read: {exc}") from None
    return out


def _verify(base: Path, hosts_file: str, edits: Sequence[FileEdit], updates: Sequence[RecordUpdate]) -> None:
    """Load a copy of the inventory with the edits applied; it must load and hold the updated records."""
    from ipsinfra.inventory.reading import load

    with tempfile.TemporaryDirectory(prefix="ipsinfra-wb-") as tmp:
        copy = Path(tmp) / "inv"
        ours = (".git", LOCK_NAME, PENDING_NAME, f".*{TEMP_SUFFIX}", f".*{BACKUP_SUFFIX}")
        shutil.copytree(base, copy, ignore=shutil.ignore_patterns(*ours))
        for edit in edits:
            if edit.renamed_from:
                (copy / edit.renamed_from).unlink(missing_ok=True)
            (copy / edit.path).parent.mkdir(parents=True, exist_ok=True)
            (copy / edit.path).write_text(edit.after, encoding="utf-8")
        try:
            fleet = load(copy / hosts_file)
        except InventoryError as exc:
            raise WriteBackError(
                f"the changed inventory would not load: {str(exc).replace(str(copy), str(base))}"
            ) from None
    for update in updates:
        records = fleet.vds if update.kind == "vds" else fleet.dedicated
        if update.final_name not in records:
            raise WriteBackError(f"{base}: after the edits, {update.final_name} is not in the inventory")


def _hosts_file(base: Path) -> tuple[Path, str]:
    if base.is_file():
        return base.parent, base.name
    for name in ("hosts.yml", "hosts.yaml"):
        if (base / name).is_file():
            return base, name
    raise WriteBackError(f"{base}: no hosts.yml in the inventory directory")


def write_back(
    result: Any,
    inventory: str | Path,
    *,
    check: bool = False,
    journal: Journal | None = None,
    actor: str | None = None,
) -> InventoryChange:
    """Update the inventory at ``inventory`` after ``result`` (provision, migrate, resize, block...).

    With ``check`` (or a checked-only result) nothing is written: the change
    says what would be. Never raises for an inventory problem: see
    :attr:`InventoryChange.error`. With a journal, a written change is a line
    ``inventory.write_back`` (and a failed one, ``result='failed'``).
    """
    return write_updates(
        updates_of(result),
        inventory,
        check=check or bool(getattr(result, "checked_only", False)),
        journal=journal,
        actor=actor,
    )


def write_updates(
    updates: Sequence[RecordUpdate],
    inventory: str | Path,
    *,
    check: bool = False,
    journal: Journal | None = None,
    actor: str | None = None,
    journal_action: str = "inventory.write_back",
    journal_after: Mapping[str, Any] | None = None,
) -> InventoryChange:
    """:func:`write_back` for updates already made (``inventory sync``'s): same lock, checks and journal.

    ``journal_after`` is merged into the journal line's ``after`` (next to ``files``).
    """
    shown = str(inventory)
    change = InventoryChange(inventory=shown, checked_only=check)
    if not updates:
        return change
    try:
        base, hosts_file = _hosts_file(Path(inventory))
        shown = str(base)
        lock: contextlib.AbstractContextManager[None] = (
            contextlib.nullcontext() if check else inventory_lock(base)
        )
        try:
            with lock:
                if not check:
                    put_back = settle(base)
                    if put_back and journal is not None:
                        with contextlib.suppress(IpsinfraError):
                            journal.record(
                                "inventory.rollback",
                                f"{base}: {', '.join(put_back)}",
                                detail="an interrupted write-back was rolled back: the files are as before",
                                actor=actor,
                            )
                change = _compute(base, hosts_file, updates, check)
                if change.edits and not check:
                    _verify(base, hosts_file, change.edits, updates)
                    write_atomically(base, change.edits)
                    change = change.model_copy(update={"written": True})
        except WriteBackError:
            # Unwritable, locked or malformed: say what to change, from an unlocked read where one works.
            if not change.edits:
                with contextlib.suppress(WriteBackError, InventoryError):
                    change = _compute(base, hosts_file, updates, True)
            raise
    except WriteBackError as exc:
        change = change.model_copy(update={"error": str(exc), "written": False, "checked_only": check})
    if journal is not None and not check and (change.written or change.error):
        try:
            entry = journal.record(
                journal_action,
                f"{shown}: {', '.join(change.records) or ', '.join(u.final_name for u in updates)}",
                result="ok" if change.error is None else "failed",
                after={"files": [e.path for e in change.edits], **(journal_after or {})},
                detail=change.error or "; ".join(change.describe()),
                actor=actor,
            )
        except IpsinfraError as exc:  # the fleet's change is journalled already; this line is extra
            change = change.model_copy(update={"journal_error": str(exc)})
        else:
            change = change.model_copy(update={"journal_seq": entry.seq})
    return change


def _compute(base: Path, hosts_file: str, updates: Sequence[RecordUpdate], check: bool) -> InventoryChange:
    from ipsinfra.inventory.reading import load

    try:
        fleet = load(base / hosts_file)
    except InventoryError as exc:
        raise WriteBackError(str(exc)) from None
    rels: list[str] = []
    hint = fleet
    for update in updates:
        rels += files_needed(hint, update, hosts_file)
        hint = _reload_hint(hint, update)
    files = _read_files(base, list(dict.fromkeys(rels)))
    change = compute_change(fleet, files, updates, inventory=str(base), hosts_file=hosts_file)
    return change.model_copy(update={"checked_only": check})


# --- git ------------------------------------------------------------------------------
def _git(base: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=base,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **env} if env else None,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WriteBackError(f"{base}: git {args[0]}: {exc}") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise WriteBackError(f"{base}: git {args[0]}: {why[-1] if why else f'exit {done.returncode}'}")
    return done.stdout.strip()


def commit_message(change: InventoryChange) -> str:
    """``ipsinfra migrate: VPS1003(113.10) (journal #42)``: the action, the records, the journal line."""
    seq = f" (journal #{change.journal_seq})" if change.journal_seq is not None else ""
    return f"ipsinfra {change.action or 'write-back'}: {', '.join(change.records)}{seq}"


def commit_change(change: InventoryChange, message: str | None = None) -> str | None:
    """Commit a written change's files (only those) in the inventory's git repository.

    Returns the new commit's id, or None when nothing was written. Raises
    WriteBackError (naming the inventory) when it is not in a git repository
    or git refuses; the files stay written either way.
    """
    if not change.written or not change.edits:
        return None
    base = Path(change.inventory)
    _git(base, "rev-parse", "--show-toplevel")
    paths = [e.path for e in change.edits] + [e.renamed_from for e in change.edits if e.renamed_from]
    with inventory_lock(base):
        _git(base, "add", "-A", "--", *paths)
        who: dict[str, str] = {}
        if not subprocess.run(
            ["git", "config", "user.email"], cwd=base, capture_output=True, check=False
        ).stdout.strip():  # an AWX checkout has no identity: commit as ipsinfra
            who = {
                f"GIT_{role}_{part}": value
                for role in ("AUTHOR", "COMMITTER")
                for part, value in (("NAME", "ipsinfra"), ("EMAIL", "ipsinfra@localhost"))
            }
        _git(base, "commit", "--quiet", "-m", message or commit_message(change), "--", *paths, env=who)
        return _git(base, "rev-parse", "HEAD")


# --- the operations' option ------------------------------------------------------
P = ParamSpec("P")
R = TypeVar("R")


def writes_back(func: Callable[P, R]) -> Callable[P, R]:
    """Give an operation an ``inventory=`` keyword: its result then carries ``inventory_change``.

    The operation declares ``inventory: str | Path | None = None`` itself (for
    its signature and docs); this wrapper does the work after it returns.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        inventory = kwargs.get("inventory")
        result = func(*args, **kwargs)
        if not isinstance(inventory, str | Path) or not isinstance(result, BaseModel):
            return result
        change = write_back(
            result,
            inventory,
            check=bool(kwargs.get("check", False)),
            journal=cast("Journal | None", kwargs.get("journal")),
            actor=cast("str | None", kwargs.get("actor")),
        )
        return cast(R, result.model_copy(update={"inventory_change": change}))

    return wrapper


__all__ = [
    "DELETE",
    "LOCK_NAME",
    "PENDING_NAME",
    "FileEdit",
    "InventoryChange",
    "RecordUpdate",
    "WriteBackError",
    "add_host",
    "commit_change",
    "commit_message",
    "compute_change",
    "compute_edits",
    "files_needed",
    "inventory_lock",
    "new_host_vars",
    "rename_host",
    "set_keys",
    "updates_of",
    "write_back",
    "write_updates",
    "writes_back",
]
