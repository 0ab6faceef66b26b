package io.meterstream.pricing;

import java.math.BigDecimal;

/**
 * One tier's share of a price ({@code udfs.pricing.priced.TierCharge}; the tier index is the array index in
 * {@link Priced#tiers}). Flat-rate models (per_unit, package) report a single open tier.
 */
public final class TierCharge {
    public final BigDecimal lowerBound; // exclusive
    public final BigDecimal upTo; // inclusive; null: no upper bound
    public final BigDecimal quantity;
    public final BigDecimal unitPrice;
    public final BigDecimal flatFee;
    public final BigDecimal amount;

    public TierCharge(BigDecimal lowerBound, BigDecimal upTo, BigDecimal quantity, BigDecimal unitPrice,
            BigDecimal flatFee, BigDecimal amount) {
        this.lowerBound = lowerBound;
        this.upTo = upTo;
        this.quantity = quantity;
        this.unitPrice = unitPrice;
        this.flatFee = flatFee;
        this.amount = amount;
    }
}
