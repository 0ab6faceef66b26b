package io.meterstream.pricing;

import java.math.BigDecimal;

import io.meterstream.money.Money;

/** {@code udfs/pricing/per_unit.py}: linear; a negative quantity gives a negative amount. */
public final class PerUnitModel {
    private PerUnitModel() {}

    public static Priced price(BigDecimal quantity, PriceEntry spec) {
        BigDecimal amount = Money.multiply(quantity, spec.unitPrice);
        return new Priced(amount, new TierCharge[] {
            new TierCharge(BigDecimal.ZERO, null, quantity, spec.unitPrice, BigDecimal.ZERO, amount)
        });
    }
}
