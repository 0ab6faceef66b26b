package io.meterstream.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * {@link DedupTable}'s memory, beyond the golden outcomes: expired entries stay in a table's bytes (counted by
 * {@link DedupTable#occupied}, not by {@link DedupTable#live}) until the table is rebuilt on growth, which keeps only
 * the live ones. A checkpoint writes only the live entries ({@link DedupTable#packLive}), and a restore rebuilds a
 * table from them ({@link DedupTable#unpacked}).
 */
class DedupTableTest {
    private static final long TTL = 1_000L;

    @Test
    void aRebuildOnGrowthDropsTheExpiredEntries() {
        DedupTable.Lookup lookup = new DedupTable.Lookup();
        for (long k = 1; k <= 6; k++) {  // 6 of 8 slots: the load limit
            DedupTable.recordFirst(lookup, k, k * 0x9E3779B97F4A7C15L, k, 10, TTL);
            assertFalse(lookup.seenBefore);
        }
        assertEquals(8, lookup.slots());
        assertEquals(6, DedupTable.live(lookup.table, 10 + TTL - 1, TTL));
        assertEquals(0, DedupTable.live(lookup.table, 10 + TTL, TTL));
        assertEquals(6, lookup.occupied(), "expired entries stay until a rebuild");

        DedupTable.recordFirst(lookup, 7, 7 * 0x9E3779B97F4A7C15L, 7, 10 + TTL, TTL);  // the 7th entry: rebuilt
        assertFalse(lookup.seenBefore);
        assertEquals(1, lookup.occupied(), "only the live entry is kept");
        assertEquals(1, DedupTable.live(lookup.table, 10 + TTL, TTL));
        DedupTable.recordFirst(lookup, 1, 0x9E3779B97F4A7C15L, 99, 10 + TTL, TTL);
        assertFalse(lookup.seenBefore, "an expired key is new again");
        DedupTable.recordFirst(lookup, 1, 0x9E3779B97F4A7C15L, 5, 10 + TTL + 1, TTL);
        assertTrue(lookup.seenBefore);
        assertEquals(99, lookup.firstFingerprint);
    }

    @Test
    void aPackHoldsOnlyTheLiveEntriesAndUnpacksIntoATableThatFindsEachOfThem() {
        DedupTable.Lookup lookup = new DedupTable.Lookup();
        for (long k = 1; k <= 20; k++) {  // 1..10 first seen at 10, 11..20 at 500
            DedupTable.recordFirst(lookup, k, k * 0x9E3779B97F4A7C15L, 100 + k, k <= 10 ? 10 : 500, TTL);
        }
        long now = 10 + TTL;  // the first ten have expired
        byte[] packed = new byte[lookup.table.length];
        assertEquals(10, DedupTable.packLive(lookup.table, now, TTL, packed));
        assertEquals(0, DedupTable.packLive(lookup.table, 500 + TTL, TTL, packed), "all expired: nothing to write");

        DedupTable.Lookup restored = new DedupTable.Lookup();
        restored.table = DedupTable.unpacked(packed, DedupTable.packLive(lookup.table, now, TTL, packed));
        assertEquals(10, restored.occupied());
        assertEquals(10, DedupTable.live(restored.table, now, TTL));
        assertTrue(restored.occupied() * 4 < restored.slots() * 3, "room for one more without a rebuild");
        for (long k = 11; k <= 20; k++) {
            DedupTable.recordFirst(restored, k, k * 0x9E3779B97F4A7C15L, 0, now, TTL);
            assertTrue(restored.seenBefore, "live entry " + k);
            assertEquals(100 + k, restored.firstFingerprint);
        }
        DedupTable.recordFirst(restored, 3, 3 * 0x9E3779B97F4A7C15L, 7, now, TTL);
        assertFalse(restored.seenBefore, "an expired entry was not packed");
    }
}
