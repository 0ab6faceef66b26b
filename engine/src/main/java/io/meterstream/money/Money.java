package io.meterstream.money;

import java.math.BigDecimal;
import java.math.RoundingMode;

import io.meterstream.rules.Rules;

/**
 * {@code udfs/money.py} over exact {@link BigDecimal}s: the exactness guard and the one rounding rule.
 *
 * <p>Python computes in a 50-digit context and {@code udfs.money.exact} raises when a result had to lose a
 * non-zero digit. {@link BigDecimal} arithmetic here is exact by construction, so {@link #exact} reproduces that
 * failure: a result whose significant digits (trailing zeros stripped) exceed {@link Rules#MONEY_PRECISION_DIGITS}
 * throws {@link ArithmeticException}. A result that Python would round only by dropping trailing zeros is equal
 * in value, so the wire text is the same. Bound to Python by the golden vectors ({@code rounding.json}).
 */
public final class Money {
    public static final int MONEY_PRECISION_DIGITS = Rules.MONEY_PRECISION_DIGITS;

    private Money() {}

    public static BigDecimal exact(BigDecimal result) {
        if (result.precision() > MONEY_PRECISION_DIGITS
                && result.stripTrailingZeros().precision() > MONEY_PRECISION_DIGITS) {
            throw new ArithmeticException(
                    "decimal operation exceeded " + MONEY_PRECISION_DIGITS + " significant digits: " + result);
        }
        return result;
    }

    public static BigDecimal add(BigDecimal a, BigDecimal b) {
        return exact(a.add(b));
    }

    public static BigDecimal subtract(BigDecimal a, BigDecimal b) {
        return exact(a.subtract(b));
    }

    public static BigDecimal multiply(BigDecimal a, BigDecimal b) {
        return exact(a.multiply(b));
    }

    /**
     * {@code udfs.money.round_amount}: half away from zero to {@code precision} places (0 .. {@link
     * Rules#MAX_AMOUNT_PRECISION}; no "-0" in Java).
     */
    public static BigDecimal roundAmount(BigDecimal amount, int precision) {
        if (precision < 0 || precision > Rules.MAX_AMOUNT_PRECISION) {
            throw new IllegalArgumentException(
                    "amount precision must be 0.." + Rules.MAX_AMOUNT_PRECISION + ", got " + precision);
        }
        BigDecimal rounded = amount.setScale(precision, RoundingMode.HALF_UP);
        if (rounded.precision() > MONEY_PRECISION_DIGITS) {
            throw new ArithmeticException("rounded amount exceeds " + MONEY_PRECISION_DIGITS + " digits: " + amount);
        }
        return rounded;
    }
}
