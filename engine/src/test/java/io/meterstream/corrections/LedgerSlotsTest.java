package io.meterstream.corrections;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.apache.flink.core.memory.DataOutputSerializer;
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
    void aValueHandedOverStrippedComesBackAsBilledAndIsStoredAsTheBilledOneIs() {
        String[] values = {"5000.000000000000000000", "0E-18", "-12.500000000000000000", "1500.250000000000000000",
                "123456789012345678901234.500000000000000000", "0.000000000000000001",
                "99999999999999999999.999999999999999999", "-9223372036854775809.000000000000000000"};
        LedgerSlots stripped = new LedgerSlots();
        LedgerSlots asBilled = new LedgerSlots();
        int series = stripped.seriesIndex(1, 2, () -> new String[] {"c", "m", "{}"});
        int seriesAsBilled = asBilled.seriesIndex(1, 2, () -> new String[] {"c", "m", "{}"});
        for (int i = 0; i < values.length; i++) {
            BigDecimal billed = new BigDecimal(values[i]);
            BigDecimal compact = io.meterstream.rating.RateLineItem.compact(billed);
            stripped.setEvent(stripped.insert(i, i), 1L, series, 5L, compact, billed.scale(), null, (byte) 0);
            asBilled.setEvent(asBilled.insert(i, i), 1L, seriesAsBilled, 5L, billed, billed.scale(), null, (byte) 0);
        }
        // a value stripped to a negative scale (stripTrailingZeros' form) is taken too
        BigDecimal round = new BigDecimal("1500.000000000000000000");
        stripped.setEvent(stripped.insert(99, 99), 1L, series, 5L, round.stripTrailingZeros(), round.scale(), null,
                (byte) 0);
        assertEquals(round, stripped.version(stripped.find(99, 99)).value);
        for (int i = 0; i < values.length; i++) {
            BigDecimal back = stripped.version(stripped.find(i, i)).value;
            assertEquals(new BigDecimal(values[i]), back, "value and scale as billed (equals compares both)");
            assertEquals(asBilled.version(asBilled.find(i, i)).value, back);
            DataOutputSerializer a = new DataOutputSerializer(64);
            DataOutputSerializer b = new DataOutputSerializer(64);
            try {
                stripped.writeValue(stripped.find(i, i), a);
                asBilled.writeValue(asBilled.find(i, i), b);
            } catch (java.io.IOException e) {
                throw new AssertionError(e);
            }
            assertArrayEquals(b.getCopyOfBuffer(), a.getCopyOfBuffer(), "the same bytes in a snapshot: " + values[i]);
        }
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

    @Test
    void aSeriesNamedByItsHashIsDecodedOnceAndStoredAsByItsStrings() {
        LedgerSlots slots = new LedgerSlots();
        int[] decoded = new int[1];
        // 3,000 series, each met twice by hash (two tenants share strings: their hashes differ, their index not).
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < 3_000; i++) {
                String customer = "cust-" + (i / 2);
                int slot = slots.insert(round * 10_000L + i, 7);
                int series = slots.seriesIndex(i, -i, () -> {
                    decoded[0]++;
                    return new String[] {customer, "m", "{}"};
                });
                slots.setEvent(slot, 5L, series, 100L + i, BigDecimal.valueOf(i, 2), 2, null, (byte) 0);
            }
        }
        assertEquals(3_000, decoded[0], "each hash decoded once");
        assertEquals(1_500, slots.seriesHeld(), "the strings interned once");
        LedgerSlots byStrings = new LedgerSlots();
        for (int i = 0; i < 3_000; i++) {
            int slot = byStrings.insert(i, 7);
            byStrings.setEvent(slot, 5L, new CorrectionLedger.Version("cust-" + (i / 2), "m", 100L + i,
                    BigDecimal.valueOf(i, 2), "{}", null), (byte) 0);
            CorrectionLedger.Version a = slots.version(slots.find(i, 7));
            CorrectionLedger.Version b = byStrings.version(slot);
            assertEquals(b.customerId, a.customerId);
            assertEquals(b.meter, a.meter);
            assertEquals(b.groupJson, a.groupJson);
            assertEquals(b.eventTimeMs, a.eventTimeMs);
            assertEquals(b.value, a.value);
            assertEquals(slots.kindAndFlags(slots.find(i, 7)), byStrings.kindAndFlags(slot));
        }
        // A look at the dictionary right after: every series was met since the last one, so all stay.
        slots.compactDictionary();
        assertEquals(1_500, slots.seriesHeld(), "series met since the last look stay");
        // Compacting the dictionary keeps the series slots reference and those events met since the last look, with
        // their hashes (no decoding after a checkpoint), and forgets the others: a hash of a dropped series met
        // again is decoded again, correctly.
        slots.removeIf(slot -> slots.hi(slot) % 10_000 >= 100);
        for (long hash : new long[] {2_000, 2_001}) {  // cust-1000's series, met again; its slots are gone
            slots.seriesIndex(hash, -hash, () -> {
                throw new AssertionError("decoded a series met before");
            });
        }
        for (int i = 0; i < 1_500; i++) {  // the dictionary doubles with series no event meets by hash
            slots.setEvent(slots.insert(50_000 + i, 7), 5L, new CorrectionLedger.Version("other-" + i, "m", 0L,
                    BigDecimal.ONE, "{}", null), (byte) 0);
        }
        slots.removeIf(slot -> slots.hi(slot) >= 50_000);
        slots.compactDictionary();
        assertEquals(51, slots.seriesHeld(), "50 referenced by slots, one met since the last look");
        int metAgain = slots.seriesIndex(2_000, -2_000, () -> {
            throw new AssertionError("decoded a series kept because it was met");
        });
        assertEquals("cust-1000", slots.series(metAgain).customerId);
        int[] again = new int[1];
        int kept = slots.seriesIndex(7, -7, () -> {
            again[0]++;
            return new String[] {"cust-3", "m", "{}"};
        });
        assertEquals(0, again[0], "a kept series' hash stays cached, with its new index");
        assertEquals("cust-3", slots.series(kept).customerId);
        assertEquals("cust-3", slots.version(slots.find(7, 7)).customerId);
        int dropped = slots.seriesIndex(500, -500, () -> {
            again[0]++;
            return new String[] {"cust-250", "m", "{}"};
        });
        assertEquals(1, again[0], "a dropped series' hash went with the compaction");
        assertEquals(52, slots.seriesHeld(), "interned again");
        assertEquals("cust-250", slots.series(dropped).customerId);
        for (int i = 0; i < 100; i += 9) {
            int index = slots.seriesIndex(i, -i, () -> {
                throw new AssertionError("decoded a kept series");
            });
            assertEquals("cust-" + (i / 2), slots.series(index).customerId);
        }
    }

    @Test
    void theDictionaryIsCompactedOnlyOnceItHasDoubledSinceTheLastCompaction() {
        LedgerSlots slots = new LedgerSlots();
        long key = 0;
        for (int i = 0; i < 4_000; i++) {
            slots.setEvent(slots.insert(key++, 0), i, new CorrectionLedger.Version("c" + i, "m", 0L, BigDecimal.ONE,
                    "{}", null), (byte) 0);
        }
        slots.removeIf(slot -> slots.hi(slot) >= 1_000);
        slots.compactDictionary();
        assertEquals(1_000, slots.seriesHeld());
        // 900 more series, all unreferenced at once: 1,900 < 2 x 1,000, so no compaction yet.
        for (int i = 0; i < 900; i++) {
            slots.setEvent(slots.insert(key++, 0), i, new CorrectionLedger.Version("d" + i, "m", 0L, BigDecimal.ONE,
                    "{}", null), (byte) 0);
        }
        slots.removeIf(slot -> slots.hi(slot) >= 1_000);
        slots.compactDictionary();
        assertEquals(1_900, slots.seriesHeld(), "not doubled yet");
        for (int i = 0; i < 100; i++) {
            slots.setEvent(slots.insert(key++, 0), i, new CorrectionLedger.Version("e" + i, "m", 0L, BigDecimal.ONE,
                    "{}", null), (byte) 0);
        }
        slots.removeIf(slot -> slots.hi(slot) >= 1_000);
        slots.compactDictionary();
        assertEquals(1_000, slots.seriesHeld(), "doubled: compacted");
        for (int i = 0; i < 1_000; i++) {
            assertEquals("c" + i, slots.version(slots.find(i, 0)).customerId);
        }
    }

    @Test
    void theHashIndexMatchesAMap() {
        LedgerSlots.HashIndex index = new LedgerSlots.HashIndex();
        Map<List<Long>, Integer> expected = new HashMap<>();
        SplittableRandom random = new SplittableRandom(3);
        for (int i = 0; i < 50_000; i++) {
            long hi = random.nextLong(2_000);
            long lo = random.nextInt(3) == 0 ? hi : random.nextLong();
            int value = random.nextInt(1 << 20);
            index.put(hi, lo, value);
            expected.put(List.of(hi, lo), value);
        }
        for (Map.Entry<List<Long>, Integer> e : expected.entrySet()) {
            assertEquals((int) e.getValue(), index.get(e.getKey().get(0), e.getKey().get(1)));
        }
        assertEquals(-1, index.get(-5, 5));
    }
}
