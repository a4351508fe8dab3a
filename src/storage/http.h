/* http.h - byte-range GETs over HTTP(S) and S3 with libcurl, for the read-only remote
 * backend (storage_http.c): where a URL's bytes come from, one request with its checks and
 * its retries. Built with libcurl only (AFMT_HAVE_CURL); without it every call fails with
 * AFMT_EINVAL and a message saying so. */
#ifndef AFMT_HTTP_H
#define AFMT_HTTP_H

#include <mpi.h>
#include <stdint.h>

#include "afmt.h"

/* 1 if path names a remote file: "http://", "https://" or "s3://" (case-insensitive). */
int afmt__http_is_url(const char *path);

/* How a URL is reached: from the path, the MPI_Info hints and the environment. */
typedef struct {
    char *path;     /* as the user gave it: every message names it */
    char *url;      /* what is requested: path itself, or an s3:// path's endpoint URL */
    int s3;         /* sign with AWS Signature V4 (s3:// paths with credentials) */
    char *sigv4;    /* "aws:amz:REGION:s3" (libcurl's CURLOPT_AWS_SIGV4) */
    char *userpwd;  /* "KEY:SECRET" */
    char *token;    /* "x-amz-security-token: ..." header, or NULL */
    long timeout_s; /* a request that moves no byte for this long fails (and is retried) */
    int retries;    /* retries of a request after a 5xx, 429 or transient network error */
    uint64_t page;  /* reads shorter than this go through the page cache */
    uint64_t cache; /* the page cache's bytes */
    char *cainfo;   /* https: a CA bundle file to verify the server with, or NULL */
} afmt_http_conf;

/* LOCAL. Fills c for path (afmt__http_is_url). Settings, each an MPI_Info hint (first)
 * or an environment variable: afmt_http_timeout / AFMT_HTTP_TIMEOUT (seconds, default 30),
 * afmt_http_retries / AFMT_HTTP_RETRIES (default 4), afmt_http_page / AFMT_HTTP_PAGE
 * (bytes, default 262144), afmt_http_cache / AFMT_HTTP_CACHE (bytes, default 64 MiB, 0
 * turns the cache off), afmt_http_cainfo / AFMT_HTTP_CAINFO (a PEM file of the certificate
 * authorities to trust for https://, instead of the system's). s3://BUCKET/KEY: the endpoint from
 * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (path-style: ENDPOINT/BUCKET/KEY), else
 * https://BUCKET.s3.REGION.amazonaws.com/KEY; the region from AWS_REGION or
 * AWS_DEFAULT_REGION (default us-east-1); signed requests when AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY are set (AWS_SESSION_TOKEN added when set), anonymous ones
 * otherwise. AFMT_OK, AFMT_EINVAL (a malformed URL or setting), AFMT_ENOMEM; message in
 * errmsg. */
int afmt__http_conf_init(afmt_http_conf *c, const char *path, MPI_Info info, char *errmsg);
void afmt__http_conf_free(afmt_http_conf *c);

/* One connection (a libcurl easy handle: keeps its TCP/TLS connection alive between
 * requests). Used by one thread at a time. */
typedef struct afmt_http_conn afmt_http_conn;
int afmt__http_conn_new(afmt_http_conn **out, char *errmsg);
void afmt__http_conn_free(afmt_http_conn *h);

/* What a reply said about the object. */
typedef struct {
    int known;      /* 1 if the last reply had a Content-Range (a failed one too: a 416) */
    uint64_t total; /* the object's size (Content-Range "bytes a-b/TOTAL", or "*\/TOTAL") */
    char etag[128]; /* its ETag, "" if the server sent none */
} afmt_http_object;

/* INDEPENDENT. GETs bytes [off, off + len) of c->url into buf (len >= 1): the reply must
 * be 206 with a Content-Range of exactly that range, else the request fails. at_open: the
 * first request, whose range may run past the end (len is then clipped: *got says how many
 * bytes came; a 416 for an empty object gives *got 0); otherwise *got is len. obj: the
 * size and ETag the last reply gave, also when the request failed (obj->known). 5xx, 429, timeouts
 * and dropped connections are retried c->retries times, after 0.1, 0.2, 0.4 ... s (at most 5 s).
 * Codes: AFMT_OK, AFMT_ENOTFOUND (404, 410), AFMT_EIO (any other failure: the message names the
 * path, the range, the HTTP status and S3's error code, or the network error). */
int afmt__http_get(afmt_http_conn *h, const afmt_http_conf *c, uint64_t off, uint64_t len,
                   void *buf, int at_open, uint64_t *got, afmt_http_object *obj, char *errmsg);

/* INDEPENDENT. GETs the object's last len bytes (a suffix range, "bytes=-len") into buf,
 * which also tells the size. The reply must be a 206 whose Content-Range "bytes S-E/T"
 * has E = T - 1, S = T - min(len, T), and a body of E - S + 1 bytes; a 416 for an empty
 * object gives *got 0. Anything else fails (a server that answers suffix ranges wrongly,
 * as s3rver does with the start of the object, or ignores them): the caller falls back to
 * an explicit range. *start, *got: where the bytes begin in the object, how many came.
 * Retries and codes as afmt__http_get. */
int afmt__http_get_tail(afmt_http_conn *h, const afmt_http_conf *c, uint64_t len, void *buf,
                        uint64_t *start, uint64_t *got, afmt_http_object *obj, char *errmsg);

#endif
