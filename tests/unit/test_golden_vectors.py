"""The golden vectors the Java tests replay (`udfs.golden`): the checked-in files are current, the Python rules
reproduce every case read back from them, and they cover what the Java twin must get right."""

from __future__ import annotations

import base64
import json
from collections import Counter
from decimal import Decimal

import pytest

from schemas.dead_letter import DeadLetterReason
from udfs import golden
from udfs.catalog import Aggregation
from udfs.dedup import FIRST, FirstCopy, dedup, expire
from udfs.lateness import SeriesLateness

PRICE_MODELS = tuple(golden.MODELS)


def test_the_checked_in_vectors_are_current():
    assert golden.main(["--check"]) == 0


def test_check_names_a_drifted_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(golden, "GOLDEN_DIR", tmp_path)
    assert golden.main(["--write"]) == 0
    path = tmp_path / "rounding.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"rounded":"0"', '"rounded":"1"', 1), encoding="utf-8")
    assert golden.main(["--check"]) == 1
    assert "rounding.json" in capsys.readouterr().err


def test_validation_cases_replay_and_reach_every_reason():
    data = golden.load("validation.json")
    cat = golden.catalog()
    meters = cat.meters_by_tenant()
    for case in data["cases"]:
        raw = None if case["raw"] is None else base64.b64decode(case["raw"])
        expected = {k: v for k, v in case.items() if k not in ("raw", "topic")}
        assert golden.validation_case(raw, cat, meters, case.get("topic")) == expected
    reasons = Counter(case["reason"] for case in data["cases"])
    assert set(reasons) == {None, *(reason.value for reason in DeadLetterReason)}
    assert reasons[None] >= 200
    named = {case["detail_field"] for case in data["cases"] if case["reason"] and case["detail_field"]}
    assert named == {"event_id", "tenant_id", "customer_id", "meter", "timestamp", "value", "dimensions"}
    valid = [case for case in data["cases"] if case["reason"] is None]
    assert any(case["unique_token"] for case in valid) and any(case["group_json"] != "{}" for case in valid)
    assert any(not case["group_json"].isascii() for case in valid)  # canonical JSON keeps non-ASCII raw
    # tenant topics: records of their own tenant billed, others tenant_mismatch, and the reasons around it in order
    from_topics = Counter(case["reason"] for case in data["cases"] if "topic" in case)
    assert from_topics[None] >= 50 and from_topics["tenant_mismatch"] >= 50
    assert {"negative_value", "unknown_tenant", "unknown_meter", "too_old"} <= set(from_topics)


def test_canonical_json_cases_replay():
    data = golden.load("canonical.json")
    assert golden.canonical_vectors() == data
    for case in data["objects"]:
        assert json.loads(case["json"]) == dict(case["pairs"])
    # keys whose code point order differs from UTF-16 order are in one object together
    assert any({"😀", "\ue000"} <= {key for key, _ in case["pairs"]} for case in data["objects"])


def test_window_cases_replay():
    cases = golden.load("windows.json")["cases"]
    assert [golden.window_case(ts, size) for ts, size, _, _ in cases] == cases
    assert {size for _, size, _, _ in cases} == set(golden.WINDOW_SIZES_MS)


def test_period_cases_replay_across_zones_and_anchors():
    cases = golden.load("periods.json")["cases"]
    assert [golden.period_case(ms, anchor, zone) for ms, anchor, zone, _, _ in cases] == cases
    assert {zone for _, _, zone, _, _ in cases} == set(golden.PERIOD_ZONES)
    assert {anchor for _, anchor, _, _, _ in cases} == set(golden.PERIOD_ANCHORS)
    # DST: some periods are not a whole number of days long
    assert any((end - start) % 86_400_000 for _, _, _, start, end in cases)


def test_aggregation_series_replay_for_every_folded_aggregation():
    series = golden.load("aggregations.json")["series"]
    for entry in series:
        assert golden.aggregation_series(entry["aggregation"], [w["events"] for w in entry["windows"]]) == entry
    kinds = {entry["aggregation"] for entry in series}
    assert kinds == set(Aggregation.__args__) - {"unique_count"} == set(golden.FOLD_AGGREGATIONS)
    # empty windows, windows without values, and periods that go down (min, last) are in the file
    windows = [w for entry in series for w in entry["windows"]]
    assert any(not w["events"] for w in windows)
    assert any(w["events"] and all(e[2] is None for e in w["events"]) for w in windows)
    assert any(Decimal(b["period_quantity"]) < Decimal(a["period_quantity"])
               for entry in series if entry["aggregation"] in ("min", "last")
               for a, b in zip(entry["windows"], entry["windows"][1:], strict=False))


@pytest.mark.parametrize("model", PRICE_MODELS)
def test_price_model_cases_replay(model):
    data = golden.load(f"pricing-{model}.json")
    specs = {spec.id: spec for spec in golden._specs(model)}
    assert [entry["spec"]["id"] for entry in data["entries"]] == list(specs)
    for entry in data["entries"]:
        spec = specs[entry["spec"]["id"]]
        for case in entry["cases"]:
            assert golden.price_case(model, spec, Decimal(case["quantity"])) == case
        quantities = [Decimal(case["quantity"]) for case in entry["cases"]]
        assert min(quantities) < 0 < max(quantities) and Decimal(0) in quantities


def test_rounding_cases_replay():
    cases = golden.load("rounding.json")["cases"]
    assert [golden.rounding_case(Decimal(c["amount"]), c["precision"]) for c in cases] == cases
    assert {c["precision"] for c in cases} == set(range(-1, 10))
    assert any(c["amount"] in ("0.125", "-0.125") and c["precision"] == 2 for c in cases)


def test_line_item_cases_replay_and_cover_the_catalog():
    data = golden.load("line-items.json")
    cat = golden.catalog()
    assert data["java_catalog_json"] == golden.java_catalog_json(cat)
    for case in data["cases"]:
        row = {k: v for k, v in case.items() if k != "line_item"}
        assert golden.line_item_case(cat, row) == case["line_item"]
    items = [json.loads(case["line_item"]) for case in data["cases"] if case["line_item"]]
    every = {entry.id for tenant in cat.tenants.values() for name, entries in tenant.prices.items()
             if tenant.meters[name].aggregation != "unique_count" for entry in entries}
    assert {item["price_ref"] for item in items} == every
    assert any(Decimal(item["amount"]) < 0 for item in items)
    assert any(Decimal(item["rounding_adjustment"]) != 0 for item in items)
    assert any(len(item["tiers"]) >= 2 for item in items) and any(item["tiers"] == [] for item in items)
    assert {case["window_size_ms"] for case in data["cases"]} == {60_000, 3_600_000}


def test_lateness_streams_replay_and_reach_every_case():
    """Each record, offered after the watermark it came after, is billed or late as recorded; each series' windows
    hold the recorded counts. The streams reach: billed on time, billed past the watermark (a series that had not
    fired that window), late (its series had)."""
    vectors = golden.load("lateness.json")
    size = vectors["window_size_ms"]
    kinds = set()
    for stream in vectors["streams"]:
        lateness = SeriesLateness(size)
        windows: dict[str, dict[int, int]] = {}
        for record in stream["records"]:
            lateness.advance(record["floor_ms"])
            at = record["event_time_ms"]
            billed = lateness.offer(record["series"], at)
            assert billed == record["billed"], record
            past = record["floor_ms"] is not None and at - at % size + size - 1 <= record["floor_ms"]
            kinds.add((billed, past))
            if billed:
                by_start = windows.setdefault(str(record["series"]), {})
                by_start[at - at % size] = by_start.get(at - at % size, 0) + 1
        assert {k: sorted(v.items()) for k, v in windows.items()} == {
            k: [tuple(w) for w in v] for k, v in stream["windows"].items()}
    assert kinds == {(True, False), (True, True), (False, True)}


def test_dedup_streams_replay_and_reach_every_case():
    """Each copy, offered at its processing time, gets the recorded outcome; the streams reach every outcome, a
    copy one millisecond before its key's horizon (still a duplicate) and one exactly at it (first again), the same
    event id under two tenants, and a conflicting copy after a re-recorded first copy."""
    kinds = set()
    for stream in golden.load("dedup.json")["streams"]:
        ttl = stream["ttl_ms"]
        states: dict[tuple[str, str], FirstCopy | None] = {}
        for record in stream["records"]:
            key = (record["tenant_id"], record["event_id"])
            before = states.get(key)
            states[key], outcome = dedup(before, record["fingerprint"], record["processing_time_ms"], ttl)
            assert outcome == record["outcome"], record
            if before is not None:
                age = record["processing_time_ms"] - before.first_seen_ms
                kinds.add(("edge", age - ttl, outcome == FIRST) if age - ttl in (-1, 0) else ("seen", outcome))
        last = max(r["processing_time_ms"] for r in stream["records"])
        assert sum(expire(s, last, ttl) is not None for s in states.values()) == stream["live_at_end"]
        assert all(expire(s, stream["horizon_end_ms"], ttl) is None for s in states.values())
        assert any(expire(s, stream["horizon_end_ms"] - 1, ttl) is not None for s in states.values())
        tenants_of: dict[str, set[str]] = {}
        for tenant, event_id in states:
            tenants_of.setdefault(event_id, set()).add(tenant)
        kinds.add(("shared id", any(len(t) > 1 for t in tenants_of.values())))
    assert {("edge", -1, False), ("edge", 0, True), ("seen", FIRST), ("seen", "duplicate_same_payload"),
            ("seen", "duplicate_conflicting_payload"), ("shared id", True)} <= kinds


def test_java_catalog_example_replays():
    """The checked-in example of the Java catalog document is the golden catalog's, and the views JUnit holds
    `JavaCatalog` to are what the Python catalog says."""
    data = golden.load("java-catalog.json")
    cat = golden.catalog()
    assert data == golden.java_catalog_vectors()
    assert json.loads(data["java_catalog_json"])["format"] == "java-catalog-v2"
    assert set(data["parser_view"]) == set(cat.tenants) == set(data["rating_view"])
    assert any(m["unique_dimension"] for t in data["parser_view"].values() for m in t.values())
    assert any(m["group_by"] for t in data["parser_view"].values() for m in t.values())
    for key in ("validation.json", "line-items.json", "lateness.json"):
        assert golden.load(key)["java_catalog_json"] == data["java_catalog_json"], key


def test_unique_window_cases_replay_and_their_rows_parse_back_to_the_distinct_values():
    """The window rule gives each window's distinct values; joined as the Java window operator sends them (NULL
    when none, else the tokens joined by commas), `parse_unique_tokens` gives back exactly those values, the empty
    value included."""
    from udfs.aggregations import UsageSample, aggregator_for, run_window_rule
    from udfs.grouping import unique_token
    from udfs.window_rows import parse_unique_tokens
    from udfs.windows import from_epoch_ms

    agg = aggregator_for("unique_count", "user_id")
    seen_empty_value = False
    for series in golden.load("unique-windows.json")["series"]:
        for window in series["windows"]:
            start = window["window_start_ms"]
            events = [e for e in series["events"] if e[0] - e[0] % 60_000 == start]
            samples = [UsageSample(event_id=e[1], event_time=from_epoch_ms(e[0]),
                                   dimensions={} if e[2] is None else {"user_id": e[2]}) for e in events]
            distinct = run_window_rule(agg, samples)["distinct_values"]
            assert sorted(unique_token(v) for v in distinct) == window["tokens"]
            assert window["event_count"] == len(events)
            joined = ",".join(window["tokens"]) if window["tokens"] else None
            assert parse_unique_tokens(joined) == distinct
            seen_empty_value |= "" in distinct
    assert seen_empty_value


def test_correction_ledger_streams_reach_every_ledger_decision():
    """The ledger vectors (`corrections.json`, replayed in Java by `CorrectionLedgerGoldenTest`) reach every reason
    the ledger decides, cancels and amends that apply with and without a change, and an amend that adds to another
    series (a group-by dimension changed)."""
    reasons, applied = Counter(), Counter()
    for stream in golden.load("corrections.json")["streams"]:
        for op in stream["ops"]:
            if op["op"] != "correct":
                continue
            expect = op["expect"]
            if "reason" in expect:
                reasons[expect["reason"]] += 1
                continue
            remove, add = expect["remove"], expect["add"]
            moved = remove is not None and add is not None and remove["group_json"] != add["group_json"]
            applied[(op["action"], remove is not None, add is not None, moved)] += 1
    # every aggregation's corrections are billed, so the spec never decides aggregation_not_correctable; the job
    # does for events restored from an older ledger format (CorrectionLedgerGoldenTest's format tests)
    assert set(reasons) == {"event_dead_lettered", "unknown_event", "outside_horizon", "already_cancelled",
                            "unknown_meter"}
    assert {("cancel", True, False, False), ("amend", True, True, False), ("amend", True, True, True),
            ("amend", False, False, False)} <= set(applied)


def test_correction_line_cases_are_the_specs_and_reach_every_case():
    """`correction-lines.json` (replayed in Java by `CorrectionLinesGoldenTest`): every line is
    `accumulate_correction`'s, named by kind `correction` and its watermark, adjusting the window's usage line; the
    cases reach both kinds for every folded aggregation, negative lines, tier crossings and a series without a
    period state before."""
    from udfs.line_items import line_item_id

    data = golden.load("correction-lines.json")
    assert data == golden.correction_lines_vectors()
    assert data["java_catalog_json"] == golden.load("line-items.json")["java_catalog_json"]
    reached = set()
    for case in data["cases"]:
        item = json.loads(case["line_item"])
        group = json.loads(case["group_json"] or "{}")
        start = golden.from_epoch_ms(case["window_start_ms"])
        key = (case["tenant_id"], case["customer_id"], case["meter"], group)
        assert item["line_item_id"] == line_item_id(*key, start, kind="correction",
                                                    watermark=golden.from_epoch_ms(case["watermark_ms"]))
        assert item["adjusts_line_item_id"] == line_item_id(*key, start)
        assert (item["quantity"], item["event_count"]) == (case["quantity"], case["corrections"])
        assert item["period_quantity_to_date"] == case["period_quantity"]
        reached.add((case["aggregation"], item["kind"]))
    aggregations = {"sum", "count", "max", "min", "last"}
    assert reached == {(a, k) for a in aggregations for k in ("correction", "prior_period_adjustment")}
    items = [json.loads(case["line_item"]) for case in data["cases"]]
    assert any(Decimal(i["amount"]) < 0 for i in items) and any(Decimal(i["quantity"]) < 0 for i in items)
    assert any(len(i["tiers"]) >= 2 for i in items)
    assert any(case["period_quantity_before"] is None for case in data["cases"])
