package io.meterstream.pricing;

import java.math.BigDecimal;

/** One tier of a graduated or volume price ({@code udfs.catalog.Tier}), with its exclusive lower bound. */
public final class Tier {
    public final BigDecimal lowerBound; // exclusive; 0 for the first tier, else the previous tier's up_to
    public final BigDecimal upTo; // inclusive; null for the open-ended last tier
    public final BigDecimal unitPrice;
    public final BigDecimal flatFee;

    public Tier(BigDecimal lowerBound, BigDecimal upTo, BigDecimal unitPrice, BigDecimal flatFee) {
        this.lowerBound = lowerBound;
        this.upTo = upTo;
        this.unitPrice = unitPrice;
        this.flatFee = flatFee;
    }
}
