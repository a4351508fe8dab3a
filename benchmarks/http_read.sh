#!/usr/bin/env bash
# benchmarks/http_read.sh BUILD [DIR] [REPS] - reads over HTTP from nginx on loopback
# (tests/servers/servers.sh) against the same file read locally, in the same run:
#   1. one chunk of a 1 GiB file (1 MiB chunks, uncompressed so that the file is 1 GiB):
#      open + read, REPS times; the requests it took, from nginx's log
#   2. a 256 MiB array (LZ4 + shuffle) read whole by 4 ranks (afmt_read_all): local, then
#      HTTP, alternating
# Prints every time and the medians. DIR: where the files are made (default /dev/shm).
set -euo pipefail
BUILD=${1:?usage: http_read.sh BUILD [DIR] [REPS]}
DIR=${2:-/dev/shm}
REPS=${3:-7}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/deps
source "$HERE/../scripts/deps"
afmt_mpi_env
# shellcheck source=tests/servers/servers.sh
source "$HERE/../tests/servers/servers.sh"
B=$BUILD/benchmarks/http_read
W=$(mktemp -d "$DIR/afmt-http-bench.XXXXXX")
trap 'afmt_srv_stop; rm -rf "$W"' EXIT
chmod 755 "$W"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

mpiexec --bind-to none -n 2 "$B" make "$W/big.afmt" 1024 none
mpiexec --bind-to none -n 2 "$B" make "$W/mid.afmt" 256
ls -l "$W"
afmt_srv_nginx_start "$W"
U=$AFMT_HTTP_URL
echo "== one chunk of a 1 GiB file (open + read), $REPS times"
mpiexec -n 1 "$B" chunk "$W/big.afmt" "$REPS" >local.chunk
: >"$AFMT_HTTP_LOG"
mpiexec -n 1 "$B" chunk "$U/big.afmt" 1 >/dev/null
echo "requests of one open + chunk read:"
cat "$AFMT_HTTP_LOG"
echo "count: $(wc -l <"$AFMT_HTTP_LOG")"
mpiexec -n 1 "$B" chunk "$U/big.afmt" "$REPS" >http.chunk
echo "local: $(tr '\n' ' ' <local.chunk)"
echo "http:  $(tr '\n' ' ' <http.chunk)"
echo "median local $(median <local.chunk) s, http $(median <http.chunk) s"
rm -f local.chunk http.chunk

echo "== 256 MiB array, 4 ranks, afmt_read_all, alternating, $REPS times"
: >local.full
: >http.full
for ((r = 0; r < REPS; r++)); do
    mpiexec --bind-to none -n 4 "$B" full "$W/mid.afmt" 1 >>local.full
    mpiexec --bind-to none -n 4 "$B" full "$U/mid.afmt" 1 >>http.full
done
echo "local (s GB/s):"; cat local.full
echo "http  (s GB/s):"; cat http.full
l=$(cut -d' ' -f1 local.full | median)
h=$(cut -d' ' -f1 http.full | median)
echo "median local $l s, http $h s: http/local speed = $(awk -v l="$l" -v h="$h" 'BEGIN {printf "%.2f", l / h}')"
rm -f local.full http.full
