package io.meterstream.invoices;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;

import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

/** {@link JsonRecords}: every string crosses unchanged, ASCII ones as their bytes, others in Flink's own form. */
class JsonRecordsTest {
    private static final TypeSerializer<String> SERIALIZER =
            JsonRecords.TYPE.createSerializer(new SerializerConfigImpl());

    @Test
    void everyStringCrossesUnchangedWhateverItsCharacters() throws IOException {
        List<String> records = Arrays.asList(
                "{\"tenant_id\":\"acme-ai\",\"customer_id\":\"cust-1\",\"amount\":\"0.000125\"}",
                "",
                "caf\u00e9 \u00ff",                        // beyond ASCII: Flink's form
                "{\"customer_id\":\"\u5ba2\u6237-7\"}",    // beyond Latin-1
                "lone \ud800 surrogate and \ud83d\ude00", // what no charset encoding would keep
                "a lone \udc00 surrogate beside a real ?",  // as many UTF-8 bytes as characters
                "what? ?",
                null);
        DataOutputSerializer out = new DataOutputSerializer(64);
        for (String record : records) {
            SERIALIZER.serialize(record, out);
        }
        DataInputDeserializer in = new DataInputDeserializer(out.getCopyOfBuffer());
        for (String record : records) {
            assertEquals(record, SERIALIZER.deserialize(in));
        }
        assertEquals(0, in.available(), "every byte read");
    }

    @Test
    void anAsciiRecordIsItsLengthAndBytesAndCopiesAcrossViews() throws IOException {
        String record = "{\"kind\":\"usage\",\"quantity\":\"1500\"}";
        DataOutputSerializer out = new DataOutputSerializer(64);
        SERIALIZER.serialize(record, out);
        assertEquals(4 + record.length(), out.length(), "a length and one byte per character");

        DataOutputSerializer copied = new DataOutputSerializer(64);
        SERIALIZER.copy(new DataInputDeserializer(out.getCopyOfBuffer()), copied);
        assertEquals(record, SERIALIZER.deserialize(new DataInputDeserializer(copied.getCopyOfBuffer())));
        assertNull(SERIALIZER.deserialize(new DataInputDeserializer(new byte[] {-1, -1, -1, -1})));
        assertEquals(JsonRecords.Serializer.INSTANCE,
                SERIALIZER.snapshotConfiguration().restoreSerializer(), "its snapshot restores it");
    }
}
