"""The import rules the folder READMEs state, checked on the code: `udfs/` is plain Python (never `pyflink`) and
data flows one way, `schemas` <- `udfs` <- `jobs` (udfs/README.md, schemas/README.md, meterstream/README.md); no
production folder imports `tests`, and the job tests' file sources stay in `tests/` (jobs/README.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# folder -> top-level packages its modules must never import, anywhere in a module (also inside functions)
FORBIDDEN = {
    "udfs": ("pyflink", "jobs", "meterstream", "tests"),
    "schemas": ("pyflink", "jobs", "meterstream", "udfs", "tests"),
    "jobs": ("tests",),
    "meterstream": ("tests",),
}
# Test-only wiring: the job tests' usage file source (`tests/usage_files.py`) and the Java map it wires.
TEST_ONLY_NAMES = ("file_parsed_usage", "io.meterstream.validation.UsageFileLines", "INGESTED_FIELD")


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


def test_the_job_tests_file_source_lives_in_tests_and_no_production_module_defines_or_wires_it():
    defined = []
    for folder in ("jobs", "meterstream", "udfs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and node.name in TEST_ONLY_NAMES:
                    defined.append(f"{path.relative_to(ROOT)}:{node.lineno} defines {node.name}")
                elif isinstance(node, ast.Name) and node.id in TEST_ONLY_NAMES:
                    defined.append(f"{path.relative_to(ROOT)}:{node.lineno} names {node.id}")
                elif isinstance(node, ast.Constant) and node.value in TEST_ONLY_NAMES:
                    defined.append(f"{path.relative_to(ROOT)}:{node.lineno} holds {node.value!r}")
    assert defined == []
    support = ast.parse((ROOT / "tests" / "usage_files.py").read_text())
    names = {node.name for node in support.body if isinstance(node, ast.FunctionDef)}
    assert "file_parsed_usage" in names
