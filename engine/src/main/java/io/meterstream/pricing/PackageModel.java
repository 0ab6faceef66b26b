package io.meterstream.pricing;

import java.math.BigDecimal;

import io.meterstream.money.Money;

/**
 * {@code udfs/pricing/package.py}: every started package of package_size units costs package_price (exact
 * integer division; a partial package rounds up); quantity <= 0 buys none.
 */
public final class PackageModel {
    private PackageModel() {}

    public static Priced price(BigDecimal quantity, PriceEntry spec) {
        BigDecimal packages = BigDecimal.ZERO;
        if (quantity.signum() > 0) {
            BigDecimal[] qr = quantity.divideAndRemainder(spec.packageSize);
            packages = qr[1].signum() != 0 ? Money.add(qr[0], BigDecimal.ONE) : qr[0];
        }
        BigDecimal amount = Money.multiply(packages, spec.packagePrice);
        return new Priced(amount, new TierCharge[] {
            new TierCharge(BigDecimal.ZERO, null, quantity, spec.packagePrice, BigDecimal.ZERO, amount)
        });
    }
}
