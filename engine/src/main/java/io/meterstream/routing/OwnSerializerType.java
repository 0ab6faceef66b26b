package io.meterstream.routing;

import org.apache.flink.api.common.serialization.SerializerConfig;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.util.function.SerializableSupplier;

/**
 * Flink type information of a record type that crosses shuffles in a serializer of our own ({@code WindowedUsage},
 * the invoice stage's JSON records): a single field, not a key type, equal to another of the same name and class.
 */
public final class OwnSerializerType<T> extends TypeInformation<T> {
    private static final long serialVersionUID = 1L;
    private final Class<T> typeClass;
    private final String name;
    private final SerializableSupplier<TypeSerializer<T>> serializer;

    public OwnSerializerType(Class<T> typeClass, String name, SerializableSupplier<TypeSerializer<T>> serializer) {
        this.typeClass = typeClass;
        this.name = name;
        this.serializer = serializer;
    }

    @Override
    public boolean isBasicType() {
        return false;
    }

    @Override
    public boolean isTupleType() {
        return false;
    }

    @Override
    public int getArity() {
        return 1;
    }

    @Override
    public int getTotalFields() {
        return 1;
    }

    @Override
    public Class<T> getTypeClass() {
        return typeClass;
    }

    @Override
    public boolean isKeyType() {
        return false;
    }

    @Override
    public TypeSerializer<T> createSerializer(SerializerConfig config) {
        return serializer.get();
    }

    @Override
    public String toString() {
        return name;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof OwnSerializerType<?> type && type.typeClass == typeClass && type.name.equals(name);
    }

    @Override
    public int hashCode() {
        return 31 * typeClass.hashCode() + name.hashCode();
    }

    @Override
    public boolean canEqual(Object other) {
        return other instanceof OwnSerializerType;
    }
}
