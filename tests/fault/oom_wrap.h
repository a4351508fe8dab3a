/* oom_wrap.h - allocation failure injection for the tests linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
 * Every allocation that afmt's own code (the static library) and the test make goes through
 * the wrappers of oom_wrap.c; Open MPI and the codec libraries are shared objects and
 * allocate outside them. While armed, the wrappers count allocations and make the nth fail
 * (errno ENOMEM). One process's state: each MPI rank arms its own. */
#ifndef AFMT_TEST_OOM_WRAP_H
#define AFMT_TEST_OOM_WRAP_H

/* Counts allocations from now on and fails the nth (1 = the next one); with fail_after,
 * also every allocation after it. */
void oom_arm(unsigned long nth, int fail_after);
/* Stops failing (and counting). */
void oom_disarm(void);
/* Failures injected since the last oom_arm. */
unsigned long oom_injected(void);

#endif
