"""Imports point one way: cli -> app -> api -> services -> store -> (nothing of ours above);
the SIP core imports only the standard library (DESIGN.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sipsvc"

# Layer of each part of the package (longest dotted prefix wins). A module may import from
# lower layers, and from its own layer only inside its own top-level package.
LAYERS = {
    "sipsvc": 0, "sipsvc.sip": 0,
    "sipsvc.config": 1, "sipsvc.errors": 1, "sipsvc.logs": 1,
    # domain: pure rules over plain data
    "sipsvc.devices.schema": 2, "sipsvc.devices.validation": 2, "sipsvc.devices.document": 2,
    "sipsvc.registrar": 2, "sipsvc.registrar.policy": 2, "sipsvc.registrar.errors": 2,
    "sipsvc.quickcall.errors": 2, "sipsvc.quickcall.numberfilter": 2, "sipsvc.quickcall.options": 2,
    "sipsvc.quickcall.payload": 2, "sipsvc.quickcall.invites": 2,
    "sipsvc.store": 3, "sipsvc.transport": 3,
    # services
    "sipsvc.accounts": 4, "sipsvc.devices": 4, "sipsvc.devices.service": 4,
    "sipsvc.registrar.service": 4, "sipsvc.registrar.guard": 4, "sipsvc.notify": 4, "sipsvc.quickcall": 4, "sipsvc.events": 4,
    "sipsvc.api": 5, "sipsvc.app": 6, "sipsvc.supervisor": 7, "sipsvc.opcli": 7, "sipsvc.cli": 8, "sipsvc.__main__": 9,
}


def layer_of(module: str) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(module)


def _top(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__")
        yield name, path


def _imports(name: str, path: Path):
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                yield ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.module


# Domain modules that must stay pure: no I/O, no event loop, no clock (DESIGN.md house rules).
PURE = ("sipsvc.quickcall.numberfilter", "sipsvc.quickcall.options", "sipsvc.quickcall.payload",
        "sipsvc.quickcall.invites", "sipsvc.sip.dialog")
IMPURE_IMPORTS = {"asyncio", "aiohttp", "redis", "socket", "time", "sipsvc.store", "sipsvc.transport"}


def test_every_module_has_a_layer():
    for name, _ in _modules():
        layer_of(name)


@pytest.mark.parametrize("name,path", list(_modules()), ids=lambda v: str(v))
def test_imports_point_down(name, path):
    layer = layer_of(name)
    for imported in _imports(name, path):
        if imported == "sipsvc" or imported.startswith("sipsvc."):
            target = layer_of(imported)
            assert target <= layer, f"{name} imports {imported} (a higher layer)"
            if target == layer and layer > 1 and _top(imported) != _top(name):
                pytest.fail(f"{name} imports {imported}, a sibling of the same layer")
        elif name == "sipsvc.sip" or name.startswith("sipsvc.sip."):
            top = imported.split(".")[0]
            assert top in sys.stdlib_module_names, f"the SIP core imports {imported}"


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_do_no_io(name):
    path = PACKAGE.parent.joinpath(*name.split(".")).with_suffix(".py")
    for imported in _imports(name, path):
        assert not any(imported == bad or imported.startswith(bad + ".") for bad in IMPURE_IMPORTS), (
            f"{name} imports {imported}"
        )
