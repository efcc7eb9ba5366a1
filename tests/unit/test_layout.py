"""The layout shows the architecture: services stand on their own, shared/ depends on nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_no_service_imports_another_service() -> None:
    offenders = []
    for service in sorted(p for p in (ROOT / "services").iterdir() if p.is_dir() and p.name != "__pycache__"):
        for path in service.rglob("*.py"):
            for module in _imports(path):
                parts = module.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != service.name:
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_shared_imports_neither_services_nor_projections() -> None:
    offenders = [f"{path.relative_to(ROOT)} imports {module}" for path in (ROOT / "shared").rglob("*.py")
                 for module in _imports(path) if module.split(".")[0] in ("services", "projections")]
    assert offenders == []


def test_projections_import_no_service() -> None:
    offenders = [f"{path.relative_to(ROOT)} imports {module}" for path in (ROOT / "projections").rglob("*.py")
                 for module in _imports(path) if module.split(".")[0] == "services"]
    assert offenders == []
