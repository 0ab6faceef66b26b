package io.meterstream.validation;

import java.io.Serializable;

import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;

/**
 * Raw usage-event bytes and their source coordinates -> one row of {@link UsageEventDeserializer#rowType()}: the
 * one place both usage sources parse, the Kafka source ({@link UsageEventDeserializer}) and the job tests' file of
 * lines ({@link UsageFileLines}), so a job test parses exactly as production does. One parse per record with
 * {@link UsageEventParser}; the catalog is parsed once per JVM ({@link MeterCatalog#of}) when the task opens.
 */
final class UsageRows implements Serializable {
    private static final long serialVersionUID = 1L;

    private final String catalogJson;
    private final Long referenceNowMs;
    private final long maxAgeMs;
    private final long maxFutureMs;

    private transient UsageEventParser parser;
    private transient MeterCatalog catalog;

    /**
     * @param catalogJson    {@code udfs.java_catalog.java_catalog_json(catalog)}
     * @param referenceNowMs the "now" of the age/future checks; null = the wall clock at each record
     */
    UsageRows(String catalogJson, Long referenceNowMs, long maxAgeMs, long maxFutureMs) {
        this.catalogJson = catalogJson;
        this.referenceNowMs = referenceNowMs;
        this.maxAgeMs = maxAgeMs;
        this.maxFutureMs = maxFutureMs;
    }

    /** Per task, before the first record. */
    void open() {
        parser = new UsageEventParser();
        catalog = MeterCatalog.of(catalogJson);
    }

    /**
     * The row: payload, topic, partition, offset, ingestion time (epoch ms, null when the source has none), then
     * {@link ParseUsageEvent#ROW_TYPE}'s columns ({@link ParseUsageEvent#setColumns}).
     */
    GenericRowData row(byte[] payload, StringData topic, int partition, long offset, Long ingestedMs) {
        return row(payload, topic, partition, offset, ingestedMs, null);
    }

    /**
     * The same, for a record read from a tenant topic: {@code topicTenant} is that topic's tenant
     * ({@link TenantTopics#tenantOf}), null for the shared topic (no tenant check).
     */
    GenericRowData row(byte[] payload, StringData topic, int partition, long offset, Long ingestedMs,
            String topicTenant) {
        long now = referenceNowMs == null ? System.currentTimeMillis() : referenceNowMs;
        UsageEventParser.Result parsed = parser.parse(payload, catalog, now, maxAgeMs, maxFutureMs, topicTenant);
        GenericRowData row = new GenericRowData(UsageEventDeserializer.COORDINATES.length + ParseUsageEvent.COLUMNS);
        row.setField(0, payload);
        row.setField(1, topic);
        row.setField(2, partition);
        row.setField(3, offset);
        row.setField(4, ingestedMs);
        ParseUsageEvent.setColumns(row, UsageEventDeserializer.COORDINATES.length, parsed);
        return row;
    }
}
