"""`io.meterstream.routing.HashedKey`, the 128-bit keys of dedup and series state, called directly in the JVM
(py4j): its own murmur3 is bit for bit Guava's `Hashing.murmur3_128()` over the same length-prefixed parts (what
the first version hashed with, so keys in state carry over), at every tail length, for byte arrays and for Flink's
string data (whole or a slice of a larger buffer)."""

from __future__ import annotations

import random

import pytest

pytestmark = pytest.mark.job


@pytest.fixture
def jvm(udf_jvm):
    return udf_jvm


def as_key(tuple2) -> tuple[int, int]:
    from py4j.java_gateway import get_field

    return get_field(tuple2, "f0"), get_field(tuple2, "f1")


def guava_key(jvm, parts: list[bytes | None]) -> tuple[int, int]:
    """The reference: Guava's streaming murmur3_128, each part as its length (or -1) and bytes, the 16 hash bytes
    read as two big-endian signed longs."""
    hasher = jvm.org.apache.flink.shaded.guava33.com.google.common.hash.Hashing.murmur3_128().newHasher()
    for part in parts:
        if part is None:
            hasher.putInt(-1)
        else:
            hasher.putInt(len(part)).putBytes(bytearray(part))
    digest = bytes(hasher.hash().asBytes())
    return (int.from_bytes(digest[:8], "big", signed=True), int.from_bytes(digest[8:], "big", signed=True))


def test_every_length_up_to_three_blocks_hashes_as_guava(jvm):
    rng = random.Random(7)
    for length in range(0, 50):
        part = rng.randbytes(length)
        key = jvm.io.meterstream.routing.HashedKey().part(bytearray(part)).key()
        assert as_key(key) == guava_key(jvm, [part]), length


def test_several_parts_and_nulls_hash_as_guava(jvm):
    rng = random.Random(11)
    for _ in range(200):
        count = rng.randrange(1, 5)
        parts = [None if rng.random() < 0.1 else rng.randbytes(rng.randrange(0, 40)) for _ in range(count)]
        hashed = jvm.io.meterstream.routing.HashedKey()
        for part in parts:
            hashed.part(None if part is None else bytearray(part))
        assert as_key(hashed.key()) == guava_key(jvm, parts), parts


def test_string_data_hashes_as_its_utf8_bytes_whole_or_sliced(jvm):
    binary = jvm.org.apache.flink.table.data.binary.BinaryStringData
    for text in ["acme-ai", "évènement-42", "", "x" * 100]:
        utf8 = text.encode()
        whole = jvm.io.meterstream.routing.HashedKey().part(binary.fromString(text)).part(
            binary.fromString("evt-1")).key()
        padded = bytearray(b"<<<" + utf8 + b">>>")
        sliced = jvm.io.meterstream.routing.HashedKey().part(binary.fromBytes(padded, 3, len(utf8))).part(
            binary.fromString("evt-1")).key()
        assert as_key(whole) == as_key(sliced) == guava_key(jvm, [utf8, b"evt-1"]), text
