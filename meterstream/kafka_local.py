"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1, from Maven jars.

Used by the demo, the integration tests and the benchmarks where no Docker engine runs; with `SaslSslListener`, a
broker whose client listener is SASL_SSL (SCRAM-SHA-512, PEM certificates: the SASL_SSL integration test), and with
its `super_users` one that enforces ACLs (the tenant ACLs test). The settings make
consumer groups and transactions work on one node (replication factors and min ISR of 1) and admit Flink's
exactly-once sink, whose transactions default to a 1 h timeout (so `transaction.max.timeout.ms` is raised).
`run_tool` runs one of Kafka's own command line tools (`AclCommand`, the `kafka-acls.sh` of a Kafka installation)
from the same jars.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from meterstream.jars import kafka_broker_classpath
from meterstream.paths import var_dir

READY_LINE = "Kafka Server started"
DEFAULT_HEAP = "-Xms256m -Xmx1g"

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.controller.name = org.apache.kafka
logger.controller.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


# The KRaft authorizer (ACLs kept in the metadata log) and the principal of a PLAINTEXT listener's connections.
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
INTERNAL_PRINCIPAL = "User:ANONYMOUS"
# A tool runs for seconds: a small heap, and only the quick JIT (the optimizing one would not pay off).
TOOL_JVM = "-Xms64m -Xmx256m -XX:TieredStopAtLevel=1"


@dataclass(frozen=True)
class SaslSslListener:
    """A SASL_SSL client listener for the broker (`start_broker(sasl_ssl=...)`): TLS with a PEM keystore (the
    broker's certificate chain and PKCS#8 key; its certificate must name 127.0.0.1) and SCRAM-SHA-512 users, created
    with the broker's own tool when the storage is formatted (`StorageTool format --add-scram`). The broker talks to
    itself (transaction markers, the controller) over listeners bound to 127.0.0.1 in PLAINTEXT; clients get only
    the SASL_SSL address."""

    keystore: str
    scram_users: tuple[tuple[str, str], ...]
    # A PEM file of CA certificates: clients must then present a certificate signed by one (mutual TLS).
    client_truststore: str | None = None
    # Principals (`User:NAME`, one of the SCRAM users) allowed everything. Given, the broker enforces ACLs: the KRaft
    # authorizer, and what no ACL allows is refused (`allow.everyone.if.no.acl.found=false`). The broker's own
    # PLAINTEXT listeners (its requests to itself, the controller's) authenticate nobody, so their principal,
    # `INTERNAL_PRINCIPAL`, is a super user too: whoever reaches the internal port on 127.0.0.1 may do anything. A
    # test broker's layout, not a production one (there: SASL or mutual TLS between brokers and controllers).
    super_users: tuple[str, ...] = ()

    def server_settings(self) -> dict[str, str]:
        mutual = {} if self.client_truststore is None else {
            "listener.name.sasl_ssl.ssl.client.auth": "required",
            "listener.name.sasl_ssl.ssl.truststore.type": "PEM",
            "listener.name.sasl_ssl.ssl.truststore.location": self.client_truststore,
        }
        authorizer = {} if not self.super_users else {
            "authorizer.class.name": AUTHORIZER,
            "allow.everyone.if.no.acl.found": "false",
            "super.users": ";".join([*self.super_users, INTERNAL_PRINCIPAL]),
        }
        return {
            **mutual,
            **authorizer,
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": self.keystore,
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        }

    def format_arguments(self) -> list[str]:
        return [arg for name, password in self.scram_users
                for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")]


class KafkaStartError(RuntimeError):
    """The broker did not become ready; the message carries the tail of its log."""


@dataclass
class BrokerInfo:
    """What a running broker needs to be found and stopped again (persisted by `meterstream kafka up`)."""

    pid: int
    broker_port: int
    controller_port: int
    data_dir: str
    log_file: str
    # With a SASL_SSL listener: the broker_port is it, and this one the broker's own PLAINTEXT listener.
    internal_port: int | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.broker_port}"


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PICKED_PORT = 10_000


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outbound connections (Linux; elsewhere the IANA range)."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 49_152, 65_535


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port free now, for a server started a moment later. Picked below the ephemeral range: a port the kernel
    hands out (bind to 0) is one the next outbound connection of any client on the machine may take before the
    server binds it (a cluster fixture once failed so)."""
    low, _ = _ephemeral_range()
    pick = random.SystemRandom()
    if low > LOWEST_PICKED_PORT + 1000:
        for _ in range(200):
            port = pick.randrange(LOWEST_PICKED_PORT, low)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cluster_id() -> str:
    """22-char URL-safe base64 of 16 random bytes; Kafka rejects ids that start with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def server_properties(data_dir: Path, broker_port: int, controller_port: int, *,
                      sasl_ssl: SaslSslListener | None = None, internal_port: int | None = None) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "8",
        "transaction.max.timeout.ms": str(2 * 60 * 60 * 1000),
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "-1",
        # Retention is off broker-wide; a topic that sets retention.ms (a test of what retention keeps) is checked
        # every 2 s instead of every 5 minutes: a cheap pass over the partitions.
        "log.retention.check.interval.ms": "2000",
    }
    if sasl_ssl is not None:
        settings.update({
            "listeners": f"SASL_SSL://127.0.0.1:{broker_port},PLAINTEXT://127.0.0.1:{internal_port},"
                         f"CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{broker_port},PLAINTEXT://127.0.0.1:{internal_port}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
            **sasl_ssl.server_settings(),
        })
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaStartError("`java` (17+) is not on PATH; the local Kafka broker needs it.")
    return java


def _log_tail(log_file: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no broker log)"


def start_broker(data_dir: Path | None = None, *, timeout: float = 90.0, heap: str = DEFAULT_HEAP,
                 sasl_ssl: SaslSslListener | None = None) -> BrokerInfo:
    """Format fresh KRaft storage in `data_dir`, start `kafka.Kafka` detached, and wait until it serves.
    `sasl_ssl`: clients connect over SASL_SSL (SCRAM-SHA-512) instead of PLAINTEXT."""
    data_dir = Path(data_dir or var_dir() / f"kafka-{uuid.uuid4().hex[:8]}")
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    broker_port, controller_port = free_port(), free_port()
    while controller_port == broker_port:
        controller_port = free_port()
    internal_port = None
    if sasl_ssl is not None:
        internal_port = free_port()
        while internal_port in (broker_port, controller_port):
            internal_port = free_port()
    props = data_dir / "server.properties"
    props.write_text(server_properties(data_dir, broker_port, controller_port, sasl_ssl=sasl_ssl,
                                       internal_port=internal_port))
    (data_dir / "log4j2.properties").write_text(_LOG4J2)
    fmt = subprocess.run(
        [*_java_command(data_dir, heap), "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
         "-c", str(props), *(sasl_ssl.format_arguments() if sasl_ssl else [])],
        capture_output=True, text=True,
    )
    if fmt.returncode != 0:
        raise KafkaStartError(f"formatting KRaft storage failed:\n{fmt.stdout}{fmt.stderr}")
    info = BrokerInfo(0, broker_port, controller_port, str(data_dir), str(data_dir / "broker.log"), internal_port)
    try:
        return _launch(info, heap=heap, timeout=timeout, what="during start")
    except KafkaStartError:
        stop_broker(info)
        raise


def restart_broker(info: BrokerInfo, *, down_seconds: float = 0.0, timeout: float = 90.0,
                   hard: bool = False) -> BrokerInfo:
    """Stop the broker (`hard`: SIGKILL, no controlled shutdown), stay down for `down_seconds`, start it again on the
    same ports and data (no format, default heap): clients see a broker outage, not a new cluster. `info` is updated
    in place (the pid changes)."""
    if hard:
        kill_broker(info)
    else:
        stop_broker(info)
    time.sleep(down_seconds)
    return start_again(info, timeout=timeout)


def kill_broker(info: BrokerInfo, *, timeout: float = 10.0) -> None:
    """SIGKILL the broker's process group (a crash: no controlled shutdown, no flush) and wait until it is gone."""
    if info.pid <= 0:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(info.pid):
        time.sleep(0.05)


def start_again(info: BrokerInfo, *, timeout: float = 90.0) -> BrokerInfo:
    """Start a stopped (or killed) broker again on its ports and data; `info.pid` is updated."""
    return _launch(info, heap=DEFAULT_HEAP, timeout=timeout, what="on restart")


def _java_command(data_dir: Path, heap: str) -> list[str]:
    return [_java(), *heap.split(), f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
            "-cp", kafka_broker_classpath()]


def run_tool(info: BrokerInfo, main_class: str, args: list[str], *,
             timeout: float = 60.0) -> subprocess.CompletedProcess:
    """One of Kafka's command line tools (`org.apache.kafka.tools.AclCommand`: `kafka-acls.sh`) from the broker's
    jars, with its log settings (warnings only from the clients); output captured, never raises on its exit code."""
    return subprocess.run([*_java_command(Path(info.data_dir), TOOL_JVM), main_class, *args],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _launch(info: BrokerInfo, *, heap: str, timeout: float, what: str) -> BrokerInfo:
    """Start `kafka.Kafka` on `info`'s formatted data dir (log appended) and wait until it serves: a new
    "Kafka Server started" line in the log and the port open. Sets `info.pid`."""
    data_dir, log_file = Path(info.data_dir), Path(info.log_file)
    ready_before = log_file.read_text(errors="replace").count(READY_LINE) if log_file.exists() else 0
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [*_java_command(data_dir, heap), "kafka.Kafka", str(data_dir / "server.properties")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    info.pid = proc.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise KafkaStartError(f"the Kafka broker exited with code {proc.returncode} {what}; log tail:\n"
                                  f"{_log_tail(log_file)}")
        if log_file.read_text(errors="replace").count(READY_LINE) > ready_before and _port_open(info.broker_port):
            return info
        time.sleep(0.25)
    raise KafkaStartError(f"the Kafka broker was not ready within {timeout:.0f} s ({what}); log tail:\n"
                          f"{_log_tail(log_file)}")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def is_running(info: BrokerInfo) -> bool:
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _port_open(info.broker_port)


def stop_broker(info: BrokerInfo, *, timeout: float = 30.0, remove_data: bool = False) -> None:
    """SIGTERM for a controlled shutdown, SIGKILL if it does not end in time."""
    if info.pid <= 0:  # never launched (killpg(0) would signal our own process group)
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(info.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _pid_alive(info.pid):
            time.sleep(0.1)
        if not _pid_alive(info.pid):
            break
    if remove_data:
        shutil.rmtree(info.data_dir, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie that is not our child still answers kill(0); read its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# --- the long-lived broker of `meterstream kafka up|down|status` -------------------------------------------------

def _state_file() -> Path:
    return var_dir() / "kafka.json"


def managed_broker() -> BrokerInfo | None:
    """The broker started by `meterstream kafka up`, if it is still running."""
    try:
        info = BrokerInfo(**json.loads(_state_file().read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if is_running(info) else None


def up(*, timeout: float = 90.0) -> tuple[BrokerInfo, bool]:
    """Start the managed broker unless it runs already; returns (info, started_now)."""
    running = managed_broker()
    if running is not None:
        return running, False
    info = start_broker(var_dir() / "kafka", timeout=timeout)
    _state_file().write_text(json.dumps(asdict(info), indent=2))
    return info, True


def down() -> bool:
    info = managed_broker()
    _state_file().unlink(missing_ok=True)
    if info is None:
        return False
    stop_broker(info)
    return True
