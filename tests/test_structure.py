"""The structure the redesign promises, checked on the source: no module imports from a layer
above it, no module over about 350 lines, library code logs instead of printing, and every
attack documents every option in ``help()``."""

from __future__ import annotations

import ast
import pydoc
import re
from pathlib import Path

import pytest

from fcrattack import ATTACKS

SRC = Path(__file__).resolve().parents[1] / "src" / "fcrattack"
#: data -> models -> cam -> metrics -> attacks -> regions -> experiments -> report -> cli
#: ("regions": the equal-area region sources and SmoothGrad, which use the attacks' seeding);
#: "base" holds
#: utilities that import nothing above themselves (options, validation, store, distributed,
#: viz, warn, the version); "app" the library functions the CLI calls (attack a data set, demo)
LAYERS = [
    "base",
    "data",
    "models",
    "cam",
    "metrics",
    "attacks",
    "regions",
    "experiments",
    "report",
    "app",
    "cli",
]
LAYER_OF = {
    "_version": "base",
    "warn": "base",
    "options": "base",
    "validation": "base",
    "store": "base",
    "stats": "base",
    "distributed": "base",
    "viz": "base",
    "data": "data",
    "models": "models",
    "cam": "cam",
    "metrics": "metrics",
    "attacks": "attacks",
    "saliency": "regions",
    "regions": "regions",
    "train": "experiments",
    "experiments": "experiments",
    "report": "report",
    "attack_run": "app",
    "attack_batch": "app",
    "attack_output": "app",
    "cam_run": "app",
    "demo": "app",
    "cli": "cli",
    "__main__": "cli",
}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out.append((".".join(["fcrattack", *parts]), path))
    return out


def _imports(module: str, path: Path) -> set[str]:
    """Absolute fcrattack modules imported by ``module``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name == "fcrattack" or name.startswith("fcrattack."):
                found |= {f"{name}.{a.name}" if name == "fcrattack" else name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fcrattack")}
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return LAYER_OF.get(parts[1]) if len(parts) > 1 else None


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_no_module_imports_from_a_layer_above_it(module, path):
    own = _layer(module)
    if own is None:  # fcrattack/__init__.py: the public names
        return
    for imported in _imports(module, path):
        other = _layer(imported)
        assert other is not None, f"{module} imports {imported}: unknown layer"
        assert LAYERS.index(other) <= LAYERS.index(own), (
            f"{module} ({own}) imports {imported} ({other}), a layer above it"
        )


def test_every_module_has_a_layer_and_none_is_over_350_lines():
    for module, path in _modules():
        assert module == "fcrattack" or _layer(module), f"{module} has no layer"
        lines = len(path.read_text().splitlines())
        assert lines <= 350, f"{path.relative_to(SRC)} has {lines} lines"


def test_library_code_logs_instead_of_printing():
    for module, path in _modules():
        if _layer(module) == "cli":
            continue
        calls = [
            n
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
        ]
        assert not calls, f"{module} prints"


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_help_documents_every_option(name):
    cls = ATTACKS[name]
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    assert "Args:" in text
    for key, opt in cls.options().items():
        assert opt.doc and f"{key} (" in text, f"{name}: option {key} undocumented"
    assert re.search(r"\b(19|20)\d\d\b", text), f"{name}: no reference (paper, year) in help"
    assert "paper" in text.lower()  # the FCR paper's settings, or that it gives none
