package io.meterstream.routing;

import java.util.Arrays;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.binary.BinarySegmentUtils;
import org.apache.flink.table.data.binary.BinaryStringData;

/**
 * A keyed-state key made of the 128-bit murmur3 hash of some parts, as two longs. Why a hash and not the strings:
 * the key is what every checkpoint of the heap state backend writes out in full, and serialising string keys char
 * by char was a quarter of the job's CPU (JFR); two longs are 16 bytes. Two different part lists sharing a key has
 * a probability of about n^2 / 2^129 for n keys: below 1e-14 for a trillion.
 *
 * <p>Each part is hashed as its length (4 bytes, little-endian; -1 for NULL) and its bytes, so no two part lists
 * hash the same bytes. The hash is murmur3_x64_128 with seed 0, bit for bit Guava's {@code Hashing.murmur3_128()}
 * (the first version used it; {@code tests/job/test_hashed_key.py} holds them equal, so keys in state carry over),
 * here over one byte array: Guava's streaming hasher, with a copy of each string's bytes, cost several times the
 * hash itself on the per-record path (JFR).
 */
public final class HashedKey {
    public static final TypeInformation<Tuple2<Long, Long>> TYPE = Types.TUPLE(Types.LONG, Types.LONG);

    private static final long C1 = 0x87c37b91114253d5L;
    private static final long C2 = 0x4cf5ad432745937fL;

    private byte[] bytes = new byte[64];
    private int length;
    private long hi;  // the last hash, as key() returns it
    private long lo;

    public HashedKey part(byte[] part) {
        if (part == null) {
            return putInt(-1);
        }
        putInt(part.length);
        ensure(part.length);
        System.arraycopy(part, 0, bytes, length, part.length);
        length += part.length;
        return this;
    }

    /** A string part as its UTF-8 bytes, copied straight from the string's memory. */
    public HashedKey part(StringData part) {
        if (part == null) {
            return putInt(-1);
        }
        if (!(part instanceof BinaryStringData)) {
            return part(part.toBytes());
        }
        BinaryStringData binary = (BinaryStringData) part;
        binary.ensureMaterialized();
        int size = binary.getSizeInBytes();
        putInt(size);
        ensure(size);
        BinarySegmentUtils.copyToBytes(binary.getSegments(), binary.getOffset(), bytes, length, size);
        length += size;
        return this;
    }

    private HashedKey putInt(int value) {
        ensure(4);
        for (int i = 0; i < 4; i++) {
            bytes[length++] = (byte) (value >>> (8 * i));
        }
        return this;
    }

    private void ensure(int more) {
        if (length + more > bytes.length) {
            bytes = Arrays.copyOf(bytes, Math.max(bytes.length * 2, length + more));
        }
    }

    /** Empties the parts, so that one instance can hash record after record without allocating. */
    public HashedKey reset() {
        length = 0;
        return this;
    }

    /** The key: the hash's 16 bytes (Guava's byte order) read as two big-endian longs. */
    public Tuple2<Long, Long> key() {
        hash();
        return Tuple2.of(hi, lo);
    }

    /**
     * The first 64 bits of the hash ({@code key().f0}), without allocating: for per-record lookups that can live
     * with a 64-bit key (the source's customer clocks, {@code io.meterstream.watermarks.CustomerClocks}).
     */
    public long hash64() {
        hash();
        return hi;
    }

    private void hash() {
        long h1 = 0;
        long h2 = 0;
        int blocks = length / 16;
        for (int b = 0; b < blocks; b++) {
            long k1 = longLE(16 * b);
            long k2 = longLE(16 * b + 8);
            h1 ^= mixK1(k1);
            h1 = Long.rotateLeft(h1, 27);
            h1 += h2;
            h1 = h1 * 5 + 0x52dce729;
            h2 ^= mixK2(k2);
            h2 = Long.rotateLeft(h2, 31);
            h2 += h1;
            h2 = h2 * 5 + 0x38495ab5;
        }
        int tail = 16 * blocks;
        int remaining = length - tail;
        if (remaining > 0) {
            long k1 = 0;
            long k2 = 0;
            for (int i = remaining - 1; i >= 8; i--) {
                k2 = (k2 << 8) | (bytes[tail + i] & 0xFFL);
            }
            for (int i = Math.min(remaining, 8) - 1; i >= 0; i--) {
                k1 = (k1 << 8) | (bytes[tail + i] & 0xFFL);
            }
            h1 ^= mixK1(k1);
            h2 ^= mixK2(k2);
        }
        h1 ^= length;
        h2 ^= length;
        h1 += h2;
        h2 += h1;
        h1 = fmix64(h1);
        h2 = fmix64(h2);
        h1 += h2;
        h2 += h1;
        hi = Long.reverseBytes(h1);
        lo = Long.reverseBytes(h2);
    }

    private long longLE(int at) {
        long value = 0;
        for (int i = 7; i >= 0; i--) {
            value = (value << 8) | (bytes[at + i] & 0xFFL);
        }
        return value;
    }

    private static long mixK1(long k1) {
        k1 *= C1;
        k1 = Long.rotateLeft(k1, 31);
        return k1 * C2;
    }

    private static long mixK2(long k2) {
        k2 *= C2;
        k2 = Long.rotateLeft(k2, 33);
        return k2 * C1;
    }

    private static long fmix64(long k) {
        k ^= k >>> 33;
        k *= 0xff51afd7ed558ccdL;
        k ^= k >>> 33;
        k *= 0xc4ceb9fe1a85ec53L;
        k ^= k >>> 33;
        return k;
    }
}
