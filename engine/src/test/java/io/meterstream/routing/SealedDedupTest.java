package io.meterstream.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link SealedDedup} and its blocks ({@link DedupRuns}) against a plain map of the same ids: every sealed id is
 * found with its first copy's fingerprint and sighting until its horizon, none other is; a restore from the stored
 * blocks alone answers the same; expired runs leave the store; an id costs at most 24 bytes there.
 */
class SealedDedupTest {
    private static final long TTL = 60_000;

    private record Id(long hi, long lo, long fingerprint, long firstSeen) {
    }

    @Test
    void everySealedIdIsFoundExactlyUntilItsHorizonAndNoOther() throws Exception {
        Random random = new Random(18);
        SealedDedup.InMemoryBlocks store = new SealedDedup.InMemoryBlocks();
        SealedDedup sealed = new SealedDedup();
        List<Id> ids = new ArrayList<>();
        long now = 1_000_000;
        for (int run = 0; run < 40; run++) {
            DedupRuns.Entries entries = new DedupRuns.Entries();
            int n = random.nextInt(3) == 0 ? random.nextInt(3) : random.nextInt(2_000);
            for (int i = 0; i < n; i++) {
                Id id = new Id(random.nextLong(), random.nextLong(), random.nextLong(), now + random.nextInt(1_000));
                ids.add(id);
                entries.add(id.hi, id.lo, id.fingerprint, id.firstSeen);
            }
            sealed.seal(entries, store);
            now += 1_000;
        }
        // ids sharing the index fingerprint of a sealed one (40 bits of the key's low half) but another key
        DedupRuns.Entries twins = new DedupRuns.Entries();
        for (int i = 0; i < 50; i++) {
            Id id = ids.get(random.nextInt(ids.size()));
            Id twin = new Id(id.hi ^ 1, id.lo, random.nextLong(), now);
            ids.add(twin);
            twins.add(twin.hi, twin.lo, twin.fingerprint, twin.firstSeen);
        }
        sealed.seal(twins, store);
        assertEquals(ids.size(), sealed.ids());
        assertTrue(store.bytes() <= 24L * ids.size(), store.bytes() + " bytes for " + ids.size() + " ids");
        for (long at : new long[] {now, now + 20_000, now + 45_000, 1_000_000 + TTL + 500}) {
            check(sealed, store, ids, at, random);
            SealedDedup restored = new SealedDedup();
            store.blocks.forEach(restored::restoreBlock);
            check(restored, store, ids, at, random);
        }
    }

    private static void check(SealedDedup sealed, SealedDedup.InMemoryBlocks store, List<Id> ids, long now, Random random)
            throws Exception {
        SealedDedup.Found found = new SealedDedup.Found();
        for (Id id : ids) {
            boolean live = !DedupTable.expired(id.firstSeen, now, TTL);
            assertEquals(live, sealed.lookup(id.hi, id.lo, now, TTL, store, found), id + " at " + now);
            if (live) {
                assertEquals((int) (id.fingerprint >>> 32), found.fingerprint32);
                assertEquals(id.firstSeen, found.firstSeenMs);
            }
        }
        long readsBefore = store.reads;
        for (int i = 0; i < 10_000; i++) {
            assertFalse(sealed.lookup(random.nextLong(), random.nextLong(), now, TTL, store, found));
        }
        assertTrue(store.reads - readsBefore < 5, "ids never sealed read no block: " + (store.reads - readsBefore));
    }

    @Test
    void expiredRunsLeaveTheStoreAndTheIndexAndLiveOnesStay() throws Exception {
        SealedDedup.InMemoryBlocks store = new SealedDedup.InMemoryBlocks();
        SealedDedup sealed = new SealedDedup();
        Random random = new Random(7);
        List<Id> late = new ArrayList<>();
        for (int run = 0; run < 10; run++) {
            DedupRuns.Entries entries = new DedupRuns.Entries();
            for (int i = 0; i < 500; i++) {
                Id id = new Id(random.nextLong(), random.nextLong(), random.nextLong(), run * 10_000L);
                entries.add(id.hi, id.lo, id.fingerprint, id.firstSeen);
                if (run == 9) {
                    late.add(id);
                }
            }
            sealed.seal(entries, store);
        }
        long indexBefore = sealed.indexBytes();
        // at 85 s the runs of 0..20 s have expired: 3 of 10 runs, over an eighth of the ids: dropped
        assertEquals(1_500, sealed.expire(85_000, TTL, store));
        assertEquals(7, sealed.runs());
        assertEquals(3_500, sealed.ids());
        assertEquals(7 * ((500 + DedupRuns.BLOCK_RECORDS - 1) / DedupRuns.BLOCK_RECORDS), store.blocks.size());
        assertTrue(sealed.indexBytes() <= indexBefore);
        // one more expired run beside a large live one is not worth a rebuild yet: it stays, and answers no more
        DedupRuns.Entries big = new DedupRuns.Entries();
        for (int i = 0; i < 5_000; i++) {
            big.add(random.nextLong(), random.nextLong(), 0, 90_000);
        }
        sealed.seal(big, store);
        assertEquals(0, sealed.expire(95_000, TTL, store));
        assertEquals(8, sealed.runs());
        SealedDedup.Found found = new SealedDedup.Found();
        for (Id id : late) {
            assertTrue(sealed.lookup(id.hi, id.lo, 95_000, TTL, store, found));
        }
        // all expired: all dropped, whatever their share
        assertEquals(8_500, sealed.expire(1_000_000, TTL, store));
        assertEquals(0, store.blocks.size());
        assertEquals(0, sealed.runs());
    }

    @Test
    void firstSightingsSpanningMoreThanARunHoldMakeSeveralRunsAndKeepTheirTimes() throws Exception {
        DedupRuns.Entries entries = new DedupRuns.Entries();
        long[] times = {0, DedupRuns.MAX_SPAN_MS, DedupRuns.MAX_SPAN_MS + 1, 3 * DedupRuns.MAX_SPAN_MS + 5};
        for (int i = 0; i < times.length; i++) {
            entries.add(i, -i, i * 31L << 32, times[i]);
        }
        assertEquals(3, DedupRuns.seal(entries).size());
        SealedDedup.InMemoryBlocks store = new SealedDedup.InMemoryBlocks();
        SealedDedup sealed = new SealedDedup();
        sealed.seal(entries, store);
        SealedDedup.Found found = new SealedDedup.Found();
        for (int i = 0; i < times.length; i++) {
            assertTrue(sealed.lookup(i, -i, times[i], Long.MAX_VALUE / 4, store, found));
            assertEquals(times[i], found.firstSeenMs);
            assertEquals(i * 31, found.fingerprint32);
        }
    }

    @Test
    void keysSortUnsignedInsideABlock() {
        DedupRuns.Entries entries = new DedupRuns.Entries();
        entries.add(-1L, 5, 0, 10);
        entries.add(1L, -1L, 0, 10);
        entries.add(1L, 2L, 0, 10);
        entries.add(Long.MIN_VALUE, 0, 0, 10);
        byte[] block = DedupRuns.seal(entries).get(0).get(0);
        assertEquals(1L, DedupRuns.keyHi(block, 0));
        assertEquals(2L, DedupRuns.keyLo(block, 0));
        assertEquals(-1L, DedupRuns.keyLo(block, 1));
        assertEquals(Long.MIN_VALUE, DedupRuns.keyHi(block, 2));
        assertEquals(-1L, DedupRuns.keyHi(block, 3));
        assertEquals(3, DedupRuns.find(block, -1L, 5));
        assertEquals(-1, DedupRuns.find(block, -1L, 6));
    }
}
