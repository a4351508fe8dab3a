/* fuzz_mutator_test.c - ctest fuzz.mutator: the structure-aware mutator (fuzz_mutator.c)
 * knows the format and gets past the checksums.
 *
 * Over the seed files of a directory (tests/fuzz/corpus/seed-*, written by the library):
 *  - re-sealing an intact file changes no byte (the mutator's idea of every checksum and
 *    of where footers, trailers and blocks lie is the library's);
 *  - chains of mutations (and crossovers with another seed) stay within the size limit,
 *    are deterministic for a seed, and afmt_open refuses almost none of the re-sealed
 *    results for a checksum: the structure rules are what decide;
 *  - a fair share of mutants still opens and a fair share is refused (the mutations
 *    matter and do not only break files), and every kind of mutation takes effect;
 *  - with seeds of format v2 (seed-v2-*), refusals by each group of the checks of the v2
 *    structures past their checksums (docs/format.md 16), at afmt_open or when the whole
 *    index is loaded: root records G1-G8 and the segment checks X4, X5, X6, X7, X8 and X9.
 * Usage: fuzz_mutator_test DIR [ROUNDS]
 *        fuzz_mutator_test --classify DIR...   (no test: how many inputs of the directories,
 *        e.g. a fuzzer's corpus build-fuzz/fuzz/corpus-fuzz_open, afmt_open refuses by each
 *        group of v2 checks, and how many it refuses for a checksum) */
#include <dirent.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"
#include "api/file.h"
#include "fuzz_mutator.h"
#include "index/lazy.h"
#include "storage/storage.h"

#define MAX_SIZE (1 << 16)

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_mutator_test: FAIL: " __VA_ARGS__);                              \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static const char *g_msg; /* the message of the last refusal of try_open */

static uint8_t *load(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    uint8_t *b = malloc(MAX_SIZE);
    *n = b ? fread(b, 1, MAX_SIZE, fp) : 0;
    fclose(fp);
    return b;
}

/* The outcome of afmt_open on an image, followed by the load of the whole index (every
 * index segment, as the tools and compaction read it: afmt_open alone reads only the
 * footers, docs/format.md 9.3): 0 opened, 1 refused for a checksum, 2 refused otherwise. */
static int try_open(const uint8_t *img, size_t n) {
    if (afmt__storage_mem_put("mut.afmt", img, n) != AFMT_OK) return 2;
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    afmt__opts_set_backend(o, "memory");
    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_SELF, "mut.afmt", AFMT_RDONLY, o, &f);
    afmt_opts_free(o);
    static char why[AFMT_ERRMSG_MAX];
    const char *msg = afmt_errmsg(NULL);
    if (rc == AFMT_OK) {
        rc = afmt__index_load_all(&f->idx, why);
        afmt_close(f);
        if (rc == AFMT_OK) return 0;
        msg = why;
    }
    g_msg = msg;
    /* "checksum 8" in the footer-length message is no checksum failure */
    return msg && (strstr(msg, "bad checksum") || strstr(msg, "match the superblock's checksum") ||
                   strstr(msg, "fails its checksum") || strstr(msg, "footer checksum does not") ||
                   strstr(msg, "match the root table's checksum"))
               ? 1
               : 2;
}

/* The checks of the v2 structures (docs/format.md 16) and texts of their messages
 * (src/format/footer.c, segment.c): a refusal whose message has one of them counts for
 * the group. */
static const struct {
    int optional; /* not required to refuse a mutant (see X9) */
    const char *group, *texts[6];
} v2_checks[] = {
    {0, "G1-G8 root record", {"segment record ", "the segments hold ", "root table size"}},
    {0, "X4 segment magic/sizes", {"bad magic", "segment version", "header size "}},
    {0, "X5 segment length", {"chunks need other than"}},
    {0, "X6 segment header vs root", {"does not match the root table ("}},
    {0, "X7 segment block record", {"block record "}},
    {0,
     "X8 segment chunk record",
     {"not in 1..next_array_id", "does not sort strictly", "references block",
      "are not inside block", "its chunks run from"}},
    /* X9: afmt__index_load_all compares the keys of a layer's segments. */
    {0, "X9 key in two segments", {"in two segments"}},
};
#define NV2 (sizeof v2_checks / sizeof v2_checks[0])
static unsigned long v2_hits[NV2];

/* Counts a refusal message of a v2 check (one of a segment: it names "segment"). */
static void count_v2(const char *msg) {
    if (!msg || !strstr(msg, "segment")) return;
    for (size_t i = 0; i < NV2; i++)
        for (int j = 0; j < 6 && v2_checks[i].texts[j]; j++)
            if (strstr(msg, v2_checks[i].texts[j])) {
                v2_hits[i]++;
                return;
            }
}

typedef struct {
    const char *name;
    unsigned long count;
} op_count;

static op_count ops[48];

static void count_op(const char *name) {
    for (int i = 0; i < 48; i++) {
        if (!ops[i].name) ops[i].name = name;
        if (!strcmp(ops[i].name, name)) {
            ops[i].count++;
            return;
        }
    }
}

/* --classify: the refusals of afmt_open over every file of the directories. */
static int classify(int argc, char **argv) {
    unsigned long files = 0, opened = 0, by_checksum = 0, other = 0;
    uint8_t *buf = NULL;
    for (int a = 2; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], e->d_name);
            size_t n = 0;
            free(buf);
            buf = load(path, &n);
            if (!buf) continue;
            files++;
            int rc = try_open(buf, n);
            opened += rc == 0;
            by_checksum += rc == 1;
            if (rc == 2) {
                unsigned long before = 0, after = 0;
                for (size_t i = 0; i < NV2; i++) before += v2_hits[i];
                count_v2(g_msg);
                for (size_t i = 0; i < NV2; i++) after += v2_hits[i];
                other += after == before;
            }
        }
        if (d) closedir(d);
    }
    free(buf);
    printf("fuzz_mutator_test --classify: %lu inputs: %lu open, %lu refused for a checksum, %lu "
           "refused by other checks than these:\n",
           files, opened, by_checksum, other);
    for (size_t i = 0; i < NV2; i++) printf("  %-26s %lu\n", v2_checks[i].group, v2_hits[i]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "--classify")) {
        MPI_Init(&argc, &argv);
        int rc = classify(argc, argv);
        MPI_Finalize();
        return rc;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [ROUNDS]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 600;
    MPI_Init(&argc, &argv);
    DIR *d = opendir(argv[1]);
    CHECK(d != NULL, "cannot open %s", argv[1]);
    uint8_t *seeds[64];
    size_t sizes[64];
    char names[64][256];
    int ns = 0, nv2 = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && ns < 64) {
        if (strncmp(e->d_name, "seed-", 5) != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        seeds[ns] = load(path, &sizes[ns]);
        if (!seeds[ns]) continue;
        snprintf(names[ns], sizeof names[ns], "%s", e->d_name);
        nv2 += !strncmp(e->d_name, "seed-v2-", 8);
        ns++;
    }
    if (d) closedir(d);
    CHECK(ns >= 5, "only %d seed files in %s", ns, argv[1]);

    uint8_t *buf = malloc(MAX_SIZE), *again = malloc(MAX_SIZE), *out = malloc(MAX_SIZE);
    uint8_t *tmp = malloc(MAX_SIZE);
    unsigned long opened = 0, refused = 0, by_checksum = 0, sealed_total = 0;
    unsigned seed = 1;
    for (int s = 0; s < ns; s++) {
        /* An intact file is sealed already. */
        memcpy(buf, seeds[s], sizes[s]);
        fz_reseal(buf, sizes[s]);
        CHECK(memcmp(buf, seeds[s], sizes[s]) == 0, "%s: re-sealing an intact file changed it",
              names[s]);
        CHECK(fz_footers(seeds[s], sizes[s]) >= (strstr(names[s], "empty") ? 0 : 1),
              "%s: no footer found", names[s]);
        CHECK(try_open(seeds[s], sizes[s]) == 0, "%s: the seed does not open", names[s]);

        size_t n = sizes[s];
        memcpy(buf, seeds[s], n);
        for (int r = 0; r < rounds; r++, seed++) {
            if (r % 8 == 0) { /* a fresh chain now and then */
                n = sizes[s];
                memcpy(buf, seeds[s], n);
            }
            memcpy(again, buf, n);
            size_t m;
            const char *op;
            if (r % 5 == 4) {
                const int o = (s + 1 + r) % ns;
                m = fz_crossover(buf, n, seeds[o], sizes[o], out, MAX_SIZE, seed);
                op = fz_last_op();
                size_t m2 = fz_crossover(again, n, seeds[o], sizes[o], tmp, MAX_SIZE, seed);
                CHECK(m2 == m && memcmp(tmp, out, m) == 0, "%s: crossover %u not deterministic",
                      names[s], seed);
                memcpy(buf, out, m);
            } else {
                m = fz_mutate(buf, n, MAX_SIZE, seed);
                op = fz_last_op();
                size_t m2 = fz_mutate(again, n, MAX_SIZE, seed);
                CHECK(m2 == m && memcmp(again, buf, m) == 0,
                      "%s: mutation %u (%s) not deterministic", names[s], seed, op);
            }
            CHECK(m <= MAX_SIZE, "%s: mutation %u (%s) returned %zu bytes", names[s], seed, op, m);
            count_op(op);
            n = m;
            if (!strcmp(op, "bytes") || !strcmp(op, "bytes-unparsed")) continue;
            sealed_total++;
            int rc = try_open(buf, n);
            opened += rc == 0;
            refused += rc != 0;
            by_checksum += rc == 1;
            if (rc == 2) count_v2(g_msg);
            /* FZ_DEBUG=1: name each mutant refused for a checksum (seed, mutation, why). */
            if (rc == 1 && getenv("FZ_DEBUG"))
                fprintf(stderr, "%s %s %u: %s\n", names[s], op, seed, g_msg);
        }
    }
    printf("fuzz_mutator_test: %d seeds, %lu re-sealed mutants: %lu open, %lu refused (%lu of "
           "them for a checksum)\n",
           ns, sealed_total, opened, refused, by_checksum);
    for (int i = 0; i < 48 && ops[i].name; i++) printf("  %-18s %lu\n", ops[i].name, ops[i].count);
    printf("refusals by the checks of format v2 past the checksums (%d v2 seeds):\n", nv2);
    for (size_t i = 0; i < NV2; i++) {
        printf("  %-26s %lu\n", v2_checks[i].group, v2_hits[i]);
        CHECK(nv2 == 0 || v2_checks[i].optional || v2_hits[i] > 0, "no mutant refused by %s",
              v2_checks[i].group);
    }
    CHECK(nv2 >= 5, "only %d seeds of format v2 (seed-v2-*)", nv2);
    CHECK(sealed_total > 0, "no mutant");
    /* A plain byte mutator gets nearly all of them refused for a checksum. */
    CHECK(by_checksum * 100 <= sealed_total, "%lu of %lu re-sealed mutants fail a checksum",
          by_checksum, sealed_total);
    CHECK(opened * 10 >= sealed_total, "only %lu of %lu mutants open", opened, sealed_total);
    CHECK(refused * 10 >= sealed_total, "only %lu of %lu mutants are refused", refused,
          sealed_total);
    static const char *want[] = {
        "field",         "record-dup",   "record-remove",     "record-swap",
        "record-copy",   "record-new",   "dim-add",           "dim-remove",
        "string-byte",   "string-alias", "string-new",        "block-stored",
        "block-raw",     "slot-copy",    "slot-point",        "prev-point",
        "layer-new",     "layer-drop",   "bytes-resealed",    "record-transplant",
        "segment-field", "segment-dup",  "segment-remove",    "segment-swap",
        "segment-new",   "segment-copy", "segment-transplant"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        unsigned long c = 0;
        for (int j = 0; j < 48 && ops[j].name; j++)
            if (!strcmp(ops[j].name, want[i])) c = ops[j].count;
        CHECK(c > 0, "mutation %s never took effect", want[i]);
    }
    for (int s = 0; s < ns; s++) free(seeds[s]);
    free(buf);
    free(again);
    free(out);
    free(tmp);
    MPI_Finalize();
    if (failures) fprintf(stderr, "fuzz_mutator_test: %d failures\n", failures);
    return failures ? 1 : 0;
}
