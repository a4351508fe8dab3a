/* codec_params.h - the codec parameters of a v2 array record (format.md 6): an array's own
 * compression setting, as afmt_define_with records it and every writer reads it back. */
#ifndef AFMT_CODEC_PARAMS_H
#define AFMT_CODEC_PARAMS_H

#include <stdint.h>

#include "format/footer.h"

#define AFMT_CODEC_PARAMS_SIZE 32 /* layout 1 */
#define AFMT_FILTER_NONE       0
#define AFMT_FILTER_BITROUND   1

/* An array's compression setting. codec AFMT_CODEC_UNSET: the writer's default (no
 * parameters); the rest is then zero. */
typedef struct {
    uint32_t codec;
    int32_t level;
    uint32_t filter;   /* AFMT_FILTER_* */
    uint32_t keepbits; /* with AFMT_FILTER_BITROUND */
    uint32_t zfp_mode; /* with codec AFMT_CODEC_ZFP: afmt_zfp_mode */
    double zfp_param;
} afmt_codec_setting;

/* The record's codec fields from s: codec, and the 32 bytes of layout 1 (none when
 * s->codec is AFMT_CODEC_UNSET). */
void afmt__codec_setting_put(const afmt_codec_setting *s, afmt_array_rec *r);
/* The setting a record holds: AFMT_OK, or AFMT_ECORRUPT with why (AFMT_ERRMSG_MAX bytes)
 * when its parameters are not layout 1 (then *s is the writer's default). A record
 * without a setting (codec AFMT_CODEC_UNSET) is the default. */
int afmt__codec_setting_get(const afmt_array_rec *r, afmt_codec_setting *s, char *why);

#endif
