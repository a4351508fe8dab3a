"""Time of reading a whole LZ4-compressed array with the pure-Python reader against
libafmt's afmt_read (through ctypes: one call, the C library does all the work), in one
run, interleaved, medians:

    /usr/bin/python3 benchmarks/python_read.py [--mib 256] [--reps 7] [--dir /dev/shm]
                                               [--threads N]

The array is a smooth 3-D float64 field (64 x 256 x 256 per 32 MiB) in 32x64x64
chunks, LZ4 + shuffle, the library's default 4 MiB blocks. Each repetition opens the
file afresh (no block cache carries over)."""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import afmt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--threads", type=int, default=None,
                    help="decoding threads of the Python reader (default: its own choice)")
    o = ap.parse_args()
    nz = o.mib * (1 << 20) // (256 * 256 * 8)
    shape = (nz, 256, 256)
    z, y, x = np.ogrid[:nz, :256, :256]
    field = np.sin(z * 0.05) * np.cos(y * 0.03) + 0.001 * x
    field = field.astype(np.float64)
    path = os.path.join(o.dir, "afmt-pyread-%d.afmt" % os.getpid())
    with afmt.create(path) as w:
        w.define("x", "float64", shape, chunks=(32, 64, 64))
        w.write("x", field)
    stored = os.path.getsize(path)
    tc, tp = [], []
    try:
        for _ in range(o.reps):
            t0 = time.perf_counter()
            c = afmt.CReader(path)
            a = c.read("x", (0, 0, 0), shape, np.float64)
            c.close()
            t1 = time.perf_counter()
            f = afmt.open(path, threads=o.threads)
            b = f["x"][...]
            f.close()
            t2 = time.perf_counter()
            tc.append(t1 - t0)
            tp.append(t2 - t1)
            if not (np.array_equal(a, field) and np.array_equal(b, field)):
                sys.exit("python_read: a read returned wrong values")
            del a, b
    finally:
        os.unlink(path)
    mc, mp = statistics.median(tc), statistics.median(tp)
    print("python_read: threads %s, %d MiB float64, ratio %.2f, %d reps: C afmt_read median %.3f s "
          "(min %.3f max %.3f), Python reader median %.3f s (min %.3f max %.3f): "
          "Python / C = %.2f" % (o.threads or "default", o.mib, field.nbytes / stored, o.reps, mc, min(tc), max(tc),
                                 mp, min(tp), max(tp), mp / mc))


if __name__ == "__main__":
    main()
