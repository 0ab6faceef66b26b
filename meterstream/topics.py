"""Topic administration through kafka-python's admin client; every kafka-python client of the project is made here
(`new_admin`, `new_producer`, `new_consumer`), with the process's Kafka security settings
(`meterstream.kafka_security`)."""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Iterable, Mapping

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import (
    AuthorizationError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
)

from meterstream.kafka_security import active as active_security
from meterstream.kafka_security import client_kwargs

# The configuration of every topic the billing job writes (where this project creates it). The broker stamps each
# record with its own clock when it appends it (LogAppendTime): time-based retention (`retention.ms`) counts a
# record's age from its timestamp, so a record stamped with the event time of a replay of old data (40 days ago,
# say) would be deleted at the next retention check after it was written, and a broker never refuses a
# LogAppendTime record for its timestamp (`message.timestamp.after.max.ms`). The job's sinks stamp records with
# the wall clock at write time anyway (jobs/kafka_io.py); this also holds for any other writer. Event time is in
# the payload.
OUTPUT_TOPIC_CONFIG: Mapping[str, str] = {"message.timestamp.type": "LogAppendTime"}
# The billing job's topics by `jobs.billing.Topics` field name: what it reads, what it writes.
JOB_INPUT_TOPICS = ("usage_events", "credit_grants", "spend_caps", "usage_corrections")
JOB_OUTPUT_TOPICS = ("dead_letters", "late_events", "line_items", "accounting", "credit_drawdowns", "billing_alerts",
                     "credit_grant_dead_letters", "invoices", "correction_dead_letters")


def new_admin(bootstrap_servers: str, **config) -> KafkaAdminClient:
    """A kafka-python admin client with `config` and the process's security settings (`kafka_security.active`)."""
    return KafkaAdminClient(bootstrap_servers=bootstrap_servers, **config, **client_kwargs())


def new_producer(bootstrap_servers: str, **config):
    """A kafka-python producer with `config` and the process's security settings."""
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap_servers, **config, **client_kwargs())


def new_consumer(bootstrap_servers: str, **config):
    """A kafka-python consumer with `config` and the process's security settings."""
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=bootstrap_servers, **config, **client_kwargs())


class BrokerUnreachable(ConnectionError):
    """No Kafka broker answered at a bootstrap address in the time allowed (nothing listening, a name that does not
    resolve, a firewall), or it refused us (`BrokerRefused`)."""


class BrokerRefused(BrokerUnreachable):
    """A broker answered but refused the client: SASL authentication failed (a wrong user or password, a mechanism
    it does not enable) or the TLS handshake failed (a certificate it or we do not trust)."""


class _Refused(Exception):
    """Raised into kafka-python's bootstrap loop to end it at the first refusal (see `_ConnectionFailures`)."""


class ClosedDuringAuthentication(KafkaConnectionError):
    """A SASL broker closed our connections while we authenticated, without an answer: on a failed SCRAM exchange
    Kafka's broker sends its error answer only as it closes the connection (after its failed-authentication delay),
    and over TLS that answer is lost at times, more often on a loaded machine."""


class _ConnectionFailures(logging.Handler):
    """What kafka-python's connection layer logged while it retried: it retries a failed authentication or TLS
    handshake until its bootstrap timeout, the way it retries a broker that is down, and only logs why.

    Refusals: an authentication or authorization error, a failed TLS handshake, or, with SASL, the broker closing
    the connection `_SASL_CLOSES` times in a row before it accepted us (`ClosedDuringAuthentication`; a broker that
    is down refuses the TCP connection instead). Once one is seen, the bootstrap loop's next "Bootstrap connection
    to ... failed" warning raises `_Refused` from that log call: the loop has closed the failed connection by then,
    and the exception ends the bootstrap at once instead of at the attempt's timeout."""

    _BOOTSTRAP_FAILED = "Bootstrap connection to %s failed"
    _SASL_CLOSES = 2

    def __init__(self, *, sasl: bool) -> None:
        super().__init__(logging.WARNING)
        self.sasl = sasl
        self.refusals: list[BaseException] = []
        self.closes_in_a_row = 0

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.refusals += [arg for arg in args if arg not in self.refusals and (isinstance(
            arg, (SaslAuthenticationFailedError, AuthorizationError)) or _tls_failure(arg))]
        if not (isinstance(record.msg, str) and record.msg.startswith(self._BOOTSTRAP_FAILED)):
            return
        closed = any(isinstance(arg, KafkaConnectionError) and "socket disconnected" in str(arg) for arg in args)
        self.closes_in_a_row = self.closes_in_a_row + 1 if closed else 0
        if self.sasl and self.closes_in_a_row >= self._SASL_CLOSES and not self.refusals:
            self.refusals.append(ClosedDuringAuthentication(
                f"the broker closed the connection {self.closes_in_a_row} times in a row while we authenticated"))
        if self.refusals:
            raise _Refused()


def _tls_failure(error: object) -> bool:
    """A failed TLS handshake (kafka-python wraps the `ssl` error in a KafkaConnectionError naming it)."""
    return isinstance(error, ssl.SSLError) or (isinstance(error, KafkaError) and "[SSL" in str(error))


def refusal_message(bootstrap_servers: str, refusal: BaseException) -> str:
    security = active_security()
    if _tls_failure(refusal):
        return (f"the TLS handshake with {bootstrap_servers} failed ({refusal}); check ssl.truststore.location "
                f"(the broker's CA) and ssl.keystore.location (a broker may require a client certificate), "
                f"security {security.describe()}")
    detail = str(refusal) if type(refusal).__name__ in str(refusal) else f"{type(refusal).__name__}: {refusal}"
    return (f"the Kafka broker at {bootstrap_servers} refused our credentials ({detail}); check "
            f"sasl.username/sasl.password and sasl.mechanism, security {security.describe()}")


def bootstrapped_admin(bootstrap_servers: str, *, timeout: float, **config) -> KafkaAdminClient:
    """An admin client once a broker answered; `BrokerRefused` within about a second when it refuses our
    credentials or TLS, `BrokerUnreachable` when nothing answered within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    watcher = _ConnectionFailures(sasl=active_security().security_protocol == "SASL_SSL")
    logger = logging.getLogger("kafka")
    logger.addHandler(watcher)
    # Short attempts first, so that a refusal ends the wait at once; each one longer, so that a slow handshake (TLS
    # and SASL round trips to a distant broker) still completes within one of them.
    attempt_s = 1.0
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                return new_admin(bootstrap_servers, bootstrap_timeout_ms=int(max(0.2, min(left, attempt_s)) * 1000),
                                 **config)
            except (KafkaError, OSError, ValueError, _Refused) as exc:
                if watcher.refusals:
                    raise BrokerRefused(refusal_message(bootstrap_servers, watcher.refusals[-1])) from None
                if time.monotonic() >= deadline:
                    raise BrokerUnreachable(f"no Kafka broker answers at {bootstrap_servers} within {timeout:g} s "
                                            f"({exc})") from None
                attempt_s *= 2
                time.sleep(0.1)
    finally:
        logger.removeHandler(watcher)


def admin_client(bootstrap_servers: str, *, timeout: float = 30.0) -> KafkaAdminClient:
    return bootstrapped_admin(bootstrap_servers, timeout=timeout, client_id="meterstream-admin")


def output_topic_configs(names: Iterable[str]) -> dict[str, Mapping[str, str]]:
    """`create_topics`' `configs` for topics the billing job writes: OUTPUT_TOPIC_CONFIG for each."""
    return {name: OUTPUT_TOPIC_CONFIG for name in names}


def job_topic_configs(topics: Mapping[str, str]) -> dict[str, Mapping[str, str]]:
    """`create_topics`' `configs` for the job's topics given by field name (`{"line_items": "my-lines", ...}`)."""
    return output_topic_configs(name for field, name in topics.items() if field in JOB_OUTPUT_TOPICS)


def create_topics(bootstrap_servers: str, names: Iterable[str], *, partitions: int = 1,
                  configs: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """Create topics that do not exist yet (idempotent); `configs`: topic configuration per topic name (for the
    job's output topics: `output_topic_configs`). A topic that exists already keeps its configuration."""
    configs = configs or {}
    admin = admin_client(bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, partitions, 1, topic_configs=dict(configs.get(name, {})))
                  for name in names if name not in existing]
        if wanted:
            # Another client may have created one meanwhile: the outcome we want either way.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()


def broker_configs(bootstrap_servers: str, keys: Iterable[str], *,
                   timeout: float = 30.0) -> dict[int, dict[str, str | None]]:
    """The values of `keys` in each broker's configuration, by broker id (None: not set, no default); `timeout`:
    how long to try reaching the brokers."""
    keys = list(keys)
    admin = admin_client(bootstrap_servers, timeout=timeout)
    try:
        broker_ids = [broker["broker_id"] for broker in admin.describe_cluster()["brokers"]]
        resources = [ConfigResource(ConfigResourceType.BROKER, str(broker_id), dict.fromkeys(keys))
                     for broker_id in broker_ids]
        described = admin.describe_configs(resources, config_filter="all")
    finally:
        admin.close()
    return {int(broker_id): {key: values.get(key, {}).get("value") for key in keys}
            for broker_id, values in described["broker"].items()}


def delete_topics(bootstrap_servers: str, names: Iterable[str]) -> None:
    admin = admin_client(bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()


def produce(
    bootstrap_servers: str, topic: str, values: Iterable[bytes], *, keys: Iterable[bytes] | None = None,
    timestamps_ms: Iterable[int] | None = None, partitions: Iterable[int] | None = None,
) -> int:
    """Send values (optionally keyed, with explicit record timestamps, to explicit partitions) and wait until the
    broker acknowledged all; returns the count. Without `timestamps_ms` the producer stamps each record (CreateTime)."""
    producer = new_producer(bootstrap_servers, linger_ms=20, batch_size=256 * 1024, acks="all")
    count = 0
    try:
        key_iter = iter(keys) if keys is not None else None
        timestamp_iter = iter(timestamps_ms) if timestamps_ms is not None else None
        partition_iter = iter(partitions) if partitions is not None else None
        for value in values:
            producer.send(
                topic, value=value, key=next(key_iter) if key_iter is not None else None,
                timestamp_ms=next(timestamp_iter) if timestamp_iter is not None else None,
                partition=next(partition_iter) if partition_iter is not None else None,
            )
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count


def topic_partitions(consumer, topic: str) -> list:
    """The topic's partitions, in order; `ValueError` when the topic does not exist."""
    from kafka import TopicPartition

    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not partitions:
        raise ValueError(f"topic {topic!r} does not exist")
    return partitions


def read_committed(bootstrap_servers: str, topic: str, *, stall_timeout_ms: int = 30_000) -> list[bytes]:
    """The values of `read_committed_records`."""
    return [record.value for record in read_committed_records(bootstrap_servers, topic,
                                                               stall_timeout_ms=stall_timeout_ms)]


def read_committed_records(bootstrap_servers: str, topic: str, *, stall_timeout_ms: int = 30_000) -> list:
    """Every record of a topic committed when the call starts, as a downstream billing consumer sees it
    (`read_committed`), as kafka-python's ConsumerRecords (value, timestamp, timestamp_type, ...).

    Reads each partition from its beginning up to its last stable offset at the start: the snapshot a check after a
    finished job wants, without waiting out an idle timeout at the end. Raises `TimeoutError` when no partition
    advances for `stall_timeout_ms` (a broker that stopped answering).
    """
    return list(iter_committed_records(bootstrap_servers, topic, stall_timeout_ms=stall_timeout_ms))


def iter_committed_records(bootstrap_servers: str, topic: str, *, stall_timeout_ms: int = 30_000):
    """`read_committed_records` one poll at a time: for topics too big to hold (a benchmark's millions of line
    items)."""
    consumer = new_consumer(
        bootstrap_servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        partitions = topic_partitions(consumer, topic)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        # Under read_committed the end offset is the last stable offset: past every decided transaction.
        end = consumer.end_offsets(partitions)
        last_progress = time.monotonic()
        while behind := [tp for tp in partitions if consumer.position(tp) < end[tp]]:
            batches = consumer.poll(timeout_ms=500, max_records=100_000)
            if any(batches.values()):
                last_progress = time.monotonic()
            for batch in batches.values():
                yield from batch
            if time.monotonic() - last_progress > stall_timeout_ms / 1000:
                raise TimeoutError(f"reading {topic!r}: no progress for {stall_timeout_ms} ms on {behind}")
    finally:
        consumer.close()


def topic_record_count(bootstrap_servers: str, topic: str) -> int:
    """Records currently in a topic (end offset - beginning offset, summed over partitions).

    Exact for topics written without transactions (transaction markers take offsets too): the count a bounded
    replay of the topic must account for.
    """
    consumer = new_consumer(bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = topic_partitions(consumer, topic)
        begin, end = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
        return sum(end[tp] - begin[tp] for tp in partitions)
    finally:
        consumer.close()


def missing_topics(bootstrap_servers: str, names: Iterable[str], *, timeout_s: float = 15.0) -> list[str]:
    """The `names` that are not topics of the cluster at `bootstrap_servers`, in order, each once.

    A start-up check: raises `BrokerUnreachable`, naming the address, when no broker answers within about
    `timeout_s` (kafka-python's bootstrap timeout, then one metadata request bounded the same way), instead of the
    clients' minutes of retries.
    """
    existing = topic_names(bootstrap_servers, timeout_s=timeout_s)
    return [name for name in dict.fromkeys(names) if name not in existing]


def unauthorized_topics(bootstrap_servers: str, names: Iterable[str], *, timeout_s: float = 15.0) -> list[str]:
    """The `names` this client's principal may not describe, in order, each once: the broker answers a metadata
    request for them with TOPIC_AUTHORIZATION_FAILED. A broker whose authorizer enforces ACLs hides a topic,
    existing or not, from a principal that no ACL allows Describe (nor Read or Write) on it: `topic_names` does not
    list it, and `missing_topics` names it missing. A start-up check like `missing_topics`."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    timeout_ms = max(1, int(timeout_s * 1000))
    admin = bootstrapped_admin(bootstrap_servers, timeout=timeout_s, client_id="meterstream-check",
                               request_timeout_ms=timeout_ms)
    try:
        described = admin.describe_topics(wanted)
    except KafkaError as exc:
        raise BrokerUnreachable(f"the Kafka broker at {bootstrap_servers} did not describe topics: {exc}") from None
    finally:
        admin.close()
    refused = {topic["name"] for topic in described
               if topic["error_code"] == TopicAuthorizationFailedError.errno}
    return [name for name in wanted if name in refused]


def topic_names(bootstrap_servers: str, *, timeout_s: float = 15.0) -> set[str]:
    """The topics of the cluster at `bootstrap_servers`; a start-up check like `missing_topics` (`BrokerUnreachable`
    within about `timeout_s`)."""
    timeout_ms = max(1, int(timeout_s * 1000))
    admin = bootstrapped_admin(bootstrap_servers, timeout=timeout_s, client_id="meterstream-check",
                               request_timeout_ms=timeout_ms)
    try:
        return set(admin.list_topics())
    except KafkaError as exc:
        raise BrokerUnreachable(f"the Kafka broker at {bootstrap_servers} did not list its topics: {exc}") from None
    finally:
        admin.close()
