"""Shared helpers of the Python tests: scratch paths and running MPI scripts."""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYROOT = os.path.dirname(HERE)
SCRATCH = os.environ.get("AFMT_TEST_SCRATCH", "/dev/shm")
if not os.path.isdir(SCRATCH):
    SCRATCH = tempfile.gettempdir()


def path(tag):
    return os.path.join(SCRATCH, "afmt-py-%s-%d.afmt" % (tag, os.getpid()))


def mpi_run(np_, script, *args, timeout=240):
    """Runs `mpiexec -n np_ python3 script args`; returns stdout; fails on nonzero exit."""
    # The flags of the MPI in use (scripts/mpiexec-flags; ctest sets AFMT_MPIEXEC_EXTRA).
    extra = os.environ.get("AFMT_MPIEXEC_EXTRA")
    if extra is None:
        extra = subprocess.run(["bash", os.path.join(PYROOT, "..", "scripts", "mpiexec-flags")],
                               stdout=subprocess.PIPE, check=True).stdout.decode()
    cmd = [os.environ.get("MPIEXEC", "mpiexec"), "-n", str(np_)] + extra.split()
    cmd += [sys.executable, script] + [str(a) for a in args]
    env = dict(os.environ)
    env["PYTHONPATH"] = PYROOT + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, out))
    return out
