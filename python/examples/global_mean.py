"""The global mean of an array, read in parallel with the pure-Python reader:

    mpiexec -n 3 /usr/bin/python3 python/examples/global_mean.py FILE ARRAY

Each rank reads only its own slab of rows (afmt.open with comm: rank 0 reads the
metadata and broadcasts it; every rank then reads only the blocks its slab needs), sums
it, and one allreduce gives the mean."""

import os
import sys

from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import afmt  # noqa: E402


def main():
    path, name = sys.argv[1], sys.argv[2]
    comm = MPI.COMM_WORLD
    r, p = comm.Get_rank(), comm.Get_size()
    with afmt.open(path, comm=comm) as f:
        a = f[name]
        n0 = a.shape[0]
        mine = a[n0 * r // p:n0 * (r + 1) // p]
        total = comm.allreduce(float(mine.sum(dtype="float64")))
        count = comm.allreduce(mine.size)
    if r == 0:
        print("%s: mean %.17g over %d elements on %d ranks" % (name, total / count, count, p))


if __name__ == "__main__":
    main()
