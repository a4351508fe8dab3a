#!/usr/bin/env bash
# tests/tap.sh - the TAP helpers of the shell-driven tests (source it): numbered "ok N -" /
# "not ok N -" lines, a command's exit status, stdout and stderr kept in ./out and ./err
# of the current directory, and mpiexec with the build's settings.
#
#   t NAME CMD...   runs CMD (stdout > out, stderr > err), its status in $rc; under
#                   `timeout $TAP_TIMEOUT` when the caller sets TAP_TIMEOUT (a hang fails)
#   rc_is N         ok if $rc is N
#   has TEXT / err_has TEXT     ok if out / err contains TEXT
#   out_is TEXT     ok if out is exactly TEXT
#   err_lines N     ok if err has N lines
#   ok TEXT / bad TEXT          a result of the test's own (bad shows out and err)
#   mpi NP CMD...   CMD under $AFMT_MPIEXEC (-q for Open MPI) with $AFMT_MPIEXEC_EXTRA
#   tap_end         prints the plan; exits 1 if anything failed, else 0
n=0
fails=0
MPIEXEC=${AFMT_MPIEXEC:-mpiexec}
read -r -a MPIEXEC_EXTRA <<<"${AFMT_MPIEXEC_EXTRA:-}"
MPIEXEC_QUIET=()
[ "${AFMT_MPI_IMPL:-}" = openmpi ] && MPIEXEC_QUIET=(-q)
mpi() {
    local np=$1
    shift
    "$MPIEXEC" "${MPIEXEC_QUIET[@]}" -n "$np" "${MPIEXEC_EXTRA[@]}" "$@"
}
ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}
bad() {
    n=$((n + 1))
    fails=$((fails + 1))
    echo "not ok $n - $1"
    if [ -s out ]; then sed 's/^/#   out: /' out | head -30; fi
    if [ -s err ]; then sed 's/^/#   err: /' err | head -20; fi
}
t() {
    name=$1
    shift
    if [ -n "${TAP_TIMEOUT:-}" ]; then
        timeout "$TAP_TIMEOUT" "$@" >out 2>err
    else
        "$@" >out 2>err
    fi
    rc=$?
}
rc_is() { if [ "$rc" -eq "$1" ]; then ok "$name: exit $1"; else bad "$name: exit $rc, expected $1"; fi; }
has() { if grep -qF -- "$1" out; then ok "$name: output has '$1'"; else bad "$name: output lacks '$1'"; fi; }
err_has() { if grep -qF -- "$1" err; then ok "$name: stderr has '$1'"; else bad "$name: stderr lacks '$1'"; fi; }
out_is() { if [ "$(cat out)" = "$1" ]; then ok "$name: output is '$1'"; else bad "$name: output is not '$1'"; fi; }
err_lines() {
    local l
    l=$(wc -l <err)
    if [ "$l" -eq "$1" ]; then ok "$name: $1 line(s) on stderr"; else bad "$name: $l lines on stderr, expected $1"; fi
}
tap_end() {
    echo "1..$n"
    [ "$fails" -eq 0 ] && exit 0
    echo "# $fails of $n failed"
    exit 1
}
