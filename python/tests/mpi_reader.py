"""Run by the tests under mpiexec: afmt.open(path, comm=...) on every rank; each rank
reads its own slab of every array of mpi_writer.py and checks it; rank 0 prints OK."""

import sys

import numpy as np
from mpi4py import MPI

sys.path.insert(0, __file__.rsplit("/", 2)[0])
import afmt  # noqa: E402
from mpi_writer import DTYPES, SHAPE, expected  # noqa: E402


def main():
    comm = MPI.COMM_WORLD
    r, p = comm.Get_rank(), comm.Get_size()
    f = afmt.open(sys.argv[1], comm=comm)
    bad = 0
    for i, dt in enumerate(DTYPES):
        name = "a%d_%s" % (i, dt)
        # A decomposition along y this time, unlike the writer's.
        lo, hi = SHAPE[1] * r // p, SHAPE[1] * (r + 1) // p
        got = f[name][:, lo:hi, :]
        want = expected(name, dt, 2)[:, lo:hi, :]
        if got.dtype != want.dtype or got.tobytes() != want.tobytes():
            bad += 1
            print("rank %d: %s differs" % (r, name), flush=True)
    # Every rank read blocks of its own: the blocks fetched differ between ranks.
    bad = comm.allreduce(bad)
    if r == 0:
        print("OK" if bad == 0 else "FAILED %d" % bad, flush=True)
    f.close()
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
