"""The `--write` / `--check` command of a generated, checked-in artefact (golden vectors, the Java rules class):
`--write` regenerates the files, `--check` exits 1 naming every file that differs from what its source generates
(the test command runs the checks). Not a rule."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path


def write_or_check(argv: list[str] | None, files: Mapping[Path, Callable[[], str]], command: str) -> int:
    """`files`: each path and the function that generates its text; `command`: how to run the module."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--write"]:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text(), encoding="utf-8")
        return 0
    if args == ["--check"]:
        stale = [path for path, text in files.items()
                 if not path.exists() or path.read_text(encoding="utf-8") != text()]
        for path in stale:
            print(f"{path} is out of date: {command} --write", file=sys.stderr)
        return 1 if stale else 0
    print(f"usage: {command} --write | --check", file=sys.stderr)
    return 2
