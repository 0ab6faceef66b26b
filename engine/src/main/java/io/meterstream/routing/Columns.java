package io.meterstream.routing;

import org.apache.flink.table.types.logical.RowType;

/** Column lookup by name in the row types our operators receive from SQL (positions follow the SQL, names do not). */
public final class Columns {
    private Columns() {
    }

    public static int indexOf(RowType type, String column) {
        int index = type.getFieldIndex(column);
        if (index < 0) {
            throw new IllegalArgumentException("no column " + column + " in " + type);
        }
        return index;
    }
}
