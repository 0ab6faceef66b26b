package io.meterstream.corrections;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/**
 * {@link LedgerSlots} against a plain map: inserts, finds and deletions (backward shift, probe chains across the
 * table's end, growth and shrinking) in any order keep every key findable with what was stored, and values come
 * back exactly as billed (the scale too: a last key writes the value as billed).
 */
class LedgerSlotsTest {
    @Test
    void aRandomMixOfInsertsAndDeletesMatchesAMap() {
        SplittableRandom rng = new SplittableRandom(7);
        LedgerSlots slots = new LedgerSlots();
        Map<List<Long>, Long> model = new HashMap<>();
        List<List<Long>> keys = new ArrayList<>();
        for (int step = 0; step < 200_000; step++) {
            int op = rng.nextInt(10);
            if (op < 6 || keys.isEmpty()) {
                // few distinct lo values per hi and a small key space: collisions and long probe chains
                List<Long> key = List.of((long) rng.nextInt(50_000), (long) rng.nextInt(3));
                int slot = slots.insert(key.get(0), key.get(1));
                slots.setDeadLetter(slot, step, "too_old");
                if (model.put(key, (long) step) == null) {
                    keys.add(key);
                }
            } else if (op < 9) {
                List<Long> key = keys.get(rng.nextInt(keys.size()));
                int slot = slots.find(key.get(0), key.get(1));
                if (model.containsKey(key)) {
                    assertEquals((long) model.get(key), slots.firstSeen(slot));
                    slots.removeAt(slot);
                    model.remove(key);
                } else {
                    assertEquals(-1, slot);
                }
            } else {
                long cut = step - rng.nextInt(50_000);
                slots.removeIf(slot -> slots.firstSeen(slot) < cut);
                model.values().removeIf(firstSeen -> firstSeen < cut);
            }
            if (step % 20_000 == 0 || step == 199_999) {
                assertEquals(model.size(), slots.size());
                for (Map.Entry<List<Long>, Long> e : model.entrySet()) {
                    int slot = slots.find(e.getKey().get(0), e.getKey().get(1));
                    assertTrue(slot >= 0, e.getKey().toString());
                    assertEquals((long) e.getValue(), slots.firstSeen(slot));
                }
            }
        }
        assertTrue(slots.capacity() >= 16 && slots.size() * 4L <= slots.capacity() * 3L);
    }

    @Test
    void valuesComeBackAsBilledScaleIncluded() {
        LedgerSlots slots = new LedgerSlots();
        String[] values = {"5000.000000000000000000", "0E-18", "0", "-12.500", "123456789012345678901234.5",
                "1E+40", "0.000000000000000001", "99999999999999999999.999999999999999999"};
        for (int i = 0; i < values.length; i++) {
            int slot = slots.insert(i, i);
            BigDecimal value = new BigDecimal(values[i]);
            slots.setEvent(slot, 1L, new CorrectionLedger.Version("c", "m", 5L, value, "{}",
                    i % 2 == 0 ? null : "u" + i), LedgerSlots.CONTENTS_RETAINED);
        }
        int noValue = slots.insert(99, 99);
        slots.setEvent(noValue, 1L, new CorrectionLedger.Version("c", "m", 5L, null, "{}", "u"), (byte) 0);
        for (int i = 0; i < values.length; i++) {
            CorrectionLedger.Version v = slots.version(slots.find(i, i));
            assertEquals(new BigDecimal(values[i]), v.value, "value and scale as billed (equals compares both)");
            assertEquals(i % 2 == 0 ? null : "u" + i, v.uniqueValue);
            assertEquals("c", v.customerId);
        }
        CorrectionLedger.Version none = slots.version(slots.find(99, 99));
        assertEquals(null, none.value);
        assertEquals("u", none.uniqueValue);
        assertEquals(1, slots.seriesHeld(), "one series, interned once");
    }

    @Test
    void theSeriesDictionaryLosesWhatNoEventReferences() {
        LedgerSlots slots = new LedgerSlots();
        for (int i = 0; i < 5_000; i++) {
            slots.setEvent(slots.insert(i, 0), i, new CorrectionLedger.Version("c" + i, "m", 0L, BigDecimal.ONE,
                    "{}", null), (byte) 0);
        }
        slots.removeIf(slot -> slots.hi(slot) >= 100);
        slots.compactDictionary();
        assertEquals(100, slots.seriesHeld());
        for (int i = 0; i < 100; i++) {
            assertEquals("c" + i, slots.version(slots.find(i, 0)).customerId);
        }
    }
}
