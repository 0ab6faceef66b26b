package io.meterstream.udf;

import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * The price models of {@code udfs/pricing/} (per_unit, package, graduated, volume) and {@code udfs.money}'s
 * rounding, over exact {@link BigDecimal}s.
 *
 * <p>Python computes in a 50-digit context and {@code udfs.money.exact} raises when a result had to lose a
 * non-zero digit. {@link BigDecimal} arithmetic here is exact by construction, so {@link #exact} reproduces that
 * failure: a result whose significant digits (trailing zeros stripped) exceed 50 throws {@link ArithmeticException}.
 * A result that Python would round only by dropping trailing zeros is equal in value, so the wire text is the same.
 */
final class PriceModels {
    static final int MONEY_PRECISION_DIGITS = 50;

    private PriceModels() {}

    /** One tier's share of a price ({@code udfs.pricing.priced.TierCharge}). */
    static final class TierCharge {
        final BigDecimal lowerBound;
        final BigDecimal upTo;
        final BigDecimal quantity;
        final BigDecimal unitPrice;
        final BigDecimal flatFee;
        final BigDecimal amount;

        TierCharge(BigDecimal lowerBound, BigDecimal upTo, BigDecimal quantity, BigDecimal unitPrice,
                BigDecimal flatFee, BigDecimal amount) {
            this.lowerBound = lowerBound;
            this.upTo = upTo;
            this.quantity = quantity;
            this.unitPrice = unitPrice;
            this.flatFee = flatFee;
            this.amount = amount;
        }
    }

    /** The exact amount and the tiers it came from; the tier index is the array index. */
    static final class Priced {
        static final Priced NOTHING = new Priced(BigDecimal.ZERO, new TierCharge[0]);

        final BigDecimal amount;
        final TierCharge[] tiers;

        Priced(BigDecimal amount, TierCharge[] tiers) {
            this.amount = amount;
            this.tiers = tiers;
        }
    }

    static BigDecimal exact(BigDecimal result) {
        if (result.precision() > MONEY_PRECISION_DIGITS
                && result.stripTrailingZeros().precision() > MONEY_PRECISION_DIGITS) {
            throw new ArithmeticException(
                    "decimal operation exceeded " + MONEY_PRECISION_DIGITS + " significant digits: " + result);
        }
        return result;
    }

    static BigDecimal add(BigDecimal a, BigDecimal b) {
        return exact(a.add(b));
    }

    static BigDecimal subtract(BigDecimal a, BigDecimal b) {
        return exact(a.subtract(b));
    }

    static BigDecimal multiply(BigDecimal a, BigDecimal b) {
        return exact(a.multiply(b));
    }

    /** {@code udfs.money.round_amount}: half away from zero to {@code precision} places (no "-0" in Java). */
    static BigDecimal roundAmount(BigDecimal amount, int precision) {
        BigDecimal rounded = amount.setScale(precision, RoundingMode.HALF_UP);
        if (rounded.precision() > MONEY_PRECISION_DIGITS) {
            throw new ArithmeticException("rounded amount exceeds " + MONEY_PRECISION_DIGITS + " digits: " + amount);
        }
        return rounded;
    }

    static Priced price(BigDecimal quantity, RatingCatalog.PriceEntry spec) {
        switch (spec.model) {
            case PER_UNIT:
                return perUnit(quantity, spec);
            case PACKAGE:
                return pack(quantity, spec);
            case GRADUATED:
                return graduated(quantity, spec);
            case VOLUME:
                return volume(quantity, spec);
            default:
                throw new IllegalStateException("unknown price model " + spec.model);
        }
    }

    /** Linear: a negative quantity gives a negative amount. */
    static Priced perUnit(BigDecimal quantity, RatingCatalog.PriceEntry spec) {
        BigDecimal amount = multiply(quantity, spec.unitPrice);
        return new Priced(amount, new TierCharge[] {
            new TierCharge(BigDecimal.ZERO, null, quantity, spec.unitPrice, BigDecimal.ZERO, amount)
        });
    }

    /** Every started package costs package_price; quantity <= 0 buys none. */
    static Priced pack(BigDecimal quantity, RatingCatalog.PriceEntry spec) {
        BigDecimal packages = BigDecimal.ZERO;
        if (quantity.signum() > 0) {
            BigDecimal[] qr = quantity.divideAndRemainder(spec.packageSize);
            packages = qr[1].signum() != 0 ? add(qr[0], BigDecimal.ONE) : qr[0];
        }
        BigDecimal amount = multiply(packages, spec.packagePrice);
        return new Priced(amount, new TierCharge[] {
            new TierCharge(BigDecimal.ZERO, null, quantity, spec.packagePrice, BigDecimal.ZERO, amount)
        });
    }

    /** Each unit at its tier's price, (lower, up_to]; a touched tier adds its flat fee once. */
    static Priced graduated(BigDecimal quantity, RatingCatalog.PriceEntry spec) {
        RatingCatalog.Tier[] tiers = spec.tiers;
        TierCharge[] charges = new TierCharge[tiers.length];
        BigDecimal total = BigDecimal.ZERO;
        for (int i = 0; i < tiers.length; i++) {
            RatingCatalog.Tier tier = tiers[i];
            BigDecimal inTier;
            if (quantity.compareTo(tier.lowerBound) <= 0) {
                inTier = BigDecimal.ZERO;
            } else {
                BigDecimal top = tier.upTo == null || quantity.compareTo(tier.upTo) <= 0 ? quantity : tier.upTo;
                inTier = subtract(top, tier.lowerBound);
            }
            BigDecimal fee = inTier.signum() > 0 ? tier.flatFee : BigDecimal.ZERO;
            BigDecimal amount = add(multiply(inTier, tier.unitPrice), fee);
            charges[i] = new TierCharge(tier.lowerBound, tier.upTo, inTier, tier.unitPrice, fee, amount);
            total = add(total, amount);
        }
        return new Priced(total, charges);
    }

    /** All units at the tier the total falls in (first with quantity <= up_to), plus its flat fee. */
    static Priced volume(BigDecimal quantity, RatingCatalog.PriceEntry spec) {
        RatingCatalog.Tier[] tiers = spec.tiers;
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
            RatingCatalog.Tier tier = tiers[i];
            if (i == chosen) {
                total = add(multiply(quantity, tier.unitPrice), tier.flatFee);
                charges[i] = new TierCharge(tier.lowerBound, tier.upTo, quantity, tier.unitPrice, tier.flatFee, total);
            } else {
                charges[i] = new TierCharge(tier.lowerBound, tier.upTo, BigDecimal.ZERO, tier.unitPrice,
                        BigDecimal.ZERO, BigDecimal.ZERO);
            }
        }
        return new Priced(total, charges);
    }
}
