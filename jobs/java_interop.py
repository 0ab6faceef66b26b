"""Calling the classes of our jar from Python through py4j: the one place that finds their constructors and static
methods and builds Java argument arrays.

Each call names the Java parameter types it means (`java_new(CLASS, (LONG, 5), (STRING, "x"))`), and the
constructor or method is looked up by exactly those types: `getConstructors()[0]` took whichever constructor the
JVM listed first (an order it does not define), so adding an overload could silently call another one, and a
wrong argument surfaced as an `IllegalArgumentException` without a parameter list. A class, method or signature
that does not exist fails here with its name and the types asked for.
"""

from __future__ import annotations

from typing import Any

from pyflink.util.java_utils import load_java_class

# Parameter types as Java spells them: primitives by keyword, classes by their binary name.
LONG = "long"
INT = "int"
BOOLEAN = "boolean"
BOXED_LONG = "java.lang.Long"
STRING = "java.lang.String"
ROW_TYPE = "org.apache.flink.table.types.logical.RowType"
OUTPUT_TAG = "org.apache.flink.util.OutputTag"
TYPE_INFORMATION = "org.apache.flink.api.common.typeinfo.TypeInformation"

JavaArg = tuple[str, Any]

_PRIMITIVE_BOXES = {LONG: "Long", INT: "Integer", BOOLEAN: "Boolean"}


def java_new(class_name: str, *args: JavaArg):
    """`new class_name(args...)` through the constructor declared with exactly the parameter types of `args`.
    Reflection, because py4j's own lookup (through the client's class loader) does not see our jar's classes."""
    cls = load_java_class(class_name)
    return cls.getConstructor(_parameter_types(args)).newInstance(_values(args))


def java_static(class_name: str, method: str, *args: JavaArg):
    """`class_name.method(args...)`, the public static method declared with exactly the parameter types of `args`."""
    cls = load_java_class(class_name)
    return cls.getMethod(method, _parameter_types(args)).invoke(None, _values(args))


def java_static_field(class_name: str, field: str):
    """The value of a public static field of a class of our jar."""
    return load_java_class(class_name).getField(field).get(None)


def _java_class(type_name: str):
    from pyflink.java_gateway import get_gateway

    box = _PRIMITIVE_BOXES.get(type_name)
    if box is not None:
        return getattr(get_gateway().jvm.java.lang, box).TYPE
    return load_java_class(type_name)


def _parameter_types(args: tuple[JavaArg, ...]):
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    array = gateway.new_array(gateway.jvm.java.lang.Class, len(args))
    for index, (type_name, _) in enumerate(args):
        array[index] = _java_class(type_name)
    return array


def _values(args: tuple[JavaArg, ...]):
    """An Object[] of the values, Python ints and bools boxed as the declared type asks (py4j would make a small
    int an Integer, which a `long` or `Long` parameter refuses)."""
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    lang = gateway.jvm.java.lang
    array = gateway.new_array(lang.Object, len(args))
    for index, (type_name, value) in enumerate(args):
        if value is not None and isinstance(value, (bool, int)):
            box = _PRIMITIVE_BOXES.get(type_name) or {BOXED_LONG: "Long"}.get(type_name)
            if box is not None:
                value = getattr(lang, box)(value)
        array[index] = value
    return array
