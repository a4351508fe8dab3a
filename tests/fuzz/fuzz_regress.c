/* fuzz_regress.c - the fuzz targets as a plain regression test (no libFuzzer needed):
 * runs every target over every file named on the command line or found in the
 * directories named there (tests/fuzz/corpus and tests/fuzz/crashes in ctest
 * fuzz.regression). A target that crashes or aborts fails the test, so every input that
 * once crashed the library stays a test. The targets are the libFuzzer sources compiled
 * with their entry points renamed (tests/fuzz/CMakeLists.txt). */
#include <dirent.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int afmt_fuzz_open_init(int *argc, char ***argv);
int afmt_fuzz_open_one(const uint8_t *data, size_t size);
int afmt_fuzz_read_init(int *argc, char ***argv);
int afmt_fuzz_read_one(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    int (*one)(const uint8_t *, size_t);
} targets[] = {{"fuzz_open", afmt_fuzz_open_one}, {"fuzz_read", afmt_fuzz_read_one}};

static int run_file(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fuzz_regress: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    fclose(fp);
    if (!buf) {
        fprintf(stderr, "fuzz_regress: out of memory reading %s\n", path);
        return -1;
    }
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        /* Named before it runs, so that a crash shows which input and target it was. */
        fprintf(stderr, "fuzz_regress: %s %s (%zu bytes)\n", targets[t].name, path, len);
        targets[t].one(buf, len);
    }
    free(buf);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir (sorted, dot files and *.md skipped); returns the count
 * or -1. */
static long run_dir(const char *dir) {
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
            if (run_file(names[i]) != 0) count = -1;
            if (count >= 0) count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    afmt_fuzz_open_init(&argc, &argv);
    afmt_fuzz_read_init(&argc, &argv);
    int bad = 0;
    long total = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        bad = 1;
    }
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        long c = -1;
        if (stat(argv[i], &sb) != 0)
            fprintf(stderr, "fuzz_regress: %s does not exist\n", argv[i]);
        else if (S_ISDIR(sb.st_mode))
            c = run_dir(argv[i]);
        else
            c = run_file(argv[i]) == 0 ? 1 : -1;
        if (c < 0)
            bad = 1;
        else {
            printf("fuzz_regress: %s: %ld inputs x %zu targets ok\n", argv[i], c,
                   sizeof targets / sizeof targets[0]);
            total += c;
        }
    }
    if (!bad && total == 0) {
        fprintf(stderr, "fuzz_regress: no inputs found\n");
        bad = 1;
    }
    MPI_Finalize();
    return bad;
}
