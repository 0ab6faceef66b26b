package io.meterstream.corrections;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.types.Row;

/**
 * The corrections' outcome counts, (outcome, detail, records) rows made by the Python correction stages, retyped as
 * the Java operators' accounting rows ({@code UsageRouting.ACCOUNTING_TYPE}, external), so that they join the same
 * union and the same running counts ({@code usage_accounting}). A stream's type must be equal for a union: a Python
 * stage's rows carry Flink's {@code RowTypeInfo}, the operators' side outputs the table runtime's external type info,
 * which the caller builds (that class is not on this jar's compile classpath). The values pass through unchanged;
 * a row that is not three non-null fields is a programming error and fails the job.
 */
public final class CorrectionCounts implements MapFunction<Row, Row>, ResultTypeQueryable<Row> {
    private static final long serialVersionUID = 1L;

    private final TypeInformation<Row> accountingType;

    public CorrectionCounts(TypeInformation<Row> accountingType) {
        this.accountingType = accountingType;
    }

    @Override
    public Row map(Row in) {
        if (in.getArity() != 3 || in.getField(0) == null || in.getField(1) == null || in.getField(2) == null) {
            throw new IllegalArgumentException("a correction count is (outcome, detail, records): " + in);
        }
        return Row.of(in.getField(0).toString(), in.getField(1).toString(), ((Number) in.getField(2)).longValue());
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return accountingType;
    }
}
