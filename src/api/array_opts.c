/* array_opts.c - afmt_array_opts, an array's own compression (afmt_define_with), checked
 * against the array's dtype and turned into the setting its record keeps
 * (format/codec_params.h); afmt_inquire_codec reads it back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h"
#include "codec/codec.h"
#include "codec/zfp.h"
#include "format/codec_params.h"

struct afmt_array_opts {
    int codec_set; /* afmt_array_opts_set_codec */
    uint32_t codec;
    int level;
    int shuffle_set, shuffle;
    int zfp_mode; /* 0: no ZFP */
    double zfp_param;
    int keepbits; /* 0: no bit rounding */
};

int afmt_array_opts_create(afmt_array_opts **ao) {
    if (!ao) return afmt__fail(NULL, AFMT_EINVAL, "afmt_array_opts_create: ao is NULL");
    if (!(*ao = calloc(1, sizeof **ao)))
        return afmt__fail(NULL, AFMT_ENOMEM, "afmt_array_opts_create: out of memory");
    return AFMT_OK;
}

int afmt_array_opts_free(afmt_array_opts *ao) {
    free(ao);
    return AFMT_OK;
}

int afmt_array_opts_set_codec(afmt_array_opts *ao, afmt_codec c, int level) {
    const char *fn = "afmt_array_opts_set_codec";
    uint32_t id = (uint32_t)c;
    if (!ao) return afmt__fail(NULL, AFMT_EINVAL, "%s: ao is NULL", fn);
    if (id == AFMT_CODEC_ZFP)
        return afmt__fail(NULL, AFMT_EINVAL, "%s: ZFP is set with afmt_array_opts_set_zfp", fn);
    if (!afmt__codec_known(id))
        return afmt__fail(NULL, AFMT_ECODEC, "%s: codec id %u is not known", fn, id);
    if (afmt__codec_check_level(id, level) != AFMT_OK)
        return afmt__fail(NULL, AFMT_EINVAL, "%s: level %d is out of range for codec %s", fn, level,
                          afmt__codec_name(id));
    ao->codec_set = 1;
    ao->codec = id;
    ao->level = level;
    ao->zfp_mode = 0;
    return AFMT_OK;
}

int afmt_array_opts_set_shuffle(afmt_array_opts *ao, int on) {
    if (!ao) return afmt__fail(NULL, AFMT_EINVAL, "afmt_array_opts_set_shuffle: ao is NULL");
    ao->shuffle_set = 1;
    ao->shuffle = on != 0;
    return AFMT_OK;
}

int afmt_array_opts_set_zfp(afmt_array_opts *ao, afmt_zfp_mode mode, double param) {
    const char *fn = "afmt_array_opts_set_zfp", *why = "";
    if (!ao) return afmt__fail(NULL, AFMT_EINVAL, "%s: ao is NULL", fn);
    if (afmt__zfp_check((int)mode, param, &why) != AFMT_OK)
        return afmt__fail(NULL, AFMT_EINVAL, "%s: mode %d, parameter %g: %s", fn, (int)mode, param,
                          why);
    if (!afmt__zfp_available())
        return afmt__fail(NULL, AFMT_ECODEC,
                          "%s: this afmt was built without ZFP (libzfp-dev; cmake "
                          "-DAFMT_WITH_ZFP=ON)",
                          fn);
    ao->zfp_mode = (int)mode;
    ao->zfp_param = mode == AFMT_ZFP_REVERSIBLE ? 0 : param;
    ao->codec_set = 0;
    return AFMT_OK;
}

int afmt_array_opts_set_bitround(afmt_array_opts *ao, int keepbits) {
    const char *fn = "afmt_array_opts_set_bitround";
    if (!ao) return afmt__fail(NULL, AFMT_EINVAL, "%s: ao is NULL", fn);
    if (keepbits < 0 || keepbits > 52)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "%s: %d mantissa bits is outside [0, 52] (0: off; float32 has 23)", fn,
                          keepbits);
    ao->keepbits = keepbits;
    return AFMT_OK;
}

int afmt__array_setting(afmt_file *f, const char *name, afmt_dtype t, const afmt_array_opts *ao,
                        afmt_array_rec *r) {
    const char *fn = "afmt_define_with";
    afmt_codec_setting s;
    memset(&s, 0, sizeof s);
    s.codec = AFMT_CODEC_UNSET;
    if (!ao || (!ao->codec_set && !ao->shuffle_set && !ao->zfp_mode && !ao->keepbits)) {
        afmt__codec_setting_put(&s, r);
        return AFMT_OK;
    }
    int is_float = t == AFMT_FLOAT32 || t == AFMT_FLOAT64;
    int zfp_int = (t == AFMT_INT32 || t == AFMT_INT64) && ao->zfp_mode == AFMT_ZFP_REVERSIBLE;
    if (ao->zfp_mode && !is_float && !zfp_int)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "%s(\"%s\"): ZFP's lossy modes need a float32 or float64 array, not %s "
                          "(int32 and int64 take AFMT_ZFP_REVERSIBLE only)",
                          fn, name, afmt__dtype_name(t));
    if (ao->keepbits && !is_float)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "%s(\"%s\"): bit rounding needs a float32 or float64 array, not %s", fn,
                          name, afmt__dtype_name(t));
    if (ao->keepbits && ao->zfp_mode)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "%s(\"%s\"): bit rounding and ZFP do not combine: choose one", fn, name);
    if (ao->keepbits > 23 && t == AFMT_FLOAT32)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "%s(\"%s\"): bit rounding to %d mantissa bits, but float32 has 23", fn,
                          name, ao->keepbits);
    s.codec = ao->zfp_mode ? AFMT_CODEC_ZFP : ao->codec_set ? ao->codec : f->opts.codec;
    s.level = ao->zfp_mode ? 0 : ao->codec_set ? ao->level : f->opts.level;
    s.filter = ao->keepbits ? AFMT_FILTER_BITROUND : AFMT_FILTER_NONE;
    s.keepbits = (uint32_t)ao->keepbits;
    s.zfp_mode = (uint32_t)ao->zfp_mode;
    s.zfp_param = ao->zfp_param;
    afmt__codec_setting_put(&s, r);
    /* ZFP has its own transform: shuffled bytes would only hide the values from it. */
    int shuffle = ao->shuffle_set ? ao->shuffle : f->opts.shuffle;
    if (ao->zfp_mode) shuffle = 0;
    r->flags = shuffle ? AFMT_ARRAY_SHUFFLE : 0;
    return AFMT_OK;
}

int afmt_inquire_codec(afmt_file *f, const char *name, afmt_array_codec *out) {
    const char *fn = "afmt_inquire_codec";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    if (!out) return afmt__fail(f->errmsg, AFMT_EINVAL, "%s(\"%s\"): out is NULL", fn, name);
    afmt_array *arr;
    if ((rc = afmt__lookup(f, fn, name, &arr)) != AFMT_OK) return rc;
    afmt_codec_setting s;
    char why[AFMT_ERRMSG_MAX];
    if ((rc = afmt__codec_setting_get(&arr->d, &s, why)) != AFMT_OK)
        return afmt__fail(f->errmsg, rc, "%s: %s", fn, why);
    memset(out, 0, sizeof *out);
    out->codec = s.codec;
    out->level = s.level;
    out->shuffle = (arr->d.flags & AFMT_ARRAY_SHUFFLE) != 0;
    out->zfp_mode = (afmt_zfp_mode)s.zfp_mode;
    out->zfp_param = s.zfp_param;
    out->bitround = (int)s.keepbits;
    if (s.zfp_mode == AFMT_ZFP_ACCURACY) out->abs_bound = s.zfp_param;
    if (s.keepbits) out->rel_bound = ldexp(1.0, -(int)s.keepbits - 1);
    return AFMT_OK;
}
