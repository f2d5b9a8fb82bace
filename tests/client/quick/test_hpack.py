"""HPACK (servin.client.quick.hpack): RFC 7541's examples, and the hpack library as a peer."""

from __future__ import annotations

import random

import hpack as hpack_lib  # tests only: the reference the quick decoder is checked against
import hpack.huffman_constants
import pytest

from servin.client.quick import hpack


def test_huffman_code_is_built_canonically_from_the_lengths() -> None:
    assert len(hpack.HUFFMAN_LENGTHS) == 257
    assert hpack.huffman_codes() == list(hpack_lib.huffman_constants.REQUEST_CODES)
    assert list(hpack.HUFFMAN_LENGTHS) == list(hpack_lib.huffman_constants.REQUEST_CODES_LENGTH)


def test_static_table_is_rfc_7541_appendix_a() -> None:
    assert len(hpack.STATIC_TABLE) == 61
    assert list(hpack.STATIC_TABLE) == list(hpack_lib.table.HeaderTable.STATIC_TABLE)


@pytest.mark.parametrize(
    ("value", "prefix", "encoded"),
    [(10, 5, "0a"), (1337, 5, "1f9a0a"), (42, 8, "2a")],  # RFC 7541 C.1
)
def test_integers(value: int, prefix: int, encoded: str) -> None:
    assert hpack.encode_integer(value, prefix) == bytes.fromhex(encoded)
    assert hpack.decode_integer(bytes.fromhex(encoded), 0, prefix) == (value, len(encoded) // 2)


def test_rfc_c3_requests_without_huffman_share_one_dynamic_table() -> None:
    d = hpack.Decoder()
    assert d.decode(bytes.fromhex("828684410f7777772e6578616d706c652e636f6d")) == [
        (b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
        (b":authority", b"www.example.com"),
    ]
    assert d.size == 57
    assert d.decode(bytes.fromhex("828684be58086e6f2d6361636865"))[-1] == (
        b"cache-control", b"no-cache")
    assert d.size == 110
    third = d.decode(bytes.fromhex(
        "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"))
    assert third[1:] == [(b":scheme", b"https"), (b":path", b"/index.html"),
                         (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")]
    assert d.size == 164


def test_rfc_c4_requests_with_huffman() -> None:
    d = hpack.Decoder()
    first = d.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
    assert first[-1] == (b":authority", b"www.example.com")
    second = d.decode(bytes.fromhex("828684be5886a8eb10649cbf"))
    assert second[-1] == (b"cache-control", b"no-cache")
    third = d.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
    assert third[-1] == (b"custom-key", b"custom-value")
    assert d.size == 164 and len(d.table) == 3


def test_table_size_update_evicts_and_is_bounded() -> None:
    d = hpack.Decoder()
    d.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
    assert len(d.table) == 1
    d.decode(b"\x20")  # size update to 0: everything evicted
    assert len(d.table) == 0 and d.size == 0
    with pytest.raises(hpack.HPACKError):
        d.decode(hpack.encode_integer(8192, 5, 0x20))  # over our limit
    with pytest.raises(hpack.HPACKError):
        d.decode(b"\x82\x20")  # an update after a header


@pytest.mark.parametrize("block", [b"\x80", b"\xbe", b"\x0f", b"\x00\x85ab", b"\x00\x81\x00"])
def test_bad_blocks_are_errors(block: bytes) -> None:
    with pytest.raises(hpack.HPACKError):
        hpack.Decoder().decode(block)


def test_huffman_padding_and_eos_are_checked() -> None:
    assert hpack.huffman_decode(bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")) == b"www.example.com"
    with pytest.raises(hpack.HPACKError):
        hpack.huffman_decode(b"\xff\xff\xff\xff")  # EOS inside
    with pytest.raises(hpack.HPACKError):
        hpack.huffman_decode(b"\x00")  # '0' then padding of zeros


def test_decodes_what_the_hpack_library_encodes() -> None:
    rng = random.Random(7)
    encoder = hpack_lib.Encoder()
    decoder = hpack.Decoder()
    names = [b":status", b"content-type", b"grpc-status", b"grpc-message", b"x-custom", b"date"]
    for round_ in range(300):
        if round_ % 50 == 25:
            encoder.header_table_size = rng.choice([0, 256, 1024, 4096])
        headers = [
            (rng.choice(names), bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
            for _ in range(rng.randrange(1, 8))
        ]
        block = encoder.encode(headers, huffman=bool(round_ % 2))
        assert decoder.decode(block) == headers


def test_the_library_decodes_what_we_encode() -> None:
    headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/servin.v1.X/Y"),
               (b"te", b"trailers"), (b"grpc-timeout", b"5S"), (b"x-" + b"n" * 200, b"v" * 300)]
    assert hpack_lib.Decoder().decode(hpack.encode(headers), raw=True) == headers
