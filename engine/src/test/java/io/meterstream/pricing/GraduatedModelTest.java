package io.meterstream.pricing;

import org.junit.jupiter.api.Test;

/** {@link GraduatedModel} against {@code udfs/pricing/graduated.py}: every case of {@code golden/pricing-graduated.json}. */
class GraduatedModelTest {
    @Test
    void everyGoldenCaseEqualsThePythonModel() {
        PricingGolden.replay(PriceModel.GRADUATED, GraduatedModel::price);
    }
}
