package io.meterstream.pricing;

import java.math.BigDecimal;

import io.meterstream.money.Money;

/**
 * {@code udfs/pricing/volume.py}: all units at the tier the total falls in (the first with quantity <= up_to),
 * plus its flat fee; the other tiers carry zeros; quantity <= 0 selects no tier.
 */
public final class VolumeModel {
    private VolumeModel() {}

    public static Priced price(BigDecimal quantity, PriceEntry spec) {
        Tier[] tiers = spec.tiers;
        int chosen = -1;
        if (quantity.signum() > 0) {
            for (int i = 0; i < tiers.length; i++) {
                if (tiers[i].upTo == null || quantity.compareTo(tiers[i].upTo) <= 0) {
                    chosen = i;
                    break;
                }
            }
        }
        TierCharge[] charges = new TierCharge[tiers.length];
        BigDecimal total = BigDecimal.ZERO;
        for (int i = 0; i < tiers.length; i++) {
            Tier tier = tiers[i];
            if (i == chosen) {
                total = Money.add(Money.multiply(quantity, tier.unitPrice), tier.flatFee);
                charges[i] = new TierCharge(tier.lowerBound, tier.upTo, quantity, tier.unitPrice, tier.flatFee, total);
            } else {
                charges[i] = new TierCharge(tier.lowerBound, tier.upTo, BigDecimal.ZERO, tier.unitPrice,
                        BigDecimal.ZERO, BigDecimal.ZERO);
            }
        }
        return new Priced(total, charges);
    }
}
