package io.meterstream.rating;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import io.meterstream.golden.GoldenVectors;
import io.meterstream.routing.HashedKey;
import io.meterstream.routing.WindowedUsage;
import io.meterstream.rules.Rules;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.table.data.StringData;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;
import org.junit.jupiter.api.Test;

/**
 * Corrections in {@link WindowRating} ({@code udfs.corrections.correct_window}; max, min and last windows from the
 * contents they retain, with what they held before retaining frozen): each stream
 * with corrections is held against the same operator run on the corrected usage alone (the money of a period after
 * its corrections is that of its corrected usage, the spec's rule), and the correction lines against what the spec
 * says of their kind, id and invoice: a correction of an open window changes it (no line of its own), one of a fired
 * window is a {@code correction} line adjusting the window's usage line, one decided after the period closed is a
 * prior-period adjustment; an amend of a group-by dimension moves usage between two series; a correction waiting
 * for its watermark survives a snapshot and restore. The line JSON is {@link RateLineItem#correctionLine}'s, bound to
 * the spec byte for byte by {@code CorrectionLinesGoldenTest}.
 */
class WindowRatingCorrectionsTest {
    private static final JsonNode VECTORS = GoldenVectors.load("lateness.json");
    private static final String CATALOG = VECTORS.get("java_catalog_json").textValue();
    private static final long WINDOW_MS = 60_000;
    private static final long TTL_MS = 67L * 24 * 3600 * 1000;
    private static final long MAX_AGE_MS = 35L * 24 * 3600 * 1000;
    private static final OutputTag<Row> UNIQUE = new OutputTag<>("unique-count-windows", Types.GENERIC(Row.class));
    private static final OutputTag<Row> LATE = new OutputTag<>("late", Types.GENERIC(Row.class));
    private static final OutputTag<Row> ACCOUNTING = new OutputTag<>("accounting", Types.GENERIC(Row.class));
    private static final ObjectMapper JSON = new ObjectMapper();
    /** 2026-03-10T12:00Z: mid-March, New York's period runs to April 1st 04:00Z. */
    private static final long T = 1_773_144_000_000L;
    private static final String NOVA = "{\"model\":\"nova-large\"}";
    private static final String ECHO = "{\"model\":\"echo\"}";

    @Test
    void aCancelInAFiredSumWindowIsANegativeCorrectionLineAndLeavesThePeriodAtTheCorrectedUsage() throws Exception {
        List<JsonNode> lines = run(List.of(
                usage("input_tokens", NOVA, WindowedUsage.SUM, T + 1_000, "8000000"),
                usage("input_tokens", NOVA, WindowedUsage.SUM, T + 2_000, "5000000"),
                watermark(T + WINDOW_MS + 10_000),
                correction(WindowedUsage.REMOVE, "input_tokens", NOVA, WindowedUsage.SUM, T + 2_000, "5000000",
                        T + WINDOW_MS + 10_000)));
        List<JsonNode> corrected = run(List.of(usage("input_tokens", NOVA, WindowedUsage.SUM, T + 1_000, "8000000")));
        assertEquals(2, lines.size(), lines.toString());
        JsonNode usage = lines.get(0);
        JsonNode line = lines.get(1);
        assertEquals(Rules.LINE_KIND_CORRECTION, line.get("kind").textValue());
        assertEquals(usage.get("line_item_id").textValue(), line.get("adjusts_line_item_id").textValue());
        assertEquals(usage.get("invoice_id").textValue(), line.get("invoice_id").textValue());
        assertEquals("-5000000", line.get("quantity").textValue());
        assertEquals(1, line.get("event_count").longValue());
        assertTrue(new BigDecimal(line.get("amount").textValue()).signum() < 0, line.toString());
        assertEquals(corrected.get(0).get("period_quantity_to_date"), line.get("period_quantity_to_date"));
        assertEquals(corrected.get(0).get("period_amount_to_date"), line.get("period_amount_to_date"));
        assertEquals(0, new BigDecimal(corrected.get(0).get("amount").textValue()).compareTo(
                new BigDecimal(usage.get("amount").textValue()).add(new BigDecimal(line.get("amount").textValue()))));
    }

    @Test
    void cancellingAFiredWindowsMaximumFoldsThePeriodAgainOverTheRest() throws Exception {
        List<JsonNode> lines = run(List.of(
                usage("seats", "{}", WindowedUsage.MAX, T + 1_000, "5"),
                usage("seats", "{}", WindowedUsage.MAX, T + 2_000, "9"),
                usage("seats", "{}", WindowedUsage.MAX, T + WINDOW_MS + 1_000, "7"),
                watermark(T + 2 * WINDOW_MS + 10_000),
                correction(WindowedUsage.REMOVE, "seats", "{}", WindowedUsage.MAX, T + 2_000, "9",
                        T + 2 * WINDOW_MS + 10_000)));
        List<JsonNode> corrected = run(List.of(
                usage("seats", "{}", WindowedUsage.MAX, T + 1_000, "5"),
                usage("seats", "{}", WindowedUsage.MAX, T + WINDOW_MS + 1_000, "7")));
        assertEquals(3, lines.size(), lines.toString());
        JsonNode line = lines.get(2);
        assertEquals(Rules.LINE_KIND_CORRECTION, line.get("kind").textValue());
        assertEquals(lines.get(0).get("line_item_id").textValue(), line.get("adjusts_line_item_id").textValue());
        assertEquals("-4", line.get("quantity").textValue(), "the window's maximum 9 -> 5");
        assertEquals("7", line.get("period_quantity_to_date").textValue(), "the other window's 7 is the period's now");
        JsonNode last = corrected.get(corrected.size() - 1);
        assertEquals(last.get("period_quantity_to_date"), line.get("period_quantity_to_date"));
        assertEquals(last.get("period_amount_to_date"), line.get("period_amount_to_date"));
    }

    @Test
    void anAmendOfALastEventAndACancelOfTheLatestLeaveThePeriodAtTheCorrectedUsage() throws Exception {
        List<Step> steps = List.of(
                usage("storage_gb", "{}", WindowedUsage.LAST, T + 1_000, "10"),
                usage("storage_gb", "{}", WindowedUsage.LAST, T + 2_000, "20"),
                watermark(T + WINDOW_MS + 10_000),
                correction(WindowedUsage.REMOVE, "storage_gb", "{}", WindowedUsage.LAST, T + 2_000, "20",
                        T + WINDOW_MS + 10_000),
                correction(WindowedUsage.REMOVE, "storage_gb", "{}", WindowedUsage.LAST, T + 1_000, "10",
                        T + WINDOW_MS + 10_000),
                correction(WindowedUsage.ADD, "storage_gb", "{}", WindowedUsage.LAST, T + 1_000, "30",
                        T + WINDOW_MS + 10_000));
        List<JsonNode> lines = run(steps);
        List<JsonNode> corrected = run(List.of(usage("storage_gb", "{}", WindowedUsage.LAST, T + 1_000, "30")));
        assertEquals(2, lines.size(), lines.toString());
        JsonNode line = lines.get(1);
        assertEquals("10", line.get("quantity").textValue(), "the window's last 20 -> 30");
        assertEquals(2, line.get("event_count").longValue(), "a cancel and an amend (its remove and add)");
        assertEquals(corrected.get(0).get("period_quantity_to_date"), line.get("period_quantity_to_date"));
        assertEquals(corrected.get(0).get("period_amount_to_date"), line.get("period_amount_to_date"));
    }

    /**
     * A cancel of the only event of an open window, the first of its period: the window fires as the spec bills an
     * empty window (udfs.line_items.accumulate_window: event_count 0, quantity 0, period at 0, amount 0), instead
     * of failing the job (found by `meterstream chaos` with corrections).
     */
    @Test
    void anOpenMaxOrMinWindowEmptiedByACancelBillsZero() throws Exception {
        for (String meter : List.of("low_water", "seats")) {
            byte aggregation = meter.equals("seats") ? WindowedUsage.MAX : WindowedUsage.MIN;
            List<JsonNode> lines = run(List.of(
                    usage(meter, "{}", aggregation, T + 2_000, "4"),
                    correction(WindowedUsage.REMOVE, meter, "{}", aggregation, T + 2_000, "4", T)));
            assertEquals(1, lines.size(), lines.toString());
            JsonNode line = lines.get(0);
            assertEquals("usage", line.get("kind").textValue());
            assertEquals(0, line.get("event_count").longValue());
            assertEquals("0", line.get("quantity").textValue());
            assertEquals("0", line.get("period_quantity_to_date").textValue());
            assertEquals(0, new BigDecimal(line.get("amount").textValue()).signum(), line.toString());
        }
    }

    /** An open last window emptied by a cancel after an earlier window: the period keeps the earlier window's last. */
    @Test
    void anOpenLastWindowEmptiedByACancelLeavesThePeriodAtTheLastBefore() throws Exception {
        List<JsonNode> lines = run(List.of(
                usage("storage_gb", "{}", WindowedUsage.LAST, T + 1_000, "10"),
                usage("storage_gb", "{}", WindowedUsage.LAST, T + WINDOW_MS + 1_000, "20"),
                correction(WindowedUsage.REMOVE, "storage_gb", "{}", WindowedUsage.LAST, T + WINDOW_MS + 1_000, "20",
                        T + WINDOW_MS)));
        assertEquals(2, lines.size(), lines.toString());
        JsonNode emptied = lines.get(1);
        assertEquals(0, emptied.get("event_count").longValue());
        assertEquals("0", emptied.get("quantity").textValue());
        assertEquals("10", emptied.get("period_quantity_to_date").textValue());
        assertEquals(0, new BigDecimal(emptied.get("amount").textValue()).signum(), emptied.toString());
    }

    @Test
    void aCorrectionOfAnOpenMinWindowChangesItsUsageLine() throws Exception {
        List<JsonNode> lines = run(List.of(
                usage("low_water", "{}", WindowedUsage.MIN, T + 1_000, "3"),
                usage("low_water", "{}", WindowedUsage.MIN, T + 2_000, "1"),
                correction(WindowedUsage.REMOVE, "low_water", "{}", WindowedUsage.MIN, T + 2_000, "1", T)));
        List<JsonNode> corrected = run(List.of(usage("low_water", "{}", WindowedUsage.MIN, T + 1_000, "3")));
        assertEquals(1, lines.size(), lines.toString());
        assertEquals(withoutEmittedAt(corrected.get(0)).get("quantity"), withoutEmittedAt(lines.get(0)).get("quantity"));
        assertEquals("3", lines.get(0).get("quantity").textValue());
    }

    @Test
    void whatASeriesHeldBeforeItRetainedContentsIsFrozenAndItsCorrectionsStillExact() throws Exception {
        // a release without contents (or corrections off) held 9 in the open window; the restore retains from then
        var before = open(null, new WindowRating(CATALOG, WINDOW_MS, TTL_MS, MAX_AGE_MS, UNIQUE, LATE, ACCOUNTING,
                false));
        before.processElement(new StreamRecord<>(usage("seats", "{}", WindowedUsage.MAX, T + 1_000, "9").record,
                T + 1_000));
        OperatorSubtaskState snapshot = before.snapshot(1L, 1L);
        before.close();
        var after = open(snapshot);
        after.processElement(new StreamRecord<>(usage("seats", "{}", WindowedUsage.MAX, T + 2_000, "12").record,
                T + 2_000));
        after.processWatermark(T + WINDOW_MS + 10_000);
        OperatorSubtaskState retained = after.snapshot(2L, 2L);  // format 5: contents and frozen parts written
        after.close();
        var restored = open(retained);
        restored.processElement(new StreamRecord<>(correction(WindowedUsage.REMOVE, "seats", "{}", WindowedUsage.MAX,
                T + 2_000, "12", T + WINDOW_MS + 10_000).record, T + 2_000));
        restored.processWatermark(Long.MAX_VALUE);
        List<String> out = restored.extractOutputValues();
        assertEquals(1, out.size(), out.toString());
        JsonNode line = JSON.readTree(out.get(0));
        assertEquals("-3", line.get("quantity").textValue(), "12 removed: the frozen 9 stands");
        assertEquals("9", line.get("period_quantity_to_date").textValue());
        restored.close();
    }

    @Test
    void aCorrectionOfAnOpenWindowChangesItsUsageLineAndMakesNoLineOfItsOwn() throws Exception {
        List<JsonNode> lines = run(List.of(
                usage("requests", "{}", WindowedUsage.COUNT, T + 1_000, null),
                usage("requests", "{}", WindowedUsage.COUNT, T + 2_000, null),
                usage("requests", "{}", WindowedUsage.COUNT, T + 3_000, null),
                correction(WindowedUsage.REMOVE, "requests", "{}", WindowedUsage.COUNT, T + 2_000, null,
                        T + 5_000)));
        List<JsonNode> corrected = run(List.of(
                usage("requests", "{}", WindowedUsage.COUNT, T + 1_000, null),
                usage("requests", "{}", WindowedUsage.COUNT, T + 3_000, null)));
        assertEquals(1, lines.size(), lines.toString());
        assertEquals(withoutEmittedAt(corrected.get(0)), withoutEmittedAt(lines.get(0)));
        assertEquals(2, lines.get(0).get("event_count").longValue());
    }

    @Test
    void anAmendOfAGroupByDimensionMovesUsageFromOneSeriesToAnother() throws Exception {
        List<JsonNode> lines = run(List.of(
                usage("input_tokens", NOVA, WindowedUsage.SUM, T + 1_000, "300"),
                usage("input_tokens", ECHO, WindowedUsage.SUM, T + WINDOW_MS + 1_000, "200"),
                watermark(T + 2 * WINDOW_MS + 10_000),
                correction(WindowedUsage.REMOVE, "input_tokens", NOVA, WindowedUsage.SUM, T + 1_000, "300",
                        T + 2 * WINDOW_MS + 10_000),
                correction(WindowedUsage.ADD, "input_tokens", ECHO, WindowedUsage.SUM, T + 1_000, "300",
                        T + 2 * WINDOW_MS + 10_000)));
        List<JsonNode> corrections = new ArrayList<>();
        for (JsonNode line : lines) {
            if (line.get("kind").textValue().equals(Rules.LINE_KIND_CORRECTION)) {
                corrections.add(line);
            }
        }
        assertEquals(2, corrections.size(), lines.toString());
        JsonNode removed = corrections.get(0).get("group").get("model").textValue().equals("nova-large")
                ? corrections.get(0) : corrections.get(1);
        JsonNode added = removed == corrections.get(0) ? corrections.get(1) : corrections.get(0);
        assertEquals("-300", removed.get("quantity").textValue());
        assertEquals("0", removed.get("period_quantity_to_date").textValue());
        assertEquals("300", added.get("quantity").textValue());
        assertEquals("500", added.get("period_quantity_to_date").textValue());
        assertEquals(removed.get("window_start"), added.get("window_start"));
        assertNotEquals(removed.get("line_item_id"), added.get("line_item_id"));
    }

    @Test
    void usageMovedIntoAWindowItsSeriesNeverHadAndCancelledInTheSameWatermarkStepIsDecidedNotAFailure()
            throws Exception {
        // An amend of the region moves the event into a series with no usage in its window (the add opens it), and a
        // cancel of it follows after the same watermark: this used to fail the job (a remove of a window neither open
        // nor fired) for min, max, last and unique_count series.
        long floor = T + 2 * WINDOW_MS + 10_000;
        List<JsonNode> lines = run(List.of(
                usage("low_water", "{\"region\":\"eu\"}", WindowedUsage.MIN, T + 1_000, "12"),
                usage("low_water", "{\"region\":\"eu\"}", WindowedUsage.MIN, T + 2_000, "7"),
                watermark(floor),
                correction(WindowedUsage.REMOVE, "low_water", "{\"region\":\"eu\"}", WindowedUsage.MIN, T + 2_000,
                        "7", floor),
                correction(WindowedUsage.ADD, "low_water", "{\"region\":\"us\"}", WindowedUsage.MIN, T + 2_000, "7",
                        floor),
                correction(WindowedUsage.REMOVE, "low_water", "{\"region\":\"us\"}", WindowedUsage.MIN, T + 2_000,
                        "7", floor)));
        JsonNode eu = null;
        for (JsonNode line : lines) {
            if (line.get("kind").textValue().equals(Rules.LINE_KIND_CORRECTION)) {
                assertEquals("eu", line.get("group").get("region").textValue(), lines.toString());
                eu = line;
            }
        }
        assertEquals("12", eu.get("period_quantity_to_date").textValue(), lines.toString());
    }

    @Test
    void aCorrectionDecidedAfterThePeriodClosedIsAPriorPeriodAdjustment() throws Exception {
        long periodEnd = new RateLineItem().periodEndMs(StringData.fromString(CATALOG), "acme-ai", T);
        long closed = periodEnd + 3_600_000;  // end + the tenant's grace (1 h)
        List<JsonNode> lines = run(List.of(
                usage("requests", "{}", WindowedUsage.COUNT, T + 1_000, null),
                usage("requests", "{}", WindowedUsage.COUNT, T + 2_000, null),
                watermark(closed),
                correction(WindowedUsage.REMOVE, "requests", "{}", WindowedUsage.COUNT, T + 2_000, null, closed)));
        List<JsonNode> open = run(List.of(
                usage("requests", "{}", WindowedUsage.COUNT, T + 1_000, null),
                usage("requests", "{}", WindowedUsage.COUNT, T + 2_000, null),
                watermark(closed - 1),
                correction(WindowedUsage.REMOVE, "requests", "{}", WindowedUsage.COUNT, T + 2_000, null,
                        closed - 1)));
        JsonNode prior = lines.get(1);
        JsonNode stillOpen = open.get(1);
        assertEquals(Rules.LINE_KIND_PRIOR_PERIOD_ADJUSTMENT, prior.get("kind").textValue());
        assertEquals(Rules.LINE_KIND_CORRECTION, stillOpen.get("kind").textValue());
        assertNotEquals(lines.get(0).get("invoice_id"), prior.get("invoice_id"));
        assertEquals(open.get(0).get("invoice_id"), stillOpen.get("invoice_id"));
        assertEquals(stillOpen.get("amount"), prior.get("amount"));
        assertEquals("1", prior.get("period_quantity_to_date").textValue());
    }

    @Test
    void aCorrectionWaitingForItsWatermarkSurvivesASnapshotAndRestore() throws Exception {
        var harness = open(null);
        harness.processElement(new StreamRecord<>(usage("requests", "{}", WindowedUsage.COUNT, T + 1_000, null)
                .record, T + 1_000));
        harness.processElement(new StreamRecord<>(usage("requests", "{}", WindowedUsage.COUNT, T + 2_000, null)
                .record, T + 2_000));
        harness.processWatermark(T + WINDOW_MS + 10_000);
        harness.processElement(new StreamRecord<>(correction(WindowedUsage.REMOVE, "requests", "{}",
                WindowedUsage.COUNT, T + 2_000, null, T + WINDOW_MS + 10_000).record, T + 2_000));
        List<String> before = new ArrayList<>(harness.extractOutputValues());
        OperatorSubtaskState snapshot = harness.snapshot(1L, 0L);
        harness.close();
        var restored = open(snapshot);
        restored.processWatermark(Long.MAX_VALUE);
        List<String> after = restored.extractOutputValues();
        restored.close();
        assertEquals(1, before.size());
        assertEquals(1, after.size(), after.toString());
        JsonNode line = JSON.readTree(after.get(0));
        assertEquals(Rules.LINE_KIND_CORRECTION, line.get("kind").textValue());
        assertEquals("1", line.get("period_quantity_to_date").textValue());
    }

    @Test
    void correctionsAfterTheEndOfTheUsageAreDecidedTogetherBeforeTheMaximumGoesOn() throws Exception {
        // a bounded run: the corrections come after the usage ended (floor at the maximum), from two routing subtasks
        // (each sends its own before its maximum): one line for both, out before this operator's maximum
        WindowRating operator = new WindowRating(CATALOG, WINDOW_MS, TTL_MS, MAX_AGE_MS, UNIQUE, LATE, ACCOUNTING,
                true);
        var harness = open(null, operator);
        harness.processElement(new StreamRecord<>(usage("input_tokens", NOVA, WindowedUsage.SUM, T + 1_000, "7")
                .record, T + 1_000));
        harness.processElement(new StreamRecord<>(usage("input_tokens", NOVA, WindowedUsage.SUM, T + 2_000, "5")
                .record, T + 2_000));
        harness.processWatermark(T + 3 * WINDOW_MS);
        harness.processElement(new StreamRecord<>(correction(WindowedUsage.AMEND, "input_tokens", NOVA,
                WindowedUsage.SUM, T + 1_000, "-4", Long.MAX_VALUE).record, T + 1_000));
        harness.processElement(new StreamRecord<>(correction(WindowedUsage.REMOVE, "input_tokens", NOVA,
                WindowedUsage.SUM, T + 2_000, "5", Long.MAX_VALUE).record, T + 2_000));
        assertEquals(1, harness.extractOutputValues().size(), "the usage line; the corrections wait for the end");
        harness.processWatermark(Long.MAX_VALUE);
        List<String> out = harness.extractOutputValues();
        assertEquals(2, out.size(), out.toString());
        JsonNode line = JSON.readTree(out.get(1));
        assertEquals(Rules.LINE_KIND_CORRECTION, line.get("kind").textValue());
        assertEquals("3", line.get("period_quantity_to_date").textValue());
        assertEquals("-9", line.get("quantity").textValue());
        assertEquals(2, line.get("event_count").longValue(), "one line for both: one id per window and watermark");
        Object lastOut = new ArrayList<>(harness.getOutput()).get(harness.getOutput().size() - 1);
        assertEquals(new org.apache.flink.streaming.api.watermark.Watermark(Long.MAX_VALUE), lastOut,
                "the line goes out before the maximum (the invoice stage closes at it)");
        assertEquals(0, harness.numEventTimeTimers());
        harness.close();
    }

    @Test
    void uniqueCountWindowsGoToTheAccumulatorWithMultiplicitiesAndTheirCorrections() throws Exception {
        var harness = open(null);
        long floor = T + WINDOW_MS + 10_000;
        for (WindowedUsage record : List.of(unique("e1", T + 1_000, "u1", Long.MIN_VALUE),
                unique("e2", T + 2_000, "u1", Long.MIN_VALUE), unique("e3", T + 3_000, "u%2C2", Long.MIN_VALUE),
                unique("e4", T + 4_000, null, Long.MIN_VALUE))) {
            harness.processElement(new StreamRecord<>(record, record.eventTimeMs));
        }
        // corrections of the open window change its multiplicities: u1 stays (e1 carries it), u,2 leaves
        WindowedUsage cancelE2 = unique("e2", T + 2_000, "u1", T);
        cancelE2.correction = WindowedUsage.REMOVE;
        WindowedUsage cancelE3 = unique("e3", T + 3_000, "u%2C2", T);
        cancelE3.correction = WindowedUsage.REMOVE;
        harness.processElement(new StreamRecord<>(cancelE2, T + 2_000));
        harness.processElement(new StreamRecord<>(cancelE3, T + 3_000));
        harness.processWatermark(floor);
        List<Row> rows = uniqueRows(harness);
        assertEquals(1, rows.size(), rows.toString());
        assertEquals("u1", rows.get(0).getField("unique_tokens"));
        assertEquals("1", rows.get(0).getField("unique_token_counts"));
        assertEquals(2L, rows.get(0).getField("event_count"));
        // a fired window's corrections go to the accumulator, in arrival order (an amend: its remove and add)
        WindowedUsage remove = unique("e1", T + 1_000, "u1", floor);
        remove.correction = WindowedUsage.REMOVE;
        WindowedUsage add = unique("e1", T + 1_000, "u\"3", floor);
        add.correction = WindowedUsage.ADD;
        harness.processElement(new StreamRecord<>(remove, T + 1_000));
        harness.processElement(new StreamRecord<>(add, T + 1_000));
        // and late events with how many carry each token
        harness.processElement(new StreamRecord<>(lateUnique("e5", T + 5_000, "u7", floor), T + 5_000));
        harness.processElement(new StreamRecord<>(lateUnique("e6", T + 6_000, "u7", floor), T + 6_000));
        harness.processWatermark(Long.MAX_VALUE);
        rows = uniqueRows(harness);
        assertEquals(3, rows.size(), rows.toString());
        Row late = rows.get(1);
        assertEquals("u7", late.getField("unique_tokens"));
        assertEquals("2", late.getField("unique_token_counts"));
        assertEquals(floor, late.getField("late_watermark_ms"));
        Row corrections = rows.get(2);
        assertEquals("[[\"e1\",\"remove\",\"u1\"],[\"e1\",\"add\",\"u\\\"3\"]]", corrections.getField("corrections"));
        assertEquals(1L, corrections.getField("event_count"), "one event's amend: one correction");
        assertEquals(floor, corrections.getField("late_watermark_ms"));
        assertEquals(T, corrections.getField("window_start_ms"));
        assertEquals(0, harness.extractOutputValues().size(), "unique_count lines are the accumulator's");
        harness.close();
    }

    @Test
    void anOpenUniqueCountWindowsTokensFromBeforeRetainingAreFrozen() throws Exception {
        var before = open(null, new WindowRating(CATALOG, WINDOW_MS, TTL_MS, MAX_AGE_MS, UNIQUE, LATE, ACCOUNTING,
                false));
        before.processElement(new StreamRecord<>(unique("e1", T + 1_000, "u1", Long.MIN_VALUE), T + 1_000));
        OperatorSubtaskState snapshot = before.snapshot(1L, 1L);
        assertTrue(uniqueRows(before).isEmpty());
        before.close();
        var after = open(snapshot);
        after.processElement(new StreamRecord<>(unique("e2", T + 2_000, "u1", Long.MIN_VALUE), T + 2_000));
        after.processElement(new StreamRecord<>(unique("e3", T + 3_000, "u2", Long.MIN_VALUE), T + 3_000));
        after.processWatermark(Long.MAX_VALUE);
        List<Row> rows = uniqueRows(after);
        assertEquals(1, rows.size(), rows.toString());
        assertEquals("u1,u2", rows.get(0).getField("unique_tokens"));
        assertEquals((WindowContents.FROZEN + 1) + ",1", rows.get(0).getField("unique_token_counts"),
                "u1 was held before retaining: no correction can take it out");
        after.close();
    }

    private static WindowedUsage unique(String eventId, long eventTimeMs, String token, long floorMs) {
        WindowedUsage record = record("active_users", "{}", WindowedUsage.UNIQUE_COUNT, eventTimeMs, null, floorMs);
        record.eventId = bytes(eventId);
        record.uniqueToken = token == null ? null : bytes(token);
        return record;
    }

    /** A usage record routed after watermark {@code floorMs}, which had passed its window. */
    private static WindowedUsage lateUnique(String eventId, long eventTimeMs, String token, long floorMs) {
        WindowedUsage record = unique(eventId, eventTimeMs, token, floorMs);
        record.pastWatermark = new WindowedUsage.PastWatermark();
        record.pastWatermark.payload = bytes("{}");
        record.pastWatermark.srcTopic = "usage-events";
        record.pastWatermark.srcPartition = 0;
        record.pastWatermark.srcOffset = 0L;
        record.pastWatermark.watermarkMs = floorMs;
        return record;
    }

    /** The unique_count side output's rows so far, as named rows of {@link WindowRating#UNIQUE_COUNT_WINDOW_TYPE}. */
    private static List<Row> uniqueRows(KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage,
            String> harness) {
        List<Row> rows = new ArrayList<>();
        var out = harness.getSideOutput(UNIQUE);
        if (out != null) {
            List<String> names = WindowRating.UNIQUE_COUNT_WINDOW_TYPE.getFieldNames();
            for (StreamRecord<Row> record : out) {
                Row named = Row.withNames();
                for (int i = 0; i < names.size(); i++) {
                    named.setField(names.get(i), record.getValue().getField(i));
                }
                rows.add(named);
            }
        }
        return rows;
    }

    @Test
    void correctionsAfterTheEndAreNamedByTheLastWatermarkSeenBeforeARestore() throws Exception {
        // the last finite watermark came before the checkpoint; the restored run sees none before the maximum
        var before = open(null);
        before.processElement(new StreamRecord<>(usage("input_tokens", NOVA, WindowedUsage.SUM, T + 1_000, "7")
                .record, T + 1_000));
        long last = T + 3 * WINDOW_MS;
        before.processWatermark(last);
        OperatorSubtaskState snapshot = before.snapshot(1L, 1L);
        before.close();
        var restored = open(snapshot);
        restored.processElement(new StreamRecord<>(correction(WindowedUsage.REMOVE, "input_tokens", NOVA,
                WindowedUsage.SUM, T + 1_000, "7", Long.MAX_VALUE).record, T + 1_000));
        restored.processWatermark(Long.MAX_VALUE);
        List<String> out = restored.extractOutputValues();
        assertEquals(1, out.size(), out.toString());
        JsonNode line = JSON.readTree(out.get(0));
        JsonNode uninterrupted = run(List.of(usage("input_tokens", NOVA, WindowedUsage.SUM, T + 1_000, "7"),
                watermark(last), correction(WindowedUsage.REMOVE, "input_tokens", NOVA, WindowedUsage.SUM, T + 1_000,
                        "7", Long.MAX_VALUE))).get(1);
        assertEquals(uninterrupted.get("line_item_id"), line.get("line_item_id"), "named by the watermark " + last);
        restored.close();
    }

    @Test
    void firedWindowsAreFrozenTwoHorizonsAfterTheirLatestContributionAcrossARestore() throws Exception {
        // udfs.corrections.tick and freeze_settled, retained for 8 s of the series' clock here (a tick moves it 1 s
        // at most): window k fires at k s of processing time, window 0 (5), window 1 (9), windows 2 to 8 (2). The
        // job is stopped after window 1 and restored ten days later: the clock moves 1 s. At window 8 the clock is
        // at 8 s: window 0 is frozen into the period's frozen part, window 1 is not yet.
        long retainFor = 8_000;
        var before = open(null, retaining(retainFor));
        String[] values = {"5", "9", "2", "2", "2", "2", "2", "2", "2"};
        long stop = 10L * 24 * 3600 * 1000;
        OperatorSubtaskState snapshot = null;
        KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage, String> harness = before;
        for (int k = 0; k < values.length; k++) {
            harness.setProcessingTime(k * 1_000L + (k >= 2 ? stop : 0));
            harness.processElement(stream(usage("seats", "{}", WindowedUsage.MAX, T + k * WINDOW_MS + 1_000,
                    values[k])));
            harness.processWatermark(T + (k + 1) * WINDOW_MS + 10_000);
            if (k == 1) {
                snapshot = harness.snapshot(1L, 1L);
                harness.close();
                harness = open(snapshot, retaining(retainFor));
            }
        }
        var after = harness;
        long end = T + values.length * WINDOW_MS + 10_000;
        // window 1 is still retained: cancelling its 9 folds the period again over window 0's frozen 5 and the 2s
        after.processElement(stream(correction(WindowedUsage.REMOVE, "seats", "{}", WindowedUsage.MAX,
                T + WINDOW_MS + 1_000, "9", end)));
        after.processWatermark(end + 10_000);
        List<String> out = after.extractOutputValues();
        JsonNode line = JSON.readTree(out.get(out.size() - 1));
        assertEquals(Rules.LINE_KIND_CORRECTION, line.get("kind").textValue(), out.toString());
        assertEquals("5", line.get("period_quantity_to_date").textValue(), "window 0 is frozen at 5");
        // window 0's events are past the horizon: its contents are gone, a cancel there is a broken invariant
        after.processElement(stream(correction(WindowedUsage.REMOVE, "seats", "{}", WindowedUsage.MAX, T + 1_000,
                "5", end + 10_000)));
        IllegalStateException frozen = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> after.processWatermark(end + 20_000));
        assertTrue(frozen.getMessage().contains("frozen 8000 ms after its latest contribution"),
                frozen.getMessage());
        after.close();

        // retained for longer (the default here), window 0's contents stay: both cancels are billed and the period
        // falls to window 2's 2
        List<JsonNode> kept = run(List.of(
                usage("seats", "{}", WindowedUsage.MAX, T + 1_000, "5"),
                usage("seats", "{}", WindowedUsage.MAX, T + WINDOW_MS + 1_000, "9"),
                usage("seats", "{}", WindowedUsage.MAX, T + 2 * WINDOW_MS + 1_000, "2"),
                watermark(T + 3 * WINDOW_MS + 10_000),
                correction(WindowedUsage.REMOVE, "seats", "{}", WindowedUsage.MAX, T + WINDOW_MS + 1_000, "9",
                        T + 3 * WINDOW_MS + 10_000),
                watermark(T + 3 * WINDOW_MS + 20_000),
                correction(WindowedUsage.REMOVE, "seats", "{}", WindowedUsage.MAX, T + 1_000, "5",
                        T + 3 * WINDOW_MS + 20_000)));
        assertEquals("2", kept.get(kept.size() - 1).get("period_quantity_to_date").textValue(), kept.toString());
    }

    private static WindowRating retaining(long retainForMs) {
        return new WindowRating(CATALOG, WINDOW_MS, TTL_MS, MAX_AGE_MS, UNIQUE, LATE, ACCOUNTING, true, retainForMs);
    }

    private static StreamRecord<WindowedUsage> stream(Step step) {
        return new StreamRecord<>(step.record, step.record.eventTimeMs);
    }

    private static final class Step {
        final WindowedUsage record;
        final long watermark;

        Step(WindowedUsage record, long watermark) {
            this.record = record;
            this.watermark = watermark;
        }
    }

    private static Step watermark(long ms) {
        return new Step(null, ms);
    }

    private static Step usage(String meter, String group, byte aggregation, long eventTimeMs, String value) {
        return new Step(record(meter, group, aggregation, eventTimeMs, value, Long.MIN_VALUE), 0);
    }

    private static Step correction(byte kind, String meter, String group, byte aggregation, long eventTimeMs,
            String value, long floorMs) {
        WindowedUsage record = record(meter, group, aggregation, eventTimeMs, value, floorMs);
        record.correction = kind;
        return new Step(record, 0);
    }

    private static WindowedUsage record(String meter, String group, byte aggregation, long eventTimeMs, String value,
            long floorMs) {
        WindowedUsage out = new WindowedUsage();
        String tenant = meter.equals("low_water") ? "zeta-test" : "acme-ai";  // the catalog's min meter is zeta's
        Tuple2<Long, Long> key = new HashedKey().part(StringData.fromString(tenant))
                .part(StringData.fromString("c1")).part(StringData.fromString(meter))
                .part(StringData.fromString(group)).key();
        out.seriesHi = key.f0;
        out.seriesLo = key.f1;
        out.eventId = bytes("e" + eventTimeMs);  // one event per event time in these streams
        out.tenantId = bytes(tenant);
        out.customerId = bytes("c1");
        out.meter = bytes(meter);
        out.groupJson = bytes(group);
        out.aggregation = aggregation;
        out.eventTimeMs = eventTimeMs;
        out.value = value == null ? null : new BigDecimal(value);
        out.floorMs = floorMs;
        return out;
    }

    /** The line items of a stream, in output order, after a final watermark. */
    private static List<JsonNode> run(List<Step> steps) throws Exception {
        var harness = open(null);
        for (Step step : steps) {
            if (step.record == null) {
                harness.processWatermark(step.watermark);
            } else {
                harness.processElement(new StreamRecord<>(step.record, step.record.eventTimeMs));
            }
        }
        harness.processWatermark(Long.MAX_VALUE);
        List<JsonNode> lines = new ArrayList<>();
        for (String line : harness.extractOutputValues()) {
            lines.add(JSON.readTree(line));
        }
        assertEquals(0, harness.numEventTimeTimers());
        harness.close();
        return lines;
    }

    private static JsonNode withoutEmittedAt(JsonNode line) {
        ObjectNode copy = line.deepCopy();
        copy.remove("emitted_at");
        return copy;
    }

    private static KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage, String> open(
            OperatorSubtaskState restored) throws Exception {
        return open(restored, new WindowRating(CATALOG, WINDOW_MS, TTL_MS, MAX_AGE_MS, UNIQUE, LATE, ACCOUNTING,
                true));
    }

    private static KeyedOneInputStreamOperatorTestHarness<Tuple2<Long, Long>, WindowedUsage, String> open(
            OperatorSubtaskState restored, WindowRating operator) throws Exception {
        return RatingHarnesses.open(operator, restored);
    }

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }
}
