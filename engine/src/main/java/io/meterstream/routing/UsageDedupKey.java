package io.meterstream.routing;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.RowType;

/**
 * The dedup key of a parsed usage record. The event key of a valid record is the {@link HashedKey} of
 * (tenant_id, event_id); its keyed-state key is the event key's bucket, the top {@link #BUCKET_BITS} bits: the
 * routing operator keeps one {@link DedupTable} per bucket (why: see there). A rejected record whose two ids are
 * valid has the same key (the correction ledger remembers it as dead-lettered there); one without them has no
 * trustworthy key and keeps no state: it is keyed by its source partition.
 *
 * <p>{@link #BUCKET_BITS} is part of the state layout: changing it needs a new routing operator uid.
 */
public final class UsageDedupKey implements KeySelector<RowData, Integer>, ResultTypeQueryable<Integer> {
    private static final long serialVersionUID = 1L;
    /** 65,536 buckets: at 5M remembered ids about 80 per bucket (a few KB), far more buckets than key groups. */
    public static final int BUCKET_BITS = 16;
    public static final int BUCKETS = 1 << BUCKET_BITS;

    private final int reasonIndex;
    private final int keyHiIndex;
    private final int keyLoIndex;
    private final int partitionIndex;

    public UsageDedupKey(RowType input) {
        this.reasonIndex = Columns.indexOf(input, "reason");
        this.keyHiIndex = Columns.indexOf(input, "event_key_hi");
        this.keyLoIndex = Columns.indexOf(input, "event_key_lo");
        this.partitionIndex = Columns.indexOf(input, "src_partition");
    }

    @Override
    public Integer getKey(RowData row) {
        if (!row.isNullAt(reasonIndex) && row.isNullAt(keyHiIndex)) {
            return row.isNullAt(partitionIndex) ? -1 : row.getInt(partitionIndex);
        }
        return bucket(row.getLong(keyHiIndex));
    }

    /** The 128-bit event key of a record with valid ids, as the parse computed it (event_key_hi, event_key_lo). */
    public Tuple2<Long, Long> eventKey(RowData row) {
        return Tuple2.of(row.getLong(keyHiIndex), row.getLong(keyLoIndex));
    }

    /** The 128-bit event key of (tenant_id, event_id): their {@link HashedKey}. The parse computes it, once. */
    public static Tuple2<Long, Long> eventKey(StringData tenantId, StringData eventId) {
        return new HashedKey().part(tenantId).part(eventId).key();
    }

    public static int bucket(long keyHi) {
        return (int) (keyHi >>> (Long.SIZE - BUCKET_BITS));
    }

    @Override
    public TypeInformation<Integer> getProducedType() {
        return Types.INT;
    }
}
