package io.meterstream.routing;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;

import io.meterstream.rules.Rules;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.table.data.StringData;

/**
 * A windowed usage record on its way from the routing operator to the window operator
 * ({@code io.meterstream.rating.WindowRating}): the billed series' key, computed once here, and only what the
 * window needs. Why not Flink's internal rows: copying nine columns out of the routing operator's input row (a
 * string or decimal object per column), serialising them as a binary row, and hashing the four identity strings
 * again on both sides of the shuffle were most of the routing operator's CPU (JFR). Here the strings travel as the
 * UTF-8 bytes they already are, and the value as (scale, long) once its trailing zeros are gone.
 *
 * <p>Fields: {@code seriesHi}/{@code seriesLo}, the {@link HashedKey} of (tenant_id, customer_id, meter,
 * group_json); the identity as UTF-8 (the window operator decodes it once per new series); {@code aggregation}, one
 * of the codes below; {@code eventTimeMs}; {@code eventId}, for {@code last} meters (their window keeps the latest
 * event) and on correction records (a correction counts once per event); {@code value}: NULL for count and unique_count meters and absent values, for sum, max and min
 * compacted ({@code RateLineItem.compact}: equal in value, so every result is), for last exactly as parsed;
 * {@code uniqueToken}: for unique_count meters, the counted dimension's value as the parser encodes it (NULL when
 * the event has none); {@code floorMs}: the watermark the routing operator had forwarded before the record (its
 * place in the stream's time, {@link Long#MIN_VALUE}: none yet); {@code pastWatermark}: NULL, unless that watermark
 * had already passed the record's window: then the record carries what a late event is written out with, and the
 * window operator decides, by its series' own windows, whether it is still billed (see {@code WindowRating}).
 *
 * <p>{@code correction}: {@link #NOT_A_CORRECTION} for usage; otherwise the record is one side of an applied
 * correction in this series ({@code udfs.corrections.Contribution}; max, min and last: a remove and an add, with
 * the event's id): {@link #REMOVE} takes
 * out an event's billed version ({@code value}: its value), {@link #ADD} puts one in, {@link #AMEND} replaces one in
 * the same window of the same series ({@code value}: new minus old). {@code eventTimeMs} places it in its window,
 * {@code floorMs} is the watermark the correction came after; the window operator decides it once its own watermark
 * is past that one, like a record that came past the watermark.
 */
public final class WindowedUsage {
    public static final byte SUM = 1, COUNT = 2, MAX = 3, MIN = 4, LAST = 5, UNIQUE_COUNT = 6;
    /** {@link #correction} codes. */
    public static final byte NOT_A_CORRECTION = 0, REMOVE = 1, ADD = 2, AMEND = 3;
    private static final String[] AGGREGATIONS = {
        null, Rules.AGGREGATION_SUM, Rules.AGGREGATION_COUNT, Rules.AGGREGATION_MAX, Rules.AGGREGATION_MIN,
        Rules.AGGREGATION_LAST, Rules.AGGREGATION_UNIQUE_COUNT,
    };

    public long seriesHi;
    public long seriesLo;
    public byte[] tenantId;
    public byte[] customerId;
    public byte[] meter;
    public byte[] groupJson;
    public byte aggregation;
    public long eventTimeMs;
    public byte[] eventId;
    public BigDecimal value;
    public byte[] uniqueToken;
    public long floorMs = Long.MIN_VALUE;
    public PastWatermark pastWatermark;
    public byte correction = NOT_A_CORRECTION;

    /**
     * What a record routed after the watermark had passed its window carries (the columns of a late event, as
     * {@code UsageRouting.lateType} lists them), in case its series has fired the window. One in many records.
     */
    public static final class PastWatermark {
        public byte[] payload;
        public String srcTopic;
        public Integer srcPartition;
        public Long srcOffset;
        public long watermarkMs;
    }

    private static final StringData[] AGGREGATION_DATA = new StringData[AGGREGATIONS.length];

    static {
        for (int code = 1; code < AGGREGATIONS.length; code++) {
            AGGREGATION_DATA[code] = StringData.fromString(AGGREGATIONS[code]);
        }
    }

    /** The code of an aggregation name. */
    public static byte code(StringData aggregation) {
        for (byte code = 1; code < AGGREGATIONS.length; code++) {
            if (AGGREGATION_DATA[code].equals(aggregation)) {
                return code;
            }
        }
        throw new IllegalArgumentException("no windowed aggregation " + aggregation);
    }

    /** The aggregation's name (the catalog's), one shared instance per name. */
    public String aggregationName() {
        return name(aggregation);
    }

    /** The name of an aggregation code. */
    public static String name(byte code) {
        return AGGREGATIONS[code];
    }

    /** The code of an aggregation name. */
    public static byte code(String aggregation) {
        for (byte code = 1; code < AGGREGATIONS.length; code++) {
            if (AGGREGATIONS[code].equals(aggregation)) {
                return code;
            }
        }
        throw new IllegalArgumentException("no windowed aggregation " + aggregation);
    }

    /** Flink type information of {@link WindowedUsage}: a single field, its own serializer. */
    public static final TypeInformation<WindowedUsage> TYPE =
            new OwnSerializerType<>(WindowedUsage.class, "WindowedUsage", Serializer::new);

    /**
     * Field by field, byte runs and decimals in {@link Codec}'s forms. Stateless. It only serves the shuffle (never
     * state), but keeps Flink's snapshot contract.
     */
    public static final class Serializer extends TypeSerializer<WindowedUsage> {
        private static final long serialVersionUID = 1L;

        @Override
        public boolean isImmutableType() {
            return false;
        }

        @Override
        public TypeSerializer<WindowedUsage> duplicate() {
            return this;
        }

        @Override
        public WindowedUsage createInstance() {
            return new WindowedUsage();
        }

        /** Shallow: nothing downstream changes a record's arrays or its (immutable) decimal. */
        @Override
        public WindowedUsage copy(WindowedUsage from) {
            WindowedUsage copy = new WindowedUsage();
            copy.seriesHi = from.seriesHi;
            copy.seriesLo = from.seriesLo;
            copy.tenantId = from.tenantId;
            copy.customerId = from.customerId;
            copy.meter = from.meter;
            copy.groupJson = from.groupJson;
            copy.aggregation = from.aggregation;
            copy.eventTimeMs = from.eventTimeMs;
            copy.eventId = from.eventId;
            copy.value = from.value;
            copy.uniqueToken = from.uniqueToken;
            copy.floorMs = from.floorMs;
            copy.pastWatermark = from.pastWatermark;
            copy.correction = from.correction;
            return copy;
        }

        @Override
        public WindowedUsage copy(WindowedUsage from, WindowedUsage reuse) {
            return copy(from);
        }

        @Override
        public int getLength() {
            return -1;
        }

        @Override
        public void serialize(WindowedUsage record, DataOutputView out) throws IOException {
            out.writeLong(record.seriesHi);
            out.writeLong(record.seriesLo);
            Codec.writeBytes(out, record.tenantId);
            Codec.writeBytes(out, record.customerId);
            Codec.writeBytes(out, record.meter);
            Codec.writeBytes(out, record.groupJson);
            out.writeByte(record.aggregation);
            out.writeLong(record.eventTimeMs);
            Codec.writeBytes(out, record.eventId);
            Codec.writeDecimal(out, record.value);
            Codec.writeBytes(out, record.uniqueToken);
            out.writeLong(record.floorMs);
            PastWatermark past = record.pastWatermark;
            out.writeBoolean(past != null);
            if (past != null) {
                Codec.writeBytes(out, past.payload);
                Codec.writeBytes(out, past.srcTopic == null ? null : past.srcTopic.getBytes(StandardCharsets.UTF_8));
                out.writeBoolean(past.srcPartition != null);
                if (past.srcPartition != null) {
                    out.writeInt(past.srcPartition);
                }
                out.writeBoolean(past.srcOffset != null);
                if (past.srcOffset != null) {
                    out.writeLong(past.srcOffset);
                }
                out.writeLong(past.watermarkMs);
            }
            out.writeByte(record.correction);
        }

        @Override
        public WindowedUsage deserialize(DataInputView in) throws IOException {
            WindowedUsage record = deserializeWithoutCorrection(in);
            record.correction = in.readByte();
            return record;
        }

        /**
         * A record as written before corrections existed (no correction byte): the pending records of a series
         * state of format 3 or earlier ({@code io.meterstream.rating.SeriesStore}).
         */
        public WindowedUsage deserializeWithoutCorrection(DataInputView in) throws IOException {
            WindowedUsage record = new WindowedUsage();
            record.seriesHi = in.readLong();
            record.seriesLo = in.readLong();
            record.tenantId = Codec.readBytes(in);
            record.customerId = Codec.readBytes(in);
            record.meter = Codec.readBytes(in);
            record.groupJson = Codec.readBytes(in);
            record.aggregation = in.readByte();
            record.eventTimeMs = in.readLong();
            record.eventId = Codec.readBytes(in);
            record.value = Codec.readDecimal(in);
            record.uniqueToken = Codec.readBytes(in);
            record.floorMs = in.readLong();
            if (in.readBoolean()) {
                PastWatermark past = new PastWatermark();
                past.payload = Codec.readBytes(in);
                byte[] topic = Codec.readBytes(in);
                past.srcTopic = topic == null ? null : new String(topic, StandardCharsets.UTF_8);
                past.srcPartition = in.readBoolean() ? in.readInt() : null;
                past.srcOffset = in.readBoolean() ? in.readLong() : null;
                past.watermarkMs = in.readLong();
                record.pastWatermark = past;
            }
            return record;
        }

        @Override
        public WindowedUsage deserialize(WindowedUsage reuse, DataInputView in) throws IOException {
            return deserialize(in);
        }

        @Override
        public void copy(DataInputView source, DataOutputView target) throws IOException {
            serialize(deserialize(source), target);
        }

        @Override
        public boolean equals(Object other) {
            return other instanceof Serializer;
        }

        @Override
        public int hashCode() {
            return Serializer.class.hashCode();
        }

        @Override
        public TypeSerializerSnapshot<WindowedUsage> snapshotConfiguration() {
            return new SerializerSnapshot();
        }
    }

    /** Restores the one format there is. */
    public static final class SerializerSnapshot extends SimpleTypeSerializerSnapshot<WindowedUsage> {
        public SerializerSnapshot() {
            super(Serializer::new);
        }
    }
}
