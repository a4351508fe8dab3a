/* consistency.c - the digest of the collective metadata calls since the last commit and
 * the commit-time check that every rank made the same ones (consistency.h).
 *
 * The log holds one record per call, a canonical little-endian encoding of everything
 * that must agree between ranks (u32 = 4 bytes LE, u64 = 8 bytes LE, str = u32 length +
 * bytes):
 *   u32 record length (all of it), u32 kind, then
 *   define:   str name, u32 dtype, u32 ndim, u32 flags, u64 shape[ndim], u64 chunk[ndim],
 *             str dims[ndim], str fill (one element, LE)
 *   delete:   str name
 *   set_attr: u32 has_owner, str owner ("" = the file), str key, u32 dtype, u64 n,
 *             u64 XXH3-64 of the n values (LE), str the first <= 64 value bytes
 * Big attribute values are represented by their hash (the prefix only serves messages),
 * so the log stays small whatever the attributes hold. */
#include "api/consistency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "api/file.h"
#include "codec/codec.h"

enum { CALL_DEFINE = 1, CALL_DELETE = 2, CALL_SET_ATTR = 3 };

#define PREFIX_MAX 64u
/* At least the largest record: a define of AFMT_MAX_NDIM dims with the longest names
 * (8 + 259 + 12 + 32 x 16 + 32 x 67 + 12 = 2947 bytes); a set_attr is at most 618. */
#define REC_MAX 4096u
/* How much of a name a message shows. */
#define SHOW 100

static int check_on(const afmt_file *f) {
    return f->opts.check_collective != 0;
}

int afmt__consist_reserve(afmt_file *f) {
    if (!check_on(f)) return AFMT_OK;
    afmt_buf *b = &f->consist.log;
    if (afmt__buf_reserve(b, REC_MAX) == AFMT_OK) return AFMT_OK;
    b->oom = 0; /* nothing was lost: a later call may try again */
    return AFMT_ENOMEM;
}

/* ---- encoding -------------------------------------------------------------------- */

static void put_str(afmt_buf *b, const void *s, size_t n) {
    afmt__buf_u32(b, (uint32_t)n);
    afmt__buf_append(b, s, n);
}

static size_t rec_begin(afmt_buf *b, uint32_t kind) {
    size_t at = b->len;
    afmt__buf_u32(b, 0); /* the length, set by rec_end */
    afmt__buf_u32(b, kind);
    return at;
}

/* Seals the record that starts at at and folds it into the running digest. */
static void rec_end(afmt_consist *c, size_t at) {
    afmt_buf *b = &c->log;
    size_t n = b->len - at;
    afmt__put_u32(b->data + at, (uint32_t)n);
    c->digest = (uint64_t)XXH3_64bits_withSeed(b->data + at, n, (XXH64_hash_t)c->digest);
    c->ncalls++;
}

void afmt__consist_note_define(afmt_file *f, const afmt_array_rec *r) {
    if (!check_on(f)) return;
    afmt_buf *b = &f->consist.log;
    size_t at = rec_begin(b, CALL_DEFINE);
    put_str(b, r->name, strlen(r->name));
    afmt__buf_u32(b, (uint32_t)r->dtype);
    afmt__buf_u32(b, (uint32_t)r->ndim);
    afmt__buf_u32(b, r->flags);
    for (int i = 0; i < r->ndim; i++) afmt__buf_u64(b, r->shape[i]);
    for (int i = 0; i < r->ndim; i++) afmt__buf_u64(b, r->chunk[i]);
    for (int i = 0; i < r->ndim; i++) put_str(b, r->dims[i], strlen(r->dims[i]));
    put_str(b, r->fill, afmt__dtype_size(r->dtype));
    afmt__buf_u32(b, r->codec);
    put_str(b, r->params, r->params_len);
    rec_end(&f->consist, at);
}

void afmt__consist_note_delete(afmt_file *f, const char *name) {
    if (!check_on(f)) return;
    afmt_buf *b = &f->consist.log;
    size_t at = rec_begin(b, CALL_DELETE);
    put_str(b, name, strlen(name));
    rec_end(&f->consist, at);
}

void afmt__consist_note_set_attr(afmt_file *f, const char *array, const afmt_attr_rec *a) {
    if (!check_on(f)) return;
    afmt_buf *b = &f->consist.log;
    size_t bytes = (size_t)a->n * afmt__dtype_size(a->dtype);
    size_t at = rec_begin(b, CALL_SET_ATTR);
    afmt__buf_u32(b, array != NULL);
    put_str(b, array ? array : "", array ? strlen(array) : 0);
    put_str(b, a->key, strlen(a->key));
    afmt__buf_u32(b, (uint32_t)a->dtype);
    afmt__buf_u64(b, a->n);
    afmt__buf_u64(b, (uint64_t)XXH3_64bits(a->value, bytes));
    put_str(b, a->value, bytes < PREFIX_MAX ? bytes : PREFIX_MAX);
    rec_end(&f->consist, at);
}

void afmt__consist_reset(afmt_consist *c) {
    c->log.len = 0;
    c->ncalls = 0;
    c->digest = 0;
}

void afmt__consist_free(afmt_consist *c) {
    afmt__buf_free(&c->log);
    c->ncalls = 0;
    c->digest = 0;
}

/* ---- decoding (only to name a difference) ------------------------------------------ */

typedef struct {
    const uint8_t *p;
    uint32_t n;
} str;

typedef struct {
    uint32_t kind;
    str name; /* define, delete: the array; set_attr: the owner ("" = the file) */
    uint32_t has_owner;
    str key;
    uint32_t dtype, ndim, flags;
    uint64_t shape[AFMT_MAX_NDIM], chunk[AFMT_MAX_NDIM];
    str dims[AFMT_MAX_NDIM];
    str fill;
    uint32_t codec; /* define: the recorded compression (afmt_define_with) */
    str params;
    uint64_t n, hash;
    str prefix;
} call;

typedef struct {
    const uint8_t *p, *end;
    int bad;
} cursor;

static uint32_t get32(cursor *c) {
    if (c->bad || c->end - c->p < 4) return c->bad = 1, 0;
    uint32_t v = afmt__get_u32(c->p);
    c->p += 4;
    return v;
}

static uint64_t get64(cursor *c) {
    if (c->bad || c->end - c->p < 8) return c->bad = 1, 0;
    uint64_t v = afmt__get_u64(c->p);
    c->p += 8;
    return v;
}

static str getstr(cursor *c) {
    str s = {NULL, get32(c)};
    if (c->bad || (uint64_t)(c->end - c->p) < s.n) {
        c->bad = 1;
        s.n = 0;
        return s;
    }
    s.p = c->p;
    c->p += s.n;
    return s;
}

/* The record at *pos of log[0, len): 1 (decoded into *out, its bytes at *rec, *rlen, *pos
 * moved past it), 0 at the end, -1 if it is malformed. */
static int next_call(const uint8_t *log, size_t len, size_t *pos, call *out, const uint8_t **rec,
                     size_t *rlen) {
    if (*pos >= len) return 0;
    if (len - *pos < 8) return -1;
    uint32_t n = afmt__get_u32(log + *pos);
    if (n < 8 || n > len - *pos) return -1;
    cursor c = {log + *pos + 4, log + *pos + n, 0};
    memset(out, 0, sizeof *out);
    out->kind = get32(&c);
    if (out->kind == CALL_DEFINE) {
        out->name = getstr(&c);
        out->dtype = get32(&c);
        out->ndim = get32(&c);
        out->flags = get32(&c);
        if (out->ndim > AFMT_MAX_NDIM) return -1;
        for (uint32_t i = 0; i < out->ndim; i++) out->shape[i] = get64(&c);
        for (uint32_t i = 0; i < out->ndim; i++) out->chunk[i] = get64(&c);
        for (uint32_t i = 0; i < out->ndim; i++) out->dims[i] = getstr(&c);
        out->fill = getstr(&c);
        out->codec = get32(&c);
        out->params = getstr(&c);
    } else if (out->kind == CALL_DELETE) {
        out->name = getstr(&c);
    } else if (out->kind == CALL_SET_ATTR) {
        out->has_owner = get32(&c);
        out->name = getstr(&c);
        out->key = getstr(&c);
        out->dtype = get32(&c);
        out->n = get64(&c);
        out->hash = get64(&c);
        out->prefix = getstr(&c);
    } else {
        return -1;
    }
    if (c.bad) return -1;
    *rec = log + *pos;
    *rlen = n;
    *pos += n;
    return 1;
}

static int show(const str *s) {
    return s->n < SHOW ? (int)s->n : SHOW;
}

static int str_eq(const str *a, const str *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

/* "afmt_define(\"temp\")", "afmt_set_attr(file, \"units\")", ... */
static void describe(char *o, size_t cap, const call *c) {
    if (c->kind == CALL_DEFINE)
        snprintf(o, cap, "afmt_define(\"%.*s\")", show(&c->name), (const char *)c->name.p);
    else if (c->kind == CALL_DELETE)
        snprintf(o, cap, "afmt_delete(\"%.*s\")", show(&c->name), (const char *)c->name.p);
    else if (c->has_owner)
        snprintf(o, cap, "afmt_set_attr(\"%.*s\", \"%.*s\")", show(&c->name),
                 (const char *)c->name.p, show(&c->key), (const char *)c->key.p);
    else
        snprintf(o, cap, "afmt_set_attr(file, \"%.*s\")", show(&c->key), (const char *)c->key.p);
}

static const char *dtype_name(uint32_t t) {
    return afmt__dtype_valid((int)t) ? afmt__dtype_name((afmt_dtype)t) : "?";
}

/* One little-endian element of dtype t as text. */
static void fmt_elem(char *o, size_t cap, uint32_t t, const uint8_t *le) {
    uint64_t u = 0;
    size_t es = afmt__dtype_valid((int)t) ? afmt__dtype_size((afmt_dtype)t) : 0;
    for (size_t i = 0; i < es; i++) u |= (uint64_t)le[i] << (8 * i);
    switch (t) {
    case AFMT_INT8:
        snprintf(o, cap, "%d", (int)(int8_t)(uint8_t)u);
        break;
    case AFMT_INT16:
        snprintf(o, cap, "%d", (int)(int16_t)(uint16_t)u);
        break;
    case AFMT_INT32:
        snprintf(o, cap, "%ld", (long)(int32_t)(uint32_t)u);
        break;
    case AFMT_INT64:
        snprintf(o, cap, "%lld", (long long)(int64_t)u);
        break;
    case AFMT_FLOAT32: {
        uint32_t w = (uint32_t)u;
        float x;
        memcpy(&x, &w, sizeof x);
        snprintf(o, cap, "%.9g", (double)x);
        break;
    }
    case AFMT_FLOAT64: {
        double x;
        memcpy(&x, &u, sizeof x);
        snprintf(o, cap, "%.17g", x);
        break;
    }
    default: /* bool and the unsigned types */
        snprintf(o, cap, "%llu", (unsigned long long)u);
    }
}

static int printable(const str *s) {
    for (uint32_t i = 0; i < s->n; i++)
        if (s->p[i] < 0x20 || s->p[i] > 0x7e) return 0;
    return 1;
}

/* "<what> is <a> on rank 0 and <b> on rank r" */
static int differ(char *o, size_t cap, const char *what, const char *a, const char *b, int r) {
    snprintf(o, cap, "%s is %s on rank 0 and %s on rank %d", what, a, b, r);
    return 1;
}

/* The first field in which define calls a (rank 0) and b (rank r) differ. */
static int explain_define(char *o, size_t cap, const call *a, const call *b, int r) {
    char what[64], va[192], vb[192];
    if (a->dtype != b->dtype)
        return differ(o, cap, "dtype", dtype_name(a->dtype), dtype_name(b->dtype), r);
    if (a->ndim != b->ndim) {
        snprintf(va, sizeof va, "%u", a->ndim);
        snprintf(vb, sizeof vb, "%u", b->ndim);
        return differ(o, cap, "ndim", va, vb, r);
    }
    for (int s = 0; s < 2; s++) /* every shape[i] first, then every chunk[i] */
        for (uint32_t i = 0; i < a->ndim; i++) {
            uint64_t x = s ? a->chunk[i] : a->shape[i], y = s ? b->chunk[i] : b->shape[i];
            if (x == y) continue;
            snprintf(what, sizeof what, "%s[%u]", s ? "chunk" : "shape", i);
            snprintf(va, sizeof va, "%llu", (unsigned long long)x);
            snprintf(vb, sizeof vb, "%llu", (unsigned long long)y);
            return differ(o, cap, what, va, vb, r);
        }
    for (uint32_t i = 0; i < a->ndim; i++) {
        if (str_eq(&a->dims[i], &b->dims[i])) continue;
        snprintf(what, sizeof what, "dims[%u]", i);
        snprintf(va, sizeof va, "\"%.*s\"", show(&a->dims[i]), (const char *)a->dims[i].p);
        snprintf(vb, sizeof vb, "\"%.*s\"", show(&b->dims[i]), (const char *)b->dims[i].p);
        return differ(o, cap, what, va, vb, r);
    }
    if (!str_eq(&a->fill, &b->fill) && a->fill.n == b->fill.n && a->fill.n <= 8) {
        fmt_elem(va, sizeof va, a->dtype, a->fill.p);
        fmt_elem(vb, sizeof vb, b->dtype, b->fill.p);
        return differ(o, cap, "fill", va, vb, r);
    }
    if (a->codec != b->codec) {
        snprintf(va, sizeof va, "%s",
                 a->codec == AFMT_CODEC_UNSET ? "the handle's default"
                                              : afmt__codec_name(a->codec));
        snprintf(vb, sizeof vb, "%s",
                 b->codec == AFMT_CODEC_UNSET ? "the handle's default"
                                              : afmt__codec_name(b->codec));
        return differ(o, cap, "the codec (afmt_define_with)", va, vb, r);
    }
    if (!str_eq(&a->params, &b->params))
        return differ(o, cap, "the codec setting (afmt_define_with: level, bit rounding or ZFP)",
                      "one", "another", r);
    if ((a->flags ^ b->flags) & AFMT_ARRAY_SHUFFLE)
        return differ(o, cap, "shuffle (afmt_opts_set_shuffle)",
                      a->flags & AFMT_ARRAY_SHUFFLE ? "enabled" : "disabled",
                      b->flags & AFMT_ARRAY_SHUFFLE ? "enabled" : "disabled", r);
    snprintf(va, sizeof va, "0x%x", a->flags);
    snprintf(vb, sizeof vb, "0x%x", b->flags);
    return differ(o, cap, "flags", va, vb, r);
}

/* The first field in which set_attr calls a (rank 0) and b (rank r) differ. */
static int explain_set_attr(char *o, size_t cap, const call *a, const call *b, int r) {
    char what[64], va[192], vb[192];
    if (a->dtype != b->dtype)
        return differ(o, cap, "dtype", dtype_name(a->dtype), dtype_name(b->dtype), r);
    if (a->n != b->n) {
        snprintf(va, sizeof va, "%llu", (unsigned long long)a->n);
        snprintf(vb, sizeof vb, "%llu", (unsigned long long)b->n);
        return differ(o, cap, "the number of values", va, vb, r);
    }
    if (!str_eq(&a->prefix, &b->prefix) && a->prefix.n == b->prefix.n) {
        if (a->dtype == AFMT_UINT8 && printable(&a->prefix) && printable(&b->prefix)) {
            const char *more = a->n > a->prefix.n ? "..." : "";
            snprintf(va, sizeof va, "\"%.*s\"%s", (int)a->prefix.n, (const char *)a->prefix.p,
                     more);
            snprintf(vb, sizeof vb, "\"%.*s\"%s", (int)b->prefix.n, (const char *)b->prefix.p,
                     more);
            return differ(o, cap, "the value", va, vb, r);
        }
        size_t es = afmt__dtype_valid((int)a->dtype) ? afmt__dtype_size((afmt_dtype)a->dtype) : 1;
        for (size_t i = 0; i + es <= a->prefix.n; i += es) {
            if (memcmp(a->prefix.p + i, b->prefix.p + i, es) == 0) continue;
            snprintf(what, sizeof what, "value[%zu]", i / es);
            fmt_elem(va, sizeof va, a->dtype, a->prefix.p + i);
            fmt_elem(vb, sizeof vb, b->dtype, b->prefix.p + i);
            return differ(o, cap, what, va, vb, r);
        }
    }
    snprintf(o, cap,
             "the values (n=%llu) differ between rank 0 and rank %d after the first %u bytes",
             (unsigned long long)a->n, r, PREFIX_MAX);
    return 1;
}

/* Compares this rank's log with rank 0's (ref, rlen bytes, rcalls calls). Returns the
 * number (1-based) of the first call that differs, with the message in msg, or 0 if the
 * logs are the same. */
static uint64_t first_difference(afmt_file *f, const uint8_t *ref, size_t rlen, uint64_t rcalls,
                                 char *msg, size_t cap) {
    const afmt_consist *c = &f->consist;
    size_t pa = 0, pb = 0;
    char da[256], db[256], why[512];
    for (uint64_t k = 1;; k++) {
        call a, b;
        const uint8_t *ra = NULL, *rb = NULL;
        size_t la = 0, lb = 0;
        int ea = next_call(ref, rlen, &pa, &a, &ra, &la);
        int eb = next_call(c->log.data, c->log.len, &pb, &b, &rb, &lb);
        if (ea == 0 && eb == 0) return 0;
        if (ea > 0 && eb > 0 && la == lb && memcmp(ra, rb, la) == 0) continue;
        if (ea < 0 || eb < 0) {
            snprintf(msg, cap,
                     "ranks disagree on collective metadata call %llu (rank %d cannot decode it)",
                     (unsigned long long)k, f->rank);
        } else if (eb == 0 || ea == 0) {
            describe(da, sizeof da, eb == 0 ? &a : &b);
            snprintf(msg, cap,
                     "rank %d made %llu collective metadata call%s since the last commit, rank "
                     "0 made %llu: call %llu (%s) is missing on rank %d",
                     f->rank, (unsigned long long)c->ncalls, c->ncalls == 1 ? "" : "s",
                     (unsigned long long)rcalls, (unsigned long long)k, da, eb == 0 ? f->rank : 0);
        } else {
            describe(da, sizeof da, &a);
            describe(db, sizeof db, &b);
            if (a.kind != b.kind || strcmp(da, db) != 0) {
                snprintf(msg, cap,
                         "ranks disagree on collective call %llu: it is %s on rank 0 and %s on "
                         "rank %d",
                         (unsigned long long)k, da, db, f->rank);
            } else {
                if (a.kind == CALL_DEFINE)
                    explain_define(why, sizeof why, &a, &b, f->rank);
                else if (a.kind == CALL_SET_ATTR)
                    explain_set_attr(why, sizeof why, &a, &b, f->rank);
                else /* a delete has nothing but its name */
                    snprintf(why, sizeof why, "the records differ");
                snprintf(msg, cap, "ranks disagree on collective call %llu (%s): %s",
                         (unsigned long long)k, da, why);
            }
        }
        return k;
    }
}

/* COLLECTIVE, after the digests differed: every rank compares its log with rank 0's and
 * the rank with the earliest difference (the lowest such rank on a tie) names it. */
static int name_difference(afmt_file *f) {
    afmt_consist *c = &f->consist;
    uint64_t hdr[2] = {c->log.len, c->ncalls};
    if (MPI_Bcast(hdr, 2, MPI_UINT64_T, 0, f->comm) != MPI_SUCCESS)
        return afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): MPI_Bcast failed", f->path);
    uint8_t *ref = c->log.data;
    int ok = 1, all_ok = 0;
    if (f->rank != 0) {
        ref = hdr[0] <= SIZE_MAX ? malloc(hdr[0] ? (size_t)hdr[0] : 1) : NULL;
        ok = ref != NULL;
    }
    if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, f->comm) != MPI_SUCCESS) all_ok = -1;
    if (all_ok == 1 && afmt__bcast_bytes(f->comm, ref, hdr[0], 0) != AFMT_OK) all_ok = -1;
    char msg[AFMT_ERRMSG_MAX] = "";
    uint64_t k = 0;
    if (all_ok == 1 && f->rank != 0)
        k = first_difference(f, ref, (size_t)hdr[0], hdr[1], msg, sizeof msg);
    if (f->rank != 0) free(ref);
    if (all_ok == -1)
        return afmt__file_agree(
            f, afmt__fail(f->errmsg, AFMT_EMPI,
                          "afmt_commit(%s): sharing the metadata calls to compare them failed",
                          f->path));
    if (all_ok == 0)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_commit(%s): ranks disagree on the collective metadata calls since "
                          "the last commit (out of memory naming the first difference); nothing "
                          "was written",
                          f->path);
    /* The earliest call wins, then the lowest rank: key = call number << 32 | rank. */
    uint64_t mine = UINT64_MAX, key = UINT64_MAX;
    if (k > 0) mine = (k < UINT32_MAX ? k : UINT32_MAX) << 32 | (uint64_t)f->rank;
    if (MPI_Allreduce(&mine, &key, 1, MPI_UINT64_T, MPI_MIN, f->comm) != MPI_SUCCESS)
        return afmt__file_agree(
            f, afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): MPI_Allreduce failed", f->path));
    if (key == UINT64_MAX) /* the digests differ but no log does: cannot happen */
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_commit(%s): ranks disagree on the collective metadata calls since "
                          "the last commit; nothing was written",
                          f->path);
    int rc = AFMT_OK;
    if (mine == key)
        rc = afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_commit(%s): %s; nothing was written", f->path,
                        msg);
    return afmt__file_agree(f, rc);
}

int afmt__consist_check(afmt_file *f) {
    if (!check_on(f)) return AFMT_OK;
    const afmt_consist *c = &f->consist;
    /* One allreduce: the max of x and of ~x give the max and the min of x. */
    uint64_t in[4] = {c->digest, ~c->digest, c->ncalls, ~c->ncalls}, mx[4];
    if (MPI_Allreduce(in, mx, 4, MPI_UINT64_T, MPI_MAX, f->comm) != MPI_SUCCESS)
        return afmt__fail(f->errmsg, AFMT_EMPI,
                          "afmt_commit(%s): MPI_Allreduce failed comparing the metadata calls",
                          f->path);
    if (mx[0] == ~mx[1] && mx[2] == ~mx[3]) return AFMT_OK;
    return name_difference(f);
}
