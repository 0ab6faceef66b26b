package io.meterstream.routing;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.table.data.StringData;
import org.apache.flink.types.Row;

/**
 * The key of an accepted correction ({@link UsageRouting#CORRECTION_COLUMNS}: tenant_id, event_id first) on the
 * routing operator's second input: the bucket of the {@link HashedKey} of its (tenant_id, event_id), exactly the key
 * the event's usage record had ({@link UsageDedupKey}), so a correction meets its event's ledger entry.
 */
public final class CorrectionKey implements KeySelector<Row, Integer>, ResultTypeQueryable<Integer> {
    private static final long serialVersionUID = 1L;

    @Override
    public Integer getKey(Row correction) {
        return UsageDedupKey.bucket(UsageDedupKey.eventKey(StringData.fromString((String) correction.getField(0)),
                StringData.fromString((String) correction.getField(1))).f0);
    }

    @Override
    public TypeInformation<Integer> getProducedType() {
        return Types.INT;
    }
}
