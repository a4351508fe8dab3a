/* cache.c - LRU of decompressed blocks: a doubly linked list (most recent at the head)
 * and a hash map from the key to the list entry, plus a few evicted buffers kept for
 * reuse (a fresh multi-MiB buffer per block costs an mmap, a page fault every 4 KiB and
 * an munmap: most of a read's time in the profiles of slice-by-slice reads). */
#include "index/cache.h"

#include <stdlib.h>
#include <string.h>

#include "afmt.h"
#include "common/hmap.h"

typedef struct entry {
    uint64_t key, len;
    uint8_t *data;
    struct entry *prev, *next;
} entry;

struct afmt_cache {
    uint64_t capacity, bytes;
    entry *head, *tail;
    afmt_hmap map; /* (key, 0) -> entry pointer */
    /* The last put that could not be kept: it must stay readable until the next put or
     * clear, like a kept entry. */
    uint8_t *aside;
    uint64_t aside_len;
    uint8_t *spare[AFMT_CACHE_SPARES]; /* evicted buffers for afmt__cache_spare */
    uint64_t spare_len[AFMT_CACHE_SPARES];
};

/* An evicted buffer: kept as a spare if there is room, else freed. */
static void retire(afmt_cache *c, uint8_t *data, uint64_t len) {
    for (int i = 0; data && i < AFMT_CACHE_SPARES; i++)
        if (!c->spare[i]) {
            c->spare[i] = data;
            c->spare_len[i] = len;
            return;
        }
    free(data);
}

uint8_t *afmt__cache_spare(afmt_cache *c, uint64_t len) {
    for (int i = 0; i < AFMT_CACHE_SPARES; i++)
        if (c->spare[i] && c->spare_len[i] == len) {
            uint8_t *p = c->spare[i];
            c->spare[i] = NULL;
            return p;
        }
    return NULL;
}

int afmt__cache_create(afmt_cache **out, uint64_t capacity) {
    afmt_cache *c = calloc(1, sizeof *c);
    if (!c) return AFMT_ENOMEM;
    c->capacity = capacity;
    afmt__hmap_init(&c->map);
    *out = c;
    return AFMT_OK;
}

static void unlink_entry(afmt_cache *c, entry *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(afmt_cache *c, entry *e) {
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static void drop(afmt_cache *c, entry *e) {
    unlink_entry(c, e);
    afmt__hmap_del(&c->map, e->key, 0);
    c->bytes -= e->len;
    retire(c, e->data, e->len);
    free(e);
}

void afmt__cache_clear(afmt_cache *c) {
    if (!c) return;
    entry *e = c->head;
    while (e) {
        entry *n = e->next;
        free(e->data);
        free(e);
        e = n;
    }
    c->head = c->tail = NULL;
    c->bytes = 0;
    afmt__hmap_clear(&c->map);
    free(c->aside);
    c->aside = NULL;
    for (int i = 0; i < AFMT_CACHE_SPARES; i++) {
        free(c->spare[i]);
        c->spare[i] = NULL;
    }
}

void afmt__cache_free(afmt_cache *c) {
    if (!c) return;
    afmt__cache_clear(c);
    afmt__hmap_free(&c->map);
    free(c);
}

const uint8_t *afmt__cache_get(afmt_cache *c, uint64_t key, uint64_t *len) {
    uint64_t *v = afmt__hmap_get(&c->map, key, 0);
    if (!v) return NULL;
    entry *e = (entry *)(uintptr_t)*v;
    if (c->head != e) {
        unlink_entry(c, e);
        push_front(c, e);
    }
    if (len) *len = e->len;
    return e->data;
}

const uint8_t *afmt__cache_put(afmt_cache *c, uint64_t key, uint8_t *data, uint64_t len) {
    /* Whatever was set aside by the previous put is no longer promised to anyone. */
    retire(c, c->aside, c->aside_len);
    c->aside = NULL;
    uint64_t *v = afmt__hmap_get(&c->map, key, 0);
    if (v) drop(c, (entry *)(uintptr_t)*v);
    if (len > c->capacity) {
        c->aside = data;
        c->aside_len = len;
        return data;
    }
    entry *e = malloc(sizeof *e);
    if (!e || afmt__hmap_put(&c->map, key, 0, (uint64_t)(uintptr_t)e) != AFMT_OK) {
        /* Out of memory for the bookkeeping: the data is still returned, just not kept. */
        free(e);
        c->aside = data;
        c->aside_len = len;
        return data;
    }
    e->key = key;
    e->len = len;
    e->data = data;
    /* Evict before linking e, so that e itself is never the victim. */
    while (c->bytes + len > c->capacity && c->tail) drop(c, c->tail);
    push_front(c, e);
    c->bytes += len;
    return data;
}

uint64_t afmt__cache_bytes(const afmt_cache *c) {
    return c ? c->bytes : 0;
}
