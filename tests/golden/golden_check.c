/* golden_check.c - the ctests golden.read.np*: every golden file (format v1, and the files
 * of format v2 beside them) must read forever exactly as tests/golden/MANIFEST says.
 *
 *   golden_check MANIFEST DIR
 *
 * For each "file" of the manifest (DIR/NAME), on every rank of MPI_COMM_WORLD: the layer
 * count and ids; then for each "section" (the newest state, through afmt_open, and each
 * layer, through afmt_open_layer) the text golden.h renders from what the file reads,
 * which must equal the section's lines: every array (afmt_count / afmt_info_at, sorted by
 * name: none missing, none extra) with its dtype, shape, chunk, dimension names and the
 * XXH64 of all its elements; every attribute the section lists (afmt_get_attr); the
 * writer's rank count (layer attribute "nranks"). Where the manifest gives layout lines
 * ("slot version", "footer ..." after the file line, golden.h), the file's bytes must show
 * exactly that layout: format version of the slot and of each footer, index segments,
 * BASE. The files are opened read-only and never written. Exit status 0 only if every file of the
 * manifest, and every file of DIR named
 * *.afmt, was checked and matched. */
#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"

static int g_failed;
static char g_dir[1024];

#define MAXNAMES 64
static char g_seen[MAXNAMES][256];
static int g_nseen;
static int g_nversion[4]; /* files by the format version of their slot: 1, 2, other */

static void failf(const char *what, const char *file, const char *detail) {
    fprintf(stderr, "golden: FAIL: %s: %s%s%s\n", file, what, detail ? ": " : "",
            detail ? detail : "");
    g_failed = 1;
}

static int cmp_info(const void *a, const void *b) {
    return strcmp(((const afmt_info *)a)->name, ((const afmt_info *)b)->name);
}

/* Renders every array of f, sorted by name. */
static int render_arrays(FILE *out, afmt_file *f) {
    int n = 0;
    if (afmt_count(f, &n) != AFMT_OK) return -1;
    afmt_info *in = calloc((size_t)n + 1, sizeof *in);
    if (!in) return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) rc = afmt_info_at(f, i, &in[i]) == AFMT_OK ? 0 : -1;
    if (rc == 0) qsort(in, (size_t)n, sizeof *in, cmp_info);
    for (int i = 0; rc == 0 && i < n; i++) {
        uint64_t ne = golden_elems(in[i].ndim, in[i].shape);
        void *data = malloc((size_t)ne * golden_esize(in[i].dtype) + 1);
        uint64_t start[AFMT_MAX_NDIM] = {0};
        if (!data || afmt_read(f, in[i].name, in[i].ndim ? start : NULL,
                               in[i].ndim ? in[i].shape : NULL, data) != AFMT_OK) {
            fprintf(out, "array %s: cannot read: %s\n", in[i].name, afmt_errmsg(f));
        } else {
            golden_put_array(out, &in[i], data);
        }
        free(data);
    }
    free(in);
    return rc;
}

/* Renders the attribute an expected "attr ARRAY KEY DTYPE ..." line names, as read. */
static void render_attr(FILE *out, afmt_file *f, const char *line) {
    char array[300], key[300], dt[32];
    afmt_dtype t;
    if (sscanf(line, "attr %299s %299s %31s", array, key, dt) != 3 || golden_dtype_parse(dt, &t)) {
        fprintf(out, "unparsable: %s", line);
        return;
    }
    const char *arr = strcmp(array, "-") ? array : NULL;
    uint64_t n = 0;
    int rc = afmt_get_attr(f, arr, key, t, &n, NULL);
    void *v = malloc((size_t)n * golden_esize(t) + 1);
    if (v && (rc == AFMT_OK || rc == AFMT_ERANGE)) rc = afmt_get_attr(f, arr, key, t, &n, v);
    if (v && rc == AFMT_OK)
        golden_put_attr(out, arr, key, t, n, v);
    else
        fprintf(out, "attr %s %s %s: %s\n", array, key, dt, afmt_errmsg(f));
    free(v);
}

/* "noattr ARRAY KEY": the attribute must not exist (its array was deleted). */
static void render_noattr(FILE *out, afmt_file *f, const char *line) {
    char array[300], key[300];
    if (sscanf(line, "noattr %299s %299s", array, key) != 2) {
        fprintf(out, "unparsable: %s", line);
        return;
    }
    uint64_t n = 0;
    int rc = afmt_get_attr(f, strcmp(array, "-") ? array : NULL, key, AFMT_UINT8, &n, NULL);
    if (rc == AFMT_ENOTFOUND)
        fprintf(out, "noattr %s %s\n", array, key);
    else
        fprintf(out, "attr %s %s exists (%s)\n", array, key, afmt_strerror(rc));
}

/* The actual text of a section whose expected lines are exp (attr lines name the keys). */
static char *render_section(afmt_file *f, const char *exp) {
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) return NULL;
    uint64_t nl = 0, one = 1;
    int64_t nranks = -1;
    if (afmt_layers(f, &nl) == AFMT_OK && nl > 0)
        afmt_layer_attr(f, nl - 1, "nranks", AFMT_INT64, &one, &nranks);
    fprintf(out, "nranks %lld\n", (long long)nranks);
    if (render_arrays(out, f) != 0) fprintf(out, "cannot list the arrays: %s\n", afmt_errmsg(f));
    for (const char *l = exp; *l; l = strchr(l, '\n') + 1)
        if (!strncmp(l, "attr ", 5))
            render_attr(out, f, l);
        else if (!strncmp(l, "noattr ", 7))
            render_noattr(out, f, l);
    fclose(out);
    return buf;
}

/* Prints the first line where want and got differ. */
static void show_diff(const char *want, const char *got) {
    int line = 1;
    while (*want && *want == *got) {
        if (*want == '\n') line++;
        want++;
        got++;
    }
    while (line > 1 && want[-1] != '\n') want--, got--;
    fprintf(stderr, "  line %d of the section:\n  want: %.*s\n  got:  %.*s\n", line,
            (int)strcspn(want, "\n"), want, (int)strcspn(got, "\n"), got);
}

static void check_section(const char *file, const char *which, const char *exp) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    afmt_file *f = NULL;
    unsigned long long id = 0;
    int rc = !strcmp(which, "newest") ? afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f)
             : sscanf(which, "layer %llu", &id) == 1
                 ? afmt_open_layer(MPI_COMM_WORLD, path, id, NULL, &f)
                 : AFMT_EINVAL;
    if (rc != AFMT_OK) {
        failf("cannot open", file, afmt_errmsg(NULL));
        return;
    }
    char *got = render_section(f, exp);
    if (!got || strcmp(got, exp) != 0) {
        char what[300];
        snprintf(what, sizeof what, "section \"%s\" reads otherwise than the manifest says", which);
        failf(what, file, NULL);
        if (got) show_diff(exp, got);
    }
    free(got);
    afmt_close(f);
}

/* The "file NAME layers N ids ..." line as the file reads. */
static void check_file_line(const char *file, const char *want) {
    char path[1400], got[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    afmt_file *f = NULL;
    if (afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f) != AFMT_OK) {
        failf("cannot open", file, afmt_errmsg(NULL));
        return;
    }
    uint64_t nl = 0;
    afmt_layers(f, &nl);
    int o = snprintf(got, sizeof got, "file %s layers %llu ids", file, (unsigned long long)nl);
    for (uint64_t k = 0; k < nl && o < (int)sizeof got - 24; k++) {
        uint64_t id = 0;
        afmt_layer_id(f, k, &id, NULL);
        o += snprintf(got + o, sizeof got - (size_t)o, " %llu", (unsigned long long)id);
    }
    afmt_close(f);
    if (strcmp(got, want) != 0) {
        failf("layers differ from the manifest", file, NULL);
        show_diff(want, got);
    }
}

/* The bytes of DIR/file (malloc'd, *n bytes), or NULL. */
static uint8_t *load(const char *file, size_t *n) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    FILE *fp = fopen(path, "rb");
    uint8_t *img = NULL;
    *n = 0;
    if (fp && fseek(fp, 0, SEEK_END) == 0) {
        long sz = ftell(fp);
        img = sz > 0 ? malloc((size_t)sz) : NULL;
        if (img && (fseek(fp, 0, SEEK_SET) != 0 || (*n = fread(img, 1, (size_t)sz, fp)) == 0)) {
            free(img);
            img = NULL;
        }
    }
    if (fp) fclose(fp);
    return img;
}

/* Counts the file by the format version of its slot. */
static void count_version(const char *file) {
    size_t n = 0;
    uint8_t *img = load(file, &n);
    long s = img ? golden_pick_slot(img, n) : -1;
    uint32_t v = s >= 0 ? golden_u32(img + s + 8) : 0;
    g_nversion[v == 1 ? 1 : v == 2 ? 2 : 3]++;
    free(img);
}

/* The file's layout lines as its bytes say (golden.h). */
static char *render_layout(const char *file) {
    char *buf = NULL;
    size_t len = 0, n = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) return NULL;
    uint8_t *img = load(file, &n);
    if (!img)
        fprintf(out, "layout: cannot read %s\n", file);
    else
        golden_put_layout(out, img, n);
    free(img);
    fclose(out);
    return buf;
}

static void check_layout(const char *file, const char *want) {
    char *got = render_layout(file);
    if (!got || strcmp(got, want) != 0) {
        failf("layout differs from the manifest", file, NULL);
        if (got) show_diff(want, got);
    }
    free(got);
}

static void check_manifest(FILE *fp) {
    char line[8192], file[256] = "", which[64] = "", layout[4096] = "";
    char *exp = NULL;
    size_t cap = 0, len = 0;
    int in_section = 0, in_layout = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (in_layout && (!strncmp(line, "file ", 5) || !strncmp(line, "section ", 8))) {
            if (layout[0]) check_layout(file, layout);
            in_layout = 0;
        }
        if (!strncmp(line, "file ", 5)) {
            if (sscanf(line, "file %255s", file) != 1 || g_nseen == MAXNAMES) break;
            snprintf(g_seen[g_nseen++], sizeof g_seen[0], "%s", file);
            line[strcspn(line, "\n")] = 0;
            check_file_line(file, line);
            count_version(file);
            layout[0] = 0;
            in_layout = 1; /* layout lines may follow, up to the first section */
        } else if (in_layout && (!strncmp(line, "slot ", 5) || !strncmp(line, "footer ", 7))) {
            size_t l = strlen(layout), m = strlen(line);
            if (m < sizeof layout - l) memcpy(layout + l, line, m + 1);
        } else if (!strncmp(line, "section ", 8)) {
            snprintf(which, sizeof which, "%.*s", (int)strcspn(line + 8, "\n"), line + 8);
            in_section = 1;
            len = 0;
        } else if (!strcmp(line, "end\n") && in_section) {
            check_section(file, which, exp ? exp : "");
            in_section = 0;
        } else if (in_section) {
            size_t l = strlen(line);
            if (len + l + 1 > cap) {
                cap = 2 * (len + l + 1);
                char *p = realloc(exp, cap);
                if (!p) break;
                exp = p;
            }
            memcpy(exp + len, line, l + 1);
            len += l;
        } else {
            failf("unexpected manifest line", "MANIFEST", line);
        }
    }
    if (in_layout && layout[0]) check_layout(file, layout);
    if (in_section) failf("section without end", "MANIFEST", which);
    free(exp);
}

/* Every *.afmt of the directory must be in the manifest (none left unchecked). */
static void check_all_listed(void) {
    DIR *d = opendir(g_dir);
    if (!d) {
        failf("cannot list", g_dir, NULL);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".afmt") != 0) continue;
        int found = 0;
        for (int i = 0; i < g_nseen; i++) found |= !strcmp(g_seen[i], e->d_name);
        if (!found) failf("not in the manifest", e->d_name, NULL);
    }
    closedir(d);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 3) {
        if (rank == 0) fprintf(stderr, "usage: golden_check MANIFEST DIR\n");
        MPI_Finalize();
        return 2;
    }
    snprintf(g_dir, sizeof g_dir, "%s", argv[2]);
    FILE *fp = fopen(argv[1], "r");
    if (!fp) {
        failf("cannot open", argv[1], NULL);
    } else {
        check_manifest(fp);
        fclose(fp);
    }
    if (g_nseen == 0) failf("lists no file", argv[1], NULL);
    check_all_listed();
    int any = 0;
    MPI_Allreduce(&g_failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0)
        printf("golden: %d files (format v1: %d, v2: %d, other: %d) on %d rank(s): %s\n", g_nseen,
               g_nversion[1], g_nversion[2], g_nversion[3], size,
               any ? "FAILED" : "all read as the manifest says");
    MPI_Finalize();
    return any ? 1 : 0;
}
