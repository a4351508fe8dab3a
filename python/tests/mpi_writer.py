"""Run by the tests under mpiexec: every rank writes a slab of 3-D arrays whose rows do
not follow the chunks (so chunks are shared by ranks), over two commits, through
libafmt's Python writer. Values are a formula of the global index (expected())."""

import sys

import numpy as np
from mpi4py import MPI

sys.path.insert(0, __file__.rsplit("/", 2)[0])
import afmt  # noqa: E402

SHAPE = (23, 17, 9)
CHUNK = (5, 4, 4)
DTYPES = ("float64", "float32", "int32", "uint16", "int8")


def expected(name, dtype, layer):
    z, y, x = np.indices(SHAPE)
    v = (z * 1000 + y * 10 + x + 7 * layer + len(name)).astype(np.int64)
    if layer == 2:  # the second commit rewrites a box only
        old = expected(name, dtype, 1)
        box = (slice(3, 19), slice(2, 11), slice(1, 8))
        old[box] = v[box].astype(dtype)
        return old
    return v.astype(dtype)


def main():
    path = sys.argv[1]
    comm = MPI.COMM_WORLD
    r, p = comm.Get_rank(), comm.Get_size()
    lo, hi = SHAPE[0] * r // p, SHAPE[0] * (r + 1) // p
    w = afmt.create(path, comm=comm, block_size=4096)
    for i, dt in enumerate(DTYPES):
        name = "a%d_%s" % (i, dt)
        w.define(name, dt, SHAPE, chunks=CHUNK, dims=("z", "y", "x"))
        w.write(name, expected(name, dt, 1)[lo:hi], start=(lo, 0, 0))
    w.set_attr(None, "writer_ranks", np.int32(p))
    w.commit()
    for i, dt in enumerate(DTYPES):
        name = "a%d_%s" % (i, dt)
        full = expected(name, dt, 2)
        blo, bhi = max(lo, 3), min(hi, 19)
        if blo < bhi:
            w.write(name, full[blo:bhi, 2:11, 1:8], start=(blo, 2, 1))
    w.commit()
    w.close()


if __name__ == "__main__":
    main()
