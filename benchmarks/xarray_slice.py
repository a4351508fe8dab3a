"""One slice of a large array through the xarray backend against the direct Python
reader (issue 16: ds["temperature"].isel(x=10).values on a 1 GiB file reads only the
chunks of that slice and is within 1.5x of the direct reader), in one run, interleaved,
medians:

    /usr/bin/python3 benchmarks/xarray_slice.py [--mib 1024] [--reps 7] [--dir /dev/shm]
                                                [--chunk 32,64,64] [--index 10]
                                                [--file PATH] [--keep]

Writes (through libafmt, ctypes) a smooth 3-D float64 field `temperature`, dims
(x, y, z), 512 x 512 x (mib / 2) (1024 MiB: 512 x 512 x 512), in --chunk chunks, LZ4 +
shuffle, the library's default 4 MiB blocks; or takes --file (which must hold such an
array). Each repetition opens the file afresh
in both (no block cache carries over): the time is open + slice + close. The bytes read
are counted by wrapping the reader's pread (_Storage.read) during one slice of each,
against the stored bytes of the blocks that hold the chunks of the slice."""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import afmt  # noqa: E402
import afmt._reader as R  # noqa: E402


def write(path, mib, chunk):
    shape = (512, 512, max(1, mib // 2))
    chunk = tuple(min(c, s) for c, s in zip(chunk, shape))
    x, y, z = np.ogrid[:shape[0], :shape[1], :shape[2]]
    field = np.empty(shape)
    for i in range(0, shape[0], 64):   # in slabs: no 3 GiB of temporaries
        sl = slice(i, i + 64)
        field[sl] = np.sin(x[sl] * 0.05) * np.cos(y * 0.03) + 0.001 * z
    with afmt.create(path) as w:
        w.define("temperature", "float64", shape, chunks=chunk, dims=("x", "y", "z"))
        w.set_attr("temperature", "units", "K")
        w.write("temperature", field)
    return field


class Bytes:
    """Counts the bytes the reader reads from the file while active."""

    def __enter__(self):
        self.n, self._read = 0, R._Storage.read
        me = self

        def read(st, off, n):
            me.n += n
            return me._read(st, off, n)

        R._Storage.read = read
        return self

    def __exit__(self, *exc):
        R._Storage.read = self._read


def touched_blocks(path, index):
    """The stored bytes of the blocks holding the chunks of temperature[index], and of
    all blocks of the array, from the reader's chunk lookups."""
    f = afmt.open(path)
    try:
        a = f["temperature"]
        m = a._m
        kx = index // a.chunks[0]
        mine, every = {}, {}
        for k in np.ndindex(*m.nchunks):
            idx = int(np.ravel_multi_index(k, m.nchunks))
            loc = f._lookup(m.id, idx)
            if loc is None:
                continue
            every[loc[0][0]] = loc[0][1]
            if k[0] == kx:
                mine[loc[0][0]] = loc[0][1]
        return mine, every, a
    finally:
        f.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--chunk", default="32,64,64")
    ap.add_argument("--index", type=int, default=10)
    ap.add_argument("--file", default=None, help="use this file instead of writing one")
    ap.add_argument("--keep", action="store_true", help="keep the file written")
    o = ap.parse_args()
    import xarray as xr

    chunk = tuple(int(c) for c in o.chunk.split(","))
    field = None
    if o.file:
        path = o.file
    else:
        path = os.path.join(o.dir, "afmt-xrslice-%d.afmt" % os.getpid())
        t0 = time.perf_counter()
        field = write(path, o.mib, chunk)
        print("xarray_slice: wrote %s (%.0f MiB stored) in %.1f s" % (
            path, os.path.getsize(path) / 2**20, time.perf_counter() - t0))
    try:
        mine, every, a = touched_blocks(path, o.index)
        want = field[o.index] if field is not None else None
        del field
        td, tx = [], []
        for _ in range(o.reps):
            t0 = time.perf_counter()
            f = afmt.open(path)
            d = f["temperature"][o.index]
            f.close()
            t1 = time.perf_counter()
            ds = xr.open_dataset(path, engine="afmt")
            v = ds["temperature"].isel(x=o.index).values
            ds.close()
            t2 = time.perf_counter()
            td.append(t1 - t0)
            tx.append(t2 - t1)
            if not np.array_equal(d, v) or (want is not None and not np.array_equal(d, want)):
                sys.exit("xarray_slice: a read returned wrong values")
        f = afmt.open(path)
        with Bytes() as bd:
            f["temperature"][o.index]
        f.close()
        ds = xr.open_dataset(path, engine="afmt")
        with Bytes() as bx:
            ds["temperature"].isel(x=o.index).values
        ds.close()
    finally:
        if not o.file and not o.keep:
            os.unlink(path)
    md, mx = statistics.median(td), statistics.median(tx)
    size = a.size * a.dtype.itemsize
    print("xarray_slice: temperature %s float64 (%.0f MiB), chunks %s, isel(x=%d): %d of %d "
          "blocks hold its chunks, %d of %d stored bytes" % (
              "x".join(map(str, a.shape)), size / 2**20, "x".join(map(str, a.chunks)),
              o.index, len(mine), len(every), sum(mine.values()), sum(every.values())))
    print("xarray_slice: bytes read by the slice: direct reader %d, xarray %d (blocks of the "
          "slice %d, the rest is index metadata)" % (bd.n, bx.n, sum(mine.values())))
    print("xarray_slice: %d reps, open + slice + close: direct median %.4f s (min %.4f max "
          "%.4f), xarray median %.4f s (min %.4f max %.4f): xarray / direct = %.2f" % (
              o.reps, md, min(td), max(td), mx, min(tx), max(tx), mx / md))


if __name__ == "__main__":
    main()
