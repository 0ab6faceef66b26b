"""`benchmarks/billing_throughput.py` as a module for unit tests: a script, not a package, so it is loaded from its
path once per test session."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "billing_throughput.py"


@cache
def billing_throughput() -> ModuleType:
    spec = importlib.util.spec_from_file_location("billing_throughput_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while the file is executed
    spec.loader.exec_module(module)
    return module
