/* codec_params.c - the codec parameters of a v2 array record: see codec_params.h. */
#include "format/codec_params.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"

void afmt__codec_setting_put(const afmt_codec_setting *s, afmt_array_rec *r) {
    r->codec = s->codec;
    r->params_len = 0;
    if (s->codec == AFMT_CODEC_UNSET) return;
    uint8_t *p = r->params;
    uint64_t bits;
    memcpy(&bits, &s->zfp_param, sizeof bits);
    afmt__put_u32(p, 1);
    afmt__put_u32(p + 4, (uint32_t)s->level);
    afmt__put_u32(p + 8, s->filter);
    afmt__put_u32(p + 12, s->keepbits);
    afmt__put_u32(p + 16, s->zfp_mode);
    afmt__put_u32(p + 20, 0);
    afmt__put_u64(p + 24, bits);
    r->params_len = AFMT_CODEC_PARAMS_SIZE;
}

int afmt__codec_setting_get(const afmt_array_rec *r, afmt_codec_setting *s, char *why) {
    memset(s, 0, sizeof *s);
    s->codec = AFMT_CODEC_UNSET;
    if (r->codec == AFMT_CODEC_UNSET) return AFMT_OK;
    const uint8_t *p = r->params;
    if (r->params_len != AFMT_CODEC_PARAMS_SIZE || afmt__get_u32(p) != 1)
        return afmt__fail(why, AFMT_ECORRUPT,
                          "array \"%s\": codec parameters of %u bytes are not layout 1 "
                          "(format.md 6)",
                          r->name, r->params_len);
    afmt_codec_setting t;
    uint64_t bits = afmt__get_u64(p + 24);
    t.codec = r->codec;
    t.level = (int32_t)afmt__get_u32(p + 4);
    t.filter = afmt__get_u32(p + 8);
    t.keepbits = afmt__get_u32(p + 12);
    t.zfp_mode = afmt__get_u32(p + 16);
    memcpy(&t.zfp_param, &bits, sizeof bits);
    if (t.filter > AFMT_FILTER_BITROUND || (t.filter == AFMT_FILTER_BITROUND) != (t.keepbits > 0) ||
        t.keepbits > 52 || (t.codec == AFMT_CODEC_ZFP) != (t.zfp_mode != 0) || t.zfp_mode > 4 ||
        !isfinite(t.zfp_param))
        return afmt__fail(why, AFMT_ECORRUPT, "array \"%s\": its codec parameters are not valid",
                          r->name);
    *s = t;
    return AFMT_OK;
}
