"""Remote afmt files for the pure-Python reader: http(s)://host/path through plain HTTP
range requests (the standard library's http.client) and s3://bucket/key through boto3's
get_object with a Range. No libafmt.

Both speak the same protocol to the reader as _reader._Storage: read_region() (the
first 4096 bytes; that request also learns the file's size, from Content-Range, and its
version, the ETag), then read(off, n) of exact ranges. read_region() asks at the same
time, on a second thread, for the last page of the file (a suffix range, "bytes=-PAGE":
the trailer and, mostly, the newest footers and index segments), as libafmt's open does;
reads that fall inside it are answered from it. The superblock still decides which
footer is the newest: the last page is only bytes read ahead. A suffix answer that is
not exactly the object's end with the first answer's size and ETag (s3rver answers
"bytes=-N" with the first N + 1 bytes; some servers ignore suffix ranges) is not used:
the page is then asked for by an explicit range. Every answer must be a 206 whose
Content-Range total and ETag are those of the first answer: anything else means the
server ignores ranges or the file changed under the reader, and reading on would mix two
files. Timeouts, 5xx answers and broken connections are retried a bounded number of
times with a doubling backoff (not the suffix request: its failure falls back to the
explicit range); everything else fails at once, naming the URL."""

import errno
import functools
import http.client
import os
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse

from ._format import SUPER_REGION, CorruptError

SCHEMES = ("http", "https", "s3")
_CRANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+)\s*$")
_PIECE = 1 << 20
_S3_PIECE = 64 << 10


def _page():
    """The last page's size: AFMT_HTTP_PAGE (bytes, 4096 to 64 MiB), as libafmt reads it,
    else 256 KiB."""
    v = os.environ.get("AFMT_HTTP_PAGE", "")
    try:
        n = int(v) if v else 256 << 10
    except ValueError:
        raise ValueError("AFMT_HTTP_PAGE is %r: not a whole number of bytes" % v) from None
    if not 4096 <= n <= 64 << 20:
        raise ValueError("AFMT_HTTP_PAGE is %d: not in [4096, %d]" % (n, 64 << 20))
    return n


def is_url(path):
    """Whether path names a remote file this module reads (a str with a scheme of ours)."""
    if not isinstance(path, str) or "://" not in path:
        return False
    return path.split("://", 1)[0].lower() in SCHEMES


def storage(url, timeout, retries):
    scheme = url.split("://", 1)[0].lower()
    return (_S3 if scheme == "s3" else _HTTP)(url, timeout, retries)


class _Transient(Exception):
    """A failure worth retrying (timeout, 5xx, broken connection). kind: "timeout",
    "status" or "network"."""

    def __init__(self, kind, what, err=None):
        super().__init__(what)
        self.kind, self.what, self.err = kind, what, err


def _status_error(url, status, reason):
    """The exception for a final HTTP status: the reader's types where they fit."""
    what = "%s: HTTP %d %s" % (url, status, reason)
    if status in (404, 410):
        return FileNotFoundError(errno.ENOENT, what)
    if status in (401, 403):
        return PermissionError(errno.EACCES, what)
    return OSError(errno.EIO, what)


class _Remote:
    """The checks and retries both schemes share; a subclass supplies _get."""

    def __init__(self, url, timeout, retries):
        if timeout is None or timeout <= 0:
            raise ValueError("%s: timeout must be a positive number of seconds" % url)
        self.url = url
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.size = None    # set by the first answer (read_region) or adopt()
        self.tag = None     # the ETag (or Last-Modified) of the first answer
        self.page = _page()
        self._tail = None   # (offset, bytes): the file's last page, read at open

    def adopt(self, pin):
        """The size and version another rank saw at open (File under a communicator)."""
        self.size, self.tag = pin

    @property
    def pin(self):
        return self.size, self.tag

    def read_region(self):
        """The superblock region and, in the same round trip, the last page."""
        got = []
        th = threading.Thread(target=self._tail_try, args=(got,), daemon=True)
        th.start()
        try:
            region = self._fetch(0, SUPER_REGION, first=True)
        finally:
            th.join()
        if self.size > SUPER_REGION:
            n = min(self.page, self.size)
            at = self.size - n
            t = got[0] if got else None
            if not (t and t[0] == self.size and t[1] == self.tag and len(t[2]) == n):
                t = (self.size, self.tag, self._fetch(at, n))   # the explicit range
            self._tail = (at, t[2])
        return region

    def _tail_try(self, out):
        """Thread: one request for the last page (no retries); appends (size, tag, bytes)
        to out when the answer is exactly the object's last min(page, size) bytes."""
        n = self.page
        try:
            status, _, crange, tag, body = self._get("bytes=-%d" % n, n,
                                                     time.monotonic() + self.timeout)
        except Exception:   # the explicit range will tell what is wrong
            return
        finally:
            self._thread_done()
        m = _CRANGE.match(crange or "")
        if status != 206 or m is None or m.group(1) is None or body is None:
            return
        a, b, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if b == total - 1 and a == total - min(n, total) and len(body) == b - a + 1:
            out.append((total, tag, body))

    def _thread_done(self):
        """A thread that reads no more: its own connection, if any, is closed."""

    def read(self, off, n):
        # As _Storage.read: every read lies below the chosen slot's eof, so a range past
        # the size is damage (here: a truncated object), found before asking the server.
        if off < 0 or n < 0 or off + n > self.size:
            raise CorruptError("%s: read of %d bytes at %d: the file ends at %d" %
                               (self.url, n, off, self.size))
        if n == 0:
            return b""
        t = self._tail
        if t is not None and t[0] <= off and off + n <= t[0] + len(t[1]):
            return t[1][off - t[0]:off - t[0] + n]
        return self._fetch(off, n)

    def _fetch(self, off, n, first=False):
        delay = 0.1
        for attempt in range(self.retries + 1):
            try:
                return self._once(off, n, first)
            except _Transient as e:
                last = e
            if attempt < self.retries:
                # Doubling, with jitter so that reading threads do not retry in step.
                time.sleep(delay * (1 + random.random()))
                delay *= 2
        tries = "%d tr%s" % (self.retries + 1, "y" if self.retries == 0 else "ies")
        if last.kind == "timeout":
            raise TimeoutError(errno.ETIMEDOUT, "%s: bytes %d-%d: no complete answer within "
                               "%g s (%s)" % (self.url, off, off + n - 1, self.timeout, tries))
        raise OSError(last.err.errno if isinstance(last.err, OSError) and last.err.errno
                      else errno.EIO, "%s: %s (%s)" % (self.url, last.what, tries))

    def _once(self, off, n, first):
        deadline = time.monotonic() + self.timeout
        status, reason, crange, tag, body = self._get("bytes=%d-%d" % (off, off + n - 1), n,
                                                      deadline)
        m = _CRANGE.match(crange or "")
        total = int(m.group(3)) if m else None
        if status == 416 and first:
            # The range starts at or past the end: an empty object (a short file is
            # damage the superblock check reports, as for a local file).
            if total is None:
                raise OSError(errno.EIO, "%s: HTTP 416 %s without the file size" %
                              (self.url, reason))
            self.size, self.tag = total, tag
            return b""
        if status == 412 or (status == 416 and not first):
            raise self._changed("HTTP %d %s" % (status, reason))
        if status == 200:
            raise OSError(errno.EOPNOTSUPP, "%s: the server does not answer range requests "
                          "(HTTP 200 with the whole file to a request for bytes %d-%d)" %
                          (self.url, off, off + n - 1))
        if status in (408, 429) or status >= 500:
            raise _Transient("status", "HTTP %d %s" % (status, reason))
        if status != 206:
            raise _status_error(self.url, status, reason)
        if m is None or m.group(1) is None:
            raise OSError(errno.EIO, "%s: HTTP 206 with an unusable Content-Range %r" %
                          (self.url, crange))
        if first:
            self.size, self.tag = total, tag
        elif total != self.size:
            raise self._changed("its size is now %d, it was %d at open" % (total, self.size))
        elif tag != self.tag:
            raise self._changed("its ETag is now %s, it was %s at open" % (tag, self.tag))
        a, b = int(m.group(1)), int(m.group(2))
        want_b = min(off + n, total) - 1
        if a != off or b != want_b:
            raise OSError(errno.EIO, "%s: asked for bytes %d-%d, the server sent %d-%d" %
                          (self.url, off, want_b, a, b))
        if len(body) != b - a + 1:
            raise _Transient("network", "bytes %d-%d: the answer ended after %d bytes" %
                             (a, b, len(body)))
        return body

    def _changed(self, how):
        return OSError(errno.ESTALE, "%s: the file changed under the reader (%s)" %
                       (self.url, how))

    @staticmethod
    def _left(deadline):
        t = deadline - time.monotonic()
        if t <= 0:
            raise socket.timeout("deadline")
        return t


class _HTTP(_Remote):
    """http(s):// through http.client: one kept-alive connection per reading thread (the
    reader decodes blocks on up to 4 threads), so a read costs no new TCP or TLS handshake.
    Redirects are not followed and no proxy is used: the URL must name the file itself."""

    def __init__(self, url, timeout, retries):
        super().__init__(url, timeout, retries)
        u = urllib.parse.urlsplit(url)
        if not u.hostname:
            raise ValueError("%s: no host in the URL" % url)
        if u.scheme.lower() == "https":
            # AFMT_HTTP_CAINFO: the CA bundle to trust instead of the system's (a private CA),
            # as libafmt reads it.
            ctx = ssl.create_default_context(cafile=os.environ.get("AFMT_HTTP_CAINFO") or None)
            self._cls = functools.partial(http.client.HTTPSConnection, context=ctx)
        else:
            self._cls = http.client.HTTPConnection
        self._netloc = u.netloc.rsplit("@", 1)[-1]
        self._target = (u.path or "/") + ("?" + u.query if u.query else "")
        self._tls = threading.local()
        self._conns = []
        self._lock = threading.Lock()

    def _conn(self):
        c = getattr(self._tls, "conn", None)
        if c is None:
            c = self._tls.conn = self._cls(self._netloc, timeout=self.timeout)
            with self._lock:
                self._conns.append(c)
        return c

    def _get(self, rng, want, deadline):
        """One GET with the Range header rng, reading at most want bytes of a 206's body:
        (status, reason, Content-Range, ETag, body or None)."""
        c = self._conn()
        try:
            c.timeout = self._left(deadline)
            if c.sock is not None:
                c.sock.settimeout(c.timeout)
            r = self._ask(c, rng)
            crange = r.getheader("Content-Range")
            tag = r.getheader("ETag") or r.getheader("Last-Modified")
            if r.status != 206:
                # Not reading the body: a 200 may be the whole (large) file.
                c.close()
                return r.status, r.reason, crange, tag, None
            parts, left = [], want
            while left > 0:
                # The socket timeout bounds each wait, the deadline the whole answer: a
                # server trickling bytes must not hold the reader forever.
                c.sock.settimeout(self._left(deadline))
                b = r.read1(min(left, _PIECE))   # read1: one recv, not until amt bytes
                if not b:
                    break
                parts.append(b)
                left -= len(b)
            if left > 0 or r.read(1):
                c.close()
            elif r.will_close:
                c.close()
            return r.status, r.reason, crange, tag, b"".join(parts)
        except socket.timeout as e:
            c.close()
            raise _Transient("timeout", "timed out", e) from None
        except (OSError, http.client.HTTPException) as e:
            c.close()
            raise _Transient("network", "%s: %s" % (type(e).__name__, e), e) from None

    def _ask(self, c, rng):
        headers = {"Range": rng, "Accept-Encoding": "identity"}
        if c.sock is not None:
            try:
                c.request("GET", self._target, headers=headers)
                return c.getresponse()
            except (ConnectionError, http.client.RemoteDisconnected):
                # A kept-alive connection the server closed while idle: not a failure of
                # the server, so it takes none of the retries.
                c.close()
        c.request("GET", self._target, headers=headers)
        return c.getresponse()

    def _thread_done(self):
        c = getattr(self._tls, "conn", None)
        if c is not None:
            self._tls.conn = None
            with self._lock:
                if c in self._conns:
                    self._conns.remove(c)
            c.close()

    def close(self):
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()
        self._tls = threading.local()


class _S3(_Remote):
    """s3://bucket/key through boto3 (Debian python3-boto3). The endpoint comes from
    AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (path-style addressing then, as S3-compatible
    servers expect), the region from AWS_REGION or AWS_DEFAULT_REGION (else us-east-1),
    the credentials from boto3's usual chain (AWS_ACCESS_KEY_ID, ...); without any, the
    requests go unsigned (public buckets). botocore's own retries are off: _Remote's
    apply, the same for both schemes."""

    def __init__(self, url, timeout, retries):
        super().__init__(url, timeout, retries)
        try:
            import boto3
            import botocore
            import botocore.config
            import botocore.exceptions
        except ImportError as e:
            raise ImportError("%s: reading s3:// URLs needs boto3 (apt-get install "
                              "python3-boto3): %s" % (url, e)) from None
        u = urllib.parse.urlsplit(url)
        self._bucket, self._key = u.netloc, u.path[1:]
        if not self._bucket or not self._key:
            raise ValueError("%s: not of the form s3://bucket/key" % url)
        env = os.environ
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        session = boto3.session.Session(region_name=region)
        kw = {"connect_timeout": self.timeout, "read_timeout": self.timeout,
              "retries": {"total_max_attempts": 1}}
        if endpoint:
            kw["s3"] = {"addressing_style": "path"}
        if session.get_credentials() is None:
            kw["signature_version"] = botocore.UNSIGNED
        self._client = session.client("s3", endpoint_url=endpoint,
                                      config=botocore.config.Config(**kw))
        self._exc = botocore.exceptions

    def _get(self, rng, want, deadline):
        X = self._exc
        try:
            r = self._client.get_object(Bucket=self._bucket, Key=self._key, Range=rng)
        except X.ClientError as e:
            meta = e.response.get("ResponseMetadata", {})
            err = e.response.get("Error", {})
            reason = " ".join(x for x in (err.get("Code"), err.get("Message")) if x)
            crange = meta.get("HTTPHeaders", {}).get("content-range")
            return meta.get("HTTPStatusCode", 0), reason, crange, None, None
        except (X.ConnectTimeoutError, X.ReadTimeoutError) as e:
            raise _Transient("timeout", "timed out", e) from None
        except (X.BotoCoreError, OSError) as e:
            if isinstance(e, X.NoCredentialsError):
                raise PermissionError(errno.EACCES, "%s: %s" % (self.url, e)) from None
            raise _Transient("network", "%s: %s" % (type(e).__name__, e), e) from None
        status = r["ResponseMetadata"]["HTTPStatusCode"]
        body = r["Body"]
        try:
            if status != 206:
                return status, "", r.get("ContentRange"), r.get("ETag"), None
            parts, left = [], want
            while left > 0:
                # body.read(amt) waits for amt bytes (read_timeout bounds each recv only):
                # small pieces keep the deadline checks close together.
                self._left(deadline)
                b = body.read(min(left, _S3_PIECE))
                if not b:
                    break
                parts.append(b)
                left -= len(b)
            return status, "", r.get("ContentRange"), r.get("ETag"), b"".join(parts)
        except (socket.timeout, X.ReadTimeoutError) as e:
            raise _Transient("timeout", "timed out", e) from None
        except Exception as e:  # urllib3's protocol errors are no botocore type
            raise _Transient("network", "%s: %s" % (type(e).__name__, e), e) from None
        finally:
            body.close()

    def close(self):
        self._client.close()
