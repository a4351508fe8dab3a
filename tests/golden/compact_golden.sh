#!/usr/bin/env bash
# compact_golden.sh AFMT GOLDEN_DIR WORKDIR NP - the ctests golden.compact.np{1,3}: `afmt
# compact` rewrites a file of format v1 (and a chain that mixes v1 and v2 layers) as format
# v2. For every golden file: a copy is compacted on NP ranks; before, `afmt info --json`
# shows the slot's format version (1 for the v1 files); after, format version 2 and exactly
# one layer, of footer version 2 and flagged BASE; `afmt verify` finds it whole and `afmt
# diff` finds every array, fill value and attribute equal to the original's (both on NP
# ranks). The golden files themselves are only read. Environment: AFMT_MPIEXEC (default
# mpiexec), AFMT_MPIEXEC_EXTRA, AFMT_MPI_IMPL (openmpi: mpiexec -q); NP 1 runs the tool
# without mpiexec.
set -u
if [ $# -ne 4 ]; then
    echo "usage: $0 AFMT GOLDEN_DIR WORKDIR NP" >&2
    exit 2
fi
AFMT=$1
G=$2
W=$3
NP=$4
MPIEXEC=${AFMT_MPIEXEC:-mpiexec}
read -r -a EXTRA <<<"${AFMT_MPIEXEC_EXTRA:-}"
QUIET=()
[ "${AFMT_MPI_IMPL:-}" = openmpi ] && QUIET=(-q)
run() { # NP 1: the tool alone (an MPI singleton), faster than 65 mpiexec starts
    if [ "$NP" = 1 ]; then "$AFMT" "$@"; else "$MPIEXEC" "${QUIET[@]}" -n "$NP" "${EXTRA[@]}" "$AFMT" "$@"; fi
}

rm -rf "$W"
mkdir -p "$W"
n=0
fails=0
v1=0
ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}
bad() {
    n=$((n + 1))
    fails=$((fails + 1))
    echo "not ok $n - $1"
    [ -s "$W/err" ] && sed 's/^/#   err: /' "$W/err" | head -5
}
# JSON field of `afmt info --json` (one layer per line): the slot's version, then
# the layer lines.
fmt_version() { grep -o '"format_version": [0-9]*' "$1" | head -n1 | grep -o '[0-9]*$'; }
layers() { grep -c '^  {"id": ' "$1"; }

for src in "$G"/*.afmt; do
    name=$(basename "$src")
    f=$W/$name
    cp "$src" "$f"
    chmod u+w "$f"
    if ! run info --json "$f" >"$W/before" 2>"$W/err"; then
        bad "$name: afmt info before compaction failed"
        continue
    fi
    before=$(fmt_version "$W/before")
    nl=$(layers "$W/before")
    [ "$before" = 1 ] && v1=$((v1 + 1))
    if ! run compact "$f" >"$W/out" 2>"$W/err"; then
        bad "$name: afmt compact failed"
        continue
    fi
    run info --json "$f" >"$W/after" 2>"$W/err" || bad "$name: afmt info after compaction failed"
    after=$(fmt_version "$W/after")
    if [ "$after" = 2 ]; then ok "$name: slot version $before -> 2"; else
        bad "$name: slot version $before -> '$after', expected 2"
    fi
    if [ "$(layers "$W/after")" = 1 ]; then ok "$name: $nl layer(s) -> 1"; else
        bad "$name: $(layers "$W/after") layers after compaction, expected 1"
    fi
    if grep '^  {"id": ' "$W/after" | grep -q '"version": 2, .*"base": true'; then
        ok "$name: the layer is version 2 and BASE"
    else
        bad "$name: the layer is not version 2 and BASE: $(grep -o '"version": [0-9]*, "segments": [0-9]*, "segment_bytes": [0-9]*, "base": [a-z]*' "$W/after")"
    fi
    if run verify "$f" >"$W/out" 2>"$W/err"; then ok "$name: afmt verify: whole"; else
        bad "$name: afmt verify of the compacted file: exit $?"
    fi
    if run diff "$src" "$f" >"$W/out" 2>"$W/err"; then ok "$name: afmt diff: equal to the original"; else
        sed 's/^/#   out: /' "$W/out" | head -5
        bad "$name: afmt diff: the compacted file differs from the original"
    fi
done
# The checks above can fail: afmt diff tells two golden files of other content apart, and
# the v1 files were there to compact.
if run diff -q "$G/layers.afmt" "$W/attrs.afmt" >/dev/null 2>"$W/err"; then
    bad "afmt diff finds layers.afmt and compacted attrs.afmt equal"
else
    ok "afmt diff tells layers.afmt from compacted attrs.afmt"
fi
if [ "$v1" -ge 10 ]; then ok "$v1 files of format v1 compacted"; else
    bad "only $v1 files of format v1 in $G"
fi
echo "compact_golden: $n checks on $NP rank(s), $fails failed"
[ "$fails" -eq 0 ]
