/* sparse.c - the sparse exchange (sparse.h): NBX for the length and the first bytes of
 * each message, one agreement, then the rest of the long messages point to point. No
 * array here has an entry per rank of the communicator: only per message. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/sparse.h"

#include "common/error.h"

/* Round 1 carries a u64 length and at most INLINE_MAX bytes: the receive buffer is on the
 * stack, so that a rank drains every message even when it cannot allocate. */
#define INLINE_MAX 8192

static uint64_t inline_bytes = INLINE_MAX, piece_bytes = AFMT_PIECE;

#ifdef AFMT_TESTING
#include <stdatomic.h>
static _Atomic uint64_t st_calls, st_sent, st_received, st_round2;
#define COUNT(c, n) atomic_fetch_add(&(c), (uint64_t)(n))

void afmt__sparse_set_limits(uint64_t inl, uint64_t piece) {
    inline_bytes = inl <= INLINE_MAX ? inl : INLINE_MAX;
    piece_bytes = piece && piece <= (uint64_t)INT_MAX ? piece : AFMT_PIECE;
}

void afmt__sparse_get_stats(afmt__sparse_stats *out) {
    out->calls = atomic_load(&st_calls);
    out->sent = atomic_load(&st_sent);
    out->received = atomic_load(&st_received);
    out->round2 = atomic_load(&st_round2);
}
#else
#define COUNT(c, n) ((void)0)
#endif

void afmt__sparse_free(afmt__sparse_msg *in, uint64_t n_in) {
    for (uint64_t i = 0; in && i < n_in; i++) free(in[i].data);
    free(in);
}

const afmt__sparse_msg *afmt__sparse_find(const afmt__sparse_msg *in, uint64_t n_in, int src) {
    uint64_t lo = 0, hi = n_in;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (in[mid].src < src)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n_in && in[lo].src == src ? &in[lo] : NULL;
}

static uint64_t npieces(uint64_t n) {
    return (n + piece_bytes - 1) / piece_bytes;
}

/* The messages received so far. oom, bad: a message could not be kept (it was drained
 * all the same) or was malformed (bad - 1 is its source). */
typedef struct {
    afmt__sparse_msg *msg;
    uint64_t n, cap;
    int oom, bad;
} inbox;

/* Keeps a message of len bytes from src whose first head bytes are at p. */
static void keep(inbox *ib, int src, uint64_t len, uint64_t head, const uint8_t *p) {
    if (ib->oom) return;
    uint8_t *data = len <= SIZE_MAX ? malloc((size_t)len) : NULL;
    if (!data || AFMT__GROW(ib->msg, ib->cap, ib->n + 1, 16) != AFMT_OK) {
        free(data);
        ib->oom = 1;
        return;
    }
    if (head) memcpy(data, p, (size_t)head);
    ib->msg[ib->n++] = (afmt__sparse_msg){src, len, head, data};
}

/* A message of round 1 (cnt bytes at rb): its length, then its first bytes. */
static void take(inbox *ib, int src, const uint8_t *rb, int cnt) {
    COUNT(st_received, 1);
    uint64_t len = cnt >= 8 ? afmt__get_u64(rb) : 0, head = cnt >= 8 ? (uint64_t)cnt - 8 : 0;
    if (len == 0 || head > len) {
        if (!ib->bad) ib->bad = src + 1;
        return;
    }
    keep(ib, src, len, head, rb + 8);
}

static int by_src(const void *x, const void *y) {
    const afmt__sparse_msg *p = x, *q = y;
    return (p->src > q->src) - (p->src < q->src);
}

/* Round 1, NBX: an MPI_Issend of its length and first bytes to every destination, and
 * every message to this rank received, until the MPI_Ibarrier that each rank enters once
 * its own sends were received completes. Drains every message whatever fails locally;
 * returns AFMT_OK or AFMT_EMPI (message set). */
static int nbx(const afmt__group *g, int tag, const uint8_t *sbuf, const uint64_t *soff,
               const int *sdest, int nsend, MPI_Request *sreq, inbox *ib, const char *what) {
    int rc = AFMT_OK, in_barrier = 0;
    MPI_Request bar = MPI_REQUEST_NULL;
    for (int i = 0; i < nsend; i++) {
        sreq[i] = MPI_REQUEST_NULL;
        if (MPI_Issend(sbuf + soff[i], (int)(soff[i + 1] - soff[i]), MPI_BYTE, sdest[i], tag,
                       g->comm, &sreq[i]) == MPI_SUCCESS)
            COUNT(st_sent, 1);
        else if (rc == AFMT_OK)
            rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Issend to rank %d failed", what,
                            sdest[i]);
    }
    for (;;) {
        uint8_t rb[8 + INLINE_MAX];
        int got = 0;
        MPI_Message m;
        MPI_Status st;
        if (MPI_Improbe(MPI_ANY_SOURCE, tag, g->comm, &got, &m, &st) != MPI_SUCCESS) {
            if (rc == AFMT_OK)
                rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Improbe failed", what);
            got = 0;
        }
        if (got) {
            int cnt = 0;
            if (MPI_Mrecv(rb, (int)sizeof rb, MPI_BYTE, &m, &st) != MPI_SUCCESS ||
                MPI_Get_count(&st, MPI_BYTE, &cnt) != MPI_SUCCESS) {
                if (rc == AFMT_OK)
                    rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Mrecv from rank %d failed", what,
                                    st.MPI_SOURCE);
            } else {
                take(ib, st.MPI_SOURCE, rb, cnt);
            }
        }
        int done = 0;
        if (!in_barrier) {
            /* A failed test leaves the sends as they are: enter the barrier all the same
             * rather than wait for requests that may never complete. */
            if (MPI_Testall(nsend, sreq, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) {
                if (rc == AFMT_OK)
                    rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Testall failed", what);
                done = 1;
            }
            if (done && MPI_Ibarrier(g->comm, &bar) != MPI_SUCCESS) {
                if (rc == AFMT_OK)
                    rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Ibarrier failed", what);
                break;
            }
            in_barrier = done;
        } else {
            if (MPI_Test(&bar, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
                if (rc == AFMT_OK)
                    rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Test failed", what);
                break;
            }
            if (done) break;
        }
    }
    return rc;
}

/* What this rank sends in round 1. */
typedef struct {
    uint8_t *buf;     /* every message's length and first bytes, back to back */
    uint64_t *off;    /* nsend + 1 offsets into buf */
    int *dest;        /* nsend destinations */
    MPI_Request *req; /* nsend requests */
    int nsend;
    uint64_t n2; /* requests of round 2 for the rest of the messages */
} outbox;

/* Packs the messages to other ranks for round 1 into *out and keeps this rank's own (a
 * copy) in ib. On any failure (or rc not AFMT_OK on entry) *out is empty and the error is
 * returned. */
static int pack(const afmt__group *g, int rc, uint64_t n_dest, const int *dest,
                const uint8_t *const *buf, const uint64_t *len, inbox *ib, outbox *out,
                const char *what) {
    const uint64_t inl = inline_bytes;
    uint64_t total = 0;
    for (uint64_t i = 0; rc == AFMT_OK && i < n_dest; i++) {
        if (dest[i] < 0 || dest[i] >= g->size)
            rc = afmt__fail(g->errmsg, AFMT_EINVAL, "%s: rank %d is not one of %d", what, dest[i],
                            g->size);
        else if (len[i] > 0 && dest[i] != g->rank) {
            out->nsend++;
            total += 8 + (len[i] < inl ? len[i] : inl);
            if (len[i] > inl) out->n2 += npieces(len[i] - inl);
        }
    }
    if (rc == AFMT_OK && out->nsend > 0) {
        out->buf = malloc((size_t)total);
        out->off = malloc(sizeof *out->off * ((size_t)out->nsend + 1));
        out->dest = malloc(sizeof *out->dest * (size_t)out->nsend);
        out->req = malloc(sizeof *out->req * (size_t)out->nsend);
        if (!out->buf || !out->off || !out->dest || !out->req)
            rc = afmt__fail(g->errmsg, AFMT_ENOMEM, "%s: out of memory for %d messages", what,
                            out->nsend);
    }
    if (rc != AFMT_OK) {
        out->nsend = 0;
        out->n2 = 0;
        return rc;
    }
    int k = 0;
    uint64_t off = 0;
    for (uint64_t i = 0; i < n_dest; i++) {
        if (len[i] == 0) continue;
        if (dest[i] == g->rank) {
            keep(ib, g->rank, len[i], len[i], buf[i]);
            continue;
        }
        uint64_t head = len[i] < inl ? len[i] : inl;
        out->off[k] = off;
        out->dest[k++] = dest[i];
        afmt__put_u64(out->buf + off, len[i]);
        if (head) memcpy(out->buf + off + 8, buf[i], (size_t)head);
        off += 8 + head;
    }
    if (out->nsend) out->off[out->nsend] = off;
    return AFMT_OK;
}

/* Round 2: the rest of every long message, pieces point to point (tag + 1). */
static int rest(const afmt__group *g, int tag, const uint8_t *const *buf, const uint64_t *len,
                const int *dest, uint64_t n_dest, uint64_t inl, const inbox *ib, MPI_Request *req,
                const char *what) {
    int rc = AFMT_OK, nreq = 0;
    for (uint64_t i = 0; i < ib->n; i++) {
        const afmt__sparse_msg *m = &ib->msg[i];
        for (uint64_t o = m->head; o < m->len; o += piece_bytes) {
            uint64_t n = m->len - o < piece_bytes ? m->len - o : piece_bytes;
            if (MPI_Irecv(m->data + o, (int)n, MPI_BYTE, m->src, tag + 1, g->comm, &req[nreq]) ==
                MPI_SUCCESS) {
                nreq++;
                COUNT(st_received, 1);
            } else if (rc == AFMT_OK) {
                rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Irecv failed", what);
            }
        }
    }
    for (uint64_t i = 0; i < n_dest; i++) {
        if (dest[i] == g->rank || len[i] <= inl) continue;
        for (uint64_t o = inl; o < len[i]; o += piece_bytes) {
            uint64_t n = len[i] - o < piece_bytes ? len[i] - o : piece_bytes;
            if (MPI_Isend(buf[i] + o, (int)n, MPI_BYTE, dest[i], tag + 1, g->comm, &req[nreq]) ==
                MPI_SUCCESS) {
                nreq++;
                COUNT(st_sent, 1);
            } else if (rc == AFMT_OK) {
                rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Isend failed", what);
            }
        }
    }
    if (MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE) != MPI_SUCCESS && rc == AFMT_OK)
        rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Waitall failed", what);
    return rc;
}

int afmt__sparse_exchange(const afmt__group *g, int tag, int rc, uint64_t n_dest, const int *dest,
                          const uint8_t *const *buf, const uint64_t *len, int *flag,
                          afmt__sparse_msg **in, uint64_t *n_in, const char *what) {
    const uint64_t inl = inline_bytes;
    inbox ib = {NULL, 0, 0, 0, 0};
    outbox out = {NULL, NULL, NULL, NULL, 0, 0};
    MPI_Request *req2 = NULL;
    *in = NULL;
    *n_in = 0;
    COUNT(st_calls, 1);
    /* What this rank sends; nothing if anything failed: the agreement will stop every
     * rank after round 1. */
    rc = pack(g, rc, n_dest, dest, buf, len, &ib, &out, what);
    int mrc = nbx(g, tag, out.buf, out.off, out.dest, out.nsend, out.req, &ib, what);
    if (rc == AFMT_OK) rc = mrc;
    uint64_t n2 = out.n2; /* requests of round 2 */
    free(out.buf);
    free(out.off);
    free(out.dest);
    free(out.req);
    /* What came in, in source order; room for round 2. */
    if (ib.n > 1) qsort(ib.msg, (size_t)ib.n, sizeof *ib.msg, by_src);
    for (uint64_t i = 0; i < ib.n; i++) {
        if (i > 0 && ib.msg[i].src == ib.msg[i - 1].src && !ib.bad) ib.bad = ib.msg[i].src + 1;
        if (ib.msg[i].head < ib.msg[i].len) n2 += npieces(ib.msg[i].len - ib.msg[i].head);
    }
    if (rc == AFMT_OK && ib.bad)
        rc = afmt__fail(g->errmsg, AFMT_EINVAL, "%s: rank %d sent rank %d a malformed message",
                        what, ib.bad - 1, g->rank);
    if (rc == AFMT_OK && ib.oom)
        rc =
            afmt__fail(g->errmsg, AFMT_ENOMEM, "%s: out of memory for the messages received", what);
    if (rc == AFMT_OK && n2 > 0 &&
        (n2 > (uint64_t)INT_MAX || !(req2 = malloc(sizeof *req2 * (size_t)n2))))
        rc = afmt__fail(g->errmsg, AFMT_ENOMEM, "%s: out of memory for %llu requests", what,
                        (unsigned long long)n2);
    /* One agreement: the outcomes, the caller's flag and whether round 2 is needed. */
    int flags[2] = {flag && *flag, rc == AFMT_OK && n2 > 0}, keys[2];
    rc = afmt__agree_keyed(g, tag, rc, flags, 2, keys, what);
    if (rc == AFMT_EINVAL && keys[0] != keys[1])
        rc = afmt__fail(g->errmsg, AFMT_EINVAL,
                        "%s: the ranks are in different exchanges (tags %d to %d)", what, keys[0],
                        keys[1]);
    if (flag) *flag = flags[0];
    if (rc == AFMT_OK && flags[1]) {
        COUNT(st_round2, 1);
        rc = rest(g, tag, buf, len, dest, n_dest, inl, &ib, req2, what);
        rc = afmt__agree(g->comm, g->rank, g->size, rc, g->errmsg);
    }
    free(req2);
    if (rc != AFMT_OK) {
        afmt__sparse_free(ib.msg, ib.n);
        return rc;
    }
    *in = ib.msg;
    *n_in = ib.n;
    return AFMT_OK;
}
