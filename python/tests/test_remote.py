"""Tests of remote files in the pure-Python reader (afmt/_remote.py): afmt.open of
http:// URLs served by a real nginx and s3:// URLs served by a real s3rver, both started
on loopback by run_remote.sh (tests/servers/servers.sh), which exports AFMT_HTTP_URL,
AFMT_HTTP_LOG, AFMT_REMOTE_DIR (the directory nginx serves) and the AWS_* variables.
Without them (python.package's discover run) every test skips.

Every array over http and s3 equals the local read bit for bit (whole, slices, layer=K,
xarray); each bad input fails with the expected exception naming the URL, in bounded
time: 404, 403, a server ignoring ranges, a truncated object, a slow server, a busy one
(503: retried, then given up), a closed port, a file changed under the reader (size and
ETag). The open asks for the superblock region and the last page at once (2 requests);
the request count of a one-chunk read is printed and bounded; servers that answer the
suffix range wrongly (s3rver) or not at all (nginx's /nosuffix/) read the same through
the explicit range; a file whose end carries the trailer of an interrupted commit reads
as its superblock says; 2 MPI ranks read with comm=."""

import contextlib
import errno
import os
import sys
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import afmt  # noqa: E402
import afmt._reader as R  # noqa: E402
import util  # noqa: E402

HTTP = os.environ.get("AFMT_HTTP_URL")
LOG = os.environ.get("AFMT_HTTP_LOG")
DIR = os.environ.get("AFMT_REMOTE_DIR")
S3 = os.environ.get("AWS_ENDPOINT_URL")
NEED = "no servers: run python/tests/run_remote.sh (ctest -R python.remote)"

try:
    import boto3
except ImportError:  # pragma: no cover
    boto3 = None
try:
    import zfpy  # noqa: F401
except ImportError:  # pragma: no cover
    zfpy = None
try:
    import xarray as xr
except ImportError:  # pragma: no cover
    xr = None
try:
    import mpi4py  # noqa: F401
except ImportError:  # pragma: no cover
    mpi4py = None


def same(a, b):
    """Bit for bit: dtype, shape and bytes."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def put(name, data):
    """name with these bytes, both on nginx (the served directory) and in bucket afmt."""
    with open(os.path.join(DIR, name), "wb") as fh:
        fh.write(data)
    c = boto3.client("s3", endpoint_url=S3, region_name=os.environ.get("AWS_REGION"))
    try:
        c.put_object(Bucket="afmt", Key=name, Body=data)
    finally:
        c.close()


@contextlib.contextmanager
def env(**kw):
    """The environment variables kw set for the block, restored after."""
    old = {k: os.environ.get(k) for k in kw}
    os.environ.update(kw)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def log_lines():
    """nginx's access log, once it has settled: nginx writes a request's line after
    sending the answer, so a client can have the answer before the line is there."""
    last = None
    while True:
        with open(LOG) as fh:
            lines = fh.read().splitlines()
        if lines == last:
            return lines
        last = lines
        time.sleep(0.1)


@unittest.skipIf(not (HTTP and LOG and DIR and S3) or boto3 is None, NEED)
class TestRemote(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(163)
        cls.local = {}
        # main: several arrays, odd shapes with edge chunks, lz4, zstd, zfp and
        # uncompressed, 3 layers (an overwrite, a new array, a delete).
        p = os.path.join(DIR, "local-main.afmt")
        t = rng.normal(280, 5, (13, 37, 29))
        with afmt.create(p, codec="lz4", shuffle=True, block_size=8192) as w:
            w.define("t", "float64", t.shape, chunks=(5, 8, 7), dims=("x", "y", "z"))
            w.write("t", t)
            w.define("i", "int32", (101,), chunks=(16,), codec="zstd", level=3)
            w.write("i", rng.integers(-9, 9, 101).astype(np.int32))
            w.define("b", "bool", (9, 4), chunks=(4, 3), codec="none")
            w.write("b", rng.integers(0, 2, (9, 4)).astype(bool))
            w.define("gone", "uint8", (5,))
            w.write("gone", np.arange(5, dtype=np.uint8))
            w.set_attr("t", "units", "K")
            w.commit()                                              # layer 1
            t[2:9, 30:, 1:3] = -1.0
            w.write("t", t[2:9, 30:, 1:3], start=(2, 30, 1))
            if zfpy is not None:
                w.define("z", "float32", (33, 18), chunks=(16, 16), zfp=("accuracy", 1e-3))
                w.write("z", rng.random((33, 18)).astype(np.float32))
            w.commit()                                              # layer 2
            with open(p, "rb") as fh:
                region2 = fh.read(4096)   # the superblock as of layer 2
            w.delete("gone")
            w.define("s", "float32", ())
            w.write("s", np.float32(2.5))
            w.commit()                                              # layer 3
        # big: one uncompressed 256 KiB chunk, for the slow server (1 KiB/s).
        q = os.path.join(DIR, "local-big.afmt")
        with afmt.create(q, codec="none") as w:
            w.define("big", "float64", (32768,))
            w.write("big", np.arange(32768.0))
            w.commit()
        # cut: main.afmt with the superblock region of layer 2 put back: the commit of
        # layer 3 interrupted before its slot, its footer and trailer at the end of the file.
        c = os.path.join(DIR, "local-cut3.afmt")
        with open(p, "rb") as fh:
            data = fh.read()
        with open(c, "wb") as fh:
            fh.write(region2 + data[4096:])
        for name, path in (("main.afmt", p), ("big.afmt", q), ("cut3.afmt", c)):
            with open(path, "rb") as fh:
                put(name, fh.read())
            cls.local[name] = path

    def urls(self, name):
        return (HTTP + "/" + name, "s3://afmt/" + name)

    def open(self, url, **kw):
        f = afmt.open(url, **kw)
        self.addCleanup(f.close)
        return f

    def assertFails(self, exc, url, fn, within=10.0, errno_=None, text=None):
        t0 = time.monotonic()
        with self.assertRaises(exc) as cm:
            fn()
        took = time.monotonic() - t0
        self.assertIn(url, str(cm.exception))
        if text is not None:
            self.assertIn(text, str(cm.exception))
        if errno_ is not None:
            self.assertEqual(cm.exception.errno, errno_)
        self.assertLess(took, within, "%s took %.1f s" % (url, took))
        return cm.exception

    def test_same_as_local(self):
        loc = afmt.open(self.local["main.afmt"])
        self.addCleanup(loc.close)
        ids = [L.id for L in loc.layers]
        self.assertEqual(len(ids), 3)
        for url in self.urls("main.afmt"):
            for layer in [None] + ids:
                lf = afmt.open(self.local["main.afmt"], layer=layer)
                self.addCleanup(lf.close)
                f = self.open(url, layer=layer)
                self.assertEqual(sorted(f), sorted(lf), (url, layer))
                self.assertEqual([L.id for L in f.layers], [L.id for L in lf.layers])
                self.assertEqual(f.attrs, lf.attrs)
                for n in lf:
                    want, got = lf[n], f[n]
                    self.assertTrue(same(got[...], want[...]), (url, layer, n))
                    self.assertEqual(got.attrs.keys(), want.attrs.keys())
                    if got.ndim:
                        key = tuple(slice(1, None, 2) for _ in range(got.ndim))
                        self.assertTrue(same(got[key], want[key]), (url, layer, n))
                        self.assertTrue(same(got[-1], want[-1]), (url, layer, n))
            with self.assertRaises(KeyError):
                afmt.open(url, layer=99)

    @unittest.skipUnless(os.environ.get("AFMT_HTTPS_URL"), "no openssl: no https server")
    def test_https(self):
        """https:// with the server's own CA through AFMT_HTTP_CAINFO, as libafmt; without
        it the certificate is refused."""
        url = os.environ["AFMT_HTTPS_URL"] + "/main.afmt"
        want = afmt.open(self.local["main.afmt"])
        self.addCleanup(want.close)
        old = os.environ.get("AFMT_HTTP_CAINFO")
        try:
            os.environ["AFMT_HTTP_CAINFO"] = os.environ["AFMT_HTTPS_CA"]
            f = self.open(url)
            for n in want:
                self.assertTrue(same(f[n][...], want[n][...]), n)
            os.environ.pop("AFMT_HTTP_CAINFO")
            with self.assertRaises(OSError) as cm:
                afmt.open(url)
            self.assertIn("127.0.0.1", str(cm.exception))
        finally:
            if old is None:
                os.environ.pop("AFMT_HTTP_CAINFO", None)
            else:
                os.environ["AFMT_HTTP_CAINFO"] = old

    def test_threads_one_and_many(self):
        big = afmt.open(self.local["main.afmt"])["t"][...]
        for url in self.urls("main.afmt"):
            for threads in (1, 4):
                f = self.open(url, threads=threads)
                self.assertTrue(same(f["t"][...], big), (url, threads))

    @unittest.skipIf(xr is None, "xarray missing")
    def test_xarray(self):
        want = xr.open_dataset(self.local["main.afmt"], engine="afmt")
        self.addCleanup(want.close)
        for url in self.urls("main.afmt"):
            ds = xr.open_dataset(url, engine="afmt", timeout=10)
            self.addCleanup(ds.close)
            for n in want.data_vars:
                self.assertTrue(same(ds[n].values, want[n].values), (url, n))
            sel = ds["t"].isel(x=slice(2, 7), z=3).values
            self.assertTrue(same(sel, want["t"].isel(x=slice(2, 7), z=3).values))

    @unittest.skipIf(mpi4py is None, "mpi4py missing")
    def test_comm(self):
        """Under a communicator rank 0 opens and broadcasts the size and ETag; each of 2
        ranks reads its slabs over the network and checks them against the local file."""
        out = util.mpi_run(2, os.path.join(util.HERE, "mpi_remote_reader.py"),
                           self.local["main.afmt"], *self.urls("main.afmt"), timeout=60)
        self.assertIn("OK", out)

    def test_request_count(self):
        """An open asks for the superblock region (which also gives the size) and the last
        page at once; the footers that lie outside the last page cost one request each
        (none here: the file is smaller than a page); a one-chunk read then costs at most
        the index segments of the layers it searches and the chunk's block. Printed,
        bounded; with 4 KiB pages too."""
        for page in (None, 4096):
            kw = {} if page is None else {"AFMT_HTTP_PAGE": str(page)}
            with env(**kw):
                url = HTTP + "/main.afmt"
                n0 = len(log_lines())
                f = self.open(url, threads=1)
                n1 = len(log_lines())
                f["i"][3]
                n2 = len(log_lines())
            nl = len(f.layers)
            print("\n  requests (page %s): open %d, one-chunk read %d (%d layers)" %
                  (page or "default", n1 - n0, n2 - n1, nl), file=sys.stderr)
            lines = log_lines()[n0:n2]
            self.assertEqual(sorted(x.split()[3] for x in lines[:2]),
                             ['"bytes=-%d"' % (page or 256 << 10), '"bytes=0-4095"'])
            self.assertLessEqual(n1 - n0, 1 + nl)
            self.assertLessEqual(n2 - n1, nl + 1)
            if page is None:
                self.assertEqual(n1 - n0, 2)
            for line in lines:
                self.assertRegex(line, r'^GET /main.afmt 206 "bytes=(\d+-\d+|-\d+)" \d+$')

    def test_suffix_range_fallback(self):
        """nginx's /nosuffix/ answers a suffix range with 200, s3rver with the first N + 1
        bytes: neither answer is used, the last page is asked for by an explicit range,
        and the file reads the same (4 KiB pages, so that the reads need the page)."""
        want = afmt.open(self.local["main.afmt"])
        self.addCleanup(want.close)
        size = os.path.getsize(self.local["main.afmt"])
        with env(AFMT_HTTP_PAGE="4096"):
            for url in (HTTP + "/nosuffix/main.afmt", "s3://afmt/main.afmt"):
                n0 = len(log_lines())
                f = self.open(url)
                for n in want:
                    self.assertTrue(same(f[n][...], want[n][...]), (url, n))
                if url.startswith("http"):
                    lines = log_lines()[n0:]
                    self.assertIn('GET /nosuffix/main.afmt 200 "bytes=-4096"',
                                  " ".join(lines))
                    self.assertIn('"bytes=%d-%d"' % (size - 4096, size - 1), " ".join(lines))

    def test_interrupted_commit(self):
        """cut3.afmt ends with the footer and trailer of a commit whose superblock slot
        was never written: it reads as its superblock says (2 layers), as the local file
        does, whether the last page holds that footer or not."""
        lf = afmt.open(self.local["cut3.afmt"])
        self.addCleanup(lf.close)
        self.assertEqual(len(lf.layers), 2)
        for page in ("4096", str(256 << 10)):
            with env(AFMT_HTTP_PAGE=page):
                for url in self.urls("cut3.afmt"):
                    f = self.open(url)
                    self.assertEqual([L.id for L in f.layers], [L.id for L in lf.layers])
                    self.assertEqual(sorted(f), sorted(lf))
                    for n in lf:
                        self.assertTrue(same(f[n][...], lf[n][...]), (url, page, n))

    def test_not_found(self):
        for url in self.urls("nothing-here.afmt") + ("s3://no-such-bucket/x.afmt",):
            self.assertFails(FileNotFoundError, url, lambda: afmt.open(url), text="404",
                             errno_=errno.ENOENT)

    def test_forbidden(self):
        url = HTTP + "/"   # a directory without an index: nginx answers 403
        self.assertFails(PermissionError, url, lambda: afmt.open(url), text="403")
        url = "s3://afmt/main.afmt"
        key = os.environ["AWS_ACCESS_KEY_ID"]
        os.environ["AWS_ACCESS_KEY_ID"] = "NOT-S3RVER"
        try:
            e = self.assertFails(PermissionError, url, lambda: afmt.open(url), text="403")
        finally:
            os.environ["AWS_ACCESS_KEY_ID"] = key
        self.assertIn("InvalidAccessKeyId", str(e))

    def test_no_range_support(self):
        url = HTTP + "/norange/main.afmt"
        n0 = len(log_lines())
        self.assertFails(OSError, url, lambda: afmt.open(url), errno_=errno.EOPNOTSUPP,
                         text="range requests")
        # Refused at the first answer (the superblock's; the last page's went at the same
        # time), not retried.
        self.assertEqual(len([x for x in log_lines()[n0:] if "/norange/" in x]), 2)

    def test_truncated(self):
        """A cut object reads as the same cut local file does: short of its superblock
        region, a CorruptError; cut into the newest layer, the file as of the commit
        before (the other superblock slot, format.md 3.3), or a CorruptError."""
        with open(self.local["main.afmt"], "rb") as fh:
            data = fh.read()
        cut_local = os.path.join(DIR, "local-cut.afmt")
        for cut in (3000, len(data) - 100, len(data) // 2):
            put("cut.afmt", data[:cut])
            with open(cut_local, "wb") as fh:
                fh.write(data[:cut])
            try:
                lf = afmt.open(cut_local)
            except afmt.CorruptError:
                lf = None
            self.assertTrue(lf is not None or cut != len(data) - 100)
            for url in self.urls("cut.afmt"):
                if lf is None:
                    self.assertFails(afmt.CorruptError, url, lambda: afmt.open(url))
                    continue
                f = self.open(url)
                self.assertEqual([L.id for L in f.layers], [L.id for L in lf.layers])
                for n in lf:
                    self.assertTrue(same(f[n][...], lf[n][...]), (url, cut, n))
            if lf is not None:
                lf.close()

    def test_slow_server_times_out(self):
        """nginx sends /slow/ at 100 bytes/s: 100 bytes a second at first, so each wait
        is shorter than timeout and only the deadline on the whole answer stops the first
        request, at 1.5 s (with per-wait timeouts alone, the open and the read of the
        256 KiB block took 18 s here before failing)."""
        url = HTTP + "/slow/big.afmt"
        e = self.assertFails(TimeoutError, url,
                             lambda: afmt.open(url, timeout=1.5, retries=0)["big"][...],
                             within=3.5, errno_=errno.ETIMEDOUT)
        self.assertIn("1 try", str(e))
        self.assertIn("bytes 0-4095", str(e))

    def test_busy_server_retried(self):
        url = HTTP + "/busy/main.afmt"
        want = afmt.open(self.local["main.afmt"])["i"][...]
        time.sleep(0.6)   # nginx's 2 requests a second: start with a fresh allowance
        n0 = len(log_lines())
        f = self.open(url, threads=1, retries=4)
        self.assertTrue(same(f["i"][...], want))
        codes = [x.split()[2] for x in log_lines()[n0:] if "/busy/" in x]
        self.assertIn("503", codes)      # it was busy, and the retries got through
        time.sleep(0.6)
        e = self.assertFails(OSError, url, lambda: afmt.open(url, retries=0)["i"][...],
                             text="503")
        self.assertIn("1 try", str(e))

    def test_connection_refused(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d/x.afmt" % s.getsockname()[1]
        s.close()   # nothing listens there now
        self.assertFails(OSError, url, lambda: afmt.open(url, retries=2), within=5.0,
                         text="3 tries")

    def test_changed_under_the_reader(self):
        with env(AFMT_HTTP_PAGE="4096"):   # the reads need more than the last page
            self._changed_under_the_reader()

    def _changed_under_the_reader(self):
        with open(self.local["main.afmt"], "rb") as fh:
            data = fh.read()
        with open(self.local["big.afmt"], "rb") as fh:
            other = fh.read()
        for url in self.urls("change.afmt"):
            # Another size: Content-Range's total differs (and the ETag).
            put("change.afmt", data)
            f = self.open(url)
            put("change.afmt", other)
            self.assertFails(OSError, url, lambda: f["t"][...], errno_=errno.ESTALE,
                             text="changed under the reader")
            # The same size, other bytes: only the ETag tells (nginx's ETag is mtime and
            # size: the mtime is moved on so that it differs within the same second).
            put("change.afmt", data)
            f = self.open(url)
            flipped = bytearray(data)
            flipped[5000] ^= 1
            put("change.afmt", bytes(flipped))
            st = os.stat(os.path.join(DIR, "change.afmt"))
            os.utime(os.path.join(DIR, "change.afmt"), (st.st_atime, st.st_mtime + 10))
            self.assertFails(OSError, url, lambda: f["t"][...], errno_=errno.ESTALE,
                             text="ETag")

    def test_bad_urls_and_arguments(self):
        with self.assertRaises(ValueError):
            afmt.open("s3://only-a-bucket")
        with self.assertRaises(ValueError):
            afmt.open(HTTP + "/main.afmt", timeout=0)
        # A path that merely contains "://" further on is still a local path.
        self.assertFalse(R._remote.is_url("dir/x://y.afmt"))


if __name__ == "__main__":
    unittest.main()
