package io.meterstream.corrections;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

import io.meterstream.catalog.JavaCatalog;
import io.meterstream.golden.GoldenVectors;
import io.meterstream.routing.DedupRuns;
import io.meterstream.routing.HashedKey;
import io.meterstream.routing.SealedDedup;
import io.meterstream.routing.UsageRouting;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.table.data.StringData;
import org.junit.jupiter.api.Test;

/**
 * {@link CorrectionLedger} against {@code udfs.corrections} ({@code golden/corrections.json}): every step of every
 * stream, at its processing time, keyed by the {@code HashedKey} of (tenant_id, event_id) as the dedup memory keys
 * events; each correction gets the specified rejection reason (and the event's dead-letter reason) or the specified
 * remove/add contributions. Replayed three times: straight; with the ledger written and read back before every
 * correction (the snapshot format keeps every decision); and with every event sealed with the dedup memory before
 * every correction ({@link SealedDedup} companions, {@link CorrectionLedger#sealEntries}), the slots written and read
 * back too (sealed entries keep every decision, and what a correction changes goes back into the slots).
 */
class CorrectionLedgerGoldenTest {
    static final JsonNode VECTORS = GoldenVectors.load("corrections.json");

    @Test
    void everyCorrectionIsDecidedAsTheSpecificationDecidesIt() throws Exception {
        replay(false);
    }

    @Test
    void decisionsSurviveASnapshotBeforeEveryCorrection() throws Exception {
        replay(true);
    }

    @Test
    void decisionsAreTheSameWithEveryEventSealedBeforeEveryCorrection() throws Exception {
        int[] unsealed = replay(true, true);
        assertTrue(unsealed[0] > 100, "corrections found their events sealed: " + unsealed[0]);
    }

    private static void replay(boolean snapshots) throws Exception {
        replay(snapshots, false);
    }

    /** Returns how many entries came back from sealed blocks (with {@code sealing}). */
    private static int[] replay(boolean snapshots, boolean sealing) throws Exception {
        int[] unsealed = {0};
        JavaCatalog catalog = JavaCatalog.parse(VECTORS.get("java_catalog_json").textValue());
        long windowMs = VECTORS.get("window_size_ms").longValue();
        int applied = 0;
        int rejected = 0;
        for (JsonNode stream : VECTORS.get("streams")) {
            long horizon = stream.get("horizon_ms").longValue();
            long ttl = stream.get("dedup_ttl_ms").longValue();
            CorrectionLedger ledger = new CorrectionLedger(windowMs, horizon, ttl);
            SealedWithDedup dedup = sealing ? new SealedWithDedup(ttl, unsealed) : null;
            if (dedup != null) {
                ledger.readSealedFrom(dedup);
            }
            long last = 0;
            for (JsonNode op : stream.get("ops")) {
                Tuple2<Long, Long> key = key(op);
                long now = op.get("now_ms").longValue();
                last = now;
                switch (op.get("op").textValue()) {
                    case "event":
                        ledger.observeEvent(key.f0, key.f1, now, new CorrectionLedger.Version(
                                text(op, "customer_id"), text(op, "meter"), op.get("event_time_ms").longValue(),
                                GoldenVectors.decimal(op.get("value")), text(op, "group_json"),
                                CorrectionLedger.decodeToken(text(op, "unique_token"))));
                        if (dedup != null) {
                            dedup.observed(key.f0, key.f1, now);
                        }
                        break;
                    case "dead_letter":
                        ledger.observeDeadLetter(key.f0, key.f1, now, text(op, "reason"));
                        break;
                    default:
                        if (dedup != null) {
                            dedup.sealAll(ledger, now);
                        }
                        if (snapshots) {
                            ledger = roundTrip(ledger, windowMs, horizon, ttl);
                            if (dedup != null) {
                                ledger.readSealedFrom(dedup);
                            }
                        }
                        CorrectionLedger.Decision decision = ledger.decide(key.f0, key.f1, now, correction(op),
                                meters(catalog, op));
                        JsonNode expect = op.get("expect");
                        if (expect.has("reason")) {
                            rejected++;
                            assertEquals(text(expect, "reason"), decision.rejection, op.toString());
                            assertEquals(text(expect, "event_dead_letter_reason"), decision.eventDeadLetterReason,
                                    op.toString());
                            assertFalse(decision.applied());
                        } else {
                            applied++;
                            assertTrue(decision.applied(), op.toString());
                            assertContribution(expect.get("remove"), decision.remove, op);
                            assertContribution(expect.get("add"), decision.add, op);
                        }
                }
            }
            ledger.expireAll(last + ttl);
            assertEquals(0, ledger.size(), "nothing is held after the dedup horizon");
        }
        assertTrue(applied > 50 && rejected > 50, "the vectors exercise both outcomes");
        return unsealed;
    }

    /**
     * The dedup memory's part for the ledger, as {@code UsageRouting} plays it: the first copies' ids, sealed into
     * runs of a {@link SealedDedup} whose blocks' companions are the ledger's entries, which the ledger finds by
     * key. An id the sealed memory still remembers is never observed again in a job (it is a duplicate there): if a
     * stream observes it anyway, it stays unsealed, in the ledger's slots (which win).
     */
    static final class SealedWithDedup implements CorrectionLedger.SealedEntries {
        private final long ttl;
        private final int[] unsealed;
        private final SealedDedup sealed = new SealedDedup();
        private final SealedDedup.InMemoryBlocks blocks = new SealedDedup.InMemoryBlocks();
        private final Map<Tuple2<Long, Long>, Long> pending = new java.util.LinkedHashMap<>();
        private final SealedDedup.Found found = new SealedDedup.Found();

        SealedWithDedup(long ttl, int[] unsealed) {
            this.ttl = ttl;
            this.unsealed = unsealed;
        }

        void observed(long hi, long lo, long now) throws Exception {
            if (!sealed.lookup(hi, lo, now, ttl, blocks, found)) {
                pending.put(Tuple2.of(hi, lo), now);
            }
        }

        void sealAll(CorrectionLedger ledger, long now) throws Exception {
            DedupRuns.Entries entries = new DedupRuns.Entries();
            for (Map.Entry<Tuple2<Long, Long>, Long> id : pending.entrySet()) {
                if (!sealed.lookup(id.getKey().f0, id.getKey().f1, now, ttl, blocks, found)) {
                    entries.add(id.getKey().f0, id.getKey().f1, 0L, id.getValue());
                }
            }
            pending.clear();
            sealed.seal(entries, blocks, block -> UsageRouting.ledgerCompanion(ledger, block, now));
            sealed.expire(now, ttl, blocks);
        }

        @Override
        public boolean find(long hi, long lo, long now, CorrectionLedger.SealedAt at) {
            try {
                if (!sealed.lookup(hi, lo, now, ttl, blocks, found)) {
                    return false;
                }
                at.companion = blocks.blocks.get(SealedDedup.companionKey(found.blockKey));
                at.record = found.record;
                at.dedupFirstSeenMs = found.firstSeenMs;
                if (at.companion != null) {
                    unsealed[0]++;
                }
                return at.companion != null;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

    private static CorrectionLedger roundTrip(CorrectionLedger ledger, long windowMs, long horizon, long ttl)
            throws Exception {
        DataOutputSerializer out = new DataOutputSerializer(256);
        ledger.prepareSnapshot(Long.MIN_VALUE / 2, hi -> 0);
        ledger.write(out, 0);
        CorrectionLedger restored = new CorrectionLedger(windowMs, horizon, ttl);
        restored.read(new DataInputDeserializer(out.getCopyOfBuffer()));
        assertEquals(ledger.size(), restored.size());
        return restored;
    }

    private static void assertContribution(JsonNode expected, CorrectionLedger.Contribution got, JsonNode op) {
        if (expected == null || expected.isNull()) {
            assertNull(got, op.toString());
            return;
        }
        String where = op.toString();
        assertEquals(text(op, "tenant_id"), got.tenantId, where);
        assertEquals(text(expected, "customer_id"), got.customerId, where);
        assertEquals(text(expected, "meter"), got.meter, where);
        assertEquals(text(expected, "group_json"), got.groupJson, where);
        assertEquals(expected.get("window_start_ms").longValue(), got.windowStartMs, where);
        assertEquals(expected.get("window_end_ms").longValue(), got.windowEndMs, where);
        assertEquals(text(expected, "event_id"), got.eventId, where);
        assertEquals(expected.get("event_time_ms").longValue(), got.eventTimeMs, where);
        assertEquals(text(expected, "value"), GoldenVectors.wire(got.value), where);
        assertEquals(text(expected, "unique_value"), got.uniqueValue, where);
    }

    private static CorrectionLedger.Correction correction(JsonNode op) {
        Map<String, String> dimensions = null;
        JsonNode dims = op.get("dimensions");
        if (dims != null && !dims.isNull()) {
            dimensions = new HashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = dims.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                dimensions.put(e.getKey(), e.getValue().textValue());
            }
        }
        BigDecimal value = GoldenVectors.decimal(op.get("value"));
        return new CorrectionLedger.Correction(text(op, "tenant_id"), text(op, "event_id"), text(op, "action"),
                value, dimensions);
    }

    private static Map<String, JavaCatalog.Meter> meters(JavaCatalog catalog, JsonNode op) {
        Map<String, JavaCatalog.Meter> meters = new HashMap<>(catalog.tenants().get(text(op, "tenant_id")).meters);
        for (JsonNode removed : op.get("removed_meters")) {
            meters.remove(removed.textValue());
        }
        return meters;
    }

    static Tuple2<Long, Long> key(JsonNode op) {
        return new HashedKey().part(StringData.fromString(text(op, "tenant_id")))
                .part(StringData.fromString(text(op, "event_id"))).key();
    }

    private static String text(JsonNode node, String field) {
        return GoldenVectors.text(node.get(field));
    }

    @Test
    void theHorizonIsAtMostTheDedupHorizon() {
        assertThrows(IllegalArgumentException.class, () -> new CorrectionLedger(60_000, 0, 10));
        assertThrows(IllegalArgumentException.class, () -> new CorrectionLedger(60_000, 11, 10));
    }

    @Test
    void aGroupLongerThan64KiBSurvivesTheSnapshot() throws Exception {
        String group = "{\"model\":\"" + "\\u0000".repeat(12_000) + "\"}";  // an escaped group: > 64 KiB
        CorrectionLedger ledger = new CorrectionLedger(60_000, 1_000, 5_000);
        ledger.observeEvent(1L, 2L, 10L, new CorrectionLedger.Version("c", "input_tokens", 0L, BigDecimal.TEN, group,
                null));
        CorrectionLedger restored = roundTrip(ledger, 60_000, 1_000, 5_000);
        JavaCatalog catalog = JavaCatalog.parse(VECTORS.get("java_catalog_json").textValue());
        CorrectionLedger.Decision decision = restored.decide(1L, 2L, 11L, new CorrectionLedger.Correction("acme-ai",
                "e", CorrectionLedger.CANCEL, null, null), catalog.tenants().get("acme-ai").meters);
        assertTrue(group.length() > 65_536);
        assertEquals(group, decision.remove.groupJson);
    }

    /**
     * A snapshot of one billed event of {@code meter} in the current format, then as releases before wrote it: format
     * 3, 2 and 1 (int string lengths; customer, meter, event time, value, group, unique; then a contents flag from
     * format 2 on, a unique_count flag in format 3), all written by a release that retained what its format says.
     */
    private static byte[][] formats(String meter) throws Exception {
        CorrectionLedger ledger = new CorrectionLedger(60_000, 1_000, 5_000);
        ledger.observeEvent(1L, 2L, 10L, new CorrectionLedger.Version("c", meter, 0L, BigDecimal.TEN, "{}", "u1"));
        DataOutputSerializer out = new DataOutputSerializer(256);
        ledger.prepareSnapshot(10L, hi -> 0);
        ledger.write(out, 0);
        return new byte[][] {out.getCopyOfBuffer(), oldFormat(3, meter), oldFormat(2, meter), oldFormat(1, meter),
            format4(meter)};
    }

    /** The entry of {@link #formats} as format 4 wrote it: each event with its series' strings (varint lengths). */
    private static byte[] format4(String meter) throws Exception {
        DataOutputSerializer out = new DataOutputSerializer(256);
        out.writeInt(4);
        out.writeInt(1);
        out.writeLong(1L);
        out.writeLong(2L);
        out.writeLong(10L);
        out.writeByte(LedgerSlots.EVENT | LedgerSlots.CONTENTS_RETAINED | LedgerSlots.UNIQUE_RETAINED);
        for (String text : new String[] {"c", meter, "{}"}) {
            out.writeByte(text.length());
            out.write(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
        out.writeLong(0L);
        out.writeByte(0);  // the value 10: scale 0, unscaled 10, billed at scale 0
        out.writeLong(10L);
        out.writeByte(0);
        out.writeBoolean(true);
        out.writeByte(2);
        out.write("u1".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return out.getCopyOfBuffer();
    }

    @Test
    void anEntryOfFormat4IsReadWithItsSeries() throws Exception {
        for (String meter : new String[] {"seats", "active_users", "input_tokens"}) {
            CorrectionLedger.Decision applied = cancelAfterRestore(formats(meter)[4]);
            assertTrue(applied.applied(), meter);
            if (meter.equals("active_users")) {
                assertEquals("u1", applied.remove.uniqueValue);
            } else {
                assertEquals(0, BigDecimal.TEN.compareTo(applied.remove.value), meter);
            }
            assertEquals("{}", applied.remove.groupJson);
        }
    }

    @Test
    void aKeyGroupWritesEachSeriesOnceForAllItsEvents() throws Exception {
        String group = "{\"model\":\"" + "n".repeat(200) + "\"}";
        CorrectionLedger ledger = new CorrectionLedger(60_000, 1_000, 5_000);
        for (long event = 0; event < 100; event++) {
            ledger.observeEvent(event, event, 10L, new CorrectionLedger.Version("c", "input_tokens", event,
                    BigDecimal.valueOf(event), event % 2 == 0 ? group : "{}", null));
        }
        DataOutputSerializer out = new DataOutputSerializer(256);
        ledger.prepareSnapshot(10L, hi -> 0);
        ledger.write(out, 0);
        assertTrue(out.length() < 100 * 60, "the 200-byte group is written once, not per event: " + out.length());
        CorrectionLedger restored = new CorrectionLedger(60_000, 1_000, 5_000);
        restored.read(new DataInputDeserializer(out.getCopyOfBuffer()));
        JavaCatalog catalog = JavaCatalog.parse(VECTORS.get("java_catalog_json").textValue());
        for (long event : new long[] {0, 1, 98, 99}) {
            CorrectionLedger.Decision decision = restored.decide(event, event, 11L, new CorrectionLedger.Correction(
                    "acme-ai", "e", CorrectionLedger.CANCEL, null, null), catalog.tenants().get("acme-ai").meters);
            assertTrue(decision.applied(), "event " + event);
            assertEquals(event % 2 == 0 ? group : "{}", decision.remove.groupJson);
            assertEquals(0, BigDecimal.valueOf(event).compareTo(decision.remove.value));
        }
    }

    private static byte[] oldFormat(int version, String meter) throws Exception {
        DataOutputSerializer out = new DataOutputSerializer(256);
        out.writeInt(version);
        out.writeInt(1);
        out.writeLong(1L);
        out.writeLong(2L);
        out.writeLong(10L);
        out.writeByte(0);  // an event
        for (String text : new String[] {"c", meter}) {
            byte[] bytes = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            out.writeInt(bytes.length);
            out.write(bytes);
        }
        out.writeLong(0L);
        out.writeBoolean(true);
        out.writeInt(2);
        out.write("10".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        out.writeInt(2);
        out.write("{}".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        out.writeBoolean(true);
        out.writeInt(2);
        out.write("u1".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        if (version >= 2) {
            out.writeBoolean(true);
        }
        if (version == 3) {
            out.writeBoolean(true);
        }
        return out.getCopyOfBuffer();
    }

    private static CorrectionLedger.Decision cancelAfterRestore(byte[] snapshot) throws Exception {
        JavaCatalog catalog = JavaCatalog.parse(VECTORS.get("java_catalog_json").textValue());
        CorrectionLedger restored = new CorrectionLedger(60_000, 1_000, 5_000);
        restored.read(new DataInputDeserializer(snapshot));
        return restored.decide(1L, 2L, 11L, new CorrectionLedger.Correction("acme-ai", "e", CorrectionLedger.CANCEL,
                null, null), catalog.tenants().get("acme-ai").meters);
    }

    @Test
    void anEntryOfFormat1IsNotCorrectableForMaxMinAndLastMetersButForSumAndCount() throws Exception {
        byte[][] seats = formats("seats");  // max
        CorrectionLedger.Decision rejected = cancelAfterRestore(seats[3]);
        assertEquals(CorrectionLedger.AGGREGATION_NOT_CORRECTABLE, rejected.rejection);
        assertTrue(rejected.detail.contains("before this release kept the window contents"), rejected.detail);
        for (int format = 0; format < 3; format++) {
            CorrectionLedger.Decision applied = cancelAfterRestore(seats[format]);
            assertTrue(applied.applied(), "format index " + format);
            assertEquals(0, BigDecimal.TEN.compareTo(applied.remove.value));
        }
        assertTrue(cancelAfterRestore(formats("input_tokens")[3]).applied());  // sum: no contents needed
    }

    @Test
    void anEntryOfFormat2IsNotCorrectableForUniqueCountMeters() throws Exception {
        byte[][] users = formats("active_users");  // unique_count
        assertTrue(cancelAfterRestore(users[1]).applied(), "format 3 said its unique_count windows were retained");
        for (byte[] old : new byte[][] {users[2], users[3]}) {
            CorrectionLedger.Decision rejected = cancelAfterRestore(old);
            assertEquals(CorrectionLedger.AGGREGATION_NOT_CORRECTABLE, rejected.rejection);
            assertTrue(rejected.detail.contains("(unique_count), billed before this release"), rejected.detail);
        }
        CorrectionLedger.Decision applied = cancelAfterRestore(users[0]);
        assertTrue(applied.applied());
        assertEquals("u1", applied.remove.uniqueValue);
    }

    @Test
    void aTokenDecodesToItsValue() {
        assertEquals("a,b%2C%", CorrectionLedger.decodeToken("a%2Cb%252C%25"));
        assertNull(CorrectionLedger.decodeToken(null));
    }
}
