package io.meterstream.pricing;

import org.junit.jupiter.api.Test;

/** {@link PerUnitModel} against {@code udfs/pricing/per_unit.py}: every case of {@code golden/pricing-per_unit.json}. */
class PerUnitModelTest {
    @Test
    void everyGoldenCaseEqualsThePythonModel() {
        PricingGolden.replay(PriceModel.PER_UNIT, PerUnitModel::price);
    }
}
