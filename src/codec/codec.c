/* codec.c - the codec table: built-in none (0), LZ4 block (1), zstd frame (2), ZFP (3,
 * zfp.c: its blocks are compressed per chunk, with the chunk's field, so only its decoding
 * goes through this table), and the process-wide registry of user codecs (ids >= 256). */
#include "codec/codec.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "codec/zfp.h"
#include "common/error.h"
#include "common/util.h"

/* LZ4 levels: <0 = acceleration of LZ4 fast, 0/1 = default, 2..12 = HC. The lower limit
 * is ours: beyond ~-1000 LZ4 fast stops compressing meaningfully. */
#define LZ4_LEVEL_MIN (-1000)
#define LZ4_LEVEL_MAX LZ4HC_CLEVEL_MAX

/* ---- zstd contexts: cached per thread -------------------------------------------
 * Creating a context per call would reallocate its workspace (MBs at high levels) for
 * every block. A thread-local cache needs no locking; the pthread key only exists so
 * that a thread's contexts are freed when it exits. */
typedef struct {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
} zstd_tls;

static _Thread_local zstd_tls *tls_zstd;
static pthread_key_t zstd_key;
static int zstd_key_ok;
static pthread_once_t zstd_key_once = PTHREAD_ONCE_INIT;

static void zstd_tls_free(void *p) {
    zstd_tls *t = p;
    ZSTD_freeCCtx(t->cctx);
    ZSTD_freeDCtx(t->dctx);
    free(t);
}

static void zstd_key_init(void) {
    zstd_key_ok = pthread_key_create(&zstd_key, zstd_tls_free) == 0;
}

/* The calling thread's context holder, or NULL when out of memory. */
static zstd_tls *zstd_get_tls(void) {
    if (tls_zstd) return tls_zstd;
    pthread_once(&zstd_key_once, zstd_key_init);
    zstd_tls *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    /* Without a key (very unlikely) the holder still works; it just is not freed at
     * thread exit. */
    if (zstd_key_ok) pthread_setspecific(zstd_key, t);
    tls_zstd = t;
    return t;
}

/* ---- user codec registry -----------------------------------------------------------
 * The one process-wide mutable state of the library (like HDF5's filter table). Entries
 * are never removed, so a name pointer handed out stays valid. */
#define USER_CODECS_MAX 64

static pthread_mutex_t user_lock = PTHREAD_MUTEX_INITIALIZER;
static afmt_codec_desc user_codecs[USER_CODECS_MAX];
static size_t user_count;

/* Copies the descriptor of a user codec into *out; 0 if the id is not registered.
 * The copy lets the codec's functions run without holding the lock. */
static int user_find(uint32_t id, afmt_codec_desc *out) {
    int found = 0;
    pthread_mutex_lock(&user_lock);
    for (size_t i = 0; i < user_count; i++) {
        if (user_codecs[i].id == id) {
            if (out) *out = user_codecs[i];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&user_lock);
    return found;
}

int afmt_codec_register(const afmt_codec_desc *codec) {
    if (!codec) return afmt__fail(NULL, AFMT_EINVAL, "afmt_codec_register: codec is NULL");
    /* The version is read first: it says how the rest of the descriptor is laid out. */
    if (codec->version != AFMT_CODEC_DESC_VERSION)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_codec_register: descriptor version %u, but afmt %s takes "
                          "version %u: set .version = AFMT_CODEC_DESC_VERSION and rebuild "
                          "against this afmt.h",
                          (unsigned)codec->version, AFMT_VERSION_STRING,
                          (unsigned)AFMT_CODEC_DESC_VERSION);
    if (codec->id < 256)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_codec_register: id %u is reserved for built-in codecs (user "
                          "codecs take ids >= 256)",
                          (unsigned)codec->id);
    if (!codec->name || !codec->name[0] || !codec->bound || !codec->compress || !codec->decompress)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_codec_register: id %u: name, bound, compress and decompress "
                          "must all be set",
                          (unsigned)codec->id);
    char *name = strdup(codec->name);
    if (!name)
        return afmt__fail(NULL, AFMT_ENOMEM, "afmt_codec_register: id %u: out of memory",
                          (unsigned)codec->id);
    int rc = AFMT_OK;
    pthread_mutex_lock(&user_lock);
    for (size_t i = 0; i < user_count; i++) {
        if (user_codecs[i].id == codec->id) {
            rc = afmt__fail(NULL, AFMT_EEXIST,
                            "afmt_codec_register: id %u is already registered (as \"%s\")",
                            (unsigned)codec->id, user_codecs[i].name);
            break;
        }
    }
    if (rc == AFMT_OK && user_count == USER_CODECS_MAX)
        rc = afmt__fail(NULL, AFMT_ENOMEM,
                        "afmt_codec_register: id %u: the registry is full (%d codecs)",
                        (unsigned)codec->id, USER_CODECS_MAX);
    if (rc == AFMT_OK) {
        user_codecs[user_count] = *codec;
        user_codecs[user_count].name = name;
        user_count++;
    }
    pthread_mutex_unlock(&user_lock);
    if (rc != AFMT_OK) free(name);
    return rc;
}

/* ---- the table ---------------------------------------------------------------------- */

size_t afmt__codec_bound(uint32_t id, size_t raw_len) {
    switch (id) {
    case AFMT_CODEC_NONE:
        return raw_len;
    case AFMT_CODEC_LZ4:
        /* Beyond LZ4's input limit compress fails and the caller stores raw, so raw_len
         * is all the room that is ever needed. */
        if (raw_len > (size_t)LZ4_MAX_INPUT_SIZE) return raw_len;
        return (size_t)LZ4_compressBound((int)raw_len);
    case AFMT_CODEC_ZSTD: {
        size_t b = ZSTD_compressBound(raw_len);
        return ZSTD_isError(b) ? raw_len : b;
    }
    default: {
        afmt_codec_desc d;
        return user_find(id, &d) ? d.bound(raw_len) : 0;
    }
    }
}

static int lz4_compress(int level, const void *src, size_t src_len, void *dst, size_t dst_cap,
                        size_t *dst_len) {
    if (src_len > (size_t)LZ4_MAX_INPUT_SIZE) return AFMT_ECODEC;
    int cap = dst_cap > (size_t)INT_MAX ? INT_MAX : (int)dst_cap;
    int n;
    if (level >= 2)
        n = LZ4_compress_HC(src, dst, (int)src_len, cap, level);
    else if (level < 0)
        n = LZ4_compress_fast(src, dst, (int)src_len, cap, -level);
    else
        n = LZ4_compress_default(src, dst, (int)src_len, cap);
    if (n <= 0) return AFMT_ECODEC; /* 0: dst too small */
    *dst_len = (size_t)n;
    return AFMT_OK;
}

static int zstd_compress(int level, const void *src, size_t src_len, void *dst, size_t dst_cap,
                         size_t *dst_len) {
    zstd_tls *t = zstd_get_tls();
    if (!t) return AFMT_ENOMEM;
    if (!t->cctx && !(t->cctx = ZSTD_createCCtx())) return AFMT_ENOMEM;
    /* Reset drops parameters left by the previous call of this thread. */
    ZSTD_CCtx_reset(t->cctx, ZSTD_reset_session_and_parameters);
    if (ZSTD_isError(ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_compressionLevel,
                                            level == 0 ? ZSTD_CLEVEL_DEFAULT : level)))
        return AFMT_ECODEC;
    size_t n = ZSTD_compress2(t->cctx, dst, dst_cap, src, src_len);
    if (ZSTD_isError(n)) return AFMT_ECODEC;
    *dst_len = n;
    return AFMT_OK;
}

int afmt__codec_compress(uint32_t id, int level, const void *src, size_t src_len, void *dst,
                         size_t dst_cap, size_t *dst_len) {
    /* Codec libraries may dislike NULL even for 0 bytes; a dummy byte keeps them safe. */
    static const char empty_src = 0;
    char empty_dst;
    if (!src) src = &empty_src;
    if (!dst) {
        dst = &empty_dst;
        dst_cap = 0;
    }
    switch (id) {
    case AFMT_CODEC_NONE:
        if (dst_cap < src_len) return AFMT_ECODEC;
        if (src_len) memcpy(dst, src, src_len);
        *dst_len = src_len;
        return AFMT_OK;
    case AFMT_CODEC_LZ4:
        return lz4_compress(level, src, src_len, dst, dst_cap, dst_len);
    case AFMT_CODEC_ZSTD:
        return zstd_compress(level, src, src_len, dst, dst_cap, dst_len);
    default: {
        afmt_codec_desc d;
        if (!user_find(id, &d)) return AFMT_ECODEC;
        size_t n = 0;
        if (d.compress(src, src_len, dst, dst_cap, &n, level) != 0 || n > dst_cap)
            return AFMT_ECODEC;
        *dst_len = n;
        return AFMT_OK;
    }
    }
}

int afmt__codec_decompress(uint32_t id, const void *src, size_t src_len, void *dst,
                           size_t raw_len) {
    static const char empty_src = 0;
    char empty_dst;
    if (!src) src = &empty_src;
    if (!dst) dst = &empty_dst;
    switch (id) {
    case AFMT_CODEC_NONE:
        if (src_len != raw_len) return AFMT_ECORRUPT;
        if (raw_len) memcpy(dst, src, raw_len);
        return AFMT_OK;
    case AFMT_CODEC_LZ4: {
        /* Our compress never makes LZ4 blocks this large; LZ4's API cannot express it. */
        if (raw_len > (size_t)INT_MAX) return AFMT_ECODEC;
        /* A valid block is never empty, nor larger than the bound of its raw size. */
        if (src_len == 0 || src_len > (size_t)INT_MAX) return AFMT_ECORRUPT;
        if (raw_len <= (size_t)LZ4_MAX_INPUT_SIZE &&
            src_len > (size_t)LZ4_compressBound((int)raw_len))
            return AFMT_ECORRUPT;
        int n = LZ4_decompress_safe(src, dst, (int)src_len, (int)raw_len);
        return n >= 0 && (size_t)n == raw_len ? AFMT_OK : AFMT_ECORRUPT;
    }
    case AFMT_CODEC_ZSTD: {
        /* zstd reads empty input as zero frames (0 bytes, success); we never store that.
         * A block is exactly one zstd frame (format.md 8): ZSTD_decompress would also
         * accept several frames, skippable ones and so on, which no writer makes. */
        if (src_len < 4 || afmt__get_u32(src) != ZSTD_MAGICNUMBER ||
            ZSTD_findFrameCompressedSize(src, src_len) != src_len)
            return AFMT_ECORRUPT;
        zstd_tls *t = zstd_get_tls();
        if (!t) return AFMT_ENOMEM;
        if (!t->dctx && !(t->dctx = ZSTD_createDCtx())) return AFMT_ENOMEM;
        /* dst capacity is exactly raw_len: a frame that decodes to more fails too. */
        size_t n = ZSTD_decompressDCtx(t->dctx, dst, raw_len, src, src_len);
        if (ZSTD_isError(n)) {
            /* The context may be left mid-frame; a fresh session for the next call. */
            ZSTD_DCtx_reset(t->dctx, ZSTD_reset_session_only);
            if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation) return AFMT_ENOMEM;
            return AFMT_ECORRUPT;
        }
        return n == raw_len ? AFMT_OK : AFMT_ECORRUPT;
    }
    case AFMT_CODEC_ZFP:
        return afmt__zfp_decompress(src, src_len, dst, raw_len);
    default: {
        afmt_codec_desc d;
        if (!user_find(id, &d)) return AFMT_ECODEC;
        /* The block checksum is verified before decompression, so a user codec that fails
         * on intact stored bytes is a codec fault, not damage: ECODEC, not ECORRUPT. */
        return d.decompress(src, src_len, dst, raw_len) == 0 ? AFMT_OK : AFMT_ECODEC;
    }
    }
}

int afmt__codec_known(uint32_t id) {
    if (id <= AFMT_CODEC_ZSTD) return 1;
    if (id == AFMT_CODEC_ZFP) return afmt__zfp_available();
    return user_find(id, NULL);
}

int afmt__codec_check_level(uint32_t id, int level) {
    switch (id) {
    case AFMT_CODEC_NONE:
        return level == 0 ? AFMT_OK : AFMT_EINVAL;
    case AFMT_CODEC_LZ4:
        return level >= LZ4_LEVEL_MIN && level <= LZ4_LEVEL_MAX ? AFMT_OK : AFMT_EINVAL;
    case AFMT_CODEC_ZSTD:
        if (level == 0) return AFMT_OK;
        return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel() ? AFMT_OK : AFMT_EINVAL;
    case AFMT_CODEC_ZFP: /* its setting is the mode and parameter, not a level */
        if (!afmt__zfp_available()) return AFMT_ECODEC;
        return level == 0 ? AFMT_OK : AFMT_EINVAL;
    default:
        /* A user codec interprets its level itself. */
        return user_find(id, NULL) ? AFMT_OK : AFMT_ECODEC;
    }
}

const char *afmt__codec_name(uint32_t id) {
    switch (id) {
    case AFMT_CODEC_NONE:
        return "none";
    case AFMT_CODEC_LZ4:
        return "lz4";
    case AFMT_CODEC_ZSTD:
        return "zstd";
    case AFMT_CODEC_ZFP:
        return "zfp";
    default: {
        afmt_codec_desc d;
        /* Registered names are never freed, so the pointer outlives the lock. */
        return user_find(id, &d) ? d.name : "unknown";
    }
    }
}
