/* codec_text.c - an array's recorded compression setting (afmt_inquire_codec, format.md 6)
 * as afmt ls, afmt info and afmt verify print it: the setting ("zfp accuracy 1e-4",
 * "bitround 10 + zstd level 3, shuffle", "default"), whether it changes values, and the
 * error bound it promises. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec/codec.h"
#include "format/codec_params.h"

/* Whether s parses back to exactly v. */
static int reads_back(const char *s, double v) {
    return strtod(s, NULL) == v;
}

const char *cli_num(double v, char *buf, size_t n) {
    return cli_num_sig(v, 17, buf, n);
}

const char *cli_num_sig(double v, int sig, char *buf, size_t n) {
    if (!isfinite(v)) {
        snprintf(buf, n, "%s", isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
        return buf;
    }
    /* The shortest %g that reads back (at most sig digits); below 1e-3 (where %g would write
     * 0.000...) and from 1e6 on, the exponent form. Then the exponent without '+' and leading
     * zeros: 1e-04 -> 1e-4, 2.5e+07 -> 2.5e7. */
    double a = fabs(v);
    int sci = a != 0 && (a < 1e-3 || a >= 1e6);
    char t[64];
    if (!sci && v == floor(v)) { /* an integer below 10^6: as one ("16", not "2e+01") */
        snprintf(buf, n, "%.0f", v);
        return buf;
    }
    for (int p = 1; p <= sig; p++) {
        snprintf(t, sizeof t, sci ? "%.*e" : "%.*g", sci ? p - 1 : p, v);
        if (reads_back(t, v)) break;
    }
    char *e = strchr(t, 'e');
    if (e) {
        char mant[64];
        size_t ml = (size_t)(e - t);
        memcpy(mant, t, ml);
        mant[ml] = 0;
        int ex = atoi(e + 1);
        snprintf(buf, n, "%se%d", mant, ex);
    } else {
        snprintf(buf, n, "%s", t);
    }
    return buf;
}

static const char *zfp_mode_name(int mode) {
    switch (mode) {
    case AFMT_ZFP_ACCURACY:
        return "accuracy";
    case AFMT_ZFP_PRECISION:
        return "precision";
    case AFMT_ZFP_RATE:
        return "rate";
    case AFMT_ZFP_REVERSIBLE:
        return "reversible";
    default:
        return "unknown";
    }
}

int cli_codec_lossy(const afmt_array_codec *c) {
    if (c->bitround > 0) return 1;
    return c->codec == AFMT_CODEC_ZFP && c->zfp_mode != AFMT_ZFP_REVERSIBLE;
}

/* The name of codec id: the built-in names, a registered user codec's name, else
 * "codec N". */
static const char *codec_name(uint32_t id, char *buf, size_t n) {
    const char *s = afmt__codec_name(id);
    if (strcmp(s, "unknown") == 0 && id != AFMT_CODEC_NONE) {
        snprintf(buf, n, "codec %u", id);
        return buf;
    }
    cli_esc(s, buf, n); /* a user codec names itself: printed escaped */
    return buf;
}

const char *cli_codec_text(const afmt_array_codec *c, int with_shuffle, char *buf, size_t n) {
    char p[64], name[CLI_ESC_SIZE(64)];
    if (c->codec == UINT32_MAX) {
        snprintf(buf, n, "default%s", with_shuffle && c->shuffle ? ", shuffle" : "");
        return buf;
    }
    if (c->codec == AFMT_CODEC_ZFP) {
        if (c->zfp_mode == AFMT_ZFP_REVERSIBLE)
            snprintf(buf, n, "zfp reversible");
        else
            snprintf(buf, n, "zfp %s %s", zfp_mode_name((int)c->zfp_mode),
                     cli_num(c->zfp_param, p, sizeof p));
        return buf;
    }
    char br[32] = "", lv[32] = "";
    if (c->bitround > 0) snprintf(br, sizeof br, "bitround %d + ", c->bitround);
    if (c->level != 0 && c->codec != AFMT_CODEC_NONE)
        snprintf(lv, sizeof lv, " level %d", c->level);
    snprintf(buf, n, "%s%s%s%s", br, codec_name(c->codec, name, sizeof name), lv,
             with_shuffle && c->shuffle ? ", shuffle" : "");
    return buf;
}

const char *cli_codec_bound(const afmt_array_codec *c, char *buf, size_t n) {
    char a[64];
    buf[0] = 0;
    if (c->codec == AFMT_CODEC_ZFP) {
        switch ((int)c->zfp_mode) {
        case AFMT_ZFP_ACCURACY:
            snprintf(buf, n, "|error| <= %s", cli_num(c->abs_bound, a, sizeof a));
            break;
        case AFMT_ZFP_PRECISION:
            snprintf(buf, n,
                     "no error bound recorded (precision mode: the error depends on the "
                     "values' range)");
            break;
        case AFMT_ZFP_RATE:
            snprintf(buf, n, "no error bound (rate mode: a fixed size per value)");
            break;
        default:
            break;
        }
        return buf;
    }
    if (c->bitround > 0)
        snprintf(buf, n, "|error| <= 2^-%d |value| = %s |value|", c->bitround + 1,
                 cli_num(c->rel_bound, a, sizeof a));
    return buf;
}

static void json_num_or_null(FILE *o, int have, double v) {
    char b[64];
    if (have && isfinite(v))
        fputs(cli_num(v, b, sizeof b), o);
    else
        fputs("null", o);
}

void cli_codec_json(FILE *o, const afmt_array_codec *c) {
    char t[256], name[CLI_ESC_SIZE(64)];
    int dflt = c->codec == UINT32_MAX, zfp = c->codec == AFMT_CODEC_ZFP;
    fputs("{\"codec\": ", o);
    if (dflt) {
        fputs("null, \"codec_id\": null, \"level\": null", o);
    } else {
        const char *s = afmt__codec_name(c->codec);
        if (strcmp(s, "unknown") == 0) s = codec_name(c->codec, name, sizeof name);
        cli_json_str(o, s, strlen(s));
        fprintf(o, ", \"codec_id\": %u, \"level\": %d", c->codec, c->level);
    }
    fprintf(o, ", \"shuffle\": %s, \"zfp_mode\": ", c->shuffle ? "true" : "false");
    if (zfp)
        fprintf(o, "\"%s\"", zfp_mode_name((int)c->zfp_mode));
    else
        fputs("null", o);
    fputs(", \"zfp_param\": ", o);
    json_num_or_null(o, zfp && c->zfp_mode != AFMT_ZFP_REVERSIBLE, c->zfp_param);
    fputs(", \"bitround\": ", o);
    if (c->bitround > 0)
        fprintf(o, "%d", c->bitround);
    else
        fputs("null", o);
    fprintf(o, ", \"lossy\": %s, \"abs_bound\": ", cli_codec_lossy(c) ? "true" : "false");
    json_num_or_null(o, c->abs_bound > 0, c->abs_bound);
    fputs(", \"rel_bound\": ", o);
    json_num_or_null(o, c->rel_bound > 0, c->rel_bound);
    fputs(", \"text\": ", o);
    cli_codec_text(c, 1, t, sizeof t);
    cli_json_str(o, t, strlen(t));
    fputc('}', o);
}

int cli_codec_of_record(const afmt_array_rec *r, afmt_array_codec *out, char *why) {
    afmt_codec_setting s;
    memset(out, 0, sizeof *out);
    out->codec = UINT32_MAX;
    if (afmt__codec_setting_get(r, &s, why) != AFMT_OK) return -1;
    /* As afmt_inquire_codec (array_opts.c) fills it in. */
    out->codec = s.codec;
    out->level = s.level;
    out->shuffle = (r->flags & AFMT_ARRAY_SHUFFLE) != 0;
    out->zfp_mode = (afmt_zfp_mode)s.zfp_mode;
    out->zfp_param = s.zfp_param;
    out->bitround = (int)s.keepbits;
    if (s.zfp_mode == AFMT_ZFP_ACCURACY) out->abs_bound = s.zfp_param;
    if (s.keepbits) out->rel_bound = ldexp(1.0, -(int)s.keepbits - 1);
    return 0;
}
