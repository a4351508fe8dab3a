/* fuzz_open.c - libFuzzer target: opens a file image from memory (superblock slots, the
 * footer chain, the index merge) and inquires every array, attribute and layer through
 * the public API, checking that the answers agree with each other. See fuzz_common.h for
 * the two passes (as is, checksums fixed) and the contract checks. */
#include "fuzz_common.h"

#define OPEN_CODES (FUZZ_BIT(AFMT_ECORRUPT) | FUZZ_BIT(AFMT_EVERSION) | FUZZ_BIT(AFMT_ENOMEM))

static const afmt_attr_rec *first_with_key(const afmt_attr_rec *a, uint64_t n, const char *key) {
    for (uint64_t i = 0; i < n; i++)
        if (strcmp(a[i].key, key) == 0) return &a[i];
    return NULL;
}

/* Reads attribute rec back through the API (array: its array name, NULL = the file;
 * layer >= 0: a layer attribute of that index) and checks type, count and bytes. */
static void check_attr(afmt_file *f, const char *array, int64_t layer, const afmt_attr_rec *rec) {
    if (rec->n > FUZZ_MAX_ATTR_VALUES) return;
    size_t es = afmt__dtype_size(rec->dtype);
    fuzz_require(es > 0, "attribute of a valid dtype");
    uint8_t *buf = malloc((size_t)rec->n * 8 + 8); /* room for any dtype's values */
    fuzz_require(buf != NULL, "attribute buffer");
    uint64_t n = rec->n;
    int rc = layer >= 0 ? afmt_layer_attr(f, (uint64_t)layer, rec->key, rec->dtype, &n, buf)
                        : afmt_get_attr(f, array, rec->key, rec->dtype, &n, buf);
    fuzz_expect(rc, 0, "get attribute", f);
    fuzz_require(n == rec->n, "attribute count");
    /* BOOL reads as 0 or 1 whatever byte is stored (format.md 6); other dtypes as stored. */
    for (uint64_t i = 0; i < rec->n; i++) {
        const uint8_t *want = rec->value + i * es, *got = buf + i * es;
        int same = rec->dtype == AFMT_BOOL ? got[0] == (want[0] != 0) : !memcmp(got, want, es);
        fuzz_require(same, "attribute bytes");
    }
    /* Another type converts (or a value does not fit it), then too small a capacity. */
    afmt_dtype other = (afmt_dtype)(((int)rec->dtype + 1) % 11);
    n = rec->n;
    rc = layer >= 0 ? afmt_layer_attr(f, (uint64_t)layer, rec->key, other, &n, buf)
                    : afmt_get_attr(f, array, rec->key, other, &n, buf);
    fuzz_require((rc == AFMT_OK || rc == AFMT_ERANGE) && n == rec->n,
                 "attribute of another type converts or is ERANGE");
    if (rec->n > 0) {
        n = rec->n - 1;
        rc = layer >= 0 ? afmt_layer_attr(f, (uint64_t)layer, rec->key, rec->dtype, &n, buf)
                        : afmt_get_attr(f, array, rec->key, rec->dtype, &n, buf);
        fuzz_require(rc == AFMT_ERANGE && n == rec->n, "small capacity is ERANGE with the count");
    }
    free(buf);
}

static void inquire(afmt_file *f) {
    int n = -1;
    fuzz_expect(afmt_count(f, &n), 0, "afmt_count", f);
    fuzz_require(n >= 0, "count >= 0");
    for (int i = 0; i < n; i++) {
        afmt_info a, b;
        fuzz_expect(afmt_info_at(f, i, &a), 0, "afmt_info_at", f);
        fuzz_require(a.name[0] != 0 && strlen(a.name) <= AFMT_MAX_NAME, "array name");
        fuzz_require(a.ndim >= 0 && a.ndim <= AFMT_MAX_NDIM, "ndim");
        fuzz_require((int)a.dtype >= 0 && (int)a.dtype <= (int)AFMT_FLOAT64, "dtype");
        for (int d = 0; d < a.ndim; d++)
            fuzz_require(a.shape[d] >= 1 && a.chunk[d] >= 1 && a.chunk[d] <= a.shape[d],
                         "shape and chunk");
        fuzz_expect(afmt_inquire(f, a.name, &b), 0, "afmt_inquire", f);
        fuzz_require(memcmp(&a, &b, sizeof a) == 0, "afmt_inquire agrees with afmt_info_at");
        const afmt_array *arr = afmt__index_find(&f->idx, a.name);
        fuzz_require(arr != NULL, "index has the array");
        for (uint64_t k = 0; k < arr->n_attrs; k++) {
            const afmt_attr_rec *r = first_with_key(arr->attrs, arr->n_attrs, arr->attrs[k].key);
            check_attr(f, a.name, -1, r);
        }
        uint64_t cnt = 0;
        fuzz_require(afmt_get_attr(f, a.name, "fuzz: no such key", AFMT_UINT8, &cnt, NULL) ==
                         AFMT_ENOTFOUND,
                     "absent attribute is ENOTFOUND");
    }
    afmt_info none;
    fuzz_require(afmt_info_at(f, n, &none) == AFMT_ERANGE, "info_at(count) is ERANGE");
    for (uint64_t k = 0; k < f->idx.n_file_attrs; k++) {
        const afmt_attr_rec *r =
            first_with_key(f->idx.file_attrs, f->idx.n_file_attrs, f->idx.file_attrs[k].key);
        check_attr(f, NULL, -1, r);
    }
    uint64_t nl = 0, prev = 0;
    fuzz_expect(afmt_layers(f, &nl), 0, "afmt_layers", f);
    for (uint64_t k = 0; k < nl; k++) {
        uint64_t id = 0, t = 0;
        fuzz_expect(afmt_layer_id(f, k, &id, &t), 0, "afmt_layer_id", f);
        fuzz_require(k == 0 || id > prev, "layer ids increase from oldest to newest");
        prev = id;
        const afmt_layer_info *li = &f->idx.layers[k];
        for (uint64_t j = 0; j < li->n_attrs; j++)
            check_attr(f, NULL, (int64_t)k,
                       first_with_key(li->attrs, li->n_attrs, li->attrs[j].key));
    }
    fuzz_require(afmt_layer_id(f, nl, NULL, NULL) == AFMT_ERANGE, "layer_id(n) is ERANGE");
}

static void one(const uint8_t *data, size_t size) {
    static const char *name = "fuzz_open.afmt";
    fuzz_put(name, data, size);
    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_SELF, name, AFMT_RDONLY, fuzz_opts(), &f);
    fuzz_expect(rc, OPEN_CODES, "afmt_open", NULL);
    if (rc != AFMT_OK) {
        fuzz_require(f == NULL, "a failed open leaves *f NULL");
        return;
    }
    inquire(f);
    fuzz_expect(afmt_close(f), 0, "afmt_close", NULL);
}

FUZZ_TARGET(one)
