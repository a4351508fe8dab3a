"""Run by the tests under mpiexec: mpi_writer.py's two layers written with asynchronous
commits. Layer 1 is started with commit(wait=False); the writes of layer 2 are staged
while it is in flight (each rank checks that libafmt's read of its slab sees both); then
commit_wait(), layer 2 started with commit(wait=False) and left to close() to finish.
Exit status 1 if a rank's read-back during a commit differs."""

import sys

import numpy as np
from mpi4py import MPI

sys.path.insert(0, __file__.rsplit("/", 2)[0])
import afmt  # noqa: E402
from mpi_writer import CHUNK, DTYPES, SHAPE, expected  # noqa: E402


def main():
    path = sys.argv[1]
    comm = MPI.COMM_WORLD
    r, p = comm.Get_rank(), comm.Get_size()
    lo, hi = SHAPE[0] * r // p, SHAPE[0] * (r + 1) // p
    w = afmt.create(path, comm=comm, block_size=4096)
    names = ["a%d_%s" % (i, dt) for i, dt in enumerate(DTYPES)]
    for name, dt in zip(names, DTYPES):
        w.define(name, dt, SHAPE, chunks=CHUNK, dims=("z", "y", "x"))
        w.write(name, expected(name, dt, 1)[lo:hi], start=(lo, 0, 0))
    w.set_attr(None, "writer_ranks", np.int32(p))
    w.commit(wait=False)                      # layer 1 in flight
    for name, dt in zip(names, DTYPES):       # layer 2's writes, staged meanwhile
        full = expected(name, dt, 2)
        blo, bhi = max(lo, 3), min(hi, 19)
        if blo < bhi:
            w.write(name, full[blo:bhi, 2:11, 1:8], start=(blo, 2, 1))
    bad = 0
    for name, dt in zip(names, DTYPES):       # this rank's slab: layer 1 + its new writes
        got = w.read(name, (lo, 0, 0), (hi - lo,) + SHAPE[1:], dt)
        if got.tobytes() != expected(name, dt, 2)[lo:hi].tobytes():
            bad += 1
            print("rank %d: %s read during the commit differs" % (r, name), flush=True)
    w.commit_wait()                           # layer 1 durable
    w.commit(wait=False)                      # layer 2 in flight ...
    w.close()                                 # ... finished by close
    bad = comm.allreduce(bad)
    if r == 0:
        print("OK" if bad == 0 else "FAILED %d" % bad, flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
