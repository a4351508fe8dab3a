/* hmap.c - open addressing with linear probing; capacity a power of two; the load,
 * tombstones included, stays at or below 7/10 so that probe runs stay short. The keys
 * come from files (array ids, chunk indices): the hash is keyed with a secret drawn once
 * per process, so that no file can be crafted to make its keys collide (a fixed hash let
 * crafted chunk indices make loading quadratic). Nothing of it reaches a file: the
 * table's order is private to the process. */
#include "common/hmap.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include <xxhash.h>

#include "afmt.h"
#include "common/util.h"

#define HMAP_MIN_CAP 16

static uint64_t seed[2];
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void) {
    int got = 0;
#if defined(__linux__)
    got = getrandom(seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed;
#endif
    if (!got) {
        FILE *r = fopen("/dev/urandom", "rb");
        got = r && fread(seed, 1, sizeof seed, r) == sizeof seed;
        if (r) fclose(r);
    }
    if (!got) {
        /* No entropy source: time, pid and an address still differ between runs. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed[0] =
            afmt__mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid());
        seed[1] = afmt__mix64(seed[0] ^ (uint64_t)(uintptr_t)&seed);
    }
}

static uint64_t hash2(uint64_t k1, uint64_t k2) {
    pthread_once(&seed_once, seed_init);
    /* k2 is mixed before it is combined, so that (a, b) and (b, a) or keys differing by
     * the same amount in both halves do not collide systematically; the secret enters
     * both halves before any mixing. */
    return afmt__mix64(k1 ^ seed[0] ^ afmt__mix64(k2 + seed[1] + 0x9E3779B97F4A7C15ull));
}

static int fits(uint64_t used, uint64_t cap) {
    return used <= cap / 10 * 7 + cap % 10 * 7 / 10;
}

void afmt__hmap_init(afmt_hmap *m) {
    memset(m, 0, sizeof *m);
}

void afmt__hmap_free(afmt_hmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

void afmt__hmap_clear(afmt_hmap *m) {
    if (m->slots) memset(m->slots, 0, (size_t)m->cap * sizeof *m->slots);
    m->count = 0;
    m->tombs = 0;
}

/* Rebuilds the table with capacity cap (a power of two large enough for the entries),
 * dropping the tombstones. */
static int rehash(afmt_hmap *m, uint64_t cap) {
    if (cap > SIZE_MAX / sizeof(afmt_hmap_slot)) return AFMT_ENOMEM;
    afmt_hmap_slot *s = calloc((size_t)cap, sizeof *s);
    if (!s) return AFMT_ENOMEM;
    const uint64_t mask = cap - 1;
    for (uint64_t i = 0; i < m->cap; i++) {
        const afmt_hmap_slot *o = &m->slots[i];
        if (o->used != 1) continue;
        uint64_t j = hash2(o->k1, o->k2) & mask;
        while (s[j].used) j = (j + 1) & mask;
        s[j] = *o;
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    m->tombs = 0;
    return AFMT_OK;
}

/* Makes room for n more entries without a later rehash. */
int afmt__hmap_reserve(afmt_hmap *m, uint64_t n) {
    if (n > UINT64_MAX / 2 - m->count) return AFMT_ENOMEM;
    if (m->cap && fits(m->count + m->tombs + n, m->cap)) return AFMT_OK;
    uint64_t cap = HMAP_MIN_CAP;
    while (!fits(m->count + n, cap)) {
        if (cap > UINT64_MAX / 2) return AFMT_ENOMEM;
        cap *= 2;
    }
    /* Only tombstones in the way: rebuilding at the same size is enough. */
    if (cap < m->cap) cap = m->cap;
    return rehash(m, cap);
}

/* The slot holding the key, or the end of its probe run: the first empty slot. */
static uint64_t find(const afmt_hmap *m, uint64_t k1, uint64_t k2, int *found,
                     uint64_t *first_tomb) {
    const uint64_t mask = m->cap - 1;
    uint64_t i = hash2(k1, k2) & mask;
    *first_tomb = UINT64_MAX;
    for (;;) {
        const afmt_hmap_slot *s = &m->slots[i];
        if (s->used == 0) {
            *found = 0;
            return i;
        }
        if (s->used == 1 && s->k1 == k1 && s->k2 == k2) {
            *found = 1;
            return i;
        }
        if (s->used == 2 && *first_tomb == UINT64_MAX) *first_tomb = i;
        i = (i + 1) & mask;
    }
}

int afmt__hmap_put(afmt_hmap *m, uint64_t k1, uint64_t k2, uint64_t val) {
    int found = 0;
    uint64_t tomb = UINT64_MAX, i = 0;
    if (m->cap) {
        i = find(m, k1, k2, &found, &tomb);
        if (found) {
            /* Replacing never allocates: callers rely on that. */
            m->slots[i].val = val;
            return AFMT_OK;
        }
        if (tomb != UINT64_MAX) {
            afmt_hmap_slot *s = &m->slots[tomb];
            s->k1 = k1;
            s->k2 = k2;
            s->val = val;
            s->used = 1;
            m->count++;
            m->tombs--;
            return AFMT_OK;
        }
    }
    if (!m->cap || !fits(m->count + m->tombs + 1, m->cap)) {
        int rc = afmt__hmap_reserve(m, 1);
        if (rc != AFMT_OK) return rc;
        i = find(m, k1, k2, &found, &tomb);
    }
    afmt_hmap_slot *s = &m->slots[i];
    s->k1 = k1;
    s->k2 = k2;
    s->val = val;
    s->used = 1;
    m->count++;
    return AFMT_OK;
}

uint64_t afmt__hmap_hash_bytes(const void *p, size_t n) {
    pthread_once(&seed_once, seed_init);
    return (uint64_t)XXH3_64bits_withSeed(p, n, (XXH64_hash_t)seed[1]);
}

uint64_t afmt__hmap_probe_len(const afmt_hmap *m, uint64_t k1, uint64_t k2) {
    if (!m->cap) return 0;
    const uint64_t mask = m->cap - 1;
    uint64_t i = hash2(k1, k2) & mask, n = 1;
    for (; n <= m->cap; n++, i = (i + 1) & mask) {
        const afmt_hmap_slot *s = &m->slots[i];
        if (s->used == 0 || (s->used == 1 && s->k1 == k1 && s->k2 == k2)) break;
    }
    return n;
}

uint64_t *afmt__hmap_get(const afmt_hmap *m, uint64_t k1, uint64_t k2) {
    if (!m->cap || !m->count) return NULL;
    int found;
    uint64_t tomb;
    uint64_t i = find(m, k1, k2, &found, &tomb);
    return found ? &m->slots[i].val : NULL;
}

int afmt__hmap_del(afmt_hmap *m, uint64_t k1, uint64_t k2) {
    if (!m->cap || !m->count) return 0;
    int found;
    uint64_t tomb;
    uint64_t i = find(m, k1, k2, &found, &tomb);
    if (!found) return 0;
    const uint64_t mask = m->cap - 1;
    m->count--;
    if (m->slots[(i + 1) & mask].used == 0) {
        /* No probe run continues past an empty successor, so this slot and the
         * tombstones right before it can become empty instead of tombstones. */
        m->slots[i].used = 0;
        for (uint64_t j = (i - 1) & mask; m->slots[j].used == 2; j = (j - 1) & mask) {
            m->slots[j].used = 0;
            m->tombs--;
        }
    } else {
        m->slots[i].used = 2;
        m->tombs++;
    }
    return 1;
}
