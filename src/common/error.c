/* error.c - error texts and detailed messages. */
#include "common/error.h"

#include <stdio.h>
#include <string.h>

/* One message buffer per thread: the "last failure on this thread" of afmt_errmsg(NULL).
 * Thread-local, so no locking and no state shared between threads. */
static _Thread_local char thread_msg[AFMT_ERRMSG_MAX];

char *afmt__thread_errbuf(void) {
    return thread_msg;
}

int afmt__vfail(char *msgbuf, int code, const char *fmt, va_list ap) {
    char tmp[AFMT_ERRMSG_MAX];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    if (msgbuf && msgbuf != thread_msg) memcpy(msgbuf, tmp, sizeof tmp);
    memcpy(thread_msg, tmp, sizeof tmp);
    return code;
}

int afmt__fail(char *msgbuf, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    afmt__vfail(msgbuf, code, fmt, ap);
    va_end(ap);
    return code;
}

/* Name and text of each code, indexed by -code (the codes are 0, -1, ..., AFMT_E_LAST). */
static const struct {
    const char *name, *text;
} codes[] = {
    {"AFMT_OK", "success"},
    {"AFMT_EINVAL", "invalid argument"},
    {"AFMT_ENOTFOUND", "not found"},
    {"AFMT_EEXIST", "already exists"},
    {"AFMT_ETYPE", "type mismatch"},
    {"AFMT_ERANGE", "value out of range"},
    {"AFMT_EIO", "I/O error"},
    {"AFMT_ECORRUPT", "file is damaged"},
    {"AFMT_EVERSION", "unsupported format version"},
    {"AFMT_ENOMEM", "out of memory"},
    {"AFMT_ECODEC", "codec missing or failed"},
    {"AFMT_EMPI", "MPI error"},
    {"AFMT_EREADONLY", "file is read-only"},
    {"AFMT_ESTATE", "invalid state"},
    {"AFMT_EBUSY", "file is locked by another writer"},
};
_Static_assert(sizeof codes / sizeof codes[0] == 1 - AFMT_E_LAST,
               "one entry per error code, AFMT_OK to AFMT_E_LAST");

static int code_known(int code) {
    return code <= AFMT_OK && code >= AFMT_E_LAST;
}

const char *afmt_strerror(int code) {
    return code_known(code) ? codes[-code].text : "unknown error code";
}

const char *afmt_err_name(int code) {
    return code_known(code) ? codes[-code].name : "unknown";
}

const char *afmt__errno_text(int e, char *buf, size_t n) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, n); /* GNU: may return a static string instead of buf */
#else
    if (strerror_r(e, buf, n) != 0) snprintf(buf, n, "errno %d", e);
    return buf;
#endif
}

const char *afmt_version(void) {
    return AFMT_VERSION_STRING;
}

unsigned afmt_version_number(void) {
    return AFMT_VERSION_NUMBER;
}
