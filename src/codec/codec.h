/* codec.h - the codec table: built-in none/LZ4/zstd with stable on-disk ids, plus
 * user codecs registered with afmt_codec_register (ids >= 256). */
#ifndef AFMT_CODEC_H
#define AFMT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "afmt.h"

/* Largest stored size the codec may produce for raw_len bytes; 0 if the id is unknown. */
size_t afmt__codec_bound(uint32_t id, size_t raw_len);

/* Compresses src into dst (capacity dst_cap >= afmt__codec_bound). Returns AFMT_OK and
 * sets *dst_len; AFMT_ECODEC if the id is unknown or the codec failed. Callers store the
 * block raw (codec 0) when *dst_len >= src_len. level 0 = the codec's default. */
int afmt__codec_compress(uint32_t id, int level, const void *src, size_t src_len, void *dst,
                         size_t dst_cap, size_t *dst_len);

/* Decompresses exactly raw_len bytes. AFMT_ECODEC if the id is unknown to this process,
 * AFMT_ECORRUPT if the stored bytes do not decode to exactly raw_len bytes. */
int afmt__codec_decompress(uint32_t id, const void *src, size_t src_len, void *dst, size_t raw_len);

/* 1 if the id is known to this process. */
int afmt__codec_known(uint32_t id);
/* AFMT_OK if level is valid for the codec, else AFMT_EINVAL (unknown id: AFMT_ECODEC). */
int afmt__codec_check_level(uint32_t id, int level);
/* "none", "lz4", "zstd", a user codec's name, or "unknown". */
const char *afmt__codec_name(uint32_t id);

#endif
