"""Every route the lab adds to fakepve is one PVE's API schema documents, reading only
parameters the schema lists for it.

The routes are found by introspection, not listed here: every ``_routes_*``
table defined on the lab's subclass (:func:`ipsinfra.lab.pve.lab_class`), and
every handler of fakepve's own app that the subclass overrides. A handler's
reads are found in its source: ``v[...]``/``v.get(...)`` and
``values[...]``/``values.get(...)`` are the route's parameters; ``cmd`` is one
``/execute`` command (pve-manager ``PVE/API2/Nodes.pm``
``$verify_command_item_desc``) and ``config_args`` the arguments of a ``GET
qemu/<vmid>/config`` inside it. A handler that touches those names any other
way (``dict(v)``, ``**v``) fails here: its reads could not be checked.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import require_module

API = "/api2/json"
CONFIG = "/nodes/{node}/qemu/{vmid}/config"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    require_module("fakepve", "the lab's PVE routes are checked against fakepve's copy of PVE's schema")
    from fakepve import schema as pve_schema

    paths: dict[str, Any] = pve_schema.load().paths
    return paths


@pytest.fixture(scope="module")
def lab_cls() -> type[Any]:
    require_module("fakepve", "the lab's PVE routes are checked against fakepve's copy of PVE's schema")
    from ipsinfra.lab.pve import lab_class

    return lab_class()


def added_routes(cls: type[Any]) -> list[tuple[str, str, Callable[..., Any]]]:
    """(method, schema path, handler) of every ``_routes_*`` table the subclass itself defines."""
    server = cls(user="root@pam", password="unused", host="127.0.0.1", port=0)
    routes: list[tuple[str, str, Callable[..., Any]]] = []
    for name, member in vars(cls).items():
        if name.startswith("_routes_") and callable(member):
            routes += getattr(server, name)()
    return routes


def overridden_routes(cls: type[Any]) -> list[tuple[str, str, Callable[..., Any]]]:
    """(method, schema path, handler) of fakepve's own routes whose handler the subclass overrides."""
    server = cls(user="root@pam", password="unused", host="127.0.0.1", port=0)
    app = server._build_app()
    out: list[tuple[str, str, Callable[..., Any]]] = []
    for route in app.router.routes():
        handler = getattr(route.handler, "__func__", None)
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD":  # aiohttp's add_get adds it by itself; PVE's schema has no HEAD
            continue
        if handler is not None and vars(cls).get(handler.__name__) is handler and path.startswith(API + "/"):
            out.append((route.method, path.removeprefix(API), route.handler))
    return out


def reads(handler: Callable[..., Any]) -> dict[str, set[str]]:
    """Keys read through each parameter-holding name, from the handler's source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(handler)))
    watched = {"v", "values", "cmd", "config_args"}
    found: dict[str, set[str]] = {}
    checked: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in watched:
            assert isinstance(node.slice, ast.Constant), (
                f"{handler.__name__}: {node.value.id}[<not a literal>]"
            )
            found.setdefault(node.value.id, set()).add(str(node.slice.value))
            checked.add(id(node.value))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in watched
        ):
            assert node.args and isinstance(node.args[0], ast.Constant), (
                f"{handler.__name__}: .get(<not a literal>)"
            )
            found.setdefault(node.func.value.id, set()).add(str(node.args[0].value))
            checked.add(id(node.func.value))
    loose = [
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name)
        and n.id in watched
        and isinstance(n.ctx, ast.Load)
        and id(n) not in checked
    ]
    allowed_loose = {"cmd"}  # cmd is also handed whole to the item check (_command_item)
    assert not [n for n in loose if n not in allowed_loose], (
        f"{handler.__name__} uses {loose} other than by literal key: its reads cannot be checked"
    )
    return found


def params_of(schema: dict[str, Any], method: str, template: str) -> set[str]:
    props: dict[str, Any] = (schema[template][method].get("parameters") or {}).get("properties") or {}
    return set(props)


def test_the_lab_adds_routes_and_overrides_config_get(lab_cls: type[Any]) -> None:
    added = {(m, t) for m, t, _h in added_routes(lab_cls)}
    assert ("POST", "/nodes/{node}/execute") in added  # the listing's batch read
    assert ("GET", CONFIG) in {(m, t) for m, t, _h in overridden_routes(lab_cls)}


def test_every_added_route_and_parameter_is_in_pves_schema(
    lab_cls: type[Any], schema: dict[str, Any]
) -> None:
    from ipsinfra.lab.pve import COMMAND_ITEM_KEYS

    routes = added_routes(lab_cls) + overridden_routes(lab_cls)
    assert routes
    for method, template, handler in routes:
        assert template in schema, f"{method} {template}: no such path in PVE's API schema"
        assert method in schema[template], (
            f"{method} {template}: PVE's schema has only {sorted(schema[template])}"
        )
        declared = params_of(schema, method, template)
        found = reads(handler)
        for name in ("v", "values"):
            unknown = found.get(name, set()) - declared
            assert not unknown, (
                f"{method} {template}: reads {sorted(unknown)}, not in PVE's schema {sorted(declared)}"
            )
        assert found.get("cmd", set()) <= COMMAND_ITEM_KEYS, f"{template}: command keys {found['cmd']}"
        unknown = found.get("config_args", set()) - params_of(schema, "GET", CONFIG)
        assert not unknown, f"{template}: GET config arguments {sorted(unknown)} are not PVE's"


def test_the_execute_route_reads_pves_batch_format(lab_cls: type[Any], schema: dict[str, Any]) -> None:
    [(_m, _t, handler)] = [r for r in added_routes(lab_cls) if r[1] == "/nodes/{node}/execute"]
    found = reads(handler)
    assert found["v"] == {"commands", "node"} == params_of(schema, "POST", "/nodes/{node}/execute")
    assert schema["/nodes/{node}/execute"]["POST"]["parameters"]["properties"]["commands"]["format"] == (
        "pve-command-batch"
    )
    assert found["config_args"] == {"current"}
