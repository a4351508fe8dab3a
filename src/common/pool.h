/* pool.h - a fixed set of worker threads running jobs from one queue, for the sealing of
 * blocks (alloc.c) and the decompression of the blocks a read needs (fetch.c). The caller
 * owns each job's memory; a thread waiting for a job runs queued jobs itself meanwhile, so
 * a pool of n-1 workers gives n threads of work, and a pool with no workers (n = 1, or
 * no thread could be started) runs every job on the caller's thread at its wait. No MPI
 * inside: the workers call only what their jobs call. Never fails after create; errors
 * of a job are the job's to record. */
#ifndef AFMT_POOL_H
#define AFMT_POOL_H

typedef struct afmt_pool afmt_pool;

typedef struct afmt_pool_job {
    void (*fn)(void *arg);
    void *arg;
    struct afmt_pool_job *next; /* the pool's */
    int state;                  /* the pool's: 0 idle or done, 1 queued, 2 running */
} afmt_pool_job;

/* A pool of nthreads threads of work: nthreads - 1 workers (fewer if the system refuses
 * to start more; none for nthreads <= 1). AFMT_OK or AFMT_ENOMEM. */
int afmt__pool_create(afmt_pool **out, int nthreads);
/* Runs what is queued, stops the workers and frees the pool (NULL: nothing). */
void afmt__pool_free(afmt_pool *p);
/* Threads of work (workers started + the caller). */
int afmt__pool_threads(const afmt_pool *p);
/* Queues job (fn, arg set by the caller; not queued already). */
void afmt__pool_submit(afmt_pool *p, afmt_pool_job *job);
/* Returns once job has run (at once if it was never submitted), running queued jobs on
 * this thread while it waits. */
void afmt__pool_wait(afmt_pool *p, afmt_pool_job *job);
/* on 1: afmt__pool_wait on this thread only waits, leaving the queued jobs to the workers
 * (where the pool has any): a thread that is extra to the pool's n (the background
 * commit's helper, commit_async.c) keeps the work on n threads, so the cores the
 * application computes on stay its own. */
void afmt__pool_wait_only(int on);
/* 1 if job has run or was never submitted (no waiting). */
int afmt__pool_done(afmt_pool *p, afmt_pool_job *job);

/* The CPUs this process may run on (sched_getaffinity; the online CPUs where that is
 * not available), at least 1. */
int afmt__pool_cpus(void);

#endif
