#!/usr/bin/env bash
# python/tests/run_remote.sh - runs test_remote.py against real servers: nginx and s3rver
# on loopback (tests/servers/servers.sh), stopped again at exit. Exits 77 (ctest: skipped)
# where nginx, s3rver, curl or a Python module (boto3, numpy, ...) is missing.
# AFMT_PYTHON: the Python to use (default /usr/bin/python3, which has Debian's python3-*
# packages); AFMT_LIBRARY: libafmt.so, which writes the test files.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${AFMT_PYTHON:-/usr/bin/python3}
command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
for tool in nginx s3rver curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "python.remote skipped: $tool missing (scripts/deps installs it)"
        exit 77
    fi
done
if ! "$py" -c "import numpy, lz4.block, zstandard, xxhash, boto3" 2>/dev/null; then
    echo "python.remote skipped: $py lacks numpy, lz4, zstandard, xxhash or boto3" \
        "(apt-get install python3-numpy python3-lz4 python3-zstandard python3-xxhash" \
        "python3-boto3)"
    exit 77
fi
# shellcheck source=../../tests/servers/servers.sh
source "$root/tests/servers/servers.sh"
work=$(mktemp -d /tmp/afmt-remote.XXXXXX) || exit 1
trap 'afmt_srv_stop; rm -rf "$work"' EXIT
mkdir "$work/www" && chmod 755 "$work" "$work/www"
afmt_srv_nginx_start "$work/www" || exit 1
afmt_srv_s3_start "$work/s3" || exit 1
# The test writes its files into the directory nginx serves and uploads them to s3rver.
export AFMT_REMOTE_DIR="$work/www"
cd "$here" && "$py" -m unittest -v test_remote
