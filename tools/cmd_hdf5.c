/* cmd_hdf5.c - afmt export (an afmt file as HDF5 with netCDF-4 conventions) and afmt
 * import (the numeric datasets of an HDF5 file as an afmt file). Built only when HDF5 is
 * found (AFMT_HAVE_HDF5); the HDF5 side is serial: export runs on rank 0 (the others only
 * open the afmt file with it), import reads the HDF5 file on every rank and divides the
 * writing of each array's slabs among the ranks. */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/file.h"
#include "cli.h"

typedef unsigned long long ull;

/* The text netCDF-4 puts in the NAME attribute of a dimension without a variable. */
#define NC_DIM_ONLY "This is a netCDF dimension but not a netCDF variable."

static hid_t h5_native(afmt_dtype t) {
    switch (t) {
    case AFMT_BOOL: /* no HDF5/netCDF bool: 0/1 as uint8 */
    case AFMT_UINT8:
        return H5T_NATIVE_UINT8;
    case AFMT_INT8:
        return H5T_NATIVE_INT8;
    case AFMT_INT16:
        return H5T_NATIVE_INT16;
    case AFMT_INT32:
        return H5T_NATIVE_INT32;
    case AFMT_INT64:
        return H5T_NATIVE_INT64;
    case AFMT_UINT16:
        return H5T_NATIVE_UINT16;
    case AFMT_UINT32:
        return H5T_NATIVE_UINT32;
    case AFMT_UINT64:
        return H5T_NATIVE_UINT64;
    case AFMT_FLOAT32:
        return H5T_NATIVE_FLOAT;
    case AFMT_FLOAT64:
        return H5T_NATIVE_DOUBLE;
    }
    return H5T_NATIVE_UINT8;
}

/* Whether type is h5py's bool: a 1-byte enum of FALSE = 0 and TRUE = 1. */
static int is_h5py_bool(hid_t type) {
    if (H5Tget_class(type) != H5T_ENUM || H5Tget_size(type) != 1 || H5Tget_nmembers(type) != 2)
        return 0;
    int ok = 1;
    for (unsigned i = 0; i < 2 && ok; i++) {
        char *nm = H5Tget_member_name(type, i);
        hid_t base = H5Tget_super(type);
        int8_t raw[8] = {0};
        if (!nm || H5Tget_member_value(type, i, raw) < 0 ||
            H5Tconvert(base, H5T_NATIVE_INT8, 1, raw, NULL, H5P_DEFAULT) < 0)
            ok = 0;
        int8_t v = raw[0];
        if (ok && !((!strcmp(nm, "FALSE") && v == 0) || (!strcmp(nm, "TRUE") && v == 1))) ok = 0;
        if (nm) H5free_memory(nm);
        H5Tclose(base);
    }
    return ok;
}

/* The memory type to read a file type of afmt dtype t with (to close): h5py's bool enum
 * as its native enum (0/1 bytes), else the native type of t. */
static hid_t mem_type(hid_t ftype, int t) {
    if (t == AFMT_BOOL) return H5Tget_native_type(ftype, H5T_DIR_ASCEND);
    return H5Tcopy(h5_native((afmt_dtype)t));
}

/* The afmt dtype of an HDF5 integer or float type (or h5py's bool enum), or -1 (not numeric, or a
 * float that is not 4 or 8 bytes). */
static int afmt_of_h5(hid_t type) {
    H5T_class_t c = H5Tget_class(type);
    size_t sz = H5Tget_size(type);
    if (c == H5T_ENUM) return is_h5py_bool(type) ? AFMT_BOOL : -1;
    if (c == H5T_FLOAT) return sz == 4 ? AFMT_FLOAT32 : sz == 8 ? AFMT_FLOAT64 : -1;
    if (c != H5T_INTEGER) return -1;
    int sgn = H5Tget_sign(type) == H5T_SGN_2;
    switch (sz) {
    case 1:
        return sgn ? AFMT_INT8 : AFMT_UINT8;
    case 2:
        return sgn ? AFMT_INT16 : AFMT_UINT16;
    case 4:
        return sgn ? AFMT_INT32 : AFMT_UINT32;
    case 8:
        return sgn ? AFMT_INT64 : AFMT_UINT64;
    default:
        return -1;
    }
}

static const char *h5_class_name(hid_t type) {
    switch (H5Tget_class(type)) {
    case H5T_STRING:
        return "string";
    case H5T_COMPOUND:
        return "compound";
    case H5T_ENUM:
        return "enum";
    case H5T_ARRAY:
        return "array";
    case H5T_VLEN:
        return "variable-length";
    case H5T_REFERENCE:
        return "reference";
    case H5T_OPAQUE:
        return "opaque";
    case H5T_BITFIELD:
        return "bitfield";
    case H5T_FLOAT:
        return "float of an unsupported size";
    case H5T_INTEGER:
        return "integer of an unsupported size";
    default:
        return "unsupported";
    }
}

/* Whether paths a and b name the same existing file (writing one would destroy the
 * other). */
static int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* ---- export ------------------------------------------------------------------------- */

typedef struct {
    char name[AFMT_MAX_DIMNAME + 32]; /* as written (maybe suffixed) */
    char orig[AFMT_MAX_DIMNAME + 1];
    uint64_t len;
    hid_t ds;     /* the dimension scale dataset */
    int coord;    /* the scale is an exported array (a netCDF coordinate variable) */
    int64_t aidx; /* that array's index */
} xdim;

typedef struct {
    xdim *v;
    int n, cap;
} xdims;

static int is_text(const uint8_t *b, uint64_t n) {
    if (n == 0) return 0;
    for (uint64_t i = 0; i < n; i++)
        if (b[i] == 0 || (b[i] < 0x20 && b[i] != '\t' && b[i] != '\n' && b[i] != '\r') ||
            b[i] == 0x7f)
            return 0;
    return 1;
}

/* Writes one afmt attribute (its record rec; values read through afmt_get_attr so that
 * they are native) on loc. uint8 values that are text become a fixed-length string (what
 * netCDF calls NC_CHAR); bool becomes uint8. */
static int put_attr(afmt_file *f, const char *array, const afmt_attr_rec *rec, hid_t loc, char *why,
                    size_t wn) {
    size_t es = cli_dtype_size(rec->dtype);
    void *buf = malloc(rec->n ? (size_t)rec->n * es : 1);
    if (!buf) return snprintf(why, wn, "out of memory"), -1;
    uint64_t n = rec->n;
    if (afmt_get_attr(f, array, rec->key, rec->dtype, &n, buf) != AFMT_OK) {
        snprintf(why, wn, "attribute \"%s\": %s", rec->key, afmt_errmsg(f));
        free(buf);
        return -1;
    }
    hid_t type, space, a = -1;
    int text = rec->dtype == AFMT_UINT8 && is_text(buf, n);
    if (text) {
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, (size_t)n);
        H5Tset_strpad(type, H5T_STR_NULLTERM);
        space = H5Screate(H5S_SCALAR);
    } else {
        type = H5Tcopy(h5_native(rec->dtype));
        hsize_t d = (hsize_t)n;
        space = n ? H5Screate_simple(1, &d, NULL) : H5Screate(H5S_NULL);
    }
    int rc = -1;
    if (type >= 0 && space >= 0)
        a = H5Acreate2(loc, rec->key, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0 && (n == 0 || H5Awrite(a, type, buf) >= 0)) rc = 0;
    if (rc) snprintf(why, wn, "writing attribute \"%s\" failed", rec->key);
    if (a >= 0) H5Aclose(a);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    free(buf);
    return rc;
}

static int name_taken(const afmt_index *x, const xdims *D, const char *s) {
    uint64_t nl = afmt__index_live_count(x);
    for (uint64_t i = 0; i < nl; i++)
        if (!strcmp(afmt__index_live_at(x, i)->d.name, s)) return 1;
    for (int i = 0; i < D->n; i++)
        if (!strcmp(D->v[i].name, s)) return 1;
    return 0;
}

/* The dimension of name nm and length len: found, or added (suffixed "_LEN" when nm is
 * taken by a dimension of another length, or by an array that is not nm's coordinate
 * variable). Returns its index, -1 if out of memory. */
static int dim_of(const afmt_index *x, xdims *D, const char *nm, uint64_t len, int64_t aidx,
                  const afmt_array_rec *a) {
    for (int i = 0; i < D->n; i++)
        if (!strcmp(D->v[i].orig, nm) && D->v[i].len == len) return i;
    if (D->n == D->cap) {
        int c = D->cap ? 2 * D->cap : 16;
        xdim *v = realloc(D->v, (size_t)c * sizeof *v);
        if (!v) return -1;
        D->v = v;
        D->cap = c;
    }
    xdim *d = &D->v[D->n];
    memset(d, 0, sizeof *d);
    snprintf(d->orig, sizeof d->orig, "%s", nm);
    d->len = len;
    d->ds = -1;
    d->aidx = -1;
    /* a 1-D array named like its only dimension is that dimension's coordinate variable */
    if (a && a->ndim == 1 && !strcmp(a->name, nm)) {
        snprintf(d->name, sizeof d->name, "%s", nm);
        d->coord = 1;
        d->aidx = aidx;
    } else {
        int clash = 0;
        for (int i = 0; i < D->n; i++)
            if (!strcmp(D->v[i].name, nm)) clash = 1;
        uint64_t nl = afmt__index_live_count(x);
        for (uint64_t i = 0; i < nl && !clash; i++) {
            const afmt_array_rec *b = &afmt__index_live_at(x, i)->d;
            if (!strcmp(b->name, nm) && !(b->ndim == 1 && b->shape[0] == len)) clash = 1;
            /* an array named nm of length len over dim nm is the coordinate variable,
             * handled when that array is reached first (arrays are visited in order, and
             * coordinate arrays are placed first, see export_file) */
            if (!strcmp(b->name, nm) && b->ndim == 1 && strcmp(b->dims[0], nm)) clash = 1;
        }
        if (!clash) {
            snprintf(d->name, sizeof d->name, "%s", nm);
        } else {
            snprintf(d->name, sizeof d->name, "%s_%llu", nm, (ull)len);
            for (int k = 2; name_taken(x, D, d->name); k++)
                snprintf(d->name, sizeof d->name, "%s_%llu_%d", nm, (ull)len, k);
        }
    }
    return D->n++;
}

static int set_dimid(hid_t ds, int id) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(ds, "_Netcdf4Dimid", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &id) >= 0 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

/* Creates the dataset of live array i (its data written later). */
static hid_t make_dataset(hid_t file, const afmt_array_rec *r, int track, int deflate) {
    hsize_t dims[AFMT_MAX_NDIM], chunk[AFMT_MAX_NDIM];
    for (int d = 0; d < r->ndim; d++) {
        dims[d] = (hsize_t)r->shape[d];
        chunk[d] = (hsize_t)r->chunk[d];
    }
    hid_t sp = r->ndim ? H5Screate_simple(r->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (track) H5Pset_attr_creation_order(dcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    if (r->ndim) H5Pset_chunk(dcpl, r->ndim, chunk);
    if (r->ndim && deflate > 0) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, (unsigned)deflate);
    }
    uint8_t fill[8];
    cli_fill_native(r->fill, (afmt_dtype)r->dtype, fill);
    H5Pset_fill_value(dcpl, h5_native((afmt_dtype)r->dtype), fill);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_IFSET);
    /* a name with '/' ("grp/t") is a dataset in a group, made on the way (import gives the
     * same name back) */
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds =
        H5Dcreate2(file, r->name, h5_native((afmt_dtype)r->dtype), sp, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return ds;
}

static int write_data(afmt_file *f, const afmt_array_rec *r, hid_t ds, char *why, size_t wn) {
    afmt_info info;
    if (afmt_inquire(f, r->name, &info) != AFMT_OK)
        return snprintf(why, wn, "%s", afmt_errmsg(f)), -1;
    size_t es = cli_dtype_size(info.dtype);
    cli_slabs s;
    cli_slabs_init(&s, &info, NULL, NULL, es, cli_slab_budget());
    void *buf = malloc((size_t)(s.max_elems * es) + 1);
    if (!buf) return snprintf(why, wn, "out of memory"), -1;
    hid_t fsp = H5Dget_space(ds);
    int rc = 0;
    uint64_t st[AFMT_MAX_NDIM], cn[AFMT_MAX_NDIM];
    for (uint64_t i = 0; i < s.n && rc == 0; i++) {
        cli_slab_at(&s, i, st, cn);
        if (afmt_read(f, r->name, st, cn, buf) != AFMT_OK) {
            snprintf(why, wn, "%s", afmt_errmsg(f));
            rc = -1;
            break;
        }
        hid_t msp;
        if (info.ndim == 0) {
            msp = H5Screate(H5S_SCALAR);
            H5Sselect_all(fsp);
        } else {
            hsize_t hs[AFMT_MAX_NDIM], hc[AFMT_MAX_NDIM];
            for (int d = 0; d < info.ndim; d++) {
                hs[d] = (hsize_t)st[d];
                hc[d] = (hsize_t)cn[d];
            }
            msp = H5Screate_simple(info.ndim, hc, NULL);
            H5Sselect_hyperslab(fsp, H5S_SELECT_SET, hs, NULL, hc, NULL);
        }
        if (H5Dwrite(ds, h5_native(info.dtype), msp, fsp, H5P_DEFAULT, buf) < 0) {
            snprintf(why, wn, "writing the values of \"%s\" failed", r->name);
            rc = -1;
        }
        H5Sclose(msp);
    }
    H5Sclose(fsp);
    free(buf);
    return rc;
}

/* Rank 0: writes out from f. 0, or -1 with why; *created: out was created (truncated). */
static int export_file(afmt_file *f, const char *out, int deflate, int *created, char *why,
                       size_t wn) {
    const afmt_index *x = &f->idx;
    uint64_t nl = afmt__index_live_count(x);
    xdims D = {0};
    int rc = -1;
    hid_t *ads = calloc(nl ? (size_t)nl : 1, sizeof *ads);
    int *adim = malloc((nl ? (size_t)nl : 1) * AFMT_MAX_NDIM * sizeof *adim);
    if (!ads || !adim) {
        snprintf(why, wn, "out of memory");
        free(ads);
        free(adim);
        return -1;
    }
    for (uint64_t i = 0; i < nl; i++) ads[i] = -1;
    /* the dimensions: coordinate variables first, so that they keep their names */
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t i = 0; i < nl; i++) {
            const afmt_array_rec *r = &afmt__index_live_at(x, i)->d;
            int coord = r->ndim == 1 && !strcmp(r->name, r->dims[0]);
            if ((pass == 0) != coord) continue;
            for (int d = 0; d < r->ndim; d++) {
                int k = -1;
                if (r->dims[d][0]) {
                    k = dim_of(x, &D, r->dims[d], r->shape[d], (int64_t)i, coord ? r : NULL);
                    if (k < 0) {
                        snprintf(why, wn, "out of memory");
                        goto done;
                    }
                }
                adim[i * AFMT_MAX_NDIM + (uint64_t)d] = k;
            }
        }

    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t file = H5Fcreate(out, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (file < 0) {
        snprintf(why, wn, "cannot create the HDF5 file");
        goto done;
    }
    *created = 1;
    /* pure dimensions: 1-D float datasets without values, as netCDF-4 writes them */
    for (int k = 0; k < D.n; k++) {
        xdim *d = &D.v[k];
        if (d->coord) continue;
        hsize_t len = (hsize_t)d->len;
        hid_t sp = H5Screate_simple(1, &len, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_attr_creation_order(dcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
        d->ds = H5Dcreate2(file, d->name, H5T_IEEE_F32BE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Pclose(dcpl);
        H5Sclose(sp);
        char nm[96];
        snprintf(nm, sizeof nm, "%s%10llu", NC_DIM_ONLY, (ull)d->len);
        if (d->ds < 0 || H5DSset_scale(d->ds, nm) < 0 || set_dimid(d->ds, k) < 0) {
            snprintf(why, wn, "creating dimension \"%s\" failed", d->name);
            goto close;
        }
    }
    /* the arrays, their attributes and values */
    for (uint64_t i = 0; i < nl; i++) {
        const afmt_array *arr = afmt__index_live_at(x, i);
        const afmt_array_rec *r = &arr->d;
        ads[i] = make_dataset(file, r, 1, deflate);
        if (ads[i] < 0) {
            snprintf(why, wn, "creating dataset \"%s\" failed", r->name);
            goto close;
        }
        for (int k = 0; k < D.n; k++)
            if (D.v[k].coord && D.v[k].aidx == (int64_t)i) {
                D.v[k].ds = ads[i];
                if (H5DSset_scale(ads[i], D.v[k].name) < 0 || set_dimid(ads[i], k) < 0) {
                    snprintf(why, wn, "making \"%s\" a dimension scale failed", r->name);
                    goto close;
                }
            }
        for (uint64_t a = 0; a < arr->n_attrs; a++)
            if (put_attr(f, r->name, &arr->attrs[a], ads[i], why, wn) != 0) goto close;
        if (write_data(f, r, ads[i], why, wn) != 0) goto close;
    }
    for (uint64_t i = 0; i < nl; i++) {
        const afmt_array_rec *r = &afmt__index_live_at(x, i)->d;
        for (int d = 0; d < r->ndim; d++) {
            int k = adim[i * AFMT_MAX_NDIM + (uint64_t)d];
            if (k < 0 || (D.v[k].coord && D.v[k].aidx == (int64_t)i)) continue;
            if (H5DSattach_scale(ads[i], D.v[k].ds, (unsigned)d) < 0) {
                snprintf(why, wn, "attaching dimension \"%s\" to \"%s\" failed", D.v[k].name,
                         r->name);
                goto close;
            }
        }
    }
    for (uint64_t a = 0; a < x->n_file_attrs; a++)
        if (put_attr(f, NULL, &x->file_attrs[a], file, why, wn) != 0) goto close;
    rc = 0;
close:
    for (int k = 0; k < D.n; k++)
        if (!D.v[k].coord && D.v[k].ds >= 0) H5Dclose(D.v[k].ds);
    for (uint64_t i = 0; i < nl; i++)
        if (ads[i] >= 0) H5Dclose(ads[i]);
    if (H5Fclose(file) < 0 && rc == 0) {
        snprintf(why, wn, "closing the HDF5 file failed");
        rc = -1;
    }
done:
    free(D.v);
    free(ads);
    free(adim);
    return rc;
}

int cmd_export(int argc, char **argv) {
    static const cli_optdef defs[] = {{"layer", 0, 1}, {"deflate", 0, 1}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 2) return cli_usage_error("export", "expected FILE and OUT");
    const char *path = a.pos[0], *out = a.pos[1];
    uint64_t layer = 0;
    const char *ls = a.val[cli_opt(defs, "layer")];
    if (ls && (cli_parse_u64(ls, &layer) != 0 || layer == 0))
        return cli_usage_error("export", "--layer needs a layer id (a number >= 1), not '%s'", ls);
    uint64_t deflate = 0;
    const char *ds = a.val[cli_opt(defs, "deflate")];
    if (ds && (cli_parse_u64(ds, &deflate) != 0 || deflate > 9))
        return cli_usage_error("export", "--deflate needs a level 0..9, not '%s'", ds);
    if (same_file(path, out)) return cli_error(out, "is FILE itself; export to another file");
    afmt_file *f;
    if ((rc = cli_open(path, AFMT_RDONLY, layer, &f)) != CLI_OK) return rc;
    char why[AFMT_ERRMSG_MAX + 128] = "";
    int failed = 0;
    if (cli.rank == 0) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        int created = 0;
        failed = export_file(f, out, (int)deflate, &created, why, sizeof why) != 0;
        if (failed && created) unlink(out); /* no half-written file that looks whole */
    }
    rc = cli_agree_msg(out, failed, why);
    int crc = cli_close(path, f);
    return rc != CLI_OK ? rc : crc;
}

/* ---- import ------------------------------------------------------------------------- */

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
