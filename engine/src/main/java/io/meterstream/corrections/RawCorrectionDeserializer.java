package io.meterstream.corrections;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * The billing job's {@code usage-corrections} source format: each Kafka record as it came, with its coordinates
 * (payload, src_topic, src_partition, src_offset), for the Python validation of {@code udfs.corrections}.
 * Corrections are rare (about half a percent of the usage traffic), so they are validated in Python, the
 * specification itself; this class only keeps the bytes (invalid UTF-8 included, for {@code not_utf8}) and where they
 * were read, which a dead letter names. A record without a value (a tombstone) arrives as a null payload and is
 * rejected like an empty record.
 */
public final class RawCorrectionDeserializer implements KafkaRecordDeserializationSchema<Row> {
    private static final long serialVersionUID = 1L;
    public static final String[] COLUMNS = {"payload", "src_topic", "src_partition", "src_offset"};

    /** payload BYTES (null: no value), src_topic STRING, src_partition INT, src_offset BIGINT. */
    public static TypeInformation<Row> rowType() {
        return Types.ROW_NAMED(COLUMNS, Types.PRIMITIVE_ARRAY(Types.BYTE), Types.STRING, Types.INT, Types.LONG);
    }

    /** The row of one record, positional in the order of {@link #COLUMNS}. */
    public static Row row(byte[] payload, String topic, int partition, long offset) {
        return Row.of(payload, topic, partition, offset);
    }

    @Override
    public void open(DeserializationSchema.InitializationContext context) {
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Row> out) {
        out.collect(row(record.value(), record.topic(), record.partition(), record.offset()));
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return rowType();
    }
}
