package io.meterstream.invoices;

import java.io.IOException;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import io.meterstream.catalog.JavaCatalog;
import io.meterstream.rating.RateLineItem;
import io.meterstream.rating.RatingPeriods;
import io.meterstream.validation.CanonicalJson;
import io.meterstream.validation.ParseUsageEvent;

import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;

/**
 * The open invoices of one (tenant, customer): the Java twin of {@code udfs.invoices} (its module docstring is the
 * specification: which invoice a line or a credit movement goes on, the close rule, the end of a bounded input),
 * held to it by {@code golden/invoices.json} ({@code InvoicesGoldenTest}). Mutable, one instance per key and call:
 * {@link InvoiceFolding} reads it from keyed state, changes it and writes it back.
 *
 * <p>Inputs are the wire JSON of line items ({@code schemas.invoice_line_item}) and credit drawdowns
 * ({@code schemas.credits.CreditDrawdown}); outputs the wire JSON of {@code schemas.invoice.Invoice}, byte for byte
 * what pydantic writes. Sums are exact ({@link BigDecimal} addition). Per open invoice one entry per (meter, group)
 * series; nothing per line.
 */
public final class CustomerInvoices {
    /** {@code udfs.invoices.MAX_PERIODS_AHEAD}. */
    static final int MAX_PERIODS_AHEAD = 64;
    /** No clock yet (Python: None). */
    public static final long NO_CLOCK = Long.MIN_VALUE;
    private static final int FORMAT_VERSION = 1;
    private static final String PRIOR_PERIOD = "prior_period_adjustment";

    /** A line item or drawdown as the stage reads it (the fields it needs). */
    static final class Record {
        boolean drawdown;
        String lineItemId;
        String kind;
        String invoiceId;
        String tenantId;
        String customerId;
        String meter;
        String[] groupKeys = new String[0];
        String[] groupValues = new String[0];
        long periodStartMs = Long.MIN_VALUE;
        long periodEndMs = Long.MIN_VALUE;
        boolean hasPeriodStart;
        BigDecimal periodQuantity;
        BigDecimal amount;
        String currency;
    }

    /** A (meter, group) series of an open invoice: its lines of this period by kind. */
    static final class SeriesTotal {
        BigDecimal quantity = BigDecimal.ZERO;
        BigDecimal usage = BigDecimal.ZERO;
        BigDecimal lateAdjustment = BigDecimal.ZERO;
        BigDecimal correction = BigDecimal.ZERO;
        long lineCount;
    }

    /** A series key: meter, then the group's pairs sorted by key (code point order), as Python's tuples compare. */
    static final class SeriesKey implements Comparable<SeriesKey> {
        final String meter;
        final String[] keys;
        final String[] values;

        SeriesKey(String meter, String[] keys, String[] values) {
            this.meter = meter;
            this.keys = keys;
            this.values = values;
        }

        @Override
        public int compareTo(SeriesKey o) {
            int c = CanonicalJson.compareCodePoints(meter, o.meter);
            if (c != 0) {
                return c;
            }
            for (int i = 0; i < Math.min(keys.length, o.keys.length); i++) {
                c = CanonicalJson.compareCodePoints(keys[i], o.keys[i]);
                if (c == 0) {
                    c = CanonicalJson.compareCodePoints(values[i], o.values[i]);
                }
                if (c != 0) {
                    return c;
                }
            }
            return Integer.compare(keys.length, o.keys.length);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof SeriesKey && compareTo((SeriesKey) o) == 0;
        }

        @Override
        public int hashCode() {
            return meter.hashCode() * 31 + Arrays.hashCode(keys) * 7 + Arrays.hashCode(values);
        }
    }

    static final class OpenInvoice {
        String invoiceId;
        String currency;
        long periodStartMs;
        long periodEndMs;
        long closesAtMs;
        final HashMap<SeriesKey, SeriesTotal> series = new HashMap<>();  // sorted when written out
        BigDecimal priorPeriodTotal = BigDecimal.ZERO;
        long priorPeriodLines;
        BigDecimal creditsApplied = BigDecimal.ZERO;
    }

    private final String tenantId;
    private final String customerId;
    /** By invoice id. */
    private final Map<String, OpenInvoice> open = new LinkedHashMap<>();

    public CustomerInvoices(String tenantId, String customerId) {
        this.tenantId = tenantId;
        this.customerId = customerId;
    }

    public boolean isEmpty() {
        return open.isEmpty();
    }

    /** The close instants of the open invoices (the stage keeps an event-time timer on each). */
    public long[] closeTimes() {
        long[] times = new long[open.size()];
        int i = 0;
        for (OpenInvoice invoice : open.values()) {
            times[i++] = invoice.closesAtMs;
        }
        return times;
    }

    /** True for the wire JSON of a credit drawdown, false for a line item's. */
    public static boolean isDrawdown(String json) {
        return json.startsWith("{\"drawdown_id\"");
    }

    /**
     * {@code udfs.invoices.add_line}: the line onto the invoice it names; returns that invoice's close instant.
     * @throws IllegalStateException when that invoice has closed by {@code clockMs} (a broken invariant in money)
     */
    public long addLine(String json, RatingPeriods periods, RateLineItem ids, long clockMs) {
        Record line = parse(json);
        require(!line.drawdown, "not a line item: " + json);
        checkOwner(line);
        JavaCatalog.Tenant tenant = periods.tenant(tenantId);
        OpenInvoice named = line.invoiceId == null ? null : open.get(line.invoiceId);
        // The invoice the line names is open already (most lines): its id was computed from its period when it
        // opened, so a line of that same period (or, for a prior-period adjustment, of an earlier one) names it
        // rightly; no id to compute again.
        boolean known = named != null && named.currency.equals(line.currency) && (PRIOR_PERIOD.equals(line.kind)
                ? line.periodStartMs < named.periodStartMs
                : named.periodStartMs == line.periodStartMs && named.periodEndMs == line.periodEndMs);
        long[] period = known ? new long[] {named.periodStartMs, named.periodEndMs} : invoicePeriod(line, periods, ids);
        long closesAt = period[1] + tenant.periodGraceMs;
        if (clockMs != NO_CLOCK && closesAt <= clockMs) {
            throw new IllegalStateException("line " + line.lineItemId + " (" + line.kind + ") is for invoice "
                    + ids.invoiceId(tenantId, customerId, period[0], line.currency) + ", which closed at "
                    + Instant.ofEpochMilli(closesAt) + " (clock " + Instant.ofEpochMilli(clockMs) + ")");
        }
        OpenInvoice invoice = known ? named : opened(line.currency, period, tenant, ids);
        if (PRIOR_PERIOD.equals(line.kind)) {
            invoice.priorPeriodTotal = invoice.priorPeriodTotal.add(line.amount);
            invoice.priorPeriodLines++;
            return invoice.closesAtMs;
        }
        SeriesKey key = new SeriesKey(line.meter, line.groupKeys, line.groupValues);
        SeriesTotal total = invoice.series.computeIfAbsent(key, k -> new SeriesTotal());
        total.quantity = line.periodQuantity;
        switch (line.kind) {
            case "usage":
                total.usage = total.usage.add(line.amount);
                break;
            case "late_adjustment":
                total.lateAdjustment = total.lateAdjustment.add(line.amount);
                break;
            case "correction":
                total.correction = total.correction.add(line.amount);
                break;
            default:
                throw new IllegalArgumentException("unknown line kind '" + line.kind + "'");
        }
        total.lineCount++;
        return invoice.closesAtMs;
    }

    /**
     * {@code udfs.invoices.add_drawdown}: a credit movement of a line onto its period's invoice while that is open,
     * else onto the open invoice at {@code clockMs}; returns that invoice's close instant, or {@link Long#MIN_VALUE}
     * for records of no line (expiry, void), which change nothing.
     */
    public long addDrawdown(String json, RatingPeriods periods, RateLineItem ids, long clockMs) {
        Record d = parse(json);
        require(d.drawdown, "not a drawdown: " + json);
        boolean ofALine = "usage".equals(d.kind) || "catch_up".equals(d.kind) || "adjustment".equals(d.kind);
        if (!ofALine || d.lineItemId == null || !d.hasPeriodStart) {
            return Long.MIN_VALUE;
        }
        checkOwner(d);
        JavaCatalog.Tenant tenant = periods.tenant(tenantId);
        long[] period = {periods.startMs(tenantId, d.periodStartMs), periods.endMs(tenantId, d.periodStartMs)};
        if (clockMs != NO_CLOCK && period[1] + tenant.periodGraceMs <= clockMs) {
            long openAt = clockMs - tenant.periodGraceMs;  // udfs.line_items.open_period
            period = new long[] {periods.startMs(tenantId, openAt), periods.endMs(tenantId, openAt)};
        }
        OpenInvoice invoice = null;
        for (OpenInvoice candidate : open.values()) {  // the few open ones: no id to compute
            if (candidate.periodStartMs == period[0] && candidate.currency.equals(d.currency)) {
                invoice = candidate;
                break;
            }
        }
        if (invoice == null) {
            invoice = opened(d.currency, period, tenant, ids);
        }
        invoice.creditsApplied = invoice.creditsApplied.add(d.amount);
        return invoice.closesAtMs;
    }

    /** {@code udfs.invoices.close_due}: the invoices due by {@code clockMs}, final, in (closes_at, id) order. */
    public List<String> closeDue(long clockMs, long emittedAtMs) {
        List<OpenInvoice> due = new ArrayList<>();
        for (OpenInvoice invoice : open.values()) {
            if (invoice.closesAtMs <= clockMs) {
                due.add(invoice);
            }
        }
        return emit(due, "final", emittedAtMs);
    }

    /** {@code udfs.invoices.end_of_input}: every open invoice as an {@code open} preview, in (closes_at, id) order. */
    public List<String> endOfInput(long emittedAtMs) {
        return emit(new ArrayList<>(open.values()), "open", emittedAtMs);
    }

    private List<String> emit(List<OpenInvoice> invoices, String status, long emittedAtMs) {
        invoices.sort(Comparator.<OpenInvoice>comparingLong(i -> i.closesAtMs).thenComparing(i -> i.invoiceId));
        List<String> out = new ArrayList<>(invoices.size());
        for (OpenInvoice invoice : invoices) {
            open.remove(invoice.invoiceId);
            out.add(json(invoice, status, emittedAtMs));
        }
        return out;
    }

    private void checkOwner(Record r) {
        if (!tenantId.equals(r.tenantId) || !customerId.equals(r.customerId)) {
            throw new IllegalArgumentException("record of (" + r.tenantId + ", " + r.customerId + ") folded into ("
                    + tenantId + ", " + customerId + ")");
        }
    }

    /** {@code udfs.invoices.invoice_period}. */
    private long[] invoicePeriod(Record line, RatingPeriods periods, RateLineItem ids) {
        long[] own = {line.periodStartMs, line.periodEndMs};
        if (!PRIOR_PERIOD.equals(line.kind)) {
            if (line.invoiceId != null
                    && !line.invoiceId.equals(ids.invoiceId(tenantId, customerId, own[0], line.currency))) {
                throw new IllegalArgumentException(line.kind + " line " + line.lineItemId + " names invoice "
                        + line.invoiceId + ", not its period's");
            }
            return own;
        }
        require(line.invoiceId != null, "prior-period line " + line.lineItemId + " names no invoice");
        long[] period = own;
        for (int i = 0; i < MAX_PERIODS_AHEAD; i++) {
            period = new long[] {periods.startMs(tenantId, period[1]), periods.endMs(tenantId, period[1])};
            if (line.invoiceId.equals(ids.invoiceId(tenantId, customerId, period[0], line.currency))) {
                return period;
            }
        }
        throw new IllegalArgumentException("prior-period line " + line.lineItemId + " names invoice "
                + line.invoiceId + ", of no period within " + MAX_PERIODS_AHEAD + " after its own");
    }

    private OpenInvoice opened(String currency, long[] period, JavaCatalog.Tenant tenant, RateLineItem ids) {
        String id = ids.invoiceId(tenantId, customerId, period[0], currency);
        OpenInvoice invoice = open.get(id);
        if (invoice == null) {
            invoice = new OpenInvoice();
            invoice.invoiceId = id;
            invoice.currency = currency;
            invoice.periodStartMs = period[0];
            invoice.periodEndMs = period[1];
            invoice.closesAtMs = period[1] + tenant.periodGraceMs;
            open.put(id, invoice);
        }
        return invoice;
    }

    /** The {@code schemas.invoice.Invoice} JSON, as pydantic writes it (field order, wire decimals and instants). */
    private String json(OpenInvoice invoice, String status, long emittedAtMs) {
        StringBuilder sb = new StringBuilder(512);
        sb.append("{\"invoice_id\":");
        CanonicalJson.appendString(sb, invoice.invoiceId);
        sb.append(",\"tenant_id\":");
        CanonicalJson.appendString(sb, tenantId);
        sb.append(",\"customer_id\":");
        CanonicalJson.appendString(sb, customerId);
        sb.append(",\"currency\":");
        CanonicalJson.appendString(sb, invoice.currency);
        sb.append(",\"period_start\":");
        RateLineItem.instant(sb, invoice.periodStartMs);
        sb.append(",\"period_end\":");
        RateLineItem.instant(sb, invoice.periodEndMs);
        sb.append(",\"status\":\"").append(status).append("\",\"subtotals\":[");
        BigDecimal usage = BigDecimal.ZERO;
        BigDecimal late = BigDecimal.ZERO;
        BigDecimal correction = BigDecimal.ZERO;
        long lines = invoice.priorPeriodLines;
        boolean first = true;
        for (Map.Entry<SeriesKey, SeriesTotal> e : new TreeMap<>(invoice.series).entrySet()) {
            SeriesKey key = e.getKey();
            SeriesTotal s = e.getValue();
            usage = usage.add(s.usage);
            late = late.add(s.lateAdjustment);
            correction = correction.add(s.correction);
            lines += s.lineCount;
            sb.append(first ? "" : ",").append("{\"meter\":");
            first = false;
            CanonicalJson.appendString(sb, key.meter);
            sb.append(",\"group\":{");
            for (int i = 0; i < key.keys.length; i++) {
                if (i > 0) {
                    sb.append(',');
                }
                CanonicalJson.appendString(sb, key.keys[i]);
                sb.append(':');
                CanonicalJson.appendString(sb, key.values[i]);
            }
            sb.append("},\"quantity\":");
            RateLineItem.decimal(sb, s.quantity);
            sb.append(",\"usage_amount\":");
            RateLineItem.decimal(sb, s.usage);
            sb.append(",\"late_adjustment_amount\":");
            RateLineItem.decimal(sb, s.lateAdjustment);
            sb.append(",\"correction_amount\":");
            RateLineItem.decimal(sb, s.correction);
            sb.append(",\"amount\":");
            RateLineItem.decimal(sb, s.usage.add(s.lateAdjustment).add(s.correction));
            sb.append(",\"line_count\":").append(s.lineCount).append('}');
        }
        BigDecimal linesTotal = usage.add(late).add(correction).add(invoice.priorPeriodTotal);
        BigDecimal chargesTotal = BigDecimal.ZERO;  // flat fees and minimums: a later issue
        BigDecimal total = linesTotal.add(chargesTotal);
        sb.append("],\"usage_total\":");
        RateLineItem.decimal(sb, usage);
        sb.append(",\"late_adjustment_total\":");
        RateLineItem.decimal(sb, late);
        sb.append(",\"correction_total\":");
        RateLineItem.decimal(sb, correction);
        sb.append(",\"prior_period_adjustment_total\":");
        RateLineItem.decimal(sb, invoice.priorPeriodTotal);
        sb.append(",\"lines_total\":");
        RateLineItem.decimal(sb, linesTotal);
        sb.append(",\"charges\":[],\"charges_total\":");
        RateLineItem.decimal(sb, chargesTotal);
        sb.append(",\"total\":");
        RateLineItem.decimal(sb, total);
        sb.append(",\"credits_applied\":");
        RateLineItem.decimal(sb, invoice.creditsApplied);
        sb.append(",\"amount_due\":");
        RateLineItem.decimal(sb, total.subtract(invoice.creditsApplied));
        sb.append(",\"line_count\":").append(lines);
        sb.append(",\"closes_at\":");
        RateLineItem.instant(sb, invoice.closesAtMs);
        sb.append(",\"emitted_at\":");
        RateLineItem.instant(sb, emittedAtMs);
        return sb.append('}').toString();
    }

    // ---- reading the wire records -----------------------------------------------------------------------------

    /** The fields a line item needs, as bits; a line is read up to the last of them (its tiers and the rest after). */
    private static final int TENANT = 1, CUSTOMER = 2, METER = 4, GROUP = 8, PERIOD_START = 16, PERIOD_END = 32,
            PERIOD_QUANTITY = 64, AMOUNT = 128, CURRENCY = 256, KIND = 512, LINE = 1024;
    private static final int LINE_NEEDS = TENANT | CUSTOMER | METER | GROUP | PERIOD_START | PERIOD_END
            | PERIOD_QUANTITY | AMOUNT | CURRENCY;
    private static final int DRAWDOWN_NEEDS = TENANT | CUSTOMER | KIND | LINE | PERIOD_START | AMOUNT | CURRENCY;

    static Record parse(String json) {
        Record r = new Record();
        int seen = 0;
        try (JsonParser p = ParseUsageEvent.JSON.createParser(json)) {
            require(p.nextToken() == JsonToken.START_OBJECT, "not a JSON object: " + json);
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken t = p.nextToken();
                switch (name) {
                    case "drawdown_id":
                        r.drawdown = true;
                        break;
                    case "line_item_id":
                        seen |= LINE;
                        r.lineItemId = t == JsonToken.VALUE_NULL ? null : p.getText();
                        break;
                    case "kind":
                        seen |= KIND;
                        r.kind = p.getText();
                        break;
                    case "invoice_id":
                        r.invoiceId = t == JsonToken.VALUE_NULL ? null : p.getText();
                        break;
                    case "tenant_id":
                        seen |= TENANT;
                        r.tenantId = p.getText();
                        break;
                    case "customer_id":
                        seen |= CUSTOMER;
                        r.customerId = p.getText();
                        break;
                    case "meter":
                        seen |= METER;
                        r.meter = t == JsonToken.VALUE_NULL ? null : p.getText();
                        break;
                    case "group":
                        seen |= GROUP;
                        readGroup(p, r);
                        break;
                    case "period_start":
                        seen |= PERIOD_START;
                        if (t != JsonToken.VALUE_NULL) {
                            r.periodStartMs = instantMs(p.getText());
                            r.hasPeriodStart = true;
                        }
                        break;
                    case "period_end":
                        seen |= PERIOD_END;
                        r.periodEndMs = instantMs(p.getText());
                        break;
                    case "period_quantity_to_date":
                        seen |= PERIOD_QUANTITY;
                        r.periodQuantity = new BigDecimal(p.getText());
                        break;
                    case "amount":
                        seen |= AMOUNT;
                        r.amount = new BigDecimal(p.getText());
                        break;
                    case "currency":
                        seen |= CURRENCY;
                        r.currency = p.getText();
                        break;
                    default:
                        p.skipChildren();
                }
                int needs = r.drawdown ? DRAWDOWN_NEEDS : LINE_NEEDS;
                if ((seen & needs) == needs) {
                    break;  // the rest (tiers, rounding, counts, times) is not read
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("unreadable record: " + json, e);
        }
        if (r.kind == null) {
            r.kind = "usage";  // schemas.invoice_line_item: a line without a kind is a usage line
        }
        require(r.tenantId != null && r.customerId != null && r.currency != null && r.amount != null,
                "record without tenant_id, customer_id, currency or amount: " + json);
        return r;
    }

    /** Recently parsed period bounds, per thread: a customer's lines all carry the same two (parsing them was a fifth
     * of the stage's cost per line). */
    private static final ThreadLocal<Object[]> INSTANTS = ThreadLocal.withInitial(() -> new Object[16]);

    private static long instantMs(String text) {
        Object[] cache = INSTANTS.get();
        int slot = (text.hashCode() & 7) * 2;
        if (text.equals(cache[slot])) {
            return (Long) cache[slot + 1];
        }
        long ms = Instant.parse(text).toEpochMilli();
        cache[slot] = text;
        cache[slot + 1] = ms;
        return ms;
    }

    private static void readGroup(JsonParser p, Record r) throws IOException {
        TreeMap<String, String> pairs = new TreeMap<>(CanonicalJson::compareCodePoints);
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String key = p.currentName();
            p.nextToken();
            pairs.put(key, p.getText());
        }
        r.groupKeys = pairs.keySet().toArray(new String[0]);
        r.groupValues = pairs.values().toArray(new String[0]);
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    // ---- state ------------------------------------------------------------------------------------------------

    /** The state's bytes: a format version, then each open invoice with its series. */
    public void write(DataOutputView out) throws IOException {
        out.writeInt(FORMAT_VERSION);
        out.writeUTF(tenantId);
        out.writeUTF(customerId);
        out.writeInt(open.size());
        for (OpenInvoice invoice : open.values()) {
            out.writeUTF(invoice.invoiceId);
            out.writeUTF(invoice.currency);
            out.writeLong(invoice.periodStartMs);
            out.writeLong(invoice.periodEndMs);
            out.writeLong(invoice.closesAtMs);
            out.writeUTF(invoice.priorPeriodTotal.toString());
            out.writeLong(invoice.priorPeriodLines);
            out.writeUTF(invoice.creditsApplied.toString());
            out.writeInt(invoice.series.size());
            for (Map.Entry<SeriesKey, SeriesTotal> e : invoice.series.entrySet()) {
                SeriesKey key = e.getKey();
                SeriesTotal s = e.getValue();
                out.writeUTF(key.meter);
                out.writeInt(key.keys.length);
                for (int i = 0; i < key.keys.length; i++) {
                    out.writeUTF(key.keys[i]);
                    out.writeUTF(key.values[i]);
                }
                out.writeUTF(s.quantity.toString());
                out.writeUTF(s.usage.toString());
                out.writeUTF(s.lateAdjustment.toString());
                out.writeUTF(s.correction.toString());
                out.writeLong(s.lineCount);
            }
        }
    }

    public static CustomerInvoices read(DataInputView in) throws IOException {
        int version = in.readInt();
        if (version != FORMAT_VERSION) {
            throw new IOException("unknown invoice state format " + version);
        }
        CustomerInvoices state = new CustomerInvoices(in.readUTF(), in.readUTF());
        int invoices = in.readInt();
        for (int n = 0; n < invoices; n++) {
            OpenInvoice invoice = new OpenInvoice();
            invoice.invoiceId = in.readUTF();
            invoice.currency = in.readUTF();
            invoice.periodStartMs = in.readLong();
            invoice.periodEndMs = in.readLong();
            invoice.closesAtMs = in.readLong();
            invoice.priorPeriodTotal = new BigDecimal(in.readUTF());
            invoice.priorPeriodLines = in.readLong();
            invoice.creditsApplied = new BigDecimal(in.readUTF());
            int series = in.readInt();
            for (int i = 0; i < series; i++) {
                String meter = in.readUTF();
                int size = in.readInt();
                String[] keys = new String[size];
                String[] values = new String[size];
                for (int j = 0; j < size; j++) {
                    keys[j] = in.readUTF();
                    values[j] = in.readUTF();
                }
                SeriesTotal s = new SeriesTotal();
                s.quantity = new BigDecimal(in.readUTF());
                s.usage = new BigDecimal(in.readUTF());
                s.lateAdjustment = new BigDecimal(in.readUTF());
                s.correction = new BigDecimal(in.readUTF());
                s.lineCount = in.readLong();
                invoice.series.put(new SeriesKey(meter, keys, values), s);
            }
            state.open.put(invoice.invoiceId, invoice);
        }
        return state;
    }
}
