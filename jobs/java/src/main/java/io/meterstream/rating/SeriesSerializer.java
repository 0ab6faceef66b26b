package io.meterstream.rating;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;

import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.core.memory.DataOutputView;

/**
 * {@link Series} in checkpoints, written field by field without reflection: strings as one length-prefixed UTF-8
 * byte run, decimals as (scale, unscaled long) when they fit, else (scale, two's-complement bytes). Why not Flink's
 * POJO serializer: it was most of the window operator's share of checkpoint time (reflection per field, strings
 * char by char; JFR). A series is first written to a scratch buffer and then to the checkpoint stream in one call:
 * the heap backend's checkpoint stream takes every byte of a {@code writeInt} or {@code writeLong} as a separate
 * call through three stream layers, which cost as much as the serialisation itself. The buffer makes an instance
 * stateful: {@link #duplicate} gives each thread its own. Format version 1; a change to it needs a new snapshot
 * version and a migration.
 */
public final class SeriesSerializer extends TypeSerializer<Series> {
    private static final long serialVersionUID = 1L;
    private static final int NULL = -1;
    private static final byte DECIMAL_NULL = 0;
    private static final byte DECIMAL_LONG = 1;
    private static final byte DECIMAL_BIG = 2;

    private transient DataOutputSerializer scratch;

    @Override
    public boolean isImmutableType() {
        return false;
    }

    @Override
    public TypeSerializer<Series> duplicate() {
        return new SeriesSerializer();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof SeriesSerializer;
    }

    @Override
    public int hashCode() {
        return SeriesSerializer.class.hashCode();
    }

    @Override
    public Series createInstance() {
        return new Series();
    }

    @Override
    public Series copy(Series from) {
        return from.copy();
    }

    @Override
    public Series copy(Series from, Series reuse) {
        return from.copy();
    }

    @Override
    public int getLength() {
        return -1;
    }

    @Override
    public void serialize(Series s, DataOutputView target) throws IOException {
        DataOutputSerializer out = scratch == null ? (scratch = new DataOutputSerializer(256)) : scratch;
        out.clear();
        write(s, out);
        target.write(out.getSharedBuffer(), 0, out.length());
    }

    private static void write(Series s, DataOutputView out) throws IOException {
        writeString(out, s.tenantId);
        writeString(out, s.customerId);
        writeString(out, s.meter);
        writeString(out, s.groupJson);
        writeString(out, s.aggregation);
        out.writeLong(s.periodStartMs);
        writeDecimal(out, s.periodQuantity);
        writeString(out, s.periodLastKey);
        out.writeInt(s.windows);
        for (int i = 0; i < s.windows; i++) {
            out.writeLong(s.windowStarts[i]);
            out.writeLong(s.eventCounts[i]);
            writeDecimal(out, s.quantities[i]);
            writeString(out, s.lastKeys[i]);
        }
    }

    @Override
    public Series deserialize(DataInputView in) throws IOException {
        Series s = new Series();
        s.tenantId = readString(in);
        s.customerId = readString(in);
        s.meter = readString(in);
        s.groupJson = readString(in);
        s.aggregation = readString(in);
        s.periodStartMs = in.readLong();
        s.periodQuantity = readDecimal(in);
        s.periodLastKey = readString(in);
        int windows = in.readInt();
        for (int i = 0; i < windows; i++) {
            int w = s.openWindow(in.readLong());
            s.eventCounts[w] = in.readLong();
            s.quantities[w] = readDecimal(in);
            s.lastKeys[w] = readString(in);
        }
        return s;
    }

    @Override
    public Series deserialize(Series reuse, DataInputView in) throws IOException {
        return deserialize(in);
    }

    @Override
    public void copy(DataInputView source, DataOutputView target) throws IOException {
        serialize(deserialize(source), target);
    }

    private static void writeString(DataOutputView out, String value) throws IOException {
        if (value == null) {
            out.writeInt(NULL);
            return;
        }
        byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
        out.writeInt(bytes.length);
        out.write(bytes);
    }

    private static String readString(DataInputView in) throws IOException {
        int length = in.readInt();
        if (length == NULL) {
            return null;
        }
        byte[] bytes = new byte[length];
        in.readFully(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static void writeDecimal(DataOutputView out, BigDecimal value) throws IOException {
        if (value == null) {
            out.writeByte(DECIMAL_NULL);
            return;
        }
        BigInteger unscaled = value.unscaledValue();
        if (unscaled.bitLength() < Long.SIZE) {
            out.writeByte(DECIMAL_LONG);
            out.writeInt(value.scale());
            out.writeLong(unscaled.longValue());
        } else {
            byte[] bytes = unscaled.toByteArray();
            out.writeByte(DECIMAL_BIG);
            out.writeInt(value.scale());
            out.writeInt(bytes.length);
            out.write(bytes);
        }
    }

    private static BigDecimal readDecimal(DataInputView in) throws IOException {
        byte kind = in.readByte();
        if (kind == DECIMAL_NULL) {
            return null;
        }
        int scale = in.readInt();
        if (kind == DECIMAL_LONG) {
            return BigDecimal.valueOf(in.readLong(), scale);
        }
        if (kind != DECIMAL_BIG) {
            throw new IOException("not a decimal in series state (tag " + kind + ")");
        }
        byte[] bytes = new byte[in.readInt()];
        in.readFully(bytes);
        return new BigDecimal(new BigInteger(bytes), scale);
    }

    @Override
    public TypeSerializerSnapshot<Series> snapshotConfiguration() {
        return new SeriesSerializerSnapshot();
    }

    /** Restores the one format there is. */
    public static final class SeriesSerializerSnapshot extends SimpleTypeSerializerSnapshot<Series> {
        public SeriesSerializerSnapshot() {
            super(SeriesSerializer::new);
        }
    }
}
