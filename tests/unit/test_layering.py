"""The import rules the folder READMEs state, checked on the code: `udfs/` is plain Python (never `pyflink`) and
data flows one way, `schemas` <- `udfs` <- `jobs` (udfs/README.md, schemas/README.md, meterstream/README.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# folder -> top-level packages its modules must never import, anywhere in a module (also inside functions)
FORBIDDEN = {
    "udfs": ("pyflink", "jobs", "meterstream"),
    "schemas": ("pyflink", "jobs", "meterstream", "udfs"),
}


def imported_modules(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, module) of every import statement; relative imports are named by their dots."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def violations(folder: str) -> list[str]:
    banned = FORBIDDEN[folder]
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in imported_modules(path.read_text(), str(path)):
            if module.split(".")[0] in banned:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_folder_never_imports_what_its_readme_forbids(folder: str):
    assert list((ROOT / folder).rglob("*.py")), f"no modules found under {folder}/"
    assert violations(folder) == []


def test_the_check_sees_imports_at_any_depth():
    source = "import os\ndef f():\n    from pyflink.common import Types\n    import jobs.uids as u\nimport pyflink\n"
    expected = [(1, "os"), (3, "pyflink.common"), (4, "jobs.uids"), (5, "pyflink")]
    assert sorted(imported_modules(source, "x.py")) == expected
