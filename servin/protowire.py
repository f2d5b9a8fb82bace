"""The protobuf wire format's primitives, written once for the codecs that work without the
protobuf runtime: the quick client's lite messages (``servin.client.quick.lite``), the
daemon's list responses joined from cached bytes (``engine/server/grpc/wirecache.py``) and
the migration that reads the store's old protobuf rows (``engine/store/legacy_spec.py``).
"""

from __future__ import annotations


class WireError(ValueError):
    """Bytes that are not a valid protobuf encoding."""


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` in ``data`` and the position after it."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def encode_varint(value: int) -> bytes:
    """``value`` as a varint (negative numbers as 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def framed(field_number: int, payload: bytes | bytearray) -> bytes:
    """A length-delimited field (wire type 2): a string, bytes, a message, one element of a
    repeated message field or a packed run of scalars."""
    return encode_varint(field_number << 3 | 2) + encode_varint(len(payload)) + payload
