package io.meterstream.corrections;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

class CorrectionSourceTest {
    private static final class ListCollector implements Collector<Row> {
        final List<Row> rows = new ArrayList<>();

        @Override
        public void collect(Row record) {
            rows.add(record);
        }

        @Override
        public void close() {
        }
    }

    @Test
    void aRecordKeepsItsBytesAndCoordinates() throws Exception {
        byte[] invalidUtf8 = {'{', (byte) 0xff, '}'};
        ListCollector out = new ListCollector();
        RawCorrectionDeserializer deserializer = new RawCorrectionDeserializer();
        deserializer.deserialize(new ConsumerRecord<>("usage-corrections", 3, 41L, null, invalidUtf8), out);
        deserializer.deserialize(new ConsumerRecord<>("usage-corrections", 0, 7L, null, null), out);
        Row first = out.rows.get(0);
        assertArrayEquals(invalidUtf8, (byte[]) first.getField(0));
        assertEquals("usage-corrections", first.getField(1));
        assertEquals(3, first.getField(2));
        assertEquals(41L, first.getField(3));
        assertNull(out.rows.get(1).getField(0), "a tombstone has no payload");
        assertEquals(RawCorrectionDeserializer.rowType(), deserializer.getProducedType());
        assertEquals(List.of("payload", "src_topic", "src_partition", "src_offset"),
                List.of(RawCorrectionDeserializer.COLUMNS));
    }

    @Test
    void countsPassThroughRetyped() {
        CorrectionCounts counts = new CorrectionCounts(Types.ROW(Types.STRING, Types.STRING, Types.LONG));
        Row row = counts.map(Row.of("correction_rejected", "unknown_tenant", 2L));
        assertEquals(Row.of("correction_rejected", "unknown_tenant", 2L), row);
        assertEquals(Row.of("correction_accepted", "", 1L), counts.map(Row.of("correction_accepted", "", 1)));
        assertEquals(Types.ROW(Types.STRING, Types.STRING, Types.LONG), counts.getProducedType());
        assertThrows(IllegalArgumentException.class, () -> counts.map(Row.of("correction_accepted", null, 1L)));
        assertThrows(IllegalArgumentException.class, () -> counts.map(Row.of("x", "y")));
    }
}
