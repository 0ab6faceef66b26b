package io.meterstream.routing;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.shaded.guava33.com.google.common.hash.Hasher;
import org.apache.flink.shaded.guava33.com.google.common.hash.Hashing;

/**
 * A keyed-state key made of the 128-bit murmur3 hash of some parts, as two longs. Why a hash and not the strings:
 * the key is what every checkpoint of the heap state backend writes out in full, and serialising string keys char
 * by char was a quarter of the job's CPU (JFR); two longs are 16 bytes. Two different part lists sharing a key has
 * a probability of about n^2 / 2^129 for n keys: below 1e-14 for a trillion.
 *
 * <p>Each part is hashed as its length (4 bytes; -1 for NULL) and its bytes, so no two part lists hash the same
 * bytes.
 */
public final class HashedKey {
    public static final TypeInformation<Tuple2<Long, Long>> TYPE = Types.TUPLE(Types.LONG, Types.LONG);

    private final Hasher hasher = Hashing.murmur3_128().newHasher();

    public HashedKey part(byte[] bytes) {
        if (bytes == null) {
            hasher.putInt(-1);
        } else {
            hasher.putInt(bytes.length).putBytes(bytes);
        }
        return this;
    }

    public HashedKey part(long value) {
        hasher.putInt(8).putLong(value);
        return this;
    }

    public Tuple2<Long, Long> key() {
        byte[] hash = hasher.hash().asBytes();
        return Tuple2.of(longAt(hash, 0), longAt(hash, 8));
    }

    private static long longAt(byte[] bytes, int offset) {
        long value = 0;
        for (int i = offset; i < offset + 8; i++) {
            value = (value << 8) | (bytes[i] & 0xFF);
        }
        return value;
    }
}
