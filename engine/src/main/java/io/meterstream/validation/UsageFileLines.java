package io.meterstream.validation;

import java.io.IOException;
import java.nio.charset.StandardCharsets;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;

/**
 * The job tests' stand-in for the Kafka source's parse: one line of a file (one raw {@code usage-events} record)
 * -> the row of {@link UsageEventDeserializer#rowType()}, built by the same {@link UsageRows} as the Kafka
 * deserializer's, so a job test parses through production's code (wired by the test-support module
 * {@code tests/usage_files.py}, {@code file_parsed_usage}, which puts the production watermark strategy after it).
 *
 * <p>Lines arrive as text decoded as ISO-8859-1 (Flink's text line format), which maps every byte to one char:
 * {@code getBytes(ISO_8859_1)} gives the record's bytes back unchanged, invalid UTF-8 included. A file has no
 * offsets and no record timestamps: every record is partition 0, offset 0 of {@code topic}, and its ingestion time
 * ({@code src_timestamp}) is the record's top-level field {@value #INGESTED_FIELD} where a test sets one (an integer
 * or a string of one, in a well-formed JSON object; the parser ignores unknown fields), else NULL: then no customer
 * is ever idle and nothing caps the clock (see {@code io.meterstream.watermarks.UsageEventWatermarks}).
 */
public final class UsageFileLines extends RichMapFunction<String, RowData> implements ResultTypeQueryable<RowData> {
    private static final long serialVersionUID = 1L;
    /** The test-only field that stands in for a Kafka record timestamp. */
    public static final String INGESTED_FIELD = "_ingested_ms";
    private static final byte[] INGESTED_BYTES = INGESTED_FIELD.getBytes(StandardCharsets.US_ASCII);

    private final UsageRows rows;
    private final String topic;
    private final TypeInformation<RowData> producedType;
    private transient StringData topicData;

    private UsageFileLines(UsageRows rows, String topic, TypeInformation<RowData> producedType) {
        this.rows = rows;
        this.topic = topic;
        this.producedType = producedType;
    }

    /**
     * @param catalogJson    as {@link UsageEventDeserializer}'s
     * @param referenceNowMs the "now" of the age/future checks; null = the wall clock at each record
     * @param topic          the {@code src_topic} of every record
     * @param producedType   Flink's internal type info of {@link UsageEventDeserializer#rowType()}
     */
    public static UsageFileLines create(String catalogJson, Long referenceNowMs, long maxAgeMs, long maxFutureMs,
            String topic, TypeInformation<RowData> producedType) {
        return new UsageFileLines(new UsageRows(catalogJson, referenceNowMs, maxAgeMs, maxFutureMs), topic,
                producedType);
    }

    @Override
    public void open(OpenContext context) {
        rows.open();
        topicData = StringData.fromString(topic);
    }

    @Override
    public RowData map(String line) {
        byte[] payload = line.getBytes(StandardCharsets.ISO_8859_1);
        return rows.row(payload, topicData, 0, 0L, ingestedMs(payload));
    }

    /** The top-level {@value #INGESTED_FIELD} of a JSON object (the last one wins), or null. */
    static Long ingestedMs(byte[] payload) {
        if (payload == null || indexOf(payload, INGESTED_BYTES) < 0) {
            return null;
        }
        try (JsonParser p = ParseUsageEvent.JSON.createParser(payload)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            Long found = null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken value = p.nextToken();
                if (INGESTED_FIELD.equals(name)) {
                    found = integer(p, value);
                } else {
                    p.skipChildren();
                }
            }
            return p.currentToken() == JsonToken.END_OBJECT && p.nextToken() == null ? found : null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static Long integer(JsonParser p, JsonToken value) throws IOException {
        if (value == JsonToken.VALUE_NUMBER_INT && p.getNumberType() != JsonParser.NumberType.BIG_INTEGER) {
            return p.getLongValue();
        }
        if (value == JsonToken.VALUE_STRING) {
            try {
                return Long.parseLong(p.getText().trim());
            } catch (NumberFormatException e) {
                return null;
            }
        }
        p.skipChildren();
        return null;
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
