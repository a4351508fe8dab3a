/* http.c - byte-range GETs with libcurl (http.h): the URL of a path, the checks of a
 * reply, the retries. Signing S3 requests is libcurl's (CURLOPT_AWS_SIGV4): a
 * well-tested implementation of AWS Signature V4, which the tests check against
 * botocore's. */
#include "storage/http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/error.h"

int afmt__http_is_url(const char *path) {
    return path && (strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0 ||
                    strncasecmp(path, "s3://", 5) == 0);
}

/* ---- settings ------------------------------------------------------------------- */

/* The setting named hint (MPI_Info) or env (environment), as an unsigned number in
 * [lo, hi]; def when neither is set. */
static int setting(MPI_Info info, const char *hint, const char *env, uint64_t def, uint64_t lo,
                   uint64_t hi, uint64_t *out, const char *path, char *errmsg) {
    char val[64];
    const char *s = NULL, *from = hint;
    int flag = 0;
    if (info != MPI_INFO_NULL) {
        MPI_Info_get(info, hint, (int)sizeof val - 1, val, &flag);
        if (flag) s = val;
    }
    if (!s && (s = getenv(env)) != NULL) from = env;
    *out = def;
    if (!s || !*s) return AFMT_OK;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-' || v < lo || v > hi)
        return afmt__fail(errmsg, AFMT_EINVAL,
                          "open(%s): %s is \"%s\": not a whole number in [%llu, %llu]", path, from,
                          s, (unsigned long long)lo, (unsigned long long)hi);
    *out = v;
    return AFMT_OK;
}

/* The text setting named hint (MPI_Info) or env, malloc'd into *out; NULL when unset. */
static int text_setting(MPI_Info info, const char *hint, const char *env, char **out,
                        const char *path, char *errmsg) {
    char val[4096];
    int flag = 0;
    const char *s = NULL;
    if (info != MPI_INFO_NULL) {
        MPI_Info_get(info, hint, (int)sizeof val - 1, val, &flag);
        if (flag) s = val;
    }
    if (!s) s = getenv(env);
    *out = NULL;
    if (!s || !*s) return AFMT_OK;
    if (!(*out = strdup(s)))
        return afmt__fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", path);
    return AFMT_OK;
}

static const char *env_first(const char *a, const char *b) {
    const char *s = getenv(a);
    if (s && *s) return s;
    s = b ? getenv(b) : NULL;
    return s && *s ? s : NULL;
}

/* S3 object keys in a URL: every byte but the unreserved ones and '/' percent-encoded
 * (AWS's URI encoding; libcurl signs the path as sent). */
static char *encode_key(const char *key) {
    size_t n = strlen(key);
    char *o = malloc(3 * n + 1), *p = o;
    if (!o) return NULL;
    for (const unsigned char *k = (const unsigned char *)key; *k; k++) {
        if (isalnum(*k) || *k == '-' || *k == '_' || *k == '.' || *k == '~' || *k == '/')
            *p++ = (char)*k;
        else
            p += sprintf(p, "%%%02X", *k);
    }
    *p = '\0';
    return o;
}

/* A malloc'd printf (NULL when out of memory). */
static char *dupf(const char *fmt, ...) {
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) vsnprintf(s, (size_t)n + 1, fmt, aq);
    va_end(aq);
    return s;
}

/* s3://BUCKET/KEY: c->url, and the signing settings when there are credentials. */
static int s3_conf(afmt_http_conf *c, char *errmsg) {
    const char *rest = c->path + 5, *slash = strchr(rest, '/');
    if (!slash || slash == rest || !slash[1])
        return afmt__fail(errmsg, AFMT_EINVAL,
                          "open(%s): an S3 path is s3://BUCKET/KEY (bucket or key missing)",
                          c->path);
    size_t blen = (size_t)(slash - rest);
    char bucket[256];
    if (blen >= sizeof bucket)
        return afmt__fail(errmsg, AFMT_EINVAL, "open(%s): bucket name of %zu bytes (at most 255)",
                          c->path, blen);
    memcpy(bucket, rest, blen);
    bucket[blen] = '\0';
    const char *region = env_first("AWS_REGION", "AWS_DEFAULT_REGION");
    if (!region) region = "us-east-1";
    const char *endpoint = env_first("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL");
    char *key = encode_key(slash + 1);
    if (!key) return afmt__fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", c->path);
    if (endpoint) {
        size_t el = strlen(endpoint);
        char ep[1024];
        if (el >= sizeof ep) el = sizeof ep - 1;
        memcpy(ep, endpoint, el);
        while (el > 0 && endpoint[el - 1] == '/') el--; /* "http://host:port/" */
        ep[el] = '\0';
        c->url = dupf("%s/%s/%s", ep, bucket, key);
    } else {
        c->url = dupf("https://%s.s3.%s.amazonaws.com/%s", bucket, region, key);
    }
    free(key);
    const char *id = env_first("AWS_ACCESS_KEY_ID", NULL);
    const char *secret = env_first("AWS_SECRET_ACCESS_KEY", NULL);
    const char *token = env_first("AWS_SESSION_TOKEN", NULL);
    if (id && secret) {
        c->s3 = 1;
        c->sigv4 = dupf("aws:amz:%s:s3", region);
        c->userpwd = dupf("%s:%s", id, secret);
        if (token) c->token = dupf("x-amz-security-token: %s", token);
    }
    if (!c->url || (c->s3 && (!c->sigv4 || !c->userpwd || (token && !c->token))))
        return afmt__fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", c->path);
    return AFMT_OK;
}

int afmt__http_conf_init(afmt_http_conf *c, const char *path, MPI_Info info, char *errmsg) {
    memset(c, 0, sizeof *c);
    if (!(c->path = strdup(path))) return afmt__fail(errmsg, AFMT_ENOMEM, "open: out of memory");
    uint64_t t = 30, r = 4;
    int rc =
        setting(info, "afmt_http_timeout", "AFMT_HTTP_TIMEOUT", 30, 1, 86400, &t, path, errmsg);
    if (rc == AFMT_OK)
        rc = setting(info, "afmt_http_retries", "AFMT_HTTP_RETRIES", 4, 0, 20, &r, path, errmsg);
    if (rc == AFMT_OK)
        rc = setting(info, "afmt_http_page", "AFMT_HTTP_PAGE", 256 << 10, 4096, 64 << 20, &c->page,
                     path, errmsg);
    if (rc == AFMT_OK)
        rc = setting(info, "afmt_http_cache", "AFMT_HTTP_CACHE", 64 << 20, 0, UINT64_MAX / 2,
                     &c->cache, path, errmsg);
    c->timeout_s = (long)t;
    c->retries = (int)r;
    if (rc == AFMT_OK)
        rc = text_setting(info, "afmt_http_cainfo", "AFMT_HTTP_CAINFO", &c->cainfo, path, errmsg);
    if (rc == AFMT_OK && strncasecmp(path, "s3://", 5) == 0)
        rc = s3_conf(c, errmsg);
    else if (rc == AFMT_OK && !(c->url = strdup(path)))
        rc = afmt__fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", path);
    if (rc != AFMT_OK) afmt__http_conf_free(c);
    return rc;
}

void afmt__http_conf_free(afmt_http_conf *c) {
    free(c->path);
    free(c->url);
    free(c->sigv4);
    free(c->userpwd);
    free(c->token);
    free(c->cainfo);
    memset(c, 0, sizeof *c);
}

#ifdef AFMT_HAVE_CURL
#include <curl/curl.h>

struct afmt_http_conn {
    CURL *curl;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int afmt__http_conn_new(afmt_http_conn **out, char *errmsg) {
    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return afmt__fail(errmsg, AFMT_EIO, "curl_global_init: %s",
                          curl_easy_strerror(curl_init_rc));
    afmt_http_conn *h = calloc(1, sizeof *h);
    if (h && !(h->curl = curl_easy_init())) {
        free(h);
        h = NULL;
    }
    if (!h) return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory for an HTTP connection");
    *out = h;
    return AFMT_OK;
}

void afmt__http_conn_free(afmt_http_conn *h) {
    if (!h) return;
    curl_easy_cleanup(h->curl);
    free(h);
}

/* One request's state, filled by the callbacks. */
typedef struct {
    CURL *curl;
    uint8_t *buf;
    uint64_t cap, got;
    long status;   /* of the response the body belongs to (redirects come first) */
    int has_range; /* a Content-Range "bytes a-b/t" or "bytes *\/t" came */
    uint64_t r0, r1, total;
    char etag[128];
    char body[512]; /* an error response's first bytes (S3 names its error in them) */
    size_t body_len;
    int overflow; /* the server sent more than the range asked */
} reply;

/* Header names are case-insensitive; values start after optional blanks. */
static const char *header_value(const char *line, size_t n, const char *name) {
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0) return NULL;
    const char *v = line + k;
    while (*v == ' ' || *v == '\t') v++;
    return v;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ud) {
    reply *r = ud;
    size_t n = size * nitems;
    char tmp[256];
    size_t m = n < sizeof tmp - 1 ? n : sizeof tmp - 1;
    memcpy(tmp, line, m);
    tmp[m] = '\0';
    while (m > 0 && (tmp[m - 1] == '\r' || tmp[m - 1] == '\n')) tmp[--m] = '\0';
    const char *v;
    if (strncmp(tmp, "HTTP/", 5) == 0) { /* a new response (after a redirect or 100) */
        r->has_range = 0;
        r->etag[0] = '\0';
    } else if ((v = header_value(tmp, m, "content-range:")) != NULL) {
        unsigned long long a, b, t;
        if (sscanf(v, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
            r->r0 = a, r->r1 = b, r->total = t, r->has_range = 1;
        } else if (sscanf(v, "bytes */%llu", &t) == 1) {
            r->r0 = 1, r->r1 = 0, r->total = t, r->has_range = 1;
        }
    } else if ((v = header_value(tmp, m, "etag:")) != NULL) {
        size_t l = strlen(v) < sizeof r->etag - 1 ? strlen(v) : sizeof r->etag - 1;
        memcpy(r->etag, v, l); /* a longer one is compared by its first 127 bytes */
        r->etag[l] = '\0';
    }
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    reply *r = ud;
    size_t n = size * nmemb;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->status == 206) {
        if (n > r->cap - r->got) {
            r->overflow = 1;
            return 0; /* aborts: never write past the caller's buffer */
        }
        memcpy(r->buf + r->got, data, n);
        r->got += n;
        return n;
    }
    if (r->status == 200) return 0; /* the whole object instead of a range: stop at once */
    size_t m = sizeof r->body - 1 - r->body_len;
    if (m > n) m = n;
    memcpy(r->body + r->body_len, data, m);
    r->body_len += m;
    r->body[r->body_len] = '\0';
    return r->got += n, r->got > (1u << 20) ? 0 : n; /* an error page: its start is enough */
}

/* S3's error code in an XML error body ("<Code>NoSuchKey</Code>"), or "". */
static void s3_code(const reply *r, char *out, size_t cap) {
    out[0] = '\0';
    const char *a = strstr(r->body, "<Code>"), *b = a ? strstr(a, "</Code>") : NULL;
    if (a && b && b > a + 6 && (size_t)(b - a - 6) < cap - 3)
        snprintf(out, cap, " (%.*s)", (int)(b - a - 6), a + 6);
}

static void set_options(CURL *curl, const afmt_http_conf *c, reply *r, const char *range,
                        struct curl_slist *hdrs) {
    curl_easy_reset(curl); /* keeps the live connection, drops the last request's options */
    curl_easy_setopt(curl, CURLOPT_URL, c->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(curl, CURLOPT_RANGE, range);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, c->timeout_s);
    /* A transfer slower than 1 KiB/s for timeout_s fails (a stalled or crawling server);
     * a big block that keeps moving faster never times out. */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, c->timeout_s);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "afmt/" AFMT_VERSION_STRING);
    if (hdrs) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    if (c->cainfo) curl_easy_setopt(curl, CURLOPT_CAINFO, c->cainfo);
    if (c->s3) {
        curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, c->sigv4);
        curl_easy_setopt(curl, CURLOPT_USERPWD, c->userpwd);
    }
}

/* What a request asks for: bytes [off, off + len); with at_open, a range that may run
 * past the end (clipped to it); with tail, the last len bytes (a suffix range "-len",
 * off unused). */
typedef struct {
    uint64_t off, len;
    int at_open, tail;
    char what[64]; /* "bytes A-B" or "the last N bytes", for the messages */
} ask;

/* 1 if r is a well-formed answer to a: a 206 whose Content-Range is the range asked (or,
 * for a tail, the object's last min(len, total) bytes) and whose body is that long. */
static int range_ok(const ask *a, const reply *r) {
    if (r->status != 206 || !r->has_range || r->r1 < r->r0 || r->got != r->r1 - r->r0 + 1) return 0;
    if (a->tail)
        return r->r1 + 1 == r->total && r->total - r->r0 == (a->len < r->total ? a->len : r->total);
    return r->r0 == a->off &&
           (r->r1 == a->off + a->len - 1 || (a->at_open && r->r1 + 1 == r->total));
}

/* The outcome of one attempt: AFMT_OK, or a code with a message; *again: worth a retry. */
static int judge(const afmt_http_conf *c, CURLcode cc, const reply *r, const ask *q, int *again,
                 char *errmsg) {
    const char *p = c->path, *w = q->what;
    *again = 0;
    if (r->overflow)
        return afmt__fail(errmsg, AFMT_EIO,
                          "GET %s (%s): the server sent more bytes than the range asked for", p, w);
    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && r->status != 206)) {
        *again = cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_COULDNT_CONNECT ||
                 cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING ||
                 cc == CURLE_PARTIAL_FILE || cc == CURLE_HTTP2_STREAM;
        if (cc == CURLE_OPERATION_TIMEDOUT)
            return afmt__fail(errmsg, AFMT_EIO,
                              "GET %s (%s): timeout: under 1 KiB/s for %ld s "
                              "(hint afmt_http_timeout)",
                              p, w, c->timeout_s);
        return afmt__fail(errmsg, AFMT_EIO, "GET %s (%s): %s", p, w, curl_easy_strerror(cc));
    }
    long st = r->status;
    char code[96];
    s3_code(r, code, sizeof code);
    if (range_ok(q, r)) return AFMT_OK;
    if (st == 206)
        return afmt__fail(errmsg, AFMT_EIO,
                          "GET %s (%s): the reply (Content-Range %s%llu-%llu/%llu, %llu "
                          "bytes) is not the range asked for",
                          p, w, r->has_range ? "" : "missing, ", (unsigned long long)r->r0,
                          (unsigned long long)r->r1, (unsigned long long)r->total,
                          (unsigned long long)r->got);
    /* An empty object: no range of it exists (416, "bytes *\/0"). */
    if (st == 416 && (q->at_open || q->tail) && r->has_range && r->total == 0) return AFMT_OK;
    if (st == 200)
        return afmt__fail(errmsg, AFMT_EIO,
                          "GET %s (%s): HTTP 200: the server ignored the range request and sent "
                          "the whole object; afmt reads remote files by byte ranges only",
                          p, w);
    if (st == 404 || st == 410)
        return afmt__fail(errmsg, AFMT_ENOTFOUND, "GET %s: HTTP %ld%s: no such file", p, st, code);
    if (st == 416)
        return afmt__fail(errmsg, AFMT_EIO,
                          "GET %s (%s): HTTP 416: the object ends before the range (truncated?)", p,
                          w);
    if (st == 401 || st == 403)
        return afmt__fail(errmsg, AFMT_EIO,
                          "GET %s: HTTP %ld%s: access denied (check AWS_ACCESS_KEY_ID, "
                          "AWS_SECRET_ACCESS_KEY and the object's permissions)",
                          p, st, code);
    *again = st >= 500 || st == 429;
    return afmt__fail(errmsg, AFMT_EIO, "GET %s (%s): HTTP %ld%s", p, w, st, code);
}

static void backoff(int attempt) {
    long ms = 100L << (attempt < 6 ? attempt : 6);
    if (ms > 5000) ms = 5000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* One request with its retries: q into buf (q->len bytes of room); *start and *got: where
 * the bytes that came begin and how many (0 for an empty object). */
static int request(afmt_http_conn *h, const afmt_http_conf *c, const ask *q, void *buf,
                   uint64_t *start, uint64_t *got, afmt_http_object *obj, char *errmsg) {
    char range[64];
    if (q->tail)
        snprintf(range, sizeof range, "-%llu", (unsigned long long)q->len);
    else
        snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)q->off,
                 (unsigned long long)(q->off + q->len - 1));
    struct curl_slist *hdrs = NULL, *t;
    if (c->s3) {
        /* S3 wants the payload's hash signed; a GET has an empty one. */
        t = curl_slist_append(hdrs,
                              "x-amz-content-sha256: "
                              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        if (t) hdrs = t;
        if (t && c->token) t = curl_slist_append(hdrs, c->token);
        if (!t) {
            curl_slist_free_all(hdrs);
            return afmt__fail(errmsg, AFMT_ENOMEM, "GET %s: out of memory", c->path);
        }
    }
    int rc = AFMT_EIO;
    for (int attempt = 0;; attempt++) {
        reply r;
        memset(&r, 0, sizeof r);
        r.curl = h->curl;
        r.buf = buf;
        r.cap = q->len;
        set_options(h->curl, c, &r, range, hdrs);
        CURLcode cc = curl_easy_perform(h->curl);
        if (r.status == 0) curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r.status);
        int again;
        rc = judge(c, cc, &r, q, &again, errmsg);
        obj->known = r.has_range;
        obj->total = r.total;
        memcpy(obj->etag, r.etag, sizeof obj->etag);
        if (rc == AFMT_OK) {
            *got = r.status == 206 ? r.got : 0;
            *start = r.status == 206 ? r.r0 : 0;
            break;
        }
        if (!again || attempt >= c->retries) {
            if (again && attempt > 0) {
                size_t l = strlen(errmsg);
                snprintf(errmsg + l, AFMT_ERRMSG_MAX - l, " (after %d tries)", attempt + 1);
            }
            break;
        }
        backoff(attempt);
    }
    curl_slist_free_all(hdrs);
    return rc;
}

int afmt__http_get(afmt_http_conn *h, const afmt_http_conf *c, uint64_t off, uint64_t len,
                   void *buf, int at_open, uint64_t *got, afmt_http_object *obj, char *errmsg) {
    ask q = {off, len, at_open, 0, ""};
    snprintf(q.what, sizeof q.what, "bytes %llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + len - 1));
    uint64_t start;
    return request(h, c, &q, buf, &start, got, obj, errmsg);
}

int afmt__http_get_tail(afmt_http_conn *h, const afmt_http_conf *c, uint64_t len, void *buf,
                        uint64_t *start, uint64_t *got, afmt_http_object *obj, char *errmsg) {
    ask q = {0, len, 0, 1, ""};
    snprintf(q.what, sizeof q.what, "the last %llu bytes", (unsigned long long)len);
    return request(h, c, &q, buf, start, got, obj, errmsg);
}

#else /* no libcurl */

struct afmt_http_conn {
    int unused;
};

int afmt__http_conn_new(afmt_http_conn **out, char *errmsg) {
    *out = NULL;
    return afmt__fail(errmsg, AFMT_EINVAL,
                      "this afmt was built without libcurl: http://, https:// and s3:// paths "
                      "cannot be read (rebuild with libcurl4-openssl-dev installed)");
}

void afmt__http_conn_free(afmt_http_conn *h) {
    (void)h;
}

int afmt__http_get(afmt_http_conn *h, const afmt_http_conf *c, uint64_t off, uint64_t len,
                   void *buf, int at_open, uint64_t *got, afmt_http_object *obj, char *errmsg) {
    (void)h, (void)c, (void)off, (void)len, (void)buf, (void)at_open, (void)got, (void)obj;
    return afmt__fail(errmsg, AFMT_EINVAL, "this afmt was built without libcurl");
}

int afmt__http_get_tail(afmt_http_conn *h, const afmt_http_conf *c, uint64_t len, void *buf,
                        uint64_t *start, uint64_t *got, afmt_http_object *obj, char *errmsg) {
    (void)h, (void)c, (void)len, (void)buf, (void)start, (void)got, (void)obj;
    return afmt__fail(errmsg, AFMT_EINVAL, "this afmt was built without libcurl");
}
#endif
