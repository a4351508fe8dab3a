"""The pure-Python reader: opens a file, follows its layer chain, merges the layers
(docs/format.md section 11) and reads hyperslabs with numpy slicing. No libafmt."""

import bisect
import collections
import concurrent.futures
import operator
import os
import sys
import threading

import numpy as np

from . import _format as F
from . import _remote
from ._format import AfmtError, CodecError, CorruptError

try:  # Debian: python3-lz4, python3-zstandard
    import lz4.block as _lz4
except ImportError:  # pragma: no cover
    _lz4 = None


def _load_liblz4():
    """liblz4 itself through ctypes, for decompressing into a buffer we keep: the lz4
    module returns a fresh bytes object per block, and the page faults of a new 4 MiB
    buffer per block made whole-array reads 2.5x slower than libafmt's."""
    import ctypes
    import ctypes.util

    for name in (ctypes.util.find_library("lz4"), "liblz4.so.1"):
        if not name:
            continue
        try:
            L = ctypes.CDLL(name)
        except OSError:
            continue
        fn = L.LZ4_decompress_safe
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    return None


_lz4_into = _load_liblz4()
_LITTLE = sys.byteorder == "little"


def _load_libzstd():
    """libzstd through ctypes for ZSTD_findFrameCompressedSize: the zstandard module has
    no call that tells whether a block is exactly one frame (section 8)."""
    import ctypes
    import ctypes.util

    for name in (ctypes.util.find_library("zstd"), "libzstd.so.1"):
        if not name:
            continue
        try:
            L = ctypes.CDLL(name)
        except OSError:
            continue
        fn = L.ZSTD_findFrameCompressedSize
        fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        fn.restype = ctypes.c_size_t
        return fn
    return None


_zstd_frame_size = _load_libzstd()


def _decompress_into(codec, stored, raw_size, out, what):
    """Decompresses into out (a writable uint8 numpy array of >= raw_size bytes) when the
    codec allows it; returns the raw bytes (out itself or a new buffer)."""
    if codec == F.CODEC_LZ4 and _lz4_into is not None:
        _lz4_possible(stored, raw_size, what)
        src = np.frombuffer(stored, dtype=np.uint8)
        n = _lz4_into(src.ctypes.data, out.ctypes.data, len(stored), raw_size)
        if n != raw_size:
            raise CorruptError("%s: does not decompress with lz4 to %d bytes" % (what, raw_size))
        return out[:raw_size]
    return _decompress(codec, stored, raw_size, what)


try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover
    _zstd = None


def _lz4_possible(stored, raw_size, what):
    """An LZ4 block expands at most 255 times (plus a few bytes): a raw_size beyond that
    cannot decompress to exactly raw_size, so it is damage found before allocating."""
    if raw_size > 255 * len(stored) + 16:
        raise CorruptError("%s: does not decompress with lz4 to %d bytes (%d stored bytes "
                           "cannot expand that far)" % (what, raw_size, len(stored)))


def _zstd_one_frame(stored, raw_size, what):
    """Section 8: exactly one zstd frame (no skippable frame, nothing after it) whose
    declared content size, if any, is raw_size. Checked before anything is allocated."""
    if bytes(stored[:4]) != F.ZSTD_MAGIC:
        raise CorruptError("%s: does not decompress with zstd (not a zstd frame)" % what)
    try:
        declared = _zstd.frame_content_size(stored)
    except _zstd.ZstdError as e:
        raise CorruptError("%s: does not decompress with zstd (%s)" % (what, e)) from None
    if declared not in (-1, raw_size):
        raise CorruptError("%s: does not decompress with zstd to %d bytes (its frame says %d)"
                           % (what, raw_size, declared))
    if _zstd_frame_size is not None:
        n = _zstd_frame_size(bytes(stored), len(stored))
        if n != len(stored):
            raise CorruptError("%s: does not decompress with zstd (not exactly one frame)" %
                               what)


def _zstd_bounded(stored, raw_size, what):
    """Decompresses one zstd frame, never producing more than raw_size bytes plus one
    input piece's worth (a frame without a content size could expand without limit)."""
    d = _zstd.ZstdDecompressor().decompressobj()
    parts, total, i = [], 0, 0
    while i < len(stored) and not d.eof:
        piece = stored[i:i + 4096]
        i += len(piece)
        out = d.decompress(piece)
        total += len(out)
        if total > raw_size:
            raise CorruptError("%s: decompresses with zstd to more than %d bytes" %
                               (what, raw_size))
        parts.append(out)
    if not d.eof or d.unused_data or i != len(stored):
        raise CorruptError("%s: does not decompress with zstd (not exactly one frame)" % what)
    return b"".join(parts)


_zfpy = None


def _zfp_module(what):
    """zfpy (Debian: python3-zfpy), imported on the first ZFP block: files without one
    read without it."""
    global _zfpy
    if _zfpy is None:
        try:
            import zfpy
        except ImportError:
            raise CodecError("%s: codec 3 (ZFP) needs the Python module zfpy, which is "
                             "missing (Debian: apt-get install python3-zfpy)" % what) from None
        _zfpy = zfpy
    return _zfpy


def _zfp_decode(stored, raw_size, what):
    """Section 8, codec 3: one ZFP stream behind its full header, decoded with zfpy into
    exactly raw_size bytes, little-endian. The header is checked first (its type and
    dimensions must give raw_size bytes, the stream must not be longer than the header
    allows), then the stream is decoded from a copy padded with zeros to the longest
    stream the header allows, so that a crafted stream cannot make ZFP read past it (as
    the C library does)."""
    zfpy = _zfp_module(what)
    code, values, most = F.zfp_header(stored, what)
    size = np.dtype(code).itemsize
    if values * size != raw_size:
        raise CorruptError("%s: the ZFP header names %d values of %d bytes, not %d bytes" %
                           (what, values, size, raw_size))
    if len(stored) > most:
        raise CorruptError("%s: %d stored bytes, longer than the %d bytes its ZFP header "
                           "allows" % (what, len(stored), most))
    padded = bytes(stored) + bytes(((most + 7) & ~7) - len(stored))
    try:
        a = zfpy.decompress_numpy(padded)
    except Exception as e:  # zfpy raises RuntimeError, ValueError, ...
        raise CorruptError("%s: does not decompress with ZFP (%s)" % (what, e)) from None
    out = np.ascontiguousarray(a, dtype=np.dtype(code)).tobytes()
    if len(out) != raw_size:
        raise CorruptError("%s: decompresses with ZFP to %d bytes, not %d" %
                           (what, len(out), raw_size))
    return out


def _decompress(codec, stored, raw_size, what):
    if codec == F.CODEC_NONE:
        return stored
    if codec == F.CODEC_ZFP:
        return _zfp_decode(stored, raw_size, what)
    if codec == F.CODEC_LZ4 and _lz4 is not None:
        _lz4_possible(stored, raw_size, what)
        try:
            out = _lz4.decompress(stored, uncompressed_size=raw_size)
        except Exception as e:  # lz4 raises LZ4BlockError
            raise CorruptError("%s: does not decompress with lz4 (%s)" % (what, e)) from None
    elif codec == F.CODEC_ZSTD and _zstd is not None:
        _zstd_one_frame(stored, raw_size, what)
        try:
            if _zstd.frame_content_size(stored) == raw_size and _zstd_frame_size is not None:
                out = _zstd.ZstdDecompressor().decompress(stored, max_output_size=raw_size)
            else:
                out = _zstd_bounded(stored, raw_size, what)
        except _zstd.ZstdError as e:
            raise CorruptError("%s: does not decompress with zstd (%s)" % (what, e)) from None
    else:
        raise CodecError("%s: codec id %d is not available to this reader" % (what, codec))
    if len(out) != raw_size:
        raise CorruptError("%s: decompresses to %d bytes, not %d" % (what, len(out), raw_size))
    return out


def _bool01(a):
    """Section 6: a BOOL byte other than 0 and 1 is true: numpy bools holding 0 or 1."""
    u = a.view(np.uint8)
    np.minimum(u, np.uint8(1), out=u)
    return a


def _attr_value(dtype, n, raw):
    """An attribute value: a str for UINT8 data that is valid UTF-8 text, else a numpy
    array (a Python scalar for one value)."""
    name, code, size = F.DTYPES[dtype]
    a = np.frombuffer(raw, dtype=code, count=n)
    if name == "uint8":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return a.copy()
    a = a.astype(a.dtype.newbyteorder("="))
    if name == "bool":
        _bool01(a)
    return a[0].item() if n == 1 else a


class Layer:
    """One layer of the chain: id, commit time, writer rank count, layer attributes."""

    def __init__(self, L):
        self.id = L.layer_id
        self.time_ns = L.time_ns
        self.nranks = L.nranks
        self.base = bool(L.flags & F.FLAG_BASE)
        self.attrs = {k: _attr_value(t, n, v) for s, k, t, n, v in L.attrs if s == F.SCOPE_LAYER}

    def __repr__(self):
        return "<afmt layer %d, %d ranks>" % (self.id, self.nranks)


class _Storage:
    """Reads byte ranges; a rank of a communicator reads only what it asks for. size is
    the file size read after the superblock region (format.md 3.3), or at open."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    def read_region(self):
        """Section 3.3: the superblock region, THEN the size. A writer extends the file
        before it writes the slot naming the new end, so the size read after the slots is
        never below the eof of a slot read; the other order makes a commit that lands in
        between look like a truncated file."""
        region = os.pread(self.fd, F.SUPER_REGION, 0)
        self.size = os.fstat(self.fd).st_size
        return region

    def read(self, off, n):
        # Every range read lies below the chosen slot's eof, which is <= size: a range
        # past it is damage, and checking first keeps a crafted length from allocating.
        if off < 0 or n < 0 or off + n > self.size:
            raise CorruptError("read of %d bytes at %d: the file ends at %d" % (n, off, self.size))
        b = os.pread(self.fd, n, off)
        if len(b) != n:
            raise CorruptError("read of %d bytes at %d: the file ends at %d" % (n, off, self.size))
        return b

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _read_chain(st, view_layer):
    """Sections 3.3 and 11.1: the chosen slot and the decoded footers of its chain, newest
    first (cut to the chain starting at layer view_layer if given)."""
    region = st.read_region()
    slot = F.pick_slot(region, st.size)
    chain = []
    off, length, prev_id = slot.footer_offset, slot.footer_length, None
    while length:
        k = len(chain)
        if k >= slot.nlayers:                                               # step 1
            raise CorruptError("the chain is longer than the %d layers the superblock "
                               "counts" % slot.nlayers)
        if off < F.SUPER_REGION or off + length + F.TRAILER_SIZE > slot.eof:  # step 2
            raise CorruptError("layer chain entry %d points at [%d, +%d) outside the "
                               "committed file (end %d)" % (k, off, length, slot.eof))
        b = st.read(off, length + F.TRAILER_SIZE)                           # step 3
        fb = b[:length]
        ck = F.checksum(fb)
        if k == 0 and ck != slot.footer_checksum:                           # step 4
            raise CorruptError("newest footer at %d (%d bytes) does not match the "
                               "superblock's checksum" % (off, length))
        F.check_trailer(b[length:], off, length, ck)                        # step 5
        L = F.decode_footer(fb, "footer of layer at %d" % off)              # step 6
        newest_ok = L.layer_id <= slot.layer_id if k == 0 else L.layer_id < prev_id
        if L.layer_id < 1 or not newest_ok:                                 # step 7
            raise CorruptError("footer at %d has layer id %d, out of order in the chain "
                               "(newer layer %s, highest id %d)" %
                               (off, L.layer_id, prev_id, slot.layer_id))
        if L.data_offset > off:                                             # step 8
            raise CorruptError("layer %d: data offset %d is past its footer at %d" %
                               (L.layer_id, L.data_offset, off))
        for i, blk in enumerate(L.blocks):                                  # v1
            if blk[0] + blk[1] > off:
                raise CorruptError("layer %d: block %d at offset %d (%d bytes) is not inside "
                                   "the layer's data [%d, %d)" % (L.layer_id, i, blk[0], blk[1],
                                                                  L.data_offset, off))
        for sg in L.segments:                                               # v2
            if sg.offset + sg.length > off:
                raise CorruptError("layer %d: segment %d at offset %d (%d bytes) is not inside "
                                   "the layer's data [%d, %d)" % (L.layer_id, sg.index,
                                                                  sg.offset, sg.length,
                                                                  L.data_offset, off))
        prev_id = L.layer_id
        L.footer_offset, L.footer_length = off, length
        chain.append(L)
        off, length = L.prev_offset, L.prev_length
    if len(chain) != slot.nlayers:                                          # step 9
        raise CorruptError("the superblock counts %d layers, the chain has %d" %
                           (slot.nlayers, len(chain)))
    if chain and slot.next_array_id < chain[0].next_array_id:               # step 10
        raise CorruptError("the superblock's next_array_id %d is below the newest layer's "
                           "%d" % (slot.next_array_id, chain[0].next_array_id))
    if view_layer is not None:
        ids = [L.layer_id for L in chain]
        if view_layer not in ids:
            raise KeyError("no layer %d in the file (layers %s)" % (view_layer, ids[::-1]))
        chain = chain[ids.index(view_layer):]
    return slot, chain


class _ArrayMeta:
    __slots__ = ("id", "name", "dtype", "dtype_id", "flags", "shape", "chunks", "dims", "fill",
                 "shuffle", "attrs", "nchunks", "codec", "params", "def_pos", "del_pos")


def _check_chunk(where, m, state, aid, idx, size):
    """Section 11.2 step 3 (M7-M9) for one chunk record of a layer: m is the array as of
    the layer, state "live", "deleted" or "unknown". where names the layer (and segment)."""
    if state != "live":
        raise CorruptError("%s: chunk %d of %s array id %d" % (where, idx, state, aid))
    n = 1
    for k in m.nchunks:
        n *= k
    if idx >= n:
        raise CorruptError("%s: array %d (%r): chunk index %d out of the grid (%d chunks)" %
                           (where, aid, m.name, idx, n))
    want = m.dtype.itemsize
    for e in _chunk_extent(m, _chunk_coord(m, idx)):
        want *= e
    if size != want:
        raise CorruptError("%s: array %d (%r): chunk %d has %d bytes, its extent needs %d" %
                           (where, aid, m.name, idx, size, want))


class _View:
    """The merged view of a chain (section 11.2): the live arrays by name, every array
    ever defined by id (with the chain positions of its first DEFINE and its DELETE, so
    that the arrays as of any layer are known), the chunk map of the version-1 layers and
    the version-2 layers, whose chunks are looked up in their segments (section 9.3)."""

    def __init__(self):
        self.arrays = {}    # name -> _ArrayMeta, live arrays
        self.metas = {}     # id -> _ArrayMeta, live and deleted
        self.chunks = {}    # v1 layers: (array id, chunk index) -> loc
        self.attrs = {}     # file attributes
        self.nlive = collections.Counter()   # v1 block offset -> live chunks in it
        self.v2 = []        # newest first: (pos, footer Layer, first keys, running max last)

    def state(self, aid, pos):
        """Whether array aid is live after the array records of the layer at chain
        position pos (0 = the oldest): "live", "deleted" or "unknown"."""
        m = self.metas.get(aid)
        if m is None or m.def_pos > pos:
            return None, "unknown"
        if m.del_pos is not None and m.del_pos <= pos:
            return m, "deleted"
        return m, "live"


def _merge(chain):
    """Section 11.2: applies the layers oldest to newest (a chunk location, "loc", is
    (block tuple, offset, size, layer id, chain position)). The chunk records of version-2
    layers stay in their segments: they are read and checked when a lookup needs them."""
    V = _View()
    live, dead = {}, set()
    next_id = 1
    for pos, L in enumerate(reversed(chain)):
        lid = L.layer_id
        if L.next_array_id < next_id:                                       # 1
            raise CorruptError("layer %d: next_array_id %d is below the previous layer's %d"
                               % (lid, L.next_array_id, next_id))
        names = {m.name: m.id for m in live.values()}
        for i, r in enumerate(L.arrays):                                    # 2
            aid, rw = r["id"], "layer %d: array record %d" % (lid, i)
            if r["kind"] == F.KIND_DELETE:
                m = live.pop(aid, None)
                if m is None:
                    raise CorruptError("%s deletes array %d, which %s" % (
                        rw, aid, "is already deleted" if aid in dead else "was never defined"))
                dead.add(aid)
                m.del_pos = pos
                del names[m.name]
                continue
            if aid in dead:
                raise CorruptError("%s defines array %d, which was deleted" % (rw, aid))
            other = names.get(r["name"])
            if other is not None and other != aid:
                raise CorruptError("%s: name %r is taken by array %d" % (rw, r["name"], other))
            dname, dcode, size = F.DTYPES[r["dtype"]]
            m = live.get(aid)
            if m is None:
                if aid < next_id:
                    raise CorruptError("%s defines id %d, below next_array_id %d of the layers "
                                       "before (ids are never reused)" % (rw, aid, next_id))
                m = _ArrayMeta()
                m.id, m.attrs = aid, {}
                m.dtype = np.dtype(dcode)
                m.dtype_id, m.flags = r["dtype"], r["flags"]
                m.shape, m.chunks = r["shape"], r["chunk"]
                m.shuffle = bool(r["flags"] & F.ARRAY_SHUFFLE)
                m.nchunks = tuple(-(-s // c) for s, c in zip(m.shape, m.chunks))
                m.def_pos, m.del_pos = pos, None
                live[aid] = m
                V.metas[aid] = m
            elif (m.dtype_id, m.flags, m.shape, m.chunks) != (r["dtype"], r["flags"],
                                                              r["shape"], r["chunk"]):
                # A repeated DEFINE may change the name, dimension names, fill and codec
                # fields only: the rest decides where and how the older chunks decode.
                raise CorruptError("%s redefines array %d (%r) with a different dtype, ndim, "
                                   "flags, shape or chunk" % (rw, aid, m.name))
            else:
                del names[m.name]
            m.name, m.dims = r["name"], r["dims"]
            m.codec, m.params = r["codec"], r["params"]
            names[m.name] = aid
            m.fill = np.frombuffer(r["fill"][:size], dtype=dcode)[0]
            if dname == "bool":
                m.fill = np.bool_(r["fill"][0] != 0)
        for aid, idx, blk, off, size in L.chunks:                           # 3 (v1)
            m = live.get(aid)
            state = "live" if m is not None else "deleted" if aid in dead else "unknown"
            _check_chunk("layer %d" % lid, m, state, aid, idx, size)
            V.chunks[(aid, idx)] = (L.blocks[blk], off, size, lid, pos)
        if L.version >= 2 and L.segments:                                   # 3 (v2): lazily
            firsts, maxlast, top = [], [], None
            for sg in L.segments:
                firsts.append(sg.first)
                top = sg.last if top is None or sg.last > top else top
                maxlast.append(top)
            V.v2.insert(0, (pos, L, firsts, maxlast))
        for scope, key, dtype, n, raw in L.attrs:                           # 4
            if scope == F.SCOPE_LAYER:
                continue
            value = _attr_value(dtype, n, raw)
            if scope == F.SCOPE_FILE:
                V.attrs[key] = value
            elif scope in live:
                live[scope].attrs[key] = value
            else:
                raise CorruptError("layer %d: attribute %r of %s array id %d" % (
                    lid, key, "deleted" if scope in dead else "unknown", scope))
        next_id = L.next_array_id                                           # 5
    # Chunks of deleted ids never show through (their ids are never reused).
    V.chunks = {k: v for k, v in V.chunks.items() if k[0] in live}
    V.nlive.update(v[0][0] for v in V.chunks.values())
    V.arrays = {m.name: m for m in live.values()}
    return V


def _chunk_coord(m, idx):
    k = []
    for n in reversed(m.nchunks):
        k.append(idx % n)
        idx //= n
    return k[::-1]


def _chunk_extent(m, k):
    """The real (edge-truncated) extent of the chunk at coordinates k (section 7)."""
    return [min(c, s - kk * c) for kk, c, s in zip(k, m.chunks, m.shape)]


def _normalize_key(key, shape):
    """numpy basic indexing -> (starts, stops, steps, dims to drop). Integers (negative
    too), slices with any step, Ellipsis; an empty tuple is the whole array."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = [j for j, k in enumerate(key) if k is Ellipsis]
        if len(i) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        i = i[0]
        fill = len(shape) - (len(key) - 1)
        key = key[:i] + (slice(None),) * fill + key[i + 1:]
    if len(key) > len(shape):
        raise IndexError("too many indices: array is %d-dimensional, %d were indexed" %
                         (len(shape), len(key)))
    key = key + (slice(None),) * (len(shape) - len(key))
    sel, drop = [], []
    for d, (k, n) in enumerate(zip(key, shape)):
        if isinstance(k, slice):
            sel.append(k.indices(n))
            continue
        try:
            i = operator.index(k)
        except TypeError:
            raise IndexError("only integers, slices and '...' are valid indices, not %r" %
                             (k,)) from None
        if i < -n or i >= n:
            raise IndexError("index %d is out of bounds for axis %d with size %d" % (i, d, n))
        i %= n
        sel.append((i, i + 1, 1))
        drop.append(d)
    return sel, drop


class Array:
    """An array of the file: numpy-style metadata and slicing (f["t"][10:20, :, ::2])."""

    def __init__(self, f, meta):
        self._f = f
        self._m = meta
        self.name = meta.name
        self.dtype = meta.dtype.newbyteorder("=")
        self.shape = tuple(int(s) for s in meta.shape)
        self.chunks = tuple(int(c) for c in meta.chunks)
        self.dims = tuple(meta.dims)
        self.attrs = dict(meta.attrs)
        self.fill = meta.fill.item()
        self.ndim = len(self.shape)

    @property
    def codec(self):
        """The codec id the array's record names (format.md section 6, version 2), or
        None where it is not recorded (2^32-1, and every version-1 record). Informational:
        each block names its own codec."""
        c = self._m.codec
        return None if c == F.CODEC_UNSET else c

    @property
    def codec_params(self):
        """The codec parameters of the array's record (bytes; empty if none)."""
        return self._m.params

    @property
    def codec_info(self):
        """The array's compression setting as its record holds it (format.md section 6),
        a dict with the fields of the C library's afmt_inquire_codec: codec (the id, None
        for the writer's default: an array defined without a setting, every version-1
        record), codec_name ("none", "lz4", "zstd", "zfp"), level, shuffle, zfp_mode
        ("accuracy", "precision", "rate", "reversible" or None), zfp_param, bitround
        (mantissa bits kept, 0 for none), abs_bound (the absolute error bound of ZFP
        accuracy) and rel_bound (2^-(bitround+1) of bit rounding), 0.0 where there is
        none. Informational: reading needs none of it. Raises CorruptError for damaged
        parameters where afmt_inquire_codec does (not layout 1, fields out of range)."""
        return F.codec_setting((self._m.codec, self._m.params), self._m.shuffle, self.name)

    @property
    def size(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self):
        return "<afmt array %r %s %s chunks %s>" % (self.name, self.dtype, self.shape, self.chunks)

    def __array__(self, dtype=None, copy=None):
        a = self[...]
        return a.astype(dtype) if dtype is not None else a

    def __getitem__(self, key):
        sel, drop = _normalize_key(key, self.shape)
        start, stop, out_shape = [], [], []
        for lo, hi, step in sel:
            n = len(range(lo, hi, step))
            out_shape.append(n)
            if n == 0:
                start.append(0)
                stop.append(0)
            elif step > 0:
                start.append(lo)
                stop.append(lo + (n - 1) * step + 1)
            else:
                start.append(lo + (n - 1) * step)
                stop.append(lo + 1)
        box = self.read(start, [b - a for a, b in zip(start, stop)])
        # The box covers the selection; pick its elements lo + i*step, i < n.
        idx = []
        for (lo, hi, step), a, n in zip(sel, start, out_shape):
            first = lo - a if n else 0
            end = first + n * step
            idx.append(slice(first, end if end >= 0 else None, step))
        out = box[tuple(idx)] if idx else box
        if drop:
            out = out.reshape([n for d, n in enumerate(out.shape) if d not in drop])
        return np.ascontiguousarray(out) if out.ndim else out[()]

    def read(self, start=None, count=None):
        """The hyperslab [start, start + count) as a new C-ordered numpy array (the whole
        array by default). INDEPENDENT: with a communicator, each rank reads only the
        blocks its own hyperslab needs."""
        m = self._m
        nd = len(self.shape)
        start = [0] * nd if start is None else [int(x) for x in start]
        count = list(self.shape) if count is None else [int(x) for x in count]
        if len(start) != nd or len(count) != nd:
            raise ValueError("%s: start and count need %d entries" % (self.name, nd))
        for d in range(nd):
            if start[d] < 0 or count[d] < 0 or start[d] + count[d] > self.shape[d]:
                raise ValueError("%s: start[%d]=%d + count[%d]=%d exceeds shape[%d]=%d" %
                                 (self.name, d, start[d], d, count[d], d, self.shape[d]))
        out = np.empty(count, dtype=self.dtype)
        if out.size == 0:
            return out
        if nd == 0:
            self._chunk_into([], self._f._lookup(m.id, 0), out, (), None)
            return _bool01(out) if m.dtype.kind == "b" else out
        lo = [s // c for s, c in zip(start, self.chunks)]
        hi = [(s + n - 1) // c for s, n, c in zip(start, count, self.chunks)]
        # Chunks in file order of their blocks, so that each block is decompressed once.
        todo, pinned = [], {}
        f = self._f
        if f._view.v2:
            def lookup(key):
                return f._lookup(key[0], key[1], pinned)
        else:
            lookup = f._chunks.get      # version-1 layers only: the merged map
        for kc in np.ndindex(*[h - l + 1 for l, h in zip(lo, hi)]):
            k = [a + b for a, b in zip(kc, lo)]
            idx = 0
            for kk, n in zip(k, m.nchunks):
                idx = idx * n + kk
            loc = lookup((m.id, idx))
            todo.append((loc[0][0] if loc else -1, loc[1] if loc else 0, idx, k, loc))
        todo.sort(key=lambda t: (t[0], t[1]))
        groups = collections.OrderedDict()
        for t in todo:
            groups.setdefault(t[0], []).append(t)
        whole, rest = [], []
        for b, g in groups.items():
            (whole if b >= 0 and len(g) >= self._f._nlive.get(b, 0) else rest).append(g)
        pool = self._f._pool() if len(whole) > 1 else None
        if pool is not None:
            # Blocks used whole are independent: decode them on threads (the pread, LZ4
            # through ctypes and numpy's copies release the GIL).
            for fut in [pool.submit(self._group_into, g, True, out, start, count)
                        for g in whole]:
                fut.result()
        else:
            for g in whole:
                self._group_into(g, True, out, start, count)
        for g in rest:
            self._group_into(g, False, out, start, count)
        if m.dtype.kind == "b":
            _bool01(out)
        return out

    def _group_into(self, group, whole, out, start, count):
        """Decodes the chunks of one block (or the never-written chunks, block -1) into
        out. whole: the read uses every live chunk of the block (no cache)."""
        m = self._m
        raw = None
        for _, _, idx, k, loc in group:
            c0 = [kk * c for kk, c in zip(k, self.chunks)]
            s0 = [max(a, b) for a, b in zip(start, c0)]
            s1 = [min(a + n, b + c) for a, n, b, c in zip(start, count, c0, self.chunks)]
            dst = tuple(slice(a - b, e - b) for a, e, b in zip(s0, s1, start))
            src = tuple(slice(a - b, e - b) for a, e, b in zip(s0, s1, c0))
            if loc is not None and raw is None:
                raw = self._f._block(loc[0], "array %r chunk %d (layer %d)" %
                                     (m.name, idx, loc[3]), whole)
            self._chunk_into(k, loc, out[dst], src, raw)

    def _chunk_into(self, k, loc, dst, src, raw):
        """Chunk k (coordinates; [] for a scalar) at loc (None: never written) into dst;
        raw is its block's decompressed bytes (None: fetch them)."""
        m = self._m
        if loc is None:
            dst[...] = m.fill
            return
        if raw is None:
            raw = self._f._block(loc[0], "array %r (layer %d)" % (m.name, loc[3]))
        off, size = loc[1], loc[2]
        ext = _chunk_extent(m, k)
        n = size // m.dtype.itemsize
        z = m.dtype.itemsize
        if m.shuffle and z > 1:
            # Section 7: byte k of element i is at k*n + i: z byte planes of the chunk's
            # shape, copied transposed straight into the destination elements' bytes.
            b = np.frombuffer(raw, dtype=np.uint8, count=size, offset=off).reshape([z] + ext)
            planes = b[(slice(None),) + src] if src else b
            if not _LITTLE:
                planes = planes[::-1]
            if dst.ndim == 0:
                dst.reshape(1).view(np.uint8)[...] = planes
            else:
                # One numpy copy of the transposed view: it picks the loop order itself
                # (1.0 ms per MiB here; a loop over the z planes took 1.6).
                d8 = dst.view(np.uint8).reshape(dst.shape + (z,))
                np.copyto(d8, np.moveaxis(planes, 0, -1))
        else:
            chunk = np.frombuffer(raw, dtype=m.dtype, count=n, offset=off).reshape(ext)
            dst[...] = chunk[src] if src else chunk


class File(collections.abc.Mapping):
    """An afmt file open for reading: a mapping from array names to Array objects.

    afmt.open(path) reads the newest layer; afmt.open(path, layer=K) the file as of layer
    K. With comm (an mpi4py communicator), rank 0 reads the superblock and the footer chain
    and broadcasts them; every rank then reads only the blocks its own reads need.

    threads: how many threads decode the blocks of one read (default: up to 4, the
    machine's cores; 1 under a communicator of several ranks, which already fill the
    cores). cache_bytes bounds the cache of decompressed blocks that reads share;
    cache_segments the number of version-2 index segments kept decoded (format.md section
    9.3: a segment is read when a lookup first needs it).

    path may be a URL, http://, https:// or s3://bucket/key (module _remote; docs/python.md
    "Remote files"): timeout bounds each request in seconds, retries how often a timeout, a
    5xx answer or a broken connection is retried. Both are unused for local files."""

    def __init__(self, path, layer=None, comm=None, cache_bytes=64 << 20, threads=None,
                 cache_segments=64, timeout=30.0, retries=3):
        self.path = path
        self.comm = comm
        remote = _remote.is_url(path)
        self._st = _remote.storage(path, timeout, retries) if remote else _Storage(path)
        self._cache = collections.OrderedDict()
        self._cache_bytes = 0
        self._cache_cap = cache_bytes
        try:
            if comm is None or comm.Get_rank() == 0:
                try:
                    meta = _read_chain(self._st, layer)
                    err = None
                except AfmtError as e:
                    # A damaged remote file: the message names the URL, as the errors of
                    # the requests themselves do.
                    meta, err = None, e
                    if remote:
                        err = type(e)("%s: %s" % (path, e))
                except Exception as e:  # every rank must learn of the failure
                    meta, err = None, e
                if remote and err is None:
                    meta = meta + (self._st.pin,)
            if comm is not None:
                meta, err = comm.bcast((meta, err) if comm.Get_rank() == 0 else None, root=0)
            if err is not None:
                raise err
            if remote:
                # The size and ETag rank 0 saw: every rank checks its answers against them.
                self._st.adopt(meta[2])
            slot, chain = meta[:2]
            self.uuid = slot.uuid
            self.generation = slot.generation
            self.layers = [Layer(L) for L in reversed(chain)]
            self._view = V = _merge(chain)
            self._arrays, self._chunks, self.attrs, self._nlive = (V.arrays, V.chunks, V.attrs,
                                                                   V.nlive)
            self._segs = collections.OrderedDict()   # (chain position, segment) -> Segment
            self._segs_cap = max(1, int(cache_segments))
            self._seg_lock = threading.Lock()
            self._tls = threading.local()  # one decode buffer per reading thread
            self._threads = threads if threads is not None else (
                min(4, os.cpu_count() or 1) if comm is None or comm.Get_size() == 1 else 1)
            self._executor = None
        except BaseException:
            self._st.close()
            raise

    def _lookup(self, aid, idx, pinned=None):
        """Section 9.3: the location of chunk idx of live array aid (None: never written,
        it reads as the fill value). The newest layer holding it wins; version-1 layers are
        in the merged map, version-2 layers are searched newest first through their root
        tables, down to the newest version-1 hit or the array's first DEFINE. pinned: a dict
        of the segments one read has used, so that a read needing more segments than the
        cache holds still reads each of them once."""
        key = (aid, idx)
        hit = self._chunks.get(key)
        floor = hit[4] if hit is not None else -1
        m = self._view.metas.get(aid)
        if m is not None and m.def_pos - 1 > floor:
            floor = m.def_pos - 1      # no older layer can hold a chunk of aid
        for pos, L, firsts, maxlast in self._view.v2:
            if pos <= floor:
                break
            # The last segment whose first key <= key, and the ones before it whose last
            # key >= key (maxlast[j], the largest last key of segments 0..j, ends the walk).
            j = bisect.bisect_right(firsts, key) - 1
            while j >= 0 and maxlast[j] >= key:
                sg = L.segments[j]
                if sg.last >= key:
                    g = pinned.get((pos, j)) if pinned is not None else None
                    if g is None:
                        g = self._segment(pos, L, sg)
                        if pinned is not None:
                            pinned[(pos, j)] = g
                    r = bisect.bisect_left(g.keys, key)
                    if r < len(g.keys) and g.keys[r] == key:
                        blk, off, size = g.recs[r]
                        return (g.blocks[blk], off, size, L.layer_id, pos)
                j -= 1
        return hit

    def _segment(self, pos, L, sg):
        """The decoded segment sg of the version-2 layer L at chain position pos: read and
        checked (format.md 9.1, X1-X8, and the merge checks M7-M9 of its chunk records)
        on first use, then kept in a bounded LRU cache. Damage raises CorruptError naming
        the layer and the segment, on every read that needs the segment."""
        ck = (pos, sg.index)
        with self._seg_lock:
            g = self._segs.get(ck)
            if g is not None:
                self._segs.move_to_end(ck)
                return g
        g = F.decode_segment(self._st.read(sg.offset, sg.length), L, sg)
        where = "layer %d: %s" % (L.layer_id, sg.describe())
        V = self._view
        per_block = collections.Counter()
        for (aid, idx), (blk, _off, size) in zip(g.keys, g.recs):
            m, state = V.state(aid, pos)
            _check_chunk(where, m, state, aid, idx, size)
            per_block[blk] += 1
        with self._seg_lock:
            # A block's chunk records in its segment bound its live chunks: a read that
            # uses that many of them uses the block whole (no cache needed).
            for blk, n in per_block.items():
                self._nlive[g.blocks[blk][0]] = n
            self._segs[ck] = g
            while len(self._segs) > self._segs_cap:
                self._segs.popitem(last=False)
        return g

    def _block(self, blk, what, whole=False):
        """The decompressed bytes of a block, verified. whole: the caller uses every live
        chunk of it now, so it is decoded into a buffer the handle keeps (valid until the
        next call) instead of entering the cache."""
        off, stored, raw_size, ck, codec, rank = blk
        hit = self._cache.get(off)
        if hit is not None:
            self._cache.move_to_end(off)
            return hit
        what = "%s: block at offset %d" % (what, off)
        data = self._st.read(off, stored)
        # Section 8, reading a block: the checksum, the codec, then decompression to
        # exactly raw_size; what the stored bytes rule out is found before allocating.
        if F.checksum(data) != ck:
            raise CorruptError("%s (%d bytes) fails its checksum" % (what, stored))
        if codec == F.CODEC_LZ4 and (_lz4 is not None or _lz4_into is not None):
            _lz4_possible(data, raw_size, what)
        elif codec == F.CODEC_ZSTD and _zstd is not None:
            _zstd_one_frame(data, raw_size, what)
        elif codec == F.CODEC_ZFP:
            _zfp_module(what)
        elif codec != F.CODEC_NONE:
            raise CodecError("%s: codec id %d is not available to this reader" % (what, codec))
        if whole:
            tl = self._tls
            buf = getattr(tl, "buf", None)
            if buf is None or buf.size < raw_size:
                buf = tl.buf = np.empty(raw_size, dtype=np.uint8)
            return _decompress_into(codec, data, raw_size, buf, what)
        raw = _decompress(codec, data, raw_size, what)
        if raw_size <= self._cache_cap:
            self._cache[off] = raw
            self._cache_bytes += raw_size
            while self._cache_bytes > self._cache_cap:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= len(old)
        return raw

    def __getitem__(self, name):
        """The array of that name: a str, or the name's bytes (a name that is not UTF-8
        is a str holding surrogates U+DC80..U+DCFF for its invalid bytes)."""
        if isinstance(name, (bytes, bytearray)):
            name = F.name_str(name)
        rec = self._arrays.get(name)
        if rec is None:
            # Name what exists (the first ten, in definition order): a typo shows at once.
            names = list(self)
            have = ", ".join(repr(n) for n in names[:10]) or "none"
            if len(names) > 10:
                have += ", ... (%d in all)" % len(names)
            raise KeyError("no array %r in %s; its arrays: %s" % (name, self.path, have))
        return Array(self, rec)

    def __iter__(self):
        return iter(sorted(self._arrays, key=lambda n: self._arrays[n].id))

    def __len__(self):
        return len(self._arrays)

    def _pool(self):
        if self._threads <= 1:
            return None
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(self._threads)
        return self._executor

    def close(self):
        self._st.close()
        self._cache.clear()
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<afmt file %r: %d arrays, %d layers>" % (self.path, len(self), len(self.layers))


def open(path, layer=None, comm=None, threads=None, timeout=30.0,  # noqa: A001
         retries=3):
    """Opens an afmt file for reading (pure Python, no libafmt): a path, or an http://,
    https:// or s3:// URL. See File."""
    return File(path, layer=layer, comm=comm, threads=threads, timeout=timeout,
                retries=retries)
