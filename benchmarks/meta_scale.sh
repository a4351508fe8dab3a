#!/usr/bin/env bash
# benchmarks/meta_scale.sh - format v2 metadata at scale (docs/performance.md, "Format v2
# metadata at scale"): counters per rank of a commit and an open on 1..256 ranks, and the
# open of a synthetic file of 10^5 writers x 100 chunks on one rank; version 1 (the test
# hook afmt__set_write_version(1)) and version 2 in the same run.
#
# Usage: benchmarks/meta_scale.sh [BUILD_DIR]          (default: build; needs the tests'
#        build of the library, AFMT_BUILD_TESTS=ON, the default)
# Environment:
#   RANKS="1 2 4 8 16 32 64 128 256"  rank counts (oversubscribed beyond the cores)
#   CHUNKS=1000 COMMITS=5          chunks per rank per commit, commits per run
#   CASES=1,2,2r                   1: version 1 (the test hook), 2: version 2 (a segment
#                                  per node), 2r: version 2, a segment per rank (the hint
#                                  afmt_index_aggregation=rank), 2gN: version 2, a
#                                  segment per group of N ranks (afmt_node_group_size=N)
#   WRITERS=100000 WCHUNKS=100     the synthetic files (a segment per writer, a segment per
#   NODE=128                       node of NODE writers, version 1); REPS=5 fresh opens each
#   DIR=/dev/shm                   where the files go (removed afterwards)
#   SKIP_SYNTH=1 / SKIP_RANKS=1    leave out a part
# Memory: the v1 case holds the whole layer's index on every rank, about 100 MiB per rank at
# 256 x 1000 chunks (~25 GiB in all, more than this 24 GiB machine has: the kernel killed
# such a run); the script leaves out a case whose estimate exceeds 80 % of MemAvailable.
#
# Writes benchmarks/results/<date>-metascale.{txt,jsonl,md}.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
RANKS=${RANKS:-"1 2 4 8 16 32 64 128 256"}
CHUNKS=${CHUNKS:-1000}
COMMITS=${COMMITS:-5}
CASES=${CASES:-1,2,2r}
WRITERS=${WRITERS:-100000}
WCHUNKS=${WCHUNKS:-100}
REPS=${REPS:-5}
NODE=${NODE:-128}
DIR=${DIR:-/dev/shm}
MS=$BUILD/benchmarks/meta_scale
SY=$BUILD/benchmarks/synth_v2
for b in "$MS" "$SY"; do
    [[ -x $b ]] || {
        echo "meta_scale.sh: $b not built (cmake --build $BUILD --target meta_scale synth_v2)" >&2
        exit 1
    }
done
source scripts/deps
afmt_mpi_env 2>/dev/null || true
read -r -a FL <<<"$(bash scripts/mpiexec-flags)"
stamp=$(date +%Y-%m-%d-%H%M)
out=benchmarks/results/$stamp-metascale
mkdir -p benchmarks/results
: >"$out.jsonl"
git=$(git describe --always --dirty 2>/dev/null || echo unknown)
log() { echo "$*" | tee -a "$out.txt"; }
log "# meta_scale.sh $stamp git $git: RANKS='$RANKS' CASES=$CASES CHUNKS=$CHUNKS COMMITS=$COMMITS" \
    "WRITERS=$WRITERS WCHUNKS=$WCHUNKS REPS=$REPS DIR=$DIR"

if [[ ${SKIP_RANKS:-0} != 1 ]]; then
    for P in $RANKS; do
        # Memory: the v1 case holds the whole layer's index on every rank (~0.4 KB per chunk
        # of the layer while it is applied) + ~40 MiB of MPI runtime per rank; v2 only the
        # runtime and its own records. A case whose estimate exceeds 80 % of MemAvailable
        # is left out (MEMCHECK=0: run it anyway).
        avail=$(awk '/MemAvailable/{print $2}' /proc/meminfo)
        cases=$CASES
        need1=$((P * (P * CHUNKS * 4 / 10 + 40 * 1024)))
        need2=$((P * 40 * 1024))
        if [[ ${MEMCHECK:-1} == 1 ]]; then
            if ((need2 > avail * 8 / 10)); then
                log "# P=$P skipped: needs about $((need2 / 1024)) MiB, $((avail / 1024)) MiB available"
                continue
            fi
            if ((need1 > avail * 8 / 10)) && [[ ,$cases, == *,1,* ]]; then
                cases=$(echo ",$cases," | sed 's/,1,/,/; s/^,//; s/,$//')
                log "# P=$P: case 1 (v1) left out: needs about $((need1 / 1024)) MiB, $((avail / 1024)) MiB available"
            fi
        fi
        ncases=$(echo "$cases" | tr ',' '\n' | grep -c .)
        for try in 1 2; do
            log "## $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)  mpiexec -n $P $MS -c $CHUNKS -n $COMMITS -V $cases -d $DIR"
            rm -f "$out.try.jsonl"
            nice -n 15 timeout 600 mpiexec -n "$P" "${FL[@]}" "$MS" -c "$CHUNKS" -n "$COMMITS" \
                -V "$cases" -d "$DIR" -o "$out.try.jsonl" -l "$git" >>"$out.txt" 2>&1
            rc=$?
            # Every case measured: keep them (Open MPI may still fail at the exit of many
            # oversubscribed ranks; the counts are in by then).
            if [[ -f $out.try.jsonl ]] && (($(wc -l <"$out.try.jsonl") == ncases)); then
                ((rc == 0)) || log "# P=$P: mpiexec exit status $rc after every case was measured"
                cat "$out.try.jsonl" >>"$out.jsonl"
                grep "^P=$P " "$out.txt" | tail -"$ncases" | cut -c1-200
                break
            fi
            log "# P=$P failed (try $try, exit status $rc)"
        done
        rm -f "$out.try.jsonl"
    done
fi

if [[ ${SKIP_SYNTH:-0} != 1 ]]; then
    log "## $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)  $SY gen -w $WRITERS -c $WCHUNKS -e 1 -n $NODE -d $DIR"
    nice -n 15 mpiexec -n 1 "${FL[@]}" "$SY" gen -w "$WRITERS" -c "$WCHUNKS" -e 1 -n "$NODE" -d "$DIR" 2>&1 |
        tee -a "$out.txt"
    for ((r = 1; r <= REPS; r++)); do
        for v in 2 "2n$NODE" 1; do
            f=$DIR/synth-$WRITERS-$WCHUNKS-v$v.afmt
            log "## $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)  rep $r: $SY open $f"
            nice -n 15 mpiexec -n 1 "${FL[@]}" "$SY" open "$f" 2>&1 | tee -a "$out.txt"
        done
    done
    rm -f "$DIR/synth-$WRITERS-$WCHUNKS-v1.afmt" "$DIR/synth-$WRITERS-$WCHUNKS-v2.afmt" \
        "$DIR/synth-$WRITERS-$WCHUNKS-v2n$NODE.afmt"
fi

python3 - "$out" <<'EOF'
import json, re, statistics, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(out + ".jsonl") if l.strip()]
md = []
if rows:
    md.append("| ranks | case | commit s median (min-max) | recv per commit, rank 0 | recv per commit, "
              "other ranks median (max) | index after commit, rank 0 / others max | recv at "
              "open, others max | index after open, rank 0 / others max | after a read, others max "
              "| VmHWM MiB, rank 0 / others max |")
    md.append("|---|---|---|---|---|---|---|---|---|---|")
    order = {"1": 0, "2r": 1, "2": 2}
    for r in sorted(rows, key=lambda r: (r["ranks"], order.get(str(r["version"]), 9))):
        c = r["commit_s"]
        o = r["commit_recv_others"]
        md.append(f"| {r['ranks']} | {r['version']} | {c['median']:.4f} ({c['min']:.4f}-{c['max']:.4f}) "
                  f"| {r['commit_recv_rank0']:,} | {o[1]:,} ({o[2]:,}) | "
                  f"{r['index_after_commit_rank0']:,} / {r['index_after_commit_others_max']:,} | "
                  f"{r['open_recv_others_max']:,} | {r['index_after_open_rank0']:,} / "
                  f"{r['index_after_open_others_max']:,} | {r['index_after_read_others_max']:,} | "
                  f"{r.get('vmhwm_kib_rank0', 0) / 1024:.1f} / {r.get('vmhwm_kib_others_max', 0) / 1024:.1f} |")
opens = {}
pat = re.compile(r"^open \S+-(v\w+)\.afmt version \d segments (\d+): open_s (\S+) read_s (\S+) total_s (\S+) \| "
                 r"rss_after_init_mib (\S+) \(hwm \S+\) peak_rss_mib (\S+) delta_mib (\S+) \| "
                 r"index_bytes after open (\d+), after the read (\d+)")
for line in open(out + ".txt"):
    m = pat.match(line)
    if m:
        opens.setdefault((m.group(1), int(m.group(2))), []).append([float(x) for x in m.groups()[2:]])
if opens:
    md.append("")
    md.append("| file | segments | runs | open + read s median (min-max) | of which open | RSS after MPI_Init MiB | "
              "peak RSS MiB median (max) | peak - baseline MiB | index after open MiB |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    for v in sorted(opens, reverse=True):
        x = opens[v]
        col = lambda i: [r[i] for r in x]
        med = statistics.median
        md.append(f"| {v[0]} | {v[1]:,} | {len(x)} | {med(col(2)):.4f} ({min(col(2)):.4f}-{max(col(2)):.4f}) | "
                  f"{med(col(0)):.4f} | {med(col(3)):.1f} | {med(col(4)):.1f} ({max(col(4)):.1f}) | "
                  f"{med(col(5)):.1f} | {med(col(6)) / 1048576:.2f} |")
open(out + ".md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
echo "# written: $out.txt $out.jsonl $out.md"
