/* util.c - shared parts of the afmt tool: argument parsing, one-line errors, value
 * formatting, JSON output and slabs. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/file.h"
#include "cli.h"
#include "common/util.h"
#include "format/superblock.h"

/* ---- arguments -------------------------------------------------------------------- */

int cli_opt(const cli_optdef *defs, const char *name) {
    for (int i = 0; defs[i].name; i++)
        if (strcmp(defs[i].name, name) == 0) return i;
    return -1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    if (cli.rank == 0) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "afmt: %s: %s (see afmt %s --help)\n", cmd, msg, cmd);
    }
    return CLI_ERROR;
}

int cli_parse(int argc, char **argv, const cli_optdef *defs, cli_args *a, int *done) {
    memset(a, 0, sizeof *a);
    *done = 0;
    const char *cmd = argv[0];
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (only_pos || s[0] != '-' || s[1] == 0) {
            if (a->npos == CLI_MAX_POS) {
                *done = 1;
                return cli_usage_error(cmd, "too many arguments");
            }
            a->pos[a->npos++] = s;
            continue;
        }
        if (!strcmp(s, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            if (cli.rank == 0) cli_help(cmd, stdout);
            *done = 1;
            return CLI_OK;
        }
        int k = -1;
        const char *val = NULL;
        if (s[1] == '-') {
            const char *eq = strchr(s + 2, '=');
            size_t len = eq ? (size_t)(eq - (s + 2)) : strlen(s + 2);
            for (int j = 0; defs[j].name; j++)
                if (strlen(defs[j].name) == len && !strncmp(defs[j].name, s + 2, len)) k = j;
            if (k >= 0 && eq) {
                if (!defs[k].has_arg) {
                    *done = 1;
                    return cli_usage_error(cmd, "option --%s takes no value", defs[k].name);
                }
                val = eq + 1;
            }
        } else if (s[2] == 0) {
            for (int j = 0; defs[j].name; j++)
                if (defs[j].short_name == s[1]) k = j;
        }
        if (k < 0) {
            *done = 1;
            return cli_usage_error(cmd, "unknown option '%s'", s);
        }
        if (defs[k].has_arg && !val) {
            if (i + 1 >= argc) {
                *done = 1;
                return cli_usage_error(cmd, "option --%s needs a value", defs[k].name);
            }
            val = argv[++i];
        }
        a->val[k] = defs[k].has_arg ? val : "";
    }
    return CLI_OK;
}

int cli_parse_u64(const char *s, uint64_t *v) {
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *v = (uint64_t)x;
    return 0;
}

int cli_parse_double(const char *s, double *v) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || *end) return -1;
    *v = x;
    return 0;
}

int cli_parse_u64_list(const char *s, uint64_t *v, int max, int *n) {
    *n = 0;
    if (!s || !*s) return -1;
    const char *p = s;
    for (;;) {
        if (*n == max) return -1;
        char buf[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof buf) return -1;
        memcpy(buf, p, len);
        buf[len] = 0;
        if (cli_parse_u64(buf, &v[*n]) != 0) return -1;
        (*n)++;
        p += len;
        if (!*p) return 0;
        p++;
    }
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07u;
    } else
        return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* ---- escaping what a file says -------------------------------------------------------- */

/* The escaped text of the character at p (n bytes left) into out (at most 9 bytes and a
 * NUL); returns the bytes of p it stands for. */
static size_t esc_one(const unsigned char *p, size_t n, int flags, char *out) {
    unsigned char c = p[0];
    if (c == '\\' || (c == '"' && (flags & CLI_ESC_QUOTE))) {
        out[0] = '\\';
        out[1] = (char)c;
        out[2] = 0;
        return 1;
    }
    if (c == '\n' || c == '\t' || c == '\r') {
        snprintf(out, 10, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
        return 1;
    }
    if (c < 0x20 || c == 0x7f) {
        snprintf(out, 10, "\\x%02x", c);
        return 1;
    }
    if (c < 0x80) {
        out[0] = (char)c;
        out[1] = 0;
        return 1;
    }
    size_t l = utf8_len(p, n);
    if (l == 0) { /* not UTF-8: the byte */
        snprintf(out, 10, "\\x%02x", c);
        return 1;
    }
    if (l == 2 && c == 0xc2 && p[1] < 0xa0) { /* a C1 control (U+0080..U+009F) */
        snprintf(out, 10, "\\x%02x\\x%02x", c, p[1]);
        return 2;
    }
    memcpy(out, p, l);
    out[l] = 0;
    return l;
}

void cli_put_esc(FILE *out, const char *s, size_t len, int flags) {
    const unsigned char *p = (const unsigned char *)s;
    char e[16];
    for (size_t i = 0; i < len;) {
        i += esc_one(p + i, len - i, flags, e);
        fputs(e, out);
    }
}

const char *cli_esc_flags(const char *s, int flags, char *buf, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), at = 0;
    char e[16];
    if (n == 0) return buf;
    for (size_t i = 0; i < len;) {
        i += esc_one(p + i, len - i, flags, e);
        size_t el = strlen(e);
        if (at + el >= n) break; /* cut at a whole escape */
        memcpy(buf + at, e, el);
        at += el;
    }
    buf[at] = 0;
    return buf;
}

const char *cli_esc(const char *s, char *buf, size_t n) {
    return cli_esc_flags(s, 0, buf, n);
}

const char *cli_qesc(const char *s, char *buf, size_t n) {
    return cli_esc_flags(s, CLI_ESC_QUOTE, buf, n);
}

/* ---- errors ----------------------------------------------------------------------- */

/* Drops a leading "identifier(PATH): " from a library message. */
static const char *strip_prefix(const char *msg, const char *path) {
    const char *p = msg;
    while ((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= '0' && *p <= '9')) p++;
    if (p == msg || *p != '(') return msg;
    size_t pl = strlen(path);
    if (strncmp(p + 1, path, pl) != 0 || strncmp(p + 1 + pl, "): ", 3) != 0) return msg;
    return p + 1 + pl + 3;
}

/* One line on stderr: line breaks become ';', and what could act on a terminal (control
 * characters, bytes that are not UTF-8, from names in the file or the path) is escaped. */
static void print_line(const char *path, const char *msg) {
    char line[2048];
    snprintf(line, sizeof line, "%s", msg);
    for (char *c = line; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ';';
    fputs("afmt: ", stderr);
    if (path) {
        cli_put_esc(stderr, path, strlen(path), 0);
        fputs(": ", stderr);
    }
    cli_put_esc(stderr, line, strlen(line), 0);
    fputc('\n', stderr);
    fflush(stderr);
}

int cli_error(const char *path, const char *fmt, ...) {
    if (cli.rank != 0) return CLI_ERROR;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_line(path, path ? strip_prefix(msg, path) : msg);
    return CLI_ERROR;
}

int cli_lib_error(const char *path, const afmt_file *f) {
    const char *m = afmt_errmsg(f);
    return cli_error(path, "%s", m && *m ? m : "unknown error");
}

int cli_agree(int code) {
    int all = code;
    if (cli.comm == MPI_COMM_NULL) return code;
    MPI_Allreduce(&code, &all, 1, MPI_INT, MPI_MAX, cli.comm);
    return all;
}

int cli_agree_msg(const char *path, int failed, const char *msg) {
    int mine = failed ? cli.rank : cli.size, root = cli.size;
    MPI_Allreduce(&mine, &root, 1, MPI_INT, MPI_MIN, cli.comm);
    if (root == cli.size) return CLI_OK;
    char m[1024];
    memset(m, 0, sizeof m);
    if (cli.rank == root) snprintf(m, sizeof m, "%s", msg ? msg : "failed");
    MPI_Bcast(m, (int)sizeof m, MPI_CHAR, root, cli.comm);
    m[sizeof m - 1] = 0;
    return cli_error(path, "%s", m);
}

int cli_check_file(const char *path) {
    /* A URL: no local file to look at; the library's open says what is wrong. */
    if (afmt__storage_kind_of(path, AFMT_STORAGE_MPIIO) == AFMT_STORAGE_HTTP) return CLI_OK;
    struct {
        int ok;
        char msg[1000];
    } r;
    memset(&r, 0, sizeof r);
    r.ok = 1;
    if (cli.rank == 0) {
        struct stat sb;
        if (stat(path, &sb) != 0) {
            r.ok = 0;
            snprintf(r.msg, sizeof r.msg, "%s", errno == ENOENT ? "no such file" : strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            r.ok = 0;
            snprintf(r.msg, sizeof r.msg, "is a directory, not an afmt file");
        } else if (!S_ISREG(sb.st_mode)) {
            r.ok = 0;
            snprintf(r.msg, sizeof r.msg, "not a regular file");
        } else if (sb.st_size == 0) {
            r.ok = 0;
            snprintf(r.msg, sizeof r.msg, "empty file, not an afmt file");
        } else {
            FILE *fp = fopen(path, "rb");
            if (!fp) {
                r.ok = 0;
                snprintf(r.msg, sizeof r.msg, "cannot open: %s", strerror(errno));
            } else {
                uint8_t region[AFMT_SLOT_B_OFFSET + 8];
                size_t got = fread(region, 1, sizeof region, fp);
                fclose(fp);
                int a = got >= 8 && !memcmp(region, "AFMTSUPR", 8);
                int b = got >= sizeof region && !memcmp(region + AFMT_SLOT_B_OFFSET, "AFMTSUPR", 8);
                if (!a && !b) {
                    r.ok = 0;
                    snprintf(r.msg, sizeof r.msg,
                             "not an afmt file (no superblock at offset 0 or 2048)");
                }
            }
        }
    }
    MPI_Bcast(&r, (int)sizeof r, MPI_BYTE, 0, cli.comm);
    if (!r.ok) return cli_error(path, "%s", r.msg);
    return CLI_OK;
}

int cli_open(const char *path, unsigned mode, uint64_t layer, afmt_file **f) {
    *f = NULL;
    int rc = cli_check_file(path);
    if (rc != CLI_OK) return rc;
    int lrc = layer ? afmt_open_layer(cli.comm, path, layer, NULL, f)
                    : afmt_open(cli.comm, path, mode, NULL, f);
    if (lrc != AFMT_OK) {
        *f = NULL;
        if (lrc == AFMT_ERANGE)
            return cli_error(path, "no layer %llu in the file (see afmt info %s)",
                             (unsigned long long)layer, path);
        return cli_lib_error(path, NULL);
    }
    /* The tools look at the whole index (sizes, blocks, every chunk): read every index
     * segment now instead of lazily. */
    char msg[AFMT_ERRMSG_MAX];
    if (afmt__index_load_all(&(*f)->idx, msg) != AFMT_OK) {
        afmt_close(*f);
        *f = NULL;
        return cli_error(path, "%s", msg);
    }
    return CLI_OK;
}

int cli_close(const char *path, afmt_file *f) {
    if (!f) return CLI_OK;
    if (afmt_close(f) != AFMT_OK) return cli_lib_error(path, NULL);
    return CLI_OK;
}

/* ---- values ----------------------------------------------------------------------- */

cli_kind cli_dtype_kind(afmt_dtype t) {
    switch (t) {
    case AFMT_INT8:
    case AFMT_INT16:
    case AFMT_INT32:
    case AFMT_INT64:
        return CLI_KIND_SIGNED;
    case AFMT_FLOAT32:
    case AFMT_FLOAT64:
        return CLI_KIND_FLOAT;
    default:
        return CLI_KIND_UNSIGNED;
    }
}

size_t cli_dtype_size(afmt_dtype t) {
    return afmt__dtype_size(t);
}

const char *cli_dtype_name(afmt_dtype t) {
    return afmt__dtype_name(t);
}

int64_t cli_get_i64(const void *buf, afmt_dtype t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)buf + i * afmt__dtype_size(t);
    switch (t) {
    case AFMT_INT8: {
        int8_t v;
        memcpy(&v, p, 1);
        return v;
    }
    case AFMT_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case AFMT_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case AFMT_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    case AFMT_FLOAT32:
    case AFMT_FLOAT64:
        return (int64_t)cli_get_f64(buf, t, i);
    default:
        return (int64_t)cli_get_u64(buf, t, i);
    }
}

uint64_t cli_get_u64(const void *buf, afmt_dtype t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)buf + i * afmt__dtype_size(t);
    switch (t) {
    case AFMT_BOOL:
    case AFMT_UINT8:
        return p[0];
    case AFMT_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case AFMT_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case AFMT_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    default:
        return (uint64_t)cli_get_i64(buf, t, i);
    }
}

double cli_get_f64(const void *buf, afmt_dtype t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)buf + i * afmt__dtype_size(t);
    if (t == AFMT_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        return (double)v;
    }
    if (t == AFMT_FLOAT64) {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
    if (cli_dtype_kind(t) == CLI_KIND_SIGNED) return (double)cli_get_i64(buf, t, i);
    return (double)cli_get_u64(buf, t, i);
}

int cli_format_double(char *out, size_t n, double v, int single) {
    if (isnan(v)) return snprintf(out, n, "nan");
    if (isinf(v)) return snprintf(out, n, v < 0 ? "-inf" : "inf");
    /* The shortest of a few precisions that reads back exactly; %g drops trailing zeros,
     * so the first precision that round-trips gives the shortest form. */
    static const int dprec[] = {15, 16, 17}, fprec[] = {6, 7, 8, 9};
    const int *prec = single ? fprec : dprec;
    int np = single ? 4 : 3, len = 0;
    for (int i = 0; i < np; i++) {
        len = snprintf(out, n, "%.*g", prec[i], v);
        double back = strtod(out, NULL);
        if (single ? (float)back == (float)v : back == v) break;
    }
    return len;
}

int cli_format_value(char *out, size_t n, const void *buf, afmt_dtype t, uint64_t i) {
    switch (cli_dtype_kind(t)) {
    case CLI_KIND_SIGNED:
        return snprintf(out, n, "%lld", (long long)cli_get_i64(buf, t, i));
    case CLI_KIND_UNSIGNED:
        return snprintf(out, n, "%llu", (unsigned long long)cli_get_u64(buf, t, i));
    default:
        return cli_format_double(out, n, cli_get_f64(buf, t, i), t == AFMT_FLOAT32);
    }
}

void cli_fill_native(const uint8_t *fill_le, afmt_dtype t, void *out) {
    uint8_t tmp[8];
    memcpy(tmp, fill_le, 8);
    if (afmt__host_is_big_endian()) afmt__bswap_elems(tmp, 1, afmt__dtype_size(t));
    memcpy(out, tmp, 8);
}

const char *cli_human(uint64_t bytes, char *buf, size_t n) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, n, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    snprintf(buf, n, "%.1f %s", v, units[u]);
    return buf;
}

const char *cli_iso_time(uint64_t ns, char *buf, size_t n) {
    time_t s = (time_t)(ns / 1000000000u);
    struct tm tm;
    if (!gmtime_r(&s, &tm)) {
        snprintf(buf, n, "?");
        return buf;
    }
    char d[32];
    strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03uZ", d, (unsigned)((ns / 1000000u) % 1000u));
    return buf;
}

const char *cli_u64_list(const uint64_t *v, int n, const char *sep, char *buf, size_t len) {
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < n && at < len; i++) {
        int w = snprintf(buf + at, len - at, "%s%llu", i ? sep : "", (unsigned long long)v[i]);
        if (w < 0) break;
        at += (size_t)w;
    }
    return buf;
}

/* ---- JSON ------------------------------------------------------------------------- */

void cli_json_str(FILE *out, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c == '\n') {
            fputs("\\n", out);
            i++;
        } else if (c == '\t') {
            fputs("\\t", out);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c);
            i++;
        } else {
            size_t l = utf8_len(p + i, len - i);
            if (l == 0) {
                /* Not UTF-8: the byte as a lone surrogate U+DC80..U+DCFF (Python's
                 * surrogateescape), so that distinct names stay distinct. */
                fprintf(out, "\\u%04x", 0xdc00u + c);
                i++;
            } else if (l == 2 && c == 0xc2 && p[i + 1] < 0xa0) {
                fprintf(out, "\\u%04x", (unsigned)p[i + 1]); /* a C1 control */
                i += 2;
            } else {
                fwrite(p + i, 1, l, out);
                i += l;
            }
        }
    }
    fputc('"', out);
}

/* The attribute values as native elements (a copy; the file is little-endian). */
static uint8_t *native_values(afmt_dtype t, uint64_t n, const uint8_t *le) {
    size_t es = afmt__dtype_size(t);
    uint64_t bytes;
    if (!afmt__mul_ok(n, es, &bytes) || bytes >= SIZE_MAX) return NULL;
    uint8_t *v = malloc((size_t)bytes + 1);
    if (!v) return NULL;
    if (n) memcpy(v, le, (size_t)bytes);
    if (afmt__host_is_big_endian()) afmt__bswap_elems(v, (size_t)n, es);
    return v;
}

static int printable(afmt_dtype t, uint64_t n, const uint8_t *v) {
    if (t != AFMT_UINT8 || n == 0) return 0;
    for (uint64_t i = 0; i < n; i++)
        if (v[i] < 0x20 && v[i] != '\n' && v[i] != '\t') return 0;
    /* Valid UTF-8 text, or plain ASCII. */
    for (uint64_t i = 0; i < n;) {
        size_t l = utf8_len(v + i, (size_t)(n - i));
        if (!l || v[i] == 0x7f) return 0;
        i += l;
    }
    return 1;
}

static void json_number(FILE *out, const void *v, afmt_dtype t, uint64_t i) {
    char b[64];
    cli_format_value(b, sizeof b, v, t, i);
    if (cli_dtype_kind(t) == CLI_KIND_FLOAT && !isfinite(cli_get_f64(v, t, i)))
        fprintf(out, "\"%s\"", b); /* JSON has no NaN or infinity */
    else
        fputs(b, out);
}

void cli_json_values(FILE *out, afmt_dtype t, uint64_t n, const uint8_t *le) {
    uint8_t *v = native_values(t, n, le);
    if (!v) {
        fputs("null", out);
        return;
    }
    if (printable(t, n, v)) {
        cli_json_str(out, (const char *)v, (size_t)n);
    } else if (n == 1) {
        json_number(out, v, t, 0);
    } else {
        fputc('[', out);
        for (uint64_t i = 0; i < n; i++) {
            if (i) fputs(", ", out);
            json_number(out, v, t, i);
        }
        fputc(']', out);
    }
    free(v);
}

void cli_text_values(FILE *out, afmt_dtype t, uint64_t n, const uint8_t *le, uint64_t max) {
    uint8_t *v = native_values(t, n, le);
    if (!v) return;
    if (printable(t, n, v)) {
        /* A quoted string with C escapes (cli_put_esc). */
        fputc('"', out);
        cli_put_esc(out, (const char *)v, (size_t)n, CLI_ESC_QUOTE);
        fputc('"', out);
    } else {
        char b[64];
        if (n != 1) fputc('[', out);
        for (uint64_t i = 0; i < n && i < max; i++) {
            cli_format_value(b, sizeof b, v, t, i);
            fprintf(out, "%s%s", i ? ", " : "", b);
        }
        if (n > max) fprintf(out, ", ... (%llu values)", (unsigned long long)n);
        if (n != 1) fputc(']', out);
    }
    free(v);
}

/* ---- slabs ------------------------------------------------------------------------ */

uint64_t cli_slab_budget(void) {
    const char *e = getenv("AFMT_CLI_SLAB_BYTES");
    uint64_t v;
    /* At most 2^48 bytes, so that a slab's byte count (+1) never wraps a size_t. */
    if (e && cli_parse_u64(e, &v) == 0 && v > 0)
        return v < (uint64_t)1 << 48 ? v : (uint64_t)1 << 48;
    return (uint64_t)64 << 20;
}

void cli_slabs_init(cli_slabs *s, const afmt_info *info, const uint64_t *start,
                    const uint64_t *count, size_t esize, uint64_t budget) {
    memset(s, 0, sizeof *s);
    int nd = s->ndim = info->ndim;
    for (int d = 0; d < nd; d++) {
        s->start[d] = start ? start[d] : 0;
        s->count[d] = count ? count[d] : info->shape[d];
    }
    if (nd == 0) {
        s->k = 0;
        s->n = s->max_elems = 1;
        return;
    }
    /* cap: elements per slab (at least one). Every product below is checked, so a slab
     * never holds more than the budget, whatever the shape and chunk (a chunk of more
     * than the budget is read in pieces). */
    if (esize == 0) esize = 1;
    uint64_t cap = budget / esize;
    if (cap == 0) cap = 1;
    /* rows[d]: elements of one index of dim d (the product of the dims after d),
     * saturated at UINT64_MAX. */
    uint64_t rows[AFMT_MAX_NDIM];
    rows[nd - 1] = 1;
    for (int d = nd - 2; d >= 0; d--)
        if (!afmt__mul_ok(rows[d + 1], s->count[d + 1], &rows[d])) rows[d] = UINT64_MAX;
    /* k: the outermost dim one index of which fits (rows[nd - 1] = 1 always does). */
    int k = nd - 1;
    for (int d = 0; d < nd; d++)
        if (rows[d] <= cap) {
            k = d;
            break;
        }
    uint64_t per = cap / rows[k]; /* indices of dim k per slab, >= 1 */
    uint64_t thick = info->chunk[k] < s->count[k] ? info->chunk[k] : s->count[k];
    uint64_t step;
    if (per >= s->count[k])
        step = s->count[k];
    else if (per >= thick)
        step = per - per % thick; /* whole chunks along dim k */
    else
        step = per; /* a chunk-thick row exceeds the budget: cut through the chunks */
    s->k = k;
    s->step = step;
    s->nk = s->count[k] / step + (s->count[k] % step != 0);
    /* n <= the element count of the selection, which fits in a u64. */
    s->n = s->nk;
    for (int d = 0; d < k; d++) s->n *= s->count[d];
    s->max_elems = rows[k] * step;
}

uint64_t cli_slab_at(const cli_slabs *s, uint64_t i, uint64_t *start, uint64_t *count) {
    int nd = s->ndim;
    if (nd == 0) return 1;
    int k = s->k;
    uint64_t o = i / s->nk, j = i % s->nk, n = 1;
    for (int d = k - 1; d >= 0; d--) {
        start[d] = s->start[d] + o % s->count[d];
        count[d] = 1;
        o /= s->count[d];
    }
    start[k] = s->start[k] + j * s->step;
    count[k] = s->count[k] - j * s->step < s->step ? s->count[k] - j * s->step : s->step;
    for (int d = k + 1; d < nd; d++) {
        start[d] = s->start[d];
        count[d] = s->count[d];
    }
    for (int d = 0; d < nd; d++) n *= count[d];
    return n;
}

void cli_slab_share(uint64_t n, int r, int size, uint64_t *lo, uint64_t *hi) {
    uint64_t q = n / (uint64_t)size, rem = n % (uint64_t)size, ur = (uint64_t)r;
    *lo = ur * q + (ur < rem ? ur : rem);
    *hi = *lo + q + (ur < rem ? 1 : 0);
}

uint64_t cli_nelems(const afmt_info *info) {
    return cli_count_elems(info->ndim, info->shape);
}

uint64_t cli_count_elems(int ndim, const uint64_t *count) {
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++)
        if (!afmt__mul_ok(n, count[d], &n)) return UINT64_MAX;
    return n;
}

void cli_unravel(int ndim, const uint64_t *count, uint64_t lin, uint64_t *coord) {
    for (int d = ndim - 1; d >= 0; d--) {
        coord[d] = lin % count[d];
        lin /= count[d];
    }
}

/* ---- written chunks and runs of them ------------------------------------------------ */

static int ref_cmp(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

int cli_chunks_build(const afmt_index *x, cli_chunks *c) {
    memset(c, 0, sizeof *c);
    uint64_t n = x->chunks.count;
    if (n > SIZE_MAX / 16 - 1) return -1;
    /* Pairs (id, index), sorted, then split: the runs want plain index arrays. */
    uint64_t *pairs = malloc(sizeof *pairs * 2 * ((size_t)n + 1));
    c->ids = malloc(sizeof *c->ids * ((size_t)n + 1));
    c->idx = malloc(sizeof *c->idx * ((size_t)n + 1));
    if (!pairs || !c->ids || !c->idx) {
        free(pairs);
        cli_chunks_free(c);
        return -1;
    }
    uint64_t k = 0;
    for (uint64_t i = 0; i < x->chunks.cap && k < n; i++) {
        const afmt_hmap_slot *s = &x->chunks.slots[i];
        if (s->used != 1) continue;
        pairs[2 * k] = s->k1;
        pairs[2 * k + 1] = s->k2;
        k++;
    }
    qsort(pairs, (size_t)k, 2 * sizeof *pairs, ref_cmp);
    for (uint64_t i = 0; i < k; i++) {
        c->ids[i] = pairs[2 * i];
        c->idx[i] = pairs[2 * i + 1];
    }
    c->n = k;
    free(pairs);
    return 0;
}

void cli_chunks_free(cli_chunks *c) {
    free(c->ids);
    free(c->idx);
    memset(c, 0, sizeof *c);
}

void cli_chunks_of(const cli_chunks *c, uint64_t id, uint64_t *lo, uint64_t *hi) {
    uint64_t a = 0, b = c->n;
    while (a < b) { /* the first position with ids >= id */
        uint64_t m = a + (b - a) / 2;
        if (c->ids[m] < id)
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    while (a < c->n && c->ids[a] == id) a++;
    *hi = a;
}

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void cli_sort_unique(uint64_t *v, uint64_t *n) {
    if (*n < 2) return;
    qsort(v, (size_t)*n, sizeof *v, u64_cmp);
    uint64_t k = 1;
    for (uint64_t i = 1; i < *n; i++)
        if (v[i] != v[k - 1]) v[k++] = v[i];
    *n = k;
}

int cli_runs_build(const afmt_grid *g, size_t esize, uint64_t budget, const uint64_t *idx,
                   uint64_t n, cli_run **runs, uint64_t *nruns) {
    *runs = NULL;
    *nruns = 0;
    if (n == 0) return 0;
    cli_run *r = malloc(sizeof *r * (size_t)n);
    if (!r) return -1;
    int nd = g->ndim;
    uint64_t row = nd ? g->nchunk[nd - 1] : 1, m = 0, bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t cc[AFMT_MAX_NDIM], b = 0;
        afmt__grid_chunk_coord(g, idx[i], cc);
        uint64_t elems = afmt__grid_chunk_box(g, cc, NULL, NULL);
        if (!afmt__mul_ok(elems, esize, &b)) b = UINT64_MAX;
        /* Joins the previous run if it is the next chunk of the same grid row and the
         * run stays within the budget. */
        if (m && idx[i] == r[m - 1].first + r[m - 1].n && idx[i] % row != 0 &&
            afmt__add_ok(bytes, b, &bytes) && bytes <= budget) {
            r[m - 1].n++;
            continue;
        }
        r[m].first = idx[i];
        r[m].n = 1;
        m++;
        bytes = b;
    }
    *runs = r;
    *nruns = m;
    return 0;
}

void cli_run_box(const afmt_grid *g, const cli_run *r, uint64_t *start, uint64_t *count) {
    int nd = g->ndim;
    if (nd == 0) return;
    uint64_t cc[AFMT_MAX_NDIM], lo[AFMT_MAX_NDIM], ext[AFMT_MAX_NDIM];
    afmt__grid_chunk_coord(g, r->first + r->n - 1, cc);
    afmt__grid_chunk_box(g, cc, lo, ext);
    uint64_t end = lo[nd - 1] + ext[nd - 1];
    afmt__grid_chunk_coord(g, r->first, cc);
    afmt__grid_chunk_box(g, cc, start, count);
    count[nd - 1] = end - start[nd - 1];
}
