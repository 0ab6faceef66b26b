"""The invoice stage in the billing job: line items (and, when credits run, credit drawdowns) into `invoices`.

Wiring only; the rule is `udfs.invoices` (the specification) and runs in the keyed Java operator
`io.meterstream.invoices.InvoiceFolding` (its twin, bound by `golden/invoices.json`): every line item passes through
this stage, and a Python operator per line item cost more than the rest of the line-item path. Keyed per (tenant,
customer) like the credits ledger; an invoice is written when the stage's event-time clock (the minimum of its
inputs' watermarks) reaches its period end + grace, which comes after every line of the period and every drawdown
the ledger computed from them before that clock.
"""

from __future__ import annotations

from pyflink.datastream import DataStream

from jobs import uids
from jobs.java_interop import LONG, STRING, java_new, java_static

INVOICE_FOLDING_CLASS = "io.meterstream.invoices.InvoiceFolding"
INVOICE_KEY_CLASS = "io.meterstream.invoices.InvoiceKey"
JSON_RECORDS_CLASS = "io.meterstream.invoices.JsonRecords"
JAVA_DATA_STREAM = "org.apache.flink.streaming.api.datastream.DataStream"


def build_invoices(java_catalog_json: str, line_item_streams: list[DataStream], *, drawdowns: DataStream | None,
                   state_ttl_ms: int) -> DataStream:
    """The `invoices` records (wire JSON) of the line item streams (every stream the job writes line items from)
    and, when credits run, the drawdowns the ledger computed from them."""
    from pyflink.java_gateway import get_gateway

    # Each stream retyped (a chained identity map) so that the shuffle to the invoice stage carries the records'
    # bytes in one run (JSON_RECORDS_CLASS says why), then the union.
    inputs = [*line_item_streams, *([drawdowns] if drawdowns is not None else [])]
    streams = [DataStream(java_static(JSON_RECORDS_CLASS, "retyped", (JAVA_DATA_STREAM, s._j_data_stream))
                          .uid(f"{uids.BILLING_INVOICE_RECORDS}-{n}"))
               for n, s in enumerate(inputs)]
    records = streams[0].union(*streams[1:]) if streams[1:] else streams[0]
    key = java_new(INVOICE_KEY_CLASS)
    folding = java_new(INVOICE_FOLDING_CLASS, (STRING, java_catalog_json), (LONG, state_ttl_ms))
    string_type = get_gateway().jvm.org.apache.flink.api.common.typeinfo.Types.STRING
    j_invoices = (
        records._j_data_stream.keyBy(key, key.getProducedType())
        .transform("fold-invoices", string_type, folding)
        .uid(uids.BILLING_INVOICES)
    )
    return DataStream(j_invoices)
