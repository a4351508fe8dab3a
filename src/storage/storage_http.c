/* storage_http.c - the read-only remote backend: an afmt file behind an http://, https://
 * or s3:// URL, read by byte ranges (http.h). Every rank fetches its own blocks over its
 * own connections; the open costs one round trip: rank 0 asks for the first page (the
 * superblock; its Content-Range gives the size) and the last page (the trailer and, in
 * most files, the newest footer and index segments) at once, on two connections, keeps
 * both in its page cache and broadcasts the size and ETag. Reads shorter than a page go
 * through the page cache (the footers and index segments are small and near each other:
 * a few requests load a layer); longer ones are one request each, straight into the
 * caller's buffer. Each reply must name the size and ETag the open saw: a file replaced
 * under the reader fails with a message instead of mixing two files. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/http.h"
#include "storage/storage.h"

#define CONNS_MAX 16 /* connections per storage: one per thread reading at once, up to this */

typedef struct {
    uint64_t no;   /* page number (offset / page size) */
    uint8_t *data; /* bytes [no * page + lo, no * page + lo + len) of the file: the whole
                    * page (lo 0; the last page of the file may be short), or the part of
                    * one that the open's tail request brought */
    uint64_t lo, len;
    uint64_t used; /* LRU tick */
} page;

typedef struct {
    afmt_http_conf conf;
    uint64_t size;
    char etag[128];
    pthread_mutex_t mu;   /* the connections and the cache; no request runs under it */
    pthread_cond_t freed; /* a connection was given back */
    afmt_http_conn *conns[CONNS_MAX];
    int busy[CONNS_MAX];
    page *pages;
    uint64_t npages, cap_pages, bytes, tick;
} http_impl;

/* ---- connections ---------------------------------------------------------------- */

static void conn_give(http_impl *h, int slot) {
    pthread_mutex_lock(&h->mu);
    h->busy[slot] = 0;
    pthread_cond_signal(&h->freed);
    pthread_mutex_unlock(&h->mu);
}

/* A free connection (an open one first, else a new one); with CONNS_MAX busy, waits for
 * one: more reading threads than that share them. */
static int conn_take(afmt_storage *st, http_impl *h, int *slot) {
    pthread_mutex_lock(&h->mu);
    int k = -1;
    for (;;) {
        for (int i = 0; i < CONNS_MAX && k < 0; i++)
            if (!h->busy[i] && h->conns[i]) k = i;
        for (int i = 0; i < CONNS_MAX && k < 0; i++)
            if (!h->busy[i] && !h->conns[i]) k = i; /* busy: its owner may be setting it */
        if (k >= 0) break;
        pthread_cond_wait(&h->freed, &h->mu);
    }
    h->busy[k] = 1;
    pthread_mutex_unlock(&h->mu);
    if (!h->conns[k]) {
        int rc = afmt__http_conn_new(&h->conns[k], st->errmsg);
        if (rc != AFMT_OK) {
            conn_give(h, k);
            return rc;
        }
    }
    *slot = k;
    return AFMT_OK;
}

/* One checked GET of [off, off + len) into buf: the reply's size and ETag must be the
 * ones of the open. */
static int fetch(afmt_storage *st, uint64_t off, uint64_t len, void *buf) {
    http_impl *h = st->impl;
    int slot = 0;
    int rc = conn_take(st, h, &slot);
    if (rc != AFMT_OK) return rc;
    uint64_t got = 0;
    afmt_http_object obj;
    memset(&obj, 0, sizeof obj);
    rc = afmt__http_get(h->conns[slot], &h->conf, off, len, buf, 0, &got, &obj, st->errmsg);
    conn_give(h, slot);
    /* Another size, or another ETag (a failed reply may have none): another file, whatever
     * else failed. */
    int other_etag = strcmp(obj.etag, h->etag) != 0 && (rc == AFMT_OK || obj.etag[0]);
    if ((rc == AFMT_OK || obj.known) && (obj.total != h->size || other_etag))
        rc = afmt__fail(st->errmsg, AFMT_EIO,
                        "GET %s: the file changed under the reader (at open: %llu bytes, ETag "
                        "%s; now: %llu bytes, ETag %s): open it again",
                        h->conf.path, (unsigned long long)h->size, h->etag[0] ? h->etag : "none",
                        (unsigned long long)obj.total, obj.etag[0] ? obj.etag : "none");
    return rc;
}

/* ---- the page cache ------------------------------------------------------------- */

/* Under h->mu. Copies what page no holds of [off, off + len) into buf; 0 if the page is
 * not cached, or only part of it is and not the part asked for. */
static int cache_copy(http_impl *h, uint64_t no, uint64_t off, uint64_t len, uint8_t *buf) {
    uint64_t P = h->conf.page;
    for (uint64_t i = 0; i < h->npages; i++) {
        page *p = &h->pages[i];
        if (p->no != no) continue;
        uint64_t start = no * P, end = start + P < h->size ? start + P : h->size;
        uint64_t a = off > start ? off : start, e = off + len < end ? off + len : end;
        uint64_t have = start + p->lo;
        if (a < have || e > have + p->len) return 0;
        if (e > a) memcpy(buf + (a - off), p->data + (a - have), e - a);
        p->used = ++h->tick;
        return 1;
    }
    return 0;
}

/* Under h->mu. Drops entry i of the cache. */
static void cache_drop(http_impl *h, uint64_t i) {
    h->bytes -= h->pages[i].len;
    free(h->pages[i].data);
    h->pages[i] = h->pages[--h->npages];
}

/* Under h->mu. Keeps a copy of bytes [lo, lo + len) of page no (replacing what the cache
 * held of that page), evicting the least recently used pages beyond the cache's size.
 * Out of memory: the page is just not kept. */
static void cache_put(http_impl *h, uint64_t no, uint64_t lo, const uint8_t *data, uint64_t len) {
    for (uint64_t i = 0; i < h->npages; i++)
        if (h->pages[i].no == no) {
            cache_drop(h, i);
            break;
        }
    while (h->npages > 0 && h->bytes + len > h->conf.cache) {
        uint64_t v = 0;
        for (uint64_t i = 1; i < h->npages; i++)
            if (h->pages[i].used < h->pages[v].used) v = i;
        cache_drop(h, v);
    }
    if (len > h->conf.cache) return;
    if (h->npages == h->cap_pages) {
        uint64_t nc = h->cap_pages ? 2 * h->cap_pages : 16;
        page *np = realloc(h->pages, sizeof *np * (size_t)nc);
        if (!np) return;
        h->pages = np;
        h->cap_pages = nc;
    }
    uint8_t *copy = malloc((size_t)len);
    if (!copy) return;
    memcpy(copy, data, (size_t)len);
    h->pages[h->npages++] = (page){no, copy, lo, len, ++h->tick};
    h->bytes += len;
}

/* A short read: its pages from the cache, the missing ones in one request. */
static int read_paged(afmt_storage *st, uint64_t off, uint64_t len, uint8_t *buf) {
    http_impl *h = st->impl;
    uint64_t P = h->conf.page, first = off / P, last = (off + len - 1) / P;
    int all = 1;
    pthread_mutex_lock(&h->mu);
    for (uint64_t no = first; no <= last; no++) all &= cache_copy(h, no, off, len, buf);
    pthread_mutex_unlock(&h->mu);
    if (all) return AFMT_OK;
    uint64_t a = first * P, e = (last + 1) * P < h->size ? (last + 1) * P : h->size;
    uint8_t *span = malloc((size_t)(e - a));
    if (!span) return fetch(st, off, len, buf); /* no room to cache: the bytes asked only */
    int rc = fetch(st, a, e - a, span);
    if (rc == AFMT_OK) {
        memcpy(buf, span + (off - a), (size_t)len);
        pthread_mutex_lock(&h->mu);
        for (uint64_t no = first; no <= last; no++) {
            uint64_t s = no * P - a, n = e - no * P < P ? e - no * P : P;
            cache_put(h, no, 0, span + s, n);
        }
        pthread_mutex_unlock(&h->mu);
    }
    free(span);
    return rc;
}

/* ---- the backend ---------------------------------------------------------------- */

static int h_read_at(afmt_storage *st, uint64_t off, void *buf, uint64_t len) {
    http_impl *h = st->impl;
    if (len == 0) return AFMT_OK;
    if (off > h->size || len > h->size - off)
        return afmt__fail(st->errmsg, AFMT_EIO,
                          "GET %s (off=%llu, len=%llu): short read (the file has %llu bytes)",
                          h->conf.path, (unsigned long long)off, (unsigned long long)len,
                          (unsigned long long)h->size);
    if (len < h->conf.page && h->conf.cache > 0) return read_paged(st, off, len, buf);
    uint64_t piece = afmt__storage_max_piece();
    for (uint64_t done = 0; done < len;) {
        uint64_t n = len - done < piece ? len - done : piece;
        int rc = fetch(st, off + done, n, (uint8_t *)buf + done);
        if (rc != AFMT_OK) return rc;
        done += n;
    }
    return AFMT_OK;
}

static int read_only(afmt_storage *st, const char *op) {
    return afmt__fail(st->errmsg, AFMT_EINVAL, "%s(%s): a remote file is read-only", op, st->path);
}
static int h_write_at(afmt_storage *st, uint64_t off, const void *buf, uint64_t len) {
    (void)off, (void)buf, (void)len;
    return read_only(st, "write");
}
static int h_sync(afmt_storage *st) {
    (void)st;
    return AFMT_OK; /* nothing written, nothing to make durable */
}
static int h_size(afmt_storage *st, uint64_t *out) {
    *out = ((http_impl *)st->impl)->size;
    return AFMT_OK;
}
static int h_truncate(afmt_storage *st, uint64_t size) {
    (void)size;
    return read_only(st, "truncate");
}

static void impl_free(http_impl *h) {
    if (!h) return;
    for (int i = 0; i < CONNS_MAX; i++) afmt__http_conn_free(h->conns[i]);
    for (uint64_t i = 0; i < h->npages; i++) free(h->pages[i].data);
    free(h->pages);
    afmt__http_conf_free(&h->conf);
    pthread_cond_destroy(&h->freed);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static int h_close(afmt_storage *st) {
    impl_free(st->impl);
    afmt__storage_free(st);
    return AFMT_OK;
}

static const afmt_storage_ops http_ops = {h_read_at, h_write_at, h_write_at, h_sync,
                                          h_size,    h_truncate, h_close};

/* Under h->mu (or before the storage is shared). Keeps bytes [off, off + len) of the
 * file, cut at page boundaries, unless the page is cached already. */
static void cache_span(http_impl *h, uint64_t off, const uint8_t *data, uint64_t len) {
    uint64_t P = h->conf.page;
    for (uint64_t at = off; at < off + len;) {
        uint64_t no = at / P, e = (no + 1) * P < off + len ? (no + 1) * P : off + len;
        int have = 0;
        for (uint64_t i = 0; i < h->npages && !have; i++) have = h->pages[i].no == no;
        if (!have) cache_put(h, no, at - no * P, data + (at - off), e - at);
        at = e;
    }
}

/* What rank 0's first requests tell every rank. */
typedef struct {
    int32_t rc;
    char msg[AFMT_ERRMSG_MAX];
    uint64_t size, head_len;
    char etag[128];
} open_news;

/* The open's tail request, on a thread of its own: the last page of the file. */
typedef struct {
    afmt_http_conn *conn;
    afmt_http_conf conf; /* the storage's, without retries: a failed tail is asked again
                          * by an explicit range, with them */
    uint8_t *buf;
    uint64_t start, got;
    afmt_http_object obj;
    int rc;
    char msg[AFMT_ERRMSG_MAX];
} tail_job;

static void *tail_run(void *arg) {
    tail_job *t = arg;
    t->rc = afmt__http_get_tail(t->conn, &t->conf, t->conf.page, t->buf, &t->start, &t->got,
                                &t->obj, t->msg);
    return NULL;
}

/* Rank 0: the first page (or the whole file if smaller) into head and, at the same time
 * (one round trip for both), the last page, which holds the trailer and, mostly, the
 * newest footer and index segments; both into the page cache. The tail is only bytes
 * prefetched: which footer is the newest is the superblock's to say (format.md 3.3 and
 * 12), and a trailer at the physical end that belongs to an interrupted commit, or a
 * footer that does not lie in the last page, just costs the load one more request. A
 * tail reply that is not exactly the object's end with the head's size and ETag (s3rver
 * answers "bytes=-N" with the first N + 1 bytes; some servers ignore suffix ranges) is
 * not used: the last page is then asked for by an explicit range, checked as every later
 * reply is. */
static int first_requests(afmt_storage *st, http_impl *h, uint8_t *head, uint8_t *tail,
                          open_news *n) {
    afmt_http_conn *c;
    int rc = afmt__http_conn_new(&c, n->msg);
    if (rc != AFMT_OK) return rc;
    h->conns[0] = c;
    tail_job t;
    memset(&t, 0, sizeof t);
    t.conf = h->conf; /* a shallow copy: its strings stay h->conf's */
    t.conf.retries = 0;
    t.buf = tail;
    t.rc = AFMT_EIO;
    pthread_t thr;
    int threaded = tail && afmt__http_conn_new(&t.conn, t.msg) == AFMT_OK &&
                   pthread_create(&thr, NULL, tail_run, &t) == 0;
    afmt_http_object obj;
    rc = afmt__http_get(c, &h->conf, 0, h->conf.page, head, 1, &n->head_len, &obj, n->msg);
    if (threaded) pthread_join(thr, NULL);
    h->conns[1] = t.conn;
    if (rc != AFMT_OK) return rc;
    n->size = h->size = obj.total;
    memcpy(n->etag, obj.etag, sizeof n->etag);
    memcpy(h->etag, obj.etag, sizeof h->etag);
    if (h->conf.cache > 0 && n->head_len > 0) cache_put(h, 0, 0, head, n->head_len);
    uint64_t P = h->conf.page;
    if (!tail || n->size <= P) return AFMT_OK; /* the head is the whole file */
    uint64_t from = n->size - P;
    if (!(threaded && t.rc == AFMT_OK && t.obj.total == n->size && t.start == from && t.got == P &&
          strcmp(t.obj.etag, n->etag) == 0)) {
        /* The explicit range, checked against the head's size and ETag (fetch). */
        rc = fetch(st, from, P, tail);
        if (rc != AFMT_OK) {
            snprintf(n->msg, sizeof n->msg, "%s", st->errmsg);
            return rc;
        }
    }
    cache_span(h, from, tail, P);
    return AFMT_OK;
}

int afmt__storage_http_open(afmt_storage *st, unsigned flags, MPI_Info info, char *errmsg) {
    st->ops = &http_ops;
    st->impl = NULL;
    int rank = 0, size = 1;
    if (st->comm != MPI_COMM_NULL) {
        MPI_Comm_rank(st->comm, &rank);
        MPI_Comm_size(st->comm, &size);
    }
    open_news n;
    memset(&n, 0, sizeof n);
    http_impl *h = calloc(1, sizeof *h);
    if (!h)
        n.rc = afmt__fail(n.msg, AFMT_ENOMEM, "open(%s): out of memory", st->path);
    else if (pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        h = NULL;
        n.rc = afmt__fail(n.msg, AFMT_ENOMEM, "open(%s): pthread_mutex_init failed", st->path);
    } else if (pthread_cond_init(&h->freed, NULL) != 0) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        h = NULL;
        n.rc = afmt__fail(n.msg, AFMT_ENOMEM, "open(%s): pthread_cond_init failed", st->path);
    } else if (flags & (AFMT_ST_WRITE | AFMT_ST_CREATE))
        n.rc = afmt__fail(n.msg, AFMT_EINVAL,
                          "open(%s): a remote file is read-only: open it with AFMT_RDONLY (afmt "
                          "writes local files and MPI-IO file systems only)",
                          st->path);
    else
        n.rc = afmt__http_conf_init(&h->conf, st->path, info, n.msg);
    uint64_t P = n.rc == AFMT_OK && rank == 0 ? h->conf.page : 0;
    uint8_t *head = P ? malloc((size_t)P) : NULL;
    /* The tail only where the cache keeps it (without memory for it, no tail). */
    uint8_t *tail = P && h->conf.cache > 0 ? malloc((size_t)P) : NULL;
    if (P && !head) n.rc = afmt__fail(n.msg, AFMT_ENOMEM, "open(%s): out of memory", st->path);
    st->impl = h; /* first_requests' fetch() finds it there */
    if (rank == 0 && n.rc == AFMT_OK) n.rc = first_requests(st, h, head, tail, &n);
    st->impl = NULL;
    if (size > 1) {
        /* Rank 0's outcome wins where it failed; a rank's own local failure stays its own
         * (afmt__storage_open agrees on the codes after this). The first and last
         * pages stay in rank 0's cache only: the load reads the metadata there. */
        open_news r0 = n;
        if (MPI_Bcast(&r0, (int)sizeof r0, MPI_BYTE, 0, st->comm) != MPI_SUCCESS)
            r0.rc = afmt__fail(r0.msg, AFMT_EMPI, "open(%s): MPI_Bcast failed", st->path);
        if (rank != 0 && n.rc == AFMT_OK) n = r0;
    }
    if (n.rc == AFMT_OK) {
        h->size = n.size;
        memcpy(h->etag, n.etag, sizeof h->etag);
        st->impl = h;
    } else {
        snprintf(errmsg, AFMT_ERRMSG_MAX, "%s", n.msg);
        impl_free(h);
    }
    free(head);
    free(tail);
    return n.rc;
}
