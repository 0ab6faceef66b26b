package io.meterstream.sink;

import java.nio.charset.StandardCharsets;
import java.util.Optional;

import io.meterstream.invoices.InvoiceKey;

import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.connector.kafka.lineage.KafkaDatasetFacet;
import org.apache.flink.connector.kafka.lineage.KafkaDatasetFacetProvider;
import org.apache.flink.connector.kafka.lineage.TypeDatasetFacet;
import org.apache.flink.connector.kafka.lineage.TypeDatasetFacetProvider;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Every output record carries the time it was written, not the event time of the element that made it.
 *
 * <p>The connector's {@code KafkaWriter} hands each element's stream timestamp to the serializer, and the builder's
 * schema (connector 5.0.0) puts it on the {@link ProducerRecord}: a line item of {@code WindowRating} carried
 * its window's last event-time millisecond, a drawdown or alert that of its line item (records that went through a
 * SQL table carry no timestamp, and the producer stamped those already). Kafka refuses a record whose timestamp lies more
 * than {@code message.timestamp.after.max.ms} (1 h by default) ahead of the broker's clock, which failed the sink
 * (and, after its restarts, the job) for events up to {@code --max-future-minutes} ahead and for replays with a
 * future {@code --reference-time}; and time-based retention measures age from the record timestamp, so output of
 * a replay stamped with old event times could be deleted right after it was written. Here the delegate is asked
 * for its record with no timestamp (the connector's wrapper then leaves it null), and the Kafka producer stamps
 * it with its wall clock when it sends. Event time stays where the contract puts it: in the payload.
 *
 * <p>Keyed by customer ({@link #WriteTimeSerializer(KafkaRecordSerializationSchema, boolean)}): each record gets the
 * key {@code tenant_id U+001F customer_id} of its JSON (the invoice stage's key, {@link InvoiceKey}), so the
 * producer's partitioner puts all of one customer's records in one partition, in the order they were written.
 * A consumer of line items, drawdowns, alerts or invoices then reads each customer's records in the order the job
 * made them (the last drawdown read is the customer's current balance); unkeyed, the producer spread them.
 */
public final class WriteTimeSerializer<T>
        implements KafkaRecordSerializationSchema<T>, KafkaDatasetFacetProvider, TypeDatasetFacetProvider {

    private static final long serialVersionUID = 1L;

    private final KafkaRecordSerializationSchema<T> delegate;
    private final InvoiceKey customerKey;

    public WriteTimeSerializer(KafkaRecordSerializationSchema<T> delegate) {
        this(delegate, false);
    }

    /** {@code keyByCustomer}: key each record (a JSON string with {@code tenant_id} and {@code customer_id}) by its
     * customer. */
    public WriteTimeSerializer(KafkaRecordSerializationSchema<T> delegate, boolean keyByCustomer) {
        this.delegate = delegate;
        this.customerKey = keyByCustomer ? new InvoiceKey() : null;
    }

    @Override
    public void open(SerializationSchema.InitializationContext context, KafkaSinkContext sinkContext)
            throws Exception {
        delegate.open(context, sinkContext);
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(T element, KafkaSinkContext context, Long timestamp) {
        ProducerRecord<byte[], byte[]> record = delegate.serialize(element, context, null);
        if (record == null || (record.timestamp() == null && customerKey == null)) {
            return record;
        }
        // A delegate that stamps records by itself (not the builder's): drop its timestamp as well.
        byte[] key = customerKey == null
                ? record.key()
                : customerKey.getKey(element.toString()).getBytes(StandardCharsets.UTF_8);
        return new ProducerRecord<>(record.topic(), record.partition(), null, key, record.value(), record.headers());
    }

    @Override
    public Optional<KafkaDatasetFacet> getKafkaDatasetFacet() {
        return delegate instanceof KafkaDatasetFacetProvider
                ? ((KafkaDatasetFacetProvider) delegate).getKafkaDatasetFacet()
                : Optional.empty();
    }

    @Override
    public Optional<TypeDatasetFacet> getTypeDatasetFacet() {
        return delegate instanceof TypeDatasetFacetProvider
                ? ((TypeDatasetFacetProvider) delegate).getTypeDatasetFacet()
                : Optional.empty();
    }
}
