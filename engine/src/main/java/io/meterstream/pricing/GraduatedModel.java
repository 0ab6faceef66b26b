package io.meterstream.pricing;

import java.math.BigDecimal;

import io.meterstream.money.Money;

/**
 * {@code udfs/pricing/graduated.py}: each unit at its tier's price, tiers hold (lower, up_to]; a touched tier
 * adds its flat fee once; quantity <= 0 touches no tier.
 */
public final class GraduatedModel {
    private GraduatedModel() {}

    public static Priced price(BigDecimal quantity, PriceEntry spec) {
        Tier[] tiers = spec.tiers;
        TierCharge[] charges = new TierCharge[tiers.length];
        BigDecimal total = BigDecimal.ZERO;
        for (int i = 0; i < tiers.length; i++) {
            Tier tier = tiers[i];
            BigDecimal inTier;
            if (quantity.compareTo(tier.lowerBound) <= 0) {
                inTier = BigDecimal.ZERO;
            } else {
                BigDecimal top = tier.upTo == null || quantity.compareTo(tier.upTo) <= 0 ? quantity : tier.upTo;
                inTier = Money.subtract(top, tier.lowerBound);
            }
            BigDecimal fee = inTier.signum() > 0 ? tier.flatFee : BigDecimal.ZERO;
            BigDecimal amount = Money.add(Money.multiply(inTier, tier.unitPrice), fee);
            charges[i] = new TierCharge(tier.lowerBound, tier.upTo, inTier, tier.unitPrice, fee, amount);
            total = Money.add(total, amount);
        }
        return new Priced(total, charges);
    }
}
