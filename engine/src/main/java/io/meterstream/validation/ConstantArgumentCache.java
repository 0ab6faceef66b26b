package io.meterstream.validation;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Parsed forms of a UDF's constant string argument (a catalog as JSON), shared by all calls in the JVM: the
 * argument is the same literal on every call, so it is parsed once. Bounded, in case someone passes a column.
 */
public final class ConstantArgumentCache<T> {
    private static final int MAX_CACHED = 16;

    private final Map<String, T> cache = new ConcurrentHashMap<>();
    private final String functionName;
    private final Function<String, T> parse;

    public ConstantArgumentCache(String functionName, Function<String, T> parse) {
        this.functionName = functionName;
        this.parse = parse;
    }

    public T get(String json) {
        if (json == null) {
            throw new IllegalArgumentException(functionName + ": catalog_json must not be NULL");
        }
        T cached = cache.get(json);
        if (cached == null) {
            cached = parse.apply(json);
            if (cache.size() >= MAX_CACHED) {
                cache.clear();
            }
            cache.put(json, cached);
        }
        return cached;
    }
}
