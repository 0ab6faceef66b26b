package io.meterstream.sink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;

import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;

/**
 * {@link WriteTimeSerializer}: no record carries the element's timestamp; keyed by customer, each carries its
 * customer's key, so one customer's records share a partition and keep the order they were written in.
 */
class WriteTimeSerializerTest {
    private static final String DRAWDOWN =
            "{\"drawdown_id\":\"d-1\",\"tenant_id\":\"acme-ai\",\"customer_id\":\"cust-42\",\"amount\":\"3\"}";

    private static KafkaRecordSerializationSchema<String> builderSchema() {
        return KafkaRecordSerializationSchema.<String>builder()
                .setTopic("credit-drawdowns")
                .setValueSerializationSchema(new SimpleStringSchema())
                .build();
    }

    @Test
    void recordsCarryNoEventTimeAndNoKeyUnlessKeyed() {
        ProducerRecord<byte[], byte[]> record =
                new WriteTimeSerializer<>(builderSchema()).serialize(DRAWDOWN, null, 1_700_000_000_000L);
        assertNull(record.timestamp());
        assertNull(record.key());
        assertNull(record.partition());
        assertEquals(DRAWDOWN, new String(record.value(), StandardCharsets.UTF_8));
    }

    @Test
    void keyedByCustomerEachRecordCarriesItsTenantAndCustomer() {
        WriteTimeSerializer<String> keyed = new WriteTimeSerializer<>(builderSchema(), true);
        ProducerRecord<byte[], byte[]> record = keyed.serialize(DRAWDOWN, null, 1_700_000_000_000L);
        assertNull(record.timestamp());
        assertNull(record.partition(), "the producer's partitioner picks the partition from the key");
        assertArrayEquals("acme-ai\u001fcust-42".getBytes(StandardCharsets.UTF_8), record.key());
        assertEquals(DRAWDOWN, new String(record.value(), StandardCharsets.UTF_8));
        // an escaped id is read by the parser, not the text scan
        ProducerRecord<byte[], byte[]> escaped = keyed.serialize(
                "{\"tenant_id\":\"a\\\"b\",\"customer_id\":\"c\"}", null, null);
        assertArrayEquals("a\"b\u001fc".getBytes(StandardCharsets.UTF_8), escaped.key());
    }

    @Test
    void aRecordWithoutItsCustomerFailsLoudly() {
        WriteTimeSerializer<String> keyed = new WriteTimeSerializer<>(builderSchema(), true);
        assertThrows(IllegalArgumentException.class, () -> keyed.serialize("{\"tenant_id\":\"a\"}", null, null));
    }
}
