#!/usr/bin/env bash
# benchmarks/run.sh - the standard afmt-bench set: afmt against parallel HDF5 (no filter,
# and shuffle + LZ4), raw MPI-IO and the codec alone, on 2 and 4 ranks, in /dev/shm and
# on disk, plus the metadata cases (1000 small arrays, also with 4 attributes each and the
# check of collective calls on and off; opening a 100-layer file of 10^6 chunks), an N-to-M
# read (4 writers, 3 readers), commit cost against rank count, and the peak memory.
#
#   benchmarks/run.sh [--quick | --targets] [--build DIR] [--disk DIR] [--label TEXT]
#
#   (default)  the standard set: about 4-7 minutes on a 2-core machine
#   --quick    smaller data, fewer repetitions: about 2 minutes
#   --targets  only the measurements of the issue's targets (2 ranks, 64 MiB per rank,
#              /dev/shm; 1000 small arrays on 4 ranks; open of 100 layers / 10^6 chunks;
#              peak memory), with 11 repetitions: about 3-5 minutes
#
# Writes benchmarks/results/<date>[-targets|-quick].jsonl (one JSON object per case),
# .txt (the tables as printed, with the load before each invocation), .png (GB/s per
# case, benchmarks/plot.py) and .md (the tables and the target check for
# docs/performance.md). The machine's load is noted before every invocation: other jobs
# on the machine slow every case alike (the repetitions of the cases are interleaved),
# but they widen the min-max ranges.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-bench
DISK=/tmp
MODE=standard
LABEL=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) MODE=quick ;;
    --targets) MODE=targets ;;
    --build) BUILD=$2; shift ;;
    --disk) DISK=$2; shift ;;
    --label) LABEL=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

BENCH=$BUILD/benchmarks/afmt-bench
if [ ! -x "$BENCH" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 --target afmt-bench >/dev/null
fi
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
MPIEXEC=(mpiexec --oversubscribe)
SHM=/dev/shm
RES=$ROOT/benchmarks/results
mkdir -p "$RES"
STAMP=$(date +%Y-%m-%d-%H%M)$([ $MODE = standard ] || echo "-$MODE")
OUT=$RES/$STAMP.jsonl
LOG=$RES/$STAMP.txt
[ -n "$LABEL" ] || LABEL=$MODE
CACHE=$(mktemp -d "$SHM/afmt-bench-cache.XXXXXX")
trap 'rm -rf "$CACHE"' EXIT
: >"$OUT"
: >"$LOG"

log() { echo "$*" | tee -a "$LOG"; }
# run NP ARGS...: one afmt-bench invocation, its load noted before it.
run() {
    local np=$1
    shift
    log "## $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)  np=$np  afmt-bench $*"
    "${MPIEXEC[@]}" -np "$np" "$BENCH" -o "$OUT" -L "$LABEL" "$@" 2>&1 | tee -a "$LOG"
}
# memory SIZE CONTENT...: peak RSS per rank of a write+commit (/usr/bin/time -v around every
# rank), data loaded from the cache filled by an earlier run of the same size (so the PDE
# solver's buffers are not counted), no read phase.
memory() {
    local sz=$1
    shift
    for k in "$@"; do
        log "## $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)  np=2  memory $k: mpiexec -np 2" \
            "/usr/bin/time -v afmt-bench -w field -k $k -s $sz -a afmt -r 1 -R 0 -d $SHM -D CACHE"
        "${MPIEXEC[@]}" -np 2 /usr/bin/time -v "$BENCH" -w field -k "$k" -s "$sz" -a afmt -r 1 \
            -R 0 -d $SHM -D "$CACHE" -L "$LABEL" >"$CACHE/mem.out" 2>"$CACHE/mem.err" || true
        grep -E "afmt:|w_create" "$CACHE/mem.out" | tee -a "$LOG" || true
        grep -E "Maximum resident set size" "$CACHE/mem.err" | tee -a "$LOG" || true
        local rss size_b kb
        rss=$(grep "Maximum resident set size" "$CACHE/mem.err" | awk '{print $NF}' | sort -n | tr '\n' ' ')
        size_b=$(numfmt --from=iec "$sz")
        for kb in $rss; do
            printf '{"bench":"afmt-bench","workload":"memory","content":"%s","label":"%s","case":"afmt:lz4+sh","np":2,"bytes_per_rank":%s,"max_rss_kib":%s,"limit_kib":%s,"date":"%s"}\n' \
                "$k" "$LABEL" "$size_b" "$kb" "$(((size_b * 13 / 10 + 64 * 1048576) / 1024))" \
                "$STAMP" >>"$OUT"
        done
    done
}

T0=$(date +%s)
log "# afmt-bench $MODE set ($LABEL), $(date), $(nproc) cores, $(uname -r)"
log "# git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
if awk -v c="$(nproc)" '{exit !($1 > c)}' /proc/loadavg; then
    log "# WARNING: load $(cut -d' ' -f1 /proc/loadavg) > $(nproc) cores: other jobs are running;" \
        "expect wide min-max ranges"
fi
ALL=afmt,hdf5,hdf5:none,mpiio,codec

if [ $MODE = targets ]; then
    # The issue's targets: 2 ranks, 64 MiB per rank, LZ4 + shuffle, /dev/shm, one run.
    for k in smooth noisy const; do
        run 2 -w field -k "$k" -s 64M -a afmt,hdf5,mpiio,codec -r 11 -d $SHM -D "$CACHE"
    done
    run 4 -w small -a afmt -r 11 -d $SHM
    run 1 -w open --layers 100 --chunks 1000000 -r 11 -d $SHM
    memory 64M smooth noisy const
else
    if [ $MODE = quick ]; then
        SZ2=16M SZ4=8M R=3 RD=2 RS=2 CHUNKS=100000 SCALE="1 2 4"
    else
        SZ2=64M SZ4=32M R=7 RD=3 RS=3 CHUNKS=1000000 SCALE="1 2 4 8 16"
    fi
    # (a) 3-D float64 field from a PDE, three contents; the targets' configuration first:
    #     2 ranks, 64 MiB per rank, LZ4 + shuffle, /dev/shm.
    for k in smooth noisy const; do
        run 2 -w field -k "$k" -s $SZ2 -a $ALL,mpiio-ind -r $R -d $SHM -D "$CACHE"
    done
    for k in smooth const; do
        run 2 -w field -k "$k" -s $SZ2 -a $ALL -r $RD -d "$DISK" -D "$CACHE"
        run 4 -w field -k "$k" -s $SZ4 -a $ALL -r $RD -d $SHM -D "$CACHE"
        run 4 -w field -k "$k" -s $SZ4 -a $ALL -r $RD -d "$DISK" -D "$CACHE"
    done
    # Chunks shared by two ranks (100 planes per rank, chunks of 32): afmt's commit exchange
    # and HDF5's collective chunk redistribution.
    run 2 -w field -k smooth -g 100x256x256 -a afmt,hdf5,mpiio -r $RD -d $SHM -D "$CACHE"
    # (b) VPIC-IO-like particles: 8 float32 1-D arrays per rank.
    run 2 -w vpic -s $SZ2 -a $ALL -r $RD -d $SHM
    run 4 -w vpic -s $SZ4 -a $ALL -r $RD -d "$DISK"
    # (c) metadata: 1000 arrays of 4 KiB per rank (HDF5 takes seconds per repetition here).
    run 4 -w small -a $ALL -r $RS -d $SHM
    run 2 -w small -a afmt,mpiio -r $R -d "$DISK"
    # The check of collective metadata calls (afmt_opts_set_check_collective) on and off,
    # interleaved: 1000 arrays with 4 attributes each, 5000 metadata calls per commit.
    run 4 -w small --attrs 4 -a afmt,afmt-nocheck -r $R -d $SHM
    # (d) N-to-M: written by 4 ranks, read by 3.
    run 4 -w field -k smooth -s $SZ4 -a afmt,hdf5,hdf5:none,mpiio -R 3 -r $RD -d $SHM -D "$CACHE"
    # Time steps: 4 commits (layers) per write phase, one handle (warm buffers).
    run 2 -w field -k smooth -s $SZ4 -T 4 -a afmt,hdf5,mpiio,codec -r $RD -d $SHM -D "$CACHE"
    # Open: one rank, 100 layers, 10^6 chunks (10^5 in --quick).
    run 1 -w open --layers 100 --chunks $CHUNKS -r 5 -d $SHM
    # Commit cost against rank count (oversubscribed beyond 2): 1000 small arrays, no
    # codec, so the file size minus the raw bytes is the metadata (superblock, footer,
    # trailer).
    for np in $SCALE; do
        run "$np" -w small -z none -a afmt -r $RS -d $SHM -R 0
    done
    memory $SZ2 smooth noisy const
fi

log "# done in $(($(date +%s) - T0)) s"
PY=/usr/bin/python3
if $PY -c 'import matplotlib' 2>/dev/null; then
    $PY "$ROOT/benchmarks/plot.py" "$OUT" --png "$RES/$STAMP.png" --markdown "$RES/$STAMP.md"
    log "# wrote $OUT, $LOG, $RES/$STAMP.png, $RES/$STAMP.md"
else
    $PY "$ROOT/benchmarks/plot.py" "$OUT" --markdown "$RES/$STAMP.md"
    log "# wrote $OUT, $LOG, $RES/$STAMP.md (no plot: apt-get install python3-matplotlib)"
fi
