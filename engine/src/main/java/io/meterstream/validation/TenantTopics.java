package io.meterstream.validation;

/**
 * Tenant topics ({@code --usage-topic-prefix}): the usage of tenant T is read from the topic {@code <prefix>T}, and
 * the topic, whose writers Kafka ACLs decide, says whose usage a record is. The Java twin of
 * {@code udfs.validation.tenant_of_topic} (bound by the {@code topic} cases of {@code golden/validation.json}); the
 * check itself ({@code tenant_mismatch}) is {@link UsageEventParser}'s.
 */
public final class TenantTopics {
    private TenantTopics() {
    }

    /**
     * The tenant of a tenant topic: its name after {@code prefix}. The source subscribes to the pattern of
     * {@code udfs.validation.tenant_topic_pattern} (the prefix and at least one character), so every topic it reads
     * has one; anything else is a wiring error.
     */
    public static String tenantOf(String prefix, String topic) {
        if (prefix == null || prefix.isEmpty()) {
            throw new IllegalArgumentException("a tenant topic prefix must not be empty");
        }
        if (!topic.startsWith(prefix) || topic.length() == prefix.length()) {
            throw new IllegalArgumentException(
                    "topic '" + topic + "' is not a tenant topic of prefix '" + prefix + "' (<prefix><tenant>)");
        }
        return topic.substring(prefix.length());
    }
}
