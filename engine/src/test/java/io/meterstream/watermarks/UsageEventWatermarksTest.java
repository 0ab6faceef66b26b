package io.meterstream.watermarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import io.meterstream.validation.UsageEventDeserializer;

import org.apache.flink.api.common.eventtime.TimestampAssigner;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.RowType;
import org.junit.jupiter.api.Test;

class UsageEventWatermarksTest {
    private static final RowType TYPE = UsageEventDeserializer.rowType();
    private static final long BOUND = 10_000;
    private static final long H = 1_795_500_000_000L - 1_795_500_000_000L % 3_600_000;  // a whole hour

    private final UsageEventWatermarks strategy = new UsageEventWatermarks(TYPE, BOUND, true, 5_000);
    private final TimestampAssigner<RowData> timestamps = strategy.createTimestampAssigner(null);
    private final WatermarkGenerator<RowData> generator = strategy.createWatermarkGenerator(null);
    private final Output output = new Output();

    private static RowData valid(String tenant, String customer, long eventTime, Long ingestion) {
        GenericRowData row = new GenericRowData(TYPE.getFieldCount());
        row.setField(TYPE.getFieldIndex("tenant_id"), StringData.fromString(tenant));
        row.setField(TYPE.getFieldIndex("customer_id"), StringData.fromString(customer));
        row.setField(TYPE.getFieldIndex("event_time_ms"), eventTime);
        row.setField(TYPE.getFieldIndex(UsageEventDeserializer.INGESTION_COLUMN), ingestion);
        return row;
    }

    private static RowData rejected(long eventTime, Long ingestion) {
        GenericRowData row = (GenericRowData) valid("acme-ai", "late-client", eventTime, ingestion);
        row.setField(TYPE.getFieldIndex("reason"), StringData.fromString("too_far_in_future"));
        return row;
    }

    /** The watermark in force before the record, then the record. */
    private long feed(RowData row) {
        long before = output.last;
        generator.onEvent(row, timestamps.extractTimestamp(row, Long.MIN_VALUE), output);
        return before;
    }

    private static boolean windowClosed(long eventTime, long watermark) {
        long end = eventTime - eventTime % 60_000 + 60_000;
        return end - 1 <= watermark;
    }

    @Test
    void anotherTenantsClockAheadMakesNoRecordLate() {
        // Issue 15's repro: acme-ai at H:58:00..H:58:50, bolt-ml at H+1:03, acme-ai at H:59:00..H:59:50.
        List<RowData> records = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            records.add(valid("acme-ai", "cust-1", H + 58 * 60_000 + i * 10_000, null));
        }
        records.add(valid("bolt-ml", "cust-9", H + 63 * 60_000, null));
        for (int i = 0; i < 6; i++) {
            records.add(valid("acme-ai", "cust-1", H + 59 * 60_000 + i * 10_000, null));
        }
        for (RowData row : records) {
            long eventTime = row.getLong(TYPE.getFieldIndex("event_time_ms"));
            assertTrue(!windowClosed(eventTime, feed(row)), "late: " + eventTime);
        }
        assertEquals(H + 59 * 60_000 + 50_000 - BOUND, output.last);
    }

    @Test
    void anotherCustomersClockAheadMakesNoRecordLate() {
        feed(valid("acme-ai", "cust-1", H, null));
        feed(valid("acme-ai", "cust-fast", H + 240_000, null));
        long before = feed(valid("acme-ai", "cust-1", H + 20_000, null));
        assertEquals(H - BOUND, before);
        assertEquals(H + 20_000 - BOUND, output.last);
    }

    @Test
    void rejectedRecordsGetTimestampZeroAndNeverMoveTheWatermark() {
        feed(valid("acme-ai", "cust-1", H, null));
        RowData reject = rejected(H + 3_600_000, null);
        assertEquals(0L, timestamps.extractTimestamp(reject, Long.MIN_VALUE));
        feed(reject);
        assertEquals(H - BOUND, output.last);
    }

    @Test
    void theWatermarkNeverGoesBackWhenASlowCustomerArrives() {
        feed(valid("acme-ai", "cust-1", H + 60_000, null));
        feed(valid("acme-ai", "cust-slow", H, null));  // holds the clock from now on, cannot pull it back
        assertEquals(H + 60_000 - BOUND, output.last);
        feed(valid("acme-ai", "cust-1", H + 120_000, null));
        assertEquals(H + 60_000 - BOUND, output.last);
        feed(valid("acme-ai", "cust-slow", H + 100_000, null));
        assertEquals(H + 100_000 - BOUND, output.last);
    }

    @Test
    void anIdleCustomerStopsHoldingTheWatermarkByIngestionTime() {
        long now = H + 3_600_000;
        feed(valid("acme-ai", "cust-slow", H, now));
        feed(valid("acme-ai", "cust-1", H + 30_000, now + 1_000));
        assertEquals(H - BOUND, output.last);
        feed(valid("acme-ai", "cust-1", H + 40_000, now + 5_000));  // slow is silent 5 s: still active
        assertEquals(H - BOUND, output.last);
        feed(valid("acme-ai", "cust-1", H + 50_000, now + 5_001));
        assertEquals(H + 50_000 - BOUND, output.last);
    }

    @Test
    void theWatermarkNeverPassesIngestionTime() {
        feed(valid("acme-ai", "cust-1", H + 240_000, H));  // a client clock 4 minutes ahead of the broker's
        assertEquals(H - BOUND, output.last);
    }

    @Test
    void periodicModeEmitsOnlyWhenAsked() {
        UsageEventWatermarks periodic = new UsageEventWatermarks(TYPE, BOUND, false, 5_000);
        WatermarkGenerator<RowData> gen = periodic.createWatermarkGenerator(null);
        Output out = new Output();
        gen.onPeriodicEmit(out);
        assertEquals(0, out.emitted);
        gen.onEvent(valid("acme-ai", "cust-1", H, null), H, out);
        assertEquals(0, out.emitted);
        gen.onPeriodicEmit(out);
        gen.onPeriodicEmit(out);
        assertEquals(2, out.emitted);  // repeated: that is what marks a split active again after idleness
        assertEquals(H - BOUND, out.last);
    }

    private static final class Output implements WatermarkOutput {
        long last = Long.MIN_VALUE;
        int emitted;

        @Override
        public void emitWatermark(Watermark watermark) {
            assertTrue(watermark.getTimestamp() >= last, "watermark went back");
            last = watermark.getTimestamp();
            emitted++;
        }

        @Override
        public void markIdle() {
        }

        @Override
        public void markActive() {
        }
    }
}
