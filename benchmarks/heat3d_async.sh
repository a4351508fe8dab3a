#!/usr/bin/env bash
# What a checkpoint costs the solver, synchronous against asynchronous commits
# (docs/performance.md 5.5): examples/heat3d on NP ranks (default 1, unbound, so the
# rank has the other core spare), GRID points, STEPS steps, a checkpoint every EVERY steps
# (default 5), on DIR (default /tmp: a real disk, fsync costs what it costs); REPS runs of
# each mode, the modes alternating:
#   sync   afmt_commit;
#   async  --async: afmt_commit_start under MPI_THREAD_MULTIPLE (the background mode: the
#          helper compresses, agrees the layer, writes and publishes it); the next
#          checkpoint waits;
#   start  --async-start: plain MPI_Init (the start mode: the collective part and the
#          compression at the start, the helper writes, the slot at the wait);
#   floor  no checkpoint but the last one;
#   one    sync with --threads 1: every checkpoint's work (shuffle, compression, writes,
#          syncs) done by one thread, which is what the one spare core has to carry in
#          the background.
# Per run: the wall time, the compute time, and the time spent inside checkpoints (what
# the solver stood still for; with --async the wait, the write and the start, and the
# final wait). Medians at the end, and the physical bound of an asynchronous checkpoint
# with one spare core: in the C seconds of compute between two checkpoints, the spare core
# can do at most C + L of the checkpoint's work W (plus its syncs' latency F) and the
# solver's core the rest, which the solver loses (L); so L >= (W + F - C) / 2, with W + F
# the "one" mode's time per checkpoint and C the floor's compute per EVERY steps (memory
# bandwidth shared by the two cores is not counted: the true bound is higher).
#   benchmarks/heat3d_async.sh BUILD_DIR [REPS] [GRID] [STEPS] [DIR] [NP] [EVERY]
set -eu
build=${1:-build}
reps=${2:-5}
grid=${3:-128x128x128}
steps=${4:-40}
dir=${5:-/tmp}
np=${6:-1}
every=${7:-5}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
heat=$build/examples/heat3d
file=$dir/afmt-heat3d-async-$$.afmt
trap 'rm -f "$file" "$file.lock"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M') UTC, git $(git rev-parse --short HEAD), $(nproc) cores," \
  "np=$np grid=$grid steps=$steps every=$every dir=$dir"
printf '%-6s %3s %9s %9s %6s %9s %9s\n' mode run wall_s compute_s ckpts ckpt_s per_ckpt_s
results=$(mktemp)
for r in $(seq 1 "$reps"); do
  for mode in sync async start floor one; do
    rm -f "$file"
    args=(--file "$file" --grid "$grid" --steps "$steps" --checkpoint-every "$every")
    [ "$mode" = async ] && args+=(--async)
    [ "$mode" = start ] && args+=(--async-start)
    [ "$mode" = floor ] && args=(--file "$file" --grid "$grid" --steps "$steps" \
      --checkpoint-every 0)
    [ "$mode" = one ] && args+=(--threads 1)
    out=$(mpiexec --bind-to none -n "$np" "$heat" "${args[@]}")
    # heat3d: done at step S (time T): N checkpoints (C s), L layers in F, W s in all, exit 0
    line=$(grep '^heat3d: done' <<<"$out")
    n=$(sed -E 's/.*: ([0-9]+) checkpoints \(([0-9.]+) s\).*/\1/' <<<"$line")
    c=$(sed -E 's/.*: ([0-9]+) checkpoints \(([0-9.]+) s\).*/\2/' <<<"$line")
    w=$(sed -E 's/.* ([0-9.]+) s in all.*/\1/' <<<"$line")
    # heat3d: S steps in T s of compute (...)
    comp=$(grep ' s of compute' <<<"$out" | sed -E 's/.* in ([0-9.]+) s of compute.*/\1/')
    per=$(awk -v c="$c" -v n="$n" 'BEGIN { printf "%.4f", c / n }')
    printf '%-6s %3s %9s %9s %6s %9s %9s\n' "$mode" "$r" "$w" "$comp" "$n" "$c" "$per"
    echo "$mode $w $n $c $per $comp" >>"$results"
  done
done
echo "# medians (load now $(cut -d' ' -f1-3 /proc/loadavg))"
for mode in sync async start floor one; do
  awk -v m="$mode" '$1 == m { w[++k] = $2; c[k] = $4; p[k] = $5; n = $3; t[k] = $6 }
    function med(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
        if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
    END { printf "%-6s wall %.3f s  compute %.3f s  in checkpoints %.3f s  (%d, %.4f s each)\n",
          m, med(w, k), med(t, k), med(c, k), n, med(p, k) }' "$results"
done

# The bound: per checkpoint, from the medians of "one" (W + F) and the floor's compute.
awk -v every="$every" -v steps="$steps" '
  function med(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
      if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
  $1 == "one" { one[++k1] = $5 } $1 == "sync" { sy[++ks] = $5 } $1 == "floor" { fl[++kf] = $6 }
  END { wf = med(one, k1); c = med(fl, kf) / steps * every; s = med(sy, ks)
        l = (wf - c) / 2; if (l < 0) l = 0
        printf "bound: one thread %.4f s per checkpoint, compute %.4f s per %d steps ->" \
               " the solver loses >= %.4f s per checkpoint = %.0f %% of sync (%.4f s)\n",
               wf, c, every, l, 100 * l / s, s }' "$results"
rm -f "$results"
