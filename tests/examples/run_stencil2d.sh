#!/usr/bin/env bash
# run_stencil2d.sh STENCIL2D AFMT DIR MPIEXEC [MPIEXEC ARGS...] - the ported stencil code of
# docs/porting-from-hdf5.md (examples/stencil2d.c): an uninterrupted run on 1 rank, and a
# run stopped twice and restarted each time on another rank count (2, then 3, then 4),
# must end with the same bits (afmt diff of the two files' newest layers).
set -u
S=$1
AFMT=$2
D=$3
shift 3
MPI=("$@")
W=$(mktemp -d "$D/afmt-stencil2d.XXXXXX") || exit 2
trap 'rm -rf "$W"' EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}
"${MPI[@]}" 1 "$S" "$W/a.afmt" 61 37 12 4 || fail "the uninterrupted run"
"${MPI[@]}" 2 "$S" "$W/b.afmt" 61 37 12 4 4 || fail "the first leg (2 ranks)"
"${MPI[@]}" 3 "$S" "$W/b.afmt" 61 37 12 4 8 >"$W/out" || fail "the second leg (3 ranks)"
grep -q "restart at step 4 on 3 ranks" "$W/out" || fail "no restart at step 4: $(cat "$W/out")"
"${MPI[@]}" 4 "$S" "$W/b.afmt" 61 37 12 4 >"$W/out" || fail "the third leg (4 ranks)"
grep -q "restart at step 8 on 4 ranks" "$W/out" || fail "no restart at step 8: $(cat "$W/out")"
if [ "$AFMT" != none ]; then
    "$AFMT" diff "$W/a.afmt" "$W/b.afmt" || fail "the restarted run differs from the uninterrupted one"
    "$AFMT" dump "$W/b.afmt" step >"$W/out" && [ "$(cat "$W/out")" = 12 ] || fail "step is not 12"
fi
echo "ok: restarted twice on 2, 3, 4 ranks, the same bits as one uninterrupted run"
