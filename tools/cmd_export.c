/* cmd_export.c - afmt export: an afmt file as HDF5 with netCDF-4 conventions (dimension
 * scales, _FillValue, attributes), for ParaView, VisIt, h5py and ncdump. The HDF5 side is
 * serial: rank 0 writes, the other ranks only open the afmt file with it. Built only when
 * HDF5 is found (AFMT_HAVE_HDF5). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5common.h"

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
