package io.meterstream.watermarks;

import io.meterstream.routing.Columns;
import io.meterstream.routing.HashedKey;
import io.meterstream.validation.UsageEventDeserializer;

import org.apache.flink.api.common.eventtime.TimestampAssigner;
import org.apache.flink.api.common.eventtime.TimestampAssignerSupplier;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkGeneratorSupplier;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.RowType;

/**
 * Event time and watermarks of the parsed usage records (the columns of {@link UsageEventDeserializer#rowType()},
 * looked up by name), generated per Kafka partition by the source (and, in job tests, after the file source's
 * parse, {@code io.meterstream.validation.UsageFileLines}).
 *
 * <p>Timestamp: {@code event_time_ms} of a valid record, 0 (1970) for a rejected one.
 *
 * <p>Watermark: {@link CustomerClocks#clock()} minus the out-of-orderness bound (no "- 1 ms", like SQL's
 * {@code WATERMARK FOR rt AS rt - bound}), never going backwards. The clock is the lowest of the ACTIVE customers'
 * clocks (each the highest valid event time of one (tenant_id, customer_id) in this partition), capped at the
 * partition's highest ingestion time ({@code src_timestamp}, the Kafka record timestamp). So a customer whose clock
 * runs ahead (of real time or of the others) cannot make another customer's, or another tenant's, records late; a
 * slow or delayed customer only holds the watermark back (fewer late records, never more) until it has been silent
 * for the idle timeout in ingestion time. Rejected records have no customer and never move it. Everything it depends
 * on is in the records (event times, customers, record timestamps), in partition order: a replay decides as the live
 * run did.
 *
 * <p>Emitted periodically, or after every record ({@code onEveryEvent}: then the watermark before a record is a
 * function of the records before it in its partition). A partition without any records for the idle timeout (in
 * processing time) is declared idle by the caller ({@link WatermarkStrategy#withIdleness}), so it does not hold the
 * other partitions' windows back.
 */
public final class UsageEventWatermarks implements WatermarkStrategy<RowData> {
    private static final long serialVersionUID = 1L;

    private final int reasonIndex;
    private final int eventTimeIndex;
    private final int tenantIndex;
    private final int customerIndex;
    private final int ingestionIndex;
    private final long outOfOrdernessMs;
    private final boolean onEveryEvent;
    private final long idleTimeoutMs;
    private final int maxCustomers;

    /**
     * @param input            the parsed records' row type (columns reason, event_time_ms, tenant_id, customer_id,
     *                         src_timestamp: NULL when the record has no ingestion time)
     * @param outOfOrdernessMs the bound subtracted from the clock
     * @param onEveryEvent     emit after every record instead of periodically only
     * @param idleTimeoutMs    a customer silent this long (ingestion time) no longer holds the clock
     */
    public UsageEventWatermarks(RowType input, long outOfOrdernessMs, boolean onEveryEvent, long idleTimeoutMs) {
        this(input, outOfOrdernessMs, onEveryEvent, idleTimeoutMs, CustomerClocks.DEFAULT_MAX_CUSTOMERS);
    }

    UsageEventWatermarks(RowType input, long outOfOrdernessMs, boolean onEveryEvent, long idleTimeoutMs,
            int maxCustomers) {
        this.reasonIndex = Columns.indexOf(input, "reason");
        this.eventTimeIndex = Columns.indexOf(input, "event_time_ms");
        this.tenantIndex = Columns.indexOf(input, "tenant_id");
        this.customerIndex = Columns.indexOf(input, "customer_id");
        this.ingestionIndex = Columns.indexOf(input, UsageEventDeserializer.INGESTION_COLUMN);
        this.outOfOrdernessMs = outOfOrdernessMs;
        this.onEveryEvent = onEveryEvent;
        this.idleTimeoutMs = idleTimeoutMs;
        this.maxCustomers = maxCustomers;
    }

    @Override
    public TimestampAssigner<RowData> createTimestampAssigner(TimestampAssignerSupplier.Context context) {
        return (row, previous) -> row.isNullAt(reasonIndex) ? row.getLong(eventTimeIndex) : 0L;
    }

    @Override
    public WatermarkGenerator<RowData> createWatermarkGenerator(WatermarkGeneratorSupplier.Context context) {
        return new Generator();
    }

    /** One per partition (Kafka split); not thread-safe, like every generator. */
    final class Generator implements WatermarkGenerator<RowData> {
        private final CustomerClocks clocks = new CustomerClocks(idleTimeoutMs, maxCustomers);
        private final HashedKey customerKey = new HashedKey();
        private Watermark current;

        @Override
        public void onEvent(RowData row, long timestamp, WatermarkOutput output) {
            if (row.isNullAt(reasonIndex)) {
                long key = customerKey.reset().part(row.getString(tenantIndex)).part(row.getString(customerIndex))
                        .hash64();
                long ingestion = row.isNullAt(ingestionIndex) ? CustomerClocks.UNKNOWN : row.getLong(ingestionIndex);
                clocks.observe(key, timestamp, ingestion);
            }
            if (onEveryEvent) {
                onPeriodicEmit(output);
            }
        }

        @Override
        public void onPeriodicEmit(WatermarkOutput output) {
            long clock = clocks.clock();
            if (clock != CustomerClocks.UNKNOWN) {
                long mark = clock - outOfOrdernessMs;
                if (current == null || mark > current.getTimestamp()) {
                    current = new Watermark(mark);
                }
            }
            if (current != null) {
                // Also when unchanged: emitting is what marks a split active again after an idle spell.
                output.emitWatermark(current);
            }
        }

        /** For tests: the customers currently holding the clock. */
        CustomerClocks clocks() {
            return clocks;
        }
    }
}
