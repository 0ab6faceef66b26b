package io.meterstream.pricing;

import org.junit.jupiter.api.Test;

/** {@link VolumeModel} against {@code udfs/pricing/volume.py}: every case of {@code golden/pricing-volume.json}. */
class VolumeModelTest {
    @Test
    void everyGoldenCaseEqualsThePythonModel() {
        PricingGolden.replay(PriceModel.VOLUME, VolumeModel::price);
    }
}
