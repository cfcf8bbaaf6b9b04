"""Content hash version x2 worked out with Python integers, the xxHash library's own bindings
and hashlib: the independent reference the mapping tests pin `sf_assets.rows` against, and the
per-row loop of the map + validate benchmark."""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, date, datetime, timedelta

import xxhash

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def word(value: object, kind: str) -> int:
    """A value's 64-bit word written out by hand; 2**64 for null."""
    if value is None:
        return 2**64
    if kind == "text":
        return xxhash.xxh3_64_intdigest(str(value).encode())
    if kind == "float":
        return struct.unpack("<Q", struct.pack("<d", value))[0]
    if kind == "datetime":
        return ((value - EPOCH) // timedelta(microseconds=1)) % 2**64  # type: ignore[operator]
    if kind == "date":
        return (value - date(1970, 1, 1)).days % 2**64  # type: ignore[operator]
    return int(value) % 2**64  # type: ignore[call-overload]  # bool, int


def multipliers(names: list[str], kinds: list[str]) -> list[int]:
    """The offset and one odd multiplier per field: BLAKE2b over the sorted names and kinds."""
    fields = "\x1f".join(f"{name}\x1e{kind}" for name, kind in zip(names, kinds, strict=True))
    return [
        int.from_bytes(hashlib.blake2b(f"{i}\x1d{fields}".encode(), digest_size=16).digest()) | 1
        for i in range(len(names) + 1)
    ]


def typed_hash(values: dict[str, object], kinds: dict[str, str], factors: list[int]) -> str:
    """The sum of multiplier times word modulo 2**128, for `multipliers` of the same fields."""
    names = sorted(values)
    offset, *rest = factors
    total = offset + sum(
        factor * word(values[name], kinds[name]) for name, factor in zip(names, rest, strict=True)
    )
    return f"x2:{total % 2**128}"
