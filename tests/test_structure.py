"""The structure the redesign promises, checked on the source: no module imports from a layer
above it, no module over about 350 lines, library code logs instead of printing, and every
attack documents every option in ``help()``."""

from __future__ import annotations

import ast
import importlib
import pydoc
import re
from pathlib import Path

import pytest

from fcrattack import ATTACKS
from fcrattack._aliases import MOVED

SRC = Path(__file__).resolve().parents[1] / "src" / "fcrattack"
#: base -> data -> models -> cam -> regions -> metrics -> attacks -> experiments -> report
#: -> app -> cli, one folder each ("models" includes training; "regions": the equal-area region
#: sources and SmoothGrad, built from maps and per-image seeds, never from an attack); "base"
#: is ``fcrattack.base`` (validation, store, stats, seeding, distributed, warn) with the
#: declared ``options`` and the plotting/page helpers ``viz``, which import nothing above
#: them; "app" the library functions the CLI calls (attack a data set, the demo, Grad-CAM maps)
LAYERS = [
    "base",
    "data",
    "models",
    "cam",
    "regions",
    "metrics",
    "attacks",
    "experiments",
    "report",
    "app",
    "cli",
]
LAYER_OF = {
    "_version": "base",
    "_aliases": "base",
    "base": "base",
    "options": "base",
    "viz": "base",
    "data": "data",
    "models": "models",
    "cam": "cam",
    "regions": "regions",
    "metrics": "metrics",
    "attacks": "attacks",
    "experiments": "experiments",
    "report": "report",
    "app": "app",
    "cli": "cli",
    "__main__": "cli",
}
#: the only modules at the top of the package: the public names, ``python -m``, the version
#: and the old import paths; every layer is a folder
TOP_LEVEL = {"__init__", "__main__", "_version", "_aliases"}
#: inside ``experiments``: the machinery below the catalogue of experiments below the registry
#: and ``reproduce``
EXPERIMENT_LEVELS = ["machinery", "catalog", None]
#: inside ``app``: the steps of the data-set pipeline in the order data flows through them,
#: then the commands built from them; a module imports only modules before it
APP_ORDER = [
    "progress",
    "folder",
    "labels",
    "commit",
    "page",
    "summary",
    "attack",
    "attack_dataset",
    "cam_maps",
    "demo",
]


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


def test_every_layer_is_a_folder():
    loose = {p.stem for p in SRC.glob("*.py")}
    assert loose <= TOP_LEVEL, f"modules at the top level: {sorted(loose - TOP_LEVEL)}"
    for name, layer in LAYER_OF.items():
        if name not in TOP_LEVEL:
            assert (SRC / name / "__init__.py").is_file(), f"layer {layer}: {name} is no folder"


def _experiment_level(module: str) -> int:
    parts = module.split(".")
    sub = parts[2] if len(parts) > 2 else None
    return EXPERIMENT_LEVELS.index(sub if sub in EXPERIMENT_LEVELS else None)


@pytest.mark.parametrize(
    ("module", "path"),
    [(m, p) for m, p in _modules() if m.startswith("fcrattack.experiments.")],
    ids=lambda v: str(v),
)
def test_experiment_machinery_never_imports_the_catalogue(module, path):
    own = _experiment_level(module)
    for imported in _imports(module, path):
        if imported.startswith("fcrattack.experiments."):
            assert _experiment_level(imported) <= own, f"{module} imports {imported}, above it"


def test_the_app_pipeline_flows_one_way():
    app = SRC / "app"
    assert {p.stem for p in app.glob("*.py")} == {"__init__", *APP_ORDER}
    for name in APP_ORDER:
        for imported in _imports(f"fcrattack.app.{name}", app / f"{name}.py"):
            if imported.startswith("fcrattack.app."):
                other = imported.split(".")[2]
                assert APP_ORDER.index(other) < APP_ORDER.index(name), (
                    f"app.{name} imports app.{other}, a later step"
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


def test_files_are_written_by_the_store_alone():
    """Files are written whole by ``fcrattack.base.store.replace_file`` (a new file renamed
    over the path: a link there is replaced, never written through), records appended by the
    store; no other module writes a file itself."""
    writers = {"write_text", "write_bytes", "savefig", "save"}
    for module, path in _modules():
        if module == "fcrattack.base.store":
            continue
        for n in ast.walk(ast.parse(path.read_text())):
            if not isinstance(n, ast.Call) or getattr(n.func, "attr", None) not in writers:
                continue
            into = [a.id for a in n.args if isinstance(a, ast.Name)]  # into a buffer is fine
            assert "buffer" in into, f"{module}:{n.lineno} writes a file itself ({n.func.attr})"


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_help_documents_every_option(name):
    cls = ATTACKS[name]
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    assert "Args:" in text
    for key, opt in cls.options().items():
        assert opt.doc and f"{key} (" in text, f"{name}: option {key} undocumented"
    assert re.search(r"\b(19|20)\d\d\b", text), f"{name}: no reference (paper, year) in help"
    assert "paper" in text.lower()  # the FCR paper's settings, or that it gives none


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_import_paths_give_the_moved_modules(old):
    module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])
    assert module.__spec__.name == MOVED[old]  # its own spec, not the old path's
