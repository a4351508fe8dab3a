/* cmd_edit.c - the commands that change a file: afmt compact and afmt rollback. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

typedef unsigned long long ull;

static uint64_t size_of(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

int cmd_compact(int argc, char **argv) {
    static const cli_optdef defs[] = {{"keep", 0, 1}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 1) return cli_usage_error("compact", "expected one FILE");
    uint64_t keep = 0;
    if (a.val[0] && cli_parse_u64(a.val[0], &keep) != 0)
        return cli_usage_error("compact", "--keep needs a layer count (a number >= 0), not '%s'",
                               a.val[0]);
    const char *path = a.pos[0];
    afmt_file *f;
    if ((rc = cli_open(path, AFMT_RDWR, 0, &f)) != CLI_OK) return rc;
    uint64_t before = size_of(path), lb = 0, la = 0;
    afmt_layers(f, &lb);
    MPI_Barrier(cli.comm);
    if (afmt_compact_keep(f, keep) != AFMT_OK) {
        rc = cli_lib_error(path, f);
        cli_close(path, f);
        return rc;
    }
    afmt_layers(f, &la);
    if ((rc = cli_close(path, f)) != CLI_OK) return rc;
    uint64_t after = size_of(path);
    if (cli.rank == 0) {
        char hb[32], ha[32], ep[CLI_ESC_SIZE(4096)];
        cli_esc(path, ep, sizeof ep);
        printf("%s: %llu -> %llu bytes (%s -> %s), %llu layer%s -> %llu, %llu bytes reclaimed\n",
               ep, (ull)before, (ull)after, cli_human(before, hb, sizeof hb),
               cli_human(after, ha, sizeof ha), (ull)lb, lb == 1 ? "" : "s", (ull)la,
               (ull)(before > after ? before - after : 0));
    }
    return CLI_OK;
}

int cmd_rollback(int argc, char **argv) {
    static const cli_optdef defs[] = {{"to-layer", 0, 1}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 1) return cli_usage_error("rollback", "expected one FILE");
    const char *ks = a.val[0];
    uint64_t k = 0;
    if (!ks) return cli_usage_error("rollback", "--to-layer K is required");
    if (cli_parse_u64(ks, &k) != 0 || k == 0)
        return cli_usage_error("rollback", "--to-layer needs a layer id (a number >= 1), not '%s'",
                               ks);
    const char *path = a.pos[0];
    afmt_file *f;
    if ((rc = cli_open(path, AFMT_RDWR, 0, &f)) != CLI_OK) return rc;
    uint64_t nl = 0, newest = 0;
    afmt_layers(f, &nl);
    if (nl) afmt_layer_id(f, nl - 1, &newest, NULL);
    int lrc = afmt_rollback(f, k);
    if (lrc != AFMT_OK) {
        rc = lrc == AFMT_ERANGE
                 ? cli_error(path, "no layer %llu in the file's chain (see afmt info %s)", (ull)k,
                             path)
                 : cli_lib_error(path, f);
        cli_close(path, f);
        return rc;
    }
    uint64_t nl2 = 0;
    afmt_layers(f, &nl2);
    if ((rc = cli_close(path, f)) != CLI_OK) return rc;
    if (cli.rank == 0) {
        char ep[CLI_ESC_SIZE(4096)];
        cli_esc(path, ep, sizeof ep);
        if (newest == k)
            printf("%s: layer %llu is already the newest; nothing changed\n", ep, (ull)k);
        else
            printf("%s: rolled back to layer %llu (%llu layer%s, layers after %llu up to %llu are "
                   "dead space until afmt compact)\n",
                   ep, (ull)k, (ull)nl2, nl2 == 1 ? "" : "s", (ull)k, (ull)newest);
    }
    return CLI_OK;
}
