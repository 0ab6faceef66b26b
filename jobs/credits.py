"""Prepaid credits in the billing job: line items + grant events + spend caps in, drawdowns and alerts out.

Wiring only; the ledger is `udfs.credits` (pure, snapshot in / snapshot out). Line items, grants, voids and spend
caps meet in keyed state per (tenant, customer): one `CreditsFunction` call per record, in the same job and the
same checkpoint as the line item that caused it. Grant and spend-cap records are validated first; rejects go to
`credit-grant-dead-letters` with a reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime

import yaml
from pyflink.common import Duration, Row, Types, WatermarkStrategy
from pyflink.datastream import DataStream, KeyedCoProcessFunction, OutputTag, RuntimeContext
from pyflink.datastream.functions import ProcessFunction
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.table import StreamTableEnvironment

from jobs import uids
from jobs.billing_functions import state_ttl
from jobs.billing_sql import with_options
from schemas.credits import SpendCap
from schemas.invoice_line_item import InvoiceLineItem
from udfs.catalog import DecimalLoader, parse_catalog
from udfs.credits import (
    GrantRejection,
    apply_grant_event,
    apply_spend_cap,
    credit_policy_for,
    dead_letter_for_grant,
    validate_grant_record,
    validate_spend_cap_record,
)
from udfs.credits.event_order import due_at, hold, release, wake
from udfs.credits.ledger import CustomerCredits, LoggedLine
from udfs.windows import from_epoch_ms, to_epoch_ms

END_OF_INPUT = 2**63 - 1  # Long.MAX_VALUE: the watermark a bounded input ends with
# Grant events carry no watermark into the ledger; their input is declared idle after two watermark intervals
# (pipeline.auto-watermark-interval, 200 ms) without a grant event, and stays idle (see build_credits).
GRANT_EVENTS_IDLE_AFTER_MS = 1
ALERTS = OutputTag("billing-alerts", Types.STRING())
REJECTS = OutputTag("credit-grant-rejects", Types.STRING())


def utc_now() -> datetime:
    return datetime.now(UTC)


def _customer_key(tenant_id: str, customer_id: str) -> str:
    """The ledger's key: both of its inputs must spell it alike."""
    return f"{tenant_id}\x1f{customer_id}"


def customer_key(record) -> str:
    return _customer_key(record.tenant_id, record.customer_id)


def line_item_customer_key(line_item_json: str) -> str:
    """`customer_key` of a line item still in its wire form: the ledger parses it once, after the shuffle (a Python
    parse operator before it cost a pickled pydantic object per line item across one more hop)."""
    fields = json.loads(line_item_json)
    return _customer_key(fields["tenant_id"], fields["customer_id"])


def upgrade_pending(old) -> tuple[InvoiceLineItem, ...]:
    """Line items pickled into `uids.CUSTOMER_CREDITS_PENDING_STATE_V1` (before `kind` and `adjusts_line_item_id`)
    or `_V2` (before `decided_after`): a pickle restores a model's fields without validating, so such an item lacks
    the new fields; validating its fields again gives them their defaults (a usage line; an adjustment held across
    the upgrade keeps no decision instant and is ordered by its id among its window's lines, as before)."""
    return tuple(InvoiceLineItem.model_validate(dict(item.__dict__)) for item in old)


def upgrade_credits_v1(old: CustomerCredits) -> CustomerCredits:
    """A ledger pickled into `uids.CUSTOMER_CREDITS_STATE_V1`: its logged lines were pickled before `decided_after`.
    Rebuilt through their constructor they hold it (None: ordered as before the upgrade, by window end and id)."""

    def rebuilt(state: CustomerCredits | None) -> CustomerCredits | None:
        if state is None:
            return None
        history = state.history
        lines = tuple(LoggedLine(*(getattr(line, f.name) for f in fields(LoggedLine))) for line in history.lines)
        return replace(state, history=replace(history, base=rebuilt(history.base), lines=lines))

    return rebuilt(old)


@dataclass
class CreditOutputs:
    drawdowns: DataStream
    alerts: DataStream
    grant_dead_letters: DataStream


def credit_input_ddl(table: str, *, topic: str, bootstrap: str, group_id: str, bounded: bool) -> str:
    """Grant events or spend caps: raw bytes plus coordinates; event time = the Kafka record time. Its watermark
    does not reach the ledger (`build_credits` drops it): expiries and voids follow the line items' event time."""
    from meterstream.kafka_security import active as kafka_security

    options = {
        "connector": "kafka", "topic": topic, "properties.bootstrap.servers": bootstrap,
        "properties.group.id": group_id, "properties.isolation.level": "read_committed",
        "scan.startup.mode": "earliest-offset", "format": "raw",
        # The Kafka security settings of the job's other clients (kafka_io), as the SQL connector's properties.
        **{f"properties.{key}": value for key, value in kafka_security().flink_properties().items()},
    }
    if bounded:
        options["scan.bounded.mode"] = "latest-offset"
    return f"""CREATE TEMPORARY TABLE `{table}` (
  `payload` BYTES,
  `src_topic` STRING METADATA FROM 'topic' VIRTUAL,
  `src_partition` INT METADATA FROM 'partition' VIRTUAL,
  `src_offset` BIGINT METADATA FROM 'offset' VIRTUAL,
  `kafka_ts` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  WATERMARK FOR `kafka_ts` AS `kafka_ts`
) WITH (
  {with_options(options)}
)"""


class CreditInputValidator(ProcessFunction):
    """Raw grant / void / spend-cap record -> the validated model (pickled), or a dead letter on REJECTS."""

    def __init__(self, catalog_yaml: str, *, spend_caps: bool):
        self.catalog_yaml = catalog_yaml
        self.spend_caps = spend_caps
        self.tenants = None

    def open(self, runtime_context: RuntimeContext):
        # Once per operator instance (see PeriodToDateFunction.open in jobs/billing_functions.py for why).
        self.tenants = parse_catalog(self.catalog_yaml).tenants

    def process_element(self, row: Row, ctx: ProcessFunction.Context):
        validate = validate_spend_cap_record if self.spend_caps else validate_grant_record
        result = validate(row.payload, tenants=self.tenants)
        if isinstance(result, GrantRejection):
            letter = dead_letter_for_grant(
                row.payload, result, source_topic=row.src_topic, partition=row.src_partition,
                offset=row.src_offset, received_at=utc_now(),
            )
            yield REJECTS, letter.model_dump_json()
            return
        yield result


class CreditsFunction(KeyedCoProcessFunction):
    """Per (tenant, customer): input 1 line items, input 2 grant events and spend caps.

    Holds the customer's `CustomerCredits`, the line items not yet due (`udfs.credits.event_order`: a line item
    is applied once the ledger's clock reaches the instant its window fired, in event-time order with the
    ledger's expiries, voids and retention deadlines) and one event-time timer at `wake(...)`. The clock is the
    line items' watermark only (the grant events input carries none; in a replay it holds the clock back until
    every grant event is in, see `build_credits`). Grant events and spend caps apply on arrival. At the end of a
    bounded input every timer fires with the final watermark: held line items are then applied, but that is not
    time passing, so nothing expires after the last of them (a replay must not expire grants whose expiry lies
    beyond its data).
    """

    def __init__(self, catalog_yaml: str):
        self.catalog_yaml = catalog_yaml
        self.policies = {}
        self.state = None
        self.pending = None
        self.state_v1 = None
        self.previous_pending = []
        self.timer = None

    def open(self, runtime_context: RuntimeContext):
        # Once per operator instance (see PeriodToDateFunction.open in jobs/billing_functions.py for why); the
        # credit policies are the catalog's `credits:` blocks, read from the YAML as written.
        mapping = yaml.load(self.catalog_yaml, Loader=DecimalLoader)
        self.policies = {tenant: credit_policy_for(mapping, tenant) for tenant in mapping["tenants"]}
        self.state = runtime_context.get_state(
            self._descriptor(uids.CUSTOMER_CREDITS_STATE, Types.PICKLED_BYTE_ARRAY()))
        self.pending = runtime_context.get_state(
            self._descriptor(uids.CUSTOMER_CREDITS_PENDING_STATE, Types.PICKLED_BYTE_ARRAY()))
        self.state_v1 = runtime_context.get_state(
            self._descriptor(uids.CUSTOMER_CREDITS_STATE_V1, Types.PICKLED_BYTE_ARRAY()))
        self.previous_pending = [  # newest first
            runtime_context.get_state(
                self._descriptor(uids.CUSTOMER_CREDITS_PENDING_STATE_V2, Types.PICKLED_BYTE_ARRAY())),
            runtime_context.get_state(
                self._descriptor(uids.CUSTOMER_CREDITS_PENDING_STATE_V1, Types.PICKLED_BYTE_ARRAY())),
        ]
        self.timer = runtime_context.get_state(self._descriptor(uids.CUSTOMER_CREDITS_TIMER_STATE, Types.LONG()))

    def _credits(self) -> CustomerCredits | None:
        """The customer's ledger; one of the previous state version (lines pickled before `decided_after`) is
        rebuilt once and moved over."""
        state = self.state.value()
        if state is None:
            old = self.state_v1.value()
            if old is None:
                return None
            self.state_v1.clear()
            state = upgrade_credits_v1(old)
            self.state.update(state)
        return state

    def _pending(self) -> tuple[InvoiceLineItem, ...]:
        """The held line items; those of a previous state version (pickled before a line had `decided_after`, or
        `kind`) are revalidated once, taking the new fields' defaults, and moved over."""
        pending = self.pending.value()
        if pending is None:
            old = ()
            for previous in self.previous_pending:  # usually empty: a read each, no write
                held = previous.value()
                if held:
                    old += tuple(held)
                    previous.clear()
            if not old:
                return ()
            pending = ()
            for item in upgrade_pending(old):
                pending = hold(pending, item)
            self.pending.update(pending)
        return pending

    @staticmethod
    def _descriptor(name: str, type_info) -> ValueStateDescriptor:
        descriptor = ValueStateDescriptor(name, type_info)
        descriptor.enable_time_to_live(state_ttl(400))  # the ledger clears itself; this is the safety net
        return descriptor

    def process_element1(self, line_item_json: str, ctx):
        item = InvoiceLineItem.model_validate_json(line_item_json)
        pending = hold(self._pending(), item)
        watermark = ctx.timer_service().current_watermark()
        if to_epoch_ms(due_at(item)) <= watermark < END_OF_INPUT:  # behind the clock already: due now
            yield from self._release(from_epoch_ms(watermark), ctx, pending=pending)
        else:
            self._hold(pending, item, ctx)

    def _hold(self, pending, item: InvoiceLineItem, ctx) -> None:
        """Keep `item` for later without reading or writing the customer's credits (the largest state, pickled).

        The timer sits on `wake(state, pending before)` (`_finish` keeps it there), and holding one more line item
        can only move that instant earlier, to the item's due instant."""
        self.pending.update(pending)
        due = to_epoch_ms(due_at(item))
        current = self.timer.value()
        if current is None or due < current:
            if current is not None:
                ctx.timer_service().delete_event_time_timer(current)
            ctx.timer_service().register_event_time_timer(due)
            self.timer.update(due)

    def process_element2(self, event, ctx):
        policy = self.policies[event.tenant_id]
        apply = apply_spend_cap if isinstance(event, SpendCap) else apply_grant_event
        state, drawdowns, alerts = apply(self._credits(), event, policy, emitted_at=utc_now())
        yield from self._finish(state, self._pending(), drawdowns, alerts, ctx)

    def on_timer(self, timestamp: int, ctx):
        self.timer.clear()
        yield from self._release(from_epoch_ms(timestamp), ctx, pending=self._pending(),
                                 end_of_input=ctx.timer_service().current_watermark() >= END_OF_INPUT)

    def _release(self, until, ctx, *, pending, end_of_input=False):
        tenant_id = ctx.get_current_key().split("\x1f", 1)[0]
        state, pending, drawdowns, alerts = release(
            self._credits(), pending, until, self.policies[tenant_id], emitted_at=utc_now(),
            end_of_input=end_of_input)
        yield from self._finish(state, pending, drawdowns, alerts, ctx, rearm=not end_of_input)

    def _finish(self, state, pending, drawdowns, alerts, ctx, *, rearm: bool = True):
        """Save, keep the one timer on `wake(...)` (not at the end of input: a timer set then would fire at once,
        for ever), and emit."""
        if state is None:
            self.state.clear()
        else:
            self.state.update(state)
        if pending:
            self.pending.update(pending)
        else:
            self.pending.clear()
        at = wake(state, pending) if rearm else None
        wanted = to_epoch_ms(at) if at is not None else None
        current = self.timer.value()
        if wanted != current:
            if current is not None:
                ctx.timer_service().delete_event_time_timer(current)
            if wanted is not None:
                ctx.timer_service().register_event_time_timer(wanted)
                self.timer.update(wanted)
            else:
                self.timer.clear()
        for drawdown in drawdowns:
            yield drawdown.model_dump_json()
        for alert in alerts:
            yield ALERTS, alert.model_dump_json()


def build_credits(
    t_env: StreamTableEnvironment,
    catalog_yaml: str,
    line_item_streams: list[DataStream],
    *,
    grants_ddl: str,
    spend_caps_ddl: str,
    replay: bool = False,
) -> CreditOutputs:
    """Wire the credits stage: `grants_ddl` / `spend_caps_ddl` create tables `credit_grants_raw` /
    `spend_caps_raw` (raw payload + Kafka coordinates + watermark).

    `replay`: the grant and spend-cap inputs are bounded (a `--bounded` run): every grant, void and spend cap they
    hold is applied before any line item, whatever order the channels deliver in."""
    t_env.execute_sql(grants_ddl)
    t_env.execute_sql(spend_caps_ddl)

    def validated(table: str, *, spend_caps: bool, uid: str) -> DataStream:
        return (
            t_env.to_data_stream(t_env.from_path(table))
            .process(CreditInputValidator(catalog_yaml, spend_caps=spend_caps), output_type=Types.PICKLED_BYTE_ARRAY())
            .name(f"validate-{table}")
            .uid(uid)
        )

    grants = validated("credit_grants_raw", spend_caps=False, uid=uids.CREDITS_VALIDATE_GRANTS)
    caps = validated("spend_caps_raw", spend_caps=True, uid=uids.CREDITS_VALIDATE_SPEND_CAPS)
    # The ledger's event-time clock (its expiry, void and retention timers) must be the line items' watermark and
    # nothing else. A two-input operator's watermark is the minimum over its inputs that are not idle: when the
    # usage stream paused past the idle timeout, the grants input's watermark (their Kafka record time, or the
    # year-9999 stamp of the test files) became the ledger's clock and fired expiries and voids ahead of line
    # items still to come (measured: tests/job/test_credits_scripted.py at a 1 s idle timeout, every timer fired
    # at 9999-12-31 before the first line item). Here the grant events' watermarks and statuses are dropped
    # (Flink's TimestampsAndWatermarksOperator forwards neither) and replaced by none at all, declared idle once
    # no grant event has arrived for a moment and never active again: the input neither holds the ledger's clock
    # back nor moves it. Only the end of a bounded input (Long.MAX_VALUE) still passes.
    #
    # A replay is different: its grant events are all known at the start, and a replay's money must not depend on
    # whether the grant source or the usage reached the ledger first (seen: grants that arrived after the line
    # items they cover paid them by catch-up, voided grants paid usage after their void, expiries went missing).
    # There the grant events' input is never declared idle: its watermark stays at its initial minimum, which holds
    # the ledger's clock (the minimum over its inputs) until the grant inputs end with Long.MAX_VALUE. Line items
    # wait in `pending` until then, and every grant, void and spend cap is applied before the first of them.
    strategy = WatermarkStrategy.no_watermarks()
    if not replay:
        strategy = strategy.with_idleness(Duration.of_millis(GRANT_EVENTS_IDLE_AFTER_MS))
    grant_events = grants.union(caps).assign_timestamps_and_watermarks(strategy).name(
        "grant-events-without-clock").uid(uids.CREDITS_GRANT_EVENTS_WITHOUT_CLOCK)
    items = line_item_streams[0].union(*line_item_streams[1:]) if line_item_streams[1:] else line_item_streams[0]
    drawdowns = (
        items.key_by(line_item_customer_key, key_type=Types.STRING())
        .connect(grant_events.key_by(customer_key, key_type=Types.STRING()))
        .process(CreditsFunction(catalog_yaml), output_type=Types.STRING())
        .name("credits-ledger")
        .uid(uids.CREDITS_LEDGER)
    )
    rejects = grants.get_side_output(REJECTS).union(caps.get_side_output(REJECTS))
    return CreditOutputs(drawdowns, drawdowns.get_side_output(ALERTS), rejects)
