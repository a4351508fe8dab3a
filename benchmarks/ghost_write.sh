#!/usr/bin/env bash
# benchmarks/ghost_write.sh BUILD [DIR] [N] [REPS] - the interior of a ghosted N x N float64
# field per rank (default 4000), LZ4 + shuffle, on 2 and 4 ranks: afmt_write_box and
# row-by-row writes against afmt_write of a packed buffer (benchmarks/ghost_write.c).
set -euo pipefail
BUILD=${1:?usage: ghost_write.sh BUILD [DIR] [N] [REPS]}
DIR=${2:-/dev/shm}
N=${3:-4000}
REPS=${4:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/deps
source "$HERE/../scripts/deps"
afmt_mpi_env
for np in 2 4; do
    echo "== $np ranks, ${N}x${N} float64 per rank (+2 ghost cells each side), chunks 8x$N, $DIR"
    mpiexec --bind-to none -n "$np" "$BUILD/benchmarks/ghost_write" "$DIR" "$N" "$REPS"
done
