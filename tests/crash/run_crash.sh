#!/usr/bin/env bash
# run_crash.sh - crash safety under SIGKILL (ctest crash.kill_during_commit).
#
#   run_crash.sh WRITER CHECK DIR MPIEXEC NPFLAG [MPIEXEC_FLAGS...]
#
# CRASH_ITERS times (default 12): start `mpiexec NPFLAG 2 FLAGS WRITER FILE next 1000 MARKER`
# in a session of its own, sleep a random 0.2..1.5 s, then SIGKILL every process of the job
# (the ranks first, all in one kill, then mpiexec), wait until they are all gone, check the
# file with CHECK on 1 and on 3 ranks (it must read exactly as a commit at or one after the
# last one the marker recorded), and resume writing from the step found, so that the next
# commit overwrites the orphaned tail. A final uninterrupted run of 2 steps must leave the
# file exactly at its committed end. CRASH_SEED (default 1) seeds the random delays.
#
# Every second run is aimed at a commit: after its delay it waits until rank 0's phase file
# says "C s" (written just before afmt_commit) and kills then, after a random 0..20 ms more.
# A kill counts as inside afmt_commit only if, after it, the phase file still says "C s" and
# the marker (written only once afmt_commit returned) does not hold s. The test fails unless
# at least a quarter of the kills landed inside afmt_commit: a run whose kills all missed
# the commit proves nothing about crash safety.
#
# Processes are killed by id only: the members of the job's session (Open MPI puts each
# rank in a process group of its own, so the group of mpiexec is not enough) plus the pids
# the ranks recorded (checked to run WRITER). A broad `pkill -f crash_writer` could hit
# another build's run of this test. CRASH_KEEP=1 keeps the file and logs. CRASH_RETAIN=K
# (crash.kill_during_commit_retain) makes the writer compact after each commit
# (afmt_opts_set_retention): a kill inside afmt_commit may then land in the compaction.
set -u

if [ $# -lt 5 ]; then
    echo "usage: run_crash.sh WRITER CHECK DIR MPIEXEC NPFLAG [MPIEXEC_FLAGS...]" >&2
    exit 2
fi
WRITER=$1 CHECK=$2 DIR=$3 MPIEXEC=$4 NPFLAG=$5
shift 5
FLAGS=("$@")
ITERS=${CRASH_ITERS:-12}
SEED=${CRASH_SEED:-1} # the delays are reproducible; CRASH_SEED=$RANDOM varies them
RANDOM=$SEED

BASE="$DIR/afmt-crash-$$"
FILE="$BASE.afmt" MARKER="$BASE.marker" LOG="$BASE.log"
JOB=""

# Waits about $1 ms without starting a process (polling must not fork: each fork is slower
# than the writer's phases).
nap_ms() {
    local t
    printf -v t '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
    read -r -t "$t" -u "$NAP_FD" _ 2>/dev/null
    return 0
}

# Sets LAST to the last line of file $1 (empty if none), without starting a process.
last_line() {
    local lines=()
    mapfile -t lines <"$1" 2>/dev/null
    LAST=""
    [ ${#lines[@]} -gt 0 ] && LAST=${lines[${#lines[@]} - 1]}
    return 0
}

# Pids of the live (non-zombie) processes in session $JOB_SID, the job's setsid.
session_pids() {
    local p stat f
    for p in /proc/[0-9]*; do
        stat=$(cat "$p/stat" 2>/dev/null) || continue
        read -r -a f <<<"${stat##*) }" # state ppid pgrp session ...
        if [ "${f[3]:-}" = "$JOB_SID" ] && [ "${f[0]}" != "Z" ]; then echo "${p#/proc/}"; fi
    done
}

# 0 if pid $1 runs the writer (a recorded pid is checked before it is killed).
is_writer() {
    local cmd
    cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *"$WRITER"* ]]
}

alive() { # pid -> 0 if it exists and is not a zombie
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != "Z" ]
}

# Sets RANKS to the job's processes but mpiexec: the members of its session, plus the pids
# the ranks recorded (in case an MPI moves its ranks out of the session).
find_ranks() {
    JOB_SID=$JOB
    RANKS=()
    local p
    for p in $(session_pids); do
        [ "$p" != "$JOB" ] && RANKS+=("$p")
    done
    while read -r p; do
        alive "$p" && is_writer "$p" && [[ " ${RANKS[*]} " != *" $p "* ]] && RANKS+=("$p")
    done < <(cat "$MARKER.pids" 2>/dev/null)
}

# Aimed run: waits (at most 20 s) until rank 0 is in afmt_commit, then SIGKILLs the ranks
# found beforehand, at once, after a random 0..20 ms. kill_job then ends the rest.
kill_in_commit() {
    local n=0 lines=()
    while [ $n -lt 2000 ]; do # both ranks recorded their pids (they run)
        mapfile -t lines <"$MARKER.pids" 2>/dev/null
        [ ${#lines[@]} -ge 2 ] && break
        nap_ms 10
        n=$((n + 1))
    done
    find_ranks
    for n in $(seq 20000); do
        last_line "$MARKER.phase"
        [ "${LAST:0:1}" = C ] && break
        nap_ms 1
    done
    nap_ms $((RANDOM % 21))
    [ ${#RANKS[@]} -gt 0 ] && kill -9 "${RANKS[@]}" 2>/dev/null
}

# SIGKILLs the whole job (ranks first, at once) and waits until every process is gone.
kill_job() {
    [ -n "$JOB" ] || return 0
    local ranks p
    find_ranks
    ranks=("${RANKS[@]}")
    [ ${#ranks[@]} -gt 0 ] && kill -9 "${ranks[@]}" 2>/dev/null
    # Let mpiexec reap its children (else they linger as zombies of init), then kill it.
    for _ in $(seq 50); do
        local left=0
        for p in "${ranks[@]}"; do alive "$p" && left=1; done
        [ $left = 0 ] && break
        sleep 0.02
    done
    kill -9 "$JOB" 2>/dev/null
    for p in $(session_pids); do kill -9 "$p" 2>/dev/null; done
    wait "$JOB" 2>/dev/null
    for _ in $(seq 250); do
        local left=0
        for p in "${ranks[@]}" $(session_pids); do alive "$p" && left=1; done
        [ $left = 0 ] && break
        sleep 0.02
    done
    for p in "${ranks[@]}" $(session_pids); do
        if alive "$p"; then
            echo "crash: FAIL: process $p of the writer survived SIGKILL" >&2
            return 1
        fi
    done
    JOB=""
}

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    kill_job
    if [ "${CRASH_KEEP:-0}" = 1 ]; then
        echo "crash: kept $FILE, $MARKER*, $LOG (CRASH_KEEP=1)" >&2
        return
    fi
    rm -f "$FILE" "$FILE.compact" "$FILE".compact-* "$MARKER" "$MARKER.pids" "$MARKER.phase" \
        "$LOG" "$NAP_FIFO"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "crash: FAIL: $*" >&2
    echo "---- writer log ($LOG) ----" >&2
    tail -n 30 "$LOG" >&2 2>/dev/null
    echo "(CRASH_KEEP=1 keeps the file and the logs for inspection)" >&2
    exit 1
}

# Runs CHECK on $1 ranks with MIN_STEP $2 (and "final" as $3); sets CHECKED_S.
check() {
    local np=$1 min=$2 out extra=()
    [ -n "${3:-}" ] && extra=("$3")
    out=$(timeout 300 "$MPIEXEC" "$NPFLAG" "$np" "${FLAGS[@]}" "$CHECK" "$FILE" "$min" "${extra[@]}" 2>&1)
    local rc=$?
    echo "  [np=$np] $(echo "$out" | grep -m1 'crash_check: OK' || echo "$out" | tail -n 5)"
    [ $rc -eq 0 ] || fail "crash_check on $np ranks (min step $min ${3:-}) exited $rc:
$out"
    CHECKED_S=$(echo "$out" | sed -n 's/.*crash_check: OK S=\([0-9]*\).*/\1/p' | head -n1)
    CHECKED_TAIL=$(echo "$out" | sed -n 's/.* tail=\([0-9]*\).*/\1/p' | head -n1)
    [ -n "$CHECKED_S" ] || fail "crash_check on $np ranks printed no step:
$out"
    CHECKS=$((CHECKS + 1))
}

last_marker() {
    local l
    l=$(tail -n 1 "$MARKER" 2>/dev/null)
    echo "${l:-0}"
}

# A FIFO that nobody writes: `read -t` on it is a sleep without a process (nap_ms).
NAP_FIFO="$BASE.nap"
rm -f "$NAP_FIFO"
mkfifo "$NAP_FIFO" || fail "mkfifo $NAP_FIFO"
exec {NAP_FD}<>"$NAP_FIFO"

echo "crash: file $FILE, $ITERS kills, seed $SEED"
rm -f "$FILE" "$MARKER" "$MARKER.pids" "$MARKER.phase" "$LOG"
: >"$MARKER"
KILLS=0 CHECKS=0 IN_COMMIT=0 IN_WRITE=0 OTHER=0 TAILS=0 next=1 steps=0 RANKS=()
t0=$(date +%s.%N)
for it in $(seq "$ITERS"); do
    rm -f "$MARKER.pids"
    : >"$MARKER.phase"
    delay_ms=$((200 + RANDOM % 1301))
    aimed=$((it % 2 == 0))
    [ $aimed = 1 ] && delay_ms=$((delay_ms / 2))
    echo "--- run $it: steps from $next, SIGKILL after ${delay_ms} ms$([ $aimed = 1 ] &&
        echo ', then in a commit')" >>"$LOG"
    setsid "$MPIEXEC" "$NPFLAG" 2 "${FLAGS[@]}" "$WRITER" "$FILE" "$next" 1000 "$MARKER" \
        >>"$LOG" 2>&1 </dev/null &
    JOB=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    alive "$JOB" || { wait "$JOB"; JOB=""; fail "run $it: the writer ended before the kill"; }
    [ $aimed = 1 ] && kill_in_commit
    kill_job || exit 1
    KILLS=$((KILLS + 1))
    grep -q "crash_writer: FAIL" "$LOG" && fail "run $it: the writer reported a failure"
    phase=$(tail -n 1 "$MARKER.phase" 2>/dev/null)
    min=$(last_marker)
    case "$phase" in
    C*)
        if [ "$min" -lt "${phase#C }" ]; then
            IN_COMMIT=$((IN_COMMIT + 1)) where="inside afmt_commit of step ${phase#C }"
        else
            OTHER=$((OTHER + 1)) where="after afmt_commit of step ${phase#C } returned"
        fi
        ;;
    W*) IN_WRITE=$((IN_WRITE + 1)) where="while staging step ${phase#W }" ;;
    *) OTHER=$((OTHER + 1)) where="outside a step (${phase:-startup})" ;;
    esac
    echo "run $it: killed after ${delay_ms} ms $where; marker says step $min"
    check 1 "$min"
    s1=$CHECKED_S
    [ "${CHECKED_TAIL:-0}" -gt 0 ] && TAILS=$((TAILS + 1))
    check 3 "$min"
    [ "$CHECKED_S" = "$s1" ] || fail "1 rank sees step $s1, 3 ranks see step $CHECKED_S"
    [ "$s1" -ge $((next - 1)) ] || fail "the file went back from step $((next - 1)) to $s1"
    steps=$((steps + s1 - next + 1))
    next=$((s1 + 1))
done

# A final uninterrupted run: its first commit overwrites the last orphaned tail.
echo "final: steps $next, $((next + 1)) without a kill"
timeout 300 "$MPIEXEC" "$NPFLAG" 2 "${FLAGS[@]}" "$WRITER" "$FILE" "$next" 2 "$MARKER" \
    >>"$LOG" 2>&1 </dev/null || fail "the final writer run failed"
check 1 $((next + 1)) final
check 3 $((next + 1)) final
t1=$(date +%s.%N)
echo "crash: $KILLS kills ($IN_COMMIT inside afmt_commit, $IN_WRITE while staging, $OTHER" \
    "elsewhere), $TAILS orphaned tails found, $((steps + 2)) commits,"\
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
[ $((IN_COMMIT * 4)) -ge "$KILLS" ] && [ "$IN_COMMIT" -gt 0 ] ||
    fail "only $IN_COMMIT of $KILLS kills landed inside afmt_commit (want a quarter at least)"
echo "crash: $KILLS kills, $CHECKS checks passed"
exit 0
