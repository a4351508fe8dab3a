/* error.c - error texts and detailed messages. */
#include "error.h"

#include <stdio.h>
#include <string.h>

/* One message buffer per thread: the "last failure on this thread" of afmt_errmsg(NULL).
 * Thread-local, so no locking and no state shared between threads. */
static _Thread_local char thread_msg[AFMT_ERRMSG_MAX];

char *afmt_thread_errbuf(void) {
    return thread_msg;
}

int afmt_vfail(char *msgbuf, int code, const char *fmt, va_list ap) {
    char tmp[AFMT_ERRMSG_MAX];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    if (msgbuf && msgbuf != thread_msg) memcpy(msgbuf, tmp, sizeof tmp);
    memcpy(thread_msg, tmp, sizeof tmp);
    return code;
}

int afmt_fail(char *msgbuf, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    afmt_vfail(msgbuf, code, fmt, ap);
    va_end(ap);
    return code;
}

const char *afmt_strerror(int code) {
    switch (code) {
    case AFMT_OK:
        return "success";
    case AFMT_EINVAL:
        return "invalid argument";
    case AFMT_ENOTFOUND:
        return "not found";
    case AFMT_EEXIST:
        return "already exists";
    case AFMT_ETYPE:
        return "type mismatch";
    case AFMT_ERANGE:
        return "value out of range";
    case AFMT_EIO:
        return "I/O error";
    case AFMT_ECORRUPT:
        return "file is damaged";
    case AFMT_EVERSION:
        return "unsupported format version";
    case AFMT_ENOMEM:
        return "out of memory";
    case AFMT_ECODEC:
        return "codec missing or failed";
    case AFMT_EMPI:
        return "MPI error";
    case AFMT_EREADONLY:
        return "file is read-only";
    case AFMT_ESTATE:
        return "invalid state";
    case AFMT_EBUSY:
        return "file is locked by another writer";
    default:
        return "unknown error code";
    }
}

const char *afmt_version(void) {
#define AFMT_STR2(x) #x
#define AFMT_STR(x)  AFMT_STR2(x)
    return AFMT_STR(AFMT_VERSION_MAJOR) "." AFMT_STR(AFMT_VERSION_MINOR) "." AFMT_STR(
        AFMT_VERSION_PATCH);
}
