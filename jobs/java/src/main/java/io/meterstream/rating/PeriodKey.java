package io.meterstream.rating;

import io.meterstream.routing.HashedKey;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.RowType;

/** The period-to-date key of a window row: the {@link HashedKey} of (tenant, customer, meter, group, period start). */
public final class PeriodKey implements KeySelector<RowData, Tuple2<Long, Long>>, ResultTypeQueryable<Tuple2<Long, Long>> {
    private static final long serialVersionUID = 1L;
    static final String[] STRING_PARTS = {"tenant_id", "customer_id", "meter", "group_json"};
    static final String PERIOD_START_MS = "period_start_ms";

    private final int[] stringIndexes = new int[STRING_PARTS.length];
    private final int periodStartIndex;

    public PeriodKey(RowType windows) {
        for (int i = 0; i < STRING_PARTS.length; i++) {
            stringIndexes[i] = PeriodToDateRating.indexOf(windows, STRING_PARTS[i]);
        }
        periodStartIndex = PeriodToDateRating.indexOf(windows, PERIOD_START_MS);
    }

    @Override
    public Tuple2<Long, Long> getKey(RowData row) {
        HashedKey key = new HashedKey();
        for (int index : stringIndexes) {
            key.part(row.isNullAt(index) ? null : row.getString(index).toBytes());
        }
        return key.part(row.getLong(periodStartIndex)).key();
    }

    @Override
    public TypeInformation<Tuple2<Long, Long>> getProducedType() {
        return HashedKey.TYPE;
    }
}
