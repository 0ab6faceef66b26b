package io.meterstream.catalog;

import java.time.ZoneId;
import java.util.Map;

/** Tenants built directly, without a catalog document, for tests of the views that read them (test only). */
public final class Tenants {
    private Tenants() {
    }

    /** A tenant with these settings, a grace of one hour and no meters. */
    public static JavaCatalog.Tenant settingsOnly(String currency, int amountPrecision, int anchorDay, ZoneId zone) {
        return new JavaCatalog.Tenant(currency, amountPrecision, anchorDay, zone, 3_600_000L, Map.of());
    }
}
