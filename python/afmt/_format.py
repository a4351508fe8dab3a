"""Byte-level decoding of afmt files, written from docs/format.md alone: format versions 1
and 2 (version 2: the footer's root table and the index segments it lists, section 9).

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
FORMAT_VERSION = 2     # the newest version this reader reads; it reads 1 too (section 15)

SLOT_MAGIC = b"AFMTSUPR"
TRAILER_MAGIC = b"AFMTTRLR"
FOOTER_MAGIC = b"AFMTLAYR"
SEGMENT_MAGIC = b"AFMTSEGM"

HEADER_V1 = 176
ARRAY_REC_V1 = 48
ARRAY_DIM_V1 = 32
BLOCK_REC_V1 = 40
CHUNK_REC_V1 = 40
ATTR_REC_V1 = 56
ARRAY_REC_V2 = 72      # section 6: the v1 fixed part and the codec fields
SEG_REC_V2 = 80        # section 9.2: a root table record
SEG_HEADER_V2 = 64     # section 9.1: the segment header
SEG_MIN_LENGTH = 112   # a segment header, one chunk record and the checksum
MAX_CODEC_PARAMS = 256
CODEC_UNSET = (1 << 32) - 1   # an array record's codec "not recorded" (and every v1 record)

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

CODEC_NONE, CODEC_LZ4, CODEC_ZSTD, CODEC_ZFP = 0, 1, 2, 3
CODEC_NAMES = {CODEC_NONE: "none", CODEC_LZ4: "lz4", CODEC_ZSTD: "zstd", CODEC_ZFP: "zfp"}
CODEC_PARAMS_SIZE = 32  # section 6: the parameters of a recorded setting, layout 1
FILTER_NONE, FILTER_BITROUND = 0, 1
ZFP_MODES = {1: "accuracy", 2: "precision", 3: "rate", 4: "reversible"}


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


# ---- section 6: an array's codec setting -----------------------------------------------


def codec_setting(rec, shuffle, name):
    """Section 6: the compression setting of an array record (codec, params) as a dict
    (the fields of the C library's afmt_array_codec): codec (the id, None where not
    recorded), codec_name, level, shuffle, zfp_mode (a name of ZFP_MODES or None),
    zfp_param, bitround (mantissa bits kept, 0: none), abs_bound (ZFP accuracy) and
    rel_bound (bit rounding), 0.0 where there is none. Raises CorruptError where the C
    library's afmt_inquire_codec refuses the parameters (not layout 1, or fields out of
    their ranges); reading the array's values needs none of this."""
    codec, params = rec
    out = {"codec": None, "codec_name": None, "level": 0, "shuffle": bool(shuffle),
           "zfp_mode": None, "zfp_param": 0.0, "bitround": 0, "abs_bound": 0.0,
           "rel_bound": 0.0}
    if codec == CODEC_UNSET:
        return out
    if len(params) != CODEC_PARAMS_SIZE or _u32(params, 0) != 1:
        raise CorruptError("array %r: codec parameters of %d bytes are not layout 1 "
                           "(format.md 6)" % (name, len(params)))
    level, filt, keep, mode = struct.unpack_from("<i3I", params, 4)
    zparam = struct.unpack_from("<d", params, 24)[0]
    if (filt > FILTER_BITROUND or (filt == FILTER_BITROUND) != (keep > 0) or keep > 52
            or (codec == CODEC_ZFP) != (mode != 0) or mode > 4
            or zparam != zparam or zparam in (float("inf"), float("-inf"))):
        raise CorruptError("array %r: its codec parameters are not valid" % name)
    out.update(codec=codec, codec_name=CODEC_NAMES.get(codec, "codec %d" % codec),
               level=level, zfp_mode=ZFP_MODES.get(mode), zfp_param=zparam, bitround=keep)
    if mode == 1:
        out["abs_bound"] = zparam
    if keep:
        out["rel_bound"] = 2.0 ** -(keep + 1)
    return out


# ---- section 8: the header of a ZFP block ---------------------------------------------

ZFP_CODEC_VERSION = 5        # ZFP 1.0's codec version, the byte after "zfp"
ZFP_HEADER_MAX_BITS = 148
# ZFP type id -> (numpy little-endian type string, bits of precision)
ZFP_TYPES = {1: ("<i4", 32), 2: ("<i8", 64), 3: ("<f4", 32), 4: ("<f8", 64)}


def zfp_header(stored, what):
    """Section 8, codec 3: ZFP's full header at the start of the stored bytes (magic and
    codec version, 52 bits of field metadata, a 12- or 64-bit mode; its bits are filled
    into bytes from the least significant bit up). Returns (numpy type string, number of
    values, most): most is the longest stream the header allows, the header and the
    padding of the last word included (ZFP's zfp_stream_maximum_size plus the header's
    bits and 16 bytes, as the C library bounds it), so that a stream padded with zeros
    to that length cannot make ZFP read past it. Raises CorruptError for a header that
    ZFP would not read."""
    head = bytes(stored[:(ZFP_HEADER_MAX_BITS + 7) // 8])
    bits = int.from_bytes(head + bytes(24 - len(head)), "little")

    def take(n):
        nonlocal bits
        v = bits & ((1 << n) - 1)
        bits >>= n
        return v

    if take(24) != 0x70667a or take(8) != ZFP_CODEC_VERSION:     # "zfp", version 5
        raise CorruptError("%s: not a ZFP 1.0 stream (no \"zfp\" header of codec version "
                           "%d)" % (what, ZFP_CODEC_VERSION))
    meta = take(52)
    ztype, meta = (meta & 3) + 1, meta >> 2
    dims, meta = (meta & 3) + 1, meta >> 2
    # x first: 32 bits (of 48) in 1-D, 24, 16 or 12 bits each in 2-D, 3-D, 4-D.
    width, mask = {1: (48, 0xffffffff), 2: (24, 0xffffff), 3: (16, 0xffff),
                   4: (12, 0xfff)}[dims]
    n = []
    for _ in range(dims):
        n.append((meta & mask) + 1)
        meta >>= width
    mode = take(12)
    if mode > 4094:                                   # ZFP_MODE_SHORT_MAX: the long form
        mode += take(52) << 12
    if mode < 2048:                                   # fixed rate
        minbits = maxbits = mode + 1
        maxprec, reversible = 64, False
    elif mode <= 4094:                                # precision, reversible, accuracy
        minbits, maxbits = 1, 16658
        maxprec = mode + 1 - 2048 if mode < 2176 else 64
        reversible = mode == 2176
    else:
        mode >>= 12
        minbits, mode = (mode & 0x7fff) + 1, mode >> 15
        maxbits, mode = (mode & 0x7fff) + 1, mode >> 15
        maxprec, mode = (mode & 0x7f) + 1, mode >> 7
        reversible = (mode & 0x7fff) - 16495 < -1074
    if minbits > maxbits or not 0 < maxprec <= 64:
        raise CorruptError("%s: the ZFP header's mode is not valid" % what)
    code, prec = ZFP_TYPES[ztype]
    values, blocks = 1, 1
    for e in n:
        values *= e
        blocks *= (e + 3) // 4
    per = 1 << (2 * dims)
    extra = {1: (5, 0), 2: (6, 0), 3: (15, 9), 4: (19, 12)}[ztype][0 if reversible else 1]
    block_bits = max(min(extra + per - 1 + per * min(maxprec, prec), maxbits), minbits)
    most = ((ZFP_HEADER_MAX_BITS + blocks * block_bits + 63) & ~63) // 8
    return code, values, most + ZFP_HEADER_MAX_BITS // 8 + 16


# ---- section 5-10: layer footer -------------------------------------------------------


class Layer:
    """A decoded layer footer: header fields and its record tables. A version-1 footer
    holds the block and chunk tables (blocks, chunks); a version-2 footer the root table
    (segments) of the index segments that hold them (section 9), read by decode_segment."""

    def __init__(self):
        self.version = FORMAT_VERSION
        self.arrays = []    # dicts: id, kind, flags, dtype, ndim, name, fill, shape, chunk,
        #                     dims, codec, params
        self.blocks = []    # v1: tuples (offset, stored_size, raw_size, checksum, codec, rank)
        self.chunks = []    # v1: tuples (array_id, chunk_index, block, offset, size)
        self.segments = []  # v2: SegmentRecord, in root table order
        self.attrs = []     # tuples: (scope, key, dtype, n, value bytes)
        self.n_blocks = 0   # the header's counts (v2: the sums over the segments)
        self.n_chunks = 0
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
    """Section 6: the array records, each checked in the document's order (rules 1-9).
    Version 2 records carry the codec fields (codec, params); a version 1 record reads as
    codec CODEC_UNSET without parameters."""
    p = a0
    v2 = L.version >= 2
    for i in range(n_arrays):
        rw = "%s: array record %d" % (what, i)
        if p + rs_array > b0:                                               # rule 1
            raise CorruptError("%s runs past its section" % rw)
        aid, kind, aflags, dtype, ndim, noff, nlen = struct.unpack_from("<Q4I2Q", fb, p)
        fill = bytes(fb[p + 40:p + 48])
        codec, poff, plen = CODEC_UNSET, 0, 0
        if v2:
            codec = _u32(fb, p + 48)        # codec_flags at 52: reserved, ignored
            poff, plen = struct.unpack_from("<2Q", fb, p + 56)
        name = _heap_string(heap, noff, nlen, 1, 255, rw + " name")         # rule 2
        rw = "%s (%r)" % (rw, name)
        if aid < 1 or aid >= L.next_array_id:                               # rule 3
            raise CorruptError("%s: id %d outside [1, %d)" % (rw, aid, L.next_array_id))
        p += rs_array
        if ndim > MAX_NDIM or p + ndim * rs_dim > b0:                       # rule 4
            raise CorruptError("%s: ndim %d, or its dimensions run past the section" %
                               (rw, ndim))
        rec = {"id": aid, "kind": kind, "flags": aflags, "dtype": dtype, "ndim": ndim,
               "name": name, "fill": fill, "shape": (), "chunk": (), "dims": (),
               "codec": codec, "params": b""}
        if kind == KIND_DELETE:                                             # rule 5
            if ndim or dtype or aflags or fill != bytes(8):
                raise CorruptError("%s: DELETE with nonzero fields" % rw)
            if plen:
                raise CorruptError("%s: DELETE with %d bytes of codec parameters" %
                                   (rw, plen))
            L.arrays.append(rec)
            continue
        if kind != KIND_DEFINE:                                             # rule 6
            raise CorruptError("%s: unknown kind %d" % (rw, kind))
        if dtype not in DTYPES or aflags & ~ARRAY_SHUFFLE:                  # rule 7
            raise CorruptError("%s: bad dtype %d or flags 0x%x" % (rw, dtype, aflags))
        size = DTYPES[dtype][2]
        if fill[size:] != bytes(8 - size):
            raise CorruptError("%s: fill padding is not zero" % rw)
        if plen > MAX_CODEC_PARAMS or poff + plen > len(heap):
            raise CorruptError("%s: codec parameters (%d, %d) over %d bytes or outside the "
                               "heap of %d" % (rw, poff, plen, MAX_CODEC_PARAMS, len(heap)))
        rec["params"] = bytes(heap[poff:poff + plen])
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


def _block_record(b, at, i, data_offset, nranks, rw):
    """Section 8 (B1-B4): one block record at b[at:], as (offset, stored_size, raw_size,
    checksum, codec, rank)."""
    off, stored, raw, ck, codec, rank = struct.unpack_from("<4Q2I", b, at)
    if off < data_offset or off + stored > U64_MAX:
        raise CorruptError("%s: offset %d (%d bytes) below the data at %d or overflowing" %
                           (rw, off, stored, data_offset))
    if codec == CODEC_NONE and stored != raw:
        raise CorruptError("%s: codec none with stored %d != raw %d" % (rw, stored, raw))
    if raw > MAX_CHUNK_BYTES:
        raise CorruptError("%s: raw size %d over the limit of 2^30" % (rw, raw))
    if rank >= nranks:
        raise CorruptError("%s: rank %d of %d" % (rw, rank, nranks))
    return off, stored, raw, ck, codec, rank


def _chunk_records(b, at, stride, n, blocks, next_array_id, what):
    """Section 9.1 step 7 / 9.5 (K1-K4): n chunk records from b[at:], strictly increasing,
    each pointing into its block's raw bytes. Returns (keys, records): keys the sorted
    (array_id, chunk_index) pairs, records (block, offset, size) in the same order."""
    keys, recs = [], []
    prev = None
    nb = len(blocks)
    if stride == CHUNK_REC_V1 and n:
        it = struct.iter_unpack("<5Q", bytes(b[at:at + n * stride]))
    else:
        it = (struct.unpack_from("<5Q", b, at + i * stride) for i in range(n))
    for i, (aid, idx, blk, off, size) in enumerate(it):
        if aid < 1 or aid >= next_array_id:
            raise CorruptError("%s: chunk record %d: array id %d outside [1, %d)" %
                               (what, i, aid, next_array_id))
        key = (aid, idx)
        if prev is not None and key <= prev:
            raise CorruptError("%s: chunk record %d: out of order" % (what, i))
        if blk >= nb:
            raise CorruptError("%s: chunk record %d references block %d of %d" %
                               (what, i, blk, nb))
        if size < 1 or off + size > blocks[blk][2]:
            raise CorruptError("%s: chunk record %d: [%d, +%d) does not lie in block %d's %d "
                               "raw bytes" % (what, i, off, size, blk, blocks[blk][2]))
        prev = key
        keys.append(key)
        recs.append((blk, off, size))
    return keys, recs


class SegmentRecord:
    """A record of a version-2 root table (section 9.2): where one index segment is and
    the key range of its chunk records. index: its position in the root table."""

    __slots__ = ("index", "offset", "length", "checksum", "n_blocks", "n_chunks", "first",
                 "last", "writer")

    def describe(self):
        return "segment %d (rank %d, at offset %d, %d bytes)" % (
            self.index, self.writer, self.offset, self.length)


def _root_table(fb, L, r0, n_segments, rs_seg, n_blocks, n_chunks, what):
    """Section 9.2 (G1-G8): the root table of a version-2 footer."""
    prev_first = None
    sum_b = sum_c = 0
    for i in range(n_segments):
        off, length, ck, nb, nc, fa, fi, la, li = struct.unpack_from("<9Q", fb, r0 + i * rs_seg)
        writer = _u32(fb, r0 + i * rs_seg + 72)
        rw = "%s: segment record %d" % (what, i)
        if off < L.data_offset or off + length > U64_MAX:                   # G1
            raise CorruptError("%s: offset %d (%d bytes) below the data at %d or overflowing"
                               % (rw, off, length, L.data_offset))
        if length < SEG_MIN_LENGTH:                                         # G2
            raise CorruptError("%s: length %d below the minimum of %d" %
                               (rw, length, SEG_MIN_LENGTH))
        most = (length - 72) // CHUNK_REC_V1
        if nc < 1 or nc > most or nb > most:                                # G3
            raise CorruptError("%s: %d blocks and %d chunks do not fit %d bytes (1 to %d "
                               "chunks)" % (rw, nb, nc, length, most))
        first, last = (fa, fi), (la, li)
        if first > last or (nc == 1 and first != last):                     # G4
            raise CorruptError("%s: first key %s after last key %s (%d chunks)" %
                               (rw, first, last, nc))
        if fa < 1 or la >= L.next_array_id:                                 # G5
            raise CorruptError("%s: array ids %d..%d outside [1, %d)" %
                               (rw, fa, la, L.next_array_id))
        if writer >= L.nranks:                                              # G6
            raise CorruptError("%s: writer %d of %d ranks" % (rw, writer, L.nranks))
        if prev_first is not None and first < prev_first:                   # G7
            raise CorruptError("%s: first key %s is before the previous record's %s (the "
                               "table is sorted by first key)" % (rw, first, prev_first))
        prev_first = first
        sum_b += nb
        sum_c += nc
        s = SegmentRecord()
        s.index, s.offset, s.length, s.checksum = i, off, length, ck
        s.n_blocks, s.n_chunks, s.first, s.last, s.writer = nb, nc, first, last, writer
        L.segments.append(s)
    if sum_b != n_blocks or sum_c != n_chunks:                              # G8
        raise CorruptError("%s: the segments hold %d blocks and %d chunks, the header says "
                           "%d and %d" % (what, sum_b, sum_c, n_blocks, n_chunks))


def decode_footer(fb, where="layer footer"):
    """Sections 5.2-10: validates and decodes one footer (bytes-like) of version 1 or 2 in
    the document's order; raises CorruptError or VersionError."""
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
    L.version = version
    (L.layer_id, L.prev_offset, L.prev_length, L.data_offset, L.time_ns) = struct.unpack_from(
        "<5Q", fb, 16)
    L.nranks, L.flags = struct.unpack_from("<2I", fb, 56)
    # v1: (blocks_size, chunks_size) at 112 and 120; v2: (segs_size, n_segments).
    (L.next_array_id, n_arrays, n_blocks, n_chunks, n_attrs, arrays_size, size112, count120,
     attrs_size, heap_size) = struct.unpack_from("<10Q", fb, 64)
    rs_array, rs_dim, rs_152, rs_156, rs_attr = struct.unpack_from("<5I", fb, 144)
    L.n_blocks, L.n_chunks = n_blocks, n_chunks
    # Step 5: every record size at least its size for the footer's version.
    if version == 1:
        if (rs_array < ARRAY_REC_V1 or rs_dim < ARRAY_DIM_V1 or rs_152 < BLOCK_REC_V1
                or rs_156 < CHUNK_REC_V1 or rs_attr < ATTR_REC_V1):
            raise CorruptError("%s: a record size is below its version 1 size" % what)
    else:
        for got, least, name in ((rs_array, ARRAY_REC_V2, "array record"),
                                 (rs_dim, ARRAY_DIM_V1, "array dimension entry"),
                                 (rs_152, SEG_REC_V2, "segment record"),
                                 (rs_attr, ATTR_REC_V1, "attribute record")):
            if got < least:
                raise CorruptError("%s: %s size %d < %d" % (what, name, got, least))
    # Step 6. Python integers do not overflow: an exact product equal to a u64 field is
    # the same test as the document's overflow-checked one, and the sum is exact.
    if version == 1:
        blocks_size, chunks_size = size112, count120
        if (blocks_size != n_blocks * rs_152 or chunks_size != n_chunks * rs_156
                or attrs_size != n_attrs * rs_attr or n_arrays * rs_array > arrays_size):
            raise CorruptError("%s: section sizes do not match the record counts" % what)
        tables = blocks_size + chunks_size
    else:
        segs_size, n_segments = size112, count120
        if segs_size != n_segments * rs_152:
            raise CorruptError("%s: root table size %d != %d segments * %d bytes" %
                               (what, segs_size, n_segments, rs_152))
        if attrs_size != n_attrs * rs_attr or n_arrays * rs_array > arrays_size:
            raise CorruptError("%s: section sizes do not match the record counts" % what)
        tables = segs_size
    total = header_size + arrays_size + tables + attrs_size + heap_size + 8
    if total != n:
        raise CorruptError("%s: sections add up to %d bytes, which does not equal the footer "
                           "length" % (what, total))
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
    t0 = b0 + tables
    h0 = t0 + attrs_size
    heap = memoryview(fb)[h0:h0 + heap_size]
    # Step 8: section 6, array records.
    _array_records(fb, L, heap, a0, b0, n_arrays, rs_array, rs_dim, what)
    if version == 1:
        # Section 8: block records; section 9.5: chunk records, strictly increasing.
        for i in range(n_blocks):
            L.blocks.append(_block_record(fb, b0 + i * rs_152, i, L.data_offset, L.nranks,
                                          "%s: block record %d" % (what, i)))
        keys, recs = _chunk_records(fb, b0 + blocks_size, rs_156, n_chunks, L.blocks,
                                    L.next_array_id, what)
        L.chunks = [k + r for k, r in zip(keys, recs)]
    else:
        # Section 9.2: the root table.
        _root_table(fb, L, b0, n_segments, rs_152, n_blocks, n_chunks, what)
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


class Segment:
    """A decoded index segment (section 9.1): its block records and its chunk records as
    sorted keys (array_id, chunk_index) with (block, offset, size) in the same order."""

    __slots__ = ("rec", "layer_id", "blocks", "keys", "recs")


def decode_segment(sb, L, s):
    """Section 9.1 (X2-X8): validates the bytes sb read at root record s of layer L (a
    decoded version-2 footer whose footer_offset is set). Raises CorruptError naming the
    layer and the segment."""
    what = "layer %d: %s" % (L.layer_id, s.describe())
    n = len(sb)
    if n != s.length or checksum(sb) != s.checksum:                         # X2
        raise CorruptError("%s does not match the root table's checksum" % what)
    if _u64(sb, n - 8) != checksum(sb[:n - 8]):                             # X3
        raise CorruptError("%s: bad checksum" % what)
    magic = bytes(sb[0:8])                                                  # X4
    version, hsize, layer_id, nb, nc, rs_block, rs_chunk, writer = struct.unpack_from(
        "<2I3Q3I", sb, 8)
    if magic != SEGMENT_MAGIC:
        raise CorruptError("%s: bad magic" % what)
    if version != 2:
        raise CorruptError("%s: bad version %d" % (what, version))
    if hsize < SEG_HEADER_V2 or rs_block < BLOCK_REC_V1 or rs_chunk < CHUNK_REC_V1:
        raise CorruptError("%s: header size %d, block record size %d or chunk record size %d "
                           "below 64, 40, 40" % (what, hsize, rs_block, rs_chunk))
    need = hsize + nb * rs_block + nc * rs_chunk + 8                        # X5
    if need != n:
        raise CorruptError("%s: %d blocks and %d chunks need %d bytes, the segment has %d" %
                           (what, nb, nc, need, n))
    if layer_id != L.layer_id:                                              # X6
        raise CorruptError("%s: belongs to layer %d" % (what, layer_id))
    if nb != s.n_blocks or nc != s.n_chunks or writer != s.writer:
        raise CorruptError("%s: holds %d blocks and %d chunks of rank %d, the root table says "
                           "%d, %d, rank %d" % (what, nb, nc, writer, s.n_blocks, s.n_chunks,
                                                s.writer))
    blocks = []
    for i in range(nb):                                                     # X7
        rw = "%s: block record %d" % (what, i)
        blk = _block_record(sb, hsize + i * rs_block, i, L.data_offset, L.nranks, rw)
        if blk[0] + blk[1] > L.footer_offset:
            raise CorruptError("%s: offset %d (%d bytes) is not inside the layer's data "
                               "[%d, %d)" % (rw, blk[0], blk[1], L.data_offset,
                                             L.footer_offset))
        blocks.append(blk)
    keys, recs = _chunk_records(sb, hsize + nb * rs_block, rs_chunk, nc, blocks,  # X8
                                L.next_array_id, what)
    if keys[0] != s.first or keys[-1] != s.last:
        bad = 0 if keys[0] != s.first else nc - 1
        raise CorruptError("%s: chunk record %d: key %s is not the root table's %s key %s" %
                           (what, bad, keys[bad], "first" if bad == 0 else "last",
                            s.first if bad == 0 else s.last))
    g = Segment()
    g.rec, g.layer_id, g.blocks, g.keys, g.recs = s, L.layer_id, blocks, keys, recs
    return g
