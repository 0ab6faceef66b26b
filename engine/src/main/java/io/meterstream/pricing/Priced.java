package io.meterstream.pricing;

import java.math.BigDecimal;

/** The exact amount and the tiers it came from ({@code udfs.pricing.priced.Priced}); rounding comes later. */
public final class Priced {
    public static final Priced NOTHING = new Priced(BigDecimal.ZERO, new TierCharge[0]);

    public final BigDecimal amount;
    public final TierCharge[] tiers;

    public Priced(BigDecimal amount, TierCharge[] tiers) {
        this.amount = amount;
        this.tiers = tiers;
    }
}
