package io.meterstream.watermarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;

class CustomerClocksTest {
    private static final long U = CustomerClocks.UNKNOWN;

    @Test
    void emptyHasNoClock() {
        assertEquals(U, new CustomerClocks(5_000, 10).clock());
    }

    @Test
    void aFastCustomerDoesNotMoveTheClockPastTheOthers() {
        CustomerClocks clocks = new CustomerClocks(5_000, 100);
        clocks.observe(1, 58_000, U);
        clocks.observe(1, 58_050, U);
        clocks.observe(2, 63_000, U);  // a clock minutes ahead
        assertEquals(58_050, clocks.clock());
        clocks.observe(1, 59_000, U);
        assertEquals(59_000, clocks.clock());
        clocks.observe(1, 70_000, U);  // now customer 1 is ahead: 2 holds the clock
        assertEquals(63_000, clocks.clock());
        assertEquals(2, clocks.size());
    }

    @Test
    void anOlderRecordDoesNotTurnACustomersClockBack() {
        CustomerClocks clocks = new CustomerClocks(5_000, 100);
        clocks.observe(7, 10_000, U);
        clocks.observe(7, 4_000, U);
        assertEquals(10_000, clocks.clock());
    }

    @Test
    void theClockNeverPassesTheHighestIngestionTime() {
        CustomerClocks clocks = new CustomerClocks(5_000, 100);
        clocks.observe(1, 1_000_000, 500_000);  // event time ahead of the broker's clock
        assertEquals(500_000, clocks.clock());
        clocks.observe(1, 1_000_001, 600_000);
        assertEquals(600_000, clocks.clock());
        clocks.observe(1, 550_000, 700_000);
        assertEquals(700_000, clocks.clock());
    }

    @Test
    void aSilentCustomerStopsHoldingTheClockAfterTheIdleTimeoutInIngestionTime() {
        CustomerClocks clocks = new CustomerClocks(5_000, 100);
        clocks.observe(1, 100_000, 1_000_000);  // slow customer
        clocks.observe(2, 200_000, 1_000_000);
        clocks.observe(2, 201_000, 1_005_000);  // 1 silent exactly the timeout: still active
        assertEquals(100_000, clocks.clock());
        assertEquals(2, clocks.size());
        clocks.observe(2, 202_000, 1_005_001);  // now longer than the timeout
        assertEquals(1, clocks.size());
        assertEquals(1, clocks.idleRemoved());
        assertEquals(202_000, clocks.clock());
        clocks.observe(1, 150_000, 1_005_002);  // it comes back: holds the clock again, from its new time
        assertEquals(150_000, clocks.clock());
    }

    @Test
    void withoutIngestionTimesNoCustomerIsIdleAndNothingCapsTheClock() {
        CustomerClocks clocks = new CustomerClocks(0, 100);
        clocks.observe(1, 100, U);
        for (int i = 0; i < 50; i++) {
            clocks.observe(2 + i, 1_000_000 + i, U);
        }
        assertEquals(51, clocks.size());
        assertEquals(100, clocks.clock());
    }

    @Test
    void pastTheLimitTheCustomerSilentLongestStopsHoldingTheClock() {
        CustomerClocks clocks = new CustomerClocks(5_000, 3);
        clocks.observe(1, 10, U);
        clocks.observe(2, 20, U);
        clocks.observe(3, 30, U);
        clocks.observe(1, 11, U);  // 2 is now the least recent
        clocks.observe(4, 40, U);
        assertEquals(3, clocks.size());
        assertEquals(1, clocks.overflowRemoved());
        assertEquals(11, clocks.clock());
        clocks.observe(3, 31, U);
        clocks.observe(4, 41, U);
        clocks.observe(5, 50, U);  // 1 goes
        assertEquals(31, clocks.clock());
    }

    /** Random streams against a plain model (maps and a list in arrival order, rescanned each time). */
    @Test
    void matchesAPlainModelOnRandomStreams() {
        Random random = new Random(20261206L);
        for (int run = 0; run < 200; run++) {
            long idle = random.nextInt(3) == 0 ? 0 : random.nextInt(50);
            int max = 1 + random.nextInt(run % 4 == 0 ? 5 : 400);
            int customers = 1 + random.nextInt(run % 3 == 0 ? 8 : 2_000);
            boolean withIngestion = random.nextInt(5) != 0;
            boolean backwards = random.nextInt(4) == 0;  // record timestamps that sometimes go back
            CustomerClocks clocks = new CustomerClocks(idle, max);
            Model model = new Model(idle, max);
            long ingestion = 1_000;
            for (int i = 0; i < 3_000; i++) {
                long key = random.nextInt(customers) * 0x9E3779B97F4A7C15L;  // also keys sharing their low bits
                if (random.nextInt(10) == 0) {
                    key = random.nextInt(customers);
                }
                long eventTime = 50_000 + i * 3L - random.nextInt(400) + (random.nextInt(50) == 0 ? 5_000 : 0);
                ingestion += random.nextInt(4) == 0 ? random.nextInt(30) : 0;
                long at = withIngestion ? (backwards ? ingestion - random.nextInt(20) : ingestion) : U;
                clocks.observe(key, eventTime, at);
                model.observe(key, eventTime, at);
                if (random.nextInt(3) == 0 || i == 2_999) {
                    assertEquals(model.clock(), clocks.clock(), "run " + run + " record " + i);
                    assertEquals(model.order.size(), clocks.size(), "run " + run + " record " + i);
                }
            }
        }
    }

    @Test
    void growsAndShrinksThroughManyCustomers() {
        CustomerClocks clocks = new CustomerClocks(10, 1 << 20);
        Model model = new Model(10, 1 << 20);
        long ingestion = 0;
        for (int round = 0; round < 5; round++) {
            for (int c = 0; c < 20_000; c++) {
                long key = ((long) round << 40) + c * 0x2545F4914F6CDD1DL;
                clocks.observe(key, 1_000_000 + round * 100_000 + (c % 977), ingestion);
                model.observe(key, 1_000_000 + round * 100_000 + (c % 977), ingestion);
            }
            assertEquals(model.clock(), clocks.clock());
            ingestion += 1_000;  // every customer of this round goes idle in the next
        }
        assertEquals(model.order.size(), clocks.size());
        assertTrue(clocks.idleRemoved() >= 4 * 20_000);
    }

    /** The rule, spelled out with plain collections. */
    private static final class Model {
        final long idle;
        final int max;
        final Map<Long, long[]> state = new HashMap<>();  // key -> {clock, ingested}
        final LinkedHashSet<Long> order = new LinkedHashSet<>();  // least recent first
        long maxIngested = U;

        Model(long idle, int max) {
            this.idle = idle;
            this.max = max;
        }

        void observe(long key, long eventTime, long ingestion) {
            maxIngested = Math.max(maxIngested, ingestion);
            long[] s = state.get(key);
            if (s == null) {
                state.put(key, new long[] {eventTime, ingestion});
            } else {
                s[0] = Math.max(s[0], eventTime);
                s[1] = Math.max(s[1], ingestion);
                order.remove(key);
            }
            order.add(key);
            if (maxIngested != U) {
                while (!order.isEmpty() && state.get(order.iterator().next())[1] < maxIngested - idle) {
                    dropFirst();
                }
            }
            while (order.size() > max) {
                dropFirst();
            }
        }

        void dropFirst() {
            Long first = order.iterator().next();
            order.remove(first);
            state.remove(first);
        }

        long clock() {
            long min = Long.MAX_VALUE;
            for (long[] s : state.values()) {
                min = Math.min(min, s[0]);
            }
            if (maxIngested != U && maxIngested < min) {
                return maxIngested;
            }
            return min == Long.MAX_VALUE ? U : min;
        }
    }
}
