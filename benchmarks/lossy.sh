#!/usr/bin/env bash
# Lossy compression (docs/performance.md, "Lossy compression"): bench_lossy on NP ranks
# (default 2), MIB MiB per rank, REPS repetitions, and the zfp command-line tool alone on
# rank 0's slab of the same fields (the codec bound: one process, its own file reading),
# accuracy 1e-2, 1e-4, 1e-6 of the field's range and reversible, REPS times each, medians.
#   benchmarks/lossy.sh BUILD_DIR [REPS] [MIB] [NP] > benchmarks/results/<date>-lossy.txt
set -eu
build=${1:-build}
reps=${2:-5}
mib=${3:-16}
np=${4:-2}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
dump=$(mktemp -d /dev/shm/afmt-lossy.XXXXXX)
trap 'rm -rf "$dump"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M') UTC, git $(git rev-parse --short HEAD), $(nproc) cores," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"
out=$(mpiexec -n "$np" "$build/benchmarks/bench_lossy" -m "$mib" -r "$reps" -D "$dump")
echo "$out"
echo
echo "## the zfp command-line tool alone on rank 0's slab (compress to /dev/shm, medians of $reps)"
# "# dumped DIR/FIELD.f64: NRxN1xN2 doubles, range R"
grep '^# dumped' <<<"$out" | while read -r _ _ path dims _ _ range; do
  path=${path%:}
  IFS=x read -r nz ny nx <<<"$dims"
  mb=$(awk -v a="$nz" -v b="$ny" -v c="$nx" 'BEGIN { printf "%.3f", a * b * c * 8 / 1e6 }')
  for mode in "-a 1e-2" "-a 1e-4" "-a 1e-6" "-R"; do
    set -- $mode
    args=("$@")
    [ "$1" = -a ] && args=(-a "$(awk -v r="$range" -v t="$2" 'BEGIN { printf "%.17g", r * t }')")
    times=()
    for _ in $(seq 1 "$reps"); do
      t0=$(date +%s.%N)
      zfp -q -i "$path" -z "$dump/out.zfp" -d -3 "$nx" "$ny" "$nz" "${args[@]}"
      t1=$(date +%s.%N)
      times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
    done
    med=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    size=$(stat -c %s "$dump/out.zfp")
    printf '%-28s %-10s ratio %7.2f  compress %7.0f MB/s (%s MB in %.4f s, one process)\n' \
      "$(basename "$path" .f64)" "$mode" "$(awk -v m="$mb" -v s="$size" 'BEGIN { print m * 1e6 / s }')" \
      "$(awk -v m="$mb" -v t="$med" 'BEGIN { print m / t }')" "$mb" "$med"
  done
done
