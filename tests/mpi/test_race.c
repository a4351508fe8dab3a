/* Readers while a writer commits (issue 11, defect 9): rank 0 commits in a loop on its own
 * communicator, alternating a commit of a new state and a rollback to the first layer, so
 * that the file keeps growing and both kinds of slot write happen; every other rank opens
 * the file (its own communicator, no lock) and reads it, again and again. Every open must
 * succeed (a reader that took the file size before the slots saw about one open in 10^4
 * fail with AFMT_ECORRUPT "truncated?"), and every read must be one whole committed state:
 * all elements equal to the value of the state, 1 for the first layer alone, the commit's
 * number k >= 2 for a chain of two layers. Runs 3 s per reader on 2-4 ranks (np 1: a
 * note), or AFMT_RACE_SECONDS; the counts are printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h"
#include "model.h"
#include "testutil.h"

enum { N = 512, MAX_OPENS = 50000 };

static void writer(const char *path, MPI_Request *stop, uint64_t *commits) {
    afmt_file *f;
    uint64_t first = 0, st = 0, ct = N;
    int64_t *v = malloc(sizeof *v * N);
    assert_non_null(v);
    TU_OK(NULL, afmt_open(MPI_COMM_SELF, path, AFMT_RDWR, NULL, &f));
    TU_OK(f, afmt_layer_id(f, 0, &first, NULL));
    for (int64_t k = 2;; k++) {
        int done_flag = 0;
        MPI_Test(stop, &done_flag, MPI_STATUS_IGNORE);
        if (done_flag) break;
        for (int i = 0; i < N; i++) v[i] = k;
        EXPECT_OK(f, afmt_write(f, "v", &st, &ct, v));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_rollback(f, first));
        (*commits)++;
        if (g_nfail) { /* do not spin on a broken writer: let the readers finish */
            MPI_Wait(stop, MPI_STATUS_IGNORE);
            break;
        }
    }
    EXPECT_OK(f, afmt_close(f));
    free(v);
}

typedef struct {
    uint64_t opens, failed, wrong, states;
    int64_t last;
} reader_counts;

static void reader(const char *path, const afmt_opts *o, double seconds, reader_counts *c) {
    int64_t *v = malloc(sizeof *v * N);
    assert_non_null(v);
    uint64_t st = 0, ct = N;
    double t0 = MPI_Wtime();
    while (c->opens < MAX_OPENS && MPI_Wtime() - t0 < seconds) {
        afmt_file *f = NULL;
        c->opens++;
        int rc = afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, o, &f);
        if (rc != AFMT_OK) {
            if (c->failed++ < 3)
                rec(__LINE__, "open %llu: %d %s", (unsigned long long)c->opens, rc,
                    afmt_errmsg(NULL));
            continue;
        }
        uint64_t nl = 0;
        rc = afmt_layers(f, &nl);
        if (rc == AFMT_OK) rc = afmt_read(f, "v", &st, &ct, v);
        int ok = rc == AFMT_OK && (nl == 1 || nl == 2);
        for (int i = 1; ok && i < N; i++) ok = v[i] == v[0];
        if (ok) ok = nl == 1 ? v[0] == 1 : v[0] >= 2;
        if (!ok) {
            if (c->wrong++ < 3)
                rec(__LINE__, "open %llu: rc %d, %llu layers, v[0] = %lld: not a committed state",
                    (unsigned long long)c->opens, rc, (unsigned long long)nl, (long long)v[0]);
        } else if (v[0] != c->last) {
            c->states++;
            c->last = v[0];
        }
        EXPECT_OK(f, afmt_close(f));
    }
    free(v);
}

static void test_readers_during_commits(void **state) {
    (void)state;
    if (tu_size() < 2) {
        if (tu_rank() == 0) printf("race: needs 2 or more ranks (a writer and readers)\n");
        return;
    }
    const char *env = getenv("AFMT_RACE_SECONDS");
    double seconds = env ? atof(env) : 3.0;
    const char *path = tu_path(NULL, "race");
    if (tu_rank() == 0) {
        afmt_file *f;
        const uint64_t s[] = {N}, c[] = {128};
        int64_t one[N];
        uint64_t st = 0, ct = N;
        for (int i = 0; i < N; i++) one[i] = 1;
        TU_OK(NULL, afmt_create(MPI_COMM_SELF, path, AFMT_TRUNC, NULL, &f));
        TU_OK(f, afmt_define(f, "v", AFMT_INT64, 1, s, c, NULL, NULL));
        TU_OK(f, afmt_write(f, "v", &st, &ct, one));
        TU_OK(f, afmt_commit(f));
        TU_OK(f, afmt_close(f));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    /* The readers end the run: the writer's barrier completes once they all entered. */
    MPI_Request stop;
    uint64_t commits = 0;
    reader_counts rc;
    memset(&rc, 0, sizeof rc);
    if (tu_rank() == 0) {
        MPI_Ibarrier(MPI_COMM_WORLD, &stop);
        writer(path, &stop, &commits);
    } else {
        /* Readers on the POSIX backend (cheap opens: more of them), the writer on MPI-IO. */
        afmt_opts *o;
        TU_OK(NULL, afmt_opts_create(&o));
        TU_OK(NULL, afmt__opts_set_backend(o, "posix"));
        reader(path, o, seconds, &rc);
        afmt_opts_free(o);
        MPI_Ibarrier(MPI_COMM_WORLD, &stop);
        MPI_Wait(&stop, MPI_STATUS_IGNORE);
    }
    uint64_t mine[4] = {rc.opens, rc.failed, rc.wrong, rc.states}, all[4];
    MPI_Allreduce(mine, all, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Bcast(&commits, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (tu_rank() == 0)
        printf("race: %d reader(s): %llu opens, %llu failed, %llu wrong reads, %llu state "
               "changes seen; the writer made %llu commits and rollbacks\n",
               tu_size() - 1, (unsigned long long)all[0], (unsigned long long)all[1],
               (unsigned long long)all[2], (unsigned long long)all[3], (unsigned long long)commits);
    EXPECT(all[1] == 0 && all[2] == 0);
    /* The run must have raced: opens, commits and states that changed under the readers. */
    EXPECT(all[0] >= 100);
    EXPECT(commits >= 10);
    EXPECT(all[3] >= 3);
    tu_remove(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_readers_during_commits)};
    return tu_main(argc, argv, "race", tests, sizeof tests / sizeof tests[0]);
}
