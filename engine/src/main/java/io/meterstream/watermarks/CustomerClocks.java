package io.meterstream.watermarks;

import java.util.Arrays;

/**
 * The event-time clocks of the customers of one Kafka partition, for {@link UsageEventWatermarks}: per customer
 * (a 64-bit hash of (tenant_id, customer_id)) the highest valid event time seen and the highest ingestion time (the
 * Kafka record timestamp) of its records. {@link #clock()} is the minimum over the ACTIVE customers' clocks, capped
 * at the partition's highest ingestion time: one customer's clock running ahead cannot move it past the others',
 * and no clock can move it past the present as the broker (or producer) saw it.
 *
 * <p>Active: a customer stops holding the clock back once its last record is more than the idle timeout older, in
 * ingestion time, than the partition's newest valid record. Ingestion time is part of the data, so a replay decides
 * exactly as the live run did. Records without an ingestion time ({@link #UNKNOWN}: a file source, a record without
 * a timestamp) make no one idle and set no cap. Idle customers are forgotten; one that comes back starts afresh (its
 * records are then judged by the clock of those that were active meanwhile).
 *
 * <p>Cost per record: one probe of an open-addressing table of primitive keys, an O(1) move to the tail of a list
 * ordered by arrival, a write of the clock; no allocation. The minimum is a binary min-heap whose keys may lag their
 * customer's clock (clocks only grow, so a lagging key is a lower bound): {@link #clock()} refreshes the root until
 * its key is current, so each clock increase costs at most one sift-down, and only when it is asked for. Idle
 * customers are found at the head of the arrival list (O(1) each; with ingestion times that go backwards within a
 * partition a customer may leave later than its timeout, never earlier) and removed from the heap in O(log n).
 *
 * <p>Memory: 48 bytes per tracked customer in parallel arrays (key, clock, ingestion time: 3 longs; list links and
 * heap position: 3 ints; heap slot: an int and a long) plus 8 to 16 bytes of hash table, arrays doubled on growth
 * and kept at their peak: about 56 bytes per customer active within the idle timeout, at most twice that. At most
 * {@link #DEFAULT_MAX_CUSTOMERS} per partition (about 60 MB); beyond that the customer silent longest (by arrival)
 * stops holding the clock, as if idle. Two customers whose 64-bit hashes collide (probability about n^2 / 2^65)
 * share one clock.
 */
final class CustomerClocks {
    /** No ingestion time known (also: no clock). */
    static final long UNKNOWN = Long.MIN_VALUE;
    /** 2^20 customers active within the idle timeout in one partition. */
    static final int DEFAULT_MAX_CUSTOMERS = 1 << 20;
    private static final int NONE = -1;

    private final long idleTimeoutMs;
    private final int maxCustomers;

    // Entries, by id: parallel arrays; free ids are chained through next[].
    private long[] keys = new long[16];
    private long[] clocks = new long[16];
    private long[] ingested = new long[16];
    private int[] prev = new int[16];
    private int[] next = new int[16];
    private int[] heapIndex = new int[16];
    private int allocated;  // ids below this have been used
    private int free = NONE;
    private int size;
    // Arrival order (least recent first).
    private int head = NONE;
    private int tail = NONE;
    // The min-heap over entries: heapKeys[i] <= clocks[heap[i]], heap-ordered on heapKeys.
    private int[] heap = new int[16];
    private long[] heapKeys = new long[16];
    // Open addressing, linear probing: entry id or NONE; at most half full.
    private int[] slots = newSlots(32);
    private int mask = 31;

    private long maxIngested = UNKNOWN;
    private long idleRemoved;
    private long overflowRemoved;

    CustomerClocks(long idleTimeoutMs, int maxCustomers) {
        if (idleTimeoutMs < 0 || maxCustomers < 1) {
            throw new IllegalArgumentException("idle timeout >= 0 and max customers >= 1 expected");
        }
        this.idleTimeoutMs = idleTimeoutMs;
        this.maxCustomers = maxCustomers;
    }

    /** A valid record of customer {@code key}: its event time and ingestion time ({@link #UNKNOWN} if none). */
    void observe(long key, long eventTime, long ingestion) {
        if (ingestion > maxIngested) {
            maxIngested = ingestion;
        }
        int e = find(key);
        if (e == NONE) {
            e = add(key, eventTime, ingestion);
        } else {
            if (eventTime > clocks[e]) {
                clocks[e] = eventTime;  // the heap key lags; clock() catches it up
            }
            if (ingestion > ingested[e]) {
                ingested[e] = ingestion;
            }
            moveToTail(e);
        }
        if (maxIngested != UNKNOWN) {
            long idleBefore = maxIngested - idleTimeoutMs;
            while (head != NONE && ingested[head] < idleBefore) {
                remove(head);
                idleRemoved++;
            }
        }
        while (size > maxCustomers) {
            remove(head);  // never the customer just seen: it is the tail, and size >= 2 here
            overflowRemoved++;
        }
    }

    /**
     * The partition's clock: the lowest clock of the active customers, at most the highest ingestion time;
     * {@link #UNKNOWN} before the first valid record.
     */
    long clock() {
        long min = size == 0 ? Long.MAX_VALUE : rootClock();
        if (maxIngested != UNKNOWN && maxIngested < min) {
            return maxIngested;
        }
        return min == Long.MAX_VALUE ? UNKNOWN : min;
    }

    /** Customers tracked (active). */
    int size() {
        return size;
    }

    long idleRemoved() {
        return idleRemoved;
    }

    long overflowRemoved() {
        return overflowRemoved;
    }

    long maxIngested() {
        return maxIngested;
    }

    private long rootClock() {
        while (true) {
            int root = heap[0];
            long current = clocks[root];
            if (heapKeys[0] == current) {
                return current;
            }
            heapKeys[0] = current;
            siftDown(0);
        }
    }

    // ---- table ----

    private static int[] newSlots(int n) {
        int[] s = new int[n];
        Arrays.fill(s, NONE);
        return s;
    }

    private static int home(long key, int mask) {
        return (int) (key ^ (key >>> 32)) & mask;
    }

    private int find(long key) {
        int i = home(key, mask);
        while (true) {
            int e = slots[i];
            if (e == NONE || keys[e] == key) {
                return e;
            }
            i = (i + 1) & mask;
        }
    }

    private void insertSlot(int e) {
        int i = home(keys[e], mask);
        while (slots[i] != NONE) {
            i = (i + 1) & mask;
        }
        slots[i] = e;
    }

    /** Backward-shift deletion: no tombstones, probe chains stay short. */
    private void removeSlot(long key) {
        int i = home(key, mask);
        while (keys[slots[i]] != key) {
            i = (i + 1) & mask;
        }
        int j = i;
        while (true) {
            j = (j + 1) & mask;
            int e = slots[j];
            if (e == NONE) {
                break;
            }
            int h = home(keys[e], mask);
            boolean stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
            if (!stays) {
                slots[i] = e;
                i = j;
            }
        }
        slots[i] = NONE;
    }

    // ---- entries ----

    private int add(long key, long eventTime, long ingestion) {
        int e;
        if (free != NONE) {
            e = free;
            free = next[e];
        } else {
            if (allocated == keys.length) {
                growEntries();
            }
            e = allocated++;
        }
        keys[e] = key;
        clocks[e] = eventTime;
        ingested[e] = ingestion;
        link(e);
        heap[size] = e;
        heapKeys[size] = eventTime;
        heapIndex[e] = size;
        size++;
        siftUp(size - 1);
        if (2 * size > slots.length) {
            int[] old = slots;
            slots = newSlots(old.length * 2);
            mask = slots.length - 1;
            for (int s : old) {
                if (s != NONE) {
                    insertSlot(s);
                }
            }
        }
        insertSlot(e);
        return e;
    }

    private void growEntries() {
        int n = keys.length * 2;
        keys = Arrays.copyOf(keys, n);
        clocks = Arrays.copyOf(clocks, n);
        ingested = Arrays.copyOf(ingested, n);
        prev = Arrays.copyOf(prev, n);
        next = Arrays.copyOf(next, n);
        heapIndex = Arrays.copyOf(heapIndex, n);
        heap = Arrays.copyOf(heap, n);
        heapKeys = Arrays.copyOf(heapKeys, n);
    }

    private void remove(int e) {
        unlink(e);
        removeSlot(keys[e]);
        int at = heapIndex[e];
        int last = size - 1;
        size--;
        if (at != last) {
            heap[at] = heap[last];
            heapKeys[at] = heapKeys[last];
            heapIndex[heap[at]] = at;
            siftDown(at);
            siftUp(at);
        }
        next[e] = free;
        free = e;
    }

    private void link(int e) {
        prev[e] = tail;
        next[e] = NONE;
        if (tail != NONE) {
            next[tail] = e;
        } else {
            head = e;
        }
        tail = e;
    }

    private void unlink(int e) {
        int p = prev[e];
        int n = next[e];
        if (p != NONE) {
            next[p] = n;
        } else {
            head = n;
        }
        if (n != NONE) {
            prev[n] = p;
        } else {
            tail = p;
        }
    }

    private void moveToTail(int e) {
        if (e != tail) {
            unlink(e);
            link(e);
        }
    }

    // ---- heap ----

    private void siftUp(int at) {
        int e = heap[at];
        long k = heapKeys[at];
        while (at > 0) {
            int parent = (at - 1) >>> 1;
            if (heapKeys[parent] <= k) {
                break;
            }
            heap[at] = heap[parent];
            heapKeys[at] = heapKeys[parent];
            heapIndex[heap[at]] = at;
            at = parent;
        }
        heap[at] = e;
        heapKeys[at] = k;
        heapIndex[e] = at;
    }

    private void siftDown(int at) {
        int e = heap[at];
        long k = heapKeys[at];
        while (true) {
            int child = 2 * at + 1;
            if (child >= size) {
                break;
            }
            if (child + 1 < size && heapKeys[child + 1] < heapKeys[child]) {
                child++;
            }
            if (heapKeys[child] >= k) {
                break;
            }
            heap[at] = heap[child];
            heapKeys[at] = heapKeys[child];
            heapIndex[heap[at]] = at;
            at = child;
        }
        heap[at] = e;
        heapKeys[at] = k;
        heapIndex[e] = at;
    }
}
