package io.meterstream.pricing;

import io.meterstream.rules.Rules;

/** The price models, by their catalog names (generated from {@code udfs.catalog}, see {@link Rules}). */
public enum PriceModel {
    PER_UNIT(Rules.PRICE_MODEL_PER_UNIT),
    PACKAGE(Rules.PRICE_MODEL_PACKAGE),
    GRADUATED(Rules.PRICE_MODEL_GRADUATED),
    VOLUME(Rules.PRICE_MODEL_VOLUME);

    /** The catalog's {@code model} value. */
    public final String wireName;

    PriceModel(String wireName) {
        this.wireName = wireName;
    }

    /** The model of a catalog {@code model} value, or null when there is none of that name. */
    public static PriceModel of(String wireName) {
        for (PriceModel model : values()) {
            if (model.wireName.equals(wireName)) {
                return model;
            }
        }
        return null;
    }
}
