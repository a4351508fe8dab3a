"""Byte-level decoding of afmt files, written from docs/format.md alone.

Each function follows one section of the format document and names it; the checks are
made in the order the document gives, and a failed check raises CorruptError with a
message naming the structure. Nothing here imports libafmt.
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
    """A checksum or structure check failed (AFMT_ECORRUPT)."""

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


class Slot:
    """One valid superblock slot (section 3.1)."""

    __slots__ = ("offset", "version", "uuid", "generation", "footer_offset", "footer_length",
                 "footer_checksum", "eof", "nlayers", "layer_id", "next_array_id")


def decode_slot(region, offset):
    """Returns (Slot, None) for a valid slot, (None, reason) otherwise (section 3.2), or
    ("newer", version) for a valid slot of a newer version (section 3.3 step 1)."""
    if offset + SLOT_SIZE > len(region):
        return None, "missing"
    b = bytes(region[offset:offset + SLOT_SIZE])
    if b[0:8] != SLOT_MAGIC:
        return None, "empty" if b == bytes(SLOT_SIZE) else "bad magic"
    if _u64(b, 120) != checksum(b[:120]):
        return None, "bad checksum"
    version = _u32(b, 8)
    if version == 0:
        return None, "version 0"
    if version > FORMAT_VERSION:
        return "newer", version
    s = Slot()
    s.offset = offset
    s.version = version
    s.uuid = b[16:32]
    (s.generation, s.footer_offset, s.footer_length, s.footer_checksum, s.eof, s.nlayers,
     s.layer_id, s.next_array_id) = struct.unpack_from("<8Q", b, 32)
    if s.eof < SUPER_REGION:
        return None, "eof %d below the superblock region" % s.eof
    if (s.footer_length == 0) != (s.nlayers == 0):
        return None, "footer_length and nlayers disagree"
    if s.footer_length == 0 and s.footer_offset != 0:
        return None, "footer_offset without a footer"
    if s.footer_length != 0:
        end = s.footer_offset + s.footer_length + TRAILER_SIZE
        if s.footer_offset < SUPER_REGION or end > U64_MAX or end > s.eof:
            return None, "footer at %d (+%d and its trailer) outside the file end %d" % (
                s.footer_offset, s.footer_length, s.eof)
    return s, None


def pick_slot(region):
    """Section 3.3: the valid slot with the highest generation (slot A on a tie)."""
    found, why = [], []
    for name, off in zip("AB", SLOT_OFFSETS):
        s, reason = decode_slot(region, off)
        if s == "newer":
            raise VersionError("superblock slot %s: unsupported format version %d (this reader "
                               "knows %d)" % (name, reason, FORMAT_VERSION))
        if s is None:
            why.append("slot %s: %s" % (name, reason))
        else:
            found.append(s)
    if not found:
        raise CorruptError("superblock: no valid slot: " + "; ".join(why))
    best = found[0]
    for s in found[1:]:
        if s.generation > best.generation:
            best = s
    return best


# ---- section 4: trailer ---------------------------------------------------------------


def check_trailer(t, footer_offset, footer_length, footer_sum):
    """Section 4 and 11: the trailer after a footer must name it and its checksum."""
    if len(t) != TRAILER_SIZE or t[24:32] != TRAILER_MAGIC:
        raise CorruptError("trailer at %d of the layer footer at %d: bad magic" %
                           (footer_offset + footer_length, footer_offset))
    off, length, ck = struct.unpack_from("<3Q", t, 0)
    if off != footer_offset or length != footer_length or ck != footer_sum:
        raise CorruptError("trailer at %d does not match the layer footer at %d (%d bytes)" %
                           (footer_offset + footer_length, footer_offset, footer_length))


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
    if length < lo or length > hi or off + length > len(heap):
        raise CorruptError("%s: string reference (%d, %d) invalid (length %d..%d, heap %d)" %
                           (what, off, length, lo, hi, len(heap)))
    s = bytes(heap[off:off + length])
    if b"\0" in s:
        raise CorruptError("%s: string contains a zero byte" % what)
    return s.decode("utf-8", "replace")


def decode_footer(fb, where="layer footer"):
    """Sections 5.2-10: validates and decodes one footer (bytes-like) in the document's
    order; raises CorruptError or VersionError."""
    n = len(fb)
    what = "%s (%d bytes)" % (where, n)
    if n < HEADER_V1 + 8:
        raise CorruptError("%s: shorter than a header and checksum" % what)
    if _u64(fb, n - 8) != checksum(fb[:n - 8]):
        raise CorruptError("%s: bad checksum" % what)
    if bytes(fb[0:8]) != FOOTER_MAGIC:
        raise CorruptError("%s: bad magic" % what)
    version = _u32(fb, 8)
    if version == 0:
        raise CorruptError("%s: version 0" % what)
    if version > FORMAT_VERSION:
        raise VersionError("%s: unsupported format version %d" % (what, version))
    header_size = _u32(fb, 12)
    if header_size < HEADER_V1 or header_size > n - 8:
        raise CorruptError("%s: header_size %d" % (what, header_size))
    L = Layer()
    (L.layer_id, L.prev_offset, L.prev_length, L.data_offset, L.time_ns) = struct.unpack_from(
        "<5Q", fb, 16)
    L.nranks, L.flags = struct.unpack_from("<2I", fb, 56)
    (L.next_array_id, n_arrays, n_blocks, n_chunks, n_attrs, arrays_size, blocks_size,
     chunks_size, attrs_size, heap_size) = struct.unpack_from("<10Q", fb, 64)
    rs_array, rs_dim, rs_block, rs_chunk, rs_attr = struct.unpack_from("<5I", fb, 144)
    if (rs_array < ARRAY_REC_V1 or rs_dim < ARRAY_DIM_V1 or rs_block < BLOCK_REC_V1
            or rs_chunk < CHUNK_REC_V1 or rs_attr < ATTR_REC_V1):
        raise CorruptError("%s: a record size is below its version 1 size" % what)
    # Step 6, Python integers do not overflow: compare with the u64 limit instead.
    if (blocks_size != n_blocks * rs_block or chunks_size != n_chunks * rs_chunk
            or attrs_size != n_attrs * rs_attr or n_arrays * rs_array > arrays_size):
        raise CorruptError("%s: section sizes do not match the record counts" % what)
    total = header_size + arrays_size + blocks_size + chunks_size + attrs_size + heap_size + 8
    if total != n or any(v > U64_MAX for v in (blocks_size, chunks_size, attrs_size)):
        raise CorruptError("%s: sections add up to %d bytes" % (what, total))
    # Step 7.
    if L.flags & ~FLAG_BASE:
        raise CorruptError("%s: unknown layer flags 0x%x" % (what, L.flags))
    if L.nranks < 1 or L.next_array_id < 1 or L.data_offset < SUPER_REGION:
        raise CorruptError("%s: nranks, next_array_id or data_offset out of range" % what)
    if (L.prev_offset == 0) != (L.prev_length == 0):
        raise CorruptError("%s: prev_offset and prev_length disagree" % what)
    if L.prev_offset and (L.prev_offset < SUPER_REGION or
                          L.prev_offset + L.prev_length + TRAILER_SIZE > L.data_offset):
        raise CorruptError("%s: previous footer at %d, length %d (plus trailer) does not end "
                           "before the data at %d" % (what, L.prev_offset, L.prev_length,
                                                      L.data_offset))
    a0 = header_size
    b0 = a0 + arrays_size
    c0 = b0 + blocks_size
    t0 = c0 + chunks_size
    h0 = t0 + attrs_size
    heap = memoryview(fb)[h0:h0 + heap_size]
    # Section 6: array records.
    p = a0
    for i in range(n_arrays):
        if p + rs_array > b0:
            raise CorruptError("%s: array record %d runs past its section" % (what, i))
        aid, kind, aflags, dtype, ndim, noff, nlen = struct.unpack_from("<Q4I2Q", fb, p)
        fill = bytes(fb[p + 40:p + 48])
        rw = "%s: array record %d" % (what, i)
        if aid < 1 or aid >= L.next_array_id:
            raise CorruptError("%s: id %d outside [1, %d)" % (rw, aid, L.next_array_id))
        name = _heap_string(heap, noff, nlen, 1, 255, rw + " name")
        rec = {"id": aid, "kind": kind, "flags": aflags, "dtype": dtype, "ndim": ndim,
               "name": name, "fill": fill, "shape": (), "chunk": (), "dims": ()}
        p += rs_array
        if kind == KIND_DEFINE:
            if dtype not in DTYPES or aflags & ~ARRAY_SHUFFLE or ndim > MAX_NDIM:
                raise CorruptError("%s (%s): bad dtype %d, flags 0x%x or ndim %d" %
                                   (rw, name, dtype, aflags, ndim))
            if p + ndim * rs_dim > b0:
                raise CorruptError("%s (%s): dimensions run past the section" % (rw, name))
            shape, chunk, dims = [], [], []
            prod = 1
            for d in range(ndim):
                s, c, doff, dlen = struct.unpack_from("<4Q", fb, p + d * rs_dim)
                if s < 1 or c < 1 or c > s:
                    raise CorruptError("%s (%s): dimension %d shape %d chunk %d" %
                                       (rw, name, d, s, c))
                prod *= s
                shape.append(s)
                chunk.append(c)
                dims.append(_heap_string(heap, doff, dlen, 1, 63, "%s dim %d" % (rw, d)))
            if prod > U64_MAX:
                raise CorruptError("%s (%s): the shape's product overflows" % (rw, name))
            size = DTYPES[dtype][2]
            if fill[size:] != bytes(8 - size):
                raise CorruptError("%s (%s): fill padding is not zero" % (rw, name))
            p += ndim * rs_dim
            rec["shape"], rec["chunk"], rec["dims"] = tuple(shape), tuple(chunk), tuple(dims)
        elif kind == KIND_DELETE:
            if ndim or dtype or aflags or fill != bytes(8):
                raise CorruptError("%s (%s): DELETE with nonzero fields" % (rw, name))
        else:
            raise CorruptError("%s: unknown kind %d" % (rw, kind))
        L.arrays.append(rec)
    if p != b0:
        raise CorruptError("%s: the array section has %d bytes left over" % (what, b0 - p))
    # Section 8: block records.
    for i in range(n_blocks):
        off, stored, raw, ck, codec, rank = struct.unpack_from("<4Q2I", fb, b0 + i * rs_block)
        if off < L.data_offset or off + stored > U64_MAX or (codec == CODEC_NONE and
                                                            stored != raw) or rank >= L.nranks:
            raise CorruptError("%s: block record %d invalid" % (what, i))
        L.blocks.append((off, stored, raw, ck, codec, rank))
    # Section 9: chunk records, strictly increasing.
    prev = None
    for i in range(n_chunks):
        aid, idx, blk, off, size = struct.unpack_from("<5Q", fb, c0 + i * rs_chunk)
        if aid < 1 or aid >= L.next_array_id or blk >= n_blocks or size < 1:
            raise CorruptError("%s: chunk record %d invalid" % (what, i))
        if off + size > L.blocks[blk][2]:
            raise CorruptError("%s: chunk record %d lies past block %d's %d raw bytes" %
                               (what, i, blk, L.blocks[blk][2]))
        if prev is not None and (aid, idx) <= prev:
            raise CorruptError("%s: chunk record %d out of order" % (what, i))
        prev = (aid, idx)
        L.chunks.append((aid, idx, blk, off, size))
    # Section 10: attribute records.
    for i in range(n_attrs):
        scope, koff, klen, dtype, _res, cnt, voff, vlen = struct.unpack_from(
            "<3Q2I3Q", fb, t0 + i * rs_attr)
        rw = "%s: attribute record %d" % (what, i)
        key = _heap_string(heap, koff, klen, 1, 255, rw + " key")
        if dtype not in DTYPES or vlen != cnt * DTYPES[dtype][2] or voff + vlen > heap_size:
            raise CorruptError("%s (%s): bad dtype or value reference" % (rw, key))
        if scope != SCOPE_FILE and scope != SCOPE_LAYER and scope >= L.next_array_id:
            raise CorruptError("%s (%s): scope %d" % (rw, key, scope))
        L.attrs.append((scope, key, dtype, cnt, bytes(heap[voff:voff + vlen])))
    return L
