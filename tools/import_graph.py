"""The package's import picture: arrows between rooms, import circles between modules, arrows up.

``python tools/import_graph.py`` prints one line per room-to-room arrow (with how many imports
carry it), then every circle between two modules and every module that imports the package face
(``resemotenet/__init__.py``). Deferred imports inside functions count too: a circle is a circle
whether Python meets it at start-up or later.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "resemotenet"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["resemotenet", *parts])


def imports_of(path: Path) -> set[str]:
    """Fully qualified resemotenet modules imported by one file."""
    here = module_name(path).split(".")
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("resemotenet"):
                continue
            # `from .pkg import module` imports the module; `from .module import name` the module
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if sub in MODULES else mod)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("resemotenet"))
    return {m for m in found if m in MODULES and m != ".".join(here)}


MODULES = {module_name(p) for p in PKG.rglob("*.py")}


def room(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def main() -> int:
    edges = {module_name(p): imports_of(p) for p in PKG.rglob("*.py")}
    arrows = Counter((room(a), room(b)) for a, bs in edges.items() for b in bs if room(a) != room(b))
    print("arrows between rooms (from -> to: imports)")
    for (a, b), n in sorted(arrows.items()):
        print(f"  {a} -> {b}: {n}")
    circles = sorted({tuple(sorted((a, b))) for a, bs in edges.items() for b in bs if a in edges.get(b, set())})
    up = sorted(a for a, bs in edges.items() if "resemotenet" in bs and a != "resemotenet" and room(a) != "__main__")
    print(f"import circles between modules: {len(circles)}")
    for a, b in circles:
        print(f"  {a} <-> {b}")
    print(f"modules importing the package face: {len(up)}")
    for a in up:
        print(f"  {a}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
