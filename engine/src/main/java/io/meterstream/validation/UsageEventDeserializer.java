package io.meterstream.validation;

import java.util.ArrayList;
import java.util.List;

import io.meterstream.watermarks.UsageEventWatermarks;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.IntType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarBinaryType;
import org.apache.flink.table.types.logical.VarCharType;
import org.apache.flink.table.types.logical.utils.LogicalTypeParser;
import org.apache.flink.util.Collector;

/**
 * The billing job's Kafka source format: each raw {@code usage-events} record, parsed and validated as it is read
 * (the parser of {@code PARSE_USAGE_EVENT}), into the row of {@link #rowType()}: the raw record and its Kafka
 * coordinates, then {@link ParseUsageEvent#ROW_TYPE}'s columns (the column set the job calls {@code usage_parsed});
 * the record's timestamp carries the event time ({@link UsageEventWatermarks}). The Kafka
 * record timestamp travels as {@code src_timestamp}: the watermarks' ingestion time. The rows are built by
 * {@link UsageRows}, which the job tests' file source ({@link UsageFileLines}) shares.
 *
 * <p>With a tenant topic prefix ({@code --usage-topic-prefix}; the source subscribes to every topic
 * {@code <prefix>T}) each record's tenant is its topic's ({@link TenantTopics#tenantOf}), and a record whose
 * {@code tenant_id} differs is dead-lettered {@code tenant_mismatch}. Without one, no tenant check.
 *
 * <p>Why here and not in SQL: the SQL source's raw format, computed event-time column and projection called the
 * function several times per record and spent a tenth of the job's CPU around it (JFR); here a record is parsed once
 * and becomes one row, with watermarks still generated per Kafka partition by the source.
 */
public final class UsageEventDeserializer implements KafkaRecordDeserializationSchema<RowData> {
    private static final long serialVersionUID = 1L;
    /** The Kafka record timestamp (epoch ms; NULL when the record has none): ingestion time for the watermarks. */
    public static final String INGESTION_COLUMN = "src_timestamp";
    static final String[] COORDINATES = {"payload", "src_topic", "src_partition", "src_offset", INGESTION_COLUMN};

    private final UsageRows rows;
    private final TypeInformation<RowData> producedType;

    private final String tenantTopicPrefix;

    private transient String lastTopic;
    private transient StringData lastTopicData;
    private transient String lastTopicTenant;

    /**
     * @param catalogJson    {@code udfs.java_catalog.java_catalog_json(catalog)}
     * @param referenceNowMs the "now" of the age/future checks; null = the wall clock at each record
     * @param producedType   Flink's internal type info of {@link #rowType()} (built by the caller: that class lives
     *                       in the table runtime, not in this jar's compile classpath)
     */
    public UsageEventDeserializer(String catalogJson, Long referenceNowMs, long maxAgeMs, long maxFutureMs,
            TypeInformation<RowData> producedType) {
        this(catalogJson, referenceNowMs, maxAgeMs, maxFutureMs, producedType, null);
    }

    /**
     * @param tenantTopicPrefix the prefix of the tenant topics the source subscribes to: each record's tenant is its
     *                          topic's name after it; null = one shared topic, no tenant check
     */
    public UsageEventDeserializer(String catalogJson, Long referenceNowMs, long maxAgeMs, long maxFutureMs,
            TypeInformation<RowData> producedType, String tenantTopicPrefix) {
        this.rows = new UsageRows(catalogJson, referenceNowMs, maxAgeMs, maxFutureMs);
        this.producedType = producedType;
        this.tenantTopicPrefix = tenantTopicPrefix;
    }

    /**
     * payload BYTES, src_topic STRING, src_partition INT, src_offset BIGINT, src_timestamp BIGINT (NULL: none), then
     * the parse columns.
     */
    public static RowType rowType() {
        List<RowType.RowField> fields = new ArrayList<>();
        fields.add(new RowType.RowField(COORDINATES[0], new VarBinaryType(true, VarBinaryType.MAX_LENGTH)));
        fields.add(new RowType.RowField(COORDINATES[1], new VarCharType(false, VarCharType.MAX_LENGTH)));
        fields.add(new RowType.RowField(COORDINATES[2], new IntType(false)));
        fields.add(new RowType.RowField(COORDINATES[3], new BigIntType(false)));
        fields.add(new RowType.RowField(COORDINATES[4], new BigIntType(true)));
        RowType parsed = (RowType) LogicalTypeParser.parse(ParseUsageEvent.ROW_TYPE,
                UsageEventDeserializer.class.getClassLoader());
        fields.addAll(parsed.getFields());
        return new RowType(fields);
    }

    @Override
    public void open(DeserializationSchema.InitializationContext context) {
        rows.open();
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<RowData> out) {
        StringData topic = topic(record.topic());
        out.collect(rows.row(record.value(), topic, record.partition(), record.offset(),
                record.timestamp() < 0 ? null : record.timestamp(), lastTopicTenant));
    }

    /** The topic as row data, and its tenant into {@link #lastTopicTenant}: both computed once per run of a topic. */
    private StringData topic(String topic) {
        if (!topic.equals(lastTopic)) {
            lastTopic = topic;
            lastTopicData = StringData.fromString(topic);
            lastTopicTenant = tenantTopicPrefix == null ? null : TenantTopics.tenantOf(tenantTopicPrefix, topic);
        }
        return lastTopicData;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
