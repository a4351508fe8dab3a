#!/usr/bin/env bash
# run.sh - the MPI jobs of one fortran.* test, in order; fails if any job fails.
#
#   run.sh interop NP WRITER READER SCRATCH MPIEXEC NPFLAG [MPIEXEC ARGS...]
#       WRITER write FILE on NP ranks, then READER read FILE on NP ranks (WRITER and
#       READER are f_interop and c_interop, one way or the other).
#   run.sh heat2d 0 HEAT2D FIELDCMP2D SCRATCH MPIEXEC NPFLAG [MPIEXEC ARGS...]
#       A: 40 steps uninterrupted on 2 ranks. B: 20 steps on 3 ranks, then --restart to
#       step 40 on 4 ranks. FIELDCMP2D checks A and B bit for bit (see fieldcmp2d.c).
#   run.sh heat2d-async 0 HEAT2D FIELDCMP2D SCRATCH MPIEXEC NPFLAG [MPIEXEC ARGS...]
#       A as above; C: A's run with --async (checkpoints committed in the background);
#       D: B's runs with --async. FIELDCMP2D checks C and D against A bit for bit, and
#       the async runs must report their checkpoints as started in the background.
set -euo pipefail
mode=$1 np=$2 prog1=$3 prog2=$4 scratch=$5 mpiexec=$6 npflag=$7
shift 7
mpirun() { # NP PROGRAM ARGS...
    local n=$1
    shift
    echo "+ $mpiexec $npflag $n ${extra[*]} $*" >&2
    "$mpiexec" "$npflag" "$n" "${extra[@]}" "$@"
}
extra=("$@")
dir=$(mktemp -d "$scratch/afmt-fortran-test.XXXXXX")
trap 'rm -rf "$dir"' EXIT

case "$mode" in
interop)
    mpirun "$np" "$prog1" write "$dir/interop.afmt"
    mpirun "$np" "$prog2" read "$dir/interop.afmt"
    ;;
heat2d)
    common=(--nx 61 --ny 47 --chunk 16x8 --every 10)
    mpirun 2 "$prog1" --file "$dir/a.afmt" --steps 40 "${common[@]}"
    mpirun 3 "$prog1" --file "$dir/b.afmt" --steps 20 "${common[@]}"
    mpirun 4 "$prog1" --file "$dir/b.afmt" --steps 40 "${common[@]}" --restart
    # A: layers at steps 10, 20, 30, 40; B: 10, 20 (3 ranks) then 30, 40 (4 ranks).
    mpirun 1 "$prog2" "$dir/a.afmt" "$dir/b.afmt" 40 4
    ;;
heat2d-async)
    common=(--nx 61 --ny 47 --chunk 16x8 --every 10)
    started() { # NP ARGS...: a heat2d run whose checkpoints were committed asynchronously
        local out
        out=$(mpirun "$@")
        echo "$out"
        grep -q '^heat2d: checkpoint at step [0-9]* started$' <<<"$out" ||
            { echo "run.sh: no asynchronous checkpoint in: heat2d ${*:2}" >&2; exit 1; }
    }
    mpirun 2 "$prog1" --file "$dir/a.afmt" --steps 40 "${common[@]}"
    started 2 "$prog1" --file "$dir/c.afmt" --steps 40 "${common[@]}" --async
    started 3 "$prog1" --file "$dir/d.afmt" --steps 20 "${common[@]}" --async
    started 4 "$prog1" --file "$dir/d.afmt" --steps 40 "${common[@]}" --restart --async
    mpirun 1 "$prog2" "$dir/a.afmt" "$dir/c.afmt" 40 4 --not-restarted
    mpirun 1 "$prog2" "$dir/a.afmt" "$dir/d.afmt" 40 4
    ;;
*)
    echo "run.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
