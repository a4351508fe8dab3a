#!/bin/bash
# retention.sh - checkpoint retention (afmt compact --keep K, afmt_compact_keep): heat3d
# writes N checkpoints, one job at a time as a Slurm chain does (--restart --max-steps,
# one checkpoint per run), and after each run `afmt compact --keep K` folds all but the K
# newest. Prints, after every compaction, the file size against the newest checkpoint's
# compressed size (its layer's stored bytes), and checks that every kept layer dumps bit
# for bit as it did before the compaction (afmt dump --layer ID --format raw, sha256).
#
#   benchmarks/retention.sh [BUILD] [DIR] [N] [K] [NP] [heat3d options...]
#
# BUILD: the build folder (default build); DIR: where the file goes (default /dev/shm);
# N checkpoints (default 20), keep K (default 3), NP ranks (default 2). Exit 1 if a kept
# layer changed or the size ever exceeds (K + 1) x the checkpoint size.
#
# RETENTION_AUTO=1: retention as the writer's option instead (heat3d --keep K:
# afmt_opts_set_retention, applied inside each commit), no afmt compact step. Every
# layer is dumped when it first appears; on every later run each layer still in the
# chain (the BASE, under the newest folded layer's id, included) must dump the same bytes.
# "before" is then the size the chain would have without retention (the sum of the
# checkpoints' stored bytes so far, plus the superblock region), "after" the file's.
set -euo pipefail
build=${1:-build}
dir=${2:-/dev/shm}
n=${3:-20}
keep=${4:-3}
np=${5:-2}
shift $(($# < 5 ? $# : 5))
opts=("$@")
[ ${#opts[@]} -gt 0 ] || opts=(--grid 128x96x80)
heat=$build/examples/heat3d
afmt=$build/tools/afmt
f=$dir/retention-$$.afmt
trap 'rm -f "$f" "$f".lock' EXIT
mpi() { mpiexec --oversubscribe -n "$np" "$@"; }

ids() { "$afmt" info --json "$f" | grep -o '^ *{"id": [0-9]*' | grep -o '[0-9]*$'; }
stored() { # stored bytes of layer $1
    "$afmt" info --json "$f" | grep "^ *{\"id\": $1," | sed 's/.*"stored_bytes": \([0-9]*\),.*/\1/'
}
digest() { "$afmt" dump "$f" temperature --layer "$1" --format raw | sha256sum | cut -c1-16; }

auto=${RETENTION_AUTO:-0}
keep_opt=()
[ "$auto" = 1 ] && keep_opt=(--keep "$keep")

fail=0 worst=0 total=4096
declare -A seen=()
caption="kept layers (id:sha256 prefix, same before and after)"
[ "$auto" = 1 ] && caption="layers of the chain (id:sha256 prefix, the same at every run)"
printf '%5s %6s %12s %12s %12s %7s  %s\n' run layers before after checkpoint ratio "$caption"
for ((i = 1; i <= n; i++)); do
    restart=()
    [ "$i" -gt 1 ] && restart=(--restart)
    mpi "$heat" --file "$f" "${restart[@]}" --steps $((n * 10)) --checkpoint-every 10 \
        --max-steps 10 --quiet "${keep_opt[@]}" "${opts[@]}" >/dev/null 2>&1 || [ $? -eq 3 ]
    newest=$(ids | tail -n1)
    ck=$(stored "$newest")
    if [ "$auto" = 1 ]; then
        total=$((total + ck))
        after=$(stat -c %s "$f")
        kept=""
        for id in $(ids); do
            d=$(digest "$id")
            if [ -z "${seen[$id]:-}" ]; then
                seen[$id]=$d
            elif [ "$d" != "${seen[$id]}" ]; then
                echo "layer $id changed: ${seen[$id]} -> $d" >&2
                fail=1
            fi
            kept+="$id:$d "
        done
        nl=$(ids | wc -l)
        [ "$nl" -le $((keep + 1)) ] || { echo "run $i: $nl layers > $((keep + 1))" >&2; fail=1; }
        ratio=$(awk -v a="$after" -v c="$ck" 'BEGIN { printf "%.2f", a / c }')
        worst=$(awk -v r="$ratio" -v w="$worst" 'BEGIN { print (r > w ? r : w) }')
        printf '%5d %6d %12d %12d %12d %7s  %s\n' "$i" "$nl" "$total" "$after" "$ck" "$ratio" "$kept"
        if awk -v r="$ratio" -v k="$keep" 'BEGIN { exit !(r > k + 1) }'; then fail=1; fi
        continue
    fi
    before=$(stat -c %s "$f")
    declare -A dig=()
    for id in $(ids | tail -n "$keep"); do dig[$id]=$(digest "$id"); done
    mpi "$afmt" compact "$f" --keep "$keep" >/dev/null
    after=$(stat -c %s "$f")
    kept=""
    for id in "${!dig[@]}"; do
        d=$(digest "$id")
        if [ "$d" != "${dig[$id]}" ]; then
            echo "layer $id changed: ${dig[$id]} -> $d" >&2
            fail=1
        fi
    done
    for id in $(ids | tail -n "$keep"); do kept+="$id:${dig[$id]:-?} "; done
    nl=$(ids | wc -l)
    ratio=$(awk -v a="$after" -v c="$ck" 'BEGIN { printf "%.2f", a / c }')
    worst=$(awk -v r="$ratio" -v w="$worst" 'BEGIN { print (r > w ? r : w) }')
    printf '%5d %6d %12d %12d %12d %7s  %s\n' "$i" "$nl" "$before" "$after" "$ck" "$ratio" "$kept"
    if awk -v r="$ratio" -v k="$keep" 'BEGIN { exit !(r > k + 1) }'; then fail=1; fi
    unset dig
done
"$afmt" verify -q "$f" || fail=1
echo "worst size / checkpoint: $worst (limit $((keep + 1))); kept layers bit for bit: $([ $fail = 0 ] && echo yes || echo NO)"
exit $fail
