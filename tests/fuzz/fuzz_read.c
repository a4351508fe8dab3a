/* fuzz_read.c - libFuzzer target: opens a file image from memory and reads every array
 * fully (arrays above FUZZ_MAX_ARRAY_BYTES or FUZZ_MAX_CHUNKS are skipped), then does the
 * same for every older layer through afmt_open_layer. A successful full read is checked
 * against single-element reads of its first and last element (another path through the
 * chunk grid and the cache). See fuzz_common.h for the two passes and the contract. */
#include "fuzz_common.h"

#define OPEN_CODES (FUZZ_BIT(AFMT_ECORRUPT) | FUZZ_BIT(AFMT_EVERSION) | FUZZ_BIT(AFMT_ENOMEM))
#define READ_CODES                                                                                 \
    (FUZZ_BIT(AFMT_ECORRUPT) | FUZZ_BIT(AFMT_ECODEC) | FUZZ_BIT(AFMT_EIO) | FUZZ_BIT(AFMT_ENOMEM))
#define MAX_OLDER_LAYERS 8

static void read_element(afmt_file *f, const afmt_info *in, const uint64_t *at, size_t es,
                         const uint8_t *all) {
    uint64_t one[AFMT_MAX_NDIM], lin = 0;
    for (int d = 0; d < in->ndim; d++) {
        one[d] = 1;
        lin = lin * in->shape[d] + at[d];
    }
    uint8_t v[8];
    int rc = afmt_read(f, in->name, at, one, v);
    fuzz_expect(rc, READ_CODES, "afmt_read (one element)", f);
    /* The blocks were read (and cached) by the full read: the element must match. */
    if (rc == AFMT_OK) fuzz_require(memcmp(v, all + lin * es, es) == 0, "element == full read");
}

static void read_all(afmt_file *f) {
    int n = 0;
    fuzz_expect(afmt_count(f, &n), 0, "afmt_count", f);
    if (!fuzz_blocks_small(f)) return;
    for (int i = 0; i < n; i++) {
        afmt_info in;
        fuzz_expect(afmt_info_at(f, i, &in), 0, "afmt_info_at", f);
        uint64_t bytes = fuzz_array_bytes(&in);
        if (bytes == 0) continue;
        uint8_t *buf = malloc((size_t)bytes);
        fuzz_require(buf != NULL, "read buffer");
        uint64_t start[AFMT_MAX_NDIM] = {0}, last[AFMT_MAX_NDIM];
        for (int d = 0; d < in.ndim; d++) last[d] = in.shape[d] - 1;
        int rc = afmt_read(f, in.name, start, in.shape, buf);
        fuzz_expect(rc, READ_CODES, "afmt_read (whole array)", f);
        if (rc == AFMT_OK) {
            size_t es = (size_t)afmt__dtype_size(in.dtype);
            read_element(f, &in, start, es, buf);
            read_element(f, &in, last, es, buf);
        }
        free(buf);
    }
}

static void one(const uint8_t *data, size_t size) {
    static const char *name = "fuzz_read.afmt";
    fuzz_put(name, data, size);
    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_SELF, name, AFMT_RDONLY, fuzz_opts(), &f);
    fuzz_expect(rc, OPEN_CODES, "afmt_open", NULL);
    if (rc != AFMT_OK) return;
    read_all(f);
    uint64_t nl = 0;
    fuzz_expect(afmt_layers(f, &nl), 0, "afmt_layers", f);
    uint64_t ids[MAX_OLDER_LAYERS], n_ids = 0;
    for (uint64_t k = nl > MAX_OLDER_LAYERS + 1 ? nl - MAX_OLDER_LAYERS - 1 : 0; k + 1 < nl; k++)
        fuzz_expect(afmt_layer_id(f, k, &ids[n_ids++], NULL), 0, "afmt_layer_id", f);
    fuzz_expect(afmt_close(f), 0, "afmt_close", NULL);
    for (uint64_t k = 0; k < n_ids; k++) {
        afmt_file *g = NULL;
        rc = afmt_open_layer(MPI_COMM_SELF, name, ids[k], fuzz_opts(), &g);
        /* The newest open walked the whole chain already: an older view must open. */
        fuzz_expect(rc, 0, "afmt_open_layer", NULL);
        if (rc != AFMT_OK) continue; /* only with AFMT_FUZZ_KNOWN */
        uint64_t gl = 0, gid = 0;
        fuzz_expect(afmt_layers(g, &gl), 0, "afmt_layers", g);
        fuzz_expect(afmt_layer_id(g, gl - 1, &gid, NULL), 0, "afmt_layer_id", g);
        fuzz_require(gid == ids[k], "afmt_open_layer opens the layer asked for");
        read_all(g);
        fuzz_expect(afmt_close(g), 0, "afmt_close", NULL);
    }
}

FUZZ_TARGET(one)
