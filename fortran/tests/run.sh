#!/usr/bin/env bash
# run.sh - the MPI jobs of one fortran.* test, in order; fails if any job fails.
#
#   run.sh interop NP WRITER READER SCRATCH MPIEXEC NPFLAG [MPIEXEC ARGS...]
#       WRITER write FILE on NP ranks, then READER read FILE on NP ranks (WRITER and
#       READER are f_interop and c_interop, one way or the other).
#   run.sh heat2d 0 HEAT2D FIELDCMP2D SCRATCH MPIEXEC NPFLAG [MPIEXEC ARGS...]
#       A: 40 steps uninterrupted on 2 ranks. B: 20 steps on 3 ranks, then --restart to
#       step 40 on 4 ranks. FIELDCMP2D checks A and B bit for bit (see fieldcmp2d.c).
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
*)
    echo "run.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
