"""Where the project's files and caches live, in one place.

The checkout is the home by default (the package is installed editable); `METERSTREAM_HOME` points elsewhere when
it is installed into an image, and `METERSTREAM_CACHE` moves the git-ignored cache (jars, broker data, logs).
"""

from __future__ import annotations

import os
from pathlib import Path


def project_home() -> Path:
    return Path(os.environ.get("METERSTREAM_HOME", Path(__file__).resolve().parents[1]))


def cache_dir() -> Path:
    return Path(os.environ.get("METERSTREAM_CACHE", project_home() / ".cache"))


def jar_dir() -> Path:
    return cache_dir() / "jars"


def var_dir() -> Path:
    """Runtime state (broker data, pid files, logs); disposable."""
    return cache_dir() / "var"


def flink_conf_dir() -> Path:
    return project_home() / "flink-conf"
