#!/usr/bin/env bash
# The write targets of compression threads against what this machine allows
# (docs/performance.md 5.4.2): afmt-bench on 1 rank, 256 MiB float64, LZ4 + shuffle,
# afmt with 1 and 2 threads, parallel HDF5 + LZ4 and the codec alone, REPS repetitions
# interleaved; then file_write_threads: the compressed bytes written to one file in DIR by
# one thread against two. A write is afmt_write (the write phase: chunks encoded and
# compressed, on the pool's threads) plus afmt_commit (mostly the data write). If the
# data write does not go faster on two threads, the best 2 threads can do is the 1-thread
# write phase split perfectly in two, plus the commit as it is:
#   T2 >= W1 / 2 + C1, so T1 / T2 <= (W1 + C1) / (W1 / 2 + C1) and HDF5 / T2 <= H / (W1 / 2 + C1).
#   benchmarks/threads_bound.sh BUILD_DIR [DIR] [REPS] [CACHE_DIR]
set -eu
build=${1:?usage: threads_bound.sh BUILD_DIR [DIR] [REPS] [CACHE_DIR]}
dir=${2:-/dev/shm}
reps=${3:-7}
cache=${4:-CACHE}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
echo "# $(date -u '+%Y-%m-%d %H:%M') UTC, git $(git rev-parse --short HEAD), $(nproc) cores," \
  "load $(cut -d' ' -f1-3 /proc/loadavg), dir=$dir reps=$reps"
out=$(mpiexec -np 1 --bind-to none "$build/benchmarks/afmt-bench" -w field -k smooth -s 256M \
  -a afmt/1,afmt/2,hdf5,codec -z lz4 -S 1 -r "$reps" -d "$dir" -D "$cache")
grep -v '^#' <<<"$out"
# Of case CASE's line: the write median (col), the read median (rcol), the compression
# ratio (ratio, before the last column, ok); key CASE NAME: NAME= of the line under it.
col() { awk -v c="$1" '$1 ~ "^"c":" {print $2}' <<<"$out"; }
rcol() { awk -v c="$1" '$1 ~ "^"c":" {print $7}' <<<"$out"; }
ratio() { awk -v c="$1" '$1 ~ "^"c":" {print $(NF-1)}' <<<"$out"; }
key() {
  awk -v c="$1" -v k="$2" '$1 ~ "^"c":" {getline; for (i = 1; i <= NF; i++) {
    split($i, kv, "="); if (kv[1] == k) print kv[2]}}' <<<"$out"
}
t1=$(col afmt/1) t2=$(col afmt/2) h=$(col hdf5)
w1=$(key afmt/1 w_write_s) c1=$(key afmt/1 w_commit_s)
r1=$(rcol afmt/1) r2=$(rcol afmt/2) hr=$(rcol hdf5)
mib=$(awk -v r="$(ratio afmt/1)" 'BEGIN { printf "%d", 256 / r }')
"$build/benchmarks/file_write_threads" "$dir/afmt-threads-bound-$$" "$mib" 2 "$reps" | tail -1
awk -v t1="$t1" -v t2="$t2" -v h="$h" -v w1="$w1" -v c1="$c1" -v r1="$r1" -v r2="$r2" -v hr="$hr" 'BEGIN {
  b = w1 / 2 + c1
  printf "write: 1 thread %.4f s (write phase %.4f s + commit %.4f s), 2 threads %.4f s\n", t1, w1, c1, t2
  printf "bound: 2 threads >= %.4f / 2 + %.4f = %.4f s\n", w1, c1, b
  printf "2 threads vs 1: %.2fx measured, %.2fx bound (target 1.7x)\n", t1 / t2, t1 / b
  printf "2 threads vs HDF5 + LZ4 (%.4f s): %.2fx measured, %.2fx bound (target 3x)\n", h, h / t2, h / b
  printf "read: 1 thread %.4f s, 2 threads %.4f s: %.2fx (target 1.7x); HDF5 %.4f s: %.2fx (target 4x)\n", r1, r2, r1 / r2, hr, hr / r2
}'
