package io.meterstream.pricing;

import org.junit.jupiter.api.Test;

/** {@link PackageModel} against {@code udfs/pricing/package.py}: every case of {@code golden/pricing-package.json}. */
class PackageModelTest {
    @Test
    void everyGoldenCaseEqualsThePythonModel() {
        PricingGolden.replay(PriceModel.PACKAGE, PackageModel::price);
    }
}
