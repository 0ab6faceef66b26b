package io.meterstream.routing;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;

import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;

/**
 * The byte forms our own serialisation shares (window operator state, windowed records on the wire): byte runs as
 * a length (-1 for NULL) and the bytes; decimals as a tag (NULL, long, big), the scale, and the unscaled value as a
 * long when it fits, else as its two's-complement bytes. Why a long: a compacted quantity (no trailing zeros) nearly
 * always fits, and writes and reads without a BigInteger.
 */
public final class Codec {
    private static final int NULL = -1;
    private static final byte DECIMAL_NULL = 0;
    private static final byte DECIMAL_LONG = 1;
    private static final byte DECIMAL_BIG = 2;

    private Codec() {
    }

    public static void writeBytes(DataOutputView out, byte[] bytes) throws IOException {
        if (bytes == null) {
            out.writeInt(NULL);
            return;
        }
        out.writeInt(bytes.length);
        out.write(bytes);
    }

    public static byte[] readBytes(DataInputView in) throws IOException {
        int length = in.readInt();
        if (length == NULL) {
            return null;
        }
        byte[] bytes = new byte[length];
        in.readFully(bytes);
        return bytes;
    }

    public static void writeDecimal(DataOutputView out, BigDecimal value) throws IOException {
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
            writeBytes(out, bytes);
        }
    }

    public static BigDecimal readDecimal(DataInputView in) throws IOException {
        byte kind = in.readByte();
        if (kind == DECIMAL_NULL) {
            return null;
        }
        int scale = in.readInt();
        if (kind == DECIMAL_LONG) {
            return BigDecimal.valueOf(in.readLong(), scale);
        }
        if (kind != DECIMAL_BIG) {
            throw new IOException("not a decimal (tag " + kind + ")");
        }
        return new BigDecimal(new BigInteger(readBytes(in)), scale);
    }
}
