"""Corrections in the billing job (`usage-corrections`): validation and correction-id idempotency in Python, the
ledger decision in Java, rejects to `usage-correction-dead-letters`, every record counted (issue 17).

Wiring only; the rules are `udfs.corrections` (the specification). Corrections are rare (about half a percent of
the usage traffic), so both stages run the Python spec itself:

1. `CorrectionValidator` (not keyed): each raw record -> `validate_correction_record` -> a valid `UsageCorrection`
   goes on with its key (no `key_by` operator of PyFlink's own: `keyed_by_first_field`), a rejection becomes a dead
   letter (`correction_dead_letter_for`) and a count.
2. `CorrectionIdFunction`, keyed by (tenant_id, correction_id): `check_correction_id`, first copy by arrival wins; a
   later copy is `duplicate_correction` or `conflicting_correction` (a dead letter and a count). The id is remembered
   for the correction horizon of processing time from its first copy (one processing-time timer clears it then).
   A first copy goes on, already as the ledger's row (`to_ledger_row`, `LEDGER_ROW_TYPE`: no Python operator of its
   own, each costs a hand-over per record), to the correction ledger beside the dedup memory:
   `jobs.billing.route_usage` gives the routing operator (`io.meterstream.routing.UsageRouting`, keyed by the
   bucket of (tenant_id, event_id)) a second input, where `io.meterstream.corrections.CorrectionLedger` decides it
   (`udfs.corrections.decide`): applied (`correction_applied`) or rejected by reason (its side output, formatted
   here by `LedgerRejectFormatter`). An applied correction's remove/add contributions go on to the window
   operator (`WindowRating`), which bills them (`udfs.corrections.correct_window`; max, min and last windows from
   the contents it retains for them; unique_count ones in the Python accumulator, `PeriodToDateFunction`, which
   retains its fired windows' contents).

Both Python stages also emit (outcome, detail, 1) rows (`COUNTS`), which `jobs.billing` retypes in Java
(`io.meterstream.corrections.CorrectionCounts`) and adds to the operators' outcome counts: the accounting topic
then carries corrections beside usage records (`udfs.accounting.CorrectionAccounting`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pyflink.common import Row, Types
from pyflink.datastream import DataStream, KeyedProcessFunction, KeyedStream, OutputTag, RuntimeContext
from pyflink.datastream.functions import MapFunction, ProcessFunction
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.java_gateway import get_gateway

from jobs import uids
from schemas.correction_dead_letter import CorrectionRejectionReason
from schemas.dead_letter import DeadLetterReason
from schemas.usage_correction import UsageCorrection
from schemas.wire import decimal_to_wire
from udfs.accounting import CorrectionOutcome
from udfs.catalog import parse_catalog
from udfs.corrections import (
    CorrectionRejection,
    check_correction_id,
    correction_dead_letter_for,
    validate_correction_record,
)
from udfs.dedup import FirstCopy

# The source's rows (io.meterstream.corrections.RawCorrectionDeserializer.rowType(); the job tests build the same).
RAW_CORRECTION_COLUMNS = ["payload", "src_topic", "src_partition", "src_offset"]
RAW_CORRECTION_TYPE = Types.ROW_NAMED(
    RAW_CORRECTION_COLUMNS, [Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.STRING(), Types.INT(), Types.LONG()])
COUNT_TYPE = Types.ROW_NAMED(["outcome", "detail", "records"], [Types.STRING(), Types.STRING(), Types.LONG()])
DEAD_LETTERS = OutputTag("correction-dead-letters", Types.STRING())
COUNTS = OutputTag("correction-counts", COUNT_TYPE)
# The ledger's input: io.meterstream.routing.UsageRouting.CORRECTION_COLUMNS, by position.
LEDGER_COLUMNS = ["tenant_id", "event_id", "correction_id", "action", "value", "dimensions", "payload", "src_topic",
                  "src_partition", "src_offset"]
LEDGER_ROW_TYPE = Types.ROW_NAMED(LEDGER_COLUMNS, [
    Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(),
    Types.MAP(Types.STRING(), Types.STRING()), Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.STRING(), Types.INT(),
    Types.LONG()])
_ID_STATE_TYPE = Types.ROW_NAMED(["fingerprint", "first_seen_ms"], [Types.STRING(), Types.LONG()])
# What the validator emits: (key, pickled ReceivedCorrection), the row PyFlink's key_by builds (see below).
KEYED_CORRECTION_TYPE = Types.ROW([Types.STRING(), Types.PICKLED_BYTE_ARRAY()])


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReceivedCorrection:
    """A valid correction with the raw record it came in (a later rejection's dead letter shows it as received).
    Travels pickled between the two stages only, never in state."""

    correction: UsageCorrection
    payload: bytes
    src_topic: str
    src_partition: int
    src_offset: int


def correction_id_key(received: ReceivedCorrection) -> str:
    """(tenant_id, correction_id), joined by a separator ids cannot hold unnoticed."""
    return f"{received.correction.tenant_id}\x1f{received.correction.correction_id}"


def _rejected(rejection: CorrectionRejection, payload, topic: str, partition: int, offset: int):
    letter = correction_dead_letter_for(payload, rejection, source_topic=topic, partition=partition, offset=offset,
                                        received_at=utc_now())
    yield DEAD_LETTERS, letter.model_dump_json()
    yield COUNTS, Row(outcome=CorrectionOutcome.REJECTED.value, detail=rejection.reason.value, records=1)


class CorrectionValidator(ProcessFunction):
    """A raw `usage-corrections` record -> (its `correction_id_key`, the `ReceivedCorrection`), or a dead letter
    and a count. The key comes out with the correction (`KEYED_CORRECTION_TYPE`), as PyFlink's `key_by` would add it
    in a Python operator of its own (see `keyed_by_first_field`)."""

    def __init__(self, catalog_yaml: str):
        self.catalog_yaml = catalog_yaml
        self.tenants = None

    def open(self, runtime_context: RuntimeContext):
        # Once per operator instance (see PeriodToDateFunction.open in jobs/billing_functions.py for why).
        self.tenants = parse_catalog(self.catalog_yaml).tenants

    def process_element(self, row: Row, ctx: ProcessFunction.Context):
        payload = None if row.payload is None else bytes(row.payload)
        result = validate_correction_record(payload, tenants=self.tenants)
        if isinstance(result, CorrectionRejection):
            yield from _rejected(result, payload, row.src_topic, row.src_partition, row.src_offset)
            return
        received = ReceivedCorrection(result, payload, row.src_topic, row.src_partition, row.src_offset)
        yield Row(correction_id_key(received), received)


class CorrectionIdFunction(KeyedProcessFunction):
    """Per (tenant_id, correction_id): the first copy by arrival is accepted (main output, as the ledger's row),
    later copies within the horizon are dead letters (`udfs.corrections.check_correction_id`). State: the first
    copy's fingerprint and processing time (no pickle), cleared by a processing-time timer at first seen + horizon,
    when the spec forgets the id (`udfs.dedup.expired`)."""

    def __init__(self, horizon_ms: int):
        self.horizon_ms = horizon_ms
        self.state = None

    def open(self, runtime_context: RuntimeContext):
        self.state = runtime_context.get_state(ValueStateDescriptor(uids.CORRECTION_ID_STATE, _ID_STATE_TYPE))

    def process_element(self, received: ReceivedCorrection, ctx: KeyedProcessFunction.Context):
        now_ms = ctx.timer_service().current_processing_time()
        stored = self.state.value()
        remembered = None if stored is None else FirstCopy(stored.fingerprint, stored.first_seen_ms)
        first, duplicate = check_correction_id(remembered, received.correction, now_ms, self.horizon_ms)
        if duplicate is not None:
            yield from _rejected(duplicate, received.payload, received.src_topic, received.src_partition,
                                 received.src_offset)
            return
        self.state.update(Row(fingerprint=first.fingerprint, first_seen_ms=first.first_seen_ms))
        ctx.timer_service().register_processing_time_timer(first.first_seen_ms + self.horizon_ms)
        # Straight as the ledger's row: a Python operator of its own for this map cost ~150-250 us of hand-overs
        # per correction (thread mode; the correction stages' CPU went from 11.1-13.9 s to 7.2-8.1 s for the 5M
        # benchmark's 23,519 corrections), several times the ~55 us the spec's own steps take.
        yield to_ledger_row(received)  # counted by the ledger: applied or rejected

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        stored = self.state.value()
        # A timer of an id that expired and came back (a first copy again) finds the newer first copy: keep it.
        if stored is not None and stored.first_seen_ms + self.horizon_ms <= timestamp:
            self.state.clear()
        return iter(())


def keyed_by_first_field(stream: DataStream, *, key_type, value_type) -> KeyedStream:
    """`stream` (rows of (key, value)) keyed by the key, for Python keyed functions that see the value.

    This is what `DataStream.key_by` builds after its own Python operator that computes the key and emits that row
    (`_stream_key_by_map_operator`); the validator emits the row itself. In thread mode each Python operator cost
    ~150-250 us of hand-overs per correction (measured when `corrections-to-ledger` went, see CorrectionIdFunction).
    The same Java key selector and key type as `key_by`'s, so keys, key groups and the ids' state of a checkpoint
    taken before stay as they were. It builds on PyFlink internals (`KeyedStream`'s constructor, the gateway's
    `KeyByKeySelector`): the corrections job tests run it, an upgrade of PyFlink that moves them fails there.
    """
    j_keyed = stream._j_data_stream.keyBy(get_gateway().jvm.KeyByKeySelector(),
                                          Types.ROW([key_type]).get_java_type_info())
    return KeyedStream(j_keyed, value_type, stream)


def to_ledger_row(received: ReceivedCorrection) -> Row:
    """An accepted correction as the ledger's row (`LEDGER_ROW_TYPE`): the value as its exact wire decimal."""
    c = received.correction
    return Row(tenant_id=c.tenant_id, event_id=c.event_id, correction_id=c.correction_id, action=c.action,
               value=None if c.value is None else decimal_to_wire(c.value),
               dimensions=None if c.dimensions is None else dict(c.dimensions), payload=received.payload,
               src_topic=received.src_topic, src_partition=received.src_partition, src_offset=received.src_offset)


class LedgerRejectFormatter(MapFunction):
    """A correction the ledger rejected (`UsageRouting.CORRECTION_REJECT_COLUMNS`) -> its dead letter."""

    def map(self, row: Row) -> str:
        rejection = CorrectionRejection(
            CorrectionRejectionReason(row.reason), row.detail or "", row.correction_id, row.tenant_id, row.event_id,
            None if row.event_dead_letter_reason is None else DeadLetterReason(row.event_dead_letter_reason))
        payload = None if row.payload is None else bytes(row.payload)
        letter = correction_dead_letter_for(payload, rejection, source_topic=row.src_topic,
                                            partition=row.src_partition, offset=row.src_offset, received_at=utc_now())
        return letter.model_dump_json()


@dataclass
class CorrectionOutputs:
    accepted: DataStream  # LEDGER_ROW_TYPE rows, for the correction ledger in the routing operator
    dead_letters: DataStream  # usage-correction-dead-letters JSON
    counts: DataStream  # COUNT_TYPE rows


def build_corrections(raw: DataStream, catalog_yaml: str, *, horizon_ms: int) -> CorrectionOutputs:
    """Wire both stages on the raw records (`RAW_CORRECTION_TYPE` rows: Kafka in production, a collection in tests)."""
    validated = (
        raw.process(CorrectionValidator(catalog_yaml), output_type=KEYED_CORRECTION_TYPE)
        .name("validate-corrections")
        .uid(uids.BILLING_CORRECTION_VALIDATE)
    )
    accepted = (
        keyed_by_first_field(validated, key_type=Types.STRING(), value_type=Types.PICKLED_BYTE_ARRAY())
        .process(CorrectionIdFunction(horizon_ms), output_type=LEDGER_ROW_TYPE)
        .name("correction-ids")
        .uid(uids.BILLING_CORRECTION_IDS)
    )
    dead_letters = validated.get_side_output(DEAD_LETTERS).union(accepted.get_side_output(DEAD_LETTERS))
    counts = validated.get_side_output(COUNTS).union(accepted.get_side_output(COUNTS))
    return CorrectionOutputs(accepted, dead_letters, counts)
