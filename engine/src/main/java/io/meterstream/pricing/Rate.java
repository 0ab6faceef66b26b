package io.meterstream.pricing;

import java.math.BigDecimal;

/** {@code udfs/pricing/rate.py}: a price entry to its model's class (one class per model, as in Python). */
public final class Rate {
    private Rate() {}

    public static Priced price(BigDecimal quantity, PriceEntry spec) {
        switch (spec.model) {
            case PER_UNIT:
                return PerUnitModel.price(quantity, spec);
            case PACKAGE:
                return PackageModel.price(quantity, spec);
            case GRADUATED:
                return GraduatedModel.price(quantity, spec);
            case VOLUME:
                return VolumeModel.price(quantity, spec);
            default:
                throw new IllegalStateException("unknown price model " + spec.model);
        }
    }
}
