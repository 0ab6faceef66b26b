package io.meterstream.rating;

import io.meterstream.routing.HashedKey;
import io.meterstream.routing.WindowedUsage;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;

/**
 * The key of a billed series: the {@link HashedKey} of (tenant_id, customer_id, meter, group_json), which the
 * routing operator computed once into the record ({@link WindowedUsage}); both sides of the shuffle read it.
 */
public final class MeterKey implements KeySelector<WindowedUsage, Tuple2<Long, Long>>,
        ResultTypeQueryable<Tuple2<Long, Long>> {
    private static final long serialVersionUID = 1L;

    @Override
    public Tuple2<Long, Long> getKey(WindowedUsage record) {
        return Tuple2.of(record.seriesHi, record.seriesLo);
    }

    @Override
    public TypeInformation<Tuple2<Long, Long>> getProducedType() {
        return HashedKey.TYPE;
    }
}
