"""Resolve the Java jars through Maven into the git-ignored cache, once.

Two sets come from `flink-conf/pom.xml` profiles: the Flink Kafka SQL connector (added to PyFlink jobs) and the
Apache Kafka broker with its command line tools and a log4j2 backend (for the local broker). A set is complete when
its marker file exists and it holds the jars it must (a cache from before a jar joined its set is resolved again);
the marker is written only after Maven succeeded, so an interrupted download is retried, and a present cache costs
nothing.

A third set, `engine`, is built from our own source (`engine/`, `mvn package`) into
`engine/meterstream-engine.jar`. Its marker records a hash of `engine/pom.xml` and every file under `engine/src`: the
jar is rebuilt only when that hash changes (hashing the few sources takes milliseconds). Without the sources (an
installed image), a present jar is used as is. A cache from before the jar was named after its module
(`udf/meterstream-udf.jar`) is never read: the jar is built anew under its name and the old folder removed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from meterstream.paths import flink_conf_dir, jar_dir, project_home

KAFKA_CONNECTOR_JAR = "flink-sql-connector-kafka-5.0.0-2.2.jar"
KAFKA_BROKER_JAR = "kafka_2.13-4.3.1.jar"
# Kafka's command line tools: AclCommand (`kafka-acls.sh`), with which the tenant ACLs test applies the README's ACLs.
KAFKA_TOOLS_JAR = "kafka-tools-4.3.1.jar"
ENGINE_JAR = "meterstream-engine.jar"
ENGINE_FOLDER = "engine"
_LEGACY_ENGINE_FOLDER = "udf"  # the jar was meterstream-udf.jar in .cache/jars/udf/ before


@dataclass(frozen=True)
class JarSet:
    profile: str
    folder: str
    must_contain: tuple[str, ...]


JAR_SETS = (
    JarSet("connector", "connector", (KAFKA_CONNECTOR_JAR,)),
    JarSet("broker", "kafka", (KAFKA_BROKER_JAR, KAFKA_TOOLS_JAR)),
)

_MARKER = ".complete"


class JarResolutionError(RuntimeError):
    pass


def _set_dir(jar_set: JarSet) -> Path:
    return jar_dir() / jar_set.folder


def _is_complete(jar_set: JarSet) -> bool:
    folder = _set_dir(jar_set)
    return (folder / _MARKER).exists() and all((folder / jar).exists() for jar in jar_set.must_contain)


def ensure_jars(*, quiet: bool = False) -> dict[str, Path]:
    """Make every jar set present; return {profile: folder}. Idempotent and cheap when cached."""
    resolved = {jar_set.profile: _ensure_set(jar_set, quiet=quiet) for jar_set in JAR_SETS}
    resolved[ENGINE_FOLDER] = _ensure_engine_jar(quiet=quiet)
    return resolved


def _ensure_set(jar_set: JarSet, *, quiet: bool) -> Path:
    folder = _set_dir(jar_set)
    if not _is_complete(jar_set):
        _resolve(jar_set, folder, quiet=quiet)
    return folder


def _jar_set(profile: str) -> JarSet:
    return next(jar_set for jar_set in JAR_SETS if jar_set.profile == profile)


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
    if proc.returncode != 0 or not all((folder / jar).exists() for jar in jar_set.must_contain):
        raise JarResolutionError(
            f"Maven failed to resolve the {jar_set.profile} jars (exit {proc.returncode}):\n"
            + (proc.stdout + proc.stderr)[-3000:]
        )
    (folder / _MARKER).write_text("ok\n")


def kafka_connector_jar() -> Path:
    # Only its own set: an installed image (Dockerfile) carries the connector and engine jars but no broker jars.
    return _ensure_set(_jar_set("connector"), quiet=True) / KAFKA_CONNECTOR_JAR


def kafka_broker_classpath() -> str:
    return str(_ensure_set(_jar_set("broker"), quiet=True) / "*")


def engine_jar() -> Path:
    """Our jar (the JVM side of the billing core), built from `engine/` when its sources changed."""
    return _ensure_engine_jar(quiet=True) / ENGINE_JAR


def _engine_project() -> Path:
    return project_home() / "engine"


def engine_source_hash(project: Path | None = None) -> str | None:
    """SHA-256 over pom.xml and every file under src/ (relative paths and contents); None without sources."""
    project = project or _engine_project()
    pom = project / "pom.xml"
    if not pom.is_file():
        return None
    digest = hashlib.sha256()
    files = [pom, *sorted(p for p in (project / "src").rglob("*") if p.is_file())]
    for path in files:
        name = path.relative_to(project).as_posix().encode()
        content = path.read_bytes()
        digest.update(len(name).to_bytes(8, "big") + name + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def _ensure_engine_jar(*, quiet: bool) -> Path:
    folder = jar_dir() / ENGINE_FOLDER
    marker, jar = folder / _MARKER, folder / ENGINE_JAR
    wanted = engine_source_hash()
    if jar.exists() and marker.exists() and (wanted is None or marker.read_text().strip() == wanted):
        return folder
    if wanted is None:
        raise JarResolutionError(f"no engine jar at {jar} and no sources at {_engine_project()} to build it from")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarResolutionError("Maven (`mvn`) is not on PATH; it is needed to build the engine jar.")
    project = _engine_project()
    if not quiet:
        print(f"building the engine jar from {project} with Maven into {folder} ...", flush=True)
    cmd = [mvn, "-B", "-q", "-f", str(project / "pom.xml"), "clean", "package"]  # clean: no stale classes
    proc = subprocess.run(cmd, capture_output=True, text=True)
    built = project / "target" / ENGINE_JAR
    if proc.returncode != 0 or not built.exists():
        raise JarResolutionError(
            f"Maven failed to build the engine jar (exit {proc.returncode}):\n" + (proc.stdout + proc.stderr)[-3000:]
        )
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    tmp = folder / (ENGINE_JAR + ".tmp")
    shutil.copyfile(built, tmp)
    tmp.replace(jar)  # atomic: a running job never sees half a jar
    marker.write_text(wanted + "\n")
    shutil.rmtree(jar_dir() / _LEGACY_ENGINE_FOLDER, ignore_errors=True)  # the old name's jar: nothing reads it
    return folder
