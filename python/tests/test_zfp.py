"""Per-array compression (issue 15) in the Python package: ZFP blocks (codec 3, docs/
format.md section 8) and the codec fields of a version-2 array record (section 6).

Files whose ZFP blocks v2craft.py writes from the document (zfpy.compress_numpy for each
chunk) read through the pure-Python reader bit for bit as zfpy decodes each block alone,
and as libafmt reads them; damaged ZFP blocks and damaged codec parameters are refused
where libafmt refuses them. Files written through libafmt with a ZFP or bit-rounding
setting (ZFP blocks, and values whose dropped mantissa bits are zero) read the same
through Python and through afmt_read, every value within the array's bound. Needs zfpy
(Debian: python3-zfpy); skipped without it."""

import math
import os
import struct
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import afmt  # noqa: E402
import util  # noqa: E402
import v2craft as V  # noqa: E402
from afmt import _format as F  # noqa: E402
from afmt import _reader as R  # noqa: E402

try:
    import zfpy
except ImportError:  # pragma: no cover
    zfpy = None

# (shape, chunk): 1-D to 5-D with edge chunks in every dimension, and a scalar.
SHAPES = [((37,), (8,)), ((9, 13), (4, 5)), ((5, 6, 7), (2, 4, 3)),
          ((3, 5, 6, 7), (2, 2, 4, 5)), ((3, 2, 5, 4, 6), (2, 2, 3, 4, 4)), ((), ())]


def smooth(shape, dtype, seed):
    """A smooth field with a little noise, scaled so that errors are visible."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if shape else 1
    base = np.sin(np.arange(n) * 0.05) * 100 + rng.normal(0, 0.5, n)
    return base.reshape(shape).astype(dtype)


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def params(level=0, filt=0, keep=0, mode=0, param=0.0, layout=1, size=32):
    """Section 6: the 32 bytes of codec parameters, layout 1 (size: cut or padded)."""
    b = struct.pack("<Ii3IId", layout, level, filt, keep, mode, 0, param)
    return b[:size] + bytes(max(0, size - len(b)))


def zfp_expected(values, chunk, **zfp):
    """What each ZFP block decodes to alone (zfpy), put together: the array a reader must
    return, bit for bit."""
    out = np.empty_like(values)
    nch = [-(-s // c) for s, c in zip(values.shape, chunk)]
    for idx in range(int(np.prod(nch)) if nch else 1):
        stored, _raw = V.zfp_block(values, chunk, idx, **zfp)
        k = V._coord(values.shape, chunk, idx)
        sel = tuple(slice(kk * c, min((kk + 1) * c, s)) for kk, c, s in
                    zip(k, chunk, values.shape))
        part = zfpy.decompress_numpy(stored)
        if sel:
            out[sel] = part.reshape(out[sel].shape)
        else:
            out[()] = part.reshape(())
    return out


@unittest.skipIf(zfpy is None, "zfpy missing (apt-get install python3-zfpy)")
class ZfpFiles(unittest.TestCase):
    c_zfp = None     # whether libafmt reads and writes ZFP (probed once)

    def setUp(self):
        self.paths = []

    def tearDown(self):
        for p in self.paths:
            for q in (p, p + ".lock"):
                if os.path.exists(q):
                    os.unlink(q)

    def path(self, tag):
        p = util.path("zfp-" + tag)
        self.paths.append(p)
        return p

    def craft(self, layers, tag="f"):
        p = self.path(tag)
        V.write(p, layers)
        return p

    def need_c_zfp(self):
        """Skips unless libafmt has the ZFP codec (built with libzfp-dev)."""
        if ZfpFiles.c_zfp is None:
            p = self.path("probe")
            try:
                with afmt.create(p) as w:
                    w.define("x", "float64", (4,), zfp="reversible")
                ZfpFiles.c_zfp = True
            except afmt.CodecError:
                ZfpFiles.c_zfp = False
        if not ZfpFiles.c_zfp:
            self.skipTest("this libafmt was built without ZFP")

    def c_read_all(self, path, name, shape, dtype):
        c = afmt.CReader(path)
        try:
            return c.read(name, [0] * len(shape), shape, dtype)
        finally:
            c.close()


# ---- ZFP blocks written from the document ----------------------------------------------

class TestCrafted(ZfpFiles):
    def crafted(self, shape, chunk, dtype, seed=0, **zfp):
        a = smooth(shape, dtype, seed)
        L = V.Layer(layer_id=1, nranks=2, next_array_id=2)
        mode, param = {"tolerance": (1, zfp.get("tolerance")), "rate": (3, zfp.get("rate")),
                       "precision": (2, zfp.get("precision"))}.get(
                           next(iter(zfp), None), (4, 0.0))
        L.define(1, "z", dtype, shape, chunk, codec=F.CODEC_ZFP,
                 params=params(mode=mode, param=float(param)))
        n = int(np.prod([-(-s // c) for s, c in zip(shape, chunk)])) if shape else 1
        # Two writers, so that the blocks are in two segments.
        L.put_zfp(0, 1, a, chunk, range(0, n, 2), **zfp)
        L.put_zfp(1, 1, a, chunk, range(1, n, 2), **zfp)
        return a, L

    def test_every_rank_and_mode(self):
        modes = [{"tolerance": 1e-3}, {"tolerance": 0.5}, {"precision": 12}, {"rate": 6},
                 {}]
        for shape, chunk in SHAPES:
            for dtype in ("float32", "float64"):
                for zfp in modes:
                    with self.subTest(shape=shape, dtype=dtype, zfp=zfp):
                        a, L = self.crafted(shape, chunk, dtype, **zfp)
                        p = self.craft([L])
                        want = zfp_expected(a, chunk, **zfp)
                        with afmt.open(p) as f:
                            got = f["z"][...]
                            self.assertTrue(same(got, want))
                            if "tolerance" in zfp:
                                err = np.abs(got.astype(np.float64) - a.astype(np.float64))
                                self.assertLessEqual(err.max(), zfp["tolerance"])
                            if not zfp:           # reversible: lossless
                                self.assertTrue(same(got, a))
                            if shape:             # a piece across chunk edges
                                sel = tuple(slice(1, s) for s in shape)
                                self.assertTrue(same(f["z"][sel], want[sel]))
                            info = f["z"].codec_info
                        self.assertEqual(info["codec_name"], "zfp")
                        self.assertEqual(info["zfp_mode"], {1e-3: "accuracy", 0.5: "accuracy"}
                                         .get(zfp.get("tolerance"), "precision" if "precision"
                                              in zfp else "rate" if "rate" in zfp
                                              else "reversible"))
                        os.unlink(p)

    def test_integer_fields(self):
        """Section 8: int32 and int64 fields (reversible) decode too."""
        for dtype in ("int32", "int64"):
            a = (smooth((9, 13), "float64", 3) * 1000).astype(dtype)
            L = V.Layer(layer_id=1, nranks=1, next_array_id=2)
            L.define(1, "i", dtype, a.shape, (4, 5))
            L.put_zfp(0, 1, a, (4, 5), range(9))
            p = self.craft([L], tag=dtype)
            with afmt.open(p) as f:
                self.assertTrue(same(f["i"][...], a))

    def test_same_as_libafmt(self):
        self.need_c_zfp()
        for shape, chunk in SHAPES:
            for dtype, zfp in (("float32", {"tolerance": 1e-2}), ("float64", {"rate": 9}),
                               ("float64", {})):
                with self.subTest(shape=shape, dtype=dtype, zfp=zfp):
                    a, L = self.crafted(shape, chunk, dtype, seed=5, **zfp)
                    p = self.craft([L])
                    with afmt.open(p) as f:
                        got = f["z"][...]
                        info = f["z"].codec_info
                    self.assertTrue(same(got, self.c_read_all(p, "z", shape, dtype)))
                    c = afmt.CReader(p)
                    try:
                        self.assertEqual(c.codec_info("z"), info)
                    finally:
                        c.close()
                    os.unlink(p)

    def test_zfp_among_other_codecs(self):
        """A layer whose ZFP blocks sit between LZ4 and zstd blocks of other arrays."""
        a = smooth((20, 6), "float64", 1)
        t = np.arange(60, dtype=np.int32).reshape(10, 6)
        L = V.Layer(layer_id=1, nranks=1, next_array_id=3)
        L.define(1, "t", "int32", t.shape, (4, 6), shuffle=True)
        L.define(2, "z", "float64", a.shape, (8, 4))
        L.put_array(0, 1, t, (4, 6), [0], shuffle=True, codec=F.CODEC_LZ4)
        L.put_zfp(0, 2, a, (8, 4), range(6), tolerance=1e-4)
        L.put_array(0, 1, t, (4, 6), [1, 2], shuffle=True, codec=F.CODEC_ZSTD)
        p = self.craft([L])
        with afmt.open(p) as f:
            self.assertTrue(same(f["t"][...], t))
            self.assertTrue(same(f["z"][...], zfp_expected(a, (8, 4), tolerance=1e-4)))
            self.assertIsNone(f["z"].codec)      # the record says nothing: blocks decide


class TestDamage(ZfpFiles):
    def one_block(self, edit=None, tag="d"):
        """z float64 (10,) chunk (6,): two ZFP blocks (accuracy); edit(blocks) may change
        the stored bytes of the writer's blocks before they are written (their checksums
        are computed after)."""
        a = smooth((10,), "float64", 2)
        L = V.Layer(layer_id=1, nranks=1, next_array_id=2)
        L.define(1, "z", "float64", a.shape, (6,))
        L.put_zfp(0, 1, a, (6,), [0, 1], tolerance=1e-3)
        if edit:
            edit(L.writers[0])
        return self.craft([L], tag=tag), a

    def assertBothRefuse(self, p, regex, err=afmt.CorruptError, c_too=True):
        with afmt.open(p) as f:
            with self.assertRaisesRegex(err, regex):
                f["z"][...]
        if c_too and ZfpFiles.c_zfp:
            with self.assertRaises(err):
                self.c_read_all(p, "z", (10,), "float64")

    def test_flipped_byte_fails_its_checksum(self):
        p, _ = self.one_block(tag="flip")
        with afmt.open(p) as f:
            f["z"][...]
            blk = f._lookup(f["z"]._m.id, 1)[0]
        with open(p, "r+b") as fh:
            fh.seek(blk[0] + blk[1] // 2)
            b = fh.read(1)
            fh.seek(blk[0] + blk[1] // 2)
            fh.write(bytes([b[0] ^ 0x10]))
        self.c_zfp_probe()
        self.assertBothRefuse(p, "array 'z' chunk 1 .* fails its checksum")
        with afmt.open(p) as f:       # the other chunk still reads
            self.assertEqual(f["z"][:6].shape, (6,))

    def c_zfp_probe(self):
        try:
            self.need_c_zfp()
        except unittest.SkipTest:
            pass

    def test_streams_that_pass_their_checksum(self):
        """Damage a checksum cannot see (a writer's bug, a crafted file): section 8's rules
        on the stored bytes themselves."""
        self.c_zfp_probe()

        def swap(ws):           # chunk 1 (4 values) holds chunk 0's stream (6 values)
            ws[1]["stored"] = ws[0]["stored"]
        p, _ = self.one_block(swap, tag="swap")
        self.assertBothRefuse(p, "the ZFP header names 6 values of 8 bytes, not 32 bytes")

        def magic(ws):
            ws[1]["stored"] = b"zfq" + ws[1]["stored"][3:]
        p, _ = self.one_block(magic, tag="magic")
        self.assertBothRefuse(p, "not a ZFP 1.0 stream")

        def version(ws):
            ws[1]["stored"] = b"zfp\x04" + ws[1]["stored"][4:]
        p, _ = self.one_block(version, tag="version")
        self.assertBothRefuse(p, "not a ZFP 1.0 stream")

        def longer(ws):
            ws[1]["stored"] = ws[1]["stored"] + bytes(4096)
        p, _ = self.one_block(longer, tag="longer")
        self.assertBothRefuse(p, "longer than the \\d+ bytes its ZFP header allows")

        def short(ws):           # cut short: decoded from zeros, never past the copy
            ws[1]["stored"] = ws[1]["stored"][:12]
        p, _ = self.one_block(short, tag="short")
        with afmt.open(p) as f:
            try:
                got = f["z"][...]
            except afmt.CorruptError:
                got = None
        if ZfpFiles.c_zfp:      # libafmt decides the same: refuses it, or reads the same
            try:
                want = self.c_read_all(p, "z", (10,), "float64")
            except afmt.CorruptError:
                want = None
            self.assertEqual(got is None, want is None)
            if got is not None:
                self.assertTrue(same(got, want))

    def test_zfpy_missing(self):
        p, a = self.one_block(tag="nozfpy")
        saved, had = R._zfpy, sys.modules.get("zfpy")
        R._zfpy = None
        sys.modules["zfpy"] = None          # import zfpy raises ImportError
        try:
            with afmt.open(p) as f:
                with self.assertRaisesRegex(afmt.CodecError, "array 'z' chunk 0 .*python3-zfpy"):
                    f["z"][...]
            # The checksum comes first: a damaged block is damaged even without zfpy.
            with afmt.open(p) as f:
                blk = f._lookup(f["z"]._m.id, 0)[0]
            with open(p, "r+b") as fh:
                fh.seek(blk[0] + 5)
                b = fh.read(1)
                fh.seek(blk[0] + 5)
                fh.write(bytes([b[0] ^ 1]))
            with afmt.open(p) as f:
                with self.assertRaisesRegex(afmt.CorruptError, "fails its checksum"):
                    f["z"][...]
        finally:
            R._zfpy = saved
            if had is None:
                del sys.modules["zfpy"]
            else:
                sys.modules["zfpy"] = had


# ---- the codec fields of the array record ---------------------------------------------

class TestParams(ZfpFiles):
    def with_params(self, codec, pb, dtype="float64", tag="p"):
        a = smooth((10,), dtype, 4)
        L = V.Layer(layer_id=1, nranks=1, next_array_id=2)
        L.define(1, "z", dtype, a.shape, (4,), codec=codec, params=pb)
        L.put_array(0, 1, a, (4,), range(3), codec=F.CODEC_ZSTD)
        return self.craft([L], tag=tag), a

    def c_info(self, p):
        c = afmt.CReader(p)
        try:
            return c.codec_info("z")
        finally:
            c.close()

    def test_parsed(self):
        cases = [
            (F.CODEC_ZFP, params(mode=1, param=1e-4),
             dict(codec=3, codec_name="zfp", zfp_mode="accuracy", zfp_param=1e-4,
                  abs_bound=1e-4)),
            (F.CODEC_ZFP, params(mode=2, param=20), dict(zfp_mode="precision", zfp_param=20)),
            (F.CODEC_ZFP, params(mode=3, param=8), dict(zfp_mode="rate", zfp_param=8)),
            (F.CODEC_ZFP, params(mode=4), dict(zfp_mode="reversible", zfp_param=0)),
            (F.CODEC_ZSTD, params(level=-3, filt=1, keep=10),
             dict(codec=2, codec_name="zstd", level=-3, bitround=10, rel_bound=2.0 ** -11)),
            (F.CODEC_LZ4, params(), dict(codec=1, codec_name="lz4", bitround=0)),
            (300, params(level=7), dict(codec=300, codec_name="codec 300", level=7)),
            (F.CODEC_UNSET, b"", dict(codec=None, codec_name=None)),
        ]
        for codec, pb, want in cases:
            with self.subTest(want=want):
                p, a = self.with_params(codec, pb)
                with afmt.open(p) as f:
                    info = f["z"].codec_info
                    self.assertTrue(same(f["z"][...], a))
                for k, v in want.items():
                    self.assertEqual(info[k], v, k)
                self.assertEqual(self.c_info(p), info)

    def test_damaged_layouts(self):
        """Refused by codec_info where afmt_inquire_codec refuses; reads go on."""
        cases = [
            (F.CODEC_ZFP, params(mode=1, param=1e-3, size=31), "not layout 1"),
            (F.CODEC_ZFP, params(mode=1, param=1e-3, size=33), "not layout 1"),
            (F.CODEC_ZSTD, b"", "of 0 bytes are not layout 1"),
            (F.CODEC_ZFP, params(mode=1, param=1e-3, layout=2), "not layout 1"),
            (F.CODEC_ZSTD, params(filt=2), "not valid"),
            (F.CODEC_ZSTD, params(filt=1), "not valid"),           # bit rounding to 0 bits
            (F.CODEC_ZSTD, params(keep=5), "not valid"),           # bits without the filter
            (F.CODEC_ZSTD, params(filt=1, keep=53), "not valid"),
            (F.CODEC_ZSTD, params(mode=1, param=1.0), "not valid"),  # a ZFP mode, not ZFP
            (F.CODEC_ZFP, params(), "not valid"),                  # ZFP without a mode
            (F.CODEC_ZFP, params(mode=5, param=1.0), "not valid"),
            (F.CODEC_ZFP, params(mode=1, param=math.nan), "not valid"),
            (F.CODEC_ZFP, params(mode=3, param=math.inf), "not valid"),
        ]
        for codec, pb, regex in cases:
            with self.subTest(regex=regex, pb=pb):
                p, a = self.with_params(codec, pb, tag="bad")
                with afmt.open(p) as f:
                    self.assertTrue(same(f["z"][...], a))
                    with self.assertRaisesRegex(afmt.CorruptError, "array 'z': .*" + regex):
                        f["z"].codec_info
                with self.assertRaises(afmt.CorruptError):
                    self.c_info(p)
                self.assertTrue(same(self.c_read_all(p, "z", (10,), "float64"), a))


# ---- files written through libafmt ----------------------------------------------------

class TestLibafmtWrites(ZfpFiles):
    def write(self, arrays, check_bounds=True, tag="w"):
        """arrays: [(name, values, chunk, define keywords)], written through libafmt in
        two pieces each (two writes, so that edge chunks are staged in parts)."""
        p = self.path(tag)
        with afmt.create(p, check_bounds=check_bounds) as w:
            for name, a, chunk, kw in arrays:
                w.define(name, a.dtype, a.shape, chunk, **kw)
                if a.ndim == 0:
                    w.write(name, a)
                    continue
                h = a.shape[0] // 2
                w.write(name, a[:h], start=[0] * a.ndim)
                w.write(name, a[h:], start=[h] + [0] * (a.ndim - 1))
                self.assertEqual(w.codec_info(name)["zfp_mode"],
                                 kw["zfp"][0] if isinstance(kw.get("zfp"), tuple)
                                 else kw.get("zfp"))
        return p

    def check(self, p, arrays):
        """Python reads what libafmt reads, bit for bit, and the codec fields agree."""
        out = {}
        c = afmt.CReader(p)
        try:
            with afmt.open(p) as f:
                for name, a, chunk, kw in arrays:
                    got = f[name][...]
                    self.assertTrue(same(got, c.read(name, [0] * a.ndim, a.shape, a.dtype)),
                                    name)
                    if a.ndim:
                        sel = tuple(slice(1, None, 2) for _ in a.shape)
                        self.assertTrue(same(f[name][sel], np.asarray(got)[sel]), name)
                    info = f[name].codec_info
                    self.assertEqual(info, c.codec_info(name), name)
                    out[name] = (np.asarray(got), info)
        finally:
            c.close()
        return out

    def block_codecs(self, p, name):
        """The codec ids of the blocks holding the chunks of array name."""
        with afmt.open(p) as f:
            a = f[name]
            n = int(np.prod(a._m.nchunks)) if a.shape else 1
            locs = [f._lookup(a._m.id, i) for i in range(n)]
        return {loc[0][4] for loc in locs if loc is not None}

    def test_zfp_accuracy_every_rank(self):
        self.need_c_zfp()
        arrays = []
        for shape, chunk in SHAPES:
            for dtype, tol in (("float32", 1e-2), ("float64", 1e-6)):
                name = "z%d_%s" % (len(shape), dtype)
                arrays.append((name, smooth(shape, dtype, len(shape)), chunk,
                               {"zfp": ("accuracy", tol)}))
        p = self.write(arrays, tag="acc")
        seen = set()
        for name, (got, info) in self.check(p, arrays).items():
            a = next(x[1] for x in arrays if x[0] == name)
            bound = next(x[3]["zfp"][1] for x in arrays if x[0] == name)
            self.assertEqual((info["codec_name"], info["zfp_mode"], info["abs_bound"]),
                             ("zfp", "accuracy", bound))
            err = np.abs(got.astype(np.float64) - a.astype(np.float64))
            self.assertLessEqual(float(err.max()), bound, name)
            # ZFP blocks, or raw ones where ZFP's were not smaller (section 8).
            codecs = self.block_codecs(p, name)
            self.assertLessEqual(codecs, {F.CODEC_NONE, F.CODEC_ZFP}, name)
            seen |= codecs
        self.assertIn(F.CODEC_ZFP, seen)       # libafmt wrote ZFP blocks

    def test_zfp_other_modes(self):
        self.need_c_zfp()
        a = smooth((17, 11), "float64", 7)
        arrays = [("p", a, (8, 4), {"zfp": ("precision", 24)}),
                  ("r", a, (8, 4), {"zfp": ("rate", 12)}),
                  ("x", a, (8, 4), {"zfp": "reversible"})]
        p = self.write(arrays, tag="modes")
        got = self.check(p, arrays)
        self.assertTrue(same(got["x"][0], a))              # reversible: lossless
        # 12 bits of 64: ZFP blocks, raw ones only for the small edge chunks (1 x 3 values).
        self.assertIn(F.CODEC_ZFP, self.block_codecs(p, "r"))
        self.assertLessEqual(self.block_codecs(p, "r"), {F.CODEC_NONE, F.CODEC_ZFP})
        self.assertEqual(got["p"][1]["zfp_param"], 24)
        self.assertEqual(got["r"][1]["zfp_param"], 12)

    def test_bitround(self):
        arrays = []
        for shape, chunk in SHAPES:
            for dtype, keep in (("float32", 7), ("float64", 20)):
                arrays.append(("b%d_%s" % (len(shape), dtype), smooth(shape, dtype, 9), chunk,
                               {"bitround": keep, "codec": "zstd", "level": 3}))
        p = self.write(arrays, tag="br")
        for name, (got, info) in self.check(p, arrays).items():
            a, kw = next((x[1], x[3]) for x in arrays if x[0] == name)
            rel = 2.0 ** -(kw["bitround"] + 1)
            self.assertEqual((info["codec_name"], info["level"], info["bitround"],
                              info["rel_bound"]), ("zstd", 3, kw["bitround"], rel))
            x = a.astype(np.float64)
            err = np.abs(got.astype(np.float64) - x)
            self.assertTrue(np.all(err <= rel * np.abs(x)), name)
            # libafmt rounded: the dropped mantissa bits are zero.
            u = np.atleast_1d(got).view(np.uint32 if a.dtype == np.float32 else np.uint64)
            drop = (23 if a.dtype == np.float32 else 52) - kw["bitround"]
            self.assertFalse(np.any(u & ((1 << drop) - 1)), name)

    def test_check_bounds(self):
        """float32 cannot hold 1e-5 at a magnitude of 1000: check_bounds=True refuses the
        write (CodecError naming the array and the bound); without it the write goes
        through and the error shows in what is read."""
        self.need_c_zfp()
        a = smooth((64, 64), "float32", 1) * 1000
        p = self.path("bounds")
        with afmt.create(p, check_bounds=True) as w:
            w.define("z", "float32", a.shape, (32, 32), zfp=("accuracy", 1e-5))
            with self.assertRaisesRegex(afmt.CodecError, 'array "z" chunk .*accuracy bound'):
                w.write("z", a)
        with afmt.create(p) as w:
            w.define("z", "float32", a.shape, (32, 32), zfp=("accuracy", 1e-5))
            w.write("z", a)
        with afmt.open(p) as f:
            self.assertGreater(float(np.abs(f["z"][...] - a).max()), 1e-5)

    def test_lossless_settings(self):
        a = np.arange(60, dtype=np.int32).reshape(6, 10)
        arrays = [("s", a, (4, 4), {"shuffle": False, "codec": "lz4"}),
                  ("n", a, (4, 4), {"codec": "none"}),
                  ("d", a, (4, 4), {})]
        p = self.write(arrays, check_bounds=False, tag="lossless")
        got = self.check(p, arrays)
        for name in "snd":
            self.assertTrue(same(got[name][0], a))
        self.assertEqual((got["s"][1]["codec_name"], got["s"][1]["shuffle"]), ("lz4", False))
        self.assertEqual(got["n"][1]["codec_name"], "none")
        self.assertIsNone(got["d"][1]["codec"])

    def test_define_errors(self):
        p = self.path("errors")
        with afmt.create(p) as w:
            for bad in (("accuracy",), ("fast", 1), ("rate",), 3):
                with self.assertRaises((ValueError, TypeError)):
                    w.define("x", "float64", (4,), zfp=bad)
            with self.assertRaises(ValueError):
                w.define("x", "float64", (4,), zfp="reversible", codec="zstd")
            with self.assertRaises(ValueError):
                w.define("x", "float64", (4,), level=3)
            with self.assertRaisesRegex(afmt.AfmtError, "bit rounding"):
                w.define("x", "int32", (4,), bitround=5)
            with self.assertRaisesRegex(afmt.AfmtError, "mode 1, parameter -1"):
                w.define("x", "float64", (4,), zfp=("accuracy", -1))


if __name__ == "__main__":
    unittest.main()
