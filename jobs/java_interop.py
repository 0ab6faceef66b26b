"""Calling the classes of our jar from Python through py4j: the one place that builds Java argument arrays."""

from __future__ import annotations

from pyflink.util.java_utils import load_java_class


def java_instance(class_name: str, *args):
    """An instance of a class of our jar (its one public constructor), which py4j's own lookup, through the
    client's class loader, does not see."""
    return load_java_class(class_name).getConstructors()[0].newInstance(java_objects(*args))


def java_objects(*values):
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    array = gateway.new_array(gateway.jvm.java.lang.Object, len(values))
    for index, value in enumerate(values):
        array[index] = value
    return array


def java_classes(*values):
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    array = gateway.new_array(gateway.jvm.java.lang.Class, len(values))
    for index, value in enumerate(values):
        array[index] = value.getClass()
    return array
