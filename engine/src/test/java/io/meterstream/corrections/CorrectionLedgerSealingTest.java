package io.meterstream.corrections;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.Map;

import io.meterstream.catalog.JavaCatalog;

import org.junit.jupiter.api.Test;

/**
 * {@link CorrectionLedger#sealEntries} for the states the golden replay seals rarely or never (it seals before every
 * correction, so a correction always finds its event sealed): an event cancelled, amended or past the correction
 * horizon before its ids are sealed keeps that state in its block's companion; a dead letter's marker stays in the
 * slots; a block whose ids have no entry gets no companion.
 */
class CorrectionLedgerSealingTest {
    private static final long WINDOW_MS = 60_000;
    private static final long HORIZON_MS = 1_000;
    private static final long TTL_MS = 5_000;
    private static final long T0 = 1_000_000L;
    private static final Map<String, JavaCatalog.Meter> METERS = JavaCatalog.parse(
            CorrectionLedgerGoldenTest.VECTORS.get("java_catalog_json").textValue()).tenants().get("acme-ai").meters;

    private final int[] unsealed = {0};
    private final CorrectionLedger ledger = new CorrectionLedger(WINDOW_MS, HORIZON_MS, TTL_MS);
    private final CorrectionLedgerGoldenTest.SealedWithDedup dedup =
            new CorrectionLedgerGoldenTest.SealedWithDedup(TTL_MS, unsealed);

    CorrectionLedgerSealingTest() {
        ledger.readSealedFrom(dedup);
    }

    @Test
    void aCancelledEventStaysCancelledWhenSealed() throws Exception {
        event(1L, "10");
        assertTrue(decide(1L, CorrectionLedger.CANCEL, null, T0 + 1).applied());
        dedup.sealAll(ledger, T0 + 2);
        assertEquals(0, ledger.size(), "sealed: out of the slots");
        assertEquals(CorrectionLedger.ALREADY_CANCELLED, decide(1L, CorrectionLedger.CANCEL, null, T0 + 3).rejection);
        assertEquals(1, unsealed[0]);
    }

    @Test
    void anAmendedEventIsSealedWithItsAmendedValue() throws Exception {
        event(1L, "10");
        assertTrue(decide(1L, CorrectionLedger.AMEND, "7.5", T0 + 1).applied());
        dedup.sealAll(ledger, T0 + 2);
        CorrectionLedger.Decision cancel = decide(1L, CorrectionLedger.CANCEL, null, T0 + 3);
        assertEquals(0, new BigDecimal("7.5").compareTo(cancel.remove.value));
        assertNull(cancel.add);
        assertEquals(T0 - 30_000, cancel.remove.eventTimeMs);
        assertEquals("{\"model\":\"a\"}", cancel.remove.groupJson);
    }

    @Test
    void anEventPastTheHorizonWhenSealedIsOutsideItThenUnknownAfterTheDedupHorizon() throws Exception {
        event(1L, "10");
        dedup.sealAll(ledger, T0 + HORIZON_MS);
        assertEquals(CorrectionLedger.OUTSIDE_HORIZON,
                decide(1L, CorrectionLedger.CANCEL, null, T0 + HORIZON_MS + 1).rejection);
        assertEquals(CorrectionLedger.UNKNOWN_EVENT, decide(1L, CorrectionLedger.CANCEL, null, T0 + TTL_MS).rejection);
    }

    @Test
    void anEventSealedBeforeItsHorizonIsOutsideItAfterAndTheDeadLetterWithItsIdsChangesNothing() throws Exception {
        event(1L, "10");
        dedup.sealAll(ledger, T0 + 1);
        ledger.observeDeadLetter(1L, 1L, T0 + 2, "too_old");  // the key holds an event: no marker
        assertTrue(decide(1L, CorrectionLedger.AMEND, "3", T0 + HORIZON_MS - 1).applied());
        assertEquals(CorrectionLedger.OUTSIDE_HORIZON, decide(1L, CorrectionLedger.CANCEL, null, T0 + HORIZON_MS)
                .rejection);
    }

    @Test
    void aDeadLetterMarkerStaysInTheSlotsAndABlockWithoutEntriesHasNoCompanion() throws Exception {
        ledger.observeDeadLetter(1L, 1L, T0, "too_old");
        assertNull(ledger.sealEntries(new long[] {1L, 2L}, new long[] {1L, 2L}, new long[] {T0, T0}, 2, T0 + 1));
        assertEquals(1, ledger.size());
        assertEquals(CorrectionLedger.EVENT_DEAD_LETTERED, decide(1L, CorrectionLedger.CANCEL, null, T0 + 2)
                .rejection);
    }

    private void event(long key, String value) throws Exception {
        ledger.observeEvent(key, key, T0, new CorrectionLedger.Version("c1", "input_tokens", T0 - 30_000,
                new BigDecimal(value), "{\"model\":\"a\"}", null));
        dedup.observed(key, key, T0);
    }

    private CorrectionLedger.Decision decide(long key, String action, String value, long now) {
        return ledger.decide(key, key, now, new CorrectionLedger.Correction("acme-ai", "e" + key, action,
                value == null ? null : new BigDecimal(value), null), METERS);
    }
}
