"""Every import of our own modules resolves, those inside functions too: a module moved without its lazy importers
fails here, not on the page or command that first runs that function."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = ("models", "notifications", "flows", "commands", "console", "bench", "tests")


def _imports() -> list[tuple[str, int, str, str | None]]:
    found = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                where = str(path.relative_to(ROOT))
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                        and node.module.split(".")[0] in OURS:
                    found.extend((where, node.lineno, node.module, a.name) for a in node.names if a.name != "*")
                elif isinstance(node, ast.Import):
                    found.extend((where, node.lineno, a.name, None) for a in node.names
                                 if a.name.split(".")[0] in OURS)
    return found


def test_every_import_of_our_modules_resolves_even_inside_functions():
    broken = []
    for where, line, module, name in _imports():
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            broken.append(f"{where}:{line} {module}: {exc}")
            continue
        if name is not None and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                broken.append(f"{where}:{line} {module}.{name}")
    assert broken == []
