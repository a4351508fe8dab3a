# scripts/slurm-lib.sh - helpers shared by scripts/slurm-test (one node) and
# scripts/cluster-test (4 nodes in network namespaces). Sourced, not run:
#
#   SL_NAME=my-test; source "$root/scripts/slurm-lib.sh"
#
# The sourcing script sets SL_NAME (the log prefix) before, and W (its work directory),
# AFMT (the afmt tool) and root (the repository) before it calls the job helpers. The
# helpers count failures in FAILS; `die` exits 1, so the script's EXIT trap cleans up.
# shellcheck shell=bash
# shellcheck disable=SC2154 # root, W, AFMT: set by the sourcing script
# shellcheck disable=SC2034 # MUNGED_PID, ports: read by the sourcing script

T0=$SECONDS
FAILS=0
say() { printf '[%s %3ds] %s\n' "${SL_NAME:-slurm-lib}" $((SECONDS - T0)) "$*"; }
ok() { say "ok: $*"; }
bad() {
    say "FAIL: $*"
    FAILS=$((FAILS + 1))
}
die() {
    say "FAIL: $*"
    FAILS=$((FAILS + 1))
    exit 1
}

# ---- set-up -------------------------------------------------------------------------------

# sl_install_pkgs PKG...: installs the Debian packages given (slurmctld slurmd slurm-client
# munge, and what else the caller needs) with apt-get when one of the commands in
# sl_need_cmds is missing. No service
# starts from the packages' scripts (no init system in a container; the tests run their
# own daemons): policy-rc.d 101 = "not allowed", only while installing.
sl_need_cmds=(slurmctld slurmd sbatch srun scontrol sinfo munged munge)
sl_need_pkgs() { # 0 if a command is missing
    local c
    for c in "${sl_need_cmds[@]}"; do
        command -v "$c" >/dev/null 2>&1 || return 0
    done
    return 1
}
sl_install_pkgs() {
    export PATH=$PATH:/usr/sbin:/sbin
    sl_need_pkgs || return 0
    local pkgs=("$@")
    say "installing ${pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    local made_policy=0 aptlog
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    aptlog=$(mktemp "${TMPDIR:-/tmp}/$SL_NAME-apt.XXXXXX")
    if ! apt-get install -y -q --no-install-recommends "${pkgs[@]}" >"$aptlog" 2>&1; then
        apt-get update -q >>"$aptlog" 2>&1
        if ! apt-get install -y -q --no-install-recommends "${pkgs[@]}" >>"$aptlog" 2>&1; then
            tail -20 "$aptlog"
            [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
            die "apt-get install ${pkgs[*]} failed (log: $aptlog)"
        fi
    fi
    rm -f "$aptlog"
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    sl_need_pkgs && die "Slurm commands still missing after apt-get"
    return 0
}

# sl_mpi_env: Open MPI's environment for the scripts (scripts/deps), and no variables of a
# Slurm job that runs the test itself (a CI job under Slurm must not leak into ours).
sl_mpi_env() {
    # shellcheck source=scripts/deps
    source "$root/scripts/deps"
    afmt_mpi_env
    # Ranks that outnumber the cores (3-8 tasks on a 2-core runner) must yield while they wait.
    export OMPI_MCA_mpi_yield_when_idle=1
    local v
    while read -r v; do unset "$v"; done < <(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\)=.*/\1/p')
    unset SBATCH_PARTITION SBATCH_ACCOUNT SQUEUE_FORMAT
}

# sl_free_ports N [ADDR]: sets the array `ports` to N TCP ports from 6817 up that nothing
# listens on at ADDR (default 127.0.0.1; another Slurm on this host keeps its own).
sl_free_ports() {
    local p addr=${2:-127.0.0.1}
    ports=()
    for p in $(seq 6817 6899); do
        (exec 3<>"/dev/tcp/$addr/$p") 2>/dev/null || ports+=("$p")
        [ ${#ports[@]} -ge "$1" ] && return 0
    done
    die "no $1 free ports in 6817-6899"
}

# sl_conf_common: the slurm.conf lines both tests share (munge under $W/munge, state and
# controller files under $W; the caller adds the cluster name, hosts, ports, slurmd files,
# nodes and partition).
sl_conf_common() {
    cat <<EOF
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$W/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$W/state
SlurmctldPidFile=$W/run/slurmctld.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmctldDebug=info
SlurmdDebug=info
# Containers have no usable cgroups: track processes by parent id, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# Finished jobs stay visible to scontrol show job for 10 minutes (no accounting here).
MinJobAge=600
KillWait=5
InactiveLimit=0
Waittime=0
MessageTimeout=20
SlurmctldTimeout=30
SlurmdTimeout=120
EOF
}

# sl_start_munged: munged with a private key and socket under $W/munge (a system munged,
# if any, is left alone); sets MUNGED_PID and waits until it answers.
sl_start_munged() {
    mkdir -p "$W/munge" "$W/log"
    chmod 711 "$W/munge"
    dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 status=none
    chmod 600 "$W/munge/munge.key"
    munged --force --foreground --key-file="$W/munge/munge.key" \
        --socket="$W/munge/munge.socket" --pid-file="$W/munge/munged.pid" \
        --log-file="$W/munge/munged.log" --seed-file="$W/munge/munged.seed" \
        >"$W/log/munged.out" 2>&1 &
    MUNGED_PID=$!
    local _
    for _ in $(seq 50); do
        munge -S "$W/munge/munge.socket" -n 2>/dev/null |
            unmunge -S "$W/munge/munge.socket" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "munged does not answer (see $W/munge/munged.log)"
}

# sl_stop PID...: SIGTERM, up to 5 s, then SIGKILL, each in turn (empty arguments skipped).
sl_stop() {
    local p _
    for p in "$@"; do
        [ -n "$p" ] || continue
        kill "$p" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    return 0
}

# sl_cancel_all: cancels every job of this Slurm and waits (10 s at most) until none is left.
sl_cancel_all() {
    local _
    scancel --quiet --user=root 2>/dev/null
    for _ in $(seq 20); do
        [ -z "$(squeue -h -o %i 2>/dev/null)" ] && return 0
        sleep 0.5
    done
    return 1
}

# sl_tail_logs FILE...: the last lines of each (job outputs 25, daemon logs 15).
sl_tail_logs() {
    local f n
    for f in "$@"; do
        [ -e "$f" ] || continue
        n=15
        case "$f" in *.out) n=25 ;; esac
        echo "---- $f (last $n lines)"
        tail -n "$n" "$f"
    done
}

# ---- jobs -----------------------------------------------------------------------------------

# jf ID KEY: a field of scontrol show job (JobState, ExitCode, ...).
jf() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# wait_job ID SECONDS: until the job has ended; prints its state.
wait_job() {
    local s="" end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ]; do
        s=$(jf "$1" JobState)
        case "$s" in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | PREEMPTED | BOOT_FAIL | DEADLINE)
            echo "$s"
            return 0
            ;;
        esac
        sleep 0.3
    done
    echo "${s:-UNKNOWN}(timeout)"
    return 1
}
# expect_job ID STATE EXITCODE WHAT: after wait_job, the state and "exit:signal" code.
expect_job() {
    local s e
    s=$(wait_job "$1" 240)
    e=$(jf "$1" ExitCode)
    if [ "$s" = "$2" ] && [ "$e" = "$3" ]; then
        ok "$4: job $1 $s, ExitCode $e"
    else
        bad "$4: job $1 is $s with ExitCode $e, expected $2 with $3"
    fi
}
# wait_line FILE REGEX SECONDS: until FILE has a line matching REGEX.
wait_line() {
    local end=$((SECONDS + $3))
    while [ $SECONDS -lt $end ]; do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# mpi NP ARGS...: a run outside Slurm (the uninterrupted reference).
mpi() {
    local np=$1
    shift
    local flags=()
    read -r -a flags <<<"$(bash "$root/scripts/mpiexec-flags")"
    mpiexec -n "$np" "${flags[@]}" "$@"
}
out() { echo "$W/jobs/$1.out"; } # the output file of job ID
# layers FILE: "id nranks slurm_job_id" per layer, from afmt info --json.
layers() {
    "$AFMT" info --json "$1" | sed -n 's/^ *{"id": \([0-9]*\),.*"provenance": {"host": [^,]*, "nranks": \([0-9]*\), "time_ns": [0-9]*, "slurm_job_id": "\{0,1\}\([^",]*\)"\{0,1\},.*/\1 \2 \3/p'
}
same_field() { # same_field A B WHAT: afmt diff, zero tolerance
    if "$AFMT" diff "$1" "$2" >"$W/diff.out" 2>&1; then
        ok "$3: bit-identical to the uninterrupted run (afmt diff, zero tolerance)"
    else
        bad "$3: differs from the uninterrupted run: $(head -5 "$W/diff.out")"
    fi
}
