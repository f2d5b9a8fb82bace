"""HPACK (RFC 7541) header compression: a full decoder and a trivial encoder.

The decoder handles the static and dynamic tables (with size updates), prefixed integers and
Huffman-coded strings. The encoder sends every header as a literal without indexing and
without Huffman coding (or as a static-table index when the whole field is there), so it
never changes any table the daemon's decoder keeps.

The Huffman code is canonical: only the code length of each of the 257 symbols is stored
(RFC 7541 Appendix B); codes follow from sorting symbols by (length, symbol).
"""

from __future__ import annotations

from collections import deque

Header = tuple[bytes, bytes]

STATIC_TABLE: tuple[Header, ...] = tuple(
    (name.encode(), value.encode())
    for name, value in (
        (":authority", ""),
        (":method", "GET"),
        (":method", "POST"),
        (":path", "/"),
        (":path", "/index.html"),
        (":scheme", "http"),
        (":scheme", "https"),
        (":status", "200"),
        (":status", "204"),
        (":status", "206"),
        (":status", "304"),
        (":status", "400"),
        (":status", "404"),
        (":status", "500"),
        ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"),
        ("accept-language", ""),
        ("accept-ranges", ""),
        ("accept", ""),
        ("access-control-allow-origin", ""),
        ("age", ""),
        ("allow", ""),
        ("authorization", ""),
        ("cache-control", ""),
        ("content-disposition", ""),
        ("content-encoding", ""),
        ("content-language", ""),
        ("content-length", ""),
        ("content-location", ""),
        ("content-range", ""),
        ("content-type", ""),
        ("cookie", ""),
        ("date", ""),
        ("etag", ""),
        ("expect", ""),
        ("expires", ""),
        ("from", ""),
        ("host", ""),
        ("if-match", ""),
        ("if-modified-since", ""),
        ("if-none-match", ""),
        ("if-range", ""),
        ("if-unmodified-since", ""),
        ("last-modified", ""),
        ("link", ""),
        ("location", ""),
        ("max-forwards", ""),
        ("proxy-authenticate", ""),
        ("proxy-authorization", ""),
        ("range", ""),
        ("referer", ""),
        ("refresh", ""),
        ("retry-after", ""),
        ("server", ""),
        ("set-cookie", ""),
        ("strict-transport-security", ""),
        ("transfer-encoding", ""),
        ("user-agent", ""),
        ("vary", ""),
        ("via", ""),
        ("www-authenticate", ""),
    )
)

# Code length in bits of symbols 0..255 and EOS (256), RFC 7541 Appendix B.
HUFFMAN_LENGTHS: tuple[int, ...] = (
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
)  # fmt: skip
EOS = 256
ENTRY_OVERHEAD = 32  # bytes each dynamic-table entry counts beyond its name and value
DEFAULT_TABLE_SIZE = 4096


class HPACKError(Exception):
    """A header block that cannot be decoded (a COMPRESSION_ERROR for the connection)."""


def huffman_codes() -> list[int]:
    """The code of each symbol, built canonically from ``HUFFMAN_LENGTHS``."""
    codes = [0] * len(HUFFMAN_LENGTHS)
    code = 0
    previous = 0
    for symbol in sorted(range(len(HUFFMAN_LENGTHS)), key=lambda s: (HUFFMAN_LENGTHS[s], s)):
        length = HUFFMAN_LENGTHS[symbol]
        code <<= length - previous
        previous = length
        codes[symbol] = code
        code += 1
    return codes


class _Canonical:
    """Decoding tables of the canonical code: per length, its first code and symbols."""

    def __init__(self) -> None:
        order = sorted(range(len(HUFFMAN_LENGTHS)), key=lambda s: (HUFFMAN_LENGTHS[s], s))
        codes = huffman_codes()
        longest = max(HUFFMAN_LENGTHS)
        self.first = [0] * (longest + 1)
        self.count = [0] * (longest + 1)
        self.start = [0] * (longest + 1)  # index in ``symbols`` of each length's first symbol
        self.symbols = order
        for index, symbol in enumerate(order):
            length = HUFFMAN_LENGTHS[symbol]
            if self.count[length] == 0:
                self.first[length] = codes[symbol]
                self.start[length] = index
            self.count[length] += 1


_CANONICAL: _Canonical | None = None


def huffman_decode(data: bytes) -> bytes:
    """Decode a Huffman-coded string (RFC 7541 section 5.2)."""
    global _CANONICAL
    table = _CANONICAL or _Canonical()
    _CANONICAL = table
    first, count, start, symbols = table.first, table.count, table.start, table.symbols
    out = bytearray()
    code = 0
    length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            if length >= len(count):
                raise HPACKError("invalid Huffman code")
            offset = code - first[length]
            if count[length] and 0 <= offset < count[length]:
                symbol = symbols[start[length] + offset]
                if symbol == EOS:
                    raise HPACKError("EOS in a Huffman-coded string")
                out.append(symbol)
                code = 0
                length = 0
    # Padding: fewer than 8 bits, all ones (the most significant bits of EOS).
    if length > 7 or code != (1 << length) - 1:
        raise HPACKError("invalid Huffman padding")
    return bytes(out)


def decode_integer(data: bytes, pos: int, prefix: int) -> tuple[int, int]:
    """An integer with an N-bit prefix starting at ``data[pos]``: (value, next position)."""
    if pos >= len(data):
        raise HPACKError("truncated integer")
    mask = (1 << prefix) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data):
            raise HPACKError("truncated integer")
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 28:
            raise HPACKError("integer too large")


def encode_integer(value: int, prefix: int, flags: int = 0) -> bytes:
    """``value`` with an N-bit prefix; ``flags`` fills the first byte's other bits."""
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes((flags | value,))
    out = bytearray((flags | mask,))
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Decoder:
    """One connection's HPACK decoding state (its dynamic table)."""

    def __init__(self, max_table_size: int = DEFAULT_TABLE_SIZE) -> None:
        self.limit = max_table_size  # what we allow (SETTINGS_HEADER_TABLE_SIZE)
        self.max_size = max_table_size  # what the encoder chose, at most ``limit``
        self.size = 0
        self.table: deque[Header] = deque()

    def _get(self, index: int) -> Header:
        if index <= 0:
            raise HPACKError("header index 0")
        if index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        dynamic = index - len(STATIC_TABLE) - 1
        if dynamic >= len(self.table):
            raise HPACKError(f"header index {index} is out of the table")
        return self.table[dynamic]

    def _add(self, header: Header) -> None:
        size = len(header[0]) + len(header[1]) + ENTRY_OVERHEAD
        self.table.appendleft(header)
        self.size += size
        self._evict()

    def _evict(self) -> None:
        while self.size > self.max_size and self.table:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + ENTRY_OVERHEAD

    def _string(self, data: bytes, pos: int) -> tuple[bytes, int]:
        if pos >= len(data):
            raise HPACKError("truncated string")
        huffman = data[pos] & 0x80
        length, pos = decode_integer(data, pos, 7)
        end = pos + length
        if end > len(data):
            raise HPACKError("truncated string")
        raw = data[pos:end]
        return (huffman_decode(raw) if huffman else raw), end

    def decode(self, data: bytes) -> list[Header]:
        """The header list of one complete header block."""
        headers: list[Header] = []
        pos = 0
        while pos < len(data):
            byte = data[pos]
            if byte & 0x80:  # indexed field
                index, pos = decode_integer(data, pos, 7)
                headers.append(self._get(index))
                continue
            if byte & 0xE0 == 0x20:  # dynamic table size update
                if headers:
                    raise HPACKError("table size update after a header")
                size, pos = decode_integer(data, pos, 5)
                if size > self.limit:
                    raise HPACKError(f"table size {size} is over the limit {self.limit}")
                self.max_size = size
                self._evict()
                continue
            indexing = bool(byte & 0x40)
            index, pos = decode_integer(data, pos, 6 if indexing else 4)
            if index:
                name = self._get(index)[0]
            else:
                name, pos = self._string(data, pos)
            value, pos = self._string(data, pos)
            header = (name, value)
            if indexing:
                self._add(header)
            headers.append(header)
        return headers


_STATIC_FIELDS = {header: i + 1 for i, header in enumerate(STATIC_TABLE)}
_STATIC_NAMES: dict[bytes, int] = {}
for _i, (_name, _) in enumerate(STATIC_TABLE):
    _STATIC_NAMES.setdefault(_name, _i + 1)


def encode(headers: list[Header]) -> bytes:
    """A header block: static-table indexes, else literals without indexing (no Huffman)."""
    out = bytearray()
    for name, value in headers:
        index = _STATIC_FIELDS.get((name, value))
        if index is not None:
            out += encode_integer(index, 7, 0x80)
            continue
        name_index = _STATIC_NAMES.get(name, 0)
        out += encode_integer(name_index, 4)
        if not name_index:
            out += encode_integer(len(name), 7) + name
        out += encode_integer(len(value), 7) + value
    return bytes(out)
