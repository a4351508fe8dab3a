#!/bin/bash
# chain.sh - submits a chain of heat3d checkpoint/restart jobs (slurm/checkpoint.sbatch),
# each depending on the one before (--dependency=afterany:), and optionally a
# post-processing job after the last (slurm/postprocess.sbatch). See slurm/README.md.
#
#   slurm/chain.sh [options] FILE [heat3d options...]
#
#   -k K              jobs in the chain (default: the length of the -n list, at least 1)
#   -n N1,N2,...      tasks of job 1, 2, ...; the last value repeats (default 4)
#   -t TIME           time limit of each job (sbatch --time; default 00:30:00)
#   -w SECONDS        warning time: Slurm signals USR1 this long before the limit
#                     (default 120; see README.md for how to choose it)
#   -L srun|mpirun    launcher inside the jobs (default: srun if `srun --mpi=list` has
#                     pmix, else mpirun). srun: --signal=USR1@W reaches the ranks
#                     directly; mpirun: --signal=B:USR1@W reaches the batch shell,
#                     which forwards it to mpirun, which forwards it to the ranks.
#   -p NP             also submit postprocess.sbatch on NP tasks after the chain (0: none;
#                     default 1)
#   -c                continue: job 1 restarts from FILE too (default: job 1 starts a
#                     new run and replaces FILE)
#   -r KEEP           retention: after each job, `afmt compact --keep KEEP` keeps the
#                     KEEP newest checkpoint layers and folds the older ones into one
#                     (default 3; off: no compaction; AFMT_KEEP in checkpoint.sbatch)
#   -s ARG            an extra sbatch argument for every job (repeatable), e.g.
#                     -s --partition=big -s --output=logs/%x-%j.out
#   --parsable        print only the job ids, one line: chain jobs then the postprocess job
#   --dry-run         print the sbatch commands instead of running them
#   -h, --help        this text
#
# heat3d options are passed to every job (use the same --steps in all). The executables:
# HEAT3D, POSTPROCESS and AFMT in the environment, else BUILD/examples/heat3d,
# BUILD/examples/postprocess and BUILD/tools/afmt with BUILD=${AFMT_BUILD_DIR:-build} under
# the repository, else on PATH. Each job exits 0 (done), 3 (checkpointed early: the next
# job goes on) or 1 (error); afterany starts the next job in every case, and a job after
# the run is complete finds nothing to do and exits 0 at once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() {
    echo "chain.sh: $*" >&2
    exit 2
}

K="" NLIST=4 TIME=00:30:00 WARN=120 LAUNCHER="" POST_NP=1 CONT=0 PARSABLE=0 DRY=0 KEEP=${AFMT_KEEP:-3}
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
    -k) K=${2:?-k needs a value} && shift ;;
    -n) NLIST=${2:?-n needs a value} && shift ;;
    -t) TIME=${2:?-t needs a value} && shift ;;
    -w) WARN=${2:?-w needs a value} && shift ;;
    -L) LAUNCHER=${2:?-L needs a value} && shift ;;
    -p) POST_NP=${2:?-p needs a value} && shift ;;
    -r) KEEP=${2:?-r needs a value} && shift ;;
    -s) extra+=("${2:?-s needs a value}") && shift ;;
    -c) CONT=1 ;;
    --parsable) PARSABLE=1 ;;
    --dry-run) DRY=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    --) shift && break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
    esac
    shift
done
[ $# -ge 1 ] || die "expected FILE (see --help)"
FILE=$1
shift
case "$FILE" in /*) ;; *) FILE=$PWD/$FILE ;; esac # jobs may start elsewhere

IFS=, read -r -a ntasks <<<"$NLIST"
for n in "${ntasks[@]}"; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "-n: bad task count '$n'"; done
[ -n "$K" ] || K=${#ntasks[@]}
[[ "$K" =~ ^[1-9][0-9]*$ ]] || die "-k: bad job count '$K'"
[[ "$WARN" =~ ^[0-9]+$ ]] || die "-w: bad warning time '$WARN'"
[[ "$POST_NP" =~ ^[0-9]+$ ]] || die "-p: bad task count '$POST_NP'"
[[ "$KEEP" =~ ^(off|[0-9]+)$ ]] || die "-r: bad layer count '$KEEP' (a number or off)"
if [ -z "$LAUNCHER" ]; then
    if srun --mpi=list 2>&1 | grep -qw "${AFMT_SRUN_MPI:-pmix}"; then LAUNCHER=srun; else LAUNCHER=mpirun; fi
fi
case "$LAUNCHER" in
srun) SIGNAL="USR1@$WARN" ;;
mpirun) SIGNAL="B:USR1@$WARN" ;;
*) die "-L: expected srun or mpirun" ;;
esac

# The executables, as absolute paths (the jobs run the batch script from a spool copy).
repo=$(cd "$here/.." && pwd)
build=${AFMT_BUILD_DIR:-$repo/build}
find_exe() { # VAR default-path name
    local v=${!1:-}
    if [ -z "$v" ] && [ -x "$2" ]; then v=$2; fi
    if [ -z "$v" ]; then v=$(command -v "$3" || true); fi
    if [ -z "$v" ] || [ ! -x "$v" ]; then die "$3 not found: set $1 or build into $build"; fi
    case "$v" in /*) ;; *) v=$PWD/$v ;; esac
    printf '%s' "$v"
}
HEAT3D=$(find_exe HEAT3D "$build/examples/heat3d" heat3d)
AFMT=$(find_exe AFMT "$build/tools/afmt" afmt)
export HEAT3D AFMT AFMT_LAUNCHER=$LAUNCHER
if [ "$POST_NP" -gt 0 ]; then
    POSTPROCESS=$(find_exe POSTPROCESS "$build/examples/postprocess" postprocess)
    export POSTPROCESS
fi

# submit ARGS...: sbatch --parsable ARGS; the job id in $id.
dry_id=0
submit() {
    if [ "$DRY" = 1 ]; then
        if [ "$PARSABLE" = 1 ]; then echo "sbatch --parsable $*" >&2; else echo "sbatch --parsable $*"; fi
        dry_id=$((dry_id + 1))
        id=DRY$dry_id
        return
    fi
    local out
    out=$(sbatch --parsable "$@") || die "sbatch failed: sbatch $*"
    id=${out%%;*} # "id;cluster" on federated systems
}

ids=()
prev=""
for ((i = 1; i <= K; i++)); do
    n=${ntasks[$((i <= ${#ntasks[@]} ? i - 1 : ${#ntasks[@]} - 1))]}
    mode=auto
    if [ "$i" = 1 ] && [ "$CONT" = 0 ]; then mode=new; fi
    args=(--job-name=heat3d-chain --ntasks="$n" --time="$TIME" --signal="$SIGNAL"
        "--export=ALL,AFMT_MODE=$mode,AFMT_KEEP=$KEEP")
    if [ -n "$prev" ]; then args+=(--dependency="afterany:$prev"); fi
    submit "${args[@]}" "${extra[@]}" "$here/checkpoint.sbatch" "$FILE" "$@"
    ids+=("$id")
    if [ "$PARSABLE" = 0 ]; then
        echo "chain.sh: job $i of $K: $id ($n task$([ "$n" = 1 ] || echo s), ${prev:+after $prev, }$([ "$mode" = new ] && echo "new run" || echo "restart"), --signal=$SIGNAL)"
    fi
    prev=$id
done
if [ "$POST_NP" -gt 0 ]; then
    submit --job-name=heat3d-post --ntasks="$POST_NP" --dependency="afterany:$prev" \
        "${extra[@]}" "$here/postprocess.sbatch" "$FILE"
    ids+=("$id")
    if [ "$PARSABLE" = 0 ]; then
        echo "chain.sh: postprocess: $id ($POST_NP task$([ "$POST_NP" = 1 ] || echo s), after $prev)"
    fi
fi
if [ "$PARSABLE" = 1 ]; then echo "${ids[*]}"; fi
