package io.meterstream.routing;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.RowType;

/**
 * The dedup key of a parsed usage record: the {@link HashedKey} of (tenant_id, event_id) of a valid record. A
 * rejected record has no trustworthy key and keeps no state: it is keyed by its source partition (first long 0,
 * which no hash is treated specially for: rejects never read or write state), so rejects spread over a handful of
 * keys.
 */
public final class UsageDedupKey implements KeySelector<RowData, Tuple2<Long, Long>>,
        ResultTypeQueryable<Tuple2<Long, Long>> {
    private static final long serialVersionUID = 1L;

    private final int reasonIndex;
    private final int tenantIndex;
    private final int eventIndex;
    private final int partitionIndex;

    public UsageDedupKey(RowType input) {
        this.reasonIndex = Columns.indexOf(input, "reason");
        this.tenantIndex = Columns.indexOf(input, "tenant_id");
        this.eventIndex = Columns.indexOf(input, "event_id");
        this.partitionIndex = Columns.indexOf(input, "src_partition");
    }

    @Override
    public Tuple2<Long, Long> getKey(RowData row) {
        if (!row.isNullAt(reasonIndex)) {
            return Tuple2.of(0L, row.isNullAt(partitionIndex) ? -1L : row.getInt(partitionIndex));
        }
        return new HashedKey().part(row.getString(tenantIndex).toBytes()).part(row.getString(eventIndex).toBytes())
                .key();
    }

    @Override
    public TypeInformation<Tuple2<Long, Long>> getProducedType() {
        return HashedKey.TYPE;
    }
}
