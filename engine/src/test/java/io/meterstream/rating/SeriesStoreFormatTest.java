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
 * {@link SeriesStore}'s format 4 keeps a pending record's correction code; format 3 (the same layout, pending
 * records without the code) is still read, its pending records as usage.
 */
class SeriesStoreFormatTest {
    private static final int MAX_PARALLELISM = 1;

    @Test
    void aPendingCorrectionSurvivesFormat4AndFormat3StillReadsAsUsage() throws Exception {
        byte[] format4 = written(WindowedUsage.REMOVE);
        Series restored = readBack(format4);
        assertEquals(WindowedUsage.REMOVE, restored.pending.get(0).correction);
        assertEquals(0, new BigDecimal("5").compareTo(restored.pending.get(0).value));

        // format 3: the version 3 and the one pending record (the block's last bytes) without its code
        byte[] usage4 = written(WindowedUsage.NOT_A_CORRECTION);
        byte[] format3 = Arrays.copyOf(usage4, usage4.length - 1);
        format3[3] = (byte) SeriesStore.FORMAT_VERSION_3;
        assertEquals(SeriesStore.FORMAT_VERSION, usage4[3]);
        Series old = readBack(format3);
        assertEquals(1, old.pending.size());
        assertEquals(WindowedUsage.NOT_A_CORRECTION, old.pending.get(0).correction);
        assertArrayEquals("e-1".getBytes(StandardCharsets.UTF_8), old.pending.get(0).eventId);
        assertEquals(7_000L, old.pending.get(0).floorMs);
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
