"""The command-line end of a checked-in lock file (`operator_uids.txt`, `state_classes.txt`): print what the code
has now, `--write` it, or `--check` it against the lock and say what to do when they differ."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def arguments(description: str, lock_file: Path, *, what: str,
              more_modes: tuple[tuple[str, str], ...] = ()) -> argparse.ArgumentParser:
    """The parser with the exclusive modes `--write`, `--check` and `more_modes` ((flag, help), ...)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"regenerate {lock_file.name}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 if {what} differs from {lock_file.name}")
    for flag, help_text in more_modes:
        mode.add_argument(flag, action="store_true", help=help_text)
    return parser


def run(lock_file: Path, current: Callable[[], str], *, problems: list[str],
        difference: Callable[[str, str], str | None], summary: str, write: bool, check: bool) -> int:
    """Exit code of the command: 1 for `problems` (printed, whatever the mode) or a `--check` that finds a
    difference; `current()` renders the lock as the code has it now, `summary` names its contents."""
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    text = current()
    if write:
        lock_file.write_text(text)
        print(f"wrote {summary} to {lock_file}")
        return 0
    if check:
        message = difference(lock_file.read_text() if lock_file.exists() else "", text)
        if message:
            print(message, file=sys.stderr)
            return 1
        print(f"{summary} match {lock_file.name}")
        return 0
    print(text, end="")
    return 0
