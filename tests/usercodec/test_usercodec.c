/* A user codec (id 300) round trip, and a process without it: the file still opens, and
 * reading the blocks it compressed fails with AFMT_ECODEC naming the id, while arrays in
 * other blocks read fine. Run as "write PATH" then "read PATH" / "read-registered PATH". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"

/* Run-length of bytes: compresses the constant data below well, and is easy to check. */
static size_t rle_bound(size_t n) {
    return 2 * n + 2;
}

static int rle_compress(const void *src, size_t n, void *dst, size_t cap, size_t *out, int level) {
    (void)level;
    const unsigned char *s = src;
    unsigned char *d = dst;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t r = 1;
        while (i + r < n && r < 255 && s[i + r] == s[i]) r++;
        if (o + 2 > cap) return 1;
        d[o++] = (unsigned char)r;
        d[o++] = s[i];
        i += r;
    }
    *out = o;
    return 0;
}

static int rle_decompress(const void *src, size_t n, void *dst, size_t len) {
    const unsigned char *s = src;
    unsigned char *d = dst;
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (o + s[i] > len) return 1;
        memset(d + o, s[i + 1], s[i]);
        o += s[i];
    }
    return o == len ? 0 : 1;
}

static int reg(void) {
    afmt_codec_desc c = {AFMT_CODEC_DESC_VERSION, 300, "rle-test", rle_bound, rle_compress,
                         rle_decompress};
    return afmt_codec_register(&c);
}

#define N 100000

static int check(int rc, int want, const char *what) {
    if (rc != want) {
        fprintf(stderr, "%s: got %d (%s), want %d: %s\n", what, rc, afmt_strerror(rc), want,
                afmt_errmsg(NULL));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc != 3) return 2;
    const char *mode = argv[1], *path = argv[2];
    int bad = 0;
    int32_t *v = malloc(sizeof(int32_t) * N), *back = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) v[i] = i / 1000;
    uint64_t start = 0, count = N, shape = N;
    afmt_file *f = NULL;
    if (!strcmp(mode, "write")) {
        bad |= check(reg(), AFMT_OK, "register");
        afmt_codec_desc dup = {AFMT_CODEC_DESC_VERSION, 300, "again", rle_bound, rle_compress,
                               rle_decompress};
        bad |= check(afmt_codec_register(&dup), AFMT_EEXIST, "register twice");
        afmt_opts *o;
        afmt_opts_create(&o);
        bad |= check(afmt_opts_set_codec(o, (afmt_codec)300, 0), AFMT_OK, "set codec 300");
        bad |= check(afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f), AFMT_OK, "create");
        bad |= check(afmt_define(f, "rle", AFMT_INT32, 1, &shape, NULL, NULL, NULL), AFMT_OK,
                     "define");
        int rank;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        if (rank == 0) bad |= check(afmt_write(f, "rle", &start, &count, v), AFMT_OK, "write");
        bad |= check(afmt_commit(f), AFMT_OK, "commit");
        bad |= check(afmt_read(f, "rle", &start, &count, back), AFMT_OK, "read back");
        bad |= memcmp(v, back, sizeof(int32_t) * N) != 0;
        bad |= check(afmt_close(f), AFMT_OK, "close");
        /* A second layer with LZ4 that a process without codec 300 can read. */
        afmt_opts_set_codec(o, AFMT_CODEC_LZ4, 0);
        bad |= check(afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, o, &f), AFMT_OK, "reopen");
        bad |= check(afmt_define(f, "lz4", AFMT_INT32, 1, &shape, NULL, NULL, NULL), AFMT_OK,
                     "define");
        if (rank == 0) bad |= check(afmt_write(f, "lz4", &start, &count, v), AFMT_OK, "write");
        bad |= check(afmt_close(f), AFMT_OK, "close");
        afmt_opts_free(o);
    } else {
        int registered = !strcmp(mode, "read-registered");
        if (registered) reg();
        bad |= check(afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f), AFMT_OK, "open");
        int rc = afmt_read(f, "rle", &start, &count, back);
        if (registered) {
            bad |= check(rc, AFMT_OK, "read with codec");
            bad |= memcmp(v, back, sizeof(int32_t) * N) != 0;
        } else {
            bad |= check(rc, AFMT_ECODEC, "read without codec");
            if (!strstr(afmt_errmsg(f), "300")) {
                fprintf(stderr, "message does not name the codec id: %s\n", afmt_errmsg(f));
                bad = 1;
            }
        }
        memset(back, 0, sizeof(int32_t) * N);
        bad |= check(afmt_read(f, "lz4", &start, &count, back), AFMT_OK, "read lz4 array");
        bad |= memcmp(v, back, sizeof(int32_t) * N) != 0;
        bad |= check(afmt_close(f), AFMT_OK, "close");
    }
    free(v);
    free(back);
    int any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    if (any) fprintf(stderr, "usercodec %s: FAILED\n", mode);
    return any ? 1 : 0;
}
