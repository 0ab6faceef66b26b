"""The `usage-corrections` input of the billing job on a MiniCluster (issue 17, first slice): every correction is
validated by the spec (`udfs.corrections.validate_correction_record`), deduplicated by correction id
(`check_correction_id`), rejects are written to the correction dead letters with their reason, and every record is
counted on the accounting output (accepted + rejected by reason), beside unchanged usage accounting; at parallelism
1 and 2. The expected outcomes are the spec's, computed here over the same records."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from jobs.billing import BillingSettings, build_pipeline, table_environment
from jobs.corrections import RAW_CORRECTION_TYPE
from jobs.runtime import stream_environment
from schemas.correction_dead_letter import CorrectionDeadLetter
from tests.job.test_billing_job import CATALOG_PATH, final_accounting
from tests.job_outputs import collect_outputs
from tests.scripted_usage import OUT_OF_ORDERNESS_MS, REFERENCE_NOW, WINDOW_MS
from tests.usage_files import file_parsed_usage
from udfs.catalog import load_catalog
from udfs.corrections import CorrectionRejection, check_correction_id, validate_correction_record
from udfs.windows import to_epoch_ms

pytestmark = pytest.mark.job

TOPIC = "usage-corrections"
HORIZON_MS = 24 * 3600 * 1000


def usage(event_id: str, value: str) -> bytes:
    return json.dumps({"event_id": event_id, "tenant_id": "acme-ai", "customer_id": "corr-1", "meter": "input_tokens",
                       "timestamp": to_epoch_ms(REFERENCE_NOW) - 3_600_000, "value": value,
                       "dimensions": {"model": "nova-large"}}).encode()


def correction(correction_id: str, event_id: str, action: str, tenant: str = "acme-ai", **fields) -> bytes:
    return json.dumps({"correction_id": correction_id, "tenant_id": tenant, "event_id": event_id, "action": action,
                       "sent_at": "2026-11-01T05:00:00Z", **fields}).encode()


USAGE = [usage("e1", "100"), usage("e2", "200"), usage("e3", "300")]
CORRECTIONS = [
    correction("c-cancel", "e1", "cancel"),
    correction("c-cancel", "e1", "cancel", note="a retry: the note changes nothing"),  # duplicate_correction
    correction("c-amend", "e2", "amend", value="150"),
    correction("c-amend", "e2", "amend", value="175"),  # same id, other payload: conflicting_correction
    correction("c-dims", "e3", "amend", dimensions={"model": "nova-small"}),
    correction("c-tenant", "e3", "cancel", tenant="nobody"),  # unknown_tenant
    correction("c-payload", "e3", "cancel", value="1"),  # payload_on_cancel
    correction("c-nothing", "e3", "amend"),  # nothing_to_amend
    correction("c-neg", "e3", "amend", value="-1"),  # negative_value
    correction("c-meter", "e3", "amend", meter="x", value="1"),  # unamendable_field
    b"{not json",  # malformed_json
    b"\xff\xfe",  # not_utf8
    b"[1, 2]",  # not_an_object
    None,  # a tombstone: no value
]


def spec_outcomes(raws: list[bytes | None]) -> tuple[int, Counter]:
    """(accepted, rejected by reason) by the spec, records in this order (the outcomes asserted do not depend on the
    order: a pair of copies of one id gives one first copy and one rejection whichever comes first)."""
    tenants = load_catalog(CATALOG_PATH).tenants
    ids, accepted, rejected = {}, 0, Counter()
    for raw in raws:
        result = validate_correction_record(raw, tenants=tenants)
        if isinstance(result, CorrectionRejection):
            rejected[result.reason.value] += 1
            continue
        key = (result.tenant_id, result.correction_id)
        ids[key], duplicate = check_correction_id(ids.get(key), result, 1, HORIZON_MS)
        if duplicate is None:
            accepted += 1
        else:
            rejected[duplicate.reason.value] += 1
    return accepted, rejected


def run_job(tmp_path, parallelism: int) -> dict[str, list[dict]]:
    from pyflink.common import Row

    usage_file = tmp_path / "usage.jsonl"
    usage_file.write_bytes(b"\n".join(USAGE) + b"\n")
    settings = BillingSettings(
        catalog_yaml=CATALOG_PATH.read_text(), window_size_ms=WINDOW_MS, out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
        reference_now_ms=to_epoch_ms(REFERENCE_NOW), watermark_on_every_event=True, correction_horizon_ms=HORIZON_MS,
    )
    env = stream_environment(parallelism=parallelism)
    t_env = table_environment(env, settings)
    raw = env.from_collection(
        [Row(payload=payload, src_topic=TOPIC, src_partition=0, src_offset=offset)
         for offset, payload in enumerate(CORRECTIONS)], type_info=RAW_CORRECTION_TYPE)
    outputs = build_pipeline(env, t_env, settings, file_parsed_usage(env, settings, path=str(usage_file)), raw)
    return collect_outputs(vars(outputs))


@pytest.mark.parametrize("parallelism", [1, 2])
def test_corrections_are_validated_deduplicated_dead_lettered_and_counted(tmp_path, parallelism):
    accepted, rejected = spec_outcomes(CORRECTIONS)
    assert (accepted, sum(rejected.values())) == (3, len(CORRECTIONS) - 3)
    assert {"duplicate_correction", "conflicting_correction", "not_utf8", "malformed_json"} <= set(rejected)

    out = run_job(tmp_path, parallelism)

    counts: dict[tuple[str, str], int] = {}
    for record in out["accounting"]:
        counts[(record["outcome"], record["detail"])] = record["records"]
    assert counts[("correction_accepted", "")] == accepted
    assert {d: n for (o, d), n in counts.items() if o == "correction_rejected"} == dict(rejected)
    totals = final_accounting(out["accounting"])
    assert totals == {"windowed": len(USAGE), "correction_accepted": accepted,
                      "correction_rejected": sum(rejected.values())}, "usage accounting is unchanged"

    letters = [CorrectionDeadLetter.model_validate(letter) for letter in out["correction_dead_letters"]]
    assert Counter(letter.reason.value for letter in letters) == rejected
    for letter in letters:
        assert (letter.source_topic, letter.source_partition) == (TOPIC, 0)
        raw = CORRECTIONS[letter.source_offset]
        assert letter.raw_size_bytes == (0 if raw is None else len(raw)), "the dead letter shows the record it names"
    by_reason = {letter.reason.value: letter for letter in letters}
    assert (by_reason["duplicate_correction"].correction_id, by_reason["duplicate_correction"].event_id) == (
        "c-cancel", "e1")
    assert by_reason["conflicting_correction"].correction_id == "c-amend"
    assert by_reason["conflicting_correction"].source_offset in (2, 3)
    assert by_reason["unknown_tenant"].tenant_id == "nobody"
    assert by_reason["not_utf8"].raw_encoding == "base64"
    assert by_reason["malformed_json"].correction_id is None
