package io.meterstream.rating;

import io.meterstream.routing.Columns;
import io.meterstream.routing.HashedKey;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.RowType;

/** The key of a billed series: the {@link HashedKey} of (tenant_id, customer_id, meter, group_json). */
public final class MeterKey implements KeySelector<RowData, Tuple2<Long, Long>>, ResultTypeQueryable<Tuple2<Long, Long>> {
    private static final long serialVersionUID = 1L;
    static final String[] PARTS = {"tenant_id", "customer_id", "meter", "group_json"};

    private final int[] indexes = new int[PARTS.length];

    public MeterKey(RowType rows) {
        for (int i = 0; i < PARTS.length; i++) {
            indexes[i] = Columns.indexOf(rows, PARTS[i]);
        }
    }

    @Override
    public Tuple2<Long, Long> getKey(RowData row) {
        HashedKey key = new HashedKey();
        for (int index : indexes) {
            key.part(row.isNullAt(index) ? null : row.getString(index));
        }
        return key.key();
    }

    @Override
    public TypeInformation<Tuple2<Long, Long>> getProducedType() {
        return HashedKey.TYPE;
    }
}
