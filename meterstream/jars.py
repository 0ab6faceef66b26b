"""Resolve the Java jars through Maven into the git-ignored cache, once.

Two sets come from `flink-conf/pom.xml` profiles: the Flink Kafka SQL connector (added to PyFlink jobs) and the
Apache Kafka broker with a log4j2 backend (for the local broker). A set is complete when its marker file exists;
the marker is written only after Maven succeeded, so an interrupted download is retried, and a present cache costs
nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from meterstream.paths import flink_conf_dir, jar_dir

KAFKA_CONNECTOR_JAR = "flink-sql-connector-kafka-5.0.0-2.2.jar"
KAFKA_BROKER_JAR = "kafka_2.13-4.3.1.jar"


@dataclass(frozen=True)
class JarSet:
    profile: str
    folder: str
    must_contain: str


JAR_SETS = (
    JarSet("connector", "connector", KAFKA_CONNECTOR_JAR),
    JarSet("broker", "kafka", KAFKA_BROKER_JAR),
)

_MARKER = ".complete"


class JarResolutionError(RuntimeError):
    pass


def _set_dir(jar_set: JarSet) -> Path:
    return jar_dir() / jar_set.folder


def _is_complete(jar_set: JarSet) -> bool:
    folder = _set_dir(jar_set)
    return (folder / _MARKER).exists() and (folder / jar_set.must_contain).exists()


def ensure_jars(*, quiet: bool = False) -> dict[str, Path]:
    """Make every jar set present; return {profile: folder}. Idempotent and cheap when cached."""
    resolved: dict[str, Path] = {}
    for jar_set in JAR_SETS:
        folder = _set_dir(jar_set)
        if not _is_complete(jar_set):
            _resolve(jar_set, folder, quiet=quiet)
        resolved[jar_set.profile] = folder
    return resolved


def _resolve(jar_set: JarSet, folder: Path, *, quiet: bool) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarResolutionError("Maven (`mvn`) is not on PATH; it is needed once to fetch the Java jars.")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cmd = [
        mvn, "-B", "-q", "-f", str(flink_conf_dir() / "pom.xml"), "-P", jar_set.profile,
        "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={folder}",
    ]
    if not quiet:
        print(f"resolving {jar_set.profile} jars with Maven into {folder} ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (folder / jar_set.must_contain).exists():
        raise JarResolutionError(
            f"Maven failed to resolve the {jar_set.profile} jars (exit {proc.returncode}):\n"
            + (proc.stdout + proc.stderr)[-3000:]
        )
    (folder / _MARKER).write_text("ok\n")


def kafka_connector_jar() -> Path:
    return ensure_jars(quiet=True)["connector"] / KAFKA_CONNECTOR_JAR


def kafka_broker_classpath() -> str:
    return str(ensure_jars(quiet=True)["broker"] / "*")
