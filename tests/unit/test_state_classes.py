"""The pickled-state lock (`jobs/state_classes.py`): the classes stored pickled in Flink state against
`jobs/state_classes.txt`, and realistic pickled states against the classes it lists."""

from __future__ import annotations

import copy
import dataclasses
import io
import pickle
import typing
from dataclasses import replace
from decimal import Decimal

import pytest

from jobs import state_classes, uids
from jobs.state_classes import LOCK_FILE, PICKLED_STATES, PickledState, difference, reachable, render
from schemas.invoice_line_item import InvoiceLineItem, LineItemTier
from tests.unit.credits.credit_factories import Tick, adjustment, at, cap, grant, line, run, void
from tests.unit.test_line_items import KINDS, MARCH, make_window, tenant_catalog
from tests.unit.test_line_items import run as accumulate
from udfs.line_items import SeriesPeriods


class _RecordingUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.classes: set[str] = set()

    def find_class(self, module: str, name: str):
        self.classes.add(f"{module}.{name}")
        return super().find_class(module, name)


def classes_in_pickle(value) -> set[str]:
    """Every global a pickle of `value` names, as PyFlink's PICKLED_BYTE_ARRAY coder writes it (`pickle.dumps`)."""
    unpickler = _RecordingUnpickler(pickle.dumps(value))
    assert unpickler.load() == value
    return unpickler.classes


def _period_states() -> list[SeriesPeriods]:
    """Per aggregation, a series with two periods (an earlier one late usage can still reach, and the latest)."""
    states = []
    for kind in KINDS:
        state, _ = accumulate([make_window(kind, MARCH, "30", users=("u1", "u2"))], tenant_catalog(kind, "graduated"))
        earlier = dataclasses.replace(state, period_start=state.period_start.replace(month=2),
                                      period_end=state.period_start)
        states.append(SeriesPeriods((earlier, state)))
    return states


def _customer_credits():
    """A ledger state that holds every part: live and voided grants, uncovered usage, periods, a spend cap, a
    retained history with grants, voids and lines (a grant arriving after the usage it covers recomputes it)."""
    events = [cap(5), grant("g1", 10, expires_at=at(500)), line(1, 3), grant("g2", 1, expires_at=at(30)),
              line(2, 4), void("g9", at(3)), line(0, 20), grant("g0", 2, effective_at=at(0)), void("g1", at(400)),
              adjustment(line(1, 3), -1, decided_after=at(5)), Tick(at(40))]
    state = run(events).state
    assert state.grants and state.uncovered and state.periods and state.voids and state.spend_caps
    assert state.history.grant_events and state.history.lines
    assert any(logged.decided_after is not None for logged in state.history.lines)
    return state


def _pending() -> tuple[InvoiceLineItem, ...]:
    tier = LineItemTier(tier_index=0, lower_bound=Decimal(0), up_to=None, unit_price=Decimal("0.1"),
                        flat_fee=Decimal(0), quantity=Decimal(3), amount=Decimal("0.3"))
    item = line(1, 3).model_copy(update={"tiers": (tier,), "group": {"model": "nova"}})
    correction = adjustment(item, -1, decided_after=at(5))
    # parsed from its wire form, as the ledger does (jobs/credits.py): the datetimes pydantic makes are pickled
    return tuple(InvoiceLineItem.model_validate_json(held.model_dump_json()) for held in (item, correction))


def _retained_windows():
    """A unique_count series' retained windows: a frozen period part, fired windows, late values, a correction."""
    from collections import Counter

    from tests.unit.test_correction_lines import WATERMARK
    from tests.unit.test_line_items import HOUR
    from tests.unit.test_unique_count_corrections import Accumulator

    acc = Accumulator(tenant_catalog("unique_count", "graduated"))
    acc.fire(MARCH, Counter({"u0": 1}), 1)
    acc.retain()
    acc.fire(MARCH + HOUR, Counter({"u1": 2, "u2": 1}), 3)
    acc.late(MARCH, Counter({"u3": 1}), 1, WATERMARK)
    acc.correct(MARCH + HOUR, [("e1", "remove", "u2"), ("e1", "add", "u4")], WATERMARK)
    assert acc.retained.frozen and len(acc.retained.windows) == 2 and acc.retained.seen
    return acc.retained


PERIOD_TO_DATE = f"{uids.BILLING_PERIOD_TO_DATE}/{uids.PERIOD_TO_DATE_STATE}"
SAMPLES = {
    uids.PERIOD_TO_DATE_STATE: _period_states,
    uids.PERIOD_TO_DATE_CONTENTS_STATE: lambda: [_retained_windows()],
    uids.CUSTOMER_CREDITS_STATE: lambda: [_customer_credits()],
    uids.CUSTOMER_CREDITS_PENDING_STATE: lambda: [_pending()],
}


def test_the_lock_file_matches_the_classes():
    assert state_classes.problems() == []
    assert difference(LOCK_FILE.read_text(), render()) is None, "run: python -m jobs.state_classes --write"
    assert state_classes.main(["--check"]) == 0


def test_every_pickled_state_in_the_jobs_is_listed_and_has_samples_here():
    in_code = {getattr(uids, constant) for _, _, constant in state_classes.pickled_states_in_code()}
    listed = {state.state_name for state in PICKLED_STATES}
    assert in_code == listed | state_classes.MIGRATED_STATES
    assert set(SAMPLES) == listed


def test_a_pickled_state_missing_from_the_list_is_a_problem():
    others = tuple(s for s in PICKLED_STATES if s.state_name != uids.CUSTOMER_CREDITS_PENDING_STATE)
    found = state_classes.problems(others)
    assert len(found) == 1
    assert "CUSTOMER_CREDITS_PENDING_STATE" in found[0] and "credits.py:" in found[0]


def test_a_pickled_state_named_outside_uids_is_a_problem(tmp_path):
    (tmp_path / "job.py").write_text(
        "from pyflink.common import Types\n"
        "from pyflink.datastream.state import ValueStateDescriptor\n"
        "from jobs import uids\n"
        "listed = ValueStateDescriptor(uids.CUSTOMER_CREDITS_STATE, Types.PICKLED_BYTE_ARRAY())\n"
        "typed = ValueStateDescriptor('counts', Types.LONG())\n"
        "unnamed = ValueStateDescriptor('my-state', Types.PICKLED_BYTE_ARRAY())\n"
    )
    assert state_classes.pickled_states_in_code(tmp_path) == [
        ("job.py", 4, "CUSTOMER_CREDITS_STATE"), ("job.py", 6, None)]
    found = state_classes.problems(directory=tmp_path)
    assert len(found) == 1 and found[0].startswith("job.py:6: ") and "not a jobs/uids.py constant" in found[0]


@pytest.mark.parametrize("state", PICKLED_STATES, ids=lambda s: s.state_name)
def test_every_class_in_a_realistic_pickled_state_is_fingerprinted(state: PickledState):
    covered = {state_classes.qualified_name(cls) for cls in reachable(state)}
    for value in SAMPLES[state.state_name]():
        in_pickle = classes_in_pickle(value)
        ours = {name for name in in_pickle if name.rsplit(".", 1)[0] not in state_classes.LIBRARY_MODULES}
        assert ours, in_pickle
        assert ours <= covered, f"pickled but not in the lock: {sorted(ours - covered)}"


def _with_changed_period_state(**changes) -> tuple[PickledState, ...]:
    """PICKLED_STATES with SeriesPeriods (the stored class of the period-to-date state) replaced by a look-alike:
    same module path and name unless changed."""
    hints = typing.get_type_hints(SeriesPeriods)
    fields = [(f.name, hints[f.name], f) for f in dataclasses.fields(SeriesPeriods)]
    if "extra_field" in changes:
        fields.append((changes["extra_field"], str | None, dataclasses.field(default=None)))
    namespace = {"__module__": changes.get("module", SeriesPeriods.__module__)}
    changed = dataclasses.make_dataclass("SeriesPeriods", fields, namespace=namespace, frozen=True)
    return tuple(
        dataclasses.replace(s, stored=changed, state_name=changes.get("state_name", s.state_name),
                            operator_uid=changes.get("operator_uid", s.operator_uid))
        if s.stored is SeriesPeriods else s
        for s in PICKLED_STATES
    )


def test_a_new_field_without_a_new_state_name_fails_and_says_what_to_do():
    message = difference(LOCK_FILE.read_text(), render(_with_changed_period_state(extra_field="discount")))
    assert message is not None
    assert f"state '{PERIOD_TO_DATE}' (operator uid/state name) changed without a new state name" in message
    assert "fields changed in ['udfs.line_items.SeriesPeriods']" in message
    assert "jobs/uids.py" in message and "migration" in message and state_classes.REGENERATE in message


def test_a_moved_class_without_a_new_state_name_fails():
    message = difference(LOCK_FILE.read_text(), render(_with_changed_period_state(module="udfs.periods")))
    assert message is not None
    assert "added ['udfs.periods.SeriesPeriods'], removed ['udfs.line_items.SeriesPeriods']" in message


def test_a_bumped_state_name_asks_only_for_the_lock_to_be_regenerated():
    changed = _with_changed_period_state(extra_field="discount", state_name="period-to-date-v9")
    message = difference(LOCK_FILE.read_text(), render(changed))
    assert message is not None
    assert "without a new state name" not in message
    bumped = f"{uids.BILLING_PERIOD_TO_DATE}/period-to-date-v9"
    assert f"new since the lock: ['{bumped}'], gone: ['{PERIOD_TO_DATE}']" in message
    assert difference(render(changed), render(changed)) is None


def test_a_bumped_operator_uid_counts_as_a_new_state():
    changed = _with_changed_period_state(extra_field="discount", operator_uid="billing-period-to-date-v2")
    message = difference(LOCK_FILE.read_text(), render(changed))
    assert message is not None
    assert "without a new state name" not in message
    assert f"new since the lock: ['billing-period-to-date-v2/{uids.PERIOD_TO_DATE_STATE}']" in message


def test_the_command_writes_the_lock_and_checks_it(tmp_path, monkeypatch, capsys):
    lock = tmp_path / "state_classes.txt"
    lock.write_text(LOCK_FILE.read_text().replace("    amount_to_date: decimal.Decimal\n", ""))
    monkeypatch.setattr(state_classes, "LOCK_FILE", lock)
    assert state_classes.main(["--check"]) == 1
    assert f"state '{PERIOD_TO_DATE}' (operator uid/state name) changed without" in capsys.readouterr().err
    assert state_classes.main(["--write"]) == 0
    assert lock.read_text() == render()
    assert state_classes.main(["--check"]) == 0


def _pickled_without(value, *missing: str):
    """`value` as a pickle of an earlier class version restores it: without the attributes named."""
    old = copy.copy(value)
    object.__setattr__(old, "__dict__", {k: v for k, v in value.__dict__.items() if k not in missing})
    return pickle.loads(pickle.dumps(old))


@pytest.mark.parametrize("missing", [("kind", "adjusts_line_item_id", "decided_after"), ("decided_after",)],
                         ids=["pending-v1", "pending-v2"])
def test_line_items_held_by_a_previous_credits_version_are_upgraded(missing):
    """`customer-credits-pending-v1` (before `kind`) and `-v2` (before `decided_after`) hold line items that, read
    back, lack the newer fields; the migration (jobs/credits.py) validates them again into the current model."""
    from jobs.credits import upgrade_pending

    item = _pending()[0]
    restored = _pickled_without(item, *missing)
    with pytest.raises(AttributeError):
        _ = getattr(restored, missing[0])
    (upgraded,) = upgrade_pending((restored,))
    assert upgraded == item and upgraded.kind == "usage" and upgraded.decided_after is None


def test_a_ledger_of_the_previous_credits_version_gets_its_lines_rebuilt():
    """`customer-credits-v1` holds logged lines pickled before `decided_after`: rebuilt, they hold it in their own
    attributes (None, a usage line's place), so the state pickled again is the current class's."""
    from jobs.credits import upgrade_credits_v1
    from udfs.credits.ledger import LoggedLine

    state = _customer_credits()
    usage_lines = tuple(logged for logged in state.history.lines if logged.decided_after is None)
    state = replace(state, history=replace(state.history, lines=usage_lines))
    old_lines = tuple(_pickled_without(logged, "decided_after") for logged in usage_lines)
    assert old_lines and all("decided_after" not in vars(logged) for logged in old_lines)
    upgraded = upgrade_credits_v1(replace(state, history=replace(state.history, lines=old_lines)))
    assert upgraded == state
    assert all(isinstance(logged, LoggedLine) and vars(logged)["decided_after"] is None
               for logged in upgraded.history.lines)


def test_retained_windows_of_the_previous_version_are_rebuilt():
    """`period-to-date-contents-v1` holds `RetainedWindows` pickled before `seen` and `next_freeze_check_ms`: read
    back, they lack them; the migration (jobs/billing_functions.py) rebuilds them (no window has its time yet)."""
    from jobs.billing_functions import upgrade_retained_v1
    from udfs.corrections import RetainedWindows

    current = _retained_windows()
    restored = _pickled_without(current, "seen", "next_freeze_check_ms", "clock_ms", "wall_ms")
    with pytest.raises(AttributeError):
        _ = restored.seen
    upgraded = upgrade_retained_v1(restored)
    assert upgraded == RetainedWindows(dict(current.windows), dict(current.frozen))
    assert vars(upgraded)["seen"] == {} and vars(upgraded)["next_freeze_check_ms"] == 0
