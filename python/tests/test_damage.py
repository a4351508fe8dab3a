"""The pure-Python reader against damaged and unusual files: one test per rule of
docs/format.md section 16 that decides what is damage, on files crafted with every
checksum re-sealed (craft.py), so that the rule under test is what rejects them; every
damaged-file path raises afmt.CorruptError (a field fuzzer checks that no other type
escapes); names that are not UTF-8; a reader opening while a commit lands.

Where libafmt applies the same rule set (it has the limits of format.md section 2), each
crafted file is also opened with libafmt, which must decide the same way."""

import os
import random
import struct
import sys
import time
import tracemalloc
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import afmt  # noqa: E402
import craft  # noqa: E402
import util  # noqa: E402
from afmt import _format as F  # noqa: E402
from afmt import _reader as R  # noqa: E402

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

A = np.arange(10, dtype=np.int32) * 3 + 1        # "a" after layer 1
A2 = A.copy()
A2[0:4] = -1                                      # "a" after layer 2
B = np.linspace(0, 1, 6)                          # "b", deleted by layer 2


def base_file(path, codec="none"):
    """Two layers. L1: a int32 [10] chunk 4 (id 1, written, attribute units="m"), b float64
    [6] (id 2, written), file attribute title; L2: a[0:4] = -1, c int32 [10] chunk 4
    (id 3, never written), b deleted."""
    with afmt.create(path, codec=codec) as w:
        w.define("a", "int32", (10,), chunks=(4,))
        w.write("a", A)
        w.define("b", "float64", (6,))
        w.write("b", B)
        w.set_attr("a", "units", "m")
        w.set_attr(None, "title", "t")
        w.commit()
        w.write("a", A2[0:4])
        w.define("c", "int32", (10,), chunks=(4,))
        w.delete("b")


def rec(layer, name):
    """The DEFINE record of the array named name in a craft layer dict."""
    return next(r for r in layer["arrays"] if r["name"] == name and r["kind"] == F.KIND_DEFINE)


# ---- the cases: (name, edit(layers) -> None or save-kwargs, expectation) ----------------
# An expectation is a regex the CorruptError message must match, or a function checking
# the file that opened.

def case_roundtrip(L):
    pass


def check_roundtrip(t, f):
    t.assertTrue(np.array_equal(f["a"][:], A2))
    t.assertEqual(sorted(f), ["a", "c"])
    t.assertEqual(f["a"].attrs["units"], "m")


def case_base_with_prev(L):
    L[1]["flags"] = F.FLAG_BASE


def case_slot_layer_id_low(L):
    return {"slot_edit": lambda s: s.update(layer_id=1)}


def case_layer_ids_not_decreasing(L):
    L[0]["layer_id"] = 2


def case_layer_id_zero(L):
    L[0]["layer_id"] = 0


def case_block_into_footer(L):
    # Block 0 of layer 2 (codec none) claims 64 more bytes: they run into the footer.
    L[1]["grow_block"] = 64


def case_slot_next_id_low(L):
    return {"slot_edit": lambda s: s.update(next_array_id=3)}


def case_slot_next_id_zero(L):
    return {"slot_edit": lambda s: s.update(next_array_id=0)}


def check_older_state(t, f):
    """The file as of layer 1 (the older slot)."""
    t.assertEqual([x.id for x in f.layers], [1])
    t.assertTrue(np.array_equal(f["a"][:], A))
    t.assertTrue(np.array_equal(f["b"][:], B))


def case_uuid_mismatch(L):
    return {"uuid_b": b"\x42" * 16}


def case_raw_over_limit(L):
    L[1]["blocks"][0]["raw"] = (1 << 30) + 1
    L[1]["blocks"][0]["codec"] = F.CODEC_LZ4


def case_chunk_over_limit(L):
    r = rec(L[1], b"c")
    r["shape"], r["chunk"] = [1 << 28], [1 << 28]          # 2^28 int32 = 2^30 bytes: ok
    r["dtype"] = 4                                          # int64: 2^31 bytes: damage


def case_chunk_at_limit(L):
    r = rec(L[1], b"c")
    r["shape"], r["chunk"] = [1 << 28], [1 << 28]


def check_chunk_at_limit(t, f):
    t.assertEqual(f["c"].shape, (1 << 28,))
    t.assertEqual(f["c"][(1 << 28) - 1], 0)


def case_array_bytes_overflow(L):
    r = rec(L[1], b"c")
    r["shape"], r["chunk"] = [1 << 62], [1 << 20]           # 2^62 elements x 4 bytes


def case_next_id_decreases(L):
    L[0]["next_array_id"] = 5
    L[1]["next_array_id"] = 4
    return {"slot_edit": lambda s: s.update(next_array_id=5)}


def case_define_unknown_reused_id(L):
    L[0]["next_array_id"] = 4       # id 3 counts as used before layer 2 defines it


def case_name_taken(L):
    rec(L[1], b"c")["name"] = b"a"


def case_rename_to_deleted_name(L):
    # b is deleted in layer 2 after c's DEFINE: move the DELETE first, then c may take
    # the free name "b".
    L[1]["arrays"].sort(key=lambda r: r["kind"] != F.KIND_DELETE)
    rec(L[1], b"c")["name"] = b"b"


def check_rename_to_deleted_name(t, f):
    t.assertEqual(sorted(f), ["a", "b"])
    t.assertEqual(f["b"].dtype, np.dtype("int32"))


def _redefine_a(L, **change):
    r = dict(rec(L[0], b"a"))
    r.update(change)
    L[1]["arrays"].append(r)


def case_redefine_dtype(L):
    _redefine_a(L, dtype=9)         # float32: same size, other type


def case_redefine_shuffle(L):
    _redefine_a(L, flags=rec(L[0], b"a")["flags"] ^ F.ARRAY_SHUFFLE)


def case_redefine_shape(L):
    _redefine_a(L, shape=[12])


def case_redefine_chunk(L):
    _redefine_a(L, chunk=[5])


def case_redefine_ndim(L):
    _redefine_a(L, shape=[10, 1], chunk=[4, 1], dims=[b"dim0", b"dim1"])


def case_redefine_name_dims_fill(L):
    _redefine_a(L, name=b"a2", dims=[b"x"], fill=struct.pack("<i", 7) + bytes(4))
    # c: defined, then defined again with another fill in the same layer.
    r = dict(rec(L[1], b"c"))
    r["fill"] = struct.pack("<i", -5) + bytes(4)
    L[1]["arrays"].append(r)


def check_redefine_name_dims_fill(t, f):
    t.assertEqual(sorted(f), ["a2", "c"])
    t.assertEqual(f["a2"].dims, ("x",))
    t.assertEqual(f["a2"].fill, 7)
    t.assertTrue(np.array_equal(f["a2"][:], A2))   # older chunks stay
    t.assertEqual(f["a2"].attrs["units"], "m")
    t.assertTrue(np.array_equal(f["c"][:], np.full(10, -5, np.int32)))


def case_define_deleted(L):
    L[1]["arrays"].append(dict(rec(L[0], b"b")))


def case_delete_deleted(L):
    d = next(r for r in L[1]["arrays"] if r["kind"] == F.KIND_DELETE)
    L[1]["arrays"].append(dict(d))


def case_delete_unknown(L):
    L[1]["next_array_id"] = 5
    d = dict(next(r for r in L[1]["arrays"] if r["kind"] == F.KIND_DELETE))
    d["id"] = 4
    L[1]["arrays"].append(d)


def case_chunk_of_deleted(L):
    a1 = [c for c in L[0]["chunks"] if c[0] == 2][0]
    L[1]["blocks"].append(L[0]["blocks"][a1[2]])
    L[1]["chunks"].append([2, 0, len(L[1]["blocks"]) - 1, a1[3], a1[4]])
    L[1]["chunks"].sort()


def case_attr_of_deleted(L):
    L[1]["attrs"].append([2, b"late", 5, 1, b"x"])


def case_duplicate_keys(L):
    L[0]["attrs"].append([1, b"units", 5, 2, b"km"])
    L[0]["attrs"].append([0, b"title", 5, 2, b"t2"])
    L[1]["attrs"].append([F.SCOPE_LAYER, b"note", 5, 1, b"1"])
    L[1]["attrs"].append([F.SCOPE_LAYER, b"note", 5, 1, b"2"])


def check_duplicate_keys(t, f):
    t.assertEqual(f["a"].attrs["units"], "km")
    t.assertEqual(f.attrs["title"], "t2")
    t.assertEqual(f.layers[1].attrs["note"], "2")


def _bool_layer(L):
    """A third layer: flag bool [5] chunk 5 written with bytes 0, 2, 1, 255, 0 (codec
    none), and flag2 bool [8] chunk 4 never written, its fill byte 2, and a BOOL file
    attribute of bytes 2, 0."""
    raw = bytes([0, 2, 1, 255, 0])
    L.append({"layer_id": 3, "time_ns": 0, "nranks": 1, "flags": 0, "next_array_id": 6,
              "arrays": [
                  {"id": 4, "kind": 1, "flags": 1, "dtype": 0, "name": b"flag",
                   "fill": bytes(8), "shape": [5], "chunk": [5], "dims": [b"dim0"]},
                  {"id": 5, "kind": 1, "flags": 1, "dtype": 0, "name": b"flag2",
                   "fill": b"\x02" + bytes(7), "shape": [8], "chunk": [4], "dims": [b"dim0"]}],
              "blocks": [{"data": raw, "raw": 5, "codec": 0, "rank": 0}],
              "chunks": [[4, 0, 0, 0, 5]],
              "attrs": [[0, b"flags", 0, 2, b"\x02\x00"]]})


def case_bool_bytes(L):
    _bool_layer(L)


def check_bool_bytes(t, f):
    v = f["flag"][:]
    t.assertEqual(v.dtype, np.dtype(bool))
    t.assertEqual(v.view(np.uint8).tolist(), [0, 1, 1, 1, 0])
    w = f["flag2"][:]
    t.assertEqual(w.view(np.uint8).tolist(), [1] * 8)
    t.assertIs(f["flag2"].fill, True)
    t.assertEqual(np.asarray(f.attrs["flags"]).view(np.uint8).tolist(), [1, 0])
    t.assertEqual(f["flag"][1].item(), True)


def _zstd_a(L, stored):
    """Layer 1's block holding a's chunks, replaced by stored (codec zstd)."""
    blk = [c for c in L[0]["chunks"] if c[0] == 1][0][2]
    raw = L[0]["blocks"][blk]["data"]
    L[0]["blocks"][blk].update(data=stored(raw), codec=F.CODEC_ZSTD)


def case_zstd_one_frame(L):
    _zstd_a(L, lambda raw: zstandard.ZstdCompressor().compress(raw))


def case_zstd_no_content_size(L):
    _zstd_a(L, lambda raw: zstandard.ZstdCompressor(write_content_size=False).compress(raw))


def check_layer1_a(t, f):
    t.assertTrue(np.array_equal(f["a"][:], A2))
    t.assertTrue(np.array_equal(afmt.open(f.path, layer=1)["a"][:], A))


def case_zstd_two_frames(L):
    # Without content sizes, so that only the frame count is wrong.
    c = zstandard.ZstdCompressor(write_content_size=False)
    _zstd_a(L, lambda raw: c.compress(raw[:8]) + c.compress(raw[8:]))


def case_zstd_trailing_bytes(L):
    _zstd_a(L, lambda raw: zstandard.ZstdCompressor().compress(raw) + b"\0")


def case_zstd_skippable_first(L):
    skip = b"\x50\x2a\x4d\x18" + struct.pack("<I", 4) + b"skip"
    _zstd_a(L, lambda raw: skip + zstandard.ZstdCompressor().compress(raw))


def case_zstd_content_size(L):
    _zstd_a(L, lambda raw: zstandard.ZstdCompressor().compress(raw[:-1]))


def case_lz4_bomb(L):
    # A 1 GiB block (the limit) that 40 stored bytes cannot expand to.
    blk = [c for c in L[0]["chunks"] if c[0] == 1][0][2]
    L[0]["blocks"][blk].update(data=bytes(40), raw=1 << 30, codec=F.CODEC_LZ4)


CORRUPT_ON_READ = {"zstd_two_frames", "zstd_trailing_bytes", "zstd_skippable_first",
                   "zstd_content_size", "lz4_bomb"}

CASES = [
    ("roundtrip", case_roundtrip, check_roundtrip),
    ("base_with_prev", case_base_with_prev, "BASE layer has a previous footer"),
    ("slot_layer_id_low", case_slot_layer_id_low, "layer id 2, out of order"),
    ("layer_ids_not_decreasing", case_layer_ids_not_decreasing, "layer id 2, out of order"),
    ("layer_id_zero", case_layer_id_zero, "layer id 0, out of order"),
    ("block_into_footer", case_block_into_footer, "is not inside the layer's data"),
    ("slot_next_id_low", case_slot_next_id_low, "next_array_id 3 is below the newest"),
    ("slot_next_id_zero", case_slot_next_id_zero, check_older_state),
    ("uuid_mismatch", case_uuid_mismatch, "different files"),
    ("raw_over_limit", case_raw_over_limit, "raw size 1073741825 over the limit"),
    ("chunk_over_limit", case_chunk_over_limit, "exceed the limits"),
    ("chunk_at_limit", case_chunk_at_limit, check_chunk_at_limit),
    ("array_bytes_overflow", case_array_bytes_overflow, "exceed the limits"),
    ("next_id_decreases", case_next_id_decreases, "next_array_id 4 is below the previous"),
    ("define_unknown_reused_id", case_define_unknown_reused_id, "below next_array_id 4"),
    ("name_taken", case_name_taken, "name 'a' is taken by array 1"),
    ("rename_to_deleted_name", case_rename_to_deleted_name, check_rename_to_deleted_name),
    ("redefine_dtype", case_redefine_dtype, "redefines array 1"),
    ("redefine_shuffle", case_redefine_shuffle, "redefines array 1"),
    ("redefine_shape", case_redefine_shape, "redefines array 1"),
    ("redefine_chunk", case_redefine_chunk, "redefines array 1"),
    ("redefine_ndim", case_redefine_ndim, "redefines array 1"),
    ("redefine_name_dims_fill", case_redefine_name_dims_fill, check_redefine_name_dims_fill),
    ("define_deleted", case_define_deleted, "defines array 2, which was deleted"),
    ("delete_deleted", case_delete_deleted, "deletes array 2, which is already deleted"),
    ("delete_unknown", case_delete_unknown, "deletes array 4, which was never defined"),
    ("chunk_of_deleted", case_chunk_of_deleted, "chunk 0 of deleted array id 2"),
    ("attr_of_deleted", case_attr_of_deleted, "'late' of deleted array id 2"),
    ("duplicate_keys", case_duplicate_keys, check_duplicate_keys),
    ("bool_bytes", case_bool_bytes, check_bool_bytes),
    ("zstd_one_frame", case_zstd_one_frame, check_layer1_a),
    ("zstd_no_content_size", case_zstd_no_content_size, check_layer1_a),
    ("zstd_two_frames", case_zstd_two_frames, "not exactly one frame"),
    ("zstd_trailing_bytes", case_zstd_trailing_bytes, "not exactly one frame"),
    ("zstd_skippable_first", case_zstd_skippable_first, "not a zstd frame"),
    ("zstd_content_size", case_zstd_content_size, "its frame says"),
    ("lz4_bomb", case_lz4_bomb, "cannot expand that far"),
]


def build(path, edit):
    """base_file at path, loaded, edited and saved again."""
    base_file(path)
    layers, uuid = craft.load(path)
    kw = edit(layers) or {}
    # save() lays the blocks out itself: a block that claims more stored bytes than it
    # has is made afterwards, in place, and re-sealed.
    grow = layers[1].pop("grow_block", 0)
    if grow:
        info = craft.save(path, layers, uuid, **kw)
        fo, fl = info["footers"][1]
        with open(path, "r+b") as fh:
            data = bytearray(fh.read())
        fb = data[fo:fo + fl]
        hs, = struct.unpack_from("<I", fb, 12)
        arrays_size, = struct.unpack_from("<Q", fb, 104)
        b0 = hs + arrays_size
        stored, raw = struct.unpack_from("<2Q", fb, b0 + 8)
        struct.pack_into("<2Q", data, fo + b0 + 8, stored + grow, raw + grow)
        with open(path, "wb") as fh:
            fh.write(data)
        craft.reseal_footer(path, fo, fl)
        return
    craft.save(path, layers, uuid, **kw)


def libafmt_has_the_rules():
    """libafmt of this build applies format.md section 16 (its afmt_define refuses a
    chunk over 2^30 bytes); an older one decides some cases differently."""
    p = util.path("probe")
    try:
        with afmt.create(p) as w:
            try:
                w.define("x", "int64", (1 << 28,), chunks=(1 << 28,))
            except afmt.AfmtError:
                return True
            w.discard()
        return False
    finally:
        for q in (p, p + ".lock"):
            if os.path.exists(q):
                os.unlink(q)


class Crafted(unittest.TestCase):
    def setUp(self):
        self.p = util.path("craft")

    def tearDown(self):
        for q in (self.p, self.p + ".lock"):
            if os.path.exists(q):
                os.unlink(q)

    def open_all(self, path):
        """Opens path and reads every array whole (raises what the reader raises)."""
        f = afmt.open(path)
        for name in f:
            f[name][...]
        return f

    def test_rules(self):
        """Each rule: the crafted file is damaged (CorruptError with the rule's message)
        or opens with the values the rule says."""
        for name, edit, want in CASES:
            if name.startswith("zstd") and zstandard is None:
                continue
            with self.subTest(case=name):
                build(self.p, edit)
                if callable(want):
                    f = self.open_all(self.p)
                    want(self, f)
                    f.close()
                    continue
                with self.assertRaisesRegex(afmt.CorruptError, want):
                    self.open_all(self.p)

    def test_same_decisions_as_libafmt(self):
        """libafmt decides every crafted file as the Python reader does: damaged, or
        the same values."""
        if not libafmt_has_the_rules():
            self.skipTest("this libafmt predates the rules of format.md section 16")
        for name, edit, want in CASES:
            if name.startswith("zstd") and zstandard is None:
                continue
            with self.subTest(case=name):
                build(self.p, edit)
                if callable(want):
                    f = afmt.open(self.p)
                    c = afmt.CReader(self.p)
                    try:
                        for n in f:
                            a = f[n]
                            got = c.read(n, [0] * a.ndim, a.shape, a.dtype) if a.size < (
                                1 << 20) else None
                            if got is not None:
                                self.assertEqual(got.tobytes(), a[...].tobytes(), n)
                    finally:
                        c.close()
                    continue
                with self.assertRaises(afmt.CorruptError):
                    c = afmt.CReader(self.p)
                    try:
                        if name in CORRUPT_ON_READ:
                            c.read("a", [0], [10], "int32")
                    finally:
                        c.close()

    def test_decompression_bomb_allocates_nothing(self):
        build(self.p, case_lz4_bomb)
        f = afmt.open(self.p)
        tracemalloc.start()
        try:
            t0 = time.time()
            with self.assertRaises(afmt.CorruptError):
                f["a"][:]
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertLess(peak, 16 << 20)
        self.assertLess(time.time() - t0, 5)

    def test_truncated_falls_back_to_the_older_slot(self):
        """A file shorter than the newest slot's eof (but holding the older commit): the
        newest slot is not usable and the older one is read; shorter than both: damage."""
        base_file(self.p)
        f = afmt.open(self.p)
        self.assertEqual(len(f.layers), 2)
        f.close()
        layers, uuid = craft.load(self.p)
        info = craft.save(self.p, layers, uuid)
        os.truncate(self.p, info["eof"] - 1)
        check_older_state(self, self.open_all(self.p))
        fo, fl = info["footers"][0]
        os.truncate(self.p, fo + fl + 31)
        with self.assertRaisesRegex(afmt.CorruptError, "no valid slot.*the file has only"):
            afmt.open(self.p)


class OpenDuringCommit(unittest.TestCase):
    """A commit that lands between any two I/O calls of an open: the reader sees the old
    or the new state, never a false 'truncated' (format.md 3.3: slots, then size)."""

    def setUp(self):
        self.p = util.path("race")

    def tearDown(self):
        for q in (self.p, self.p + ".lock"):
            if os.path.exists(q):
                os.unlink(q)

    def test_commit_at_every_point(self):
        with afmt.create(self.p) as w:
            w.define("v", "int64", (100,), chunks=(10,))
            w.write("v", np.arange(100))
        with open(self.p, "rb") as fh:
            old = fh.read()
        with afmt.append(self.p) as w:
            w.write("v", -np.arange(100))
        with open(self.p, "rb") as fh:
            new = fh.read()
        # The commit as a writer does it: data and footer past the old end, then the
        # slot. Slot bytes are the only bytes below the old end that change.
        diff = [i for i in range(len(old)) if old[i] != new[i]]
        self.assertTrue(diff and max(diff) < F.SUPER_REGION)
        real_os = R.os
        for data_at in range(6):
            for slot_at in range(data_at, 7):
                with open(self.p, "wb") as fh:
                    fh.write(old)
                calls = [0]

                class Hooked:
                    def __getattr__(self, name):
                        fn = getattr(real_os, name)
                        if name not in ("pread", "fstat"):
                            return fn

                        def call(*a):
                            for step, at in (("data", data_at), ("slot", slot_at)):
                                if calls[0] == at:
                                    with open(tpath, "r+b") as fh:
                                        if step == "data":
                                            fh.seek(len(old))
                                            fh.write(new[len(old):])
                                        else:
                                            fh.write(new[:F.SUPER_REGION])
                            calls[0] += 1
                            return fn(*a)
                        return call

                tpath = self.p
                R.os = Hooked()
                try:
                    f = afmt.open(self.p)
                    v = f["v"][:]
                    f.close()
                finally:
                    R.os = real_os
                with self.subTest(data_at=data_at, slot_at=slot_at):
                    self.assertTrue(np.array_equal(v, np.arange(100)) or
                                    np.array_equal(v, -np.arange(100)))


class Names(unittest.TestCase):
    def setUp(self):
        self.p = util.path("names")

    def tearDown(self):
        for q in (self.p, self.p + ".lock"):
            if os.path.exists(q):
                os.unlink(q)

    def test_names_that_are_not_utf8_stay_distinct(self):
        names = [b"bad\xff", b"bad\xfe", "bad\u00ff".encode(), b"ok"]
        with afmt.create(self.p) as w:
            for i, n in enumerate(names):
                w.define(n, "int16", (3,), dims=(b"d\xff",))
                w.write(n, np.full(3, i, np.int16))
                w.set_attr(n, b"k\xfe", "v")
        f = afmt.open(self.p)
        self.assertEqual(len(f), 4)
        self.assertEqual(list(f), ["bad\udcff", "bad\udcfe", "bad\u00ff", "ok"])
        for i, n in enumerate(names):
            s = n.decode("utf-8", "surrogateescape")
            self.assertEqual(f[n][:].tolist(), [i] * 3)        # by bytes
            self.assertEqual(f[s][:].tolist(), [i] * 3)        # by str
            self.assertEqual(f[s].name.encode("utf-8", "surrogateescape"), n)
            self.assertEqual(f[s].dims, ("d\udcff",))
            self.assertEqual(f[s].attrs, {"k\udcfe": "v"})
        c = afmt.CReader(self.p)
        try:
            self.assertEqual(c.read("bad\udcfe", [0], [3], "int16").tolist(), [1] * 3)
        finally:
            c.close()


class Fuzz(unittest.TestCase):
    """Random edits of header and record fields, every checksum re-sealed: the reader
    either reads the file or raises an afmt error, never anything else (ValueError,
    struct.error, IndexError, MemoryError, OverflowError, ...)."""

    VALUES = (0, 1, 2, 3, 7, 8, 48, 176, 4095, 4096, 4097, (1 << 30), (1 << 30) + 1,
              (1 << 31), (1 << 32) - 1, (1 << 32), (1 << 62), (1 << 63), (1 << 64) - 1)

    def setUp(self):
        self.p = util.path("fuzz")

    def tearDown(self):
        for q in (self.p, self.p + ".lock"):
            if os.path.exists(q):
                os.unlink(q)

    def _value(self, rng, old, bits):
        top = (1 << bits) - 1
        v = rng.choice(self.VALUES + (old + 1, old - 1, old * 2, rng.getrandbits(bits)))
        return v & top

    def test_field_edits(self):
        base_file(self.p, codec="lz4")
        layers, uuid = craft.load(self.p)
        info = craft.save(self.p, layers, uuid)
        with open(self.p, "rb") as fh:
            clean = fh.read()
        rng = random.Random(11)
        outcomes = {}
        for it in range(400):
            data = bytearray(clean)
            k = rng.randrange(len(info["footers"]))
            fo, fl = info["footers"][k]
            # A u64 or u32 field at a random 4-byte aligned place of the footer body (or of
            # the newest slot), then every checksum re-sealed.
            if rng.random() < 0.15:
                off, width = rng.choice([(40, 8), (48, 8), (64, 8), (72, 8), (80, 8),
                                         (88, 8), (8, 4)])
                slot = 0 if struct.unpack_from("<Q", data, 32)[0] > struct.unpack_from(
                    "<Q", data, 2048 + 32)[0] else 2048
                pos = slot + off
            else:
                width = rng.choice((4, 8))
                pos = fo + rng.randrange(0, (fl - 8 - width) // 4 + 1) * 4
            old = int.from_bytes(data[pos:pos + width], "little")
            data[pos:pos + width] = self._value(rng, old, 8 * width).to_bytes(width, "little")
            with open(self.p, "wb") as fh:
                fh.write(data)
            if pos >= F.SUPER_REGION:
                craft.reseal_footer(self.p, fo, fl)
            else:
                s = pos - pos % 2048
                with open(self.p, "r+b") as fh:
                    b = bytearray(fh.read())
                    b[s + 120:s + 128] = struct.pack("<Q", F.checksum(bytes(b[s:s + 120])))
                    fh.seek(0)
                    fh.write(b)
            try:
                f = afmt.open(self.p)
                try:
                    for name in f:
                        f[name][...]
                finally:
                    f.close()
                outcome = "ok"
            except afmt.AfmtError as e:
                outcome = type(e).__name__
            except Exception as e:  # noqa: BLE001 - the point of the test
                self.fail("iteration %d, %d bytes at %d: %s: %s" % (it, width, pos,
                                                                    type(e).__name__, e))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        self.assertGreater(outcomes.get("CorruptError", 0), 100, outcomes)


if __name__ == "__main__":
    unittest.main()
