#!/usr/bin/env bash
# run_http_tests.sh CHECK MKEXPORT HEAT3D AFMT WORKDIR HAVE_CURL - the library's reads of
# http:// and s3:// files, from real servers on loopback (tests/servers/servers.sh): nginx
# and s3rver. Files of every dtype, odd shapes, scalars and several layers (mkexport, heat3d
# on 3 ranks) read the same over HTTP and S3 as from the disk, on 1-4 ranks, through the
# library (http_check.c) and the afmt tool; each bad server or object (404, no range
# support, truncated, slow, 503s, replaced under the reader, 403) is its error; S3 request
# signatures match botocore's (check_sigv4.py). The open asks for the first and the last
# page only (2 requests, one round trip) and a one-chunk read of a file of several pages
# costs at most 4; a file whose physical end carries the trailer of an interrupted commit
# reads as its superblock says; servers that answer suffix ranges wrongly (s3rver) or not
# at all (nginx /nosuffix/) read the same through the explicit-range fallback. HAVE_CURL 0: checks that a URL says the
# library was built without libcurl, and exits 77 (skipped); so does a machine without
# nginx (s3rver missing skips the S3 part only, with a note).
set -u
if [ $# -ne 6 ]; then
    echo "usage: $0 CHECK MKEXPORT HEAT3D AFMT WORKDIR HAVE_CURL" >&2
    exit 2
fi
CHECK=$1
MK=$2
HEAT=$3
AFMT=$4
W=$5
HAVE=$6
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/tap.sh
source "$HERE/../tap.sh"
# shellcheck source=tests/servers/servers.sh
source "$HERE/../servers/servers.sh"
rm -rf "$W"
mkdir -p "$W/www"
cd "$W" || exit 2

if [ "$HAVE" != 1 ]; then
    t "without libcurl" mpi 1 "$CHECK" fails http://127.0.0.1:9/x.afmt AFMT_EINVAL "without libcurl"
    rc_is 0
    echo "1..$n"
    echo "# afmt was built without libcurl (libcurl4-openssl-dev): remote reads not tested"
    [ "$fails" -eq 0 ] && exit 77
    exit 1
fi
PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null; then
    echo "1..0 # SKIP nginx is not installed (Debian nginx-light; scripts/deps installs it)"
    exit 77
fi

# ---- the files ----
"$MK" www/a.afmt && "$MK" www/a.afmt again || { echo "not ok - mkexport failed"; exit 1; }
mpi 3 "$HEAT" --file www/h.afmt --grid 29x23x17 --steps 6 --checkpoint-every 2 >/dev/null ||
    { echo "not ok - heat3d failed"; exit 1; }
# g.afmt: one writer, 0.9 MiB (pages of 256 KiB: its segment, footer and trailer lie in
# the last page). u.afmt: g.afmt, then a second commit interrupted before its slot: g's
# superblock region put back over the bytes of both commits, so that the physical end
# carries a valid trailer and footer the superblock does not name (format.md 13).
mpi 1 "$HEAT" --file www/g.afmt --grid 64x64x48 --steps 2 --checkpoint-every 2 >/dev/null &&
    cp www/g.afmt www/u.afmt &&
    mpi 1 "$HEAT" --file www/u.afmt --restart --steps 4 --checkpoint-every 2 >/dev/null &&
    dd if=www/g.afmt of=www/u.afmt bs=4096 count=1 conv=notrunc status=none ||
    { echo "not ok - g.afmt / u.afmt failed"; exit 1; }
afmt_srv_nginx_start "$W/www" || { echo "not ok - nginx did not start"; exit 1; }
U=$AFMT_HTTP_URL

# nginx's access log, once settled (it writes a request's line after the answer), in $log:
# its lines from line $1 + 1 on.
log_from() {
    local last="" now i
    for ((i = 0; i < 50; i++)); do
        now=$(wc -l <"$AFMT_HTTP_LOG")
        [ "$now" = "$last" ] && break
        last=$now
        sleep 0.05
    done
    log=$(tail -n +$(($1 + 1)) "$AFMT_HTTP_LOG")
}
log_len() { wc -l <"$AFMT_HTTP_LOG"; }

# ---- the same bytes, on 1-4 ranks ----
for np in 1 2 3 4; do
    t "http a.afmt, $np ranks" mpi "$np" "$CHECK" same www/a.afmt "$U/a.afmt"
    rc_is 0
    has "layer 2 reads the same"
done
for np in 1 3 4; do
    t "http h.afmt (heat3d), $np ranks" mpi "$np" "$CHECK" same www/h.afmt "$U/h.afmt"
    rc_is 0
    has "layer 3 reads the same"
done
# ---- the open: the first and the last page at once ----
l0=$(log_len)
t "open g.afmt" mpi 1 "$CHECK" open "$U/g.afmt"
rc_is 0
log_from "$l0"
want=$'"bytes=-262144"\n"bytes=0-262143"'
if [ "$(printf '%s\n' "$log" | awk '{print $4}' | sort)" = "$want" ]; then
    ok "open: 2 requests, the first page and the last"
else bad "open: the requests were: $log"; fi
l0=$(log_len)
t "one chunk of g.afmt" mpi 1 "$CHECK" chunk "$U/g.afmt" temperature
rc_is 0
log_from "$l0"
nreq=$(printf '%s\n' "$log" | wc -l)
echo "# open + one chunk: $nreq requests"
if [ "$nreq" -le 4 ] && ! printf '%s\n' "$log" | grep -qv " 206 "; then
    ok "open + one chunk: $nreq requests (at most 4), all 206"
else bad "open + one chunk: the requests were: $log"; fi
# Pages that cut the end of the file 1500 bytes before it: the last page's bytes are two
# cache entries, a part of a page and a whole (short) one, and the footer with its
# trailer, across both, is still read from them: the open is 2 requests.
gsize=$(stat -c %s www/g.afmt)
pg=$(((gsize - 1500) / 3))
l0=$(log_len)
t "open g.afmt, pages of $pg bytes" mpi 1 env AFMT_HTTP_PAGE=$pg "$CHECK" open "$U/g.afmt"
rc_is 0
log_from "$l0"
if [ "$(printf '%s\n' "$log" | wc -l)" = 2 ]; then ok "open with pages of $pg bytes: 2 requests"
else bad "open with pages of $pg bytes: the requests were: $log"; fi
t "http g.afmt, pages of $pg bytes, 2 ranks" mpi 2 env AFMT_HTTP_PAGE=$pg "$CHECK" same \
    www/g.afmt "$U/g.afmt"
rc_is 0
# The interrupted commit: read as the superblock says (1 layer, g's), as the local file is.
t "afmt info u.afmt" "$AFMT" info www/u.afmt
if grep -q "committed end: *$(stat -c %s www/g.afmt)\$" out && [ "$(tail -c 8 www/u.afmt)" = AFMTTRLR ] &&
    [ "$(stat -c %s www/u.afmt)" -gt "$(stat -c %s www/g.afmt)" ]; then
    ok "u.afmt: a trailer at the end, past the committed end"
else bad "u.afmt is not the interrupted commit it should be"; fi
t "http u.afmt (trailer of an interrupted commit), 2 ranks" mpi 2 "$CHECK" same www/u.afmt \
    "$U/u.afmt"
rc_is 0
has "the newest of 1 layers reads the same"
# A server that answers a suffix range with 200: the last page by an explicit range.
l0=$(log_len)
t "http, no suffix ranges, 2 ranks" mpi 2 "$CHECK" same www/g.afmt "$U/nosuffix/g.afmt"
rc_is 0
log_from "$l0"
if printf '%s\n' "$log" | grep -q '^GET /nosuffix/g.afmt 200 "bytes=-262144"' &&
    printf '%s\n' "$log" | grep -qF "GET /nosuffix/g.afmt 206 \"bytes=$((gsize - 262144))-$((gsize - 1))\""; then
    ok "no suffix ranges: the 200 was not used, the explicit range was asked"
else bad "no suffix ranges: the requests were: $log"; fi

# Pages of 4 KiB and no cache: every read its own requests.
t "http, 4 KiB pages" mpi 2 env AFMT_HTTP_PAGE=4096 "$CHECK" same www/h.afmt "$U/h.afmt"
rc_is 0
t "http, no cache" mpi 2 env AFMT_HTTP_CACHE=0 "$CHECK" same www/h.afmt "$U/h.afmt"
rc_is 0
# 503 beyond 2 requests a second: the retries get through.
t "http, server answers 503s" mpi 1 "$CHECK" same www/a.afmt "$U/busy/a.afmt"
rc_is 0
if grep -q "/busy/a.afmt 503" "$AFMT_HTTP_LOG"; then ok "the server did answer 503"; else
    bad "no 503 in the server's log: the retry was not tested"; fi

# ---- HTTPS: the server's certificate trusted through AFMT_HTTP_CAINFO only ----
if [ -n "${AFMT_HTTPS_URL:-}" ]; then
    t "https a.afmt, 2 ranks" mpi 2 env AFMT_HTTP_CAINFO="$AFMT_HTTPS_CA" "$CHECK" same \
        www/a.afmt "$AFMT_HTTPS_URL/a.afmt"
    rc_is 0
    has "layer 2 reads the same"
    t "https, certificate not trusted" mpi 2 "$CHECK" fails "$AFMT_HTTPS_URL/a.afmt" AFMT_EIO \
        "GET $AFMT_HTTPS_URL/a.afmt"
    rc_is 0
else
    echo "# openssl missing: https not tested"
fi

# ---- the tool ----
for cmd in ls info stats; do
    "$AFMT" "$cmd" www/h.afmt >local.txt 2>&1
    t "afmt $cmd URL" "$AFMT" "$cmd" "$U/h.afmt"
    rc_is 0
    sed -i "s#$U/h.afmt#www/h.afmt#g" out
    if diff -q out local.txt >/dev/null; then ok "$name: the same output as the local file"; else
        bad "$name: output differs from the local file's"; fi
done
t "afmt verify URL" mpi 2 "$AFMT" verify "$U/h.afmt"
rc_is 0
has ": OK"
t "afmt diff local URL" mpi 2 "$AFMT" diff www/a.afmt "$U/a.afmt"
rc_is 0
t "afmt dump URL" "$AFMT" dump "$U/a.afmt" nsteps
out_is "7"

# ---- bad servers and objects ----
t "404" mpi 2 "$CHECK" fails "$U/nope.afmt" AFMT_ENOTFOUND "HTTP 404"
rc_is 0
t "no range support" mpi 2 "$CHECK" fails "$U/norange/a.afmt" AFMT_EIO "ignored the range request"
rc_is 0
head -c $(($(stat -c %s www/h.afmt) * 2 / 3)) www/h.afmt >www/trunc.afmt
t "truncated object" mpi 2 "$CHECK" fails "$U/trunc.afmt" AFMT_ECORRUPT "trunc.afmt"
rc_is 0
start=$(date +%s)
t "slow server" mpi 2 env AFMT_HTTP_TIMEOUT=1 AFMT_HTTP_RETRIES=1 "$CHECK" fails "$U/slow/a.afmt" AFMT_EIO "timeout"
rc_is 0
has "after 2 tries"
secs=$(($(date +%s) - start))
if [ "$secs" -le 20 ]; then ok "slow server: failed in $secs s"; else bad "slow server: $secs s"; fi
t "create on a URL" mpi 2 "$CHECK" fails "$U/new.afmt" AFMT_EINVAL "read-only" create
rc_is 0
t "open a URL for writing" mpi 2 "$CHECK" fails "$U/a.afmt" AFMT_EINVAL "read-only" rdwr
rc_is 0
t "bad setting" mpi 1 env AFMT_HTTP_TIMEOUT=soon "$CHECK" fails "$U/a.afmt" AFMT_EINVAL "AFMT_HTTP_TIMEOUT"
rc_is 0
# Replaced under the reader: the open sees one file, the reads another (4 KiB pages, so
# that the blocks are fetched after the swap).
cp www/h.afmt www/swap.afmt
cp www/a.afmt www/swapin.afmt
t "replaced under the reader" mpi 2 env AFMT_HTTP_PAGE=4096 AFMT_SWAP_FROM=www/swapin.afmt \
    AFMT_SWAP_TO=www/swap.afmt "$CHECK" fails "$U/swap.afmt" AFMT_EIO "changed under the reader"
rc_is 0

# ---- S3 ----
if ! command -v s3rver >/dev/null; then
    echo "# s3rver is not installed (npm; scripts/deps installs it): the S3 reads are not tested"
    tap_end
fi
afmt_srv_s3_start "$W/s3" || { bad "s3rver did not start"; tap_end; }
afmt_srv_s3_put www/a.afmt runs/a.afmt && afmt_srv_s3_put www/h.afmt runs/h.afmt &&
    afmt_srv_s3_put www/g.afmt runs/g.afmt || bad "upload to s3rver"
for np in 1 2 4; do
    t "s3 a.afmt, $np ranks" mpi "$np" "$CHECK" same www/a.afmt s3://afmt/runs/a.afmt
    rc_is 0
done
t "s3 h.afmt, 3 ranks" mpi 3 "$CHECK" same www/h.afmt s3://afmt/runs/h.afmt
rc_is 0
# s3rver answers a suffix range ("bytes=-N") with the object's first N + 1 bytes: the open
# must see that the reply is not the end of the object and ask for it by an explicit range.
# (Should s3rver learn suffix ranges, the reads below still pass, without the fallback.)
crange=$(curl -sS -o /dev/null -D - -r -1000 --aws-sigv4 "aws:amz:${AWS_REGION}:s3" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --user "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}" \
    "$AFMT_S3_ENDPOINT/afmt/runs/g.afmt" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Rr]ange: //p')
echo "# s3rver's answer to bytes=-1000 of g.afmt: Content-Range $crange"
for np in 1 2 3 4; do
    t "s3 g.afmt (suffix range fallback), $np ranks" mpi "$np" "$CHECK" same www/g.afmt \
        s3://afmt/runs/g.afmt
    rc_is 0
    has "layer 1 reads the same"
done
t "afmt ls s3://" "$AFMT" ls s3://afmt/runs/h.afmt
rc_is 0
has "temperature"
t "s3 missing key" mpi 2 "$CHECK" fails s3://afmt/runs/nope.afmt AFMT_ENOTFOUND "NoSuchKey"
rc_is 0
t "s3 unknown access key" mpi 2 env AWS_ACCESS_KEY_ID=NOBODY "$CHECK" fails \
    s3://afmt/runs/a.afmt AFMT_EIO "HTTP 403 (InvalidAccessKeyId)"
rc_is 0
t "s3 path without a key" mpi 1 "$CHECK" fails s3://afmt AFMT_EINVAL "s3://BUCKET/KEY"
rc_is 0

# The signatures: nginx as the S3 endpoint logs the signed headers; botocore, AWS's own
# signer, must compute the same Authorization for each request (with a session token too).
mkdir -p www/afmt/runs && cp www/a.afmt www/afmt/runs/a.afmt
: >"$AFMT_HTTP_AUTH_LOG"
t "s3 through nginx" mpi 1 env AWS_ENDPOINT_URL="$U" AWS_SESSION_TOKEN=tok-123 AWS_REGION=eu-west-3 \
    AFMT_HTTP_PAGE=4096 "$CHECK" same www/a.afmt s3://afmt/runs/a.afmt
rc_is 0
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import botocore" 2>/dev/null; then
    t "SigV4 signatures = botocore's" /usr/bin/python3 "$HERE/check_sigv4.py" \
        "$AFMT_HTTP_AUTH_LOG" S3RVER S3RVER eu-west-3
    rc_is 0
    has "signatures match"
else
    echo "# botocore (python3-boto3) missing: signatures not checked against it"
fi
tap_end
