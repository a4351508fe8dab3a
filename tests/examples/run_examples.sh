#!/usr/bin/env bash
# run_examples.sh - end-to-end tests of examples/heat3d and examples/postprocess
# (ctest examples.heat3d.MODE).
#
#   run_examples.sh MODE HEAT3D POSTPROCESS FIELDCMP AFMT_TOOL DIR MPIEXEC NPFLAG [FLAGS...]
#
# MODE restart: an uninterrupted run of N steps on 2 ranks (the reference) must equal, bit
#   for bit, (a) K steps on 4 ranks (rank grid 1x2x2) + a restart to N on 3 ranks (1x1x3)
#   and (b) K' steps on 1 rank + a restart to N on 4 ranks (2x2x1), each written with
#   another codec; and N serial steps of the scheme (fieldcmp evolve) from the initial
#   condition written by 3 ranks. With the afmt
#   tool (AFMT_TOOL, if it exists): `afmt diff` finds no difference and `afmt verify` passes.
# MODE postprocess: postprocess --csv on 1 and 3 ranks and the serial fieldcmp stats agree
#   (per-slice rows identical, global min/max exactly, mean/total within 1e-12 relative), on
#   the initial condition (whose wall slices are exactly 300 K) and on a later step.
# MODE layers: a run stopped by --max-steps (exit 3) and continued on another rank count
#   has one layer per checkpoint with the right step/time attributes (afmt_open_layer), a
#   finished restart adds no layer, and the error exits are 1 (missing file) and 2 (usage);
#   the same chain with --async (afmt_commit_start under MPI_THREAD_MULTIPLE) and with
#   --async-start (under plain MPI_Init) gives the same field and layers; --keep 2 the same
#   field with the chain folded to the newest 3 layers.
#
# The grid (40x36x28, chunks 16^3) is cut by no rank grid along the chunk boundaries.
set -u

if [ $# -lt 8 ]; then
    echo "usage: run_examples.sh MODE HEAT3D POSTPROCESS FIELDCMP AFMT_TOOL DIR MPIEXEC NPFLAG" \
        "[FLAGS...]" >&2
    exit 2
fi
MODE=$1 HEAT3D=$2 POST=$3 CMP=$4 TOOL=$5 DIR=$6 MPIEXEC=$7 NPFLAG=$8
shift 8
FLAGS=("$@")
GRID=(--grid 40x36x28 --chunk 16x16x16)

WORK=$(mktemp -d "$DIR/afmt-examples-$MODE.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
FAILS=0

fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}

# mpi NP PROG ARGS... : runs PROG on NP ranks; its output goes to the test log.
mpi() {
    local np=$1
    shift
    echo "+ mpiexec -n $np $(basename "$1") ${*:2}" >&2
    "$MPIEXEC" "$NPFLAG" "$np" "${FLAGS[@]}" "$@"
}

# expect_rc WANT NP PROG ARGS... : runs it and checks the exit status.
expect_rc() {
    local want=$1
    shift
    mpi "$@"
    local rc=$?
    [ "$rc" = "$want" ] || fail "exit status $rc, expected $want: ${*:2}"
    return 0
}

# same FILE_A FILE_B : the fields and step/time equal bit for bit (fieldcmp, afmt diff).
same() {
    mpi 1 "$CMP" cmp "$1" "$2" || fail "fieldcmp: $1 and $2 differ"
    if [ -x "$TOOL" ]; then
        echo "+ afmt diff $1 $2"
        "$TOOL" diff "$1" "$2" || fail "afmt diff: $1 and $2 differ (exit $?)"
    fi
}

case "$MODE" in
restart)
    ref=$WORK/ref.afmt a=$WORK/a.afmt b=$WORK/b.afmt init=$WORK/init.afmt
    expect_rc 0 2 "$HEAT3D" --file "$ref" "${GRID[@]}" --steps 20 --checkpoint-every 0
    # rank grids 1x2x2 then 1x1x3: the halos of dimensions 1 and 2 are exercised too
    # (MPI_Dims_create alone splits 2, 3 and 4 ranks along dimension 0 and 1 only)
    expect_rc 0 4 "$HEAT3D" --file "$a" "${GRID[@]}" --steps 7 --checkpoint-every 5 --codec zstd \
        --rank-grid 1x2x2
    expect_rc 0 3 "$HEAT3D" --file "$a" --steps 20 --checkpoint-every 5 --restart --codec zstd \
        --rank-grid 1x1x3
    expect_rc 0 1 "$HEAT3D" --file "$b" "${GRID[@]}" --steps 13 --checkpoint-every 0 \
        --codec none
    expect_rc 0 4 "$HEAT3D" --file "$b" --steps 20 --checkpoint-every 0 --restart --codec lz4
    expect_rc 0 3 "$HEAT3D" --file "$init" "${GRID[@]}" --steps 0
    same "$ref" "$a"
    same "$ref" "$b"
    mpi 1 "$CMP" evolve "$init" "$ref" 20 || fail "the parallel solver differs from the serial one"
    if [ -x "$TOOL" ]; then
        for f in "$ref" "$a" "$b"; do
            echo "+ afmt verify $f"
            "$TOOL" verify "$f" || fail "afmt verify $f (exit $?)"
        done
    else
        echo "note: $TOOL not built; afmt diff/verify skipped (fieldcmp compared the fields)"
    fi
    ;;

postprocess)
    for spec in "0:2" "15:3"; do
        steps=${spec%%:*} np=${spec##*:}
        f=$WORK/s$steps.afmt
        expect_rc 0 "$np" "$HEAT3D" --file "$f" "${GRID[@]}" --steps "$steps" \
            --checkpoint-every 0 --quiet
        mpi 1 "$POST" --csv "$f" >"$WORK/p1.csv" || fail "postprocess on 1 rank"
        mpi 3 "$POST" --csv "$f" >"$WORK/p3.csv" || fail "postprocess on 3 ranks"
        mpi 1 "$CMP" stats "$f" >"$WORK/serial.csv" || fail "fieldcmp stats"
        # the per-slice rows: identical bits whoever computes them
        for p in p1 p3; do
            grep '^slice,' "$WORK/$p.csv" | cmp -s - <(grep '^slice,' "$WORK/serial.csv") ||
                fail "step $steps: $p slices differ from the serial statistics"
        done
        [ "$(grep -c '^slice,' "$WORK/p3.csv")" = 40 ] || fail "step $steps: not 40 slices"
        # the global row: min/max exact, mean and total within 1e-12 relative
        globals=$(grep -h '^global,' "$WORK/p1.csv" "$WORK/p3.csv" "$WORK/serial.csv")
        echo "$globals"
        awk -F, 'NR == 1 { for (i = 3; i <= 6; i++) g[i] = $i; next }
            { if ($3 != g[3] || $4 != g[4]) { print "min/max differ: " $0; bad = 1 }
              for (i = 5; i <= 6; i++) {
                  d = $i - g[i]; if (d < 0) d = -d; s = g[i] < 0 ? -g[i] : g[i]
                  if (d > 1e-12 * s) { print "mean/total differ beyond 1e-12: " $0; bad = 1 } } }
            END { exit bad }' <<<"$globals" || fail "step $steps: global statistics differ"
        grep -q "^# step $steps\$" "$WORK/p3.csv" || fail "step $steps: step attribute"
        grep -q '^# layers 1$' "$WORK/p3.csv" || fail "step $steps: layer count"
        if [ "$steps" = 0 ]; then
            # known values of the initial condition: the wall slices are exactly 300 K,
            # the minimum is the wall, the hot spots peak near 300 + 200 K
            grep -qx 'slice,0,300,300,300,[0-9.e+]*' "$WORK/p3.csv" || fail "slice 0 is not 300 K"
            grep -qx 'slice,39,300,300,300,[0-9.e+]*' "$WORK/p3.csv" || fail "slice 39 not 300 K"
            grep -qx "slice,0,300,300,300,$((36 * 28 * 300))" "$WORK/p3.csv" ||
                fail "slice 0 sum is not 36*28*300"
            awk -F, '$1 == "global" { exit !($3 == 300 && $4 > 450 && $4 < 650) }' \
                "$WORK/p3.csv" || fail "initial min/max out of range"
        fi
    done
    # the human-readable table
    mpi 2 "$POST" --stride 10 "$WORK/s15.afmt" || fail "postprocess (table) on 2 ranks"
    ;;

layers)
    f=$WORK/chain.afmt ref=$WORK/ref.afmt
    expect_rc 3 4 "$HEAT3D" --file "$f" "${GRID[@]}" --steps 20 --checkpoint-every 5 \
        --max-steps 8
    expect_rc 0 3 "$HEAT3D" --file "$f" --steps 20 --checkpoint-every 5 --restart
    expect_rc 0 2 "$HEAT3D" --file "$f" --steps 20 --checkpoint-every 5 --restart
    expect_rc 0 2 "$HEAT3D" --file "$ref" "${GRID[@]}" --steps 20 --checkpoint-every 0 --quiet
    same "$ref" "$f"
    mpi 1 "$CMP" layers "$f" >"$WORK/layers.txt" || fail "fieldcmp layers"
    cat "$WORK/layers.txt"
    # index id step time: steps 5 and 8 (stopped), then 10, 15, 20; time = step / 8
    got=$(awk 'NR > 1 { print $1, $3, $4 }' "$WORK/layers.txt" | tr '\n' ';')
    want="0 5 0.625;1 8 1;2 10 1.25;3 15 1.875;4 20 2.5;"
    [ "$got" = "$want" ] || fail "layers: got '$got', want '$want'"
    head -1 "$WORK/layers.txt" | grep -qx 'layers 5' || fail "not 5 layers"
    id8=$(awk 'NR == 3 { print $2 }' "$WORK/layers.txt")
    mpi 2 "$POST" --csv --layer "$id8" "$f" >"$WORK/l8.csv" || fail "postprocess --layer $id8"
    grep -qx '# step 8' "$WORK/l8.csv" || fail "postprocess --layer: step is not 8"
    grep -qx '# layers 2' "$WORK/l8.csv" || fail "postprocess --layer: not 2 layers visible"
    mpi 2 "$POST" --csv "$f" >"$WORK/new.csv" || fail "postprocess newest"
    grep -qx '# step 20' "$WORK/new.csv" || fail "postprocess: newest step is not 20"
    grep -qx '# time 2.5' "$WORK/new.csv" || fail "postprocess: newest time is not 2.5"
    grep -qx '# layers 5' "$WORK/new.csv" || fail "postprocess: not 5 layers"
    # the same chain with --async (each checkpoint drains while the solver goes on; the
    # stop and the end wait for it): the same field and the same layers
    fa=$WORK/achain.afmt
    expect_rc 3 4 "$HEAT3D" --file "$fa" "${GRID[@]}" --steps 20 --checkpoint-every 5 \
        --max-steps 8 --async
    expect_rc 0 3 "$HEAT3D" --file "$fa" --steps 20 --checkpoint-every 5 --restart --async
    same "$ref" "$fa"
    mpi 1 "$CMP" layers "$fa" >"$WORK/alayers.txt" || fail "fieldcmp layers (--async)"
    got=$(awk 'NR > 1 { print $1, $3, $4 }' "$WORK/alayers.txt" | tr '\n' ';')
    [ "$got" = "$want" ] || fail "layers --async: got '$got', want '$want'"
    # and with --async-start (plain MPI_Init: the commit's collective part at the start)
    fs=$WORK/schain.afmt
    expect_rc 3 4 "$HEAT3D" --file "$fs" "${GRID[@]}" --steps 20 --checkpoint-every 5 \
        --max-steps 8 --async-start
    expect_rc 0 3 "$HEAT3D" --file "$fs" --steps 20 --checkpoint-every 5 --restart --async-start
    same "$ref" "$fs"
    mpi 1 "$CMP" layers "$fs" >"$WORK/slayers.txt" || fail "fieldcmp layers (--async-start)"
    got=$(awk 'NR > 1 { print $1, $3, $4 }' "$WORK/slayers.txt" | tr '\n' ';')
    [ "$got" = "$want" ] || fail "layers --async-start: got '$got', want '$want'"
    # and with --keep 2 (retention after every checkpoint): the same field, the chain
    # folded to the newest 3 layers as they were (the BASE is step 10's, then 15, 20)
    fk=$WORK/kchain.afmt
    expect_rc 3 4 "$HEAT3D" --file "$fk" "${GRID[@]}" --steps 20 --checkpoint-every 5 \
        --max-steps 8 --keep 2
    expect_rc 0 3 "$HEAT3D" --file "$fk" --steps 20 --checkpoint-every 5 --restart --keep 2
    same "$ref" "$fk"
    mpi 1 "$CMP" layers "$fk" >"$WORK/klayers.txt" || fail "fieldcmp layers (--keep 2)"
    got=$(awk 'NR > 1 { print $1, $3, $4 }' "$WORK/klayers.txt" | tr '\n' ';')
    [ "$got" = "0 10 1.25;1 15 1.875;2 20 2.5;" ] || fail "layers --keep 2: got '$got'"
    expect_rc 2 1 "$HEAT3D" --file "$fk" --keep two
    # errors: a missing file is 1, a bad command line 2
    expect_rc 1 2 "$HEAT3D" --file "$WORK/missing.afmt" --steps 5 --restart
    expect_rc 2 2 "$HEAT3D" --file "$f" --steps five
    expect_rc 2 1 "$HEAT3D" --file "$f" --grid 1x2
    expect_rc 2 2 "$HEAT3D" --file "$f" --rank-grid 3x0x0
    expect_rc 1 1 "$POST" "$WORK/missing.afmt"
    ;;

*)
    echo "run_examples.sh: unknown mode '$MODE'" >&2
    exit 2
    ;;
esac

if [ "$FAILS" -gt 0 ]; then
    echo "examples.heat3d.$MODE: $FAILS failure(s)" >&2
    exit 1
fi
echo "examples.heat3d.$MODE: OK"
