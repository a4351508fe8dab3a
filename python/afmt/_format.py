"""Byte-level decoding of afmt files, written from docs/format.md alone.

Each function follows one section of the format document and names it; the checks are
made in the order the document gives (its section 16 lists them all), and a failed check
raises CorruptError with a message naming the structure. Nothing here imports libafmt.

Names, dimension names and attribute keys are byte strings in the file. They become str
through UTF-8 with "surrogateescape": a byte that is not part of valid UTF-8 becomes the
lone surrogate U+DC80 + byte, so that distinct names stay distinct and
name.encode("utf-8", "surrogateescape") gives the bytes back.
"""

import struct

import xxhash

SUPER_REGION = 4096
SLOT_SIZE = 128
SLOT_OFFSETS = (0, 2048)
TRAILER_SIZE = 32
FORMAT_VERSION = 1

SLOT_MAGIC = b"AFMTSUPR"
TRAILER_MAGIC = b"AFMTTRLR"
FOOTER_MAGIC = b"AFMTLAYR"

HEADER_V1 = 176
ARRAY_REC_V1 = 48
ARRAY_DIM_V1 = 32
BLOCK_REC_V1 = 40
CHUNK_REC_V1 = 40
ATTR_REC_V1 = 56

FLAG_BASE = 1          # layer flags, section 5.1
ARRAY_SHUFFLE = 1      # array flags, section 6
KIND_DEFINE = 1
KIND_DELETE = 2
SCOPE_FILE = 0
SCOPE_LAYER = (1 << 64) - 1
MAX_NDIM = 32
U64_MAX = (1 << 64) - 1
MAX_CHUNK_BYTES = 1 << 30   # section 2: one full chunk, and one block's raw size
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# Section 6: dtype id -> (name, numpy little-endian type string, size).
DTYPES = {
    0: ("bool", "|b1", 1),
    1: ("int8", "|i1", 1),
    2: ("int16", "<i2", 2),
    3: ("int32", "<i4", 4),
    4: ("int64", "<i8", 8),
    5: ("uint8", "|u1", 1),
    6: ("uint16", "<u2", 2),
    7: ("uint32", "<u4", 4),
    8: ("uint64", "<u8", 8),
    9: ("float32", "<f4", 4),
    10: ("float64", "<f8", 8),
}

CODEC_NONE, CODEC_LZ4, CODEC_ZSTD = 0, 1, 2
CODEC_NAMES = {CODEC_NONE: "none", CODEC_LZ4: "lz4", CODEC_ZSTD: "zstd"}


class AfmtError(Exception):
    """Base of the errors of this package; .code is the C library's AFMT_E* value."""

    code = -1


class CorruptError(AfmtError):
    """The file is damaged: a checksum or a rule of docs/format.md does not hold
    (AFMT_ECORRUPT). Every damaged-file path of the reader raises this one type."""

    code = -7


class VersionError(AfmtError):
    """The file is of a newer format version (AFMT_EVERSION)."""

    code = -8


class CodecError(AfmtError):
    """A block uses a codec this reader lacks (AFMT_ECODEC)."""

    code = -10


def checksum(data):
    """XXH3-64 with seed 0 (section 2): the one checksum of the format."""
    return xxhash.xxh3_64_intdigest(data)


def _u32(b, off):
    return struct.unpack_from("<I", b, off)[0]


def _u64(b, off):
    return struct.unpack_from("<Q", b, off)[0]


# ---- section 3: superblock ------------------------------------------------------------


def name_str(b):
    """A name, dimension name or key of the file (bytes) as a str (module docstring)."""
    return bytes(b).decode("utf-8", "surrogateescape")


def name_bytes(s):
    """The inverse of name_str; bytes are taken as they are."""
    if isinstance(s, (bytes, bytearray)):
        return bytes(s)
    return s.encode("utf-8", "surrogateescape")


class Slot:
    """One valid superblock slot (section 3.1)."""

    __slots__ = ("offset", "name", "version", "uuid", "generation", "footer_offset",
                 "footer_length", "footer_checksum", "eof", "nlayers", "layer_id",
                 "next_array_id")


def decode_slot(region, offset):
    """Section 3.2: returns (Slot, None) for a valid slot, (None, reason) otherwise, or
    ("newer", version) for a valid slot of a newer version."""
    if offset + SLOT_SIZE > len(region):
        return None, "missing (file is only %d bytes)" % len(region)
    b = bytes(region[offset:offset + SLOT_SIZE])
    if b[0:8] != SLOT_MAGIC:
        return None, "empty" if b == bytes(SLOT_SIZE) else "bad magic"
    if _u64(b, 120) != checksum(b[:120]):
        return None, "bad checksum"
    version = _u32(b, 8)
    if version == 0:
        return None, "bad version 0"
    if version > FORMAT_VERSION:
        return "newer", version
    s = Slot()
    s.offset = offset
    s.name = "AB"[SLOT_OFFSETS.index(offset)]
    s.version = version
    s.uuid = b[16:32]
    (s.generation, s.footer_offset, s.footer_length, s.footer_checksum, s.eof, s.nlayers,
     s.layer_id, s.next_array_id) = struct.unpack_from("<8Q", b, 32)
    if s.eof < SUPER_REGION:
        return None, "eof %d is inside the superblock region" % s.eof
    if (s.footer_length == 0) != (s.nlayers == 0) or (s.footer_length == 0 and
                                                      s.footer_offset != 0):
        return None, "inconsistent footer_offset, footer_length, nlayers"
    if s.footer_length != 0:
        end = s.footer_offset + s.footer_length + TRAILER_SIZE
        if s.footer_offset < SUPER_REGION or end > U64_MAX or end > s.eof:
            return None, ("footer at offset %d, length %d plus its trailer does not lie in "
                          "[4096, eof %d)" % (s.footer_offset, s.footer_length, s.eof))
    if s.next_array_id < 1:
        return None, "next_array_id is 0"
    return s, None


def pick_slot(region, size):
    """Section 3.3: region is the first 4096 bytes (fewer for a short file), size the file
    size read AFTER them. Returns the usable slot with the highest generation."""
    valid, why = [], []
    for name, off in zip("AB", SLOT_OFFSETS):
        s, reason = decode_slot(region, off)
        if s == "newer":
            raise VersionError("superblock slot %s: format version %d is newer than this "
                               "reader's %d" % (name, reason, FORMAT_VERSION))
        if s is None:
            why.append("slot %s: %s" % (name, reason))
        else:
            valid.append(s)
    if len(valid) == 2 and valid[0].uuid != valid[1].uuid:
        raise CorruptError("superblock: the slots name different files (uuid %s and %s)" %
                           (valid[0].uuid.hex(), valid[1].uuid.hex()))
    usable = []
    for s in valid:
        if s.eof > size:   # a commit whose bytes are not (or no longer) all in the file
            why.append("slot %s: the file has only %d bytes, the slot's eof is %d" %
                       (s.name, size, s.eof))
        else:
            usable.append(s)
    if not usable:
        raise CorruptError("superblock: no valid slot: " + "; ".join(why))
    best = usable[0]
    for s in usable[1:]:
        if s.generation > best.generation:
            best = s
    return best


# ---- section 4: trailer ---------------------------------------------------------------


def check_trailer(t, footer_offset, footer_length, footer_sum):
    """Sections 4 and 11.1 step 5: the trailer after a footer must be valid and name the
    footer and its checksum."""
    at = footer_offset + footer_length
    if len(t) != TRAILER_SIZE or t[24:32] != TRAILER_MAGIC:
        raise CorruptError("trailer at %d of the layer footer at %d is damaged: bad magic" %
                           (at, footer_offset))
    off, length, ck = struct.unpack_from("<3Q", t, 0)
    if length == 0 or off < SUPER_REGION or off + length > U64_MAX:
        raise CorruptError("trailer at %d of the layer footer at %d is damaged: offset %d, "
                           "length %d" % (at, footer_offset, off, length))
    if off != footer_offset or length != footer_length or ck != footer_sum:
        raise CorruptError("trailer at %d of the layer footer at %d is damaged: it names "
                           "(%d, %d) and checksum %016x, not this footer (%d bytes)" %
                           (at, footer_offset, off, length, ck, footer_length))


# ---- section 5-10: layer footer -------------------------------------------------------


class Layer:
    """A decoded layer footer: header fields and the four record tables."""

    def __init__(self):
        self.arrays = []    # dicts: id, kind, flags, dtype, ndim, name, fill, shape, chunk, dims
        self.blocks = []    # tuples: (offset, stored_size, raw_size, checksum, codec, rank)
        self.chunks = []    # tuples: (array_id, chunk_index, block, offset, size)
        self.attrs = []     # tuples: (scope, key, dtype, n, value bytes)
        self.footer_offset = 0
        self.footer_length = 0


def _heap_string(heap, off, length, lo, hi, what):
    """Section 5.3: a string reference, as a str (name_str)."""
    if off + length > len(heap) or length < lo or length > hi:
        raise CorruptError("%s: string reference (%d, %d) invalid (length %d..%d, heap %d)" %
                           (what, off, length, lo, hi, len(heap)))
    s = bytes(heap[off:off + length])
    if b"\0" in s:
        raise CorruptError("%s: string contains a zero byte" % what)
    return name_str(s)


def _array_records(fb, L, heap, a0, b0, n_arrays, rs_array, rs_dim, what):
    """Section 6: the array records, each checked in the document's order (rules 1-9)."""
    p = a0
    for i in range(n_arrays):
        rw = "%s: array record %d" % (what, i)
        if p + rs_array > b0:                                               # rule 1
            raise CorruptError("%s runs past its section" % rw)
        aid, kind, aflags, dtype, ndim, noff, nlen = struct.unpack_from("<Q4I2Q", fb, p)
        fill = bytes(fb[p + 40:p + 48])
        name = _heap_string(heap, noff, nlen, 1, 255, rw + " name")         # rule 2
        rw = "%s (%r)" % (rw, name)
        if aid < 1 or aid >= L.next_array_id:                               # rule 3
            raise CorruptError("%s: id %d outside [1, %d)" % (rw, aid, L.next_array_id))
        p += rs_array
        if ndim > MAX_NDIM or p + ndim * rs_dim > b0:                       # rule 4
            raise CorruptError("%s: ndim %d, or its dimensions run past the section" %
                               (rw, ndim))
        rec = {"id": aid, "kind": kind, "flags": aflags, "dtype": dtype, "ndim": ndim,
               "name": name, "fill": fill, "shape": (), "chunk": (), "dims": ()}
        if kind == KIND_DELETE:                                             # rule 5
            if ndim or dtype or aflags or fill != bytes(8):
                raise CorruptError("%s: DELETE with nonzero fields" % rw)
            L.arrays.append(rec)
            continue
        if kind != KIND_DEFINE:                                             # rule 6
            raise CorruptError("%s: unknown kind %d" % (rw, kind))
        if dtype not in DTYPES or aflags & ~ARRAY_SHUFFLE:                  # rule 7
            raise CorruptError("%s: bad dtype %d or flags 0x%x" % (rw, dtype, aflags))
        size = DTYPES[dtype][2]
        if fill[size:] != bytes(8 - size):
            raise CorruptError("%s: fill padding is not zero" % rw)
        shape, chunk, dims = [], [], []
        prod = cprod = 1
        for d in range(ndim):                                               # rule 8
            s, c, doff, dlen = struct.unpack_from("<4Q", fb, p + d * rs_dim)
            dims.append(_heap_string(heap, doff, dlen, 1, 63, "%s dim %d" % (rw, d)))
            if c < 1 or c > s:
                raise CorruptError("%s: dimension %d shape %d chunk %d" % (rw, d, s, c))
            prod *= s
            cprod *= c
            if prod > U64_MAX:
                raise CorruptError("%s: the product of the shape overflows" % rw)
            shape.append(s)
            chunk.append(c)
        if prod * size > U64_MAX or cprod * size > MAX_CHUNK_BYTES:         # rule 9
            raise CorruptError("%s: %d bytes of array or %d bytes of chunk exceed the "
                               "limits (< 2^64, <= 2^30)" % (rw, prod * size, cprod * size))
        p += ndim * rs_dim
        rec["shape"], rec["chunk"], rec["dims"] = tuple(shape), tuple(chunk), tuple(dims)
        L.arrays.append(rec)
    if p != b0:                                                             # A10
        raise CorruptError("%s: the array section has %d bytes after its records" %
                           (what, b0 - p))


def decode_footer(fb, where="layer footer"):
    """Sections 5.2-10: validates and decodes one footer (bytes-like) in the document's
    order; raises CorruptError or VersionError."""
    n = len(fb)
    what = "%s (%d bytes)" % (where, n)
    if n < HEADER_V1 + 8:                                                   # step 1
        raise CorruptError("%s: shorter than the minimum of %d bytes" % (what, HEADER_V1 + 8))
    if _u64(fb, n - 8) != checksum(fb[:n - 8]):                             # step 2
        raise CorruptError("%s: bad checksum" % what)
    if bytes(fb[0:8]) != FOOTER_MAGIC:                                      # step 3
        raise CorruptError("%s: bad magic" % what)
    version = _u32(fb, 8)
    if version == 0:
        raise CorruptError("%s: bad version 0" % what)
    if version > FORMAT_VERSION:
        raise VersionError("%s: format version %d is newer than this reader's %d" %
                           (what, version, FORMAT_VERSION))
    header_size = _u32(fb, 12)
    if header_size < HEADER_V1 or header_size > n - 8:                      # step 4
        raise CorruptError("%s: header size %d not in %d..%d" % (what, header_size, HEADER_V1,
                                                                 n - 8))
    L = Layer()
    (L.layer_id, L.prev_offset, L.prev_length, L.data_offset, L.time_ns) = struct.unpack_from(
        "<5Q", fb, 16)
    L.nranks, L.flags = struct.unpack_from("<2I", fb, 56)
    (L.next_array_id, n_arrays, n_blocks, n_chunks, n_attrs, arrays_size, blocks_size,
     chunks_size, attrs_size, heap_size) = struct.unpack_from("<10Q", fb, 64)
    rs_array, rs_dim, rs_block, rs_chunk, rs_attr = struct.unpack_from("<5I", fb, 144)
    if (rs_array < ARRAY_REC_V1 or rs_dim < ARRAY_DIM_V1 or rs_block < BLOCK_REC_V1  # step 5
            or rs_chunk < CHUNK_REC_V1 or rs_attr < ATTR_REC_V1):
        raise CorruptError("%s: a record size is below its version 1 size" % what)
    # Step 6. Python integers do not overflow: an exact product equal to a u64 field is
    # the same test as the document's overflow-checked one, and the sum is exact.
    if (blocks_size != n_blocks * rs_block or chunks_size != n_chunks * rs_chunk
            or attrs_size != n_attrs * rs_attr or n_arrays * rs_array > arrays_size):
        raise CorruptError("%s: section sizes do not match the record counts" % what)
    total = header_size + arrays_size + blocks_size + chunks_size + attrs_size + heap_size + 8
    if total != n:
        raise CorruptError("%s: sections add up to %d bytes, not the footer length" %
                           (what, total))
    # Step 7.
    if L.flags & ~FLAG_BASE:
        raise CorruptError("%s: unknown layer flags 0x%x" % (what, L.flags))
    if L.nranks < 1 or L.next_array_id < 1 or L.data_offset < SUPER_REGION:
        raise CorruptError("%s: nranks %d, next_array_id %d or data_offset %d out of range" %
                           (what, L.nranks, L.next_array_id, L.data_offset))
    if (L.prev_offset == 0) != (L.prev_length == 0):
        raise CorruptError("%s: prev_offset and prev_length disagree" % what)
    if L.prev_offset and (L.prev_offset < SUPER_REGION or
                          L.prev_offset + L.prev_length + TRAILER_SIZE > L.data_offset):
        raise CorruptError("%s: previous footer at %d, length %d (plus trailer) does not end "
                           "before the data at %d" % (what, L.prev_offset, L.prev_length,
                                                      L.data_offset))
    if L.flags & FLAG_BASE and L.prev_offset:
        raise CorruptError("%s: BASE layer has a previous footer" % what)
    a0 = header_size
    b0 = a0 + arrays_size
    c0 = b0 + blocks_size
    t0 = c0 + chunks_size
    h0 = t0 + attrs_size
    heap = memoryview(fb)[h0:h0 + heap_size]
    # Step 8: section 6, array records.
    _array_records(fb, L, heap, a0, b0, n_arrays, rs_array, rs_dim, what)
    # Section 8: block records.
    for i in range(n_blocks):
        off, stored, raw, ck, codec, rank = struct.unpack_from("<4Q2I", fb, b0 + i * rs_block)
        rw = "%s: block record %d" % (what, i)
        if off < L.data_offset or off + stored > U64_MAX:
            raise CorruptError("%s: offset %d (%d bytes) below the data at %d or overflowing" %
                               (rw, off, stored, L.data_offset))
        if codec == CODEC_NONE and stored != raw:
            raise CorruptError("%s: codec none with stored %d != raw %d" % (rw, stored, raw))
        if raw > MAX_CHUNK_BYTES:
            raise CorruptError("%s: raw size %d over the limit of 2^30" % (rw, raw))
        if rank >= L.nranks:
            raise CorruptError("%s: rank %d of %d" % (rw, rank, L.nranks))
        L.blocks.append((off, stored, raw, ck, codec, rank))
    # Section 9: chunk records, strictly increasing.
    prev = None
    for i in range(n_chunks):
        aid, idx, blk, off, size = struct.unpack_from("<5Q", fb, c0 + i * rs_chunk)
        rw = "%s: chunk record %d" % (what, i)
        if aid < 1 or aid >= L.next_array_id:
            raise CorruptError("%s: array id %d outside [1, %d)" % (rw, aid, L.next_array_id))
        if prev is not None and (aid, idx) <= prev:
            raise CorruptError("%s: out of order" % rw)
        if blk >= n_blocks:
            raise CorruptError("%s references block %d of %d" % (rw, blk, n_blocks))
        if size < 1 or off + size > L.blocks[blk][2]:
            raise CorruptError("%s: [%d, +%d) does not lie in block %d's %d raw bytes" %
                               (rw, off, size, blk, L.blocks[blk][2]))
        prev = (aid, idx)
        L.chunks.append((aid, idx, blk, off, size))
    # Section 10: attribute records.
    for i in range(n_attrs):
        scope, koff, klen, dtype, _res, cnt, voff, vlen = struct.unpack_from(
            "<3Q2I3Q", fb, t0 + i * rs_attr)
        rw = "%s: attribute record %d" % (what, i)
        key = _heap_string(heap, koff, klen, 1, 255, rw + " key")
        rw = "%s (%r)" % (rw, key)
        if scope != SCOPE_FILE and scope != SCOPE_LAYER and scope >= L.next_array_id:
            raise CorruptError("%s: scope %d" % (rw, scope))
        if dtype not in DTYPES or vlen != cnt * DTYPES[dtype][2]:
            raise CorruptError("%s: bad dtype %d or value length %d" % (rw, dtype, vlen))
        if voff + vlen > heap_size:
            raise CorruptError("%s: value (%d, %d) outside the heap of %d" %
                               (rw, voff, vlen, heap_size))
        L.attrs.append((scope, key, dtype, cnt, bytes(heap[voff:voff + vlen])))
    return L
