package io.meterstream.routing;

import java.time.Duration;

import org.apache.flink.api.common.state.StateTtlConfig;

/** The TTL every keyed state of ours has: processing time from the last write, never returned once expired. */
public final class StateTtl {
    private StateTtl() {
    }

    public static StateTtlConfig afterLastWrite(long ttlMs) {
        return StateTtlConfig.newBuilder(Duration.ofMillis(ttlMs))
                .updateTtlOnCreateAndWrite()
                .neverReturnExpired()
                .build();
    }
}
