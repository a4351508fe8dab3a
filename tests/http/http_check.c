/* http_check.c - the C side of the remote-read tests (run_http_tests.sh), on any number
 * of ranks:
 *   http_check same LOCAL URL     every layer of URL (afmt_open_layer) and the newest
 *                                 (afmt_open) read the same as LOCAL: the descriptors, and
 *                                 every array byte for byte, through afmt_read of a
 *                                 chunk-unaligned slab per rank plus an edge box, and
 *                                 afmt_read_all of the whole array on every rank
 *   http_check fails URL CODE TEXT [rdwr|create]
 *                                 opening URL (read-only, for writing, or afmt_create) and
 *                                 reading every array fails with the error named CODE
 *                                 (afmt_err_name) and a message containing TEXT, on every
 *                                 rank alike; with AFMT_SWAP_FROM and AFMT_SWAP_TO set,
 *                                 rank 0 renames FROM over TO between the open and the reads
 *   http_check chunk URL ARRAY    reads the first chunk of ARRAY once (the request count is
 *                                 the test's, from the server's log) and prints the seconds
 *   http_check open URL           opens URL and closes it (the requests of an open alone)
 * Prints "ok" lines on rank 0; exits 0 on success, 1 on a mismatch, 2 on a usage error. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"
#include "tu_dtype.h"

static int rank, nranks;

/* Every rank's verdict: 1 if any rank failed. */
static int any(int failed) {
    int all = failed;
    MPI_Allreduce(&failed, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return all;
}

static uint64_t elements(const uint64_t *count, int ndim) {
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= count[d];
    return n;
}

/* afmt_read of [start, start + count) from both files; 1 if they differ or fail. */
static int same_box(afmt_file *a, afmt_file *b, const afmt_info *in, const uint64_t *start,
                    const uint64_t *count, const char *what) {
    uint64_t n = elements(count, in->ndim);
    size_t bytes = (size_t)(n ? n : 1) * tu_dtype_size(in->dtype);
    uint8_t *x = malloc(bytes), *y = malloc(bytes);
    int bad = !x || !y;
    if (!bad && n > 0) {
        int ra = afmt_read(a, in->name, start, count, x);
        int rb = afmt_read(b, in->name, start, count, y);
        if (ra != AFMT_OK || rb != AFMT_OK) {
            fprintf(stderr, "rank %d: %s %s: read: %s / %s\n", rank, in->name, what, afmt_errmsg(a),
                    afmt_errmsg(b));
            bad = 1;
        } else if (memcmp(x, y, bytes) != 0) {
            fprintf(stderr, "rank %d: %s %s: the bytes differ\n", rank, in->name, what);
            bad = 1;
        }
    }
    free(x);
    free(y);
    return bad;
}

/* The whole array through afmt_read_all on every rank of both files. */
static int same_all(afmt_file *a, afmt_file *b, const afmt_info *in) {
    uint64_t start[AFMT_MAX_NDIM] = {0}, n = elements(in->shape, in->ndim);
    size_t bytes = (size_t)n * tu_dtype_size(in->dtype);
    uint8_t *x = malloc(bytes ? bytes : 1), *y = malloc(bytes ? bytes : 1);
    int bad = !x || !y;
    int ra = afmt_read_all(a, in->name, start, in->shape, x);
    int rb = afmt_read_all(b, in->name, start, in->shape, y);
    if (ra != AFMT_OK || rb != AFMT_OK) {
        fprintf(stderr, "rank %d: %s read_all: %s / %s\n", rank, in->name, afmt_errmsg(a),
                afmt_errmsg(b));
        bad = 1;
    } else if (!bad && memcmp(x, y, bytes) != 0) {
        fprintf(stderr, "rank %d: %s read_all: the bytes differ\n", rank, in->name);
        bad = 1;
    }
    free(x);
    free(y);
    return bad;
}

static int same_array(afmt_file *a, afmt_file *b, const afmt_info *in) {
    afmt_info ib;
    if (afmt_inquire(b, in->name, &ib) != AFMT_OK || ib.dtype != in->dtype || ib.ndim != in->ndim ||
        memcmp(ib.shape, in->shape, sizeof ib.shape) != 0 ||
        memcmp(ib.chunk, in->chunk, sizeof ib.chunk) != 0 ||
        memcmp(ib.dims, in->dims, sizeof ib.dims) != 0) {
        fprintf(stderr, "rank %d: %s: the descriptors differ\n", rank, in->name);
        return 1;
    }
    uint64_t start[AFMT_MAX_NDIM] = {0}, count[AFMT_MAX_NDIM];
    memcpy(count, in->shape, sizeof count);
    int bad = 0;
    if (in->ndim == 0) return same_box(a, b, in, start, count, "scalar") | same_all(a, b, in);
    /* This rank's slab of dimension 0, cut without regard to the chunks. */
    uint64_t n0 = in->shape[0], lo = n0 * (uint64_t)rank / (uint64_t)nranks;
    uint64_t hi = n0 * (uint64_t)(rank + 1) / (uint64_t)nranks;
    start[0] = lo;
    count[0] = hi - lo;
    bad |= same_box(a, b, in, start, count, "slab");
    /* A box that ends at the array's far corner: the edge chunks. */
    for (int d = 0; d < in->ndim; d++) {
        count[d] = in->shape[d] > 3 ? 3 : in->shape[d];
        start[d] = in->shape[d] - count[d];
    }
    bad |= same_box(a, b, in, start, count, "corner");
    bad |= same_all(a, b, in);
    return bad;
}

/* Both files' every array, the same. */
static int same_files(afmt_file *a, afmt_file *b, const char *what) {
    int na = -1, nb = -2, bad = 0;
    afmt_count(a, &na);
    afmt_count(b, &nb);
    if (na != nb) {
        fprintf(stderr, "rank %d: %s: %d arrays against %d\n", rank, what, na, nb);
        return 1;
    }
    for (int i = 0; i < na; i++) {
        afmt_info in;
        if (afmt_info_at(a, i, &in) != AFMT_OK) return 1;
        bad |= same_array(a, b, &in);
    }
    return bad;
}

static int cmd_same(const char *local, const char *url) {
    afmt_file *a = NULL, *b = NULL;
    int bad = 0;
    if (afmt_open(MPI_COMM_WORLD, local, AFMT_RDONLY, NULL, &a) != AFMT_OK ||
        afmt_open(MPI_COMM_WORLD, url, AFMT_RDONLY, NULL, &b) != AFMT_OK) {
        fprintf(stderr, "rank %d: open: %s\n", rank, afmt_errmsg(NULL));
        return 1;
    }
    uint64_t layers = 0, lb = 0;
    afmt_layers(a, &layers);
    afmt_layers(b, &lb);
    bad |= layers != lb || layers == 0;
    bad |= any(same_files(a, b, "newest"));
    if (rank == 0 && !bad)
        printf("ok: %s: the newest of %llu layers reads the same\n", url,
               (unsigned long long)layers);
    for (uint64_t k = 0; k < layers && !bad; k++) {
        uint64_t id, t;
        afmt_file *la = NULL, *lb2 = NULL;
        afmt_layer_id(a, k, &id, &t);
        if (afmt_open_layer(MPI_COMM_WORLD, local, id, NULL, &la) != AFMT_OK ||
            afmt_open_layer(MPI_COMM_WORLD, url, id, NULL, &lb2) != AFMT_OK) {
            fprintf(stderr, "rank %d: open_layer %llu: %s\n", rank, (unsigned long long)id,
                    afmt_errmsg(NULL));
            bad = 1;
        } else {
            bad |= any(same_files(la, lb2, "layer"));
        }
        if (la) afmt_close(la);
        if (lb2) afmt_close(lb2);
        if (rank == 0 && !bad)
            printf("ok: %s: layer %llu reads the same\n", url, (unsigned long long)id);
    }
    afmt_close(a);
    afmt_close(b);
    return any(bad);
}

/* Opening (or creating) url, then reading each array, fails with code and text. */
static int cmd_fails(const char *url, const char *code, const char *text, const char *how) {
    afmt_file *f = NULL;
    int rc;
    if (how && strcmp(how, "create") == 0)
        rc = afmt_create(MPI_COMM_WORLD, url, AFMT_TRUNC, NULL, &f);
    else
        rc = afmt_open(MPI_COMM_WORLD, url,
                       how && strcmp(how, "rdwr") == 0 ? AFMT_RDWR : AFMT_RDONLY, NULL, &f);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", afmt_errmsg(rc == AFMT_OK ? f : NULL));
    /* AFMT_SWAP_FROM / AFMT_SWAP_TO: after the open, rank 0 renames FROM over TO (the
     * served file), so that the reads meet another file than the open did. */
    const char *from = getenv("AFMT_SWAP_FROM"), *to = getenv("AFMT_SWAP_TO");
    if (rc == AFMT_OK && from && to && rank == 0 && rename(from, to) != 0) perror("rename");
    MPI_Barrier(MPI_COMM_WORLD);
    if (rc == AFMT_OK) { /* the damage may show only when the blocks are read */
        int n = 0;
        afmt_count(f, &n);
        for (int i = 0; i < n && rc == AFMT_OK; i++) {
            afmt_info in;
            afmt_info_at(f, i, &in);
            uint64_t start[AFMT_MAX_NDIM] = {0};
            size_t bytes = (size_t)elements(in.shape, in.ndim) * tu_dtype_size(in.dtype);
            void *buf = malloc(bytes ? bytes : 1);
            rc = afmt_read_all(f, in.name, start, in.shape, buf);
            free(buf);
        }
        snprintf(msg, sizeof msg, "%s", afmt_errmsg(f));
        afmt_close(f);
    }
    int lo = rc, hi = rc;
    MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int bad = lo != hi || strcmp(afmt_err_name(rc), code) != 0 || !strstr(msg, text);
    if (bad)
        fprintf(stderr, "rank %d: %s: got %s (ranks %d..%d) \"%s\"; expected %s with \"%s\"\n",
                rank, url, afmt_err_name(rc), lo, hi, msg, code, text);
    bad = any(bad);
    if (rank == 0 && !bad) printf("ok: %s: %s: %s\n", url, code, msg);
    return bad;
}

static int cmd_chunk(const char *url, const char *name) {
    afmt_file *f = NULL;
    double t0 = MPI_Wtime();
    if (afmt_open(MPI_COMM_WORLD, url, AFMT_RDONLY, NULL, &f) != AFMT_OK) {
        fprintf(stderr, "open: %s\n", afmt_errmsg(NULL));
        return 1;
    }
    afmt_info in;
    int rc = afmt_inquire(f, name, &in);
    uint64_t start[AFMT_MAX_NDIM] = {0};
    void *buf = malloc((size_t)elements(in.chunk, in.ndim) * tu_dtype_size(in.dtype) + 1);
    if (rc == AFMT_OK) rc = afmt_read(f, name, start, in.chunk, buf);
    double t = MPI_Wtime() - t0;
    if (rc != AFMT_OK) fprintf(stderr, "read: %s\n", afmt_errmsg(f));
    free(buf);
    afmt_close(f);
    if (rank == 0 && rc == AFMT_OK) printf("%.6f\n", t);
    return rc != AFMT_OK;
}

static int cmd_open(const char *url) {
    afmt_file *f = NULL;
    if (afmt_open(MPI_COMM_WORLD, url, AFMT_RDONLY, NULL, &f) != AFMT_OK) {
        fprintf(stderr, "open: %s\n", afmt_errmsg(NULL));
        return 1;
    }
    return afmt_close(f) != AFMT_OK;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int rc = 2;
    if (argc == 4 && strcmp(argv[1], "same") == 0)
        rc = cmd_same(argv[2], argv[3]);
    else if ((argc == 5 || argc == 6) && strcmp(argv[1], "fails") == 0)
        rc = cmd_fails(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
    else if (argc == 4 && strcmp(argv[1], "chunk") == 0)
        rc = cmd_chunk(argv[2], argv[3]);
    else if (argc == 3 && strcmp(argv[1], "open") == 0)
        rc = cmd_open(argv[2]);
    else if (rank == 0)
        fprintf(stderr, "usage: http_check same LOCAL URL | fails URL CODE TEXT [rdwr|create] | "
                        "chunk URL ARRAY | open URL\n");
    MPI_Finalize();
    return rc;
}
