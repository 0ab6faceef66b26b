package io.meterstream.rating;

import java.util.Deque;
import java.util.List;
import java.util.Random;

/**
 * What an operator whose input comes from two upstream subtasks sees: two channels, each in its own order, merged at
 * random; a channel's {@link Long} items are its watermarks, and the operator's watermark is the lower of the two
 * channels' (it only moves forward).
 */
final class TwoChannels {
    /** Takes the operator's watermark when it moves. */
    interface Watermarks {
        void advance(long watermark) throws Exception;
    }

    /** Takes a record. */
    interface Records {
        void process(Object record) throws Exception;
    }

    private TwoChannels() {
    }

    static void merge(List<Deque<Object>> channels, Random random, Watermarks watermarks, Records records)
            throws Exception {
        long[] channelWatermarks = {Long.MIN_VALUE, Long.MIN_VALUE};
        long watermark = Long.MIN_VALUE;
        while (!channels.get(0).isEmpty() || !channels.get(1).isEmpty()) {
            int c = channels.get(0).isEmpty() ? 1 : channels.get(1).isEmpty() ? 0 : random.nextInt(2);
            Object next = channels.get(c).poll();
            if (next instanceof Long) {
                channelWatermarks[c] = (Long) next;
                long merged = Math.min(channelWatermarks[0], channelWatermarks[1]);
                if (merged > watermark) {
                    watermarks.advance(merged);
                    watermark = merged;
                }
            } else {
                records.process(next);
            }
        }
    }
}
