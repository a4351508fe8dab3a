/* crash_check.c - verifies a file of the crash test after crash_writer was killed.
 *
 *   crash_check FILE MIN_STEP [final]
 *
 * MIN_STEP is the last step the writer's marker recorded (0: none). The file must open
 * read-only and hold step S with MIN_STEP <= S <= MIN_STEP + 1 (a commit may be durable
 * just before its marker line was written), exactly S layers, and every element of every
 * array must equal the content of step S (crash_content.h). The file may be longer than
 * the committed end (a tail of a killed commit), never shorter. With "final" (the writer
 * ran to its end): S == MIN_STEP and the file ends exactly at the committed end.
 * With CRASH_RETAIN=K in the environment (the writer's retention, afmt_opts_set_retention)
 * the file holds min(S, K + 1) layers, or K + 2 when the kill came after the commit of
 * step S and before its compaction's rename.
 * With MIN_STEP 0 and no commit recorded, a file that does not open (the kill came during
 * afmt_create) or has no layer is accepted as step 0.
 *
 * Runs on any number of ranks (each checks its share of the rows). Rank 0 prints
 * "crash_check: OK S=<S> layers=<n> size=<bytes> eof=<bytes> tail=<bytes>" or
 * "crash_check: FAIL ..." lines; the exit status is 0 only if every rank found it right. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "afmt.h"
#include "common/error.h"
#include "crash_content.h"
#include "format/superblock.h"

static int g_rank, g_bad;

static void bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "crash_check: FAIL rank %d: ", g_rank);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    g_bad++;
}

static int finish(int code_if_ok) {
    int any = 0;
    MPI_Allreduce(&g_bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : code_if_ok;
}

/* Rank 0: the committed end from the superblock, read with plain POSIX I/O. */
static int read_eof(const char *path, uint64_t *eof, uint64_t *nlayers) {
    uint8_t region[AFMT_SUPER_REGION];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t got = pread(fd, region, sizeof region, 0);
    close(fd);
    if (got <= 0) return -1;
    afmt_super s;
    int which = 0;
    char msg[AFMT_ERRMSG_MAX];
    if (afmt__super_pick(region, (size_t)got, &s, &which, msg) != AFMT_OK) return -1;
    *eof = s.eof;
    *nlayers = s.nlayers;
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "final"))) {
        if (g_rank == 0) fprintf(stderr, "usage: crash_check FILE MIN_STEP [final]\n");
        MPI_Finalize();
        return 2;
    }
    const char *path = argv[1];
    uint64_t min_step = strtoull(argv[2], NULL, 10);
    int final = argc == 4;

    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f);
    if (rc != AFMT_OK) {
        if (min_step == 0 && !final) {
            if (g_rank == 0)
                printf("crash_check: OK S=0 (no commit recorded; the file does not open: %s)\n",
                       afmt_errmsg(NULL));
            return finish(0);
        }
        bad("afmt_open(%s) -> %d (%s): %s", path, rc, afmt_strerror(rc), afmt_errmsg(NULL));
        return finish(1);
    }
    uint64_t layers = 0, S = 0;
    if ((rc = afmt_layers(f, &layers)) != AFMT_OK) bad("afmt_layers -> %d", rc);
    if (layers > 0) {
        int64_t sv = -1;
        uint64_t n = 1;
        rc = afmt_get_attr(f, NULL, "step", AFMT_INT64, &n, &sv);
        if (rc != AFMT_OK || n != 1 || sv < 1)
            bad("attribute step: rc %d (%s), n %llu, value %lld: %s", rc, afmt_strerror(rc),
                (unsigned long long)n, (long long)sv, afmt_errmsg(f));
        else
            S = (uint64_t)sv;
    }
    if (S < min_step || S > min_step + 1 || (final && S != min_step))
        bad("the file holds step %llu, the marker recorded step %llu%s", (unsigned long long)S,
            (unsigned long long)min_step, final ? " (final: must be equal)" : " (allowed: +0/+1)");
    const char *env_ret = getenv("CRASH_RETAIN");
    uint64_t keep = env_ret ? strtoull(env_ret, NULL, 10) : 0;
    uint64_t nl_lo = keep && S > keep + 1 ? keep + 1 : S,
             nl_hi = keep && S > keep + 2 ? keep + 2 : S;
    if (layers < nl_lo || layers > nl_hi)
        bad("%llu layers for step %llu (one commit per step%s)", (unsigned long long)layers,
            (unsigned long long)S, keep ? ", then retention" : "");

    if (g_bad == 0 && S > 0) {
        afmt_info in;
        int count = 0;
        afmt_count(f, &count);
        if (count != 2) bad("%d arrays, want 2", count);
        if (afmt_inquire(f, "field", &in) != AFMT_OK || in.dtype != AFMT_FLOAT64 || in.ndim != 3 ||
            in.shape[0] != F_D0 || in.shape[1] != F_D1 || in.shape[2] != F_D2 ||
            in.chunk[0] != F_C0 || strcmp(in.dims[0], "z"))
            bad("descriptor of \"field\" differs: %s", afmt_errmsg(f));
        if (afmt_inquire(f, "part", &in) != AFMT_OK || in.dtype != AFMT_INT32 || in.ndim != 2 ||
            in.shape[0] != P_D0 || in.shape[1] != P_D1)
            bad("descriptor of \"part\" differs: %s", afmt_errmsg(f));
    }
    if (g_bad == 0 && S > 0) {
        /* "field": this rank's rows, one read. */
        uint64_t lo, hi;
        crash_split(F_D0, g_rank, nranks, &lo, &hi);
        if (hi > lo) {
            uint64_t n = (hi - lo) * F_D1 * F_D2, first = 0, ndiff = 0;
            double *got = malloc(sizeof(double) * (size_t)n);
            uint64_t st[3] = {lo, 0, 0}, ct[3] = {hi - lo, F_D1, F_D2};
            rc = got ? afmt_read(f, "field", st, ct, got) : AFMT_ENOMEM;
            if (rc != AFMT_OK) bad("afmt_read(field) -> %d: %s", rc, afmt_errmsg(f));
            for (uint64_t k = 0; rc == AFMT_OK && k < n; k++) {
                uint64_t i = lo * F_D1 * F_D2 + k;
                double want = field_val(i, S);
                if (memcmp(&got[k], &want, sizeof want) != 0 && ndiff++ == 0) first = i;
            }
            if (ndiff) {
                uint64_t k = first - lo * F_D1 * F_D2, s2;
                /* Which step does the wrong value belong to? */
                for (s2 = 0; s2 <= S + 2; s2++)
                    if (field_val(first, s2) == got[k]) break;
                bad("field: %llu of %llu elements differ from step %llu; first at index %llu: "
                    "got %.17g (%s %llu), want %.17g",
                    (unsigned long long)ndiff, (unsigned long long)n, (unsigned long long)S,
                    (unsigned long long)first, got[k],
                    s2 <= S + 2 ? "the value of step" : "no step <=",
                    (unsigned long long)(s2 <= S + 2 ? s2 : S + 2), field_val(first, S));
            }
            free(got);
        }
        /* "part": the model after steps 1..S, this rank's rows. */
        int32_t *model = malloc(sizeof(int32_t) * (size_t)P_N);
        crash_split(P_D0, g_rank, nranks, &lo, &hi);
        if (model && hi > lo) {
            part_model(model, S);
            uint64_t n = (hi - lo) * P_D1, ndiff = 0, first = 0;
            int32_t *got = malloc(sizeof(int32_t) * (size_t)n);
            uint64_t st[2] = {lo, 0}, ct[2] = {hi - lo, P_D1};
            rc = got ? afmt_read(f, "part", st, ct, got) : AFMT_ENOMEM;
            if (rc != AFMT_OK) bad("afmt_read(part) -> %d: %s", rc, afmt_errmsg(f));
            for (uint64_t k = 0; rc == AFMT_OK && k < n; k++)
                if (got[k] != model[lo * P_D1 + k] && ndiff++ == 0) first = k;
            if (ndiff)
                bad("part: %llu of %llu elements differ from step %llu; first at index %llu: got "
                    "%d, want %d",
                    (unsigned long long)ndiff, (unsigned long long)n, (unsigned long long)S,
                    (unsigned long long)(lo * P_D1 + first), got[first], model[lo * P_D1 + first]);
            free(got);
        } else if (!model) {
            bad("out of memory");
        }
        free(model);
    }
    if ((rc = afmt_close(f)) != AFMT_OK) bad("afmt_close -> %d", rc);

    /* The file's size against the committed end. */
    if (g_rank == 0) {
        struct stat sb;
        uint64_t eof = 0, nl = 0;
        if (stat(path, &sb) != 0 || read_eof(path, &eof, &nl) != 0) {
            bad("cannot stat %s or read its superblock", path);
        } else {
            uint64_t size = (uint64_t)sb.st_size;
            if (size < eof)
                bad("the file has %llu bytes, less than the committed end %llu",
                    (unsigned long long)size, (unsigned long long)eof);
            if (final && size != eof)
                bad("final: the file has %llu bytes, the committed end is %llu (a tail survived "
                    "the commits)",
                    (unsigned long long)size, (unsigned long long)eof);
            if (nl != layers)
                bad("the superblock counts %llu layers, the handle %llu", (unsigned long long)nl,
                    (unsigned long long)layers);
            if (!g_bad)
                printf("crash_check: OK S=%llu layers=%llu size=%llu eof=%llu tail=%llu ranks=%d\n",
                       (unsigned long long)S, (unsigned long long)layers, (unsigned long long)size,
                       (unsigned long long)eof, (unsigned long long)(size - eof), nranks);
        }
        fflush(stdout);
    }
    return finish(0);
}
