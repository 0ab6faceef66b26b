package io.meterstream.watermarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;

import io.meterstream.validation.UsageEventDeserializer;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.RowType;
import org.junit.jupiter.api.Test;

/**
 * The generator against the Python specification ({@code udfs/watermarks.py}): the golden vectors it writes
 * ({@code python -m udfs.watermarks --write}; pytest checks they are current) give the watermark after every record
 * of scripted and random streams; this replays them through {@link UsageEventWatermarks}, a watermark after every
 * record.
 */
class WatermarksGoldenTest {
    private static final RowType TYPE = UsageEventDeserializer.rowType();

    @Test
    void everyWatermarkEqualsThePythonRule() throws Exception {
        JsonNode golden;
        try (InputStream in = WatermarksGoldenTest.class.getResourceAsStream("/watermarks-golden.json")) {
            assertNotNull(in, "watermarks-golden.json: run python -m udfs.watermarks --write");
            golden = new ObjectMapper().readTree(in);
        }
        long bound = golden.get("out_of_orderness_ms").asLong();
        long idle = golden.get("idle_timeout_ms").asLong();
        int streams = 0;
        int records = 0;
        for (JsonNode stream : golden.get("streams")) {
            WatermarkGenerator<RowData> generator =
                    new UsageEventWatermarks(TYPE, bound, true, idle).createWatermarkGenerator(null);
            Last output = new Last();
            JsonNode marks = stream.get("watermarks");
            int i = 0;
            for (JsonNode record : stream.get("records")) {
                GenericRowData row = new GenericRowData(TYPE.getFieldCount());
                row.setField(TYPE.getFieldIndex("tenant_id"), StringData.fromString(record.get(0).asText()));
                row.setField(TYPE.getFieldIndex("customer_id"), StringData.fromString(record.get(1).asText()));
                row.setField(TYPE.getFieldIndex("event_time_ms"), record.get(2).asLong());
                row.setField(TYPE.getFieldIndex(UsageEventDeserializer.INGESTION_COLUMN),
                        record.get(3).isNull() ? null : record.get(3).asLong());
                boolean valid = record.get(4).asBoolean();
                if (!valid) {
                    row.setField(TYPE.getFieldIndex("reason"), StringData.fromString("invalid_value"));
                }
                generator.onEvent(row, valid ? record.get(2).asLong() : 0L, output);
                JsonNode expected = marks.get(i);
                String where = stream.get("name").asText() + " record " + i;
                if (expected.isNull()) {
                    assertEquals(null, output.last, where);
                } else {
                    assertEquals(Long.valueOf(expected.asLong()), output.last, where);
                }
                i++;
                records++;
            }
            streams++;
        }
        assertTrue(streams >= 10 && records >= 1_000, "golden vectors too small: " + streams + "/" + records);
    }

    private static final class Last implements WatermarkOutput {
        Long last;

        @Override
        public void emitWatermark(Watermark watermark) {
            last = watermark.getTimestamp();
        }

        @Override
        public void markIdle() {
        }

        @Override
        public void markActive() {
        }
    }
}
