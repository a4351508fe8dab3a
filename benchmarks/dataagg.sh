#!/bin/sh
# Data aggregation against every rank writing (docs/performance.md 7.7): bench_write_modes
# --data-aggregation on 2, 4 and 8 ranks (oversubscribed), 16 and 64 MiB per rank, on
# /dev/shm and on /tmp, REPS repetitions of each mode, alternating, in one run per case.
#   benchmarks/dataagg.sh BUILD_DIR [REPS] > benchmarks/results/<date>-dataagg.txt
set -eu
build=${1:-build}
reps=${2:-5}
echo "# $(date -u '+%Y-%m-%d %H:%M') UTC, git $(git rev-parse --short HEAD), $(nproc) cores"
for dir in /dev/shm /tmp; do
  for np in 2 4 8; do
    for mib in 16 64; do
      echo "## $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)  np=$np dir=$dir MiB/rank=$mib"
      mpiexec --oversubscribe -n "$np" "$build/benchmarks/bench_write_modes" "$dir" "$mib" "$reps" \
        --data-aggregation
    done
  done
done
