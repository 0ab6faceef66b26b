"""Operator uids and state names in one place. A uid is the identity of an operator's state in checkpoints and
savepoints: change one only on purpose, with a new version suffix."""

PASSTHROUGH_SOURCE = "passthrough-kafka-source-v1"
PASSTHROUGH_TRANSFORM = "passthrough-normalise-v1"
PASSTHROUGH_SINK = "passthrough-kafka-sink-v1"

# Billing job (jobs/billing.py). SQL operators get their identity from the compiled plan; these are the
# DataStream operators around it.
BILLING_USAGE_SOURCE = "billing-usage-source-v1"  # Kafka source, parsing as it reads (offsets per partition)
BILLING_USAGE_ROUTING = "billing-usage-routing-v2"  # keyed Java operator: dedup state + lateness (watermark floor)
BILLING_WINDOW_RATING = "billing-window-rating-v3"  # keyed Java operator: windows, period to date, rating
BILLING_PERIOD_TO_DATE = "billing-period-to-date-v1"  # keyed Python accumulator (unique_count meters)
BILLING_DEAD_LETTER_FORMAT = "billing-dead-letter-format-v1"
BILLING_LATE_FORMAT = "billing-late-format-v1"
BILLING_ACCOUNTING = "billing-accounting-v1"
BILLING_INVOICES = "billing-invoices-v1"  # keyed Java operator: open invoices per customer, closed at end + grace
# Java, stateless: each input of the invoice stage retyped for its shuffle (JsonRecords); uid suffixed -<n>
BILLING_INVOICE_RECORDS = "billing-invoice-records-v1"
BILLING_SINK_LINE_ITEMS = "billing-sink-line-items-v1"
BILLING_SINK_UNIQUE_COUNT_LINE_ITEMS = "billing-sink-unique-count-line-items-v1"
BILLING_SINK_DEAD_LETTERS = "billing-sink-dead-letters-v1"
BILLING_SINK_LATE = "billing-sink-late-events-v1"
BILLING_SINK_ACCOUNTING = "billing-sink-accounting-v1"
BILLING_SINK_INVOICES = "billing-sink-invoices-v1"
# Corrections (--corrections; jobs/corrections.py).
BILLING_CORRECTION_SOURCE = "billing-correction-source-v1"  # Kafka source of usage-corrections (offsets)
BILLING_CORRECTION_VALIDATE = "billing-correction-validate-v1"
BILLING_CORRECTION_IDS = "billing-correction-ids-v1"  # keyed Python: correction-id idempotency
# (billing-correction-to-ledger-v1, a stateless map, is gone: correction-ids emits the ledger's rows itself.)
BILLING_CORRECTION_LEDGER_REJECTS = "billing-correction-ledger-rejects-v1"  # the ledger's rejections, formatted
BILLING_CORRECTION_COUNTS = "billing-correction-counts-v1"  # Java: counts retyped for the accounting union
BILLING_SINK_CORRECTION_DEAD_LETTERS = "billing-sink-correction-dead-letters-v1"

# State names (the state's identity inside its operator). The classes a pickled state holds are listed in
# jobs/state_classes.py and locked in jobs/state_classes.txt: changing one of them needs a new -vN here.
PERIOD_TO_DATE_STATE = "period-to-date-v2"  # SeriesPeriods (a period state per billing period late usage can reach)
PERIOD_TO_DATE_CONTENTS_STATE = "period-to-date-contents-v2"  # RetainedWindows (unique_count, with corrections)
# RetainedWindows pickled before `seen` and `next_freeze_check_ms`: read once, rebuilt into v2.
PERIOD_TO_DATE_CONTENTS_STATE_V1 = "period-to-date-contents-v1"
PERIOD_TO_DATE_STATE_V1 = "period-to-date-v1"  # PeriodState (the latest period only); read once, moved to v2
CORRECTION_ID_STATE = "correction-id-v1"  # a correction id's first copy: (fingerprint, first seen ms), no pickle

# Credits (jobs/credits.py).
CREDITS_VALIDATE_GRANTS = "credits-validate-grants-v1"
CREDITS_VALIDATE_SPEND_CAPS = "credits-validate-spend-caps-v1"
CREDITS_GRANT_EVENTS_WITHOUT_CLOCK = "credits-grant-events-without-clock-v1"  # drops the grant events' watermarks
CREDITS_LEDGER = "credits-ledger-v1"
CREDITS_SINK_DRAWDOWNS = "credits-sink-drawdowns-v1"
CREDITS_SINK_ALERTS = "credits-sink-alerts-v1"
CREDITS_SINK_GRANT_DEAD_LETTERS = "credits-sink-grant-dead-letters-v1"
CUSTOMER_CREDITS_STATE = "customer-credits-v2"
# Ledgers pickled before a logged line had `decided_after`: read once, their lines rebuilt into v2 (as usage lines).
CUSTOMER_CREDITS_STATE_V1 = "customer-credits-v1"
CUSTOMER_CREDITS_PENDING_STATE = "customer-credits-pending-v3"  # line items waiting for the clock
# Line items pickled before `decided_after` (v2) or before `kind` and `adjusts_line_item_id` (v1): read once,
# revalidated into v3.
CUSTOMER_CREDITS_PENDING_STATE_V2 = "customer-credits-pending-v2"
CUSTOMER_CREDITS_PENDING_STATE_V1 = "customer-credits-pending-v1"
CUSTOMER_CREDITS_TIMER_STATE = "customer-credits-timer-v1"
