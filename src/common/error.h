/* error.h - setting detailed error messages on a handle or on the calling thread. */
#ifndef AFMT_ERROR_H
#define AFMT_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#include "afmt.h"

#define AFMT_ERRMSG_MAX 1024

/* The thread's message buffer: used for failures without a handle (create, open, opts,
 * codec registration) and, as a copy, for every failure on a handle too. */
char *afmt__thread_errbuf(void);

/* Formats a message into msgbuf (AFMT_ERRMSG_MAX bytes, NULL = the thread's buffer),
 * copies it into the thread buffer, and returns code, so that one can write
 *   return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_write(\"%s\"): ...", name, ...);  */
int afmt__fail(char *msgbuf, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int afmt__vfail(char *msgbuf, int code, const char *fmt, va_list ap);

/* The text of errno value e (strerror_r, whichever variant the C library declares), in
 * buf (n bytes) or in a static string; thread-safe, unlike strerror. */
const char *afmt__errno_text(int e, char *buf, size_t n);

#endif
