#!/usr/bin/env bash
# benchmarks/readall_scale.sh - index segment reads per node at a restart, afmt_read against
# afmt_read_all (docs/performance.md, "Collective reads"), counted, not timed: P ranks on
# this machine (one node), then 16 ranks playing 4 nodes of 4 (the test hook
# afmt__set_read_node_ranks).
#
# Usage: benchmarks/readall_scale.sh [BUILD_DIR]        (default: build; needs the tests'
#        build of the library, AFMT_BUILD_TESTS=ON, the default)
# Environment: RANKS="4 8 16" LAYERS=3 DIR=/dev/shm
# Writes benchmarks/results/<date>-readall.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
RANKS=${RANKS:-"4 8 16"}
LAYERS=${LAYERS:-3}
DIR=${DIR:-/dev/shm}
B=$BUILD/benchmarks/readall_scale
[[ -x $B ]] || {
    echo "readall_scale.sh: $B not built (cmake --build $BUILD --target readall_scale)" >&2
    exit 1
}
source scripts/deps
afmt_mpi_env 2>/dev/null || true
read -r -a FL <<<"$(bash scripts/mpiexec-flags)"
out=benchmarks/results/$(date +%Y-%m-%d-%H%M)-readall.txt
mkdir -p benchmarks/results
{
    echo "# readall_scale.sh $(date +%Y-%m-%d-%H%M) git $(git rev-parse --short HEAD 2>/dev/null): RANKS='$RANKS' LAYERS=$LAYERS DIR=$DIR"
    for p in $RANKS; do
        echo "## mpiexec -n $p $B -n $LAYERS -d $DIR"
        mpiexec "${FL[@]}" -n "$p" "$B" -n "$LAYERS" -d "$DIR" || echo "FAILED (exit $?)"
    done
    echo "## mpiexec -n 16 $B -n $LAYERS -g 4 -d $DIR   (4 nodes of 4 ranks)"
    mpiexec "${FL[@]}" -n 16 "$B" -n "$LAYERS" -g 4 -d "$DIR" || echo "FAILED (exit $?)"
} | tee "$out"
echo "readall_scale.sh: wrote $out"
