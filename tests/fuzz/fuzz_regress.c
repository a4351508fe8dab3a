/* fuzz_regress.c - the fuzz targets as a plain regression test (no libFuzzer needed), the
 * ctest fuzz.regression:
 *
 *   fuzz_regress [--expect FILE DIR] [PATH...]
 *   fuzz_regress --record FILE DIR
 *
 * Runs every target (fuzz_open, fuzz_read, fuzz_tool) over every file named, or found in
 * the directories named (sorted; dot files and *.md skipped): a target that crashes,
 * leaks (ASan build) or trips a contract check aborts, which fails the test, so every
 * input that once failed a target (tests/fuzz/crashes/) stays a test after its fix.
 * With --expect, the files of DIR (tests/fuzz/corpus) must also keep the outcome FILE
 * (tests/fuzz/corpus.expect) records for them: what afmt_open returns on the file as it
 * is and with its checksums re-sealed; every file of DIR must be listed, every listed
 * file must exist, and seed files (seed-*, written by the library) must open both ways.
 * --record writes FILE from the current outcomes instead (after a deliberate change of
 * a validity rule, or new corpus files; review the diff). The targets are the libFuzzer
 * sources compiled with their entry points renamed (tests/fuzz/CMakeLists.txt). */
#include <dirent.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "afmt.h"
#include "api/file.h"
#include "fuzz_mutator.h"
#include "storage/storage.h"

int afmt_fuzz_open_init(int *argc, char ***argv);
int afmt_fuzz_open_one(const uint8_t *data, size_t size);
int afmt_fuzz_read_init(int *argc, char ***argv);
int afmt_fuzz_read_one(const uint8_t *data, size_t size);
int afmt_fuzz_tool_init(int *argc, char ***argv);
int afmt_fuzz_tool_one(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    int (*init)(int *, char ***);
    int (*one)(const uint8_t *, size_t);
} targets[] = {{"fuzz_open", afmt_fuzz_open_init, afmt_fuzz_open_one},
               {"fuzz_read", afmt_fuzz_read_init, afmt_fuzz_read_one},
               {"fuzz_tool", afmt_fuzz_tool_init, afmt_fuzz_tool_one}};
#define NTARGETS (sizeof targets / sizeof targets[0])

/* ---- recorded outcomes ------------------------------------------------------------------ */

static const char *code_names[] = {"OK",     "EINVAL", "ENOTFOUND", "EEXIST",   "ETYPE",
                                   "ERANGE", "EIO",    "ECORRUPT",  "EVERSION", "ENOMEM",
                                   "ECODEC", "EMPI",   "EREADONLY", "ESTATE",   "EBUSY"};
#define NCODES (int)(sizeof code_names / sizeof code_names[0])

static const char *code_name(int rc) {
    return rc <= 0 && -rc < NCODES ? code_names[-rc] : "?";
}

typedef struct {
    char name[256];
    int as_is, resealed; /* afmt_open's codes */
    int seen;
} expect;

static expect *exp_list;
static size_t n_exp;
static int failed;

static int parse_code(const char *s, int *rc) {
    for (int i = 0; i < NCODES; i++)
        if (!strcmp(s, code_names[i])) {
            *rc = -i;
            return 0;
        }
    return -1;
}

static int load_expect(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "fuzz_regress: cannot open %s\n", path);
        return -1;
    }
    char line[1024];
    size_t cap = 0;
    int lineno = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        char name[256], a[32], b[32];
        expect e;
        memset(&e, 0, sizeof e);
        if (sscanf(line, "%255s %31s %31s", name, a, b) != 3 || parse_code(a, &e.as_is) ||
            parse_code(b, &e.resealed)) {
            fprintf(stderr, "fuzz_regress: %s:%d: expected NAME AS-IS RESEALED\n", path, lineno);
            fclose(fp);
            return -1;
        }
        snprintf(e.name, sizeof e.name, "%s", name);
        if (n_exp == cap) {
            cap = cap ? 2 * cap : 128;
            expect *p = realloc(exp_list, cap * sizeof *p);
            if (!p) {
                fclose(fp);
                return -1;
            }
            exp_list = p;
        }
        exp_list[n_exp++] = e;
    }
    fclose(fp);
    return 0;
}

/* afmt_open's code on the image (memory backend), and its message in msg. */
static int open_code(const uint8_t *data, size_t size, char *msg, size_t cap) {
    msg[0] = 0;
    if (afmt__storage_mem_put("fuzz_regress.afmt", data, size) != AFMT_OK) return AFMT_ENOMEM;
    afmt_opts *o = NULL;
    afmt_file *f = NULL;
    int rc = afmt_opts_create(&o);
    if (rc == AFMT_OK) rc = afmt__opts_set_backend(o, "memory");
    if (rc == AFMT_OK) rc = afmt_open(MPI_COMM_SELF, "fuzz_regress.afmt", AFMT_RDONLY, o, &f);
    if (rc != AFMT_OK) snprintf(msg, cap, "%s", afmt_errmsg(NULL));
    if (f) afmt_close(f);
    afmt_opts_free(o);
    return rc;
}

/* Checks (or, record != NULL, records) the outcome of one corpus file. */
static void check_expected(const char *path, const char *base, const uint8_t *data, size_t size,
                           FILE *record) {
    char m1[1024], m2[1024];
    int a = open_code(data, size, m1, sizeof m1);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) {
        fprintf(stderr, "fuzz_regress: out of memory\n");
        failed = 1;
        return;
    }
    if (size) memcpy(fixed, data, size);
    fz_reseal(fixed, size);
    int b = open_code(fixed, size, m2, sizeof m2);
    free(fixed);
    if (!strncmp(base, "seed-", 5) && (a != AFMT_OK || b != AFMT_OK)) {
        fprintf(stderr, "fuzz_regress: FAIL: %s: a seed written by the library does not open: %s\n",
                path, a != AFMT_OK ? m1 : m2);
        failed = 1;
    }
    if (record) {
        fprintf(record, "%s %s %s\n", base, code_name(a), code_name(b));
        return;
    }
    for (size_t i = 0; i < n_exp; i++) {
        if (strcmp(exp_list[i].name, base) != 0) continue;
        exp_list[i].seen = 1;
        if (exp_list[i].as_is != a || exp_list[i].resealed != b) {
            fprintf(stderr,
                    "fuzz_regress: FAIL: %s: afmt_open gives %s as is, %s re-sealed; "
                    "corpus.expect records %s, %s (%s%s%s)\n",
                    path, code_name(a), code_name(b), code_name(exp_list[i].as_is),
                    code_name(exp_list[i].resealed), m1, m1[0] && m2[0] ? "; " : "", m2);
            failed = 1;
        }
        return;
    }
    fprintf(stderr,
            "fuzz_regress: FAIL: %s is not listed in the expectations (record them: "
            "fuzz_regress --record FILE DIR)\n",
            path);
    failed = 1;
}

/* ---- inputs ----------------------------------------------------------------------------- */

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    size_t cap = 1 << 16;
    uint8_t *buf = malloc(cap);
    size_t got;
    *len = 0;
    while (buf && (got = fread(buf + *len, 1, cap - *len, fp)) > 0) {
        *len += got;
        if (*len == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    fclose(fp);
    return buf;
}

/* Runs every target on one file; expected: check (or record) its outcome too. */
static int run_file(const char *path, int expected, FILE *record) {
    size_t len = 0;
    uint8_t *buf = read_all(path, &len);
    if (!buf) {
        fprintf(stderr, "fuzz_regress: cannot read %s\n", path);
        return -1;
    }
    for (size_t t = 0; t < NTARGETS; t++) {
        /* Named before it runs, so that a crash shows which input and target it was. */
        fprintf(stderr, "fuzz_regress: %s %s (%zu bytes)\n", targets[t].name, path, len);
        targets[t].one(buf, len);
    }
    if (expected) {
        const char *base = strrchr(path, '/');
        check_expected(path, base ? base + 1 : path, buf, len, record);
    }
    free(buf);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir (sorted; dot files and *.md skipped); returns the count
 * or -1. */
static long run_dir(const char *dir, int expected, FILE *record) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz_regress: cannot open directory %s\n", dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || (l > 3 && strcmp(e->d_name + l - 3, ".md") == 0)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) break;
            names = p;
        }
        names[n] = malloc(strlen(dir) + l + 2);
        if (!names[n]) break;
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (run_file(names[i], expected, record) != 0) count = -1;
            if (count >= 0) count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv) {
    /* The regression steps over nothing: known failures that a fuzzing hunt may skip
     * ($AFMT_FUZZ_KNOWN, fuzz_common.h) fail here as any other. */
    unsetenv("AFMT_FUZZ_KNOWN");
    MPI_Init(&argc, &argv);
    for (size_t t = 0; t < NTARGETS; t++) targets[t].init(&argc, &argv);
    const char *exp_file = NULL, *exp_dir = NULL;
    int record = 0, first = 1, usage = 0;
    if (argc >= 4 && (!strcmp(argv[1], "--expect") || !strcmp(argv[1], "--record"))) {
        record = !strcmp(argv[1], "--record");
        exp_file = argv[2];
        exp_dir = argv[3];
        first = 4;
        if (record && argc > 4) {
            fprintf(stderr, "fuzz_regress: --record takes FILE and DIR only\n");
            usage = 1;
        }
    }
    if (argc < 2 || (first == 1 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: %s [--expect FILE DIR] [PATH...] | --record FILE DIR\n", argv[0]);
        usage = 1;
    }
    failed = usage;
    long total = 0;
    if (!failed && exp_file) {
        FILE *rec = NULL;
        if (record) {
            rec = fopen(exp_file, "w");
            if (!rec) {
                fprintf(stderr, "fuzz_regress: cannot write %s\n", exp_file);
                failed = 1;
            } else {
                fprintf(
                    rec,
                    "# What afmt_open returns on each file of tests/fuzz/corpus: NAME, the code\n"
                    "# on the file as it is, the code with its checksums re-sealed (fz_reseal).\n"
                    "# ctest fuzz.regression fails when one changes. After a deliberate change\n"
                    "# of a validity rule, or new corpus files, re-record and review the diff:\n"
                    "#   build/tests/fuzz/fuzz_regress --record tests/fuzz/corpus.expect "
                    "tests/fuzz/corpus\n");
            }
        } else if (load_expect(exp_file) != 0) {
            failed = 1;
        }
        long c = failed ? -1 : run_dir(exp_dir, 1, rec);
        if (rec && fclose(rec) != 0) failed = 1;
        if (c < 0) {
            failed = 1;
        } else {
            printf("fuzz_regress: %s: %ld inputs x %zu targets ok; outcomes %s %s\n", exp_dir, c,
                   NTARGETS,
                   record   ? "recorded in"
                   : failed ? "NOT all as recorded in"
                            : "as recorded in",
                   exp_file);
            total += c;
        }
        for (size_t i = 0; !record && i < n_exp; i++)
            if (!exp_list[i].seen) {
                fprintf(stderr, "fuzz_regress: FAIL: %s lists %s, which %s lacks\n", exp_file,
                        exp_list[i].name, exp_dir);
                failed = 1;
            }
    }
    for (int i = first; !usage && i < argc; i++) {
        struct stat sb;
        long c = -1;
        if (stat(argv[i], &sb) != 0)
            fprintf(stderr, "fuzz_regress: %s does not exist\n", argv[i]);
        else if (S_ISDIR(sb.st_mode))
            c = run_dir(argv[i], 0, NULL);
        else
            c = run_file(argv[i], 0, NULL) == 0 ? 1 : -1;
        if (c < 0)
            failed = 1;
        else {
            printf("fuzz_regress: %s: %ld inputs x %zu targets ok\n", argv[i], c, NTARGETS);
            total += c;
        }
    }
    if (!failed && total == 0) {
        fprintf(stderr, "fuzz_regress: no inputs found\n");
        failed = 1;
    }
    free(exp_list);
    MPI_Finalize();
    return failed;
}
