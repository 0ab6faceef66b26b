package io.meterstream.validation;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

import io.meterstream.rules.Rules;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;

/**
 * Parses and validates one raw {@code usage-events} record exactly like Python's
 * {@code udfs.validation.validate_usage_record} (the reference; {@code tests/job/test_parse_parity.py} holds the
 * two together). One instance per thread: it reuses its buffers and is not thread-safe.
 *
 * <p>The JSON text is parsed once with Jackson's streaming parser. What Jackson and Python's {@code json}
 * disagree on is settled before Jackson sees the bytes: strict UTF-8 (Python's decoder), a UTF-8 BOM and NUL
 * bytes (Jackson would skip a BOM or guess UTF-16/32 from zero bytes; Python rejects both), nesting deeper than
 * 512 (counted outside strings, Python's {@code _nesting_exceeds}). Jackson's length limits are lifted so every
 * input under 64 KiB that Python parses also parses here. Duplicate keys: the last one wins, as in Python.
 */
final class UsageEventParser {
    // ---- the rules: generated from schemas/usage_event.py and udfs/validation.py (io.meterstream.rules.Rules) ----
    static final int MAX_RECORD_BYTES = Rules.MAX_RECORD_BYTES;
    static final int MAX_JSON_DEPTH = Rules.MAX_JSON_DEPTH;
    static final int ID_MIN_LENGTH = Rules.ID_MIN_LENGTH;
    static final int ID_MAX_LENGTH = Rules.ID_MAX_LENGTH;
    static final int DIMENSION_KEY_MIN_LENGTH = Rules.DIMENSION_KEY_MIN_LENGTH;
    static final int DIMENSION_KEY_MAX_LENGTH = Rules.DIMENSION_KEY_MAX_LENGTH;
    static final int DIMENSION_VALUE_MAX_LENGTH = Rules.DIMENSION_VALUE_MAX_LENGTH;
    static final int VALUE_MAX_INTEGER_DIGITS = Rules.VALUE_MAX_INTEGER_DIGITS;
    static final int DECIMAL_SCALE = Rules.DECIMAL_SCALE;
    static final long MIN_EPOCH_MILLIS = Rules.MIN_EPOCH_MILLIS;
    static final long MAX_EPOCH_MILLIS = Rules.MAX_EPOCH_MILLIS; // 9999-12-31T23:59:59.999Z
    static final long MIN_INSTANT_MILLIS = -62_135_596_800_000L; // 0001-01-01T00:00:00Z (Python datetime.min)
    static final long DEFAULT_MAX_AGE_MS = Rules.DEFAULT_MAX_AGE_MS;
    static final long DEFAULT_MAX_FUTURE_MS = Rules.DEFAULT_MAX_FUTURE_SKEW_MS;

    // ---- reasons, in precedence order (generated from schemas.dead_letter.DeadLetterReason) ----
    static final int OK = Rules.REASON_OK;
    static final int TOO_LARGE = Rules.REASON_TOO_LARGE;
    static final int NOT_UTF8 = Rules.REASON_NOT_UTF8;
    static final int MALFORMED_JSON = Rules.REASON_MALFORMED_JSON;
    static final int NOT_AN_OBJECT = Rules.REASON_NOT_AN_OBJECT;
    static final int MISSING_FIELD = Rules.REASON_MISSING_FIELD;
    static final int INVALID_FIELD = Rules.REASON_INVALID_FIELD;
    static final int INVALID_TIMESTAMP = Rules.REASON_INVALID_TIMESTAMP;
    static final int INVALID_VALUE = Rules.REASON_INVALID_VALUE;
    static final int NEGATIVE_VALUE = Rules.REASON_NEGATIVE_VALUE;
    static final int TENANT_MISMATCH = Rules.REASON_TENANT_MISMATCH;
    static final int UNKNOWN_TENANT = Rules.REASON_UNKNOWN_TENANT;
    static final int UNKNOWN_METER = Rules.REASON_UNKNOWN_METER;
    static final int MISSING_VALUE = Rules.REASON_MISSING_VALUE;
    static final int TOO_OLD = Rules.REASON_TOO_OLD;
    static final int TOO_FAR_IN_FUTURE = Rules.REASON_TOO_FAR_IN_FUTURE;

    // ---- kinds of a captured JSON value ----
    private static final byte ABSENT = 0; // absent or null: the same thing for the known fields
    private static final byte STRING = 1;
    private static final byte INT = 2;
    private static final byte FLOAT = 3;
    private static final byte OTHER = 4; // true/false/array/object

    // FIELD_ORDER: event_id, tenant_id, customer_id, meter, timestamp, value, dimensions
    // the fields of FIELD_ORDER (generated), indexes into the per-record scratch arrays
    private static final int FIELD_COUNT = Rules.FIELD_COUNT;
    private static final int F_EVENT_ID = Rules.FIELD_EVENT_ID;
    private static final int F_TENANT_ID = Rules.FIELD_TENANT_ID;
    private static final int F_CUSTOMER_ID = Rules.FIELD_CUSTOMER_ID;
    private static final int F_METER = Rules.FIELD_METER;
    private static final int F_TIMESTAMP = Rules.FIELD_TIMESTAMP;
    private static final int F_VALUE = Rules.FIELD_VALUE;
    private static final int F_DIMENSIONS = Rules.FIELD_DIMENSIONS;
    private static final char[] HEX = "0123456789abcdef".toCharArray();
    /** Marks a dimension whose value is not a JSON string. */
    private static final String NOT_A_STRING = new String("<not a string>");

    /** The outcome; fields are null when they could not be read. */
    static final class Result {
        int reason = OK;
        String detail;
        String eventId;
        String tenantId;
        String customerId;
        String meter;
        Long eventTimeMs;
        BigDecimal value;
        String aggregation;
        String groupJson;
        String uniqueToken;
        String fingerprint;

        String reasonCode() {
            return reason == OK ? null : Rules.reasonCode(reason);
        }
    }

    // per-record scratch, reused
    private final byte[] kinds = new byte[FIELD_COUNT];
    private final String[] texts = new String[FIELD_COUNT];
    private final Map<String, String> dimensions = new HashMap<>();
    private final StringBuilder sb = new StringBuilder(256);
    private final MessageDigest sha256;
    private String[] keyBuf = new String[8];
    private String[] valBuf = new String[8];

    UsageEventParser() {
        try {
            sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every JRE", e);
        }
    }

    Result parse(byte[] data, MeterCatalog catalog, long nowMs, long maxAgeMs, long maxFutureMs) {
        return parse(data, catalog, nowMs, maxAgeMs, maxFutureMs, null);
    }

    /**
     * @param topicTenant the tenant of the tenant topic the record was read from ({@link TenantTopics#tenantOf});
     *                    null when it came from the shared topic: no tenant check ({@code tenant_mismatch})
     */
    Result parse(byte[] data, MeterCatalog catalog, long nowMs, long maxAgeMs, long maxFutureMs, String topicTenant) {
        Result r = new Result();
        try {
            parseInto(r, data, catalog, nowMs, maxAgeMs, maxFutureMs, topicTenant);
        } catch (RuntimeException | StackOverflowError e) {
            // Never fail the job because of a record; a bug here shows up as a dead letter with this detail.
            Result failed = new Result();
            failed.reason = MALFORMED_JSON;
            failed.detail = "internal error while parsing: " + e;
            return failed;
        }
        return r;
    }

    private void parseInto(Result r, byte[] data, MeterCatalog catalog, long nowMs, long maxAgeMs, long maxFutureMs,
            String topicTenant) {
        if (data == null) {
            r.reason = MALFORMED_JSON;
            r.detail = "record is empty (a tombstone), not a JSON object";
            return;
        }
        int n = data.length;
        if (n > MAX_RECORD_BYTES) {
            r.reason = TOO_LARGE;
            r.detail = "record is " + n + " bytes, more than the limit of " + MAX_RECORD_BYTES;
            return;
        }
        long scan = scanUtf8(data);
        if (scan < 0) {
            r.reason = NOT_UTF8;
            r.detail = "record is not valid UTF-8 (byte " + (-scan - 1) + ")";
            return;
        }
        if ((scan & HAS_NUL) != 0) {
            r.reason = MALFORMED_JSON;
            r.detail = "record is not valid JSON: a NUL byte";
            return;
        }
        if ((scan & OPENERS_MASK) > MAX_JSON_DEPTH && nestingExceeds(data, MAX_JSON_DEPTH)) {
            r.reason = MALFORMED_JSON;
            r.detail = "JSON nesting is deeper than " + MAX_JSON_DEPTH;
            return;
        }
        if (n >= 3 && data[0] == (byte) 0xEF && data[1] == (byte) 0xBB && data[2] == (byte) 0xBF) {
            r.reason = MALFORMED_JSON;
            r.detail = "record is not valid JSON: it starts with a UTF-8 BOM";
            return;
        }
        Arrays.fill(kinds, ABSENT);
        Arrays.fill(texts, null);
        dimensions.clear();
        try (JsonParser p = ParseUsageEvent.JSON.createParser(data, 0, n)) {
            JsonToken root = p.nextToken();
            if (root == null) {
                r.reason = MALFORMED_JSON;
                r.detail = "record is not valid JSON: no JSON value";
                return;
            }
            if (root != JsonToken.START_OBJECT) {
                p.skipChildren();
                if (root == JsonToken.VALUE_STRING) {
                    p.getText(); // finish (and so validate) the string token
                }
                if (p.nextToken() != null) {
                    r.reason = MALFORMED_JSON;
                    r.detail = "record is not valid JSON: extra data after the JSON value";
                    return;
                }
                r.reason = NOT_AN_OBJECT;
                r.detail = "record is a JSON " + kindName(root) + ", not an object";
                return;
            }
            readObject(p);
            if (p.nextToken() != null) {
                r.reason = MALFORMED_JSON;
                r.detail = "record is not valid JSON: extra data after the JSON value";
                return;
            }
        } catch (IOException e) {
            r.reason = MALFORMED_JSON;
            r.detail = "record is not valid JSON: " + shortMessage(e);
            return;
        }
        validate(r, catalog, nowMs, maxAgeMs, maxFutureMs, topicTenant);
    }

    private void readObject(JsonParser p) throws IOException {
        JsonToken t;
        while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
            int field = fieldIndex(p.currentName());
            JsonToken v = p.nextToken();
            if (field < 0) {
                skipValue(p, v);
                continue;
            }
            switch (v) {
                case VALUE_STRING:
                    kinds[field] = STRING;
                    texts[field] = p.getText();
                    break;
                case VALUE_NUMBER_INT:
                    kinds[field] = INT;
                    texts[field] = p.getText();
                    break;
                case VALUE_NUMBER_FLOAT:
                    kinds[field] = FLOAT;
                    texts[field] = p.getText();
                    break;
                case VALUE_NULL:
                    kinds[field] = ABSENT; // null means absent, and the last duplicate wins
                    texts[field] = null;
                    break;
                case START_OBJECT:
                    kinds[field] = OTHER;
                    texts[field] = null;
                    if (field == F_DIMENSIONS) {
                        readDimensions(p);
                        texts[field] = "object";
                    } else {
                        p.skipChildren();
                    }
                    break;
                default: // arrays, booleans
                    kinds[field] = OTHER;
                    texts[field] = null;
                    p.skipChildren();
            }
        }
        if (t != JsonToken.END_OBJECT) {
            throw new IOException("unexpected token " + t);
        }
    }

    private void readDimensions(JsonParser p) throws IOException {
        dimensions.clear(); // a later duplicate "dimensions" replaces the earlier one entirely
        JsonToken t;
        while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
            String key = p.currentName();
            JsonToken v = p.nextToken();
            if (v == JsonToken.VALUE_STRING) {
                dimensions.put(key, p.getText());
            } else {
                skipValue(p, v);
                dimensions.put(key, NOT_A_STRING);
            }
        }
        if (t != JsonToken.END_OBJECT) {
            throw new IOException("unexpected token " + t);
        }
    }

    private static void skipValue(JsonParser p, JsonToken v) throws IOException {
        if (v == JsonToken.START_OBJECT || v == JsonToken.START_ARRAY) {
            p.skipChildren();
        }
        // Scalars need nothing: the next nextToken() finishes (and validates) a pending string token.
    }

    private static int fieldIndex(String name) {
        switch (name) {
            case Rules.FIELD_EVENT_ID_NAME:
                return F_EVENT_ID;
            case Rules.FIELD_TENANT_ID_NAME:
                return F_TENANT_ID;
            case Rules.FIELD_CUSTOMER_ID_NAME:
                return F_CUSTOMER_ID;
            case Rules.FIELD_METER_NAME:
                return F_METER;
            case Rules.FIELD_TIMESTAMP_NAME:
                return F_TIMESTAMP;
            case Rules.FIELD_VALUE_NAME:
                return F_VALUE;
            case Rules.FIELD_DIMENSIONS_NAME:
                return F_DIMENSIONS;
            default:
                return -1;
        }
    }

    // ---- checks 5..15 ------------------------------------------------------------------------------------

    private void validate(Result r, MeterCatalog catalog, long nowMs, long maxAgeMs, long maxFutureMs,
            String topicTenant) {
        int worst = OK;
        String worstField = null;
        String worstWhy = null;
        for (int f = F_EVENT_ID; f <= F_METER; f++) {
            String why = null;
            int reason = OK;
            if (kinds[f] == ABSENT) {
                reason = MISSING_FIELD;
            } else if (kinds[f] != STRING) {
                reason = INVALID_FIELD;
                why = "must be a string";
            } else {
                why = checkString(texts[f], ID_MIN_LENGTH, ID_MAX_LENGTH);
                if (why != null) {
                    reason = INVALID_FIELD;
                }
            }
            if (reason == OK) {
                String text = texts[f];
                switch (f) {
                    case F_EVENT_ID:
                        r.eventId = text;
                        break;
                    case F_TENANT_ID:
                        r.tenantId = text;
                        break;
                    case F_CUSTOMER_ID:
                        r.customerId = text;
                        break;
                    default:
                        r.meter = text;
                }
            } else if (worst == OK || reason < worst) {
                worst = reason;
                worstField = Rules.fieldName(f);
                worstWhy = why;
            }
        }
        // timestamp
        int tsReason = OK;
        String tsWhy = null;
        if (kinds[F_TIMESTAMP] == ABSENT) {
            tsReason = MISSING_FIELD;
        } else if (kinds[F_TIMESTAMP] == STRING) {
            long ms = parseRfc3339(texts[F_TIMESTAMP]);
            if (ms == INVALID_TIME) {
                tsReason = INVALID_TIMESTAMP;
                tsWhy = "must be RFC 3339 with an explicit offset (Z or +hh:mm), a valid calendar time in years "
                        + "0001..9999 UTC, or epoch milliseconds";
            } else {
                r.eventTimeMs = ms;
            }
        } else if (kinds[F_TIMESTAMP] == INT) {
            long ms = parseEpochMillis(texts[F_TIMESTAMP]);
            if (ms == INVALID_TIME) {
                tsReason = INVALID_TIMESTAMP;
                tsWhy = "epoch milliseconds must be in " + MIN_EPOCH_MILLIS + ".." + MAX_EPOCH_MILLIS;
            } else {
                r.eventTimeMs = ms;
            }
        } else {
            tsReason = INVALID_TIMESTAMP;
            tsWhy = kinds[F_TIMESTAMP] == FLOAT
                    ? "epoch milliseconds must be a JSON integer"
                    : "must be an RFC 3339 string with an offset or an integer of epoch milliseconds";
        }
        if (tsReason != OK && (worst == OK || tsReason < worst)) {
            worst = tsReason;
            worstField = Rules.FIELD_TIMESTAMP_NAME;
            worstWhy = tsWhy;
        }
        // value
        int valueReason = OK;
        String valueWhy = null;
        byte vk = kinds[F_VALUE];
        if (vk == STRING || vk == INT || vk == FLOAT) {
            String text = texts[F_VALUE];
            if (!matchesValuePattern(text)) {
                valueReason = INVALID_VALUE;
                valueWhy = "must be a plain decimal (no exponent) with at most 20 integer and 18 fraction digits, "
                        + "i.e. fit DECIMAL(38,18)";
            } else if (isNegative(text)) {
                valueReason = NEGATIVE_VALUE;
                valueWhy = "must not be negative";
            } else {
                r.value = new BigDecimal(text);
            }
        } else if (vk == OTHER) {
            valueReason = INVALID_VALUE;
            valueWhy = "must be a decimal string or a JSON number";
        }
        if (valueReason != OK && (worst == OK || valueReason < worst)) {
            worst = valueReason;
            worstField = Rules.FIELD_VALUE_NAME;
            worstWhy = valueWhy;
        }
        // dimensions
        int dimCount = 0;
        if (kinds[F_DIMENSIONS] != ABSENT) {
            String why = null;
            String where = Rules.FIELD_DIMENSIONS_NAME;
            if (kinds[F_DIMENSIONS] != OTHER || texts[F_DIMENSIONS] == null) {
                why = "must be an object of string to string";
            } else {
                for (Map.Entry<String, String> e : dimensions.entrySet()) {
                    String key = e.getKey();
                    String keyWhy = checkString(key, DIMENSION_KEY_MIN_LENGTH, DIMENSION_KEY_MAX_LENGTH);
                    if (keyWhy != null) {
                        why = "key " + keyWhy;
                        break;
                    }
                    String value = e.getValue();
                    if (value == NOT_A_STRING) {
                        why = "must be a string";
                    } else {
                        why = checkString(value, 0, DIMENSION_VALUE_MAX_LENGTH);
                    }
                    if (why != null) {
                        where = Rules.FIELD_DIMENSIONS_NAME + "." + key;
                        break;
                    }
                }
                dimCount = dimensions.size();
            }
            if (why != null && (worst == OK || INVALID_FIELD < worst)) {
                worst = INVALID_FIELD;
                worstField = where;
                worstWhy = why;
            }
        }
        if (worst != OK) {
            r.reason = worst;
            r.detail = worst == MISSING_FIELD
                    ? "field '" + worstField + "' is required (absent or null)"
                    : "field '" + worstField + "': " + worstWhy;
            return;
        }
        if (topicTenant != null && !topicTenant.equals(r.tenantId)) {
            r.reason = TENANT_MISMATCH;
            r.detail = "tenant_id '" + r.tenantId + "' is not '" + topicTenant
                    + "', the tenant of the topic the record was read from";
            return;
        }

        Map<String, MeterCatalog.Meter> meters = catalog.tenant(r.tenantId);
        if (meters == null) {
            r.reason = UNKNOWN_TENANT;
            r.detail = "tenant '" + r.tenantId + "' is not in the catalog";
            return;
        }
        MeterCatalog.Meter meter = meters.get(r.meter);
        if (meter == null) {
            r.reason = UNKNOWN_METER;
            r.detail = "meter '" + r.meter + "' is not in tenant '" + r.tenantId + "''s catalog";
            return;
        }
        r.aggregation = meter.aggregation;
        fillDerived(r, meter, dimCount);
        if (r.value == null && !meter.valueOptional) {
            r.reason = MISSING_VALUE;
            r.detail = "meter '" + r.meter + "' aggregates with " + meter.aggregation + ", which needs a value";
            return;
        }
        long eventMs = r.eventTimeMs;
        if (eventMs < saturatedAdd(nowMs, -maxAgeMs)) {
            r.reason = TOO_OLD;
            r.detail = "timestamp is older than " + maxAgeMs + " ms before now";
            return;
        }
        if (eventMs > saturatedAdd(nowMs, maxFutureMs)) {
            r.reason = TOO_FAR_IN_FUTURE;
            r.detail = "timestamp is more than " + maxFutureMs + " ms after now";
        }
    }

    private static long saturatedAdd(long a, long b) {
        long s = a + b;
        if (((a ^ s) & (b ^ s)) < 0) {
            return a < 0 ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
        return s;
    }

    // ---- derived columns ---------------------------------------------------------------------------------

    private void fillDerived(Result r, MeterCatalog.Meter meter, int dimCount) {
        // group_json: the meter's group_by dimensions present in the event, keys in code point order
        String[] groupBy = meter.groupBy;
        ensureBuffers(Math.max(groupBy.length, dimCount));
        int g = 0;
        for (String key : groupBy) {
            String value = dimCount == 0 ? null : dimensions.get(key);
            if (value != null) {
                keyBuf[g] = key;
                valBuf[g] = value;
                g++;
            }
        }
        sb.setLength(0);
        CanonicalJson.appendObject(sb, keyBuf, valBuf, g);
        r.groupJson = sb.toString();

        if (meter.uniqueDimension != null && dimCount > 0) {
            String token = dimensions.get(meter.uniqueDimension);
            if (token != null) {
                r.uniqueToken = uniqueToken(token);
            }
        }
        r.fingerprint = fingerprint(r, dimCount);
    }

    /** Percent-encodes {@code %} then {@code ,}, so a token never contains a comma (LISTAGG-safe). */
    static String uniqueToken(String value) {
        return UniqueToken.encode(value);
    }

    /**
     * Lowercase hex SHA-256 of the UTF-8 bytes of the canonical rendering
     * {@code json.dumps([customer_id, meter, event_time_ms, value_text, dimensions], sort_keys=True,
     * ensure_ascii=False, separators=(",", ":"))}, where {@code event_time_ms} is a JSON integer (UTC epoch ms,
     * truncated to ms), {@code value_text} is the value normalised by {@code stripTrailingZeros().toPlainString()}
     * ({@code schemas.wire.decimal_to_wire}: "0" for any zero, no trailing fractional zeros) or {@code ""} when the
     * value is absent, and {@code dimensions} is the full (validated) dimensions object, {@code {}} when absent,
     * keys in code point order. Example: {@code ["cust-42","input_tokens",1795509095123,"12.5",{"model":"x"}]}.
     * tenant_id and event_id are left out on purpose: duplicates already share them.
     */
    private String fingerprint(Result r, int dimCount) {
        sb.setLength(0);
        sb.append('[');
        CanonicalJson.appendString(sb, r.customerId);
        sb.append(',');
        CanonicalJson.appendString(sb, r.meter);
        sb.append(',').append(r.eventTimeMs.longValue()).append(',');
        CanonicalJson.appendString(sb, r.value == null ? "" : normalised(r.value));
        sb.append(',');
        int count = 0;
        if (dimCount > 0) {
            ensureBuffers(dimCount);
            for (String key : dimensions.keySet()) {
                keyBuf[count++] = key;
            }
            Arrays.sort(keyBuf, 0, count, CanonicalJson.CODE_POINT_ORDER);
            for (int i = 0; i < count; i++) {
                valBuf[i] = dimensions.get(keyBuf[i]);
            }
        }
        CanonicalJson.appendObject(sb, keyBuf, valBuf, count);
        sb.append(']');
        byte[] digest = sha256.digest(sb.toString().getBytes(StandardCharsets.UTF_8));
        char[] hex = new char[digest.length * 2];
        for (int i = 0; i < digest.length; i++) {
            hex[2 * i] = HEX[(digest[i] >> 4) & 0xF];
            hex[2 * i + 1] = HEX[digest[i] & 0xF];
        }
        return new String(hex);
    }

    static String normalised(BigDecimal value) {
        return CanonicalJson.wireDecimal(value);
    }

    private void ensureBuffers(int size) {
        if (keyBuf.length < size) {
            int n = Math.max(size, keyBuf.length * 2);
            keyBuf = new String[n];
            valBuf = new String[n];
        }
    }

    // ---- strings -----------------------------------------------------------------------------------------

    /**
     * null when the string has min..max code points and no lone surrogate (encodable as UTF-8), else why not.
     * Python's json joins an escaped surrogate pair into one code point, Jackson keeps it as a valid UTF-16 pair:
     * both count it as one.
     */
    static String checkString(String s, int min, int max) {
        int n = s.length();
        int codePoints = 0;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (Character.isSurrogate(c)) {
                if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                } else {
                    return "contains a lone surrogate (not encodable as UTF-8)";
                }
            }
            codePoints++;
        }
        if (codePoints < min) {
            return "must have at least " + min + " character" + (min == 1 ? "" : "s");
        }
        if (codePoints > max) {
            return "must have at most " + max + " characters";
        }
        return null;
    }

    // ---- value: ^-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?$ --------------------------------------------------

    static boolean matchesValuePattern(String s) {
        int n = s.length();
        int i = 0;
        if (i < n && s.charAt(i) == '-') {
            i++;
        }
        if (i >= n) {
            return false;
        }
        char c = s.charAt(i);
        if (c == '0') {
            i++;
        } else if (c >= '1' && c <= '9') {
            int start = i;
            i++;
            while (i < n && isDigit(s.charAt(i))) {
                i++;
            }
            if (i - start > VALUE_MAX_INTEGER_DIGITS) {
                return false;
            }
        } else {
            return false;
        }
        if (i == n) {
            return true;
        }
        if (s.charAt(i) != '.') {
            return false;
        }
        i++;
        int start = i;
        while (i < n && isDigit(s.charAt(i))) {
            i++;
        }
        int fraction = i - start;
        return i == n && fraction >= 1 && fraction <= DECIMAL_SCALE;
    }

    /** For a text matching the value pattern: negative unless every digit is zero ("-0.00" is zero). */
    private static boolean isNegative(String s) {
        if (s.charAt(0) != '-') {
            return false;
        }
        for (int i = 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= '1' && c <= '9') {
                return true;
            }
        }
        return false;
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    // ---- timestamps --------------------------------------------------------------------------------------

    static final long INVALID_TIME = Long.MIN_VALUE;

    /** A JSON integer token of epoch milliseconds (Jackson's int tokens already match -?(0|[1-9][0-9]*)). */
    static long parseEpochMillis(String text) {
        if (text.length() > 16) { // longer than "-253402300799999": out of range, and may not fit a long
            return INVALID_TIME;
        }
        long ms;
        try {
            ms = Long.parseLong(text); // "-0" is 0, as Python's int("-0")
        } catch (NumberFormatException e) {
            return INVALID_TIME;
        }
        return ms >= MIN_EPOCH_MILLIS && ms <= MAX_EPOCH_MILLIS ? ms : INVALID_TIME;
    }

    /**
     * {@code ^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$},
     * a real proleptic-Gregorian date and time (no leap second, year 0001..9999), offset hours <= 23 and
     * minutes <= 59, the UTC instant within years 0001..9999; fraction truncated to milliseconds.
     */
    static long parseRfc3339(String s) {
        int n = s.length();
        if (n < 20) {
            return INVALID_TIME;
        }
        int year = digits(s, 0, 4);
        int month = digits(s, 5, 2);
        int day = digits(s, 8, 2);
        int hour = digits(s, 11, 2);
        int minute = digits(s, 14, 2);
        int second = digits(s, 17, 2);
        if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0
                || s.charAt(4) != '-' || s.charAt(7) != '-' || s.charAt(10) != 'T'
                || s.charAt(13) != ':' || s.charAt(16) != ':') {
            return INVALID_TIME;
        }
        int i = 19;
        int millis = 0;
        if (s.charAt(i) == '.') {
            i++;
            int start = i;
            while (i < n && isDigit(s.charAt(i))) {
                if (i - start < 3) {
                    millis = millis * 10 + (s.charAt(i) - '0');
                }
                i++;
            }
            int count = i - start;
            if (count < 1 || count > 9) {
                return INVALID_TIME;
            }
            for (int k = count; k < 3; k++) {
                millis *= 10;
            }
        }
        if (i >= n) {
            return INVALID_TIME;
        }
        int offsetMinutes;
        char z = s.charAt(i);
        if (z == 'Z') {
            if (i + 1 != n) {
                return INVALID_TIME;
            }
            offsetMinutes = 0;
        } else if (z == '+' || z == '-') {
            if (i + 6 != n || s.charAt(i + 3) != ':') {
                return INVALID_TIME;
            }
            int oh = digits(s, i + 1, 2);
            int om = digits(s, i + 4, 2);
            if (oh < 0 || om < 0 || oh > 23 || om > 59) {
                return INVALID_TIME;
            }
            offsetMinutes = (z == '-' ? -1 : 1) * (oh * 60 + om);
        } else {
            return INVALID_TIME;
        }
        if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)
                || hour > 23 || minute > 59 || second > 59) {
            return INVALID_TIME;
        }
        long local = daysFromCivil(year, month, day) * 86_400_000L
                + hour * 3_600_000L + minute * 60_000L + second * 1_000L + millis;
        long utc = local - offsetMinutes * 60_000L;
        return utc >= MIN_INSTANT_MILLIS && utc <= MAX_EPOCH_MILLIS ? utc : INVALID_TIME;
    }

    /** The non-negative value of {@code count} ASCII digits at {@code from}, or -1. */
    private static int digits(String s, int from, int count) {
        int v = 0;
        for (int i = from; i < from + count; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            v = v * 10 + (c - '0');
        }
        return v;
    }

    private static int daysInMonth(int year, int month) {
        switch (month) {
            case 2:
                boolean leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
                return leap ? 29 : 28;
            case 4:
            case 6:
            case 9:
            case 11:
                return 30;
            default:
                return 31;
        }
    }

    /** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
    static long daysFromCivil(long y, int m, int d) {
        y -= m <= 2 ? 1 : 0;
        long era = Math.floorDiv(y, 400);
        long yoe = y - era * 400;
        long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146_097 + doe - 719_468;
    }

    // ---- bytes -------------------------------------------------------------------------------------------

    private static final long HAS_NUL = 1L << 40;
    private static final long OPENERS_MASK = (1L << 40) - 1;

    /**
     * Strict UTF-8 check, as Python's {@code bytes.decode("utf-8")} (no overlongs, no surrogates, max U+10FFFF).
     * Returns {@code -(index of the first bad byte) - 1} when invalid; otherwise the count of '[' and '{' bytes
     * in the low 40 bits, and {@link #HAS_NUL} set when a NUL byte is present.
     */
    static long scanUtf8(byte[] b) {
        int n = b.length;
        long openers = 0;
        long flags = 0;
        int i = 0;
        while (i < n) {
            int c = b[i];
            if (c >= 0) {
                if (c == '[' || c == '{') {
                    openers++;
                } else if (c == 0) {
                    flags = HAS_NUL;
                }
                i++;
                continue;
            }
            c &= 0xFF;
            if (c < 0xC2) {
                return -i - 1;
            }
            if (c < 0xE0) {
                if (i + 1 >= n || !cont(b[i + 1])) {
                    return -i - 1;
                }
                i += 2;
            } else if (c < 0xF0) {
                if (i + 1 >= n) {
                    return -i - 1;
                }
                int c1 = b[i + 1] & 0xFF;
                int lo = c == 0xE0 ? 0xA0 : 0x80;
                int hi = c == 0xED ? 0x9F : 0xBF;
                if (c1 < lo || c1 > hi || i + 2 >= n || !cont(b[i + 2])) {
                    return -i - 1;
                }
                i += 3;
            } else if (c < 0xF5) {
                if (i + 1 >= n) {
                    return -i - 1;
                }
                int c1 = b[i + 1] & 0xFF;
                int lo = c == 0xF0 ? 0x90 : 0x80;
                int hi = c == 0xF4 ? 0x8F : 0xBF;
                if (c1 < lo || c1 > hi || i + 3 >= n || !cont(b[i + 2]) || !cont(b[i + 3])) {
                    return -i - 1;
                }
                i += 4;
            } else {
                return -i - 1;
            }
        }
        return openers | flags;
    }

    private static boolean cont(byte b) {
        return (b & 0xC0) == 0x80;
    }

    /** Python's {@code _nesting_exceeds}: depth of '[' '{' outside strings (escapes honoured) over the limit. */
    static boolean nestingExceeds(byte[] b, int limit) {
        int depth = 0;
        boolean inString = false;
        boolean escaped = false;
        for (byte c : b) {
            if (inString) {
                if (escaped) {
                    escaped = false;
                } else if (c == '\\') {
                    escaped = true;
                } else if (c == '"') {
                    inString = false;
                }
            } else if (c == '"') {
                inString = true;
            } else if (c == '[' || c == '{') {
                if (++depth > limit) {
                    return true;
                }
            } else if (c == ']' || c == '}') {
                depth--;
            }
        }
        return false;
    }

    private static String kindName(JsonToken t) {
        switch (t) {
            case START_ARRAY:
                return "array";
            case VALUE_STRING:
                return "string";
            case VALUE_NULL:
                return "null";
            case VALUE_TRUE:
            case VALUE_FALSE:
                return "boolean";
            default:
                return "number";
        }
    }

    private static String shortMessage(IOException e) {
        String m = e.getMessage();
        if (m == null) {
            return e.getClass().getSimpleName();
        }
        int nl = m.indexOf('\n');
        if (nl >= 0) {
            m = m.substring(0, nl);
        }
        return m.length() <= 200 ? m : m.substring(0, 197) + "...";
    }
}
