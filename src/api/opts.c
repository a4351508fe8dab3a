/* opts.c - the options object: codec, shuffle, block size, memory budget, spill
 * directory, cache size, MPI_Info hints, alignment, threads, storage backend, the check of
 * collective calls, durability, retention. */
#include <stdlib.h>
#include <string.h>

#include "api/file.h"
#include "codec/codec.h"

#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

#define MAX_THREADS 256 /* pool.c starts at most 255 workers */

static void opts_defaults(afmt_opts *o) {
    memset(o, 0, sizeof *o);
    o->codec = AFMT_CODEC_LZ4;
    o->level = 0;
    o->shuffle = 1;
    o->block_size = 4 * MIB;
    o->mem_budget = 512 * MIB;
    o->cache_size = 64 * MIB;
    o->index_cache = 64 * MIB;
    o->spill_dir = NULL;
    o->info = MPI_INFO_NULL;
    o->storage = AFMT_STORAGE_MPIIO;
    o->check_collective = 1;
}

int afmt_opts_create(afmt_opts **o) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_create: o is NULL");
    *o = malloc(sizeof **o);
    if (!*o) return afmt__fail(NULL, AFMT_ENOMEM, "afmt_opts_create: out of memory");
    opts_defaults(*o);
    return AFMT_OK;
}

int afmt_opts_set_codec(afmt_opts *o, afmt_codec c, int level) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_codec: opts is NULL");
    uint32_t id = (uint32_t)c;
    if (id == AFMT_CODEC_ZFP) /* it needs a mode and a float dtype: per array */
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_opts_set_codec: ZFP is set per array "
                          "(afmt_array_opts_set_zfp, afmt_define_with)");
    if (!afmt__codec_known(id))
        return afmt__fail(NULL, AFMT_ECODEC, "afmt_opts_set_codec: codec id %d is not known",
                          (int)c);
    if (afmt__codec_check_level(id, level) != AFMT_OK)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_opts_set_codec: level %d is out of range for codec %s", level,
                          afmt__codec_name(id));
    o->codec = id;
    o->level = level;
    return AFMT_OK;
}

int afmt_opts_set_shuffle(afmt_opts *o, int on) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_shuffle: opts is NULL");
    o->shuffle = on != 0;
    return AFMT_OK;
}

int afmt_opts_set_check_bounds(afmt_opts *o, int on) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_check_bounds: opts is NULL");
    o->check_bounds = on != 0;
    return AFMT_OK;
}

int afmt_opts_set_check_collective(afmt_opts *o, int on) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_check_collective: opts is NULL");
    o->check_collective = on != 0;
    return AFMT_OK;
}

int afmt_opts_set_block_size(afmt_opts *o, uint64_t bytes) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_block_size: opts is NULL");
    if (bytes < KIB || bytes > GIB)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_opts_set_block_size: %llu bytes is outside [1024, 1073741824]",
                          (unsigned long long)bytes);
    o->block_size = bytes;
    return AFMT_OK;
}

int afmt_opts_set_mem_budget(afmt_opts *o, uint64_t bytes) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_mem_budget: opts is NULL");
    o->mem_budget = bytes;
    return AFMT_OK;
}

int afmt_opts_set_spill_dir(afmt_opts *o, const char *dir) {
    if (!o || !dir || !*dir)
        return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_spill_dir: %s is NULL or empty",
                          o ? "dir" : "opts");
    char *d = strdup(dir);
    if (!d) return afmt__fail(NULL, AFMT_ENOMEM, "afmt_opts_set_spill_dir: out of memory");
    free(o->spill_dir);
    o->spill_dir = d;
    return AFMT_OK;
}

int afmt_opts_set_mpi_info(afmt_opts *o, MPI_Info info) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_mpi_info: opts is NULL");
    MPI_Info dup = MPI_INFO_NULL;
    if (info != MPI_INFO_NULL && MPI_Info_dup(info, &dup) != MPI_SUCCESS)
        return afmt__fail(NULL, AFMT_EMPI, "afmt_opts_set_mpi_info: MPI_Info_dup failed");
    if (o->info != MPI_INFO_NULL) MPI_Info_free(&o->info);
    o->info = dup;
    return AFMT_OK;
}

int afmt_opts_set_cache_size(afmt_opts *o, uint64_t bytes) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_cache_size: opts is NULL");
    o->cache_size = bytes;
    return AFMT_OK;
}

int afmt_opts_set_index_cache(afmt_opts *o, uint64_t bytes) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_index_cache: opts is NULL");
    o->index_cache = bytes ? bytes : 1; /* 0: only the segment in use */
    return AFMT_OK;
}

int afmt_opts_set_threads(afmt_opts *o, int n) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_threads: opts is NULL");
    if (n < 0 || n > MAX_THREADS)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_opts_set_threads: %d threads is outside [0, %d] (0: this rank's "
                          "share of its node's cores)",
                          n, MAX_THREADS);
    o->threads = n;
    return AFMT_OK;
}

int afmt_opts_set_alignment(afmt_opts *o, uint64_t bytes) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_alignment: opts is NULL");
    if (bytes != 0 && (bytes < 512 || bytes > GIB || (bytes & (bytes - 1)) != 0))
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_opts_set_alignment: %llu bytes is neither 0 (off) nor a power "
                          "of two in [512, 1073741824]",
                          (unsigned long long)bytes);
    o->alignment = bytes;
    return AFMT_OK;
}

int afmt_opts_set_durability(afmt_opts *o, afmt_durability d) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_durability: opts is NULL");
    if (d != AFMT_DURABILITY_FULL && d != AFMT_DURABILITY_DATA && d != AFMT_DURABILITY_NONE)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_opts_set_durability: %d is not a level (AFMT_DURABILITY_FULL 0, "
                          "_DATA 1 or _NONE 2)",
                          (int)d);
    o->durability = d;
    return AFMT_OK;
}

int afmt_opts_set_retention(afmt_opts *o, uint64_t keep, double dead_fraction) {
    if (!o) return afmt__fail(NULL, AFMT_EINVAL, "afmt_opts_set_retention: opts is NULL");
    if (!(dead_fraction >= 0.0 && dead_fraction < 1.0)) /* NaN fails too */
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_opts_set_retention: dead fraction %g is outside [0, 1) (0: off)",
                          dead_fraction);
    o->keep = keep;
    o->dead_fraction = dead_fraction;
    return AFMT_OK;
}

#ifdef AFMT_TESTING /* a test hook: the public API has only MPI-IO */
int afmt__opts_set_backend(afmt_opts *o, const char *name) {
    if (!o || !name) return afmt__fail(NULL, AFMT_EINVAL, "afmt__opts_set_backend: NULL argument");
    if (!strcmp(name, "mpiio"))
        o->storage = AFMT_STORAGE_MPIIO;
    else if (!strcmp(name, "posix"))
        o->storage = AFMT_STORAGE_POSIX;
    else if (!strcmp(name, "memory"))
        o->storage = AFMT_STORAGE_MEMORY;
    else
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt__opts_set_backend: \"%s\" is not one of mpiio, posix, memory",
                          name);
    return AFMT_OK;
}
#endif

void afmt__opts_clear(afmt_opts *o) {
    free(o->spill_dir);
    if (o->info != MPI_INFO_NULL) MPI_Info_free(&o->info);
    memset(o, 0, sizeof *o);
    o->info = MPI_INFO_NULL;
}

int afmt__opts_copy(afmt_opts *dst, const afmt_opts *src) {
    opts_defaults(dst);
    if (!src) return AFMT_OK;
    *dst = *src;
    dst->spill_dir = NULL;
    dst->info = MPI_INFO_NULL;
    if (src->spill_dir && !(dst->spill_dir = strdup(src->spill_dir))) return AFMT_ENOMEM;
    if (src->info != MPI_INFO_NULL && MPI_Info_dup(src->info, &dst->info) != MPI_SUCCESS)
        return AFMT_EMPI;
    return AFMT_OK;
}

int afmt_opts_free(afmt_opts *o) {
    if (!o) return AFMT_OK;
    afmt__opts_clear(o);
    free(o);
    return AFMT_OK;
}
