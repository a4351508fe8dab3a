"""Run by test_remote.py under mpiexec: afmt.open(URL, comm=...) on every rank; each rank
reads its own slab of every array and compares it with the local file's; rank 0 prints
OK. argv: the local path, then the URLs of copies of it."""

import sys

import numpy as np
from mpi4py import MPI

sys.path.insert(0, __file__.rsplit("/", 2)[0])
import afmt  # noqa: E402


def main():
    comm = MPI.COMM_WORLD
    r, p = comm.Get_rank(), comm.Get_size()
    lf = afmt.open(sys.argv[1])
    bad = 0
    for url in sys.argv[2:]:
        f = afmt.open(url, comm=comm)
        bad += 0 if sorted(f) == sorted(lf) else 1
        for name in lf:
            want = lf[name]
            if not want.ndim:
                got, ref = f[name][()], want[()]
            else:
                lo, hi = want.shape[0] * r // p, want.shape[0] * (r + 1) // p
                got, ref = f[name][lo:hi], want[lo:hi]
            got, ref = np.asarray(got), np.asarray(ref)
            if got.dtype != ref.dtype or got.tobytes() != ref.tobytes():
                bad += 1
                print("rank %d: %s of %s differs" % (r, name, url), flush=True)
        f.close()
    bad = comm.allreduce(bad)
    if r == 0:
        print("OK" if bad == 0 else "FAILED %d" % bad, flush=True)
    lf.close()
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
