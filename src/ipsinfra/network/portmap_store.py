"""The port map on record (§4.6): the state store when one is named, else the inventory's file.

A site's map is kept under the state key ``portmap:<site>`` (:data:`STORE_KEY`)
of the store (:mod:`ipsinfra.store`): a ``state.set`` line of the hash chain
like every state write, so ``ipsinfra journal verify`` covers it. The store is
the record when a journal URL was given (``--journal``, the modules'
``journal``, or ``$IPSINFRA_JOURNAL``): under AWX the project checkout, and with
it ``<inventory>/switch_ports.<site>.yml``, is thrown away after every job. The
file is still written where the inventory is writable, for git users; where it
and the store disagree, the store's map is used and :attr:`RecordedMap.note`
says so. Without a store nothing changes: the file is the record.

    >>> rec = read_recorded(map_file_path("inventory/site", "msk1"), "msk1", store)  # doctest: +SKIP
    >>> rec.source, rec.note
    ('store', 'the map file inventory/site/switch_ports.msk1.yml differs from the store's ...')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ipsinfra.errors import InvalidInput, InventoryError
from ipsinfra.models import SwitchPort, build
from ipsinfra.network.models import natural_port_key
from ipsinfra.network.portmap import PortMap
from ipsinfra.network.portmap_file import (
    dump_port_map,
    port_block,
    read_port_map,
    sorted_ports,
    write_port_map,
)
from ipsinfra.store import Journal, JournalNotFound, configured_url
from ipsinfra.store.errors import JournalTableMissing
from ipsinfra.store.urls import safe_url, to_url

__all__ = [
    "STORE_KEY",
    "MapStore",
    "MapWrite",
    "RecordedMap",
    "load_stored_map",
    "open_map_store",
    "port_map_from_value",
    "port_map_value",
    "read_recorded",
    "save_stored_map",
    "store_key",
    "write_recorded",
]

STORE_KEY = "portmap:{site}"


def store_key(site: str) -> str:
    """``portmap:<site>``: the state key a site's map is kept under."""
    return STORE_KEY.format(site=site)


def port_map_value(port_map: PortMap, site: str) -> dict[str, Any]:
    """The map as the store keeps it: the file's port blocks as a list, in the file's order.

    A list of ports, not the file's ``switch -> port`` mapping: state values
    are redacted by key, and a switch named like ``key-sw1`` must come back as it went in.

    >>> port_map_value(PortMap(ports=(SwitchPort(switch="sw1", port="Gi0/5", server="ded1"),)), "msk1")
    {'site': 'msk1', 'ports': [{'switch': 'sw1', 'port': 'Gi0/5', 'server': 'ded1'}]}
    """
    ports = [{"switch": p.switch, "port": p.port, **port_block(p)} for p in sorted_ports(port_map)]
    return {"site": site, "ports": ports}


def port_map_from_value(value: Any, *, where: str) -> PortMap:
    """:func:`port_map_value`'s form back to a map; anything else is InventoryError naming ``where``."""
    ports_value = value.get("ports") if isinstance(value, dict) else None
    if not isinstance(ports_value, list):
        raise InventoryError(f"{where}: expected a mapping with 'site' and a list 'ports'")
    ports: list[SwitchPort] = []
    for i, block in enumerate(ports_value):
        if not isinstance(block, dict):
            raise InventoryError(f"{where}: ports[{i}]: expected a mapping")
        try:
            ports.append(build(SwitchPort, block, f"{where}: ports[{i}]"))
        except InvalidInput as exc:
            raise InventoryError(str(exc)) from None
    ports.sort(key=lambda p: (p.switch, natural_port_key(p.port)))
    return PortMap(ports=tuple(ports))


@dataclass
class MapStore:
    """The store named for the port map. ``journal`` is None only when reading (check mode)
    a journal that does not exist yet: nothing is stored there, and nothing is created."""

    url: str
    journal: Journal | None

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def open_map_store(url: str | Path | None, *, create: bool = True) -> MapStore | None:
    """The store for the port map: ``url``, else ``$IPSINFRA_JOURNAL``; None when neither is set
    (the inventory's file is then the record, as it always was).

    ``create=False`` (check mode) opens an existing journal to read and creates nothing; a
    journal that does not exist yet (no SQLite file, a database without its tables) holds no map.
    """
    chosen = configured_url(url)
    if chosen is None:
        return None
    try:
        journal = Journal(chosen, create=create)
    except (JournalNotFound, JournalTableMissing):
        if create:
            raise
        return MapStore(url=safe_url(to_url(chosen, create=False)), journal=None)
    return MapStore(url=journal.url, journal=journal)


def load_stored_map(journal: Journal, site: str) -> PortMap | None:
    """The site's map in the store; None when none was ever stored."""
    value = journal.get_state(store_key(site))
    if value is None:
        return None
    return port_map_from_value(value, where=f"journal {journal.url}: state {store_key(site)}")


def save_stored_map(journal: Journal, port_map: PortMap, site: str) -> bool:
    """Store the site's map (one ``state.set`` line); False, and nothing written, when unchanged."""
    value = port_map_value(port_map, site)
    if journal.get_state(store_key(site)) == value:
        return False
    journal.set_state(store_key(site), value)
    return True


@dataclass(frozen=True)
class RecordedMap:
    """A site's map on record, and where it came from.

    ``source``: ``store``, ``file`` or ``none`` (never recorded). ``note``: said
    when the file and the store disagree (which one was used, and why).
    ``behind``: the store or the file lags the record; a write brings it level.
    """

    site: str
    path: Path
    port_map: PortMap
    source: Literal["store", "file", "none"]
    note: str | None = None
    behind: bool = False


def read_recorded(path: str | Path, site: str, store: MapStore | None) -> RecordedMap:
    """The map to compare with: the store's when a store is named and holds one, else the file's."""
    path = Path(path)
    if store is None:
        return RecordedMap(site, path, read_port_map(path), "file" if path.exists() else "none")
    stored = None if store.journal is None else load_stored_map(store.journal, site)
    file_map: PortMap | None = None
    file_problem: str | None = None
    if path.exists():
        try:
            file_map = read_port_map(path)
        except InventoryError as exc:
            if stored is None:
                raise
            file_problem = str(exc)
    key = store_key(site)
    if stored is not None:
        if file_problem is not None:
            note = f"map file unreadable ({file_problem}): using the store's {key} ({store.url}), the record"
            return RecordedMap(site, path, stored, "store", note, behind=True)
        if file_map is not None and dump_port_map(file_map, site) != dump_port_map(stored, site):
            note = (
                f"map file {path} differs from the store's {key} ({store.url}): using the store's, "
                "the record (--write rewrites the file)"
            )
            return RecordedMap(site, path, stored, "store", note, behind=True)
        return RecordedMap(site, path, stored, "store", behind=file_map is None)
    if file_map is not None and file_map.ports:
        note = f"no {key} in the store ({store.url}) yet: using map file {path} (--write stores it)"
        return RecordedMap(site, path, file_map, "file", note, behind=True)
    return RecordedMap(site, path, file_map or PortMap(), "none")


@dataclass(frozen=True)
class MapWrite:
    """What :func:`write_recorded` did: stored in the store, wrote the file, or could not write it."""

    stored: bool = False
    file_written: bool = False
    file_error: str | None = None
    store_url: str | None = None
    key: str = ""
    path: Path | None = None

    @property
    def written(self) -> bool:
        return self.stored or self.file_written

    def lines(self) -> list[str]:
        out = [f"stored {self.key} in {self.store_url}"] if self.stored else []
        if self.file_written:
            out.append(f"wrote {self.path}")
        if self.file_error is not None:
            out.append(f"map file not written: {self.file_error} (the store holds the map)")
        return out


def write_recorded(rec: RecordedMap, port_map: PortMap, store: MapStore | None) -> MapWrite:
    """Record ``port_map`` for ``rec.site``: in the store when one is named, and in the file.

    With a store, a file that cannot be written (a read-only checkout) is
    reported, not raised: the store is the record. Without one, the file is
    the record and its errors propagate, as before.
    """
    if store is None or store.journal is None:
        written = write_port_map(rec.path, port_map, rec.site)
        return MapWrite(file_written=written, path=rec.path)
    stored = save_stored_map(store.journal, port_map, rec.site)
    try:
        file_written = write_port_map(rec.path, port_map, rec.site)
        error = None
    except OSError as exc:
        file_written, error = False, f"{rec.path}: {exc.strerror or exc}"
    return MapWrite(
        stored=stored,
        file_written=file_written,
        file_error=error,
        store_url=store.url,
        key=store_key(rec.site),
        path=rec.path,
    )
