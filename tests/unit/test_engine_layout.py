"""The JVM side of the billing core lives in the top-level `engine/` (engine/README.md, README "What is where"):
Java packages named after the `udfs` modules they mirror, no package `udf`, no Java left under `jobs/`, and every
Java class name written anywhere in the repository (the jobs' `*_CLASS` constants and SQL function registrations,
tests, benchmarks, READMEs, comments) names a class that exists there."""

from __future__ import annotations

import re
from pathlib import Path

from meterstream import jars
from udfs import golden, java_rules, watermarks

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"
SOURCE_ROOTS = (ENGINE / "src" / "main" / "java", ENGINE / "src" / "test" / "java")
SKIP_DIRS = {".git", ".venv", ".cache", "target", "results", "__pycache__", ".pytest_cache", ".ruff_cache"}
TEXT_SUFFIXES = {".py", ".md", ".java", ".sh", ".toml", ".yaml", ".yml", ".xml", ".txt"}
TEXT_NAMES = {"Dockerfile", "dev", "run", ".dockerignore", ".gitignore"}
CLASS_NAME = re.compile(r"\bio\.meterstream\.([a-z]+)\.([A-Z]\w*)")


def java_files() -> list[Path]:
    return sorted(p for root in SOURCE_ROOTS for p in root.rglob("*.java"))


def text_files() -> list[Path]:
    out = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if any(part in SKIP_DIRS for part in parts[:-1]) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
            out.append(path)
    return sorted(out)


def test_the_maven_module_is_the_top_level_engine_folder():
    assert (ENGINE / "pom.xml").is_file()
    assert jars._engine_project() == ENGINE
    assert jars.engine_source_hash() is not None  # the jar cache key is taken over engine/'s sources
    assert not list((ROOT / "jobs").rglob("*.java")), "jobs/ only wires: Java sources belong in engine/"
    assert not (ROOT / "jobs" / "java").exists()


def test_generated_files_and_golden_vectors_are_written_into_engine():
    for path in (java_rules.RULES_PATH, golden.GOLDEN_DIR, watermarks.GOLDEN_PATH):
        assert path.exists(), path
        assert path.is_relative_to(ENGINE), path


def test_every_java_file_declares_the_package_of_its_folder_and_none_is_named_udf():
    assert java_files()
    wrong = []
    for path in java_files():
        root = next(r for r in SOURCE_ROOTS if path.is_relative_to(r))
        expected = ".".join(path.parent.relative_to(root).parts)
        declared = re.search(r"^package ([\w.]+);", path.read_text(encoding="utf-8"), re.MULTILINE)
        if declared is None or declared.group(1) != expected:
            wrong.append(f"{path.relative_to(ROOT)}: declares {declared and declared.group(1)}, folder {expected}")
        if expected.split(".")[-1] == "udf":
            wrong.append(f"{path.relative_to(ROOT)}: package udf (name it after the udfs module it mirrors)")
    assert wrong == []


def test_every_java_class_name_in_the_repository_exists_in_engine():
    classes = {(p.parent.name, p.stem) for p in java_files()}
    missing = []
    for path in text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for package, name in CLASS_NAME.findall(line):
                if (package, name) not in classes:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: io.meterstream.{package}.{name}")
    assert missing == []


def test_the_engine_readme_describes_every_package():
    readme = (ENGINE / "README.md").read_text(encoding="utf-8")
    main = SOURCE_ROOTS[0] / "io" / "meterstream"
    packages = sorted(p.name for p in main.iterdir() if p.is_dir())
    assert packages
    undocumented = [p for p in packages if f"| `io.meterstream.{p}` |" not in readme]
    assert undocumented == []
