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
    "__init__": 1,
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
                if not node.module:
                    parts = base + [alias.name for alias in node.names][:1]
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
    assert not bad, "\n".join(bad)


def test_layering_check_catches_a_violation(tmp_path, monkeypatch):
    """The checker itself works: a planted upward import is reported."""
    fake = tmp_path / "resemotenet"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "x.py").write_text("from ..engine import trainer\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    assert _imports(fake / "models" / "x.py") == ["engine"]
