/* pool.c - worker threads and a job queue (pool.h). */
#include "common/pool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/error.h"

#define MAX_WORKERS 255

enum { IDLE = 0, QUEUED = 1, RUNNING = 2 };

struct afmt_pool {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job was queued, or stop */
    pthread_cond_t done; /* a job finished */
    afmt_pool_job *head, *tail;
    int stop;
    int nworkers;
    pthread_t workers[];
};

/* Takes the first queued job (lock held), or NULL. */
static afmt_pool_job *pop(afmt_pool *p) {
    afmt_pool_job *j = p->head;
    if (j) {
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        j->next = NULL;
        j->state = RUNNING;
    }
    return j;
}

/* Runs j outside the lock; returns with the lock held again and j done. */
static void run(afmt_pool *p, afmt_pool_job *j) {
    pthread_mutex_unlock(&p->lock);
    j->fn(j->arg);
    pthread_mutex_lock(&p->lock);
    j->state = IDLE;
    pthread_cond_broadcast(&p->done);
}

static void *worker(void *arg) {
    afmt_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        afmt_pool_job *j = pop(p);
        if (j) {
            run(p, j);
            continue;
        }
        if (p->stop) break;
        pthread_cond_wait(&p->work, &p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int afmt__pool_create(afmt_pool **out, int nthreads) {
    int nw = nthreads > 1 ? nthreads - 1 : 0;
    if (nw > MAX_WORKERS) nw = MAX_WORKERS;
    afmt_pool *p = calloc(1, sizeof *p + sizeof(pthread_t) * (size_t)nw);
    *out = NULL;
    if (!p) return AFMT_ENOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return AFMT_ENOMEM;
    }
    if (pthread_cond_init(&p->work, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return AFMT_ENOMEM;
    }
    if (pthread_cond_init(&p->done, NULL) != 0) {
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return AFMT_ENOMEM;
    }
    /* A worker that cannot be started is just missing: the waiters run its share. The
     * workers block every signal (the mask is inherited), so that the application's
     * signals (afmt_signal_arm, sigwait loops) go to its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    int masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
    for (int i = 0; i < nw; i++) {
        if (pthread_create(&p->workers[p->nworkers], NULL, worker, p) != 0) break;
        p->nworkers++;
    }
    if (masked) pthread_sigmask(SIG_SETMASK, &old, NULL);
    *out = p;
    return AFMT_OK;
}

void afmt__pool_free(afmt_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    afmt_pool_job *j;
    while ((j = pop(p)) != NULL) run(p, j);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int afmt__pool_threads(const afmt_pool *p) {
    return p ? p->nworkers + 1 : 1;
}

void afmt__pool_submit(afmt_pool *p, afmt_pool_job *job) {
    pthread_mutex_lock(&p->lock);
    job->next = NULL;
    job->state = QUEUED;
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

/* This thread only waits (afmt__pool_wait_only). */
static _Thread_local int wait_only;

void afmt__pool_wait_only(int on) {
    wait_only = on;
}

void afmt__pool_wait(afmt_pool *p, afmt_pool_job *job) {
    pthread_mutex_lock(&p->lock);
    while (job->state != IDLE) {
        afmt_pool_job *j = wait_only && p->nworkers ? NULL : pop(p);
        if (j)
            run(p, j);
        else
            pthread_cond_wait(&p->done, &p->lock);
    }
    pthread_mutex_unlock(&p->lock);
}

int afmt__pool_done(afmt_pool *p, afmt_pool_job *job) {
    pthread_mutex_lock(&p->lock);
    int done = job->state == IDLE;
    pthread_mutex_unlock(&p->lock);
    return done;
}

int afmt__pool_cpus(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 4096 ? 4096 : n) : 1;
}
