/* storage_mem.c - the memory backend: named byte images in a process-wide registry, for
 * unit tests and fuzzers. Opens of one name share the image (refcounted), like opens of
 * one file; remove and rename-over unlink a name while open handles keep the image. */
#include "storage/storage.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

typedef struct mem_image {
    char *name;
    uint8_t *data;
    size_t len;
    uint64_t cap;
    int refs;   /* open handles */
    int linked; /* reachable by name in the registry */
    struct mem_image *next;
} mem_image;

typedef struct {
    mem_image *img;
    int writable;
} mem_impl;

/* One lock for the registry and every image: handles may live on several threads. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static mem_image *registry = NULL;

static mem_image *find(const char *name) {
    for (mem_image *m = registry; m; m = m->next)
        if (strcmp(m->name, name) == 0) return m;
    return NULL;
}

static void free_image(mem_image *m) {
    free(m->name);
    free(m->data);
    free(m);
}

/* Takes m out of the registry; it dies now or with its last handle. */
static void unlink_image(mem_image *m) {
    for (mem_image **pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    m->next = NULL;
    m->linked = 0;
    if (m->refs == 0) free_image(m);
}

static mem_image *new_image(const char *name) {
    mem_image *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (!(m->name = strdup(name))) {
        free(m);
        return NULL;
    }
    m->linked = 1;
    m->next = registry;
    registry = m;
    return m;
}

/* Makes room for need bytes (doubling, so appends stay amortised O(1)). */
static int reserve(mem_image *m, size_t need) {
    return afmt__grow((void **)&m->data, &m->cap, need, 1, 4096) == AFMT_OK;
}

/* Sets the image's length, zero-filling any new bytes. */
static int set_len(mem_image *m, size_t len) {
    if (!reserve(m, len)) return 0;
    if (len > m->len) memset(m->data + m->len, 0, len - m->len);
    m->len = len;
    return 1;
}

/* The end of [off, off+len) as a size_t; 0 on overflow. */
static int end_of(uint64_t off, uint64_t len, size_t *end) {
    if (off > SIZE_MAX || len > SIZE_MAX - off) return 0;
    *end = (size_t)(off + len);
    return 1;
}

static int mem_read_at(afmt_storage *st, uint64_t off, void *buf, uint64_t len) {
    mem_impl *h = st->impl;
    if (len == 0) return AFMT_OK;
    pthread_mutex_lock(&lock);
    size_t end = 0, have = h->img->len;
    int ok = end_of(off, len, &end) && end <= have;
    if (ok) memcpy(buf, h->img->data + off, (size_t)len);
    pthread_mutex_unlock(&lock);
    if (!ok)
        return afmt__fail(st->errmsg, AFMT_EIO,
                          "read_at(%s, off=%llu, len=%llu): short read (image is %llu bytes)",
                          st->path, (unsigned long long)off, (unsigned long long)len,
                          (unsigned long long)have);
    return AFMT_OK;
}

static int mem_write_at(afmt_storage *st, uint64_t off, const void *buf, uint64_t len) {
    mem_impl *h = st->impl;
    if (!h->writable)
        return afmt__fail(st->errmsg, AFMT_EIO, "write_at(%s, off=%llu, len=%llu): read-only",
                          st->path, (unsigned long long)off, (unsigned long long)len);
    if (len == 0) return AFMT_OK;
    size_t end = 0;
    if (!end_of(off, len, &end))
        return afmt__fail(st->errmsg, AFMT_EINVAL,
                          "write_at(%s, off=%llu, len=%llu): beyond the address space", st->path,
                          (unsigned long long)off, (unsigned long long)len);
    pthread_mutex_lock(&lock);
    mem_image *m = h->img;
    int ok = end <= m->len || set_len(m, end);
    if (ok) memcpy(m->data + off, buf, (size_t)len);
    pthread_mutex_unlock(&lock);
    if (!ok)
        return afmt__fail(st->errmsg, AFMT_ENOMEM,
                          "write_at(%s, off=%llu, len=%llu): out of memory", st->path,
                          (unsigned long long)off, (unsigned long long)len);
    return AFMT_OK;
}

static int mem_sync(afmt_storage *st) {
    (void)st;
    return AFMT_OK;
}

static int mem_size(afmt_storage *st, uint64_t *out) {
    mem_impl *h = st->impl;
    pthread_mutex_lock(&lock);
    *out = (uint64_t)h->img->len;
    pthread_mutex_unlock(&lock);
    return AFMT_OK;
}

static int mem_truncate(afmt_storage *st, uint64_t size) {
    mem_impl *h = st->impl;
    if (!h->writable)
        return afmt__fail(st->errmsg, AFMT_EIO, "truncate(%s, %llu): read-only", st->path,
                          (unsigned long long)size);
    if (size > SIZE_MAX)
        return afmt__fail(st->errmsg, AFMT_EINVAL, "truncate(%s, %llu): too large", st->path,
                          (unsigned long long)size);
    pthread_mutex_lock(&lock);
    int ok = set_len(h->img, (size_t)size);
    pthread_mutex_unlock(&lock);
    if (!ok)
        return afmt__fail(st->errmsg, AFMT_ENOMEM, "truncate(%s, %llu): out of memory", st->path,
                          (unsigned long long)size);
    return AFMT_OK;
}

static int mem_close(afmt_storage *st) {
    mem_impl *h = st->impl;
    if (h) {
        pthread_mutex_lock(&lock);
        mem_image *m = h->img;
        if (--m->refs == 0 && !m->linked) free_image(m);
        pthread_mutex_unlock(&lock);
        free(h);
    }
    afmt__storage_free(st);
    return AFMT_OK;
}

static const afmt_storage_ops mem_ops = {mem_read_at, mem_write_at, mem_write_at, mem_sync,
                                         mem_size,    mem_truncate, mem_close};

int afmt__storage_mem_open(afmt_storage *st, unsigned flags, char *errmsg) {
    st->ops = &mem_ops;
    st->impl = NULL;
    mem_impl *h = malloc(sizeof *h);
    if (!h) return afmt__fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", st->path);
    int rc = AFMT_OK;
    pthread_mutex_lock(&lock);
    mem_image *m = find(st->path);
    if (m && (flags & AFMT_ST_EXCL))
        rc = afmt__fail(errmsg, AFMT_EEXIST, "open(%s): image exists (exclusive create)", st->path);
    else if (!m && !(flags & AFMT_ST_CREATE))
        rc = afmt__fail(errmsg, AFMT_ENOTFOUND, "open(%s): no such image", st->path);
    else if (!m && !(m = new_image(st->path)))
        rc = afmt__fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", st->path);
    if (rc == AFMT_OK) m->refs++;
    pthread_mutex_unlock(&lock);
    if (rc != AFMT_OK) {
        free(h);
        return rc;
    }
    h->img = m;
    h->writable = (flags & AFMT_ST_WRITE) != 0;
    st->impl = h;
    return AFMT_OK;
}

#ifdef AFMT_TESTING /* test access to the images: only in the test build */
int afmt__storage_mem_get(const char *path, uint8_t **data, uint64_t *len) {
    if (!path || !data || !len)
        return afmt__fail(NULL, AFMT_EINVAL, "afmt__storage_mem_get: NULL argument");
    *data = NULL;
    *len = 0;
    int rc = AFMT_OK;
    pthread_mutex_lock(&lock);
    mem_image *m = find(path);
    if (!m) {
        rc = afmt__fail(NULL, AFMT_ENOTFOUND, "mem_get(%s): no such image", path);
    } else {
        /* malloc(0) may return NULL; ask for one byte so success is unambiguous. */
        uint8_t *copy = malloc(m->len ? m->len : 1);
        if (!copy) {
            rc = afmt__fail(NULL, AFMT_ENOMEM, "mem_get(%s): out of memory", path);
        } else {
            if (m->len) memcpy(copy, m->data, m->len);
            *data = copy;
            *len = (uint64_t)m->len;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int afmt__storage_mem_put(const char *path, const uint8_t *data, uint64_t len) {
    if (!path || (!data && len))
        return afmt__fail(NULL, AFMT_EINVAL, "afmt__storage_mem_put: NULL argument");
    if (len > SIZE_MAX) return afmt__fail(NULL, AFMT_EINVAL, "mem_put(%s): too large", path);
    int rc = AFMT_OK;
    pthread_mutex_lock(&lock);
    mem_image *m = find(path);
    /* The new content replaces the image in place: open handles see it, as they would
     * see a file overwritten under them. */
    if (!m && !(m = new_image(path))) {
        rc = afmt__fail(NULL, AFMT_ENOMEM, "mem_put(%s): out of memory", path);
    } else if (!reserve(m, (size_t)len)) {
        rc = afmt__fail(NULL, AFMT_ENOMEM, "mem_put(%s): out of memory", path);
    } else {
        if (len) memcpy(m->data, data, (size_t)len);
        m->len = (size_t)len;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
#endif /* AFMT_TESTING */

int afmt__storage_mem_rename(const char *from, const char *to, char *errmsg) {
    int rc = AFMT_OK;
    char *name = strdup(to);
    if (!name) return afmt__fail(errmsg, AFMT_ENOMEM, "rename(%s, %s): out of memory", from, to);
    pthread_mutex_lock(&lock);
    mem_image *src = find(from);
    if (!src) {
        rc = afmt__fail(errmsg, AFMT_ENOTFOUND, "rename(%s, %s): no such image", from, to);
    } else if (strcmp(from, to) != 0) {
        mem_image *dst = find(to);
        if (dst) unlink_image(dst);
        free(src->name);
        src->name = name;
        name = NULL;
    }
    pthread_mutex_unlock(&lock);
    free(name);
    return rc;
}

int afmt__storage_mem_remove(const char *path, char *errmsg) {
    (void)errmsg;
    pthread_mutex_lock(&lock);
    mem_image *m = find(path);
    if (m) unlink_image(m);
    pthread_mutex_unlock(&lock);
    return AFMT_OK;
}

int afmt__storage_mem_exists(const char *path) {
    pthread_mutex_lock(&lock);
    int found = find(path) != NULL;
    pthread_mutex_unlock(&lock);
    return found;
}

int afmt__storage_mem_create(const char *path, char *errmsg) {
    pthread_mutex_lock(&lock);
    int rc = find(path) ? AFMT_EEXIST : new_image(path) ? AFMT_OK : AFMT_ENOMEM;
    pthread_mutex_unlock(&lock);
    if (rc == AFMT_EEXIST) return afmt__fail(errmsg, rc, "create(%s): image exists", path);
    if (rc == AFMT_ENOMEM) return afmt__fail(errmsg, rc, "create(%s): out of memory", path);
    return rc;
}
