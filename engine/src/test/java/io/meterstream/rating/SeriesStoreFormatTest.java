package io.meterstream.rating;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;

import io.meterstream.routing.WindowedUsage;

import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.junit.jupiter.api.Test;

/**
 * {@link SeriesStore}'s format 5 keeps a pending record's correction code and a max, min or last series' retained
 * window contents; format 4 (no contents: the last byte, whether there are any, absent) and format 3 (also pending
 * records without the code) are still read, the latter's pending records as usage.
 */
class SeriesStoreFormatTest {
    private static final int MAX_PARALLELISM = 1;

    @Test
    void aPendingCorrectionSurvivesAndFormats4And3StillRead() throws Exception {
        byte[] format5 = written(WindowedUsage.REMOVE);
        Series restored = readBack(format5);
        assertEquals(WindowedUsage.REMOVE, restored.pending.get(0).correction);
        assertEquals(0, new BigDecimal("5").compareTo(restored.pending.get(0).value));
        assertEquals(null, restored.contents);

        // format 4: the version 4, without the last byte (no contents flag)
        byte[] format4 = Arrays.copyOf(format5, format5.length - 1);
        format4[3] = (byte) SeriesStore.FORMAT_VERSION_4;
        assertEquals(WindowedUsage.REMOVE, readBack(format4).pending.get(0).correction);

        // format 3: the version 3 and the one pending record (the block's last bytes) without its code
        byte[] usage5 = written(WindowedUsage.NOT_A_CORRECTION);
        byte[] format3 = Arrays.copyOf(usage5, usage5.length - 2);
        format3[3] = (byte) SeriesStore.FORMAT_VERSION_3;
        assertEquals(SeriesStore.FORMAT_VERSION, usage5[3]);
        Series old = readBack(format3);
        assertEquals(1, old.pending.size());
        assertEquals(WindowedUsage.NOT_A_CORRECTION, old.pending.get(0).correction);
        assertArrayEquals("e-1".getBytes(StandardCharsets.UTF_8), old.pending.get(0).eventId);
        assertEquals(7_000L, old.pending.get(0).floorMs);
    }

    @Test
    void retainedContentsAndFrozenPartsRoundTrip() throws Exception {
        SeriesStore store = new SeriesStore(Long.MAX_VALUE / 4, 60_000);
        Series s = store.add(1L, 2L, new Series("acme-ai", "c1", "seats", "{}", "max"), 0L);
        s.contents = new java.util.TreeMap<>();
        WindowContents c = new WindowContents();
        c.frozenQuantity = new BigDecimal("9");
        c.addValue(new BigDecimal("5"));
        c.addValue(new BigDecimal("5"));
        c.addValue(new BigDecimal("12.5"));
        s.contents.put(60_000L, c);
        WindowContents last = new WindowContents();
        last.frozenKey = "k0";
        last.addKey("k1");
        s.contents.put(120_000L, last);
        s.frozenPeriodQuantities = new java.util.TreeMap<>(java.util.Map.of(0L, new BigDecimal("7")));
        s.frozenPeriodKeys = new java.util.TreeMap<>(java.util.Map.of(0L, "k"));
        int[][] slots = store.slotsByKeyGroup(new KeyGroupRange(0, 0), MAX_PARALLELISM, 0L);
        DataOutputSerializer out = new DataOutputSerializer(256);
        store.writeKeyGroup(slots[0], out);
        Series back = readBack(out.getCopyOfBuffer());
        assertEquals(s.contents.toString(), back.contents.toString());
        assertEquals(new BigDecimal("12.5"), back.contents.get(60_000L).quantity(WindowedUsage.MAX));
        assertEquals(2, back.contents.get(60_000L).values.get(new BigDecimal("5")));
        assertEquals("k1", back.contents.get(120_000L).lastKey());
        assertEquals(s.frozenPeriodQuantities, back.frozenPeriodQuantities);
        assertEquals(s.frozenPeriodKeys, back.frozenPeriodKeys);
    }

    private static byte[] written(byte correction) throws Exception {
        SeriesStore store = new SeriesStore(Long.MAX_VALUE / 4, 60_000);
        Series s = store.add(1L, 2L, new Series("acme-ai", "c1", "input_tokens", "{}", "sum"), 0L);
        WindowedUsage record = new WindowedUsage();
        record.seriesHi = 1L;
        record.seriesLo = 2L;
        record.tenantId = "acme-ai".getBytes(StandardCharsets.UTF_8);
        record.aggregation = WindowedUsage.SUM;
        record.eventTimeMs = 1_000L;
        record.eventId = "e-1".getBytes(StandardCharsets.UTF_8);
        record.value = new BigDecimal("5");
        record.floorMs = 7_000L;
        record.correction = correction;
        s.pending = new ArrayList<>();
        s.pending.add(record);
        int[][] slots = store.slotsByKeyGroup(new KeyGroupRange(0, 0), MAX_PARALLELISM, 0L);
        DataOutputSerializer out = new DataOutputSerializer(256);
        store.writeKeyGroup(slots[0], out);
        return out.getCopyOfBuffer();
    }

    private static Series readBack(byte[] block) throws Exception {
        SeriesStore store = new SeriesStore(Long.MAX_VALUE / 4, 60_000);
        DataInputDeserializer in = new DataInputDeserializer(block);
        store.readKeyGroup(in, 0);
        assertEquals(0, in.available(), "the whole block is read");
        return store.get(1L, 2L, 0L);
    }
}
