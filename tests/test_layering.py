"""Imports point down only (ARCHITECTURE.md): checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "resemotenet"

LAYER = {
    "cli": 4,
    "serve": 4,
    "scale": 4,
    "engine": 3,
    "inference": 3,
    "export": 3,
    "plots": 3,
    "report": 3,
    "analysis": 3,
    "models": 2,
    "data": 2,
    "metrics": 2,
    "labels": 1,
    "config": 1,
    "utils": 1,
    "card": 1,
    "preprocess": 1,
    "imaging": 1,
    "_version": 1,
    "__init__": 5,  # the package face re-exports every layer: importing it from inside is an arrow up
    "__main__": 4,
}
# same-layer pairs that must not import each other
SIBLINGS = [
    {"engine", "inference", "export", "plots", "report"},
    {"models", "data"},
    {"analysis", "inference", "export", "plots"},
]
# analysis scores models through engine.evaluator; the reverse direction is refused
ONE_WAY = {("engine", "analysis")}
# entry points that need no training code: what each may import besides itself
ONLY = {
    "serve": {"inference", "imaging", "card", "labels", "utils", "_version"},
    "scale": {"inference", "imaging", "card", "labels", "utils", "_version"},
}
# the one documented exception: the on-device page converts a checkpoint to ONNX for the browser
EXCEPTIONS = {("serve/ondevice.py", "export")}


def _top(module_parts: list[str]) -> str:
    return module_parts[0] if module_parts else "__init__"


def _imports(path: Path) -> list[str]:
    rel = path.relative_to(PKG).with_suffix("").parts
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[: -node.level]) if node.level <= len(rel) else []
                parts = base + (node.module.split(".") if node.module else [])
                if not node.module:  # `from .. import x`: a submodule, or a name of the package face
                    name = [alias.name for alias in node.names][0]
                    target = PKG.joinpath(*base, name)
                    is_module = target.with_suffix(".py").is_file() or target.is_dir()
                    parts = base + [name] if is_module else base
            elif node.module and node.module.startswith("resemotenet"):
                parts = node.module.split(".")[1:]
            else:
                continue
            found.append(_top(parts))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("resemotenet."):
                    found.append(_top(alias.name.split(".")[1:]))
    return found


def test_imports_point_down_only():
    bad = []
    for path in PKG.rglob("*.py"):
        here = _top(list(path.relative_to(PKG).with_suffix("").parts))
        if here == "__init__" and path.parent == PKG:
            continue  # the package's public API re-exports from every layer
        for target in _imports(path):
            if target == here or target not in LAYER:
                continue
            if LAYER[target] > LAYER[here]:
                bad.append(f"{path.relative_to(PKG)} imports up into {target}")
            if LAYER[target] == LAYER[here] and any({here, target} <= s for s in SIBLINGS):
                bad.append(f"{path.relative_to(PKG)} imports sibling {target}")
            if (here, target) in ONE_WAY:
                bad.append(f"{path.relative_to(PKG)} imports {target}, which builds on it")
            rel = path.relative_to(PKG).as_posix()
            if here in ONLY and target not in ONLY[here] and (rel, target) not in EXCEPTIONS:
                bad.append(f"{rel} imports {target}; {here} may import only {', '.join(sorted(ONLY[here]))}")
    assert not bad, "\n".join(bad)


def test_layering_check_catches_a_violation(tmp_path, monkeypatch):
    """The checker itself works: a planted upward import is reported."""
    fake = tmp_path / "resemotenet"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "x.py").write_text("from ..engine import trainer\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    assert _imports(fake / "models" / "x.py") == ["engine"]


def test_layering_check_sees_the_package_face(tmp_path, monkeypatch):
    """`from .. import __version__` inside a room is an arrow up into the package face."""
    fake = tmp_path / "resemotenet"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "x.py").write_text("from .. import __version__\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    assert _imports(fake / "models" / "x.py") == ["__init__"]


def test_no_import_circles():
    """No two modules import each other (deferred imports inside functions count)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("import_graph", PKG.parents[1] / "tools" / "import_graph.py")
    graph = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = graph
    spec.loader.exec_module(graph)
    edges = {graph.module_name(p): graph.imports_of(p) for p in PKG.rglob("*.py")}
    circles = sorted({tuple(sorted((a, b))) for a, bs in edges.items() for b in bs if a in edges.get(b, set())})
    assert not circles, circles
