"""Crafting afmt files for the damage tests: a file written by libafmt is loaded into
editable records (the reader's own decoder; the index segments of a version-2 layer
become one block and one chunk table), changed, and written back as a whole new version-1
file with every offset, pointer and checksum recomputed (docs/format.md sections 3-10), so
that the rule under test is what rejects it, never a checksum.

    layers, uuid = craft.load(path)          # oldest first, each a dict (see load)
    layers[1]["arrays"][0]["dtype"] = 9
    craft.save(path, layers, uuid)

save writes the slot of the newest state and, in the other slot, the state without the
newest layer (as two commits would), unless told otherwise.
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from afmt import _format as F  # noqa: E402
from afmt import _reader as R  # noqa: E402

U64 = (1 << 64) - 1


def name_bytes(s):
    """A name of the decoded chain back to its bytes (the reader's str: surrogateescape)."""
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def load(path):
    """The chain of path as a list of layer dicts, oldest first, and the file's uuid. A
    layer: layer_id, time_ns, nranks, flags, next_array_id, arrays (dicts: id, kind, flags,
    dtype, name (bytes), fill (8 bytes), shape, chunk, dims (bytes)), blocks (dicts: data
    (the stored bytes), raw, codec, rank), chunks (lists: array_id, chunk_index, block,
    offset, size), attrs (lists: scope, key (bytes), dtype, n, value bytes)."""
    st = R._Storage(path)
    try:
        slot, chain = R._read_chain(st, None)
        layers = []
        for L in reversed(chain):
            blocks, chunks = _tables(st, L)
            layers.append({
                "layer_id": L.layer_id, "time_ns": L.time_ns, "nranks": L.nranks,
                "flags": L.flags, "next_array_id": L.next_array_id,
                "arrays": [dict(r, name=name_bytes(r["name"]),
                                dims=[name_bytes(d) for d in r["dims"]],
                                shape=list(r["shape"]), chunk=list(r["chunk"]))
                           for r in L.arrays],
                "blocks": [{"data": st.read(b[0], b[1]), "raw": b[2], "codec": b[4],
                            "rank": b[5]} for b in blocks],
                "chunks": [list(c) for c in chunks],
                "attrs": [[s, name_bytes(k), t, n, v] for s, k, t, n, v in L.attrs],
            })
        return layers, slot.uuid
    finally:
        st.close()


def _tables(st, L):
    """The block and chunk tables of a decoded layer: a version-1 footer's own, or those
    of every index segment of a version-2 layer (format.md 9.1) as one table, block
    indices renumbered and the chunks sorted, as a version-1 footer holds them."""
    if L.version == 1:
        return L.blocks, L.chunks
    blocks, chunks = [], []
    for sg in L.segments:
        g = F.decode_segment(st.read(sg.offset, sg.length), L, sg)
        base = len(blocks)
        blocks += g.blocks
        chunks += [k + (blk + base, off, size) for k, (blk, off, size) in zip(g.keys, g.recs)]
    chunks.sort(key=lambda c: (c[0], c[1]))
    return blocks, chunks


def encode_footer(L, prev, data_offset, blocks_at):
    """The footer of layer dict L (section 5), its blocks at the file offsets blocks_at.
    Keys of L that override computed values: prev (offset, length), data_offset,
    block_records (a list of (offset, stored, raw, checksum, codec, rank))."""
    heap = bytearray()

    def ref(b):
        heap.extend(b)
        return len(heap) - len(b), len(b)

    arrays = bytearray()
    for r in L["arrays"]:
        noff, nlen = ref(r["name"])
        ndim = len(r["shape"])
        arrays += struct.pack("<Q4I2Q", r["id"], r["kind"], r["flags"], r["dtype"], ndim,
                              noff, nlen) + bytes(r["fill"])
        for s, c, d in zip(r["shape"], r["chunk"], r["dims"]):
            doff, dlen = ref(d)
            arrays += struct.pack("<4Q", s, c, doff, dlen)
    recs = L.get("block_records")
    if recs is None:
        recs = [(at, len(b["data"]), b["raw"], F.checksum(b["data"]), b["codec"], b["rank"])
                for at, b in zip(blocks_at, L["blocks"])]
    blocks = b"".join(struct.pack("<4Q2I", *r) for r in recs)
    chunks = b"".join(struct.pack("<5Q", *c) for c in L["chunks"])
    attrs = bytearray()
    for scope, key, dtype, n, value in L["attrs"]:
        koff, klen = ref(key)
        voff, vlen = ref(value)
        attrs += struct.pack("<3Q2I3Q", scope, koff, klen, dtype, 0, n, voff, vlen)
    prev = L.get("prev", prev)
    header = struct.pack("<8sII5Q2I10Q5IIQ", F.FOOTER_MAGIC, 1, F.HEADER_V1, L["layer_id"],
                         prev[0], prev[1], L.get("data_offset", data_offset), L["time_ns"],
                         L["nranks"], L["flags"], L["next_array_id"], len(L["arrays"]),
                         len(recs), len(L["chunks"]), len(L["attrs"]), len(arrays),
                         len(blocks), len(chunks), len(attrs), len(heap), F.ARRAY_REC_V1,
                         F.ARRAY_DIM_V1, F.BLOCK_REC_V1, F.CHUNK_REC_V1, F.ATTR_REC_V1, 0, 0)
    body = header + bytes(arrays) + blocks + chunks + bytes(attrs) + bytes(heap)
    return body + struct.pack("<Q", F.checksum(body))


def slot_bytes(uuid, generation, footer_offset, footer_length, footer_checksum, eof, nlayers,
               layer_id, next_array_id, version=1):
    b = struct.pack("<8sII16s8Q24x", F.SLOT_MAGIC, version, 0, uuid, generation,
                    footer_offset, footer_length, footer_checksum, eof, nlayers, layer_id,
                    next_array_id)
    return b + struct.pack("<Q", F.checksum(b))


def save(path, layers, uuid, generation=3, older_slot=True, slot_edit=None, uuid_b=None):
    """Writes layers (oldest first) as a whole file. The newest state's slot gets
    generation; with older_slot, the other slot holds the state without the newest layer
    (generation - 1). slot_edit(dict) may change the newest slot's fields (keys as the
    arguments of slot_bytes) before it is encoded; uuid_b gives the older slot another
    uuid. Returns a dict of what was written: footers [(offset, length)], eof."""
    out = bytearray(F.SUPER_REGION)
    states = []          # after each layer: (footer offset, length, checksum, eof)
    prev = (0, 0)
    for L in layers:
        data_offset = len(out)
        at = []
        for b in L["blocks"]:
            at.append(len(out))
            out += b["data"]
        fb = encode_footer(L, prev, data_offset, at)
        fo = len(out)
        ck = F.checksum(fb)
        out += fb + struct.pack("<3Q8s", fo, len(fb), ck, F.TRAILER_MAGIC)
        prev = (fo, len(fb))
        states.append((fo, len(fb), ck, len(out)))

    def slot_for(n, gen, uid):
        if n == 0:
            return slot_bytes(uid, gen, 0, 0, 0, F.SUPER_REGION, 0, 0, 1)
        fo, fl, ck, eof = states[n - 1]
        return dict(uuid=uid, generation=gen, footer_offset=fo, footer_length=fl,
                    footer_checksum=ck, eof=eof, nlayers=n,
                    layer_id=max(L["layer_id"] for L in layers[:n]),
                    next_array_id=layers[n - 1]["next_array_id"])

    newest = slot_for(len(layers), generation, uuid)
    if slot_edit:
        slot_edit(newest)
    slots = {generation % 2: slot_bytes(**newest)}
    if older_slot:
        o = slot_for(len(layers) - 1, generation - 1, uuid_b or uuid)
        slots[(generation - 1) % 2] = o if isinstance(o, bytes) else slot_bytes(**o)
    for parity, b in slots.items():
        off = 0 if parity == 0 else 2048
        out[off:off + len(b)] = b
    with open(path, "wb") as fh:
        fh.write(out)
    return {"footers": [s[:2] for s in states], "eof": len(out)}


def reseal_footer(path, footer_offset, footer_length):
    """After bytes of the footer at footer_offset were changed in place: recomputes its
    own checksum, the trailer's footer_checksum and that of every slot naming it."""
    with open(path, "r+b") as fh:
        data = bytearray(fh.read())
        fo, fl = footer_offset, footer_length
        data[fo + fl - 8:fo + fl] = struct.pack("<Q", F.checksum(bytes(data[fo:fo + fl - 8])))
        ck = F.checksum(bytes(data[fo:fo + fl]))
        data[fo + fl + 16:fo + fl + 24] = struct.pack("<Q", ck)
        for s in F.SLOT_OFFSETS:
            if struct.unpack_from("<Q", data, s + 40)[0] == fo and data[s:s + 8] == F.SLOT_MAGIC:
                data[s + 56:s + 64] = struct.pack("<Q", ck)
                data[s + 120:s + 128] = struct.pack("<Q", F.checksum(bytes(data[s:s + 120])))
        fh.seek(0)
        fh.write(data)
