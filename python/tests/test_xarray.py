"""Tests of the xarray backend (afmt/xarray_backend.py): xr.open_dataset(path,
engine="afmt") on files written through libafmt (ctypes writer). Values bit for bit
against the pure-Python reader and what was written, dimension names (stored and
libafmt's defaults), attributes, scalars, layer=K, chunks={} aligned to the afmt chunks,
lazy reads (only the blocks of the chunks a selection touches), open_mfdataset,
drop_variables, the entry point, pickling, errors. Skipped only where xarray is missing
(CI installs python3-xarray and python3-dask: scripts/deps)."""

import importlib.metadata
import os
import pickle
import subprocess
import sys
import threading
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import afmt  # noqa: E402
import afmt._reader as R  # noqa: E402
import util  # noqa: E402

try:
    import xarray as xr
except ImportError:  # pragma: no cover
    xr = None
try:
    import dask  # noqa: F401
except ImportError:  # pragma: no cover
    dask = None

NEED_XR = "xarray missing (apt-get install python3-xarray python3-dask; scripts/deps)"


def same(a, b):
    """Bit for bit: dtype, shape and bytes."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class Counter:
    """Counts the reader's block reads (File._block: block offsets), the bytes it reads
    from the file (_Storage.read) and, of these, the bytes read for blocks (the rest are
    version-2 index segments, read when a lookup first needs them) while active."""

    def __init__(self):
        self.blocks, self.nbytes, self.block_bytes = [], 0, 0
        self._in_block = threading.local()

    def __enter__(self):
        self._block, self._read = R.File._block, R._Storage.read
        me = self

        def block(f, blk, what, whole=False):
            me.blocks.append(blk[0])
            me._in_block.on = True
            try:
                return me._block(f, blk, what, whole)
            finally:
                me._in_block.on = False

        def read(st, off, n):
            me.nbytes += n
            if getattr(me._in_block, "on", False):
                me.block_bytes += n
            return me._read(st, off, n)

        R.File._block, R._Storage.read = block, read
        return self

    def __exit__(self, *exc):
        R.File._block, R._Storage.read = self._block, self._read


@unittest.skipIf(xr is None, NEED_XR)
class TestXarray(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.paths = []
        rng = np.random.default_rng(16)
        cls.t1 = rng.normal(280, 5, (12, 40, 30))
        cls.t2 = cls.t1.copy()
        cls.t2[3:9, 10:33, 4:20] = -1.5
        cls.u = rng.integers(-1000, 1000, (7, 3)).astype(np.int16)
        cls.w = rng.random((7, 3)).astype(np.float32)
        cls.v = np.arange(7, dtype=np.uint64) * 3
        cls.flags = rng.integers(0, 2, 12).astype(bool)
        cls.p = p = cls.path("main")
        # Small blocks (4 KiB, a 2.2 KiB chunk of temperature each): selections touch
        # some blocks only, which the lazy-read tests count.
        with afmt.create(p, codec="lz4", shuffle=True, block_size=4096) as w:
            w.define("temperature", "float64", cls.t1.shape, chunks=(5, 8, 7),
                     dims=("x", "y", "z"))
            w.write("temperature", cls.t1)
            w.set_attr("temperature", "units", "K")
            w.set_attr("temperature", "scale", np.array([1.0, 2.0]))
            w.define("u", "int16", cls.u.shape, chunks=(3, 2))      # dims: dim0, dim1
            w.write("u", cls.u)
            w.define("w", "float32", cls.w.shape, chunks=(7, 3))    # the same shape
            w.write("w", cls.w)
            w.define("v", "uint64", cls.v.shape, chunks=(4,))       # dim0 of length 7
            w.write("v", cls.v)
            w.define("flags", "bool", cls.flags.shape, chunks=(5,), dims=("x",))
            w.write("flags", cls.flags)
            w.define("s", "float32", ())
            w.write("s", np.float32(2.5))
            w.define("never", "int32", (6,), chunks=(4,), dims=("n",), fill=-7)
            w.set_attr(None, "step", np.int64(1))
            w.set_attr(None, "title", "xarray test")
            w.commit()                                               # layer 1
            w.write("temperature", cls.t2[3:9, 10:33, 4:20], start=(3, 10, 4))
            w.set_attr(None, "step", np.int64(2))
            w.set_attr("s", "note", "layer 2")
            w.write("s", np.float32(-1.0))
            w.commit()                                               # layer 2

    @classmethod
    def tearDownClass(cls):
        for p in cls.paths:
            for q in (p, p + ".lock"):
                if os.path.exists(q):
                    os.unlink(q)

    @classmethod
    def path(cls, tag):
        p = util.path("xr-" + tag)
        cls.paths.append(p)
        return p

    def open(self, *args, **kw):
        kw.setdefault("engine", "afmt")
        ds = xr.open_dataset(*args, **kw)
        self.addCleanup(ds.close)
        return ds

    def test_values_dims_attrs(self):
        ds = self.open(self.p)
        f = afmt.open(self.p)
        self.addCleanup(f.close)
        self.assertEqual(list(ds.data_vars), list(f))
        for name in f:
            got = ds[name].values
            self.assertTrue(same(got, np.asarray(f[name][...])), name)
        for name, want in (("temperature", self.t2), ("u", self.u), ("w", self.w),
                           ("v", self.v), ("flags", self.flags),
                           ("never", np.full(6, -7, np.int32))):
            self.assertTrue(same(ds[name].values, want), name)
        self.assertEqual(ds["temperature"].dims, ("x", "y", "z"))
        self.assertEqual(ds["flags"].dims, ("x",))
        self.assertEqual(dict(ds.sizes), {"x": 12, "y": 40, "z": 30, "dim_0": 7, "dim_1": 3,
                                          "n": 6})
        self.assertEqual(ds["temperature"].attrs["units"], "K")
        self.assertTrue(same(ds["temperature"].attrs["scale"], np.array([1.0, 2.0])))
        self.assertEqual(ds.attrs, {"step": 2, "title": "xarray test"})
        self.assertEqual(ds.encoding["afmt_layer"], 2)
        self.assertEqual(ds.encoding["afmt_layers"], [1, 2])
        self.assertEqual(ds["never"].encoding["afmt_fill"], -7)
        # Selections against numpy on the same values: basic, outer and vectorized.
        t = ds["temperature"]
        self.assertTrue(same(t.isel(x=10).values, self.t2[10]))
        self.assertTrue(same(t[2:11:3, ::-2, 5].values, self.t2[2:11:3, ::-2, 5]))
        self.assertTrue(same(t.isel(x=[1, 7, 3], z=[0, 29]).values,
                             self.t2[[1, 7, 3]][:, :, [0, 29]]))
        ix, iz = xr.DataArray([0, 4, 11], dims="p"), xr.DataArray([3, 2, 29], dims="p")
        self.assertTrue(same(t.isel(x=ix, z=iz).values, self.t2[[0, 4, 11], :, [3, 2, 29]]))

    def test_selections_against_numpy(self):
        """Random basic, outer (integer lists, unsorted, repeated, negative, empty) and
        vectorized selections, slices of every step sign, against xarray on the same
        values in memory; also with few boxes allowed per outer read (the pieces of the
        axes with the most merged into one)."""
        import afmt.xarray_backend as XB
        v = self.open(self.p)["temperature"]
        mem = xr.DataArray(self.t2, dims=("x", "y", "z"))
        rng = np.random.default_rng(7)

        def key(n):
            r = rng.random()
            if r < 0.3:
                return list(rng.integers(-n, n, rng.integers(0, 6)))
            if r < 0.45:
                return int(rng.integers(-n, n))
            if r < 0.8:
                return slice(*[None if rng.random() < 0.3 else int(rng.integers(-n, n + 1))
                               for _ in range(2)],
                             [None, 1, 2, -1, -2, -3, 7][rng.integers(0, 7)])
            return None

        for cap in (XB._MAX_BOXES, 2):
            saved, XB._MAX_BOXES = XB._MAX_BOXES, cap
            try:
                for _ in range(250):
                    kw = {d: k for d, n in zip("xyz", self.t2.shape) for k in [key(n)]
                          if k is not None}
                    got, want = v.isel(**kw).values, mem.isel(**kw).values
                    self.assertTrue(same(got, want), kw)
                    m = int(rng.integers(0, 5))
                    kw = {"x": xr.DataArray(rng.integers(-12, 12, m), dims="p"),
                          "z": xr.DataArray(rng.integers(-30, 30, m), dims="p")}
                    k = key(40)
                    if k is not None and not isinstance(k, list):
                        kw["y"] = k
                    got, want = v.isel(**kw).values, mem.isel(**kw).values
                    self.assertTrue(same(got, want), kw)
            finally:
                XB._MAX_BOXES = saved
        # xarray 2023.01's own conversion of negative steps got these wrong.
        self.assertTrue(same(v[::-3, 5, 0].values, self.t2[::-3, 5, 0]))
        self.assertTrue(same(v[8:7:-3, 0, 0].values, self.t2[8:7:-3, 0, 0]))

    def test_default_dimension_names(self):
        """Arrays defined without dims (libafmt names them dim0, dim1, ...) get xarray's
        default names dim_0, dim_1, ..., shared by arrays whose axes agree; an axis whose
        length differs between such arrays gets dim_<i>_<length>; raw_dims=True keeps the
        stored names."""
        ds = self.open(self.p)
        self.assertEqual(ds["u"].dims, ("dim_0", "dim_1"))
        self.assertEqual(ds["w"].dims, ("dim_0", "dim_1"))
        self.assertEqual(ds["v"].dims, ("dim_0",))
        self.assertEqual(xr.DataArray(self.u).dims, ds["u"].dims)   # xarray's own default
        raw = self.open(self.p, raw_dims=True)
        self.assertEqual(raw["u"].dims, ("dim0", "dim1"))
        self.assertEqual(raw["temperature"].dims, ("x", "y", "z"))
        p = self.path("dims")
        with afmt.create(p) as w:
            w.define("a", "int32", (4, 5))
            w.define("b", "int32", (4, 6))
            w.define("c", "int32", (4, 6))
            w.define("d", "int32", (3,), dims=("dim_0",))   # a named dim_0 of length 3
            w.define("e", "int32", (2, 5), dims=("q", "dim1"))  # axis 1 unnamed only
        ds = self.open(p)
        self.assertEqual(ds["a"].dims, ("dim_0_4", "dim_1_5"))
        self.assertEqual(ds["b"].dims, ("dim_0_4", "dim_1_6"))
        self.assertEqual(ds["c"].dims, ds["b"].dims)
        self.assertEqual(ds["d"].dims, ("dim_0",))
        self.assertEqual(ds["e"].dims, ("q", "dim_1_5"))

    def test_scalar(self):
        ds = self.open(self.p)
        s = ds["s"]
        self.assertEqual(s.dims, ())
        self.assertEqual(s.dtype, np.float32)
        self.assertTrue(same(s.values, np.float32(-1.0)))
        self.assertEqual(s.attrs, {"note": "layer 2"})
        self.assertNotIn("chunksizes", s.encoding)
        dz = self.open(self.p, chunks={})
        self.assertTrue(same(dz["s"].values, np.float32(-1.0)))
        old = self.open(self.p, layer=1)
        self.assertTrue(same(old["s"].values, np.float32(2.5)))

    def test_layer(self):
        old = self.open(self.p, layer=1)
        self.assertTrue(same(old["temperature"].values, self.t1))
        self.assertEqual(old.attrs["step"], 1)
        self.assertEqual(old["s"].attrs, {})
        self.assertEqual(old.encoding["afmt_layer"], 1)
        self.assertEqual(old.encoding["afmt_layers"], [1])
        f = afmt.open(self.p, layer=1)
        self.addCleanup(f.close)
        self.assertTrue(same(old["temperature"].values, f["temperature"][...]))
        new = self.open(self.p, layer=2)
        self.assertTrue(same(new["temperature"].values, self.t2))
        with self.assertRaises(KeyError):
            self.open(self.p, layer=9)

    @unittest.skipIf(dask is None, "dask missing (apt-get install python3-dask)")
    def test_dask_chunks_aligned(self):
        ds = self.open(self.p, chunks={})
        t = ds["temperature"]
        self.assertEqual(t.chunks, ((5, 5, 2), (8,) * 5, (7, 7, 7, 7, 2)))
        self.assertEqual(ds["u"].chunks, ((3, 3, 1), (2, 1)))
        self.assertEqual(ds["flags"].chunks, ((5, 5, 2),))
        self.assertEqual(ds["temperature"].encoding["preferred_chunks"],
                         {"x": 5, "y": 8, "z": 7})
        self.assertEqual(ds["temperature"].encoding["chunksizes"], (5, 8, 7))
        # Dask's threads reading the one handle at a time (the store's lock).
        got = t.data.compute(scheduler="threads", num_workers=4)
        self.assertTrue(same(got, self.t2))
        self.assertTrue(same(t.isel(y=17).compute(scheduler="threads").values, self.t2[:, 17]))
        self.assertAlmostEqual(float(t.mean().compute()), float(self.t2.mean()), places=9)
        # Coarser chunks that are multiples of the afmt chunks are kept as asked.
        c = self.open(self.p, chunks={"x": 10, "y": 16})["temperature"]
        self.assertEqual(c.chunks[:2], ((10, 2), (16, 16, 8)))
        self.assertTrue(same(c.values, self.t2))

    def expected_blocks(self, f, name, key):
        """The blocks (offset -> stored bytes) holding the chunks that the basic
        selection key of array name touches, from the reader's own chunk lookups."""
        a = f[name]
        sel, _ = R._normalize_key(key, a.shape)
        ranges = []
        for (lo, hi, step), c in zip(sel, a.chunks):
            idx = range(lo, hi, step)
            ranges.append(sorted({i // c for i in idx}))
        blocks = {}
        for k in np.ndindex(*[len(r) for r in ranges]):
            coord = [r[i] for r, i in zip(ranges, k)]
            idx = 0
            for kk, n in zip(coord, a._m.nchunks):
                idx = idx * n + kk
            loc = f._lookup(a._m.id, idx)
            if loc is not None:
                blocks[loc[0][0]] = loc[0][1]
        return blocks

    def test_lazy_reads_only_touched_chunks(self):
        f = afmt.open(self.p)
        self.addCleanup(f.close)
        with Counter() as opening:
            ds = self.open(self.p)
        self.assertEqual(opening.blocks, [], "opening read array data")
        every = self.expected_blocks(f, "temperature", ())
        for key, isel in (((10,), {"x": 10}), ((slice(None), 17), {"y": 17}),
                          ((slice(None), slice(3, 12), 20),
                           {"y": slice(3, 12), "z": 20})):
            want = self.expected_blocks(f, "temperature", key)
            self.assertLess(len(want), len(every) / 2)
            ds = self.open(self.p)  # a fresh handle: no block cached by an earlier read
            with Counter() as c:
                got = ds["temperature"].isel(**isel).values
            self.assertTrue(same(got, self.t2[key]))
            self.assertEqual(sorted(set(c.blocks)), sorted(want), isel)
            self.assertEqual(len(c.blocks), len(want), "a block read twice: %s" % isel)
            self.assertEqual(c.block_bytes, sum(want.values()), isel)
        # The direct reader reads the same bytes for the same slice.
        g = afmt.open(self.p)
        self.addCleanup(g.close)
        with Counter() as direct:
            g["temperature"][10]
        ds = self.open(self.p)
        with Counter() as via:
            ds["temperature"].isel(x=10).values
        self.assertEqual(via.nbytes, direct.nbytes)
        self.assertEqual(via.block_bytes, sum(self.expected_blocks(f, "temperature",
                                                                    (10,)).values()))
        # An outer selection reads the chunks of its indices only, not those between.
        ds = self.open(self.p)
        with Counter() as c:
            got = ds["temperature"].isel(x=[11, 0, 11], z=[29, 2]).values
        self.assertTrue(same(got, self.t2[[11, 0, 11]][:, :, [29, 2]]))
        want = {}
        for key in ((0, slice(None), 2), (11, slice(None), 29), (0, slice(None), 29),
                    (11, slice(None), 2)):
            want.update(self.expected_blocks(f, "temperature", key))
        self.assertEqual(sorted(set(c.blocks)), sorted(want))
        self.assertEqual(c.block_bytes, sum(want.values()))
        # With dask chunks too: only the dask chunks the selection needs are read.
        dz = self.open(self.p, chunks={})
        with Counter() as c:
            dz["temperature"].isel(x=10).values
        self.assertEqual(sorted(set(c.blocks)),
                         sorted(self.expected_blocks(f, "temperature", (slice(10, 12),))))

    @unittest.skipIf(dask is None, "dask missing (apt-get install python3-dask)")
    def test_open_mfdataset(self):
        paths, parts = [], []
        for i in range(3):
            p = self.path("mf%d" % i)
            t = np.arange(2 * 6, dtype=np.float64).reshape(2, 6) + 100 * i
            with afmt.create(p) as w:
                w.define("t", "float64", t.shape, chunks=(1, 4), dims=("time", "x"))
                w.write("t", t)
                w.define("const", "int32", (6,), chunks=(6,), dims=("x",))
                w.write("const", np.arange(6, dtype=np.int32))
                w.set_attr("t", "units", "K")
                w.set_attr(None, "part", np.int64(i))
            paths.append(p)
            parts.append(t)
        ds = xr.open_mfdataset(paths, engine="afmt", combine="nested", concat_dim="time",
                               data_vars="minimal")
        self.addCleanup(ds.close)
        self.assertTrue(same(ds["t"].values, np.concatenate(parts)))
        self.assertEqual(ds["t"].dims, ("time", "x"))
        self.assertEqual(ds["t"].chunks, ((1,) * 6, (4, 2)))
        self.assertEqual(ds["t"].attrs, {"units": "K"})
        self.assertTrue(same(ds["const"].values, np.arange(6, dtype=np.int32)))
        self.assertEqual(ds.attrs["part"], 0)   # combine_attrs="override": the first file's

    def test_drop_variables(self):
        ds = self.open(self.p, drop_variables=["u", "temperature"])
        self.assertNotIn("u", ds)
        self.assertNotIn("temperature", ds)
        self.assertIn("w", ds)
        self.assertEqual(ds["w"].dims, ("dim_0", "dim_1"))   # names do not depend on it
        ds = self.open(self.p, drop_variables="s")
        self.assertNotIn("s", ds)

    def test_cf_decoding(self):
        p = self.path("cf")
        with afmt.create(p) as w:
            w.define("time", "int64", (3,), dims=("time",))
            w.write("time", np.array([0, 1, 2], np.int64))
            w.set_attr("time", "units", "days since 2000-01-01")
            w.define("h", "int16", (3,), dims=("time",))
            w.write("h", np.array([10, -1, 30], np.int16))
            w.set_attr("h", "scale_factor", 0.5)
            w.set_attr("h", "_FillValue", np.int16(-1))
        ds = self.open(p)
        self.assertEqual(ds["time"].dtype, np.dtype("datetime64[ns]"))
        self.assertEqual(str(ds["time"].values[2])[:10], "2000-01-03")
        self.assertTrue(np.array_equal(ds["h"].values, [5.0, np.nan, 15.0], equal_nan=True))
        raw = self.open(p, decode_cf=False)
        self.assertTrue(same(raw["h"].values, np.array([10, -1, 30], np.int16)))
        self.assertTrue(same(raw["time"].values, np.array([0, 1, 2], np.int64)))

    def test_engine_registration(self):
        eps = importlib.metadata.entry_points(group="xarray.backends")
        mine = [e for e in eps if e.name == "afmt"]
        self.assertEqual([e.value for e in mine], ["afmt.xarray_backend:AfmtBackendEntrypoint"])
        self.assertEqual(importlib.metadata.version("afmt"), afmt.__version__)
        self.assertIn("afmt", xr.backends.list_engines())
        from afmt.xarray_backend import AfmtBackendEntrypoint
        by_class = self.open(self.p, engine=AfmtBackendEntrypoint)
        self.assertTrue(same(by_class["temperature"].values, self.t2))
        guessed = self.open(self.p, engine=None)       # the .afmt suffix
        self.assertTrue(same(guessed["u"].values, self.u))
        e = AfmtBackendEntrypoint()
        self.assertTrue(e.guess_can_open(self.p))
        renamed = self.path("renamed") + ".data"
        self.paths.append(renamed)
        os.link(self.p, renamed)
        self.assertTrue(e.guess_can_open(renamed))     # the superblock's magic
        self.assertFalse(e.guess_can_open(__file__))
        self.assertFalse(e.guess_can_open("/nonexistent/file.nc"))
        import pathlib
        self.assertTrue(same(self.open(pathlib.Path(self.p))["u"].values, self.u))
        # An installed copy (afmt and afmt.dist-info side by side in another directory,
        # run from elsewhere) registers engine="afmt" too.
        import shutil
        import tempfile
        site = tempfile.mkdtemp(prefix="afmt-site-")
        self.addCleanup(shutil.rmtree, site)
        for d in ("afmt", "afmt.dist-info"):
            shutil.copytree(os.path.join(util.PYROOT, d), os.path.join(site, d),
                            ignore=shutil.ignore_patterns("__pycache__"))
        code = ("import sys, xarray as xr, afmt; assert afmt.__file__.startswith(sys.argv[2]); "
                "ds = xr.open_dataset(sys.argv[1], engine='afmt'); "
                "print(ds['temperature'].dims, float(ds['temperature'][0, 0, 0]))")
        r = subprocess.run([sys.executable, "-c", code, self.p, site], cwd=site,
                           env=dict(os.environ, PYTHONPATH=site), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace"))
        self.assertIn("('x', 'y', 'z') %r" % float(self.t2[0, 0, 0]), r.stdout.decode())
        # `import afmt` does not import xarray.
        r = subprocess.run([sys.executable, "-c", "import sys, afmt; "
                            "sys.exit('xarray' in sys.modules)"],
                           env=dict(os.environ, PYTHONPATH=util.PYROOT))
        self.assertEqual(r.returncode, 0, "import afmt imported xarray")

    def test_to_netcdf(self):
        """A dataset opened from afmt writes to netCDF (the afmt keys of its encoding do
        not get in the way; netCDF-4 takes the afmt chunk shape as its chunking)."""
        engines = [e for e in ("netcdf4", "h5netcdf", "scipy") if e in xr.backends.list_engines()]
        if not engines:
            self.skipTest("no netCDF engine for xarray (python3-netcdf4, python3-h5netcdf or "
                          "python3-scipy)")
        ds = self.open(self.p, drop_variables=["flags", "v"])   # netCDF-3: no bool, uint64
        out = self.path("nc") + ".nc"
        self.paths.append(out)
        ds.to_netcdf(out, engine=engines[0])
        back = xr.open_dataset(out, engine=engines[0])
        self.addCleanup(back.close)
        self.assertTrue(same(back["temperature"].values, self.t2))
        self.assertEqual(back["temperature"].attrs["units"], "K")
        if engines[0] != "scipy":
            self.assertEqual(back["temperature"].encoding["chunksizes"], (5, 8, 7))

    def test_pickle_keeps_the_layer(self):
        """A pickled dataset (dask's processes, distributed) reopens the file as of the
        layer it was opened at, even after a new commit."""
        p = self.path("pickle")
        with afmt.create(p) as w:
            w.define("a", "int32", (8,), chunks=(3,), dims=("i",))
            w.write("a", np.arange(8, dtype=np.int32))
        ds = self.open(p)
        with afmt.append(p) as w:
            w.write("a", np.full(8, 5, np.int32))
        back = pickle.loads(pickle.dumps(ds))
        self.addCleanup(back.close)
        self.assertTrue(same(back["a"].values, np.arange(8, dtype=np.int32)))
        self.assertTrue(same(ds["a"].values, np.arange(8, dtype=np.int32)))
        self.assertTrue(same(self.open(p)["a"].values, np.full(8, 5, np.int32)))

    def test_errors(self):
        p = self.path("bad")
        with open(p, "wb") as fh:
            fh.write(os.urandom(5000))
        with self.assertRaisesRegex(afmt.CorruptError, "superblock: no valid slot"):
            xr.open_dataset(p, engine="afmt")
        with self.assertRaises(FileNotFoundError):
            xr.open_dataset(self.path("missing"), engine="afmt")
        with open(self.p, "rb") as fh, self.assertRaisesRegex(TypeError, "opens a path"):
            xr.open_dataset(fh, engine="afmt")
        # A block damaged after opening: the read that needs it raises CorruptError.
        q = self.path("damaged")
        with afmt.create(q, block_size=4096) as w:
            w.define("a", "float64", (4, 1000), chunks=(1, 1000), dims=("r", "c"))
            w.write("a", np.ones((4, 1000)))
        f = afmt.open(q)
        blk = f._lookup(f["a"]._m.id, 2)[0]
        f.close()
        ds = self.open(q)
        with open(q, "r+b") as fh:
            fh.seek(blk[0] + 10)
            b = fh.read(1)
            fh.seek(blk[0] + 10)
            fh.write(bytes([b[0] ^ 0xFF]))
        self.assertTrue(same(ds["a"].isel(r=1).values, np.ones(1000)))
        with self.assertRaisesRegex(afmt.CorruptError, "fails its checksum"):
            ds["a"].isel(r=2).values


if __name__ == "__main__":
    unittest.main()
