#!/usr/bin/env bash
# run_verify_rules.sh AFMT TEST_VALIDITY WORKDIR - `afmt verify` applies the rules that
# afmt_open applies (docs/format.md 16): the crafted files of test_validity (kept with
# AFMT_RULES_DIR, each with the expected verdict in MANIFEST: NAME, exit code, words) are
# verified one by one; the exit code (0 OK, 1 DAMAGED) and the words must match, and a
# file the library refuses must never be reported OK. Environment: AFMT_MPIEXEC,
# AFMT_MPIEXEC_EXTRA as for the cli tests.
set -u
if [ $# -ne 3 ]; then
    echo "usage: $0 AFMT TEST_VALIDITY WORKDIR" >&2
    exit 2
fi
AFMT=$1
CRAFT=$2
W=$3
MPIEXEC=${AFMT_MPIEXEC:-mpiexec}
read -r -a EXTRA <<<"${AFMT_MPIEXEC_EXTRA:-}"
rm -rf "$W"
mkdir -p "$W"
if ! AFMT_RULES_DIR="$W" "$MPIEXEC" -n 1 "${EXTRA[@]}" "$CRAFT" >"$W/craft.log" 2>&1; then
    cat "$W/craft.log"
    echo "not ok - test_validity failed while crafting the files"
    exit 1
fi
n=0
fails=0
while IFS=$'\t' read -r name want words; do
    n=$((n + 1))
    "$AFMT" verify "$W/$name.afmt" >"$W/out" 2>"$W/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        fails=$((fails + 1))
        echo "not ok $n - verify $name: exit $rc, expected $want"
        sed 's/^/#   /' "$W/out" "$W/err" | head -20
    elif ! grep -qF -- "$words" "$W/out"; then
        fails=$((fails + 1))
        echo "not ok $n - verify $name: output lacks '$words'"
        sed 's/^/#   /' "$W/out" | head -20
    else
        echo "ok $n - verify $name: exit $rc, '$words'"
    fi
done <"$W/MANIFEST"
if [ "$n" -lt 20 ]; then
    echo "not ok - only $n crafted files in the manifest"
    exit 1
fi
echo "# $n files, $fails failed"
[ "$fails" -eq 0 ] && rm -rf "$W"
[ "$fails" -eq 0 ]
