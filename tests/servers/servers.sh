#!/usr/bin/env bash
# tests/servers/servers.sh - real HTTP and S3 servers for the remote-read tests, on
# loopback only, started and stopped by the test that sources this file.
#
#   source tests/servers/servers.sh
#   afmt_srv_nginx_start DIR   # nginx serving DIR; sets AFMT_HTTP_URL=http://127.0.0.1:PORT,
#                              # and with openssl AFMT_HTTPS_URL=https://127.0.0.1:PORT2 (a
#                              # self-signed certificate for 127.0.0.1, AFMT_HTTPS_CA)
#   afmt_srv_s3_start DIR      # s3rver keeping its objects in DIR, bucket "afmt"; sets
#                              # AFMT_S3_ENDPOINT=http://127.0.0.1:PORT and exports
#                              # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
#                              # AWS_ENDPOINT_URL for the library and boto3
#   afmt_srv_s3_put LOCAL KEY  # uploads LOCAL as s3://afmt/KEY (signed, through curl)
#   afmt_srv_stop              # stops every server this shell started (also on EXIT)
#
# nginx serves, besides / (byte ranges, ETag, keep-alive):
#   /norange/   the same files with range requests ignored (max_ranges 0: 200 + whole body)
#   /slow/      the same files at 100 bytes/s (timeouts)
#   /busy/      the same files, but more than 2 requests a second get 503 (retries)
#   /nosuffix/  the same files, but a suffix range ("bytes=-N") gets 200 and a short text,
#               as from a server that does not know suffix ranges (the remote open's
#               fallback to an explicit range)
# Its access log (AFMT_HTTP_LOG) has one line per request: "METHOD URI STATUS RANGE BYTES";
# AFMT_HTTP_AUTH_LOG the headers an AWS signature covers: "METHOD URI|HOST|AUTHORIZATION|
# X-AMZ-DATE|X-AMZ-CONTENT-SHA256|X-AMZ-SECURITY-TOKEN" (nginx as an S3 endpoint, to check
# the signatures of requests against botocore's signer).
#
# Why these servers: nginx (Debian nginx-light) is what sites serve files with, and answers
# range requests as the RFCs say; s3rver (npm) is an S3 implementation that checks AWS
# Signature V4, with the default account S3RVER/S3RVER. Debian's radosgw needs a whole
# Ceph cluster (monitors, OSDs) to start, so it cannot run standalone in a test.

AFMT_SRV_PIDS=()
AFMT_SRV_DIRS=()

# A free TCP port on 127.0.0.1 (the kernel picks it; a race with another process taking it
# in between is possible but shows as a start failure, not a wrong result).
afmt_srv_free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until URL answers (any HTTP status), up to 20 s.
afmt_srv_wait() {
    local url=$1 i
    for ((i = 0; i < 200; i++)); do
        if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
        sleep 0.1
    done
    echo "servers: $url did not come up" >&2
    return 1
}

afmt_srv_nginx_start() {
    local dir
    dir=$(cd "$1" && pwd) || return 1
    command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
    local port run
    port=$(afmt_srv_free_port) || return 1
    run=$(mktemp -d /tmp/afmt-nginx.XXXXXX) || return 1
    chmod 755 "$run"
    local user="" tls=""
    [[ "$(id -u)" == 0 ]] && user="user root;"
    # HTTPS with a certificate of its own (a private CA as sites have): the clients trust it
    # through AFMT_HTTPS_CA only.
    local sport=""
    if command -v openssl >/dev/null &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
            -addext "subjectAltName=IP:127.0.0.1" -keyout "$run/key.pem" \
            -out "$run/cert.pem" >/dev/null 2>&1; then
        sport=$(afmt_srv_free_port) || return 1
        tls="server { listen 127.0.0.1:$sport ssl; root $dir;
        ssl_certificate $run/cert.pem; ssl_certificate_key $run/key.pem; }"
    fi
    cat >"$run/nginx.conf" <<CONF
$user
worker_processes 2;
daemon on;
pid $run/nginx.pid;
error_log $run/error.log warn;
events { worker_connections 256; }
http {
    default_type application/octet-stream;
    log_format afmt '\$request_method \$uri \$status "\$http_range" \$body_bytes_sent';
    access_log $run/access.log afmt;
    log_format sig '\$request_method \$request_uri|\$http_host|\$http_authorization|\$http_x_amz_date|\$http_x_amz_content_sha256|\$http_x_amz_security_token';
    access_log $run/auth.log sig;
    client_body_temp_path $run/body;
    proxy_temp_path $run/proxy;
    fastcgi_temp_path $run/fastcgi;
    uwsgi_temp_path $run/uwsgi;
    scgi_temp_path $run/scgi;
    sendfile on;
    keepalive_requests 100000;
    limit_req_zone \$binary_remote_addr zone=busy:1m rate=2r/s;
    server {
        listen 127.0.0.1:$port;
        root $dir;
        location /norange/ { alias $dir/; max_ranges 0; }
        location /slow/ { alias $dir/; limit_rate 100; }
        location /busy/ { alias $dir/; limit_req zone=busy; limit_req_status 503; }
        location /nosuffix/ {
            alias $dir/;
            if (\$http_range ~ "^bytes=-") { return 200 "no suffix ranges here\n"; }
        }
    }
    $tls
}
CONF
    if ! nginx -c "$run/nginx.conf" -p "$run" 2>"$run/start.err"; then
        echo "servers: nginx did not start:" >&2
        cat "$run/start.err" >&2
        return 1
    fi
    AFMT_SRV_PIDS+=("$(cat "$run/nginx.pid")")
    AFMT_SRV_DIRS+=("$run")
    export AFMT_HTTP_URL="http://127.0.0.1:$port"
    if [[ -n "$sport" ]]; then
        export AFMT_HTTPS_URL="https://127.0.0.1:$sport" AFMT_HTTPS_CA="$run/cert.pem"
    fi
    export AFMT_HTTP_LOG="$run/access.log"
    export AFMT_HTTP_AUTH_LOG="$run/auth.log"
    afmt_srv_wait "$AFMT_HTTP_URL/"
}

afmt_srv_s3_start() {
    local dir=$1 port
    mkdir -p "$dir" || return 1
    port=$(afmt_srv_free_port) || return 1
    local log
    log=$(mktemp /tmp/afmt-s3rver.XXXXXX.log)
    s3rver --directory "$dir" --address 127.0.0.1 --port "$port" --configure-bucket afmt \
        --silent >"$log" 2>&1 &
    AFMT_SRV_PIDS+=("$!")
    AFMT_SRV_DIRS+=("$log")
    export AFMT_S3_ENDPOINT="http://127.0.0.1:$port"
    export AWS_ENDPOINT_URL="$AFMT_S3_ENDPOINT"
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
    unset AWS_SESSION_TOKEN AWS_PROFILE
    afmt_srv_wait "$AFMT_S3_ENDPOINT/" || { cat "$log" >&2; return 1; }
}

# Uploads a local file as s3://afmt/KEY with a signed PUT.
afmt_srv_s3_put() {
    curl -sS -f --aws-sigv4 "aws:amz:${AWS_REGION}:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        --user "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}" \
        -T "$1" "$AFMT_S3_ENDPOINT/afmt/$2" >/dev/null
}

afmt_srv_stop() {
    local p d
    for p in "${AFMT_SRV_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${AFMT_SRV_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null
    done
    for d in "${AFMT_SRV_DIRS[@]}"; do
        rm -rf "$d"
    done
    AFMT_SRV_PIDS=()
    AFMT_SRV_DIRS=()
}
trap afmt_srv_stop EXIT
