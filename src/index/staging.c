/* staging.c - the staging table (staging.h): entries by (array id, chunk index), their
 * partial state and box lists. */
#include "index/staging.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"

void afmt__staging_init(afmt__staging *t) {
    memset(t, 0, sizeof *t);
    afmt__hmap_init(&t->map);
}

void afmt__staging_free(afmt__staging *t) {
    afmt__staging_clear(t);
    free(t->items);
    afmt__hmap_free(&t->map);
    afmt__staging_init(t);
}

void afmt__staged_release(afmt_staged *s) {
    free(s->data);
    free(s->rect);
    s->data = NULL;
    s->rect = NULL;
    s->nrect = s->cap_rect = 0;
    s->covered = 0;
    s->mixed = 0;
}

void afmt__staging_clear(afmt__staging *t) {
    for (uint64_t i = 0; i < t->n; i++) afmt__staged_release(&t->items[i]);
    t->n = 0;
    afmt__hmap_clear(&t->map);
}

/* Rebuilds the map after entries were removed: positions moved, and the map only shrinks,
 * so re-inserting needs no new memory. */
static void reindex(afmt__staging *t) {
    afmt__hmap_clear(&t->map);
    for (uint64_t i = 0; i < t->n; i++)
        afmt__hmap_put(&t->map, t->items[i].array_id, t->items[i].chunk_index, i);
}

void afmt__staging_drop_array(afmt__staging *t, uint64_t array_id) {
    uint64_t w = 0;
    for (uint64_t i = 0; i < t->n; i++) {
        if (t->items[i].array_id == array_id) {
            afmt__staged_release(&t->items[i]);
            continue;
        }
        t->items[w++] = t->items[i];
    }
    if (w == t->n) return;
    t->n = w;
    reindex(t);
}

afmt_staged *afmt__staging_find(const afmt__staging *t, uint64_t array_id, uint64_t chunk_index) {
    if (!t->n) return NULL;
    uint64_t *pos = afmt__hmap_get(&t->map, array_id, chunk_index);
    return pos ? &t->items[*pos] : NULL;
}

int afmt__staging_get(afmt__staging *t, uint64_t array_id, uint64_t chunk_index, afmt_staged **out,
                      int *fresh) {
    uint64_t *pos = afmt__hmap_get(&t->map, array_id, chunk_index);
    *fresh = pos == NULL;
    if (pos) {
        *out = &t->items[*pos];
        return AFMT_OK;
    }
    if (AFMT__GROW(t->items, t->cap, t->n + 1, 64) != AFMT_OK) return AFMT_ENOMEM;
    if (afmt__hmap_put(&t->map, array_id, chunk_index, t->n) != AFMT_OK) return AFMT_ENOMEM;
    afmt_staged *s = &t->items[t->n++];
    memset(s, 0, sizeof *s);
    s->array_id = array_id;
    s->chunk_index = chunk_index;
    *out = s;
    return AFMT_OK;
}

void afmt__staging_forget_new(afmt__staging *t, const afmt_staged *s) {
    afmt__hmap_del(&t->map, s->array_id, s->chunk_index);
    t->n--;
}

int afmt__boxes_reserve(uint64_t **rect, uint32_t *cap, uint32_t need, int nd) {
    if (need <= *cap) return AFMT_OK;
    size_t box_bytes = sizeof(uint64_t) * 2 * (size_t)(nd ? nd : 1);
    uint32_t ncap = *cap ? 2 * *cap : 4;
    while (ncap < need) ncap *= 2;
    uint64_t *r = realloc(*rect, box_bytes * ncap);
    if (!r) return AFMT_ENOMEM;
    *rect = r;
    *cap = ncap;
    return AFMT_OK;
}
