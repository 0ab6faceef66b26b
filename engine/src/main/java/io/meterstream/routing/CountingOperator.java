package io.meterstream.routing;

import org.apache.flink.streaming.api.operators.AbstractStreamOperator;

/**
 * An operator that counts record outcomes for the accounting side output and sends its counts ahead of each
 * checkpoint barrier and at the end of input, so that a checkpoint's counts downstream are exactly those of the
 * outcomes decided before it ({@link UsageRouting}; {@code io.meterstream.rating.WindowRating}, where a record that
 * came past the watermark may wait in state for its decision).
 */
public abstract class CountingOperator<OUT> extends AbstractStreamOperator<OUT> {
    private static final long serialVersionUID = 1L;

    /** Emits the counts since the last flush (none if nothing was counted) and starts again from zero. */
    protected abstract void flushCounts();

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        flushCounts();
    }

    @Override
    public void finish() throws Exception {
        flushCounts();
        super.finish();
    }
}
