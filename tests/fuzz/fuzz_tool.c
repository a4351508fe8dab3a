/* fuzz_tool.c - libFuzzer target: the afmt tool's verify, stats and dump commands (the
 * code of tools/, linked as the object library afmt_tool_cmds) on a file image. The image
 * is written to a scratch file of this process (/dev/shm, else $TMPDIR or /tmp), the
 * commands run on MPI_COMM_SELF with their output sent to /dev/null (libFuzzer and the
 * sanitizers keep reporting to the real stderr), and the slab budget is 4 KiB, so that
 * the slab walks of stats and dump are fuzzed as well.
 *
 * Contract checks, beyond no crash and no leak:
 *  - exit codes: verify 0 (whole), 1 (damage) or 2 (not an afmt file); stats and dump 0 or
 *    2 (CLI_OK, CLI_DIFF, CLI_ERROR of tools/cli.h);
 *  - one rule set (docs/format.md): a file afmt verify calls whole opens with afmt_open and
 *    every array of it reads back (but for blocks of a codec this process lacks); if they
 *    do, stats and dump succeed on it;
 *  - a file afmt_open refuses, stats refuses too.
 * Sizes: stats runs only when every array is within FUZZ_MAX_ARRAY_BYTES and every block
 * within FUZZ_MAX_BLOCK_BYTES (as fuzz_read reads); dump reads whole arrays of up to 64
 * elements and a box of up to 64 at the first and the last corner of larger ones. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fuzz_common.h"

#define OPEN_CODES (FUZZ_BIT(AFMT_ECORRUPT) | FUZZ_BIT(AFMT_EVERSION) | FUZZ_BIT(AFMT_ENOMEM))
#define READ_CODES                                                                                 \
    (FUZZ_BIT(AFMT_ECORRUPT) | FUZZ_BIT(AFMT_ECODEC) | FUZZ_BIT(AFMT_EIO) | FUZZ_BIT(AFMT_ENOMEM))
#define MAX_DUMPED_ARRAYS 8
#define BOX_ELEMS         64

/* What tools/afmt.c defines for the afmt executable: the run context and the help. */
cli_ctx cli = {MPI_COMM_NULL, 0, 1};
int cli_help(const char *cmd, FILE *out) {
    (void)cmd;
    (void)out;
    return 0;
}

static char path[512];
static FILE *null_file, *real_out, *real_err;

static void remove_scratch(void) {
    if (path[0]) unlink(path);
}

/* Sends what the commands print to /dev/null (on = 1) or back. The streams are swapped,
 * not the file descriptors (glibc lets stdout and stderr be assigned): libFuzzer and the
 * sanitizers keep writing their reports to the real stderr. */
static void quiet(int on) {
    fflush(stdout);
    fflush(stderr);
    stdout = on ? null_file : real_out;
    stderr = on ? null_file : real_err;
}

static int run(int (*cmd)(int, char **), int argc, const char **argv) {
    char *av[16];
    for (int i = 0; i < argc && i < 16; i++) av[i] = (char *)argv[i];
    quiet(1);
    int rc = cmd(argc, av);
    quiet(0);
    return rc;
}

static void write_scratch(const uint8_t *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t done = 0;
    while (fd >= 0 && done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    if (fd < 0 || done != size || close(fd) != 0) {
        fprintf(stderr, "fuzz: cannot write the scratch file %s\n", path);
        abort();
    }
}

/* A broken rule of "one rule set": aborts with the message, unless $AFMT_FUZZ_KNOWN names
 * a part of it (the message starts with "verify OK, ..." and includes the library's). */
static void one_rule_set(const char *fmt, const char *name, const char *msg) {
    char what[2048];
    snprintf(what, sizeof what, fmt, name, msg);
    if (fuzz_known(what)) return;
    fprintf(stderr, "fuzz: %s\n", what);
    abort();
}

/* "a,b,c" of n values. */
static const char *list(const uint64_t *v, int n, char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < n && at < cap; i++)
        at +=
            (size_t)snprintf(buf + at, cap - at, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
    return buf;
}

/* afmt dump of array in (the whole array, or a box at each corner); readable: afmt verify
 * called the file whole and every array read back, so every dump must succeed. */
static void dump_array(const afmt_info *in, unsigned pick, int readable) {
    static const char *formats[] = {"text", "csv", "raw"};
    const char *fmt = formats[pick % 3];
    uint64_t elems = 1;
    for (int d = 0; d < in->ndim && elems <= BOX_ELEMS; d++)
        elems = in->shape[d] > BOX_ELEMS ? BOX_ELEMS + 1 : elems * in->shape[d];
    int rc;
    if (elems <= BOX_ELEMS) {
        const char *av[] = {"dump", "--format", fmt, "--", path, in->name};
        rc = run(cmd_dump, 6, av);
        fuzz_require(rc == CLI_OK || rc == CLI_ERROR, "afmt dump exit code");
        fuzz_require(rc == CLI_OK || !readable, "afmt dump succeeds on a whole, readable file");
        return;
    }
    uint64_t count[AFMT_MAX_NDIM], start[AFMT_MAX_NDIM], budget = BOX_ELEMS;
    for (int d = in->ndim - 1; d >= 0; d--) {
        count[d] = in->shape[d] < budget ? in->shape[d] : budget;
        budget /= count[d];
        if (budget == 0) budget = 1;
    }
    char sbuf[AFMT_MAX_NDIM * 24], cbuf[AFMT_MAX_NDIM * 24];
    list(count, in->ndim, cbuf, sizeof cbuf);
    for (int corner = 0; corner < 2; corner++) {
        for (int d = 0; d < in->ndim; d++) start[d] = corner ? in->shape[d] - count[d] : 0;
        list(start, in->ndim, sbuf, sizeof sbuf);
        const char *av[] = {"dump",    "--format", fmt,  "--start", sbuf,
                            "--count", cbuf,       "--", path,      in->name};
        rc = run(cmd_dump, 10, av);
        fuzz_require(rc == CLI_OK || rc == CLI_ERROR, "afmt dump exit code");
        fuzz_require(rc == CLI_OK || !readable, "afmt dump succeeds on a whole, readable file");
    }
}

/* With verify's word that the file is whole, every array reads back (but for blocks of a
 * codec this process lacks: valid, docs/format.md section 8). 1 if it did. */
static int read_all(afmt_file *f, const afmt_info *in) {
    uint64_t bytes = fuzz_array_bytes(in);
    uint8_t *buf = bytes ? malloc((size_t)bytes) : NULL;
    if (!buf) return 0;
    uint64_t start[AFMT_MAX_NDIM] = {0};
    int rc = afmt_read(f, in->name, start, in->shape, buf);
    fuzz_expect(rc, READ_CODES, "afmt_read (whole array)", f);
    if (rc != AFMT_OK && rc != AFMT_ENOMEM && rc != AFMT_ECODEC)
        one_rule_set("verify OK, read fails: reading \"%s\" of a file afmt verify calls whole: %s",
                     in->name, afmt_errmsg(f));
    free(buf);
    return rc == AFMT_OK;
}

static void one(const uint8_t *data, size_t size) {
    static const char *name = "fuzz_tool.afmt";
    unsigned pick = (unsigned)size + (size ? data[size / 2] : 0);
    write_scratch(data, size);
    const char *vav[] = {"verify", path};
    int v = run(cmd_verify, 2, vav);
    fuzz_require(v == CLI_OK || v == CLI_DIFF || v == CLI_ERROR, "afmt verify exit code");

    /* The library's view of the same bytes. */
    fuzz_put(name, data, size);
    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_SELF, name, AFMT_RDONLY, fuzz_opts(), &f);
    fuzz_expect(rc, OPEN_CODES, "afmt_open", NULL);
    if (rc != AFMT_OK) {
        if (v == CLI_OK && rc != AFMT_ENOMEM)
            one_rule_set("verify OK, open refuses:%s afmt_open refuses a file afmt verify calls "
                         "whole: %s",
                         "", afmt_errmsg(NULL));
        const char *sav[] = {"stats", path};
        rc = run(cmd_stats, 2, sav);
        fuzz_require(rc == CLI_ERROR || rc == CLI_OK, "afmt stats exit code");
        fuzz_require(rc == CLI_ERROR, "afmt stats refuses a file afmt_open refuses");
        return;
    }
    int n = 0;
    fuzz_expect(afmt_count(f, &n), 0, "afmt_count", f);
    int blocks_small = fuzz_blocks_small(f), all_small = blocks_small;
    /* readable: verify calls the file whole and every array read back, so stats and dump
     * must succeed too. */
    int readable = v == CLI_OK && blocks_small;
    afmt_info in[MAX_DUMPED_ARRAYS];
    int nin = 0;
    for (int i = 0; i < n; i++) {
        afmt_info a;
        fuzz_expect(afmt_info_at(f, i, &a), 0, "afmt_info_at", f);
        if (fuzz_array_bytes(&a) == 0) all_small = readable = 0;
        if (nin < MAX_DUMPED_ARRAYS) in[nin++] = a;
        if (readable && !read_all(f, &a)) readable = 0;
    }
    fuzz_expect(afmt_close(f), 0, "afmt_close", NULL);

    if (all_small) {
        const char *sav[] = {"stats", "--json", path};
        int json = pick & 1;
        if (!json) sav[1] = path;
        rc = run(cmd_stats, json ? 3 : 2, sav);
        fuzz_require(rc == CLI_OK || rc == CLI_ERROR, "afmt stats exit code");
        fuzz_require(rc == CLI_OK || !readable, "afmt stats succeeds on a whole, readable file");
    }
    if (blocks_small)
        for (int i = 0; i < nin; i++) dump_array(&in[i], pick + (unsigned)i, readable);
}

/* A small whole file, to run every command once before the first input: what Open MPI
 * loads and keeps on its first MPI-IO open is no leak of an input. */
static void warm_up(void) {
    afmt_file *f = NULL;
    afmt_opts *o = NULL;
    uint64_t shape = 4, chunk = 2, start = 0;
    int32_t v[4] = {1, 2, 3, 4};
    if (afmt_opts_create(&o) != AFMT_OK || afmt__opts_set_backend(o, "posix") != AFMT_OK ||
        afmt_create(MPI_COMM_SELF, path, AFMT_TRUNC, o, &f) != AFMT_OK ||
        afmt_define(f, "a", AFMT_INT32, 1, &shape, &chunk, NULL, NULL) != AFMT_OK ||
        afmt_write(f, "a", &start, &shape, v) != AFMT_OK || afmt_commit(f) != AFMT_OK ||
        afmt_close(f) != AFMT_OK) {
        fprintf(stderr, "fuzz: cannot write the warm-up file %s: %s\n", path, afmt_errmsg(NULL));
        abort();
    }
    afmt_opts_free(o);
    const char *vav[] = {"verify", path}, *sav[] = {"stats", path};
    const char *dav[] = {"dump", "--", path, "a"};
    run(cmd_verify, 2, vav);
    run(cmd_stats, 2, sav);
    run(cmd_dump, 4, dav);
}

static void setup(void) {
    if (path[0]) return;
    const char *dir = "/dev/shm";
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(dir, W_OK) != 0) {
        dir = getenv("TMPDIR");
        if (!dir || !*dir) dir = "/tmp";
    }
    snprintf(path, sizeof path, "%s/afmt-fuzz-tool-%ld.afmt", dir, (long)getpid());
    atexit(remove_scratch);
    cli.comm = MPI_COMM_SELF;
    cli.rank = 0;
    cli.size = 1;
    setenv("AFMT_CLI_SLAB_BYTES", "4096", 1);
    real_out = stdout;
    real_err = stderr;
    null_file = fopen("/dev/null", "w");
    if (!null_file) {
        fprintf(stderr, "fuzz: cannot open /dev/null\n");
        abort();
    }
#ifdef FUZZ_LSAN
    __lsan_disable();
#endif
    warm_up();
#ifdef FUZZ_LSAN
    __lsan_enable();
#endif
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* Open MPI's MPI-IO (the tool's backend) otherwise creates and removes a shared file
     * pointer file in its session directory on every open: most of the time per input. */
    setenv("OMPI_MCA_sharedfp", "individual", 0);
    fuzz_mpi_init();
    setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_mpi_init();
    setup();
    one(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) return 0;
    if (size) memcpy(fixed, data, size);
    fz_reseal(fixed, size);
    if (size && memcmp(fixed, data, size) != 0) one(fixed, size);
    free(fixed);
    return 0;
}
