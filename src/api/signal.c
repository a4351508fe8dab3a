/* signal.c - checkpoint on a signal: a handler that only sets a flag (async-signal-safe),
 * and a collective query, so that every rank decides to checkpoint together even when
 * the signal (e.g. Slurm's warning before the time limit) reached only some ranks. */
#include <signal.h>
#include <string.h>

#include "common/error.h"

/* The flag a signal handler may touch: sig_atomic_t, set only, never read-modify-write.
 * Process-wide by nature (signals are). */
static volatile sig_atomic_t pending_signal = 0;

static void on_signal(int signum) {
    pending_signal = signum;
}

int afmt_signal_arm(int signum) {
    if (signum <= 0 || signum == SIGKILL || signum == SIGSTOP)
        return afmt__fail(NULL, AFMT_EINVAL, "afmt_signal_arm: signal %d cannot be caught", signum);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* I/O in progress goes on; the flag is polled */
    pending_signal = 0;
    if (sigaction(signum, &sa, NULL) != 0)
        return afmt__fail(NULL, AFMT_EINVAL, "afmt_signal_arm: sigaction(%d) failed", signum);
    return AFMT_OK;
}

int afmt_signal_pending(MPI_Comm comm, int *pending) {
    if (!pending) return afmt__fail(NULL, AFMT_EINVAL, "afmt_signal_pending: pending is NULL");
    if (comm == MPI_COMM_NULL)
        return afmt__fail(NULL, AFMT_EINVAL, "afmt_signal_pending: comm is MPI_COMM_NULL");
    int mine = pending_signal != 0, any = 0;
    if (MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS)
        return afmt__fail(NULL, AFMT_EMPI, "afmt_signal_pending: MPI_Allreduce failed");
    *pending = any;
    return AFMT_OK;
}

int afmt_signal_clear(void) {
    pending_signal = 0;
    return AFMT_OK;
}
