/* cli.h - shared parts of the afmt command-line tool: the run context, argument
 * parsing, error reporting, value formatting, JSON output and the slab walk that keeps
 * memory bounded. The tool is part of the project: it may use the library's internal
 * headers (src/) to show what the public API does not expose (blocks, layers, slots). */
#ifndef AFMT_CLI_H
#define AFMT_CLI_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "afmt.h"
#include "index/index.h"

/* Exit codes of every command. */
#define CLI_OK    0 /* success; for verify: whole; for diff: equal */
#define CLI_DIFF  1 /* verify: damage found; diff: the files differ */
#define CLI_ERROR 2 /* usage error, missing or unreadable file, library failure */

/* ---- the run ---------------------------------------------------------------------- */
typedef struct {
    MPI_Comm comm; /* MPI_COMM_WORLD */
    int rank, size;
} cli_ctx;

extern cli_ctx cli;

/* ---- commands (return an exit code; called on every rank, after MPI_Init) ---------- */
int cmd_ls(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_unlock(int argc, char **argv);
/* cmd_export.c, cmd_import.c when built with HDF5 (AFMT_HAVE_HDF5); without it, afmt.c
 * defines both to fail with "built without HDF5" (exit 2, tested by hdf5.export). */
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);

/* ---- arguments -------------------------------------------------------------------- */
/* One option a command accepts: "--name" (long) and an optional one-letter short form;
 * has_arg options take a value ("--name V" or "--name=V"). */
typedef struct {
    const char *name;
    char short_name; /* 0 if none */
    int has_arg;
} cli_optdef;

#define CLI_MAX_POS 8
typedef struct {
    const char *pos[CLI_MAX_POS];
    int npos;
    const char *val[16]; /* per optdef: the value (has_arg) or "" if given, else NULL */
} cli_args;

/* Parses argv[1..argc) of a command (argv[0] is the command name) against defs (at most
 * 16, ended by a {NULL} entry). "--help"/"-h" prints the command's help on rank 0 and
 * returns CLI_OK through *done = 1. A usage error prints one line and returns CLI_ERROR
 * with *done = 1. Otherwise *done = 0 and the return value is CLI_OK. */
int cli_parse(int argc, char **argv, const cli_optdef *defs, cli_args *a, int *done);
/* Index of the option named name in defs (for a->val[...]). */
int cli_opt(const cli_optdef *defs, const char *name);

/* Usage error of command cmd: prints "afmt: CMD: message (see ...)" on rank 0. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints the help of command cmd (or the main help if cmd is NULL) to out. 0 if known. */
int cli_help(const char *cmd, FILE *out);

/* Parses "i,j,k" into n u64 values (at most max); 0 on success, -1 on a bad list. */
int cli_parse_u64_list(const char *s, uint64_t *v, int max, int *n);
/* Parses a u64 / a double; 0 on success. */
int cli_parse_u64(const char *s, uint64_t *v);
int cli_parse_double(const char *s, double *v);

/* ---- errors ----------------------------------------------------------------------- */
/* Prints "afmt: PATH: message" on rank 0 (stderr, one line: newlines in the message are
 * replaced by "; ") and returns CLI_ERROR. A library message that starts with
 * "afmt_xxx(PATH): " has that prefix removed (the line names the path already). */
int cli_error(const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* cli_error with the library's last message on f (NULL: the thread's). */
int cli_lib_error(const char *path, const afmt_file *f);

/* Checks on rank 0 that path names an existing regular file with an afmt superblock
 * magic in one of its slots, and agrees on the outcome. On failure the one-line error is
 * printed and CLI_ERROR returned on every rank. */
int cli_check_file(const char *path);
/* cli_check_file, then afmt_open (layer == 0) or afmt_open_layer (layer != 0), reporting
 * failures. mode: AFMT_RDONLY or AFMT_RDWR. */
int cli_open(const char *path, unsigned mode, uint64_t layer, afmt_file **f);
/* Closes f (NULL is fine); a failure is reported and returns CLI_ERROR. */
int cli_close(const char *path, afmt_file *f);
/* Collective: if any rank has failed != 0, rank 0 prints the message of the lowest
 * failing rank (as cli_error) and every rank returns CLI_ERROR; else CLI_OK. */
int cli_agree_msg(const char *path, int failed, const char *msg);
/* Agrees on an exit code: the maximum over the ranks. */
int cli_agree(int code);

/* ---- values ----------------------------------------------------------------------- */
typedef enum { CLI_KIND_SIGNED, CLI_KIND_UNSIGNED, CLI_KIND_FLOAT } cli_kind;
cli_kind cli_dtype_kind(afmt_dtype t);
size_t cli_dtype_size(afmt_dtype t);
const char *cli_dtype_name(afmt_dtype t);
/* Element i of a native buffer of dtype t. */
int64_t cli_get_i64(const void *buf, afmt_dtype t, uint64_t i);
uint64_t cli_get_u64(const void *buf, afmt_dtype t, uint64_t i);
double cli_get_f64(const void *buf, afmt_dtype t, uint64_t i);
/* Formats element i of a native buffer: integers in decimal, floats in the shortest form
 * that reads back to the same value ("nan", "inf", "-inf" for the specials). */
int cli_format_value(char *out, size_t n, const void *buf, afmt_dtype t, uint64_t i);
/* Formats a double the same way (float32 precision if single). */
int cli_format_double(char *out, size_t n, double v, int single);
/* The fill value of a little-endian 8-byte fill field as a native element in out[8]. */
void cli_fill_native(const uint8_t *fill_le, afmt_dtype t, void *out);

/* Human-readable byte count ("1.5 MiB"); exact bytes below 1 KiB. */
const char *cli_human(uint64_t bytes, char *buf, size_t n);
/* ISO-8601 UTC time of Unix nanoseconds ("2026-01-02T03:04:05.678Z"). */
const char *cli_iso_time(uint64_t ns, char *buf, size_t n);
/* Formats "[a, b, c]" / "a,b,c" of n u64 values. */
const char *cli_u64_list(const uint64_t *v, int n, const char *sep, char *buf, size_t len);

/* ---- an array's compression setting (afmt_inquire_codec; codec_text.c) -------------- */
/* A parameter or bound in the shortest form that reads back, integers below 10^6 as
 * integers, otherwise below 1e-3 and from 1e6 on with a short exponent: "1e-4", "0.5",
 * "16", "4.8828125e-4". */
const char *cli_num(double v, char *buf, size_t n);
/* The same with at most sig significant digits (rounded: it may not read back). */
const char *cli_num_sig(double v, int sig, char *buf, size_t n);
/* Whether the setting changes values: ZFP accuracy, precision or rate, or bit rounding. */
int cli_codec_lossy(const afmt_array_codec *c);
/* The setting as text: "default" (none recorded: the writer's codec, each block names
 * its own), "lz4", "zstd level 3", "bitround 10 + zstd", "zfp accuracy 1e-4", "zfp
 * precision 16", "zfp rate 8", "zfp reversible"; with_shuffle: ", shuffle" after it when
 * the chunks are byte-shuffled. */
const char *cli_codec_text(const afmt_array_codec *c, int with_shuffle, char *buf, size_t n);
/* The error bound a lossy setting promises: "|error| <= 1e-4" (ZFP accuracy: absolute),
 * "|error| <= 2^-11 |value| = 4.8828125e-4 |value|" (bit rounding: relative), or why
 * there is none (ZFP precision and rate); "" for a lossless setting. */
const char *cli_codec_bound(const afmt_array_codec *c, char *buf, size_t n);
/* The setting as a JSON object: codec (null: default), codec_id, level, shuffle,
 * zfp_mode, zfp_param, bitround, lossy, abs_bound, rel_bound (null where none), text. */
void cli_codec_json(FILE *o, const afmt_array_codec *c);
/* The setting an array record holds, as afmt_inquire_codec returns it (for verify, which
 * reads records itself): 0, or -1 with why (AFMT_ERRMSG_MAX bytes) when its parameters
 * are not layout 1 (format.md 6; then *out is the default). */
int cli_codec_of_record(const afmt_array_rec *r, afmt_array_codec *out, char *why);

/* ---- escaping what a file says: names, keys, dimension names, text values ------------ */
/* Every name, key or string of a file (and a path) the tool prints goes through these, so
 * that no file can move the cursor, retitle the terminal or hide a name: a backslash
 * becomes \\, a newline, tab, carriage return \n \t \r, other control characters (C0,
 * DEL and the C1 controls U+0080..U+009F) and every byte that is not part of valid UTF-8
 * \xNN (one per byte); other text, UTF-8 included, is kept. CLI_ESC_QUOTE: '"' becomes \"
 * too (for names printed inside quotes). Errors (cli_error) escape their whole line. */
#define CLI_ESC_QUOTE 1
/* Bytes that always hold the escaped form of a string of len bytes (and the NUL). */
#define CLI_ESC_SIZE(len) (4 * (len) + 1)
/* Room for an escaped array name. */
#define CLI_ESC_NAME CLI_ESC_SIZE(AFMT_MAX_NAME)
void cli_put_esc(FILE *out, const char *s, size_t len, int flags);
/* The escaped form of the C string s in buf (n bytes; cut at a whole escape if it does not
 * fit); returns buf. cli_qesc: with CLI_ESC_QUOTE. */
const char *cli_esc_flags(const char *s, int flags, char *buf, size_t n);
const char *cli_esc(const char *s, char *buf, size_t n);
const char *cli_qesc(const char *s, char *buf, size_t n);

/* ---- JSON output (stdout) ----------------------------------------------------------- */
/* Writes s as a JSON string (quoted, escaped; control characters become \u00XX, bytes
 * that are not UTF-8 \udcXX, a lone surrogate as in Python's surrogateescape, so that
 * distinct names stay distinct). */
void cli_json_str(FILE *out, const char *s, size_t len);
/* Writes an attribute value (an afmt_attr_rec-like triple) as JSON: a string for
 * printable UINT8, a number for one value, else an array. */
void cli_json_values(FILE *out, afmt_dtype t, uint64_t n, const uint8_t *le);
/* The same as text: "\"string\"" for printable UINT8, "v" or "[v, v, ...]" (at most
 * max values, then "..."). */
void cli_text_values(FILE *out, afmt_dtype t, uint64_t n, const uint8_t *le, uint64_t max);

/* ---- slabs: a hyperslab cut into boxes of bounded size, in C order ------------------- */
typedef struct {
    int ndim;
    uint64_t start[AFMT_MAX_NDIM], count[AFMT_MAX_NDIM];
    int k;         /* the dim that is cut into steps; dims < k are taken one index at a time */
    uint64_t step; /* thickness along dim k */
    uint64_t nk;   /* steps along dim k */
    uint64_t n;    /* slabs in all */
    uint64_t max_elems;
} cli_slabs;

/* The slab budget in bytes: $AFMT_CLI_SLAB_BYTES if set (tests), else 64 MiB. */
uint64_t cli_slab_budget(void);
/* Cuts [start, start+count) (NULL start: the whole shape) of an array with the given chunk
 * shape and element size into slabs of at most budget bytes (at least one element), in C
 * order: whole chunks along the cut dim where a chunk-thick row fits the budget, else
 * pieces of chunks. All products are checked: max_elems * esize <= max(budget, esize). */
void cli_slabs_init(cli_slabs *s, const afmt_info *info, const uint64_t *start,
                    const uint64_t *count, size_t esize, uint64_t budget);
/* Slab i: its start and count (ndim values each) and element count. */
uint64_t cli_slab_at(const cli_slabs *s, uint64_t i, uint64_t *start, uint64_t *count);
/* The slabs [lo, hi) that rank r of size ranks takes (contiguous runs). */
void cli_slab_share(uint64_t n, int r, int size, uint64_t *lo, uint64_t *hi);

/* Elements of an array (product of the shape; 1 for a scalar); UINT64_MAX if the product
 * overflows (never for an array the library opened). */
uint64_t cli_nelems(const afmt_info *info);
/* Element count of count[ndim], UINT64_MAX on overflow. */
uint64_t cli_count_elems(int ndim, const uint64_t *count);
/* C-order coordinates of linear element index lin of a box of shape count. */
void cli_unravel(int ndim, const uint64_t *count, uint64_t lin, uint64_t *coord);

/* ---- written chunks: stats and diff read only these; the rest is the fill value ------ */
typedef struct {
    uint64_t *ids, *idx; /* array id and chunk index of each chunk the index holds */
    uint64_t n;
} cli_chunks;
/* Every chunk of the merged index (live arrays or not), sorted by (array id, index). 0,
 * or -1 if out of memory. */
int cli_chunks_build(const afmt_index *x, cli_chunks *c);
void cli_chunks_free(cli_chunks *c);
/* The positions [*lo, *hi) of the chunks of array id in c (c->idx + *lo: sorted). */
void cli_chunks_of(const cli_chunks *c, uint64_t id, uint64_t *lo, uint64_t *hi);
/* Sorts v[*n] and drops repeated values. */
void cli_sort_unique(uint64_t *v, uint64_t *n);

/* A run of chunks first, first + 1, .., first + n - 1 of one row of the grid along its
 * last dim: together one box. */
typedef struct {
    uint64_t first, n;
} cli_run;
/* Groups sorted, distinct chunk indices idx[n] of grid g into runs of adjacent chunks of
 * at most budget bytes each (a chunk of more than the budget is a run alone). *runs is
 * malloc'ed (NULL if n is 0); 0, or -1 if out of memory. */
int cli_runs_build(const afmt_grid *g, size_t esize, uint64_t budget, const uint64_t *idx,
                   uint64_t n, cli_run **runs, uint64_t *nruns);
/* The box [start, start + count) of a run (nothing for a scalar). */
void cli_run_box(const afmt_grid *g, const cli_run *r, uint64_t *start, uint64_t *count);

#endif
