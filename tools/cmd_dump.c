/* cmd_dump.c - afmt dump: the values of an array or a hyperslab as text, CSV or raw
 * bytes, read in slabs (bounded memory), optionally as of an older layer. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef unsigned long long ull;

enum { FMT_TEXT, FMT_CSV, FMT_RAW };

/* Writes the elements of one slab; *lin is the running C-order index in the selection. */
static void emit(FILE *o, int fmt, const afmt_info *info, const uint64_t *start,
                 const uint64_t *count, const void *buf, uint64_t n, uint64_t *lin) {
    int nd = info->ndim;
    if (fmt == FMT_RAW) {
        fwrite(buf, cli_dtype_size(info->dtype), (size_t)n, o);
        *lin += n;
        return;
    }
    uint64_t inner = nd ? count[nd - 1] : 1;
    char v[64];
    for (uint64_t i = 0; i < n; i++, (*lin)++) {
        cli_format_value(v, sizeof v, buf, info->dtype, i);
        if (*lin % inner == 0) {
            if (*lin) fputc('\n', o);
            if (fmt == FMT_TEXT && nd > 0) {
                uint64_t c[AFMT_MAX_NDIM];
                cli_unravel(nd, count, *lin, c);
                fputc('[', o);
                for (int d = 0; d < nd; d++)
                    fprintf(o, "%s%llu", d ? "," : "", (ull)(start[d] + c[d]));
                fputs("] ", o);
            }
        } else {
            fputc(fmt == FMT_CSV ? ',' : ' ', o);
        }
        fputs(v, o);
    }
}

/* Rank 0's part: reads and prints the selection. */
static int dump(const char *path, afmt_file *f, const char *name, const afmt_info *info,
                const uint64_t *start, const uint64_t *count, int fmt) {
    size_t es = cli_dtype_size(info->dtype);
    cli_slabs s;
    cli_slabs_init(&s, info, start, count, es, cli_slab_budget());
    void *buf = malloc((size_t)(s.max_elems * es) + 1);
    if (!buf) return cli_error(path, "out of memory for a slab of %llu elements", (ull)s.max_elems);
    uint64_t lin = 0, st[AFMT_MAX_NDIM], cn[AFMT_MAX_NDIM];
    int rc = CLI_OK;
    for (uint64_t i = 0; i < s.n; i++) {
        uint64_t n = cli_slab_at(&s, i, st, cn);
        if (afmt_read(f, name, st, cn, buf) != AFMT_OK) {
            if (lin && fmt != FMT_RAW) fputc('\n', stdout);
            fflush(stdout);
            rc = cli_lib_error(path, f);
            break;
        }
        emit(stdout, fmt, info, start, count, buf, n, &lin);
    }
    if (rc == CLI_OK && fmt != FMT_RAW) fputc('\n', stdout);
    free(buf);
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_error(path, "writing the output failed");
    return rc;
}

int cmd_dump(int argc, char **argv) {
    static const cli_optdef defs[] = {
        {"start", 0, 1}, {"count", 0, 1}, {"format", 'f', 1}, {"layer", 0, 1}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 2) return cli_usage_error("dump", "expected FILE and ARRAY");
    const char *path = a.pos[0], *name = a.pos[1];
    const char *fs = a.val[cli_opt(defs, "format")];
    int fmt = FMT_TEXT;
    if (fs && !strcmp(fs, "csv"))
        fmt = FMT_CSV;
    else if (fs && !strcmp(fs, "raw"))
        fmt = FMT_RAW;
    else if (fs && strcmp(fs, "text"))
        return cli_usage_error("dump", "--format must be text, csv or raw, not '%s'", fs);
    uint64_t layer = 0;
    const char *ls = a.val[cli_opt(defs, "layer")];
    if (ls && (cli_parse_u64(ls, &layer) != 0 || layer == 0))
        return cli_usage_error("dump", "--layer needs a layer id (a number >= 1), not '%s'", ls);
    uint64_t start[AFMT_MAX_NDIM] = {0}, count[AFMT_MAX_NDIM] = {0};
    int ns = -1, nc = -1;
    const char *ss = a.val[cli_opt(defs, "start")], *cs = a.val[cli_opt(defs, "count")];
    if (ss && cli_parse_u64_list(ss, start, AFMT_MAX_NDIM, &ns) != 0)
        return cli_usage_error("dump", "--start needs indices like 0,4,2, not '%s'", ss);
    if (cs && cli_parse_u64_list(cs, count, AFMT_MAX_NDIM, &nc) != 0)
        return cli_usage_error("dump", "--count needs counts like 2,3,1, not '%s'", cs);

    afmt_file *f;
    if ((rc = cli_open(path, AFMT_RDONLY, layer, &f)) != CLI_OK) return rc;
    afmt_info info;
    if (afmt_inquire(f, name, &info) != AFMT_OK) {
        rc = layer ? cli_error(path, "no array \"%s\" as of layer %llu", name, (ull)layer)
                   : cli_error(path, "no array \"%s\" (see afmt ls %s)", name, path);
        cli_close(path, f);
        return rc;
    }
    int nd = info.ndim;
    if ((ns >= 0 && ns != nd) || (nc >= 0 && nc != nd)) {
        cli_close(path, f);
        return cli_usage_error("dump",
                               "array \"%s\" has %d dimension%s; --start and --count "
                               "need as many values",
                               name, nd, nd == 1 ? "" : "s");
    }
    for (int d = 0; d < nd; d++) {
        if (start[d] >= info.shape[d]) {
            cli_close(path, f);
            return cli_usage_error("dump",
                                   "start[%d]=%llu is outside dimension %d of \"%s\" "
                                   "(size %llu)",
                                   d, (ull)start[d], d, name, (ull)info.shape[d]);
        }
        if (nc < 0) count[d] = info.shape[d] - start[d];
        if (count[d] == 0 || count[d] > info.shape[d] - start[d]) {
            cli_close(path, f);
            return cli_usage_error("dump",
                                   "count[%d]=%llu from start %llu does not fit dimension "
                                   "%d of \"%s\" (size %llu)",
                                   d, (ull)count[d], (ull)start[d], d, name, (ull)info.shape[d]);
        }
    }
    if (cli.rank == 0) rc = dump(path, f, name, &info, start, count, fmt);
    rc = cli_agree(rc);
    int crc = cli_close(path, f);
    return rc != CLI_OK ? rc : crc;
}
