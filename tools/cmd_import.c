/* cmd_import.c - afmt import: the numeric datasets of an HDF5 (or netCDF-4) file, with
 * their dimension names and attributes, as an afmt file. Every rank reads the HDF5 file;
 * the writing of each array's slabs is divided among the ranks. Built only when HDF5 is
 * found (AFMT_HAVE_HDF5). */
#include <stdlib.h>
#include <string.h>

#include "h5common.h"

typedef struct {
    afmt_file *f;
    const char *path; /* the HDF5 file, for warnings */
    int failed;
    char why[AFMT_ERRMSG_MAX + 300];
    int pass; /* 0: define arrays and attributes; 1: write values */
} imp;

static void warn(const char *h5, const char *fmt, const char *name, const char *what) {
    if (cli.rank != 0) return;
    char e1[CLI_ESC_SIZE(1024)], e2[CLI_ESC_NAME];
    fprintf(stderr, "afmt: %s: ", cli_esc(h5, e1, sizeof e1));
    fprintf(stderr, fmt, cli_esc(name, e2, sizeof e2), what);
    fputc('\n', stderr);
}

/* Attributes HDF5 and netCDF-4 keep for their own bookkeeping. */
static int internal_attr(const char *k) {
    static const char *const skip[] = {
        "DIMENSION_LIST",      "REFERENCE_LIST", "CLASS",      "NAME",        "_Netcdf4Dimid",
        "_Netcdf4Coordinates", "_NCProperties",  "_FillValue", "_nc3_strict", "_IsNetcdf4"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strcmp(k, skip[i])) return 1;
    return 0;
}

typedef struct {
    imp *m;
    const char *array; /* NULL: file attributes */
} attr_ctx;

static herr_t one_attr(hid_t loc, const char *key, const H5A_info_t *ai, void *op) {
    (void)ai;
    attr_ctx *c = op;
    imp *m = c->m;
    if (internal_attr(key)) return 0;
    hid_t a = H5Aopen(loc, key, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t type = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    int t = afmt_of_h5(type);
    void *buf = NULL;
    uint64_t n = 0;
    int ok = 0;
    char label[AFMT_MAX_NAME + 300];
    snprintf(label, sizeof label, "%s%s%s", c->array ? c->array : "", c->array ? ":" : "/", key);
    if (H5Tget_class(type) == H5T_STRING && np == 1 && !H5Tis_variable_str(type)) {
        size_t sz = H5Tget_size(type);
        buf = calloc(sz + 1, 1);
        if (buf && H5Aread(a, type, buf) >= 0) {
            n = strnlen(buf, sz);
            t = AFMT_UINT8;
            ok = 1;
        }
    } else if (H5Tget_class(type) == H5T_STRING && np == 1) {
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(type)); /* no conversion between ASCII and UTF-8 */
        if (H5Aread(a, mt, &s) >= 0 && s) {
            n = strlen(s);
            buf = malloc(n + 1);
            if (buf) memcpy(buf, s, n + 1);
            t = AFMT_UINT8;
            ok = buf != NULL;
            H5free_memory(s);
        }
        H5Tclose(mt);
    } else if (t >= 0 && np >= 0) {
        n = (uint64_t)np;
        buf = malloc(n ? (size_t)n * cli_dtype_size((afmt_dtype)t) : 1);
        hid_t mt = mem_type(type, t);
        if (buf && (n == 0 || H5Aread(a, mt, buf) >= 0)) ok = 1;
        H5Tclose(mt);
    }
    if (!ok)
        warn(m->path, "skipping attribute %s (%s)", label,
             H5Tget_class(type) == H5T_STRING && np != 1 ? "an array of strings"
             : H5Tget_class(type) == H5T_STRING          ? "unreadable string"
                                                         : h5_class_name(type));
    else if (afmt_set_attr(m->f, c->array, key, (afmt_dtype)t, n, buf) != AFMT_OK) {
        snprintf(m->why, sizeof m->why, "attribute %s: %s", label, afmt_errmsg(m->f));
        m->failed = 1;
    }
    free(buf);
    H5Sclose(sp);
    H5Tclose(type);
    H5Aclose(a);
    return m->failed ? -1 : 0;
}

static int attrs_of(imp *m, hid_t loc, const char *array) {
    attr_ctx c = {m, array};
    hsize_t idx = 0;
    H5Aiterate2(loc, H5_INDEX_NAME, H5_ITER_INC, &idx, one_attr, &c);
    return m->failed ? -1 : 0;
}

/* Whether ds is a netCDF-4 dimension without a variable. */
static int nc_dim_only(hid_t ds) {
    if (H5DSis_scale(ds) <= 0) return 0;
    char nm[128] = "";
    if (H5DSget_scale_name(ds, nm, sizeof nm) < 0) return 0;
    return strncmp(nm, NC_DIM_ONLY, strlen(NC_DIM_ONLY)) == 0;
}

/* The afmt chunk shape: the HDF5 chunking if any, else about 4 MiB chunks (the leading
 * dimensions halved). */
static void chunk_of(hid_t ds, int nd, const uint64_t *shape, size_t es, uint64_t *chunk) {
    hid_t dcpl = H5Dget_create_plist(ds);
    hsize_t hc[AFMT_MAX_NDIM];
    int have = H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, nd, hc) == nd;
    H5Pclose(dcpl);
    for (int d = 0; d < nd; d++) {
        chunk[d] = have ? (uint64_t)hc[d] : shape[d];
        if (chunk[d] > shape[d] || chunk[d] == 0) chunk[d] = shape[d];
    }
    uint64_t limit = have ? AFMT_MAX_CHUNK_BYTES : (uint64_t)4 << 20;
    for (int d = 0; d < nd; d++) {
        uint64_t b = es;
        for (int e = 0; e < nd; e++) b = b > UINT64_MAX / chunk[e] ? UINT64_MAX : b * chunk[e];
        while (b > limit && chunk[d] > 1) {
            chunk[d] = (chunk[d] + 1) / 2;
            b = es;
            for (int e = 0; e < nd; e++) b = b > UINT64_MAX / chunk[e] ? UINT64_MAX : b * chunk[e];
        }
    }
}

/* The name of the first dimension scale attached to dimension d of ds ("" if none): the
 * scale dataset's name (its last path component). */
static herr_t scale_cb(hid_t did, unsigned dim, hid_t dsid, void *op) {
    (void)did;
    (void)dim;
    char path[1024] = "";
    if (H5Iget_name(dsid, path, sizeof path) > 0) {
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        if (strlen(b) <= AFMT_MAX_DIMNAME) snprintf(op, AFMT_MAX_DIMNAME + 1, "%s", b);
    }
    return 1;
}

static int one_dataset(imp *m, hid_t ds, const char *name) {
    hid_t type = H5Dget_type(ds), sp = H5Dget_space(ds);
    int t = afmt_of_h5(type);
    H5S_class_t sc = H5Sget_simple_extent_type(sp);
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t hd[AFMT_MAX_NDIM];
    uint64_t shape[AFMT_MAX_NDIM], chunk[AFMT_MAX_NDIM];
    int rc = 0;
    const char *skip = NULL;
    if (nc_dim_only(ds)) goto out; /* a netCDF dimension, not a variable */
    if (t < 0)
        skip = h5_class_name(type);
    else if (sc == H5S_NULL)
        skip = "no dataspace";
    else if (nd < 0 || nd > AFMT_MAX_NDIM)
        skip = "too many dimensions";
    else if (strlen(name) > AFMT_MAX_NAME)
        skip = "name too long";
    if (!skip) {
        H5Sget_simple_extent_dims(sp, hd, NULL);
        for (int d = 0; d < nd; d++) {
            shape[d] = (uint64_t)hd[d];
            if (!shape[d]) skip = "a dimension of length 0";
        }
    }
    if (skip) {
        if (m->pass == 0) warn(m->path, "skipping dataset \"%s\" (%s)", name, skip);
        goto out;
    }
    size_t es = cli_dtype_size((afmt_dtype)t);
    chunk_of(ds, nd, shape, es, chunk);
    if (m->pass == 0) {
        char dn[AFMT_MAX_NDIM][AFMT_MAX_DIMNAME + 1];
        const char *dims[AFMT_MAX_NDIM];
        for (int d = 0; d < nd; d++) {
            dn[d][0] = 0;
            if (H5DSget_num_scales(ds, (unsigned)d) > 0)
                H5DSiterate_scales(ds, (unsigned)d, NULL, scale_cb, dn[d]);
            /* a coordinate variable (a 1-D dimension scale) is its own dimension */
            if (!dn[d][0] && nd == 1 && H5DSis_scale(ds) > 0) {
                const char *b = strrchr(name, '/');
                b = b ? b + 1 : name;
                if (strlen(b) <= AFMT_MAX_DIMNAME) snprintf(dn[d], sizeof dn[d], "%s", b);
            }
            if (!dn[d][0]) snprintf(dn[d], sizeof dn[d], "dim%d", d);
            dims[d] = dn[d];
        }
        uint8_t fill[8] = {0};
        hid_t dcpl = H5Dget_create_plist(ds);
        H5D_fill_value_t fv;
        if (H5Pfill_value_defined(dcpl, &fv) >= 0 && fv == H5D_FILL_VALUE_USER_DEFINED) {
            hid_t mt = mem_type(type, t);
            H5Pget_fill_value(dcpl, mt, fill);
            H5Tclose(mt);
        }
        H5Pclose(dcpl);
        if (afmt_define(m->f, name, (afmt_dtype)t, nd, shape, chunk, dims, fill) != AFMT_OK) {
            snprintf(m->why, sizeof m->why, "dataset \"%s\": %s", name, afmt_errmsg(m->f));
            rc = -1;
        } else {
            rc = attrs_of(m, ds, name);
        }
        goto out;
    }
    /* pass 1: the values, in slabs shared among the ranks */
    afmt_info info;
    memset(&info, 0, sizeof info);
    info.dtype = (afmt_dtype)t;
    info.ndim = nd;
    for (int d = 0; d < nd; d++) {
        info.shape[d] = shape[d];
        info.chunk[d] = chunk[d];
    }
    cli_slabs s;
    cli_slabs_init(&s, &info, NULL, NULL, es, cli_slab_budget());
    void *buf = malloc((size_t)(s.max_elems * es) + 1);
    if (!buf) {
        snprintf(m->why, sizeof m->why, "out of memory");
        rc = -1;
        goto out;
    }
    uint64_t lo, hi, st[AFMT_MAX_NDIM], cn[AFMT_MAX_NDIM];
    cli_slab_share(s.n, cli.rank, cli.size, &lo, &hi);
    for (uint64_t i = lo; i < hi && rc == 0; i++) {
        cli_slab_at(&s, i, st, cn);
        hid_t msp;
        if (nd == 0) {
            msp = H5Screate(H5S_SCALAR);
            H5Sselect_all(sp);
        } else {
            hsize_t hs[AFMT_MAX_NDIM], hc[AFMT_MAX_NDIM];
            for (int d = 0; d < nd; d++) {
                hs[d] = (hsize_t)st[d];
                hc[d] = (hsize_t)cn[d];
            }
            msp = H5Screate_simple(nd, hc, NULL);
            H5Sselect_hyperslab(sp, H5S_SELECT_SET, hs, NULL, hc, NULL);
        }
        hid_t mt = mem_type(type, t);
        herr_t hr = H5Dread(ds, mt, msp, sp, H5P_DEFAULT, buf);
        H5Tclose(mt);
        if (hr < 0) {
            snprintf(m->why, sizeof m->why, "reading dataset \"%s\" failed", name);
            rc = -1;
        } else if (afmt_write(m->f, name, st, cn, buf) != AFMT_OK) {
            snprintf(m->why, sizeof m->why, "dataset \"%s\": %s", name, afmt_errmsg(m->f));
            rc = -1;
        }
        H5Sclose(msp);
    }
    free(buf);
out:
    H5Sclose(sp);
    H5Tclose(type);
    return rc;
}

#if H5_VERSION_GE(1, 12, 0)
typedef H5O_info2_t h5_oinfo;
#define h5_visit(o, i, ord, cb, d) H5Ovisit3(o, i, ord, cb, d, H5O_INFO_BASIC)
#else
typedef H5O_info_t h5_oinfo;
#define h5_visit(o, i, ord, cb, d) H5Ovisit2(o, i, ord, cb, d, H5O_INFO_BASIC)
#endif

static herr_t visit_cb(hid_t obj, const char *name, const h5_oinfo *oi, void *op) {
    imp *m = op;
    if (oi->type != H5O_TYPE_DATASET || m->failed) return 0;
    hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
    if (ds < 0) return 0;
    if (one_dataset(m, ds, name) != 0) m->failed = 1;
    H5Dclose(ds);
    return m->failed ? -1 : 0;
}

int cmd_import(int argc, char **argv) {
    static const cli_optdef defs[] = {{"force", 0, 0}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 2) return cli_usage_error("import", "expected IN.h5 and FILE");
    const char *in = a.pos[0], *path = a.pos[1];
    int force = a.val[cli_opt(defs, "force")] != NULL;
    if (same_file(in, path)) return cli_error(path, "is IN itself; import to another file");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int bad = H5Fis_hdf5(in) <= 0;
    if (cli_agree(bad) != CLI_OK || bad) return cli_error(in, "not an HDF5 file (or not readable)");
    hid_t h = H5Fopen(in, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (cli_agree(h < 0) != CLI_OK || h < 0) {
        if (h >= 0) H5Fclose(h);
        return cli_error(in, "cannot open the HDF5 file");
    }
    imp m;
    memset(&m, 0, sizeof m);
    m.path = in;
    if (afmt_create(cli.comm, path, force ? AFMT_TRUNC : 0, NULL, &m.f) != AFMT_OK) {
        H5Fclose(h);
        return cli_lib_error(path, NULL);
    }
    /* definition order: the creation order where the file tracks it, else by name */
    H5_index_t order = H5_INDEX_NAME;
    hid_t root = H5Gopen2(h, "/", H5P_DEFAULT);
    hid_t gcpl = root >= 0 ? H5Gget_create_plist(root) : -1;
    if (root >= 0) H5Gclose(root);
    unsigned crt = 0;
    if (gcpl >= 0 && H5Pget_link_creation_order(gcpl, &crt) >= 0 && (crt & H5P_CRT_ORDER_INDEXED))
        order = H5_INDEX_CRT_ORDER;
    if (gcpl >= 0) H5Pclose(gcpl);
    /* every rank reads the same metadata and defines the same arrays (collective) */
    for (m.pass = 0; m.pass < 2 && !m.failed; m.pass++) {
        h5_visit(h, order, H5_ITER_INC, visit_cb, &m);
        if (m.pass == 0 && !m.failed) attrs_of(&m, h, NULL);
        if (m.pass == 0) {
            rc = cli_agree_msg(path, m.failed, m.why);
            if (rc != CLI_OK) break;
        }
    }
    H5Fclose(h);
    if (rc == CLI_OK) rc = cli_agree_msg(path, m.failed, m.why);
    if (rc == CLI_OK && afmt_commit(m.f) != AFMT_OK) rc = cli_lib_error(path, m.f);
    int crc = cli_close(path, m.f);
    return rc != CLI_OK ? rc : crc;
}
