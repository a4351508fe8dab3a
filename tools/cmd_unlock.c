/* cmd_unlock.c - afmt unlock: shows who holds a file's writer lock ("<FILE>.lock", see
 * src/storage/lock.h) and removes it when its holder is gone. FILE is resolved as the library
 * resolves it (a symbolic link names its target's lock). Only rank 0 looks at the lock;
 * the other ranks have nothing to do (the exit code is rank 0's, cli_agree takes the max).
 * A lock that is not a regular file (a FIFO, a link) is reported, never read nor removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "common/error.h"
#include "storage/lock.h"
#include "storage/storage.h"

/* A refusal: one line on stderr (rank 0) and exit status 1, apart from errors (2). */
static int refuse(const char *path, const char *what) {
    if (cli.rank == 0) {
        char ep[CLI_ESC_SIZE(1024)], ew[CLI_ESC_SIZE(2048)];
        fprintf(stderr, "afmt: %s: %s\n", cli_esc(path, ep, sizeof ep),
                cli_esc(what, ew, sizeof ew));
        fflush(stderr);
    }
    return CLI_DIFF;
}

static int unlock_rank0(const char *path, int force) {
    /* The lock's content is written by whoever created the lock file: printed escaped. */
    char msg[AFMT_ERRMSG_MAX], who[768], line[2048], ep[CLI_ESC_SIZE(1024)];
    char ewho[CLI_ESC_SIZE(sizeof who)];
    char *real = NULL;
    if (afmt__storage_resolve_path(path, 0, &real, msg) != AFMT_OK)
        return cli_error(path, "%s", msg);
    char *lp = afmt__lock_path(real);
    free(real);
    if (!lp) return cli_error(path, "out of memory");
    afmt_lock_holder h;
    int rc = afmt__lock_read(lp, &h, msg);
    if (rc == AFMT_ENOTFOUND) {
        struct stat sb;
        int exists = stat(path, &sb) == 0;
        free(lp);
        if (!exists) return cli_error(path, "no such file (and no lock)");
        printf("%s: not locked\n", cli_esc(path, ep, sizeof ep));
        return CLI_OK;
    }
    if (rc != AFMT_OK) {
        free(lp);
        return cli_error(path, "%s", msg);
    }
    afmt__lock_describe(&h, who, sizeof who);
    cli_esc(who, ewho, sizeof ewho);
    int stale = afmt__lock_is_stale(&h);
    if (!stale && !force) {
        free(lp);
        /* One step: what was found, why it stays, and the exact command. Only this host's
         * processes can be checked from here: another host's lock needs --force. */
        char gone[1024];
        if (h.parsed && afmt__lock_is_local(&h))
            snprintf(line, sizeof line,
                     "locked for writing by %s; not removed: process %ld is alive on this host "
                     "(once it has ended, the next writer or afmt unlock %s removes the lock)",
                     who, h.pid, path);
        else {
            if (!h.parsed)
                snprintf(gone, sizeof gone, "its holder cannot be checked; if no job writes it");
            else if (strcmp(h.job, "-") != 0)
                snprintf(gone, sizeof gone,
                         "processes of host %s cannot be checked from here; if job %s has ended "
                         "(squeue -j %s shows it no more)",
                         h.host, h.job, h.job);
            else
                snprintf(gone, sizeof gone,
                         "processes of host %s cannot be checked from here; if process %ld there "
                         "has ended",
                         h.host, h.pid);
            snprintf(line, sizeof line,
                     "locked for writing by %s; not removed: %s, run: afmt unlock %s --force", who,
                     gone, path);
        }
        return refuse(path, line);
    }
    /* Remove it only if it still is the lock just judged: a writer may have taken a fresh
     * one since (afmt__lock_break compares the content). */
    rc = afmt__lock_break(lp, &h, msg);
    free(lp);
    if (rc == AFMT_ENOTFOUND) {
        printf("%s: not locked (the lock of %s was removed meanwhile)\n",
               cli_esc(path, ep, sizeof ep), ewho);
        return CLI_OK;
    }
    if (rc == AFMT_EBUSY)
        return refuse(path, "the lock changed while it was checked (another writer took it); "
                            "not removed: run afmt unlock again to see the new holder");
    if (rc != AFMT_OK) return cli_error(path, "%s", msg);
    printf("%s: removed the lock of %s (%s)\n", cli_esc(path, ep, sizeof ep), ewho,
           stale ? "stale: the process is gone on this host" : "--force");
    return CLI_OK;
}

int cmd_unlock(int argc, char **argv) {
    static const cli_optdef defs[] = {{"force", 0, 0}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 1) return cli_usage_error("unlock", "expected one FILE");
    int force = a.val[cli_opt(defs, "force")] != NULL;
    rc = cli.rank == 0 ? unlock_rank0(a.pos[0], force) : CLI_OK;
    fflush(stdout);
    return rc;
}
