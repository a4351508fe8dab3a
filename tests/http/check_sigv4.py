"""check_sigv4.py LOG KEY SECRET REGION - recomputes the AWS Signature V4 of every request
in nginx's signature log (tests/servers/servers.sh, AFMT_HTTP_AUTH_LOG: "METHOD URI|HOST|
AUTHORIZATION|X-AMZ-DATE|X-AMZ-CONTENT-SHA256|X-AMZ-SECURITY-TOKEN") with botocore, AWS's
own signer, and compares it with the Authorization the library sent. Exit 0 when every
request matches (and there was at least one), else 1."""

import datetime
import sys
from unittest import mock

import botocore.auth
import botocore.awsrequest
import botocore.credentials


def expected(method, uri, host, amz_date, sha, token, key, secret, region):
    creds = botocore.credentials.Credentials(key, secret, None if token == "-" else token)
    headers = {"x-amz-content-sha256": sha}
    req = botocore.awsrequest.AWSRequest(method=method, url="http://%s%s" % (host, uri),
                                         headers=headers)
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")

    class Frozen(datetime.datetime):  # botocore reads the clock: give it the request's
        @classmethod
        def utcnow(cls):
            return when

        @classmethod
        def now(cls, tz=None):
            return when.replace(tzinfo=tz)

    with mock.patch("botocore.auth.datetime.datetime", Frozen):
        botocore.auth.S3SigV4Auth(creds, "s3", region).add_auth(req)
    return req.headers["Authorization"]


def main():
    log, key, secret, region = sys.argv[1:5]
    n = bad = 0
    for line in open(log):
        method, rest = line.rstrip("\n").split(" ", 1)
        uri, host, auth, amz_date, sha, token = rest.split("|")
        n += 1
        want = expected(method, uri, host, amz_date, sha, token, key, secret, region)
        if want != auth:
            bad += 1
            print("mismatch: %s %s\n  sent:     %s\n  botocore: %s" % (method, uri, auth, want))
    if n == 0:
        print("no request in %s" % log)
        return 1
    if bad == 0:
        print("%d requests: signatures match botocore's" % n)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
