#!/usr/bin/env bash
# run_disk.sh - mounts a small tmpfs for one fault_disk scenario, runs it on NP ranks and
# unmounts it again (also on failure). Needs root (mount); otherwise, or where mounting is
# not permitted (an unprivileged container), it exits 77, which ctest reports as skipped.
#
# Usage: run_disk.sh fulldisk|spillfull NP FAULT_DISK SCRATCH MPIEXEC [MPIEXEC ARGS...]
#   fulldisk:  the file lives on an 8 MiB tmpfs
#   spillfull: the last rank's spill directory is a 1 MiB tmpfs; the file is in SCRATCH
set -u
mode=$1 np=$2 exe=$3 scratch=$4
shift 4
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: run_disk.sh $mode needs root to mount a tmpfs"
    exit 77
fi
case "$mode" in
fulldisk) size=8m ;;
spillfull) size=1m ;;
*)
    echo "run_disk.sh: unknown mode '$mode'" >&2
    exit 2
    ;;
esac
mnt=$(mktemp -d "${TMPDIR:-/tmp}/afmt-$mode.XXXXXX") || exit 1
work=""
cleanup() {
    umount "$mnt" 2>/dev/null
    rmdir "$mnt" 2>/dev/null
    [ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
if ! mount -t tmpfs -o "size=$size" tmpfs "$mnt" 2>/dev/null; then
    echo "SKIP: cannot mount a tmpfs on $mnt (not permitted here)"
    exit 77
fi
if [ "$mode" = fulldisk ]; then
    "$@" -n "$np" "$exe" fulldisk "$mnt"
else
    work=$(mktemp -d "$scratch/afmt-spillfull.XXXXXX") || exit 1
    "$@" -n "$np" "$exe" spillfull "$mnt" "$work"
fi
