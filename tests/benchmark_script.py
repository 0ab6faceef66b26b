"""The scripts of `benchmarks/` as modules for unit tests: scripts, not a package, so each is loaded from its path
once per test session."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@cache
def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while the file is executed
    spec.loader.exec_module(module)
    return module


def billing_throughput() -> ModuleType:
    return _script("billing_throughput")


def state_scale() -> ModuleType:
    return _script("state_scale")
