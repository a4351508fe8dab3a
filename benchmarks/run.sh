#!/usr/bin/env bash
# benchmarks/run.sh - the standard afmt-bench set: afmt against parallel HDF5 (no filter,
# and shuffle + LZ4), raw MPI-IO and the codec alone, on 2 and 4 ranks, in /dev/shm and
# on disk, plus the metadata cases (1000 small arrays, opening a 100-layer file of 10^6
# chunks), an N-to-M read (4 writers, 3 readers), commit cost against rank count, and the
# peak memory of a write+commit measured with /usr/bin/time -v.
#
#   benchmarks/run.sh [--quick] [--build DIR] [--disk DIR] [--label TEXT]
#
# Writes benchmarks/results/<date>.jsonl (one JSON object per case), <date>.txt (the
# tables as printed) and <date>.png (GB/s per case, benchmarks/plot.py), and prints a
# markdown summary (<date>.md) for docs/performance.md. The full set takes about 10
# minutes on a 2-core machine; --quick about 2 minutes (smaller data, fewer repetitions).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-bench
DISK=/tmp
QUICK=0
LABEL=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --build) BUILD=$2; shift ;;
    --disk) DISK=$2; shift ;;
    --label) LABEL=$2; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
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
STAMP=$(date +%Y-%m-%d-%H%M)
OUT=$RES/$STAMP.jsonl
LOG=$RES/$STAMP.txt
[ -n "$LABEL" ] || LABEL=$([ $QUICK = 1 ] && echo quick || echo standard)
CACHE=$(mktemp -d "$SHM/afmt-bench-cache.XXXXXX")
trap 'rm -rf "$CACHE"' EXIT
: >"$OUT"
: >"$LOG"

log() { echo "$*" | tee -a "$LOG"; }
# run NP ARGS...: one afmt-bench invocation, its load noted before it.
run() {
    local np=$1
    shift
    log "## $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)  np=$np  $*"
    "${MPIEXEC[@]}" -np "$np" "$BENCH" -o "$OUT" -L "$LABEL" "$@" 2>&1 | tee -a "$LOG"
}

T0=$(date +%s)
log "# afmt-bench standard set ($LABEL), $(date), $(nproc) cores, $(uname -r)"
log "# git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"

if [ $QUICK = 1 ]; then
    SZ2=16M SZ4=8M R=3 RD=2 RS=2 CHUNKS=100000 SCALE="1 2 4"
else
    SZ2=64M SZ4=32M R=5 RD=3 RS=3 CHUNKS=1000000 SCALE="1 2 4 8 16"
fi
ALL=afmt,hdf5,hdf5:none,mpiio,codec

# (a) 3-D float64 field from a PDE, three contents; the targets' configuration first:
#     2 ranks, 64 MiB per rank, LZ4 + shuffle, /dev/shm.
for k in smooth noisy const; do
    run 2 -w field -k "$k" -s $SZ2 -a $ALL -r $R -d $SHM -D "$CACHE"
done
for k in smooth const; do
    run 2 -w field -k "$k" -s $SZ2 -a $ALL -r $RD -d "$DISK" -D "$CACHE"
    run 4 -w field -k "$k" -s $SZ4 -a $ALL -r $RD -d $SHM -D "$CACHE"
    run 4 -w field -k "$k" -s $SZ4 -a $ALL -r $RD -d "$DISK" -D "$CACHE"
done
# (b) VPIC-IO-like particles: 8 float32 1-D arrays per rank.
run 2 -w vpic -s $SZ2 -a $ALL -r $RD -d $SHM
run 4 -w vpic -s $SZ4 -a $ALL -r $RD -d "$DISK"
# (c) metadata: 1000 arrays of 4 KiB per rank (HDF5 takes seconds per repetition here).
run 4 -w small -a afmt,hdf5,hdf5:none,mpiio,codec -r $RS -d $SHM
run 2 -w small -a afmt,mpiio -r $R -d "$DISK"
# (d) N-to-M: written by 4 ranks, read by 3.
run 4 -w field -k smooth -s $SZ4 -a afmt,hdf5,hdf5:none,mpiio -R 3 -r $RD -d $SHM -D "$CACHE"
# Time steps: 4 commits (layers) per write phase.
run 2 -w field -k smooth -s $SZ4 -T 4 -a afmt,hdf5,mpiio,codec -r $RD -d $SHM -D "$CACHE"
# Open: one rank, 100 layers, 10^6 chunks (10^5 in --quick).
run 1 -w open --layers 100 --chunks $CHUNKS -r 5 -d $SHM
# Commit cost against rank count (oversubscribed beyond 2): 1000 small arrays, no codec,
# so the file size minus the raw bytes is the metadata (superblock, footer, trailer).
for np in $SCALE; do
    run "$np" -w small -z none -a afmt -r $RS -d $SHM -R 0
done

# Peak memory of write+commit per rank: /usr/bin/time -v around every rank, data loaded
# from the cache filled by (a) (so the PDE solver's buffers are not counted), no read.
for k in smooth noisy const; do
    log "## $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)  np=2  memory $k: /usr/bin/time -v"
    "${MPIEXEC[@]}" -np 2 /usr/bin/time -v "$BENCH" -w field -k "$k" -s $SZ2 -a afmt -r 1 -R 0 \
        -d $SHM -D "$CACHE" -L "$LABEL" >"$CACHE/mem.out" 2>"$CACHE/mem.err" || true
    grep -E "afmt:|w_create" "$CACHE/mem.out" | tee -a "$LOG" || true
    rss=$(grep "Maximum resident set size" "$CACHE/mem.err" | awk '{print $NF}' | sort -n | tr '\n' ' ')
    log "   max RSS per rank (KiB): $rss"
    size_b=$(numfmt --from=iec "$SZ2")
    for kb in $rss; do
        printf '{"bench":"afmt-bench","workload":"memory","content":"%s","label":"%s","case":"afmt:lz4+sh","np":2,"bytes_per_rank":%s,"max_rss_kib":%s,"limit_kib":%s,"date":"%s"}\n' \
            "$k" "$LABEL" "$size_b" "$kb" "$(((size_b * 13 / 10 + 64 * 1048576) / 1024))" "$STAMP" >>"$OUT"
    done
done

log "# done in $(($(date +%s) - T0)) s"
PY=/usr/bin/python3
if $PY -c 'import matplotlib' 2>/dev/null; then
    $PY "$ROOT/benchmarks/plot.py" "$OUT" --png "$RES/$STAMP.png" --markdown "$RES/$STAMP.md"
    log "# wrote $OUT, $LOG, $RES/$STAMP.png, $RES/$STAMP.md"
else
    log "# wrote $OUT and $LOG (no plot: apt-get install python3-matplotlib)"
fi
