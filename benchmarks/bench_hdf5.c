/* bench_hdf5.c - the parallel HDF5 baseline of afmt-bench: one file per write phase
 * (H5Pset_fapl_mpio, collective metadata), one chunked dataset per array and time step
 * ("name.step"), written and read with collective transfers (H5FD_MPIO_COLLECTIVE) on the
 * same slabs and chunk shape as afmt. Filters: none, or HDF5's shuffle followed by LZ4
 * (registered id 32004) or zstd (id 32015), both registered here with H5Zregister:
 * Debian's filter plugins are built against the serial library, and parallel HDF5 >=
 * 1.10.2 applies filters in collective writes.
 *
 * The LZ4 filter writes the format of the HDF Group's LZ4 plugin (H5Zlz4.c), so files
 * are readable by any HDF5 with that plugin:
 *   [u64 BE original size][u32 BE block size]
 *   then per block of block size bytes (the last one shorter):
 *   [u32 BE stored size][stored bytes]   (stored size == raw block size: stored raw)
 * cd_values[0] = block size (0: 1 GiB, so a chunk is one block), cd_values[1] = LZ4
 * level (0/1 default, < 0 faster, >= 2 HC).
 * The zstd filter (id 32015, as the registered plugin) stores one zstd frame;
 * cd_values[0] = level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>
#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>

#include "bench_common.h"

#define FILTER_LZ4        32004
#define FILTER_ZSTD       32015
#define LZ4_DEFAULT_BLOCK (1u << 30)

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_be64(uint8_t *p, uint64_t v) {
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}
static uint64_t get_be64(const uint8_t *p) {
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static int lz4_block(const char *src, char *dst, int n, int cap, int level) {
    if (level >= LZ4HC_CLEVEL_MIN) return LZ4_compress_HC(src, dst, n, cap, level);
    return LZ4_compress_fast(src, dst, n, cap, level < 0 ? 1 - level : 1);
}

/* The H5Z_func_t of filter 32004. Returns the size of the new contents of *buf, or 0 on
 * failure (HDF5 then fails the I/O, or for an optional filter stores the chunk raw). */
static size_t lz4_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                         size_t nbytes, size_t *buf_size, void **buf) {
    const uint8_t *in = *buf;
    uint8_t *out = NULL;
    if (flags & H5Z_FLAG_REVERSE) {
        if (nbytes < 12) return 0;
        uint64_t orig = get_be64(in);
        uint64_t bs = get_be32(in + 8);
        if (orig > INT32_MAX) return 0;
        if (bs > orig) bs = orig;
        if (bs == 0 && orig > 0) return 0;
        out = malloc(orig ? (size_t)orig : 1);
        if (!out) return 0;
        size_t pos = 12;
        uint64_t done = 0;
        while (done < orig) {
            uint64_t rb = orig - done < bs ? orig - done : bs;
            if (pos + 4 > nbytes) goto fail;
            uint32_t cs = get_be32(in + pos);
            pos += 4;
            if (cs > nbytes - pos) goto fail;
            if (cs == rb) {
                memcpy(out + done, in + pos, (size_t)rb);
            } else if (LZ4_decompress_safe((const char *)in + pos, (char *)out + done, (int)cs,
                                           (int)rb) != (int)rb) {
                goto fail;
            }
            pos += cs;
            done += rb;
        }
        free(*buf);
        *buf = out;
        *buf_size = (size_t)orig;
        return (size_t)orig;
    }
    if (nbytes > INT32_MAX || nbytes == 0) return 0;
    size_t bs = cd_nelmts > 0 && cd_values[0] > 0 ? cd_values[0] : LZ4_DEFAULT_BLOCK;
    int level = cd_nelmts > 1 ? (int)cd_values[1] : 0;
    if (bs > nbytes) bs = nbytes;
    size_t nblocks = (nbytes - 1) / bs + 1;
    int bound = LZ4_compressBound((int)bs);
    if (bound <= 0) return 0;
    size_t cap = 12 + nblocks * (4 + (size_t)bound);
    out = malloc(cap);
    if (!out) return 0;
    put_be64(out, nbytes);
    put_be32(out + 8, (uint32_t)bs);
    size_t pos = 12;
    for (size_t done = 0; done < nbytes; done += bs) {
        size_t rb = nbytes - done < bs ? nbytes - done : bs;
        int cs = lz4_block((const char *)in + done, (char *)out + pos + 4, (int)rb, bound, level);
        if (cs <= 0) goto fail;
        if ((size_t)cs >= rb) { /* no gain: the block is stored raw */
            cs = (int)rb;
            memcpy(out + pos + 4, in + done, rb);
        }
        put_be32(out + pos, (uint32_t)cs);
        pos += 4 + (size_t)cs;
    }
    free(*buf);
    *buf = out;
    *buf_size = cap;
    return pos;
fail:
    free(out);
    return 0;
}

/* The H5Z_func_t of filter 32015: one zstd frame. */
static size_t zstd_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                          size_t nbytes, size_t *buf_size, void **buf) {
    void *out;
    size_t n;
    if (flags & H5Z_FLAG_REVERSE) {
        unsigned long long orig = ZSTD_getFrameContentSize(*buf, nbytes);
        if (orig == ZSTD_CONTENTSIZE_ERROR || orig == ZSTD_CONTENTSIZE_UNKNOWN) return 0;
        out = malloc(orig ? (size_t)orig : 1);
        if (!out) return 0;
        n = ZSTD_decompress(out, (size_t)orig, *buf, nbytes);
        if (ZSTD_isError(n) || n != orig) {
            free(out);
            return 0;
        }
        free(*buf);
        *buf = out;
        *buf_size = (size_t)orig;
        return n;
    }
    int level = cd_nelmts > 0 ? (int)cd_values[0] : 3;
    size_t cap = ZSTD_compressBound(nbytes);
    out = malloc(cap);
    if (!out) return 0;
    n = ZSTD_compress(out, cap, *buf, nbytes, level ? level : 3);
    if (ZSTD_isError(n)) {
        free(out);
        return 0;
    }
    free(*buf);
    *buf = out;
    *buf_size = cap;
    return n;
}

static void register_filters(void) {
    static int done;
    if (done) return;
    done = 1;
    /* Our filters, not a serial plugin found on HDF5_PLUGIN_PATH. */
    H5PLset_loading_state(0);
    static const H5Z_class2_t lz4 = {H5Z_CLASS_T_VERS,
                                     (H5Z_filter_t)FILTER_LZ4,
                                     1,
                                     1,
                                     "lz4 (HDF5 plugin format, afmt-bench)",
                                     NULL,
                                     NULL,
                                     lz4_filter};
    static const H5Z_class2_t zstd = {
        H5Z_CLASS_T_VERS, (H5Z_filter_t)FILTER_ZSTD, 1, 1, "zstd (afmt-bench)", NULL, NULL,
        zstd_filter};
    if (H5Zregister(&lz4) < 0 || H5Zregister(&zstd) < 0) bench_die("H5Zregister failed");
}

int bench_hdf5_available(void) {
    return 1;
}

#define BH5_CHECK(x)                                                                               \
    do {                                                                                           \
        if ((x) < 0) {                                                                             \
            H5Eprint2(H5E_DEFAULT, stderr);                                                        \
            bench_die("HDF5 call failed: %s (%s:%d)", #x, __FILE__, __LINE__);                     \
        }                                                                                          \
    } while (0)

static hid_t h5type(const bench_array *a) {
    return a->dt == DT_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
}

static hid_t make_fapl(MPI_Comm comm) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    BH5_CHECK(fapl);
    BH5_CHECK(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
    BH5_CHECK(H5Pset_all_coll_metadata_ops(fapl, 1));
    BH5_CHECK(H5Pset_coll_metadata_write(fapl, 1));
    BH5_CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST));
    return fapl;
}

static void dset_name(char *buf, size_t n, const bench_array *a, int step) {
    snprintf(buf, n, "%s.%d", a->name, step);
}

void bench_hdf5_write(const bench_case *c, bench_work *w, bench_rep *r) {
    register_filters();
    hid_t fapl = make_fapl(w->world), dxpl = H5Pcreate(H5P_DATASET_XFER);
    BH5_CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
    double tw = 0;
    MPI_Barrier(w->world);
    double t0 = bench_now();
    hid_t file = H5Fcreate(c->path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    BH5_CHECK(file);
    double t1 = bench_now();
    for (int s = 0; s < c->steps; s++) {
        double a0 = bench_now();
        for (int i = 0; i < w->narr; i++) {
            bench_array *a = &w->arr[i];
            hsize_t gs[BENCH_MAXDIM], ch[BENCH_MAXDIM], st[BENCH_MAXDIM], ct[BENCH_MAXDIM];
            for (int d = 0; d < a->ndim; d++) {
                gs[d] = a->gshape[d];
                ch[d] = a->chunk[d];
                st[d] = a->wstart[d];
                ct[d] = a->wcount[d];
            }
            hid_t space = H5Screate_simple(a->ndim, gs, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
            BH5_CHECK(H5Pset_chunk(dcpl, a->ndim, ch));
            BH5_CHECK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER));
            if (c->codec) {
                if (c->shuffle) BH5_CHECK(H5Pset_shuffle(dcpl));
                if (c->codec == 1) {
                    unsigned cd[2] = {0, (unsigned)c->level};
                    BH5_CHECK(H5Pset_filter(dcpl, FILTER_LZ4, H5Z_FLAG_MANDATORY, 2, cd));
                } else {
                    unsigned cd[1] = {(unsigned)c->level};
                    BH5_CHECK(H5Pset_filter(dcpl, FILTER_ZSTD, H5Z_FLAG_MANDATORY, 1, cd));
                }
            }
            char name[64];
            dset_name(name, sizeof name, a, s);
            hid_t ds = H5Dcreate2(file, name, h5type(a), space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            BH5_CHECK(ds);
            hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(a->ndim, ct, NULL);
            BH5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, ct, NULL));
            BH5_CHECK(H5Dwrite(ds, h5type(a), ms, fs, dxpl, a->data));
            H5Sclose(ms);
            H5Sclose(fs);
            H5Dclose(ds);
            H5Pclose(dcpl);
            H5Sclose(space);
        }
        tw += bench_now() - a0;
    }
    double t2 = bench_now();
    BH5_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL));
    BH5_CHECK(H5Fclose(file));
    double t3 = bench_now();
    H5Pclose(dxpl);
    H5Pclose(fapl);
    r->m[M_W_TOTAL] = bench_max(w->world, t3 - t0);
    r->m[M_W_CREATE] = bench_max(w->world, t1 - t0);
    r->m[M_W_WRITE] = bench_max(w->world, tw);
    r->m[M_W_CLOSE] = bench_max(w->world, t3 - t2);
}

void bench_hdf5_read(const bench_case *c, bench_work *w, bench_rep *r, void **bufs) {
    register_filters();
    hid_t fapl = make_fapl(w->rcomm), dxpl = H5Pcreate(H5P_DATASET_XFER);
    BH5_CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
    MPI_Barrier(w->rcomm);
    double t0 = bench_now();
    hid_t file = H5Fopen(c->path, H5F_ACC_RDONLY, fapl);
    BH5_CHECK(file);
    double t1 = bench_now();
    for (int i = 0; i < w->narr; i++) {
        bench_array *a = &w->arr[i];
        hsize_t st[BENCH_MAXDIM], ct[BENCH_MAXDIM];
        for (int d = 0; d < a->ndim; d++) {
            st[d] = a->rstart[d];
            ct[d] = a->rcount[d];
        }
        char name[64];
        dset_name(name, sizeof name, a, c->steps - 1);
        hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
        BH5_CHECK(ds);
        hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(a->ndim, ct, NULL);
        BH5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, ct, NULL));
        BH5_CHECK(H5Dread(ds, h5type(a), ms, fs, dxpl, bufs[i]));
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(ds);
    }
    double t2 = bench_now();
    BH5_CHECK(H5Fclose(file));
    double t3 = bench_now();
    H5Pclose(dxpl);
    H5Pclose(fapl);
    r->m[M_R_TOTAL] = bench_max(w->rcomm, t3 - t0);
    r->m[M_R_OPEN] = bench_max(w->rcomm, t1 - t0);
    r->m[M_R_READ] = bench_max(w->rcomm, t2 - t1);
    r->m[M_R_CLOSE] = bench_max(w->rcomm, t3 - t2);
}
