/* oom_wrap.c - the malloc, calloc, realloc and strdup wrappers of oom_wrap.h. */
#include "oom_wrap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static int armed, fail_after;
static unsigned long seen, fail_at, injected;

void oom_arm(unsigned long nth, int after) {
    seen = 0;
    fail_at = nth;
    fail_after = after;
    injected = 0;
    armed = 1;
}

void oom_disarm(void) {
    armed = 0;
}

unsigned long oom_injected(void) {
    return injected;
}

static int fail_this(void) {
    if (!armed) return 0;
    ++seen;
    if (seen != fail_at && !(fail_after && seen > fail_at)) return 0;
    injected++;
    errno = ENOMEM;
    return 1;
}

void *__wrap_malloc(size_t n) {
    return fail_this() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
    return fail_this() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
    return fail_this() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = __wrap_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
