"""A test-only writer of format version 2 files, written from docs/format.md alone (sections
3, 4, 5, 6, 7, 8, 9.1, 9.2, 13), as a cross-check of the document: the Python reader must
read what this writes, and reject what it writes with a damaged field. It shares nothing
with the reader but the constants and the checksum of afmt._format.

    L = v2craft.Layer(layer_id=1, nranks=3, next_array_id=3)
    L.define(1, "t", "int32", (10, 7), (4, 3), shuffle=True)
    L.put_array(rank=0, aid=1, values=a, chunks=[0, 2, 4], codec=2, per_block=2)
    info = v2craft.write(path, [L])               # a new file, one slot
    info = v2craft.write(path, [L2], base=golden)  # appended to an existing file

Hooks for damage (each applied before the checksums that cover the field are computed,
so that the rule under test decides, never a checksum): Layer.segment_edit(rank, dict)
edits a segment's header fields or its records before it is encoded; Layer.root_edit(i,
dict) a root record; Layer.header_edit(dict) the footer header's fields.
"""

import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from afmt import _format as F  # noqa: E402

try:
    import lz4.block as _lz4
except ImportError:  # pragma: no cover
    _lz4 = None
try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover
    _zstd = None

DTYPE_IDS = {name: i for i, (name, _code, _size) in F.DTYPES.items()}


def chunk_payload(values, chunk, idx, shuffle):
    """Section 7: the raw payload of chunk idx (C-order linear index) of values (a numpy
    array of the array's full shape) with chunk extents chunk: the chunk's real extent in
    C order, little-endian, byte-transposed if shuffle."""
    shape = values.shape
    n = [-(-s // c) for s, c in zip(shape, chunk)]
    k = []
    for nd in reversed(n):
        k.append(idx % nd)
        idx //= nd
    k = k[::-1]
    sel = tuple(slice(kk * c, min((kk + 1) * c, s)) for kk, c, s in zip(k, chunk, shape))
    part = np.ascontiguousarray(values[sel] if sel else values)
    le = part.astype(part.dtype.newbyteorder("<"))
    raw = le.tobytes()
    z = part.dtype.itemsize
    if shuffle and z > 1:
        ne = len(raw) // z
        raw = np.frombuffer(raw, dtype=np.uint8).reshape(ne, z).T.tobytes()
    return raw


def zfp_field(part):
    """Section 8, codec 3: a chunk's values (its real extent) as the field ZFP compresses,
    in C order: up to 4 dimensions as they are, more merged into the slowest of 4, a
    scalar as 1 value."""
    if part.ndim == 0:
        return part.reshape(1)
    if part.ndim > 4:
        return part.reshape((-1,) + part.shape[-3:])
    return part


def zfp_block(values, chunk, idx, **zfp):
    """The stored bytes of chunk idx of values as a ZFP block (section 8): what
    zfpy.compress_numpy returns for the chunk's field, full header included. zfp: its
    keyword arguments (tolerance=, rate=, precision=; none: reversible)."""
    import zfpy
    raw = chunk_payload(values, chunk, idx, False)
    n = len(raw) // values.dtype.itemsize
    ext = [min(c, s - k * c) for k, c, s in zip(_coord(values.shape, chunk, idx), chunk,
                                                values.shape)]
    part = np.frombuffer(raw, dtype=values.dtype.newbyteorder("<"), count=n).reshape(ext)
    part = part.astype(values.dtype.newbyteorder("="))
    return zfpy.compress_numpy(np.ascontiguousarray(zfp_field(part)), **zfp), raw


def _coord(shape, chunk, idx):
    n = [-(-s // c) for s, c in zip(shape, chunk)]
    k = []
    for nd in reversed(n):
        k.append(idx % nd)
        idx //= nd
    return k[::-1]


def compress(codec, raw):
    if codec == F.CODEC_NONE:
        return raw
    if codec == F.CODEC_LZ4:
        return _lz4.compress(raw, store_size=False)
    if codec == F.CODEC_ZSTD:
        return _zstd.ZstdCompressor(level=3).compress(raw)
    raise ValueError("codec %d" % codec)


def fill_bytes(dtype, fill):
    code = F.DTYPES[DTYPE_IDS[dtype]][1]
    b = np.array([fill], dtype=code).tobytes()
    return b + bytes(8 - len(b))


class Layer:
    """One version-2 layer to write."""

    def __init__(self, layer_id, nranks=1, next_array_id=2, flags=0, time_ns=1 << 60):
        self.layer_id, self.nranks, self.next_array_id = layer_id, nranks, next_array_id
        self.flags, self.time_ns = flags, time_ns
        self.arrays = []      # record dicts (section 6)
        self.attrs = []       # (scope, key bytes, dtype id, n, value bytes)
        self.writers = {}     # rank -> [block dicts: codec, chunks [(aid, idx, payload)]]
        self.segment_edit = None
        self.root_edit = None
        self.header_edit = None
        self.params_in_heap = True

    def define(self, aid, name, dtype, shape, chunk, dims=None, fill=0, shuffle=False,
               codec=F.CODEC_UNSET, params=b""):
        dims = dims or ["d%d" % d for d in range(len(shape))]
        self.arrays.append({
            "id": aid, "kind": F.KIND_DEFINE, "flags": F.ARRAY_SHUFFLE if shuffle else 0,
            "dtype": DTYPE_IDS[dtype], "name": F.name_bytes(name),
            "fill": fill_bytes(dtype, fill), "shape": list(shape), "chunk": list(chunk),
            "dims": [F.name_bytes(d) for d in dims], "codec": codec, "params": params})

    def delete(self, aid, name):
        self.arrays.append({"id": aid, "kind": F.KIND_DELETE, "flags": 0, "dtype": 0,
                            "name": F.name_bytes(name), "fill": bytes(8), "shape": [],
                            "chunk": [], "dims": [], "codec": F.CODEC_UNSET, "params": b""})

    def attr(self, scope, key, dtype, values):
        a = np.asarray(values, dtype=F.DTYPES[DTYPE_IDS[dtype]][1]).reshape(-1)
        self.attrs.append((scope, F.name_bytes(key), DTYPE_IDS[dtype], a.size, a.tobytes()))

    def put(self, rank, chunks, codec=F.CODEC_NONE):
        """One block of rank holding chunks [(aid, idx, raw payload)], in that order."""
        self.writers.setdefault(rank, []).append({"codec": codec, "chunks": list(chunks)})

    def put_zfp(self, rank, aid, values, chunk, idxs, **zfp):
        """The chunks idxs of array aid (values: its full content, float32 or float64) from
        rank, one ZFP block each (section 8: codec 3, one chunk per block). The block
        records carry the raw size of the chunk; the stored bytes are zfp_block's."""
        for j in idxs:
            stored, raw = zfp_block(values, chunk, j, **zfp)
            self.writers.setdefault(rank, []).append({
                "codec": F.CODEC_ZFP, "stored": stored,
                "chunks": [(aid, j, bytes(len(raw)))]})

    def put_array(self, rank, aid, values, chunk, idxs, shuffle=False, codec=F.CODEC_NONE,
                  per_block=4):
        """The chunks idxs of array aid (values: its full content) from rank, per_block
        chunks per block."""
        idxs = list(idxs)
        for i in range(0, len(idxs), per_block):
            self.put(rank, [(aid, j, chunk_payload(values, chunk, j, shuffle))
                            for j in idxs[i:i + per_block]], codec)


def _segment_bytes(L, rank, blocks):
    """Section 9.1: the segment of rank over its blocks [(offset, stored, raw, checksum,
    codec)] and chunk records [(aid, idx, block, offset, size)]."""
    recs = []
    for b, blk in enumerate(L.writers[rank]):
        off = 0
        for aid, idx, payload in blk["chunks"]:
            recs.append([aid, idx, b, off, len(payload)])
            off += len(payload)
    recs.sort(key=lambda r: (r[0], r[1]))
    seg = {"magic": F.SEGMENT_MAGIC, "version": 2, "header_size": F.SEG_HEADER_V2,
           "layer_id": L.layer_id, "n_blocks": len(blocks), "n_chunks": len(recs),
           "block_rec_size": F.BLOCK_REC_V1, "chunk_rec_size": F.CHUNK_REC_V1, "writer": rank,
           "blocks": [list(b) + [rank] for b in blocks], "chunks": recs, "tail": b"",
           "raw_checksum": None}
    if L.segment_edit:
        L.segment_edit(rank, seg)
    body = struct.pack("<8s2I3Q3I12x", seg["magic"], seg["version"], seg["header_size"],
                       seg["layer_id"], seg["n_blocks"], seg["n_chunks"],
                       seg["block_rec_size"], seg["chunk_rec_size"], seg["writer"])
    def sized(b, n):        # a field appended (n > len(b)), or a short size (damage)
        return b[:n] + bytes(max(0, n - len(b)))
    body = sized(body, seg["header_size"])
    for b in seg["blocks"]:
        body += sized(struct.pack("<4Q2I", *b), seg["block_rec_size"])
    for c in seg["chunks"]:
        body += sized(struct.pack("<5Q", *c), seg["chunk_rec_size"])
    body += seg["tail"]
    ck = seg["raw_checksum"] if seg["raw_checksum"] is not None else F.checksum(body)
    out = body + struct.pack("<Q", ck)
    keys = [(c[0], c[1]) for c in recs]
    return out, len(recs), keys


def encode_layer(L, data_offset, prev):
    """The data region (blocks and segments, rank by rank), the footer and the trailer of
    layer L written at data_offset. Returns (bytes, info)."""
    data = bytearray()
    roots, segs = [], []
    n_blocks = n_chunks = 0
    for rank in sorted(L.writers):
        blocks = []
        for blk in L.writers[rank]:
            raw = b"".join(p for _a, _i, p in blk["chunks"])
            codec = blk["codec"]
            if "stored" in blk:      # stored bytes made by the caller (put_zfp)
                stored = blk["stored"]
            else:
                stored = compress(codec, raw)
            if codec not in (F.CODEC_NONE, F.CODEC_ZFP) and len(stored) >= len(raw):
                stored, codec = raw, F.CODEC_NONE      # section 8: not smaller -> none
            at = data_offset + len(data)
            data += stored
            blocks.append((at, len(stored), len(raw), F.checksum(stored), codec))
        sb, nc, keys = _segment_bytes(L, rank, blocks)
        if nc == 0:
            continue     # section 9.1: a writer without chunk records writes no segment
        at = data_offset + len(data)
        data += sb
        roots.append({"offset": at, "length": len(sb), "checksum": F.checksum(sb),
                      "n_blocks": len(blocks), "n_chunks": nc, "first": keys[0],
                      "last": keys[-1], "writer": rank})
        segs.append((rank, at, len(sb)))
        n_blocks += len(blocks)
        n_chunks += nc
    order = sorted(range(len(roots)), key=lambda i: roots[i]["first"])
    roots = [roots[i] for i in order]
    segs = [segs[i] for i in order]
    if L.root_edit:
        for i, r in enumerate(roots):
            L.root_edit(i, r)
    footer = encode_footer(L, data_offset, prev, roots, n_blocks, n_chunks)
    fo = data_offset + len(data)
    ck = F.checksum(footer)
    out = bytes(data) + footer + struct.pack("<3Q8s", fo, len(footer), ck, F.TRAILER_MAGIC)
    return out, {"footer": (fo, len(footer), ck), "segments": segs, "roots": roots,
                 "eof": data_offset + len(out)}


def encode_footer(L, data_offset, prev, roots, n_blocks, n_chunks):
    """Section 5 (version 2): header, array records (72-byte fixed part), root table,
    attribute records, heap, checksum."""
    heap = bytearray()

    def ref(b):
        heap.extend(b)
        return len(heap) - len(b), len(b)

    arrays = bytearray()
    for r in L.arrays:
        noff, nlen = ref(r["name"])
        dims = [ref(d) for d in r["dims"]]
        poff, plen = ref(r["params"]) if L.params_in_heap else (1 << 40, len(r["params"]))
        arrays += struct.pack("<Q4I2Q", r["id"], r["kind"], r["flags"], r["dtype"],
                              len(r["shape"]), noff, nlen) + bytes(r["fill"])
        arrays += struct.pack("<2I2Q", r["codec"], 0, poff, plen)
        for s, c, (doff, dlen) in zip(r["shape"], r["chunk"], dims):
            arrays += struct.pack("<4Q", s, c, doff, dlen)
    table = b"".join(struct.pack("<9QII", r["offset"], r["length"], r["checksum"],
                                 r["n_blocks"], r["n_chunks"], r["first"][0], r["first"][1],
                                 r["last"][0], r["last"][1], r["writer"], 0) for r in roots)
    attrs = bytearray()
    for scope, key, dtype, n, value in L.attrs:
        koff, klen = ref(key)
        voff, vlen = ref(value)
        attrs += struct.pack("<3Q2I3Q", scope, koff, klen, dtype, 0, n, voff, vlen)
    h = {"magic": F.FOOTER_MAGIC, "version": 2, "header_size": F.HEADER_V1,
         "layer_id": L.layer_id, "prev_offset": prev[0], "prev_length": prev[1],
         "data_offset": data_offset, "time_ns": L.time_ns, "nranks": L.nranks,
         "flags": L.flags, "next_array_id": L.next_array_id, "n_arrays": len(L.arrays),
         "n_blocks": n_blocks, "n_chunks": n_chunks, "n_attrs": len(L.attrs),
         "arrays_size": len(arrays), "segs_size": len(table), "n_segments": len(roots),
         "attrs_size": len(attrs), "heap_size": len(heap),
         "array_rec_size": F.ARRAY_REC_V2, "array_dim_size": F.ARRAY_DIM_V1,
         "seg_rec_size": F.SEG_REC_V2, "attr_rec_size": F.ATTR_REC_V1}
    if L.header_edit:
        L.header_edit(h)
    header = struct.pack("<8sII5Q2I10Q3I4xI4x8x", h["magic"], h["version"], h["header_size"],
                         h["layer_id"], h["prev_offset"], h["prev_length"], h["data_offset"],
                         h["time_ns"], h["nranks"], h["flags"], h["next_array_id"],
                         h["n_arrays"], h["n_blocks"], h["n_chunks"], h["n_attrs"],
                         h["arrays_size"], h["segs_size"], h["n_segments"], h["attrs_size"],
                         h["heap_size"], h["array_rec_size"], h["array_dim_size"],
                         h["seg_rec_size"], h["attr_rec_size"])
    assert len(header) == F.HEADER_V1
    body = header + bytes(arrays) + table + bytes(attrs) + bytes(heap)
    return body + struct.pack("<Q", F.checksum(body))


def slot_bytes(uuid, generation, footer, eof, nlayers, layer_id, next_array_id, version=2):
    """Section 3.1."""
    fo, fl, ck = footer
    b = struct.pack("<8sII16s8Q24x", F.SLOT_MAGIC, version, 0, uuid, generation, fo, fl, ck,
                    eof, nlayers, layer_id, next_array_id)
    return b + struct.pack("<Q", F.checksum(b))


def write(path, layers, base=None, uuid=bytes(range(16)), slot_version=2):
    """Writes layers (oldest first) as a new file, or appended to the committed state of
    the file base (its bytes past the chosen slot's eof dropped; the new slot goes where
    the next generation's goes, section 13, so the base's newest slot stays). Returns one
    info dict per layer written (footer (offset, length, checksum), segments [(rank,
    offset, length)] in root table order, roots, eof)."""
    if base is not None:
        with open(base, "rb") as fh:
            old = fh.read()
        slot = F.pick_slot(old[:F.SUPER_REGION], len(old))
        out = bytearray(old[:slot.eof])
        uuid, gen, nlayers = slot.uuid, slot.generation, slot.nlayers
        prev = (slot.footer_offset, slot.footer_length)
        top_id, next_id = slot.layer_id, slot.next_array_id
    else:
        out = bytearray(F.SUPER_REGION)
        gen, nlayers, prev, top_id, next_id = 1, 0, (0, 0), 0, 1
    infos = []
    for L in layers:
        b, info = encode_layer(L, len(out), prev)
        out += b
        prev = info["footer"][:2]
        nlayers += 1
        top_id = max(top_id, L.layer_id)
        next_id = max(next_id, L.next_array_id)
        infos.append(info)
    gen += 1
    s = slot_bytes(uuid, gen, infos[-1]["footer"], len(out), nlayers, top_id, next_id,
                   slot_version)
    at = 0 if gen % 2 == 0 else 2048
    out[at:at + F.SLOT_SIZE] = s
    with open(path, "wb") as fh:
        fh.write(out)
    return infos
