package io.meterstream.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * {@link DedupTable}'s memory, beyond the golden outcomes: expired entries stay in a table's bytes (counted by
 * {@link DedupTable#occupied}, not by {@link DedupTable#live}) until the table is rebuilt on growth, which keeps only
 * the live ones.
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
}
