package io.meterstream.invoices;

import java.time.Duration;
import java.util.List;

import io.meterstream.rating.RateLineItem;
import io.meterstream.rating.RatingPeriods;

import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * The invoice stage: keyed per (tenant, customer) ({@link InvoiceKey}), it folds line items and credit drawdowns
 * (both as wire JSON, one input) into the customer's open invoices ({@link CustomerInvoices}, the twin of
 * {@code udfs.invoices}) and writes each as an {@code invoices} record when the event-time clock reaches its period
 * end + grace: an event-time timer per open invoice. At the end of a bounded input (the watermark jumps to its
 * maximum, which is not time passing) the invoices still open are written as {@code open} previews.
 *
 * <p>Why Java: the stage sees every line item (several per customer and minute), and a Python operator per line
 * item cost more than the rest of the job's line-item path. The state is one value per customer, its open invoices
 * with one entry per series (nothing per line), with a TTL that outlives a billing period and its grace; it is
 * cleared when the last open invoice closes. It is changed in place ({@link CustomerInvoicesSerializer} says why
 * that is safe).
 */
public final class InvoiceFolding extends AbstractStreamOperator<String>
        implements OneInputStreamOperator<String, String>, Triggerable<String, VoidNamespace> {
    private static final long serialVersionUID = 1L;
    /** The state's name (its identity inside this operator): a new format needs a new version here. */
    public static final String STATE_NAME = "customer-invoices-v1";

    private final String catalogJson;
    private final long stateTtlMs;

    private transient ValueState<CustomerInvoices> invoices;
    private transient InternalTimerService<VoidNamespace> closes;
    private transient RatingPeriods periods;
    private transient RateLineItem ids;

    /**
     * @param catalogJson {@code udfs.java_catalog.java_catalog_json(catalog)}
     * @param stateTtlMs  TTL of a customer's invoice state (a safety net: it is cleared when its invoices close)
     */
    public InvoiceFolding(String catalogJson, long stateTtlMs) {
        this.catalogJson = catalogJson;
        this.stateTtlMs = stateTtlMs;
    }

    @Override
    public void open() throws Exception {
        super.open();
        ValueStateDescriptor<CustomerInvoices> descriptor = new ValueStateDescriptor<>(
                STATE_NAME, CustomerInvoicesSerializer.INSTANCE);
        // The TTL is a safety net (a customer's state is cleared when its last open invoice closes): expired values
        // are dropped when read or when a full snapshot is written, never by the incremental cleanup that visits
        // entries on every access (5 % of the job's CPU in a JFR profile).
        descriptor.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofMillis(stateTtlMs))
                .disableCleanupInBackground().cleanupFullSnapshot().build());
        invoices = getRuntimeContext().getState(descriptor);
        closes = getInternalTimerService("invoice-closes", VoidNamespaceSerializer.INSTANCE, this);
        periods = RatingPeriods.of(catalogJson);
        ids = new RateLineItem();
    }

    @Override
    public void processElement(StreamRecord<String> element) throws Exception {
        String json = element.getValue();
        CustomerInvoices state = load();
        long clock = closes.currentWatermark();
        long closesAt = CustomerInvoices.isDrawdown(json)
                ? state.addDrawdown(json, periods, ids, clock)
                : state.addLine(json, periods, ids, clock);
        if (closesAt != Long.MIN_VALUE) {
            closes.registerEventTimeTimer(VoidNamespace.INSTANCE, closesAt);
            save(state);
        }
    }

    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        CustomerInvoices state = invoices.value();
        if (state == null) {
            return;
        }
        long emittedAt = System.currentTimeMillis();
        List<String> out = closes.currentWatermark() == Long.MAX_VALUE
                ? state.endOfInput(emittedAt)
                : state.closeDue(timer.getTimestamp(), emittedAt);
        for (String invoice : out) {
            output.collect(new StreamRecord<>(invoice, timer.getTimestamp()));
        }
        save(state);
    }

    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) {
    }

    private CustomerInvoices load() throws Exception {
        CustomerInvoices state = invoices.value();
        if (state != null) {
            return state;
        }
        String[] owner = InvoiceKey.owner((String) getCurrentKey());
        return new CustomerInvoices(owner[0], owner[1]);
    }

    private void save(CustomerInvoices state) throws Exception {
        if (state.isEmpty()) {
            invoices.clear();
            return;
        }
        invoices.update(state);  // the same object on the heap backend: refreshes its TTL
    }
}
