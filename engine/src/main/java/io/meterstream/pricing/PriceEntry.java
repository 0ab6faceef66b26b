package io.meterstream.pricing;

import java.math.BigDecimal;
import java.util.Iterator;
import java.util.Map;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;

/**
 * One price entry of the catalog (a member of {@code udfs.catalog.PriceEntry}) in the form
 * {@code udfs.java_catalog.java_catalog_json} writes it: {@code {id, match, model, ...parameters}}, every
 * decimal a string. Only the fields of its {@link #model} are set.
 */
public final class PriceEntry {
    public final String id;
    public final String[] matchKeys;
    public final String[] matchValues;
    public final PriceModel model;
    public final BigDecimal unitPrice; // per_unit
    public final BigDecimal packageSize; // package
    public final BigDecimal packagePrice; // package
    public final Tier[] tiers; // graduated, volume

    public PriceEntry(String id, String[] matchKeys, String[] matchValues, PriceModel model, BigDecimal unitPrice,
            BigDecimal packageSize, BigDecimal packagePrice, Tier[] tiers) {
        this.id = id;
        this.matchKeys = matchKeys;
        this.matchValues = matchValues;
        this.model = model;
        this.unitPrice = unitPrice;
        this.packageSize = packageSize;
        this.packagePrice = packagePrice;
        this.tiers = tiers;
    }

    /** Every match key present in the group (sorted keys/values of length n) with the same value. */
    public boolean matches(String[] keys, String[] values, int n) {
        for (int m = 0; m < matchKeys.length; m++) {
            boolean found = false;
            for (int i = 0; i < n; i++) {
                if (keys[i].equals(matchKeys[m])) {
                    found = values[i].equals(matchValues[m]);
                    break;
                }
            }
            if (!found) {
                return false;
            }
        }
        return true;
    }

    /**
     * An entry of the rating catalog JSON. The Python loader validated it; a wrong shape (a deployment error)
     * throws {@link IllegalArgumentException} naming {@code where}.
     */
    public static PriceEntry parse(JsonNode node, String where) {
        String id = text(node, "id");
        JsonNode match = node.get("match");
        if (match == null || !match.isObject()) {
            throw new IllegalArgumentException(where + "." + id + ".match: an object is required");
        }
        String[] keys = new String[match.size()];
        String[] values = new String[match.size()];
        int i = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = match.fields(); it.hasNext(); i++) {
            Map.Entry<String, JsonNode> e = it.next();
            keys[i] = e.getKey();
            if (!e.getValue().isTextual()) {
                throw new IllegalArgumentException(where + "." + id + ".match: values must be strings");
            }
            values[i] = e.getValue().textValue();
        }
        String name = text(node, "model");
        PriceModel model = PriceModel.of(name);
        if (model == null) {
            throw new IllegalArgumentException(where + "." + id + ": unknown model '" + name + "'");
        }
        switch (model) {
            case PER_UNIT:
                return new PriceEntry(id, keys, values, model, decimal(node, "unit_price"), null, null, null);
            case PACKAGE:
                BigDecimal size = decimal(node, "package_size");
                if (size.signum() <= 0) {
                    throw new IllegalArgumentException(where + "." + id + ": package_size must be > 0");
                }
                return new PriceEntry(id, keys, values, model, null, size, decimal(node, "package_price"), null);
            default: // GRADUATED, VOLUME
                JsonNode tiers = node.get("tiers");
                if (tiers == null || !tiers.isArray() || tiers.size() == 0) {
                    throw new IllegalArgumentException(where + "." + id + ": tiers required");
                }
                Tier[] out = new Tier[tiers.size()];
                BigDecimal lower = BigDecimal.ZERO;
                for (int t = 0; t < out.length; t++) {
                    JsonNode tier = tiers.get(t);
                    JsonNode upTo = tier.get("up_to");
                    BigDecimal up = upTo == null || upTo.isNull() ? null : decimal(tier, "up_to");
                    if ((up == null) != (t == out.length - 1)) {
                        throw new IllegalArgumentException(where + "." + id + ": only the last tier is open-ended");
                    }
                    out[t] = new Tier(lower, up, decimal(tier, "unit_price"), decimal(tier, "flat_fee"));
                    lower = up;
                }
                return new PriceEntry(id, keys, values, model, null, null, null, out);
        }
    }

    private static String text(JsonNode node, String field) {
        JsonNode v = node.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException(field + ": a string is required");
        }
        return v.textValue();
    }

    /** Decimals travel as strings (never JSON numbers, which could pass through a double). */
    private static BigDecimal decimal(JsonNode node, String field) {
        return new BigDecimal(text(node, field));
    }
}
