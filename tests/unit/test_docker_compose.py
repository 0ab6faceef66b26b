"""docker-compose.yml and Dockerfile against the rest of the repository, without a Docker engine.

What cannot be checked here (no engine on the development machines): that the images build and the stack runs.
What is checked: the files parse, every file they name exists and reaches the build context, services and ports
fit together and agree with flink-conf/config.yaml, topic names and the Kafka address agree with the billing job,
versions agree with the installed apache-flink and flink-conf/pom.xml, the Python pins with the venv, and the
image's jar layout is one that meterstream.jars accepts without Maven.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
REQUIREMENTS = ROOT / "docker" / "requirements.txt"
FLINK_CONF = ROOT / "flink-conf" / "config.yaml"
POM = ROOT / "flink-conf" / "pom.xml"
IMAGE_HOME = PurePosixPath("/opt/meterstream")  # METERSTREAM_HOME in the image
OUR_SERVICES = {"jobmanager", "taskmanager", "job-submitter", "load-generator"}


# ---- parsing helpers -----------------------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict]:
    return compose()["services"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comment lines dropped, as Docker reads them."""
    logical, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continuation"
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def dockerfile_args() -> dict[str, str]:
    values = {}
    for instruction, rest in dockerfile_instructions():
        if instruction == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def dockerfile_env() -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction, rest in dockerfile_instructions():
        if instruction == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                values[key] = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), value)
    return values


def stages() -> list[tuple[str, str | None]]:
    """(image, stage name) per FROM."""
    found = []
    for instruction, rest in dockerfile_instructions():
        if instruction == "FROM":
            parts = rest.split()
            found.append((parts[0], parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None))
    return found


def copies() -> list[tuple[dict[str, str], list[str], str]]:
    """(flags, sources, destination) per COPY."""
    result = []
    for instruction, rest in dockerfile_instructions():
        if instruction != "COPY":
            continue
        tokens = shlex.split(rest)
        flags = dict(t[2:].split("=", 1) for t in tokens if t.startswith("--"))
        paths = [t for t in tokens if not t.startswith("--")]
        result.append((flags, paths[:-1], paths[-1]))
    return result


def dockerignore_patterns() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def ignored(relative: str) -> bool:
    """Whether .dockerignore keeps a path (or one of its parents) out of the build context."""
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in dockerignore_patterns():
        assert not pattern.startswith("!"), "exceptions are not modelled by this test"
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or (pattern.startswith("**/") and
                                                     fnmatch.fnmatch(PurePosixPath(prefix).name, pattern[3:])):
                return True
    return False


def flink_conf_value(dotted: str):
    node = yaml.safe_load(FLINK_CONF.read_text())
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        rest = ".".join(parts[i:])
        if rest in node:
            return node[rest]
        node = node[part]
    return node


def flink_properties(service: dict) -> dict[str, str]:
    text = service["environment"]["FLINK_PROPERTIES"]
    return dict(line.split(":", 1) for line in text.splitlines() if line.strip())


def published_ports(service: dict) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) per `ports` entry."""
    result = []
    for entry in service.get("ports", []):
        ip, host, container = str(entry).split(":")
        result.append((ip, int(host), int(container)))
    return result


def kafka_internal_address() -> str:
    advertised = services()["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    listeners = dict(item.split("://", 1) for item in advertised.split(","))
    inter_broker = services()["kafka"]["environment"]["KAFKA_INTER_BROKER_LISTENER_NAME"]
    return listeners[inter_broker]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


# ---- the compose file ----------------------------------------------------------------------------------------

def test_compose_parses_and_has_the_stack():
    assert set(services()) == {"kafka", "topic-init", *OUR_SERVICES}
    assert set(compose()["volumes"]) == {"flink-state"}


def test_every_build_context_and_dockerfile_exists():
    for name, service in services().items():
        build = service.get("build")
        if name in OUR_SERVICES:
            assert build is not None, f"{name}: names the build, so `up` never tries to pull our image"
        if build is None:
            continue
        context = ROOT / build["context"]
        assert context.is_dir() and (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_our_services_share_one_image_and_everything_else_is_pinned():
    images = {name: service["image"] for name, service in services().items()}
    assert len({images[name] for name in OUR_SERVICES}) == 1
    for name, image in images.items():
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin a tag"


def test_depends_on_names_existing_services_with_sensible_conditions():
    all_services = services()
    for name, service in all_services.items():
        depends = service.get("depends_on", {})
        items = depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)
        for target, spec in items:
            assert target in all_services and target != name, f"{name} -> {target}"
            condition = (spec or {}).get("condition", "service_started")
            assert condition in {"service_started", "service_healthy", "service_completed_successfully"}
            if condition == "service_healthy":
                assert "healthcheck" in all_services[target], f"{target} needs a healthcheck for {name}"
            if condition == "service_completed_successfully":
                assert all_services[target].get("restart", "no") == "no", f"{target} is a one-shot"


def test_published_ports_are_local_unique_and_agree_with_the_flink_config():
    ports = [(name, *port) for name, service in services().items() for port in published_ports(service)]
    assert all(ip == "127.0.0.1" for _, ip, _, _ in ports), "publish on the loopback interface only"
    host_ports = [host for _, _, host, _ in ports]
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"

    rest_port = int(flink_conf_value("rest.port"))
    metrics_port = int(flink_conf_value("metrics.reporter.prom.port"))
    by_service = {name: {(host, container) for n, _, host, container in ports if n == name} for name in services()}
    assert (rest_port, rest_port) in by_service["jobmanager"]
    assert (metrics_port, metrics_port) in by_service["jobmanager"]
    # As with `meterstream cluster up`: the TaskManager's endpoint on the next port of the host.
    assert (metrics_port + 1, metrics_port) in by_service["taskmanager"]
    for name in ("jobmanager", "taskmanager"):
        properties = flink_properties(services()[name])
        assert int(properties["rest.port"]) == rest_port
        assert int(properties["metrics.reporter.prom.port"]) == metrics_port
        assert properties["jobmanager.rpc.address"] == "jobmanager"
        assert services()[name]["environment"]["JOB_MANAGER_RPC_ADDRESS"] == "jobmanager"


def test_flink_properties_have_no_spaces():
    # The image's entrypoint passes each value to Flink's config parser as an unquoted `-Dkey=value`: a space
    # after the colon (the usual YAML spelling) makes the value empty.
    for name in ("jobmanager", "taskmanager"):
        for line in services()[name]["environment"]["FLINK_PROPERTIES"].splitlines():
            assert line == line.strip() and " " not in line and ":" in line, f"{name}: {line!r}"


def test_the_taskmanager_offers_the_slots_the_submitted_job_needs():
    slots = int(flink_properties(services()["taskmanager"])["taskmanager.numberOfTaskSlots"])
    assert slots == int(flink_conf_value("taskmanager.numberOfTaskSlots"))
    parallelism = int(services()["job-submitter"]["command"][1])
    assert parallelism <= slots


def test_topic_init_creates_exactly_the_billing_job_topics():
    from jobs.billing import Topics
    from meterstream.topics import JOB_OUTPUT_TOPICS, OUTPUT_TOPIC_CONFIG

    init = services()["topic-init"]
    assert init["image"] == services()["kafka"]["image"]
    inputs, outputs = init["environment"]["TOPICS"].split(), init["environment"]["OUTPUT_TOPICS"].split()
    created = [*inputs, *outputs]
    assert len(created) == len(set(created))
    assert set(created) == set(vars(Topics()).values())
    assert set(outputs) == {getattr(Topics(), name) for name in JOB_OUTPUT_TOPICS}
    assert init["environment"]["OUTPUT_TOPIC_CONFIG"] == ",".join(f"{k}={v}" for k, v in OUTPUT_TOPIC_CONFIG.items())
    command = init["command"][0]
    assert "$${TOPICS}" in command and "$${OUTPUT_TOPICS}" in command and "--if-not-exists" in command
    assert '--config "$${OUTPUT_TOPIC_CONFIG}"' in command


def test_every_client_uses_the_internal_kafka_listener():
    internal = kafka_internal_address()
    assert internal == "kafka:29092"
    all_services = services()
    assert all_services["topic-init"]["environment"]["BOOTSTRAP"] == internal
    assert internal in " ".join(all_services["kafka"]["healthcheck"]["test"])
    assert option(all_services["job-submitter"]["command"], "--bootstrap") == internal
    assert option(all_services["load-generator"]["command"], "--bootstrap") == internal
    assert "HOST://127.0.0.1:9092" in all_services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_the_submitter_runs_the_billing_job_with_credits():
    from jobs.billing import JOB_NAME, parse_args

    submitter = services()["job-submitter"]
    entrypoint = submitter["entrypoint"]
    script = PurePosixPath(entrypoint[-1])
    assert script.is_relative_to(IMAGE_HOME) and (ROOT / script.relative_to(IMAGE_HOME)).is_file()
    jobmanager, _parallelism, job_name, *job_args = submitter["command"]
    assert jobmanager == f"jobmanager:{flink_conf_value('rest.port')}"
    assert job_name == JOB_NAME
    args = parse_args(job_args)
    assert args.credits and not args.bounded
    catalog = PurePosixPath(args.catalog)
    assert catalog.is_relative_to(IMAGE_HOME) and (ROOT / catalog.relative_to(IMAGE_HOME)).is_file()
    assert "meterstream submit" in (ROOT / script.relative_to(IMAGE_HOME)).read_text()


def test_submit_and_produce_command_lines_parse():
    from meterstream.cli import build_parser

    parser = build_parser()
    loadgen = services()["load-generator"]
    assert loadgen["entrypoint"] == ["meterstream"]
    args = parser.parse_args(loadgen["command"])
    assert args.command == "produce" and args.forever and args.events > 0
    # The submit line of docker/submit-billing.sh, as meterstream.cli.main splits it at `--`.
    args = parser.parse_args(["submit", "--jobmanager", "jobmanager:8081", "--parallelism", "2"])
    assert (args.command, args.jobmanager, args.parallelism) == ("submit", "jobmanager:8081", 2)


def test_checkpoints_live_on_the_volume_shared_by_jobmanager_and_taskmanager():
    env = dockerfile_env()
    var = f"{env['METERSTREAM_CACHE']}/var"
    for name in ("jobmanager", "taskmanager"):
        assert f"flink-state:{var}" in services()[name]["volumes"]
    run_lines = " ".join(rest for instruction, rest in dockerfile_instructions() if instruction == "RUN")
    for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"):
        match = re.search(rf"-D{re.escape(key)}=file://(\S+)", run_lines)
        assert match, key
        path = match.group(1).replace("${METERSTREAM_CACHE}", env["METERSTREAM_CACHE"])
        assert path.startswith(var + "/cluster/"), path


def test_checkpoint_paths_match_what_meterstream_submit_writes_in_the_image(monkeypatch):
    from meterstream import cluster

    env = dockerfile_env()
    monkeypatch.setenv("METERSTREAM_HOME", env["METERSTREAM_HOME"])
    monkeypatch.setenv("METERSTREAM_CACHE", env["METERSTREAM_CACHE"])
    run_lines = " ".join(rest for instruction, rest in dockerfile_instructions() if instruction == "RUN")
    checkpoints = re.search(r"-Dexecution\.checkpointing\.dir=file://(\S+)", run_lines).group(1)
    assert checkpoints.replace("${METERSTREAM_CACHE}", env["METERSTREAM_CACHE"]) == str(
        cluster.cluster_dir() / "checkpoints")


# ---- the Dockerfile ------------------------------------------------------------------------------------------

def test_dockerfile_stages_and_base_images():
    (builder, builder_name), (runtime, _) = stages()
    assert builder == "maven:3.9-eclipse-temurin-17" and builder_name
    flink = metadata.version("apache-flink")
    assert runtime == f"flink:{flink}-scala_2.12-java17"
    assert dockerfile_args()["FLINK_VERSION"] == flink


def test_every_copied_file_exists_and_reaches_the_build_context():
    stage_names = {name for _, name in stages() if name}
    for flags, sources, destination in copies():
        assert sources and destination
        if "from" in flags:
            assert flags["from"] in stage_names, flags["from"]
            continue
        for source in sources:
            if source == ".":
                continue
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not ignored(source), f"COPY {source}: excluded by .dockerignore"


def test_the_build_context_keeps_out_local_state_but_not_what_the_image_needs():
    for heavy in (".venv", ".cache", ".git", "engine/target", "meterstream/__pycache__"):
        assert ignored(heavy), heavy
    needed = ("pyproject.toml", "README.md", "jobs/billing.py", "catalogs/example-genai.yaml", "flink-conf/config.yaml",
              "flink-conf/pom.xml", "engine/src", "docker/submit-billing.sh", "docker/requirements.txt",
              "meterstream/cli.py", "udfs", "schemas/json")
    for path in needed:
        assert (ROOT / path).exists() and not ignored(path), path


def test_connector_and_kafka_versions_agree_with_the_pom_and_the_jar_cache():
    from meterstream.jars import ENGINE_JAR, KAFKA_CONNECTOR_JAR

    root = ET.parse(POM).getroot()
    section = next(el for el in root if el.tag.rpartition("}")[2] == "properties")
    properties = {el.tag.rpartition("}")[2]: el.text for el in section}
    connector = properties["flink.kafka.connector.version"]
    flink = metadata.version("apache-flink")
    assert connector.endswith("-" + ".".join(flink.split(".")[:2])), "the connector is built for another Flink"
    assert f"flink-sql-connector-kafka-{connector}.jar" == KAFKA_CONNECTOR_JAR
    text = DOCKERFILE.read_text()
    jar_names = set(re.findall(r"flink-sql-connector-kafka-[\w.\-]+?\.jar", text))
    assert jar_names == {KAFKA_CONNECTOR_JAR}
    assert ENGINE_JAR in text
    assert services()["kafka"]["image"] == f"apache/kafka:{properties['kafka.version']}"


def test_the_maven_commands_are_the_ones_meterstream_jars_runs():
    text = " ".join(rest for instruction, rest in dockerfile_instructions() if instruction == "RUN")
    assert "-f flink-conf/pom.xml -P connector dependency:copy-dependencies" in text
    assert "-DincludeScope=runtime" in text
    assert "-f engine/pom.xml clean package" in text


def test_the_image_puts_flink_python_and_the_connector_into_the_cluster_lib():
    text = " ".join(rest for instruction, rest in dockerfile_instructions() if instruction == "RUN")
    assert "cp /opt/flink/opt/flink-python-*.jar /opt/flink/lib/" in text
    assert re.search(r'cp "?\S+/flink-sql-connector-kafka-[^"\s]+\.jar"? /opt/flink/lib/', text)


def test_python_settings_of_the_image():
    env, args = dockerfile_env(), dockerfile_args()
    venv, version = env["VENV"], args["PYTHON_VERSION"]
    assert env["METERSTREAM_HOME"] == str(IMAGE_HOME)
    assert env["PATH"].startswith(f"{venv}/bin:")
    text = " ".join(rest for instruction, rest in dockerfile_instructions() if instruction == "RUN")
    resolved = text.replace("${VENV}", venv).replace("${PYTHON_VERSION}", version)
    assert f"-Dpython.executable={venv}/bin/python" in resolved
    assert f"-Dpython.client.executable={venv}/bin/python" in resolved
    assert f"-Dpython.pythonpath={venv}/lib/python{version}/site-packages" in resolved
    # Values reach Flink's config parser as unquoted words: no spaces in them.
    for match in re.finditer(r"-D[\w.\-]+=(\S*)", resolved):
        assert match.group(1), match.group(0)
    assert (["docker/requirements.txt"], "/tmp/requirements.txt") in [(src, dst) for _, src, dst in copies()]
    assert re.search(r'/pip"? install --no-cache-dir -r /tmp/requirements\.txt', text)


def test_the_python_pins_name_the_venv_runtime_closure_and_cover_pyproject():
    import importlib.util
    import tomllib

    spec = importlib.util.spec_from_file_location("docker_lock", ROOT / "docker" / "lock.py")
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    # The same packages as the venv's runtime closure. Versions may drift by the patch releases a fresh install
    # picks up (the venv is not pinned), except PyFlink's, which must match the image's Flink.
    closure = lock.runtime_closure()
    assert pins.keys() == closure.keys(), "docker/requirements.txt is stale: .venv/bin/python docker/lock.py"
    assert pins["apache-flink"] == metadata.version("apache-flink") == closure["apache-flink"]
    for text in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins and requirement.specifier.contains(pins[name], prereleases=True), text


def test_no_registry_host_names_in_the_docker_files():
    """Images by plain name, packages through the default indexes: no host of any registry in these files."""
    files = [COMPOSE, DOCKERFILE, DOCKERIGNORE, *sorted((ROOT / "docker").iterdir())]
    images = [image for image, _ in stages()] + [s["image"] for s in services().values()]
    for image in images:
        first = image.split("/")[0]
        assert "/" not in image or not ("." in first or ":" in first or first == "localhost"), image
    allowed_hosts = {"localhost", "127.0.0.1", "jobmanager", "kafka", ""}
    for path in files:
        if path.is_dir() or path.suffix == ".pyc":
            continue
        text = path.read_text()
        for host in re.findall(r"\b[a-z][a-z0-9+.\-]*://([^/\s:'\"]*)", text):
            assert host in allowed_hosts or "{" in host, f"{path.name}: URL host {host!r}"
        assert not re.search(r"--(extra-)?index-url|\s-i\s+\S+://", text), path.name


# ---- the image's jar layout ---------------------------------------------------------------------------------

def test_the_image_jar_layout_needs_no_maven(tmp_path, monkeypatch):
    """Connector and engine sets as the Dockerfile writes them (no broker set) satisfy meterstream.jars."""
    from meterstream import jars

    cache = tmp_path / "cache"
    connector = cache / "jars" / "connector"
    engine = cache / "jars" / "engine"
    connector.mkdir(parents=True)
    engine.mkdir(parents=True)
    (connector / jars.KAFKA_CONNECTOR_JAR).write_bytes(b"jar")
    (connector / ".complete").write_text("ok\n")
    (engine / jars.ENGINE_JAR).write_bytes(b"jar")
    (engine / ".complete").write_text(jars.engine_source_hash(ROOT / "engine") + "\n")
    monkeypatch.setenv("METERSTREAM_HOME", str(ROOT))
    monkeypatch.setenv("METERSTREAM_CACHE", str(cache))
    monkeypatch.setattr(jars.shutil, "which", lambda name: None)  # no Maven in the image
    assert jars.kafka_connector_jar() == connector / jars.KAFKA_CONNECTOR_JAR
    assert jars.engine_jar() == engine / jars.ENGINE_JAR
    with pytest.raises(jars.JarResolutionError):
        jars.kafka_broker_classpath()  # only the local broker needs these, never the image


def test_the_engine_jar_is_named_after_its_module_in_the_pom_the_cache_and_the_image():
    from meterstream import jars

    root = ET.parse(ROOT / "engine" / "pom.xml").getroot()
    children = {el.tag.rpartition("}")[2]: el for el in root}
    build = {el.tag.rpartition("}")[2]: el.text for el in children["build"]}
    assert jars.ENGINE_JAR == "meterstream-engine.jar" == f"{build['finalName']}.jar"
    assert children["artifactId"].text == "meterstream-engine"
    assert jars.ENGINE_FOLDER == "engine"
    text = DOCKERFILE.read_text()
    assert "cp engine/target/meterstream-engine.jar /jars/engine/meterstream-engine.jar" in text
    assert "${METERSTREAM_CACHE}/jars/engine/" in text


def _engine_sources(home):
    """A minimal engine/ project under `home`: what `engine_source_hash` hashes."""
    (home / "engine" / "src").mkdir(parents=True)
    (home / "engine" / "pom.xml").write_text("<project/>\n")
    (home / "engine" / "src" / "A.java").write_text("class A {}\n")


def test_a_cache_holding_only_the_old_jar_name_is_never_used(tmp_path, monkeypatch):
    """`.cache/jars/udf/meterstream-udf.jar` with a marker that matches the sources: rebuilt under the new name (and
    the old folder removed), or, without sources to build from, an error rather than the old jar."""
    from meterstream import jars

    home, cache = tmp_path / "home", tmp_path / "cache"
    _engine_sources(home)
    monkeypatch.setenv("METERSTREAM_HOME", str(home))
    monkeypatch.setenv("METERSTREAM_CACHE", str(cache))
    legacy = cache / "jars" / "udf"
    legacy.mkdir(parents=True)
    (legacy / "meterstream-udf.jar").write_bytes(b"old jar")
    (legacy / ".complete").write_text(jars.engine_source_hash() + "\n")

    builds = []

    def fake_maven(cmd, **kwargs):  # what `mvn clean package` leaves behind
        builds.append(cmd)
        (home / "engine" / "target").mkdir(exist_ok=True)
        (home / "engine" / "target" / jars.ENGINE_JAR).write_bytes(b"new jar")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(jars.shutil, "which", lambda name: "/usr/bin/mvn")
    monkeypatch.setattr(jars.subprocess, "run", fake_maven)
    jar = jars.engine_jar()
    assert len(builds) == 1 and builds[0][-2:] == ["clean", "package"]
    assert jar == cache / "jars" / "engine" / "meterstream-engine.jar"
    assert jar.read_bytes() == b"new jar"
    assert not legacy.exists(), "the old name's folder is removed once the new jar is built"
    assert jars.engine_jar() == jar and len(builds) == 1, "built once: the marker now matches"

    # Without sources (an installed image) an old-name cache is an error, not a silent fallback.
    image_cache = tmp_path / "image-cache"
    (image_cache / "jars" / "udf").mkdir(parents=True)
    (image_cache / "jars" / "udf" / "meterstream-udf.jar").write_bytes(b"old jar")
    (image_cache / "jars" / "udf" / ".complete").write_text("ok\n")
    monkeypatch.setenv("METERSTREAM_CACHE", str(image_cache))
    monkeypatch.setenv("METERSTREAM_HOME", str(tmp_path / "no-sources"))
    with pytest.raises(jars.JarResolutionError, match="no engine jar"):
        jars.engine_jar()
    assert len(builds) == 1


# ---- the secured override (docker-compose.secured.yml) --------------------------------------------------------

SECURED = ROOT / "docker-compose.secured.yml"
SECRETS_DIR = PurePosixPath("/etc/meterstream/secured")


def secured_services() -> dict[str, dict]:
    """The services as Compose merges the override into the main file: maps merged (environment, depends_on),
    volumes merged by container path, command lists replaced."""
    merged = {name: dict(service) for name, service in services().items()}
    for service in merged.values():
        if isinstance(service.get("depends_on"), list):  # the short form: started
            service["depends_on"] = {target: {} for target in service["depends_on"]}
    for name, override in yaml.safe_load(SECURED.read_text())["services"].items():
        service = merged.setdefault(name, {})
        for key, value in override.items():
            if key in ("environment", "depends_on") and key in service:
                service[key] = {**service[key], **value}
            elif key == "volumes" and key in service:
                by_target = {v.split(":")[1]: v for v in [*service[key], *value]}
                service[key] = list(by_target.values())
            else:
                service[key] = value
    return merged


def test_the_secured_override_names_services_volumes_and_dependencies_that_exist():
    override = yaml.safe_load(SECURED.read_text())
    merged = secured_services()
    assert set(merged) == {*services(), "kafka-secrets", "scram-user"}
    assert set(override["volumes"]) == {"kafka-secrets"}
    for name, service in merged.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in merged and target != name, f"{name} -> {target}"
            condition = (spec or {}).get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in merged[target], f"{target} needs a healthcheck for {name}"
            if condition == "service_completed_successfully":
                assert merged[target].get("restart", "no") == "no", f"{target} is a one-shot"
    assert override["services"]["kafka-secrets"]["build"] == services()["jobmanager"]["build"]
    assert override["services"]["kafka-secrets"]["image"] == services()["jobmanager"]["image"]


def test_the_secured_clients_use_the_sasl_ssl_listener_with_the_properties_file_and_no_password():
    from jobs.billing import parse_args
    from meterstream.cli import build_parser

    merged = secured_services()
    env = merged["kafka"]["environment"]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert protocols["SECURE"] == "SASL_SSL"
    assert {item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")} == set(protocols)
    secure = advertised["SECURE"]
    assert env["KAFKA_LISTENER_NAME_SECURE_SSL_KEYSTORE_LOCATION"].startswith(f"{SECRETS_DIR}/")
    properties = str(SECRETS_DIR / "client.properties")
    job = parse_args(merged["job-submitter"]["command"][3:])
    assert (job.bootstrap, job.kafka_properties, job.credits) == (secure, properties, True)
    produce = build_parser().parse_args(merged["load-generator"]["command"])
    assert (produce.bootstrap, produce.kafka_properties) == (secure, properties)
    for name in ("kafka", "scram-user", "jobmanager", "taskmanager", "job-submitter", "load-generator"):
        assert f"kafka-secrets:{SECRETS_DIR}:ro" in merged[name]["volumes"], name
    # The clients' password is made at first start, on the volume: the file holds none, no command line either.
    text = SECURED.read_text()
    assert not re.search(r"password=(?!\$|%s)", text)


def test_the_secured_client_properties_are_ones_meterstream_accepts():
    from meterstream.kafka_security import PROPERTY_KEYS

    script = yaml.safe_load(SECURED.read_text())["services"]["kafka-secrets"]["command"][0]
    written = re.search(r"printf '%s\\n' (.*?) > client.properties", script, re.DOTALL).group(1)
    keys = {word.strip('"').split("=")[0] for word in shlex.split(written.replace("\\\n", " "))}
    assert keys == {"security.protocol", "sasl.mechanism", "sasl.username", "sasl.password", "ssl.truststore.type",
                    "ssl.truststore.location"}
    assert keys <= set(PROPERTY_KEYS)


# ---- with a Docker client (not on the development machines) ---------------------------------------------------

def test_docker_compose_config_accepts_the_file():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on PATH")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
    if version.returncode != 0:
        pytest.skip(f"docker compose is not available here: {(version.stderr or version.stdout).strip()[:200]}")
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
