"""Imports point one way: cli -> app -> api -> services -> store -> (nothing of ours above);
the SIP core imports only the standard library (DESIGN.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sipsvc"

# Layer of each top-level part of the package; a module may import only from its own layer
# or from lower ones.
LAYERS = {
    "__main__": 7, "cli": 6, "app": 5, "api": 4,
    "accounts": 3, "devices": 3, "registrar": 3, "notify": 3, "quickcall": 3,
    "store": 2, "transport": 2,
    "errors": 1, "config": 1, "sip": 0, "__init__": 0,
}


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


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


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(name) for name, _ in _modules()}
    assert parts <= LAYERS.keys(), parts - LAYERS.keys()


@pytest.mark.parametrize("name,path", list(_modules()), ids=lambda v: str(v))
def test_imports_point_down(name, path):
    layer = LAYERS[_part(name)]
    for imported in _imports(name, path):
        if imported == "sipsvc" or imported.startswith("sipsvc."):
            target = _part(imported)
            assert LAYERS[target] <= layer, f"{name} imports {imported} (a higher layer)"
            if layer == LAYERS[target] and target != _part(name) and layer == 3:
                pytest.fail(f"service {name} imports another service {imported}")
        elif _part(name) == "sip":
            top = imported.split(".")[0]
            assert top in sys.stdlib_module_names, f"the SIP core imports {imported}"
