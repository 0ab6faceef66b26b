package io.meterstream.windows;

/**
 * {@code udfs.windows.window_bounds}: epoch-aligned tumbling windows {@code [start, start + size)} in UTC epoch ms,
 * like Flink's TUMBLE with offset 0. Bound to Python by the golden vectors ({@code windows.json}).
 *
 * <p>Not wired yet: {@code UsageRouting} (late check) and {@code WindowRating} still compute the same bounds
 * inline; they should call these (issue 16).
 */
public final class TumblingWindows {
    private TumblingWindows() {}

    /** The start of the window holding {@code eventTimeMs}. */
    public static long start(long eventTimeMs, long sizeMs) {
        return eventTimeMs - Math.floorMod(eventTimeMs, sizeMs);
    }

    /** The exclusive end of the window holding {@code eventTimeMs}. */
    public static long end(long eventTimeMs, long sizeMs) {
        return start(eventTimeMs, sizeMs) + sizeMs;
    }
}
