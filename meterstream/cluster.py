"""A standalone Flink session cluster (one JobManager, one or more TaskManagers) on 127.0.0.1, from the apache-flink
wheel.

The wheel carries Flink's own start scripts (`pyflink/bin/jobmanager.sh`, `taskmanager.sh`); this module gives them
a generated configuration and a place to live under `<cache>/var/cluster/`:

    conf/     config.yaml = flink-conf/config.yaml with ports, directories and the Python interpreter filled in,
              plus the wheel's log4j/logback files
    lib/      the wheel's lib/ jars + opt/flink-python (without it in the cluster's lib, the second THREAD-mode job
              on a TaskManager fails in pemja on JDK 17: NoSuchFieldException loadedLibraryNames), as symlinks
    log/ pid/ tmp/ checkpoints/ savepoints/   what the processes write

`cluster.json` in that folder records the ports, so `status`, `down`, `submit` and the REST wrappers find the
cluster again. Tests run their own cluster with other ports and another `METERSTREAM_CACHE`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from meterstream.kafka_security import redact
from meterstream.paths import flink_conf_dir, project_home, var_dir

DEFAULT_REST_PORT = 8081
DEFAULT_RPC_PORT = 6123
DEFAULT_METRICS_PORT = 9249  # the JobManager's; TaskManager i's (from 0) is this + 1 + i
HOST = "127.0.0.1"
FLINK_VERSION = "2.2.1"
# The Python packages the job imports on the TaskManager; shipped with each submission (--pyFiles).
JOB_PACKAGES = ("jobs", "udfs", "schemas", "meterstream")


class ClusterError(RuntimeError):
    """The cluster did not start, stop or answer; the message carries what is known (log tail, REST error)."""


@dataclass
class ClusterInfo:
    rest_port: int
    rpc_port: int
    metrics_port: int
    home: str
    taskmanagers: int = 1  # how many `up` started (each with the slots of taskmanager.numberOfTaskSlots)

    @property
    def rest_address(self) -> str:
        return f"{HOST}:{self.rest_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.rest_address}"

    @property
    def jobmanager_metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    @property
    def taskmanager_metrics_url(self) -> str:
        """The first TaskManager's (where a one-TaskManager cluster runs every job)."""
        return f"http://{HOST}:{self.metrics_port + 1}/metrics"

    def taskmanager_metrics_ports(self) -> list[int]:
        return [self.metrics_port + 1 + i for i in range(self.taskmanagers)]


# ---------------------------------------------------------------------------------------------- files and folders

def cluster_dir() -> Path:
    return var_dir() / "cluster"


def flink_home() -> Path:
    """The apache-flink wheel's Flink distribution (`site-packages/pyflink`)."""
    import importlib.util

    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise ClusterError("apache-flink is not installed in this interpreter")
    return Path(spec.origin).parent


def _env_port(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _set(tree: dict, dotted: str, value: object) -> None:
    """Set `a.b.c` in nested YAML, whichever of nested or flat form the source file used for its parents."""
    node = tree
    parts = dotted.split(".")
    for i, part in enumerate(parts[:-1]):
        flat_rest = ".".join(parts[i:])
        if flat_rest in node:  # the source spelled the rest of the key flat at this level
            node[flat_rest] = value
            return
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def effective_config(info: ClusterInfo) -> dict:
    """flink-conf/config.yaml with the values that depend on this checkout, these ports and this var dir."""
    home = Path(info.home)
    tree = yaml.safe_load((flink_conf_dir() / "config.yaml").read_text())
    import site

    for key, value in {
        "rest.port": info.rest_port,
        "jobmanager.rpc.port": info.rpc_port,
        "metrics.reporter.prom.port": info.metrics_port,
        "execution.checkpointing.dir": (home / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (home / "savepoints").as_uri(),
        "io.tmp.dirs": str(home / "tmp"),
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "python.pythonpath": os.pathsep.join(site.getsitepackages()),
    }.items():
        _set(tree, key, value)
    return tree


def write_conf(info: ClusterInfo) -> Path:
    conf = Path(info.home) / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for pattern in ("log4j*.properties", "logback*.xml"):
        for source in (flink_home() / "conf").glob(pattern):
            shutil.copyfile(source, conf / source.name)
    (conf / "config.yaml").write_text(
        "# Generated by `meterstream cluster up` from flink-conf/config.yaml; edits here are overwritten.\n"
        + yaml.safe_dump(effective_config(info), sort_keys=False, width=1 << 16)
    )
    return conf


def prepare_lib(home: Path) -> Path:
    """The wheel's lib/ plus opt/flink-python (see the module docstring), as symlinks; rebuilt each time (cheap,
    never stale)."""
    lib = home / "lib"
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    wheel = flink_home()
    for jar in [*sorted((wheel / "lib").glob("*.jar")), wheel / "opt" / f"flink-python-{FLINK_VERSION}.jar"]:
        if not jar.exists():
            raise ClusterError(f"missing {jar} in the apache-flink wheel")
        (lib / jar.name).symlink_to(jar)
    return lib


def script_env(info: ClusterInfo) -> dict[str, str]:
    """Environment for the wheel's scripts (also `bin/flink`): everything points into this cluster's folder."""
    home = Path(info.home)
    env = dict(os.environ)
    env.update(
        FLINK_CONF_DIR=str(home / "conf"),
        FLINK_LOG_DIR=str(home / "log"),
        FLINK_LIB_DIR=str(home / "lib"),
        FLINK_PLUGINS_DIR=str(flink_home() / "plugins"),
        FLINK_OPT_DIR=str(flink_home() / "opt"),
        # Own pid files: the scripts' default (/tmp, per user) would mix this cluster with any other one.
        FLINK_PID_DIR=str(home / "pid"),
    )
    return env


def _save(info: ClusterInfo) -> None:
    (Path(info.home) / "cluster.json").write_text(json.dumps(asdict(info), indent=2) + "\n")


def recorded_cluster(home: Path | None = None) -> ClusterInfo | None:
    path = (home or cluster_dir()) / "cluster.json"
    if not path.exists():
        return None
    return ClusterInfo(**json.loads(path.read_text()))


def _pids(home: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for daemon in ("standalonesession", "taskexecutor"):
        files = list((home / "pid").glob(f"flink-*-{daemon}.pid"))
        out[daemon] = [int(line) for f in files for line in f.read_text().split() if line.strip().isdigit()]
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def log_tail(home: Path | None = None, lines: int = 40) -> str:
    logs = sorted(((home or cluster_dir()) / "log").glob("flink-*"), key=lambda p: p.stat().st_mtime)
    parts = []
    for log in logs[-4:]:
        text = log.read_text(errors="replace").splitlines()
        parts.append(f"--- {log.name} (last {lines} lines)\n" + "\n".join(text[-lines:]))
    return "\n".join(parts) or "(no log files)"


# ------------------------------------------------------------------------------------------------------------ REST

def rest(address: str, method: str, path: str, body: dict | None = None, *, timeout: float = 10.0) -> dict:
    """One call to the JobManager's REST API; JSON in and out. `address` is host:port."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:2000]
        raise ClusterError(f"{method} {path} -> HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ClusterError(f"{method} {path}: no answer from {address} ({exc})") from exc
    return json.loads(payload) if payload else {}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


# ------------------------------------------------------------------------------------------------ up/down/status

def _script(name: str) -> str:
    return str(flink_home() / "bin" / name)


def up(
    *, rest_port: int | None = None, rpc_port: int | None = None, metrics_port: int | None = None,
    home: Path | None = None, timeout_s: float = 120.0, taskmanagers: int = 1,
) -> tuple[ClusterInfo, bool]:
    """Start the JobManager and `taskmanagers` TaskManagers unless this folder's cluster already runs; (info, started).

    Ports: argument, else METERSTREAM_FLINK_{REST,RPC,METRICS}_PORT, else 8081 / 6123 / 9249 (+1+i for TaskManager
    i). Returns once the REST API answers and every TaskManager has registered; otherwise stops what started and
    raises with the log tail. Each TaskManager takes taskmanager.memory.process.size (flink-conf/config.yaml).
    """
    if taskmanagers < 1:
        raise ClusterError(f"a cluster needs at least one TaskManager, not {taskmanagers}")
    home = home or cluster_dir()
    running = recorded_cluster(home)
    if running is not None and any(_alive(p) for pids in _pids(home).values() for p in pids):
        return running, False
    info = ClusterInfo(
        rest_port=rest_port or _env_port("METERSTREAM_FLINK_REST_PORT", DEFAULT_REST_PORT),
        rpc_port=rpc_port or _env_port("METERSTREAM_FLINK_RPC_PORT", DEFAULT_RPC_PORT),
        metrics_port=metrics_port or _env_port("METERSTREAM_FLINK_METRICS_PORT", DEFAULT_METRICS_PORT),
        home=str(home),
        taskmanagers=taskmanagers,
    )
    wanted = (info.rest_port, info.rpc_port, info.metrics_port, *info.taskmanager_metrics_ports())
    busy = [p for p in wanted if not _port_free(p)]
    if busy:
        raise ClusterError(f"port(s) {busy} on {HOST} are taken (another Flink cluster?); choose others with "
                           "--rest-port/--rpc-port/--metrics-port or METERSTREAM_FLINK_*_PORT")
    for sub in ("log", "pid", "tmp", "checkpoints", "savepoints"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    write_conf(info)
    prepare_lib(home)
    _save(info)
    env = script_env(info)
    try:
        cmd = [_script("jobmanager.sh"), "start"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        for index in range(taskmanagers):
            start_taskmanager(info, index)
    except ClusterError as exc:
        down(home=home)
        raise ClusterError(f"{exc}\n{log_tail(home)}") from None
    try:
        wait_ready(info, timeout_s=timeout_s)
    except ClusterError:
        down(home=home)
        raise
    return info, True


def start_taskmanager(info: ClusterInfo, index: int = 0) -> None:
    """TaskManager `index` (from 0; again after it died); returns once the script started it."""
    cmd = [_script("taskmanager.sh"), "start", "-D", f"metrics.reporter.prom.port={info.metrics_port + 1 + index}"]
    proc = subprocess.run(cmd, env=script_env(info), capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def wait_ready(info: ClusterInfo, *, timeout_s: float = 120.0) -> None:
    home = Path(info.home)
    deadline = time.monotonic() + timeout_s
    last = "REST API not answering yet"
    while time.monotonic() < deadline:
        pids = _pids(home)
        for daemon, listed in pids.items():
            if listed and not any(_alive(p) for p in listed):
                raise ClusterError(f"the {daemon} process exited during start-up\n" + log_tail(home))
        try:
            tms = rest(info.rest_address, "GET", "/taskmanagers", timeout=3).get("taskmanagers", [])
            if len(tms) >= info.taskmanagers:
                return
            last = f"REST API answers, {len(tms)} of {info.taskmanagers} TaskManager(s) registered"
        except ClusterError as exc:
            last = str(exc)
        time.sleep(1.0)
    raise ClusterError(f"cluster not ready after {timeout_s:.0f} s ({last})\n" + log_tail(home))


def down(*, home: Path | None = None, timeout_s: float = 30.0) -> bool:
    """Stop the TaskManager(s), then the JobManager; wait until the processes are gone. False if none ran."""
    home = home or cluster_dir()
    info = recorded_cluster(home)
    pids = [p for listed in _pids(home).values() for p in listed if _alive(p)]
    if info is None:
        return False
    env = script_env(info)
    for script in ("taskmanager.sh", "jobmanager.sh"):
        subprocess.run([_script(script), "stop-all"], env=env, capture_output=True, text=True, timeout=60)
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.3)
    for pid in pids:  # the scripts SIGKILL after 10 s themselves; this is for a script that could not run
        if _alive(pid):
            os.kill(pid, 9)
    return bool(pids)


def status(address: str) -> dict:
    """Overview (TaskManagers, slots) and running jobs, from the REST API at host:port."""
    overview = rest(address, "GET", "/overview")
    jobs = rest(address, "GET", "/jobs/overview").get("jobs", [])
    return {"overview": overview, "running": [j for j in jobs if j.get("state") == "RUNNING"], "jobs": jobs}


def jobmanager_address(explicit: str | None = None) -> str:
    """host:port of the REST API: an explicit one, else METERSTREAM_FLINK_JOBMANAGER, else the recorded cluster."""
    if explicit:
        return explicit
    if os.environ.get("METERSTREAM_FLINK_JOBMANAGER"):
        return os.environ["METERSTREAM_FLINK_JOBMANAGER"]
    info = recorded_cluster()
    return info.rest_address if info else f"{HOST}:{DEFAULT_REST_PORT}"


# ------------------------------------------------------------------------------------------------ jobs over REST

JOB_ID = re.compile(r"JobID\s+([0-9a-f]{32})")


def submit_command(jobmanager: str, job_args: list[str], *, parallelism: int | None = None,
                   from_savepoint: str | None = None) -> list[str]:
    """The plain `flink run` line: the wheel's client, detached, the job script plus the packages it imports.

    `from_savepoint`: a savepoint (or retained checkpoint) to restore the job's state from (`flink run -s`); the
    operators find their state by uid (jobs/operator_uids.txt), the parallelism may differ up to the max (128).
    """
    home = project_home()
    cmd = [_script("flink"), "run", "--detached", "-m", jobmanager]
    if parallelism is not None:
        cmd += ["--parallelism", str(parallelism)]
    if from_savepoint is not None:
        cmd += ["--fromSavepoint", from_savepoint]
    cmd += ["--python", str(home / "jobs" / "billing.py"),
            "--pyFiles", ",".join(str(home / p) for p in JOB_PACKAGES), *job_args]
    return cmd


def submit(jobmanager: str, job_args: list[str], *, parallelism: int | None = None,
           from_savepoint: str | None = None, home: Path | None = None,
           timeout_s: float = 300.0) -> tuple[str, list[str], str]:
    """Run `flink run --detached` for the billing job; (job id, command, client output)."""
    home = home or cluster_dir()
    info = recorded_cluster(home)
    if info is None:  # a cluster we did not start: the client still needs a conf dir (python, lib) of ours
        host, _, port = jobmanager.partition(":")
        info = ClusterInfo(rest_port=int(port or DEFAULT_REST_PORT), rpc_port=DEFAULT_RPC_PORT,
                           metrics_port=DEFAULT_METRICS_PORT, home=str(home))
        for sub in ("log", "pid", "tmp"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        write_conf(info)
        prepare_lib(home)
    if parallelism is not None and "--parallelism" not in job_args:
        job_args = [*job_args, "--parallelism", str(parallelism)]  # the job sets its parallelism itself
    cmd = submit_command(jobmanager, job_args, parallelism=parallelism, from_savepoint=from_savepoint)
    proc = subprocess.run(cmd, env=script_env(info), capture_output=True, text=True, timeout=timeout_s,
                          cwd=project_home())
    output = proc.stdout + proc.stderr
    match = JOB_ID.search(output)
    if proc.returncode != 0 or match is None:
        # The client's output may echo the job's arguments or its Kafka settings: never their secrets.
        raise ClusterError(f"flink run failed ({proc.returncode}):\n{redact(output, args=job_args)[-6000:]}")
    return match.group(1), cmd, output


def absolute_properties_path(job_args: list[str]) -> list[str]:
    """The job's arguments with `--kafka-properties FILE` made absolute (the client runs the job elsewhere)."""
    out = list(job_args)
    for i, word in enumerate(out):
        if word == "--kafka-properties" and i + 1 < len(out):
            out[i + 1] = str(Path(out[i + 1]).expanduser().resolve())
        elif word.startswith("--kafka-properties="):
            out[i] = "--kafka-properties=" + str(Path(word.partition("=")[2]).expanduser().resolve())
    return out


def _wait_trigger(jobmanager: str, job_id: str, trigger_id: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = rest(jobmanager, "GET", f"/jobs/{job_id}/savepoints/{trigger_id}")
        if answer.get("status", {}).get("id") == "COMPLETED":
            operation = answer.get("operation", {})
            if "failure-cause" in operation:
                cause = operation["failure-cause"]
                raise ClusterError(f"savepoint failed: {cause.get('stack-trace', cause)}"[:4000])
            return operation["location"]
        time.sleep(0.5)
    raise ClusterError(f"savepoint {trigger_id} of job {job_id} not complete after {timeout_s:.0f} s")


def savepoint(jobmanager: str, job_id: str, *, stop: bool = False, target_directory: str | None = None,
              timeout_s: float = 180.0) -> str:
    """Trigger a savepoint (or stop-with-savepoint) and wait for it; returns its path."""
    body: dict[str, object] = {"formatType": "CANONICAL"}
    if target_directory:
        body["targetDirectory"] = target_directory
    if stop:
        body["drain"] = False
        answer = rest(jobmanager, "POST", f"/jobs/{job_id}/stop", body)
    else:
        body["cancel-job"] = False
        answer = rest(jobmanager, "POST", f"/jobs/{job_id}/savepoints", body)
    return _wait_trigger(jobmanager, job_id, answer["request-id"], timeout_s)


def cancel(jobmanager: str, job_id: str) -> None:
    rest(jobmanager, "PATCH", f"/jobs/{job_id}?mode=cancel")


def job_state(jobmanager: str, job_id: str) -> str:
    return rest(jobmanager, "GET", f"/jobs/{job_id}").get("state", "UNKNOWN")
