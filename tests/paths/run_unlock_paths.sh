#!/usr/bin/env bash
# run_unlock_paths.sh AFMT WORKDIR - `afmt unlock` and the tool's open on file-system
# hazards: a FIFO or a symbolic link as the lock file is reported at once (exit 2, one
# line) and left alone; a FIFO as the data file is refused at once; a symbolic link to
# the data file finds the target's lock. Every command runs under `timeout`: a hang fails.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 AFMT WORKDIR" >&2
    exit 2
fi
AFMT=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$W"
mkdir -p "$W/sub"
cd "$W" || exit 2

# The TAP helpers; every command runs for 20 s at most.
TAP_TIMEOUT=20
# shellcheck source=tests/tap.sh
source "$HERE/../tap.sh"
one_line() {
    if [ "$(wc -l <err)" -eq 1 ]; then ok "$name: one line on stderr"; else bad "$name: $(wc -l <err) lines on stderr"; fi
}

HOST=$(hostname)
DEAD=$(((1 << 22) + 12345))
while kill -0 "$DEAD" 2>/dev/null; do DEAD=$((DEAD + 1)); done

# A FIFO as the lock file: reported, not waited on, not removed (also with --force).
printf 'not an afmt file, but unlock only looks at the lock\n' >f.afmt
mkfifo f.afmt.lock
t "unlock: FIFO lock" "$AFMT" unlock f.afmt
rc_is 2
err_has "FIFO"
one_line
t "unlock --force: FIFO lock" "$AFMT" unlock f.afmt --force
rc_is 2
err_has "FIFO"
if [ -p f.afmt.lock ]; then ok "unlock: FIFO lock left alone"; else bad "unlock: FIFO lock removed"; fi
rm -f f.afmt.lock

# A symbolic link as the lock file: not followed, not removed, its target untouched.
echo "host=$HOST pid=$DEAD job=1 time=2026-01-01T00:00:00Z" >victim
ln -s victim f.afmt.lock
t "unlock --force: link as lock" "$AFMT" unlock f.afmt --force
rc_is 2
err_has "symbolic link"
if [ -L f.afmt.lock ] && [ -s victim ]; then ok "unlock: link and its target left alone"; else bad "unlock: link or target removed"; fi
rm -f f.afmt.lock

# A symbolic link to the data file (from another directory): the target's lock is found
# and, stale, removed.
ln -s ../f.afmt sub/link.afmt
echo "host=$HOST pid=$DEAD job=4711 time=2026-01-01T00:00:00Z" >f.afmt.lock
t "unlock: through a link" "$AFMT" unlock sub/link.afmt
rc_is 0
has "removed the lock of host=$HOST pid=$DEAD job=4711"
if [ -e f.afmt.lock ]; then bad "unlock: the target's lock is still there"; else ok "unlock: the target's lock removed"; fi
if [ -L sub/link.afmt ]; then ok "unlock: the link is still a link"; else bad "unlock: the link changed"; fi
# a relative path from another working directory
echo "host=$HOST pid=$DEAD job=4712 time=2026-01-01T00:00:00Z" >f.afmt.lock
name="unlock: relative path"
(cd sub && timeout 20 "$AFMT" unlock ../f.afmt >../out 2>../err)
rc=$?
rc_is 0
if [ -e f.afmt.lock ]; then bad "unlock: relative: lock still there"; else ok "unlock: relative: removed"; fi

# A lock file another local user wrote, with terminal escapes in it: shown escaped, both
# when it is refused and when it is removed.
printf 'host=%s\033]0;pwned\007 pid=%s job=\033[31mx time=2026-01-01T00:00:00Z\n' "$HOST" "$DEAD" >f.afmt.lock
t "unlock: escapes in the lock" "$AFMT" unlock f.afmt --force
rc_is 0
has '\x1b]0;pwned\x07'
if grep -q "$(printf '\033')" out err; then bad "unlock: an escape reached the terminal"; else ok "unlock: no raw escape printed"; fi
printf 'host=otherhost\033[2J pid=1 job=1 time=2026-01-01T00:00:00Z\n' >f.afmt.lock
t "unlock: escapes in a live lock" "$AFMT" unlock f.afmt
rc_is 1
err_has '\x1b[2J'
if grep -q "$(printf '\033')" out err; then bad "unlock: an escape reached the terminal"; else ok "unlock: no raw escape printed"; fi
rm -f f.afmt.lock

# A FIFO as the data file: the tool's open refuses it at once; unlock finds no lock.
mkfifo g.afmt
t "ls: FIFO data file" "$AFMT" ls g.afmt
rc_is 2
err_has "not a regular file"
one_line
t "unlock: FIFO data file" "$AFMT" unlock g.afmt
rc_is 0
has "g.afmt: not locked"

echo "1..$n"
if [ "$fails" -ne 0 ]; then
    echo "$fails of $n checks failed"
    exit 1
fi
echo "all $n checks passed"
