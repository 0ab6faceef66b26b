package io.meterstream.validation;

/**
 * A unique_count meter's counted value as a token ({@code udfs.grouping.unique_token} / {@code decode_unique_token}):
 * {@code %} -> {@code %25} then {@code ,} -> {@code %2C}, so that a token never holds a comma and tokens can be
 * joined by commas (the window rows' {@code unique_tokens}). The parser writes tokens; the correction ledger reads
 * them back to values and writes a corrected value as a token again.
 */
public final class UniqueToken {
    private UniqueToken() {
    }

    public static String encode(String value) {
        if (value.indexOf('%') < 0 && value.indexOf(',') < 0) {
            return value;
        }
        return value.replace("%", "%25").replace(",", "%2C");
    }

    /** The value of a token (null: none); {@code %2C} first, then {@code %25}, so an encoded {@code %2C} survives. */
    public static String decode(String token) {
        return token == null ? null : token.replace("%2C", ",").replace("%25", "%");
    }
}
